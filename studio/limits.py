"""Caps on what an upload may cost the server, checked before the bytes are written or decoded.

One module so every feature (Cast, Convert, RVC voices, Train, Direct) refuses the
same way: archive members counted and sized from the archive's headers before
anything is extracted (and the extraction itself stopped at the cap, since headers
can lie); audio duration, channels and rate read from the file's header before the
samples are decoded. Decoding costs channels x rate x seconds, not seconds: a silent
8-channel 384 kHz FLAC is a few kB on disk and 3 million samples per second to decode,
so every feature caps the decoded samples too (see decoded_cap).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

import soundfile as sf

MAX_ARCHIVE_ENTRIES = 256           # entries in one uploaded zip (files and folders)
MAX_MEMBER_BYTES = 1 << 30          # 1 GiB: larger than any RVC model or index
MAX_ARCHIVE_BYTES = 3 << 29         # 1.5 GiB: everything extracted from one upload together
MAX_RATIO = 200                     # expanded/compressed; real models compress ~1.1x, zip bombs ~1000x
MAX_AUDIO_S = 30 * 60.0             # any audio upload: 30 min (features set lower caps of their own)
MAX_AUDIO_CHANNELS = 16
MAX_AUDIO_RATE = 384_000
# Decoded samples (channels x rate x seconds) a feature accepts: its duration cap in stereo 96 kHz. So the
# reference upload (5 min) allows 57.6 M samples, a Convert source (10 min) 115.2 M, a dataset file (30 min)
# 345.6 M; an 8-channel 384 kHz file gets 1/16 of the duration. Decoding then keeps only mono at the
# output rate (studio/audio.py), never the file's channels x rate.
DECODED_PER_S = 2 * 96_000
MAX_NATIVE_RATE = 48_000            # audio decoded "at its own rate" above this comes out at 48 kHz
CHUNK = 1 << 20
MAX_SEED = 2 ** 32 - 1              # seeds from users: what every RNG we seed accepts


class LimitError(ValueError):
    """An upload over a cap; the message is shown to the user as is."""


def _mb(n: int) -> str:
    mb = n / (1 << 20)
    return f"{mb:.1f} MB" if mb < 100 else f"{mb:.0f} MB"


@contextmanager
def _open_zip(archive: Path) -> Iterator[tuple[zipfile.ZipFile, list[zipfile.ZipInfo]]]:
    """The archive and its entries (from the central directory), capped in number; unreadable = LimitError."""
    name = Path(archive).name
    try:
        with zipfile.ZipFile(archive) as z:
            infos = z.infolist()
            if len(infos) > MAX_ARCHIVE_ENTRIES:
                raise LimitError(f"{name}: {len(infos)} entries; an archive may hold at most {MAX_ARCHIVE_ENTRIES}")
            yield z, infos
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, EOFError, zlib.error):
        raise LimitError(f"{name}: not a readable zip archive") from None


def zip_names(archive: Path) -> list[str]:
    """Member file names, read from the headers only (nothing is decompressed)."""
    with _open_zip(archive) as (_, infos):
        return [i.filename for i in infos if not i.is_dir()]


def extract_zip(archive: Path, select: Callable[[str], str | None], work: Path,
                max_member: int = MAX_MEMBER_BYTES, max_total: int = MAX_ARCHIVE_BYTES) -> list[Path]:
    """Extract the members `select(name)` names (it returns a target file name, or None to skip) into `work`.

    Every cap is checked from the central directory first; then each member is streamed and
    stopped as soon as it passes its declared size or the cap. Target names come from `select`,
    never from the archive, so no member can land outside `work`.
    """
    name = Path(archive).name
    with _open_zip(archive) as (z, infos):
        chosen = [(info, target) for info in infos if not info.is_dir() for target in [select(info.filename)] if target]
        total = 0
        for info, _ in chosen:
            if info.flag_bits & 0x1:
                raise LimitError(f"{name}: encrypted archives are not supported")
            if info.file_size > max_member:
                raise LimitError(f"{name}: a member expands to {_mb(info.file_size)}; at most {_mb(max_member)}")
            if info.file_size > MAX_RATIO * max(info.compress_size, 1) and info.file_size > CHUNK:
                raise LimitError(f"{name}: a member expands {info.file_size // max(info.compress_size, 1)}x; "
                                 "that is a zip bomb, not a voice model")
            total += info.file_size
        if total > max_total:
            raise LimitError(f"{name}: expands to {_mb(total)} in all; at most {_mb(max_total)}")
        return [_stream(z, info, work / target, min(info.file_size, max_member), name) for info, target in chosen]


def _stream(z: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, cap: int, name: str) -> Path:
    """Copy one member in chunks, stopping past `cap`; nothing is left behind on any failure."""
    written = 0
    try:
        with z.open(info) as src, open(target, "wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > cap:
                    raise LimitError(f"{name}: a member is larger than its header says; refused")
                dst.write(chunk)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


@dataclass(frozen=True)
class AudioHeader:
    seconds: float
    channels: int
    sample_rate: int


def audio_header(path: str | Path | BinaryIO) -> AudioHeader | None:
    """Duration, channels and rate from the file's header (libsndfile, else ffprobe); None if unreadable."""
    is_file = hasattr(path, "read")
    try:
        info = sf.info(path if is_file else str(path))
        return AudioHeader(info.frames / info.samplerate, info.channels, info.samplerate)
    except Exception:
        pass
    if is_file or shutil.which("ffprobe") is None:
        return None
    try:
        run = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "a:0", "-show_entries",
                              "stream=channels,sample_rate:format=duration", "-of", "json", str(path)],
                             capture_output=True, text=True, timeout=20)
        data = json.loads(run.stdout or "{}")
        stream = data["streams"][0]
        return AudioHeader(float(data["format"]["duration"]), int(stream["channels"]), int(stream["sample_rate"]))
    except (subprocess.TimeoutExpired, KeyError, IndexError, ValueError, TypeError):
        return None


def decoded_cap(max_seconds: float) -> int:
    """Samples (all channels) a feature with a `max_seconds` duration cap may decode."""
    return int(max_seconds * DECODED_PER_S)


def check_audio(header: AudioHeader, name: str, max_seconds: float = MAX_AUDIO_S) -> None:
    """Refuse audio that would cost too much to decode; `max_seconds` is the caller's own cap."""
    if header.channels > MAX_AUDIO_CHANNELS:
        raise LimitError(f"{name}: {header.channels} channels; at most {MAX_AUDIO_CHANNELS}")
    if header.sample_rate > MAX_AUDIO_RATE:
        raise LimitError(f"{name}: sample rate {header.sample_rate} Hz; at most {MAX_AUDIO_RATE} Hz")
    if header.seconds > max_seconds:
        raise LimitError(f"{name}: {_duration(header.seconds)} long; at most {_duration(max_seconds)} here")
    samples, cap = header.seconds * header.channels * header.sample_rate, decoded_cap(max_seconds)
    if samples > cap:
        raise LimitError(f"{name}: {header.channels} channels at {header.sample_rate} Hz for "
                         f"{_duration(header.seconds)} is {samples / 1e6:.1f} million samples to decode; at most "
                         f"{cap / 1e6:.1f} million here (export it as mono or stereo at 48 kHz)")


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 120 else f"{seconds:.1f} s"


def check_seed(seed) -> int:
    """A seed from user input: a whole number from 0 to MAX_SEED (2**70 would overflow the RNGs)."""
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError):
        value = -1
    if value != seed or not 0 <= value <= MAX_SEED:
        raise ValueError(f"seed must be a whole number from 0 to {MAX_SEED}")
    return value
