"""Scene mode: a 10-line, 2-character scene, K takes per line, cross-line batching vs line by line.

Usage:
    python bench/scene.py [--lines 10] [--k 3] [--frames 12] [--steps 4] [--device cpu|cuda]
                          [--home DIR]   # a STUDIO_HOME with models; default: tiny models built in a temp dir

Both modes render the same scene through `Director.direct_lines` (TTS, conversion to each character's cast
voice, similarity) with the same seeds, in the same process:
  - cross-line: ONE run with every line (a character's lines side by side), so the TTS takes of several lines
    share each batched call (the engine's row bound: engines.tts.MAX_SAMPLES rows per call), as Scene mode does;
  - line by line: one run per line (K rows per TTS call).
Every take is a fixed number of codec frames (--frames; fixed_length) so both modes do the same work per take,
and Seed-VC uses --steps diffusion steps. Intelligibility scoring and the pick cost the same per take in both
modes and are not timed. Prints seconds per mode, TTS calls, and the ratio.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED_AUDIO = ROOT.parent / "shared" / "audio"
LINES = ["You came back.", "I never left.", "Then where were you all winter?", "Closer than you think.",
         "That is not an answer.", "It is the only one I have.", "Sit down, the tea is getting cold.",
         "I will stand, thank you.", "Suit yourself, you always do.", "And you always want to see it in the "
         "superlative degree."]


def studio_for(home: Path, device: str):
    from studio.service import Studio
    from studio.settings import load_settings

    return Studio(load_settings(env={"STUDIO_HOME": str(home), "TTS_DEVICE": device, "ASR_MODEL": "pocketsphinx"}))


def cast(studio, work: Path) -> None:
    """Two cast members from the CMU ARCTIC clips (a tone pair if shared/ is absent)."""
    if {m["name"] for m in studio.cast_list()} >= {"Ada", "Max"}:
        return
    for name, clip in (("Ada", "cmu_arctic_female_a0009.wav"), ("Max", "cmu_arctic_male_a0007.wav")):
        path = SHARED_AUDIO / clip
        if path.is_file():
            wave, sr = sf.read(path, dtype="float32")
        else:
            sr = 16000
            wave = (0.3 * np.sin(2 * np.pi * (180 if name == "Ada" else 120) * np.arange(3 * sr) / sr)).astype(
                np.float32)
        ref = work / f"{name}.wav"
        sf.write(ref, np.concatenate([wave, wave]), sr)   # 3 s of speech at least after trimming
        studio.cast_save(ref, name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=10)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--frames", type=int, default=12, help="codec frames per take (12.5 frames = 1 s)")
    ap.add_argument("--steps", type=int, default=4, help="Seed-VC diffusion steps")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--home", type=Path, help="STUDIO_HOME with models (default: tiny models in a temp dir)")
    args = ap.parse_args()

    from studio.direct import DirectOptions, LineSpec
    from studio.engines.tts import MAX_SAMPLES

    work = Path(tempfile.mkdtemp(prefix="bench_scene_"))
    home = args.home
    if home is None:
        import setup_models

        home = work / "home"
        os.environ["STUDIO_HOME"] = str(home)
        assert setup_models.main(["--tiny"]) == 0
    studio = studio_for(home, args.device)
    cast(studio, work)
    options = DirectOptions(diffusion_steps=args.steps, tts={"max_new_tokens": args.frames + 1, "fixed_length": True})
    # two characters alternate, as in a dialogue; Scene mode orders a character's lines side by side
    specs = [LineSpec(LINES[i % len(LINES)], "calm" if i % 2 else "warm", "Max" if i % 2 else "Ada", "seed-vc")
             for i in range(args.lines)]
    specs = sorted(specs, key=lambda s: s.cast_member)
    director = studio.director
    director.scorer = None   # similarity only: the same per-take cost in both modes

    def run(groups: list[list[LineSpec]], project: str) -> tuple[float, int]:
        start, calls = time.perf_counter(), 0
        for group in groups:
            for event in director.direct_lines(group, args.k, 1234, project, options=options):
                calls += event.kind == "tts"
        return time.perf_counter() - start, calls

    run([specs[:1]], "warm-up")   # loads every model once
    cross, cross_calls = run([specs], "cross-line")
    alone, alone_calls = run([[s] for s in specs], "line-by-line")
    takes = args.lines * args.k
    print(f"device {args.device}; {args.lines} lines x K={args.k} = {takes} takes of {args.frames} frames; "
          f"Seed-VC {args.steps} steps; TTS row bound {MAX_SAMPLES}; models: {'tiny' if studio.tiny else home}")
    print(f"cross-line batching: {cross:7.1f} s  ({cross_calls} TTS calls)")
    print(f"line by line:        {alone:7.1f} s  ({alone_calls} TTS calls)")
    print(f"speed-up: {alone / cross:.2f}x")


if __name__ == "__main__":
    main()
