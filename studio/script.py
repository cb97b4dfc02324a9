"""Script import: Fountain, `NAME (direction): line` text, or CSV -> the lines of one scene.

Fountain (the screenwriters' plain-text standard) is parsed with the fountain-py
library: character cues, dialogue, parentheticals (a line's direction) and dual
dialogue become lines; scene headings, action, transitions and notes are kept as
notes between lines, never spoken. The two simpler forms are for people who do
not write screenplays: one `NAME (direction): line` per row, or a CSV with the
columns character, line, direction.

Every problem is reported with where it is (the row of the text, or the line of the scene) and
what to do, before any rendering. The text is bounded before it is parsed (ScriptOptions: at
most 1,000,000 characters, 5,000 rows, 10,000 characters a row), and a file is decoded as an
editor would: its byte-order mark (UTF-8, UTF-16, UTF-32), else UTF-8, else Windows-1252.
A line must have words (engines.asr.has_words, the scorer's rule): "..." alone cannot be scored.
"""
from __future__ import annotations

import codecs
import csv
import io
import os
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from . import names
from .engines.asr import has_words

FORMATS = ("auto", "fountain", "text", "csv")


class ScriptError(ValueError):
    """A script the studio cannot perform; the message says where and what to fix."""


@dataclass(frozen=True)
class ScriptOptions:
    max_lines: int = 200            # the scene bound: a longer script is split into scenes
    max_line_chars: int = 500       # one spoken line (a long speech is several lines)
    max_direction_chars: int = 300  # a parenthetical / direction
    max_name_chars: int = 60        # a character cue
    max_characters: int = 30        # distinct characters in one scene
    max_chars: int = 1_000_000      # the whole text, checked before parsing (a scene is far smaller)
    max_rows: int = 5_000           # rows of text (blank ones too)
    max_row_chars: int = 10_000     # one row of text (a Fountain paragraph, a CSV record)


SCRIPT = ScriptOptions()


@dataclass(frozen=True)
class Line:
    character: str
    text: str
    direction: str = ""
    dual: bool = False              # spoken at the same time as its neighbour on the page (Fountain ^)


@dataclass(frozen=True)
class Note:
    before: int                     # index of the line this note comes before (== len(lines) at the end)
    kind: str                       # scene_heading | action | transition | note | ...
    text: str


@dataclass(frozen=True)
class Script:
    lines: tuple[Line, ...]
    notes: tuple[Note, ...] = ()
    format: str = "fountain"
    title: str = ""
    characters: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for line in self.lines:
            seen.setdefault(character_key(line.character), line.character)
        object.__setattr__(self, "characters", tuple(seen.values()))

    def as_dict(self) -> dict:
        return {"title": self.title, "format": self.format, "characters": list(self.characters),
                "lines": [asdict(x) for x in self.lines], "notes": [asdict(x) for x in self.notes]}

    @classmethod
    def from_dict(cls, d: dict) -> "Script":
        return cls(tuple(Line(**x) for x in d["lines"]), tuple(Note(**x) for x in d.get("notes", [])),
                   d.get("format", "fountain"), d.get("title", ""))


def character_key(name: str) -> str:
    """Characters match like every name (studio.names): "Anna" in the cast table is ANNA in the script."""
    return names.key(name)


def _clean(text: str) -> str:
    return " ".join(str(text or "").split())


# -- the three forms -------------------------------------------------------------------------------

_NOTE_KINDS = {"scene_heading", "action", "transition", "note", "centered", "section", "synopsis", "lyrics"}


def parse_fountain(text: str) -> Script:
    """Fountain -> lines; a parenthetical directs the dialogue after it, until the next one."""
    from fountain import ElementType, FountainParser

    doc = FountainParser().parse(text)
    lines: list[Line] = []
    notes: list[Note] = []
    state = {"character": None, "direction": "", "parts": [], "dual": False}

    def flush() -> None:
        if state["character"] is not None and state["parts"]:
            lines.append(Line(state["character"], _clean(" ".join(state["parts"])), state["direction"],
                              state["dual"]))
        state["parts"] = []

    def speak(character: str, items, dual: bool) -> None:
        flush()
        state.update(character=_clean(character), direction="", dual=dual)
        for item in items:
            if item.type == ElementType.PARENTHETICAL:
                flush()
                state["direction"] = _clean(item.text.strip().removeprefix("(").removesuffix(")"))
            elif item.type == ElementType.DIALOGUE:
                state["parts"].append(item.text)
        flush()
        state["character"] = None

    block: list = []
    cue = None
    for element in doc.elements + [None]:
        kind = element.type if element is not None else None
        if kind in (ElementType.DIALOGUE, ElementType.PARENTHETICAL) and cue is not None:
            block.append(element)
            continue
        if cue is not None:
            speak(cue.text, block, False)
            cue, block = None, []
        if element is None:
            break
        if kind == ElementType.CHARACTER:
            cue = element
        elif kind == ElementType.DUAL_DIALOGUE:
            for side in ("left", "right"):
                speak(element.metadata[f"{side}_character"].text, element.metadata[f"{side}_dialogue"], True)
        elif kind.value in _NOTE_KINDS and _clean(element.text):
            notes.append(Note(len(lines), kind.value, _clean(element.text)))
    title = doc.metadata.get("title", "")
    return Script(tuple(lines), tuple(notes), "fountain", _clean(title if isinstance(title, str) else ""))


