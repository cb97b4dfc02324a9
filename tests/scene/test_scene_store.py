"""The scene store: names are never paths, edits keep what did not change, re-casting invalidates."""
import json
import sqlite3
from contextlib import closing

import numpy as np
import pytest

from studio.audio import REFERENCE_SR
from studio.library import Library
from studio.scene import CastEntry, SceneError, SceneStore, script_text
from studio.scene_render import NEUTRAL_DIRECTION, join_direction
from studio.script import parse_script


def test_names_are_rows_not_paths(tmp_path):
    store = SceneStore(tmp_path)
    scene = store.save_script("../../etc/passwd", parse_script("A: hi"))
    assert store.get("../../ETC/passwd").id == scene.id
    assert {p.name for p in tmp_path.rglob("*")} <= {"scenes.db", "scenes.db-shm", "scenes.db-wal"}
    with pytest.raises(SceneError, match="no scene named 'other'"):
        store.get("other")
    with pytest.raises(SceneError, match="keep it under 60"):
        store.save_script("x" * 61, parse_script("A: hi"))


def test_a_new_script_keeps_the_picks_of_unchanged_lines(tmp_path):
    store = SceneStore(tmp_path)
    store.save_script("s", parse_script("A: one\nB: two\nC: three"))
    s = store.set_cast("s", CastEntry("c", "Ada"))
    for line in range(3):
        store.add_take(s.id, line, f"t{line}", s.state(line))
        store.set_pick(s.id, line, f"t{line}", {"score": 0.5})
    s = store.save_script("s", parse_script("A: one\nB: two, changed"))
    assert s.picks == {0: ("t0", {"score": 0.5})} and s.takes == {0: ["t0"]}
    assert s.cast == {} and s.uncast() == ["A", "B"]          # C left the scene, and with it its cast


def test_recasting_a_character_makes_its_lines_pending(tmp_path):
    store = SceneStore(tmp_path)
    s = store.save_script("s", parse_script("A: one\nB: two\nA: three"))
    store.set_cast("s", CastEntry("a", "Ada"))
    s = store.set_cast("s", CastEntry("B", "Max"))
    for line in range(3):
        store.add_take(s.id, line, f"t{line}", s.state(line))
        store.set_pick(s.id, line, f"t{line}", {})
    assert set(store.set_cast("s", CastEntry("A", "Ada")).picks) == {0, 1, 2}   # same voice: nothing lost
    recast = store.set_cast("s", CastEntry("A", "Max"))
    assert set(recast.picks) == {1} and recast.stale == {0, 2} and set(recast.takes) == {1}
    with pytest.raises(SceneError, match="no character 'Z' in scene 's'; its characters are A, B"):
        store.set_cast("s", CastEntry("Z", "Max"))
    with pytest.raises(SceneError, match="backend must be one of seed-vc, rvc"):
        store.set_cast("s", CastEntry("A", "Max", backend="tts"))


def test_directions_join_within_the_bound():
    assert join_direction("whispering", "gruff old sailor.") == "whispering. gruff old sailor"
    assert join_direction("", "") == NEUTRAL_DIRECTION
    assert len(join_direction("a" * 150, "b" * 150)) == 200


def test_with_logins_each_owner_has_their_own_scenes_of_any_name(tmp_path):
    shared = SceneStore(tmp_path)
    ann, bob = shared.for_owner("ann"), shared.for_owner("bob")
    mine = ann.save_script("Kitchen", parse_script("A: mine"))
    with pytest.raises(SceneError, match=r"no scene named 'kitchen' \(scenes: none yet\)"):
        bob.get("kitchen")
    theirs = bob.save_script("kitchen", parse_script("B: theirs"))
    ann.save_script("Attic", parse_script("A: up here"))
    assert mine.id != theirs.id and ann.get("KITCHEN").script.lines[0].text == "mine"
    assert ann.names() == ["Attic", "Kitchen"] and bob.names() == ["kitchen"] and shared.names() == []
    with pytest.raises(SceneError, match=r"\(scenes: kitchen\)"):
        bob.get("attic")


def test_takes_made_from_a_line_edited_meanwhile_come_back_stale(tmp_path):
    """A render reads the line, the director edits it, then the render stores its take: the order two
    concurrent requests take. The old words are never picked, and the line is the one left to render."""
    store = SceneStore(tmp_path)
    store.save_script("s", parse_script("A: one\nA: two"))
    before = store.set_cast("s", CastEntry("A", "Ada"))
    store.save_script("s", parse_script("A: one\nA: two, changed"))
    for line in range(2):
        store.add_take(before.id, line, f"t{line}", before.state(line))
        store.set_pick(before.id, line, f"t{line}", {})
    s = store.get("s")
    assert s.picks == {0: ("t0", {})} and s.takes == {0: ["t0"]} and s.stale == {1}
    with pytest.raises(SceneError, match="was not made for line 1"):
        store.set_pick(s.id, 0, "t1", {})


