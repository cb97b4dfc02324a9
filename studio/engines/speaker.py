"""Speaker similarity: how much a take sounds like a cast member.

Three speaker encoders sit behind one small interface (`embed_batch` of waves at the
encoder's own rate -> one vector per wave), chosen by SE_MODEL:

- `resemblyzer`: a GE2E d-vector LSTM whose real weights ship inside the pip package, so
  ranking works on a fresh install with no download (the embedded default).
- `ecapa`: speechbrain's ECAPA-TDNN (spkrec-ecapa-voxceleb), read offline from
  $STUDIO_HOME/models/ecapa-voxceleb; the default when it is installed.
- `qwen-base`: the ECAPA-TDNN inside Qwen3-TTS-12Hz-1.7B-Base (2048-d, no BatchNorm),
  built with qwen_tts's own class from only the `speaker_encoder.*` tensors; the encoder
  Vocalino ranks with.

`SpeakerSimilarity` wraps an encoder with an LRU cache keyed by audio content, so a cast
reference is embedded once however many takes are scored against it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..audio import resample
from ..settings import SE_CHOICES

log = logging.getLogger(__name__)

SE_MODELS = SE_CHOICES[1:]
ECAPA_ENTRY = "ecapa-voxceleb"        # configs/models.yaml entries
QWEN_BASE_ENTRY = "qwen3-tts-base"
ECAPA_FILES = ("hyperparams.yaml", "embedding_model.ckpt", "mean_var_norm_emb.ckpt", "classifier.ckpt",
               "label_encoder.txt")
QWEN_BASE_FILES = ("config.json", "model.safetensors")
MIN_SECONDS = 0.3                     # shorter audio carries no usable voice


class SpeakerEncoder(Protocol):
    name: str
    sample_rate: int

    def embed_batch(self, waves: list[np.ndarray]) -> np.ndarray:
        """Mono float32 waves at `sample_rate` -> (len(waves), dim) embeddings (any norm)."""


def installed(models_dir: Path, name: str) -> bool:
    """Whether the files an encoder reads are present (resemblyzer always is)."""
    if name == "resemblyzer":
        return True
    entry, files = (ECAPA_ENTRY, ECAPA_FILES) if name == "ecapa" else (QWEN_BASE_ENTRY, QWEN_BASE_FILES)
    return all((models_dir / entry / f).is_file() for f in files)


def resolve(choice: str, models_dir: Path) -> str:
    """SE_MODEL -> the encoder to load: `auto` takes ECAPA when installed, else resemblyzer."""
    if choice == "auto":
        return "ecapa" if installed(models_dir, "ecapa") else "resemblyzer"
    if choice not in SE_MODELS:
        raise ValueError(f"SE_MODEL={choice!r}: expected one of {', '.join(SE_CHOICES)}")
    if not installed(models_dir, choice):
        entry = ECAPA_ENTRY if choice == "ecapa" else QWEN_BASE_ENTRY
        raise ValueError(f"SE_MODEL={choice}: its model ({entry}) is not installed; run "
                         f"`python setup_models.py --only {entry}` or set SE_MODEL=resemblyzer")
    return choice


class ResemblyzerEncoder:
    """GE2E d-vectors (256-d) from the weights inside the resemblyzer package."""
    name, sample_rate = "resemblyzer", 16000

    def __init__(self, device: str) -> None:
        from resemblyzer import VoiceEncoder

        self.model = VoiceEncoder(device=device, verbose=False)

    def embed_batch(self, waves: list[np.ndarray]) -> np.ndarray:
        from resemblyzer import preprocess_wav

        out = []
        for wave in waves:
            # resemblyzer's own volume normalisation and VAD trim; noise-only takes (tiny models)
            # can trim to nothing, and then the whole wave is embedded instead.
            trimmed = preprocess_wav(wave, source_sr=self.sample_rate)
            use = trimmed if len(trimmed) >= MIN_SECONDS * self.sample_rate else wave
            out.append(self.model.embed_utterance(use.astype(np.float32)))
        return np.stack(out)


class EcapaEncoder:
    """speechbrain ECAPA-TDNN (192-d), loaded offline: the hyperparams' hub path is overridden."""
    name, sample_rate = "ecapa", 16000

    def __init__(self, model_dir: Path, device: str, savedir: Path) -> None:
        from speechbrain.inference.speaker import EncoderClassifier

        self.model = EncoderClassifier.from_hparams(
            source=str(model_dir), savedir=str(savedir),
            overrides={"pretrained_path": str(model_dir)}, run_opts={"device": device})
        self.model.eval()
        self.device = device

    @torch.inference_mode()
    def embed_batch(self, waves: list[np.ndarray]) -> np.ndarray:
        return np.stack([self.model.encode_batch(torch.from_numpy(w)[None].to(self.device))[0, 0].float().cpu().numpy()
                         for w in waves])


