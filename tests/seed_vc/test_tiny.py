"""Tiny random-weight checkpoints (configs/seed_vc_tiny.yaml) in the official layouts, and the strict loaders."""
import logging
import pathlib
import re

import pytest
import soundfile as sf
import torch

from seed_vc.audio import mel_spectrogram, pad_waves, resample_to_16k
from seed_vc.bigvgan import load_bigvgan
from seed_vc.campplus import compute_style
from seed_vc.checkpoints import TRAINING_ONLY, CheckpointError, load_checkpoint, matches, read_checkpoint
from seed_vc.content import ContentEncoder, load_hubert
from seed_vc.dit import DiTDims
from seed_vc.tiny import PATH_KEYS, build_modules, build_tiny, load_dims, training_only_extras

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
    cfm = torch.load(paths["cfm"], weights_only=True)["net"]["cfm"]
    assert all(k.startswith("module.estimator.") for k in cfm)
    assert cfm["module.estimator.transformer.freqs_cis"].dtype == torch.bfloat16
    # the training-only modules of the released files, under their released names
    assert {"module.estimator.skip_linear.weight", "module.estimator.content_mask_embedder.weight"} <= set(cfm)
    ar = torch.load(paths["ar"], weights_only=True)["net"]["ar"]
    assert any(k.startswith("model.codebook_") for k in ar) and "style_in.weight" in ar
    flat = torch.load(paths["bsq2048"], weights_only=True)
    assert "quantizer.mask" in flat and not any(k.startswith("ssl_model.") for k in flat)
    campplus = torch.load(paths["campplus"], weights_only=True)
    assert "xvector.dense.linear.weight" in campplus and "dense.linear.weight" not in campplus
    assert {p.name for p in paths["hubert"].iterdir()} == {"config.json", "preprocessor_config.json",
                                                           "pytorch_model.bin"}
    assert list(torch.load(paths["bigvgan"] / "bigvgan_generator.pt", weights_only=True)) == ["generator"]


