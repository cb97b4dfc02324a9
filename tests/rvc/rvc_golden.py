"""Finds the RVC golden files ($RVC_GOLDEN_DIR, default ../shared/golden/rvc) by the kinds GOLDEN.json documents.

A kind is a name pattern such as ``golden_<variant>.pt``; every file matching it, including later cases with a
suffix (``golden_v2_f0_main2026.pt``), is a test case, so new cases need no test change.
"""
import json
import pathlib
import re

import torch

from reference_data import RVC_GOLDEN as GOLDEN_DIR
from reference_data import case_params, missing

VARIANT = r"v\d+_(?:f0|nof0)"


def _documented_kinds() -> set[str]:
    index = GOLDEN_DIR / "GOLDEN.json"
    if not index.is_file():
        return set()
    golden = json.loads(index.read_text())
    return set(golden) | set(golden.get("upstream_code", {}))


def kind_files(kind: str) -> list[pathlib.Path]:
    """Files of a documented kind, e.g. ``kind_files("mini_<variant>.pth")``; [] if the kind is not documented
    (GOLDEN.json names it as such or names a file of it, e.g. ``golden_train_v2_f0.pt``)."""
    stem, ext = kind.rsplit(".", 1)
    pattern = re.compile(re.escape(stem).replace(re.escape("<variant>"), f"(?P<variant>{VARIANT})")
                         + r"(?:_\w+)?\." + ext)
    if not any(k == kind or pattern.fullmatch(k) for k in _documented_kinds()):
        return []
    return sorted(p for p in GOLDEN_DIR.iterdir() if pattern.fullmatch(p.name))


def params(kind: str) -> list:
    """pytest parameters for every file of ``kind`` (none: one that fails under CI=true, skips elsewhere)."""
    return case_params(kind_files(kind), f"{kind} files documented in {GOLDEN_DIR / 'GOLDEN.json'}")


def one_of(kind: str, variant: str = VARIANT) -> pathlib.Path:
    """The first file of ``kind`` whose variant matches ``variant`` (a regex), for tests that need just one."""
    files = [p for p in kind_files(kind) if re.fullmatch(variant, variant_of(p))]
    if not files:
        missing(f"no {kind} file of variant {variant} in {GOLDEN_DIR}")
    return files[0]


def variant_of(path: pathlib.Path) -> str:
    """'golden_v2_f0_main2026.pt' -> 'v2_f0'."""
    return re.search(VARIANT, path.name).group(0)


def version_and_f0(variant: str) -> tuple[str, bool]:
    """'v2_nof0' -> ('v2', False)."""
    version, f0 = variant.split("_")
    return version, f0 == "f0"


def load(path: pathlib.Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def golden_for(variant: str) -> pathlib.Path:
    """The 20240604 reference outputs of a variant (what the mini_*.pth files must reproduce)."""
    path = GOLDEN_DIR / f"golden_{variant}.pt"
    if not path.is_file():
        missing(f"{path} not found")
    return path
