"""A team at once and a server killed mid-write: tiny models, bounded in time."""
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

from conftest import free_port, start_app, wait_up

pytestmark = pytest.mark.slow

USERS, REQUESTS = 8, 2


@pytest.fixture(scope="module")
def served(new_home, launch_studio, tmp_path_factory):
    import rvc.tiny

    folder = tmp_path_factory.mktemp("load_voice")
    voice = {"voice": folder / "Load.pth", "index": folder / "added_IVF20_Flat_nprobe_1_Load_v2.index"}
    rvc.tiny.build_tiny(voice, rvc.tiny.tiny_dims())
    url, studio, close = launch_studio(new_home())
    client = Client(url, verbose=False)
    if "Load" not in [v["name"] for v in client.predict(api_name="/rvc_list")]:
        client.predict([handle_file(str(voice["voice"]))], "Load", api_name="/rvc_upload")
    yield url, studio
    close()


class Lane:
    """Counts how many model calls run at once (a spy around the real engines)."""

    def __init__(self) -> None:
        self.running, self.peak, self.calls, self.lock = 0, 0, 0, threading.Lock()

    def around(self, fn):
        def spied(*args, **kwargs):
            with self.lock:
                self.running += 1
                self.calls += 1
                self.peak = max(self.peak, self.running)
            try:
                return fn(*args, **kwargs)
            finally:
                with self.lock:
                    self.running -= 1

        return spied


def test_eight_users_at_once_all_finish_one_model_job_at_a_time(served, tmp_path, monkeypatch):
    url, studio = served
    line = tmp_path / "line.wav"
    sf.write(line, 0.3 * np.sin(np.arange(16000) / 16000 * 2 * np.pi * 180).astype(np.float32), 16000)
    lane = Lane()
    monkeypatch.setattr(studio.designer(), "design", lane.around(studio.designer().design))
    monkeypatch.setattr(studio.rvc(), "convert", lane.around(studio.rvc().convert))

    def user(i: int) -> int:
        client = Client(url, verbose=False)
        done = 0
        for j in range(REQUESTS):
            if (i + j) % 2:
                assert client.predict("Steady.", "a calm narrator", "english", 1, i, api_name="/design")[0]
            else:
                assert client.predict(handle_file(str(line)), "Load", 0, "fcpe", 0.5, 0.33, "wav",
                                      api_name="/convert_rvc")[0]
            done += 1
        return done

    health, stop = [], threading.Event()

    def poll():
        client = Client(url, verbose=False)
        while not stop.is_set():
            t0 = time.monotonic()
            assert client.predict(api_name="/health")["status"] == "ok"
            health.append(time.monotonic() - t0)
            time.sleep(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    with ThreadPoolExecutor(USERS) as pool:
        finished = list(pool.map(user, range(USERS), timeout=600))
    stop.set()
    poller.join(30)
    assert finished == [REQUESTS] * USERS
    assert lane.calls == USERS * REQUESTS and lane.peak == 1
    # /health answered throughout: typically well under a second; a busy 2-core CI box may stall one call
    assert len(health) >= 3 and np.median(health) < 1.0 and max(health) < 10.0, sorted(health)[-5:]


@pytest.mark.xfail(strict=False, reason="timing-dependent: once in a full run no refusal came within its 30 s "
                   "poll; passes alone. To be rewritten to count refusals while the lane is held.")
def test_past_the_queue_bound_a_client_is_told_to_retry(served, monkeypatch):
    url, studio = served
    release, started = threading.Event(), threading.Event()
    real = studio.designer().design

    def held(*args, **kwargs):
        started.set()
        release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(studio.designer(), "design", held)
    client = Client(url, verbose=False)
    first = client.submit("Steady.", "a calm narrator", "english", 1, 1, api_name="/design")
    assert started.wait(60)
    waiting = [client.submit("x.wav", "Nobody", 0, "fcpe", 0.5, 0.33, "wav", api_name="/convert_rvc")
               for _ in range(40)]
    try:
        deadline = time.time() + 30
        while time.time() < deadline and not any(job.done() for job in waiting):
            time.sleep(0.1)
        refused_at_once = [str(job.exception()) for job in waiting if job.done()]
    finally:
        release.set()
    assert refused_at_once and all("Queue is full! Please try again" in r for r in refused_at_once)  # no hang
    assert first.result(timeout=120)[0]
    answers = []
    for job in waiting:  # the rest waited in the queue and still get their own (clear) answer
        with pytest.raises(Exception) as err:
            job.result(timeout=120)
        answers.append("full" if "Queue is full" in str(err.value) else str(err.value))
    assert answers.count("full") < len(answers) - 20
    assert {a for a in answers if a != "full"} == {"malformed input: send files with gradio_client's "
                                                   "handle_file(path)"}


def test_kill_9_during_library_writes_keeps_the_last_committed_state(new_home, espeak):
    from studio.library import Library

    home = new_home()
    speech = espeak("The tide comes in twice a day and nobody has ever stopped it.", voice="en-us+m3",
                    name="tide.wav")
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    proc = start_app(home, port)
    try:
        client = wait_up(url, proc)
        client.predict(handle_file(str(speech)), "Kept", "", "english", api_name="/cast_upload")
        jobs = [client.submit(handle_file(str(speech)), f"Racing {i}", "", "english", api_name="/cast_upload")
                for i in range(24)]
        deadline = time.time() + 120
        while not jobs[1].done() and time.time() < deadline:  # kill while the later uploads are being written
            time.sleep(0.02)
        assert not all(j.done() for j in jobs)  # uploads are still being written when the server dies
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
        finished = {f"Racing {i}" for i, j in enumerate(jobs) if j.done() and j.exception() is None}
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)

    proc = start_app(home, port)
    try:
        names = [m["name"] for m in wait_up(url, proc).predict(api_name="/cast_list")]
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    assert "Kept" in names and finished <= set(names)
    library = Library(home)
    for member in library.list():
        assert sf.info(member.audio_path).frames > 0  # every listed member has its whole reference
    on_disk = sorted(p.name for p in (home / "cast").iterdir())
    assert on_disk == sorted(m.audio_path.name for m in library.list())  # no half-written or orphan file
