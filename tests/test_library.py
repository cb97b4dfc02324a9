import os

import numpy as np
import pytest

from studio import durable
from studio.audio import REFERENCE_SR, save_audio
from studio.library import Library, LibraryError, connect
from studio.scene import CastEntry, SceneStore
from studio.script import character_key, parse_script
from studio.takes import TakeStore, clean_project
from studio.voices import RVCVoices


def voice(seconds=3.0, f=180.0):
    t = np.arange(int(seconds * REFERENCE_SR)) / REFERENCE_SR
    return (0.3 * np.sin(2 * np.pi * f * t)).astype(np.float32)


def test_members_persist_across_restarts(tmp_path):
    lib = Library(tmp_path)
    lib.add("Captain Hale", voice(), REFERENCE_SR, "gravelly sea captain", "english")
    again = Library(tmp_path)
    [m] = again.list()
    assert (m.name, m.description, m.language, m.origin) == ("Captain Hale", "gravelly sea captain", "english",
                                                             "designed")
    wave, sr = again.reference("captain hale")
    assert sr == REFERENCE_SR and len(wave) == 3 * REFERENCE_SR


def test_names_are_user_text_never_paths(tmp_path):
    lib = Library(tmp_path)
    m = lib.add("../../etc/passwd", voice(), REFERENCE_SR)
    assert m.audio_path.parent == tmp_path / "cast" and ".." not in m.audio_path.name
    assert not (tmp_path.parent / "etc").exists()
    assert lib.get("../../etc/passwd").id == m.id


def test_rename_delete_and_clear_errors(tmp_path):
    lib = Library(tmp_path)
    a = lib.add("Ann", voice(), REFERENCE_SR)
    lib.add("Bob", voice(f=120), REFERENCE_SR)
    with pytest.raises(LibraryError, match="already exists"):
        lib.add("ann", voice(), REFERENCE_SR)
    with pytest.raises(LibraryError, match="already exists"):
        lib.rename("Bob", "ANN")
    assert lib.rename("Ann", "Annie").name == "Annie"
    lib.delete("Annie")
    assert [m.name for m in lib.list()] == ["Bob"]
    with pytest.raises(LibraryError, match="no cast member named 'Annie'"):
        lib.delete("Annie")
    assert a.audio_path.exists()  # in the trash, restorable
    for bad, words in [("", "give the cast member a name"), ("x" * 81, "keep it under 80"),
                       ("a\x00b", "control characters")]:
        with pytest.raises(LibraryError, match=words):
            lib.add(bad, voice(), REFERENCE_SR)


def test_a_failed_write_leaves_no_half_member(tmp_path, monkeypatch):
    lib = Library(tmp_path)
    lib.add("Ann", voice(), REFERENCE_SR)

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("studio.durable.os.replace", crash)
    with pytest.raises(OSError):
        lib.add("Bob", voice(), REFERENCE_SR)
    monkeypatch.undo()
    restarted = Library(tmp_path)  # the leftover partial file is swept on start
    assert [m.name for m in restarted.list()] == ["Ann"]
    assert sorted(p.name for p in (tmp_path / "cast").iterdir()) == [restarted.list()[0].audio_path.name]


def test_deleted_members_can_be_restored_until_purged(tmp_path, monkeypatch):
    lib = Library(tmp_path, trash_days=14)
    ann = lib.add("Ann", voice(), REFERENCE_SR, "first mate", "english")
    lib.delete("ann")
    assert lib.list() == []
    restarted = Library(tmp_path, trash_days=14)  # the orphan sweep keeps a trashed member's audio
    back = restarted.restore("ANN")
    assert (back.id, back.name, back.description) == (ann.id, "Ann", "first mate")
    assert np.array_equal(restarted.reference("Ann")[0], lib.reference(ann.id)[0])
    with pytest.raises(ValueError, match="no deleted cast member named 'Ann'"):
        restarted.restore("Ann")

    restarted.delete("Ann")
    restarted.add("Ann", voice(f=120), REFERENCE_SR)
    with pytest.raises(ValueError, match="a cast member named 'Ann' exists again; rename it"):
        restarted.restore("Ann")
    restarted.rename("Ann", "Ann II")
    assert restarted.restore("Ann").id == ann.id

    restarted.delete("Ann")
    later = __import__("time").time() + 15 * 86400
    monkeypatch.setattr("studio.trash.time.time", lambda: later)
    Library(tmp_path, trash_days=14)  # start-up purges what was deleted more than 14 days ago
    assert not ann.audio_path.exists()
    with pytest.raises(ValueError, match="no deleted cast member"):
        restarted.restore("Ann")


def test_language_is_stored_in_one_spelling_and_unknown_ones_are_refused(tmp_path):
    lib = Library(tmp_path)
    assert lib.add("Ann", voice(), REFERENCE_SR, language=" English").language == "english"
    assert lib.add("Bob", voice(f=120), REFERENCE_SR, language="AUTO").language == "auto"
    with pytest.raises(ValueError, match="Unknown language 'Klingon'. Choose one of: auto, english"):
        lib.add("Worf", voice(), REFERENCE_SR, language="Klingon")
    assert [m.name for m in lib.list()] == ["Bob", "Ann"]


