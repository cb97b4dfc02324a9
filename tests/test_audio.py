import numpy as np
import pytest
import soundfile as sf

from compare import assert_close
from studio import audio


def tone(seconds, sr=16000, f=220.0, amp=0.5):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * f * t)).astype(np.float32)


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_formats_round_trip_to_mono_at_requested_rate(tmp_path, fmt):
    stereo = np.stack([tone(1.0, 44100), tone(1.0, 44100, 330)], axis=1)
    path = tmp_path / f"x.{fmt}"
    sf.write(path, stereo, 44100)
    wave, sr = audio.load_audio(path, sr=16000)
    assert sr == 16000 and wave.ndim == 1 and wave.dtype == np.float32
    assert abs(len(wave) - 16000) < 1200  # mp3 adds encoder padding


def test_corrupt_and_non_audio_files_get_a_clear_error(tmp_path):
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    with pytest.raises(audio.AudioError, match="notes.wav: not a readable audio file"):
        audio.load_audio(bad)
    with pytest.raises(audio.AudioError, match="file not found"):
        audio.load_audio(tmp_path / "missing.wav")
    with pytest.raises(audio.AudioError, match="not a readable audio file"):
        audio.load_audio(b"\x00\x01garbage")


def test_saved_audio_never_clips(tmp_path):
    loud = tone(0.5, amp=3.0)
    path = audio.save_audio(tmp_path / "loud.flac", loud, 16000)
    back, _ = audio.load_audio(path)
    assert np.max(np.abs(back)) <= audio.PEAK + 1e-3
    with pytest.raises(audio.AudioError, match="choose one of wav, flac, ogg, mp3"):
        audio.save_audio(tmp_path / "x.aiff", loud, 16000)


def test_reference_from_real_speech_is_trimmed_normalised_24k(espeak):
    wave, sr = audio.load_audio(espeak("The quick brown fox jumps over the lazy dog near the river bank today."))
    padded = np.concatenate([np.zeros(sr), wave * 0.05, np.zeros(sr)]).astype(np.float32)
    ref = audio.prepare_reference(padded, sr)
    assert abs(len(ref) / audio.REFERENCE_SR - len(wave) / sr) < 0.5  # silence trimmed
    rms_db = 20 * np.log10(np.sqrt(np.mean(ref ** 2)))
    assert abs(rms_db - audio.REFERENCE_RMS_DBFS) < 1.5 and np.max(np.abs(ref)) <= audio.PEAK + 1e-6


def test_reference_bounds_and_speech_check(espeak):
    with pytest.raises(audio.AudioError, match="silent"):
        audio.prepare_reference(np.zeros(16000 * 5, np.float32), 16000)
    with pytest.raises(audio.AudioError, match="needs at least 3 s"):
        audio.prepare_reference(tone(0.3), 16000)
    with pytest.raises(audio.AudioError, match="keep it under 30 s"):
        audio.prepare_reference(tone(31.0), 16000)
    rng = np.random.default_rng(0)
    with pytest.raises(audio.AudioError, match="no speech found"):
        audio.prepare_reference(tone(5.0) + 0.01 * rng.standard_normal(80000).astype(np.float32), 16000)


def test_mp3_of_a_rate_mpeg_lacks_is_resampled_and_complete(tmp_path):
    """RVC's 40 kHz is no MPEG rate: the take is written at the nearest one instead of failing."""
    path = audio.save_audio(tmp_path / "take.mp3", tone(1.0, 40000), 40000)
    info = sf.info(path)
    assert info.samplerate == 44100 and abs(info.frames / info.samplerate - 1.0) < 0.1
    assert [p.name for p in tmp_path.iterdir()] == ["take.mp3"]


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(Exception):
        audio.save_audio(tmp_path / "take.flac", tone(0.1), 1_000_000)  # no FLAC at 1 MHz
    assert list(tmp_path.iterdir()) == []


def old_full_decode(path, sr):
    """What load_audio did before it decoded block by block: everything at once, then downmix, then resample."""
    import librosa

    data, rate = sf.read(path, dtype="float32", always_2d=True)
    return librosa.resample(data.mean(axis=1).astype(np.float32), orig_sr=rate, target_sr=sr, res_type="soxr_hq")


def test_multichannel_high_rate_audio_decodes_as_before(tmp_path):
    rng = np.random.default_rng(0)
    six = np.stack([tone(2.0, 96000, 150 + 70 * c, 0.2) + 0.01 * rng.standard_normal(192000).astype(np.float32)
                    for c in range(6)], axis=1)
    path = tmp_path / "six.flac"
    sf.write(path, six, 96000, subtype="PCM_24")
    for sr in (16000, 44100):
        wave, rate = audio.load_audio(path, sr=sr)
        assert rate == sr
        assert_close(wave, old_full_decode(path, sr), f"decoded at {sr} Hz")
    wave, rate = audio.load_audio(path)  # "its own rate" stops at 48 kHz: nothing in the studio uses more
    assert rate == 48000
    assert_close(wave, old_full_decode(path, 48000), "decoded at its own rate")


def test_decoding_memory_follows_the_mono_output_not_the_file(tmp_path):
    import tracemalloc

    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", 48000, 2, subtype="PCM_16") as f:
        block = np.stack([tone(10.0, 48000), tone(10.0, 48000, 330)], axis=1)
        for _ in range(3):
            f.write(block)
    tracemalloc.start()
    try:
        wave, sr = audio.load_audio(path, sr=16000)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert sr == 16000 and len(wave) == 30 * 16000
    # the file decodes to 11.5 MB of stereo float32; the output is 1.9 MB
    assert peak < 1.5 * wave.nbytes + 2_000_000, f"decoding took {peak / 1e6:.1f} MB for {wave.nbytes / 1e6:.1f} MB"


def test_formats_only_ffmpeg_reads_come_out_mono_at_the_requested_rate(tmp_path):
    import subprocess

    sf.write(tmp_path / "x.wav", np.stack([tone(2.0, 44100), tone(2.0, 44100, 330)], axis=1), 44100)
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(tmp_path / "x.wav"), str(tmp_path / "x.m4a")], check=True,
                   timeout=60)
    wave, sr = audio.load_audio(tmp_path / "x.m4a", sr=16000)
    assert sr == 16000 and wave.ndim == 1 and abs(len(wave) - 32000) < 1600  # AAC adds encoder padding
    assert 0.2 < np.max(np.abs(wave)) < 0.6
