"""The bad-input catalogue: every row is one hostile or mistaken request through gradio_client.

Each refused row must come back as a clear message (the `words`), with no server path in it,
no traceback in the server's output, and the library (cast members, RVC voices and their
files) exactly as before; rows of CHECKED_BEFORE_LOADING endpoints must not load a model.
Rows with words=None must succeed (odd but valid input).

To extend it for a new endpoint, add `Bad(...)` rows to CASES: `args(make)` builds the inputs,
`make` writes test files (see `Maker`).
"""
from __future__ import annotations

import json
import os
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import httpx
import numpy as np
import pytest
import soundfile as sf
import torch
from gradio_client import Client, handle_file

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Bad:
    id: str
    api: str
    args: Callable[["Maker"], tuple]
    words: str | None       # a regex the message must match; None = the request must succeed


class Evil:
    """Pickles to os.system: loading it with plain pickle would run a shell command."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Maker:
    """Writes the files the rows need into a temporary folder; every method returns a handle_file."""

    def __init__(self, folder: Path, speech: Path, voice: dict) -> None:
        self.folder, self.speech, self.voice = folder, speech, voice
        self.marker = folder / "code-ran"

    def path(self, name: str) -> Path:
        return self.folder / name

    def file(self, name: str):
        return handle_file(str(self.folder / name))

    def wave(self, name: str, wave: np.ndarray, sr: int = 16000, subtype: str | None = None):
        sf.write(self.path(name), wave, sr, subtype=subtype)
        return self.file(name)

    def bytes(self, name: str, data: bytes):
        self.path(name).write_bytes(data)
        return self.file(name)

    def speech_file(self):
        return handle_file(str(self.speech))

    def silent_flac(self, name: str, minutes: float):
        """Minutes of silence as FLAC: a few kB that would decode to millions of samples."""
        with sf.SoundFile(self.path(name), "w", 8000, 1, subtype="PCM_16") as f:
            block = np.zeros(8000 * 60, np.int16)
            for _ in range(int(minutes)):
                f.write(block)
        return self.file(name)

    def surround_flac(self, name: str, seconds: int = 60):
        """Silent 8-channel 384 kHz FLAC: about 200 kB a minute that would decode to 3 million samples a second."""
        with sf.SoundFile(self.path(name), "w", 384_000, 8, subtype="PCM_16") as f:
            for _ in range(seconds // 10):
                f.write(np.zeros((384_000 * 10, 8), np.int16))
        return self.file(name)

    def broken_voice(self, name: str, bad_weight: float | None = None, rate: int | None = None):
        """The tiny voice with one weight set to `bad_weight` (NaN, inf) or its sample rate set to `rate`."""
        raw = torch.load(self.voice["voice"], weights_only=True)
        if bad_weight is not None:
            raw["weight"]["dec.conv_post.weight"][0, 0, 3] = bad_weight
        if rate is not None:
            raw["config"][-1] = raw["sr"] = rate
        return self.torch_file(name, raw)

    def truncated_wav(self, name: str):
        """A WAV header claiming 30 s of audio followed by only 0.1 s."""
        sr, n = 16000, 16000 * 30
        header = (b"RIFF" + struct.pack("<I", 36 + 2 * n) + b"WAVEfmt "
                  + struct.pack("<IHHIIHH", 16, 1, 1, sr, 2 * sr, 2, 16) + b"data" + struct.pack("<I", 2 * n))
        return self.bytes(name, header + (3000 * np.sin(np.arange(1600) / 5)).astype(np.int16).tobytes())

    def speech_channels(self, name: str, channels: int, sr: int | None = None):
        wave, rate = sf.read(self.speech, dtype="float32")
        if sr:
            import librosa
            wave, rate = librosa.resample(wave, orig_sr=rate, target_sr=sr), sr
        return self.wave(name, np.tile(wave[:, None], (1, channels)), rate)

    def torch_file(self, name: str, obj):
        torch.save(obj, self.path(name))
        return self.file(name)

    def zip(self, name: str, members: dict[str, bytes | Path], compression=zipfile.ZIP_DEFLATED):
        with zipfile.ZipFile(self.path(name), "w", compression) as z:
            for member, data in members.items():
                if isinstance(data, Path):
                    z.write(data, member)
                else:
                    z.writestr(member, data)
        return self.file(name)

    def bomb(self, name: str, mib: int = 64):
        """One .pth member of zeros: 64 MiB from about 64 kB."""
        with zipfile.ZipFile(self.path(name), "w", zipfile.ZIP_DEFLATED) as z:
            with z.open("model.pth", "w", force_zip64=True) as member:
                block = bytes(1 << 20)
                for _ in range(mib):
                    member.write(block)
        return self.file(name)


def tone(seconds: float, sr: int = 16000) -> np.ndarray:
    return (0.3 * np.sin(2 * np.pi * 200 * np.arange(int(seconds * sr)) / sr)).astype(np.float32)


NAN = np.full(16000 * 4, np.nan, np.float32)
INF = np.where(np.arange(16000 * 4) % 100 == 0, np.inf, 0.1).astype(np.float32)
LONG = "Hoist the sails. " * 3000
SEED_VC = (None, 2, 0.7, 0.7, False, 1.0, 0)                  # reference, steps, cfgs, style, length, seed
RVC = ("Hale", 0, "fcpe", 0.75, 0.33, "wav")               # voice, key, f0 method, index rate, protect, format
NOT_AUDIO = "not a readable audio file"
# Endpoints whose every refusal comes before a model loads (/design and /convert still check inside the engine).
CHECKED_BEFORE_LOADING = {"/direct", "/take_circle", "/takes", "/export", "/scene_import", "/scene_render",
                          "/dataset_prepare", "/train_start"}


def direct(line="Steady now.", k=1, cast="Keeper", backend="seed-vc", rvc=None, seed=0, language="english"):
    """/direct's inputs: line, direction, cast member, K, backend, RVC voice, seed, language, project."""
    return line, "calm", cast, k, backend, rvc, seed, language, "catalogue"

