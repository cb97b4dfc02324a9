"""Retrieval index: built the upstream way, read back, blended into features; mismatches fail clearly."""
import faiss
import numpy as np
import pytest

from compare import assert_close
from rvc.index import build_index, load_index, n_ivf_lists


@pytest.fixture()
def feats():
    return np.random.default_rng(0).normal(size=(800, 16)).astype(np.float32)


def test_ivf_size_follows_the_recipe():
    assert n_ivf_lists(10) == 1
    assert n_ivf_lists(800) == 20  # N // 39 wins for small sets
    assert n_ivf_lists(30_000) == 769  # 10 min of speech: 16 * sqrt(N) wins


def test_built_index_reads_back_with_all_vectors(tmp_path, feats):
    path = build_index(feats, tmp_path / "added_IVF20_Flat_nprobe_1_voice_v2.index")
    index = load_index(path, dim=16)
    assert index.index.ntotal == 800 and index.dim == 16
    assert faiss.extract_index_ivf(index.index).nlist == 20
    assert faiss.extract_index_ivf(index.index).nprobe == 1
    # the stored vectors are the training features (in shuffled order)
    np.testing.assert_array_equal(np.sort(index.vectors, axis=0), np.sort(feats, axis=0))


def test_blend_pulls_features_towards_stored_vectors(tmp_path, feats):
    index = load_index(build_index(feats, tmp_path / "v.index"))
    query = feats[:50] + 0.01 * np.random.default_rng(1).normal(size=(50, 16)).astype(np.float32)
    assert_close(index.blend(query, 0.0), query, "blend at rate 0")
    full = index.blend(query, 1.0)
    assert np.abs(full - feats[:50]).mean() < np.abs(query - feats[:50]).mean()
    half = index.blend(query, 0.5)
    assert_close(half, 0.5 * full + 0.5 * query, "blend at rate 0.5")
    assert np.isfinite(index.blend(feats[:10], 0.75)).all()  # exact hits (d = 0) stay finite


def test_weights_are_inverse_square_distances(tmp_path, feats):
    index = load_index(build_index(feats, tmp_path / "v.index"))
    query = np.random.default_rng(2).normal(size=(5, 16)).astype(np.float32)
    d, ids = index.index.search(query, 8)
    w = (1 / d) ** 2
    w /= w.sum(1, keepdims=True)
    expected = (w[:, :, None] * index.vectors[ids]).sum(1)
    assert_close(index.retrieve(query), expected, "retrieved features")


def test_dimension_mismatch_names_both_sizes(tmp_path, feats):
    path = build_index(feats, tmp_path / "v.index")
    with pytest.raises(ValueError, match="16-dim.*768-dim"):
        load_index(path, dim=768)
    with pytest.raises(ValueError, match="16-dim"):
        load_index(path).blend(np.zeros((3, 768), np.float32), 0.75)


def test_missing_or_corrupt_index_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="index file not found"):
        load_index(tmp_path / "nope.index")
    bad = tmp_path / "bad.index"
    bad.write_bytes(b"not an index")
    with pytest.raises(ValueError, match="not a readable faiss index"):
        load_index(bad)


def test_large_feature_sets_are_reduced_to_kmeans_centres(tmp_path):
    """Past `kmeans_above` vectors (200k upstream) the index holds `kmeans_centers` centres (10k upstream)."""
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(20, 16)).astype(np.float32) * 10
    feats = np.repeat(centres, 30, axis=0) + 0.01 * rng.normal(size=(600, 16)).astype(np.float32)
    index = load_index(build_index(feats, tmp_path / "big.index", kmeans_above=500, kmeans_centers=20))
    assert index.index.ntotal == 20 and faiss.extract_index_ivf(index.index).nlist == n_ivf_lists(20)
    # the stored vectors are cluster centres (random-init k-means may merge a few clusters)
    nearest = np.abs(index.vectors[:, None, :] - centres[None]).max(-1).min(1)
    assert (nearest < 0.1).sum() >= 10
    assert load_index(build_index(feats[:500], tmp_path / "small.index", kmeans_above=500)).index.ntotal == 500
