"""Cast & Direct: K takes of a ~5 s line, time to first take and total, our pipeline vs a Vocalino-style baseline.

Both run in the same process with the same models, after one warm-up:
- baseline (Vocalino's /pipeline/ranked-stream): one batched VoiceDesign call; then Seed-VC take by take, the
  reference prepared again for every take; a take is out when its conversion ends; then speaker-similarity ranking;
- ours (`studio.direct.Director`, the real code path: take store, similarity per take, ranking), once per
  conversion schedule: "each" (one Seed-VC call per take), "first" (take 1 alone, then the rest in one call) and
  "batch" (one call for all K); the cast reference is prepared once and cached.

    python bench/direct.py                          # CPU: tiny TTS, full-size random Seed-VC, 2 diffusion steps
    python bench/direct.py --tts full --steps 12    # the release 1.7B VoiceDesign architecture (random weights)
    python bench/direct.py --device cuda --tts full --steps 12 --dtype bfloat16

The TTS stage is the same single batched call in both pipelines; what differs is conversion and ranking. Every TTS
row runs exactly --seconds of frames (EOS set to the never-sampled pad id). Speaker similarity uses resemblyzer's
real weights. Prints seconds and the ratios ours / baseline.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: spin-waiting is ~100x slower when shared
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.vc_batch import build as build_seed_vc  # noqa: E402
from bench.vc_batch import load_audio as arctic_audio  # noqa: E402
from seed_vc.tiny import load_dims  # noqa: E402
from studio.audio import REFERENCE_SR, prepare_reference  # noqa: E402
from studio.direct import SCHEDULES, DirectOptions, Director  # noqa: E402
from studio.engines.speaker import ResemblyzerEncoder, SpeakerSimilarity  # noqa: E402
from studio.engines.tts import VoiceDesigner  # noqa: E402
from studio.engines.vc import SeedVCConverter  # noqa: E402
from studio.library import Library  # noqa: E402
from studio.takes import TakeStore  # noqa: E402

LINE = "Who goes there? Step into the light where I can see you, or I swear I will ring the bell."
DIRECTION = "whisper with trembling fear"


class InMemorySeedVC(SeedVCConverter):
    """The studio's Seed-VC adapter around a model built in memory (random weights) instead of loaded files."""

    def __init__(self, model, default_steps: int) -> None:
        from seed_vc import SAMPLE_RATE

        self.model, self.default_steps, self.sample_rate = model, default_steps, SAMPLE_RATE


class BenchStudio:
    """What the Director uses of a Studio, with models built in memory and a throw-away home."""

    def __init__(self, home: Path, designer: VoiceDesigner, seed_vc: InMemorySeedVC, speaker: SpeakerSimilarity,
                 steps: int) -> None:
        self.takes, self.library = TakeStore(home), Library(home)
        self.rvc_voices = None
        self.settings = argparse.Namespace(default_diff_steps=steps)
        self._designer, self._seed_vc, self._speaker = designer, seed_vc, speaker

    def designer(self) -> VoiceDesigner:
        return self._designer

    def seed_vc(self) -> InMemorySeedVC:
        return self._seed_vc

    def speaker(self) -> SpeakerSimilarity:
        return self._speaker


def load_designer(args) -> VoiceDesigner:
    if args.tts == "tiny":
        from studio.tiny_qwen import build_tiny_voicedesign

        path = Path(tempfile.mkdtemp(prefix="qwen3_tts_tiny_"))
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        build_tiny_voicedesign(path)
        return VoiceDesigner.load(path, device=args.device)
    from studio.tiny_qwen import build_fullsize_random_voicedesign

    dtype = getattr(torch, args.dtype or ("bfloat16" if args.device.startswith("cuda") else "float32"))
    tts = build_fullsize_random_voicedesign(dtype=dtype, device=args.device)
    return VoiceDesigner(tts, source="random 1.7B VoiceDesign (in memory)", device=args.device, dtype=dtype)


class Clock:
    """Wall and process-CPU seconds since start; CPU time is the steadier figure on a shared machine."""

    def __init__(self, device: str) -> None:
        self.device, self.wall, self.cpu = device, time.perf_counter(), time.process_time()

    def __call__(self) -> tuple[float, float]:
        if self.device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - self.wall, time.process_time() - self.cpu


Times = tuple[tuple[float, float], tuple[float, float]]  # (first take, all ranked), each (wall s, CPU s)


