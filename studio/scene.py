"""Scenes kept under $STUDIO_HOME: the script, the cast table, which takes belong to which line, the picks.

One SQLite file (scenes.db), rows keyed by a random scene id: a scene's name is
user text and never becomes a path. With logins each user has their own scenes: a store made
for an owner keys names under that owner (two directors may both have a "kitchen"), and sees
no one else's. The takes themselves live in the TakeStore
(project "scene: <name>"); this store records which of them were made for which
line (as each take is made, so a render that dies keeps its work) and which one
is picked. Every change is one transaction, so a crash leaves the old state or the
new one.
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

from .library import check_label
from .script import Script, character_key
from .takes import BACKENDS, SCENE_PROJECT

MAX_SCENE_NAME = 60
OWNER_SEP = "\x1f"    # owner + OWNER_SEP + name: a control character, which neither a scene name nor a login holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenes (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, script TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scene_cast (
    scene_id TEXT NOT NULL, char_key TEXT NOT NULL, character TEXT NOT NULL, cast_member TEXT,
    backend TEXT NOT NULL, rvc_voice TEXT, direction TEXT NOT NULL, language TEXT NOT NULL,
    PRIMARY KEY (scene_id, char_key));
CREATE TABLE IF NOT EXISTS line_takes (
    scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL, PRIMARY KEY (scene_id, take_id));
CREATE TABLE IF NOT EXISTS picks (
    scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (scene_id, line));
CREATE TABLE IF NOT EXISTS transcripts (
    take_id TEXT PRIMARY KEY, transcript TEXT NOT NULL, wer REAL NOT NULL, cer REAL NOT NULL,
    recogniser TEXT NOT NULL);
"""


class SceneError(ValueError):
    """A scene request that cannot be done; the message is shown to the user."""


@dataclass(frozen=True)
class CastEntry:
    character: str
    cast_member: str | None
    backend: str = "seed-vc"
    rvc_voice: str | None = None
    direction: str = ""             # the character's default direction, joined to each line's own
    language: str = "auto"


@dataclass(frozen=True)
class Scene:
    id: str
    name: str
    script: Script
    cast: dict[str, CastEntry]       # character_key -> entry
    takes: dict[int, list[str]]      # line index -> take ids made for it, oldest first
    picks: dict[int, tuple[str, dict]]  # line index -> (take id, how it was picked)

    @property
    def project(self) -> str:
        """The TakeStore project holding this scene's takes."""
        return f"{SCENE_PROJECT}{self.name}"

    def entry(self, line: int) -> CastEntry | None:
        return self.cast.get(character_key(self.script.lines[line].character))

    def uncast(self) -> list[str]:
        return [c for c in self.script.characters if character_key(c) not in self.cast]


def script_text(script: Script) -> str:
    """A scene's script as `NAME (direction): line` rows (notes as `# ...` rows), to show and edit again when the
    scene is opened: importing it gives the same lines (but for Fountain's dual marks), so their picks stay."""
    rows = []
    for i, line in enumerate(script.lines):
        rows += [f"# {n.text}" for n in script.notes if n.before == i]
        rows.append(f"{line.character}{f' ({line.direction})' if line.direction else ''}: {line.text}")
    return "\n".join(rows + [f"# {n.text}" for n in script.notes if n.before >= len(script.lines)])


def clean_scene_name(name: str) -> str:
    """Validate a scene name (user text, never a path)."""
    return check_label(name, "give the scene a name", "scene name", MAX_SCENE_NAME, SceneError)


