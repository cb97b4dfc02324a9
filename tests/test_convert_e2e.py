"""Convert tab through gradio_client on tiny models: Seed-VC with a cast voice, RVC with an uploaded model."""
import datetime
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    url, studio, close = launch_studio(new_home())
    yield Client(url, verbose=False), studio
    close()


@pytest.fixture(scope="module")
def tiny_voice(tmp_path_factory):
    """A community-style RVC voice (.pth + .index) in the shared format, random weights."""
    import rvc.tiny

    folder = tmp_path_factory.mktemp("rvc_voice")
    paths = {"voice": folder / "Hale.pth", "index": folder / "added_IVF20_Flat_nprobe_1_Hale_v2.index"}
    rvc.tiny.build_tiny(paths, rvc.tiny.tiny_dims())
    return paths


@pytest.fixture(scope="module")
def line(espeak):
    return espeak("Batten down the hatches, the storm is nearly here.", voice="en-us+m1", name="line.wav")


def duration(path):
    info = sf.info(path)
    return info.frames / info.samplerate, info.samplerate


def test_seed_vc_converts_a_line_into_a_cast_voice(served, espeak, line):
    client, _ = served
    ref = espeak("I have kept this lighthouse for thirty years and never once missed a night.", voice="en-us+f2")
    client.predict(handle_file(str(ref)), "Keeper", "lighthouse keeper", "english", api_name="/cast_upload")
    out, notes = client.predict(handle_file(str(line)), "Keeper", None, 3, 0.7, 0.7, False, 1.0, 5,
                                api_name="/convert")
    seconds, sr = duration(out)
    assert sr == 22050 and abs(seconds - duration(line)[0]) < 0.1  # the timbre path keeps the timing
    assert "3 diffusion steps" in notes
    wave, _ = sf.read(out)
    assert np.abs(wave).max() > 1e-3 and np.abs(wave).max() <= 0.99 + 1e-3

    again, _ = client.predict(handle_file(str(line)), "Keeper", None, 3, 0.7, 0.7, False, 1.0, 5,
                              api_name="/convert")
    assert np.array_equal(sf.read(again)[0], wave)  # same seed, same take


def test_seed_vc_with_an_uploaded_reference_and_style_conversion(served, espeak, line):
    client, _ = served
    ref = espeak("Every morning I walk the length of the beach and count the gulls.", voice="en-us+m7")
    out, _ = client.predict(handle_file(str(line)), None, handle_file(str(ref)), 2, 0.5, 0.0, True, 1.0, 1,
                            api_name="/convert")
    seconds, sr = duration(out)
    assert sr == 22050 and seconds > 0.5


@pytest.mark.parametrize("case, words", [
    ("silent_ref", "silent"),
    ("short_ref", "needs at least 3 s"),
    ("long_source", "convert at most 10 min"),
    ("corrupt_source", "not a readable audio file"),
    ("no_voice", "pick a cast member or upload a reference"),
])
def test_seed_vc_bad_input_gets_a_clear_message(served, line, tmp_path, case, words):
    client, _ = served
    source, reference = handle_file(str(line)), None
    if case == "silent_ref":
        sf.write(tmp_path / "r.wav", np.zeros(16000 * 5, np.float32), 16000)
        reference = handle_file(str(tmp_path / "r.wav"))
    elif case == "short_ref":
        sf.write(tmp_path / "r.wav", 0.3 * np.sin(np.arange(4800) / 16000 * 2 * np.pi * 200), 16000)
        reference = handle_file(str(tmp_path / "r.wav"))
    elif case == "long_source":
        sf.write(tmp_path / "long.wav", np.full(8000 * 60 * 20, 0.1, np.float32), 8000)  # 20 minutes
        source = handle_file(str(tmp_path / "long.wav"))
    elif case == "corrupt_source":
        (tmp_path / "bad.wav").write_bytes(b"RIFF....not really a wave file")
        source = handle_file(str(tmp_path / "bad.wav"))
    if case in ("long_source", "corrupt_source"):
        reference = handle_file(str(line))
    with pytest.raises(Exception, match=words):
        client.predict(source, None, reference, 2, 0.7, 0.7, False, 1.0, 0, api_name="/convert")


