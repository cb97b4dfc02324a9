"""f0 extraction on real speech gives plausible pitch; silence is unvoiced; bad requests fail clearly."""
import numpy as np
import pytest
import soundfile as sf
import torch

from compare import assert_close
from rvc.pitch import coarse_f0, extract_f0, shift_key

CLIPS = {"cmu_arctic_male_a0007.wav": (100, 150), "cmu_arctic_female_a0009.wav": (160, 210)}


def _clip(shared_dir, name):
    audio, sr = sf.read(shared_dir / "audio" / name, dtype="float32")
    assert sr == 16000
    return audio


@pytest.mark.parametrize("method", ["fcpe", "harvest"])
@pytest.mark.parametrize("name", sorted(CLIPS))
def test_median_f0_of_real_speech_is_plausible(shared_dir, name, method):
    audio = _clip(shared_dir, name)
    f0 = extract_f0(audio, method)
    assert f0.shape == (len(audio) // 160 + 1,)
    voiced = f0[f0 > 0]
    assert len(voiced) > 0.4 * len(f0)
    lo, hi = CLIPS[name]
    assert lo < np.median(voiced) < hi


@pytest.mark.parametrize("method", ["fcpe", "harvest", "dio"])
def test_silence_is_unvoiced(method):
    f0 = extract_f0(np.zeros(16000, dtype=np.float32), method)
    assert f0.shape == (101,) and not f0.any()


def test_unknown_method_lists_the_available_ones():
    with pytest.raises(ValueError, match="crepe.*fcpe, harvest, dio"):
        extract_f0(np.zeros(1600, dtype=np.float32), "crepe")


def test_rmvpe_without_weights_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="rmvpe.pt.*fcpe"):
        extract_f0(np.zeros(1600, dtype=np.float32), "rmvpe", rmvpe_path=tmp_path / "rmvpe.pt")


def test_key_shift_and_coarse_ids():
    f0 = np.array([0.0, 50.0, 110.0, 220.0, 1100.0, 2000.0], dtype=np.float32)
    up = shift_key(f0, 12)
    assert_close(up, 2 * f0, "f0 an octave up")
    coarse = coarse_f0(f0)
    assert coarse.dtype == np.int32
    assert coarse[0] == 1 and coarse[1] == 1 and coarse[-2] == 255 and coarse[-1] == 255
    assert coarse[2] < coarse[3]


def test_rmvpe_weights_load_strictly(shared_dir, tmp_path):
    from rvc.rmvpe import E2E, load_e2e

    state = E2E(n_blocks=1, en_de_layers=2, inter_layers=1, en_out_channels=4).state_dict()
    torch.save(state, tmp_path / "rmvpe.pt")
    f0 = extract_f0(0.1 * np.random.default_rng(0).normal(size=3200).astype(np.float32), "rmvpe",
                    rmvpe_path=tmp_path / "rmvpe.pt")
    assert f0.shape == (21,)
    torch.save({"model": state}, tmp_path / "wrapped.pt")
    with pytest.raises(ValueError, match="not a bare RMVPE state_dict"):
        load_e2e(tmp_path / "wrapped.pt")
    renamed = {k.replace("fc.1.", "fc.2."): v for k, v in state.items()}
    torch.save(renamed, tmp_path / "renamed.pt")
    with pytest.raises(ValueError, match=r"does not match the RMVPE E2E network.*2 missing \['fc.1.bias', 'fc.1.weight'\]"):
        load_e2e(tmp_path / "renamed.pt")
