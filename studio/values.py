"""Numbers and yes/no values from requests: scripts may send any JSON ("abc", NaN, "false"), so each is checked
by the name of its parameter before anything uses it, and refused with a message that names it."""
from __future__ import annotations

import math


def _span(lo: float | None, hi: float | None) -> str:
    def show(x: float) -> str:
        return str(int(x)) if float(x).is_integer() else f"{x:g}"

    if lo is not None and hi is not None:
        return f" from {show(lo)} to {show(hi)}"
    return f" of at least {show(lo)}" if lo is not None else (f" of at most {show(hi)}" if hi is not None else "")


def number(value, name: str, lo: float | None = None, hi: float | None = None, whole: bool = False,
           optional: bool = False) -> float | int | None:
    """`value` as a number (int when `whole`); a string, a yes/no, NaN or infinity is refused naming `name`.
    The range is only named in the message: the caller (or its widget) checks it."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a {'whole number' if whole else 'number'}{_span(lo, hi)}, got {value!r}")
    return int(round(value)) if whole else value


def flag(value, name: str) -> bool:
    """`value` as a yes/no: true/false only (a string "false" is refused, never taken as yes)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value


def whole_or_blank(value, name: str, lo: int | None = None) -> int | None:
    """A whole number typed in a text-like box (a picker that takes any value): digits, a number, or blank (None)."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    n = number(value, name, lo=lo, whole=True)
    if lo is not None and n < lo:
        raise ValueError(f"{name} must be a whole number{_span(lo, None)}, got {value!r}")
    return n