def read_speaker_encoder(model_dir: Path, device: str) -> torch.nn.Module:
    """qwen_tts's speaker encoder with only the `speaker_encoder.*` tensors of a Base checkpoint.

    The checkpoint holds the whole 1.7B model; safetensors lets us read the ~20 MB we need.
    Loading is strict: a missing or unexpected speaker-encoder tensor is an error.
    """
    from qwen_tts.core.models.configuration_qwen3_tts import Qwen3TTSSpeakerEncoderConfig
    from qwen_tts.core.models.modeling_qwen3_tts import Qwen3TTSSpeakerEncoder
    from safetensors import safe_open

    config = json.loads((model_dir / "config.json").read_text())
    if "speaker_encoder_config" not in config:
        raise ValueError(f"{model_dir.name}/config.json has no speaker_encoder_config: not a Qwen3-TTS Base model")
    sec = {k: v for k, v in config["speaker_encoder_config"].items() if k != "model_type"}
    encoder = Qwen3TTSSpeakerEncoder(Qwen3TTSSpeakerEncoderConfig(**sec))
    prefix = "speaker_encoder."
    with safe_open(str(model_dir / "model.safetensors"), framework="pt") as f:
        state = {k[len(prefix):]: f.get_tensor(k) for k in f.keys() if k.startswith(prefix)}
    if not state:
        raise ValueError(f"{model_dir.name}/model.safetensors has no speaker_encoder.* tensors")
    encoder.load_state_dict(state, strict=True)
    return encoder.to(device).eval()


class QwenBaseEncoder:
    """The Qwen3-TTS Base speaker encoder (enc_dim = talker hidden, 2048 for 1.7B) on 24 kHz audio."""
    name, sample_rate = "qwen-base", 24000

    def __init__(self, model_dir: Path, device: str) -> None:
        from qwen_tts.core.models.modeling_qwen3_tts import mel_spectrogram

        self._mel = mel_spectrogram
        self.device = device
        self.dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        self.model = read_speaker_encoder(model_dir, device).to(self.dtype)

    @torch.inference_mode()
    def embed_batch(self, waves: list[np.ndarray]) -> np.ndarray:
        out = []
        for w in waves:
            # The same mel front-end as Qwen3TTSForConditionalGeneration.extract_speaker_embedding.
            mels = self._mel(torch.from_numpy(np.clip(w, -1, 1))[None], n_fft=1024, num_mels=128,
                             sampling_rate=24000, hop_size=256, win_size=1024, fmin=0, fmax=12000)
            out.append(self.model(mels.transpose(1, 2).to(self.device, self.dtype))[0].float().cpu().numpy())
        return np.stack(out)


def load_encoder(name: str, models_dir: Path, device: str) -> SpeakerEncoder:
    """One of SE_MODELS on `device`; speechbrain's link folder goes beside the models, not inside."""
    if name == "resemblyzer":
        return ResemblyzerEncoder(device)
    if name == "ecapa":
        return EcapaEncoder(models_dir / ECAPA_ENTRY, device, models_dir.parent / "cache" / "speechbrain-ecapa")
    if name == "qwen-base":
        return QwenBaseEncoder(models_dir / QWEN_BASE_ENTRY, device)
    raise ValueError(f"unknown speaker encoder {name!r}; expected one of {', '.join(SE_MODELS)}")


class SpeakerSimilarity:
    """Cosine similarity between voices, with embeddings cached by audio content (LRU)."""

    def __init__(self, encoder: SpeakerEncoder, cache_size: int = 32) -> None:
        self.encoder = encoder
        self.cache_size = cache_size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.computed = 0  # embeddings actually computed (cache misses), for tests and /health

    @property
    def name(self) -> str:
        return self.encoder.name

    @staticmethod
    def _key(wave: np.ndarray, sr: int) -> str:
        return hashlib.sha1(np.ascontiguousarray(wave, dtype=np.float32).tobytes() + str(sr).encode()).hexdigest()

    def _check(self, wave: np.ndarray, sr: int) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float32).reshape(-1)
        if len(wave) < MIN_SECONDS * sr:
            raise ValueError(f"audio of {len(wave) / sr:.2f} s is too short to compare voices "
                             f"(at least {MIN_SECONDS} s)")
        if not np.all(np.isfinite(wave)):
            raise ValueError("audio holds NaN or infinite samples")
        return wave

    def embed_many(self, items: list[tuple[np.ndarray, int]]) -> list[np.ndarray]:
        """L2-normalised embeddings; cached ones are reused, the rest computed in one batch."""
        waves = [self._check(w, sr) for w, sr in items]
        keys = [self._key(w, sr) for w, (_, sr) in zip(waves, items)]
        with self._lock:
            hits = {k: self._cache[k] for k in keys if k in self._cache}
            for k in hits:
                self._cache.move_to_end(k)
        todo = [i for i, k in enumerate(keys) if k not in hits and k not in keys[:i]]
        if todo:
            rate = self.encoder.sample_rate
            batch = self.encoder.embed_batch([resample(waves[i], items[i][1], rate) for i in todo])
            fresh = {}
            for i, e in zip(todo, batch):
                e = np.asarray(e, dtype=np.float32)
                fresh[keys[i]] = e / max(float(np.linalg.norm(e)), 1e-12)
            self.computed += len(todo)
            hits.update(fresh)
            with self._lock:
                for k, e in fresh.items():
                    if self.cache_size > 0:
                        self._cache[k] = e
                while len(self._cache) > self.cache_size:
                    self._cache.popitem(last=False)
        return [hits[k] for k in keys]

    def embed(self, wave: np.ndarray, sr: int) -> np.ndarray:
        return self.embed_many([(wave, sr)])[0]

    def similarity(self, reference: tuple[np.ndarray, int], takes: list[tuple[np.ndarray, int]]) -> list[float]:
        """Cosine similarity of each take to the reference voice (1 = the same voice)."""
        if not takes:
            return []
        ref = self.embed(*reference)
        return [float(np.dot(ref, e)) for e in self.embed_many(takes)]
