"""Strict loading of the official Seed-VC V2 checkpoint files, each in its own container layout.

Public:
    CheckpointError(RuntimeError)
    read_checkpoint(path, kind) -> {section: state_dict}   # kind: "cfm" | "ar" | "bsq" | "campplus" | "bigvgan"
    load_strict(module, state_dict, file, optional=()) -> None
    restore_weight_norm(state_dict, expected_keys) -> state_dict     # parametrizations / folded -> weight_g, weight_v
    load_checkpoint(path, kind, modules: {section: nn.Module}) -> None    # drop TRAINING_ONLY, then load_strict
    UNUSED_KEYS: {(kind, section): names}             # module keys a file may lack or hold
    TRAINING_ONLY: {(kind, section): patterns}        # extra modules of the released files, dropped and logged
Containers: cfm_small.pth -> ['net']['cfm'] / ['net']['length_regulator'], ar_base.pth -> ['net']['ar'] /
['net']['length_regulator'] (keys may carry a `module.` prefix); bsq*_light.pth flat; campplus .bin flat with
`xvector.dense.*` -> `dense.*`; bigvgan_generator.pt -> ['generator']. Flat files come back as section "".
HuBERT is a transformers directory: see content.load_hubert.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn as nn

from .campplus import remap_campplus_keys

SECTIONS = {"cfm": ("cfm", "length_regulator"), "ar": ("ar", "length_regulator")}

# Keys of upstream's modules that a file may or may not hold (upstream loads these files with strict=False, so
# both happen) and that inference never needs from the file. Named one by one: a key listed here is copied when
# file and module both have it, dropped when only the file has it, and left at the module's own value when only
# the module has it. The DiT's `estimator.transformer.freqs_cis` is deliberately NOT here: it must come from the
# file (bf16, the rounding the weights were trained under) and is used as stored.
UNUSED_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cfm", "cfm"): (
        "estimator.transformer.causal_mask",  # 8192^2 bool, a function of the config
        "estimator.x_embedder.weight_g",  # training-only weight-norm input embedder
        "estimator.x_embedder.weight_v",
        "estimator.x_embedder.bias",
    ),
    ("cfm", "length_regulator"): ("mask_token",),
    ("ar", "ar"): ("model.freqs_cis", "model.causal_mask"),  # non-persistent upstream; tolerated if saved
    ("ar", "length_regulator"): ("mask_token",),
}

# Training-only modules that the released files carry beyond upstream's inference modules (the trained DiT had a
# long skip and a content-mask embedding, the trained AR a second codebook head and a style input); inference
# never reads them, so they are dropped, each load logging once what it dropped. Patterns are exact names or
# prefixes ending in "." or "_", matched against the keys after `module.` stripping. Anything else the module
# lacks is refused. Source: the independent port ling0322/libwaifu tools/seed_vc_exporter.py, which reads the
# real v2/cfm_small.pth and v2/ar_base.pth and drops exactly these.
TRAINING_ONLY: dict[tuple[str, str], tuple[str, ...]] = {
    ("cfm", "cfm"): ("estimator.skip_linear.", "estimator.content_mask_embedder."),
    ("ar", "ar"): ("model.codebook_", "style_in."),
}

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint file whose layout, keys or shapes do not match the module that should receive it."""