def test_files_load_back_strictly(tiny, loaded):
    paths = tiny
    cfm_file = read_checkpoint(paths["cfm"], "cfm")["cfm"]
    ours = loaded["cfm"].state_dict()
    for key, value in cfm_file.items():
        if not matches(key, TRAINING_ONLY["cfm", "cfm"]):
            assert torch.equal(ours[key], value), key
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

    # Known unused keys may be absent (or dropped); the `module.` prefix is optional.
    plain = {k.removeprefix("module."): v for k, v in net["cfm"].items()}
    no_embedder = {k: v for k, v in plain.items() if not k.startswith("estimator.x_embedder.")}
    load_checkpoint(save(no_embedder, "ok.pth"), "cfm", targets)

    missing = dict(plain)
    missing.pop("estimator.cond_projection.weight")
    with pytest.raises(CheckpointError, match=r"missing.pth.*missing \(1\).*estimator\.cond_projection\.weight"):
        load_checkpoint(save(missing, "missing.pth"), "cfm", targets)
    extra = dict(plain, **{"estimator.surprise": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"unexpected \(1\).*estimator\.surprise"):
        load_checkpoint(save(extra, "extra.pth"), "cfm", targets)
    wrong = dict(plain, **{"estimator.style_in.bias": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"wrong shape.*estimator\.style_in\.bias: file \(3,\)"):
        load_checkpoint(save(wrong, "wrong.pth"), "cfm", targets)
    with pytest.raises(CheckpointError, match=r"flat.pth: expected \['net'\]"):
        torch.save(plain, tmp_path / "flat.pth")
        load_checkpoint(tmp_path / "flat.pth", "cfm", targets)


def test_hubert_loader_rejects_missing_weights(tiny, tmp_path):
    paths = tiny
    broken = tmp_path / "hubert"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (broken / name).write_text((paths["hubert"] / name).read_text())
    state = torch.load(paths["hubert"] / "pytorch_model.bin", weights_only=True)
    state.pop("masked_spec_embed")  # training-only, omitted by some exports: tolerated
    torch.save(state, broken / "pytorch_model.bin")
    assert len(load_hubert(broken, 2).encoder.layers) == 2
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


def _targets(dims, kind):
    modules = build_modules(dims)
    return {kind: modules[kind], "length_regulator": modules[f"{kind}_length_regulator"]}


def test_released_training_only_modules_are_dropped_and_logged_once(tiny, dims, caplog):
    paths = tiny
    for kind in ("cfm", "ar"):
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="seed_vc.checkpoints"):
            load_checkpoint(paths[kind], kind, _targets(dims, kind))
        [record] = caplog.records
        message = record.getMessage()
        assert message.startswith(f"{paths[kind].name}: ignoring")
        assert all(k in message for k in training_only_extras(kind, dims))


@pytest.mark.parametrize("kind, key", [
    ("cfm", "estimator.skip_linear_v2.weight"),  # close to a training-only prefix, but not under it
    ("cfm", "estimator.content_mask_embedder"),
    ("ar", "model.codebooks.weight"),
    ("ar", "style_input.weight"),
    ("ar", "model.layers.0.attention.wq.weight"),
])
def test_an_unknown_extra_key_is_refused_with_file_and_key(tiny, dims, tmp_path, kind, key):
    paths = tiny
    net = torch.load(paths[kind], weights_only=True)["net"]
    net[kind]["module." + key if kind == "cfm" else key] = torch.zeros(2, 2)
    path = tmp_path / f"{kind}_extra.pth"
    torch.save({"net": net}, path)
    with pytest.raises(CheckpointError, match=rf"{kind}_extra\.pth does not fit .*unexpected \(1\): \['{re.escape(key)}'\]"):
        load_checkpoint(path, kind, _targets(dims, kind))


def test_the_rotary_table_is_taken_from_the_file(tiny, dims, tmp_path):
    paths = tiny
    net = torch.load(paths["cfm"], weights_only=True)["net"]
    key = "module.estimator.transformer.freqs_cis"
    stored = net["cfm"][key]
    # A table rounded differently from ours (as another bf16 rounding or training run would store it).
    other = (stored.float() * (1 + 2 ** -6)).to(torch.bfloat16)
    assert not torch.equal(other, stored)
    net["cfm"][key] = other
    torch.save({"net": net}, tmp_path / "other_table.pth")

    def estimate(path):
        targets = _targets(dims, "cfm")
        load_checkpoint(path, "cfm", targets)
        cfm = targets["cfm"].eval()
        assert cfm.estimator.transformer.freqs_cis.dtype == torch.bfloat16
        g = torch.Generator().manual_seed(3)
        d = DiTDims(**dims["dit"])
        x, prompt = torch.randn(1, 80, 20, generator=g), torch.randn(1, 80, 20, generator=g)
        cond = torch.randn(1, 20, d.content_dim, generator=g)
        style = torch.randn(1, d.style_dim, generator=g)
        with torch.inference_mode():
            out = cfm.estimator(x, prompt, torch.tensor([20]), torch.tensor([0.5]), style, cond)
        return cfm.estimator.transformer.freqs_cis.clone(), out

    table, out = estimate(paths["cfm"])
    other_table, other_out = estimate(tmp_path / "other_table.pth")
    assert torch.equal(table, stored) and torch.equal(other_table, other)
    assert float((out - other_out).abs().max()) > 1e-4 * float(out.abs().max())

    del net["cfm"][key]
    torch.save({"net": net}, tmp_path / "no_table.pth")
    with pytest.raises(CheckpointError, match=r"no_table\.pth.*missing \(1\).*estimator\.transformer\.freqs_cis"):
        load_checkpoint(tmp_path / "no_table.pth", "cfm", _targets(dims, "cfm"))


def _bigvgan_dir(tiny_dir: pathlib.Path, folder: pathlib.Path, generator: dict) -> pathlib.Path:
    folder.mkdir()
    (folder / "config.json").write_text((tiny_dir / "config.json").read_text())
    torch.save({"generator": generator}, folder / "bigvgan_generator.pt")
    return folder


def test_bigvgan_loads_every_weight_norm_spelling_and_names_anything_else(tiny, loaded, tmp_path):
    paths = tiny
    generator = torch.load(paths["bigvgan"] / "bigvgan_generator.pt", weights_only=True)["generator"]
    stems = [k.removesuffix(".weight_g") for k in generator if k.endswith(".weight_g")]
    # torch's parametrize API names
    parametrized = {k.replace(".weight_g", ".parametrizations.weight.original0")
                    .replace(".weight_v", ".parametrizations.weight.original1"): v for k, v in generator.items()}
    # saved after remove_weight_norm: one folded weight per layer
    folded = {k: v for k, v in generator.items() if not k.endswith((".weight_g", ".weight_v"))}
    for stem in stems:
        folded[stem + ".weight"] = torch._weight_norm(generator[stem + ".weight_v"], generator[stem + ".weight_g"], 0)
    mel = torch.randn(1, loaded["bigvgan"].h["num_mels"], 12, generator=torch.Generator().manual_seed(5)) - 4
    with torch.inference_mode():
        reference = loaded["bigvgan"](mel)
        same = load_bigvgan(_bigvgan_dir(paths["bigvgan"], tmp_path / "parametrized", parametrized))(mel)
        refolded = load_bigvgan(_bigvgan_dir(paths["bigvgan"], tmp_path / "folded", folded))(mel)
    assert torch.equal(same, reference)
    scale = float(reference.abs().max())
    assert scale > 1e-3 and float((refolded - reference).abs().max()) <= 1e-5 * scale

    surprise = dict(folded, **{"conv_pre.surprise": torch.zeros(1)})
    with pytest.raises(CheckpointError, match=r"surprise/bigvgan_generator\.pt does not fit .*conv_pre\.surprise"):
        load_bigvgan(_bigvgan_dir(paths["bigvgan"], tmp_path / "surprise", surprise))


def test_a_fine_tuned_file_with_training_counters_loads(tiny, dims, tmp_path):
    # upstream train_v2.py saves {'net': ..., 'iters': ..., 'epoch': ...}; only 'net' is read
    paths = tiny
    obj = torch.load(paths["ar"], weights_only=True)
    torch.save(dict(obj, iters=1200, epoch=3), tmp_path / "AR_epoch_00003_step_01200.pth")
    load_checkpoint(tmp_path / "AR_epoch_00003_step_01200.pth", "ar", _targets(dims, "ar"))
