"""Length regulators: content codes -> conditioning frames.

The CFM regulator embeds discrete content codes (50 Hz), stretches them with nearest-neighbour interpolation to
the mel frame count and smooths them with four [Conv1d k3, GroupNorm(1), Mish] blocks. The AR regulator has no
convolutions and is an embedding lookup only. Attribute names mirror the `net.length_regulator` checkpoint keys
(`embedding`, `model.{0,1,3,4,6,7,9,10}`, `mask_token`).

Upstream stretches a whole batch to `ylens.max()` with one ratio, so a padded row gets the wrong content per frame.
Here every row is interpolated to its own length and then right-padded, which makes a row in a batch equal the
same row run alone.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class InterpolateRegulator(nn.Module):
    """Code embedding, optional per-row nearest stretch and conv smoothing.

    Args:
        channels: embedding and conv width (512 for the CFM, 768 for the AR release models).
        codebook_size: number of content codes (2048 wide, 32 narrow).
        n_blocks: number of [Conv1d, GroupNorm, Mish] blocks; 4 for the CFM regulator, 0 for the AR one
            (upstream: one block per entry of `sampling_ratios`, whose values are otherwise unused).
    """

    def __init__(self, channels: int, codebook_size: int, n_blocks: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(n_blocks):
            layers += [nn.Conv1d(channels, channels, 3, 1, 1), nn.GroupNorm(1, channels), nn.Mish()]
        # Upstream appends an Identity (in == out channels); it has no weights and keeps the key numbering.
        layers.append(nn.Identity())
        self.model = nn.Sequential(*layers)
        self.embedding = nn.Embedding(codebook_size, channels)
        # Used only in training (masked content); kept so the checkpoint loads strictly.
        self.mask_token = nn.Parameter(torch.zeros(1, channels))
        self.interpolate = n_blocks > 0

    def forward(self, codes: torch.Tensor, ylens: torch.Tensor | None = None,
                code_lens: torch.Tensor | None = None) -> torch.Tensor:
        """Embed codes and, for the CFM regulator, stretch each row to its own frame count.

        Args:
            codes: (B, N) integer content codes, right-padded.
            ylens: (B,) target frame counts; required when the regulator interpolates.
            code_lens: (B,) valid codes per row; defaults to N for every row.
        Returns:
            (B, max(ylens), C) conditioning, zero past each row's ylen (interpolating regulator), or
            (B, N, C) embeddings (AR regulator).
        """
        x = self.embedding(codes)
        if not self.interpolate:
            return x
        if ylens is None:
            raise ValueError("the interpolating regulator needs ylens")
        n_rows, n_codes = codes.shape
        if code_lens is None:
            code_lens = torch.full((n_rows,), n_codes, dtype=torch.long)
        y_max = int(ylens.max())
        out = x.new_zeros(n_rows, y_max, x.size(-1))
        for i in range(n_rows):
            y_len, c_len = int(ylens[i]), int(code_lens[i])
            row = x[i:i + 1, :c_len].transpose(1, 2)
            row = F.interpolate(row, size=y_len, mode="nearest")
            # The convs see zeros past the row's end, exactly as a single unpadded call does.
            out[i, :y_len] = self.model(row)[0].transpose(0, 1)
        return out
