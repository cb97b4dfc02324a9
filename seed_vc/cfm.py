"""Conditional flow matching sampler (Euler) with the Seed-VC V2 guidance variants, batched over K takes.

Every take is one row with its own length (x_lens) and its own noise; the guidance copies of all rows go through
the estimator in one call ([full(K), second(K), third(K)]), so a row's result does not depend on its batch mates.

Guidance with rates (a = intelligibility, b = similarity), upstream modules/v2/cfm.py:
    a > 0, b > 0:  (1+a+b)*full - a*uncond - b*no_voice          (3 copies, MegaTTS3 style)
    a = 0, b > 0:  (1+b)*full - b*no_voice                       (2 copies)
    a > 0, b = 0:  (1+a)*full - a*uncond                          (2 copies)
    a = b = 0:     full                                           (1 copy)
    random_voice:  (1+a)*content - a*uncond, both without prompt and style (2 copies)
where no_voice drops prompt and style, and uncond also drops the content.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .dit import DiT


def cosine_t_span(n_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """(n_steps+1,) times 1 - cos(pi/2 * u), u = linspace(0, 1); written as upstream does for identical rounding."""
    u = torch.linspace(0, 1, n_steps + 1, device=device)
    return u + (-1) * (torch.cos(math.pi / 2 * u) - 1 + u)


def draw_noise(frame_counts: Sequence[int], n_mels: int = 80, generators: Sequence[torch.Generator] | None = None,
               device: torch.device | str = "cpu", temperature: float = 1.0) -> torch.Tensor:
    """Right-padded (K, n_mels, max T) noise, row i drawn as randn(1, n_mels, T_i) from its own generator.

    With generators=None the rows are drawn one after another from the global RNG of `device`, as one upstream call
    per take; otherwise on each generator's device (CPU generators give the same noise for any target device).
    """
    gens = [None] * len(frame_counts) if generators is None else list(generators)
    rows = [torch.randn(1, n_mels, t, device=device if g is None else g.device, generator=g).to(device)
            for t, g in zip(frame_counts, gens)]
    out = torch.zeros(len(rows), n_mels, max(frame_counts), device=device)
    for i, r in enumerate(rows):
        out[i, :, : r.size(-1)] = r[0] * temperature
    return out


class CFM(nn.Module):
    """Container matching the checkpoint layout (`estimator.*`) plus the sampler."""

    def __init__(self, estimator: DiT) -> None:
        super().__init__()
        self.estimator = estimator

    @torch.inference_mode()
    def solve_euler(self, x: torch.Tensor, x_lens: torch.Tensor, prompt: torch.Tensor, mu: torch.Tensor,
                    style: torch.Tensor, t_span: torch.Tensor, cfg_rates: Sequence[float] = (0.7, 0.7),
                    random_voice: bool = False) -> torch.Tensor:
        """Integrate the flow from noise to mel.

        Args:
            x: (K, 80, T) noise, right-padded; not modified.
            x_lens: (K,) valid frames per row, prompt included.
            prompt: (1 or K, 80, P) reference mel; the first P frames of every row are the prompt region.
            mu: (K, T, C) length-regulated content for [prompt ; source], zero-padded.
            style: (1 or K, style_dim) speaker embedding.
            t_span: (n_steps+1,) integration times.
            cfg_rates: (intelligibility, similarity) guidance rates.
            random_voice: anonymise: no prompt and no style in any copy.
        Returns:
            (K, 80, T) mel with the prompt region zeroed; frames past x_lens are meaningless.
        """
        a, b = float(cfg_rates[0]), float(cfg_rates[1])
        k = x.size(0)
        plen = prompt.size(-1)
        x = x.clone()
        prompt_x = torch.zeros_like(x)
        prompt_x[..., :plen] = prompt[..., :plen]
        style = style.expand(k, -1)
        zero_p, zero_s, zero_mu = torch.zeros_like(prompt_x), torch.zeros_like(style), torch.zeros_like(mu)
        if random_voice:
            copies = [(zero_p, zero_s, mu), (zero_p, zero_s, zero_mu)]
        elif a == 0 and b == 0:
            copies = [(prompt_x, style, mu)]
        elif a == 0:
            copies = [(prompt_x, style, mu), (zero_p, zero_s, mu)]
        elif b == 0:
            copies = [(prompt_x, style, mu), (zero_p, zero_s, zero_mu)]
        else:
            copies = [(prompt_x, style, mu), (zero_p, zero_s, mu), (zero_p, zero_s, zero_mu)]
        n = len(copies)
        prompt_in = torch.cat([c[0] for c in copies])
        style_in = torch.cat([c[1] for c in copies])
        mu_in = torch.cat([c[2] for c in copies])
        lens_in = x_lens.repeat(n)

        t, dt = t_span[0], t_span[1] - t_span[0]
        x[..., :plen] = 0
        for step in range(1, len(t_span)):
            v = self.estimator(x.repeat(n, 1, 1), prompt_in, lens_in, t.expand(n * k), style_in, mu_in).chunk(n)
            if random_voice:
                v = (1.0 + a) * v[0] - a * v[1]
            elif n == 1:
                v = v[0]
            elif a == 0:
                v = (1.0 + b) * v[0] - b * v[1]
            elif b == 0:
                v = (1.0 + a) * v[0] - a * v[1]
            else:
                v = (1.0 + a + b) * v[0] - a * v[2] - b * v[1]
            x = x + dt * v
            t = t + dt
            if step < len(t_span) - 1:
                dt = t_span[step + 1] - t
            x[:, :, :plen] = 0
        return x

    def inference(self, mu: torch.Tensor, x_lens: torch.Tensor, prompt: torch.Tensor, style: torch.Tensor,
                  n_steps: int, cfg_rates: Sequence[float] = (0.7, 0.7), random_voice: bool = False,
                  noise: torch.Tensor | None = None, generators: Sequence[torch.Generator] | None = None,
                  ) -> torch.Tensor:
        """solve_euler from fresh noise (or the given `noise`, e.g. recorded for a replay); shapes as there."""
        if noise is None:
            noise = draw_noise([int(n) for n in x_lens], prompt.size(1), generators, mu.device)
        t_span = cosine_t_span(n_steps, mu.device)
        return self.solve_euler(noise, x_lens, prompt, mu, style, t_span, cfg_rates, random_voice)