def _strip_module_prefix(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def read_checkpoint(path: str | Path, kind: str) -> dict[str, dict[str, torch.Tensor]]:
    """Open one official file and return its state_dicts by section, unwrapped and renamed as upstream does."""
    path = Path(path)
    obj = torch.load(path, map_location="cpu", weights_only=True)
    if kind in SECTIONS:
        net = obj.get("net") if isinstance(obj, dict) else None
        if not isinstance(net, dict) or not all(s in net for s in SECTIONS[kind]):
            top = list(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
            raise CheckpointError(f"{path}: expected ['net'] with sections {list(SECTIONS[kind])}, found {top}")
        return {s: _strip_module_prefix(net[s]) for s in SECTIONS[kind]}
    if kind == "bigvgan":
        if not isinstance(obj, dict) or "generator" not in obj:
            raise CheckpointError(f"{path}: expected a dict with 'generator', found {list(obj)[:8]}")
        return {"": obj["generator"]}
    if kind in ("bsq", "campplus"):
        if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise CheckpointError(f"{path}: expected a flat state_dict of tensors")
        return {"": remap_campplus_keys(obj) if kind == "campplus" else obj}
    raise ValueError(f"unknown checkpoint kind {kind!r}; expected one of cfm, ar, bsq, campplus, bigvgan")


def load_strict(module: nn.Module, state_dict: dict[str, torch.Tensor], file: str | Path,
                optional: Iterable[str] = ()) -> None:
    """Load `state_dict` into `module`, requiring every key and shape to match except the named `optional` keys.

    Raises CheckpointError naming `file` with the missing keys, unexpected keys and wrong shapes (first 20 each).
    Values are cast to each target tensor's dtype by load_state_dict.
    """
    optional = set(optional)
    own = module.state_dict()
    missing = sorted(set(own) - set(state_dict) - optional)
    unexpected = sorted(set(state_dict) - set(own) - optional)
    shapes = sorted(f"{k}: file {tuple(state_dict[k].shape)} vs module {tuple(own[k].shape)}"
                    for k in set(own) & set(state_dict) if state_dict[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = [f"{name} ({len(keys)}): {keys[:20]}" for name, keys in
                 (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)) if keys]
        raise CheckpointError(f"{file} does not fit {type(module).__name__}: " + "; ".join(parts))
    full = {k: state_dict[k] if k in state_dict else v for k, v in own.items()}
    module.load_state_dict(full, strict=True)


def restore_weight_norm(state_dict: dict[str, torch.Tensor], expected: Iterable[str]) -> dict[str, torch.Tensor]:
    """Accept the other two spellings of a weight-normed layer (legacy `weight_g`/`weight_v`, dim 0) in a file.

    torch's parametrize API saves `parametrizations.weight.original0/1`, renamed here. A generator saved after
    `remove_weight_norm` holds the folded `weight` (upstream BigVGAN retries its strict load that way); it is split
    back into g = ||w|| per output row and v = w, which recomputes the same weight. Other keys pass unchanged, so
    the strict load still names anything else.
    """
    expected = set(expected)
    out: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        stem = key.removesuffix(".weight")
        if key.endswith(".weight") and key not in expected and stem + ".weight_g" in expected:
            dims = tuple(range(1, value.dim()))
            out[stem + ".weight_g"] = torch.linalg.vector_norm(value.float(), dim=dims, keepdim=True)
            out[stem + ".weight_v"] = value
        else:
            out[key] = value
    return out


def matches(key: str, patterns: Iterable[str]) -> bool:
    """True when `key` equals a pattern or starts with one that ends in "." or "_" (a prefix)."""
    return any(key == p or (p.endswith((".", "_")) and key.startswith(p)) for p in patterns)


def drop_training_only(state_dict: dict[str, torch.Tensor], patterns: Iterable[str],
                       file: str | Path) -> dict[str, torch.Tensor]:
    """`state_dict` without the keys matching `patterns`; logs once (per call) which were dropped."""
    patterns = tuple(patterns)
    dropped = sorted(k for k in state_dict if matches(k, patterns))
    if dropped:
        log.info("%s: ignoring %d training-only tensors that inference never reads: %s", Path(file).name,
                 len(dropped), ", ".join(dropped))
    return {k: v for k, v in state_dict.items() if k not in dropped}


def load_checkpoint(path: str | Path, kind: str, modules: dict[str, nn.Module]) -> None:
    """Read an official file and load each section strictly into `modules[section]` (flat files: section "")."""
    sections = read_checkpoint(path, kind)
    if set(sections) != set(modules):
        raise ValueError(f"{kind} files have sections {sorted(sections)}, got modules for {sorted(modules)}")
    for section, module in modules.items():
        state_dict = drop_training_only(sections[section], TRAINING_ONLY.get((kind, section), ()), path)
        load_strict(module, state_dict, path, UNUSED_KEYS.get((kind, section), ()))
