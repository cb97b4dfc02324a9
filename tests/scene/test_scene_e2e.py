"""Scene mode on tiny models, through gradio_client as a director's script would drive it."""
import csv
import io
import re
import zipfile

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from studio.direct import DirectOptions
from studio.mix import MIX
from studio.script import Line, Script, read_script_file
from studio.scene import SceneError

pytestmark = pytest.mark.slow

SCRIPT = """Title: Kitchen

INT. KITCHEN - NIGHT

Rain on the window.

ANNA
(quietly)
You came back.

BOB
I never left.

CLARA
Both of you, stop.
"""
# Tiny TTS takes run to their frame budget; a short budget keeps the test to seconds per take.
SHORT = DirectOptions(tts={"max_new_tokens": 16})


@pytest.fixture(scope="module")
def served(new_home, launch_studio, shared_dir):
    home = new_home()
    url, studio, close = launch_studio(home, ASR_MODEL="pocketsphinx")
    studio.scenes.options = SHORT
    client = Client(url, verbose=False)
    female, sr = sf.read(shared_dir / "audio" / "cmu_arctic_female_a0009.wav", dtype="float32")
    ref = home / "ada.wav"
    sf.write(ref, np.concatenate([female, female]), sr)       # 6 s: a reference needs 3 s of speech
    client.predict(handle_file(str(ref)), "Ada", "", "english", api_name="/cast_upload")
    client.predict(handle_file(str(shared_dir / "audio" / "cmu_arctic_male_a0007.wav")), "Max", "", "english",
                   api_name="/cast_upload")
    yield client, studio
    close()


def table(out) -> list[dict]:
    return [dict(zip(out["headers"], row)) for row in out["data"]]


