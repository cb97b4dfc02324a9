"""The DiT velocity estimator of the Seed-VC V2 flow-matching decoder.

The input sequence is [t_emb, style token, frames], where each frame is cond_x_merge_linear(cat[x_t, prompt_x,
cond_projection(content)]). Attention is bidirectional; padded frames are hidden as keys only (x_lens + 2 valid
keys per row), so a row in a padded batch matches the same row alone. Every block is modulated (AdaLN) by t_emb.
Attribute names mirror the `net.cfm` checkpoint keys under `estimator.`.

Sources: Plachtaa/seed-vc modules/v2/dit_wrapper.py and dit_model.py (gpt-fast style transformer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class DiTDims:
    """Estimator dimensions; defaults are the released `cfm_small` model."""
    depth: int = 13
    hidden_dim: int = 512
    num_heads: int = 8
    in_channels: int = 80          # mel bins
    content_dim: int = 512         # width of the length regulator output
    style_dim: int = 192           # CAMPPlus embedding
    block_size: int = 8192         # rows of the RoPE table (and of the unused causal_mask buffer)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.hidden_dim // self.num_heads

    @property
    def ffn_dim(self) -> int:
        # gpt-fast default: 2/3 of 4*dim rounded up to a multiple of 256 (1536 for 512, 256 for 64).
        n = int(2 * 4 * self.hidden_dim / 3)
        return n if n % 256 == 0 else n + 256 - n % 256


def rope_table(n_pos: int, head_dim: int, base: float) -> torch.Tensor:
    """(n_pos, head_dim/2, 2) [cos, sin] table, rounded to bfloat16 as upstream stores it."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim))
    angles = torch.outer(torch.arange(n_pos, dtype=torch.float32), inv_freq)
    return torch.stack([torch.cos(angles), torch.sin(angles)], dim=-1).to(torch.bfloat16)


def apply_rope(x: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved pairs of x (B, S, H, D) by table (B or 1, S, D/2, 2); computed in fp32."""
    xp = x.float().reshape(*x.shape[:-1], -1, 2)
    cs = table.float().unsqueeze(2)  # (B, S, 1, D/2, 2)
    cos, sin = cs[..., 0], cs[..., 1]
    out = torch.stack([xp[..., 0] * cos - xp[..., 1] * sin, xp[..., 1] * cos + xp[..., 0] * sin], dim=-1)
    return out.flatten(3).type_as(x)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float()
        return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)).type_as(x) * self.weight


class AdaLN(nn.Module):
    """RMSNorm whose scale/shift (and gates) come from the time embedding; n_out=6 in blocks, 2 at the end."""

    def __init__(self, dim: int, eps: float, n_out: int) -> None:
        super().__init__()
        self.linear = nn.Linear(dim, n_out * dim)
        self.norm = RMSNorm(dim, eps)
        self.n_out = n_out

    def forward(self, emb: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """emb (B, 1, D) -> n_out modulation tensors of (B, 1, D); the caller applies them around self.norm."""
        return self.linear(F.silu(emb)).chunk(self.n_out, dim=-1)


class Attention(nn.Module):
    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        self.wqkv = nn.Linear(dims.hidden_dim, 3 * dims.hidden_dim, bias=False)
        self.wo = nn.Linear(dims.hidden_dim, dims.hidden_dim, bias=False)
        self.n_head, self.head_dim = dims.num_heads, dims.head_dim

    def forward(self, x: torch.Tensor, rope: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), rope (1, S, hd/2, 2), key_mask (B, 1, 1, S) bool -> (B, S, D)."""
        b, s, d = x.shape
        q, k, v = self.wqkv(x).view(b, s, 3, self.n_head, self.head_dim).unbind(2)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           attn_mask=key_mask)
        return self.wo(y.transpose(1, 2).reshape(b, s, d))


class FeedForward(nn.Module):
    """SwiGLU (shared by the DiT and the AR transformer)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class TransformerBlock(nn.Module):
    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        self.attention = Attention(dims)
        self.feed_forward = FeedForward(dims.hidden_dim, dims.ffn_dim)
        self.ffn_norm = RMSNorm(dims.hidden_dim, dims.norm_eps)
        self.attention_norm = AdaLN(dims.hidden_dim, dims.norm_eps, 6)

    def forward(self, x: torch.Tensor, c: torch.Tensor, rope: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), c (B, 1, D) time embedding."""
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.attention_norm(c)
        h = self.attention_norm.norm(x) * (1 + scale_msa) + shift_msa
        x = x + gate_msa * self.attention(h, rope, key_mask)
        h = self.ffn_norm(x) * (1 + scale_mlp) + shift_mlp
        return x + gate_mlp * self.feed_forward(h)


