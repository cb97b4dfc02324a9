"""Real-time factor of RVC conversion with full-size random-weight models (v2, 40 kHz, f0).

    OMP_WAIT_POLICY=PASSIVE python -m bench.rvc_convert      # CPU, fp32, 10 s and 60 s, fcpe and harvest
    python -m bench.rvc_convert --seconds 10 --f0 fcpe
    python -m bench.rvc_convert --device cuda --dtype float16

RTF = conversion wall time / audio duration (< 1 is faster than real time). Model loading and index building
are not timed; one untimed warm-up conversion of 2 s runs first. Weights are random, so only speed is
meaningful: the network shapes (ContentVec hubert-base, the released v2 40k synthesizer) are the real ones.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from transformers import HubertConfig

from rvc.content import HubertWithFinalProj
from rvc.index import build_index, load_index
from rvc.model_file import load_model, save_model
from rvc.pipeline import SAMPLE_RATE, ConvertOptions, Pipeline
from rvc.pitch import extract_f0
from rvc.synthesizer import Synthesizer, release_config

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def speech_like(seconds: float, seed: int = 0) -> np.ndarray:
    """A voiced harmonic signal with gliding pitch and 4 Hz syllable gaps, so f0 and windowing have work."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    f0 = 140 + 40 * np.sin(2 * np.pi * 0.3 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 15))
    envelope = np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    return (0.2 * voiced * envelope + 0.005 * rng.normal(size=t.shape)).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--f0", nargs="+", default=["fcpe", "harvest"], help="f0 methods to time")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--index-vectors", type=int, default=8000, help="random 768-d vectors in the index")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = DTYPES[args.dtype]

    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        save_model(Path(tmp) / "voice.pth", Synthesizer(release_config("v2", "40k"), "v2", True, posterior=False))
        model = load_model(Path(tmp) / "voice.pth")
        vectors = np.random.default_rng(0).normal(size=(args.index_vectors, 768)).astype(np.float32)
        index = load_index(build_index(vectors, Path(tmp) / "voice.index"))
    contentvec = HubertWithFinalProj(HubertConfig())  # content-vec-best's shape: hubert-base + final_proj
    pipe = Pipeline(model, contentvec, index, device=args.device, dtype=dtype)
    n_params = sum(p.numel() for p in model.net.parameters())
    print(f"device {args.device} dtype {args.dtype} threads {args.threads} | synthesizer {n_params / 1e6:.1f} M "
          f"params, ContentVec {sum(p.numel() for p in contentvec.parameters()) / 1e6:.1f} M, "
          f"index {args.index_vectors} x 768")
    pipe(speech_like(2), ConvertOptions(f0_method=args.f0[0]))  # warm-up: loads fcpe, first-call overheads

    print(f"{'audio':>6} {'f0':>8} {'f0 s':>7} {'total s':>8} {'RTF':>6}")
    for seconds in args.seconds:
        audio = speech_like(seconds)
        for method in args.f0:
            start = time.perf_counter()
            extract_f0(audio, method)  # the f0 share alone (the pipeline runs it on 2 s more: the padding)
            f0_time = time.perf_counter() - start
            _sync(args.device)
            start = time.perf_counter()
            result = pipe(audio, ConvertOptions(f0_method=method))
            _sync(args.device)
            total = time.perf_counter() - start
            assert result.audio.shape[0] == round(seconds * result.sample_rate)
            print(f"{seconds:>5.0f}s {method:>8} {f0_time:>7.2f} {total:>8.2f} {total / seconds:>6.2f}", flush=True)


def _sync(device: str) -> None:
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()


if __name__ == "__main__":
    main()
