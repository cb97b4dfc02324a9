"""Training losses of RVC (VITS/HiFi-GAN recipe) and the spectrogram pieces they need.

Generator loss = adversarial + feature matching (already ×2) + C_MEL·L1(mel) + C_KL·KL.
"""
from __future__ import annotations

import functools

import librosa
import torch
from torch.nn import functional as F

C_MEL = 45.0  # weight of the mel L1 loss (hps.train.c_mel)
C_KL = 1.0  # weight of the KL loss (hps.train.c_kl)


def spectrogram(y: torch.Tensor, n_fft: int, hop_length: int, win_length: int) -> torch.Tensor:
    """Linear magnitude spectrogram as RVC's loader computes it: [B, T] -> [B, n_fft//2+1, frames].

    Reflect-pads (n_fft-hop)/2 on both sides and uses center=False, so frames = T // hop for T divisible
    by hop; the +1e-6 inside the sqrt keeps the gradient finite at silence.
    """
    pad = (n_fft - hop_length) // 2
    y = F.pad(y.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
    window = torch.hann_window(win_length, dtype=y.dtype, device=y.device)
    spec = torch.stft(y, n_fft, hop_length=hop_length, win_length=win_length, window=window, center=False,
                      normalized=False, onesided=True, return_complex=True)
    return torch.sqrt(spec.real.pow(2) + spec.imag.pow(2) + 1e-6)


@functools.lru_cache(maxsize=8)
def _mel_basis(sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> torch.Tensor:
    return torch.from_numpy(librosa.filters.mel(sr=sampling_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin,
                                                fmax=fmax))


def spec_to_mel(spec: torch.Tensor, sampling_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0,
                fmax: float | None = None) -> torch.Tensor:
    """Linear spectrogram -> log mel (librosa Slaney filters, natural log of max(mel, 1e-5))."""
    basis = _mel_basis(sampling_rate, n_fft, n_mels, fmin, fmax).to(dtype=spec.dtype, device=spec.device)
    return torch.log(torch.clamp(basis @ spec, min=1e-5))


def mel_spectrogram(y: torch.Tensor, sampling_rate: int, n_fft: int, hop_length: int, win_length: int,
                    n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> torch.Tensor:
    """Waveform [B, T] -> log mel [B, n_mels, frames]."""
    return spec_to_mel(spectrogram(y, n_fft, hop_length, win_length), sampling_rate, n_fft, n_mels, fmin, fmax)


def discriminator_loss(real_outputs: list[torch.Tensor], fake_outputs: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN discriminator loss summed over discriminators: mean((1-D(y))²) + mean(D(ŷ)²)."""
    loss = 0.0
    for dr, dg in zip(real_outputs, fake_outputs):
        loss = loss + torch.mean((1 - dr.float()) ** 2) + torch.mean(dg.float() ** 2)
    return loss


def generator_loss(fake_outputs: list[torch.Tensor]) -> torch.Tensor:
    """LSGAN generator loss summed over discriminators: mean((1-D(ŷ))²)."""
    loss = 0.0
    for dg in fake_outputs:
        loss = loss + torch.mean((1 - dg.float()) ** 2)
    return loss


def feature_loss(fmap_real: list[list[torch.Tensor]], fmap_fake: list[list[torch.Tensor]]) -> torch.Tensor:
    """Feature-matching loss: 2 × Σ mean|real - fake| over every feature map (real ones detached)."""
    loss = 0.0
    for dr, dg in zip(fmap_real, fmap_fake):
        for r, g in zip(dr, dg):
            loss = loss + torch.mean(torch.abs(r.float().detach() - g.float()))
    return loss * 2


def kl_loss(z_p: torch.Tensor, logs_q: torch.Tensor, m_p: torch.Tensor, logs_p: torch.Tensor,
            z_mask: torch.Tensor) -> torch.Tensor:
    """KL between the posterior sample mapped through the flow (z_p, logs_q) and the prior (m_p, logs_p):
    summed over channels and valid frames, divided by the number of valid frames (as upstream)."""
    z_p, logs_q, m_p, logs_p, z_mask = (t.float() for t in (z_p, logs_q, m_p, logs_p, z_mask))
    kl = logs_p - logs_q - 0.5 + 0.5 * (z_p - m_p) ** 2 * torch.exp(-2.0 * logs_p)
    return torch.sum(kl * z_mask) / torch.sum(z_mask)
