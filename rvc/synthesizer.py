"""The RVC synthesizer (VITS-style generator ``net_g``) for v1/v2 models, with or without pitch guidance.

One class covers upstream's four ``SynthesizerTrnMs{256,768}NSFsid[_nono]``: v1 and v2 differ only in the
content-feature size (256 vs 768), and the f0 variants add ``enc_p.emb_pitch`` and the NSF source in ``dec``.
Attribute names equal the checkpoint keys, so upstream state_dicts load strictly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn

from .encoders import PosteriorEncoder, TextEncoder
from .generator import Generator
from .layers import ResidualCouplingBlock

SAMPLE_RATES = {"32k": 32000, "40k": 40000, "48k": 48000}
FEATURE_DIMS = {"v1": 256, "v2": 768}  # ContentVec layer 9 + final_proj (v1) or layer 12 (v2)
PRIOR_NOISE_SCALE = 0.66666  # upstream's fixed temperature for sampling z_p at inference


def parse_sample_rate(sr: int | str) -> int:
    """40000, "40000" or "40k" -> 40000."""
    if isinstance(sr, str):
        if sr in SAMPLE_RATES:
            return SAMPLE_RATES[sr]
        if not sr.isdigit():
            raise ValueError(f"unknown sample rate {sr!r}; expected one of {list(SAMPLE_RATES)} or an int")
    return int(sr)


@dataclass(frozen=True)
class SynthesizerConfig:
    """The 18-item ``config`` list of an RVC model file, by name (same order)."""

    spec_channels: int  # n_fft // 2 + 1 of the training spectrogram (posterior encoder input)
    segment_size: int  # training slice in frames; shared .pth files store a placeholder 32
    inter_channels: int  # latent z channels
    hidden_channels: int
    filter_channels: int  # FFN width in the text encoder
    n_heads: int
    n_layers: int  # text-encoder layers
    kernel_size: int  # text-encoder FFN kernel
    p_dropout: float
    resblock: str  # HiFi-GAN resblock type; RVC models all use "1"
    resblock_kernel_sizes: tuple[int, ...]
    resblock_dilation_sizes: tuple[tuple[int, ...], ...]
    upsample_rates: tuple[int, ...]  # their product is the hop length in samples
    upsample_initial_channel: int
    upsample_kernel_sizes: tuple[int, ...]
    spk_embed_dim: int  # number of speakers (rows of emb_g)
    gin_channels: int  # speaker embedding size
    sr: int  # output sample rate in Hz

    @classmethod
    def from_list(cls, config: list | tuple) -> "SynthesizerConfig":
        if len(config) != 18:
            raise ValueError(f"an RVC config list has 18 items, got {len(config)}: {config!r}")
        c = list(config)
        return cls(
            *c[:10],
            resblock_kernel_sizes=tuple(c[10]),
            resblock_dilation_sizes=tuple(tuple(d) for d in c[11]),
            upsample_rates=tuple(c[12]),
            upsample_initial_channel=c[13],
            upsample_kernel_sizes=tuple(c[14]),
            spk_embed_dim=c[15],
            gin_channels=c[16],
            sr=parse_sample_rate(c[17]),
        )

    def to_list(self) -> list:
        """The list exactly as RVC writes it into a model file (nested lists, int sample rate)."""
        return [self.spec_channels, self.segment_size, self.inter_channels, self.hidden_channels,
                self.filter_channels, self.n_heads, self.n_layers, self.kernel_size, self.p_dropout,
                self.resblock, list(self.resblock_kernel_sizes),
                [list(d) for d in self.resblock_dilation_sizes], list(self.upsample_rates),
                self.upsample_initial_channel, list(self.upsample_kernel_sizes), self.spk_embed_dim,
                self.gin_channels, self.sr]

    @property
    def hop_length(self) -> int:
        """Output samples per latent frame (100 frames/s at every RVC sample rate)."""
        return math.prod(self.upsample_rates)


# (version, sr) -> (spec_channels, upsample_rates, upsample_kernel_sizes) of the released RVC configs
_RELEASE_DECODERS = {
    ("v1", "32k"): (513, [10, 4, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v2", "32k"): (513, [10, 8, 2, 2], [20, 16, 4, 4]),
    ("v1", "40k"): (1025, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v2", "40k"): (1025, [10, 10, 2, 2], [16, 16, 4, 4]),
    ("v1", "48k"): (1025, [10, 6, 2, 2, 2], [16, 16, 4, 4, 4]),
    ("v2", "48k"): (1025, [12, 10, 2, 2], [24, 20, 4, 4]),
}


def release_config(version: str, sr: int | str, spk_embed_dim: int = 109) -> SynthesizerConfig:
    """The config list of RVC's released (pretrained and user-trained) models, as written to ``.pth`` files."""
    key = (version, {v: k for k, v in SAMPLE_RATES.items()}.get(parse_sample_rate(sr)))
    if key not in _RELEASE_DECODERS:
        raise ValueError(f"no released RVC config for version={version!r}, sr={sr!r}; "
                         f"known: {sorted(_RELEASE_DECODERS)}")
    spec, rates, kernels = _RELEASE_DECODERS[key]
    return SynthesizerConfig.from_list(
        [spec, 32, 192, 192, 768, 2, 6, 3, 0, "1", [3, 7, 11], [[1, 3, 5]] * 3, rates, 512, kernels,
         spk_embed_dim, 256, parse_sample_rate(sr)])