def test_an_old_database_resolves_cast_names_to_ids_once(tmp_path):
    """scenes.db from before cast ids: its names become the members' ids at open, and its picks stay."""
    keeper = Library(tmp_path).add("Keeper", np.zeros(REFERENCE_SR, np.float32), REFERENCE_SR)
    script = parse_script("A: one\nB: two")
    with closing(sqlite3.connect(tmp_path / "scenes.db")) as db, db:
        db.executescript(OLD_SCHEMA)
        db.execute("INSERT INTO scenes VALUES ('sid', 's', 's', ?, 0, 0)", (json.dumps(script.as_dict()),))
        db.executemany("INSERT INTO scene_cast VALUES ('sid', ?, ?, ?, 'seed-vc', NULL, '', 'auto')",
                       [("a", "A", "Keeper"), ("b", "B", "Gone")])
        for line in range(2):
            db.execute("INSERT INTO line_takes VALUES ('sid', ?, ?)", (line, f"t{line}"))
            db.execute("INSERT INTO picks VALUES ('sid', ?, ?, '{}')", (line, f"t{line}"))
    s = SceneStore(tmp_path).get("s")
    assert s.cast["a"].member_id == keeper.id and s.cast["b"].member_id is None    # "Gone" was deleted before
    assert set(s.picks) == {0, 1} and s.stale == set()
    Library(tmp_path).rename("Keeper", "Warden")
    Library(tmp_path).add("Gone", np.zeros(REFERENCE_SR, np.float32), REFERENCE_SR)   # a new member, not B's
    again = SceneStore(tmp_path).get("s")                       # resolved once: a second open changes nothing
    assert again.cast == s.cast and set(again.picks) == {0, 1}


OLD_SCHEMA = """
CREATE TABLE scenes (id TEXT PRIMARY KEY, name TEXT NOT NULL, name_key TEXT NOT NULL UNIQUE, script TEXT NOT NULL,
    created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE scene_cast (scene_id TEXT NOT NULL, char_key TEXT NOT NULL, character TEXT NOT NULL, cast_member TEXT,
    backend TEXT NOT NULL, rvc_voice TEXT, direction TEXT NOT NULL, language TEXT NOT NULL,
    PRIMARY KEY (scene_id, char_key));
CREATE TABLE line_takes (scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL,
    PRIMARY KEY (scene_id, take_id));
CREATE TABLE picks (scene_id TEXT NOT NULL, line INTEGER NOT NULL, take_id TEXT NOT NULL, info TEXT NOT NULL,
    PRIMARY KEY (scene_id, line));
"""


def test_the_scene_list_shows_each_owners_scenes_most_recent_first_with_counts(tmp_path):
    ann, bob = SceneStore(tmp_path, "ann"), SceneStore(tmp_path, "bob")
    assert ann.list_scenes() == []
    first = ann.save_script("Kitchen", parse_script("A: one\nB (softly): two\nA: three"))
    ann.save_script("Garden", parse_script("A: hi"))
    bob.save_script("Cellar", parse_script("C: boo"))
    ann.add_take(first.id, 0, "t0", first.state(0))
    ann.add_take(first.id, 0, "t1", first.state(0))
    ann.add_take(first.id, 1, "t2", first.state(1))
    ann.set_pick(first.id, 0, "t1", {"score": 0.5})   # a change: Kitchen is now the latest
    listed = ann.list_scenes()
    assert [(s["name"], s["lines"], s["rendered"], s["picked"]) for s in listed] == [("Kitchen", 3, 2, 1),
                                                                                    ("Garden", 1, 0, 0)]
    assert all(len(s["updated"]) == len("2026-01-01 12:00:00") for s in listed)
    assert [s["name"] for s in bob.list_scenes()] == ["Cellar"] and SceneStore(tmp_path).list_scenes() == []


def test_an_opened_scenes_script_reads_back_as_the_same_lines(tmp_path):
    fountain = "INT. KITCHEN - NIGHT\n\nANNA\n(quietly)\nYou came back.\n\nBEN\nI never left.\n"
    script = parse_script(fountain)
    again = parse_script(script_text(script))
    assert again.lines == script.lines and [n.text for n in again.notes] == [n.text for n in script.notes]
