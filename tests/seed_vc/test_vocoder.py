"""BigVGAN v2 vocoder and batched vocoding.

Golden cases are discovered from $SEEDVC_GOLDEN_DIR (default ../shared/golden/seed_vc): every `golden_vocoder*.pt`
(`h` config, weight-norm `state_dict`, mel_* inputs with wav_* outputs; `mel_batch_zero_padded` -> `wav_batch`).
"""
import math

import pytest
import torch

from compare import assert_close
from seed_vc.audio import HOP_LENGTH, LOG_MEL_FLOOR
from seed_vc.bigvgan import RECEPTIVE_FIELD_FRAMES, BigVGAN, vocode_batch
from seed_vc.checkpoints import load_strict
from seedvc_golden_models import cases


@pytest.fixture(scope="module", params=cases("golden_vocoder*.pt"))
def case(request):
    g = torch.load(request.param, weights_only=True)
    model = BigVGAN(g["h"]).eval()
    load_strict(model, g["state_dict"], request.param)
    return model, g


@pytest.mark.golden
def test_vocoder_matches_upstream(case):
    model, g = case
    singles = [k.removeprefix("mel_") for k in g["inputs"] if f"wav_{k.removeprefix('mel_')}" in g["outputs"]]
    assert singles
    with torch.inference_mode():
        for name in singles:
            wave = model(g["inputs"][f"mel_{name}"])
            assert_close(wave, g["outputs"][f"wav_{name}"], f"wav_{name}")
        if "mel_batch_zero_padded" in g["inputs"]:  # upstream zero padding, reproduced as is
            wave = model(g["inputs"]["mel_batch_zero_padded"])
            assert_close(wave, g["outputs"]["wav_batch"], "wav_batch")


@pytest.mark.golden
def test_vocode_batch_is_exact_up_to_the_last_receptive_field(case):
    """Bound: samples before a row's last 17 frames equal the row alone; the tail depends only on the row."""
    model, g = case
    hop = math.prod(g["h"]["upsample_rates"])  # samples per mel frame of this case's vocoder
    mels = [g["inputs"][k][0] for k in sorted(g["inputs"]) if k.startswith("mel_") and "batch" not in k]
    lens = torch.tensor([m.shape[-1] for m in mels])
    padded = torch.zeros(len(mels), mels[0].shape[0], int(lens.max()))
    for i, m in enumerate(mels):
        padded[i, :, : m.shape[-1]] = m
    batch = vocode_batch(model, padded, lens)
    for i, m in enumerate(mels):
        assert batch[i].shape == (m.shape[-1] * hop,)
        with torch.inference_mode():
            alone = model(m[None])[0, 0]
        exact = (m.shape[-1] - RECEPTIVE_FIELD_FRAMES) * hop
        # The padding's influence fades at the receptive field's edge rather than stopping: the last samples before
        # it differ by ~5e-5 of the scale, within the default tolerance but above pure rounding.
        assert_close(batch[i][:exact], alone[:exact], f"row {i} before its last receptive field")
        (own,) = vocode_batch(model, m[None], lens[i: i + 1])  # the tail does not depend on batch mates
        assert_close(batch[i], own, f"row {i} alone in vocode_batch")


def test_vocode_batch_pads_with_silence_not_zeros():
    torch.manual_seed(0)
    h = dict(resblock="1", upsample_rates=[4, 4, 2, 2, 2, 2], upsample_kernel_sizes=[8, 8, 4, 4, 4, 4],
             upsample_initial_channel=64, resblock_kernel_sizes=[3], resblock_dilation_sizes=[[1]],
             use_tanh_at_final=False, use_bias_at_final=False, activation="snakebeta", snake_logscale=True,
             num_mels=80)
    model = BigVGAN(h).eval()
    calls = []
    model.conv_pre.register_forward_hook(lambda mod, args, out: calls.append(args[0].clone()))
    mels = torch.randn(2, 80, 10)
    waves = vocode_batch(model, mels, torch.tensor([10, 4]))
    assert [w.shape[0] for w in waves] == [10 * HOP_LENGTH, 4 * HOP_LENGTH]
    seen = calls[0]
    assert seen.shape[-1] == 10 + RECEPTIVE_FIELD_FRAMES
    assert torch.all(seen[1, :, 4:] == LOG_MEL_FLOOR) and torch.all(seen[0, :, 10:] == LOG_MEL_FLOOR)
    assert all(float(w.abs().max()) <= 1.0 for w in waves)
