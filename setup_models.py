"""Install the studio's model weights into $STUDIO_HOME/models.

    python setup_models.py            # download pinned revisions from the Hugging Face hub (resumable)
    python setup_models.py --from DIR # copy from a local mirror (an air-gapped LAN studio)
    python setup_models.py --tiny     # tiny random-weight models in the official layout (tests, demos)
    python setup_models.py --check    # verify every installed file against the lock file

A mirror DIR has the same layout as $STUDIO_HOME/models (DIR/<entry>/<file>),
e.g. the models folder of another studio.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import urllib.error
import urllib.request
from pathlib import Path

from studio.registry import (RVC_FILES, SEED_VC_FILES, SEED_VC_TINY_DIMS, ModelEntry, check, entry_files,
                             load_entries, role_paths, sha256_file, size_problems, write_lock)
from studio.settings import SettingsError, load_settings


def download(entry: ModelEntry, models_dir: Path) -> None:
    """Fetch an entry's files at its pinned revision; huggingface_hub resumes partial files."""
    from huggingface_hub import hf_hub_download

    for f in entry.files:
        hf_hub_download(entry.repo, f, revision=entry.revision, local_dir=entry.path(models_dir))


def hub_problem(timeout_s: float = 5.0) -> str | None:
    """Why the hub cannot be reached (one short try), or None when it answers."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "on", "yes", "true"):
        return "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        urllib.request.urlopen(urllib.request.Request(endpoint, method="HEAD"), timeout=timeout_s).close()
    except urllib.error.HTTPError:
        return None  # a server answered
    except (urllib.error.URLError, OSError) as e:
        return f"{endpoint} does not answer ({getattr(e, 'reason', e)})"
    return None


def copy_from(entry: ModelEntry, models_dir: Path, mirror: Path) -> None:
    """Copy an entry from a mirror laid out like $STUDIO_HOME/models."""
    for src in entry_files(entry, mirror):
        if not src.is_file():
            raise FileNotFoundError(f"{src} is not in the mirror {mirror}")
        dst = models_dir / src.relative_to(mirror)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)


def verify_published(entry: ModelEntry, models_dir: Path) -> None:
    """Files whose size or sha256 is published in models.yaml must match it exactly."""
    wrong = size_problems(entry, models_dir)
    if wrong:
        raise RuntimeError("; ".join(wrong) + "; delete the file(s) and install again")
    for f, expected in entry.sha256.items():
        if sha256_file(entry.path(models_dir, f)) != expected:
            raise RuntimeError(f"{entry.name}/{f} does not match its pinned sha256; delete it and install again")


def build_tiny(models_dir: Path) -> None:
    """Tiny random-weight models in exactly the on-disk layout of the real ones."""
    import rvc.tiny
    import seed_vc.tiny
    from studio.engines.speaker import ECAPA_ENTRY, QWEN_BASE_ENTRY
    from studio.separation import ENTRY as SEPARATOR_ENTRY
    from studio.tiny_qwen import build_tiny_voicedesign
    from studio.tiny_separator import build_tiny_separator
    from studio.tiny_speaker import build_tiny_ecapa, build_tiny_qwen_base
    from studio.tiny_whisper import build_tiny_whisper

    build_tiny_voicedesign(models_dir / "qwen3-tts-voicedesign")
    seed_vc.tiny.build_tiny(role_paths(models_dir, SEED_VC_FILES), seed_vc.tiny.load_dims(SEED_VC_TINY_DIMS))
    rvc.tiny.build_tiny(role_paths(models_dir, RVC_FILES), rvc.tiny.tiny_dims())
    build_tiny_whisper(models_dir / "whisper")
    build_tiny_ecapa(models_dir / ECAPA_ENTRY)
    build_tiny_qwen_base(models_dir / QWEN_BASE_ENTRY)
    build_tiny_separator(models_dir / SEPARATOR_ENTRY)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--from", dest="mirror", type=Path, help="install from a local mirror folder")
    mode.add_argument("--tiny", action="store_true", help="build tiny random-weight models (noise, for tests)")
    mode.add_argument("--check", action="store_true", help="verify installed files against the lock file")
    parser.add_argument("--only", nargs="+", metavar="ENTRY", help="install only these entries")
    args = parser.parse_args(argv)

    problem = None if args.tiny or args.mirror or args.check else hub_problem()  # before the slow imports
    if problem:
        print(f"error: cannot download from the Hugging Face hub: {problem}. Without internet, copy the models "
              "from another studio's models folder with `python setup_models.py --from DIR`, or build tiny test "
              "models with `python setup_models.py --tiny`", file=sys.stderr)
        return 1

    try:
        settings = load_settings()
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    models_dir = settings.models_dir
    entries = load_entries()
    unknown = sorted(set(args.only or []) - set(entries))
    if unknown:
        print(f"error: unknown entries {unknown}; known: {', '.join(entries)}", file=sys.stderr)
        return 2

    if args.check:
        problems = check(models_dir, entries, hashes=True, names=args.only)
        for line in problems:
            print(line)
        print("all model files intact" if not problems else f"{len(problems)} problem(s); reinstall with "
              "`python setup_models.py` (or `--tiny`)")
        return 1 if problems else 0

    models_dir.mkdir(parents=True, exist_ok=True)
    wanted = [entries[n] for n in args.only] if args.only else [e for e in entries.values() if not e.on_request]
    try:
        if args.tiny:
            print(f"building tiny random-weight models in {models_dir} ...")
            build_tiny(models_dir)
        else:
            for entry in wanted:
                print(f"installing {entry.name} ({entry.repo}@{entry.revision}) ...")
                if entry.licence:
                    print(f"  licence: {entry.licence}")
                copy_from(entry, models_dir, args.mirror) if args.mirror else download(entry, models_dir)
                verify_published(entry, models_dir)
    except Exception as e:  # a failed install must say what failed, not dump a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1
    source = "tiny" if args.tiny else (f"mirror {args.mirror}" if args.mirror else "hub")
    write_lock(models_dir, entries, tiny=args.tiny, source=source)
    print(f"models installed in {models_dir} ({source}); verify any time with `python setup_models.py --check`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
