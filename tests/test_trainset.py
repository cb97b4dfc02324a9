"""Training data checks without the app: archive safety and the dataset report's noise warning."""
import zipfile

import numpy as np
import pytest
import soundfile as sf

from studio import trainset


def test_zip_members_get_numbered_names_and_non_audio_is_noted(tmp_path):
    archive = tmp_path / "takes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../../etc/evil.wav", b"RIFF")
        z.writestr("/abs/path/b.flac", b"fLaC")
        z.writestr("readme.md", "hello")
    paths, notes = trainset.gather_uploads([archive], tmp_path / "work")
    assert [p.name for p, _ in paths] == ["0000.wav", "0001.flac"]
    assert all(p.parent == tmp_path / "work" for p, _ in paths)  # never the archive's own paths
    assert [name for _, name in paths] == ["takes.zip:evil.wav", "takes.zip:b.flac"]
    assert notes == ["takes.zip: skipped 1 non-audio file(s) (readme.md)"]
    assert not (tmp_path / "etc").exists()


@pytest.mark.parametrize("cap, value, words", [
    ("MAX_ZIP_MEMBERS", 2, "3 files in the archive; at most 2"),
    ("MAX_TOTAL_BYTES", 2500, "would expand to 0.00286 MiB in all; at most 0.00238 MiB"),
    ("MAX_MEMBER_BYTES", 500, "zip bomb"),
])
def test_archive_caps_are_checked_before_anything_is_written(tmp_path, monkeypatch, cap, value, words):
    monkeypatch.setattr(trainset, cap, value)
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for i in range(3):
            z.writestr(f"{i}.wav", bytes(1000))
    with pytest.raises(trainset.DatasetError, match=words):
        trainset.gather_uploads([archive], tmp_path / "work")
    assert not list((tmp_path / "work").iterdir())


def test_noisy_recordings_get_an_snr_warning_and_clean_ones_do_not(espeak):
    wave, sr = sf.read(espeak("The keeper climbed the stairs and lit the lamp before the storm came in.",
                              voice="en-us+m3", name="snr.wav"), dtype="float32")
    pause = np.zeros(sr, np.float32)
    clean = np.concatenate([np.concatenate([wave, pause])] * 14)  # > 1 min of speech with 1 s pauses
    noise = np.random.default_rng(0).normal(0, 0.03, clean.size).astype(np.float32)
    reports = {}
    for label, recording in (("clean", clean), ("noisy", clean + noise)):
        seg = trainset.find_speech([(recording, sr, f"{label}.wav")])
        reports[label] = trainset.report(seg, 20, None)
    assert reports["clean"]["snr_db"] > 40 and not any("noise" in w for w in reports["clean"]["warnings"])
    assert reports["noisy"]["snr_db"] < 20
    assert any("background noise is high" in w and "isolate vocals" in w for w in reports["noisy"]["warnings"])
