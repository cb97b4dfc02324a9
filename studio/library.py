"""The cast library: named reference voices kept under $STUDIO_HOME.

Rows live in SQLite (library.db); each member's reference audio is a file named
by a random id, never by the user's text. Audio is written to a temporary file,
renamed into place and fsynced before the row is committed, and deleted only after the
row is gone, so a crash at any point leaves either the old state or the new one
(at worst an orphan file, which is swept on the next start).
"""
from __future__ import annotations

import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from . import durable, names, trash
from .audio import REFERENCE_SR, load_audio, save_audio
from .languages import language_key

MAX_NAME = names.MAX_NAME
MAX_DESCRIPTION = 1000
ORIGINS = ("designed", "uploaded")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cast_members (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    description TEXT NOT NULL,
    language TEXT NOT NULL,
    origin TEXT NOT NULL,
    audio_file TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rvc_voices (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL UNIQUE,
    version TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    f0 INTEGER NOT NULL,
    has_index INTEGER NOT NULL,
    info TEXT NOT NULL,
    created REAL NOT NULL
);
"""


class LibraryError(ValueError):
    """A library request that cannot be done; the message is shown to the user."""


@dataclass(frozen=True)
class CastMember:
    id: str
    name: str
    description: str
    language: str
    origin: str
    audio_path: Path
    created: float

    def as_dict(self) -> dict:
        """Plain values for the API: no paths leak to clients."""
        return {"id": self.id, "name": self.name, "description": self.description, "language": self.language,
                "origin": self.origin, "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))}


def clean_name(name: str, what: str = "cast member") -> str:
    """A cast member's or RVC voice's name (see studio.names)."""
    return names.clean(name, what, MAX_NAME, LibraryError)


@contextmanager
def connect(home: Path) -> Iterator[sqlite3.Connection]:
    """One short transaction on $STUDIO_HOME/library.db: committed on success, rolled back on error."""
    with durable.connect(Path(home) / "library.db", SCHEMA + trash.SCHEMA) as db:
        yield db


class Library:
    def __init__(self, home: Path, trash_days: int = 14) -> None:
        self.home = Path(home)
        self.trash_days = trash_days
        self.audio_dir = self.home / "cast"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self.purge()
        self._sweep_orphans()

    def _db(self):
        return connect(self.home)

    def _row(self, row: tuple) -> CastMember:
        id_, name, _key, description, language, origin, audio_file, created = row
        return CastMember(id_, name, description, language, origin, self.audio_dir / audio_file, created)

    def _sweep_orphans(self) -> None:
        with self._db() as db:
            kept = {r[0] for r in db.execute("SELECT audio_file FROM cast_members")}
            kept |= {r["audio_file"] for r in trash.rows(db, "cast")}  # restorable: keep their audio
        for f in self.audio_dir.iterdir():
            if f.name not in kept and f.suffix == ".wav":
                f.unlink(missing_ok=True)

    def add(self, name: str, wave: np.ndarray, sr: int, description: str = "", language: str = "auto",
            origin: str = "designed") -> CastMember:
        """Store a reference voice; `wave` must already be a conditioned reference (see audio.prepare_reference)."""
        name = clean_name(name)
        language = language_key(language)
        description = str(description or "").strip()
        if len(description) > MAX_DESCRIPTION:
            raise LibraryError(f"description is {len(description)} characters; keep it under {MAX_DESCRIPTION}")
        if origin not in ORIGINS:
            raise LibraryError(f"origin must be one of {', '.join(ORIGINS)}")
        if sr != REFERENCE_SR:
            raise LibraryError(f"reference audio must be {REFERENCE_SR} Hz")
        member_id = uuid.uuid4().hex
        final = save_audio(self.audio_dir / f"{member_id}.wav", wave, sr)  # on disk before the row commits
        try:
            with self._db() as db:
                db.execute("INSERT INTO cast_members VALUES (?,?,?,?,?,?,?,?)",
                           (member_id, name, names.key(name), description, language, origin, final.name,
                            time.time()))
        except sqlite3.IntegrityError:
            final.unlink(missing_ok=True)
            raise LibraryError(f"a cast member named {name!r} already exists; pick another name") from None
        except BaseException:
            final.unlink(missing_ok=True)
            raise
        return self.get(member_id)

    def list(self) -> list[CastMember]:
        with self._db() as db:
            rows = db.execute("SELECT * FROM cast_members ORDER BY created DESC").fetchall()
        return [self._row(r) for r in rows]

    def get(self, id_or_name: str) -> CastMember:
        """Find a member by id or (case-insensitive) name."""
        key = str(id_or_name or "").strip()
        with self._db() as db:
            row = db.execute("SELECT * FROM cast_members WHERE id = ? OR name_key = ?",
                             (key, names.key(key))).fetchone()
        if row is None:
            raise LibraryError(f"no cast member named {key!r}")
        return self._row(row)

    def rename(self, id_or_name: str, new_name: str) -> CastMember:
        member = self.get(id_or_name)
        new_name = clean_name(new_name)
        try:
            with self._db() as db:
                db.execute("UPDATE cast_members SET name = ?, name_key = ? WHERE id = ?",
                           (new_name, names.key(new_name), member.id))
        except sqlite3.IntegrityError:
            raise LibraryError(f"a cast member named {new_name!r} already exists; pick another name") from None
        return self.get(member.id)

    def delete(self, id_or_name: str) -> None:
        """Move a member to the trash (restorable for trash_days; its audio stays until purged)."""
        member = self.get(id_or_name)
        with self._db() as db:
            trash.discard(db, "cast", "cast_members", member.id)
        self.purge()

    def restore(self, name: str) -> CastMember:
        """Bring the most recently deleted member of that name back from the trash."""
        with self._db() as db:
            member_id = trash.restore(db, "cast", "cast_members", name, "cast member")
        return self.get(member_id)

    def purge(self) -> None:
        """Forget members deleted more than trash_days ago, then remove their audio."""
        with self._db() as db:
            expired = trash.purge(db, "cast", self.trash_days)
        for row in expired:
            (self.audio_dir / row["audio_file"]).unlink(missing_ok=True)

    def reference(self, id_or_name: str) -> tuple[np.ndarray, int]:
        """The member's reference audio (mono float32 at REFERENCE_SR)."""
        return self.load(id_or_name)[1]

    def load(self, id_or_name: str) -> tuple[CastMember, tuple[np.ndarray, int]]:
        """A member and its reference audio, read together: a job holds both for its whole run, so a delete
        after this returns changes nothing for it. A member deleted (and purged) between the two reads is
        reported as gone, like one deleted before."""
        member = self.get(id_or_name)
        try:
            return member, load_audio(member.audio_path)
        except (OSError, ValueError):
            if member.audio_path.exists():
                raise
            raise LibraryError(f"no cast member named {str(id_or_name or '').strip()!r}") from None
