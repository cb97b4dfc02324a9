"""Training data for RVC, in RVC WebUI's experiment layout (20240604 ``preprocess.py``, ``extract_f0_*.py``,
``extract_feature_print.py`` and the filelist step of ``click_train``).

    dataset_dir/0_gt_wavs/<n>.wav          clips at the model rate (float32), the training targets
    dataset_dir/1_16k_wavs/<n>.wav         the same clips at 16 kHz, input of the pitch and content extractors
    dataset_dir/2a_f0/<n>.wav.npy          coarse pitch ids 1..255 (int32), 100 frames/s   (f0 models only)
    dataset_dir/2b-f0nsf/<n>.wav.npy       f0 in Hz, 0 = unvoiced (float32)                 (f0 models only)
    dataset_dir/3_feature768/<n>.npy       ContentVec features, 50 frames/s (256-d in 3_feature256 for v1)
    dataset_dir/mute/...                   3 s of silence in the same layout, mixed into every epoch
    dataset_dir/filelist.txt               gt|feature|f0 coarse|f0 Hz|speaker lines (paths relative to dataset_dir)

    clips = slice_and_normalise(wave, sr, "40k")
    stats = write_dataset([(c, 40000) for c in clips], Path("ds"), "40k")
    extract_features(Path("ds"), load_contentvec("contentvec/"), "rmvpe", rmvpe_path="rmvpe.pt")

    python -m rvc.dataset --out ds --sample-rate 40k --contentvec contentvec/ --f0-method fcpe a.wav b.flac
"""
from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import torch
from scipy import signal

from . import content
from .pitch import F0_METHODS, coarse_f0, extract_f0
from .synthesizer import FEATURE_DIMS, parse_sample_rate

SAMPLE_RATE_16K = 16000
GT_DIR, WAVS_16K_DIR, F0_COARSE_DIR, F0_HZ_DIR = "0_gt_wavs", "1_16k_wavs", "2a_f0", "2b-f0nsf"
MUTE_DIR = "mute"
FILELIST = "filelist.txt"
SPEAKER_ID = 0  # one speaker per trained voice, as RVC WebUI trains
MUTE_SECONDS, MUTE_COPIES = 3.0, 2  # RVC appends two lines of its 3 s silence clip to the filelist

# Slicer settings of RVC's preprocess step (quiet points, in dB and milliseconds)
SLICE_THRESHOLD_DB = -42.0
SLICE_MIN_LENGTH_MS, SLICE_MIN_INTERVAL_MS, SLICE_HOP_MS, SLICE_MAX_SILENCE_KEPT_MS = 1500, 400, 15, 500
# Pieces: 3.7 s every 3.4 s; a remainder of up to 4.0 s stays whole
PIECE_SECONDS, PIECE_OVERLAP_SECONDS = 3.7, 0.3
HIGHPASS_HZ = 48
PEAK_SKIP = 2.5  # pieces louder than this are broken input and skipped
NORM_MAX, NORM_ALPHA = 0.9, 0.75  # x / peak * (0.9 * 0.75) + 0.25 * x


@dataclass(frozen=True)
class DatasetStats:
    clips: int
    seconds: float  # total duration of the clips written


def feature_dir_name(version: str) -> str:
    return f"3_feature{FEATURE_DIMS[version]}"


def highpass(wave: np.ndarray, sr: int) -> np.ndarray:
    """RVC's 5th-order 48 Hz Butterworth high-pass (causal, lfilter), removing rumble and DC."""
    b, a = signal.butter(N=5, Wn=HIGHPASS_HZ, btype="high", fs=sr)
    return signal.lfilter(b, a, wave).astype(np.float32)


