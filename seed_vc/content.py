"""Content tokens: truncated HuBERT-large -> ASTRAL quantizers (ConvNeXt-V2 stage + binary spherical quantizer).

Public:
    AstralDims(ssl_dim=1024, dim=512, intermediate_dim=1536, num_blocks=12, codebook_size=2048)
    AstralQuantizer(dims)                        # state_dict == bsq{32,2048}_light.pth (encoder.*, quantizer.*)
    build_hubert(config: dict | HubertConfig, num_layers) -> HubertModel   # random weights, truncated
    load_hubert(model_dir, num_layers=18) -> HubertModel                  # strict, truncated
    RELEASE_HUBERT_CONFIG, HUBERT_PREPROCESSOR_CONFIG (dicts), RELEASE_SSL_LAYERS = 18
    ContentEncoder(ssl_model, wide, narrow)
        .forward(waves_16k (B, L), lens (B,)) -> ContentTokens(wide (B, T), narrow (B, T), lens (B,))
Upstream runs HuBERT once per quantizer; the wide and narrow quantizers here share one HuBERT pass.
Padded batches are exact: HuBERT masks with attention_mask, and the ConvNeXt stage zeroes padded frames before each
depthwise conv and takes the GRN norm over each item's own frames.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import HubertConfig, HubertModel

from .audio import HUBERT_HOP, hubert_inputs

RELEASE_SSL_LAYERS = 18  # upstream `ssl_output_layer`: HuBERT-large is cut after 18 of its 24 layers

# facebook/hubert-large-ll60k config.json, the fields that shape the network (dropouts are irrelevant in eval).
RELEASE_HUBERT_CONFIG = dict(
    hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, intermediate_size=4096, hidden_act="gelu",
    feat_extract_norm="layer", feat_extract_activation="gelu", conv_dim=[512] * 7, conv_stride=[5, 2, 2, 2, 2, 2, 2],
    conv_kernel=[10, 3, 3, 3, 3, 2, 2], conv_bias=True, num_conv_pos_embeddings=128, num_conv_pos_embedding_groups=16,
    do_stable_layer_norm=True, layer_norm_eps=1e-5, feat_proj_layer_norm=True, vocab_size=32,
)
# preprocessor_config.json of the same repo (Wav2Vec2FeatureExtractor); hubert_inputs implements it.
HUBERT_PREPROCESSOR_CONFIG = dict(
    do_normalize=True, feature_extractor_type="Wav2Vec2FeatureExtractor", feature_size=1, padding_side="right",
    padding_value=0, return_attention_mask=True, sampling_rate=16000,
)


@dataclass
class AstralDims:
    """ASTRAL quantizer sizes; defaults are the released bsq*_light files (codebook 2048 = wide, 32 = narrow)."""

    ssl_dim: int = 1024  # HuBERT hidden size
    dim: int = 512
    intermediate_dim: int = 1536
    num_blocks: int = 12
    codebook_size: int = 2048


class ChannelsFirstLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, T), computed in fp32 as upstream's ConvNextV2LayerNorm."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = ((x - u) / torch.sqrt(s + self.eps)).to(dtype)
        return self.weight[None, :, None] * x + self.bias[None, :, None]


class GRN(nn.Module):
    """Global response normalisation; the L2 norm over time only counts each item's valid frames."""

    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, T, D); mask: (B, T, 1) bool. Returns (B, T, D). The norm is taken in fp32 (no fp16 overflow)."""
        gx = torch.norm((x * mask).float(), p=2, dim=1, keepdim=True)
        nx = (gx / (gx.mean(dim=-1, keepdim=True) + 1e-6)).to(x.dtype)
        return self.gamma * (x * nx) + self.beta + x


class ConvNeXtV2Block(nn.Module):
    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = ChannelsFirstLayerNorm(dim)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.grn = GRN(intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x: (B, D, T), mask: (B, 1, T) bool. Returns (B, D, T); padded frames are not meaningful."""
        h = self.norm(self.dwconv(x * mask))  # zero padding, as an item alone sees beyond its end
        h = F.gelu(self.pwconv1(h.transpose(1, 2)))
        h = self.pwconv2(self.grn(h, mask.transpose(1, 2)))
        return x + h.transpose(1, 2)