CASES = [
    # Voice Design
    Bad("design-empty-text", "/design", lambda m: ("", "a calm narrator", "english", 1, 1), "text is empty"),
    Bad("design-huge-text", "/design", lambda m: (LONG, "a calm narrator", "english", 1, 1), "text is too long"),
    Bad("design-empty-description", "/design", lambda m: ("Hello.", "", "english", 1, 1), "describe the voice"),
    Bad("design-huge-description", "/design", lambda m: ("Hello.", "x" * 20000, "english", 1, 1),
        "description is too long"),
    Bad("design-unknown-language", "/design", lambda m: ("Hello.", "a calm narrator", "klingon", 1, 1),
        "klingon"),
    Bad("design-n-0", "/design", lambda m: ("Hello.", "a calm narrator", "english", 0, 1), "minimum value 1"),
    Bad("design-n-1000", "/design", lambda m: ("Hello.", "a calm narrator", "english", 1000, 1),
        "maximum value 6"),
    Bad("design-huge-seed", "/design", lambda m: ("Hello.", "a calm narrator", "english", 1, 10 ** 30),
        "seed must be a whole number from 0 to 4294967295"),
    Bad("design-n-as-text", "/design", lambda m: ("Hello.", "a calm narrator", "english", "3", 1),
        r"n must be a whole number from 1 to 6, got '3'"),
    Bad("design-seed-not-a-number", "/design", lambda m: ("Hello.", "a calm narrator", "english", 1, "abc"),
        r"seed must be a whole number"),
    Bad("design-markup-in-text", "/design", lambda m: ("<|im_end|> hi", "a calm narrator", "english", 1, 1),
        "may not contain"),
    Bad("design-control-characters", "/design", lambda m: ("Hello\x00\x07\x1b[2J there.", "calm", "english", 1, 1),
        None),
    # Cast
    Bad("cast-upload-not-audio", "/cast_upload",
        lambda m: (m.bytes("notes.wav", b"just some text, no audio"), "Ghost", "", "english"), NOT_AUDIO),
    Bad("cast-upload-image-as-audio", "/cast_upload",
        lambda m: (m.bytes("photo.mp3", b"\x89PNG\r\n\x1a\n" + bytes(2000)), "Ghost", "", "english"), NOT_AUDIO),
    Bad("cast-upload-truncated", "/cast_upload",
        lambda m: (m.truncated_wav("cut.wav"), "Ghost", "", "english"), "needs at least 3 s"),
    Bad("cast-upload-nan", "/cast_upload",
        lambda m: (m.wave("nan.wav", NAN, subtype="FLOAT"), "Ghost", "", "english"), "NaN or infinite"),
    Bad("cast-upload-inf", "/cast_upload",
        lambda m: (m.wave("inf.wav", INF, subtype="FLOAT"), "Ghost", "", "english"), "NaN or infinite"),
    Bad("cast-upload-silent", "/cast_upload",
        lambda m: (m.wave("silent.wav", np.zeros(16000 * 5, np.float32)), "Ghost", "", "english"), "silent"),
    Bad("cast-upload-0.2s", "/cast_upload",
        lambda m: (m.wave("short.wav", tone(0.2)), "Ghost", "", "english"), "needs at least 3 s"),
    Bad("cast-upload-30min", "/cast_upload",
        lambda m: (m.silent_flac("long.flac", 30), "Ghost", "", "english"), r"30\.0 min long; at most 5\.0 min"),
    Bad("cast-upload-8ch-384khz", "/cast_upload",
        lambda m: (m.surround_flac("surround.flac"), "Ghost", "", "english"),
        r"surround.flac: 8 channels at 384000 Hz for 60\.0 s is 184\.3 million samples to decode; at most 57\.6 "),
    Bad("cast-upload-no-name", "/cast_upload",
        lambda m: (m.speech_file(), "  ", "", "english"), "give the cast member a name"),
    Bad("cast-upload-control-name", "/cast_upload",
        lambda m: (m.speech_file(), "Ann\x1b[31m", "", "english"), "control characters"),
    Bad("cast-upload-huge-name", "/cast_upload", lambda m: (m.speech_file(), "A" * 500, "", "english"),
        "keep it under 80"),
    Bad("cast-upload-duplicate-name", "/cast_upload", lambda m: (m.speech_file(), "KEEPER", "", "english"),
        "already exists"),
    Bad("cast-delete-traversal", "/cast_delete", lambda m: ("../../library.db",), "no cast member named"),
    Bad("cast-delete-empty", "/cast_delete", lambda m: ("",), "pick a cast member first"),
    Bad("cast-rename-to-control", "/cast_rename", lambda m: ("Keeper", "a\tb\x00"), "control characters"),
    Bad("cast-restore-unknown", "/cast_restore", lambda m: ("Nobody",), "no deleted cast member named 'Nobody'"),
    Bad("similarity-unknown-cast", "/similarity", lambda m: ("Nobody", [m.speech_file()]),
        "no cast member named 'Nobody'"),
    Bad("similarity-30min-recording", "/similarity", lambda m: ("Keeper", [m.silent_flac("long.flac", 30)]),
        r"long.flac: 30\.0 min long; at most 10\.0 min"),
    Bad("similarity-too-many", "/similarity", lambda m: ("Keeper", [m.speech_file()] * 51), "at most 50"),
    # Convert with Seed-VC
    Bad("convert-no-voice", "/convert", lambda m: (m.speech_file(), None, *SEED_VC),
        "pick a cast member or upload a reference"),
    Bad("convert-unknown-cast", "/convert", lambda m: (m.speech_file(), "/etc/passwd", *SEED_VC),
        "no cast member named"),
    Bad("convert-30min-source", "/convert", lambda m: (m.silent_flac("src.flac", 30), "Keeper", *SEED_VC),
        "convert at most 10 min"),
    Bad("convert-nan-source", "/convert",
        lambda m: (m.wave("nan.wav", NAN, subtype="FLOAT"), "Keeper", *SEED_VC), "NaN or infinite"),
    Bad("convert-steps-0", "/convert",
        lambda m: (m.speech_file(), "Keeper", None, 0, 0.7, 0.7, False, 1.0, 0), "minimum value 1"),
    Bad("convert-huge-seed", "/convert",
        lambda m: (m.speech_file(), "Keeper", None, 2, 0.7, 0.7, False, 1.0, 2 ** 70), "seed must be"),
    Bad("convert-silent-reference", "/convert",
        lambda m: (m.speech_file(), None, m.wave("ref.wav", np.zeros(16000 * 5, np.float32)), 2, 0.7, 0.7,
                   False, 1.0, 0), "silent"),
    # Convert with RVC
    Bad("rvc-plain-string-as-file", "/convert_rvc", lambda m: ("/etc/passwd", *RVC),
        "malformed input: send files with gradio_client's handle_file"),
    Bad("rvc-unknown-voice", "/convert_rvc", lambda m: (m.speech_file(), "../rvc", *RVC[1:]),
        "no RVC voice named"),
    Bad("rvc-bad-format", "/convert_rvc", lambda m: (m.speech_file(), *RVC[:5], "exe"), "exe"),
    Bad("rvc-bad-pitch-method", "/convert_rvc", lambda m: (m.speech_file(), "Hale", 0, "crepe", 0.75, 0.33, "wav"),
        "crepe"),
    Bad("rvc-key-out-of-range", "/convert_rvc", lambda m: (m.speech_file(), "Hale", 99, *RVC[2:]),
        "maximum value 24"),
    Bad("rvc-key-not-a-number", "/convert_rvc", lambda m: (m.speech_file(), "Hale", "abc", *RVC[2:]),
        r"key must be a whole number from -24 to 24, got 'abc'"),
    Bad("rvc-0.2s-source", "/convert_rvc", lambda m: (m.wave("blip.wav", tone(0.2)), *RVC), "shorter than 0.5 s"),
    Bad("rvc-8-channel-source", "/convert_rvc", lambda m: (m.speech_channels("c8.wav", 8), *RVC), None),
    Bad("rvc-8ch-384khz-source", "/convert_rvc", lambda m: (m.surround_flac("surround.flac"), *RVC),
        r"184\.3 million samples to decode; at most 115\.2 million"),
    Bad("rvc-8khz-source", "/convert_rvc", lambda m: (m.speech_channels("lo.wav", 1, 8000), *RVC), None),
    # RVC voice uploads
    Bad("rvc-upload-corrupt-pth", "/rvc_upload",
        lambda m: ([m.bytes("broken.pth", b"\x80\x02not a torch file")], "Broken"), "broken.pth"),
    Bad("rvc-upload-foreign-pth", "/rvc_upload",
        lambda m: ([m.torch_file("resnet.pth", {"conv1.weight": torch.zeros(2, 2)})], "Foreign"),
        "not an RVC voice model"),
    Bad("rvc-upload-code-pth", "/rvc_upload",
        lambda m: ([m.torch_file("evil.pth", {"weight": Evil(m.marker), "config": []})], "Evil"),
        "evil.pth: not a readable PyTorch checkpoint"),
    Bad("rvc-upload-plain-pickle", "/rvc_upload",
        lambda m: ([m.bytes("evil2.pth", pickle.dumps(Evil(m.marker)))], "Evil"), "evil2.pth"),
    Bad("rvc-upload-g-checkpoint", "/rvc_upload",
        lambda m: ([m.torch_file("G_2333.pth", {"model": torch.load(m.voice["voice"], weights_only=True)["weight"],
                                                 "iteration": 10, "optimizer": {}, "learning_rate": 1e-4})],
                   "Training"), r"G_2333.pth is a training checkpoint \(G_\*\.pth\), not a voice model: tick "
                                r"'Extract the voice from this training checkpoint' and add it again"),
    Bad("rvc-upload-garbage-index", "/rvc_upload",
        lambda m: ([handle_file(str(m.voice["voice"])), m.bytes("junk.index", os.urandom(4096))], "Junk"),
        "not a readable faiss index"),
    Bad("rvc-upload-nan-weights", "/rvc_upload",
        lambda m: ([m.broken_voice("diverged.pth", bad_weight=float("nan"))], "Diverged"),
        r"diverged.pth: 1 weight tensor\(s\) hold NaN or infinite values"),
    Bad("rvc-upload-inf-weights", "/rvc_upload",
        lambda m: ([m.broken_voice("diverged.pth", bad_weight=float("inf"))], "Diverged"),
        r"diverged.pth: 1 weight tensor\(s\) hold NaN or infinite values"),
    *(Bad(f"rvc-upload-rate-{rate}", "/rvc_upload",
          lambda m, rate=rate: ([m.broken_voice("odd.pth", rate=rate)], "Odd"),
          f"odd.pth: sample rate {rate} Hz is not an RVC rate; RVC voices are 32000, 40000, 48000 Hz")
      for rate in (0, -40000, 10 ** 12)),
    Bad("rvc-upload-exe", "/rvc_upload", lambda m: ([m.bytes("setup.exe", b"MZ" + bytes(100))], "Exe"),
        "Invalid file type"),
    Bad("rvc-upload-two-models", "/rvc_upload",
        lambda m: ([handle_file(str(m.voice["voice"])), m.bytes("b.pth", b"x")], "Two"), "found 2 .pth files"),
    Bad("rvc-upload-not-a-zip", "/rvc_upload", lambda m: ([m.bytes("voice.zip", b"PK\x03\x04 nope")], "Zip"),
        "not a readable zip archive"),
    Bad("rvc-upload-zip-bomb", "/rvc_upload", lambda m: ([m.bomb("bomb.zip")], "Bomb"), "zip bomb"),
    Bad("rvc-upload-zip-many-models", "/rvc_upload",
        lambda m: ([m.zip("four.zip", {f"v{i}.pth": bytes(1000) for i in range(4)})], "Four"),
        "found 4 .pth files"),
    Bad("rvc-upload-zip-many-entries", "/rvc_upload",
        lambda m: ([m.zip("many.zip", {f"f{i}.txt": b"" for i in range(300)})], "Many"),
        "300 entries; an archive may hold at most 256"),
    Bad("rvc-upload-zip-traversal", "/rvc_upload",
        lambda m: ([m.zip("trav.zip", {"../../../library.db.pth": b"x", "/etc/cron.d/x.index": b"y"})], "Trav"),
        "0.pth: not a readable PyTorch checkpoint"),
    Bad("rvc-upload-duplicate-name", "/rvc_upload",
        lambda m: ([handle_file(str(m.voice["voice"]))], "hale"), "an RVC voice named 'hale' already exists"),
    Bad("rvc-upload-no-name", "/rvc_upload", lambda m: ([handle_file(str(m.voice["voice"]))], "  "),
        "give the RVC voice a name"),
    Bad("rvc-upload-bidi-name", "/rvc_upload", lambda m: ([handle_file(str(m.voice["voice"]))], "Hal\u202ee"),
        r"RVC voice name contains control characters \(U\+202E\)"),
    Bad("rvc-delete-empty", "/rvc_delete", lambda m: ("",), "pick an RVC voice first"),
    Bad("rvc-restore-unknown", "/rvc_restore", lambda m: ("Nobody",), "no deleted RVC voice named 'Nobody'"),
    # Cast & Direct: every refusal below comes before any model loads
    Bad("direct-k-0", "/direct", lambda m: direct(k=0), "minimum value 1"),
    Bad("direct-k-1000", "/direct", lambda m: direct(k=1000), "maximum value 10"),
    Bad("direct-empty-line", "/direct", lambda m: direct(line=" \n "), "the line is empty"),
    Bad("direct-huge-line", "/direct", lambda m: direct(line=LONG), "keep it under 300"),
    Bad("direct-wordless-line", "/direct", lambda m: direct(line="\u2026 \u2014"),
        "the line '\u2026 \u2014' has no words to speak"),
    Bad("direct-unknown-cast", "/direct", lambda m: direct(cast="../library.db"), "no cast member named"),
    Bad("direct-unknown-rvc-voice", "/direct", lambda m: direct(backend="rvc", rvc="Nobody"),
        "no RVC voice named 'Nobody'"),
    Bad("direct-huge-seed", "/direct", lambda m: direct(seed=2 ** 70),
        "seed must be a whole number from 0 to 4294967295"),
    Bad("direct-unknown-language", "/direct", lambda m: direct(language="klingon"),
        "Unknown language 'klingon'. Choose one of"),
    Bad("direct-k-not-a-number", "/direct", lambda m: direct(k="abc"),
        r"k must be a whole number from 1 to 10, got 'abc'"),
    Bad("direct-seed-not-a-number", "/direct", lambda m: direct(seed="abc"), r"seed must be a whole number"),
    Bad("take-circle-false-as-text", "/take_circle", lambda m: ("0" * 32, "false"),
        r"circled must be true or false, got 'false'"),
    Bad("take-circle-unknown", "/take_circle", lambda m: ("../../takes.db", True), "no take with id"),
    Bad("takes-huge-project", "/takes", lambda m: ("p" * 500,), "project name is 500 characters"),
    Bad("export-unknown-format", "/export", lambda m: ("catalogue", "exe"), "exe is not in the list of choices"),
    # Scene
    Bad("scene-import-empty", "/scene_import", lambda m: ("  \n ", "Empty", "auto"), "the script is empty"),
    Bad("scene-import-garbage", "/scene_import", lambda m: ("\x00\x01 %%% ))) ;;; \x7f", "Garbage", "auto"),
        "no dialogue found"),
    Bad("scene-import-huge-line", "/scene_import", lambda m: ("ANNA: " + "word " * 200, "Long", "auto"),
        r"line 1 \(ANNA\) is 999 characters; keep a line under 300"),
    Bad("scene-import-wordless-line", "/scene_import", lambda m: ("ANNA: Hello.\nBOB: ...", "Dots", "auto"),
        r"line 2 \(BOB\): '\.\.\.' has no words to speak"),
    Bad("scene-import-row-past-csv-field-limit", "/scene_import", lambda m: ("x" * 140_000, "Wide", "auto"),
        "row 1 is 140,000 characters; a row may be at most 10,000"),
    Bad("scene-import-bidi-character", "/scene_import", lambda m: ("ANN\u202eA: Hello.", "Bidi", "auto"),
        r"line 1: character name contains control characters \(U\+202E\)"),
    Bad("scene-render-unknown", "/scene_render", lambda m: ("Nobody", 1, None), "no scene named 'Nobody'"),
    # Train
    Bad("train-20s-of-audio", "/dataset_prepare", lambda m: ([m.wave("twenty.wav", tone(20))], "Short", False),
        "only 20 s of audio uploaded; training needs at least 1 minute of speech"),
    Bad("train-not-audio", "/dataset_prepare",
        lambda m: ([m.bytes("notes.wav", b"just some text, no audio")], "Notes", False),
        r"unreadable file\(s\): notes.wav"),
    Bad("train-export-epoch-not-a-number", "/train_export", lambda m: ("Nobody", "abc"),
        r"epoch must be a whole number of at least 1, got 'abc'"),
    Bad("train-no-name", "/dataset_prepare", lambda m: ([m.wave("twenty.wav", tone(20))], " ", False),
        "give the dataset a name"),
    Bad("train-start-unknown", "/train_start", lambda m: ("Nobody", 1, 1, "40k", True, 1, ""),
        "no training named 'Nobody': prepare its dataset first"),
]


