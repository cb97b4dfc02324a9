"""Voice conversion backends behind one interface, so Cast & Direct and Convert can use either.

A `VoiceConverter` turns K source takes into one target voice in a single call:
Seed-VC V2 targets a reference recording (a cast member), RVC a trained model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..audio import resample


@dataclass(frozen=True)
class Voice:
    """Whom to sound like: a reference recording (Seed-VC) or an RVC model with its optional index."""
    reference: tuple[np.ndarray, int] | None = None
    rvc_model: Path | None = None
    rvc_index: Path | None = None


@dataclass
class Conversion:
    sample_rate: int
    takes: list[np.ndarray]
    notes: list[str] = field(default_factory=list)  # what the backend chose, shown to the user


class VoiceConverter(Protocol):
    name: str

    def convert(self, sources: list[np.ndarray], sr: int, voice: Voice, **options) -> Conversion:
        """K mono float32 sources at `sr` -> K takes in `voice`."""


def _dtype_for(device: str) -> torch.dtype:
    """Half precision on GPU (bf16 where supported), fp32 on CPU."""
    if device.startswith("cuda"):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


class SeedVCConverter:
    """Seed-VC V2: zero-shot timbre (and optionally style) of a reference, K takes in one batched pass."""
    name = "seed-vc"

    def __init__(self, paths: dict[str, Path], device: str, dims: dict | None, cache_size: int,
                 default_steps: int) -> None:
        import seed_vc

        self.default_steps, self.sample_rate = default_steps, seed_vc.SAMPLE_RATE
        self.model = seed_vc.load_model(paths, device=device, dtype=_dtype_for(device), dims=dims,
                                        reference_cache_size=max(cache_size, 1))

    def convert(self, sources: list[np.ndarray], sr: int, voice: Voice, diffusion_steps: int | None = None,
                seeds: list[int] | None = None, **options) -> Conversion:
        if voice.reference is None:
            raise ValueError("Seed-VC needs a reference voice: pick a cast member or upload a reference")
        reference = self.model.prepare_reference(*voice.reference)
        steps = int(diffusion_steps or self.default_steps)
        takes = self.model.convert(sources, sr, reference, diffusion_steps=steps, seeds=seeds, **options)
        return Conversion(self.sample_rate, takes, [f"Seed-VC V2, {steps} diffusion steps"])


class RVCConverter:
    """RVC: a trained voice model (.pth + optional .index); one pipeline per voice, kept loaded."""
    name = "rvc"

    def __init__(self, contentvec_dir: Path, rmvpe_path: Path | None, device: str) -> None:
        from rvc.content import load_contentvec

        self.device = device
        self.contentvec = load_contentvec(contentvec_dir, device=device)
        self.rmvpe_path = rmvpe_path if rmvpe_path and Path(rmvpe_path).is_file() else None
        self._current: tuple[tuple, object] | None = None  # one voice kept loaded: switching reloads

    def _pipeline(self, voice: Voice):
        from rvc.index import load_index
        from rvc.model_file import load_model
        from rvc.pipeline import Pipeline

        key = (voice.rvc_model, voice.rvc_index)
        if self._current is None or self._current[0] != key:
            model = load_model(voice.rvc_model, device=self.device)
            index = load_index(voice.rvc_index, dim=model.net.enc_p.in_channels) if voice.rvc_index else None
            self._current = key, Pipeline(model, self.contentvec, index, self.rmvpe_path, self.device)
        return self._current[1]

    def convert(self, sources: list[np.ndarray], sr: int, voice: Voice, seeds: list[int] | None = None,
                **options) -> Conversion:
        """seeds: one per source; the synthesizer's noise then depends on it alone (takes reproducible)."""
        from rvc.pipeline import SAMPLE_RATE, ConvertOptions

        if voice.rvc_model is None:
            raise ValueError("RVC needs a voice model: pick one from the RVC voices")
        if seeds is not None and len(seeds) != len(sources):
            raise ValueError(f"got {len(seeds)} seeds for {len(sources)} sources")
        pipeline, opts = self._pipeline(voice), ConvertOptions(**options)
        results = []
        for i, source in enumerate(sources):
            # the synthesizer draws its noise from the global RNG: fork it so a seed fixes one take only
            cuda = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
            with torch.random.fork_rng(devices=cuda, enabled=seeds is not None):
                if seeds is not None:
                    torch.manual_seed(int(seeds[i]))
                results.append(pipeline(resample(source, sr, SAMPLE_RATE), opts))
        method = results[0].f0_method
        notes = [f"pitch: {method}" if method else "this model has no pitch guidance",
                 "index: used" if voice.rvc_index and opts.index_rate > 0 else "index: not used"]
        return Conversion(results[0].sample_rate, [r.audio for r in results], notes)
