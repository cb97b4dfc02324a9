"""The studio served on loopback and driven through gradio_client, as a script or a LAN user would."""
import threading
import time

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow

PUBLIC = {"/design", "/cast_save", "/cast_upload", "/cast_list", "/cast_rename", "/cast_delete", "/cast_restore",
          "/trash_list", "/health", "/similarity", "/convert", "/convert_rvc", "/rvc_upload", "/rvc_list",
          "/rvc_delete", "/rvc_restore", "/direct", "/takes", "/take_circle", "/export", "/scene_import",
          "/scene_cast", "/scene_render", "/scene_reroll", "/scene_swap", "/scene_takes", "/scene_list", "/scene_mix",
          "/scene_export",
          "/dataset_prepare", "/train_start", "/train_status", "/train_stop", "/train_resume", "/train_export",
          "/train_restore"}


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    url, studio, close = launch_studio(new_home())
    yield Client(url, verbose=False), studio
    close()


def read(path):
    wave, sr = sf.read(path, dtype="float32")
    return wave, sr


def test_api_lists_exactly_the_public_endpoints(served):
    client, _ = served
    named = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert named == PUBLIC, f"missing {sorted(PUBLIC - named)}, unexpected {sorted(named - PUBLIC)}"


def test_design_three_samples_keep_one_and_find_it_after_restart(served, launch_studio):
    client, studio = served
    # Qwen3-TTS's own spelling of the language, as a script writer would type it
    out = client.predict("Hoist the sails, lads.", "a gravelly old sea captain, low and slow", "English", 3, 7,
                         api_name="/design")
    files = [f for f in out if f]
    assert len(out) >= 3 and len(files) == 3
    waves = [read(f)[0] for f in files]
    assert all(read(f)[1] == 24000 and len(w) > 0 and np.abs(w).max() > 0.01 for f, w in zip(files, waves))
    assert not np.array_equal(waves[0][:1000], waves[1][:1000])  # three different takes

    again = client.predict("Hoist the sails, lads.", "a gravelly old sea captain, low and slow", "english", 3, 7,
                           api_name="/design")
    assert all(np.array_equal(read(a)[0], w) for a, w in zip(again, waves))  # same seed, same samples

    msg = client.predict(handle_file(files[1]), "Captain Hale", "gravelly sea captain", " ENGLISH",
                         api_name="/cast_save")
    assert "Captain Hale" in msg
    assert [m["name"] for m in client.predict(api_name="/cast_list")].count("Captain Hale") == 1

    url2, _, close2 = launch_studio(served[1].settings.home)  # a restart: a new studio process state on the same home
    try:
        members = Client(url2, verbose=False).predict(api_name="/cast_list")
        [captain] = [m for m in members if m["name"] == "Captain Hale"]
        assert captain["origin"] == "designed" and captain["language"] == "english"  # one spelling in the library
    finally:
        close2()


def test_bad_requests_get_clear_messages(served):
    client, _ = served
    with pytest.raises(Exception, match="describe the voice"):
        client.predict("Hello there.", "", "english", 2, 1, api_name="/design")
    with pytest.raises(Exception, match="greater than maximum value 6"):
        client.predict("Hello there.", "a calm narrator", "english", 40, 1, api_name="/design")
    with pytest.raises(Exception, match="no cast member named 'Nobody'"):
        client.predict("Nobody", api_name="/cast_delete")
    with pytest.raises(Exception, match="Unknown language 'Klingon'. Choose one of: auto, chinese, english"):
        client.predict("Hello there.", "a calm narrator", "Klingon", 1, 1, api_name="/design")


def test_upload_validates_speech_then_rename_and_delete(served, espeak, tmp_path):
    client, _ = served
    speech = espeak("I have sailed these waters for forty years, and I have never seen a sky like this one.",
                    voice="en-us+f2")
    assert "Mara" in client.predict(handle_file(str(speech)), "Mara", "first mate", "French",
                                    api_name="/cast_upload")
    [mara] = [m for m in client.predict(api_name="/cast_list") if m["name"] == "Mara"]
    assert mara["language"] == "french"
    with pytest.raises(Exception, match="Unknown language 'Elvish'"):
        client.predict(handle_file(str(speech)), "Ghost", "", "Elvish", api_name="/cast_upload")
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000 * 4, np.float32), 16000)
    with pytest.raises(Exception, match="silent"):
        client.predict(handle_file(str(silent)), "Ghost", "", "english", api_name="/cast_upload")
    notes = tmp_path / "notes.wav"
    notes.write_text("not audio at all")
    with pytest.raises(Exception, match="not a readable audio file"):
        client.predict(handle_file(str(notes)), "Ghost", "", "english", api_name="/cast_upload")

    client.predict("Mara", "Mara Quinn", api_name="/cast_rename")
    names = [m["name"] for m in client.predict(api_name="/cast_list")]
    assert "Mara Quinn" in names and "Mara" not in names and "Ghost" not in names
    client.predict("Mara Quinn", api_name="/cast_delete")
    assert "Mara Quinn" not in [m["name"] for m in client.predict(api_name="/cast_list")]


def test_health_answers_while_the_gpu_lane_is_busy_and_jobs_never_overlap(served):
    client, studio = served
    engine = studio.designer()
    real = engine.design
    release, running, peak = threading.Event(), [0], [0]

    def held_design(*args, **kwargs):  # the real engine, held at the door so the lane stays busy
        running[0] += 1
        peak[0] = max(peak[0], running[0])
        release.wait(30)
        try:
            return real(*args, **kwargs)
        finally:
            running[0] -= 1

    engine.design = held_design
    try:
        jobs = [client.submit("Steady as she goes.", "a calm narrator", "english", 1, i, api_name="/design")
                for i in range(2)]
        deadline = time.time() + 30
        while running[0] == 0 and time.time() < deadline:
            time.sleep(0.05)
        t0 = time.time()
        health = client.predict(api_name="/health")
        assert time.time() - t0 < 10 and not jobs[0].done()
        assert health["tiny_models"] is True and health["devices"]["tts"] == "cpu"
        assert health["tts_quantize"] == "none" and "tts" in health["models_loaded"]
        release.set()
        assert all(j.result(timeout=60)[0] for j in jobs)
        assert peak[0] == 1  # one GPU lane: the second design waited for the first
    finally:
        release.set()
        engine.design = real


def test_tiny_banner_is_on_the_page(served):
    import httpx

    client, _ = served
    assert "Tiny test models are loaded" in httpx.get(client.src).text


def test_design_reports_progress_while_it_runs(served):
    client, _ = served
    job = client.submit("Steady as she goes.", "a calm narrator", "english", 1, 3, api_name="/design")
    seen = []
    while not job.done():
        status = job.status()
        if status.progress_data:
            seen.extend((p.index, p.length, p.unit) for p in status.progress_data if p.index is not None)
        time.sleep(0.05)
    assert job.result()[0]
    assert any(unit == "frames" and 0 < done <= total for done, total, unit in seen)