class Transformer(nn.Module):
    """Owns the checkpoint buffers `freqs_cis` (bf16 RoPE table, loaded from the file) and `causal_mask`."""

    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(dims) for _ in range(dims.depth))
        self.norm = AdaLN(dims.hidden_dim, dims.norm_eps, 2)
        self.register_buffer("freqs_cis", rope_table(dims.block_size, dims.head_dim, dims.rope_base))
        self.block_size = dims.block_size

    # The checkpoint may carry `causal_mask`, a (block_size, block_size) bool tril that inference never reads
    # (64 MiB at 8192). It is not kept as a buffer: state_dict() materialises it so the key set matches the
    # manifest, and loading checks its shape and drops it; files saved without it load too. `freqs_cis` is
    # required: the released table is bf16, the rounding the weights were trained under, and it is used as stored.
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        n = self.block_size
        destination[prefix + "causal_mask"] = torch.ones(n, n, dtype=torch.bool, device=self.freqs_cis.device).tril()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        mask = state_dict.pop(prefix + "causal_mask", None)
        if mask is not None and tuple(mask.shape) != (self.block_size, self.block_size):
            error_msgs.append(f"{prefix}causal_mask: shape {tuple(mask.shape)}, expected "
                              f"{(self.block_size, self.block_size)}")
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def forward(self, x: torch.Tensor, c: torch.Tensor, key_mask: torch.Tensor) -> torch.Tensor:
        """x (B, S, D), c (B, 1, D), key_mask (B, 1, 1, S) -> (B, S, D)."""
        rope = self.freqs_cis[: x.size(1)].unsqueeze(0)
        for layer in self.layers:
            x = layer(x, c, rope, key_mask)
        scale, shift = self.norm(c)
        return self.norm.norm(x) * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden_dim), nn.SiLU(), nn.Linear(hidden_dim, hidden_dim))
        self.freq_dim = freq_dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (B,) in [0, 1] -> (B, D); sinusoidal features of 1000*t (GLIDE layout: cos then sin)."""
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = 1000 * t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class UnusedWeightNormLinear(nn.Module):
    """Holds the checkpoint's weight-norm `x_embedder` (weight_g, weight_v, bias); no inference path uses it."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.weight_g = nn.Parameter(torch.ones(out_dim, 1))
        self.weight_v = nn.Parameter(torch.zeros(out_dim, in_dim))


class DiT(nn.Module):
    """The CFM estimator: predicts the flow velocity for every mel frame."""

    def __init__(self, dims: DiTDims) -> None:
        super().__init__()
        self.dims = dims
        d = dims.hidden_dim
        self.transformer = Transformer(dims)
        self.x_embedder = UnusedWeightNormLinear(dims.in_channels, d)
        self.cond_projection = nn.Linear(dims.content_dim, d)
        self.t_embedder = TimestepEmbedder(d)
        self.final_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, dims.in_channels))
        self.cond_x_merge_linear = nn.Linear(d + 2 * dims.in_channels, d)
        self.style_in = nn.Linear(dims.style_dim, d)

    def forward(self, x: torch.Tensor, prompt_x: torch.Tensor, x_lens: torch.Tensor, t: torch.Tensor,
                style: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Velocity for x_t.

        Args:
            x: (B, 80, T) current sample (prompt region zeroed).
            prompt_x: (B, 80, T) reference mel in the prompt region, zeros elsewhere.
            x_lens: (B,) valid frames per row (prompt included).
            t: (B,) flow time in [0, 1].
            style: (B, style_dim) speaker embedding.
            cond: (B, T, content_dim) length-regulated content.
        Returns:
            (B, 80, T) velocity; frames past x_lens are computed but meaningless.
        """
        t_emb = self.t_embedder(t).unsqueeze(1)
        frames = torch.cat([x.transpose(1, 2), prompt_x.transpose(1, 2), self.cond_projection(cond)], dim=-1)
        seq = torch.cat([t_emb, self.style_in(style).unsqueeze(1), self.cond_x_merge_linear(frames)], dim=1)
        n = seq.size(1)
        key_mask = (torch.arange(n, device=x.device)[None] < (x_lens[:, None] + 2))[:, None, None, :]
        out = self.transformer(seq, t_emb, key_mask)
        return self.final_mlp(out[:, 2:]).transpose(1, 2)
