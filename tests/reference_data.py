"""Where the reference data (../shared) lives, and what a test does when some of it is missing.

Golden cases are discovered from their directories, so a missing or empty directory would otherwise collect zero
cases and pass silently. Missing data is an error under CI=true (a CI run must never pass on less than the whole
suite); elsewhere the test is skipped with the missing path in the reason (`pytest -rs` lists them).
"""
from __future__ import annotations

import os
import pathlib
from typing import Iterable, NoReturn

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("STUDIO_SHARED_DIR", ROOT.parent / "shared"))
RVC_GOLDEN = pathlib.Path(os.environ.get("RVC_GOLDEN_DIR", SHARED / "golden" / "rvc"))
SEEDVC_GOLDEN = pathlib.Path(os.environ.get("SEEDVC_GOLDEN_DIR", SHARED / "golden" / "seed_vc"))
IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
MARK = "missing_data"


def missing(reason: str) -> NoReturn:
    """Stop the current test: fail under CI=true, skip (with the reason) elsewhere."""
    message = f"missing reference data: {reason}"
    if IN_CI:
        pytest.fail(message + " (CI=true: reference data must be present)", pytrace=False)
    pytest.skip(message)


def require(path: pathlib.Path) -> pathlib.Path:
    """`path` if it exists (a non-empty directory, or a file); otherwise `missing`."""
    path = pathlib.Path(path)
    if not (path.is_file() or (path.is_dir() and any(path.iterdir()))):
        missing(f"{path} is missing or empty")
    return path


def case_params(files: Iterable[pathlib.Path], what: str) -> list:
    """pytest parameters for discovered case files; none found -> one parameter that fails (CI) or skips."""
    files = sorted(files)
    if files:
        return [pytest.param(f, id=f.name) for f in files]
    return [pytest.param(None, id="missing", marks=getattr(pytest.mark, MARK)(f"found no {what}"))]


def glob_cases(directory: pathlib.Path, pattern: str) -> list:
    """`case_params` for every file matching `pattern` in `directory`."""
    files = sorted(directory.glob(pattern)) if directory.is_dir() else []
    return case_params(files, f"{pattern} in {directory}")
