"""The Seed-VC V2 autoregressive content transformer (style / accent path), batched over K takes.

Given narrow (32-code) content of [reference ; source] and the reference's wide (2048-code) tokens, it writes new
50 Hz wide tokens for the source in the reference's manner. Prefix per row:
    [sep, emb32(narrow) (L tokens), sep, emb2049(ref_wide) (T tokens)]
with RoPE positions [0..L, 0, 1..T] and generated tokens at T+1, T+2, ... (upstream layout).

Batching: rows are left-padded so that every row's prefix ends at the same cache slot; padded slots are hidden by
a key-padding mask, positions are per row, and each row samples from its own torch.Generator and stops at its own
EOS. The KV cache grows with the real length instead of reserving max_seq_len slots.
Attribute names mirror the `net.ar` checkpoint keys (`sep_token_emb`, `model.*`).

Sources: Plachtaa/seed-vc modules/v2/ar.py (fish-speech / gpt-fast style Llama).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .dit import FeedForward, RMSNorm, apply_rope, rope_table


@dataclass
class ARDims:
    """AR dimensions; defaults are the released `ar_base` model."""
    dim: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_local_heads: int = 2         # grouped-query attention: 12 query heads share 2 key/value heads
    intermediate_size: int = 2304
    vocab_size: int = 2049         # 2048 wide codes + EOS
    max_seq_len: int = 4096        # RoPE table rows prepared up front (grown on demand)
    rope_base: float = 10000.0
    norm_eps: float = 1e-5

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_head

    @property
    def eos(self) -> int:
        return self.vocab_size - 1


@dataclass(frozen=True)
class SamplingOptions:
    """AR sampling settings (upstream CLI/UI defaults)."""
    top_p: float = 0.9                 # nucleus mass kept
    temperature: float = 1.0           # applied after top-p
    repetition_penalty: float = 1.0    # upstream applies it to the FIRST generated token only (kept for parity)
    min_new_tokens: int = 10           # EOS is suppressed until this many tokens exist
    max_new_tokens: int = 4001         # upstream cap: one token from the prefill + 4000 decode steps


class KVCache:
    """Per-layer keys/values (B, n_kv_heads, capacity, head_dim), grown in steps of `grow` slots.

    Each layer's tensors are allocated at its first write, in the dtype of the keys it receives (fp16/bf16 under
    autocast), so the cache never mixes precisions with the attention inputs.
    """

    def __init__(self, n_layer: int, grow: int = 256) -> None:
        self.k: list[torch.Tensor | None] = [None] * n_layer
        self.v: list[torch.Tensor | None] = [None] * n_layer
        self.length = 0
        self.capacity = 0
        self.grow = grow

    def reserve(self, n_new: int) -> None:
        if self.length + n_new <= self.capacity:
            return
        self.capacity = self.length + n_new + self.grow
        self.k = [None if t is None else F.pad(t, (0, 0, 0, self.capacity - t.size(2))) for t in self.k]
        self.v = [None if t is None else F.pad(t, (0, 0, 0, self.capacity - t.size(2))) for t in self.v]

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B, n_kv, S, hd) at the current end; return all filled slots including them."""
        if self.k[layer] is None:
            shape = (k.size(0), k.size(1), self.capacity, k.size(3))
            self.k[layer], self.v[layer] = k.new_zeros(shape), v.new_zeros(shape)
        end = self.length + k.size(2)
        self.k[layer][:, :, self.length:end] = k
        self.v[layer][:, :, self.length:end] = v
        return self.k[layer][:, :, :end], self.v[layer][:, :, :end]


class Attention(nn.Module):
    def __init__(self, dims: ARDims) -> None:
        super().__init__()
        self.wqkv = nn.Linear(dims.dim, (dims.n_head + 2 * dims.n_local_heads) * dims.head_dim, bias=False)
        self.wo = nn.Linear(dims.dim, dims.dim, bias=False)
        self.n_head, self.n_kv, self.head_dim = dims.n_head, dims.n_local_heads, dims.head_dim

    def forward(self, x: torch.Tensor, rope: torch.Tensor, mask: torch.Tensor, cache: KVCache,
                layer: int) -> torch.Tensor:
        """x (B, S, D), rope (B, S, hd/2, 2), mask (B, 1, S, cache.length + S) bool -> (B, S, D)."""
        b, s, d = x.shape
        kv = self.n_kv * self.head_dim
        q, k, v = self.wqkv(x).split([d, kv, kv], dim=-1)
        q = apply_rope(q.view(b, s, self.n_head, self.head_dim), rope).transpose(1, 2)
        k = apply_rope(k.view(b, s, self.n_kv, self.head_dim), rope).transpose(1, 2)
        v = v.view(b, s, self.n_kv, self.head_dim).transpose(1, 2)
        k, v = cache.write(layer, k, v)
        rep = self.n_head // self.n_kv
        y = F.scaled_dot_product_attention(q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1),
                                           attn_mask=mask)
        return self.wo(y.transpose(1, 2).reshape(b, s, d))


