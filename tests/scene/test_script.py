"""Script import: the three forms, notes kept, and clear refusals."""
import codecs
import re

import pytest

from studio.engines.asr import has_words, score_text
from studio.script import SCRIPT, Line, Script, ScriptError, ScriptOptions, parse_script, read_script_file

FOUNTAIN = """Title: The Kitchen

INT. KITCHEN - NIGHT

Rain on the window. ANNA pours tea.

ANNA
(quietly)
You came back.

BOB
I never left.
(beat)
Not really.
Not for long.

CLARA
Both of you, stop.

BOB ^
Fine.

CUT TO:
"""


def test_fountain_cues_dialogue_parentheticals_dual_and_notes():
    s = parse_script(FOUNTAIN)
    assert s.format == "fountain" and s.title == "The Kitchen"
    assert s.characters == ("ANNA", "BOB", "CLARA")
    assert s.lines == (
        Line("ANNA", "You came back.", "quietly"),
        Line("BOB", "I never left."),
        Line("BOB", "Not really. Not for long.", "beat"),
        Line("CLARA", "Both of you, stop.", "", True),
        Line("BOB", "Fine.", "", True),
    )
    assert [(n.before, n.kind, n.text) for n in s.notes] == [
        (0, "scene_heading", "INT. KITCHEN - NIGHT"),
        (0, "action", "Rain on the window. ANNA pours tea."),
        (5, "transition", "CUT TO:"),
    ]
    assert Script.from_dict(s.as_dict()) == s


def test_plain_text_form_with_notes():
    s = parse_script("# the kitchen\nAnna (softly): You came back.\n\nBob: I never left.\n")
    assert s.format == "text"
    assert s.lines == (Line("Anna", "You came back.", "softly"), Line("Bob", "I never left."))
    assert [(n.before, n.text) for n in s.notes] == [(0, "the kitchen")]


