"""Audio front-ends: 22.05 kHz log-mel, 16 kHz resampling, kaldi fbank, HuBERT input normalisation.

Golden cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every
`golden_audio_frontend*.pt`, and the feature-extractor outputs in every `golden_content*.pt`.
"""
import pytest
import soundfile as sf
import torch

from compare import assert_close, assert_equal, scale_of
from seed_vc import audio
from seedvc_golden_models import cases


@pytest.mark.golden
@pytest.mark.parametrize("path", cases("golden_audio_frontend*.pt"))
def test_frontends_match_upstream(path):
    g = torch.load(path, weights_only=True)
    inputs, outputs = g["inputs"], g["outputs"]
    names = [k.removesuffix("_22k") for k in inputs if k.endswith("_22k")]
    assert names, f"{path.name} has no *_22k inputs"
    for name in names:
        wave = inputs[f"{name}_22k"]
        wave_16k = audio.resample_to_16k(wave)
        assert_close(wave_16k, outputs[f"{name}_16k"], f"{name} at 16 kHz")
        mel = audio.mel_spectrogram(wave)
        assert_close(mel, outputs[f"mel_{name}"], f"{name} log-mel")
        assert mel.shape[-1] == audio.mel_frames(wave.numel())
        fbank_key = f"kaldi_fbank_{name}16k"
        if fbank_key in outputs:
            fbank = audio.kaldi_fbank(outputs[f"{name}_16k"])
            assert_close(fbank, outputs[fbank_key], fbank_key)
            assert_close(fbank - fbank.mean(0, keepdim=True), outputs[fbank_key + "_meannorm"],
                         fbank_key + " minus its mean", scale=scale_of(outputs[fbank_key]))


@pytest.mark.golden
@pytest.mark.parametrize("path", cases("golden_content*.pt"))
def test_hubert_inputs_match_feature_extractor(path):
    g = torch.load(path, weights_only=True)
    for name, out in g["outputs"].items():
        if "fe_input_values" not in out:
            continue
        wave = g["inputs"][f"{name}_16k"]
        values, mask = audio.hubert_inputs(wave[None], torch.tensor([wave.numel()]))
        assert_close(values, out["fe_input_values"], f"{name}: HuBERT input values")
        assert_equal(mask, out["fe_attention_mask"].to(mask.dtype), f"{name}: attention mask")


def test_five_seconds_give_430_mel_frames():
    assert audio.mel_frames(5 * audio.SAMPLE_RATE) == 430
    assert audio.mel_spectrogram(torch.zeros(5 * audio.SAMPLE_RATE)).shape == (1, 80, 430)


def test_silence_sits_at_the_log_mel_floor():
    mel = audio.mel_spectrogram(torch.zeros(audio.SAMPLE_RATE))
    assert_close(mel, torch.full_like(mel, audio.LOG_MEL_FLOOR), "log-mel of silence")


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
        assert_close(values[i, : lens[i]], alone[0], f"row {i}")
        assert torch.all(values[i, lens[i]:] == 0) and mask[i].sum() == lens[i]
        assert abs(float(alone.mean())) < 1e-5 and abs(float(alone.std(unbiased=False)) - 1) < 1e-3


def test_resample_keeps_duration():
    assert audio.resample_to_16k(torch.zeros(22050)).shape == (16000,)
