"""Audio front-ends of Seed-VC V2: 22.05 kHz log-mel, 16 kHz resampling, kaldi fbank, HuBERT input normalisation.

Public: SAMPLE_RATE, HOP_LENGTH, N_MELS, CONTENT_SAMPLE_RATE, LOG_MEL_FLOOR,
    mel_spectrogram(wave) -> (B, 80, frames)
    mel_spectrogram_batch(waves) -> (mels (B, 80, F_max) padded with LOG_MEL_FLOOR, mel_lens (B,))
    mel_frames(num_samples) -> int
    resample_to_16k(wave, orig_sr=SAMPLE_RATE) -> 1-D float32 tensor
    kaldi_fbank(wave_16k) -> (frames, 80)
    hubert_inputs(waves_16k, lens) -> (input_values (B, L), attention_mask (B, L))
    pad_waves(waves) -> (padded (B, L_max), lens (B,))
All values follow upstream `modules/audio.py` and the HF Wav2Vec2FeatureExtractor (checked by the golden tests).
"""
from __future__ import annotations

import math
from functools import lru_cache

import librosa
import numpy as np
import torch
import torch.nn.functional as F
import torchaudio.compliance.kaldi as kaldi

SAMPLE_RATE = 22050  # rate of the CFM mels and of the vocoder output
N_FFT = 1024
WIN_LENGTH = 1024
HOP_LENGTH = 256  # 86.13 mel frames per second
N_MELS = 80
FMIN = 0.0
FMAX = None  # Nyquist
MEL_FLOOR = 1e-5  # magnitudes are clamped here before the log
LOG_MEL_FLOOR = math.log(MEL_FLOOR)  # -11.5129: the value of a silent mel bin
REFLECT_PAD = (N_FFT - HOP_LENGTH) // 2  # 384 samples each side, with center=False

CONTENT_SAMPLE_RATE = 16000  # HuBERT and CAMPPlus input rate
HUBERT_HOP = 320  # 50 HuBERT frames per second
FBANK_BINS = 80  # kaldi fbank bins for the style encoder
HUBERT_NORM_EPS = 1e-7  # Wav2Vec2FeatureExtractor zero-mean unit-variance epsilon


@lru_cache(maxsize=8)
def _mel_basis(device: torch.device) -> torch.Tensor:
    """Slaney-normalised librosa filterbank (80, 513)."""
    basis = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=N_FFT, n_mels=N_MELS, fmin=FMIN, fmax=FMAX)
    return torch.from_numpy(basis).float().to(device)


@lru_cache(maxsize=8)
def _hann(device: torch.device) -> torch.Tensor:
    return torch.hann_window(WIN_LENGTH, device=device)


def mel_frames(num_samples: int) -> int:
    """Number of mel frames for a wave of `num_samples` at 22.05 kHz (5 s -> 430)."""
    return (num_samples + 2 * REFLECT_PAD - N_FFT) // HOP_LENGTH + 1


def mel_spectrogram(wave: torch.Tensor) -> torch.Tensor:
    """Log-mel of 22.05 kHz audio, as upstream `mel_spectrogram(..., center=False)`.

    wave: (T,) or (B, T) float in [-1, 1]. Returns (B, 80, mel_frames(T)) float32.
    Every row is treated as a full-length signal (the right reflect pad reads the row's own end), so rows of a
    zero-padded batch differ from the item alone near their end: use `mel_spectrogram_batch` for ragged batches.
    """
    if wave.dim() == 1:
        wave = wave[None]
    y = F.pad(wave.float()[:, None], (REFLECT_PAD, REFLECT_PAD), mode="reflect")[:, 0]
    spec = torch.stft(y, N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH, window=_hann(y.device),
                      center=False, normalized=False, onesided=True, return_complex=True)
    spec = torch.view_as_real(spec)
    mag = torch.sqrt(spec.pow(2).sum(-1) + 1e-9)
    mel = torch.matmul(_mel_basis(y.device), mag)
    return torch.log(torch.clamp(mel, min=MEL_FLOOR))


def pad_waves(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D waves with zeros. Returns (B, L_max) and their lengths (B,) int64."""
    lens = torch.tensor([w.shape[-1] for w in waves], dtype=torch.long)
    out = waves[0].new_zeros(len(waves), int(lens.max()))
    for i, w in enumerate(waves):
        out[i, : w.shape[-1]] = w
    return out, lens


def mel_spectrogram_batch(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mels of waves with different lengths, each computed alone (exact), padded with LOG_MEL_FLOOR.

    Returns mels (B, 80, F_max) and mel_lens (B,) int64.
    """
    mels = [mel_spectrogram(w)[0] for w in waves]
    lens = torch.tensor([m.shape[-1] for m in mels], dtype=torch.long)
    out = mels[0].new_full((len(mels), N_MELS, int(lens.max())), LOG_MEL_FLOOR)
    for i, m in enumerate(mels):
        out[i, :, : m.shape[-1]] = m
    return out, lens


def resample_to_16k(wave: torch.Tensor | np.ndarray, orig_sr: int = SAMPLE_RATE) -> torch.Tensor:
    """Resample a 1-D wave to 16 kHz with `librosa.resample` (soxr_hq), as upstream does. Returns float32 (T16,) on CPU."""
    x = wave.detach().cpu().numpy() if isinstance(wave, torch.Tensor) else np.asarray(wave)
    y = librosa.resample(x.astype(np.float32), orig_sr=orig_sr, target_sr=CONTENT_SAMPLE_RATE, res_type="soxr_hq")
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32))


def kaldi_fbank(wave_16k: torch.Tensor) -> torch.Tensor:
    """80-bin kaldi fbank (dither 0) of one 16 kHz wave (T,). Returns (frames, 80); 25 ms window, 10 ms shift."""
    return kaldi.fbank(wave_16k[None].float(), num_mel_bins=FBANK_BINS, dither=0, sample_frequency=CONTENT_SAMPLE_RATE)


def hubert_inputs(waves_16k: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """HuBERT feature-extractor normalisation: per item `(x - mean) / sqrt(var + 1e-7)` over its own length.

    waves_16k: (B, L) zero-padded, lens: (B,). Returns input_values (B, L_max) with padding set to 0 and an int32
    attention_mask (B, L_max), where L_max = max(lens), as `Wav2Vec2FeatureExtractor(padding=True)` gives.
    """
    lens = torch.as_tensor(lens, device=waves_16k.device).long()
    length = int(lens.max())
    x = waves_16k[:, :length].float()
    mask = torch.arange(length, device=x.device)[None] < lens[:, None]
    n = lens[:, None].to(x.dtype)
    xm = torch.where(mask, x, torch.zeros_like(x))
    mean = xm.sum(-1, keepdim=True) / n
    var = torch.where(mask, (x - mean) ** 2, torch.zeros_like(x)).sum(-1, keepdim=True) / n
    values = (x - mean) / torch.sqrt(var + HUBERT_NORM_EPS)
    return torch.where(mask, values, torch.zeros_like(values)), mask.to(torch.int32)
