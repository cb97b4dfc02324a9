"""Feature retrieval index (`.index`, faiss IVF Flat): reading, the inference blend, and building.

At inference RVC pulls each ContentVec frame towards the training speaker's own frames: the k = 8 nearest
stored vectors, weighted by (1/d)^2, blended in by `index_rate` (RVC WebUI 20240604 `Pipeline.vc`).
Building follows its `train_index` recipe.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

K_NEIGHBOURS = 8
ADD_BATCH = 8192
KMEANS_ABOVE, KMEANS_CENTERS = 200_000, 10_000  # past 200k vectors the index holds 10k k-means centres


@dataclass(frozen=True)
class FeatureIndex:
    """A loaded index and the vectors it holds (recovered with reconstruct_n, as upstream does)."""

    index: faiss.Index
    vectors: np.ndarray  # [ntotal, dim] float32

    @property
    def dim(self) -> int:
        return self.index.d

    def retrieve(self, feats: np.ndarray) -> np.ndarray:
        """[T, dim] features -> [T, dim] weighted mean of each frame's 8 nearest stored vectors."""
        distances, ids = self.index.search(np.ascontiguousarray(feats, dtype=np.float32), K_NEIGHBOURS)
        # (1/d)^2 in float64; an exact hit (d = 0) would give inf/nan upstream, so d is floored.
        weight = np.square(1.0 / np.maximum(distances.astype(np.float64), 1e-12))
        weight /= weight.sum(axis=1, keepdims=True)
        # Missing neighbours (id -1, d = FLT_MAX) get weight ~0, like upstream's vectors[-1] lookup.
        return np.einsum("tk,tkd->td", weight, self.vectors[ids]).astype(np.float32)

    def blend(self, feats: np.ndarray, index_rate: float) -> np.ndarray:
        """index_rate * retrieved + (1 - index_rate) * feats, for [T, dim] features."""
        if feats.shape[-1] != self.dim:
            raise ValueError(f"index holds {self.dim}-dim vectors but the features are {feats.shape[-1]}-dim")
        return index_rate * self.retrieve(feats) + (1 - index_rate) * feats


def load_index(path: str | Path, dim: int | None = None) -> FeatureIndex:
    """Read an `added_*.index` / `<name>.index` file; `dim` (the model's content size) is checked if given."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"index file not found: {path}")
    try:
        index = faiss.read_index(str(path))
    except RuntimeError as e:
        raise ValueError(f"{path} is not a readable faiss index: {e}") from None
    if index.ntotal == 0:
        raise ValueError(f"{path} holds no vectors (a 'trained_' index? use the 'added_' one)")
    if dim is not None and index.d != dim:
        version = {256: "v1", 768: "v2"}.get(index.d, "another")
        raise ValueError(f"{path} holds {index.d}-dim features ({version} model), but the voice model uses "
                         f"{dim}-dim content features: pick the index trained with this model")
    return FeatureIndex(index, index.reconstruct_n(0, index.ntotal))


def n_ivf_lists(n: int) -> int:
    """Number of IVF cells for n vectors: min(16 sqrt(n), n / 39), at least 1 (RVC main)."""
    return max(1, min(int(16 * math.sqrt(n)), n // 39))


def reduced_count(n: int, above: int = KMEANS_ABOVE, centers: int = KMEANS_CENTERS) -> int:
    """How many vectors an index built from n features holds."""
    return centers if n > above else n


def build_index(features: np.ndarray, path: str | Path, seed: int = 0, kmeans_above: int = KMEANS_ABOVE,
                kmeans_centers: int = KMEANS_CENTERS) -> Path:
    """Train and fill an IVF{n},Flat index (nprobe 1) on [N, dim] features and write it to `path`.

    Upstream shuffles the features first (unseeded); here the shuffle is seeded so builds are reproducible.
    Past `kmeans_above` vectors they are replaced by `kmeans_centers` MiniBatchKMeans centres (random init,
    batches of 256 per CPU), which keeps search fast and the file small for long datasets.
    """
    feats = np.ascontiguousarray(features, dtype=np.float32)
    if feats.ndim != 2 or feats.shape[0] == 0:
        raise ValueError(f"build_index expects [N, dim] features with N >= 1, got shape {feats.shape}")
    feats = feats[np.random.default_rng(seed).permutation(feats.shape[0])]
    if reduced_count(feats.shape[0], kmeans_above, kmeans_centers) != feats.shape[0]:
        from sklearn.cluster import MiniBatchKMeans  # imported lazily: only long datasets need it

        kmeans = MiniBatchKMeans(kmeans_centers, init="random", batch_size=256 * (os.cpu_count() or 1),
                                 compute_labels=False, random_state=seed)
        feats = np.ascontiguousarray(kmeans.fit(feats).cluster_centers_, dtype=np.float32)
    n_ivf = n_ivf_lists(feats.shape[0])
    index = faiss.index_factory(feats.shape[1], f"IVF{n_ivf},Flat")
    faiss.extract_index_ivf(index).nprobe = 1
    index.train(feats)
    for start in range(0, feats.shape[0], ADD_BATCH):
        index.add(feats[start:start + ADD_BATCH])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    faiss.write_index(index, str(path))
    return path
