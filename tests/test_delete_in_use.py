"""Deleting a cast member that a running job uses, from a second gradio_client: the delete succeeds into the trash,
the running Cast & Direct run or Seed-VC conversion finishes with the voice it started with (its takes keep the
name), nothing is lost, and restoring brings the member back as it was.

The interleaving is made certain, not left to timing: the real Seed-VC engine is wrapped so that the conversion
chosen by the test waits until the other client's delete has returned; the conversion itself runs unchanged.
"""
from __future__ import annotations

import threading

import pytest
import soundfile as sf
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow
WAIT_S = 300


@pytest.fixture(scope="module")
def served(new_home, launch_studio, espeak):
    url, studio, close = launch_studio(new_home(), DEFAULT_DIFF_STEPS="2", SE_MODEL="resemblyzer")
    ref = espeak("Every morning I walk the length of the beach and count the gulls.", voice="en-us+m7",
                 name="gull.wav")
    Client(url, verbose=False).predict(handle_file(str(ref)), "Gull", "a wiry beachcomber", "english",
                                       api_name="/cast_upload")
    yield url, studio, ref
    close()


class Gate:
    """Holds the engine's conversion number `hold` (1-based) until `open()`; `reached` is set when it waits."""

    def __init__(self, monkeypatch, engine, hold: int) -> None:
        self.calls, self.hold = 0, hold
        self.reached, self.opened = threading.Event(), threading.Event()
        real = engine.convert

        def convert(*args, **kwargs):
            self.calls += 1
            if self.calls == self.hold:
                self.reached.set()
                self.opened.wait(WAIT_S)
            return real(*args, **kwargs)

        monkeypatch.setattr(engine, "convert", convert)

    def open(self) -> None:
        self.opened.set()


def delete_while_held(gate: Gate, director: Client, job) -> list[dict]:
    """The second client deletes Gull while the job waits inside the engine; returns the cast list after."""
    assert gate.reached.wait(WAIT_S), f"the job never reached conversion {gate.hold}"
    try:
        assert director.predict("Gull", api_name="/cast_delete") == "Deleted Gull."
        assert not job.done()  # the delete did not wait for the job, nor end it
        return director.predict(api_name="/cast_list")
    finally:
        gate.open()


def test_a_direct_run_finishes_with_the_voice_it_started_with(served, monkeypatch):
    url, studio, _ = served
    actor, tidier = Client(url, verbose=False), Client(url, verbose=False)
    before = tidier.predict(api_name="/cast_list")
    gate = Gate(monkeypatch, studio.seed_vc(), hold=2)  # take 1 is made, take 2 waits for the delete
    job = actor.submit("Look out!", "urgent", "Gull", 3, "seed-vc", None, 4, "english", "gulls", api_name="/direct")
    assert delete_while_held(gate, tidier, job) == []
    assert [t["name"] for t in tidier.predict(api_name="/trash_list")] == ["Gull"]

    final = job.result(timeout=WAIT_S)
    takes = final[10]
    assert len(takes) == 3 and {t["cast_member"] for t in takes} == {"Gull"}
    assert sorted(t["rank"] for t in takes) == [1, 2, 3] and sorted(t["seed"] for t in takes) == [4, 5, 6]
    assert all(sf.info(path).duration > 0 for path in final[:3])
    assert [t["take_id"] for t in actor.predict("gulls", api_name="/takes")] == [t["take_id"] for t in takes]

    assert "Restored **Gull**" in tidier.predict("Gull", api_name="/cast_restore")
    assert tidier.predict(api_name="/cast_list") == before  # same member, same id: the takes name it again


def test_a_conversion_finishes_with_the_voice_it_started_with(served, monkeypatch):
    url, studio, source = served
    actor, tidier = Client(url, verbose=False), Client(url, verbose=False)
    before = tidier.predict(api_name="/cast_list")
    gate = Gate(monkeypatch, studio.seed_vc(), hold=1)
    job = actor.submit(handle_file(str(source)), "Gull", None, 2, 0.7, 0.7, False, 1.0, 0, api_name="/convert")
    assert delete_while_held(gate, tidier, job) == []

    result, _ = job.result(timeout=WAIT_S)
    converted = sf.info(result)
    assert abs(converted.duration - sf.info(source).duration) < 0.2

    with pytest.raises(Exception, match="no cast member named 'Gull'"):  # a job started after the delete
        actor.predict(handle_file(str(source)), "Gull", None, 2, 0.7, 0.7, False, 1.0, 0, api_name="/convert")
    assert "Restored **Gull**" in tidier.predict("gull", api_name="/cast_restore")
    assert tidier.predict(api_name="/cast_list") == before
    assert actor.predict(handle_file(str(source)), "Gull", None, 2, 0.7, 0.7, False, 1.0, 0,
                         api_name="/convert")[0]  # the restored member converts again