class SynthesisOutput(NamedTuple):
    """Result of :meth:`Synthesizer.infer`; ``[0]`` is the audio, as upstream's tuple."""

    audio: torch.Tensor  # [B, 1, T*hop] in [-1, 1]
    x_mask: torch.Tensor  # [B, 1, T]
    z: torch.Tensor  # latent after the inverse flow, [B, inter, T]
    z_p: torch.Tensor  # prior sample, [B, inter, T]
    m_p: torch.Tensor
    logs_p: torch.Tensor
    har_source: torch.Tensor | None  # NSF excitation [B, T*hop, 1] (f0 models only)


class TrainOutput(NamedTuple):
    """Result of the training forward (upstream returns the same tensors in a nested tuple)."""

    y_hat: torch.Tensor  # generated slice [B, 1, segment_size*hop]
    ids_slice: torch.Tensor  # start frame of each slice [B]
    x_mask: torch.Tensor
    z_mask: torch.Tensor
    z: torch.Tensor
    z_p: torch.Tensor
    m_p: torch.Tensor
    logs_p: torch.Tensor
    m_q: torch.Tensor
    logs_q: torch.Tensor


class Synthesizer(nn.Module):
    """RVC generator: content features (+ f0) and a speaker id -> waveform at ``config.sr``.

    ``posterior=False`` builds the inference-only network (no ``enc_q``), which is what shared model files
    contain.
    """

    def __init__(self, config: SynthesizerConfig, version: str = "v2", f0: bool = True, posterior: bool = True):
        super().__init__()
        if version not in FEATURE_DIMS:
            raise ValueError(f"unknown RVC version {version!r}; expected one of {list(FEATURE_DIMS)}")
        if config.resblock != "1":
            raise ValueError(f"resblock type {config.resblock!r} is not supported (RVC models use '1')")
        self.config, self.version, self.f0 = config, version, bool(f0)
        c = config
        enc_p = TextEncoder(FEATURE_DIMS[version], c.inter_channels, c.hidden_channels, c.filter_channels,
                            c.n_heads, c.n_layers, c.kernel_size, float(c.p_dropout), f0=self.f0)
        # Registration order sets parameters() order, which indexes the optimizer state in G_*.pth files:
        # upstream v2 classes re-create enc_p after everything else, so it comes last there.
        if version == "v1":
            self.enc_p = enc_p
        self.dec = Generator(c.inter_channels, list(c.resblock_kernel_sizes),
                             [list(d) for d in c.resblock_dilation_sizes], list(c.upsample_rates),
                             c.upsample_initial_channel, list(c.upsample_kernel_sizes), c.gin_channels,
                             sampling_rate=c.sr if self.f0 else None)
        if posterior:
            self.enc_q = PosteriorEncoder(c.spec_channels, c.inter_channels, c.hidden_channels, 5, 1, 16,
                                          c.gin_channels)
        self.flow = ResidualCouplingBlock(c.inter_channels, c.hidden_channels, 5, 1, 3,
                                          gin_channels=c.gin_channels)
        self.emb_g = nn.Embedding(c.spk_embed_dim, c.gin_channels)
        if version == "v2":
            self.enc_p = enc_p

    def _check_inputs(self, phone: torch.Tensor, pitch: torch.Tensor | None, pitchf: torch.Tensor | None):
        dim = self.enc_p.in_channels
        if phone.shape[-1] != dim:
            raise ValueError(f"this {self.version} model expects {dim}-dim content features "
                             f"({'ContentVec layer 9 + final_proj' if dim == 256 else 'ContentVec layer 12'}), "
                             f"got {phone.shape[-1]}-dim")
        if self.f0 and (pitch is None or pitchf is None):
            raise ValueError("this model is pitch-guided (f0=1): pass pitch (coarse ids) and pitchf (Hz)")
        if not self.f0 and (pitch is not None or pitchf is not None):
            raise ValueError("this model has no pitch guidance (f0=0): do not pass pitch / pitchf")

    def infer(self, phone: torch.Tensor, phone_lengths: torch.Tensor, sid: torch.Tensor,
              pitch: torch.Tensor | None = None, pitchf: torch.Tensor | None = None, *,
              z_noise: torch.Tensor | None = None, source_noise: torch.Tensor | None = None) -> SynthesisOutput:
        """Convert one batch.

        phone: [B, T, 256|768] content features at 100 frames/s; phone_lengths: [B]; sid: [B] speaker ids;
        pitch: [B, T] coarse f0 ids 1..255 and pitchf: [B, T] f0 in Hz (0 = unvoiced), f0 models only.
        z_noise ([B, inter, T]) and source_noise ([B, T*hop, 1]) are standard-normal draws; they default to
        fresh ``randn`` and can be given to make the output deterministic (zeros = no noise).
        """
        self._check_inputs(phone, pitch, pitchf)
        g = self.emb_g(sid).unsqueeze(-1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
        if z_noise is None:
            z_noise = torch.randn_like(m_p)
        z_p = (m_p + torch.exp(logs_p) * z_noise * PRIOR_NOISE_SCALE) * x_mask
        z = self.flow(z_p, x_mask, g=g, reverse=True)
        har_source = self.dec.m_source(pitchf, self.dec.upp, source_noise) if self.f0 else None
        audio = self.dec(z * x_mask, g=g, har_source=har_source)
        return SynthesisOutput(audio, x_mask, z, z_p, m_p, logs_p, har_source)

    def forward(self, phone: torch.Tensor, phone_lengths: torch.Tensor, spec: torch.Tensor,
                spec_lengths: torch.Tensor, sid: torch.Tensor, pitch: torch.Tensor | None = None,
                pitchf: torch.Tensor | None = None, *, z_noise: torch.Tensor | None = None,
                slice_starts: torch.Tensor | None = None,
                source_noise: torch.Tensor | None = None) -> TrainOutput:
        """Training forward: encode the target spectrogram, decode a random slice of its latent.

        spec: [B, spec_channels, T] linear magnitude; z_noise: posterior draw [B, inter, T];
        slice_starts: [B] start frames (default uniform over each item's valid range);
        source_noise: [B, segment_size*hop, 1]. Returns the tensors the VITS losses need.
        """
        self._check_inputs(phone, pitch, pitchf)
        if not hasattr(self, "enc_q"):
            raise RuntimeError("this synthesizer was built without enc_q (posterior=False) and cannot train")
        seg = self.config.segment_size
        g = self.emb_g(sid).unsqueeze(-1)
        m_p, logs_p, x_mask = self.enc_p(phone, pitch, phone_lengths)
        z, m_q, logs_q, z_mask = self.enc_q(spec, spec_lengths, g=g, noise=z_noise)
        z_p = self.flow(z, z_mask, g=g)
        if slice_starts is None:
            slice_starts = (torch.rand(z.shape[0], device=z.device) * (spec_lengths - seg + 1)).long()
        z_slice = torch.stack([z[i, :, s:s + seg] for i, s in enumerate(slice_starts.tolist())])
        har_source = None
        if self.f0:
            f0_slice = torch.stack([pitchf[i, s:s + seg] for i, s in enumerate(slice_starts.tolist())])
            har_source = self.dec.m_source(f0_slice, self.dec.upp, source_noise)
        y_hat = self.dec(z_slice, g=g, har_source=har_source)
        return TrainOutput(y_hat, slice_starts, x_mask, z_mask, z, z_p, m_p, logs_p, m_q, logs_q)