@pytest.fixture
def disk_events(monkeypatch):
    """In order: the inode of everything os.fsync puts on disk, and "db" whenever a store opens its database."""
    events = []
    real_fsync, real_connect = os.fsync, durable.connect

    def fsync(fd):
        events.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    def connect(*args, **kwargs):
        events.append("db")
        return real_connect(*args, **kwargs)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(durable, "connect", connect)
    return events


def test_saved_audio_is_on_disk_with_its_folder_entry(tmp_path, disk_events):
    """A power cut cannot be simulated: what it needs is the file's bytes synced, then the folder holding its name."""
    path = save_audio(tmp_path / "take.flac", voice(), REFERENCE_SR)
    assert disk_events == [path.stat().st_ino, tmp_path.stat().st_ino]


def test_files_are_on_disk_before_the_row_that_names_them_commits(tmp_path, disk_events):
    import rvc.tiny

    def synced_before_the_row(*paths):
        row = disk_events.index("db")
        assert all(p.stat().st_ino in disk_events[:row] for p in paths), disk_events
        disk_events.clear()

    library, takes, voices = Library(tmp_path), TakeStore(tmp_path), RVCVoices(tmp_path)
    disk_events.clear()
    member = library.add("Ann", voice(), REFERENCE_SR)
    synced_before_the_row(member.audio_path, member.audio_path.parent)
    take = takes.add(project="Pilot", line="Who goes there?", direction="", instruct="", cast_member="Ann",
                     backend="seed-vc", rvc_voice=None, settings={}, seed=1, tts_seed=2, batch_id="b",
                     audio=(voice(), REFERENCE_SR), tts_audio=(voice(), REFERENCE_SR))
    synced_before_the_row(take.audio_path, take.tts_path, take.audio_path.parent)
    rvc.tiny.build_tiny({"voice": tmp_path / "Hale.pth"}, rvc.tiny.tiny_dims())
    hale = voices.add("Hale", [tmp_path / "Hale.pth"])
    synced_before_the_row(hale.model_path, hale.folder, hale.folder.parent)


def test_every_store_opens_its_database_the_same_durable_way(tmp_path):
    """WAL with synchronous=FULL: a commit that returned survives a power cut (one helper, every store)."""
    def pragmas(db):
        return {name: db.execute(f"PRAGMA {name}").fetchone()[0] for name in durable.PRAGMAS}

    assert durable.PRAGMAS == {"journal_mode": "wal", "synchronous": 2}
    with connect(tmp_path) as db:
        assert pragmas(db) == durable.PRAGMAS
    with TakeStore(tmp_path)._db() as db:
        assert pragmas(db) == durable.PRAGMAS
    with SceneStore(tmp_path)._db() as db:
        assert pragmas(db) == durable.PRAGMAS


# -- one rule for every name a person gives (studio.names) ------------------------------------------

COMPOSED, DECOMPOSED = "\u1e30eeper", "K\u0301eeper"       # the same name to a reader, two code sequences


def namers(home):
    """Every place a user names something: (what, name it -> the name kept, find it by name -> its name)."""
    lib, voices, scenes = Library(home), RVCVoices(home), SceneStore(home)
    scenes.save_script("cast", parse_script(f"{COMPOSED}: Hello."))
    return [
        ("cast member", lambda n: lib.add(n, voice(), REFERENCE_SR).name, lambda n: lib.get(n).name),
        ("RVC voice", lambda n: voices.add(n, []).name, None),
        ("scene", lambda n: scenes.save_script(n, parse_script("A: hi")).name, lambda n: scenes.get(n).name),
        ("character", lambda n: parse_script(f"{n}: Hello.").characters[0],
         lambda n: scenes.set_cast("cast", CastEntry(n, "Ada")).cast[character_key(n)].character),
        ("project", clean_project, clean_project),
    ]


@pytest.mark.parametrize("bad", ["Ann\u202eA", "Ann\u200bA", "Ann\u2066A", "Ann\x1bA", "Ann\x07"])
def test_control_and_bidi_characters_are_refused_in_every_name(tmp_path, bad):
    for what, name, _ in namers(tmp_path):
        with pytest.raises(ValueError, match="name contains control characters"):
            name(bad)


def test_composed_and_decomposed_spellings_are_one_name_everywhere(tmp_path):
    lib = Library(tmp_path)
    kept = lib.add(DECOMPOSED, voice(), REFERENCE_SR)
    assert kept.name == COMPOSED and lib.get(COMPOSED).id == kept.id
    with pytest.raises(LibraryError, match="already exists"):
        lib.add(COMPOSED.upper(), voice(), REFERENCE_SR)
    lib.delete(COMPOSED)
    assert lib.restore(DECOMPOSED).id == kept.id
    for what, name, find in namers(tmp_path / "all"):
        if find is not None:   # (an RVC voice needs a model file; it shares the cast members' code)
            assert name(DECOMPOSED) == COMPOSED, what
            assert find(COMPOSED) == find(DECOMPOSED) == COMPOSED, what


@pytest.mark.parametrize("name, words", [
    (lambda home: Library(home).add(" ", voice(), REFERENCE_SR), "give the cast member a name"),
    (lambda home: RVCVoices(home).add("", []), "give the RVC voice a name"),
    (lambda home: SceneStore(home).save_script("\t", parse_script("A: hi")), "give the scene a name"),
])
def test_a_missing_name_says_what_needs_one(tmp_path, name, words):
    with pytest.raises(ValueError, match=words):
        name(tmp_path)
    assert clean_project("  ") == "default"