@pytest.fixture(scope="module")
def studio_with_a_library(new_home, launch_studio, espeak, tmp_path_factory):
    """A served studio holding one cast member (Keeper) and one RVC voice (Hale)."""
    import rvc.tiny

    folder = tmp_path_factory.mktemp("bad_inputs_voice")
    voice = {"voice": folder / "Hale.pth", "index": folder / "added_IVF20_Flat_nprobe_1_Hale_v2.index"}
    rvc.tiny.build_tiny(voice, rvc.tiny.tiny_dims())
    speech = espeak("I have kept this lighthouse for thirty years and never once missed a night.", voice="en-us+f2",
                    name="keeper.wav")
    url, studio, close = launch_studio(new_home())
    client = Client(url, verbose=False)
    for name in ("Keeper",):
        if name not in [m["name"] for m in client.predict(api_name="/cast_list")]:
            client.predict(handle_file(str(speech)), name, "keeper", "english", api_name="/cast_upload")
    if "Hale" not in [v["name"] for v in client.predict(api_name="/rvc_list")]:
        client.predict([handle_file(str(voice["voice"])), handle_file(str(voice["index"]))], "Hale",
                       api_name="/rvc_upload")
    yield client, studio, speech, voice
    close()


def library_state(client: Client, studio) -> tuple:
    home = studio.settings.home
    files = sorted(str(p.relative_to(home)) for d in ("cast", "rvc") for p in (home / d).rglob("*"))
    return client.predict(api_name="/cast_list"), client.predict(api_name="/rvc_list"), files


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_a_clear_message_and_the_library_is_intact(studio_with_a_library, case, tmp_path, capfd):
    client, studio, speech, voice = studio_with_a_library
    make = Maker(tmp_path, speech, voice)
    before = library_state(client, studio)
    args = case.args(make)
    loaded = set(studio.models.loaded())
    capfd.readouterr()
    if case.words is None:
        out = client.predict(*args, api_name=case.api)
        assert out is not None
    else:
        with pytest.raises(Exception) as refused:
            client.predict(*args, api_name=case.api)
        message = str(refused.value)
        assert re.search(case.words, message), message
        for private in (str(studio.settings.home), os.environ.get("GRADIO_TEMP_DIR", "/tmp/gradio"), "/tmp/"):
            assert private not in message
        assert "Traceback" not in message
        if case.api in CHECKED_BEFORE_LOADING:
            assert set(studio.models.loaded()) == loaded  # the refusal cost no model load
    assert "Traceback" not in capfd.readouterr().err  # user errors are one line in the log
    assert not make.marker.exists()  # no code inside an upload ever ran
    assert library_state(client, studio) == before


