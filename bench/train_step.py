"""Seconds per RVC training step and peak memory, full-size v2 40k f0 (random weights), and what that means for
200 epochs of 10 minutes of audio.

    OMP_WAIT_POLICY=PASSIVE python -m bench.train_step                 # CPU, fp32, batch 1 and 4
    python -m bench.train_step --device cuda --batches 1 4 8          # mixed precision (fp16 autocast)

One step is rvc.train.train_step (G forward, D step, G step) on batches of 3.7 s clips (RVC's slice length),
after untimed warm-up steps. Each batch size runs in its own process, so the peak RSS (CPU) or peak CUDA
allocation is that batch size's. Weights are random; only shapes matter for speed.
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from rvc.train import Item, TrainConfig, build_models, collate, train_step

CLIP_SECONDS = 3.7
DATASET_MINUTES, EPOCHS = 10, 200
CLIPS_PER_10_MIN = math.ceil(DATASET_MINUTES * 60 / 3.4) + 2  # 3.7 s pieces every 3.4 s, plus 2 mute lines


def one_batch_size(batch: int, device: str, steps: int, warmup: int) -> dict:
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        cfg = TrainConfig(Path(tmp), Path(tmp), "bench", "40k", device=device, fp16=True)
    hop, frames = cfg.data["hop_length"], int(CLIP_SECONDS * 100)
    rng = np.random.default_rng(0)
    items = [Item(rng.normal(size=(frames, 768)).astype(np.float32), rng.integers(1, 256, frames),
                  rng.uniform(80, 300, frames).astype(np.float32),
                  (0.3 * rng.normal(size=frames * hop)).astype(np.float32)) for _ in range(batch)]
    dev = torch.device(device)
    net_g, net_d = build_models(cfg, dev)
    optims = [torch.optim.AdamW(n.parameters(), cfg.learning_rate, betas=cfg.betas, eps=cfg.eps)
              for n in (net_g, net_d)]
    scaler = torch.amp.GradScaler(dev.type, enabled=dev.type == "cuda")
    wall, cpu = [], []
    for i in range(warmup + steps):
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t0, c0 = time.perf_counter(), time.process_time()
        train_step(collate(items, cfg.data, dev), net_g, net_d, *optims, scaler, cfg)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    peak = (torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
    return {"batch": batch, "seconds_per_step": statistics.median(wall), "cpu_seconds_per_step": statistics.median(cpu),
            "peak_gib": peak, "memory": "peak CUDA allocated" if dev.type == "cuda" else "peak RSS"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--steps", type=int, default=2, help="timed steps per batch size")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # child process: one batch size
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.one is not None:
        print(json.dumps(one_batch_size(args.one, args.device, args.steps, args.warmup)))
        return
    print(f"device {args.device}, torch {torch.__version__}, {args.threads} threads; v2 40k f0 full size, "
          f"{CLIP_SECONDS} s clips; 10 min of audio = {CLIPS_PER_10_MIN} items")
    print("batch | s/step (CPU s) | peak GiB | steps/epoch | minutes for 200 epochs")
    for batch in args.batches:
        out = subprocess.run([sys.executable, "-m", "bench.train_step", "--one", str(batch), "--device", args.device,
                              "--steps", str(args.steps), "--warmup", str(args.warmup), "--threads",
                              str(args.threads)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.splitlines()[-1])
        steps_per_epoch = math.ceil(CLIPS_PER_10_MIN / batch)
        minutes = EPOCHS * steps_per_epoch * r["seconds_per_step"] / 60
        print(f"{batch} | {r['seconds_per_step']:.2f} ({r['cpu_seconds_per_step']:.1f}) | {r['peak_gib']:.2f} "
              f"({r['memory']}) | {steps_per_epoch} | {minutes:,.0f}", flush=True)


if __name__ == "__main__":
    main()
