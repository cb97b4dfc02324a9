"""The directing pipeline on tiny models, called as Python: K takes from one batched TTS call stream in one by one,
are ranked by similarity, can be reproduced alone from their seeds, and bad requests get clear messages."""
import numpy as np
import pytest
import soundfile as sf

from studio.direct import DirectError, DirectOptions, LineSpec, fold_instruct
from studio.engines import tts as tts_engine
from studio.service import Studio
from studio.settings import load_settings

pytestmark = pytest.mark.slow

# short takes and few diffusion steps keep the tiny models quick; the pipeline is the same
FAST = dict(tts={"max_new_tokens": 16}, diffusion_steps=2)


@pytest.fixture(scope="module")
def studio(new_home, espeak):
    s = Studio(load_settings(env={"STUDIO_HOME": str(new_home()), "TTS_DEVICE": "cpu", "SE_MODEL": "resemblyzer"}))
    ref = espeak("I have kept this lighthouse for thirty years and never once missed a night.", voice="en-us+f2")
    s.cast_upload(ref, "Nell", "a weathered lighthouse keeper")
    return s


@pytest.fixture(scope="module")
def run(studio):
    """One K=3 run (first take alone, the other two in one conversion call), with what was stored at each event."""
    calls = studio.designer().generate_calls
    events, stored = [], []
    for event in studio.director.direct("Who goes there?", "whisper with trembling fear", "Nell", k=3, seed=5,
                                        language="english", project="pipeline",
                                        options=DirectOptions(schedule="first", **FAST)):
        events.append(event)
        stored.append(len(studio.takes.list("pipeline")))
    return events, stored, studio.designer().generate_calls - calls


def test_takes_stream_in_one_by_one_from_one_tts_call(run):
    events, stored, tts_calls = run
    assert tts_calls == 1
    assert [e.kind for e in events] == ["tts", "take", "take", "take", "ranked"]
    assert [len(e.takes) for e in events[1:4]] == [1, 2, 3] and [e.done for e in events[1:4]] == [1, 2, 3]
    assert stored == [0, 1, 2, 3, 3]  # each take is kept as it is announced: take 1 while 2-3 are not made
    first = events[1].takes[0]
    assert sf.info(first.audio_path).samplerate == 22050 and sf.info(first.tts_path).samplerate == 24000
    assert first.instruct == "whisper with trembling fear. Voice: a weathered lighthouse keeper"
    assert first.settings["convert_style"] is False and first.settings["speaker_encoder"] == "resemblyzer"
    takes = events[-1].takes
    assert sorted(t.seed for t in takes) == [5, 6, 7] and {t.tts_seed for t in takes} == {5}
    assert len({t.batch_id for t in takes}) == 1


def test_ranking_order_equals_score_order(studio, run):
    ranked = run[0][-1].takes
    assert [t.rank for t in ranked] == [1, 2, 3]
    assert [t.similarity for t in ranked] == sorted((t.similarity for t in ranked), reverse=True)
    assert all(-1 <= t.similarity <= 1 for t in ranked)
    assert [studio.takes.get(t.take_id).rank for t in ranked] == [1, 2, 3]  # stored
    # any scorer: Scene passes a combined one; takes it cannot score rank last
    reverse = studio.director.rank(ranked, scorer=lambda t: -t.similarity)
    assert [t.take_id for t in reverse] == [t.take_id for t in ranked][::-1]
    partial = studio.director.rank(ranked, scorer=lambda t: None if t.rank == 1 else t.seed)
    assert [t.seed for t in partial] == sorted((t.seed for t in ranked[1:]), reverse=True) + [ranked[0].seed]


def test_a_take_reproduced_alone_equals_the_take_from_the_batch(studio, run):
    takes = run[0][-1].takes
    batched = max(takes, key=lambda t: t.seed)  # converted in the batch of two
    wave, sr = studio.director.reproduce(batched.take_id)
    stored, stored_sr = sf.read(batched.audio_path, dtype="float32")
    assert sr == stored_sr and wave.shape == stored.shape
    # the stored take is 16-bit: allow one quantisation step on top of a relative tolerance
    np.testing.assert_allclose(wave, stored, rtol=1e-4, atol=1.5 / 32768)
    other, _ = studio.director.reproduce(min(takes, key=lambda t: t.seed).take_id)
    assert np.abs(other[: wave.size] - wave[: other.size]).max() > 1e-2  # a different seed is a different take


