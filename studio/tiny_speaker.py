"""Tiny random-weight speaker encoders in the exact file layout of the released ones.

- ECAPA: the five files of speechbrain/spkrec-ecapa-voxceleb (hyperparams.yaml, the three
  .ckpt files, label_encoder.txt), the yaml keeping the released structure, hub
  `pretrained_path` included (the loader must override it), with small channel counts.
- Qwen3-TTS Base: config.json with its speaker_encoder_config and a model.safetensors holding
  `speaker_encoder.*` tensors (the only part the studio reads; the released file also holds the
  talker, which a tiny build leaves out).
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .engines.speaker import ECAPA_FILES

# The released hyperparams.yaml's structure, with tiny sizes (released: channels
# [1024, 1024, 1024, 1024, 3072], attention 128, lin_neurons 192, out_n_neurons 7205).
TINY_ECAPA_YAML = """\
# ECAPA-TDNN speaker embeddings (tiny random weights in the layout of speechbrain/spkrec-ecapa-voxceleb)
n_mels: 80
pretrained_path: speechbrain/spkrec-ecapa-voxceleb
out_n_neurons: 8

compute_features: !new:speechbrain.lobes.features.Fbank
    n_mels: !ref <n_mels>

mean_var_norm: !new:speechbrain.processing.features.InputNormalization
    norm_type: sentence
    std_norm: False

embedding_model: !new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN
    input_size: !ref <n_mels>
    channels: [32, 32, 32, 32, 96]
    kernel_sizes: [5, 3, 3, 3, 1]
    dilations: [1, 2, 3, 4, 1]
    attention_channels: 16
    lin_neurons: 24

classifier: !new:speechbrain.lobes.models.ECAPA_TDNN.Classifier
    input_size: 24
    out_neurons: !ref <out_n_neurons>

mean_var_norm_emb: !new:speechbrain.processing.features.InputNormalization
    norm_type: global
    std_norm: False

modules:
    compute_features: !ref <compute_features>
    mean_var_norm: !ref <mean_var_norm>
    embedding_model: !ref <embedding_model>
    mean_var_norm_emb: !ref <mean_var_norm_emb>
    classifier: !ref <classifier>

label_encoder: !new:speechbrain.dataio.encoder.CategoricalEncoder

pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer
    loadables:
        embedding_model: !ref <embedding_model>
        mean_var_norm_emb: !ref <mean_var_norm_emb>
        classifier: !ref <classifier>
        label_encoder: !ref <label_encoder>
    paths:
        embedding_model: !ref <pretrained_path>/embedding_model.ckpt
        mean_var_norm_emb: !ref <pretrained_path>/mean_var_norm_emb.ckpt
        classifier: !ref <pretrained_path>/classifier.ckpt
        label_encoder: !ref <pretrained_path>/label_encoder.txt
"""

TINY_QWEN_SPEAKER = {"mel_dim": 128, "enc_dim": 32, "enc_channels": [16, 16, 16, 16, 48],
                     "enc_kernel_sizes": [5, 3, 3, 3, 1], "enc_dilations": [1, 2, 3, 4, 1],
                     "enc_attention_channels": 16, "enc_res2net_scale": 4, "enc_se_channels": 16,
                     "sample_rate": 24000}


def build_tiny_ecapa(dest: Path, seed: int = 0) -> None:
    from hyperpyyaml import load_hyperpyyaml

    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    hp = load_hyperpyyaml(TINY_ECAPA_YAML)
    torch.save(hp["embedding_model"].state_dict(), dest / "embedding_model.ckpt")
    torch.save(hp["classifier"].state_dict(), dest / "classifier.ckpt")
    norm = hp["mean_var_norm_emb"]
    emb = torch.randn(16, 1, 24)
    norm(emb, torch.ones(16))  # a training-mode pass fills the global statistics the file stores
    norm._save(dest / "mean_var_norm_emb.ckpt")
    labels = hp["label_encoder"]
    labels.update_from_iterable([f"id1{i:04d}" for i in range(8)])
    labels.save(dest / "label_encoder.txt")
    (dest / "hyperparams.yaml").write_text(TINY_ECAPA_YAML)
    assert sorted(p.name for p in dest.iterdir() if p.is_file()) == sorted(ECAPA_FILES)


def build_tiny_qwen_base(dest: Path, seed: int = 0) -> None:
    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSSpeakerEncoder
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    encoder = Qwen3TTSSpeakerEncoder(Qwen3TTSSpeakerEncoderConfig(**TINY_QWEN_SPEAKER))
    state = {f"speaker_encoder.{k}": v.contiguous() for k, v in encoder.state_dict().items()}
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    config = {"architectures": ["Qwen3TTSForConditionalGeneration"], "model_type": "qwen3_tts",
              "tts_model_type": "base", "tts_model_size": "tiny", "speaker_encoder_config": TINY_QWEN_SPEAKER}
    (dest / "config.json").write_text(json.dumps(config, indent=2))
