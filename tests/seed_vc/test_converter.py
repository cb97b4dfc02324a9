"""SeedVC.convert behaviour on the golden reduced models: K takes of different lengths in one call equal each take
converted alone (both paths, including a source that needs two context windows), seeds make takes reproducible,
outputs have the source's duration at 22.05 kHz, and bad input fails with a message that names the problem.
"""
import pathlib

import numpy as np
import pytest
import soundfile as sf
import torch

import seed_vc.converter

from compare import assert_close
from reference_data import require
from seed_vc import PATH_KEYS, load_model
from seed_vc.audio import HOP_LENGTH, SAMPLE_RATE, mel_frames, resample_to_16k
from seed_vc.bigvgan import RECEPTIVE_FIELD_FRAMES
from seed_vc.tiny import build_tiny, load_dims
from seedvc_golden_models import GOLDEN, build_golden_seedvc

TINY_YAML = pathlib.Path(__file__).resolve().parents[2] / "configs" / "seed_vc_tiny.yaml"

# Every stage is computed per row (content with masks, per-row length regulation, key-masked DiT, one vocoder call
# per window); the only batch effect is the summation order of attention over extra masked keys, ~1e-7 on the
# mel, which the vocoder does not amplify past ~1e-6: float32 rounding, so compare.assert_close's tolerance holds
# (a real leak between rows moves samples by 1e-2 or more).


@pytest.fixture(scope="module")
def model():
    # 3 s context windows: the 1 s reference prompt leaves 172 frames (2 s) per window, so a 2.6 s take needs two
    return build_golden_seedvc(max_context_s=3, max_reference_s=1.5, ar_max_content_len=141)


@pytest.fixture(scope="module")
def audio():
    src, sr = sf.read(require(GOLDEN / "e2e_src.wav"), dtype="float32")
    ref, ref_sr = sf.read(require(GOLDEN / "e2e_ref.wav"), dtype="float32")
    assert sr == ref_sr == SAMPLE_RATE
    return src, ref


@pytest.fixture(scope="module")
def reference(model, audio):
    return model.prepare_reference(audio[1], SAMPLE_RATE)


def takes(src: np.ndarray) -> list[np.ndarray]:
    return [src[: int(1.0 * SAMPLE_RATE)], src[SAMPLE_RATE: int(3.6 * SAMPLE_RATE)], src[-int(0.7 * SAMPLE_RATE):]]


@pytest.mark.parametrize("convert_style, anonymize", [(False, False), (True, False), (True, True)],
                         ids=["timbre", "style", "style-anonymized"])
def test_batched_takes_equal_takes_alone(model, audio, reference, convert_style, anonymize):
    sources, seeds = takes(audio[0]), [11, 12, 13]
    kwargs = dict(diffusion_steps=2, convert_style=convert_style, anonymization_only=anonymize)
    batch = model.convert(sources, SAMPLE_RATE, reference, seeds=seeds, **kwargs)
    for i, (source, seed, out) in enumerate(zip(sources, seeds, batch)):
        alone = model.convert([source], SAMPLE_RATE, reference, seeds=[seed], **kwargs)[0]
        assert_close(out, alone, f"take {i} in a batch")


def test_batched_vocoder_changes_only_window_tails(model, audio, reference):
    """batch_vocoder pads windows into shared vocoder calls: same lengths, and a single-window take only differs in
    its last RECEPTIVE_FIELD_FRAMES (+1) frames (there by up to the signal's own size on these random weights)."""
    sources = takes(audio[0])
    exact = model.convert(sources, SAMPLE_RATE, reference, diffusion_steps=1, seeds=[1, 2, 3])
    model.batch_vocoder = True
    try:
        fast = model.convert(sources, SAMPLE_RATE, reference, diffusion_steps=1, seeds=[1, 2, 3])
    finally:
        model.batch_vocoder = False
    tail = (RECEPTIVE_FIELD_FRAMES + 1) * HOP_LENGTH
    for i, (a, b) in enumerate(zip(exact, fast)):
        assert a.shape == b.shape
        if i != 1:  # takes 0 and 2 fit one window
            assert_close(b[:-tail], a[:-tail], f"take {i} before its tail")


def test_timbre_output_keeps_the_source_duration(model, audio, reference):
    sources = takes(audio[0])
    outs = model.convert(sources, SAMPLE_RATE, reference, diffusion_steps=1, seeds=[1, 2, 3])
    for source, out in zip(sources, outs):
        # windows overlap in content and are cross-faded, so every mel frame of the source appears once
        assert out.dtype == np.float32 and np.isfinite(out).all() and np.abs(out).max() <= 1.0
        assert out.size == mel_frames(source.size) * HOP_LENGTH


