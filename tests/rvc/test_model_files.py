"""RVC model files: the shared voice .pth loads strictly and converts like upstream, our saver writes exactly
the published format, and files that are not voice models are refused with a message that says what to do."""
import functools
import json

import pytest
import torch

from compare import assert_close
from reference_data import SHARED, glob_cases
from rvc.discriminator import MultiPeriodDiscriminator
from rvc.model_file import (ModelFileError, checkpoint_format, extract_model, load_checkpoint, load_model, read_model,
                            save_checkpoint, save_model, shared_model_dict)
from rvc.synthesizer import Synthesizer, SynthesizerConfig, release_config
from rvc_golden import golden_for, load, one_of, params, variant_of, version_and_f0


@pytest.fixture(params=glob_cases(SHARED / "manifests" / "rvc", "v*_*k_*f0.json"))
def manifest(request) -> dict:
    return json.loads(request.param.read_text())


def _sr_hz(raw: dict) -> int:
    """The file's own sample rate: RVC writes '40k', Applio 40000."""
    sr = str(raw["sr"])
    return int(sr.removesuffix("k")) * 1000 if sr.endswith("k") else int(sr)


def _variant(manifest: dict) -> tuple[str, str, bool]:
    version, sr, f0 = manifest["variant"].split("_")
    return version, sr, f0 == "f0"


def _on_meta(build):
    with torch.device("meta"):  # shapes and dtypes without allocating or initialising weights
        return build()


def _zeroed(net: torch.nn.Module) -> torch.nn.Module:
    """A meta-built network made real with zero weights: `to_empty` leaves whatever memory held, NaN included,
    which a loader rightly refuses as a broken model."""
    net = net.to_empty(device="cpu")
    with torch.no_grad():
        for tensor in net.state_dict().values():
            tensor.zero_()
    return net


@functools.lru_cache(maxsize=None)
def _meta_synthesizer(version: str, sr: str, f0: bool) -> Synthesizer:
    return _on_meta(lambda: Synthesizer(release_config(version, sr), version, f0))


def _zero_noise_audio(net: Synthesizer, case: dict) -> torch.Tensor:
    inputs, expected = case["inputs"], case["outputs"]["zero_noise"]
    pitch = {"pitch": inputs["pitch"], "pitchf": inputs["pitchf"]} if net.f0 else {}
    source = torch.zeros_like(expected["har_source"]) if net.f0 else None
    with torch.no_grad():
        return net.infer(inputs["phone"], inputs["phone_lengths"], inputs["sid"], **pitch,
                         z_noise=torch.zeros_like(expected["m_p"]), source_noise=source).audio


# --- the published shared files ---------------------------------------------------------------------------

@pytest.mark.golden
@pytest.mark.parametrize("path", params("mini_<variant>.pth"))
def test_shared_model_file_loads_and_reproduces_upstream(path):
    raw = torch.load(path, weights_only=True)
    model = load_model(path)
    assert (model.version, model.f0) == version_and_f0(variant_of(path))
    assert model.sr == _sr_hz(raw) == raw["config"][-1]
    assert model.info == raw["info"] and model.metadata == {}
    assert model.config.spk_embed_dim == model.weights["emb_g.weight"].shape[0]
    assert not hasattr(model.net, "enc_q")
    case = load(golden_for(variant_of(path)))
    assert_close(_zero_noise_audio(model.net, case), case["outputs"]["zero_noise"]["audio"], "audio")


@pytest.mark.golden
@pytest.mark.parametrize("path", params("mini_<variant>.pth"))
def test_applio_flavoured_file_loads(path, tmp_path):
    """Applio writes sr as an int, f0 as a bool, no info, extra metadata and sometimes parametrization names."""
    raw = torch.load(path, weights_only=True)
    weight = {k.replace(".weight_g", ".parametrizations.weight.original0")
               .replace(".weight_v", ".parametrizations.weight.original1"): v for k, v in raw["weight"].items()}
    applio = {"weight": weight, "config": raw["config"], "epoch": 3, "step": 30, "sr": _sr_hz(raw),
              "f0": bool(raw["f0"]), "version": raw["version"], "model_name": "x", "author": None,
              "embedder_model": "contentvec", "speakers_id": 1, "vocoder": "HiFi-GAN"}
    torch.save(applio, tmp_path / "applio.pth")
    model = load_model(tmp_path / "applio.pth")
    assert model.f0 == bool(raw["f0"]) and model.sr == _sr_hz(raw) and model.info == ""
    assert model.metadata["embedder_model"] == "contentvec" and model.metadata["epoch"] == 3
    case = load(golden_for(variant_of(path)))
    assert_close(_zero_noise_audio(model.net, case), case["outputs"]["zero_noise"]["audio"], "audio")


