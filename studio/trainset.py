"""Training data for RVC: uploads (files or a zip) -> clean speech segments -> a report a person can act on.

Everything that would waste hours of training is refused here, before any training starts: unreadable files
(named), silence, under a minute of speech, and archives that would expand past sane limits (checked from the
archive's directory before a byte is written). Slicing, high-pass and normalisation follow RVC's recipe in
`rvc.dataset`; this module finds the speech (Silero VAD), measures it, and holds out the probe clip that every
saved epoch is previewed with.
"""
from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .audio import AudioError, load_audio, resample, speech_stamps

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".aac", ".opus", ".webm", ".aiff", ".aif")
MAX_ZIP_MEMBERS = 2000                # more files than any real dataset
MAX_MEMBER_BYTES = 2 << 30            # 2 GiB expanded per file (over 3 h of 48 kHz stereo WAV)
MAX_TOTAL_BYTES = 8 << 30             # 8 GiB expanded in all
MAX_RATIO = 100                       # audio never compresses 100:1; a member that does is a bomb ...
RATIO_FLOOR_BYTES = 8 << 20           # ... once it expands past 8 MiB (tiny files can compress a lot)
MIN_SPEECH_S = 60.0                   # under a minute of speech a model only learns noise
RECOMMENDED_S = (5 * 60.0, 40 * 60.0)  # RVC's community advice: 10-40 min; 5 min is a usable start
PROBE_S = (2.0, 4.0)                  # the held-out preview clip: at least 2 s, at most 4 s of speech
VAD_SR = 16000
VAD_PAD_S = 0.25                      # keep breaths and onsets; pauses under 0.5 s stay inside a segment
CLIP_LEVEL = 0.999                    # a sample at full scale was (probably) clipped
CLIP_WARN = 0.001                     # warn when 0.1 % of samples sit at full scale
SNR_WARN_DB = 20.0                    # below this, room noise or music will be learned too


class DatasetError(ValueError):
    """A dataset that cannot train; the message says why and what to do."""


@dataclass
class Segments:
    """Speech found in the uploads, at each file's own rate, plus the measurements for the report."""
    clips: list[tuple[np.ndarray, int]]
    probe: tuple[np.ndarray, int]
    files: int
    speech_s: float
    clipped_fraction: float
    snr_db: float | None
    notes: list[str] = field(default_factory=list)


def gather_uploads(files: list[str | Path], work: Path) -> tuple[list[tuple[Path, str]], list[str]]:
    """Uploaded files and the audio inside uploaded zips -> ([(path, name shown to the user)], notes).

    Zip members are written under `work` with numbered names (an archive's own paths are never used) and
    only after the whole directory has passed the size caps.
    """
    paths, notes = [], []
    work.mkdir(parents=True, exist_ok=True)
    for f in map(Path, files):
        if f.suffix.lower() != ".zip":
            paths.append((f, f.name))
            continue
        try:
            with zipfile.ZipFile(f) as z:
                members = _checked_members(z, f.name)
                skipped = [Path(i.filename).name for i in z.infolist()
                           if not i.is_dir() and i not in members]
                for info in members:
                    target = work / f"{len(paths):04d}{Path(info.filename).suffix.lower()}"
                    with z.open(info) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    paths.append((target, f"{f.name}:{Path(info.filename).name}"))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError):
            raise DatasetError(f"{f.name}: not a readable zip archive") from None
        if skipped:
            notes.append(f"{f.name}: skipped {len(skipped)} non-audio file(s) ({', '.join(skipped[:3])}"
                         f"{', ...' if len(skipped) > 3 else ''})")
    if not paths:
        raise DatasetError("no audio found in the upload: add WAV, FLAC, MP3, OGG or M4A recordings (or a zip)")
    return paths, notes


