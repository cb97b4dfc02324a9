"""Model registry: which model files the studio needs, whether they are installed
intact, and the one place loaded models live.

configs/models.yaml lists each entry; files sit at
$STUDIO_HOME/models/<entry>/<path in the hub repo>. A lock file written at
install time records every file's sha256 so `setup_models.py --check` can name
what is missing or altered, and records whether the tiny random-weight models
are installed (the UI shows a banner then).
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from .settings import ROOT

MODELS_YAML = ROOT / "configs" / "models.yaml"
LOCK_NAME = "models.lock.json"
FIX_REAL = "python setup_models.py"
FIX_TINY = "python setup_models.py --tiny"


class ModelsMissing(RuntimeError):
    """Model files are absent or altered; the message names them and the command that fixes it."""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    repo: str
    revision: str
    files: tuple[str, ...]
    used_by: str
    optional: bool = False
    on_request: bool = False  # installed only when named (`setup_models.py --only NAME`): large and rarely used
    sha256: dict[str, str] = field(default_factory=dict)
    sizes: dict[str, int] = field(default_factory=dict)
    licence: str = ""  # shown at install where the weights' terms need the operator's attention

    def path(self, models_dir: Path, file: str = "") -> Path:
        """Local path of one of this entry's files (or of the entry's folder)."""
        return models_dir / self.name / file


def load_entries(path: Path = MODELS_YAML) -> dict[str, ModelEntry]:
    raw = yaml.safe_load(Path(path).read_text())
    return {
        name: ModelEntry(name=name, repo=e["repo"], revision=str(e["revision"]), files=tuple(e["files"]),
                         used_by=e.get("used_by", ""), optional=bool(e.get("optional", False)),
                         on_request=bool(e.get("on_request", False)), sha256=dict(e.get("sha256", {})),
                         sizes={f: int(n) for f, n in e.get("sizes", {}).items()}, licence=e.get("licence", ""))
        for name, e in raw.items()
    }


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def entry_files(entry: ModelEntry, models_dir: Path) -> list[Path]:
    """Where every file of an entry is (or would be) installed."""
    return [entry.path(models_dir, f) for f in entry.files]


def size_problems(entry: ModelEntry, models_dir: Path) -> list[str]:
    """Installed files whose byte size differs from the size published for the release (a truncated or different
    download); files that are absent are left to `check`."""
    problems = []
    for f, expected in entry.sizes.items():
        p = entry.path(models_dir, f)
        if p.is_file() and p.stat().st_size != expected:
            problems.append(f"wrong size: {entry.name}/{f} is {p.stat().st_size} bytes, the release has {expected}")
    return problems


def write_lock(models_dir: Path, entries: dict[str, ModelEntry], tiny: bool, source: str) -> Path:
    """Record the sha256 of every installed file (atomically) after an install."""
    lock: dict[str, Any] = {"tiny": tiny, "source": source, "entries": {}}
    for entry in entries.values():
        files = {str(p.relative_to(models_dir)): sha256_file(p) for p in entry_files(entry, models_dir) if p.is_file()}
        if files:
            lock["entries"][entry.name] = {"repo": entry.repo, "revision": entry.revision, "files": files}
    path = models_dir / LOCK_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(lock, indent=1, sort_keys=True))
    os.replace(tmp, path)
    return path


def read_lock(models_dir: Path) -> dict[str, Any] | None:
    path = models_dir / LOCK_NAME
    return json.loads(path.read_text()) if path.is_file() else None


def is_tiny(models_dir: Path) -> bool:
    lock = read_lock(models_dir)
    return bool(lock and lock.get("tiny"))


def check(models_dir: Path, entries: dict[str, ModelEntry] | None = None, hashes: bool = True,
          names: list[str] | None = None) -> list[str]:
    """Problems with the installed models, one readable line each; [] when all is well.

    `hashes=False` only checks presence and, for real (non-tiny) installs, the published sizes (fast, used at
    every start-up).
    """
    entries = entries or load_entries()
    wanted = [entries[n] for n in names] if names else [e for e in entries.values() if not e.optional]
    lock = read_lock(models_dir)
    if lock is None:
        return [f"no models installed in {models_dir}"]
    problems = []
    for entry in wanted:
        recorded = lock["entries"].get(entry.name, {}).get("files", {})
        for p in entry_files(entry, models_dir):
            rel = str(p.relative_to(models_dir))
            if not p.is_file():
                problems.append(f"missing: {rel} ({entry.used_by})")
            elif rel not in recorded:
                problems.append(f"not in the lock file: {rel}")
            elif hashes and sha256_file(p) != recorded[rel]:
                problems.append(f"altered: {rel} (sha256 differs from the install)")
        if not lock.get("tiny"):
            problems.extend(size_problems(entry, models_dir))
    return problems


def require(models_dir: Path, names: list[str] | None = None) -> None:
    """Refuse to go on when models are missing, saying which command fixes it."""
    problems = check(models_dir, hashes=False, names=names)
    if problems:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise ModelsMissing(f"Models are not installed: {shown}. Fix: run `{FIX_REAL}` "
                            f"(or `{FIX_TINY}` for tiny test models).")


class ModelPool:
    """Loaded models, one instance per key, loaded on first use under a lock.

    The one place the studio keeps models in memory, so tabs never load twice
    and /health can report what is resident.
    """

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._models:
                self._models[key] = load()
            return self._models[key]

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted(self._models)


# Which registry file plays which role for each model package: the path dicts
# that seed_vc.load_model / rvc loaders and their tiny builders take.
SEED_VC_FILES = {
    "cfm": ("seed-vc-v2", "v2/cfm_small.pth"),
    "ar": ("seed-vc-v2", "v2/ar_base.pth"),
    "bsq32": ("astral-quantization", "bsq32/bsq32_light.pth"),
    "bsq2048": ("astral-quantization", "bsq2048/bsq2048_light.pth"),
    "hubert": ("hubert-large-ll60k", ""),
    "campplus": ("campplus", "campplus_cn_common.bin"),
    "bigvgan": ("bigvgan-v2-22k", ""),
}
SEED_VC_TINY_DIMS = ROOT / "configs" / "seed_vc_tiny.yaml"  # the sizes `--tiny` builds and loads with
RVC_FILES = {
    "contentvec": ("contentvec", ""),
    "rmvpe": ("rmvpe", "rmvpe.pt"),
    "pretrained_G": ("rvc-pretrained-v2", "pretrained_v2/f0G40k.pth"),
    "pretrained_D": ("rvc-pretrained-v2", "pretrained_v2/f0D40k.pth"),
}


def role_paths(models_dir: Path, roles: dict[str, tuple[str, str]]) -> dict[str, Path]:
    return {role: models_dir / entry / file for role, (entry, file) in roles.items()}
