"""Speaker similarity: real resemblyzer weights rank the same voice first; SE_MODEL switches encoders.

The real-weights checks use resemblyzer (its trained weights ship in the pip package) on real
speech: Debian's espeak-ng voices and the CMU ARCTIC clips in ../shared/audio.
"""
import numpy as np
import pytest
from gradio_client import Client, handle_file

from compare import assert_close
from studio.audio import load_audio
from studio.engines import speaker as sp
from studio.settings import SettingsError, load_settings
from studio.tiny_speaker import build_tiny_ecapa, build_tiny_qwen_base

REFERENCE_TEXT = "The old lighthouse keeper climbed the stairs every evening to light the lamp for passing ships."
LINE_TEXT = "Bring me the map from the cabin, and tell the crew we sail at dawn tomorrow."
CAST_VOICE = "en-us+m3"
OTHER_VOICES = ["en-us+f3", "en-gb+m1", "en+f2", "en-us+m7"]


@pytest.fixture(scope="module")
def voices(espeak, shared_dir):
    """(reference path, candidate paths with the cast voice first): the same voice reads another text."""
    ref = espeak(REFERENCE_TEXT, voice=CAST_VOICE, name="spk_ref.wav")
    cands = [espeak(LINE_TEXT, voice=v, name=f"spk_{v}.wav") for v in [CAST_VOICE] + OTHER_VOICES]
    arctic = sorted((shared_dir / "audio").glob("cmu_arctic_*.wav"))
    assert len(arctic) == 2, f"expected the two CMU ARCTIC clips in {shared_dir / 'audio'}"
    return ref, cands + arctic


@pytest.fixture(scope="module")
def resemblyzer():
    return sp.SpeakerSimilarity(sp.ResemblyzerEncoder("cpu"), cache_size=4)


def test_the_same_voice_ranks_first_among_other_voices(resemblyzer, voices):
    ref, cands = voices
    scores = resemblyzer.similarity(load_audio(ref), [load_audio(c) for c in cands])
    assert int(np.argmax(scores)) == 0, scores
    assert scores[0] - max(scores[1:]) > 0.03, scores  # a clear margin, not a coin toss


def test_a_reference_is_embedded_once_and_the_cache_is_bounded(voices):
    ref, cands = voices
    sim = sp.SpeakerSimilarity(sp.ResemblyzerEncoder("cpu"), cache_size=3)
    reference = load_audio(ref)
    takes = [load_audio(c) for c in cands[:2]]
    first = sim.similarity(reference, takes)
    assert sim.computed == 3
    assert sim.similarity(reference, takes) == first and sim.computed == 3  # all cached
    sim.similarity(reference, [load_audio(c) for c in cands[2:4]])
    assert sim.computed == 5 and len(sim._cache) == 3  # LRU holds at most EMB_CACHE_SIZE
    sim.embed(*takes[0])  # evicted earlier, so computed again
    assert sim.computed == 6


def test_too_short_or_invalid_audio_gets_a_clear_message(resemblyzer):
    with pytest.raises(ValueError, match="too short to compare voices"):
        resemblyzer.embed(np.zeros(1000, np.float32), 16000)
    bad = np.zeros(16000, np.float32)
    bad[5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        resemblyzer.embed(bad, 16000)


@pytest.mark.parametrize("name, dim", [("ecapa", 24), ("qwen-base", 32)])
def test_tiny_encoders_load_offline_from_the_released_layout(tmp_path, name, dim):
    models = tmp_path / "models"
    build_tiny_ecapa(models / sp.ECAPA_ENTRY)
    build_tiny_qwen_base(models / sp.QWEN_BASE_ENTRY)
    # The ECAPA hyperparams keep the hub's pretrained_path, as the released file does: loading must
    # override it (HF_HUB_OFFLINE=1 here, so any hub access would fail).
    assert "pretrained_path: speechbrain/spkrec-ecapa-voxceleb" in (models / sp.ECAPA_ENTRY / "hyperparams.yaml").read_text()
    sim = sp.SpeakerSimilarity(sp.load_encoder(name, models, "cpu"))
    wave = np.random.default_rng(0).standard_normal(32000).astype(np.float32) * 0.1
    e = sim.embed(wave, 16000)
    assert e.shape == (dim,)
    assert_close(np.linalg.norm(e), 1.0, "embedding norm")
    assert_close(sim.similarity((wave, 16000), [(wave, 16000)])[0], 1.0, "similarity of a recording to itself")


def test_qwen_base_loads_only_speaker_tensors_strictly(tmp_path):
    from safetensors.torch import load_file, save_file

    d = tmp_path / sp.QWEN_BASE_ENTRY
    build_tiny_qwen_base(d)
    state = load_file(str(d / "model.safetensors"))
    state["talker.model.norm.weight"] = state[next(iter(state))].clone()  # other parts are skipped
    save_file(state, str(d / "model.safetensors"))
    sp.read_speaker_encoder(d, "cpu")
    state["speaker_encoder.unknown.weight"] = state["talker.model.norm.weight"].clone()
    save_file(state, str(d / "model.safetensors"))
    with pytest.raises(RuntimeError, match="unknown.weight"):
        sp.read_speaker_encoder(d, "cpu")


def test_se_model_setting_is_validated_and_resolved(tmp_path):
    with pytest.raises(SettingsError, match="SE_MODEL"):
        load_settings(env={"SE_MODEL": "xvector", "TTS_DEVICE": "cpu"})
    models = tmp_path / "models"
    assert sp.resolve("auto", models) == "resemblyzer"  # nothing installed: the embedded encoder
    with pytest.raises(ValueError, match="qwen3-tts-base"):
        sp.resolve("qwen-base", models)
    build_tiny_ecapa(models / sp.ECAPA_ENTRY)
    assert sp.resolve("auto", models) == "ecapa"  # ECAPA is the default once installed
    assert sp.resolve("resemblyzer", models) == "resemblyzer"


@pytest.mark.slow
def test_similarity_api_ranks_the_cast_voice_first_and_health_names_the_encoder(new_home, launch_studio, voices):
    ref, cands = voices
    home = new_home()
    url, studio, close = launch_studio(home, SE_MODEL="resemblyzer")
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(ref)), "Similarity keeper", "lighthouse keeper", "english",
                       api_name="/cast_upload")
        rows = client.predict("Similarity keeper", [handle_file(str(c)) for c in reversed(cands)],
                              api_name="/similarity")
        assert [r["rank"] for r in rows] == list(range(1, len(cands) + 1))
        assert rows[0]["file"] == cands[0].name and rows[0]["encoder"] == "resemblyzer"
        assert [r["similarity"] for r in rows] == sorted((r["similarity"] for r in rows), reverse=True)
        assert client.predict(api_name="/health")["speaker_encoder"] == "resemblyzer"
        with pytest.raises(Exception, match="Nobody"):
            client.predict("Nobody", [handle_file(str(cands[0]))], api_name="/similarity")
    finally:
        close()
    url, _, close = launch_studio(home)  # tiny install has ECAPA: auto picks it
    try:
        assert Client(url, verbose=False).predict(api_name="/health")["speaker_encoder"] == "ecapa"
    finally:
        close()