def quiet_slices(wave: np.ndarray, sr: int, threshold_db: float = SLICE_THRESHOLD_DB,
                 min_length_ms: int = SLICE_MIN_LENGTH_MS, min_interval_ms: int = SLICE_MIN_INTERVAL_MS,
                 hop_ms: int = SLICE_HOP_MS, max_silence_kept_ms: int = SLICE_MAX_SILENCE_KEPT_MS,
                 ) -> list[tuple[int, int]]:
    """(start, end) sample ranges of `wave` between silences, like RVC's Slicer.

    A silence (frame RMS below threshold_db) of at least min_interval_ms ends a slice once the slice is at
    least min_length_ms long; at most max_silence_kept_ms of it stays on each side, cut at its quietest frame.
    Leading and trailing silence is trimmed the same way; an all-silent wave gives no slices.
    """
    hop = max(1, round(sr * hop_ms / 1000))
    win = min(round(sr * min_interval_ms / 1000), 4 * hop)
    rms = librosa.feature.rms(y=wave, frame_length=win, hop_length=hop, center=True)[0]
    silent = rms < 10 ** (threshold_db / 20)
    n = len(rms)
    min_len, min_gap, kept = (round(ms / hop_ms) for ms in (min_length_ms, min_interval_ms, max_silence_kept_ms))

    def quietest(lo: int, hi: int) -> int:
        return lo + int(np.argmin(rms[lo:hi]))

    # runs of silent frames [a, b)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], silent.astype(np.int8), [0]])))
    runs = list(zip(edges[::2].tolist(), edges[1::2].tolist()))
    if runs and runs[0] == (0, n):
        return []
    bounds, slice_start = [], 0  # in frames
    for a, b in runs:
        if a == 0:  # leading silence: keep at most `kept` frames of it
            slice_start = quietest(b - kept, b) if b > kept else 0
        elif b == n:  # trailing silence
            bounds.append((slice_start, min(n, a + kept)))
            slice_start = None
        elif b - a >= min_gap and a - slice_start >= min_len:
            if b - a <= 2 * kept:  # short pause: one cut at its quietest frame
                q = quietest(a, b)
                bounds.append((slice_start, q))
                slice_start = q
            else:  # long pause: drop its middle
                bounds.append((slice_start, quietest(a, a + kept + 1)))
                slice_start = quietest(b - kept, b)
    if slice_start is not None:
        bounds.append((slice_start, n))
    return [(s * hop, min(len(wave), e * hop)) for s, e in bounds if e > s]


def split_pieces(wave: np.ndarray, sr: int, piece_s: float = PIECE_SECONDS,
                 overlap_s: float = PIECE_OVERLAP_SECONDS) -> list[np.ndarray]:
    """Cut a slice into piece_s windows every piece_s - overlap_s; the rest, up to piece_s + overlap_s, stays whole."""
    step, piece, tail = int(sr * (piece_s - overlap_s)), int(sr * piece_s), int(sr * (piece_s + overlap_s))
    pieces, start = [], 0
    while len(wave) - start > tail:
        pieces.append(wave[start:start + piece])
        start += step
    pieces.append(wave[start:])
    return pieces


def normalise(piece: np.ndarray) -> np.ndarray | None:
    """RVC's per-clip peak normalisation: 75% towards a 0.9 peak, 25% as recorded; None for broken clips."""
    peak = float(np.abs(piece).max()) if piece.size else 0.0
    if peak == 0.0 or peak > PEAK_SKIP or not np.isfinite(peak):
        return None
    return (piece / peak * (NORM_MAX * NORM_ALPHA) + (1 - NORM_ALPHA) * piece).astype(np.float32)


def slice_and_normalise(wave: np.ndarray, sr: int, sample_rate: int | str) -> list[np.ndarray]:
    """One recording (mono float, any rate) -> training clips at the model rate, RVC's preprocess recipe:
    resample, 48 Hz high-pass, slice at quiet points, ~3.7 s pieces with 0.3 s overlap, peak-normalise."""
    target = parse_sample_rate(sample_rate)
    wave = np.asarray(wave, dtype=np.float32)
    if wave.ndim != 1:
        raise ValueError(f"slice_and_normalise expects mono audio [n], got shape {wave.shape}")
    if sr != target:
        wave = librosa.resample(wave, orig_sr=sr, target_sr=target)
    wave = highpass(wave, target)
    clips = []
    for start, end in quiet_slices(wave, target):
        for piece in split_pieces(wave[start:end], target):
            clip = normalise(piece)
            if clip is not None:
                clips.append(clip)
    return clips


