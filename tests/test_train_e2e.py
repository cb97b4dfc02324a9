"""Train tab through gradio_client on tiny models: espeak speech -> dataset -> train, stop, resume -> export."""
import json
import os
import re
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
import rvc.tiny
import soundfile as sf
import torch
from gradio_client import Client, handle_file

from studio.training import Trainer
from studio.ui.app import build_app

pytestmark = pytest.mark.slow

SENTENCES = [
    "The lighthouse keeper climbed the spiral stairs every evening before the sun went down.",
    "He trimmed the wick, polished the great lens, and watched the ships pass along the rocky coast.",
    "On stormy nights the waves crashed against the tower and the wind howled through the shutters.",
    "Sailors far out at sea looked for his light and knew that the harbour was close at hand.",
    "In the morning he wrote the weather in his logbook and counted the gulls on the breakwater.",
    "His daughter brought bread and letters from the village every Sunday in a small blue boat.",
    "They talked about the fishing fleet, the price of coal, and the new steamer from the north.",
    "When winter came the keeper stacked driftwood by the stove and mended the old nets by lamplight.",
    "Years later the lighthouse was automated, but the villagers still called it the keeper's tower.",
    "Children who visited the island heard stories of the storm that nearly swept the tower away.",
    "The old logbooks are kept in the museum now, their pages yellow and the ink slowly fading.",
    "Every summer a festival on the quay remembers the keeper with music, lanterns and fresh fish.",
]


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    url, studio, close = launch_studio(new_home())
    yield Client(url, verbose=False), studio
    for t in studio.training.list():  # trainings outlive the page by design; not the tests
        studio.training.stop(t.name, grace_s=10)
    close()


@pytest.fixture(scope="module")
def speech(espeak, tmp_path_factory):
    """About 90 s of two close espeak voices: 12 files uploaded as they are, 5 inside a zip (+ a note)."""
    folder = tmp_path_factory.mktemp("train_speech")
    paths = [espeak(s, voice=v, name=f"{v[-2:]}_{i:02d}.wav") for v, lines in (("en-us+m3", SENTENCES),
                                                                                ("en-us+m1", SENTENCES[:5]))
             for i, s in enumerate(lines)]
    archive = folder / "more.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for p in paths[12:]:
            z.write(p, f"../../{p.name}")  # an archive path that must never be used as one
        z.writestr("notes.txt", "recorded in the attic")
    return paths[:12] + [archive]


def seconds(paths):
    total = 0.0
    for p in paths:
        if p.suffix == ".zip":
            with zipfile.ZipFile(p) as z:
                total += sum(sf.info(z.open(n)).duration for n in z.namelist() if n.endswith(".wav"))
        else:
            total += sf.info(p).duration
    return total


def rvc_names(client):
    return {v["name"] for v in client.predict(api_name="/rvc_list")}


def stream_until(client, name, done):
    """Follow /train_status until `done(status)` or the stream ends; returns every (status, previews) seen.

    A stream left early ends by itself once the training stops (no cancel: it may time out on a busy machine).
    """
    seen = []
    for status, previews in client.submit(name, api_name="/train_status"):
        seen.append((status, previews))
        if done(status):
            break
    return seen


def page_load_trainings(studio):
    """What the Train tab's page-load event puts in its trainings table and picker (a reloaded page)."""
    demo = build_app(studio)
    [load] = [f for f in demo.fns.values() if any(kind == "load" for _, kind in f.targets)
              and "train_pick" in [getattr(o, "elem_id", None) for o in f.outputs]]
    table, picker = load.fn()
    return table.to_dict("records"), picker


