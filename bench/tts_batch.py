"""N takes in one batched Qwen3-TTS VoiceDesign call vs N sequential calls.

Every row runs exactly --frames talker steps (EOS set to the never-sampled pad id), so
batched and sequential runs do the same work. Times include the 12 Hz decode.

    python bench/tts_batch.py --model tiny --max-n 4
    python bench/tts_batch.py --model full --dtype bfloat16 --frames 8 --ns 1 2 --threads 2
    python bench/tts_batch.py --model-dir $STUDIO_HOME/models/qwen3-tts-voicedesign --device cuda

--model full is the release 1.7B VoiceDesign architecture with random weights, built in
memory (studio.tiny_qwen.build_fullsize_random_voicedesign); --model-dir loads a real one.
Peak memory is torch.cuda.max_memory_allocated on a GPU, and the peak RSS of this process
(sampled every 20 ms) on the CPU.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spin-waiting is ~100x slower when shared
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from studio.engines.tts import VoiceDesigner  # noqa: E402

TEXT = "Land ho! Bring her about, lads, and mind the reef."
VOICE = "a gravelly old sea captain, low and slow"


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak GPU allocation, or peak process RSS sampled in a background thread."""

    def __init__(self, device: str):
        self.cuda = device.startswith("cuda")
        self.peak = 0

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        else:
            self.peak, self._stop = rss_bytes(), threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, rss_bytes())

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, rss_bytes())


def timed(fn, device: str):
    with PeakMemory(device) as mem:
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return out, wall, cpu, mem.peak


def load(args) -> VoiceDesigner:
    if args.model_dir:
        return VoiceDesigner.load(Path(args.model_dir), device=args.device, quantize=args.quantize)
    if args.model == "tiny":
        from studio.tiny_qwen import build_tiny_voicedesign

        path = Path(tempfile.mkdtemp(prefix="qwen3_tts_tiny_"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        build_tiny_voicedesign(path)
        return VoiceDesigner.load(path, device=args.device, quantize=args.quantize)
    if args.quantize != "none":
        sys.exit("--quantize int8 loads through from_pretrained: use --model tiny or --model-dir.")
    from studio.tiny_qwen import build_fullsize_random_voicedesign

    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32"))
    tts = build_fullsize_random_voicedesign(dtype=dtype, device=args.device)
    return VoiceDesigner(tts, source="random 1.7B VoiceDesign (in memory)", device=args.device, dtype=dtype)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", choices=["tiny", "full"], default="tiny")
    p.add_argument("--model-dir", help="a real VoiceDesign directory instead of a random model")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], help="--model full only (default: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--quantize", choices=["none", "int8"], default="none")
    p.add_argument("--frames", type=int, default=8, help="codec frames per take (12.5 per second)")
    p.add_argument("--ns", type=int, nargs="+", default=[1, 2, 3, 4], help="takes per request")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=1, help="report the fastest of this many runs")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    designer = load(args)
    info = designer.info()
    print(f"# {info['model_dir']}: {info['parameters'] / 1e6:.1f} M params + "
          f"{info['speech_tokenizer_parameters'] / 1e6:.1f} M codec, {info['device']}, {info['dtype']}, "
          f"quantization {info['quantization']}, {args.threads} threads; built/loaded in "
          f"{time.perf_counter() - t0:.1f} s; peak RSS so far {rss_bytes() / 2**30:.2f} GiB")
    kw = dict(max_new_tokens=args.frames + 1, fixed_length=True)
    designer.design(TEXT, VOICE, seed=0, **kw)  # warm-up: first-call allocations and lazy inits

    print(f"\n{args.frames} frames ({args.frames / 12.5:.2f} s of audio) per take; times include decode\n")
    print("| N | sequential N x 1: wall s (CPU s) | one call, batch N: wall s (CPU s) "
          "| batched / sequential: wall (CPU) | s per take, batched | peak memory GiB (seq / batched) |")
    print("|---|---|---|---|---|---|")
    for n in args.ns:
        def sequential():
            return [designer.design(TEXT, VOICE, seed=i, **kw)[0] for i in range(n)]

        def batched():
            return designer.design(TEXT, VOICE, n=n, seed=0, **kw)

        seq, seq_wall, seq_cpu, seq_mem = min((timed(sequential, args.device) for _ in range(args.repeats)),
                                              key=lambda r: r[1])
        bat, bat_wall, bat_cpu, bat_mem = min((timed(batched, args.device) for _ in range(args.repeats)),
                                              key=lambda r: r[1])
        # A random full-size talker may still sample the real EOS: that take is cut short
        # afterwards, but every row ran all the steps, so the work is the same.
        assert len(seq) == len(bat) == n and all(len(w) <= args.frames * 1920 for w in seq + bat)
        print(f"| {n} | {seq_wall:.2f} ({seq_cpu:.2f}) | {bat_wall:.2f} ({bat_cpu:.2f}) "
              f"| {bat_wall / seq_wall:.2f} ({bat_cpu / seq_cpu:.2f}) | {bat_wall / n:.2f} "
              f"| {seq_mem / 2**30:.2f} / {bat_mem / 2**30:.2f} |", flush=True)


if __name__ == "__main__":
    main()
