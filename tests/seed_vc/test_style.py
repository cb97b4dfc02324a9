"""Style encoder (CAMPPlus on mean-normalised kaldi fbank).

Golden cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_style*.pt`
that carries a `state_dict` (random reduced model), and every `golden_style_realweights*.pt`, which needs the real
`campplus_cn_common.bin` (28 MB, not in ../shared and not downloadable here): set SEEDVC_CAMPPLUS_PATH to it,
otherwise those cases are skipped with that reason. A path that is set but missing fails.
"""
import hashlib
import os
import pathlib

import pytest
import torch

from compare import assert_close
from reference_data import case_params
from seed_vc.campplus import CAMPPlus, CAMPPlusDims, compute_style, remap_campplus_keys
from seed_vc.checkpoints import load_checkpoint
from seedvc_golden_models import GOLDEN, cases, reduced_config, row_items


def reduced_campplus() -> CAMPPlus:
    cfg = reduced_config()["style_encoder"]
    return CAMPPlus(CAMPPlusDims(feat_dim=cfg["feat_dim"], embedding_size=cfg["embedding_size"],
                                 growth_rate=cfg["growth_rate"], bn_size=cfg["bn_size"],
                                 init_channels=cfg["init_channels"])).eval()


def random_weight_cases() -> list:
    files = [p for p in GOLDEN.glob("golden_style*.pt") if "realweights" not in p.name] if GOLDEN.is_dir() else []
    return case_params(files, f"golden_style*.pt (random weights) in {GOLDEN}")


@pytest.mark.golden
@pytest.mark.parametrize("path", random_weight_cases())
def test_style_matches_upstream(path):
    g = torch.load(path, weights_only=True)
    model = reduced_campplus()
    model.load_state_dict(remap_campplus_keys(g["state_dict"]), strict=True)
    singles = {}
    for name in (k.removesuffix("_16k") for k in g["inputs"] if k.endswith("_16k")):
        singles[name] = g["outputs"][f"style_{name}"]
        wave = g["inputs"][f"{name}_16k"]
        assert_close(compute_style(model, wave[None]), singles[name], f"style of {name}")
    if "waves_16k_padded" in g["inputs"]:
        # Upstream's padded batch (style_batched_*) reads the padding; ours must give each item's own style.
        padded, lens = g["inputs"]["waves_16k_padded"], g["inputs"]["lens"]
        styles = compute_style(model, padded, lens)
        for row, name in enumerate(row_items(g["inputs"], padded, lens)):
            assert_close(styles[row], singles[name][0], f"batch row {row} ({name})")


@pytest.mark.golden
@pytest.mark.parametrize("path", cases("golden_style_realweights*.pt"))
def test_real_campplus_matches_upstream(path):
    weights = os.environ.get("SEEDVC_CAMPPLUS_PATH")
    if not weights:
        pytest.skip("the real CAMPPlus weights are not part of ../shared: set SEEDVC_CAMPPLUS_PATH to "
                    "campplus_cn_common.bin to run this check")
    assert pathlib.Path(weights).is_file(), f"SEEDVC_CAMPPLUS_PATH={weights} does not exist"
    g = torch.load(path, weights_only=True)
    digest = hashlib.sha256(pathlib.Path(weights).read_bytes()).hexdigest()
    assert digest == g["weights_sha256"], f"{weights} is not the file the golden data used ({g['weights_sha256']})"
    model = CAMPPlus().eval()
    load_checkpoint(weights, "campplus", {"": model})
    styles = {}
    for name in (k.removesuffix("_16k") for k in g["inputs"] if k.endswith("_16k")):
        styles[name] = compute_style(model, g["inputs"][f"{name}_16k"][None])
        assert_close(styles[name], g["outputs"][f"style_{name}"], f"style of {name}")
    if "cosine_ref_src" in g["outputs"]:
        cosine = torch.nn.functional.cosine_similarity(styles["ref"], styles["src"])
        assert abs(float(cosine) - g["outputs"]["cosine_ref_src"]) < 1e-4


def test_style_ignores_padding_content():
    torch.manual_seed(0)
    model = CAMPPlus(CAMPPlusDims(embedding_size=16, growth_rate=4, bn_size=2, init_channels=8)).eval()
    wave = torch.randn(12000) * 0.1
    padded = torch.full((2, 20000), 0.5)  # padding content must not matter
    padded[0, :12000] = wave
    padded[1] = torch.randn(20000) * 0.1
    styles = compute_style(model, padded, torch.tensor([12000, 20000]))
    assert styles.shape == (2, 16)
    assert_close(styles[0], compute_style(model, wave)[0], "padded row")
