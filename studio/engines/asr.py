"""Intelligibility: does a take say its line? Transcribe it and score the words.

A take that sounds like the actor but garbles or skips words is a bad take, and
speaker similarity cannot see that. Two recognisers:

- pocketsphinx (the embedded default): its US-English acoustic model, language
  model and dictionary ship inside the pip package, so it works with no download.
  English only.
- Whisper through `transformers`, from the model registry entry `whisper`
  (multilingual, far more robust); used when installed.

`ASR_MODEL` (auto | pocketsphinx | whisper) picks one; auto prefers Whisper when
its files are installed. Scores are WER/CER computed with jiwer on normalised
text (lower case, no punctuation, single spaces), so "Fine." and "fine" agree.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..audio import resample
from ..settings import ASR_CHOICES

ASR_SR = 16000                       # both recognisers take 16 kHz mono
WHISPER_ENTRY = "whisper"            # configs/models.yaml entry
ENGLISH = ("english", "auto")        # languages pocketsphinx can score ("auto": the studio's default, mostly English)
WHISPER_MAX_TOKENS = 128             # a line is at most a few sentences; bounds a runaway decode


@dataclass(frozen=True)
class Intelligibility:
    """How well a take says its line: 1.0 every word right, 0.0 nothing recognisable."""
    transcript: str
    wer: float
    cer: float
    recogniser: str

    @property
    def score(self) -> float:
        return max(0.0, 1.0 - self.wer)

    def as_dict(self) -> dict:
        return {"transcript": self.transcript, "wer": round(self.wer, 4), "cer": round(self.cer, 4),
                "score": round(self.score, 4), "recogniser": self.recogniser}


_PUNCT = re.compile(r"[^\w\s']|_")


def normalise_text(text: str) -> str:
    """Lower case, punctuation gone (apostrophes inside words kept), single spaces."""
    text = unicodedata.normalize("NFKC", str(text)).lower().replace("’", "'")
    text = _PUNCT.sub(" ", text)
    text = " ".join(w.strip("'") for w in text.split())
    return " ".join(text.split())


def has_words(line: str) -> bool:
    """Whether a line has words to speak and to score a take against: the one rule that script import,
    directing requests and scoring share ("..." or an em dash alone has none)."""
    return bool(normalise_text(line))


def score_text(line: str, transcript: str, recogniser: str = "") -> Intelligibility:
    """WER and CER of a transcript against the line it should say (both normalised)."""
    import jiwer

    if not has_words(line):
        raise ValueError("the line has no words to score against")
    ref, hyp = normalise_text(line), normalise_text(transcript)
    if not hyp:
        return Intelligibility(transcript, 1.0, 1.0, recogniser)
    return Intelligibility(transcript, min(1.0, jiwer.wer(ref, hyp)), min(1.0, jiwer.cer(ref, hyp)), recogniser)


class PocketSphinx:
    """CMU pocketsphinx with the US-English model inside the package (no download)."""

    name = "pocketsphinx"

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        self._decoder = Decoder(loglevel="FATAL")
        self._lock = threading.Lock()  # one decoder, one utterance at a time

    def supports(self, language: str) -> bool:
        return str(language).strip().lower() in ENGLISH

    def transcribe(self, wave: np.ndarray, sr: int, language: str = "english") -> str:
        pcm = np.clip(resample(np.asarray(wave, dtype=np.float32), sr, ASR_SR), -1.0, 1.0)
        raw = (pcm * 32767.0).astype("<i2").tobytes()
        with self._lock:
            self._decoder.start_utt()
            self._decoder.process_raw(raw, full_utt=True)
            self._decoder.end_utt()
            hyp = self._decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


class Whisper:
    """Whisper (any size) from a local folder in the hub layout, through transformers."""

    name = "whisper"

    def __init__(self, path: Path, device: str = "cpu") -> None:
        import torch
        from transformers import WhisperForConditionalGeneration, WhisperProcessor

        self.processor = WhisperProcessor.from_pretrained(str(path), local_files_only=True)
        self.model = WhisperForConditionalGeneration.from_pretrained(str(path), local_files_only=True,
                                                                     dtype=torch.float32).to(device).eval()
        self.device = device
        self._lock = threading.Lock()

    def supports(self, language: str) -> bool:
        return True

    def transcribe(self, wave: np.ndarray, sr: int, language: str = "auto") -> str:
        import torch

        pcm = resample(np.asarray(wave, dtype=np.float32), sr, ASR_SR)
        features = self.processor(pcm, sampling_rate=ASR_SR, return_tensors="pt").input_features.to(self.device)
        lang = str(language).strip().lower()
        with self._lock, torch.inference_mode():
            ids = self.model.generate(features, task="transcribe", language=None if lang == "auto" else lang,
                                      max_new_tokens=WHISPER_MAX_TOKENS)
        return self.processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def whisper_installed(models_dir: Path) -> bool:
    from ..registry import check

    try:
        import transformers  # noqa: F401
    except ImportError:
        return False
    return not check(models_dir, hashes=False, names=[WHISPER_ENTRY])


def load_recogniser(choice: str, models_dir: Path, device: str = "cpu"):
    """The recogniser ASR_MODEL asks for; auto = Whisper when installed, else pocketsphinx."""
    choice = str(choice).strip().lower()
    if choice not in ASR_CHOICES:
        raise ValueError(f"ASR_MODEL={choice!r}: expected one of {', '.join(ASR_CHOICES)}")
    if choice == "whisper" or (choice == "auto" and whisper_installed(models_dir)):
        from ..registry import require

        require(models_dir, names=[WHISPER_ENTRY])
        return Whisper(models_dir / WHISPER_ENTRY, device)
    return PocketSphinx()


def intelligibility(recogniser, wave: np.ndarray, sr: int, line: str,
                    language: str = "auto") -> Intelligibility | None:
    """Score one take against its line; None when the recogniser cannot hear this language."""
    if not recogniser.supports(language):
        return None
    return score_text(line, recogniser.transcribe(wave, sr, language), recogniser.name)
