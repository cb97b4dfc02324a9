"""The README's gradio_client section, run as written against a tiny studio with logins on.

Each ```python block of that section follows an `<!-- run: NAME -->` line; the blocks run in order in one
namespace, like the script they make up. Only the names the first block defines (address, login, input files)
are replaced, by a served studio's and by espeak speech; each test then checks what its block produced.
"""
import ast
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from gradio_client import Client
from gradio_client.client import Job

from studio.direct import DirectOptions
from test_train_e2e import SENTENCES

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Scripting the studio with gradio_client"
LOGIN = ("ann", "a-long-test-password")
INPUTS = {"URL", "AUTH", "SPEECH", "RECORDINGS", "RVC_FILES"}   # what the setup block defines, and we replace


def readme_blocks() -> dict[str, str]:
    """{name: code} of the section's marked python blocks, in README order; every python block is marked."""
    text = README.read_text()
    section = text[text.index(SECTION):]
    section = section[:section.find("\n## ", 1)] if "\n## " in section[1:] else section
    marked = re.findall(r"<!-- run: (\w+) -->\n```python\n(.*?)```", section, re.S)
    assert len(marked) == section.count("```python"), "a python block in the section is not marked to run"
    return dict(marked)


BLOCKS = readme_blocks()


@pytest.fixture(scope="module")
def served(new_home, launch_studio):
    url, studio, close = launch_studio(new_home(), STUDIO_AUTH=":".join(LOGIN), DEFAULT_DIFF_STEPS="2",
                                       SE_MODEL="resemblyzer", ASR_MODEL="pocketsphinx")
    studio.scenes.options = DirectOptions(tts={"max_new_tokens": 16})  # tiny TTS takes run to their frame budget
    yield url, studio
    for t in studio.training.list():  # trainings outlive the page by design; not the tests
        studio.training.stop(t.name, grace_s=10)
    close()


@pytest.fixture(scope="module")
def inputs(served, espeak, tmp_path_factory) -> dict:
    """What the setup block's names stand for here: this studio, its login, espeak speech, a tiny RVC voice."""
    import rvc.tiny

    folder = tmp_path_factory.mktemp("readme_inputs")
    voice = {"voice": folder / "Hale.pth", "index": folder / "Hale.index"}
    rvc.tiny.build_tiny(voice, rvc.tiny.tiny_dims())
    return {"URL": served[0], "AUTH": LOGIN,
            "SPEECH": str(espeak("Aye captain, the nets are mended and the boat is ready.", voice="en-us+f2")),
            "RECORDINGS": [str(espeak(s, voice="en-us+m3", name=f"rec_{i:02d}.wav"))
                           for i, s in enumerate(SENTENCES)],
            "RVC_FILES": [str(voice["voice"]), str(voice["index"])]}


@pytest.fixture(scope="module")
def ns(served, inputs) -> dict:
    """The namespace the blocks share, as one script's globals."""
    return {}


def run(namespace: dict, name: str) -> None:
    """Run one block; when it fails on a streamed update that could not be read, say why that update failed."""
    before = {id(v) for v in namespace.values()}
    try:
        exec(compile(BLOCKS[name], f"README.md <!-- run: {name} -->", "exec"), namespace)
    except Exception as e:
        jobs = [v for v in namespace.values() if isinstance(v, Job) and id(v) not in before]
        unread = [o[0] for j in jobs for o in j.outputs()
                  if isinstance(o, list) and o and isinstance(o[0], Exception)]
        if unread:
            raise AssertionError(f"block {name!r}: gradio_client could not read an update: {unread!r}") from e
        raise


def files(*paths) -> list[Path]:
    return [Path(p) for p in paths if p is not None and Path(p).is_file()]


def test_the_section_is_one_script_in_this_order():
    assert list(BLOCKS) == ["setup", "connect", "cast", "direct", "takes", "convert", "train", "scene"]
    defined = {t.id for node in ast.parse(BLOCKS["setup"]).body if isinstance(node, ast.Assign)
               for t in node.targets}
    assert defined == INPUTS  # the only names the test replaces


def test_setup_and_connect(ns, inputs):
    run(ns, "setup")
    ns.update(inputs)  # this studio and these files instead of the README's
    run(ns, "connect")
    assert ns["health"]["status"] == "ok" and ns["health"]["tiny_models"] is True
    with pytest.raises(Exception, match="(?i)login|auth|401"):  # logins are on: the same URL without one is refused
        Client(ns["URL"], verbose=False)


def test_cast(ns):
    run(ns, "cast")
    assert len(ns["samples"]) == 6 and len(files(*ns["samples"])) == 3
    members = {m["name"]: m for m in ns["cast"]}
    assert members["Captain Hale"]["origin"] == "designed" and "Mara" in members


def test_direct(ns):
    run(ns, "direct")
    assert sorted(t["rank"] for t in ns["takes"]) == [1, 2] and ns["best"]["rank"] == 1
    assert len(files(*ns["slots"])) == 2 and ns["slots"][2:] == [None] * 8
    assert {t["cast_member"] for t in ns["takes"]} == {"Captain Hale"}


def test_takes(ns):
    run(ns, "takes")
    assert [t["take_id"] for t in ns["history"]] == [t["take_id"] for t in ns["takes"]]
    assert [t["circled"] for t in ns["history"] if t["take_id"] == ns["best"]["take_id"]] == [True]
    with zipfile.ZipFile(ns["archive"]) as z:
        sheet = json.loads(z.read("takes.json"))
        assert sorted(n for n in z.namelist() if n.endswith(".flac")) == sorted(r["file"] for r in sheet)
        assert len(sheet) == 2


def test_convert(ns):
    run(ns, "convert")
    source = sf.info(ns["SPEECH"]).duration
    for path, rate, ext in ((ns["converted"], 22050, ".wav"), (ns["converted_rvc"], 40000, ".flac")):
        info = sf.info(path)
        assert (info.samplerate, Path(path).suffix) == (rate, ext)
        assert info.duration == pytest.approx(source, rel=0.1)


def test_train(ns, served):
    studio = served[1]
    run(ns, "train")
    assert ns["report"]["name"] == "Mara" and ns["report"]["files"] == len(ns["RECORDINGS"])
    assert 0.8 < ns["report"]["minutes"] <= 1.2 and ns["report"]["clips"] > 0
    assert ns["status"]["name"] == "Mara" and ns["status"]["state"] in ("starting", "training")
    assert ns["previews"] == []  # nothing saved yet
    assert ns["stopped"]["state"] == "stopped"
    assert str(studio.settings.home) not in json.dumps([ns["report"], ns["status"], ns["stopped"]])  # no server path
    assert studio.training.status("Mara")["state"] == "stopped"


def test_scene(ns):
    run(ns, "scene")
    rows = [dict(zip(ns["table"]["headers"], r)) for r in ns["table"]["data"]]
    assert [(r["character"], r["status"], r["takes"]) for r in rows] == [("HALE", "picked", 2), ("MARA", "picked", 2)]
    with zipfile.ZipFile(ns["scene_zip"]) as z:
        names = z.namelist()
        assert sorted(n for n in names if n.startswith("stems/")) == ["stems/01-HALE.wav", "stems/02-MARA.wav"]
        assert "subtitles.srt" in names
        mix, _ = sf.read(io.BytesIO(z.read("mix.wav")), dtype="float32")
        assert np.abs(mix).max() > 0
