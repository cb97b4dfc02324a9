"""Tiny random-weight checkpoints (configs/seed_vc_tiny.yaml) in the official layouts, and the strict loaders."""
import pathlib

import pytest
import soundfile as sf
import torch

from seed_vc.audio import mel_spectrogram, pad_waves, resample_to_16k
from seed_vc.bigvgan import load_bigvgan
from seed_vc.campplus import compute_style
from seed_vc.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from seed_vc.content import ContentEncoder, load_hubert
from seed_vc.tiny import PATH_KEYS, build_modules, build_tiny, load_dims

TINY_YAML = pathlib.Path(__file__).resolve().parents[2] / "configs" / "seed_vc_tiny.yaml"


@pytest.fixture(scope="module")
def dims():
    return load_dims(TINY_YAML)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, dims):
    root = tmp_path_factory.mktemp("seedvc_tiny")
    paths = {"cfm": root / "v2/cfm_small.pth", "ar": root / "v2/ar_base.pth", "bsq32": root / "bsq32/bsq32_light.pth",
             "bsq2048": root / "bsq2048/bsq2048_light.pth", "hubert": root / "hubert-large-ll60k",
             "campplus": root / "campplus_cn_common.bin", "bigvgan": root / "bigvgan_v2_22khz_80band_256x"}
    build_tiny(paths, dims)
    return paths


@pytest.fixture(scope="module")
def loaded(tiny, dims):
    modules = build_modules(dims)
    paths = tiny
    load_checkpoint(paths["cfm"], "cfm", {"cfm": modules["cfm"], "length_regulator": modules["cfm_length_regulator"]})
    load_checkpoint(paths["ar"], "ar", {"ar": modules["ar"], "length_regulator": modules["ar_length_regulator"]})
    for key in ("bsq32", "bsq2048"):
        load_checkpoint(paths[key], "bsq", {"": modules[key]})
    load_checkpoint(paths["campplus"], "campplus", {"": modules["campplus"]})
    modules["hubert"] = load_hubert(paths["hubert"], dims["hubert_layers"])
    modules["bigvgan"] = load_bigvgan(paths["bigvgan"])
    return {k: m.eval() for k, m in modules.items()}


def test_files_use_the_official_layouts(tiny):
    paths = tiny
    assert set(paths) == set(PATH_KEYS)
    for key, section in (("cfm", "cfm"), ("ar", "ar")):
        obj = torch.load(paths[key], weights_only=True)
        assert list(obj) == ["net"] and set(obj["net"]) == {section, "length_regulator"}
    flat = torch.load(paths["bsq2048"], weights_only=True)
    assert "quantizer.mask" in flat and not any(k.startswith("ssl_model.") for k in flat)
    campplus = torch.load(paths["campplus"], weights_only=True)
    assert "xvector.dense.linear.weight" in campplus and "dense.linear.weight" not in campplus
    assert {p.name for p in paths["hubert"].iterdir()} == {"config.json", "preprocessor_config.json",
                                                           "pytorch_model.bin"}
    assert list(torch.load(paths["bigvgan"] / "bigvgan_generator.pt", weights_only=True)) == ["generator"]


def test_files_load_back_strictly(tiny, loaded):
    paths = tiny
    cfm_file = read_checkpoint(paths["cfm"], "cfm")
    for key, value in cfm_file["cfm"].items():
        assert torch.equal(loaded["cfm"].state_dict()[key], value), key
    assert len(loaded["hubert"].encoder.layers) == 2


def test_tiny_models_give_non_degenerate_output(shared_dir, loaded):
    clips = []
    for name in ("cmu_arctic_male_a0007.wav", "cmu_arctic_female_a0009.wav"):
        wave, sr = sf.read(shared_dir / "audio" / name, dtype="float32")
        clips.append(resample_to_16k(wave, sr)[:24000])
    waves, lens = pad_waves(clips)
    encoder = ContentEncoder(loaded["hubert"], loaded["bsq2048"], loaded["bsq32"])
    tokens = encoder(waves, lens)
    assert len(tokens.wide[0, : tokens.lens[0]].unique()) > 10
    assert len(tokens.narrow[0, : tokens.lens[0]].unique()) > 3
    styles = compute_style(loaded["campplus"], waves, lens)
    assert torch.isfinite(styles).all() and float(styles.std()) > 1e-3
    assert float((styles[0] - styles[1]).norm() / styles[0].norm()) > 0.05
    with torch.inference_mode():
        wave = loaded["bigvgan"](mel_spectrogram(waves[0, :8000]))
    rms = float(wave.pow(2).mean().sqrt())
    assert 1e-3 < rms < 0.9 and float((wave.abs() >= 1).float().mean()) < 0.5


def test_loader_names_file_and_keys(tiny, dims, tmp_path):
    paths = tiny
    net = torch.load(paths["cfm"], weights_only=True)["net"]
    modules = build_modules(dims)
    targets = {"cfm": modules["cfm"], "length_regulator": modules["cfm_length_regulator"]}

    def save(cfm_sd, name):
        path = tmp_path / name
        torch.save({"net": {"cfm": cfm_sd, "length_regulator": net["length_regulator"]}}, path)
        return path

    # Known unused keys may be absent (or dropped), a `module.` prefix is stripped.
    no_embedder = {"module." + k: v for k, v in net["cfm"].items() if not k.startswith("estimator.x_embedder.")}
    load_checkpoint(save(no_embedder, "ok.pth"), "cfm", targets)

    missing = dict(net["cfm"])
    missing.pop("estimator.cond_projection.weight")
    with pytest.raises(CheckpointError, match=r"missing.pth.*missing \(1\).*estimator\.cond_projection\.weight"):
        load_checkpoint(save(missing, "missing.pth"), "cfm", targets)
    extra = dict(net["cfm"], **{"estimator.surprise": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected \(1\).*estimator\.surprise"):
        load_checkpoint(save(extra, "extra.pth"), "cfm", targets)
    wrong = dict(net["cfm"], **{"estimator.style_in.bias": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"wrong shape.*estimator\.style_in\.bias: file \(3,\)"):
        load_checkpoint(save(wrong, "wrong.pth"), "cfm", targets)
    with pytest.raises(CheckpointError, match=r"flat.pth: expected \['net'\]"):
        torch.save(net["cfm"], tmp_path / "flat.pth")
        load_checkpoint(tmp_path / "flat.pth", "cfm", targets)


def test_hubert_loader_rejects_missing_weights(tiny, tmp_path):
    paths = tiny
    broken = tmp_path / "hubert"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (broken / name).write_text((paths["hubert"] / name).read_text())
    state = torch.load(paths["hubert"] / "pytorch_model.bin", weights_only=True)
    state.pop("feature_projection.projection.weight")
    torch.save(state, broken / "pytorch_model.bin")
    with pytest.raises(RuntimeError, match="feature_projection.projection.weight"):
        load_hubert(broken, 2)


def test_known_unused_keys_in_a_file_are_dropped(tiny, dims, tmp_path):
    paths = tiny
    net = torch.load(paths["ar"], weights_only=True)["net"]
    net["ar"]["model.causal_mask"] = torch.ones(4, 4, dtype=torch.bool)  # saved by some training scripts
    torch.save({"net": net}, tmp_path / "ar.pth")
    modules = build_modules(dims)
    targets = {"ar": modules["ar"], "length_regulator": modules["ar_length_regulator"]}
    load_checkpoint(tmp_path / "ar.pth", "ar", targets)
    assert "model.causal_mask" not in modules["ar"].state_dict()
