"""The studio's features as plain Python: what the UI and the API both call.

One `Studio` per process owns the settings, the cast library and the loaded
models. Every method takes and returns plain values (strings, numbers, numpy
audio, paths), raises errors whose message a person can act on, and knows
nothing about Gradio.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from . import audio, registry
from .library import CastMember, Library
from .settings import Settings

MAX_SAMPLES = 6          # Voice Design: samples per request (one batched TTS call)
DESIGNED_MIN_S = 1.0     # a designed sample kept as a cast member must be at least this long


class Studio:
    def __init__(self, settings: Settings) -> None:
        registry.require(settings.models_dir)
        self.settings = settings
        self.library = Library(settings.home)
        self.models = registry.ModelPool()
        self.tiny = registry.is_tiny(settings.models_dir)
        self.started = time.time()

    # -- models ---------------------------------------------------------------------------------

    def designer(self):
        """The Qwen3-TTS VoiceDesign engine, loaded on first use on TTS_DEVICE."""
        from .engines.tts import VoiceDesigner

        path = self.settings.models_dir / "qwen3-tts-voicedesign"
        return self.models.get("tts", lambda: VoiceDesigner.load(path, device=self.settings.tts_device,
                                                                   quantize=self.settings.tts_quantize))

    # -- Voice Design ---------------------------------------------------------------------------

    def design(self, text: str, description: str, language: str = "auto", n: int = 3,
               seed: int | None = None) -> tuple[int, list[np.ndarray]]:
        """N samples of `text` in a voice described in words, from ONE batched TTS call.

        Returns (sample_rate, samples). The same seed and request give the same samples.
        """
        n = int(n)
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"number of samples must be between 1 and {MAX_SAMPLES}")
        if not str(description or "").strip():
            raise ValueError("describe the voice, e.g. 'a gravelly old sea captain, low and slow'")
        engine = self.designer()
        waves = engine.design(text, description, language=language, n=n, seed=None if seed is None else int(seed))
        return engine.sample_rate, waves

    # -- Cast library ---------------------------------------------------------------------------

    def cast_save(self, audio_path: str | Path, name: str, description: str = "",
                  language: str = "auto") -> CastMember:
        """Keep a designed sample as a cast member."""
        wave, sr = audio.load_audio(audio_path)
        trimmed = audio.trim_silence(wave)
        if len(trimmed) / sr < DESIGNED_MIN_S:
            raise audio.AudioError(f"sample is {len(trimmed) / sr:.1f} s after trimming silence; keep a sample "
                                   f"of at least {DESIGNED_MIN_S:.0f} s")
        if len(trimmed) / sr > audio.REFERENCE_MAX_S:
            trimmed = trimmed[: int(audio.REFERENCE_MAX_S * sr)]
        ref = audio.normalise_loudness(audio.resample(trimmed, sr, audio.REFERENCE_SR))
        return self.library.add(name, ref, audio.REFERENCE_SR, description, language, origin="designed")

    def cast_upload(self, audio_path: str | Path, name: str, description: str = "",
                    language: str = "auto") -> CastMember:
        """Add someone's recording as a cast member (validated: speech, 3-30 s, normalised)."""
        wave, sr = audio.load_audio(audio_path)
        ref = audio.prepare_reference(wave, sr, check_speech=True)
        return self.library.add(name, ref, audio.REFERENCE_SR, description, language, origin="uploaded")

    def cast_list(self) -> list[dict]:
        return [m.as_dict() for m in self.library.list()]

    def cast_rename(self, name: str, new_name: str) -> dict:
        return self.library.rename(name, new_name).as_dict()

    def cast_delete(self, name: str) -> None:
        self.library.delete(name)

    # -- Health ---------------------------------------------------------------------------------

    def health(self) -> dict:
        """Cheap status for /health: never loads a model."""
        s = self.settings
        loaded = self.models.loaded()
        info = {}
        if "tts" in loaded:
            info["tts"] = self.designer().info()
        return {
            "status": "ok",
            "tiny_models": self.tiny,
            "devices": {"tts": s.tts_device, "vc": s.vc_device, "se": s.se_device},
            "tts_quantize": s.tts_quantize,
            "default_diff_steps": s.default_diff_steps,
            "models_loaded": loaded,
            "models": info,
            "cast_members": len(self.library.list()),
            "uptime_s": round(time.time() - self.started, 1),
        }
