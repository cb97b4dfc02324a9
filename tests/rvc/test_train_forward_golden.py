"""A training step's forward pass and losses reproduce upstream RVC (golden_train_v2_f0.pt).

The reduced v2 f0 model of golden_v2_f0.pt runs in train mode on two sine waves; the recorded random draws
(posterior noise, slice starts, NSF noise) are fed back in, so every tensor and loss can be compared.
"""
import pytest
import torch
import torch.nn.functional as F

from rvc import losses
from rvc.discriminator import MultiPeriodDiscriminator
from rvc.synthesizer import Synthesizer, SynthesizerConfig
from rvc_golden import GOLDEN_DIR, load, params

ATOL = 1e-5


def _slice(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack([x[i, ..., s:s + size] for i, s in enumerate(starts.tolist())])


@pytest.fixture(scope="module")
def weights() -> dict:
    path = GOLDEN_DIR / "golden_v2_f0.pt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    return load(path)


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_train_v2_f0.pt"), ids=lambda p: getattr(p, "name", "none"))
def test_train_forward_and_losses_match_upstream(path, weights):
    case = load(path)
    inputs, expected, data = case["inputs"], case["outputs"], case["data_config"]
    torch.manual_seed(0)
    config = SynthesizerConfig.from_list(weights["config_list"])
    net = Synthesizer(config, "v2", f0=True)
    net.load_state_dict(weights["state_dict"])
    net.train()

    # the items' spectrograms are what RVC's loader computes from each (unpadded) wave
    for i, n in enumerate(inputs["spec_lengths"].tolist()):
        wave = inputs["wave"][i, :, :n * data["hop_length"]]
        spec = losses.spectrogram(wave, data["filter_length"], data["hop_length"], data["win_length"])
        torch.testing.assert_close(spec[0], inputs["spec"][i, :, :n], atol=ATOL, rtol=0)

    draws = case["rng_draws_in_order"]
    z_noise, slice_rand, _sine_phase, source_noise = (d["value"] for d in draws)
    starts = (slice_rand * (inputs["spec_lengths"] - config.segment_size + 1)).long()
    out = net(inputs["phone"], inputs["phone_lengths"], inputs["spec"], inputs["spec_lengths"], inputs["sid"],
              inputs["pitch"], inputs["pitchf"], z_noise=z_noise, slice_starts=starts, source_noise=source_noise)
    assert out.ids_slice.tolist() == expected["ids_slice"].tolist()
    for name in ("y_hat", "x_mask", "z_mask", "m_p", "logs_p", "m_q", "logs_q"):
        torch.testing.assert_close(getattr(out, name), expected[name], atol=ATOL, rtol=0)
    for name in ("z", "z_p"):  # z = m + ε·exp(logs_q) reaches ~200 here: compare relative to size
        torch.testing.assert_close(getattr(out, name), expected[name], atol=ATOL, rtol=1e-5)

    mel_args = (data["sampling_rate"], data["filter_length"], data["n_mel_channels"], data["mel_fmin"], data["mel_fmax"])
    mel = losses.spec_to_mel(inputs["spec"], *mel_args)
    torch.testing.assert_close(mel, expected["mel"], atol=ATOL, rtol=0)
    y_mel = _slice(mel, out.ids_slice, config.segment_size)
    torch.testing.assert_close(y_mel, expected["y_mel"], atol=ATOL, rtol=0)
    y_hat_mel = losses.mel_spectrogram(out.y_hat.squeeze(1), data["sampling_rate"], data["filter_length"],
                                       data["hop_length"], data["win_length"], data["n_mel_channels"],
                                       data["mel_fmin"], data["mel_fmax"])
    torch.testing.assert_close(y_hat_mel, expected["y_hat_mel"], atol=1e-4, rtol=1e-5)
    wave_slice = _slice(inputs["wave"], out.ids_slice * data["hop_length"], data["segment_size"])
    torch.testing.assert_close(wave_slice, expected["wave_slice"], atol=0, rtol=0)

    loss_mel = F.l1_loss(y_mel, y_hat_mel) * losses.C_MEL
    loss_kl = losses.kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.z_mask) * losses.C_KL
    torch.testing.assert_close(loss_mel, expected["loss_mel"], atol=1e-4, rtol=1e-6)
    torch.testing.assert_close(loss_kl, expected["loss_kl"], atol=0, rtol=1e-5)

    (loss_mel + loss_kl).backward()  # the whole graph is differentiable
    assert net.enc_p.emb_phone.weight.grad is not None and net.enc_q.pre.weight.grad is not None


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_train_v2_f0.pt"), ids=lambda p: getattr(p, "name", "none"))
def test_gan_losses_match_upstream(path):
    check = load(path)["loss_fn_check"]
    torch.testing.assert_close(losses.discriminator_loss(check["d_real"], check["d_gen"]),
                               check["discriminator_loss"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(losses.generator_loss(check["d_gen"]), check["generator_loss"], atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(losses.feature_loss(check["fmap_real"], check["fmap_gen"]), check["feature_loss"],
                               atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("version", ["v2"])
def test_discriminator_scores_every_scale_and_period(version):
    torch.manual_seed(0)
    mpd = MultiPeriodDiscriminator(version)
    y, y_hat = torch.randn(1, 1, 1000), torch.randn(1, 1, 1000)
    with torch.no_grad():
        real, fake, fmap_real, fmap_fake = mpd(y, y_hat)
    assert len(real) == len(fake) == len(fmap_real) == 1 + (6 if version == "v1" else 8)
    assert all(len(f) == 7 for f in fmap_real[:1]) and all(len(f) == 6 for f in fmap_real[1:])
    assert losses.discriminator_loss(real, fake) > 0 and losses.feature_loss(fmap_real, fmap_fake) > 0
