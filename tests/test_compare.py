"""The comparison helper lets float32 rounding between CPUs through and stops realistic bugs, shown on real golden
cases: the tensors behind the tests that failed on an AMD EPYC at atol=1e-5 (log-mels and latents of magnitude
5-10, 2e-5..3e-5 apart across CPUs), perturbed as a rounding difference and as bugs would perturb them."""
import math

import numpy as np
import pytest
import torch

from compare import assert_close, assert_equal
from reference_data import RVC_GOLDEN, SEEDVC_GOLDEN, missing
from seed_vc import audio

CPU_ROUNDING = 3e-5  # the largest difference measured between two CPUs on these tensors (absolute)


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _files(directory, pattern):
    files = sorted(directory.glob(pattern)) if directory.is_dir() else []
    if not files:
        missing(f"no {pattern} in {directory}")
    return files


@pytest.fixture(scope="module")
def cross_cpu_tensors() -> list[tuple[str, torch.Tensor]]:
    """(name, expected tensor) for every golden tensor of the kinds that differed across CPUs."""
    tensors = []
    for path in _files(RVC_GOLDEN, "golden_rmvpe_frontend*.pt"):
        tensors.append((f"{path.name} log-mel", _load(path)["mel"]["log_mel"]))
    for path in _files(RVC_GOLDEN, "golden_v*_*.pt"):
        tensors += [(f"{path.name} seeded {k}", _load(path)["outputs"]["seeded"][k]) for k in ("z", "z_p")]
    for path in _files(RVC_GOLDEN, "golden_train_*.pt"):
        tensors.append((f"{path.name} spec", _load(path)["inputs"]["spec"]))
    for path in _files(SEEDVC_GOLDEN, "golden_e2e_*.pt"):
        tensors.append((f"{path.name} prompt mel", _load(path)["outputs"]["solve_euler_calls"][0]["prompt"]))
    for path in _files(SEEDVC_GOLDEN, "golden_audio_frontend*.pt"):
        tensors += [(f"{path.name} {k}", v) for k, v in _load(path)["outputs"].items() if k.startswith("mel_")]
    return tensors


def _log_mels(tensors):
    return [(name, t) for name, t in tensors if "mel" in name]


@pytest.mark.golden
def test_rounding_differences_between_cpus_pass(cross_cpu_tensors):
    rng = torch.Generator().manual_seed(0)
    for name, expected in cross_cpu_tensors:
        noise = (torch.rand(expected.shape, generator=rng) * 2 - 1) * CPU_ROUNDING
        assert_close(expected + noise, expected, name)


@pytest.mark.golden
def test_a_relative_error_of_1e_3_fails(cross_cpu_tensors):
    for name, expected in cross_cpu_tensors:
        with pytest.raises(AssertionError, match="exceeds"):
            assert_close(expected * (1 + 1e-3), expected, name)


@pytest.mark.golden
def test_one_frame_shifted_fails(cross_cpu_tensors):
    """An off-by-one in padding or hop: every frame moved one step later (the first one repeated)."""
    for name, expected in _log_mels(cross_cpu_tensors):
        shifted = torch.cat([expected[..., :1], expected[..., :-1]], dim=-1)
        with pytest.raises(AssertionError, match="exceeds"):
            assert_close(shifted, expected, name)


@pytest.mark.golden
def test_log_of_mel_plus_eps_instead_of_clamp_fails(cross_cpu_tensors):
    """A wrong eps: log(mel + 1e-5) where upstream takes log(max(mel, 1e-5)), a common porting slip."""
    for name, expected in _log_mels(cross_cpu_tensors):
        with pytest.raises(AssertionError, match="exceeds"):
            assert_close(torch.log(expected.exp() + 1e-5), expected, name)


def _mel_matches(wave: torch.Tensor, expected: torch.Tensor) -> bool:
    try:
        assert_close(audio.mel_spectrogram(wave), expected, "log-mel")
    except AssertionError:
        return False
    return True


@pytest.mark.golden
def test_real_front_end_with_a_wrong_floor_eps_fails(monkeypatch):
    """Our Seed-VC log-mel matches the golden waves; with a clamp floor of 1e-3 instead of 1e-5 it does not."""
    for path in _files(SEEDVC_GOLDEN, "golden_audio_frontend*.pt"):
        g = _load(path)
        cases = [(wave, g["outputs"][f"mel_{key.removesuffix('_22k')}"])
                 for key, wave in g["inputs"].items() if key.endswith("_22k")]
        assert all(_mel_matches(wave, mel) for wave, mel in cases)
        with monkeypatch.context() as patched:
            patched.setattr(audio, "MEL_FLOOR", 1e-3)
            assert not any(_mel_matches(wave, mel) for wave, mel in cases), path.name


@pytest.mark.golden
def test_one_changed_token_fails():
    for path in _files(SEEDVC_GOLDEN, "golden_ar*.pt"):
        for key, tokens in _load(path)["outputs"].items():
            if key.startswith("generate_seed"):
                assert_equal(tokens.clone(), tokens, key)
                wrong = tokens.clone()
                wrong[0, wrong.shape[1] // 2] = (wrong[0, wrong.shape[1] // 2] + 1) % 2048
                with pytest.raises(AssertionError, match="1 of .* differ"):
                    assert_equal(wrong, tokens, key)


def test_small_values_in_a_large_tensor_get_the_tensor_s_rounding():
    """A near-zero bin of a log-mel rounds like its neighbours: an elementwise rtol would refuse it."""
    expected = torch.tensor([-9.5, 4.25, 1e-4])
    actual = expected + torch.tensor([2e-5, -2e-5, 3e-5])  # 30 % of the last element, 5e-6 of the scale
    assert_close(actual, expected, "log-mel")
    with pytest.raises(AssertionError, match=r"at \[2\]"):
        assert_close(actual + torch.tensor([0, 0, 1e-2]), expected, "log-mel")


def test_shape_and_non_finite_values_are_refused():
    with pytest.raises(AssertionError, match="shape"):
        assert_close(torch.zeros(3, 2), torch.zeros(2, 3), "mel")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(torch.tensor([1.0, math.nan]), torch.tensor([1.0, 2.0]), "mel")
    with pytest.raises(AssertionError, match="shape"):
        assert_equal(np.arange(3), np.arange(4), "tokens")
