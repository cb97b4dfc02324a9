"""A training step's forward pass and losses reproduce upstream RVC (golden_train_<variant>.pt).

The reduced model of the same variant's golden_<variant>.pt runs in train mode on the case's waves; the recorded
random draws (posterior noise, slice starts, NSF noise) are fed back in, so every tensor and loss can be compared.
"""
import pytest
import torch
import torch.nn.functional as F

from compare import assert_close, assert_equal
from rvc import losses
from rvc.discriminator import MultiPeriodDiscriminator
from rvc.synthesizer import Synthesizer, SynthesizerConfig
from rvc_golden import golden_for, load, params, variant_of, version_and_f0


def _slice(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack([x[i, ..., s:s + size] for i, s in enumerate(starts.tolist())])


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_train_<variant>.pt"))
def test_train_forward_and_losses_match_upstream(path):
    case = load(path)
    inputs, expected, data = case["inputs"], case["outputs"], case["data_config"]
    variant = variant_of(path)
    weights = load(golden_for(variant))  # the train case documents the same reduced weights
    torch.manual_seed(0)
    config = SynthesizerConfig.from_list(weights["config_list"])
    net = Synthesizer(config, *version_and_f0(variant))
    net.load_state_dict(weights["state_dict"])
    net.train()

    # the items' spectrograms are what RVC's loader computes from each (unpadded) wave
    for i, n in enumerate(inputs["spec_lengths"].tolist()):
        wave = inputs["wave"][i, :, :n * data["hop_length"]]
        spec = losses.spectrogram(wave, data["filter_length"], data["hop_length"], data["win_length"])
        assert_close(spec[0], inputs["spec"][i, :, :n], f"spec of item {i}")

    # Draws in upstream order: posterior noise, slice starts, then (f0 models) SineGen's phase and NSF noise.
    gaussian = [d["value"] for d in case["rng_draws_in_order"] if d["fn"] == "randn_like"]
    uniform = [d["value"] for d in case["rng_draws_in_order"] if d["fn"] == "rand"]
    z_noise, slice_rand, source_noise = gaussian[0], uniform[0], gaussian[1] if net.f0 else None
    starts = (slice_rand * (inputs["spec_lengths"] - config.segment_size + 1)).long()
    pitch = (inputs["pitch"], inputs["pitchf"]) if net.f0 else ()
    out = net(inputs["phone"], inputs["phone_lengths"], inputs["spec"], inputs["spec_lengths"], inputs["sid"],
              *pitch, z_noise=z_noise, slice_starts=starts, source_noise=source_noise)
    assert_equal(out.ids_slice, expected["ids_slice"], "ids_slice")
    for name in ("y_hat", "x_mask", "z_mask", "m_p", "logs_p", "m_q", "logs_q", "z", "z_p"):
        assert_close(getattr(out, name), expected[name], name)

    mel_args = (data["sampling_rate"], data["filter_length"], data["n_mel_channels"], data["mel_fmin"],
                data["mel_fmax"])
    mel = losses.spec_to_mel(inputs["spec"], *mel_args)
    assert_close(mel, expected["mel"], "mel")
    y_mel = _slice(mel, out.ids_slice, config.segment_size)
    assert_close(y_mel, expected["y_mel"], "y_mel")
    y_hat_mel = losses.mel_spectrogram(out.y_hat.squeeze(1), data["sampling_rate"], data["filter_length"],
                                       data["hop_length"], data["win_length"], data["n_mel_channels"],
                                       data["mel_fmin"], data["mel_fmax"])
    assert_close(y_hat_mel, expected["y_hat_mel"], "y_hat_mel")
    wave_slice = _slice(inputs["wave"], out.ids_slice * data["hop_length"], data["segment_size"])
    assert_equal(wave_slice, expected["wave_slice"], "wave_slice")  # a copy: bit-exact

    loss_mel = F.l1_loss(y_mel, y_hat_mel) * losses.C_MEL
    loss_kl = losses.kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.z_mask) * losses.C_KL
    assert_close(loss_mel, expected["loss_mel"], "loss_mel")
    assert_close(loss_kl, expected["loss_kl"], "loss_kl")

    (loss_mel + loss_kl).backward()  # the whole graph is differentiable
    assert net.enc_p.emb_phone.weight.grad is not None and net.enc_q.pre.weight.grad is not None


@pytest.mark.golden
@pytest.mark.parametrize("path", params("golden_train_<variant>.pt"))
def test_gan_losses_match_upstream(path):
    check = load(path)["loss_fn_check"]
    assert_close(losses.discriminator_loss(check["d_real"], check["d_gen"]), check["discriminator_loss"],
                 "discriminator_loss")
    assert_close(losses.generator_loss(check["d_gen"]), check["generator_loss"], "generator_loss")
    assert_close(losses.feature_loss(check["fmap_real"], check["fmap_gen"]), check["feature_loss"], "feature_loss")


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