def test_fountain_scene_renders_exports_and_rerolls_one_line(served, tmp_path):
    client, studio = served
    imported = client.predict(SCRIPT, "kitchen", api_name="/scene_import")
    assert imported["characters"] == ["ANNA", "BOB", "CLARA"]
    assert [(x["character"], x["text"], x["direction"]) for x in imported["lines"]] == [
        ("ANNA", "You came back.", "quietly"), ("BOB", "I never left.", ""), ("CLARA", "Both of you, stop.", "")]
    assert [n["kind"] for n in imported["notes"]] == ["scene_heading", "action"]

    with pytest.raises(Exception, match="not cast yet: ANNA, BOB, CLARA"):
        client.predict("kitchen", 2, 1, api_name="/scene_render")
    client.predict("kitchen", "anna", "Ada", api_name="/scene_cast")
    client.predict("kitchen", "BOB", "Max", "seed-vc", None, "gruff", api_name="/scene_cast")
    cast = client.predict("kitchen", "Clara", "Ada", direction="tired", api_name="/scene_cast")
    assert [c["cast_member"] for c in cast["cast"]] == ["Ada", "Max", "Ada"]
    with pytest.raises(Exception, match="no character 'DAVE' in scene 'kitchen'"):
        client.predict("kitchen", "DAVE", "Max", api_name="/scene_cast")

    job = client.submit("kitchen", 2, 11, api_name="/scene_render")
    updates = list(job)
    picked_counts = [int(re.search(r"\((\d)/3 lines picked\)", u[1]).group(1)) for u in updates]
    assert picked_counts == sorted(picked_counts) and {1, 2, 3} <= set(picked_counts)   # streamed per line
    rows = table(updates[-1][0])
    assert [r["status"] for r in rows] == ["picked"] * 3 and [r["takes"] for r in rows] == [2, 2, 2]
    first = {r["line"]: studio.scenes.summary("kitchen")["lines"][r["line"] - 1]["take_id"] for r in rows}

    export = client.predict("kitchen", "wav", api_name="/scene_export")
    z = zipfile.ZipFile(export)
    mix, sr = sf.read(io.BytesIO(z.read("mix.wav")), dtype="float32")
    stems = {n: sf.read(io.BytesIO(z.read(n)), dtype="float32")[0] for n in z.namelist() if n.startswith("stems/")}
    assert sorted(stems) == ["stems/01-ANNA.wav", "stems/02-BOB.wav", "stems/03-CLARA.wav"]
    takes = [sf.read(studio.takes.get(first[n]).audio_path) for n in (1, 2, 3)]
    lens = [len(w) for w, _ in takes]
    gap = round(MIX.gap_s * sr)
    assert all(s == sr for _, s in takes)
    assert len(mix) == sum(lens) + 2 * gap
    assert all(len(s) == len(mix) for s in stems.values())
    bob = stems["stems/02-BOB.wav"]
    assert not np.any(bob[: lens[0] + gap]) and not np.any(bob[lens[0] + gap + lens[1]:])
    cues = re.findall(r"(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+)", z.read("subtitles.srt").decode())
    assert [c[2] for c in cues] == ["ANNA: You came back.", "BOB: I never left.", "CLARA: Both of you, stop."]
    seconds = lambda t: int(t[:2]) * 3600 + int(t[3:5]) * 60 + float(t[6:].replace(",", "."))  # noqa: E731
    starts = [0, lens[0] + gap, lens[0] + lens[1] + 2 * gap]
    assert [seconds(c[0]) for c in cues] == pytest.approx([s / sr for s in starts], abs=1e-3)
    assert [seconds(c[1]) for c in cues] == pytest.approx([(s + n) / sr for s, n in zip(starts, lens)], abs=1e-3)
    vtt = z.read("subtitles.vtt").decode()
    assert vtt.startswith("WEBVTT") and vtt.count(" --> ") == 3 and "<v BOB>I never left." in vtt
    sheet = list(csv.DictReader(io.StringIO(z.read("takesheet.csv").decode())))
    assert [r["take_id"] for r in sheet] == [first[1], first[2], first[3]]
    assert all(r["recogniser"] == "pocketsphinx" and "intelligibility" in r["rule"] for r in sheet)

    rerolled = list(client.submit("kitchen", 2, api_name="/scene_reroll"))
    after = studio.scenes.summary("kitchen")["lines"]
    assert after[0]["take_id"] == first[1] and after[2]["take_id"] == first[3]
    assert after[1]["take_id"] != first[2] and [r["takes"] for r in after] == [2, 4, 2]
    assert table(rerolled[-1][0])[1]["status"] == "picked"

    # swap back to the first pick: the scene re-assembles with it, nothing re-rendered
    client.predict("kitchen", 2, first[2], api_name="/scene_swap")
    assert studio.scenes.summary("kitchen")["lines"][1]["take_id"] == first[2]
    assert len(studio.takes.list("scene: kitchen")) == 8
    with pytest.raises(Exception, match="was not made for line 1"):
        client.predict("kitchen", 1, first[2], api_name="/scene_swap")
    with pytest.raises(Exception, match="line 9: scene 'kitchen' has lines 1 to 3"):
        client.predict("kitchen", 9, api_name="/scene_reroll")


def test_render_survives_a_restart(served, launch_studio):
    client, studio = served
    client.predict("A: First words.\nB: Second words.", "restart", api_name="/scene_import")
    for character, member in (("A", "Ada"), ("B", "Max")):
        client.predict("restart", character, member, api_name="/scene_cast")
    events = studio.scenes.render("restart", 1, 5)
    for ev in events:
        if ev.kind == "picked":
            break
    events.close()                                        # the studio dies after the first line
    done = studio.scenes.summary("restart")["lines"]
    [kept] = [r for r in done if r["status"] == "picked"]

    url, again, close = launch_studio(studio.settings.home, ASR_MODEL="pocketsphinx")
    try:
        again.scenes.options = SHORT
        list(Client(url, verbose=False).submit("restart", 1, 5, api_name="/scene_render"))
        lines = again.scenes.summary("restart")["lines"]
        assert [r["status"] for r in lines] == ["picked", "picked"]
        assert lines[kept["line"] - 1]["take_id"] == kept["take_id"] and lines[kept["line"] - 1]["takes"] == 1
        assert len(again.takes.list("scene: restart")) == 2    # the done line was not redone
    finally:
        close()


