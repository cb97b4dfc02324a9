"""Random-weight stand-ins for every file RVC loads, in exactly the official on-disk layouts.

Tests and demos run the whole path (ContentVec folder, rmvpe.pt, pretrained bases, a voice .pth and its
.index) without downloads; only widths and depths shrink, per configs/rvc_tiny.yaml.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import HubertConfig

from .content import HubertWithFinalProj
from .discriminator import MultiPeriodDiscriminator
from .index import build_index
from .model_file import save_model
from .rmvpe import E2E
from .synthesizer import Synthesizer, release_config

TINY_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "rvc_tiny.yaml"
KINDS = ("contentvec", "rmvpe", "pretrained_G", "pretrained_D", "voice", "index")


def tiny_dims(path: str | Path = TINY_CONFIG) -> dict:
    return yaml.safe_load(Path(path).read_text())


def build_tiny(paths: dict[str, Path], dims: dict) -> None:
    """Write the files named in `paths` (keys from KINDS; a folder for "contentvec") with random weights.

    "voice" is a shareable .pth (fp16, no enc_q); "index" holds random vectors of the voice's content size.
    """
    unknown = set(paths) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown tiny file kinds {sorted(unknown)}; expected some of {KINDS}")
    voice = dims["voice"]
    synth_config = dataclasses.replace(release_config(voice["version"], voice["sr"]), **dims["synthesizer"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(dims.get("seed", 0))
        if "contentvec" in paths:
            _write_contentvec(Path(paths["contentvec"]), dims["contentvec"])
        if "rmvpe" in paths:
            _save(E2E(**dims["rmvpe"]).state_dict(), paths["rmvpe"])  # bare state_dict, fp32
        if "pretrained_G" in paths:  # bases are {"model": full generator incl. enc_q}, stored in fp16
            net_g = _randomise(Synthesizer(synth_config, voice["version"], voice["f0"], posterior=True))
            _save({"model": _half(net_g.state_dict())}, paths["pretrained_G"])
        if "pretrained_D" in paths:  # released key names, channels divided by dims["discriminator"]["shrink"]
            net_d = MultiPeriodDiscriminator(voice["version"], **dims.get("discriminator", {}))
            _save({"model": _half(net_d.state_dict())}, paths["pretrained_D"])
        if "voice" in paths:
            net = _randomise(Synthesizer(synth_config, voice["version"], voice["f0"], posterior=False))
            save_model(paths["voice"], net, info="tiny random-weight test model")
    if "index" in paths:
        dim = 768 if voice["version"] == "v2" else 256
        rng = np.random.default_rng(dims.get("seed", 0))
        build_index(rng.normal(size=(voice["index_vectors"], dim)).astype(np.float32), paths["index"])


def _write_contentvec(folder: Path, overrides: dict) -> None:
    """config.json + pytorch_model.bin (HubertModel keys + final_proj, legacy weight-norm names)."""
    config = HubertConfig(**overrides, architectures=["HubertModelWithFinalProj"])
    state = HubertWithFinalProj(config).state_dict()
    state = {k.replace("parametrizations.weight.original0", "weight_g")
              .replace("parametrizations.weight.original1", "weight_v"): v for k, v in state.items()}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
    torch.save(state, folder / "pytorch_model.bin")


def _randomise(net: torch.nn.Module) -> torch.nn.Module:
    """Redraw every weight as the golden reduced models do. At default init the flow is the identity and the
    decoder's small weights make the output depend almost only on f0; these weights make content matter."""
    state = {}
    for key, value in net.state_dict().items():
        noise = torch.randn(value.shape)
        if key.endswith(("weight_g", "gamma")):
            state[key] = 1 + 0.1 * noise
        elif key.endswith(("bias", "beta")):
            state[key] = 0.05 * noise
        else:
            state[key] = 0.2 * noise
    net.load_state_dict(state)
    return net


def _half(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.half() if v.is_floating_point() else v for k, v in state.items()}


def _save(obj: dict, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(obj, path)
