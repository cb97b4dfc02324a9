"""Random-weight Seed-VC V2 checkpoints in the official on-disk layouts, for tests and offline development.

Public:
    load_dims(path) -> dict                       # a dims override file such as configs/seed_vc_tiny.yaml
    build_modules(dims=None) -> {name: nn.Module} # random weights; release sizes overridden by `dims` sections
    build_tiny(paths, dims, seed=0) -> None       # writes every file/dir named in `paths`
`dims` sections: dit (DiTDims), ar (ARDims), astral (AstralDims), hubert (HubertConfig fields), hubert_layers (int),
campplus (CAMPPlusDims), bigvgan (config.json fields). The regulators take their widths from dit.content_dim and
ar.dim. Path keys: cfm, ar, bsq32, bsq2048 (files), hubert (dir), campplus (file), bigvgan (dir).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import yaml
from transformers import HubertConfig, HubertModel

from .ar import ARDims, ARModel
from .bigvgan import RELEASE_BIGVGAN_CONFIG, BigVGAN
from .campplus import CAMPPlus, CAMPPlusDims
from .cfm import CFM
from .content import HUBERT_PREPROCESSOR_CONFIG, RELEASE_HUBERT_CONFIG, AstralDims, AstralQuantizer
from .dit import DiT, DiTDims
from .length_regulator import InterpolateRegulator

PATH_KEYS = ("cfm", "ar", "bsq32", "bsq2048", "hubert", "campplus", "bigvgan")
CFM_REGULATOR_BLOCKS = 4  # [Conv1d, GroupNorm, Mish] blocks of the CFM regulator; the AR one has none


def load_dims(path: str | Path) -> dict:
    """Read a dims override file (YAML mapping of the sections listed in the module docstring)."""
    dims = yaml.safe_load(Path(path).read_text()) or {}
    unknown = set(dims) - {"dit", "ar", "astral", "hubert", "hubert_layers", "campplus", "bigvgan"}
    if unknown:
        raise ValueError(f"{path}: unknown dims sections {sorted(unknown)}")
    return dims


def build_modules(dims: dict | None = None) -> dict[str, nn.Module]:
    """Every component with random weights: cfm, cfm_length_regulator, ar, ar_length_regulator, bsq2048, bsq32,
    hubert (all its layers, as stored on disk), campplus, bigvgan."""
    dims = dims or {}
    dit, ar = DiTDims(**dims.get("dit", {})), ARDims(**dims.get("ar", {}))
    astral = dims.get("astral", {})
    return {
        "cfm": CFM(DiT(dit)),
        "cfm_length_regulator": InterpolateRegulator(dit.content_dim, 2048, CFM_REGULATOR_BLOCKS),
        "ar": ARModel(ar),
        "ar_length_regulator": InterpolateRegulator(ar.dim, 32, 0),
        "bsq2048": AstralQuantizer(AstralDims(**astral, codebook_size=2048)),
        "bsq32": AstralQuantizer(AstralDims(**astral, codebook_size=32)),
        "hubert": HubertModel(HubertConfig(**(RELEASE_HUBERT_CONFIG | dims.get("hubert", {})))),
        "campplus": CAMPPlus(CAMPPlusDims(**dims.get("campplus", {}))),
        "bigvgan": BigVGAN(RELEASE_BIGVGAN_CONFIG | dims.get("bigvgan", {})),
    }


def _legacy_weight_norm_names(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """HuBERT's released pytorch_model.bin predates parametrizations: pos_conv weight norm is weight_g/weight_v."""
    names = {"parametrizations.weight.original0": "weight_g", "parametrizations.weight.original1": "weight_v"}
    out = {}
    for key, value in state_dict.items():
        for new, old in names.items():
            key = key.replace(new, old)
        out[key] = value
    return out


