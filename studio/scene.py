"""Scenes kept under $STUDIO_HOME: the script, the cast table, which takes belong to which line, the picks.

One SQLite file (scenes.db), rows keyed by a random scene id: a scene's name is
user text and never becomes a path. With logins each user has their own scenes: a store made
for an owner keys names under that owner (two directors may both have a "kitchen"), and sees
no one else's. The takes themselves live in the TakeStore
(project "scene: <name>"); this store records which of them were made for which
line (as each take is made, so a render that dies keeps its work) and which one
is picked. Every change is one transaction, so a crash leaves the old state or the
new one.

Each take and pick records what it was made from (`line_state`: the line's words and
direction, its character's casting). Editing a line or re-casting a character never
has to race a render: a take or pick whose state is not the line's current one is
stale, so it is never picked, swapped in or exported, and the next render redoes
exactly those lines. Characters are cast by the cast member's id (the library is
shared and members can be renamed): a scene follows a rename and refuses a deleted
member, never silently taking another member that now has the old name.
"""
from __future__ import annotations

import copy
import hashlib
import json
import sqlite3
import time
import uuid
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from . import durable, names
from .library import connect as library_db
from .script import Line, Script, character_key
from .takes import BACKENDS, SCENE_PROJECT

MAX_SCENE_NAME = 60
OWNER_SEP = "\x1f"    # owner + OWNER_SEP + name: a control character, which neither a scene name nor a login holds

SCHEMA = """
CREATE TABLE IF NOT EXISTS scenes (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, script TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS scene_cast (
    scene_id TEXT NOT NULL, char_key TEXT NOT NULL, character TEXT NOT NULL, cast_member TEXT,
    backend TEXT NOT NULL, rvc_voice TEXT, direction TEXT NOT NULL, language TEXT NOT NULL, member_id TEXT,
    PRIMARY KEY (scene_id, char_key));
CREATE TABLE IF NOT EXISTS line_takes (
    scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL, made_from TEXT,
    PRIMARY KEY (scene_id, take_id));
CREATE TABLE IF NOT EXISTS picks (
    scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL, info TEXT NOT NULL, made_from TEXT,
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
    cast_member: str | None          # the member's name when cast (for messages; the id is what counts)
    backend: str = "seed-vc"
    rvc_voice: str | None = None
    direction: str = ""             # the character's default direction, joined to each line's own
    language: str = "auto"
    member_id: str | None = None     # the library id; None with a name: a member that could not be found

    @property
    def voice(self) -> tuple:
        """What the casting sounds like: a rename changes nothing, another member or setting does."""
        return (self.member_id or self.cast_member, self.backend, self.rvc_voice, self.direction, self.language)


def line_state(line: Line, entry: CastEntry | None) -> str:
    """What a take of `line` is made from: its character, words, direction and casting (a short digest)."""
    made = [character_key(line.character), line.text, line.direction, entry and entry.voice]
    return hashlib.sha256(json.dumps(made).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Scene:
    id: str
    name: str
    script: Script
    cast: dict[str, CastEntry]       # character_key -> entry
    takes: dict[int, list[str]]      # line index -> take ids made for it as it is now, oldest first
    picks: dict[int, tuple[str, dict]]  # line index -> (take id, how it was picked), current takes only
    stale: frozenset[int] = frozenset()  # lines not picked whose takes were made from an older line or cast

    @property
    def project(self) -> str:
        """The TakeStore project holding this scene's takes."""
        return f"{SCENE_PROJECT}{self.name}"

    def entry(self, line: int) -> CastEntry | None:
        return self.cast.get(character_key(self.script.lines[line].character))

    def state(self, line: int) -> str:
        """The line's current `line_state`: takes made from another are stale."""
        return line_state(self.script.lines[line], self.entry(line))

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
    return names.clean(name, "scene", MAX_SCENE_NAME, SceneError)