class ConvNeXtV2Stage(nn.Module):
    def __init__(self, dims: AstralDims):
        super().__init__()
        self.blocks = nn.ModuleList(ConvNeXtV2Block(dims.dim, dims.intermediate_dim) for _ in range(dims.num_blocks))
        self.input_projection = nn.Conv1d(dims.ssl_dim, dims.dim, kernel_size=1)

    def forward(self, x: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
        """x: (B, ssl_dim, T) HuBERT features, lens: (B,). Returns (B, dim, T)."""
        mask = (torch.arange(x.shape[-1], device=x.device)[None] < lens[:, None].to(x.device))[:, None]
        x = self.input_projection(x)
        for block in self.blocks:
            x = block(x, mask)
        return x


class BinarySphericalQuantizer(nn.Module):
    """BSQ at inference: project to log2(codebook) dims, L2-normalise, take signs (MSB first), project back."""

    def __init__(self, dim: int, codebook_size: int):
        super().__init__()
        bits = int(math.log2(codebook_size))
        if 2**bits != codebook_size:
            raise ValueError(f"codebook_size must be a power of two, got {codebook_size}")
        self.project_in = nn.Linear(dim, bits)
        self.project_out = nn.Linear(bits, dim)
        self.register_buffer("mask", 2 ** torch.arange(bits - 1, -1, -1))  # persistent, as in the checkpoint

    def prequant(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, dim) -> unit vectors (B, T, bits); their signs are the bits."""
        return F.normalize(self.project_in(x).float(), dim=-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (B, T, dim). Returns quantized (B, T, dim) and indices (B, T) int64."""
        bits = self.prequant(x) > 0
        indices = (bits.long() * self.mask).sum(-1)
        codes = torch.where(bits, 1.0, -1.0) / math.sqrt(bits.shape[-1])
        return self.project_out(codes.to(self.project_out.weight.dtype)), indices

    def indices_to_bits(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, T) -> (B, T, bits) bool, MSB first."""
        return (indices[..., None] & self.mask) != 0


class AstralQuantizer(nn.Module):
    """ConvNeXt-V2 stage + BSQ over HuBERT features; keys equal the flat `bsq*_light.pth` files."""

    def __init__(self, dims: AstralDims):
        super().__init__()
        self.encoder = ConvNeXtV2Stage(dims)
        self.quantizer = BinarySphericalQuantizer(dims.dim, dims.codebook_size)

    def forward(self, features: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features: (B, T, ssl_dim), lens: (B,). Returns quantized (B, T, dim) and indices (B, T)."""
        hidden = self.encoder(features.transpose(1, 2), lens).transpose(1, 2)
        return self.quantizer(hidden)


def build_hubert(config: dict | HubertConfig, num_layers: int) -> HubertModel:
    """A randomly initialised HubertModel cut to `num_layers`, with the final encoder LayerNorm removed."""
    if isinstance(config, dict):
        config = HubertConfig(**config)
    return truncate_hubert(HubertModel(config), num_layers)


def truncate_hubert(model: HubertModel, num_layers: int) -> HubertModel:
    """Keep the first `num_layers` encoder layers and drop the final LayerNorm, as upstream's AstralQuantizer."""
    if not 0 < num_layers <= len(model.encoder.layers):
        raise ValueError(f"num_layers must be in 1..{len(model.encoder.layers)}, got {num_layers}")
    model.encoder.layers = model.encoder.layers[:num_layers]
    model.encoder.layer_norm = nn.Identity()
    return model.eval()


def load_hubert(model_dir: str | Path, num_layers: int = RELEASE_SSL_LAYERS) -> HubertModel:
    """Load a transformers HuBERT directory (config.json + weights) strictly, then truncate it.

    Raises RuntimeError naming the directory when any weight is missing, unexpected or of the wrong shape, except
    `masked_spec_embed`: a training-only SpecAugment vector (unused in eval) that some HuBERT exports omit.
    """
    model, info = HubertModel.from_pretrained(str(model_dir), output_loading_info=True)
    info["missing_keys"] = [k for k in info["missing_keys"] if k != "masked_spec_embed"]
    problems = {k: v for k, v in info.items() if v and k != "error_msgs"}
    if problems or info.get("error_msgs"):
        raise RuntimeError(f"HuBERT weights in {model_dir} do not match HubertModel: {problems or info['error_msgs']}")
    return truncate_hubert(model, num_layers)


class ContentTokens(NamedTuple):
    wide: torch.Tensor  # (B, T) int64 in [0, 2048): CFM content tokens
    narrow: torch.Tensor  # (B, T) int64 in [0, 32): AR content tokens
    lens: torch.Tensor  # (B,) int64 valid tokens per row (50 Hz)


class ContentEncoder(nn.Module):
    """One HuBERT pass feeding both quantizers. Rows past `lens` are padding (their tokens are meaningless)."""

    def __init__(self, ssl_model: HubertModel, wide: AstralQuantizer, narrow: AstralQuantizer):
        super().__init__()
        self.ssl_model = ssl_model
        self.wide = wide
        self.narrow = narrow

    def features(self, waves_16k: torch.Tensor, lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves_16k: (B, L) zero-padded, lens: (B,). Returns HuBERT states (B, T, ssl_dim) and frame lens (B,)."""
        values, attention_mask = hubert_inputs(waves_16k, lens)
        # Upstream clamps lens // 320 to the batch's HuBERT length; clamping each row to its own conv output
        # length instead keeps a padded row equal to the item alone (16000 samples -> 49 frames, not 50).
        lens = attention_mask.sum(-1).long()
        own_frames = self.ssl_model._get_feat_extract_output_lengths(lens).long()
        feature_lens = torch.minimum(lens // HUBERT_HOP, own_frames)
        hidden = self.ssl_model(values.to(self.ssl_model.dtype), attention_mask=attention_mask).last_hidden_state
        return hidden[:, : int(feature_lens.max())], feature_lens

    @torch.inference_mode()
    def forward(self, waves_16k: torch.Tensor, lens: torch.Tensor) -> ContentTokens:
        """waves_16k: (B, L) 16 kHz zero-padded, lens: (B,). Returns wide and narrow tokens (B, T) with lens (B,)."""
        hidden, feature_lens = self.features(waves_16k, lens)
        _, wide = self.wide(hidden, feature_lens)
        _, narrow = self.narrow(hidden, feature_lens)
        return ContentTokens(wide, narrow, feature_lens)