def _checked_members(z: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    """The audio members of an archive, after its directory passed every cap (nothing is written yet)."""
    infos = [i for i in z.infolist() if not i.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise DatasetError(f"{name}: {len(infos)} files in the archive; at most {MAX_ZIP_MEMBERS} are accepted")
    total = 0
    for i in infos:
        if i.file_size > MAX_MEMBER_BYTES or (i.file_size > RATIO_FLOOR_BYTES
                                              and i.file_size > MAX_RATIO * max(i.compress_size, 1)):
            raise DatasetError(f"{name}: refused, it would expand to {i.file_size / 2**20:.0f} MiB from "
                               f"{i.compress_size / 2**20:.1f} MiB (a zip bomb?); upload the recordings themselves")
        total += i.file_size
    if total > MAX_TOTAL_BYTES:
        raise DatasetError(f"{name}: refused, it would expand to {total / 2**20:.3g} MiB in all; at most "
                           f"{MAX_TOTAL_BYTES / 2**20:.3g} MiB of audio is accepted")
    return [i for i in infos if Path(i.filename).suffix.lower() in AUDIO_SUFFIXES]


def read_all(paths: list[tuple[Path, str]]) -> list[tuple[np.ndarray, int, str]]:
    """Decode every file; if any cannot be read, refuse naming all of them (a partial dataset surprises)."""
    out, bad = [], []
    for p, name in paths:
        try:
            wave, sr = load_audio(p)
            out.append((wave, sr, name))
        except AudioError:
            bad.append(name)
    if bad:
        raise DatasetError(f"unreadable file(s): {', '.join(bad)}. Remove them or export them as WAV/FLAC/MP3, "
                           "then prepare the dataset again")
    return out


def find_speech(recordings: list[tuple[np.ndarray, int, str]]) -> Segments:
    """Speech segments of every recording (Silero VAD), the probe clip held out, and the measurements."""
    uploaded_s = sum(wave.size / sr for wave, sr, _ in recordings)
    if uploaded_s < MIN_SPEECH_S:  # too little even if it were all speech: refuse before the VAD model loads
        raise DatasetError(_too_short(uploaded_s, "audio uploaded"))
    clips: list[tuple[np.ndarray, int]] = []
    clipped = total = 0
    speech_power, noise_power = [], []
    silent = []
    for wave, sr, name in recordings:
        clipped += int(np.count_nonzero(np.abs(wave) >= CLIP_LEVEL))
        total += wave.size
        wave16 = resample(wave, sr, VAD_SR)
        stamps = speech_stamps(wave16)
        if not stamps:
            silent.append(name)
            continue
        pad = int(VAD_PAD_S * VAD_SR)
        mask = np.zeros(wave16.size, bool)
        for s in stamps:
            mask[max(0, s["start"] - pad): s["end"] + pad] = True
        speech_power.append(np.mean(np.square(wave16[mask])))
        if np.count_nonzero(~mask) > VAD_SR // 2:
            noise_power.append(np.mean(np.square(wave16[~mask])))
        for start, end in _runs(mask):
            a, b = start * sr // VAD_SR, end * sr // VAD_SR
            clips.append((wave[a:b], sr))
    if not clips:
        raise DatasetError("no speech found: the upload is silence (or music without voice). "
                           "Upload recordings of the person speaking")
    speech_s = sum(len(w) / sr for w, sr in clips)
    if speech_s < MIN_SPEECH_S:
        raise DatasetError(_too_short(speech_s, "speech found"))
    probe, clips = _hold_out_probe(clips)
    notes = [f"no speech in {', '.join(silent)} (left out)"] if silent else []
    return Segments(clips, probe, len(recordings), speech_s - len(probe[0]) / probe[1], clipped / max(total, 1),
                    _snr_db(speech_power, noise_power), notes)


def _too_short(seconds: float, what: str) -> str:
    return (f"only {seconds:.0f} s of {what}; training needs at least {MIN_SPEECH_S / 60:.0f} minute of speech "
            "(5-10 minutes recommended). Upload more recordings")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of every run of True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def _hold_out_probe(clips: list[tuple[np.ndarray, int]]) -> tuple[tuple[np.ndarray, int],
                                                                     list[tuple[np.ndarray, int]]]:
    """The first speech segment long enough becomes the probe (its first 4 s); the rest still trains."""
    for i, (wave, sr) in enumerate(clips):
        if len(wave) >= PROBE_S[0] * sr:
            cut = int(min(PROBE_S[1] * sr, len(wave)))
            rest = [(wave[cut:], sr)] if len(wave) - cut > sr // 2 else []
            return (wave[:cut], sr), clips[:i] + rest + clips[i + 1:]
    raise DatasetError(f"no stretch of speech is {PROBE_S[0]:.0f} s long: upload continuous speech, "
                       "not isolated words")


def _snr_db(speech: list[float], noise: list[float]) -> float | None:
    """Speech power over the power between utterances; None when the files hold no pauses to measure."""
    if not noise:
        return None
    s, n = float(np.mean(speech)), float(np.mean(noise))
    return float(10 * np.log10(max(s - n, 1e-12) / max(n, 1e-12)))


def report(seg: Segments, n_clips: int, isolation_note: str | None) -> dict:
    """The dataset report: what will train, and warnings with what to do about each."""
    kept_s, warnings = seg.speech_s, []
    if kept_s < RECOMMENDED_S[0]:
        warnings.append(f"only {kept_s / 60:.1f} min of speech: the model will be rough. 5-10 minutes of clean "
                        "speech give a good voice; add recordings if you have them")
    elif kept_s > RECOMMENDED_S[1]:
        warnings.append(f"{kept_s / 60:.0f} min of speech: more than RVC needs; each epoch takes longer. "
                        "Fewer epochs (50-100) are enough")
    if seg.clipped_fraction > CLIP_WARN:
        warnings.append(f"{100 * seg.clipped_fraction:.2f} % of samples are clipped (at full scale): the model "
                        "learns the distortion. Re-record or export at a lower gain")
    if seg.snr_db is not None and seg.snr_db < SNR_WARN_DB:
        warnings.append(f"background noise is high (estimated SNR {seg.snr_db:.0f} dB): the model will learn it. "
                        "Tick 'isolate vocals' or record in a quieter room")
    notes = list(seg.notes) + ([isolation_note] if isolation_note else [])
    return {"files": seg.files, "minutes": round(kept_s / 60, 2), "clips": n_clips,
            "clipped_percent": round(100 * seg.clipped_fraction, 3),
            "snr_db": None if seg.snr_db is None else round(seg.snr_db, 1),
            "probe_seconds": round(len(seg.probe[0]) / seg.probe[1], 2), "warnings": warnings, "notes": notes}
