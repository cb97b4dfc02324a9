"""Qwen3-TTS VoiceDesign engine: N takes of one line from ONE batched generate call.

A director describes a voice ("a gravelly old sea captain, low and slow"), types a
line and asks for N takes. `VoiceDesigner.design` broadcasts the request to N batch
rows and runs a single `generate_voice_design`, so N takes cost little more than one
(notes/qwen3_tts.md §4, §10). Rows sample independently, so the takes differ; the
whole batch is reproducible from one seed.
"""
from __future__ import annotations

import logging
import math
import secrets
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..languages import language_key

SAMPLE_RATE = 24000          # Hz, the 12 Hz speech tokenizer's output rate
FRAME_RATE = 12.5            # codec frames per second (1920 samples per frame)
MAX_TEXT_CHARS = 600         # one line of dialogue, not a chapter
MAX_INSTRUCT_CHARS = 500     # a voice description
MAX_SAMPLES = 10             # batch rows per call (takes x lines): Cast & Direct's K_MAX takes of a line in one call
# Frame budget per request. 0.3 s per character (~3.3 chars/s) is slower than slow
# speech in any supported language, plus a 3 s floor for very short lines; a take
# that runs past it is a runaway (no EOS) and is cut there.
SECONDS_PER_CHAR = 0.3
MIN_SECONDS = 3.0
QUANTIZE_MODES = ("none", "int8")
# bitsandbytes' automatic skip list deep-copies the model, which fails on qwen_tts's
# `dict_keys` attribute (§9). Naming the modules to keep in float avoids the copy;
# "encoder"/"decoder" keep the speech tokenizer (which gets the same kwargs) in float.
INT8_SKIP_MODULES = ["codec_head", "lm_head", "encoder", "decoder"]

StepCallback = Callable[[int, int], None]


