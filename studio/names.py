"""Names people give things: cast members, RVC voices, scenes, characters, datasets, projects.

One rule for all of them, so a name accepted in one place is accepted (and matched) in every
other: Unicode NFC (a precomposed and a decomposed "Ḱ" are the same name), whitespace collapsed
to single spaces, bounded, and no control or invisible format characters (bidi overrides,
zero-width spaces), which would make two different names look alike. A name is display text,
never a path.
"""
from __future__ import annotations

import unicodedata

MAX_NAME = 80


def clean(name: str | None, what: str = "cast member", limit: int = MAX_NAME,
          error: type[ValueError] = ValueError, default: str | None = None) -> str:
    """The name as kept, or `error` saying what is wrong with it; `what` names the thing in the message
    ("give the RVC voice a name"); an empty name is `default` where there is one."""
    text = " ".join(unicodedata.normalize("NFC", str(name or "")).split())
    if not text:
        if default is None:
            raise error(f"give the {what} a name")
        text = default
    if len(text) > limit:
        raise error(f"{what} name is {len(text)} characters; keep it under {limit}")
    bad = next((c for c in text if unicodedata.category(c).startswith("C")), None)
    if bad is not None:
        raise error(f"{what} name contains control characters (U+{ord(bad):04X}); type it without them")
    return text


def key(name: str | None) -> str:
    """How names match: the same after cleaning, ignoring case ("anna" finds "Anna")."""
    return unicodedata.normalize("NFC", " ".join(unicodedata.normalize("NFC", str(name or "")).split()).casefold())
