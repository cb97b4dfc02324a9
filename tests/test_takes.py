"""The take store: takes persist with their audio, are circled and scored, swept after a crash, and a project
exports as a zip of audio with a take sheet that names every file."""
import csv
import io
import json
import zipfile

import numpy as np
import pytest
import soundfile as sf

from studio.takes import TakeError, TakeStore


def tone(seconds: float, sr: int, f0: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (0.3 * np.sin(2 * np.pi * f0 * t)).astype(np.float32)


def add(store: TakeStore, project="Pilot", line="Who goes there?", seed=1, similarity=None, user=None):
    return store.add(project=project, user=user, line=line, direction="whisper", instruct="whisper. Voice: old",
                     cast_member="Hale", backend="seed-vc", rvc_voice=None, settings={"diffusion_steps": 3},
                     seed=seed, tts_seed=7, batch_id="b1", audio=(tone(1.0, 22050), 22050),
                     tts_audio=(tone(1.0, 24000, 330) * 1.3, 24000), similarity=similarity)


def test_takes_persist_with_exact_tts_audio_and_survive_a_restart(tmp_path):
    store = TakeStore(tmp_path)
    first = add(store, seed=1, similarity=0.5)
    second = add(store, seed=2, line="Show yourself.")
    tts, sr = sf.read(first.tts_path, dtype="float32")
    assert sr == 24000 and np.array_equal(tts, tone(1.0, 24000, 330) * 1.3)  # float, not clipped or quantised
    assert sf.info(first.audio_path).samplerate == 22050

    again = TakeStore(tmp_path)  # a restart on the same home
    assert [t.take_id for t in again.list("Pilot")] == [first.take_id, second.take_id]
    got = again.get(first.take_id)
    assert (got.seed, got.tts_seed, got.similarity, got.settings) == (1, 7, 0.5, {"diffusion_steps": 3})
    d = got.as_dict()
    assert json.loads(json.dumps(d)) == d and "audio_path" not in d and d["instruct"] == "whisper. Voice: old"


def test_circle_scores_and_projects(tmp_path):
    store = TakeStore(tmp_path)
    a, b = add(store), add(store, project="Second", user="ann")
    assert store.circle(a.take_id, True).circled and store.get(a.take_id).circled
    assert not store.circle(a.take_id, False).circled
    scored = store.set_scores(a.take_id, similarity=0.8, intelligibility=0.9, score=0.85, rank=1)
    assert (scored.similarity, scored.intelligibility, scored.score, scored.rank) == (0.8, 0.9, 0.85, 1)
    assert store.set_scores(a.take_id, rank=2).similarity == 0.8  # None leaves a field as it is
    assert store.projects() == ["Second", "Pilot"] and store.projects(user="ann") == ["Second"]
    assert [t.take_id for t in store.list("Second", user="bob")] == []
    with pytest.raises(TakeError, match="no take with id 'nope'"):
        store.circle("nope", True)
    with pytest.raises(TakeError, match="keep it under 80"):
        add(store, project="x" * 81)


def test_leftovers_of_a_crash_are_swept_at_start(tmp_path):
    store = TakeStore(tmp_path)
    kept = add(store)
    (store.audio_dir / "dead.audio.partial.wav").write_bytes(b"half a file")
    (store.audio_dir / "0123.wav").write_bytes(b"audio whose row never committed")
    TakeStore(tmp_path)
    assert sorted(p.name for p in store.audio_dir.iterdir()) == sorted([kept.audio_path.name, kept.tts_path.name])


@pytest.mark.parametrize("fmt", ["wav", "flac", "mp3"])
def test_export_zip_holds_every_take_and_a_sheet_naming_them(tmp_path, fmt):
    store = TakeStore(tmp_path)
    takes = [add(store, seed=s, line=line) for s, line in [(1, "One."), (2, "One."), (3, "Two.")]]
    store.circle(takes[1].take_id, True)
    path = store.export("Pilot", fmt.upper(), tmp_path / "exports")
    with zipfile.ZipFile(path) as z:
        audio = sorted(n for n in z.namelist() if n.endswith(f".{fmt}"))
        sheet = json.loads(z.read("takes.json"))
        rows = list(csv.DictReader(io.StringIO(z.read("takes.csv").decode())))
        assert len(audio) == 3 and sorted(r["file"] for r in sheet) == audio == sorted(r["file"] for r in rows)
        assert [r["take_id"] for r in sheet] == [t.take_id for t in takes]
        assert [r["circled"] for r in sheet] == [False, True, False] and sheet[2]["instruct"] == "whisper. Voice: old"
        wave, sr = sf.read(io.BytesIO(z.read(audio[0])))
        assert sr == 22050 and abs(len(wave) / sr - 1.0) < 0.06  # mp3 adds encoder padding
    assert [p.name for p in (tmp_path / "exports").iterdir()] == [path.name]  # no temporary files left
    with pytest.raises(TakeError, match="choose one of wav, flac, mp3"):
        store.export("Pilot", "ogg", tmp_path)
    with pytest.raises(TakeError, match="'Empty' has no takes"):
        store.export("Empty", "wav", tmp_path)


def run_take(store: TakeStore, run_id: str, similarity, user=None, project="Pilot", line="Who goes there?"):
    return store.add(project=project, user=user, line=line, direction="whisper", instruct="whisper",
                     cast_member="Hale", backend="seed-vc", rvc_voice=None,
                     settings={"run_id": run_id, "run_seed": 4, "k": 3, "language": "english"}, seed=4, tts_seed=4,
                     batch_id="b", audio=(tone(0.2, 22050), 22050), tts_audio=(tone(0.2, 24000), 24000),
                     similarity=similarity)


def test_takes_of_a_run_killed_with_the_server_are_ranked_at_the_next_start(tmp_path):
    store = TakeStore(tmp_path)
    cut = [run_take(store, "r1", s) for s in (0.2, 0.7, None, 0.5)]   # the server died before the ranking
    other = [run_take(store, "r2", s) for s in (0.9, 0.1)]             # another run, ranked among its own
    for take, rank in zip(other, (2, 1)):   # a finished run: its ranks stay as they are
        store.set_scores(take.take_id, score=take.similarity, rank=rank)
    again = TakeStore(tmp_path)
    assert [again.get(t.take_id).rank for t in cut] == [3, 1, 4, 2]  # by similarity; the unscored one last
    assert [again.get(t.take_id).rank for t in other] == [2, 1]


def test_last_run_is_the_users_latest_cast_and_direct_run(tmp_path):
    store = TakeStore(tmp_path)
    assert store.last_run("ann") == []
    run_take(store, "r1", 0.4, user="ann")
    mine = [run_take(store, "r2", s, user="ann", project="Act 2", line="Halt!") for s in (0.3, 0.6)]
    run_take(store, "r3", 0.5, user="bob")
    run_take(store, "r4", 0.5, user="ann", project="scene: kitchen")   # a Scene render is not a Cast & Direct run
    assert [t.take_id for t in store.last_run("ann")] == [t.take_id for t in mine]
    assert [t.line for t in store.last_run("bob")] == ["Who goes there?"]