class SceneStore:
    def __init__(self, home: Path, owner: str | None = None) -> None:
        self.path = Path(home) / "scenes.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = owner   # None: no logins, the scenes nobody owns

    def for_owner(self, owner: str | None) -> "SceneStore":
        """The same file, seen as `owner` (None: without logins)."""
        return SceneStore(self.path.parent, owner)

    def _key(self, name: str) -> str:
        key = clean_scene_name(name).casefold()
        return key if self.owner is None else f"{self.owner}{OWNER_SEP}{key}"

    def _mine(self) -> tuple[str, list]:
        """SQL condition (and its arguments) for this owner's scenes."""
        if self.owner is None:
            return "instr(name_key, ?) = 0", [OWNER_SEP]
        prefix = f"{self.owner}{OWNER_SEP}"
        return "substr(name_key, 1, ?) = ?", [len(prefix), prefix]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(SCHEMA)
            with db:
                yield db

    # -- scenes ---------------------------------------------------------------------------------

    def names(self) -> list[str]:
        mine, args = self._mine()
        with self._db() as db:
            return [r[0] for r in db.execute(f"SELECT name FROM scenes WHERE {mine} ORDER BY updated DESC", args)]

    def list_scenes(self) -> list[dict]:
        """This owner's scenes, most recently changed first: name, lines, lines rendered (with takes) and picked,
        last change; what the Scene tab lists to open one again (after a reload, say)."""
        mine, args = self._mine()
        with self._db() as db:
            rows = db.execute(
                f"SELECT name, script, updated, (SELECT COUNT(DISTINCT line) FROM line_takes WHERE scene_id = id), "
                f"(SELECT COUNT(*) FROM picks WHERE scene_id = id) FROM scenes WHERE {mine} ORDER BY updated DESC",
                args).fetchall()
        return [{"name": name, "lines": len(json.loads(script)["lines"]), "rendered": rendered, "picked": picked,
                 "updated": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(updated))}
                for name, script, updated, rendered, picked in rows]

    def get(self, name: str) -> Scene:
        key = self._key(name)
        with self._db() as db:
            row = db.execute("SELECT id, name, script FROM scenes WHERE name_key = ?", (key,)).fetchone()
            if row is None:
                mine, args = self._mine()
                known = ", ".join(r[0] for r in db.execute(f"SELECT name FROM scenes WHERE {mine} ORDER BY name",
                                                           args)) or "none yet"
                raise SceneError(f"no scene named {name!r} (scenes: {known}); import its script first")
            sid = row[0]
            cast = {r[0]: CastEntry(*r[1:]) for r in db.execute(
                "SELECT char_key, character, cast_member, backend, rvc_voice, direction, language FROM scene_cast "
                "WHERE scene_id = ?", (sid,))}
            takes: dict[int, list[str]] = {}
            for line, take_id in db.execute("SELECT line, take_id FROM line_takes WHERE scene_id = ? ORDER BY rowid",
                                            (sid,)):
                takes.setdefault(line, []).append(take_id)
            picks = {r[0]: (r[1], json.loads(r[2])) for r in db.execute(
                "SELECT line, take_id, info FROM picks WHERE scene_id = ?", (sid,))}
        return Scene(sid, row[1], Script.from_dict(json.loads(row[2])), cast, takes, picks)

    def save_script(self, name: str, script: Script) -> Scene:
        """Create the scene, or replace its script: lines that did not change keep their takes and
        picks, and characters still in the script keep their cast."""
        name, key = clean_scene_name(name), self._key(name)
        now = time.time()
        with self._db() as db:
            row = db.execute("SELECT id, script FROM scenes WHERE name_key = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO scenes VALUES (?, ?, ?, ?, ?, ?)", (uuid.uuid4().hex, name, key,
                                                                            json.dumps(script.as_dict()), now, now))
            else:
                sid, old = row[0], Script.from_dict(json.loads(row[1]))
                changed = [i for i in range(len(old.lines))
                           if i >= len(script.lines) or old.lines[i] != script.lines[i]]
                for table in ("line_takes", "picks"):
                    db.executemany(f"DELETE FROM {table} WHERE scene_id = ? AND line = ?", [(sid, i) for i in changed])
                keep = [character_key(c) for c in script.characters]
                db.execute(f"DELETE FROM scene_cast WHERE scene_id = ? AND char_key NOT IN "
                           f"({','.join('?' * len(keep))})", (sid, *keep))
                db.execute("UPDATE scenes SET name = ?, script = ?, updated = ? WHERE id = ?",
                           (name, json.dumps(script.as_dict()), now, sid))
        return self.get(name)

    def set_cast(self, name: str, entry: CastEntry) -> Scene:
        """Cast a character; a changed voice makes that character's lines pending again."""
        scene = self.get(name)
        key = character_key(entry.character)
        known = {character_key(c): c for c in scene.script.characters}
        if key not in known:
            raise SceneError(f"no character {entry.character!r} in scene {scene.name!r}; its characters are "
                             f"{', '.join(scene.script.characters)}")
        if entry.backend not in BACKENDS:
            raise SceneError(f"backend must be one of {', '.join(BACKENDS)}, got {entry.backend!r}")
        entry = CastEntry(known[key], entry.cast_member, entry.backend, entry.rvc_voice, entry.direction,
                          entry.language)
        old = scene.cast.get(key)
        lines = [i for i, line in enumerate(scene.script.lines) if character_key(line.character) == key]
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO scene_cast VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (scene.id, key, *asdict(entry).values()))
            if old is not None and old != entry:
                for table in ("line_takes", "picks"):
                    db.executemany(f"DELETE FROM {table} WHERE scene_id = ? AND line = ?",
                                   [(scene.id, i) for i in lines])
            db.execute("UPDATE scenes SET updated = ? WHERE id = ?", (time.time(), scene.id))
        return self.get(scene.name)

    # -- takes and picks ------------------------------------------------------------------------

    def add_take(self, scene_id: str, line: int, take_id: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO line_takes VALUES (?, ?, ?)", (scene_id, line, take_id))

    def set_pick(self, scene_id: str, line: int, take_id: str, info: dict) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO picks VALUES (?, ?, ?, ?)",
                       (scene_id, line, take_id, json.dumps(info, sort_keys=True)))
            db.execute("UPDATE scenes SET updated = ? WHERE id = ?", (time.time(), scene_id))

    # -- transcripts (the intelligibility of any take, Scene or Cast & Direct) ------------------

    def transcript(self, take_id: str) -> dict | None:
        with self._db() as db:
            row = db.execute("SELECT transcript, wer, cer, recogniser FROM transcripts WHERE take_id = ?",
                             (take_id,)).fetchone()
        return None if row is None else dict(zip(("transcript", "wer", "cer", "recogniser"), row))

    def set_transcript(self, take_id: str, transcript: str, wer: float, cer: float, recogniser: str) -> None:
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO transcripts VALUES (?, ?, ?, ?, ?)",
                       (take_id, transcript, float(wer), float(cer), recogniser))