def write_dataset(clips: Iterable[tuple[np.ndarray, int]], dataset_dir: Path, sample_rate: int | str,
                  start_index: int = 0) -> DatasetStats:
    """Write (clip, its rate) pairs as <n>.wav in 0_gt_wavs (model rate, float32) and 1_16k_wavs (16 kHz)."""
    target = parse_sample_rate(sample_rate)
    dataset_dir = Path(dataset_dir)
    (dataset_dir / GT_DIR).mkdir(parents=True, exist_ok=True)
    (dataset_dir / WAVS_16K_DIR).mkdir(parents=True, exist_ok=True)
    count, samples = 0, 0
    for i, (clip, sr) in enumerate(clips, start=start_index):
        clip = np.asarray(clip, dtype=np.float32)
        if sr != target:
            clip = librosa.resample(clip, orig_sr=sr, target_sr=target)
        sf.write(dataset_dir / GT_DIR / f"{i}.wav", clip, target, subtype="FLOAT")
        sf.write(dataset_dir / WAVS_16K_DIR / f"{i}.wav",
                 librosa.resample(clip, orig_sr=target, target_sr=SAMPLE_RATE_16K), SAMPLE_RATE_16K,
                 subtype="FLOAT")
        count, samples = count + 1, samples + clip.shape[0]
    return DatasetStats(clips=count, seconds=samples / target)


def extract_features(dataset_dir: Path, contentvec: content.HubertWithFinalProj, f0_method: str = "rmvpe",
                     rmvpe_path: str | Path | None = None, device: str | torch.device = "cpu", version: str = "v2",
                     on_progress: Callable[[int, int], None] | None = None, f0: bool = True) -> None:
    """Pitch (2a_f0, 2b-f0nsf) and ContentVec features (3_feature768) for every clip of 1_16k_wavs, then the
    filelist. Files already extracted are kept (the step is a cache); on_progress(done, total) after each clip.

    Also writes the mute clip (3 s of silence at the model rate, its f0 and features) that every epoch mixes in.
    """
    dataset_dir = Path(dataset_dir)
    if f0 and f0_method not in F0_METHODS:
        raise ValueError(f"unknown f0 method {f0_method!r}; expected one of {F0_METHODS}")
    wavs = sorted((dataset_dir / WAVS_16K_DIR).glob("*.wav"), key=lambda p: _clip_order(p.stem))
    if not wavs:
        raise ValueError(f"{dataset_dir / WAVS_16K_DIR} holds no clips: write the dataset first")
    sample_rate = sf.info(next((dataset_dir / GT_DIR).glob("*.wav"))).samplerate
    _write_mute(dataset_dir / MUTE_DIR, sample_rate)
    contentvec = contentvec.to(device)
    jobs = [(wav, dataset_dir) for wav in wavs] + [(dataset_dir / MUTE_DIR / WAVS_16K_DIR / "mute.wav",
                                                     dataset_dir / MUTE_DIR)]
    for done, (wav, root) in enumerate(jobs, start=1):
        audio = None
        if f0:
            coarse_path, hz_path = root / F0_COARSE_DIR / f"{wav.name}.npy", root / F0_HZ_DIR / f"{wav.name}.npy"
            if not (coarse_path.is_file() and hz_path.is_file()):
                audio = _read16k(wav)
                hz = extract_f0(audio, f0_method, rmvpe_path=rmvpe_path, device=device)
                _save_npy(hz_path, hz)
                _save_npy(coarse_path, coarse_f0(hz))
        feat_path = root / feature_dir_name(version) / f"{wav.stem}.npy"
        if not feat_path.is_file():
            audio = _read16k(wav) if audio is None else audio
            feats = content.extract_features(contentvec, torch.from_numpy(audio), version)
            _save_npy(feat_path, feats[0].float().cpu().numpy())
        if on_progress is not None and done <= len(wavs):
            on_progress(done, len(wavs))
    write_filelist(dataset_dir, version, f0)


