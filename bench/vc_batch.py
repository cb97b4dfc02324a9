"""Seed-VC V2: K takes of one line in one batched call vs K upstream-style calls.

Usage:
    python bench/vc_batch.py [--device cpu|cuda] [--dtype float32|float16|bfloat16] [--steps 12] [--style]
                             [--max-k 4] [--seconds 4] [--repeats 2] [--ar-tokens N]
                             [--dims configs/seed_vc_tiny.yaml]

Random weights at release size (or the sizes of --dims). The baseline converts the K takes one after another and
prepares the reference again for every take, as upstream's convert_voice_with_streaming does (upstream also runs
HuBERT twice per clip, once per quantizer, which this baseline does not, so the ratio is conservative). The
batched run prepares the reference once (cached) and converts the K takes in one call. Prints seconds and ratios.
On a CPU, use fewer --steps (each step at release size is several seconds); the ratio is what matters. Random
weights seldom sample EOS, so the AR is capped (--ar-tokens) near the length a real model would produce.
"""
from __future__ import annotations

import argparse
import pathlib
import time

import numpy as np
import soundfile as sf
import torch

from seed_vc.audio import SAMPLE_RATE
from seed_vc.content import ContentEncoder, truncate_hubert
from seed_vc.converter import SeedVC
from seed_vc.tiny import build_modules, load_dims

SHARED_AUDIO = pathlib.Path(__file__).resolve().parents[1].parent / "shared" / "audio"


def load_audio(seconds: float) -> tuple[np.ndarray, np.ndarray, int]:
    """(source line, reference, sr): CMU ARCTIC clips from shared/audio, or synthetic harmonics if absent."""
    male, female = SHARED_AUDIO / "cmu_arctic_male_a0007.wav", SHARED_AUDIO / "cmu_arctic_female_a0009.wav"
    if male.is_file() and female.is_file():
        src, sr = sf.read(male, dtype="float32")
        ref, _ = sf.read(female, dtype="float32")
        src = np.tile(src, int(np.ceil(seconds * sr / src.size)))[: int(seconds * sr)]
        return src, ref, sr
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    src = (0.3 * np.sin(2 * np.pi * 140 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    return src, src[: 3 * SAMPLE_RATE].copy() * 0.8, SAMPLE_RATE


def build(dims: dict, device: str, dtype: torch.dtype) -> SeedVC:
    m = build_modules(dims)
    hubert = truncate_hubert(m["hubert"], dims.get("hubert_layers", 18))
    return SeedVC(m["cfm"], m["cfm_length_regulator"], m["ar"], m["ar_length_regulator"],
                  ContentEncoder(hubert, m["bsq2048"], m["bsq32"]), m["campplus"], m["bigvgan"], device, dtype)


def timed(device: str, fn) -> float:
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--steps", type=int, default=12, help="diffusion steps (upstream default 30, ours 12)")
    p.add_argument("--style", action="store_true", help="convert_style=True (AR path)")
    p.add_argument("--max-k", type=int, default=4)
    p.add_argument("--seconds", type=float, default=4.0, help="length of the line")
    p.add_argument("--dims", type=pathlib.Path, help="dims override file, e.g. configs/seed_vc_tiny.yaml")
    p.add_argument("--repeats", type=int, default=2, help="timings per variant (best kept)")
    p.add_argument("--ar-tokens", type=int, default=0,
                   help="cap on AR tokens per chunk (default 60 per second of line: random weights rarely emit EOS)")
    args = p.parse_args()

    torch.manual_seed(0)
    model = build(load_dims(args.dims) if args.dims else {}, args.device, getattr(torch, args.dtype))
    model.ar_max_new_tokens = args.ar_tokens or int(60 * args.seconds)
    src, ref, sr = load_audio(args.seconds)
    kwargs = dict(diffusion_steps=args.steps, convert_style=args.style)
    print(f"device={args.device} dtype={args.dtype} steps={args.steps} style={args.style} line={args.seconds:.1f}s "
          f"reference={ref.size / sr:.1f}s")
    model.convert([src], sr, model.prepare_reference(ref, sr), seeds=[0], **kwargs)  # warm-up
    for k in range(1, args.max_k + 1):
        seeds = list(range(k))

        def sequential() -> None:
            for seed in seeds:
                model._references.clear()  # upstream recomputes the reference for every call
                model.convert([src], sr, model.prepare_reference(ref, sr), seeds=[seed], **kwargs)

        def batched() -> None:
            model._references.clear()
            model.convert([src] * k, sr, model.prepare_reference(ref, sr), seeds=seeds, **kwargs)

        # alternate the two and keep each one's best time: shared CPUs make single timings noisy
        t_seq = t_bat = float("inf")
        for _ in range(args.repeats):
            t_seq = min(t_seq, timed(args.device, sequential))
            t_bat = min(t_bat, timed(args.device, batched))
        print(f"K={k}: sequential {t_seq:7.2f}s  batched {t_bat:7.2f}s  speed-up x{t_seq / t_bat:4.2f}  "
              f"per take {t_bat / k:6.2f}s")


if __name__ == "__main__":
    main()
