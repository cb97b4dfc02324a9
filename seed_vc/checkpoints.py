"""Strict loading of the official Seed-VC V2 checkpoint files, each in its own container layout.

Public:
    CheckpointError(RuntimeError)
    read_checkpoint(path, kind) -> {section: state_dict}   # kind: "cfm" | "ar" | "bsq" | "campplus" | "bigvgan"
    load_strict(module, state_dict, file, optional=()) -> None
    load_checkpoint(path, kind, modules: {section: nn.Module}) -> None    # read + load_strict with UNUSED_KEYS
    UNUSED_KEYS: {(kind, section): names}
Containers: cfm_small.pth -> ['net']['cfm'] / ['net']['length_regulator'], ar_base.pth -> ['net']['ar'] /
['net']['length_regulator'] (keys may carry a `module.` prefix); bsq*_light.pth flat; campplus .bin flat with
`xvector.dense.*` -> `dense.*`; bigvgan_generator.pt -> ['generator']. Flat files come back as section "".
HuBERT is a transformers directory: see content.load_hubert.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn as nn

from .campplus import remap_campplus_keys

SECTIONS = {"cfm": ("cfm", "length_regulator"), "ar": ("ar", "length_regulator")}

# Keys that upstream's state_dicts may hold but inference never reads, or deterministic buffers that a file may or
# may not contain (upstream loads these files with strict=False, so both happen). Named one by one: a key listed
# here is copied when file and module both have it, dropped when only the file has it, and left at the module's own
# value when only the module has it. Every other key must match exactly.
UNUSED_KEYS: dict[tuple[str, str], tuple[str, ...]] = {
    ("cfm", "cfm"): (
        "estimator.transformer.freqs_cis",  # bf16 RoPE table, a function of the config
        "estimator.transformer.causal_mask",  # 8192^2 bool, a function of the config
        "estimator.x_embedder.weight_g",  # training-only input embedder
        "estimator.x_embedder.weight_v",
        "estimator.x_embedder.bias",
    ),
    ("cfm", "length_regulator"): ("mask_token",),
    ("ar", "ar"): ("model.freqs_cis", "model.causal_mask"),  # non-persistent upstream; tolerated if saved
    ("ar", "length_regulator"): ("mask_token",),
}


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


def load_checkpoint(path: str | Path, kind: str, modules: dict[str, nn.Module]) -> None:
    """Read an official file and load each section strictly into `modules[section]` (flat files: section "")."""
    sections = read_checkpoint(path, kind)
    if set(sections) != set(modules):
        raise ValueError(f"{kind} files have sections {sorted(sections)}, got modules for {sorted(modules)}")
    for section, module in modules.items():
        load_strict(module, sections[section], path, UNUSED_KEYS.get((kind, section), ()))
