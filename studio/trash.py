"""The library's trash: deleted rows kept restorable for STUDIO_TRASH_DAYS.

Any library table with `id`, `name` and `name_key` columns can use it (trainings, which live in folders,
keep their own row through `put`/`take`). Deleting
moves the row (as JSON) into the `trash` table in the same transaction, so a crash
leaves it either live or trashed; its files stay where they are (the owner's
orphan sweep keeps files named by trashed rows). Restoring moves the row back in one
transaction; purging drops rows older than the keep time and hands them back so
the owner can remove their files after the commit.

    with connect(home) as db: trash.discard(db, "cast", "cast_members", member_id)
"""
from __future__ import annotations

import json
import sqlite3
import time
import uuid

from . import names

SCHEMA = """
CREATE TABLE IF NOT EXISTS trash (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    item_id TEXT NOT NULL,
    name TEXT NOT NULL,
    row TEXT NOT NULL,
    deleted REAL NOT NULL
);
"""
DAY_S = 86400.0


class TrashError(ValueError):
    """A restore that cannot be done; the message is shown to the user."""


def discard(db: sqlite3.Connection, kind: str, table: str, item_id: str) -> None:
    """Move one row of `table` into the trash (inside the caller's transaction)."""
    cursor = db.execute(f"SELECT * FROM {table} WHERE id = ?", (item_id,))
    values = cursor.fetchone()
    if values is None:
        raise TrashError(f"nothing to delete: {item_id!r} is gone")
    row = dict(zip((c[0] for c in cursor.description), values))
    put(db, kind, item_id, row)
    db.execute(f"DELETE FROM {table} WHERE id = ?", (item_id,))


def put(db: sqlite3.Connection, kind: str, item_id: str, row: dict) -> None:
    """Record one trashed item (`row` holds at least its "name"; inside the caller's transaction)."""
    db.execute("INSERT INTO trash VALUES (?,?,?,?,?,?)",
               (uuid.uuid4().hex, kind, item_id, row["name"], json.dumps(row), time.time()))


def take(db: sqlite3.Connection, kinds: tuple[str, ...], name: str, what: str) -> tuple[str, dict]:
    """Remove the most recently trashed item of `kinds` called `name` (or with that id) from the trash;
    returns (its kind, its row). `what` names the kind for messages ("cast member")."""
    key = " ".join(str(name or "").split())
    marks = ",".join("?" * len(kinds))
    candidates = db.execute(f"SELECT id, row, item_id, name, kind FROM trash WHERE kind IN ({marks}) "
                            "ORDER BY deleted DESC", kinds)
    found = next((c for c in candidates if key in (c[2], c[3]) or names.key(c[3]) == names.key(key)), None)
    if found is None:
        raise TrashError(f"no deleted {what} named {key!r} in the trash")
    db.execute("DELETE FROM trash WHERE id = ?", (found[0],))
    return found[4], json.loads(found[1])


def restore(db: sqlite3.Connection, kind: str, table: str, name: str, what: str) -> str:
    """Put the most recently trashed `kind` row called `name` (or with that id) back; returns its id.

    `what` names the kind for messages ("cast member").
    """
    _, row = take(db, (kind,), name, what)
    columns = ", ".join(row)
    try:
        db.execute(f"INSERT INTO {table} ({columns}) VALUES ({', '.join('?' * len(row))})", tuple(row.values()))
    except sqlite3.IntegrityError:
        raise TrashError(f"a {what} named {row['name']!r} exists again; rename it, then restore") from None
    return row["id"]


def rows(db: sqlite3.Connection, kind: str) -> list[dict]:
    """The trashed rows of one kind (for the owner's orphan sweep)."""
    return [json.loads(r[0]) for r in db.execute("SELECT row FROM trash WHERE kind = ?", (kind,))]


def listing(db: sqlite3.Connection, keep_days: int) -> list[dict]:
    """Everything in the trash, newest first, with the date it will be purged."""
    out = []
    for kind, name, deleted in db.execute("SELECT kind, name, deleted FROM trash ORDER BY deleted DESC"):
        out.append({"kind": kind, "name": name, "deleted": _stamp(deleted),
                    "purged_after": _stamp(deleted + keep_days * DAY_S)})
    return out


def purge(db: sqlite3.Connection, kind: str, keep_days: int, now: float | None = None) -> list[dict]:
    """Drop `kind` rows trashed more than keep_days ago; returns them so their files can be removed after commit."""
    cutoff = (time.time() if now is None else now) - keep_days * DAY_S
    expired = db.execute("SELECT row FROM trash WHERE kind = ? AND deleted <= ?", (kind, cutoff)).fetchall()
    db.execute("DELETE FROM trash WHERE kind = ? AND deleted <= ?", (kind, cutoff))
    return [json.loads(r[0]) for r in expired]


def _stamp(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))