def test_csv_form_any_column_order():
    s = parse_script('line,character,direction\n"Well, hello.",ANNA,warm\nBye.,BOB,\n')
    assert s.format == "csv"
    assert s.lines == (Line("ANNA", "Well, hello.", "warm"), Line("BOB", "Bye."))


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("INT. HOUSE - DAY\n\nNobody speaks.\n", "no dialogue"),
    ("ANNA: hello\nBOB:\n", "row 2: BOB has an empty line"),
    ("character,line\nANNA,\n", "CSV row 2: ANNA has an empty line"),
    ("ANNA: " + "la " * 300, "line 1 (ANNA) is 899 characters; keep a line under 500"),
])
def test_clear_refusals(text, words):
    with pytest.raises(ScriptError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_script(text)


def test_csv_without_its_header_is_refused():
    with pytest.raises(ScriptError, match="header row with the columns character, line"):
        parse_script("name,text\nANNA,hi\n", "csv")


def test_a_script_over_the_scene_bound_is_refused():
    ok = "\n".join(f"A: line {i}" for i in range(SCRIPT.max_lines))
    assert len(parse_script(ok).lines) == SCRIPT.max_lines
    with pytest.raises(ScriptError, match=f"{SCRIPT.max_lines + 1} lines; a scene holds at most {SCRIPT.max_lines}"):
        parse_script(ok + "\nB: one more")
    with pytest.raises(ScriptError, match="at most 2"):
        parse_script("A: one\nB: two\nC: three", options=ScriptOptions(max_characters=2))


# -- bounds before parsing (a 10 MB paste must cost nothing) ---------------------------------------

@pytest.mark.parametrize("text, fmt, words", [
    ("ANNA: hi\n" * 130_000, "auto", "the script is 1,170,000 characters; a script may be at most 1,000,000"),
    ("ANNA: hi\n" * 6_000, "fountain", "the script is 6,001 rows; a script may be at most 5,000"),
    ("x" * 140_000, "auto", "row 1 is 140,000 characters; a row may be at most 10,000"),
    ("character,line\nANNA," + "x" * 140_000, "csv", "row 2 is 140,005 characters; a row may be at most 10,000"),
    ("character,line\nANNA,\"" + ("y" * 9_000 + "\n") * 20, "csv", "CSV row 2: the quote opened on this row is "
                                                                       "never closed"),
], ids=["1.2M-characters", "6001-rows", "140k-first-row", "140k-csv-field", "180k-open-quote"])
def test_oversized_scripts_are_refused_before_parsing(text, fmt, words):
    with pytest.raises(ScriptError, match=re.escape(words)):
        parse_script(text, fmt)


# -- a line must have words, by the scorer's own rule ----------------------------------------------

WORDLESS = ["...", "\u2014", "\u200b", "?!", "' '", "\u2026 \u2026"]


@pytest.mark.parametrize("spoken", WORDLESS)
def test_a_line_without_words_is_refused_with_its_number(spoken):
    assert not has_words(spoken)
    with pytest.raises(ValueError, match="no words to score against"):
        score_text(spoken, "anything")                       # the scorer agrees: it could never be ranked
    for text in (f"ANNA: Hello.\nBOB: {spoken}\n", f"ANNA\nHello.\n\nBOB\n{spoken}\n",
                 f"character,line\nANNA,Hello.\nBOB,\"{spoken}\"\n"):
        with pytest.raises(ScriptError, match=r"line 2 \(BOB\): .* has no words to speak"):
            parse_script(text)


@pytest.mark.parametrize("spoken", ["Oh.", "Ja", "\u00e7a va", "\u4f60\u597d", "42", "don't"])
def test_short_lines_with_words_are_kept(spoken):
    assert has_words(spoken) and parse_script(f"ANNA: {spoken}").lines[0].text == spoken


# -- what the text says is what is imported ---------------------------------------------------------

@pytest.mark.parametrize("text, first", [
    ("\ufeffANNA\nHello there.\n\nBOB\nBye.\n", Line("ANNA", "Hello there.")),      # Fountain
    ("\ufeffANNA: Hello there.\nBOB: Bye.\n", Line("ANNA", "Hello there.")),       # NAME: line
    ("\ufeffcharacter,line\nANNA,Hello there.\nBOB,Bye.\n", Line("ANNA", "Hello there.")),
    ("ANNA\r\nHello there.\r\n\r\nBOB\r\nBye.\r\n", Line("ANNA", "Hello there.")),   # Windows line ends
])
def test_a_byte_order_mark_or_windows_line_ends_lose_nothing(text, first):
    s = parse_script(text)
    assert s.lines[0] == first and len(s.lines) == 2 and s.characters == ("ANNA", "BOB")


@pytest.mark.parametrize("text, words", [
    ('character,line\nANNA,"Hello there.\nBOB,Bye.\nCLARA,Stop.\n', "CSV row 2: the quote opened on this row is "
                                                                     "never closed"),
    ('character,line\nANNA,"Hello there.\nBOB,Bye.\nCLARA,"Stop."\nDAN,Go.\n',
     "CSV row 2: the quote opened on this row runs on to row 4"),
    ("character,line\nANNA,Well, hello.\n", "CSV row 2 has 3 cells but the header has 2"),
])
def test_csv_rows_are_never_swallowed(text, words):
    with pytest.raises(ScriptError, match=re.escape(words)):
        parse_script(text)


SCENE = "Zo\u00eb (warm): Caf\u00e9 \u2014 \u00e0 deux?\nBOB: \u201cYes.\u201d\n"


@pytest.mark.parametrize("encoding, note", [
    ("utf-8", ""), ("utf-8-sig", ""), ("utf-16", "read as UTF-16"), ("utf-16-be", None),
    ("utf-32", "read as UTF-32"), ("cp1252", "read as Windows-1252"),
])
def test_uploaded_files_are_decoded_like_an_editor_does(tmp_path, encoding, note):
    data = SCENE.encode(encoding)
    if encoding == "utf-16-be":
        data, note = codecs.BOM_UTF16_BE + data, "read as UTF-16"
    path = tmp_path / "scene.txt"
    path.write_bytes(data)
    text, said = read_script_file(path)
    assert said == ("" if not note else f"scene.txt was {note} text.")
    assert parse_script(text).lines == (Line("Zo\u00eb", "Caf\u00e9 \u2014 \u00e0 deux?", "warm"),
                                        Line("BOB", "\u201cYes.\u201d"))


def test_latin1_and_oversized_files(tmp_path):
    path = tmp_path / "old.txt"
    path.write_bytes("ANNA: \u00bfQu\u00e9?\n".encode("latin-1") + b"BOB: \x81\n")   # 0x81: not in cp1252
    text, said = read_script_file(path)
    assert said == "old.txt was read as Latin-1 text." and text.startswith("ANNA: \u00bfQu\u00e9?\n")
    path.write_bytes(b"A: hi\n" * 700_000)
    with pytest.raises(ScriptError, match="old.txt is 4,200,000 bytes; a script file may be at most 4,000,000"):
        read_script_file(path)
    path.write_bytes(b"\x00\x01RIFF" * 100)
    with pytest.raises(ScriptError, match="not a text file"):
        read_script_file(path)


# -- character names follow the one rule for names ----------------------------------------------------

def test_character_names_are_normalised_and_refused_like_every_name():
    s = parse_script("\u1e30EEPER: One.\nK\u0301EEPER: Two.\n")     # precomposed, then decomposed
    assert s.characters == ("\u1e30EEPER",) and s.lines[1].character == "\u1e30EEPER"
    for bad in ("ANN\u202eA", "ANN\u200bA", "ANN\x1bA"):
        with pytest.raises(ScriptError, match=r"line 1: character name contains control characters"):
            parse_script(f"{bad}: Hello.\n")