def baseline(studio: BenchStudio, reference: tuple[np.ndarray, int], k: int, seed: int, tts: dict,
             steps: int, device: str) -> Times:
    """Vocalino-style: batched TTS, then conversion take by take with the reference recomputed, then ranking."""
    clock = Clock(device)
    designer, model = studio.designer(), studio.seed_vc().model
    waves = designer.design(LINE, DIRECTION, n=k, seed=seed, **tts)
    first, converted = None, []
    for i, wave in enumerate(waves):
        model._references.clear()  # Vocalino prepares the reference in every /vc call
        ref = model.prepare_reference(*reference)
        converted.append(model.convert([wave], designer.sample_rate, ref, diffusion_steps=steps, seeds=[seed + i])[0])
        first = first or clock()
    scores = studio.speaker().similarity(reference, [(w, studio.seed_vc().sample_rate) for w in converted])
    ranking = sorted(range(k), key=lambda i: -scores[i])
    total = clock()
    assert len(ranking) == k
    return first, total


def ours(studio: BenchStudio, k: int, seed: int, options: DirectOptions, device: str) -> Times:
    studio.seed_vc().model._references.clear()  # the first run of a cast member prepares its reference once
    clock, first = Clock(device), None
    for event in Director(studio).direct(LINE, DIRECTION, "Keeper", k=k, seed=seed, language="english",
                                         project="bench", options=options):
        if event.kind == "take":
            first = first or clock()
    return first, clock()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tts", choices=["tiny", "full"], default="tiny", help="VoiceDesign model (full: 1.7B random)")
    p.add_argument("--dtype", choices=["float32", "bfloat16"], help="full TTS dtype (default bf16 on CUDA)")
    p.add_argument("--vc-dims", type=Path, help="Seed-VC dims override (default: release sizes)")
    p.add_argument("--steps", type=int, default=2, help="Seed-VC diffusion steps (studio default 12)")
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0, help="length of every TTS take")
    p.add_argument("--schedules", nargs="+", default=list(SCHEDULES), choices=SCHEDULES)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    t0 = time.perf_counter()
    torch.manual_seed(0)
    designer = load_designer(args)
    vc_dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    model = build_seed_vc(load_dims(args.vc_dims) if args.vc_dims else {}, args.device, vc_dtype)
    speaker = SpeakerSimilarity(ResemblyzerEncoder(args.device), cache_size=32)
    home = Path(tempfile.mkdtemp(prefix="bench_direct_"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    studio = BenchStudio(home, designer, InMemorySeedVC(model, args.steps), speaker, args.steps)
    male, _, sr = arctic_audio(4.0)  # the 4 s CMU ARCTIC male clip (the female one is under 3 s of speech)
    ref = prepare_reference(male, sr)
    studio.library.add("Keeper", ref, REFERENCE_SR, "a weathered lighthouse keeper")
    reference = (ref, REFERENCE_SR)
    frames = int(round(args.seconds * 12.5))
    tts = {"max_new_tokens": frames + 1, "fixed_length": True}
    print(f"# TTS {designer.source} ({designer.info()['parameters'] / 1e6:.1f} M), Seed-VC "
          f"{'release sizes' if not args.vc_dims else args.vc_dims} random weights, {args.steps} diffusion steps, "
          f"resemblyzer; {args.device}, {args.threads} threads; K={args.k}, {frames} frames "
          f"({frames / 12.5:.2f} s) per take; built in {time.perf_counter() - t0:.0f} s")

    # warm-up: first-call allocations and lazy inits in every model
    list(Director(studio).direct(LINE, DIRECTION, "Keeper", k=1, seed=0, project="warm-up", options=DirectOptions(
        tts={"max_new_tokens": 9, "fixed_length": True}, diffusion_steps=1)))
    base = baseline(studio, reference, args.k, 1, tts, args.steps, args.device)
    print("\n| pipeline | first take: wall s (CPU s) | all K ranked: wall s (CPU s) "
          "| first / baseline: wall (CPU) | total / baseline: wall (CPU) |")
    print("|---|---|---|---|---|")
    rows = [("baseline (Vocalino-style)", base)] + [
        (f"ours, schedule={schedule}", None) for schedule in args.schedules]
    for name, times in rows:
        times = times or ours(studio, args.k, 1, DirectOptions(schedule=name.split("=")[1], tts=tts), args.device)
        (fw, fc), (tw, tc) = times
        (bfw, bfc), (btw, btc) = base
        print(f"| {name} | {fw:.1f} ({fc:.1f}) | {tw:.1f} ({tc:.1f}) | {fw / bfw:.2f} ({fc / bfc:.2f}) "
              f"| {tw / btw:.2f} ({tc / btc:.2f}) |", flush=True)


if __name__ == "__main__":
    main()
