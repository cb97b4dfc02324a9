"""Durable storage: every SQLite store opens the same way, and files reach the disk before a row points at them.

A row committed in SQLite (WAL, synchronous=FULL) survives a power cut; the audio or model it names must
too, so files are written under a temporary name, fsynced, renamed into place, and their folder fsynced,
all before the commit that refers to them.
"""
from __future__ import annotations

import os
import sqlite3
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Iterator

PRAGMAS = {"journal_mode": "wal", "synchronous": 2}  # 2 = FULL: a commit is on disk when it returns


@contextmanager
def connect(path: Path, schema: str) -> Iterator[sqlite3.Connection]:
    """One short transaction on the database at `path` (created with `schema`): committed on success,
    rolled back on error."""
    with closing(sqlite3.connect(Path(path), timeout=30)) as db:
        for name, value in PRAGMAS.items():
            db.execute(f"PRAGMA {name}={value}")
        db.executescript(schema)
        with db:
            yield db


def sync(path: Path) -> None:
    """fsync a file's bytes, or a folder's entries (its renames and new names)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def publish(partial: Path, final: Path) -> Path:
    """Rename a finished file (or a folder of files) into place so that it is on disk when this returns:
    its contents first, then the rename in its parent folder."""
    partial, final = Path(partial), Path(final)
    if partial.is_dir():
        for f in partial.iterdir():
            sync(f)
    sync(partial)
    os.replace(partial, final)
    sync(final.parent)
    return final
