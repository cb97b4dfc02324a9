"""Vocal isolation before training: a BS-RoFormer vocal model run offline with `audio-separator`.

Music or room noise under the voice would be learned as part of it. The separator is optional: when the
package or its model is not installed the step is skipped and the dataset report says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import load_audio

ENTRY = "vocal-separator"  # configs/models.yaml
MODEL_FILE = "model_bs_roformer_ep_317_sdr_12.9755.ckpt"


def isolate_vocals(recordings: list[tuple[np.ndarray, int, str]], models_dir: Path,
                   work: Path) -> tuple[list[tuple[np.ndarray, int, str]], str]:
    """Each recording's vocal stem (same order and names), and a note for the dataset report."""
    model_dir = Path(models_dir) / ENTRY
    if not (model_dir / MODEL_FILE).is_file():
        return recordings, ("vocal isolation skipped: the BS-RoFormer vocal model is not installed "
                            f"(python setup_models.py --only {ENTRY})")
    try:
        from audio_separator.separator import Separator
    except ImportError:
        return recordings, "vocal isolation skipped: the audio-separator package is not installed"
    work.mkdir(parents=True, exist_ok=True)
    separator = Separator(model_file_dir=str(model_dir), output_dir=str(work), output_single_stem="Vocals")
    separator.load_model(model_filename=MODEL_FILE)
    out = []
    for i, (wave, sr, name) in enumerate(recordings):
        source = work / f"{i:04d}.wav"
        sf.write(source, wave, sr, subtype="FLOAT")
        [stem] = separator.separate(str(source))
        vocals, vocals_sr = load_audio(work / Path(stem).name)
        out.append((vocals, vocals_sr, name))
    return out, f"vocals isolated with BS-RoFormer ({MODEL_FILE})"
