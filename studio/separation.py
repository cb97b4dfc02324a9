"""Vocal isolation before training: a BS-RoFormer vocal model run offline with `audio-separator`.

Music or room noise under the voice would be learned as part of it. The model is on request
(`setup_models.py --only vocal-separator`): when it is not installed the step is skipped and the dataset
report says so. audio-separator looks a model up in UVR's model list (`download_checks.json`) and fetches
whatever is missing from the model folder; the entry installs the list with the model, so it finds all three
files locally and never reaches the network.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import soundfile as sf

from .audio import load_audio

ENTRY = "vocal-separator"  # configs/models.yaml
MODEL_DIR = "roformer"     # the hub repo's folder holding the three files
MODEL_NAME = "Roformer Model: BS-Roformer-Viperx-1297"  # its name in UVR's model list
MODEL_FILE = "model_bs_roformer_ep_317_sdr_12.9755.ckpt"
CONFIG_FILE = "model_bs_roformer_ep_317_sdr_12.9755.yaml"
MODEL_LIST = "download_checks.json"


class SeparationError(RuntimeError):
    """The installed vocal model could not be loaded or run; the message says what to do."""


def isolate_vocals(recordings: list[tuple[np.ndarray, int, str]], models_dir: Path,
                   work: Path) -> tuple[list[tuple[np.ndarray, int, str]], str]:
    """Each recording's vocal stem (same order and names), and a note for the dataset report."""
    model_dir = Path(models_dir) / ENTRY / MODEL_DIR
    missing = [f for f in (MODEL_FILE, CONFIG_FILE, MODEL_LIST) if not (model_dir / f).is_file()]
    if missing:
        return recordings, ("vocal isolation skipped: the BS-RoFormer vocal model is not installed "
                            f"(python setup_models.py --only {ENTRY})")
    try:
        from audio_separator.separator import Separator
    except ImportError:
        return recordings, ("vocal isolation skipped: the audio-separator package is not installed "
                            "(pip install -c constraints.txt -r requirements.txt)")
    work.mkdir(parents=True, exist_ok=True)
    separator = Separator(log_level=logging.WARNING, model_file_dir=str(model_dir), output_dir=str(work),
                          output_single_stem="Vocals")
    try:  # audio-separator ends the process (sys.exit) on a checkpoint it cannot load
        separator.load_model(model_filename=MODEL_FILE)
    except (Exception, SystemExit) as e:
        raise SeparationError(f"the vocal model in {model_dir} could not be loaded ({e}); reinstall it with "
                              f"`python setup_models.py --only {ENTRY}`") from None
    out = []
    for i, (wave, sr, name) in enumerate(recordings):
        source = work / f"{i:04d}.wav"
        sf.write(source, wave, sr, subtype="FLOAT")
        [stem] = separator.separate(str(source))
        vocals, vocals_sr = load_audio(work / Path(stem).name)
        out.append((vocals, vocals_sr, name))
    return out, f"vocals isolated with BS-RoFormer ({MODEL_FILE}, {len(out)} file(s))"