class SceneStore:
    def __init__(self, home: Path, owner: str | None = None) -> None:
        self.path = Path(home) / "scenes.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = owner   # None: no logins, the scenes nobody owns
        self._migrate()

    def for_owner(self, owner: str | None) -> "SceneStore":
        """The same file, seen as `owner` (None: without logins); already migrated, so opened as it is."""
        view = copy.copy(self)
        view.owner = owner
        return view

    def _key(self, name: str) -> str:
        key = names.key(clean_scene_name(name))
        return key if self.owner is None else f"{self.owner}{OWNER_SEP}{key}"

    def _mine(self) -> tuple[str, list]:
        """SQL condition (and its arguments) for this owner's scenes."""
        if self.owner is None:
            return "instr(name_key, ?) = 0", [OWNER_SEP]
        prefix = f"{self.owner}{OWNER_SEP}"
        return "substr(name_key, 1, ?) = ?", [len(prefix), prefix]

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with durable.connect(self.path, SCHEMA) as db:
            yield db

    def _migrate(self) -> None:
        """Bring a scenes.db from before cast ids and take states up to date, once: each cast member name
        is resolved to its library id (a name no member has any more stays unresolved, and the scene asks
        for the character to be cast again), and the takes and picks kept so far are marked as made from
        their lines as they are now (before, an edit deleted them)."""
        with closing(sqlite3.connect(self.path, timeout=30, isolation_level=None)) as db:
            db.executescript(SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                columns = {t: {r[1] for r in db.execute(f"PRAGMA table_info({t})")}
                           for t in ("scene_cast", "line_takes", "picks")}
                if "member_id" not in columns["scene_cast"]:
                    db.execute("ALTER TABLE scene_cast ADD COLUMN member_id TEXT")
                    cast_names = [r[0] for r in db.execute("SELECT DISTINCT cast_member FROM scene_cast "
                                                           "WHERE cast_member IS NOT NULL")]
                    if cast_names:
                        with library_db(self.path.parent) as lib:
                            found = [(lib.execute("SELECT id FROM cast_members WHERE name_key = ?",
                                                  (names.key(n),)).fetchone(), n) for n in cast_names]
                        db.executemany("UPDATE scene_cast SET member_id = ? WHERE cast_member = ?",
                                       [(row[0], n) for row, n in found if row])
                old = [t for t in ("line_takes", "picks") if "made_from" not in columns[t]]
                for table in old:
                    db.execute(f"ALTER TABLE {table} ADD COLUMN made_from TEXT")
                if old:
                    for (sid,) in db.execute("SELECT id FROM scenes").fetchall():
                        scene = self._read(db, sid)
                        for table in old:
                            db.executemany(f"UPDATE {table} SET made_from = ? WHERE scene_id = ? AND line = ?",
                                           [(scene.state(i), sid, i) for i in range(len(scene.script.lines))])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

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
            return self._read(db, row[0])

    @staticmethod
    def _read(db: sqlite3.Connection, sid: str) -> Scene:
        """One scene as it is now: takes and picks made from an older line or cast are left out (stale)."""
        name, script = db.execute("SELECT name, script FROM scenes WHERE id = ?", (sid,)).fetchone()
        cast = {r[0]: CastEntry(*r[1:]) for r in db.execute(
            "SELECT char_key, character, cast_member, backend, rvc_voice, direction, language, member_id "
            "FROM scene_cast WHERE scene_id = ?", (sid,))}
        scene = Scene(sid, name, Script.from_dict(json.loads(script)), cast, {}, {})
        states = [scene.state(i) for i in range(len(scene.script.lines))]
        current = lambda line, made: line < len(states) and made == states[line]  # noqa: E731
        stale = set()
        for line, take_id, made in db.execute("SELECT line, take_id, made_from FROM line_takes WHERE scene_id = ? "
                                              "ORDER BY rowid", (sid,)):
            if current(line, made):
                scene.takes.setdefault(line, []).append(take_id)
            elif line < len(states):
                stale.add(line)
        for line, take_id, info, made in db.execute("SELECT line, take_id, info, made_from FROM picks "
                                                    "WHERE scene_id = ?", (sid,)):
            if current(line, made):
                scene.picks[line] = (take_id, json.loads(info))
            elif line < len(states):
                stale.add(line)
        return replace(scene, stale=frozenset(stale - set(scene.picks)))

    def save_script(self, name: str, script: Script) -> Scene:
        """Create the scene, or replace its script: lines that did not change keep their takes and
        picks (a changed line's are stale), and characters still in the script keep their cast."""
        name, key = clean_scene_name(name), self._key(name)
        now = time.time()
        with self._db() as db:
            row = db.execute("SELECT id, script FROM scenes WHERE name_key = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO scenes VALUES (?, ?, ?, ?, ?, ?)", (uuid.uuid4().hex, name, key,
                                                                            json.dumps(script.as_dict()), now, now))
            else:
                sid = row[0]
                keep = [character_key(c) for c in script.characters]
                db.execute(f"DELETE FROM scene_cast WHERE scene_id = ? AND char_key NOT IN "
                           f"({','.join('?' * len(keep))})", (sid, *keep))
                db.execute("UPDATE scenes SET name = ?, script = ?, updated = ? WHERE id = ?",
                           (name, json.dumps(script.as_dict()), now, sid))
        return self.get(name)

    def set_cast(self, name: str, entry: CastEntry) -> Scene:
        """Cast a character; a changed voice makes that character's takes stale."""
        scene = self.get(name)
        key = character_key(entry.character)
        known = {character_key(c): c for c in scene.script.characters}
        if key not in known:
            raise SceneError(f"no character {entry.character!r} in scene {scene.name!r}; its characters are "
                             f"{', '.join(scene.script.characters)}")
        if entry.backend not in BACKENDS:
            raise SceneError(f"backend must be one of {', '.join(BACKENDS)}, got {entry.backend!r}")
        e = replace(entry, character=known[key])
        with self._db() as db:
            db.execute("INSERT OR REPLACE INTO scene_cast (scene_id, char_key, character, cast_member, backend, "
                       "rvc_voice, direction, language, member_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (scene.id, key, e.character, e.cast_member, e.backend, e.rvc_voice, e.direction, e.language,
                        e.member_id))
            db.execute("UPDATE scenes SET updated = ? WHERE id = ?", (time.time(), scene.id))
        return self.get(scene.name)

    # -- takes and picks ------------------------------------------------------------------------

    def add_take(self, scene_id: str, line: int, take_id: str, made_from: str) -> None:
        """Record a take of a line; `made_from` is the `line_state` the render read when it began."""
        with self._db() as db:
            db.execute("INSERT OR IGNORE INTO line_takes VALUES (?, ?, ?, ?)", (scene_id, line, take_id, made_from))

    def set_pick(self, scene_id: str, line: int, take_id: str, info: dict) -> None:
        """Pick one of the line's recorded takes; the pick is stale whenever that take is."""
        with self._db() as db:
            made = db.execute("SELECT made_from FROM line_takes WHERE scene_id = ? AND line = ? AND take_id = ?",
                              (scene_id, line, take_id)).fetchone()
            if made is None:
                raise SceneError(f"take {take_id!r} was not made for line {line + 1}")
            db.execute("INSERT OR REPLACE INTO picks VALUES (?, ?, ?, ?, ?)",
                       (scene_id, line, take_id, json.dumps(info, sort_keys=True), made[0]))
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