@pytest.mark.golden
def test_defaults_when_version_and_f0_are_absent(tmp_path):
    """Files from before v2 carry neither key: RVC reads them as v1 with pitch guidance."""
    raw = torch.load(one_of("mini_<variant>.pth", "v1_f0"), weights_only=True)
    del raw["version"], raw["f0"]
    torch.save(raw, tmp_path / "old.pth")
    model = read_model(tmp_path / "old.pth")
    assert (model.version, model.f0) == ("v1", True)


# --- manifests: our modules have exactly the upstream keys, shapes and parameter order ---------------------

def test_release_synthesizer_matches_manifest(manifest):
    version, sr, f0 = _variant(manifest)
    config = release_config(version, sr)
    assert config.to_list() == manifest["inference_pth"]["top_level"]["config"]
    g = manifest["G_checkpoint"]
    net = _meta_synthesizer(version, sr, f0)
    assert [(k, list(v.shape), str(v.dtype)[6:]) for k, v in net.state_dict().items()] == \
        [(e["key"], e["shape"], e["dtype"]) for e in g["model"]]
    assert [name for name, _ in net.named_parameters()] == g["parameters_order_for_optimizer_state"]
    assert sum(p.numel() for p in net.parameters()) == g["n_params"]


def test_discriminator_matches_manifest(manifest):
    version, _, _ = _variant(manifest)
    d = manifest["D_checkpoint"]
    mpd = _on_meta(lambda: MultiPeriodDiscriminator(version))
    assert [(k, list(v.shape), str(v.dtype)[6:]) for k, v in mpd.state_dict().items()] == \
        [(e["key"], e["shape"], e["dtype"]) for e in d["model"]]
    assert sum(p.numel() for p in mpd.parameters()) == d["n_params"]


def test_shared_format_matches_manifest(manifest):
    version, sr, f0 = _variant(manifest)
    net = _meta_synthesizer(version, sr, f0)
    shared = shared_model_dict(net.state_dict(), net.config, version, f0, info="20epoch")
    top = manifest["inference_pth"]["top_level"]
    assert list(shared) == ["weight", "config", "info", "sr", "f0", "version"]
    assert shared["config"] == top["config"] and shared["info"] == "20epoch"
    assert shared["sr"] == sr and type(shared["f0"]) is int and shared["f0"] == int(f0) and shared["version"] == version
    assert [(k, list(v.shape), str(v.dtype)[6:]) for k, v in shared["weight"].items()] == \
        [(e["key"], e["shape"], e["dtype"]) for e in manifest["inference_pth"]["weight"]]


@pytest.mark.parametrize("name", ["v2_40k_f0", "v1_48k_nof0"])
def test_saved_file_read_back_raw_matches_manifest(name, tmp_path, shared_dir):
    manifest = json.loads((shared_dir / "manifests" / "rvc" / f"{name}.json").read_text())
    version, sr, f0 = _variant(manifest)
    net = _zeroed(_on_meta(lambda: Synthesizer(release_config(version, sr), version, f0)))
    save_model(tmp_path / "voice.pth", net, info="20epoch")
    raw = torch.load(tmp_path / "voice.pth", weights_only=True)
    assert list(raw) == ["weight", "config", "info", "sr", "f0", "version"]
    assert raw["config"] == manifest["inference_pth"]["top_level"]["config"]
    assert (raw["info"], raw["sr"], raw["f0"], raw["version"]) == ("20epoch", sr, int(f0), version)
    assert type(raw["f0"]) is int and type(raw["sr"]) is str
    assert [(k, list(v.shape), str(v.dtype)[6:]) for k, v in raw["weight"].items()] == \
        [(e["key"], e["shape"], e["dtype"]) for e in manifest["inference_pth"]["weight"]]


# --- round trips ------------------------------------------------------------------------------------------