def training_only_extras(kind: str, dims: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under the names of the training-only modules the released file of `kind` carries.

    The names match seed_vc.checkpoints.TRAINING_ONLY, so every tiny run goes through the loader's handling of the
    real layout. Shapes follow upstream's training modules: the DiT's long skip Linear(hidden + mel, hidden) and
    content-mask Embedding(1, hidden) (Plachtaa/seed-vc modules/diffusion_transformer.py); for the AR only the
    prefixes are documented, so the codebook-head names under `model.codebook_` are representative, and its
    `style_in` is taken as Linear(style, dim) like the DiT's.
    """
    dit, ar = DiTDims(**dims.get("dit", {})), ARDims(**dims.get("ar", {}))
    g = torch.Generator().manual_seed(seed + 1)

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g) * 0.02

    if kind == "cfm":
        d = dit.hidden_dim
        return {"estimator.skip_linear.weight": rand(d, d + dit.in_channels), "estimator.skip_linear.bias": rand(d),
                "estimator.content_mask_embedder.weight": rand(1, d)}
    if kind == "ar":
        return {"model.codebook_embeddings.weight": rand(ar.vocab_size, ar.dim),
                "model.codebook_output.weight": rand(ar.vocab_size, ar.dim),
                "style_in.weight": rand(ar.dim, dit.style_dim), "style_in.bias": rand(ar.dim)}
    raise ValueError(f"only the cfm and ar files carry training-only extras, not {kind!r}")


def build_tiny(paths: dict[str, Path], dims: dict, seed: int = 0) -> None:
    """Write random-weight files for every key of `paths` in the official container layouts.

    cfm: {'net': {'cfm', 'length_regulator'}} with `module.`-prefixed cfm keys, the bf16 rotary table and the
    released training-only extras (training_only_extras), without the 8192^2-style causal_mask buffer, which
    inference never reads and the loader accepts either way; ar: {'net': {'ar', 'length_regulator'}} with its
    training-only extras; bsq32/bsq2048: flat;
    campplus: flat with the released `xvector.dense.*` names; hubert: transformers dir with config.json,
    preprocessor_config.json, pytorch_model.bin; bigvgan: config.json + bigvgan_generator.pt {'generator'}.
    """
    unknown = set(paths) - set(PATH_KEYS)
    if unknown:
        raise ValueError(f"unknown path keys {sorted(unknown)}; expected a subset of {PATH_KEYS}")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        modules = build_modules(dims)
    for key, target in paths.items():
        target = Path(target)
        (target if key in ("hubert", "bigvgan") else target.parent).mkdir(parents=True, exist_ok=True)
        if key in ("cfm", "ar"):
            main = {k: v for k, v in modules[key].state_dict().items() if not k.endswith("causal_mask")}
            main |= training_only_extras(key, dims, seed)
            if key == "cfm":  # the released net.cfm keys carry the `module.` prefix of a distributed-training wrapper
                main = {"module." + k: v for k, v in main.items()}
            torch.save({"net": {key: main, "length_regulator": modules[f"{key}_length_regulator"].state_dict()}},
                       target)
        elif key in ("bsq32", "bsq2048"):
            torch.save(modules[key].state_dict(), target)
        elif key == "campplus":
            sd = {("xvector." + k if k.startswith("dense.") else k): v for k, v in modules[key].state_dict().items()}
            torch.save(sd, target)
        elif key == "hubert":
            config = modules[key].config.to_dict() | {"architectures": ["HubertModel"]}
            (target / "config.json").write_text(json.dumps(config, indent=2))
            (target / "preprocessor_config.json").write_text(json.dumps(HUBERT_PREPROCESSOR_CONFIG, indent=2))
            torch.save(_legacy_weight_norm_names(modules[key].state_dict()), target / "pytorch_model.bin")
        else:
            (target / "config.json").write_text(json.dumps(modules[key].h, indent=2))
            torch.save({"generator": modules[key].state_dict()}, target / "bigvgan_generator.pt")