_PLAIN = re.compile(r"^(?P<name>[^:()\[\]#]+?)\s*(?:\((?P<direction>[^)]*)\))?\s*:\s*(?P<text>.*)$")


def parse_text(text: str) -> Script:
    """`NAME (direction): line` per row; blank rows skipped; `# ...` or `[...]` rows are notes."""
    lines: list[Line] = []
    notes: list[Note] = []
    for number, row in enumerate(text.split("\n"), 1):
        row = row.strip()
        if not row:
            continue
        if row.startswith("#") or (row.startswith("[") and row.endswith("]")):
            notes.append(Note(len(lines), "note", _clean(row.lstrip("#").strip("[] "))))
            continue
        m = _PLAIN.match(row)
        if not m:
            raise ScriptError(f"row {number}: expected NAME (direction): line, got {row[:60]!r}")
        if not _clean(m["text"]):
            raise ScriptError(f"row {number}: {_clean(m['name'])} has an empty line; write what they say")
        lines.append(Line(_clean(m["name"]), _clean(m["text"]), _clean(m["direction"])))
    return Script(tuple(lines), tuple(notes), "text")


def _csv_rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """(row number, cells) of each CSV record; a quote left open would swallow the rows after it, so a
    record must end on the row it starts on."""
    reader = csv.reader(io.StringIO(text))
    last = len(text.rstrip("\n").split("\n"))
    number = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error:   # a field past csv's size limit: only an open quote makes one that long
            cells = None
        if cells is None or reader.line_num > number:
            end = "is never closed" if cells is None or reader.line_num >= last else \
                f"runs on to row {reader.line_num}"
            raise ScriptError(f"CSV row {number}: the quote opened on this row {end}, taking the rows after "
                              f"it; close it on its row (a quote inside a line is written twice: \"\")")
        yield number, cells
        number = reader.line_num + 1


def parse_csv(text: str) -> Script:
    """CSV with a header naming the columns character, line and (optionally) direction."""
    rows = _csv_rows(text)
    header = [h.strip().lower() for h in next(rows, (1, []))[1]]
    if "character" not in header or "line" not in header:
        raise ScriptError("CSV needs a header row with the columns character, line (and optionally direction)")
    col = {name: header.index(name) for name in ("character", "line", "direction") if name in header}
    lines: list[Line] = []
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header) and any(cell.strip() for cell in row[len(header):]):
            raise ScriptError(f"CSV row {number} has {len(row)} cells but the header has {len(header)}: put a "
                              f"line or direction that holds a comma in double quotes")
        cell = lambda name: _clean(row[col[name]]) if name in col and col[name] < len(row) else ""  # noqa: E731
        if not cell("character"):
            raise ScriptError(f"CSV row {number}: no character named")
        if not cell("line"):
            raise ScriptError(f"CSV row {number}: {cell('character')} has an empty line; write what they say")
        lines.append(Line(cell("character"), cell("line"), cell("direction")))
    return Script(tuple(lines), (), "csv")


# -- detection and checks --------------------------------------------------------------------------

def detect_format(text: str) -> str:
    """csv when the first row is a character,line header; text when every row is NAME: line; else fountain."""
    rows = [r.strip() for r in text.split("\n") if r.strip()]
    if not rows:
        return "fountain"
    first = [c.strip().lower() for c in next(csv.reader([rows[0]]))]
    if "character" in first and "line" in first:
        return "csv"
    spoken = [r for r in rows if not r.startswith("#") and not (r.startswith("[") and r.endswith("]"))]
    if spoken and all(_PLAIN.match(r) for r in spoken):
        return "text"
    return "fountain"