def test_the_api_has_the_contracted_names_and_parameters(served):
    client, _ = served
    named = client.view_api(return_format="dict", print_info=False)["named_endpoints"]
    params = {name: [(p["parameter_name"], p.get("parameter_default")) for p in named[name]["parameters"]]
              for name in ("/scene_import", "/scene_cast", "/scene_render", "/scene_reroll", "/scene_export")}
    assert [p for p, _ in params["/scene_import"]][:2] == ["script", "name"]
    assert params["/scene_cast"][:6] == [("name", None), ("character", None), ("cast_member", None),
                                         ("backend", "seed-vc"), ("rvc_voice", None), ("direction", "")]
    assert params["/scene_render"] == [("name", None), ("k", 3), ("seed", None)]
    assert [p for p, _ in params["/scene_reroll"]] == ["name", "line"]
    assert params["/scene_export"][:2] == [("name", None), ("format", "wav")]


def test_a_line_without_words_is_refused_before_any_model_runs(served, tmp_path):
    client, studio = served
    with pytest.raises(Exception, match=r"line 2 \(BOB\): '\.\.\.' has no words to speak"):
        client.predict("ANNA: You came back.\nBOB: ...", "beat", api_name="/scene_import")
    # a scene kept before the rule (or written by a script): its render and re-roll refuse, nothing is made
    studio.scenes.store.save_script("old beat", Script((Line("ANNA", "You came back."), Line("BOB", "\u2014"))))
    for character in ("ANNA", "BOB"):
        client.predict("old beat", character, "Ada", api_name="/scene_cast")
    for args, api in ((("old beat", 2), "/scene_reroll"), (("old beat", 1, 3), "/scene_render")):
        with pytest.raises(Exception, match=r"line 2 \(BOB\): '\u2014' has no words to speak"):
            client.predict(*args, api_name=api)
    assert studio.takes.list("scene: old beat") == []
    with pytest.raises(Exception, match="has no words to speak"):
        client.predict("\u200b", "calm", "Ada", 2, "seed-vc", None, 0, "english", "beat", api_name="/direct")
    assert studio.takes.list("beat") == []


def test_an_uploaded_utf16_script_imports_every_line(served, tmp_path):
    client, studio = served
    path = tmp_path / "kitchen.fountain"
    path.write_bytes(SCRIPT.replace("\n", "\r\n").encode("utf-16"))   # Windows Notepad's "Unicode"
    text, note = read_script_file(path)                               # what the Scene page does with an upload
    assert note == "kitchen.fountain was read as UTF-16 text."
    imported = client.predict(text, "utf16 kitchen", api_name="/scene_import")
    assert [x["text"] for x in imported["lines"]] == ["You came back.", "I never left.", "Both of you, stop."]
def _render_until_a_take_of(scenes, name: str, lines: set[int]):
    """Start a render and stop it right after a take of one of `lines` (1-based) is stored, before its pick:
    the moment another request edits the scene. Returns the rest of the render."""
    events = scenes.render(name, 1, 3)
    for ev in events:
        if ev.kind == "progress" and ev.line in lines:
            return events
    raise AssertionError(f"the render made no take of lines {lines}")


def _spoken(studio, lines: list[dict]) -> list[str | None]:
    """What each line's picked take says (None: no pick)."""
    return [r["take_id"] and studio.takes.get(r["take_id"]).line for r in lines]


