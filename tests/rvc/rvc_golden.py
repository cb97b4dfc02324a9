"""Finds the synthesizer golden files (shared/golden/rvc) by the kinds that GOLDEN.json documents.

A kind is a name pattern such as ``golden_<variant>.pt``; every file matching it, including later cases with a
suffix (``golden_v2_f0_main2026.pt``), is a test case, so new cases need no test change.
"""
import json
import os
import pathlib
import re

import pytest
import torch

GOLDEN_DIR = pathlib.Path(os.environ.get(
    "RVC_GOLDEN_DIR", pathlib.Path(__file__).resolve().parents[2].parent / "shared" / "golden" / "rvc"))
VARIANT = r"v\d+_(?:f0|nof0)"


def _documented_kinds() -> set[str]:
    index = GOLDEN_DIR / "GOLDEN.json"
    if not index.is_file():
        return set()
    golden = json.loads(index.read_text())
    return set(golden) | set(golden.get("upstream_code", {}))


def kind_files(kind: str) -> list[pathlib.Path]:
    """Files of a documented kind, e.g. ``kind_files("mini_<variant>.pth")``; [] if the kind is not documented."""
    if kind not in _documented_kinds():
        return []
    stem, ext = kind.rsplit(".", 1)
    pattern = re.compile(re.escape(stem).replace(re.escape("<variant>"), f"(?P<variant>{VARIANT})")
                         + r"(?:_\w+)?\." + ext)
    return sorted(p for p in GOLDEN_DIR.iterdir() if pattern.fullmatch(p.name))


def params(kind: str) -> list:
    """pytest parameters for every file of ``kind`` (one skipped param when there are none)."""
    files = kind_files(kind)
    return files or [pytest.param(None, marks=pytest.mark.skip(reason=f"no {kind} files in {GOLDEN_DIR}"))]


def variant_of(path: pathlib.Path) -> str:
    """'golden_v2_f0_main2026.pt' -> 'v2_f0'."""
    return re.search(VARIANT, path.name).group(0)


def load(path: pathlib.Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def golden_for(variant: str) -> pathlib.Path:
    """The 20240604 reference outputs of a variant (what the mini_*.pth files must reproduce)."""
    return GOLDEN_DIR / f"golden_{variant}.pt"
