"""RMVPE front end, decoder, coarse ids and a small E2E network reproduce upstream's outputs (shared/golden/rvc)."""
import ast
import json
import os
import pathlib

import numpy as np
import pytest
import torch

from rvc.pitch import coarse_f0
from rvc.rmvpe import E2E, MelFrontEnd, decode, pad_frames

GOLDEN_DIR = pathlib.Path(os.environ.get("RVC_GOLDEN_DIR", pathlib.Path(__file__).parents[2] / ".." / "shared" / "golden" / "rvc"))


def _cases(prefix: str) -> list[pathlib.Path]:
    """Files of one kind listed in GOLDEN.json ("golden_rmvpe_frontend.pt" -> every golden_rmvpe_frontend*.pt)."""
    index = GOLDEN_DIR / "GOLDEN.json"
    if not index.is_file():
        return []
    kinds = [k for k in json.loads(index.read_text()) if k.startswith(prefix) and k.endswith(".pt")]
    return sorted({p for k in kinds for p in GOLDEN_DIR.glob(k[: -len(".pt")] + "*.pt")})


def _params(prefix: str):
    cases = _cases(prefix)
    return cases or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {prefix}* golden files in {GOLDEN_DIR}"))]


def _load(path: pathlib.Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.golden
@pytest.mark.parametrize("path", _params("golden_rmvpe_frontend"), ids=lambda p: getattr(p, "name", "none"))
def test_log_mel_matches_upstream(path):
    case = _load(path)["mel"]
    mel = MelFrontEnd()(case["audio_16k"][None])
    assert mel.shape == case["log_mel"].shape
    torch.testing.assert_close(mel, case["log_mel"], atol=1e-5, rtol=0)


@pytest.mark.golden
@pytest.mark.parametrize("path", _params("golden_rmvpe_frontend"), ids=lambda p: getattr(p, "name", "none"))
def test_decode_matches_upstream(path):
    case = _load(path)["decode"]
    f0 = decode(case["salience"].numpy(), case["thred"])
    np.testing.assert_allclose(f0, case["f0"].numpy(), atol=1e-4, rtol=0)
    assert ((f0 == 0) == (case["f0"].numpy() == 0)).all()


@pytest.mark.golden
@pytest.mark.parametrize("path", _params("golden_rmvpe_frontend"), ids=lambda p: getattr(p, "name", "none"))
def test_coarse_ids_match_upstream(path):
    case = _load(path)["coarse"]
    np.testing.assert_array_equal(coarse_f0(case["f0"].numpy()), case["coarse"].numpy())


@pytest.mark.golden
@pytest.mark.parametrize("path", _params("golden_rmvpe_e2e_small"), ids=lambda p: getattr(p, "name", "none"))
def test_small_e2e_network_matches_upstream(path):
    case = _load(path)
    # ctor is recorded as text, e.g. "E2E(n_blocks=1, n_gru=1, kernel_size=(2,2), ...)"
    call = ast.parse(case["ctor"], mode="eval").body
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
    net = E2E(**kwargs).eval()
    net.load_state_dict(case["state_dict"], strict=True)
    n = case["n_frames"]
    mel = case["input_mel_padded"][..., :n]
    with torch.no_grad():
        hidden = net(pad_frames(mel))[:, :n]
    torch.testing.assert_close(hidden, case["hidden"], atol=1e-5, rtol=0)
