"""ContentVec content features through transformers' HubertModel (no fairseq), as RVC main and Applio do.

The weights are a transformers folder in the layout of lengyue233/content-vec-best: config.json plus
pytorch_model.bin holding the HubertModel keys and `final_proj.*`. Input is raw 16 kHz float audio, not
normalised; output is 50 frames/s, floor((n - 400) / 320) + 1 frames.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from transformers import HubertConfig, HubertModel

V1_LAYER = 9  # v1 models read layer 9 through final_proj (256-d); v2 the last layer (768-d)
VERSIONS = ("v1", "v2")


class HubertWithFinalProj(HubertModel):
    """HubertModel plus ContentVec's `final_proj` (hidden -> classifier_proj_size), which v1 models need."""

    def __init__(self, config: HubertConfig) -> None:
        super().__init__(config)
        self.final_proj = nn.Linear(config.hidden_size, config.classifier_proj_size)


def load_contentvec(path: str | Path, device: str | torch.device = "cpu",
                    dtype: torch.dtype = torch.float32) -> HubertWithFinalProj:
    """Load a ContentVec folder, refusing files whose keys do not all match (no silently random layers)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"ContentVec folder not found or incomplete: {path} needs config.json and "
                                f"pytorch_model.bin (lengyue233/content-vec-best layout)")
    model, info = HubertWithFinalProj.from_pretrained(path, output_loading_info=True, local_files_only=True)
    # masked_spec_embed is a training-only parameter; some exports omit it.
    missing = [k for k in info["missing_keys"] if k != "masked_spec_embed"]
    problems = missing + info["unexpected_keys"] + [str(m) for m in info["mismatched_keys"]]
    if problems:
        raise ValueError(f"{path} does not match a ContentVec HubertModel with final_proj: "
                         f"missing {missing[:3]}, unexpected {info['unexpected_keys'][:3]}, "
                         f"mismatched {info['mismatched_keys'][:3]}")
    return model.eval().to(device, dtype)


@torch.no_grad()
def extract_features(model: HubertWithFinalProj, audio16k: np.ndarray | torch.Tensor, version: str) -> torch.Tensor:
    """Raw 16 kHz mono audio [n] -> content features [1, frames, 256 (v1) | 768 (v2)] in the model's dtype."""
    if version not in VERSIONS:
        raise ValueError(f"unknown RVC model version {version!r}; expected 'v1' or 'v2'")
    param = next(model.parameters())
    x = torch.as_tensor(audio16k).reshape(1, -1).to(param.device, param.dtype)
    if version == "v2":
        return model(x).last_hidden_state
    hidden = model(x, output_hidden_states=True).hidden_states[V1_LAYER]  # [0] is the input embedding
    return model.final_proj(hidden)


def feature_dim(model: HubertWithFinalProj, version: str) -> int:
    """Feature width this ContentVec gives for a model version (tiny test models differ from 256/768)."""
    return model.config.classifier_proj_size if version == "v1" else model.config.hidden_size