def check_script(script: Script, options: ScriptOptions = SCRIPT) -> Script:
    """Refuse what cannot be performed: no lines, too many, too long, nameless or wordless."""
    if not script.lines:
        raise ScriptError("no dialogue found: write character cues in CAPITALS above their lines (Fountain), "
                          "rows of NAME (direction): line, or a CSV with character,line,direction")
    if len(script.lines) > options.max_lines:
        raise ScriptError(f"the script has {len(script.lines)} lines; a scene holds at most {options.max_lines} "
                          f"(split it into several scenes)")
    if len(script.characters) > options.max_characters:
        raise ScriptError(f"the script has {len(script.characters)} characters; a scene holds at most "
                          f"{options.max_characters}")
    for i, line in enumerate(script.lines, 1):
        who = line.character[:40]
        try:
            names.clean(line.character, "character", options.max_name_chars, ScriptError)
        except ScriptError as e:
            raise ScriptError(f"line {i}: {e}") from None
        if not line.text:
            raise ScriptError(f"line {i}: {who} has an empty line; write what they say")
        if not has_words(line.text):
            raise ScriptError(f"line {i} ({who}): {line.text[:40]!r} has no words to speak; write what they "
                              f"say (a pause or a sigh belongs in the direction)")
        if len(line.text) > options.max_line_chars:
            raise ScriptError(f"line {i} ({who}) is {len(line.text)} characters; keep a line under "
                              f"{options.max_line_chars} (split a long speech into several lines)")
        if len(line.direction) > options.max_direction_chars:
            raise ScriptError(f"line {i} ({who}): the direction is {len(line.direction)} characters; keep it "
                              f"under {options.max_direction_chars}")
    return script


def check_text(text: str, options: ScriptOptions = SCRIPT) -> str:
    """The text bounded before any parsing (a huge paste must cost nothing), its byte-order mark gone,
    its line breaks made "\n" and its characters NFC (so names compare as studio.names does)."""
    if len(text) > options.max_chars:
        raise ScriptError(f"the script is {len(text):,} characters; a script may be at most "
                          f"{options.max_chars:,} (split it into scenes)")
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    rows = text.split("\n")
    if len(rows) > options.max_rows:
        raise ScriptError(f"the script is {len(rows):,} rows; a script may be at most {options.max_rows:,} "
                          f"(split it into scenes)")
    long = next((i for i, row in enumerate(rows, 1) if len(row) > options.max_row_chars), None)
    if long is not None:
        raise ScriptError(f"row {long} is {len(rows[long - 1]):,} characters; a row may be at most "
                          f"{options.max_row_chars:,}")
    return unicodedata.normalize("NFC", text)


def parse_script(text: str, fmt: str = "auto", options: ScriptOptions = SCRIPT) -> Script:
    """Any of the three forms -> a checked Script."""
    fmt = str(fmt or "auto").strip().lower()
    if fmt not in FORMATS:
        raise ScriptError(f"script format {fmt!r}: choose one of {', '.join(FORMATS)}")
    text = check_text(str(text or ""), options)
    if not text.strip():
        raise ScriptError("the script is empty: paste or upload a scene")
    if fmt == "auto":
        fmt = detect_format(text)
    parse = {"fountain": parse_fountain, "text": parse_text, "csv": parse_csv}[fmt]
    return check_script(parse(text), options)


# -- files -----------------------------------------------------------------------------------------

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_script(data: bytes) -> tuple[str, str]:
    """Bytes -> (text, the encoding it was read as), as an editor reads a file: a byte-order mark says
    the encoding; else UTF-8; else Windows-1252 (which also reads Latin-1's letters)."""
    for bom, encoding in _BOMS:   # UTF-32 LE first: its mark begins with UTF-16 LE's
        if data.startswith(bom):
            try:
                return data.decode(encoding), encoding.removesuffix("-sig").upper()
            except UnicodeDecodeError as e:
                raise ScriptError(f"the file says it is {encoding.removesuffix('-sig').upper()} but byte "
                                  f"{e.start:,} is not: save it again as UTF-8") from None
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252"), "Windows-1252"
    except UnicodeDecodeError:
        return data.decode("latin-1"), "Latin-1"


def read_script_file(path: str | os.PathLike, options: ScriptOptions = SCRIPT) -> tuple[str, str]:
    """An uploaded script file -> (its text, a note for the person when it was not plain UTF-8).
    Its size is checked before it is read: a script of max_chars in any encoding fits in 4 bytes each."""
    path = Path(path)
    limit = 4 * options.max_chars
    size = path.stat().st_size
    if size > limit:
        raise ScriptError(f"{path.name} is {size:,} bytes; a script file may be at most {limit:,}")
    text, encoding = decode_script(path.read_bytes())
    if "\x00" in text:
        raise ScriptError(f"{path.name} is not a text file (it holds NUL bytes): upload the script as plain text")
    check_text(text, options)
    return text, "" if encoding == "UTF-8" else f"{path.name} was read as {encoding} text."
