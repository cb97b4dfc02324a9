"""BigVGAN v2 generator (nvidia/bigvgan_v2_22khz_80band_256x): 80-band log-mel at 22.05 kHz -> waveform.

Public:
    BigVGAN(h: dict)                     # h = the release config.json; state_dict == bigvgan_generator.pt['generator']
    BigVGAN.forward(mel (B, 80, F)) -> wave (B, 1, F * 256) in [-1, 1]
    load_bigvgan(model_dir) -> BigVGAN   # config.json + bigvgan_generator.pt, strict (any weight-norm spelling)
    RELEASE_BIGVGAN_CONFIG (dict), RECEPTIVE_FIELD_FRAMES = 17
    vocode_batch(model, mels (B, 80, F_max), mel_lens (B,)) -> list of 1-D waves (mel_lens[i] * 256,)
Weight norm stays applied (weight_g / weight_v names, as in the file). Only the torch anti-aliased activation path
(no CUDA kernel), snake/snakebeta with log-scale parameters, AMPBlock1.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import weight_norm

from .audio import LOG_MEL_FLOOR
from .checkpoints import load_strict, read_checkpoint, restore_weight_norm

# nvidia/bigvgan_v2_22khz_80band_256x config.json, the fields the generator reads (the rest configure training).
RELEASE_BIGVGAN_CONFIG = dict(
    resblock="1", upsample_rates=[4, 4, 2, 2, 2, 2], upsample_kernel_sizes=[8, 8, 4, 4, 4, 4],
    upsample_initial_channel=1536, resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
    use_tanh_at_final=False, use_bias_at_final=False, activation="snakebeta", snake_logscale=True, num_mels=80,
    n_fft=1024, hop_size=256, win_size=1024, sampling_rate=22050, fmin=0, fmax=None,
)

# Mel frames on each side of an output sample that can change it (conv_pre k7, six upsamplers, AMP blocks). In a
# padded batch only each row's last RECEPTIVE_FIELD_FRAMES frames can differ from vocoding the row alone.
RECEPTIVE_FIELD_FRAMES = 17


def kaiser_sinc_filter(cutoff: float, half_width: float, kernel_size: int) -> torch.Tensor:
    """Kaiser-windowed sinc low-pass (1, 1, kernel_size), normalised to unit DC gain."""
    half = kernel_size // 2
    a = 2.285 * (half - 1) * math.pi * 4 * half_width + 7.95
    if a > 50.0:
        beta = 0.1102 * (a - 8.7)
    elif a >= 21.0:
        beta = 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21.0)
    else:
        beta = 0.0
    window = torch.kaiser_window(kernel_size, beta=beta, periodic=False)
    if kernel_size % 2 == 0:
        time = torch.arange(-half, half) + 0.5
    else:
        time = torch.arange(kernel_size) - half
    taps = 2 * cutoff * window * torch.sinc(2 * cutoff * time)
    return (taps / taps.sum()).view(1, 1, kernel_size)


class UpSample1d(nn.Module):
    """2x upsampling by a zero-stuffed transposed conv with the sinc filter, replicate-padded."""

    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.ratio = ratio
        self.pad = kernel_size // ratio - 1
        self.pad_left = self.pad * ratio + (kernel_size - ratio) // 2
        self.pad_right = self.pad * ratio + (kernel_size - ratio + 1) // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / ratio, 0.6 / ratio, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad, self.pad), mode="replicate")
        x = self.ratio * F.conv_transpose1d(x, self.filter.expand(x.shape[1], -1, -1), stride=self.ratio,
                                            groups=x.shape[1])
        return x[..., self.pad_left: -self.pad_right]


class LowPassFilter1d(nn.Module):
    def __init__(self, stride: int = 2, kernel_size: int = 12):
        super().__init__()
        self.stride = stride
        self.pad_left = kernel_size // 2 - int(kernel_size % 2 == 0)
        self.pad_right = kernel_size // 2
        self.register_buffer("filter", kaiser_sinc_filter(0.5 / stride, 0.6 / stride, kernel_size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (self.pad_left, self.pad_right), mode="replicate")
        return F.conv1d(x, self.filter.expand(x.shape[1], -1, -1), stride=self.stride, groups=x.shape[1])


class DownSample1d(nn.Module):
    def __init__(self, ratio: int = 2, kernel_size: int = 12):
        super().__init__()
        self.lowpass = LowPassFilter1d(ratio, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lowpass(x)


class Snake(nn.Module):
    """x + 1/b * sin^2(a x) per channel; `beta_param` selects SnakeBeta (separate b) over Snake (b = a)."""

    def __init__(self, channels: int, logscale: bool, beta_param: bool):
        super().__init__()
        init = torch.zeros(channels) if logscale else torch.ones(channels)
        self.logscale = logscale
        self.alpha = nn.Parameter(init.clone())
        if beta_param:
            self.beta = nn.Parameter(init.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        alpha = self.alpha[None, :, None]
        beta = self.beta[None, :, None] if hasattr(self, "beta") else alpha
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha) ** 2


class Activation1d(nn.Module):
    """Anti-aliased activation: upsample 2x, snake, low-pass and downsample 2x."""

    def __init__(self, act: nn.Module):
        super().__init__()
        self.act = act
        self.upsample = UpSample1d()
        self.downsample = DownSample1d()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(self.act(self.upsample(x)))


def _padding(kernel_size: int, dilation: int) -> int:
    return (kernel_size * dilation - dilation) // 2


class AMPBlock1(nn.Module):
    """Three (act, dilated conv, act, conv) residual units."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], make_act):
        super().__init__()
        self.convs1 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel_size, dilation=d,
                                                          padding=_padding(kernel_size, d))) for d in dilations)
        self.convs2 = nn.ModuleList(weight_norm(nn.Conv1d(channels, channels, kernel_size,
                                                          padding=_padding(kernel_size, 1))) for _ in dilations)
        self.activations = nn.ModuleList(Activation1d(make_act(channels)) for _ in range(2 * len(dilations)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        acts = self.activations
        for c1, c2, a1, a2 in zip(self.convs1, self.convs2, acts[::2], acts[1::2]):
            x = x + c2(a2(c1(a1(x))))
        return x


class BigVGAN(nn.Module):
    def __init__(self, h: dict):
        super().__init__()
        if h.get("resblock", "1") != "1" or h["activation"] not in ("snake", "snakebeta"):
            raise ValueError(f"only resblock '1' with snake/snakebeta is supported, got {h.get('resblock')!r}, "
                             f"{h['activation']!r}")
        self.h = dict(h)

        def make_act(channels: int) -> Snake:
            return Snake(channels, h["snake_logscale"], h["activation"] == "snakebeta")

        ch = h["upsample_initial_channel"]
        self.num_kernels = len(h["resblock_kernel_sizes"])
        self.conv_pre = weight_norm(nn.Conv1d(h["num_mels"], ch, 7, padding=3))
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (u, k) in enumerate(zip(h["upsample_rates"], h["upsample_kernel_sizes"])):
            ch_in, ch = ch, ch // 2
            self.ups.append(nn.ModuleList([weight_norm(nn.ConvTranspose1d(ch_in, ch, k, u, padding=(k - u) // 2))]))
            for k_res, d in zip(h["resblock_kernel_sizes"], h["resblock_dilation_sizes"]):
                self.resblocks.append(AMPBlock1(ch, k_res, d, make_act))
        self.activation_post = Activation1d(make_act(ch))
        self.conv_post = weight_norm(nn.Conv1d(ch, 1, 7, padding=3, bias=h.get("use_bias_at_final", True)))
        self.use_tanh_at_final = h.get("use_tanh_at_final", True)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """mel: (B, num_mels, F) log-mel. Returns (B, 1, F * prod(upsample_rates))."""
        x = self.conv_pre(mel)
        for i, up in enumerate(self.ups):
            x = up[0](x)
            blocks = self.resblocks[i * self.num_kernels: (i + 1) * self.num_kernels]
            x = sum(block(x) for block in blocks) / self.num_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.use_tanh_at_final else x.clamp(-1.0, 1.0)


def load_bigvgan(model_dir: str | Path) -> BigVGAN:
    """Build from `config.json` and load `bigvgan_generator.pt` ['generator'] strictly (weight norm in any of its
    saved spellings, see checkpoints.restore_weight_norm)."""
    model_dir = Path(model_dir)
    h = json.loads((model_dir / "config.json").read_text())
    model = BigVGAN(h)
    file = model_dir / "bigvgan_generator.pt"
    load_strict(model, restore_weight_norm(read_checkpoint(file, "bigvgan")[""], model.state_dict()), file)
    return model.eval()


@torch.inference_mode()
def vocode_batch(model: BigVGAN, mels: torch.Tensor, mel_lens: torch.Tensor) -> list[torch.Tensor]:
    """Vocode a right-padded batch in one call and trim each row to mel_lens[i] * 256 samples.

    Every row is followed by at least RECEPTIVE_FIELD_FRAMES frames of LOG_MEL_FLOOR (silence, not a loud zero
    log-mel), so a row's samples do not depend on which other rows share the batch. Against `model(mel)` on the
    row alone, samples before its last RECEPTIVE_FIELD_FRAMES frames agree to float rounding (< 1e-5); the last
    17 frames (0.2 s) differ, because alone the network's zero/replicate edge padding sees the end of the signal
    (up to 0.13 on the random-weight golden model). Vocode rows one by one when that tail must be bit-exact.
    mels: (B, 80, F_max), mel_lens: (B,). Returns B 1-D waves.
    """
    mel_lens = torch.as_tensor(mel_lens).long()
    width = int(mel_lens.max()) + RECEPTIVE_FIELD_FRAMES
    padded = mels.new_full((mels.shape[0], mels.shape[1], width), LOG_MEL_FLOOR)
    for i, n in enumerate(mel_lens.tolist()):
        padded[i, :, :n] = mels[i, :, :n]
    wave = model(padded)[:, 0]
    hop = int(math.prod(model.h["upsample_rates"]))
    return [wave[i, : n * hop] for i, n in enumerate(mel_lens.tolist())]
