"""Directed takes and their projects, kept under $STUDIO_HOME.

Rows live in SQLite (takes.db); each take has two audio files named by its random
id, never by the user's text: the converted take the director hears and the TTS
take it was converted from (float32, bit-exact, so a take can be re-converted alone
and give the same audio). Files are written under a temporary name renamed into
place and fsynced before the row commits, so a crash leaves either no take or a whole one; files
without a row (a crash between the two) are swept on the next start, and the takes of a run
the crash cut short (never ranked) are ranked among themselves then.
"""
from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import time
import uuid
import zipfile
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from . import durable, names
from .audio import load_audio, save_audio

MAX_PROJECT = 80           # characters in a project name
BACKENDS = ("seed-vc", "rvc")
SCENE_PROJECT = "scene: "  # Scene mode keeps a scene's takes in the project SCENE_PROJECT + its name
EXPORT_FORMATS = ("wav", "flac", "mp3")
SHEET_FIELDS = ("file", "take_id", "line", "direction", "instruct", "cast_member", "backend", "rvc_voice", "seed",
                "tts_seed", "batch_id", "similarity", "intelligibility", "score", "rank", "circled", "created",
                "sample_rate", "settings")

SCHEMA = """
CREATE TABLE IF NOT EXISTS takes (
    take_id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    user TEXT,
    line TEXT NOT NULL,
    direction TEXT NOT NULL,
    instruct TEXT NOT NULL,
    cast_member TEXT,
    backend TEXT NOT NULL,
    rvc_voice TEXT,
    settings TEXT NOT NULL,
    seed INTEGER NOT NULL,
    tts_seed INTEGER NOT NULL,
    batch_id TEXT NOT NULL,
    similarity REAL,
    intelligibility REAL,
    score REAL,
    rank INTEGER,
    audio_file TEXT NOT NULL,
    tts_file TEXT NOT NULL,
    sample_rate INTEGER NOT NULL,
    tts_sample_rate INTEGER NOT NULL,
    created REAL NOT NULL,
    circled INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS takes_by_project ON takes (project, created);
"""
COLUMNS = ("take_id", "project", "user", "line", "direction", "instruct", "cast_member", "backend", "rvc_voice",
           "settings", "seed", "tts_seed", "batch_id", "similarity", "intelligibility", "score", "rank",
           "audio_file", "tts_file", "sample_rate", "tts_sample_rate", "created", "circled")


class TakeError(ValueError):
    """A takes request that cannot be done; the message is shown to the user."""


@dataclass(frozen=True)
class Take:
    take_id: str
    project: str
    user: str | None
    line: str
    direction: str
    instruct: str                 # what was sent to the TTS (the direction, with the cast description folded in)
    cast_member: str | None
    backend: str                  # "seed-vc" | "rvc"
    rvc_voice: str | None
    settings: dict                # conversion and TTS settings, enough to re-convert the take alone
    seed: int                     # this take's conversion seed
    tts_seed: int                 # the seed of the batched TTS call that made its TTS take
    batch_id: str                 # takes made by the same TTS call share it
    similarity: float | None      # cosine to the cast reference
    intelligibility: float | None  # WER-based score, when an ASR scored it
    score: float | None           # what the ranking sorted by
    rank: int | None              # 1 = best of its line's run
    audio_path: Path              # the converted take
    tts_path: Path                # the TTS take before conversion (float32 WAV)
    sample_rate: int
    tts_sample_rate: int
    created: float
    circled: bool = False

    def as_dict(self) -> dict:
        """Plain JSON-safe values for the API: no server paths leak to clients."""
        d = asdict(self)
        for key in ("audio_path", "tts_path"):
            d.pop(key)
        d["created"] = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))
        return d


def clean_project(name: str) -> str:
    """Validate a project name (user text; never used as a path); empty is the project "default"."""
    return names.clean(name, "project", MAX_PROJECT, TakeError, default="default")


def run_of(take: Take) -> str:
    """Which run made a take: its run id (takes made before runs had one: its TTS batch)."""
    return take.settings.get("run_id") or take.batch_id


