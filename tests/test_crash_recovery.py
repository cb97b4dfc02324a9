"""kill -9 of a real server (`python app.py`) mid-run, then a restart on the same STUDIO_HOME: what was
finished is kept whole, nothing half-written is listed or served, and the work can go on."""
import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf
from gradio_client import handle_file
from rvc.model_file import load_model

from conftest import free_port, start_app, wait_up
from studio.library import Library
from studio.takes import TakeStore
from studio.training import read_events
from test_train_e2e import SENTENCES, stream_until

pytestmark = pytest.mark.slow

SLOTS = 10  # /direct streams 10 audio slots, then the takes so far as JSON
K = 3


def whole_wav(path: Path) -> bool:
    """The RIFF header's size matches the file: the writer finished it (a cut-short file is shorter)."""
    data = path.read_bytes()
    return data[:4] == b"RIFF" and int.from_bytes(data[4:8], "little") == len(data) - 8 and sf.info(path).frames > 0


def kill_all(proc) -> None:
    """The realistic crash: the server and everything in its process group, without a chance to clean up."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(30)


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_kill_9_during_a_direct_run_keeps_the_streamed_takes_whole(new_home, espeak, tmp_path):
    home, port = new_home(), free_port()
    url = f"http://127.0.0.1:{port}/"
    # Enough diffusion steps per take that the run of K takes is still going after the first one streams.
    env = {"DEFAULT_DIFF_STEPS": "10", "SE_MODEL": "resemblyzer", "GRADIO_TEMP_DIR": str(tmp_path / "cache")}
    reference = espeak("The tide comes in twice a day and I have watched it for forty years.", voice="en-us+f2",
                       name="marnie.wav")
    proc = start_app(home, port, **env)
    try:
        client = wait_up(url, proc, download_files=False)
        client.predict(handle_file(str(reference)), "Marnie", "an old fisherwoman", "english",
                       api_name="/cast_upload")
        job = client.submit("Halt!", "whisper with fear", "Marnie", K, "seed-vc", None, 5, "english", "crash",
                            api_name="/direct")
        for streamed in job:  # kill as soon as a take has reached the client, while the others are being made
            if streamed[0] is not None:
                break
    finally:
        kill_all(proc)
    sent = [t["take_id"] for t in streamed[SLOTS]]
    assert 1 <= len(sent) < K  # killed mid-run
    served = {t["take_id"]: Path(slot["path"]) for t, slot in zip(streamed[SLOTS], streamed[:SLOTS])}

    proc = start_app(home, port, **env)
    try:
        client = wait_up(url, proc, download_files=False)
        listed = client.predict("crash", api_name="/takes")
        assert set(sent) <= {t["take_id"] for t in listed} and len(listed) < K
        assert sorted(t["rank"] for t in listed) == list(range(1, len(listed) + 1))  # ranked at the restart
        assert [m["name"] for m in client.predict(api_name="/cast_list")] == ["Marnie"]
        store = TakeStore(home)
        takes = store.list("crash")
        assert [t.take_id for t in takes] == [t["take_id"] for t in listed]
        for take in takes:  # every listed take is whole: its converted and its TTS audio
            assert whole_wav(take.audio_path) and whole_wav(take.tts_path)
        for take_id, copy in served.items():  # what the client was sent is the take as kept
            assert copy.read_bytes() == store.get(take_id).audio_path.read_bytes()
        kept = sorted(f.name for t in takes for f in (t.audio_path, t.tts_path))
        assert sorted(f.name for f in store.audio_dir.iterdir()) == kept  # no partial or orphan file
        for name in kept:  # and the take store itself is never served, only the copies sent to clients
            assert status_of(f"{url}gradio_api/file={store.audio_dir / name}") == 403
        for copy in (tmp_path / "cache").rglob("*.wav"):  # every file the server can serve is whole
            assert whole_wav(copy), copy.name
        member = Library(home).list()[0]
        assert member.name == "Marnie" and sf.info(member.audio_path).frames > 0

        again = client.predict("Halt!", "whisper with fear", "Marnie", 1, "seed-vc", None, 9, "english",
                               "crash", api_name="/direct")  # the studio works on after the crash
        assert again[0] is not None and len(client.predict("crash", api_name="/takes")) == len(listed) + 1
    finally:
        kill_all(proc)


def kill_trainer(run_dir: Path) -> None:
    """SIGKILL the trainer of `run_dir` and its helpers (its own process group), if it still runs."""
    try:
        os.killpg(json.loads((run_dir / "job.json").read_text())["pid"], signal.SIGKILL)
    except (OSError, ValueError):  # not started, or already gone
        pass


def test_kill_9_during_training_resumes_from_the_last_checkpoint(new_home, espeak):
    home, port = new_home(), free_port()
    url = f"http://127.0.0.1:{port}/"
    speech = [espeak(s, voice=v, name=f"keeper_{v[-2:]}_{i:02d}.wav")  # about 90 s: enough to train on
              for v, lines in (("en-us+m3", SENTENCES), ("en-us+m1", SENTENCES[:5])) for i, s in enumerate(lines)]
    run_dir = home / "no training yet"
    proc = start_app(home, port)
    try:
        client = wait_up(url, proc)
        client.predict([handle_file(str(p)) for p in speech], "Keeper", False, api_name="/dataset_prepare")
        client.predict("Keeper", 2, 16, "40k", True, 1, api_name="/train_start")  # 2 epochs, a save after each
        run_dir = next((home / "training").glob("*/runs/40k_f0"))
        [*_, (saved, _)] = stream_until(client, "Keeper",
                                        lambda s: s["saves"] or s["state"] not in ("starting", "training"))
        assert saved["state"] == "training" and [s["epoch"] for s in saved["saves"]] == [1], saved
        trainer = json.loads((run_dir / "job.json").read_text())["pid"]
        os.kill(proc.pid, signal.SIGKILL)  # the server alone: the trainer runs in its own session and lives on
        proc.wait(30)
        os.killpg(trainer, 0)  # (raises ProcessLookupError if it had died with the server)
        kill_trainer(run_dir)  # the realistic crash takes the whole machine down: the trainer too
        killed_at = max(e.get("step") or 0 for e in read_events(run_dir)[0])  # a half-written line is skipped

        kill_all(proc)
        proc = start_app(home, port)
        client = wait_up(url, proc)
        after, _ = client.predict("Keeper", api_name="/train_status")  # one answer: it is not running
        assert after["state"] == "interrupted" and after["resume_step"] == saved["saves"][0]["step"], after
        assert "Resume continues from the last checkpoint" in after["message"]
        resumed = client.predict("Keeper", api_name="/train_resume")
        assert resumed["state"] in ("starting", "training")
        [*_, (final, _)] = stream_until(client, "Keeper", lambda s: False)  # ends by itself with the training
        assert final["state"] == "finished" and final["epoch"] == 2, final
        assert [s["epoch"] for s in final["saves"]] == [1, 2]
        start = read_events(run_dir)[1][0]
        assert start["type"] == "start" and start["resumed"] and start["epoch"] == 2  # not from epoch 1
        assert start["step"] == saved["saves"][0]["step"] <= killed_at
        pth = client.predict("Keeper", None, api_name="/train_export")[0]
        model = load_model(pth, device="cpu")  # strict: every weight of the voice is there
        assert (model.info, model.sr, model.f0) == ("2epoch", 40000, True)
    finally:
        kill_all(proc)
        kill_trainer(run_dir)