def test_lines_edited_during_a_render_are_stale_then_rerendered(served):
    _, studio = served
    scenes = studio.scenes
    scenes.import_script("A: First words.\nB: Second words.\nA: Third words.", "edit")
    scenes.cast("edit", "A", "Ada")
    scenes.cast("edit", "B", "Max")
    rest = _render_until_a_take_of(scenes, "edit", {1})        # A's lines come first, then B's
    scenes.import_script("A: First words, changed.\nB: Second words, changed.\nA: Third words.", "edit")
    *_, done = rest
    assert "line(s) 1, 2 were edited or re-cast meanwhile: render again" in done.message
    lines = scenes.summary("edit")["lines"]
    assert [r["status"] for r in lines] == ["stale", "stale", "picked"]
    assert _spoken(studio, lines) == [None, None, "Third words."]          # no pick of the old words
    with pytest.raises(SceneError, match=r"lines not rendered yet: 1, 2 \(edited or re-cast since"):
        scenes.export("edit")

    made = len(studio.takes.list("scene: edit"))
    list(scenes.render("edit", 1, 3))
    after = scenes.summary("edit")["lines"]
    assert _spoken(studio, after) == ["First words, changed.", "Second words, changed.", "Third words."]
    assert after[2]["take_id"] == lines[2]["take_id"] and len(studio.takes.list("scene: edit")) == made + 2
    z = zipfile.ZipFile(scenes.export("edit"))
    assert "B: Second words, changed." in z.read("subtitles.srt").decode()


def test_a_character_recast_during_a_render_is_rerendered_in_the_new_voice(served):
    _, studio = served
    scenes = studio.scenes
    scenes.import_script("A: Hello there.\nB: Go away.", "recast")
    scenes.cast("recast", "A", "Ada")
    scenes.cast("recast", "B", "Max")
    rest = _render_until_a_take_of(scenes, "recast", {1})      # B's take is made after the recast
    scenes.cast("recast", "B", "Ada", direction="angry")
    list(rest)
    lines = scenes.summary("recast")["lines"]
    assert [r["status"] for r in lines] == ["picked", "stale"]

    made = len(studio.takes.list("scene: recast"))
    list(scenes.render("recast", 1, 3))
    after = scenes.summary("recast")["lines"]
    assert after[0]["take_id"] == lines[0]["take_id"] and len(studio.takes.list("scene: recast")) == made + 1
    take = studio.takes.get(after[1]["take_id"])
    assert (take.cast_member, "angry" in take.direction) == ("Ada", True)


def test_a_scene_follows_its_cast_member_by_id_not_by_name(served):
    client, studio = served
    scenes, ref = studio.scenes, studio.settings.home / "ada.wav"
    keeper = studio.cast_upload(ref, "Keeper", "", "english")
    scenes.import_script("BOB: Still here.", "keeper")
    scenes.cast("keeper", "BOB", "keeper")
    list(scenes.render("keeper", 1, 3))
    studio.cast_rename("Keeper", "Warden")
    summary = scenes.summary("keeper")
    assert summary["cast"][0]["cast_member"] == "Warden" and summary["lines"][0]["status"] == "picked"
    list(scenes.reroll("keeper", 1))
    take = studio.takes.get(scenes.summary("keeper")["lines"][0]["take_id"])
    assert (take.cast_member, take.settings["cast_member_id"]) == ("Warden", keeper.id)

    studio.cast_delete("Warden")
    other = studio.cast_upload(ref, "Keeper", "", "english")                # another voice, the old name
    deleted = "BOB's cast member 'Keeper' was deleted; cast BOB again"
    with pytest.raises(SceneError, match=deleted):
        scenes.reroll("keeper", 1)
    with pytest.raises(Exception, match=deleted):
        client.predict("keeper", 1, api_name="/scene_reroll")
    assert scenes.summary("keeper")["cast"][0]["cast_member"] == "Keeper (deleted)"
    recast = scenes.cast("keeper", "BOB", "Keeper")                          # cast again: now the new one
    assert recast["lines"][0]["status"] == "stale" and scenes.store.get("keeper").cast["bob"].member_id == other.id
