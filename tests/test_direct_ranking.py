"""Ranking with real weights: resemblyzer (its weights ship in the package) scores real recordings against a cast
member made from one espeak-ng voice; Director.rank puts the same voice reading another text first, ahead of other
espeak-ng voices and the CMU ARCTIC speakers of shared/audio."""
import pytest

from studio.audio import load_audio
from studio.service import Studio
from studio.settings import load_settings

# well-separated espeak-ng voices under resemblyzer (notes/studio_ux.md §5: only m1 vs m3 are confusable)
VOICES = ["en-us+f2", "en-us+whisper", "en-us+Andy", "en-us+Annie", "en-gb+klatt", "en-us+m1"]
REFERENCE_TEXT = "I have kept this lighthouse for thirty years and never once missed a night."
TAKE_TEXT = "Bring the lamp up the stairs, the storm will be on us before the tide turns."


@pytest.fixture(scope="module")
def studio(new_home):
    s = Studio(load_settings(env={"STUDIO_HOME": str(new_home()), "TTS_DEVICE": "cpu", "SE_MODEL": "resemblyzer"}))
    assert s.speaker().name == "resemblyzer"
    return s


@pytest.fixture(scope="module")
def candidates(espeak, shared_dir):
    """(label, path): every voice reading the take text, plus the two CMU ARCTIC speakers."""
    out = [(voice, espeak(TAKE_TEXT, voice=voice, name=f"take-{voice}.wav")) for voice in VOICES]
    return out + [(p.stem, p) for p in sorted((shared_dir / "audio").glob("cmu_arctic_*.wav"))]


@pytest.mark.parametrize("cast_voice", ["en-us+f2", "en-us+whisper", "en-gb+klatt", "en-us+Andy"])
def test_the_cast_members_own_voice_ranks_first(studio, espeak, candidates, cast_voice):
    name = f"Rank {cast_voice}"
    studio.cast_upload(espeak(REFERENCE_TEXT, voice=cast_voice, name=f"ref-{cast_voice}.wav"), name)
    reference = studio.library.reference(name)
    audio = [load_audio(path) for _, path in candidates]
    scores = studio.speaker().similarity(reference, audio)
    takes = [studio.takes.add(project=f"ranking {cast_voice}", line=TAKE_TEXT, direction="", instruct="",
                              cast_member=name, backend="seed-vc", rvc_voice=None, settings={"candidate": label},
                              seed=i, tts_seed=0, batch_id="real", audio=wave_sr, tts_audio=wave_sr,
                              similarity=score)
             for i, ((label, _), wave_sr, score) in enumerate(zip(candidates, audio, scores))]
    ranked = studio.director.rank(takes)
    assert ranked[0].settings["candidate"] == cast_voice
    assert [t.rank for t in ranked] == list(range(1, len(candidates) + 1))
    assert ranked[0].similarity > ranked[1].similarity