def texts(value):
    """Every string inside a JSON value (keys included)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in texts(k) + texts(v)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in texts(v)]
    return []


def test_dataset_train_stop_resume_export_and_convert(served, speech, shared_dir, espeak):
    client, studio = served
    assert seconds(speech) > 80
    report = client.predict([handle_file(str(p)) for p in speech], "Keeper", False, api_name="/dataset_prepare")
    assert report["name"] == "Keeper" and report["files"] == 17
    assert 1.0 <= report["minutes"] < seconds(speech) / 60 and report["clips"] >= 20
    assert report["clipped_percent"] == 0 and 2 <= report["probe_seconds"] <= 4
    assert any("5-10 minutes" in w for w in report["warnings"])  # 1-2 min is enough to train, not to be good
    assert any("notes.txt" in n for n in report["notes"])
    folder = studio.training.get("Keeper").folder
    assert folder.parent == studio.settings.home / "training" and "Keeper" not in folder.name

    # One epoch of a few steps: each CPU step costs seconds. Stop after the first, resume, finish the epoch.
    # batch 1: an epoch is one step a clip (20 or more), so the run is still training when step 1 is seen and
    # /train_stop finds it running (at batch 8 an epoch is 3 steps and can end before the next status poll)
    status = client.predict("Keeper", 1, 1, "40k", True, 1, api_name="/train_start")
    assert status["state"] in ("starting", "training") and status["epochs"] == 1
    # Held (SIGSTOP) while the refusals below are checked: a dataset preparation can outlast a whole epoch, and
    # the trainer is still importing torch when /train_start returns, so it cannot have finished yet.
    trainer = studio.training._pid(studio.training.get("Keeper"))
    os.killpg(trainer, signal.SIGSTOP)
    try:
        with pytest.raises(Exception, match="'Keeper' is already training; watch it or stop it"):
            client.predict("Keeper", 1, 8, "40k", True, 1, api_name="/train_start")
        client.predict([handle_file(str(p)) for p in speech], "Second", api_name="/dataset_prepare")  # meanwhile
        with pytest.raises(Exception, match="'Keeper' is already training on cpu: two trainings at once"):
            client.predict("Second", 1, 8, "40k", True, 1, api_name="/train_start")  # refused, not queued
    finally:
        os.killpg(trainer, signal.SIGCONT)
    assert studio.training.status("Second")["state"] == "ready"
    [*_, (status, _)] = stream_until(client, "Keeper", lambda s: s["step"] >= 1)
    assert status["state"] == "training" and status["seconds_per_step"] > 0
    # A reloaded page finds the running training: the team's trainings, most recent first, the running one picked.
    rows, picker = page_load_trainings(studio)
    assert [(r["name"], r["state"]) for r in rows] == [("Keeper", "training"), ("Second", "ready")]
    assert picker["value"] == "Keeper" and picker["choices"] == ["Keeper", "Second"]

    stopped = client.predict("Keeper", api_name="/train_stop")
    assert stopped["state"] == "stopped", stopped
    first_run = stopped["step"]
    run_dir = studio.training.get("Keeper").run_dir
    assert list(run_dir.glob("G_*.pth")) and list(run_dir.glob("D_*.pth"))

    resumed = client.predict("Keeper", api_name="/train_resume")
    assert resumed["state"] in ("starting", "training")
    seen = stream_until(client, "Keeper", lambda s: False)  # the stream ends by itself when training ends
    final, previews = seen[-1]
    assert final["state"] == "finished", final
    # "finished" comes only once the last save's preview exists: every finished status hands it over.
    for status, clips in seen:
        if status["state"] == "finished":
            assert [s["preview"] for s in status["saves"]] == [Path(p).name for p in clips] == ["preview_epoch1.wav"]
    home = str(studio.settings.home)
    statuses = [stopped, resumed, *(status for status, _ in seen)]
    assert not [t for t in texts(statuses) if home in t]  # no server path in any status
    steps = final["loss"]["step"]
    assert steps == sorted(set(steps)) and final["step"] > first_run  # resumed, not restarted
    resumed_events = [json.loads(line) for line in sorted(run_dir.glob("events-*.jsonl"))[-1].read_text().splitlines()]
    assert min(e["step"] for e in resumed_events if e["type"] == "step") > first_run
    assert [s["epoch"] for s in final["saves"]] == [1]
    clips = {Path(p).name: p for p in previews}  # handed over as files, named by the saves
    assert len(clips) == len(previews) == 1 and not any(p.startswith(home) for p in previews)
    for save in final["saves"]:  # every save: a playable preview and its similarity to the dataset
        wave, sr = sf.read(clips[save["preview"]])
        assert sr == 40000 and len(wave) > sr and -1 <= save["similarity"] <= 1
        assert save["mel_smoothed"] > 0

    pth, index, archive, message = client.predict("Keeper", None, api_name="/train_export")
    assert pth.endswith("Keeper.pth") and index.endswith("Keeper.index") and "Keeper" in message
    with zipfile.ZipFile(archive) as z:
        assert sorted(z.namelist()) == ["Keeper.index", "Keeper.pth"]
    exported = torch.load(pth, weights_only=True)
    manifest = json.loads((shared_dir / "manifests" / "rvc" / "v2_40k_f0.json").read_text())["inference_pth"]
    assert set(manifest["top_level"]) <= set(exported)
    layers = rvc.tiny.tiny_dims()["synthesizer"]["n_layers"]  # the tiny text encoder has fewer layers
    expected = {w["key"]: w["dtype"] for w in manifest["weight"]
                if not (m := re.match(r"enc_p\.encoder\.\w+\.(\d+)\.", w["key"])) or int(m.group(1)) < layers}
    assert expected == {k: str(v.dtype).removeprefix("torch.") for k, v in exported["weight"].items()}
    assert (exported["sr"], exported["f0"], exported["version"]) == ("40k", 1, "v2")
    assert len(exported["config"]) == 18 and exported["config"][-1] == 40000

    assert "Keeper" in rvc_names(client)  # in the library at once, usable by Convert
    line = espeak("Hoist the sails, the storm will not wait for us.", voice="en-us+f2", name="source.wav")
    out, notes = client.predict(handle_file(str(line)), "Keeper", 0, "fcpe", 0.75, 0.33, "wav",
                                api_name="/convert_rvc")
    assert sf.info(out).samplerate == 40000 and "index: used" in notes

    # A crash (here a corrupted dataset) ends in "failed" with the trainer's reason; a restarted studio
    # reads every state back from disk.
    for wav in (studio.training.get("Second").folder / "dataset_40k" / "0_gt_wavs").glob("*.wav"):
        wav.write_bytes(b"not audio any more")
    client.predict("Second", 1, 8, "40k", True, 1, api_name="/train_start")
    [*_, (failed, _)] = stream_until(client, "Second", lambda s: False)
    assert failed["state"] == "failed" and "Error" in failed["reason"], failed
    restarted = Trainer(studio)
    assert restarted.status("Second")["reason"] == failed["reason"]
    assert restarted.status("Keeper")["state"] == "finished"

    again = client.predict("Keeper", 1, api_name="/train_export")  # a chosen epoch replaces our own export
    assert "epoch 1" in again[3] and torch.load(again[0], weights_only=True)["info"] == "1epoch"
    assert [v["name"] for v in client.predict(api_name="/rvc_list")].count("Keeper") == 1

    # Saved epochs are never dropped silently: Train again is refused (Resume, or start over explicitly) ...
    checkpoints = sorted(p.name for p in run_dir.glob("*.pth"))
    with pytest.raises(Exception, match=r"'Keeper' already has saved epochs \(1\): press Resume to continue it, "
                                        "or Start over"):
        client.predict("Keeper", 1, 8, "40k", True, 1, api_name="/train_start")
    # ... and so is another user's dataset under a name in use (names compare without case).
    with pytest.raises(Exception, match="a training named 'Keeper' already exists; pick another name, or replace"):
        client.predict([handle_file(str(p)) for p in speech], "kEEPER", api_name="/dataset_prepare")
    assert sorted(p.name for p in run_dir.glob("*.pth")) == checkpoints
    assert [s["epoch"] for s in client.predict("Keeper", api_name="/train_status")[0]["saves"]] == [1]

    # Start over moves the old run (checkpoints, previews, export) to the trash; restoring brings it back.
    export_dir = studio.training.public / studio.training.get("Keeper").id / "export"
    assert (export_dir / "Keeper.pth").is_file()
    client.predict("Keeper", 1, 8, "40k", True, 1, "", True, api_name="/train_start")
    client.predict("Keeper", api_name="/train_stop")
    stream_until(client, "Keeper", lambda s: False)
    assert not export_dir.exists() and ("training run", "Keeper") in trashed(client)
    restored = client.predict("Keeper", api_name="/train_restore")
    assert restored["state"] == "finished" and [s["epoch"] for s in restored["saves"]] == [1]
    assert sorted(p.name for p in run_dir.glob("*.pth")) == checkpoints and export_dir.is_dir()
    assert [Path(p).name for p in client.predict("Keeper", api_name="/train_status")[1]] == ["preview_epoch1.wav"]

    # Replacing a training's dataset, when asked for, trashes the old training whole: restorable too.
    second = studio.training.get("Second")
    client.predict([handle_file(str(p)) for p in speech], "second", False, True, api_name="/dataset_prepare")
    assert studio.training.status("second")["state"] == "ready" and not second.folder.exists()
    assert ("training", "Second") in trashed(client)
    assert client.predict("Second", api_name="/train_restore")["reason"] == failed["reason"]
    assert studio.training.get("Second").folder == second.folder and ("training", "second") in trashed(client)


def trashed(client):
    return [(t["kind"], t["name"]) for t in client.predict(api_name="/trash_list")]


def _bomb(path):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("huge.wav", bytes(64 << 20))  # 64 MiB of zeros in ~64 KiB
    return [path]


@pytest.mark.parametrize("case, words", [
    ("short", "only 1[0-9] s of audio uploaded; training needs at least 1 minute of speech"),
    ("silence", "no speech found"),
    ("unreadable", "unreadable file.*broken.wav"),
    ("zip_bomb", "zip bomb"),
])
def test_bad_datasets_get_a_clear_message(served, espeak, tmp_path, case, words):
    client, studio = served
    if case == "short":
        files = [espeak(s, voice="en-us+m1", name=f"short{i}.wav") for i, s in enumerate(SENTENCES[:3])]
    elif case == "silence":
        sf.write(tmp_path / "quiet.wav", np.zeros(16000 * 70, np.float32), 16000)
        files = [tmp_path / "quiet.wav"]
    elif case == "unreadable":
        (tmp_path / "broken.wav").write_bytes(b"RIFF....not really a wave file")
        files = [espeak(SENTENCES[0], voice="en-us+m1", name="ok.wav"), tmp_path / "broken.wav"]
    else:
        files = _bomb(tmp_path / "bomb.zip")
    voices, trainings = rvc_names(client), [t.name for t in studio.training.list()]
    with pytest.raises(Exception, match=words):
        client.predict([handle_file(str(f)) for f in files], f"Bad {case}", api_name="/dataset_prepare")
    assert rvc_names(client) == voices and [t.name for t in studio.training.list()] == trainings
    assert not list((studio.settings.home / "training").glob("*.partial"))
