"""The waveform decoder ``dec``: HiFi-GAN, optionally with the NSF sine source driven by f0."""
from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .layers import LRELU_SLOPE, ResBlock1, weight_norm

SINE_AMP = 0.1  # amplitude of the sine excitation
NOISE_STD = 0.003  # noise added to voiced samples; unvoiced samples get noise of std SINE_AMP / 3


class SourceModuleHnNSF(nn.Module):
    """``dec.m_source``: a sine at f0 (fundamental only) with noise, mixed by Linear(1, 1) and tanh.

    RVC uses ``harmonic_num = 0``; upstream also draws a random initial phase for the overtones only, so
    for the fundamental it never has an effect and is left out here.
    """

    def __init__(self, sampling_rate: int):
        super().__init__()
        self.sampling_rate = sampling_rate
        self.l_linear = nn.Linear(1, 1)

    def sine(self, f0: torch.Tensor, upp: int, noise: torch.Tensor | None = None) -> torch.Tensor:
        """f0: [B, T] Hz (0 = unvoiced) -> excitation [B, T*upp, 1]; noise: standard normal of that shape.

        The phase is accumulated per frame (each frame adds f0*upp/sr cycles, wrapped to (-0.5, 0.5]) and
        within a frame grows linearly, exactly as in RVC 20240604, so outputs match it to float precision.
        """
        with torch.no_grad():
            b, t = f0.shape
            f0 = f0.unsqueeze(-1)
            phase = f0 / self.sampling_rate * torch.arange(1, upp + 1, dtype=f0.dtype, device=f0.device)
            per_frame = torch.fmod(phase[:, :-1, -1:].float() + 0.5, 1.0) - 0.5
            start = per_frame.cumsum(dim=1).fmod(1.0).to(f0)
            phase = phase + F.pad(start, (0, 0, 1, 0))
            sines = torch.sin(2 * math.pi * phase.reshape(b, t * upp, 1)) * SINE_AMP
            uv = (f0 > 0).to(f0.dtype).repeat_interleave(upp, dim=1)
            if noise is None:
                noise = torch.randn_like(sines)
            noise = (uv * NOISE_STD + (1 - uv) * SINE_AMP / 3) * noise
            return sines * uv + noise

    def forward(self, f0: torch.Tensor, upp: int, noise: torch.Tensor | None = None) -> torch.Tensor:
        """-> harmonic source [B, T*upp, 1]."""
        sines = self.sine(f0, upp, noise).to(self.l_linear.weight.dtype)
        return torch.tanh(self.l_linear(sines))


class Generator(nn.Module):
    """HiFi-GAN generator; with ``sampling_rate`` set it is RVC's GeneratorNSF (source-filter).

    Stage i upsamples by ``upsample_rates[i]``, adds the source downsampled to that stage's rate
    (``noise_convs[i]``), then averages the resblocks of that stage.
    """

    def __init__(self, initial_channel: int, resblock_kernel_sizes: list[int],
                 resblock_dilation_sizes: list[list[int]], upsample_rates: list[int],
                 upsample_initial_channel: int, upsample_kernel_sizes: list[int], gin_channels: int,
                 sampling_rate: int | None = None):
        super().__init__()
        self.upp = math.prod(upsample_rates)
        self.num_kernels = len(resblock_kernel_sizes)
        nsf = sampling_rate is not None
        # registration order (m_source, noise_convs, conv_pre, ...) fixes the upstream parameter order
        if nsf:
            self.m_source = SourceModuleHnNSF(sampling_rate)
            self.noise_convs = nn.ModuleList()
        self.conv_pre = nn.Conv1d(initial_channel, upsample_initial_channel, 7, 1, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(upsample_rates, upsample_kernel_sizes)):
            c_in, c_out = upsample_initial_channel // 2**i, upsample_initial_channel // 2 ** (i + 1)
            up = nn.ConvTranspose1d(c_in, c_out, k, u, padding=(k - u) // 2)
            nn.init.normal_(up.weight, 0.0, 0.01)
            self.ups.append(weight_norm(up))
            if nsf:
                stride = math.prod(upsample_rates[i + 1:])  # source rate / this stage's rate
                self.noise_convs.append(
                    nn.Conv1d(1, c_out, 2 * stride, stride, padding=stride // 2)
                    if i + 1 < len(upsample_rates) else nn.Conv1d(1, c_out, 1))
            for rk, rd in zip(resblock_kernel_sizes, resblock_dilation_sizes):
                self.resblocks.append(ResBlock1(c_out, rk, rd))
        self.conv_post = nn.Conv1d(c_out, 1, 7, 1, padding=3, bias=False)
        if gin_channels:
            self.cond = nn.Conv1d(gin_channels, upsample_initial_channel, 1)

    def forward(self, x: torch.Tensor, g: torch.Tensor | None = None,
                har_source: torch.Tensor | None = None) -> torch.Tensor:
        """x: [B, C, T], g: [B, gin, 1], har_source: [B, T*upp, 1] (NSF only) -> audio [B, 1, T*upp]."""
        if (har_source is None) == hasattr(self, "m_source"):
            raise ValueError("har_source is required by the NSF generator and unused by the plain one")
        x = self.conv_pre(x)
        if g is not None:
            x = x + self.cond(g)
        source = har_source.transpose(1, 2) if har_source is not None else None
        for i, up in enumerate(self.ups):
            x = up(F.leaky_relu(x, LRELU_SLOPE))
            if source is not None:
                x = x + self.noise_convs[i](source)
            blocks = self.resblocks[i * self.num_kernels:(i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        return torch.tanh(self.conv_post(F.leaky_relu(x)))