def test_reroll_makes_new_takes_of_the_same_line(studio, run):
    old = run[0][-1].takes
    events = list(studio.director.reroll(old[0].take_id, k=1, options=DirectOptions(**FAST)))
    [new] = events[-1].takes
    assert (new.line, new.direction, new.cast_member, new.project) == (old[0].line, old[0].direction, "Nell",
                                                                      "pipeline")
    assert new.batch_id not in {t.batch_id for t in old}


def test_lines_share_batched_tts_calls_and_each_is_ranked_when_its_takes_are_made(studio, monkeypatch):
    monkeypatch.setattr(tts_engine, "MAX_SAMPLES", 4)
    lines = [LineSpec("Over here!", "shout", "Nell"), LineSpec("Quiet now.", "hushed", "Nell")]
    calls = studio.designer().generate_calls
    events = list(studio.director.direct_lines(lines, 3, 1, "lines", options=DirectOptions(**FAST)))
    assert studio.designer().generate_calls - calls == 2  # 6 rows in calls of at most 4
    # line 0's three rows come in the first call, so it is converted and ranked before the second call
    assert [(e.kind, e.line) for e in events] == [("tts", 1)] + [("take", 0)] * 3 + [("ranked", 0), ("tts", 1)] \
        + [("take", 1)] * 3 + [("ranked", 1)]
    assert [t.line for t in events[4].takes] == ["Over here!"] * 3


def test_a_cast_member_deleted_mid_run_leaves_the_run_to_finish_and_can_come_back(studio, espeak):
    ref = espeak("Every morning I walk the length of the beach and count the gulls.", voice="en-us+m7")
    studio.cast_upload(ref, "Gull", "")
    run = studio.director.direct("Look out!", "urgent", "Gull", k=3, seed=2, project="deleted",
                                 options=DirectOptions(schedule="each", **FAST))
    assert next(run).kind == "tts" and next(run).kind == "take"
    studio.cast_delete("Gull")
    assert [e.kind for e in run] == ["take", "take", "ranked"]  # the run keeps the voice it started with
    takes = studio.takes.list("deleted")
    assert len(takes) == 3 and {t.cast_member for t in takes} == {"Gull"}
    with pytest.raises(DirectError, match="cast member 'Gull' was deleted; its takes cannot be re-converted"):
        studio.director.reproduce(takes[2].take_id)
    studio.cast_restore("Gull")
    wave, _ = studio.director.reproduce(takes[2].take_id)  # the restored member is the one the takes name
    np.testing.assert_allclose(wave, sf.read(takes[2].audio_path, dtype="float32")[0], rtol=1e-4,
                               atol=1.5 / 32768)


def test_rvc_takes_are_ranked_against_the_cast_member_and_reproducible(studio, tmp_path):
    import rvc.tiny

    paths = {"voice": tmp_path / "Hale.pth", "index": tmp_path / "Hale.index"}
    rvc.tiny.build_tiny(paths, rvc.tiny.tiny_dims())
    studio.rvc_upload([paths["voice"], paths["index"]], "Director Hale")
    options = DirectOptions(schedule="batch", vc={"f0_method": "fcpe"}, **FAST)
    events = list(studio.director.direct("Steady.", "calm", "Nell", k=2, backend="rvc", rvc_voice="Director Hale",
                                         seed=3, project="rvc", options=options))
    ranked = events[-1].takes
    assert [t.rank for t in ranked] == [1, 2] and ranked[0].similarity >= ranked[1].similarity
    assert {t.backend for t in ranked} == {"rvc"} and {t.sample_rate for t in ranked} == {40000}
    wave, _ = studio.director.reproduce(ranked[1].take_id)
    np.testing.assert_allclose(wave, sf.read(ranked[1].audio_path, dtype="float32")[0], rtol=1e-4,
                               atol=1.5 / 32768)