def write_filelist(dataset_dir: Path, version: str = "v2", f0: bool = True, seed: int = 0) -> Path:
    """filelist.txt: one line per clip present in every folder, plus the mute lines, shuffled (as RVC)."""
    dataset_dir = Path(dataset_dir)
    feat_dir = feature_dir_name(version)

    def lines_for(root: Path, copies: int = 1) -> list[str]:
        names = sorted(p.stem for p in (root / GT_DIR).glob("*.wav"))
        lines = []
        for name in names:
            parts = [f"{GT_DIR}/{name}.wav", f"{feat_dir}/{name}.npy"]
            if f0:
                parts += [f"{F0_COARSE_DIR}/{name}.wav.npy", f"{F0_HZ_DIR}/{name}.wav.npy"]
            if all((root / p).is_file() for p in parts):
                prefix = "" if root == dataset_dir else f"{root.relative_to(dataset_dir).as_posix()}/"
                lines.append("|".join([prefix + p for p in parts] + [str(SPEAKER_ID)]))
        return lines * copies

    lines = lines_for(dataset_dir)
    if not lines:
        raise ValueError(f"{dataset_dir}: no clip has all its features; run extract_features first")
    lines += lines_for(dataset_dir / MUTE_DIR, MUTE_COPIES)
    random.Random(seed).shuffle(lines)
    path = dataset_dir / FILELIST
    path.write_text("\n".join(lines) + "\n")
    return path


def _clip_order(stem: str) -> tuple[int, str]:
    return (int(stem), stem) if stem.isdigit() else (1 << 62, stem)


def _write_mute(root: Path, sample_rate: int) -> None:
    gt = root / GT_DIR / "mute.wav"
    if gt.is_file() and sf.info(gt).samplerate == sample_rate:
        return
    for name in (GT_DIR, WAVS_16K_DIR):  # f0 and features come from the 16 kHz copy: valid at any model rate
        (root / name).mkdir(parents=True, exist_ok=True)
    sf.write(gt, np.zeros(int(MUTE_SECONDS * sample_rate), np.float32), sample_rate, subtype="FLOAT")
    sf.write(root / WAVS_16K_DIR / "mute.wav", np.zeros(int(MUTE_SECONDS * SAMPLE_RATE_16K), np.float32),
             SAMPLE_RATE_16K, subtype="FLOAT")


def _read16k(path: Path) -> np.ndarray:
    audio, sr = sf.read(path, dtype="float32")
    if sr != SAMPLE_RATE_16K or audio.ndim != 1:
        raise ValueError(f"{path}: expected mono 16 kHz audio, found {sr} Hz with shape {audio.shape}")
    return audio


def _save_npy(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)  # an interrupted extraction never leaves a truncated cache file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prepare an RVC training dataset from recordings.")
    parser.add_argument("files", nargs="+", type=Path, help="recordings (any format soundfile reads)")
    parser.add_argument("--out", type=Path, required=True, help="dataset folder to write")
    parser.add_argument("--sample-rate", default="40k", choices=["32k", "40k", "48k"])
    parser.add_argument("--contentvec", type=Path, required=True, help="ContentVec folder (transformers layout)")
    parser.add_argument("--f0-method", default="fcpe", choices=F0_METHODS)
    parser.add_argument("--rmvpe", type=Path, default=None, help="rmvpe.pt (for --f0-method rmvpe)")
    parser.add_argument("--no-f0", action="store_true", help="for models without pitch guidance")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    clips = []
    for path in args.files:
        wave, sr = sf.read(path, dtype="float32", always_2d=True)
        clips += [(c, parse_sample_rate(args.sample_rate)) for c in slice_and_normalise(wave.mean(1), sr,
                                                                                         args.sample_rate)]
    stats = write_dataset(clips, args.out, args.sample_rate)
    print(f"{stats.clips} clips, {stats.seconds / 60:.1f} min")
    extract_features(args.out, content.load_contentvec(args.contentvec), args.f0_method, args.rmvpe, args.device,
                     f0=not args.no_f0, on_progress=lambda d, t: print(f"features {d}/{t}", flush=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