def raw_call(url: str, api: str, data: list) -> tuple[int, str]:
    """POST /gradio_api/call/<api> as a script without gradio_client would: (status when joining, what came back:
    the refusal at joining, or the event's stream)."""
    url = url.rstrip("/")
    body = json.dumps({"data": data})  # NaN and Infinity as JavaScript writes them (httpx would refuse them)
    joined = httpx.post(f"{url}/gradio_api/call/{api}", content=body, headers={"content-type": "application/json"},
                        timeout=60)
    if joined.status_code != 200:
        return joined.status_code, joined.text
    return 200, httpx.get(f"{url}/gradio_api/call/{api}/{joined.json()['event_id']}", timeout=300).text


# A hand-built file input on each endpoint that takes files: /<api>, its inputs around the file.
NOT_UPLOADED = {"cast_upload": lambda f: [f, "Ghost", "", "english"], "convert_rvc": lambda f: [f, *RVC],
                "rvc_upload": lambda f: [[f], "Ghost", False], "dataset_prepare": lambda f: [[f], "Ghost", False, False]}


def test_a_file_that_was_not_uploaded_is_refused_without_server_paths(studio_with_a_library, capfd):
    client, studio, speech, voice = studio_with_a_library
    before = library_state(client, studio)
    capfd.readouterr()
    for api, inputs in NOT_UPLOADED.items():
        for path in ("x.wav", str(studio.settings.home / "library.db")):
            status, text = raw_call(client.src, api, inputs({"path": path, "meta": {"_type": "gradio.FileData"}}))
            assert status == 200 and "that file is not an upload: send files with gradio_client's handle_file(path)" \
                in text, (api, path, text)
            assert str(studio.settings.home) not in text and os.getcwd() not in text and "Cannot move" not in text
    status, text = raw_call(client.src, "rvc_upload", [[], "Ghost"])  # an input left out
    assert "2 inputs sent; this endpoint takes 3: files, name, from_checkpoint" in text, text
    assert "Traceback" not in capfd.readouterr().err
    assert library_state(client, studio) == before


