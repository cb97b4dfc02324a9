"""f0 extraction at 16 kHz, 100 frames/s (hop 160), and RVC's coarse pitch ids.

Methods: "rmvpe" (needs rmvpe.pt), "fcpe" (torchfcpe's bundled weights: the practical CPU default),
"harvest" and "dio" (pyworld, no weights). Settings follow RVC WebUI 20240604 (harvest, dio, rmvpe) and
RVC main 2026 (fcpe). Every method returns n // 160 + 1 frames for n samples, 0 Hz meaning unvoiced.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
from scipy import signal

SAMPLE_RATE = 16000
HOP = 160  # 100 f0 frames per second
F0_MIN, F0_MAX = 50.0, 1100.0
F0_METHODS = ("rmvpe", "fcpe", "harvest", "dio")
FCPE_THRESHOLD = 0.006

_MEL_MIN = 1127 * np.log(1 + F0_MIN / 700)
_MEL_MAX = 1127 * np.log(1 + F0_MAX / 700)


def available_f0_methods(rmvpe_path: str | Path | None = None) -> list[str]:
    """The methods that can run now: rmvpe only when its weights file exists."""
    return [m for m in F0_METHODS if m != "rmvpe" or (rmvpe_path is not None and Path(rmvpe_path).is_file())]


def extract_f0(audio16k: np.ndarray, method: str = "fcpe", *, rmvpe_path: str | Path | None = None,
               filter_radius: int = 3, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Mono 16 kHz float audio [n] -> f0 in Hz [n // 160 + 1] (float32, 0 = unvoiced).

    filter_radius > 2 applies a 3-tap median filter to harvest's track (RVC's "filter_radius" slider).
    """
    audio = np.asarray(audio16k)
    if audio.ndim != 1:
        raise ValueError(f"extract_f0 expects mono audio [n], got shape {audio.shape}")
    n_frames = audio.shape[0] // HOP + 1
    if method == "rmvpe":
        if rmvpe_path is None or not Path(rmvpe_path).is_file():
            raise FileNotFoundError(
                f"f0 method 'rmvpe' needs its weights (rmvpe.pt), not found at {rmvpe_path!r}; "
                f"methods available: {', '.join(available_f0_methods(rmvpe_path))}")
        f0 = _rmvpe(str(rmvpe_path), str(device), dtype).infer(audio.astype(np.float32))
    elif method == "fcpe":
        f0 = _fcpe_f0(audio.astype(np.float32), str(device), n_frames)
    elif method == "harvest":
        x = audio.astype(np.float64)  # pyworld works in double; keep the caller's precision
        f0, t = _pyworld().harvest(x, SAMPLE_RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000 * HOP / SAMPLE_RATE)
        f0 = _pyworld().stonemask(x, f0, t, SAMPLE_RATE)
        if filter_radius > 2:
            f0 = signal.medfilt(f0, 3)
    elif method == "dio":
        x = audio.astype(np.float64)
        f0, t = _pyworld().dio(x, SAMPLE_RATE, f0_floor=F0_MIN, f0_ceil=F0_MAX, frame_period=1000 * HOP / SAMPLE_RATE)
        f0 = _pyworld().stonemask(x, f0, t, SAMPLE_RATE)
    else:
        raise ValueError(f"unknown f0 method {method!r}; methods available: "
                         f"{', '.join(available_f0_methods(rmvpe_path))} (rmvpe needs rmvpe.pt)")
    return _fit_length(np.asarray(f0, dtype=np.float32), n_frames)


def shift_key(f0: np.ndarray, semitones: float) -> np.ndarray:
    """Transpose an f0 track by semitones (unvoiced zeros stay zero)."""
    return f0 * np.float32(2 ** (semitones / 12))


def coarse_f0(f0: np.ndarray) -> np.ndarray:
    """f0 in Hz -> RVC pitch ids (int32): mel scale mapped linearly from 50..1100 Hz to 1..255; unvoiced -> 1."""
    mel = 1127 * np.log(1 + np.asarray(f0) / 700)
    voiced = mel > 0
    mel[voiced] = (mel[voiced] - _MEL_MIN) * 254 / (_MEL_MAX - _MEL_MIN) + 1
    return np.rint(np.clip(mel, 1, 255)).astype(np.int32)


def _fit_length(f0: np.ndarray, n_frames: int) -> np.ndarray:
    """Trim or zero-pad (unvoiced) at the end: the extractors differ by at most a frame."""
    return np.pad(f0[:n_frames], (0, max(0, n_frames - f0.shape[0])))


def _fcpe_f0(audio: np.ndarray, device: str, n_frames: int) -> np.ndarray:
    model = _fcpe(device)
    x = torch.from_numpy(audio)[None, :, None].to(device)
    with torch.no_grad():
        f0 = model.infer(x, sr=SAMPLE_RATE, decoder_mode="local_argmax", threshold=FCPE_THRESHOLD,
                         f0_min=F0_MIN, f0_max=F0_MAX, output_interp_target_length=n_frames)
    f0 = f0[0, :, 0].float().cpu().numpy()
    f0[f0 < F0_MIN] = 0  # torchfcpe's own unvoiced rule, applied to the values
    return f0


# Loaded weights are read-only, so one copy per (path, device) is shared; loading costs ~0.5 s each.
@functools.lru_cache(maxsize=2)
def _fcpe(device: str):
    from torchfcpe import spawn_bundled_infer_model

    return spawn_bundled_infer_model(device)


@functools.lru_cache(maxsize=2)
def _rmvpe(path: str, device: str, dtype: torch.dtype):
    from .rmvpe import RMVPE

    return RMVPE(path, device, dtype)


def _pyworld():
    import pyworld  # imported lazily: it warns about pkg_resources on import

    return pyworld
