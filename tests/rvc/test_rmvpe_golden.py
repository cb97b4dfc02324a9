"""RMVPE front end, decoder, coarse ids and a small E2E network reproduce upstream's outputs (shared/golden/rvc)."""
import ast

import pytest
import torch

from compare import assert_close, assert_equal
from rvc.pitch import coarse_f0
from rvc import rmvpe
from rvc.rmvpe import E2E, MelFrontEnd, decode, pad_frames
from rvc_golden import load, params


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_rmvpe_frontend.pt"))
def test_log_mel_matches_upstream(path):
    case = load(path)["mel"]
    p = case["params"]  # RMVPE's front end is fixed: a case must use the settings the network was trained on
    assert (p["sr"], p["n_fft"], p["win_length"], p["hop_length"], p["n_mels"], p["fmin"], p["fmax"]) == \
        (rmvpe.SAMPLE_RATE, rmvpe.N_FFT, rmvpe.N_FFT, rmvpe.HOP, rmvpe.N_MELS, rmvpe.FMIN, rmvpe.FMAX)
    mel = MelFrontEnd()(case["audio_16k"][None])
    assert_close(mel, case["log_mel"], "log-mel")


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_rmvpe_frontend.pt"))
def test_decode_matches_upstream(path):
    case = load(path)["decode"]
    f0 = decode(case["salience"].numpy(), case["thred"])
    assert_equal(f0 == 0, case["f0"].numpy() == 0, "unvoiced frames")
    assert_close(f0, case["f0"], "f0 (Hz)")


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_rmvpe_frontend.pt"))
def test_coarse_ids_match_upstream(path):
    case = load(path)["coarse"]
    assert_equal(coarse_f0(case["f0"].numpy()), case["coarse"], "coarse f0 ids")


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_rmvpe_e2e_small.pt"))
def test_small_e2e_network_matches_upstream(path):
    case = load(path)
    # ctor is recorded as text, e.g. "E2E(n_blocks=1, n_gru=1, kernel_size=(2,2), ...)"
    call = ast.parse(case["ctor"], mode="eval").body
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    net = E2E(**kwargs).eval()
    net.load_state_dict(case["state_dict"], strict=True)
    n = case["n_frames"]
    mel = case["input_mel_padded"][..., :n]
    with torch.no_grad():
        hidden = net(pad_frames(mel))[:, :n]
    assert_close(hidden, case["hidden"], "E2E hidden (salience)")
