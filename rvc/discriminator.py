"""HiFi-GAN discriminators used to train RVC: one scale discriminator plus period discriminators.

v1 uses periods [2, 3, 5, 7, 11, 17] (upstream ``MultiPeriodDiscriminator``), v2 adds 23 and 37
(``MultiPeriodDiscriminatorV2``). Keys match ``D_*.pth`` files: ``discriminators.{i}.convs.{j}.weight_g`` etc.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .layers import LRELU_SLOPE, padding_for, weight_norm

PERIODS = {"v1": (2, 3, 5, 7, 11, 17), "v2": (2, 3, 5, 7, 11, 17, 23, 37)}

FeatureMaps = list[torch.Tensor]


def _run(convs: nn.ModuleList, conv_post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
    fmap = []
    for conv in convs:
        x = F.leaky_relu(conv(x), LRELU_SLOPE)
        fmap.append(x)
    x = conv_post(x)
    fmap.append(x)
    return torch.flatten(x, 1, -1), fmap


class DiscriminatorS(nn.Module):
    """Scale discriminator on the raw waveform: grouped strided 1-D convolutions."""

    def __init__(self, shrink: int = 1):
        super().__init__()
        c = [1] + [n // shrink for n in (16, 64, 256, 1024, 1024, 1024)]
        # (in, out, kernel, stride, groups)
        layers = [(c[0], c[1], 15, 1, 1), (c[1], c[2], 41, 4, 4), (c[2], c[3], 41, 4, 16), (c[3], c[4], 41, 4, 64),
                  (c[4], c[5], 41, 4, 256), (c[5], c[6], 5, 1, 1)]
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv1d(i, o, k, s, groups=max(1, g // shrink), padding=padding_for(k)))
            for i, o, k, s, g in layers)
        self.conv_post = weight_norm(nn.Conv1d(c[6], 1, 3, 1, padding=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        """x: [B, 1, T] -> (logits [B, N], feature maps)."""
        return _run(self.convs, self.conv_post, x)


class DiscriminatorP(nn.Module):
    """Period discriminator: folds the waveform into [T/period, period] and applies (k, 1) 2-D convs."""

    def __init__(self, period: int, kernel_size: int = 5, stride: int = 3, shrink: int = 1):
        super().__init__()
        self.period = period
        channels = [1] + [n // shrink for n in (32, 128, 512, 1024, 1024)]
        pad = (padding_for(kernel_size), 0)
        self.convs = nn.ModuleList(
            weight_norm(nn.Conv2d(c_in, c_out, (kernel_size, 1), (stride if i < 4 else 1, 1), padding=pad))
            for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:])))
        self.conv_post = weight_norm(nn.Conv2d(channels[-1], 1, (3, 1), 1, padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, FeatureMaps]:
        b, c, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), "reflect")
        x = x.view(b, c, -1, self.period)
        return _run(self.convs, self.conv_post, x)


class MultiPeriodDiscriminator(nn.Module):
    """All discriminators of one RVC version; ``discriminators[0]`` is the scale discriminator.

    ``shrink`` divides every channel count (released models: 1). Upstream has no size knob; it exists so tiny
    test bases keep the released key names while training in seconds on a CPU.
    """

    def __init__(self, version: str = "v2", shrink: int = 1):
        super().__init__()
        if version not in PERIODS:
            raise ValueError(f"unknown RVC version {version!r}; expected one of {list(PERIODS)}")
        if shrink < 1 or 16 % shrink:
            raise ValueError(f"discriminator shrink must divide 16, got {shrink}")
        self.discriminators = nn.ModuleList([DiscriminatorS(shrink),
                                             *(DiscriminatorP(p, shrink=shrink) for p in PERIODS[version])])

    def forward(self, y: torch.Tensor, y_hat: torch.Tensor):
        """Real y and generated y_hat [B, 1, T] -> (real logits, fake logits, real fmaps, fake fmaps), one per D."""
        y_d_rs, y_d_gs, fmap_rs, fmap_gs = [], [], [], []
        for d in self.discriminators:
            y_d_r, fmap_r = d(y)
            y_d_g, fmap_g = d(y_hat)
            y_d_rs.append(y_d_r)
            y_d_gs.append(y_d_g)
            fmap_rs.append(fmap_r)
            fmap_gs.append(fmap_g)
        return y_d_rs, y_d_gs, fmap_rs, fmap_gs
