"""The Seed-VC golden cases ($SEEDVC_GOLDEN_DIR, default ../shared/golden/seed_vc): discovery, the reduced config
every case was computed with, and SeedVC built from the golden reduced-model state_dicts (strictly) for the e2e and
converter tests."""
import json

import torch

from reference_data import SEEDVC_GOLDEN as GOLDEN
from reference_data import glob_cases, require
from seed_vc.ar import ARDims, ARModel
from seed_vc.bigvgan import BigVGAN
from seed_vc.campplus import CAMPPlus, CAMPPlusDims, remap_campplus_keys
from seed_vc.cfm import CFM
from seed_vc.content import AstralDims, AstralQuantizer, ContentEncoder, build_hubert
from seed_vc.converter import SeedVC
from seed_vc.dit import DiT, DiTDims
from seed_vc.length_regulator import InterpolateRegulator


def cases(pattern: str) -> list:
    """pytest parameters for every golden file matching `pattern` (none: fails under CI=true, skips elsewhere)."""
    return glob_cases(GOLDEN, pattern)


def reduced_config() -> dict:
    """The reduced vc_wrapper.yaml every golden case was computed with (reduced_config.json)."""
    return json.loads(require(GOLDEN / "reduced_config.json").read_text())["vc_wrapper_yaml_equivalent"]


def row_items(inputs: dict, padded: torch.Tensor, lens: torch.Tensor) -> list[str]:
    """For each row of a padded batch, the name of the single-item input ("<name>_16k") it holds."""
    singles = {k.removesuffix("_16k"): v for k, v in inputs.items() if k.endswith("_16k")}
    names = []
    for row, n in enumerate(lens.tolist()):
        found = [name for name, wave in singles.items() if wave.numel() == n and torch.equal(wave, padded[row, :n])]
        assert found, f"batch row {row} is none of the case's single inputs {sorted(singles)}"
        names.append(found[0])
    return names


def _load(name: str) -> dict:
    return torch.load(require(GOLDEN / name), weights_only=True)


def build_golden_seedvc(**options) -> SeedVC:
    cfg = reduced_config()
    est, arc = cfg["cfm"]["estimator"], cfg["ar"]["model"]["config"]
    cfm = CFM(DiT(DiTDims(depth=est["depth"], hidden_dim=est["hidden_dim"], num_heads=est["num_heads"],
                          content_dim=est["content_dim"], style_dim=est["style_encoder_dim"],
                          block_size=est["block_size"])))
    cfm_regulator = InterpolateRegulator(cfg["cfm_length_regulator"]["channels"], 2048, 4)
    ar = ARModel(ARDims(dim=arc["dim"], n_layer=arc["n_layer"], n_head=arc["n_head"],
                        n_local_heads=arc["n_local_heads"], intermediate_size=arc["intermediate_size"]))
    ar_regulator = InterpolateRegulator(cfg["ar_length_regulator"]["channels"], 32, 0)
    g = _load("golden_cfm.pt")["state_dicts"]
    cfm.load_state_dict(g["cfm"], strict=True)
    cfm_regulator.load_state_dict(g["cfm_length_regulator"], strict=True)
    g = _load("golden_ar.pt")["state_dicts"]
    ar.load_state_dict(g["ar"], strict=True)
    ar_regulator.load_state_dict(g["ar_length_regulator"], strict=True)

    content = _load("golden_content.pt")
    wide_cfg = cfg["content_extractor_wide"]
    hubert = build_hubert(content["hubert_config"], wide_cfg["ssl_output_layer"])
    quantizers = []
    for name in ("content_extractor_wide", "content_extractor_narrow"):
        c, sd = cfg[name], content["state_dicts"][name]
        e = c["encoder"]
        q = AstralQuantizer(AstralDims(ssl_dim=e["input_dim"], dim=e["dim"], intermediate_dim=e["intermediate_dim"],
                                       num_blocks=e["num_blocks"], codebook_size=c["quantizer"]["codebook_size"]))
        q.load_state_dict({k: v for k, v in sd.items() if not k.startswith("ssl_model.")}, strict=True)
        quantizers.append(q)
    wide_sd = content["state_dicts"]["content_extractor_wide"]
    hubert.load_state_dict({k.removeprefix("ssl_model."): v for k, v in wide_sd.items()
                            if k.startswith("ssl_model.")}, strict=True)

    se = cfg["style_encoder"]
    campplus = CAMPPlus(CAMPPlusDims(**{k: se[k] for k in ("feat_dim", "embedding_size", "growth_rate", "bn_size",
                                                            "init_channels")}))
    campplus.load_state_dict(remap_campplus_keys(_load("golden_style.pt")["state_dict"]), strict=True)
    voc = _load("golden_vocoder.pt")
    vocoder = BigVGAN(voc["h"])
    vocoder.load_state_dict(voc["state_dict"], strict=True)
    return SeedVC(cfm, cfm_regulator, ar, ar_regulator, ContentEncoder(hubert, *quantizers), campplus, vocoder,
                  **options)
