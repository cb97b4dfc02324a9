"""Dataset preparation: RVC's slicing and normalisation recipe, the experiment layout, cached features."""
import numpy as np
import pytest
import soundfile as sf
from compare import assert_close, assert_equal

from rvc.content import load_contentvec
from rvc.dataset import (FILELIST, normalise, quiet_slices, slice_and_normalise, split_pieces, write_dataset,
                         extract_features)
from rvc.pitch import coarse_f0
from rvc.tiny import build_tiny, tiny_dims

SR = 40000


def _tone(seconds: float, sr: int = SR, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)


def test_slices_at_long_silences_and_trims_the_ends():
    gap = np.zeros(int(1.5 * SR), np.float32)
    wave = np.concatenate([gap, _tone(2.0), gap, _tone(2.5), gap])  # sound at 1.5-3.5 s and 5.0-7.5 s
    slices = quiet_slices(wave, SR)
    assert len(slices) == 2
    (s0, e0), (s1, e1) = slices
    # at most 0.5 s of each silence is kept beside the sound (give or take the 60 ms RMS window)
    tol = 0.06 * SR
    assert 1.0 * SR - tol <= s0 <= 1.5 * SR and 3.5 * SR <= e0 <= 4.0 * SR + tol
    assert 4.5 * SR - tol <= s1 <= 5.0 * SR and 7.5 * SR <= e1 <= 8.0 * SR + tol
    # a pause under 2 x 0.5 s is cut once, at its quietest point
    pause = np.zeros(int(0.8 * SR), np.float32)
    (_, end), (start, _) = quiet_slices(np.concatenate([_tone(2.0), pause, _tone(2.0)]), SR)
    assert end == start and 2.0 * SR - tol <= end <= 2.8 * SR
    assert quiet_slices(np.zeros(SR * 2, np.float32), SR) == []


def test_short_pauses_do_not_cut_and_short_slices_are_merged():
    pause = np.zeros(int(0.2 * SR), np.float32)  # under the 400 ms minimum interval
    wave = np.concatenate([_tone(1.0), pause, _tone(1.0)])
    assert quiet_slices(wave, SR) == [(0, wave.shape[0])]
    gap = np.zeros(int(0.6 * SR), np.float32)  # long enough, but the first slice is under 1.5 s
    assert len(quiet_slices(np.concatenate([_tone(1.0), gap, _tone(1.0)]), SR)) == 1


def test_pieces_are_3_7_s_every_3_4_s_with_a_whole_remainder():
    pieces = split_pieces(np.arange(int(10.0 * SR), dtype=np.float32), SR)
    assert [len(p) for p in pieces] == [int(3.7 * SR), int(3.7 * SR), int(3.2 * SR)]
    assert pieces[1][0] == int(3.4 * SR)  # 0.3 s overlap
    assert [len(p) for p in split_pieces(np.zeros(int(4.0 * SR)), SR)] == [int(4.0 * SR)]


def test_normalisation_follows_the_recipe_and_skips_broken_clips():
    x = _tone(1.0, amp=0.2)
    assert_close(normalise(x), x / 0.2 * 0.675 + 0.25 * x, "normalised clip")
    assert abs(np.abs(normalise(x)).max() - 0.725) < 1e-3
    assert normalise(x * 20) is None and normalise(np.zeros(100, np.float32)) is None


def test_slice_and_normalise_resamples_and_high_passes():
    sr = 22050
    t = np.arange(int(3 * sr)) / sr
    wave = (0.3 * np.sin(2 * np.pi * 200 * t) + 0.3).astype(np.float32)  # DC offset
    clips = slice_and_normalise(wave, sr, "32k")
    assert len(clips) == 1 and abs(len(clips[0]) - 3 * 32000) < 32000 * 0.05
    assert abs(float(clips[0][32000:].mean())) < 0.01  # the 48 Hz high-pass removed the offset


def test_prepared_dataset_has_rvc_layout_and_caches_features(tmp_path, espeak):
    build_tiny({"contentvec": tmp_path / "cv", "rmvpe": tmp_path / "rmvpe.pt"}, tiny_dims())
    wave, sr = sf.read(espeak("A short sentence for the dataset, spoken twice over. Then silence."),
                       dtype="float32")
    clips = slice_and_normalise(wave, sr, "40k")
    stats = write_dataset([(c, SR) for c in clips], tmp_path / "ds", "40k")
    assert stats.clips == len(clips) >= 1
    assert stats.seconds == pytest.approx(sum(len(c) for c in clips) / SR)
    ds = tmp_path / "ds"
    gt, info16 = sf.info(ds / "0_gt_wavs" / "0.wav"), sf.info(ds / "1_16k_wavs" / "0.wav")
    assert (gt.samplerate, info16.samplerate, gt.subtype) == (SR, 16000, "FLOAT")

    calls = []
    extract_features(ds, load_contentvec(tmp_path / "cv"), "rmvpe", tmp_path / "rmvpe.pt",
                     on_progress=lambda d, t: calls.append((d, t)))
    assert calls == [(i + 1, stats.clips) for i in range(stats.clips)]
    n16 = sf.info(ds / "1_16k_wavs" / "0.wav").frames
    feats = np.load(ds / "3_feature768" / "0.npy")
    assert feats.shape == ((n16 - 400) // 320 + 1, 768) and feats.dtype == np.float32
    coarse, hz = np.load(ds / "2a_f0" / "0.wav.npy"), np.load(ds / "2b-f0nsf" / "0.wav.npy")
    assert coarse.shape == hz.shape == (n16 // 160 + 1,)
    assert_equal(coarse, coarse_f0(hz), "coarse f0")  # the ids the synthesizer embeds, from the same f0
    lines = (ds / FILELIST).read_text().split()
    assert len(lines) == stats.clips + 2  # plus two mute lines, as RVC
    assert sum(line.startswith("mute/") for line in lines) == 2
    assert all(len(line.split("|")) == 5 and line.endswith("|0") for line in lines)
    assert all((ds / p).is_file() for line in lines for p in line.split("|")[:4])
    assert np.load(ds / "mute" / "3_feature768" / "mute.npy").shape == (149, 768)
    assert np.load(ds / "mute" / "2a_f0" / "mute.wav.npy").shape == (301,)

    # a second run reuses every cached file and can write a no-f0 filelist
    mtime = (ds / "3_feature768" / "0.npy").stat().st_mtime_ns
    extract_features(ds, load_contentvec(tmp_path / "cv"), "rmvpe", rmvpe_path=None, f0=False)
    assert (ds / "3_feature768" / "0.npy").stat().st_mtime_ns == mtime
    assert all(len(line.split("|")) == 3 for line in (ds / FILELIST).read_text().split())
