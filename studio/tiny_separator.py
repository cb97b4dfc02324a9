"""A tiny random-weight BS-RoFormer vocal model in the exact on-disk layout audio-separator loads offline.

The released model is three files in one folder (`separation.MODEL_DIR`): the checkpoint (a plain state_dict
of audio-separator's BSRoformer), its yaml (audio/model/training/inference sections, `freqs_per_bands` as a
python tuple) and UVR's `download_checks.json` model list, which names the checkpoint and its yaml so that
audio-separator finds everything locally and downloads nothing. The tiny build keeps every key and the
released band layout (2048-point STFT, 62 bands over 1025 bins) with small widths (released: dim 512,
depth 12, heads 8) and less work per second of audio (released: hop 441, dim_t 801; one overlap pass), so a
minute of speech separates in seconds on a CPU.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

from .separation import CONFIG_FILE, MODEL_DIR, MODEL_FILE, MODEL_LIST, MODEL_NAME

# Released band layout: 24x2, 12x4, 8x12, 8x24, 8x48, 128, 129 bins (sum 1025 = 2048 / 2 + 1).
FREQS_PER_BANDS = [2] * 24 + [4] * 12 + [12] * 8 + [24] * 8 + [48] * 8 + [128, 129]
TINY_YAML = """\
audio:
  chunk_size: 352256
  dim_f: 1024
  dim_t: 345
  hop_length: 1024
  n_fft: 2048
  num_channels: 2
  sample_rate: 44100
  min_mean_abs: 0.000

model:
  dim: 8
  depth: 1
  stereo: true
  num_stems: 1
  time_transformer_depth: 1
  freq_transformer_depth: 1
  linear_transformer_depth: 0
  freqs_per_bands: !!python/tuple
{bands}
  dim_head: 4
  heads: 2
  attn_dropout: 0.1
  ff_dropout: 0.1
  flash_attn: true
  dim_freqs_in: 1025
  stft_n_fft: 2048
  stft_hop_length: 1024
  stft_win_length: 2048
  stft_normalized: false
  mask_estimator_depth: 2
  multi_stft_resolution_loss_weight: 1.0
  multi_stft_resolutions_window_sizes: !!python/tuple
  - 4096
  - 2048
  - 1024
  - 512
  - 256
  multi_stft_hop_size: 147
  multi_stft_normalized: false

training:
  batch_size: 2
  instruments:
  - vocals
  - other
  target_instrument: vocals
  use_amp: true

inference:
  batch_size: 1
  dim_t: 345
  num_overlap: 1
""".format(bands="\n".join(f"  - {n}" for n in FREQS_PER_BANDS))


def build_tiny_separator(dest: Path, seed: int = 0) -> None:
    """Write the tiny model into dest (an entry folder: dest/MODEL_DIR/<the three files>)."""
    from audio_separator.separator.uvr_lib_v5.roformer.bs_roformer import BSRoformer

    folder = Path(dest) / MODEL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / CONFIG_FILE).write_text(TINY_YAML)
    cfg = yaml.load(TINY_YAML, Loader=yaml.FullLoader)["model"]
    keys = ("dim", "depth", "stereo", "num_stems", "time_transformer_depth", "freq_transformer_depth",
            "freqs_per_bands", "dim_head", "heads", "flash_attn", "stft_n_fft", "stft_hop_length", "stft_win_length")
    torch.manual_seed(seed)
    model = BSRoformer(**{k: cfg[k] for k in keys})
    torch.save(model.state_dict(), folder / MODEL_FILE)
    lists = ("vr_download_list", "mdx_download_list", "mdx_download_vip_list", "demucs_download_list",
             "mdx23c_download_list", "mdx23c_download_vip_list")
    checks = {name: {} for name in lists} | {"roformer_download_list": {MODEL_NAME: {MODEL_FILE: CONFIG_FILE}}}
    (folder / MODEL_LIST).write_text(json.dumps(checks, indent=1))