@pytest.mark.parametrize("convert_style", [False, True])
def test_stages_are_reported_in_order_for_progress_bars(model, audio, reference, convert_style):
    seen = []
    model.convert([takes(audio[0])[0]], SAMPLE_RATE, reference, diffusion_steps=1, seeds=[1],
                  convert_style=convert_style, on_stage=lambda stage, fraction: seen.append((stage, fraction)))
    expected = ["content"] + (["style (AR)"] if convert_style else []) + ["diffusion", "vocoder", "done"]
    assert [stage for stage, _ in seen] == expected
    fractions = [fraction for _, fraction in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_seeds_make_takes_reproducible(model, audio, reference):
    source = takes(audio[0])[0]
    a, b, c = model.convert([source] * 3, SAMPLE_RATE, reference, diffusion_steps=1, seeds=[5, 5, 6])
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_other_sample_rates_are_resampled(model, audio, reference):
    import librosa
    source = librosa.resample(takes(audio[0])[0], orig_sr=SAMPLE_RATE, target_sr=16000)
    out = model.convert([source], 16000, reference, diffusion_steps=1, seeds=[0])[0]
    assert abs(out.size / SAMPLE_RATE - 1.0) < 0.02


def test_load_model_reads_the_official_layouts_and_converts(tmp_path, audio):
    """Files in the released container layouts (tiny sizes) load strictly and give a take of the right length."""
    dims = load_dims(TINY_YAML)
    paths = {key: tmp_path / key for key in PATH_KEYS}
    build_tiny(paths, dims)
    tiny = load_model(paths, dims=dims)
    reference = tiny.prepare_reference(audio[1], SAMPLE_RATE)
    source = takes(audio[0])[0]
    (out,) = tiny.convert([source], SAMPLE_RATE, reference, diffusion_steps=1, seeds=[0])
    assert out.size == mel_frames(source.size) * HOP_LENGTH
    with pytest.raises(ValueError, match="paths lacks"):
        load_model({k: v for k, v in paths.items() if k != "ar"}, dims=dims)


def test_long_sources_use_upstream_content_windows(model, audio, monkeypatch):
    """Content of long audio comes in windows (first window whole, then history + new with the history's tokens
    dropped), as upstream's _process_content_features; scaled down from 30 s / 5 s to 2 s / 1 s."""
    monkeypatch.setattr(seed_vc.converter, "CONTENT_WINDOW_S", 2)
    monkeypatch.setattr(seed_vc.converter, "CONTENT_HISTORY_S", 1)
    wave = resample_to_16k(audio[0][: int(5.5 * SAMPLE_RATE)])
    wide, narrow = model._content_tokens([wave])[0]
    window, history = 2 * 16000, 16000
    expected_wide, expected_narrow, traversed, buffer = [], [], 0, None
    while traversed < wave.numel():  # upstream's loop, transcribed
        chunk = wave[:window] if buffer is None else torch.cat([buffer, wave[traversed: traversed + window - history]])
        tokens = model.content(chunk[None], torch.tensor([chunk.numel()]))
        drop = 0 if traversed == 0 else 50
        expected_wide.append(tokens.wide[0, drop:])
        expected_narrow.append(tokens.narrow[0, drop:])
        buffer = chunk[-history:]
        traversed += window if traversed == 0 else chunk.numel() - history
    assert len(expected_wide) == 5  # 0-2 s, then 1 s history + 1 s new up to 5.5 s
    assert torch.equal(wide, torch.cat(expected_wide))
    assert torch.equal(narrow, torch.cat(expected_narrow))


def test_reference_is_prepared_once(model, audio):
    ref = audio[1]
    first = model.prepare_reference(ref, SAMPLE_RATE)
    assert model.prepare_reference(ref.copy(), SAMPLE_RATE) is first
    assert first.mel.shape == (1, 80, mel_frames(ref.size))
    assert first.wide.ndim == first.narrow_reduced.ndim == 1
    assert (first.narrow_reduced[1:] != first.narrow_reduced[:-1]).all()


def test_reference_cache_keeps_the_most_recent(model, audio):
    size = model.reference_cache_size
    model.reference_cache_size = 1
    try:
        a = model.prepare_reference(audio[1], SAMPLE_RATE)
        b = model.prepare_reference(audio[0][:SAMPLE_RATE], SAMPLE_RATE)
        assert model.prepare_reference(audio[0][:SAMPLE_RATE], SAMPLE_RATE) is b
        assert model.prepare_reference(audio[1], SAMPLE_RATE) is not a  # evicted, prepared again
    finally:
        model.reference_cache_size = size


@pytest.mark.parametrize("ref, sr, message", [
    (np.zeros(0, np.float32), SAMPLE_RATE, "empty"),
    (np.full(SAMPLE_RATE // 4, 0.1, np.float32), SAMPLE_RATE, "too short"),
    (np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, "silent"),
    (np.full(SAMPLE_RATE, np.nan, np.float32), SAMPLE_RATE, "NaN"),
    (np.zeros((2, SAMPLE_RATE), np.float32), SAMPLE_RATE, "mono"),
    (np.zeros(SAMPLE_RATE, np.int16), SAMPLE_RATE, "float"),
    (np.full(SAMPLE_RATE, 0.1, np.float32), 0, "sample rate"),
])
def test_bad_reference_is_rejected(model, ref, sr, message):
    with pytest.raises(ValueError, match=message):
        model.prepare_reference(ref, sr)


@pytest.mark.parametrize("sources, kwargs, message", [
    ([], {}, "non-empty list"),
    (np.zeros(SAMPLE_RATE, np.float32), {}, "non-empty list"),
    ([np.zeros(100, np.float32)], {}, "too short"),
    ([np.zeros(SAMPLE_RATE, np.float32)] * 2, {"seeds": [1]}, "1 seeds for 2 sources"),
    ([np.zeros(SAMPLE_RATE, np.float32)], {"diffusion_steps": 0}, "diffusion_steps=0"),
    ([np.zeros(SAMPLE_RATE, np.float32)], {"top_p": 1.5}, "top_p=1.5"),
    ([np.zeros(SAMPLE_RATE, np.float32)], {"length_adjust": 3.0}, "length_adjust=3.0"),
    ([np.zeros(SAMPLE_RATE, np.float32)], {"similarity_cfg_rate": -1}, "similarity_cfg_rate=-1"),
])
def test_bad_convert_arguments_are_rejected(model, reference, sources, kwargs, message):
    with pytest.raises(ValueError, match=message):
        model.convert(sources, SAMPLE_RATE, reference, **kwargs)