def test_a_request_with_wrong_inputs_of_its_own_is_refused_before_it_joins_the_gpu_queue(studio_with_a_library):
    """The refusal comes when the job asks to join (HTTP 422), not after it waited behind other users' jobs."""
    client = studio_with_a_library[0]
    for inputs, words in ((direct(line=" \n "), "the line is empty"),
                          (direct(k="abc"), "k must be a whole number from 1 to 10"),
                          (direct(k=float("nan")), "k must be a whole number from 1 to 10, got nan"),
                          (direct(seed="12"), "seed must be a whole number"),
                          (direct(seed=float("inf")), "seed must be a whole number")):
        status, text = raw_call(client.src, "direct", list(inputs))
        assert status == 422 and words in text, (status, text)


def test_deletes_go_to_the_trash_and_come_back_through_the_api(studio_with_a_library, tmp_path):
    client, studio, speech, voice = studio_with_a_library
    before = library_state(client, studio)
    assert "Deleted Keeper" in client.predict("Keeper", api_name="/cast_delete")
    assert "Deleted RVC voice Hale" in client.predict("Hale", api_name="/rvc_delete")
    trashed = client.predict(api_name="/trash_list")
    assert [(t["kind"], t["name"]) for t in trashed[:2]] == [("rvc", "Hale"), ("cast", "Keeper")]
    assert all(t["purged_after"] > t["deleted"] for t in trashed)
    assert "Keeper" not in [m["name"] for m in client.predict(api_name="/cast_list")]
    with pytest.raises(Exception, match="no RVC voice named 'Hale'"):
        client.predict(handle_file(str(speech)), *RVC, api_name="/convert_rvc")

    assert "Restored **Keeper**" in client.predict("keeper", api_name="/cast_restore")
    assert "Restored RVC voice **Hale**" in client.predict("Hale", api_name="/rvc_restore")
    assert library_state(client, studio) == before
    assert client.predict(handle_file(str(speech)), *RVC, api_name="/convert_rvc")[0]  # the model works again
    assert client.predict(handle_file(str(speech)), "Keeper", *SEED_VC, api_name="/convert")[0]
