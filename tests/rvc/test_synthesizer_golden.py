"""The synthesizer reproduces upstream RVC's inference outputs on small random-weight models.

Each golden_<variant>.pt holds weights (fp32, with enc_q), fixed inputs, and two reference runs: one with
every noise draw replaced by zeros, and one seeded whose draws were recorded, which we feed back in.
"""
import pytest
import torch

from compare import assert_close
from rvc.synthesizer import Synthesizer, SynthesizerConfig
from rvc_golden import load, params


def _build(case: dict) -> Synthesizer:
    """Build like RVC's get_vc: the class from the config list, load the full state_dict, drop enc_q."""
    version = "v1" if "256" in case["class"] else "v2"
    net = Synthesizer(SynthesizerConfig.from_list(case["config_list"]), version, f0=not case["class"].endswith("_nono"))
    net.load_state_dict(case["state_dict"])
    del net.enc_q
    return net.eval()


def _infer(net: Synthesizer, inputs: dict, z_noise: torch.Tensor, source_noise: torch.Tensor | None):
    pitch = {"pitch": inputs["pitch"], "pitchf": inputs["pitchf"]} if net.f0 else {}
    with torch.no_grad():
        return net.infer(inputs["phone"], inputs["phone_lengths"], inputs["sid"], **pitch,
                         z_noise=z_noise, source_noise=source_noise)


def _assert_outputs(out, expected: dict) -> None:
    for name, ref in expected.items():
        assert_close(getattr(out, name), ref, name)


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_<variant>.pt"))
def test_zero_noise_inference_matches_upstream(path):
    case = load(path)
    net = _build(case)
    expected = case["outputs"]["zero_noise"]
    source = torch.zeros_like(expected["har_source"]) if net.f0 else None
    out = _infer(net, case["inputs"], torch.zeros_like(expected["m_p"]), source)
    _assert_outputs(out, expected)
    assert out.audio.shape == (1, 1, case["inputs"]["phone"].shape[1] * net.config.hop_length)


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_<variant>.pt"))
def test_seeded_inference_replays_recorded_noise(path):
    case = load(path)
    net = _build(case)
    # Gaussian draws in upstream order: the prior sample, then (f0 models) the NSF source noise.
    # SineGen's rand() draw only advances the RNG: it sets the overtones' phase and RVC has none.
    gaussian = [d["value"] for d in case["seeded_noise_draws"] if d["fn"] == "randn_like"]
    assert len(gaussian) == (2 if net.f0 else 1)
    out = _infer(net, case["inputs"], gaussian[0], gaussian[1] if net.f0 else None)
    _assert_outputs(out, case["outputs"]["seeded"])


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_<variant>.pt")[:1])
def test_default_noise_is_random_and_bounded(path):
    case = load(path)
    net = _build(case)
    inputs = case["inputs"]
    pitch = {"pitch": inputs["pitch"], "pitchf": inputs["pitchf"]} if net.f0 else {}
    with torch.no_grad():
        a = net.infer(inputs["phone"], inputs["phone_lengths"], inputs["sid"], **pitch).audio
        b = net.infer(inputs["phone"], inputs["phone_lengths"], inputs["sid"], **pitch).audio
    assert not torch.equal(a, b)
    assert a.abs().max() <= 1.0