class _DropInt8CastWarning(logging.Filter):
    """bitsandbytes logs "MatMul8bitLt: inputs will be cast ..." on every INT8 matmul on CPU
    (thousands of lines per take); drop only that message."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("MatMul8bitLt: inputs will be cast")


def max_frames_for(text: str) -> int:
    """The most codec frames a take of `text` may use before it counts as runaway."""
    return math.ceil((MIN_SECONDS + SECONDS_PER_CHAR * len(text)) * FRAME_RATE)


def _as_list(x: str | list[str], what: str) -> list[str]:
    items = [x] if isinstance(x, str) else list(x)
    if not items:
        raise ValueError(f"No {what} given.")
    if not all(isinstance(i, str) for i in items):
        raise TypeError(f"Each {what} must be a string.")
    return items


def _check_markup(s: str, what: str) -> None:
    # The prompt is built from chat markup; a stray <|im_end|> would shift the slices
    # qwen_tts takes out of the token ids and silently garble the take.
    if "<|" in s or "|>" in s:
        raise ValueError(f"The {what} may not contain '<|' or '|>'.")


class VoiceDesigner:
    """A loaded Qwen3-TTS VoiceDesign model plus the checks a UI needs before generating."""

    sample_rate: int = SAMPLE_RATE

    def __init__(self, tts, *, source: str, device: str, dtype: torch.dtype, quantize: str = "none"):
        """Wrap an already loaded `qwen_tts.Qwen3TTSModel` (use `load` for a directory)."""
        if tts.model.tts_model_type != "voice_design":
            raise ValueError(f"{source} is a {tts.model.tts_model_type!r} model; VoiceDesign is needed.")
        self.tts = tts
        self.source = source
        self.device = device
        self.dtype = dtype
        self.quantize = quantize
        self.generate_calls = 0  # talker generate calls made; one per design() call
        self.last_seed: int | None = None
        talker_cfg = tts.model.config.talker_config
        self._codec_pad_id = int(talker_cfg.codec_pad_id)
        self.languages: list[str] = sorted(str(x).casefold() for x in tts.model.get_supported_languages())

    # -- loading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, model_dir: Path, device: str = "cpu", quantize: str = "none") -> "VoiceDesigner":
        """Load a VoiceDesign directory: bf16 on CUDA, fp32 on CPU, optionally INT8 weights."""
        from qwen_tts import Qwen3TTSModel

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            raise FileNotFoundError(f"No Qwen3-TTS model at {model_dir} (config.json missing); "
                                    "run setup_models.py.")
        if quantize not in QUANTIZE_MODES:
            raise ValueError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}.")
        if device.startswith("cuda"):
            if not torch.cuda.is_available():
                raise RuntimeError(f"device={device!r} but no CUDA GPU is available.")
            device = "cuda:0" if device == "cuda" else device
            dtype = torch.bfloat16
        elif device == "cpu":
            dtype = torch.float32
        else:
            raise ValueError(f"device must be 'cpu' or 'cuda[:N]', got {device!r}.")

        kwargs: dict = {"dtype": dtype, "device_map": device}
        if quantize == "int8":
            from transformers import BitsAndBytesConfig

            bnb_log = logging.getLogger("bitsandbytes.autograd._functions")
            if not any(isinstance(f, _DropInt8CastWarning) for f in bnb_log.filters):
                bnb_log.addFilter(_DropInt8CastWarning())
            if device == "cpu":
                warnings.warn("INT8 on CPU is correct but 20-50x slower than fp32; use it on a GPU.",
                              stacklevel=2)
            kwargs["quantization_config"] = BitsAndBytesConfig(
                load_in_8bit=True, llm_int8_skip_modules=INT8_SKIP_MODULES)
        tts = Qwen3TTSModel.from_pretrained(str(model_dir), **kwargs)
        return cls(tts, source=str(model_dir), device=device, dtype=dtype, quantize=quantize)

    def info(self) -> dict:
        """What is loaded, for a /health endpoint."""
        codec = self.tts.model.speech_tokenizer.model
        return {
            "model_dir": self.source,
            "tts_model_type": self.tts.model.tts_model_type,
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "quantization": self.quantize,
            "parameters": sum(p.numel() for p in self.tts.model.parameters()),
            "speech_tokenizer_parameters": sum(p.numel() for p in codec.parameters()),
            "sample_rate": self.sample_rate,
            "languages": list(self.languages),
            "generate_calls": self.generate_calls,
        }

    # -- generation ------------------------------------------------------------------------

    def check_request(self, texts: str | list[str], instructs: str | list[str], language: str = "auto",
                      n: int = 1) -> tuple[list[str], list[str], str]:
        """Validate and broadcast a request to batch rows; raise ValueError a UI can show."""
        texts = [t.strip() for t in _as_list(texts, "text")]
        instructs = [i.strip() for i in _as_list(instructs, "voice description")]
        for t in texts:
            if not t:
                raise ValueError("The text is empty: type the line to speak.")
            if len(t) > MAX_TEXT_CHARS:
                raise ValueError(f"The text is too long: {len(t)} characters, the limit is "
                                 f"{MAX_TEXT_CHARS}. Split it into shorter lines.")
            _check_markup(t, "text")
        for i in instructs:
            if len(i) > MAX_INSTRUCT_CHARS:
                raise ValueError(f"The voice description is too long: {len(i)} characters, the limit "
                                 f"is {MAX_INSTRUCT_CHARS}.")
            _check_markup(i, "voice description")
        if len(texts) != len(instructs) and 1 not in (len(texts), len(instructs)):
            raise ValueError(f"Got {len(texts)} texts and {len(instructs)} voice descriptions; "
                             "give one of each, or equally many.")
        lang = language_key(language, self.languages)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n (takes per line) must be a positive integer, got {n!r}.")
        rows = max(len(texts), len(instructs))
        if rows * n > MAX_SAMPLES:
            raise ValueError(f"Too many takes: {rows} line(s) x {n} = {rows * n}, the limit is {MAX_SAMPLES}.")
        texts, instructs = texts * (rows // len(texts)), instructs * (rows // len(instructs))
        # Row-major: the n takes of line 0, then of line 1, ...
        return [t for t in texts for _ in range(n)], [i for i in instructs for _ in range(n)], lang

    def design(
        self,
        texts: str | list[str],
        instructs: str | list[str],
        language: str = "auto",
        n: int = 1,
        seed: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        max_new_tokens: int | None = None,
        on_step: StepCallback | None = None,
        fixed_length: bool = False,
    ) -> list[np.ndarray]:
        """Speak each text in the described voice, n takes each, in ONE batched generate call.

        Returns float32 mono arrays at `sample_rate`, n per text, in order. Sampling settings
        left as None keep the checkpoint's generation_config.json values. The same seed and
        request give the same audio; with seed=None a fresh seed is drawn and kept in
        `last_seed` so a take can be reproduced. `max_new_tokens` defaults to a budget from the
        longest text (`max_frames_for`) + 1, since N tokens give at most N-1 frames.
        `on_step(done, total)` is called after each talker step (raise in it to cancel).
        `fixed_length=True` makes every take exactly max_new_tokens-1 frames (EOS set to the
        never-sampled codec pad id), for tests and benchmarks.
        """
        rows_text, rows_instruct, lang = self.check_request(texts, instructs, language, n)
        if temperature is not None and not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}.")
        if top_p is not None and not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}.")
        if max_new_tokens is None:
            max_new_tokens = max(max_frames_for(t) for t in rows_text) + 1
        elif max_new_tokens < 2:
            raise ValueError(f"max_new_tokens must be >= 2 (it gives max_new_tokens-1 frames), got {max_new_tokens}.")
        # qwen_tts forwards only these generate kwargs and silently drops any other (§4).
        gen = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "top_k": top_k}
        gen = {k: v for k, v in gen.items() if v is not None}
        if fixed_length:
            gen["eos_token_id"] = self._codec_pad_id

        seed = secrets.randbits(31) if seed is None else int(seed)
        self.last_seed = seed
        hook = None
        if on_step is not None:
            steps = [0]

            def _count(_module, _args, _output):
                steps[0] += 1
                on_step(min(steps[0], max_new_tokens), max_new_tokens)

            hook = self.tts.model.talker.register_forward_hook(_count)
        cuda = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        try:
            # One global RNG drives sampling (no per-row seed): fork it so seeding here
            # neither depends on nor disturbs anything else in the process.
            with torch.random.fork_rng(devices=cuda):
                torch.manual_seed(seed)
                self.generate_calls += 1
                wavs, sr = self.tts.generate_voice_design(
                    text=rows_text, instruct=rows_instruct, language=[lang] * len(rows_text), **gen)
        finally:
            if hook is not None:
                hook.remove()
        if sr != self.sample_rate:
            raise RuntimeError(f"model produced {sr} Hz audio, expected {self.sample_rate} Hz")
        return [np.asarray(w, dtype=np.float32).reshape(-1) for w in wavs]
