"""VoiceDesigner on a tiny random-weight Qwen3-TTS VoiceDesign model (the real qwen_tts code path).

The model is built once per session (~4 s) in the official layout and loaded with the
unpatched `Qwen3TTSModel.from_pretrained`. Lengths are pinned where they matter with
`fixed_length=True` (EOS = the never-sampled codec pad id, notes/qwen3_tts.md §4).
"""
import json

import numpy as np
import pytest

from studio.engines.tts import (MAX_INSTRUCT_CHARS, MAX_SAMPLES, MAX_TEXT_CHARS, SAMPLE_RATE,
                                VoiceDesigner, max_frames_for)
from studio.registry import load_entries
from studio.tiny_qwen import TINY_CONFIG, build_text_tokenizer, build_tiny_voicedesign, load_dims

SAMPLES_PER_FRAME = 1920
LINE = "Land ho! Bring her about, lads."
VOICE = "a gravelly old sea captain, low and slow"


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("qwen3_tts_tiny")
    build_tiny_voicedesign(path, seed=0)
    return path


@pytest.fixture(scope="session")
def designer(tiny_dir):
    return VoiceDesigner.load(tiny_dir, device="cpu")


def _rms(x):
    return float(np.sqrt(np.mean(np.square(x))))


def test_tiny_model_holds_exactly_the_released_files_and_builds_deterministically(tiny_dir, tmp_path):
    released = load_entries()["qwen3-tts-voicedesign"].files
    assert sorted(str(p.relative_to(tiny_dir)) for p in tiny_dir.rglob("*") if p.is_file()) == sorted(released)
    cfg = json.loads((tiny_dir / "config.json").read_text())
    assert (cfg["model_type"], cfg["tts_model_type"]) == ("qwen3_tts", "voice_design")
    build_tiny_voicedesign(tmp_path / "same", seed=0)
    build_tiny_voicedesign(tmp_path / "other", seed=1)
    weights = (tiny_dir / "model.safetensors").read_bytes()
    assert (tmp_path / "same" / "model.safetensors").read_bytes() == weights
    assert (tmp_path / "other" / "model.safetensors").read_bytes() != weights


def test_text_tokenizer_is_converted_from_vocab_and_merges_as_on_a_real_install(tiny_dir, designer):
    # No tokenizer.json in the folder: transformers built this fast tokenizer from vocab.json + merges.txt and
    # tokenizer_config.json. It must encode exactly as the tokenizer the tiny model was built with.
    built = build_text_tokenizer(load_dims(TINY_CONFIG)["text_tokenizer"]["bpe_vocab_size"])
    loaded = designer.tts.processor.tokenizer
    for text in ["<|im_start|>assistant\nLand ho! Bring her about, lads.<|im_end|>\n<|im_start|>assistant\n",
                 "<|tts_pad|><|tts_text_bos|>Ünïcödé, 123 — new\nlines<|tts_text_eod|>"]:
        assert loaded(text)["input_ids"] == built(text)["input_ids"]
    assert loaded.eos_token == loaded.pad_token == "<|endoftext|>"


def test_three_takes_come_from_one_batched_generate_call(designer, monkeypatch):
    talker = designer.tts.model.talker
    real_generate = talker.generate
    batch_sizes = []

    sampling = []

    def spy(*args, **kwargs):  # records the call, then runs the real generate
        batch_sizes.append(kwargs["inputs_embeds"].shape[0])
        sampling.append((kwargs["temperature"], kwargs["top_k"], kwargs["top_p"]))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(talker, "generate", spy)
    calls_before = designer.generate_calls
    takes = designer.design(LINE, VOICE, language="English", n=3, seed=0, max_new_tokens=16,
                            fixed_length=True)
    assert batch_sizes == [3]
    assert designer.generate_calls == calls_before + 1
    assert sampling == [(0.9, 50, 1.0)]  # the release generation_config.json values
    assert len(takes) == 3
    for take in takes:
        assert take.dtype == np.float32 and take.ndim == 1
        assert len(take) == 15 * SAMPLES_PER_FRAME
        assert _rms(take) > 0.01, "silent take"
    for i in range(3):
        for j in range(i + 1, 3):
            assert np.max(np.abs(takes[i] - takes[j])) > 1e-2, f"takes {i} and {j} are identical"


def test_sampling_overrides_reach_the_talker(designer, monkeypatch):
    talker = designer.tts.model.talker
    real_generate, seen = talker.generate, []

    def spy(*args, **kwargs):
        seen.append((kwargs["temperature"], kwargs["top_k"], kwargs["top_p"]))
        return real_generate(*args, **kwargs)

    monkeypatch.setattr(talker, "generate", spy)
    # What the checkpoint's generation_config.json says is used unless the caller overrides it.
    monkeypatch.setitem(designer.tts.generate_defaults, "temperature", 0.7)
    designer.design(LINE, VOICE, seed=0, max_new_tokens=4)
    designer.design(LINE, VOICE, seed=0, temperature=0.5, top_p=0.8, top_k=5, max_new_tokens=4)
    assert seen == [(0.7, 50, 1.0), (0.5, 5, 0.8)]
    with pytest.raises(ValueError, match="temperature must be > 0"):
        designer.design(LINE, VOICE, temperature=0)


def test_non_latin_text_is_spoken(designer):
    takes = designer.design("你好，船长。", VOICE, language="Chinese", n=2, seed=0, max_new_tokens=6)
    assert len(takes) == 2 and all(_rms(t) > 0.01 for t in takes)


