"""Train's "Isolate vocals first": audio-separator's own loader and Separator on the tiny BS-RoFormer that
`setup_models.py --tiny` writes (the released on-disk layout), offline, on espeak speech over synthetic music.
Random weights make noise: these tests check that isolation ran and what it produced, not its quality."""
import shutil

import numpy as np
import pytest
import requests
import soundfile as sf

from compare import assert_close
from test_train_e2e import SENTENCES
from studio import separation
from studio.service import Studio
from studio.settings import load_settings

LINES = SENTENCES[:8]   # the training test's read-aloud text


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """audio-separator fetches a missing model or model list with requests.get: here that fails the test."""
    def refuse(url, *args, **kwargs):
        raise AssertionError(f"audio-separator tried to download {url}")

    monkeypatch.setattr(requests, "get", refuse)


def song(lines, voice, espeak, seed):
    """A long take of speech (lines with short pauses) over a synthetic band: changing chords and a kick drum."""
    parts = []
    for i, line in enumerate(lines):
        wave, sr = sf.read(espeak(line, voice=voice, name=f"iso_{voice}_{i}.wav"), dtype="float32")
        parts += [wave, np.zeros(sr // 2, np.float32)]
    voice = np.concatenate(parts)
    t = np.arange(voice.size) / sr
    roots = np.random.default_rng(seed).choice([110.0, 146.8, 164.8, 196.0], size=int(t[-1] * 2) + 1)
    f = roots[(t * 2).astype(int)]
    chord = sum(np.sin(2 * np.pi * f * k * t) for k in (1, 1.25, 1.5)) / 3
    kick = np.sin(2 * np.pi * 60 * t) * np.exp(-12 * (t % 0.5))
    return (voice + 0.15 * chord + 0.2 * kick).astype(np.float32), sr


@pytest.mark.slow
def test_isolate_vocals_runs_offline_and_the_dataset_is_made(new_home, espeak, tmp_path):
    home = new_home()
    studio = Studio(load_settings(env={"STUDIO_HOME": str(home), "TTS_DEVICE": "cpu"}))
    files = []
    for i, voice in enumerate(["en-us+m3", "en-us+m1"]):  # ~85 s in two takes: training needs a minute of speech
        files.append(tmp_path / f"take{i}.wav")
        sf.write(files[-1], *song(LINES, voice, espeak, seed=i))

    report = studio.training.prepare(files, "Isolated", isolate=True)

    assert f"vocals isolated with BS-RoFormer ({separation.MODEL_FILE}, {len(files)} file(s))" in report["notes"]
    assert not any("skipped" in n for n in report["notes"])
    assert report["clips"] > 0 and report["files"] == len(files)
    folder = studio.training.get("Isolated").folder
    assert len(list((folder / "dataset_40k" / "0_gt_wavs").glob("*.wav"))) == report["clips"]
    stems = sorted((folder / "isolated").glob("*_(vocals)_*"))
    assert len(stems) == len(files)  # one vocal stem per upload, as long as the upload
    for stem, upload in zip(stems, files):
        assert_close(sf.info(stem).duration, sf.info(upload).duration, f"{stem.name} duration", rel=1e-3)


def test_a_broken_vocal_model_is_a_clear_error_not_an_exit(tiny_home, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_home / "models" / separation.ENTRY, models / separation.ENTRY)
    (models / separation.ENTRY / separation.MODEL_DIR / separation.MODEL_FILE).write_bytes(b"truncated")
    wave = np.zeros(44100, np.float32)
    with pytest.raises(separation.SeparationError, match="could not be loaded.*setup_models.py --only vocal-separator"):
        separation.isolate_vocals([(wave, 44100, "a.wav")], models, tmp_path / "work")
