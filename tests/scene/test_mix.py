"""Scene assembly: exact placement, loudness matching, stems, subtitles."""
import numpy as np
import pytest

from studio.mix import Clip, MixOptions, assemble, loudness_match, srt, webvtt

SR = 24000


def tone(seconds: float, freq: float, amp: float, sr: int = SR) -> np.ndarray:
    t = np.arange(int(round(seconds * sr))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def clips():
    return [Clip("ANNA", "You came back.", tone(1.0, 220, 0.05), SR),
            Clip("BOB", "I never left.", tone(0.5, 330, 0.5, 16000), 16000),   # other rate: resampled
            Clip("Anna", "Go.", tone(0.25, 440, 0.3), SR)]                       # same character, other case


def test_lines_in_order_with_exact_gaps_and_one_stem_per_character():
    a = assemble(clips(), SR, MixOptions(gap_s=0.5, lead_s=0.1, tail_s=0.2))
    lens = [24000, 12000, 6000]
    assert [(c.start, c.end) for c in a.cues] == [(2400, 26400), (38400, 50400), (62400, 68400)]
    assert len(a.mix) == 2400 + sum(lens) + 2 * 12000 + 4800
    assert sorted(a.stems) == ["ANNA", "BOB"]
    assert all(len(s) == len(a.mix) for s in a.stems.values())
    np.testing.assert_allclose(a.stems["ANNA"] + a.stems["BOB"], a.mix, atol=1e-6)
    bob = a.stems["BOB"]
    assert not np.any(bob[:38400]) and not np.any(bob[50400:]) and np.any(bob[38400:50400])
    assert not np.any(a.mix[26400:38400])          # the gap is silent


def test_every_line_is_loudness_matched_and_the_mix_is_peak_safe():
    import pyloudnorm

    a = assemble(clips()[:2], SR, MixOptions(target_lufs=-20.0))
    meter = pyloudnorm.Meter(SR)
    levels = [meter.integrated_loudness(a.mix[c.start:c.end].astype(np.float64)) for c in a.cues]
    assert levels == pytest.approx([-20.0, -20.0], abs=0.3)
    loud = assemble(clips(), SR, MixOptions(target_lufs=-3.0))
    assert np.max(np.abs(loud.mix)) <= MixOptions().peak + 1e-6
    assert np.max(np.abs(loudness_match(np.zeros(100, np.float32), SR))) == 0.0


def test_subtitles_carry_the_line_timings():
    a = assemble(clips(), SR, MixOptions(gap_s=0.5, lead_s=0.1))
    assert srt(a.cues, SR).splitlines()[:7] == [
        "1", "00:00:00,100 --> 00:00:01,100", "ANNA: You came back.", "",
        "2", "00:00:01,600 --> 00:00:02,100", "BOB: I never left."]
    vtt = webvtt(a.cues, SR).splitlines()
    assert vtt[0] == "WEBVTT"
    assert vtt[2:5] == ["1", "00:00:00.100 --> 00:00:01.100", "<v ANNA>You came back."]


def test_bad_gap_is_refused():
    with pytest.raises(ValueError, match="gap is -1 s; choose 0 to 10 s"):
        assemble(clips(), SR, MixOptions(gap_s=-1))
