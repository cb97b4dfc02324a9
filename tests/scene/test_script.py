"""Script import: the three forms, notes kept, and clear refusals."""
import pytest

from studio.script import SCRIPT, Line, Script, ScriptError, ScriptOptions, parse_script

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
