"""End-to-end conversion on tiny random-weight models in the official file layouts (rvc.tiny)."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from transformers import HubertConfig

from rvc.content import HubertWithFinalProj, load_contentvec
from rvc.index import load_index
from rvc.model_file import load_model
from rvc.pipeline import ConvertOptions, Pipeline, Windows, convert, quiet_cut_points
from rvc.tiny import build_tiny, tiny_dims


@pytest.fixture(scope="session")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("rvc_tiny")
    paths = {"contentvec": root / "contentvec", "rmvpe": root / "rmvpe.pt", "voice": root / "voice.pth",
             "index": root / "voice.index", "pretrained_G": root / "f0G40k.pth"}
    dims = tiny_dims()
    build_tiny(paths, dims)
    v1 = {**dims, "voice": {**dims["voice"], "version": "v1"}}
    build_tiny({"voice": root / "voice_v1.pth"}, v1)
    nof0 = {**dims, "voice": {**dims["voice"], "f0": False}}
    build_tiny({"voice": root / "voice_nof0.pth"}, nof0)
    paths.update(voice_v1=root / "voice_v1.pth", voice_nof0=root / "voice_nof0.pth")
    paths["contentvec_model"] = load_contentvec(paths["contentvec"])
    return paths


@pytest.fixture(scope="session")
def speech(shared_dir):
    audio, sr = sf.read(shared_dir / "audio" / "cmu_arctic_female_a0009.wav", dtype="float32")
    return audio[8000:8000 + 24000]  # 1.5 s of voiced speech


def _pipeline(tiny, voice="voice", index=True, **kw):
    model = load_model(tiny[voice])
    index = load_index(tiny["index"]) if index else None
    return Pipeline(model, tiny["contentvec_model"], index, **kw)


def _run(pipe, audio, **options):
    torch.manual_seed(0)  # the synthesizer samples its prior and NSF noise
    return pipe(audio, ConvertOptions(**options))


def _manifest_keys(shared_dir, name, *part):
    entries = json.loads((shared_dir / "manifests" / "rvc" / name).read_text())
    for p in part:
        entries = entries[p]
    return {e["key"] for e in entries}


def test_tiny_files_use_the_official_layouts(tiny, shared_dir):
    cv = torch.load(tiny["contentvec"] / "pytorch_model.bin", weights_only=True)
    assert "final_proj.weight" in cv and "encoder.pos_conv_embed.conv.weight_g" in cv
    assert not any("parametrizations" in k for k in cv)
    rmvpe = torch.load(tiny["rmvpe"], weights_only=True)
    assert all(torch.is_tensor(v) for v in rmvpe.values())  # a bare state_dict, no wrapper keys
    assert set(rmvpe) <= _manifest_keys(shared_dir, "rmvpe_E2E.json", "state_dict")
    base = torch.load(tiny["pretrained_G"], weights_only=True)
    assert set(base) == {"model"} and any(k.startswith("enc_q.") for k in base["model"])
    assert set(base["model"]) <= _manifest_keys(shared_dir, "v2_40k_f0.json", "G_checkpoint", "model")
    voice = torch.load(tiny["voice"], weights_only=True)
    assert set(voice) == {"weight", "config", "info", "sr", "f0", "version"}
    assert voice["sr"] == "40k" and voice["f0"] == 1 and voice["version"] == "v2"
    assert all(v.dtype == torch.float16 for v in voice["weight"].values())
    assert set(voice["weight"]) <= _manifest_keys(shared_dir, "v2_40k_f0.json", "inference_pth", "weight")


def test_output_lasts_as_long_as_the_input_at_the_model_rate(tiny, speech):
    result = convert(speech, tiny["voice"], tiny["contentvec"], tiny["index"])
    assert result.sample_rate == 40000
    assert result.audio.shape == (len(speech) * 40000 // 16000,)
    assert result.audio.dtype == np.float32 and np.isfinite(result.audio).all()
    assert 0 < np.abs(result.audio).max() <= 0.99
    assert result.f0_method == "fcpe"  # "auto" without rmvpe.pt
    assert result.f0.shape == (len(speech) // 160,) and 150 < np.median(result.f0[result.f0 > 0]) < 230


def test_rmvpe_is_used_when_its_weights_are_given_and_rates_can_change(tiny, speech):
    result = convert(speech, tiny["voice"], tiny["contentvec_model"], options=ConvertOptions(resample_sr=16000),
                     rmvpe_path=tiny["rmvpe"])
    assert result.f0_method == "rmvpe"
    assert result.sample_rate == 16000 and result.audio.shape == speech.shape


def test_long_audio_is_windowed_and_keeps_its_length(tiny, shared_dir):
    audio, _ = sf.read(shared_dir / "audio" / "cmu_arctic_male_a0007.wav", dtype="float32")
    audio = audio[:56000]
    windows = Windows(pad=1, query=1, center=2, max=3)  # 3.5 s of speech -> cut near 2 s
    assert len(quiet_cut_points(audio, windows)) == 1
    result = _run(_pipeline(tiny, windows=windows), audio, f0_method="dio")
    assert result.audio.shape == (len(audio) * 40000 // 16000,)
    assert np.isfinite(result.audio).all()


def test_cut_points_fall_in_the_quietest_stretch():
    rng = np.random.default_rng(0)
    audio = 0.3 * rng.normal(size=16000 * 90)
    audio[16000 * 36: 16000 * 36 + 800] = 0  # 50 ms pause 2 s before the nominal 38 s cut
    cuts = quiet_cut_points(audio, Windows.for_dtype(torch.float32))
    assert len(cuts) == 2  # near 38 s and 76 s
    assert 16000 * 36 <= cuts[0] <= 16000 * 36 + 800 - 160
    assert quiet_cut_points(audio[:16000 * 40], Windows.for_dtype(torch.float32)) == []  # <= 41 s: one window


def test_index_blend_changes_the_output(tiny, speech):
    pipe = _pipeline(tiny)
    plain = _run(pipe, speech, f0_method="dio", index_rate=0).audio
    again = _run(pipe, speech, f0_method="dio", index_rate=0).audio
    blended = _run(pipe, speech, f0_method="dio", index_rate=0.75).audio
    np.testing.assert_array_equal(plain, again)
    assert np.abs(blended - plain).max() > 1e-4


def test_protect_keeps_unvoiced_frames_away_from_retrieval(tiny, speech):
    pipe = _pipeline(tiny)
    off = _run(pipe, speech, f0_method="dio", protect=0.5).audio
    on = _run(pipe, speech, f0_method="dio", protect=0.0).audio
    assert np.abs(on - off).max() > 1e-4  # dio leaves unvoiced frames in this clip
    # without retrieval there is nothing to protect from
    np.testing.assert_array_equal(_run(pipe, speech, f0_method="dio", index_rate=0, protect=0.5).audio,
                                  _run(pipe, speech, f0_method="dio", index_rate=0, protect=0.0).audio)


def test_model_without_pitch_guidance_converts(tiny, speech):
    result = _run(_pipeline(tiny, voice="voice_nof0"), speech)
    assert result.f0_method is None and result.audio.shape == (len(speech) * 40000 // 16000,)


def test_v1_model_with_a_v2_index_is_refused(tiny):
    with pytest.raises(ValueError, match="768-dim.*v1 voice model uses 256-dim"):
        _pipeline(tiny, voice="voice_v1")
    with pytest.raises(ValueError, match="768-dim.*256-dim"):
        convert(np.ones(1600, np.float32), tiny["voice_v1"], tiny["contentvec_model"], tiny["index"])


def test_contentvec_of_the_wrong_width_is_refused(tiny):
    narrow = HubertWithFinalProj(HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                              intermediate_size=32, conv_dim=(32,) * 7,
                                              num_conv_pos_embeddings=16))
    with pytest.raises(ValueError, match="content dimension mismatch.*768-dim.*32-dim"):
        Pipeline(load_model(tiny["voice"]), narrow)


def test_clear_errors_for_bad_inputs(tiny, speech, tmp_path):
    pipe = _pipeline(tiny)
    with pytest.raises(ValueError, match="silent"):
        pipe(np.zeros(16000, np.float32))
    with pytest.raises(ValueError, match="speaker_id=7"):
        pipe(speech, ConvertOptions(speaker_id=7))
    with pytest.raises(ValueError, match=r"index_rate=1.5 is outside \[0, 1\]"):
        ConvertOptions(index_rate=1.5)
    with pytest.raises(ValueError, match="unknown f0 method 'crepe'.*fcpe"):
        pipe(speech, ConvertOptions(f0_method="crepe"))
    with pytest.raises(FileNotFoundError, match="index file not found"):
        convert(speech, tiny["voice"], tiny["contentvec_model"], tmp_path / "missing.index")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(ValueError, match="could not decode audio"):
        convert(corrupt, tiny["voice"], tiny["contentvec_model"])


def test_a_broken_voice_never_returns_its_output_as_a_conversion(tiny, speech):
    """NaN in the decoder (a model damaged after it was checked), or a decoder stuck at one level, makes noise a
    listener hears as a click: the conversion is refused, not returned."""
    from rvc.model_file import ModelFileError

    pipe = _pipeline(tiny, index=False)
    conv_post = pipe.model.net.dec.conv_post
    hook = conv_post.register_forward_hook(lambda module, args, out: torch.full_like(out, 3.0))  # tanh(3) = 0.995
    with pytest.raises(ModelFileError, match=r"produced a constant \(DC\) signal instead of speech"):
        _run(pipe, speech, f0_method="fcpe")
    hook.remove()
    with torch.no_grad():
        for p in conv_post.parameters():
            p.fill_(float("nan"))
    with pytest.raises(ModelFileError, match=r"produced invalid \(NaN or infinite\) samples"):
        _run(pipe, speech, f0_method="fcpe")