def test_rvc_voice_upload_convert_and_delete(served, tiny_voice, line, tmp_path):
    client, _ = served
    msg = client.predict([handle_file(str(tiny_voice["voice"])), handle_file(str(tiny_voice["index"]))], "Hale",
                         api_name="/rvc_upload")
    assert "Hale" in msg and "with index" in msg
    [hale] = [v for v in client.predict(api_name="/rvc_list") if v["name"] == "Hale"]
    assert (hale["version"], hale["sample_rate"], hale["pitch_guided"]) == ("v2", 40000, True)

    out, notes = client.predict(handle_file(str(line)), "Hale", 0, "fcpe", 0.75, 0.33, "flac",
                                api_name="/convert_rvc")
    seconds, sr = duration(out)
    assert out.endswith(".flac") and sr == 40000 and abs(seconds - duration(line)[0]) < 0.05
    assert "pitch: fcpe" in notes and "index: used" in notes

    out, notes = client.predict(handle_file(str(line)), "Hale", 12, "auto", 0.0, 0.5, "wav",
                                api_name="/convert_rvc")
    assert "pitch: rmvpe" in notes and "index: not used" in notes  # tiny RMVPE is installed, so auto picks it

    sf.write(tmp_path / "silence.wav", np.zeros(16000 * 3, np.float32), 16000)
    with pytest.raises(Exception, match="source is silent"):
        client.predict(handle_file(str(tmp_path / "silence.wav")), "Hale", 0, "fcpe", 0.75, 0.33, "wav",
                       api_name="/convert_rvc")

    client.predict("Hale", api_name="/rvc_delete")
    assert "Hale" not in [v["name"] for v in client.predict(api_name="/rvc_list")]


def test_rvc_voice_from_a_zip_and_refusals(served, tiny_voice, tmp_path):
    client, _ = served
    archive = tmp_path / "voice.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tiny_voice["voice"], "weights/../Hale.pth")
        z.write(tiny_voice["index"], "Hale.index")
    assert "Zipped" in client.predict([handle_file(str(archive))], "Zipped", api_name="/rvc_upload")
    with pytest.raises(Exception, match="an RVC voice named 'zipped' already exists"):
        client.predict([handle_file(str(archive))], "zipped", api_name="/rvc_upload")
    client.predict("Zipped", api_name="/rvc_delete")

    corrupt = tmp_path / "broken.pth"
    corrupt.write_bytes(b"\x80\x02not a torch file")
    unsafe = tmp_path / "pickled.pth"  # a pickle with objects weights_only refuses: torch advises weights_only=False
    torch.save({"weight": {}, "config": [], "saved": datetime.date(2024, 1, 1)}, unsafe)
    for path, why in ((corrupt, "damaged"), (unsafe, "could run code")):
        with pytest.raises(Exception) as err:
            client.predict([handle_file(str(path))], "Broken", api_name="/rvc_upload")
        message = str(err.value)
        assert f"{path.name}: not a readable PyTorch checkpoint" in message and why in message
        assert "/" not in message.split(path.name)[0] and "weights_only" not in message  # no server path or advice

    ckpt = torch.load(tiny_voice["voice"], weights_only=True)
    training = tmp_path / "G_2333333.pth"
    torch.save({"model": ckpt["weight"], "iteration": 10, "optimizer": {}, "learning_rate": 1e-4}, training)
    with pytest.raises(Exception, match="training checkpoint"):
        client.predict([handle_file(str(training))], "Training", api_name="/rvc_upload")
    assert not {"Broken", "Training"} & {v["name"] for v in client.predict(api_name="/rvc_list")}

    with pytest.raises(Exception, match="no RVC voice named 'Nobody'"):
        client.predict(handle_file(str(tiny_voice["index"])), "Nobody", 0, "fcpe", 0.75, 0.33, "wav",
                       api_name="/convert_rvc")


@pytest.mark.parametrize("api_name", ["/convert", "/design"])
def test_a_seed_out_of_range_gets_a_clear_message(served, line, api_name):
    client, _ = served
    args = ((handle_file(str(line)), None, handle_file(str(line)), 2, 0.7, 0.7, False, 1.0, 2**70)
            if api_name == "/convert" else ("Ahoy.", "a sailor", "english", 1, 2**70))
    with pytest.raises(Exception, match=r"seed must be a whole number from 0 to 4294967295"):
        client.predict(*args, api_name=api_name)