@pytest.mark.parametrize("kwargs, words", [
    (dict(k=0), "number of takes must be between 1 and 10, got 0"),
    (dict(k=11), "number of takes must be between 1 and 10, got 11"),
    (dict(line=""), "the line is empty"),
    (dict(line="la " * 120), "the line is 359 characters; keep it under 300"),
    (dict(direction="slow " * 50), "the direction is 249 characters; keep it under 200"),
    (dict(cast_member="Nobody"), "no cast member named 'Nobody'"),
    (dict(cast_member=""), "pick a cast member"),
    (dict(backend="rvc", rvc_voice="Nobody"), "no RVC voice named 'Nobody'"),
    (dict(backend="rvc"), "pick an RVC voice"),
    (dict(backend="tortoise"), "backend must be one of seed-vc, rvc"),
    (dict(seed=-3), "seed must be a whole number from 0 to"),
    (dict(language="klingon"), "Unknown language 'klingon'. Choose one of: auto, english"),
    (dict(project="p" * 81), "keep it under 80"),
])
def test_bad_requests_get_clear_messages_before_any_model_runs(studio, kwargs, words):
    request = dict(line="Hello.", direction="calm", cast_member="Nell") | kwargs
    with pytest.raises(ValueError, match=words):
        studio.director.direct(**request)


def test_the_instruct_folds_in_the_cast_description_within_the_tts_limit():
    assert fold_instruct("whisper", "", 500) == "whisper"
    assert fold_instruct("Shout.", "a gruff pirate", 500) == "Shout. Voice: a gruff pirate"
    long = fold_instruct("shout", "very " * 200, 500)
    assert len(long) <= 500 and long.startswith("shout. Voice: very") and long.endswith("…")


def test_a_run_closed_after_two_takes_ranks_the_takes_it_kept_and_shows_as_the_users_last_run(studio):
    run = studio.director.direct("Stay back!", "afraid", "Nell", k=3, seed=8, project="closed", user="ann",
                                 options=DirectOptions(schedule="each", **FAST))
    assert next(run).kind == "tts"
    during = studio.director.last_run("ann")   # a reload now shows the run in progress
    assert during.running and (during.spec.line, during.k, during.seed, during.takes) == ("Stay back!", 3, 8, [])
    assert next(run).kind == "take" and next(run).kind == "take"
    assert len(studio.director.last_run("ann").takes) == 2 and studio.director.last_run("bob") is None
    run.close()   # the job was cancelled, or the page closed
    kept = studio.takes.list("closed", "ann")
    by_rank = sorted(kept, key=lambda t: t.rank)
    assert len(kept) == 2 and [t.rank for t in by_rank] == [1, 2]
    assert by_rank[0].similarity >= by_rank[1].similarity
    after = studio.director.last_run("ann")
    assert not after.running and [t.take_id for t in after.takes] == [t.take_id for t in kept]
    assert (after.spec.line, after.spec.direction, after.spec.cast_member, after.k, after.seed, after.project) == (
        "Stay back!", "afraid", "Nell", 3, 8, "closed")


def page_load(demo, name: str, user: str) -> dict:
    """Run the page-load event `name` as `user` would on opening the page: its outputs by elem_id."""
    import gradio as gr

    [event] = [f for f in demo.fns.values() if f.name == name and any(t[1] == "load" for t in f.targets)]
    values = event.fn(request=gr.Request(username=user))
    return {o.elem_id: v for o, v in zip(event.outputs, values) if o.elem_id}


def test_a_page_reload_brings_back_the_users_last_run_and_scenes(studio):
    from studio.ui.app import build_app

    events = list(studio.director.direct("Who's there?", "hushed", "Nell", k=2, seed=3, language="english",
                                         project="reload", user="cara", options=DirectOptions(**FAST)))
    studio.scenes.for_user("cara").import_script("ANNA: You came back.", "Kitchen")
    demo = build_app(studio)
    page = page_load(demo, "direct_last", "cara")
    assert (page["direct_line"], page["direct_direction"], page["direct_k"], page["direct_seed"],
            page["direct_project"]) == ("Who's there?", "hushed", 2, 3, "reload")
    assert page["direct_cast"]["value"] == "Nell" and "Nell" in page["direct_cast"]["choices"]
    made = sorted(events[-1].takes, key=lambda t: t.created)   # in the slots as after the run, ranks with them
    assert [page[f"direct_take_{i}"] for i in (1, 2, 3)] == [str(t.audio_path) for t in made] + [None]
    assert [(t["take_id"], t["rank"]) for t in page["direct_takes"]] == [(t.take_id, t.rank) for t in made]
    other = page_load(demo, "direct_last", "dan")   # with logins, another user's run is not theirs
    assert "value" not in other["direct_line"] and other["direct_takes"] == {"__type__": "update"}
    scenes = page_load(demo, "list_scenes", "cara")
    assert scenes["scene_list"] == [["Kitchen", 1, 0, 0, scenes["scene_list"][0][4]]]
    assert page_load(demo, "list_scenes", "dan")["scene_list"] == []
