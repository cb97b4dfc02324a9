"""Intelligibility with the real pocketsphinx model on real human speech (CMU ARCTIC)."""
import pytest

from studio.audio import load_audio
from studio.engines.asr import PocketSphinx, intelligibility, normalise_text, score_text
from studio.pick import duration_check, pick_score

FEMALE = ("cmu_arctic_female_a0009.wav", "He turned sharply, and faced Gregson across the table.")
MALE = ("cmu_arctic_male_a0007.wav", "And you always want to see it in the superlative degree.")


@pytest.fixture(scope="module")
def sphinx():
    return PocketSphinx()


def test_normalised_text_ignores_case_and_punctuation():
    assert normalise_text("He turned sharply,  and faced GREGSON!") == "he turned sharply and faced gregson"
    assert normalise_text("Don’t go.") == "don't go"
    assert score_text("Fine.", "fine").wer == 0.0


def test_skipped_words_cost_their_share():
    s = score_text("one two three four", "one two four")
    assert s.wer == pytest.approx(0.25)
    assert s.score == pytest.approx(0.75)
    assert score_text("one two", "").score == 0.0


def test_take_saying_its_line_scores_and_ranks_above_one_saying_another(shared_dir, sphinx):
    (right_file, line), (wrong_file, _) = FEMALE, MALE
    right = load_audio(shared_dir / "audio" / right_file)
    wrong = load_audio(shared_dir / "audio" / wrong_file)
    good = intelligibility(sphinx, *right, line, "english")
    bad = intelligibility(sphinx, *wrong, line, "english")
    assert good.wer <= 0.2 and good.cer <= 0.15
    assert bad.wer >= 0.8
    assert good.score - bad.score >= 0.6
    # equal similarity: intelligibility decides; the line's own recording is picked
    durations = [duration_check(w, sr, line) for w, sr in (wrong, right)]
    assert all(d.ok for d in durations)
    assert pick_score(0.8, good.score, durations[1]) > pick_score(0.8, bad.score, durations[0])


def test_pocketsphinx_does_not_score_languages_it_cannot_hear(shared_dir, sphinx):
    wave, sr = load_audio(shared_dir / "audio" / MALE[0])
    assert intelligibility(sphinx, wave, sr, "Guten Tag", "german") is None


def test_runaway_and_truncated_takes_rank_below_plausible_ones(shared_dir):
    wave, sr = load_audio(shared_dir / "audio" / MALE[0])   # 11 words in about 3.5 s of speech
    import numpy as np

    noise = np.random.default_rng(0).normal(0, 0.1, sr * 12).astype(np.float32)
    runaway = duration_check(noise, sr, "Short line.")
    truncated = duration_check(wave[: sr // 2], sr, MALE[1])
    fine = duration_check(wave, sr, MALE[1])
    assert (runaway.verdict, truncated.verdict, fine.verdict) == ("runaway", "truncated", "ok")
    scores = [pick_score(0.9, 1.0, runaway), pick_score(0.95, 1.0, truncated), pick_score(0.1, 0.0, fine)]
    assert scores[2] > max(scores[:2])


def test_tiny_whisper_has_the_hub_layout_and_auto_prefers_it(tiny_home, shared_dir):
    from studio import registry
    from studio.engines.asr import WHISPER_ENTRY, Whisper, load_recogniser

    models = tiny_home / "models"
    entry = registry.load_entries()[WHISPER_ENTRY]
    assert sorted(p.name for p in (models / WHISPER_ENTRY).iterdir()) == sorted(entry.files)
    assert not registry.check(models, names=[WHISPER_ENTRY])
    whisper = load_recogniser("auto", models)
    assert isinstance(whisper, Whisper)
    assert isinstance(load_recogniser("pocketsphinx", models), PocketSphinx)
    wave, sr = load_audio(shared_dir / "audio" / MALE[0])
    result = intelligibility(whisper, wave, sr, MALE[1], "german")   # multilingual: every language is scored
    assert result is not None and 0.0 <= result.score <= 1.0 and result.recogniser == "whisper"
    with pytest.raises(ValueError, match="ASR_MODEL='vosk': expected one of auto, pocketsphinx, whisper"):
        load_recogniser("vosk", models)
