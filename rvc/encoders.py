"""The prior (content) encoder ``enc_p`` and the posterior encoder ``enc_q`` of the RVC synthesizer."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import WN, LayerNorm, sequence_mask

ATTENTION_WINDOW = 10  # relative positions -10..10 have learned embeddings, farther ones none


def _band_to_full(band: torch.Tensor, window: int) -> torch.Tensor:
    """[B, H, T, 2w+1] indexed by offset j-i+w -> [B, H, T, T] indexed by j (zero outside the band)."""
    t = band.shape[2]
    full = band.new_zeros(*band.shape[:2], t, t)
    for r in range(-window, window + 1):
        if abs(r) < t:
            full.diagonal(r, -2, -1).copy_(band[:, :, max(0, -r):t - max(0, r), r + window])
    return full


def _full_to_band(full: torch.Tensor, window: int) -> torch.Tensor:
    """Inverse of :func:`_band_to_full`: keep only offsets within the window."""
    t = full.shape[2]
    band = full.new_zeros(*full.shape[:3], 2 * window + 1)
    for r in range(-window, window + 1):
        if abs(r) < t:
            band[:, :, max(0, -r):t - max(0, r), r + window] = full.diagonal(r, -2, -1)
    return band


class MultiHeadAttention(nn.Module):
    """Self-attention with Shaw-style relative position embeddings shared by all heads (VITS)."""

    def __init__(self, channels: int, n_heads: int, window: int = ATTENTION_WINDOW, p_dropout: float = 0.0):
        super().__init__()
        self.n_heads = n_heads
        self.k_channels = channels // n_heads
        self.window = window
        std = self.k_channels**-0.5
        self.emb_rel_k = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
        self.emb_rel_v = nn.Parameter(torch.randn(1, 2 * window + 1, self.k_channels) * std)
        self.conv_q = nn.Conv1d(channels, channels, 1)
        self.conv_k = nn.Conv1d(channels, channels, 1)
        self.conv_v = nn.Conv1d(channels, channels, 1)
        self.conv_o = nn.Conv1d(channels, channels, 1)
        self.drop = nn.Dropout(p_dropout)
        for conv in (self.conv_q, self.conv_k, self.conv_v):
            nn.init.xavier_uniform_(conv.weight)

    def forward(self, x: torch.Tensor, attn_mask: torch.Tensor) -> torch.Tensor:
        """x: [B, C, T], attn_mask: [B, 1, T, T] -> [B, C, T]."""
        b, c, t = x.shape

        def heads(y: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, H, T, C/H]
            return y.view(b, self.n_heads, self.k_channels, t).transpose(2, 3)

        q = heads(self.conv_q(x)) / math.sqrt(self.k_channels)
        k, v = heads(self.conv_k(x)), heads(self.conv_v(x))
        scores = q @ k.transpose(-2, -1)
        scores = scores + _band_to_full(q @ self.emb_rel_k.transpose(-2, -1).unsqueeze(0), self.window)
        scores = scores.masked_fill(attn_mask == 0, -1e4)
        p = self.drop(F.softmax(scores, dim=-1))
        out = p @ v + _full_to_band(p, self.window) @ self.emb_rel_v.unsqueeze(0)
        return self.conv_o(out.transpose(2, 3).reshape(b, c, t))


class FFN(nn.Module):
    """Two 'same'-padded convolutions with a ReLU, masked before each conv."""

    def __init__(self, channels: int, filter_channels: int, kernel_size: int, p_dropout: float = 0.0):
        super().__init__()
        self.pad = ((kernel_size - 1) // 2, kernel_size // 2)
        self.conv_1 = nn.Conv1d(channels, filter_channels, kernel_size)
        self.conv_2 = nn.Conv1d(filter_channels, channels, kernel_size)
        self.drop = nn.Dropout(p_dropout)

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        x = self.drop(torch.relu(self.conv_1(F.pad(x * x_mask, self.pad))))
        return self.conv_2(F.pad(x * x_mask, self.pad)) * x_mask


class Encoder(nn.Module):
    """Post-LN transformer encoder: n_layers × (attention, LayerNorm, FFN, LayerNorm)."""

    def __init__(self, hidden_channels: int, filter_channels: int, n_heads: int, n_layers: int,
                 kernel_size: int, p_dropout: float = 0.0):
        super().__init__()
        self.drop = nn.Dropout(p_dropout)
        self.attn_layers = nn.ModuleList(MultiHeadAttention(hidden_channels, n_heads, p_dropout=p_dropout)
                                         for _ in range(n_layers))
        self.norm_layers_1 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))
        self.ffn_layers = nn.ModuleList(FFN(hidden_channels, filter_channels, kernel_size, p_dropout)
                                        for _ in range(n_layers))
        self.norm_layers_2 = nn.ModuleList(LayerNorm(hidden_channels) for _ in range(n_layers))

    def forward(self, x: torch.Tensor, x_mask: torch.Tensor) -> torch.Tensor:
        attn_mask = x_mask.unsqueeze(2) * x_mask.unsqueeze(-1)
        x = x * x_mask
        for attn, norm1, ffn, norm2 in zip(self.attn_layers, self.norm_layers_1, self.ffn_layers,
                                           self.norm_layers_2):
            x = norm1(x + self.drop(attn(x, attn_mask)))
            x = norm2(x + self.drop(ffn(x, x_mask)))
        return x * x_mask


class TextEncoder(nn.Module):
    """``enc_p``: content features (+ coarse pitch) -> prior mean and log-std of the latent."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, filter_channels: int,
                 n_heads: int, n_layers: int, kernel_size: int, p_dropout: float, f0: bool):
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.hidden_channels = hidden_channels
        self.emb_phone = nn.Linear(in_channels, hidden_channels)
        if f0:
            self.emb_pitch = nn.Embedding(256, hidden_channels)  # coarse pitch ids 1..255
        self.encoder = Encoder(hidden_channels, filter_channels, n_heads, n_layers, kernel_size, p_dropout)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, phone: torch.Tensor, pitch: torch.Tensor | None, lengths: torch.Tensor):
        """phone: [B, T, in], pitch: [B, T] int or None, lengths: [B] -> m, logs: [B, out, T], x_mask: [B, 1, T]."""
        x = self.emb_phone(phone)
        if pitch is not None:
            x = x + self.emb_pitch(pitch)
        x = F.leaky_relu(x * math.sqrt(self.hidden_channels), 0.1).transpose(1, 2)
        x_mask = sequence_mask(lengths, x.shape[2]).unsqueeze(1).to(x.dtype)
        stats = self.proj(self.encoder(x * x_mask, x_mask)) * x_mask
        m, logs = stats.split(self.out_channels, dim=1)
        return m, logs, x_mask


class PosteriorEncoder(nn.Module):
    """``enc_q`` (training only): linear spectrogram -> sampled latent z and its mean / log-std."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int, kernel_size: int = 5,
                 dilation_rate: int = 1, n_layers: int = 16, gin_channels: int = 0):
        super().__init__()
        self.out_channels = out_channels
        self.pre = nn.Conv1d(in_channels, hidden_channels, 1)
        self.enc = WN(hidden_channels, kernel_size, dilation_rate, n_layers, gin_channels)
        self.proj = nn.Conv1d(hidden_channels, out_channels * 2, 1)

    def forward(self, spec: torch.Tensor, lengths: torch.Tensor, g: torch.Tensor | None = None,
                noise: torch.Tensor | None = None):
        """spec: [B, F, T]; noise: standard normal [B, out, T] (drawn if None) -> z, m, logs, mask."""
        mask = sequence_mask(lengths, spec.shape[2]).unsqueeze(1).to(spec.dtype)
        stats = self.proj(self.enc(self.pre(spec) * mask, mask, g)) * mask
        m, logs = stats.split(self.out_channels, dim=1)
        if noise is None:
            noise = torch.randn_like(m)
        z = (m + noise * torch.exp(logs)) * mask
        return z, m, logs, mask
