"""The studio's features as plain Python: what the UI and the API both call.

One `Studio` per process owns the settings, the cast library and the loaded
models. Every method takes and returns plain values (strings, numbers, numpy
audio, paths), raises errors whose message a person can act on, and knows
nothing about Gradio.
"""
from __future__ import annotations

import time
import uuid
from pathlib import Path

import numpy as np

from . import audio, registry, trash
from .direct import Director
from .engines.vc import Conversion, Voice
from .library import CastMember, Library, connect
from .limits import check_seed
from .scene_render import SceneRenderer
from .settings import Settings
from .takes import TakeStore
from .training import Trainer
from .voices import RVCVoice, RVCVoices

MAX_SAMPLES = 6          # Voice Design: samples per request (one batched TTS call)
MAX_SOURCE_S = 600.0     # Convert: longest source (10 min); longer work belongs in a batch job
MIN_SOURCE_S = 0.5       # Convert: shorter sources carry no usable speech
MAX_COMPARE = 50         # /similarity: recordings per request


class Studio:
    def __init__(self, settings: Settings) -> None:
        registry.require(settings.models_dir)
        from .engines.speaker import resolve

        self.se_model = resolve(settings.se_model, settings.models_dir)  # fail at start, not mid-ranking
        self.settings = settings
        self.library = Library(settings.home, settings.trash_days)
        self.rvc_voices = RVCVoices(settings.home, settings.trash_days)
        self.takes = TakeStore(settings.home)      # Cast & Direct takes and projects
        self.director = Director(self)             # K directed takes of a line, ranked (studio/direct.py)
        self.scenes = SceneRenderer(self)          # Scene mode: script -> cast -> picked takes -> mix (scene_render.py)
        self.director.scorer = self.scenes.note_intelligibility  # Cast & Direct takes get an ASR score too
        self.models = registry.ModelPool()
        self.tiny = registry.is_tiny(settings.models_dir)
        self.training = Trainer(self)  # datasets, the training process, previews, export
        self.started = time.time()

    # -- models ---------------------------------------------------------------------------------

    def designer(self):
        """The Qwen3-TTS VoiceDesign engine, loaded on first use on TTS_DEVICE."""
        from .engines.tts import VoiceDesigner

        path = self.settings.models_dir / "qwen3-tts-voicedesign"
        return self.models.get("tts", lambda: VoiceDesigner.load(path, device=self.settings.tts_device,
                                                                   quantize=self.settings.tts_quantize))

    def seed_vc(self):
        """Seed-VC V2 on VC_DEVICE; tiny models load with the tiny dimensions they were built with."""
        from seed_vc.tiny import load_dims

        from .engines.vc import SeedVCConverter

        dims = load_dims(registry.SEED_VC_TINY_DIMS) if self.tiny else None
        s = self.settings
        return self.models.get("seed-vc", lambda: SeedVCConverter(
            registry.role_paths(s.models_dir, registry.SEED_VC_FILES), s.vc_device, dims, s.emb_cache_size,
            s.default_diff_steps))

    def rvc(self):
        """The RVC backend (ContentVec, RMVPE when installed) on VC_DEVICE."""
        from .engines.vc import RVCConverter

        paths = registry.role_paths(self.settings.models_dir, registry.RVC_FILES)
        return self.models.get("rvc", lambda: RVCConverter(paths["contentvec"], paths["rmvpe"],
                                                           self.settings.vc_device))

    def speaker(self):
        """The speaker encoder that ranks takes (SE_MODEL) on SE_DEVICE, with its embedding cache."""
        from .engines.speaker import SpeakerSimilarity, load_encoder

        s = self.settings
        return self.models.get("speaker", lambda: SpeakerSimilarity(
            load_encoder(self.se_model, s.models_dir, s.se_device), s.emb_cache_size))

    def asr(self):
        """The recogniser that scores intelligibility (ASR_MODEL), on SE_DEVICE with the other scorers."""
        from .engines.asr import load_recogniser

        s = self.settings
        return self.models.get("asr", lambda: load_recogniser(s.asr_model, s.models_dir, s.se_device))

    # -- Voice Design ---------------------------------------------------------------------------

    def design(self, text: str, description: str, language: str = "auto", n: int = 3,
               seed: int | None = None, on_step=None) -> tuple[int, list[np.ndarray]]:
        """N samples of `text` in a voice described in words, from ONE batched TTS call.

        Returns (sample_rate, samples). The same seed and request give the same samples.
        `on_step(done, total)` is called as codec frames are generated (progress bars).
        """
        n = int(n)
        if not 1 <= n <= MAX_SAMPLES:
            raise ValueError(f"number of samples must be between 1 and {MAX_SAMPLES}")
        if not str(description or "").strip():
            raise ValueError("describe the voice, e.g. 'a gravelly old sea captain, low and slow'")
        seed = None if seed is None else check_seed(seed)
        engine = self.designer()
        waves = engine.design(text, description, language=language, n=n, seed=seed,
                              on_step=on_step)
        return engine.sample_rate, waves

    # -- Cast library ---------------------------------------------------------------------------

    def cast_save(self, audio_path: str | Path, name: str, description: str = "",
                  language: str = "auto") -> CastMember:
        """Keep a designed sample as a cast member."""
        ref = audio.prepare_reference(*audio.load_audio(audio_path, max_seconds=audio.REFERENCE_UPLOAD_MAX_S),
                                      designed=True)
        return self.library.add(name, ref, audio.REFERENCE_SR, description, language, origin="designed")

    def cast_upload(self, audio_path: str | Path, name: str, description: str = "",
                    language: str = "auto") -> CastMember:
        """Add someone's recording as a cast member (validated: speech, 3-30 s, normalised)."""
        ref = audio.prepare_reference(*audio.load_audio(audio_path, max_seconds=audio.REFERENCE_UPLOAD_MAX_S))
        return self.library.add(name, ref, audio.REFERENCE_SR, description, language, origin="uploaded")

    def cast_list(self) -> list[dict]:
        return [m.as_dict() for m in self.library.list()]

    def cast_rename(self, name: str, new_name: str) -> dict:
        return self.library.rename(name, new_name).as_dict()

    def cast_delete(self, name: str) -> None:
        """Move a cast member to the trash (see cast_restore)."""
        self.library.delete(name)

    def cast_restore(self, name: str) -> dict:
        return self.library.restore(name).as_dict()

    def similarity(self, cast_member: str, files: list[str | Path]) -> list[dict]:
        """How much each recording sounds like a cast member: cosine similarity, best first."""
        if not files:
            raise ValueError("upload at least one recording to compare with the cast member")
        if len(files) > MAX_COMPARE:
            raise ValueError(f"compare at most {MAX_COMPARE} recordings at a time, got {len(files)}")
        reference = self.library.reference(cast_member)
        takes = []
        for f in files:
            wave, sr = audio.load_audio(f, max_seconds=MAX_SOURCE_S)
            if len(wave) < MIN_SOURCE_S * sr:
                raise audio.AudioError(f"{Path(f).name}: shorter than {MIN_SOURCE_S} s, too short to compare voices")
            takes.append((wave, sr))
        speaker = self.speaker()
        scores = speaker.similarity(reference, takes)
        rows = [{"file": Path(f).name, "similarity": round(sc, 4), "encoder": speaker.name}
                for f, sc in zip(files, scores)]
        order = sorted(range(len(rows)), key=lambda i: -scores[i])
        for rank, i in enumerate(order, 1):
            rows[i]["rank"] = rank
        return [rows[i] for i in order]

    # -- Convert --------------------------------------------------------------------------------

    def _source(self, source_path: str | Path) -> tuple[np.ndarray, int]:
        seconds = audio.probe(source_path).seconds  # from the header, before decoding
        if seconds > MAX_SOURCE_S:
            raise audio.AudioError(f"source is {seconds / 60:.1f} min long; convert at most "
                                   f"{MAX_SOURCE_S / 60:.0f} min at a time (split the recording)")
        wave, sr = audio.load_audio(source_path, max_seconds=MAX_SOURCE_S)
        seconds = len(wave) / sr
        if seconds < MIN_SOURCE_S or not np.any(np.abs(wave) > 1e-4):
            raise audio.AudioError("source is silent or shorter than 0.5 s: upload the speech to convert")
        return wave, sr

    def convert(self, source_path: str | Path, cast_member: str | None = None,
                reference_path: str | Path | None = None, **options) -> Conversion:
        """Any audio -> a cast member's voice (or an uploaded reference's) with Seed-VC V2.

        options: diffusion_steps, intelligibility_cfg_rate, similarity_cfg_rate, convert_style,
        length_adjust, seeds (see seed_vc.ConvertOptions), on_stage(stage, fraction) for progress.
        """
        if options.get("seeds") is not None:
            options["seeds"] = [check_seed(s) for s in options["seeds"]]
        source, sr = self._source(source_path)
        if cast_member:
            reference = self.library.reference(cast_member)
        elif reference_path:
            wave, ref_sr = audio.load_audio(reference_path, max_seconds=audio.REFERENCE_UPLOAD_MAX_S)
            reference = (audio.prepare_reference(wave, ref_sr), audio.REFERENCE_SR)
        else:
            raise ValueError("pick a cast member or upload a reference voice")
        self.training.wait_for_device(self.settings.vc_device)
        return self.seed_vc().convert([source], sr, Voice(reference=reference), **options)

    def convert_rvc(self, source_path: str | Path, voice: str, **options) -> Conversion:
        """Any audio -> an RVC voice. options: key, f0_method, index_rate, protect, filter_radius,
        rms_mix_rate, resample_sr (see rvc.ConvertOptions)."""
        v = self.rvc_voices.get(voice)
        source, sr = self._source(source_path)
        self.training.wait_for_device(self.settings.vc_device)
        return self.rvc().convert([source], sr, Voice(rvc_model=v.model_path, rvc_index=v.index_path), **options)

    def save_take(self, wave: np.ndarray, sr: int, fmt: str = "wav", kind: str = "convert") -> Path:
        """Keep a result under $STUDIO_HOME/takes/<kind>/ in the chosen format; returns its path."""
        day = time.strftime("%Y-%m-%d")
        return audio.save_audio(self.takes_dir / kind / day / f"{time.strftime('%H%M%S')}-{uuid.uuid4().hex[:8]}"
                                f".{fmt}", wave, sr)

    @property
    def takes_dir(self) -> Path:
        return self.settings.home / "takes"

    # -- RVC voices -----------------------------------------------------------------------------

    def rvc_upload(self, files: list[str | Path], name: str, from_checkpoint: bool = False) -> RVCVoice:
        """Add an RVC voice; `from_checkpoint` extracts it from a G_*.pth training checkpoint."""
        return self.rvc_voices.add(name, files, from_checkpoint)

    def rvc_list(self) -> list[dict]:
        return [v.as_dict() for v in self.rvc_voices.list()]

    def rvc_delete(self, name: str) -> None:
        """Move an RVC voice to the trash (see rvc_restore)."""
        self.rvc_voices.delete(name)

    def rvc_restore(self, name: str) -> dict:
        return self.rvc_voices.restore(name).as_dict()

    def trash_list(self) -> list[dict]:
        """Deleted cast members, voices and trainings that can still be restored, newest first."""
        with connect(self.settings.home) as db:
            return trash.listing(db, self.settings.trash_days)

    # -- Health ---------------------------------------------------------------------------------

    def health(self) -> dict:
        """Cheap status for /health: never loads a model."""
        s = self.settings
        loaded = self.models.loaded()
        info = {}
        if "tts" in loaded:  # no server paths in what any client can read
            info["tts"] = {k: v for k, v in self.designer().info().items() if k != "model_dir"}
        return {
            "status": "ok",
            "tiny_models": self.tiny,
            "devices": {"tts": s.tts_device, "vc": s.vc_device, "se": s.se_device},
            "speaker_encoder": self.se_model,
            "tts_quantize": s.tts_quantize,
            "default_diff_steps": s.default_diff_steps,
            "models_loaded": loaded,
            "models": info,
            "cast_members": len(self.library.list()),
            "rvc_voices": len(self.rvc_voices.list()),
            "uptime_s": round(time.time() - self.started, 1),
        }