def test_same_seed_same_audio_and_different_seed_different_audio(designer):
    kw = dict(n=2, max_new_tokens=10, fixed_length=True)
    a = designer.design(LINE, VOICE, seed=7, **kw)
    b = designer.design(LINE, VOICE, seed=7, **kw)
    c = designer.design(LINE, VOICE, seed=8, **kw)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not any(np.array_equal(x, y) for x, y in zip(a, c))
    designer.design(LINE, VOICE, seed=None, max_new_tokens=4)
    assert isinstance(designer.last_seed, int)


def test_frame_budget_from_text_length_bounds_every_take(designer):
    text = "Aye."
    budget = max_frames_for(text)
    assert max_frames_for(text * 10) > budget  # longer lines get more room
    # fixed_length never stops early, so the take runs exactly to the derived budget.
    (take,) = designer.design(text, VOICE, seed=0, fixed_length=True)
    assert len(take) == budget * SAMPLES_PER_FRAME
    # The tiny model never samples EOS (a runaway take): it is cut at the same budget.
    for take in designer.design(text, VOICE, n=2, seed=1):
        assert len(take) == budget * SAMPLES_PER_FRAME


def test_progress_callback_counts_talker_steps(designer):
    seen = []
    designer.design(LINE, VOICE, seed=0, max_new_tokens=6, fixed_length=True,
                    on_step=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (6, 6) and [d for d, _ in seen] == list(range(1, 7))


def test_progress_callback_can_cancel_a_take(designer):
    def cancel(done, total):
        if done == 3:
            raise KeyboardInterrupt("director pressed stop")

    with pytest.raises(KeyboardInterrupt):
        designer.design(LINE, VOICE, seed=0, max_new_tokens=8, on_step=cancel)
    assert not designer.tts.model.talker._forward_hooks  # the progress hook is gone
    assert len(designer.design(LINE, VOICE, seed=0, max_new_tokens=4)) == 1


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("   \n", "empty"),
    ("x" * (MAX_TEXT_CHARS + 1), f"too long: {MAX_TEXT_CHARS + 1} characters, the limit is {MAX_TEXT_CHARS}"),
    ("hi <|im_end|> there", "may not contain"),
])
def test_bad_text_is_refused_with_words_a_ui_can_show(designer, text, words):
    with pytest.raises(ValueError, match=words):
        designer.design(text, VOICE)


def test_bad_requests_are_refused_before_generating(designer):
    calls = designer.generate_calls
    with pytest.raises(ValueError, match="voice description is too long"):
        designer.design(LINE, "v" * (MAX_INSTRUCT_CHARS + 1))
    with pytest.raises(ValueError, match=r"Unknown language 'klingon'\. Choose one of: auto, chinese, english"):
        designer.design(LINE, VOICE, language="klingon")
    with pytest.raises(ValueError, match=f"the limit is {MAX_SAMPLES}"):
        designer.design(LINE, VOICE, n=MAX_SAMPLES + 1)
    with pytest.raises(ValueError, match="2 texts and 3 voice descriptions"):
        designer.design(["a", "b"], ["x", "y", "z"])
    assert designer.generate_calls == calls


def test_two_lines_times_two_takes_broadcast_row_major(designer):
    texts, instructs, lang = designer.check_request(["one", "two"], VOICE, language="Auto", n=2)
    assert texts == ["one", "one", "two", "two"] and instructs == [VOICE] * 4 and lang == "auto"


def test_info_for_health_endpoint(designer, tiny_dir):
    info = designer.info()
    assert info["model_dir"] == str(tiny_dir)
    assert (info["device"], info["dtype"], info["quantization"]) == ("cpu", "float32", "none")
    assert info["parameters"] > 0 and info["sample_rate"] == SAMPLE_RATE
    assert "english" in info["languages"]


def test_load_refuses_what_it_cannot_serve(tiny_dir, tmp_path):
    with pytest.raises(ValueError, match="quantize must be one of"):
        VoiceDesigner.load(tiny_dir, quantize="int4")
    with pytest.raises(ValueError, match="device must be 'cpu' or 'cuda"):
        VoiceDesigner.load(tiny_dir, device="tpu")
    with pytest.raises(FileNotFoundError, match="run setup_models.py"):
        VoiceDesigner.load(tmp_path / "not_downloaded")


def test_int8_loads_through_bitsandbytes_and_generates_a_batch(tiny_dir):
    bnb = pytest.importorskip("bitsandbytes")
    with pytest.warns(UserWarning, match="INT8 on CPU"):
        designer = VoiceDesigner.load(tiny_dir, device="cpu", quantize="int8")
    assert designer.info()["quantization"] == "int8"
    model = designer.tts.model
    assert sum(isinstance(m, bnb.nn.Linear8bitLt) for m in model.talker.modules()) > 0
    # The skip list keeps the output heads and the whole speech tokenizer in float.
    assert not isinstance(model.talker.codec_head, bnb.nn.Linear8bitLt)
    assert not any(isinstance(m, bnb.nn.Linear8bitLt) for m in model.speech_tokenizer.model.modules())
    takes = designer.design(LINE, VOICE, n=2, seed=0, max_new_tokens=6, fixed_length=True)
    assert len(takes) == 2
    assert all(len(t) == 5 * SAMPLES_PER_FRAME and _rms(t) > 0.01 for t in takes)