@pytest.mark.golden
@pytest.mark.parametrize("path", params("mini_<variant>.pth"))
def test_save_then_load_round_trip(path, tmp_path):
    model = load_model(path)
    save_model(tmp_path / "again.pth", model.net, info=model.info)
    original, saved = torch.load(path, weights_only=True), torch.load(tmp_path / "again.pth", weights_only=True)
    assert saved.keys() == original.keys()
    assert {k: v for k, v in saved.items() if k != "weight"} == {k: v for k, v in original.items() if k != "weight"}
    assert list(saved["weight"]) == list(original["weight"])
    assert all(torch.equal(saved["weight"][k], v) for k, v in original["weight"].items())


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_<variant>.pt")[:1])
def test_training_checkpoint_round_trip_resumes_optimizer(path, tmp_path):
    case = load(path)
    version, f0 = version_and_f0(variant_of(path))
    config = SynthesizerConfig.from_list(case["config_list"])
    net = Synthesizer(config, version, f0)
    net.load_state_dict(case["state_dict"])
    opt = torch.optim.AdamW(net.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    sum(p.square().sum() for p in net.parameters()).backward()
    opt.step()
    save_checkpoint(tmp_path / "G_7.pth", net, opt, 1e-4, 7)
    raw = torch.load(tmp_path / "G_7.pth", weights_only=True)
    assert list(raw) == ["model", "iteration", "optimizer", "learning_rate"]
    assert any(k.startswith("enc_q.") for k in raw["model"]) and raw["model"]["emb_g.weight"].dtype == torch.float32

    fresh = Synthesizer(config, version, f0)
    fresh_opt = torch.optim.AdamW(fresh.parameters(), 1e-4, betas=(0.8, 0.99), eps=1e-9)
    assert load_checkpoint(tmp_path / "G_7.pth", fresh, fresh_opt) == (7, 1e-4)
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), fresh.state_dict().values()))
    assert torch.equal(fresh_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])

    with pytest.raises(ModelFileError, match="extract_model"):
        read_model(tmp_path / "G_7.pth")


def test_extract_model_from_generator_checkpoint(tmp_path, shared_dir):
    manifest = json.loads((shared_dir / "manifests" / "rvc" / "v2_32k_nof0.json").read_text())
    config = release_config("v2", "32k")
    net = _zeroed(_on_meta(lambda: Synthesizer(config, "v2", False)))
    torch.save({"model": net.state_dict(), "iteration": 5, "optimizer": {}, "learning_rate": 1e-4},
               tmp_path / "G_2333333.pth")
    with pytest.raises(ModelFileError, match="weights do not match.*missing"):
        extract_model(tmp_path / "G_2333333.pth", tmp_path / "wrong.pth", sr="32k", f0=1, version="v2")
    model = extract_model(tmp_path / "G_2333333.pth", tmp_path / "voice.pth", sr="32k", f0=0, version="v2")
    assert (model.version, model.f0, model.sr, model.info) == ("v2", False, 32000, "Extracted model.")
    raw = torch.load(tmp_path / "voice.pth", weights_only=True)
    assert raw["config"] == manifest["inference_pth"]["top_level"]["config"] and raw["sr"] == "32k"
    assert [(k, str(v.dtype)) for k, v in raw["weight"].items()] == \
        [(e["key"], "torch.float16") for e in manifest["inference_pth"]["weight"]]


def _manifest_shapes(entries: list[dict]) -> dict[str, torch.Tensor]:
    return {e["key"]: torch.empty(e["shape"], device="meta") for e in entries}


def test_a_checkpoints_format_is_read_from_its_weights(manifest):
    """Sample rate, f0 and version of every released G_ layout come from the shapes alone, as the studio's
    checkpoint upload needs them (nobody has to know them)."""
    assert checkpoint_format(_manifest_shapes(manifest["G_checkpoint"]["model"])) == _variant(manifest)


def test_a_format_the_weights_do_not_tell_is_refused_not_guessed(shared_dir):
    # v1 32k and 48k decoders without pitch differ only in a stride, which no weight shows; a G_ file tells them
    # apart by its posterior encoder, a bare inference state_dict cannot
    for rate in ("32k", "48k"):
        manifest = json.loads((shared_dir / "manifests" / "rvc" / f"v1_{rate}_nof0.json").read_text())
        with pytest.raises(ModelFileError, match="cannot tell the sample rate.*fits 32k and 48k alike"):
            checkpoint_format(_manifest_shapes(manifest["inference_pth"]["weight"]))
    state = _manifest_shapes(manifest["G_checkpoint"]["model"])
    state["enc_p.emb_phone.weight"] = torch.empty(192, 512, device="meta")
    with pytest.raises(ModelFileError, match="cannot tell the RVC version: the content embedding is 512 wide"):
        checkpoint_format(state)


def test_extract_model_reads_the_format_when_not_given(tmp_path, shared_dir):
    manifest = json.loads((shared_dir / "manifests" / "rvc" / "v1_48k_f0.json").read_text())
    net = _zeroed(_on_meta(lambda: Synthesizer(release_config("v1", "48k"), "v1", True)))
    torch.save({"model": net.state_dict(), "iteration": 5, "optimizer": {}, "learning_rate": 1e-4},
               tmp_path / "G_5.pth")
    model = extract_model(tmp_path / "G_5.pth", tmp_path / "voice.pth")
    assert (model.version, model.f0, model.sr) == ("v1", True, 48000)
    assert torch.load(tmp_path / "voice.pth", weights_only=True)["config"] == \
        manifest["inference_pth"]["top_level"]["config"]

    # the one pair no key shape tells apart (v1 without pitch at 32k and 48k): a wrong given rate is refused
    net = _zeroed(_on_meta(lambda: Synthesizer(release_config("v1", "48k"), "v1", False)))
    torch.save({"model": net.state_dict()}, tmp_path / "G_6.pth")
    with pytest.raises(ModelFileError, match="G_6.pth: the weights are not a v1 model at 32k"):
        extract_model(tmp_path / "G_6.pth", tmp_path / "wrong.pth", sr="32k", f0=0, version="v1")
    assert extract_model(tmp_path / "G_6.pth", tmp_path / "right.pth").sr == 48000


