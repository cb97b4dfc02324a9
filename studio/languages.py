"""Language names as people and scripts type them: Qwen3-TTS writes "English", our menus "english"; both mean
the same language. Every place that takes a language (Voice Design, the cast library, the API) goes through
`language_key`, so the spelling never matters and a wrong name gets one clear message."""
from __future__ import annotations

from typing import Iterable

# The languages of the released Qwen3-TTS models, in menu order ("auto" lets the model decide).
LANGUAGES = ("auto", "english", "chinese", "japanese", "korean", "german", "french", "russian", "portuguese",
             "spanish", "italian")


def language_key(name: str, allowed: Iterable[str] = LANGUAGES) -> str:
    """The canonical (lower-case) name of a language, case and surrounding spaces ignored: " English" -> "english".

    Raises ValueError naming the allowed languages when `name` is none of them.
    """
    allowed = list(allowed)
    key = str(name if name is not None else "auto").strip().casefold()
    if key not in allowed:
        raise ValueError(f"Unknown language {name!r}. Choose one of: {', '.join(allowed)}.")
    return key
