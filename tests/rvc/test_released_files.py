"""The RVC pretrained bases as released (lj1995/VoiceConversionWebUI pretrained_v2/f0G40k.pth: {"model": fp16 full
generator with enc_q}) and as training writes them (plus iteration, optimizer, learning_rate; Applio adds scaler)
load strictly through rvc.model_file.load_checkpoint; anything else in the weights is refused by name."""
import dataclasses

import pytest
import torch

from rvc.model_file import ModelFileError, load_checkpoint
from rvc.synthesizer import Synthesizer, release_config
from rvc.tiny import build_tiny, tiny_dims


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    dims = tiny_dims()
    path = tmp_path_factory.mktemp("rvc_released") / "pretrained_v2" / "f0G40k.pth"
    build_tiny({"pretrained_G": path}, dims)
    voice = dims["voice"]
    config = dataclasses.replace(release_config(voice["version"], voice["sr"]), **dims["synthesizer"])
    return path, lambda: Synthesizer(config, voice["version"], voice["f0"], posterior=True)


def test_the_released_base_layout_loads_strictly(base):
    path, build = base
    stored = torch.load(path, weights_only=True)
    assert list(stored) == ["model"] and any(k.startswith("enc_q.") for k in stored["model"])
    net = build()
    assert load_checkpoint(path, net) == (0, 1e-4)  # no counters in a base: a fresh run's defaults
    ours = net.state_dict()
    assert all(torch.equal(ours[k], v.float()) for k, v in stored["model"].items())


def test_training_extras_beside_the_weights_are_read_or_ignored(base, tmp_path):
    path, build = base
    stored = torch.load(path, weights_only=True)
    saved = torch.optim.AdamW(build().parameters(), lr=2e-4)
    extra = dict(stored, iteration=7, learning_rate=2e-4, optimizer=saved.state_dict(),
                 scaler={"scale": 65536.0, "growth_tracker": 0})
    torch.save(extra, tmp_path / "G_7.pth")
    net = build()
    optimizer = torch.optim.AdamW(net.parameters(), lr=1e-3)
    assert load_checkpoint(tmp_path / "G_7.pth", net, optimizer) == (7, 2e-4)
    assert optimizer.param_groups[0]["lr"] == 2e-4


@pytest.mark.parametrize("key", ["enc_q.surprise.weight", "module.emb_g.bias"])
def test_an_unknown_weight_is_refused_with_file_and_key(base, tmp_path, key):
    path, build = base
    stored = torch.load(path, weights_only=True)
    stored["model"][key] = torch.zeros(2)
    torch.save(stored, tmp_path / "f0G40k.pth")
    with pytest.raises(ModelFileError, match=rf"f0G40k\.pth: weights do not match .*unexpected \(1\): "
                                             rf"{key.removeprefix('module.')}"):
        load_checkpoint(tmp_path / "f0G40k.pth", build())