# --- refusals ---------------------------------------------------------------------------------------------

def test_corrupt_file_is_refused(tmp_path):
    (tmp_path / "broken.pth").write_bytes(b"this is not a torch file")
    with pytest.raises(ModelFileError, match="broken.pth: not a readable PyTorch checkpoint"):
        load_model(tmp_path / "broken.pth")
    with pytest.raises(ModelFileError, match="no such file"):
        load_model(tmp_path / "missing.pth")


def test_discriminator_checkpoint_is_refused(tmp_path):
    torch.save({"model": {"discriminators.0.convs.0.bias": torch.zeros(16)}, "iteration": 1,
                "optimizer": {}, "learning_rate": 1e-4}, tmp_path / "D_100.pth")
    with pytest.raises(ModelFileError, match="discriminator training checkpoint"):
        load_model(tmp_path / "D_100.pth")


@pytest.mark.golden
@pytest.mark.parametrize("vocoder", ["RefineGAN", "MRF HiFi-GAN"])
def test_other_vocoders_are_refused(vocoder, tmp_path):
    raw = torch.load(one_of("mini_<variant>.pth"), weights_only=True)
    torch.save({**raw, "vocoder": vocoder}, tmp_path / "applio.pth")
    with pytest.raises(ModelFileError, match=vocoder):
        load_model(tmp_path / "applio.pth")


@pytest.mark.golden
def test_mismatched_weights_name_the_keys(tmp_path):
    raw = torch.load(one_of("mini_<variant>.pth", "v2_f0"), weights_only=True)
    del raw["weight"]["dec.conv_post.weight"]
    raw["weight"]["enc_p.emb_phone.weight"] = raw["weight"]["enc_p.emb_phone.weight"][:, :256]
    torch.save(raw, tmp_path / "bad.pth")
    with pytest.raises(ModelFileError, match=r"bad.pth.*missing \(1\): dec.conv_post.weight.*wrong shape.*emb_phone"):
        load_model(tmp_path / "bad.pth")


@pytest.mark.golden
def test_v1_model_refuses_768_dim_features():
    model = load_model(one_of("mini_<variant>.pth", "v1_f0"))
    with pytest.raises(ValueError, match="v1 model expects 256-dim"):
        model.net.infer(torch.zeros(1, 10, 768), torch.tensor([10]), torch.tensor([0]),
                        torch.ones(1, 10, dtype=torch.long), torch.full((1, 10), 100.0))


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory):
    from rvc.tiny import build_tiny, tiny_dims

    path = tmp_path_factory.mktemp("tiny_voice") / "voice.pth"
    build_tiny({"voice": path}, tiny_dims())
    return torch.load(path, weights_only=True)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_model_with_non_finite_weights_is_refused_naming_the_file(tiny_voice, bad, tmp_path):
    """Training that diverged leaves NaN weights; such a voice converts anything to a full-scale DC wave."""
    weight = dict(tiny_voice["weight"])
    weight["dec.conv_post.weight"] = weight["dec.conv_post.weight"].clone()
    weight["dec.conv_post.weight"][0, 0, 3] = bad
    torch.save({**tiny_voice, "weight": weight}, tmp_path / "diverged.pth")
    with pytest.raises(ModelFileError, match=r"diverged.pth: 1 weight tensor\(s\) hold NaN or infinite values "
                                             r"\(dec.conv_post.weight\)"):
        read_model(tmp_path / "diverged.pth")


@pytest.mark.parametrize("rate", [0, -40000, 10 ** 12, 16000, 44100])
def test_a_sample_rate_rvc_does_not_use_is_refused(tiny_voice, rate, tmp_path):
    config = list(tiny_voice["config"])
    config[-1] = rate  # what RVC trusts over the "sr" key
    torch.save({**tiny_voice, "config": config, "sr": rate}, tmp_path / "odd.pth")
    with pytest.raises(ModelFileError, match=f"odd.pth: sample rate {rate} Hz is not an RVC rate; RVC voices are "
                                             "32000, 40000, 48000 Hz"):
        read_model(tmp_path / "odd.pth")
