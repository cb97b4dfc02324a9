"""Which take of a line is best: sounds like the cast member AND says the words, at a human pace.

Speaker similarity alone picks a take that garbles or skips words; intelligibility
alone picks a clear take in the wrong voice. The pick combines both, and puts any
take whose length is implausible for its line (a runaway take that goes on
babbling, or a truncated one) below every plausible take. The rule is written out
in `RULE` so the take sheet can say how each line was chosen.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .audio import trim_silence
from .engines.asr import normalise_text


@dataclass(frozen=True)
class PickOptions:
    similarity_weight: float = 0.5    # cosine similarity to the cast member's reference (-1..1)
    intelligibility_weight: float = 0.5  # 1 - WER against the line (0..1); ignored when it could not be measured
    min_words_per_s: float = 0.8      # slower than this (after trimming silence) is a runaway take
    max_words_per_s: float = 6.0      # faster than this is a truncated take (human speech tops out near 6)
    pause_allowance_s: float = 1.5    # dramatic pauses: added to the slowest plausible length
    implausible_penalty: float = 2.0  # subtracted from a runaway/truncated take (scores lie in -1..1)


PICK = PickOptions()
RULE = (f"best = highest {PICK.similarity_weight:g} x similarity + {PICK.intelligibility_weight:g} x "
        f"intelligibility (1 - WER; similarity alone when not measured), among takes whose speech rate is "
        f"{PICK.min_words_per_s:g}-{PICK.max_words_per_s:g} words/s (+{PICK.pause_allowance_s:g} s for pauses); "
        f"runaway or truncated takes get -{PICK.implausible_penalty:g}, so they rank below every plausible one")


@dataclass(frozen=True)
class Duration:
    seconds: float           # speech length with leading/trailing silence trimmed
    words_per_s: float
    verdict: str             # "ok" | "runaway" | "truncated"

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def duration_check(wave: np.ndarray, sr: int, line: str, options: PickOptions = PICK) -> Duration:
    """Is this take's length plausible for its words?"""
    words = max(1, len(normalise_text(line).split()))
    seconds = len(trim_silence(np.asarray(wave, dtype=np.float32))) / sr
    rate = words / seconds if seconds > 0 else float("inf")
    if seconds > words / options.min_words_per_s + options.pause_allowance_s:
        verdict = "runaway"
    elif rate > options.max_words_per_s:
        verdict = "truncated"
    else:
        verdict = "ok"
    return Duration(round(seconds, 3), round(rate, 3) if np.isfinite(rate) else rate, verdict)


def combined_score(similarity: float | None, intelligibility: float | None, options: PickOptions = PICK) -> float:
    """The number takes of one line are ranked by (before the duration check)."""
    sim = 0.0 if similarity is None else float(similarity)
    if intelligibility is None:
        return sim
    total = options.similarity_weight + options.intelligibility_weight
    return (options.similarity_weight * sim + options.intelligibility_weight * float(intelligibility)) / total


def pick_score(similarity: float | None, intelligibility: float | None, duration: Duration,
               options: PickOptions = PICK) -> float:
    """The score the takes of a line are ranked by (RULE): the best take has the highest."""
    penalty = 0.0 if duration.ok else options.implausible_penalty
    return combined_score(similarity, intelligibility, options) - penalty