class TakeStore:
    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.audio_dir = self.home / "takes" / "direct"
        self.audio_dir.mkdir(parents=True, exist_ok=True)
        self._sweep_orphans()
        self._rank_cut_runs()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with durable.connect(self.home / "takes.db", SCHEMA) as db:
            yield db

    def _sweep_orphans(self) -> None:
        with self._db() as db:
            kept = {f for row in db.execute("SELECT audio_file, tts_file FROM takes") for f in row}
        for f in self.audio_dir.iterdir():
            if f.is_file() and f.name not in kept:
                f.unlink(missing_ok=True)

    def _rank_cut_runs(self) -> None:
        """Takes left unranked by a run the server died in: rank each line's takes of that run among themselves
        (by similarity), so no take stays without a rank. Called at start, when no run is in progress."""
        with self._db() as db:
            rows = db.execute("SELECT * FROM takes WHERE rank IS NULL ORDER BY created, rowid").fetchall()
        runs: dict[tuple, list[Take]] = {}
        for take in map(self._take, rows):
            runs.setdefault((take.project, take.user, run_of(take), take.line), []).append(take)
        for takes in runs.values():
            self.rank(takes, [t.similarity for t in takes])

    def _take(self, row: tuple) -> Take:
        r = dict(zip(COLUMNS, row))
        return Take(take_id=r["take_id"], project=r["project"], user=r["user"], line=r["line"],
                    direction=r["direction"], instruct=r["instruct"], cast_member=r["cast_member"],
                    backend=r["backend"], rvc_voice=r["rvc_voice"], settings=json.loads(r["settings"]),
                    seed=r["seed"], tts_seed=r["tts_seed"], batch_id=r["batch_id"], similarity=r["similarity"],
                    intelligibility=r["intelligibility"], score=r["score"], rank=r["rank"],
                    audio_path=self.audio_dir / r["audio_file"], tts_path=self.audio_dir / r["tts_file"],
                    sample_rate=r["sample_rate"], tts_sample_rate=r["tts_sample_rate"], created=r["created"],
                    circled=bool(r["circled"]))

    def add(self, *, project: str, line: str, direction: str, instruct: str, cast_member: str | None,
            backend: str, rvc_voice: str | None, settings: dict, seed: int, tts_seed: int, batch_id: str,
            audio: tuple[np.ndarray, int], tts_audio: tuple[np.ndarray, int], similarity: float | None = None,
            user: str | None = None) -> Take:
        """Keep one take: its converted audio (16-bit WAV) and its TTS audio (float32 WAV, exact)."""
        project = clean_project(project)
        if backend not in BACKENDS:
            raise TakeError(f"backend must be one of {', '.join(BACKENDS)}")
        take_id = uuid.uuid4().hex
        files = {"audio": f"{take_id}.wav", "tts": f"{take_id}.tts.wav"}
        partial = self.audio_dir / f"{take_id}.tts.partial.wav"
        save_audio(self.audio_dir / files["audio"], *audio)  # both on disk before the row commits
        sf.write(str(partial), np.asarray(tts_audio[0], dtype=np.float32), tts_audio[1], subtype="FLOAT")
        durable.publish(partial, self.audio_dir / files["tts"])
        row = dict(take_id=take_id, project=project, user=user, line=line, direction=direction, instruct=instruct,
                   cast_member=cast_member, backend=backend, rvc_voice=rvc_voice,
                   settings=json.dumps(settings, sort_keys=True), seed=int(seed), tts_seed=int(tts_seed),
                   batch_id=batch_id, similarity=similarity, intelligibility=None, score=None, rank=None,
                   audio_file=files["audio"], tts_file=files["tts"], sample_rate=int(audio[1]),
                   tts_sample_rate=int(tts_audio[1]), created=time.time(), circled=0)
        try:
            with self._db() as db:
                db.execute(f"INSERT INTO takes VALUES ({','.join('?' * len(COLUMNS))})",
                           [row[c] for c in COLUMNS])
        except BaseException:
            for name in files.values():
                (self.audio_dir / name).unlink(missing_ok=True)
            raise
        return self.get(take_id)

    def get(self, take_id: str, user: str | None = None) -> Take:
        """One take; under auth (`user` given) only that user's: another's reads as unknown, so ids leak nothing."""
        query, args = "SELECT * FROM takes WHERE take_id = ?", [str(take_id or "").strip()]
        if user is not None:
            query, args = query + " AND user = ?", args + [user]
        with self._db() as db:
            row = db.execute(query, args).fetchone()
        if row is None:
            raise TakeError(f"no take with id {take_id!r}")
        return self._take(row)

    def list(self, project: str, user: str | None = None) -> list[Take]:
        """A project's takes, oldest first (the order they were made); only `user`'s under auth."""
        query, args = "SELECT * FROM takes WHERE project = ?", [clean_project(project)]
        if user is not None:
            query, args = query + " AND user = ?", args + [user]
        with self._db() as db:
            rows = db.execute(query + " ORDER BY created, rowid", args).fetchall()
        return [self._take(r) for r in rows]

    def projects(self, user: str | None = None) -> list[str]:
        """Project names, most recently used first."""
        query, args = "SELECT project, MAX(created) AS last FROM takes", []
        if user is not None:
            query, args = query + " WHERE user = ?", [user]
        with self._db() as db:
            rows = db.execute(query + " GROUP BY project ORDER BY last DESC", args).fetchall()
        return [r[0] for r in rows]

    def circle(self, take_id: str, circled: bool = True, user: str | None = None) -> Take:
        """Mark (or unmark) a take as the one to keep (only `user`'s own under auth)."""
        take = self.get(take_id, user)
        with self._db() as db:
            db.execute("UPDATE takes SET circled = ? WHERE take_id = ?", (int(bool(circled)), take.take_id))
        return replace(take, circled=bool(circled))

    def set_scores(self, take_id: str, *, similarity: float | None = None, intelligibility: float | None = None,
                   score: float | None = None, rank: int | None = None) -> Take:
        """Record scores and rank; None leaves a field as it is."""
        take = self.get(take_id)
        new = {"similarity": similarity, "intelligibility": intelligibility, "score": score, "rank": rank}
        new = {k: v for k, v in new.items() if v is not None}
        if new:
            with self._db() as db:
                db.execute(f"UPDATE takes SET {', '.join(f'{k} = ?' for k in new)} WHERE take_id = ?",
                           [*new.values(), take.take_id])
        return replace(take, **new)

    def rank(self, takes: list[Take], scores: list[float | None]) -> list[Take]:
        """Rank takes by their scores (best first; takes without a score last, in the order made) and store
        score and rank; returns them in rank order."""
        order = sorted(range(len(takes)), key=lambda i: (scores[i] is None, -(scores[i] or 0.0), i))
        return [self.set_scores(takes[i].take_id, score=None if scores[i] is None else float(scores[i]), rank=r + 1)
                for r, i in enumerate(order)]

    def last_run(self, user: str | None = None) -> list[Take]:
        """The takes of `user`'s latest Cast & Direct run (not a Scene render; anyone's without logins), in the
        order made; [] if none. A run in progress shows the takes it has made so far."""
        query, args = "SELECT * FROM takes WHERE substr(project, 1, ?) != ?", [len(SCENE_PROJECT), SCENE_PROJECT]
        if user is not None:
            query, args = query + " AND user = ?", args + [user]
        with self._db() as db:
            row = db.execute(query + " ORDER BY created DESC, rowid DESC LIMIT 1", args).fetchone()
        if row is None:
            return []
        last = self._take(row)
        return [t for t in self.list(last.project, user) if run_of(t) == run_of(last) and t.line == last.line]

    def export(self, project: str, fmt: str, out_dir: Path, user: str | None = None) -> Path:
        """A zip of the project's takes in `fmt` plus a take sheet (takes.csv, takes.json) naming each file
        and saying what was sent to the TTS; written to out_dir, returned."""
        fmt = str(fmt or "").strip().lower().lstrip(".")
        if fmt not in EXPORT_FORMATS:
            raise TakeError(f"export format {fmt!r}: choose one of {', '.join(EXPORT_FORMATS)}")
        takes = self.list(project, user)
        if not takes:
            raise TakeError(f"project {clean_project(project)!r} has no takes to export")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"takes-{uuid.uuid4().hex[:12]}.zip"
        partial = target.with_suffix(".partial")
        rows, lines = [], list(dict.fromkeys(t.line for t in takes))
        try:
            with zipfile.ZipFile(partial, "w") as z:
                for n, take in enumerate(takes, 1):
                    name = f"{n:03d}-line{lines.index(take.line) + 1:02d}-{take.take_id[:8]}.{fmt}"
                    tmp = out_dir / f"{target.stem}-{n}.{fmt}"
                    save_audio(tmp, *load_audio(take.audio_path))
                    z.write(tmp, name)
                    tmp.unlink()
                    d = take.as_dict()
                    rows.append({"file": name, **{k: d[k] for k in SHEET_FIELDS if k in d}})
                z.writestr("takes.json", json.dumps(rows, indent=1, ensure_ascii=False))
                sheet = io.StringIO()
                writer = csv.DictWriter(sheet, SHEET_FIELDS)
                writer.writeheader()
                writer.writerows({**r, "settings": json.dumps(r["settings"], sort_keys=True)} for r in rows)
                z.writestr("takes.csv", sheet.getvalue())
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)
        return target