class TransformerBlock(nn.Module):
    def __init__(self, dims: ARDims) -> None:
        super().__init__()
        self.attention = Attention(dims)
        self.feed_forward = FeedForward(dims.dim, dims.intermediate_size)
        self.ffn_norm = RMSNorm(dims.dim, dims.norm_eps)
        self.attention_norm = RMSNorm(dims.dim, dims.norm_eps)

    def forward(self, x: torch.Tensor, rope: torch.Tensor, mask: torch.Tensor, cache: KVCache,
                layer: int) -> torch.Tensor:
        h = x + self.attention(self.attention_norm(x), rope, mask, cache, layer)
        return h + self.feed_forward(self.ffn_norm(h))


class Transformer(nn.Module):
    """Decoder-only Llama; RoPE tables are bf16-rounded like upstream and computed for any length needed."""

    def __init__(self, dims: ARDims) -> None:
        super().__init__()
        self.dims = dims
        self.embeddings = nn.Embedding(dims.vocab_size, dims.dim)
        self.layers = nn.ModuleList(TransformerBlock(dims) for _ in range(dims.n_layer))
        self.norm = RMSNorm(dims.dim, dims.norm_eps)
        self.output = nn.Linear(dims.dim, dims.vocab_size, bias=False)
        # Not in the checkpoint (upstream registers it non-persistent); grown if a sequence ever needs more.
        self.register_buffer("freqs_cis", rope_table(dims.max_seq_len, dims.head_dim, dims.rope_base),
                             persistent=False)

    def rope(self, positions: torch.Tensor) -> torch.Tensor:
        n = int(positions.max()) + 1
        if self.freqs_cis.size(0) < n:
            grown = rope_table(max(n, 2 * self.freqs_cis.size(0)), self.dims.head_dim, self.dims.rope_base)
            self.freqs_cis = grown.to(self.freqs_cis.device)
        return self.freqs_cis[positions]

    def forward(self, x: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Run S new embeddings through the stack, appending them to the cache.

        Args:
            x: (B, S, D) input embeddings.
            positions: (B, S) RoPE positions.
            mask: (B, 1, S, cache.length + S) bool, True = may attend.
            cache: the running KV cache; its length grows by S.
        Returns:
            (B, vocab) logits of the last position.
        """
        cache.reserve(x.size(1))
        rope = self.rope(positions)
        for i, layer in enumerate(self.layers):
            x = layer(x, rope, mask, cache, i)
        cache.length += x.size(1)
        return self.output(self.norm(x[:, -1]))


def logits_to_probs(logits: torch.Tensor, top_p: float, temperature: float, repetition_penalty: float = 1.0,
                    previous_tokens: torch.Tensor | None = None, suppress_eos: torch.Tensor | None = None,
                    eos: int = 2048) -> torch.Tensor:
    """Sampling distribution per row: repetition penalty -> EOS suppression -> top-p -> temperature -> softmax.

    Args:
        logits: (B, V) raw logits (not modified).
        previous_tokens: (B, n) tokens to penalise (positive logits divided, negative multiplied), or None.
        suppress_eos: (B,) bool, rows whose EOS logit is set to -inf.
    Returns:
        (B, V) probabilities.
    """
    logits = logits.float().clone()
    if previous_tokens is not None and repetition_penalty != 1.0:
        score = logits.gather(1, previous_tokens)
        score = torch.where(score < 0, score * repetition_penalty, score / repetition_penalty)
        logits.scatter_(1, previous_tokens, score)
    if suppress_eos is not None:
        logits[suppress_eos, eos] = -float("inf")
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    remove = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1) > top_p
    remove[:, 0] = False
    logits = logits.masked_fill(remove.scatter(1, order, remove), -float("inf"))
    return torch.softmax(logits / max(temperature, 1e-5), dim=-1)


def sample(probs: torch.Tensor, generators: Sequence[torch.Generator | None]) -> torch.Tensor:
    """argmax(p / Exp(1)) per row (a multinomial draw); one exponential draw of shape (V,) per row.

    A row's draw comes from its generator on the generator's device (CPU generators give the same tokens on any
    device), or from the global RNG of probs' device when the generator is None (upstream behaviour).
    """
    q = torch.stack([torch.empty(p.shape, device=p.device if g is None else g.device).exponential_(1, generator=g)
                     for p, g in zip(probs, generators)])
    return torch.argmax(probs / q.to(probs.device), dim=-1)


class ARModel(nn.Module):
    """`NaiveWrapper` equivalent: the separator embedding plus the transformer."""

    def __init__(self, dims: ARDims) -> None:
        super().__init__()
        self.dims = dims
        self.model = Transformer(dims)
        self.sep_token_emb = nn.Parameter(torch.zeros(dims.dim))

    def prefill(self, prompt_text: Sequence[torch.Tensor], prompt_target: Sequence[torch.Tensor],
                ) -> tuple[torch.Tensor, KVCache, torch.Tensor, torch.Tensor]:
        """Left-padded prefix for K rows.

        Args:
            prompt_text: K tensors (L_i, D): regulated narrow content [reference ; source chunk].
            prompt_target: K tensors (T_i,): wide reference tokens (may be empty).
        Returns:
            logits (K, V) for the first new token, the cache, key_valid (K, S) bool, next positions (K,).
        """
        sep = self.sep_token_emb[None]
        rows, positions = [], []
        for text, target in zip(prompt_text, prompt_target):
            rows.append(torch.cat([sep, text.to(sep.dtype), sep, self.model.embeddings(target.long())]))
            n_text, n_target = text.size(0), target.numel()
            positions.append(torch.cat([torch.arange(n_text + 1), torch.arange(n_target + 1)]))
        k, s_max = len(rows), max(r.size(0) for r in rows)
        device = sep.device
        x = sep.new_zeros(k, s_max, self.dims.dim)
        pos = torch.zeros(k, s_max, dtype=torch.long)
        key_valid = torch.zeros(k, s_max, dtype=torch.bool, device=device)
        for i, (r, p) in enumerate(zip(rows, positions)):
            x[i, s_max - r.size(0):] = r
            pos[i, s_max - r.size(0):] = p
            key_valid[i, s_max - r.size(0):] = True
        causal = torch.ones(s_max, s_max, dtype=torch.bool, device=device).tril()
        # Padded queries see themselves only, so they stay finite and never reach a real row.
        mask = (causal[None] & key_valid[:, None, :]) | torch.eye(s_max, dtype=torch.bool, device=device)[None]
        cache = KVCache(self.dims.n_layer)
        logits = self.model(x, pos.to(device), mask[:, None], cache)
        next_pos = torch.tensor([t.numel() + 1 for t in prompt_target], device=device)
        return logits, cache, key_valid, next_pos

    def step(self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache,
             key_valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Feed one token per row (K,) at positions (K,); returns logits (K, V) and the extended key_valid."""
        key_valid = torch.cat([key_valid, key_valid.new_ones(key_valid.size(0), 1)], dim=1)
        x = self.model.embeddings(tokens.long())[:, None]
        logits = self.model(x, positions[:, None], key_valid[:, None, None, :], cache)
        return logits, key_valid

    @torch.inference_mode()
    def generate(self, prompt_text: Sequence[torch.Tensor], prompt_target: Sequence[torch.Tensor],
                 options: SamplingOptions = SamplingOptions(),
                 generators: Sequence[torch.Generator] | None = None) -> list[torch.Tensor]:
        """Sample new wide tokens for K rows until each row's EOS (or the cap).

        Args:
            prompt_text, prompt_target: as in prefill.
            generators: one per row; None draws every row from the global RNG (row order), as upstream does.
        Returns:
            K int64 tensors (n_i,) of wide tokens, EOS excluded.
        """
        k = len(prompt_text)
        gens = list(generators) if generators is not None else [None] * k
        eos = self.dims.eos
        logits, cache, key_valid, positions = self.prefill(prompt_text, prompt_target)
        device = logits.device
        out = torch.zeros(k, 0, dtype=torch.long, device=device)
        active = torch.ones(k, dtype=torch.bool, device=device)
        lengths = torch.zeros(k, dtype=torch.long, device=device)
        while True:
            n = out.size(1)
            # Upstream quirk: the penalty list is the first generated token only, and nothing at the first step.
            previous = out[:, :1] if n > 0 else None
            probs = logits_to_probs(logits, options.top_p, options.temperature, options.repetition_penalty,
                                    previous, torch.full((k,), n < options.min_new_tokens, device=device), eos)
            tokens = torch.full((k,), eos, dtype=torch.long, device=device)
            rows = active.nonzero().flatten().tolist()
            tokens[rows] = sample(probs[rows], [gens[i] for i in rows])
            active &= tokens != eos
            tokens = torch.where(active, tokens, torch.zeros_like(tokens))
            lengths += active.long()
            out = torch.cat([out, tokens[:, None]], dim=1)
            if not bool(active.any()) or out.size(1) >= options.max_new_tokens:
                break
            logits, key_valid = self.step(tokens, positions + n - 1, cache, key_valid)
        return [out[i, : int(lengths[i])] for i in range(k)]
