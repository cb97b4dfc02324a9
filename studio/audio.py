"""Audio I/O for the whole studio: load anything, mono float32, resample, save peak-safe.

One module so that every tab accepts the same formats and fails with the same
clear words on a file that is not audio.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from . import durable, limits

PEAK = 0.99                    # never write above this, so no take clips
REFERENCE_SR = 24000           # cast references are stored at the TTS rate
REFERENCE_MIN_S = 3.0          # shorter references give unstable timbre
REFERENCE_MAX_S = 30.0         # Seed-VC uses at most 25 s of the reference
REFERENCE_UPLOAD_MAX_S = 300.0 # a reference recording before trimming (checked before decoding)
REFERENCE_RMS_DBFS = -20.0     # loudness every reference is normalised to
MIN_SPEECH_S = 1.0             # a reference must contain at least this much detected speech
DESIGNED_MIN_S = 1.0           # a designed sample kept as a cast member must be at least this long
TRIM_TOP_DB = 40.0             # silence threshold for trimming, below the peak
OUTPUT_FORMATS = ("wav", "flac", "ogg", "mp3")
BLOCK_FRAMES = 1 << 16         # frames decoded at a time: decoding holds one block plus the mono output
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)  # MPEG-1, 2 and 2.5


class AudioError(ValueError):
    """Input audio the studio cannot use; the message is shown to the user as is."""


def probe(source: str | Path | bytes, max_seconds: float = limits.MAX_AUDIO_S) -> limits.AudioHeader:
    """Duration, channels and rate from the header, checked against the caps before any decoding."""
    name = "upload" if isinstance(source, bytes) else Path(source).name
    if not isinstance(source, bytes) and not Path(source).is_file():
        raise AudioError(f"{name}: file not found")
    header = limits.audio_header(io.BytesIO(source) if isinstance(source, bytes) else source)
    if header is None or header.channels < 1 or header.sample_rate < 1:
        raise AudioError(f"{name}: not a readable audio file (WAV, FLAC, OGG, MP3 or M4A)")
    limits.check_audio(header, name, max_seconds)
    return header


def load_audio(source: str | Path | bytes, sr: int | None = None,
               max_seconds: float = limits.MAX_AUDIO_S) -> tuple[np.ndarray, int]:
    """Decode a file (WAV/FLAC/OGG/MP3, or anything ffmpeg reads) to mono float32.

    Returns (samples, sample_rate): at `sr` when given, else at the file's rate (at most
    limits.MAX_NATIVE_RATE). Files over the caps (duration and decoded samples, read from the
    header) are refused before they are decoded; the rest are downmixed and resampled as they
    are read, so decoding holds the mono output, never the file's channels x rate.
    """
    name = "upload" if isinstance(source, bytes) else Path(source).name
    header = probe(source, max_seconds)
    rate = int(sr or min(header.sample_rate, limits.MAX_NATIVE_RATE))
    # past this many seconds a file decodes longer than the caps allow (its header understated it)
    most = min(max_seconds, limits.decoded_cap(max_seconds) / header.channels / header.sample_rate) + 1.0
    try:
        with sf.SoundFile(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as f:
            wave = _decode_blocks(f, name, rate, int(most * f.samplerate))
    except sf.SoundFileError:  # a format libsndfile does not read (or reads no further): ffmpeg
        wave = _decode_with_ffmpeg(source, name, header.channels, rate, most)
    if wave.size == 0:
        raise AudioError(f"{name}: the file contains no audio")
    return wave, rate


def _decode_blocks(f: sf.SoundFile, name: str, rate: int, most_frames: int) -> np.ndarray:
    """libsndfile formats, block by block: each block downmixed to mono and resampled (soxr HQ, streaming)."""
    import soxr

    stream = None if f.samplerate == rate else soxr.ResampleStream(f.samplerate, rate, 1, quality="HQ")
    out = np.zeros(int(np.ceil(max(f.frames, 0) * rate / f.samplerate)), np.float32)
    done = read = 0
    for block in f.blocks(BLOCK_FRAMES, dtype="float32", always_2d=True):
        read += len(block)
        if read > most_frames:
            raise limits.LimitError(f"{name}: decodes longer than its header says; refused")
        mono = block.mean(axis=1, dtype=np.float32)
        if not np.all(np.isfinite(mono)):
            raise AudioError(f"{name}: the audio contains invalid (NaN or infinite) samples")
        done = _put(out, done, stream.resample_chunk(mono) if stream is not None else mono)
    if stream is not None:
        done = _put(out, done, stream.resample_chunk(np.zeros(0, np.float32), last=True))
    out.resize(int(np.ceil(read * rate / f.samplerate)), refcheck=False)  # librosa's length: ceil(n * ratio)
    return out


def _put(out: np.ndarray, at: int, piece: np.ndarray) -> int:
    """Copy `piece` into the output buffer at `at`, growing it (in place) when the header understated the length."""
    if at + len(piece) > len(out):
        out.resize(max(2 * len(out), at + len(piece)), refcheck=False)
    out[at:at + len(piece)] = piece
    return at + len(piece)


def _decode_with_ffmpeg(source: str | Path | bytes, name: str, channels: int, rate: int,
                        most_s: float) -> np.ndarray:
    """Formats libsndfile cannot read (M4A/AAC, webm): ffmpeg itself downmixes to mono (the channels' mean, as
    for every other format) at `rate`, as float32 on a pipe, stopped once it passes what the caps allow."""
    unreadable = AudioError(f"{name}: not a readable audio file (WAV, FLAC, OGG, MP3 or M4A)")
    if isinstance(source, bytes) or shutil.which("ffmpeg") is None:
        raise unreadable
    most_bytes = 4 * int(most_s * rate)
    mean = "+".join(f"{1 / channels!r}*c{i}" for i in range(channels))
    data = bytearray()
    with subprocess.Popen(["ffmpeg", "-nostdin", "-v", "error", "-i", str(source), "-map", "0:a:0",
                           "-af", f"pan=mono|c0={mean}", "-ar", str(rate), "-f", "f32le", "pipe:1"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as proc:
        try:
            while chunk := proc.stdout.read(limits.CHUNK):
                data += chunk
                if len(data) > most_bytes:
                    raise limits.LimitError(f"{name}: decodes longer than its header says; refused")
        except BaseException:
            proc.kill()
            raise
    if proc.returncode != 0:
        raise unreadable
    wave = np.frombuffer(data, np.float32, len(data) // 4)
    if not np.all(np.isfinite(wave)):
        raise AudioError(f"{name}: the audio contains invalid (NaN or infinite) samples")
    return wave


def resample(wave: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """High-quality (soxr) resampling; a no-op when the rates match."""
    if sr_in == sr_out:
        return wave.astype(np.float32, copy=False)
    import librosa

    return librosa.resample(wave.astype(np.float32), orig_sr=sr_in, target_sr=sr_out, res_type="soxr_hq")


def peak_safe(wave: np.ndarray, peak: float = PEAK) -> np.ndarray:
    """Scale down only if the loudest sample would clip."""
    top = float(np.max(np.abs(wave))) if wave.size else 0.0
    return (wave * (peak / top)).astype(np.float32) if top > peak else wave.astype(np.float32)


def save_audio(path: str | Path, wave: np.ndarray, sr: int) -> Path:
    """Write peak-safe audio; the format follows the suffix (wav, flac, ogg, mp3).

    MP3 only has the MPEG-1/2/2.5 rates, so other rates (RVC's 40 kHz) are resampled to the
    nearest one. The file appears complete or not at all: written under a temporary name, then renamed;
    and it is on disk when this returns (fsynced with its folder), so a row committed next may point at it.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower()
    if fmt not in OUTPUT_FORMATS:
        raise AudioError(f"output format {fmt!r}: choose one of {', '.join(OUTPUT_FORMATS)}")
    wave = np.asarray(wave, dtype=np.float32)
    if fmt == "mp3" and sr not in MP3_RATES:
        rate = min(MP3_RATES, key=lambda r: (abs(r - sr), -r))
        wave, sr = resample(wave, sr, rate), rate
    path.parent.mkdir(parents=True, exist_ok=True)
    subtype = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}[fmt]
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        sf.write(str(partial), peak_safe(wave), sr, subtype=subtype, format=fmt.upper())
        durable.publish(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return path


def trim_silence(wave: np.ndarray, top_db: float = TRIM_TOP_DB) -> np.ndarray:
    """Cut leading and trailing silence (quieter than `top_db` below the peak)."""
    import librosa

    if not np.any(wave):
        return wave[:0]
    trimmed, _ = librosa.effects.trim(wave, top_db=top_db, frame_length=1024, hop_length=256)
    return trimmed


def speech_seconds(wave: np.ndarray, sr: int) -> float:
    """Seconds of speech Silero VAD finds (its weights ship inside the package)."""
    stamps = speech_stamps(resample(wave, sr, 16000))
    return sum(s["end"] - s["start"] for s in stamps) / 16000.0


def speech_stamps(wave16: np.ndarray) -> list[dict]:
    """Silero VAD speech regions of 16 kHz audio: [{"start": sample, "end": sample}, ...]."""
    import torch
    from silero_vad import get_speech_timestamps

    return get_speech_timestamps(torch.from_numpy(np.ascontiguousarray(wave16, dtype=np.float32)), _silero(),
                                 sampling_rate=16000)


_SILERO = None


def _silero():
    global _SILERO
    if _SILERO is None:
        import torch

        threads = torch.get_num_threads()  # importing silero_vad forces 1 thread process-wide
        from silero_vad import load_silero_vad

        _SILERO = load_silero_vad(onnx=True)
        torch.set_num_threads(threads)
    return _SILERO


def normalise_loudness(wave: np.ndarray, target_dbfs: float = REFERENCE_RMS_DBFS) -> np.ndarray:
    """Bring RMS to the target level, then keep the peak safe."""
    rms = float(np.sqrt(np.mean(np.square(wave)))) if wave.size else 0.0
    if rms <= 1e-8:
        return wave
    return peak_safe(wave * (10 ** (target_dbfs / 20) / rms))


def prepare_reference(wave: np.ndarray, sr: int, designed: bool = False) -> np.ndarray:
    """Validate and condition a voice reference: trimmed, bounded, 24 kHz, normalised.

    Uploads must be 3-30 s and contain speech. Designed samples are the model's
    own output: they skip the speech check, need only 1 s, and are cut to 30 s.
    """
    wave = trim_silence(np.asarray(wave, dtype=np.float32))
    seconds = len(wave) / sr
    if designed:
        if seconds < DESIGNED_MIN_S:
            raise AudioError(f"sample is {seconds:.1f} s after trimming silence; keep a sample "
                             f"of at least {DESIGNED_MIN_S:.0f} s")
        wave = wave[: int(REFERENCE_MAX_S * sr)]
    else:
        if seconds == 0:
            raise AudioError("reference is silent: upload a recording of someone speaking")
        if seconds < REFERENCE_MIN_S:
            raise AudioError(f"reference is {seconds:.1f} s after trimming silence; it needs at least "
                             f"{REFERENCE_MIN_S:.0f} s of speech")
        if seconds > REFERENCE_MAX_S:
            raise AudioError(f"reference is {seconds:.1f} s after trimming silence; keep it under "
                             f"{REFERENCE_MAX_S:.0f} s (cut the best part of the recording)")
        if speech_seconds(wave, sr) < MIN_SPEECH_S:
            raise AudioError("no speech found in the reference: upload a recording of someone speaking")
    return normalise_loudness(resample(wave, sr, REFERENCE_SR))
