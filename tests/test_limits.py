"""Caps are checked from headers before bytes are written or decoded (studio/limits.py)."""
import struct
import zipfile

import numpy as np
import pytest
import soundfile as sf

from studio import audio, limits
from studio.limits import LimitError, extract_zip


def pick_pth(name):
    return "model.pth" if name.endswith(".pth") else None


def test_a_zip_bomb_is_refused_from_its_headers_before_anything_is_written(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z, z.open("a.pth", "w") as member:
        for _ in range(32):
            member.write(bytes(1 << 20))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(LimitError, match="bomb.zip: a member expands 1\\d{3}x; that is a zip bomb"):
        extract_zip(bomb, pick_pth, work)
    assert list(work.iterdir()) == []


def test_member_and_total_caps_come_from_the_headers(tmp_path):
    archive = tmp_path / "big.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        for i in range(3):
            z.writestr(f"v{i}.pth", rng.bytes(300_000))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(LimitError, match="a member expands to 0.3 MB; at most 0.2 MB"):
        extract_zip(archive, pick_pth, work, max_member=200_000)
    names = iter(range(3))
    with pytest.raises(LimitError, match="expands to 0.9 MB in all; at most 0.8 MB"):
        extract_zip(archive, lambda n: f"{next(names)}.pth", work, max_total=800_000)
    assert list(work.iterdir()) == []


def test_a_member_larger_than_its_header_says_is_cut_off(tmp_path):
    archive = tmp_path / "liar.zip"
    data = np.random.default_rng(1).bytes(3 << 20)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as z:
        z.writestr("voice.pth", data)
    raw = bytearray(archive.read_bytes())
    size = struct.pack("<I", len(data))
    for at in [i for i in range(len(raw) - 4) if raw[i:i + 4] == size]:
        raw[at:at + 4] = struct.pack("<I", 1000)  # both headers now claim 1000 bytes
    archive.write_bytes(bytes(raw))
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(LimitError, match="liar.zip"):
        extract_zip(archive, pick_pth, work)
    assert list(work.iterdir()) == []


def test_too_many_entries_and_non_zips(tmp_path):
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as z:
        for i in range(limits.MAX_ARCHIVE_ENTRIES + 1):
            z.writestr(f"{i}.txt", "")
    with pytest.raises(LimitError, match=f"{limits.MAX_ARCHIVE_ENTRIES + 1} entries"):
        limits.zip_names(many)
    (tmp_path / "fake.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(LimitError, match="fake.zip: not a readable zip archive"):
        extract_zip(tmp_path / "fake.zip", pick_pth, tmp_path)


def test_long_audio_is_refused_from_its_header_without_decoding(tmp_path, monkeypatch):
    path = tmp_path / "long.flac"
    with sf.SoundFile(path, "w", 8000, 1, subtype="PCM_16") as f:
        for _ in range(40):
            f.write(np.zeros(8000 * 60, np.int16))
    assert path.stat().st_size < 200_000  # 40 minutes in a small file

    def no_decoding(*a, **k):
        raise AssertionError("decoded")

    monkeypatch.setattr(sf.SoundFile, "read", no_decoding)
    with pytest.raises(LimitError, match="long.flac: 40.0 min long; at most 30.0 min here"):
        audio.load_audio(path)
    with pytest.raises(LimitError, match="at most 5.0 min here"):
        audio.load_audio(path, max_seconds=audio.REFERENCE_UPLOAD_MAX_S)


def test_audio_headers_from_libsndfile_and_ffprobe(tmp_path):
    sf.write(tmp_path / "a.wav", np.zeros((16000, 3), np.float32), 16000)
    assert limits.audio_header(tmp_path / "a.wav") == limits.AudioHeader(1.0, 3, 16000)
    with pytest.raises(LimitError, match="20 channels; at most 16"):
        limits.check_audio(limits.AudioHeader(1.0, 20, 16000), "x.wav")
    import subprocess

    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=200:duration=2", "-ac", "2",
                    str(tmp_path / "b.m4a")], check=True, timeout=60)  # libsndfile cannot read AAC
    header = limits.audio_header(tmp_path / "b.m4a")
    assert header.channels == 2 and abs(header.seconds - 2) < 0.1
    (tmp_path / "text.wav").write_text("hello")
    assert limits.audio_header(tmp_path / "text.wav") is None


class Decoded(BaseException):
    """Raised by any decoding: a BaseException, so no fallback decoder swallows it."""


def test_a_small_file_that_decodes_to_gigabytes_is_refused_from_its_header(tmp_path, monkeypatch):
    """A silent 8-channel 384 kHz FLAC is a few kB a minute but 3 million samples a second to decode."""
    path = tmp_path / "huge.flac"
    with sf.SoundFile(path, "w", 384_000, 8, subtype="PCM_16") as f:
        for _ in range(6):
            f.write(np.zeros((384_000 * 10, 8), np.int16))
    assert path.stat().st_size < 1_000_000

    def decoding(*a, **k):
        raise Decoded("decoded")

    monkeypatch.setattr(sf.SoundFile, "read", decoding)
    words = "huge.flac: 8 channels at 384000 Hz for 60.0 s is 184.3 million samples to decode; at most {} million"
    with pytest.raises(LimitError, match=words.format("57.6")):  # a cast reference upload (5 min)
        audio.load_audio(path, max_seconds=audio.REFERENCE_UPLOAD_MAX_S)
    with pytest.raises(LimitError, match=words.format("115.2")):  # a Convert source (10 min)
        audio.load_audio(path, max_seconds=600.0)
