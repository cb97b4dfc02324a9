"""Audio front-ends: 22.05 kHz log-mel, 16 kHz resampling, kaldi fbank, HuBERT input normalisation.

Golden cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every
`golden_audio_frontend*.pt`, and the feature-extractor outputs in every `golden_content*.pt`.
"""
import os
import pathlib

import pytest
import soundfile as sf
import torch

from seed_vc import audio

GOLDEN = pathlib.Path(os.environ.get("SEEDVC_GOLDEN_DIR",
                                     pathlib.Path(__file__).resolve().parents[2].parent / "shared/golden/seed_vc"))
ATOL = 1e-5


def golden_files(pattern: str) -> list[pathlib.Path]:
    return sorted(GOLDEN.glob(pattern)) if GOLDEN.is_dir() else []


@pytest.mark.golden
@pytest.mark.parametrize("path", golden_files("golden_audio_frontend*.pt"), ids=lambda p: p.name)
def test_frontends_match_upstream(path):
    g = torch.load(path, weights_only=True)
    inputs, outputs = g["inputs"], g["outputs"]
    names = [k.removesuffix("_22k") for k in inputs if k.endswith("_22k")]
    assert names, f"{path.name} has no *_22k inputs"
    for name in names:
        wave = inputs[f"{name}_22k"]
        wave_16k = audio.resample_to_16k(wave)
        torch.testing.assert_close(wave_16k, outputs[f"{name}_16k"], atol=ATOL, rtol=0)
        mel = audio.mel_spectrogram(wave)
        torch.testing.assert_close(mel, outputs[f"mel_{name}"], atol=ATOL, rtol=0)
        assert mel.shape[-1] == audio.mel_frames(wave.numel())
        fbank_key = f"kaldi_fbank_{name}16k"
        if fbank_key in outputs:
            fbank = audio.kaldi_fbank(outputs[f"{name}_16k"])
            torch.testing.assert_close(fbank, outputs[fbank_key], atol=ATOL, rtol=0)
            torch.testing.assert_close(fbank - fbank.mean(0, keepdim=True), outputs[fbank_key + "_meannorm"],
                                       atol=ATOL, rtol=0)


@pytest.mark.golden
@pytest.mark.parametrize("path", golden_files("golden_content*.pt"), ids=lambda p: p.name)
def test_hubert_inputs_match_feature_extractor(path):
    g = torch.load(path, weights_only=True)
    for name, out in g["outputs"].items():
        if "fe_input_values" not in out:
            continue
        wave = g["inputs"][f"{name}_16k"]
        values, mask = audio.hubert_inputs(wave[None], torch.tensor([wave.numel()]))
        torch.testing.assert_close(values, out["fe_input_values"], atol=ATOL, rtol=0)
        assert torch.equal(mask, out["fe_attention_mask"].to(mask.dtype))


def test_five_seconds_give_430_mel_frames():
    assert audio.mel_frames(5 * audio.SAMPLE_RATE) == 430
    assert audio.mel_spectrogram(torch.zeros(5 * audio.SAMPLE_RATE)).shape == (1, 80, 430)


def test_silence_sits_at_the_log_mel_floor():
    mel = audio.mel_spectrogram(torch.zeros(audio.SAMPLE_RATE))
    torch.testing.assert_close(mel, torch.full_like(mel, audio.LOG_MEL_FLOOR))


def test_mel_batch_rows_equal_items_alone(shared_dir):
    wave = torch.from_numpy(sf.read(shared_dir / "audio" / "cmu_arctic_male_a0007.wav", dtype="float32")[0])
    waves = [wave[:9000], wave[2000:4500], wave[:6001]]
    mels, lens = audio.mel_spectrogram_batch(waves)
    for i, w in enumerate(waves):
        alone = audio.mel_spectrogram(w)[0]
        assert lens[i] == alone.shape[-1]
        assert torch.equal(mels[i, :, : lens[i]], alone)
        assert torch.all(mels[i, :, lens[i]:] == audio.LOG_MEL_FLOOR)


def test_hubert_inputs_of_a_padded_batch_equal_items_alone():
    torch.manual_seed(0)
    waves = [torch.randn(4000) * 0.1, torch.randn(2500) * 0.3 + 0.05]
    padded, lens = audio.pad_waves(waves)
    values, mask = audio.hubert_inputs(padded, lens)
    for i, w in enumerate(waves):
        alone, alone_mask = audio.hubert_inputs(w[None], lens[i: i + 1])
        torch.testing.assert_close(values[i, : lens[i]], alone[0], atol=1e-6, rtol=0)
        assert torch.all(values[i, lens[i]:] == 0) and mask[i].sum() == lens[i]
        assert abs(float(alone.mean())) < 1e-5 and abs(float(alone.std(unbiased=False)) - 1) < 1e-3


def test_resample_keeps_duration():
    assert audio.resample_to_16k(torch.zeros(22050)).shape == (16000,)
