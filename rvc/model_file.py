"""RVC model files: the shareable voice ``.pth`` and the ``G_*.pth`` / ``D_*.pth`` training checkpoints.

Shareable file (RVC ``process_ckpt.savee``): ``{"weight": fp16 generator state_dict without enc_q,
"config": 18-item list, "info": str, "sr": "40k", "f0": 1|0, "version": "v1"|"v2"}``; Applio writes the
same with ``sr`` as an int, ``f0`` as a bool, no ``info`` and extra metadata keys. Everything is read with
``torch.load(weights_only=True)`` and loaded strictly: a renamed or missing layer is an error, never a
silently random weight.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .synthesizer import FEATURE_DIMS, SAMPLE_RATES, Synthesizer, SynthesizerConfig, release_config

RVC_KEYS = ("weight", "config", "info", "sr", "f0", "version")
COMPATIBLE_VOCODERS = ("HiFi-GAN",)  # Applio's "MRF HiFi-GAN" and "RefineGAN" use other decoders
SAVED_SEGMENT_SIZE = 32  # config[1] of every shared file: a placeholder, the decoder never reads it


class ModelFileError(ValueError):
    """A file that is not a usable RVC voice model; the message names the file and what is wrong."""


class TrainingCheckpointError(ModelFileError):
    """A ``G_*.pth`` / ``D_*.pth`` training checkpoint where a voice model was expected; ``generator`` is True for
    a G_ file (or a pretrained base), whose voice :func:`extract_model` can take out."""

    def __init__(self, message: str, generator: bool) -> None:
        super().__init__(message)
        self.generator = generator


@dataclasses.dataclass
class RVCModel:
    """The contents of a shareable RVC voice model file."""

    config: SynthesizerConfig  # spk_embed_dim already set from emb_g.weight, as RVC does
    version: str  # "v1" (256-dim features) or "v2" (768-dim)
    f0: bool  # pitch-guided (NSF decoder) or not
    sr: int  # output sample rate in Hz (config[-1], which RVC trusts over the "sr" key)
    weights: dict[str, torch.Tensor]  # generator state_dict as stored (fp16, no enc_q)
    info: str = ""
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)  # Applio's extras, unknown keys
    path: Path | None = None
    net: Synthesizer | None = None  # set by load_model / build

    def build(self, device: torch.device | str | None = None) -> Synthesizer:
        """Build the inference synthesizer (no enc_q), load the weights strictly in fp32, eval mode."""
        with torch.device("meta"):  # no point initialising weights that are overwritten next
            net = Synthesizer(self.config, self.version, self.f0, posterior=False)
        _check_keys(net, self.weights, self.path or "<weights>")
        net.load_state_dict({k: v.float() for k, v in self.weights.items()}, assign=True)
        self.net = net.eval().to(device) if device is not None else net.eval()
        return self.net


def load_model(path: str | Path, device: torch.device | str | None = None) -> RVCModel:
    """Read a shareable RVC ``.pth`` and build its synthesizer (``model.net``)."""
    model = read_model(path)
    model.build(device)
    return model


def read_model(path: str | Path) -> RVCModel:
    """Read and validate a shareable RVC ``.pth`` without building any network."""
    path = Path(path)
    ckpt = _torch_load(path)
    _refuse_non_models(ckpt, path)
    if "weight" not in ckpt or "config" not in ckpt:
        raise ModelFileError(f"{path}: not an RVC voice model (needs 'weight' and 'config'; has {sorted(ckpt)})")
    if not isinstance(ckpt["weight"], dict):
        raise ModelFileError(f"{path}: 'weight' should be a state_dict, found {type(ckpt['weight']).__name__}")
    weights = canonical_state_dict(ckpt["weight"])
    if "emb_g.weight" not in weights:
        raise ModelFileError(f"{path}: weights have no 'emb_g.weight' (speaker embedding)")
    try:
        config = SynthesizerConfig.from_list(ckpt["config"])
    except (TypeError, ValueError) as err:
        raise ModelFileError(f"{path}: bad config list: {err}") from None
    config = dataclasses.replace(config, spk_embed_dim=weights["emb_g.weight"].shape[0])
    if config.sr not in SAMPLE_RATES.values():  # the decoder's strides only make sense at RVC's own rates
        raise ModelFileError(f"{path.name}: sample rate {config.sr} Hz is not an RVC rate; RVC voices are "
                             f"{', '.join(str(hz) for hz in SAMPLE_RATES.values())} Hz")
    broken = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point()
              and not bool(torch.isfinite(v).all())]
    if broken:
        raise ModelFileError(f"{path.name}: {len(broken)} weight tensor(s) hold NaN or infinite values "
                             f"({', '.join(broken[:3])}{' ...' if len(broken) > 3 else ''}); the model is broken "
                             "(its training diverged): use an earlier save")
    version = ckpt.get("version", "v1")  # RVC's default for files from before v2 existed
    if version not in ("v1", "v2"):
        raise ModelFileError(f"{path}: unknown version {version!r} (expected 'v1' or 'v2')")
    metadata = {k: v for k, v in ckpt.items() if k not in RVC_KEYS}
    return RVCModel(config=config, version=version, f0=_parse_f0(ckpt.get("f0", 1), path), sr=config.sr,
                    weights=weights, info=str(ckpt.get("info", "")), metadata=metadata, path=path)


def save_model(path: str | Path, net: Synthesizer, info: str = "", metadata: dict[str, Any] | None = None) -> None:
    """Write ``net`` as a shareable RVC voice model (the format RVC WebUI and Applio load)."""
    weights = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    _write_model(Path(path), weights, net.config, net.version, net.f0, info, metadata)


def extract_model(g_ckpt_path: str | Path, out_path: str | Path, sr: int | str | None = None,
                  f0: bool | int | None = None, version: str | None = None,
                  info: str = "Extracted model.") -> RVCModel:
    """Turn a ``G_*.pth`` training checkpoint (or a pretrained base ``{"model": ...}``) into a voice model.

    Like RVC's "extract small model": the released config for (version, sr) at the checkpoint's widths, enc_q
    dropped, fp16. sr, f0 and version left as None are read from the weights (see checkpoint_format); given ones
    are checked against the weights first, so a wrong value is an error, never a broken voice.
    """
    g_ckpt_path = Path(g_ckpt_path)
    ckpt = _torch_load(g_ckpt_path)
    state = canonical_state_dict(ckpt.get("model", ckpt))
    if _is_discriminator(state):
        raise TrainingCheckpointError(f"{g_ckpt_path}: is a discriminator checkpoint (D_*.pth); the voice is in the "
                                      "G_*.pth saved with it", generator=False)
    if "emb_g.weight" not in state:
        raise ModelFileError(f"{g_ckpt_path}: not a generator checkpoint (no 'emb_g.weight')")
    if sr is None or f0 is None or version is None:
        found = checkpoint_format(state, g_ckpt_path)
        version, sr, f0 = version or found[0], sr or found[1], found[2] if f0 is None else f0
    config = _generator_config(state, version, sr, g_ckpt_path)
    weights = {k: v for k, v in state.items() if not k.startswith("enc_q.")}
    with torch.device("meta"):  # shapes only, no memory
        reference = Synthesizer(config, version, bool(f0), posterior=False)
    _check_keys(reference, weights, g_ckpt_path)
    if not _fits(state, version, sr, bool(f0)):  # what keys miss: a v1 no-f0 decoder's strides, enc_q's width
        raise ModelFileError(f"{g_ckpt_path}: the weights are not a {version} model at {sr}; leave the sample "
                             "rate out to read it from them")
    _write_model(Path(out_path), weights, config, version, bool(f0), info)
    return read_model(out_path)


def checkpoint_format(state: dict[str, torch.Tensor], source: Path | str = "<weights>") -> tuple[str, str, bool]:
    """(version, sample rate name, f0) of generator weights, read from their shapes.

    The content embedding's width gives the version (256: v1, 768: v2), an ``emb_pitch`` table means
    pitch-guided, and the sample rate is the one released decoder (upsampling kernels, noise convs, and the
    posterior encoder's spectrogram width when the file has it) that the weights fit exactly.
    """
    phone = state.get("enc_p.emb_phone.weight")
    versions = {dim: name for name, dim in FEATURE_DIMS.items()}
    if phone is None or phone.ndim != 2 or phone.shape[1] not in versions:
        width = "missing" if phone is None else f"{phone.shape[-1]} wide"
        raise ModelFileError(f"{source}: cannot tell the RVC version: the content embedding is {width} "
                             "(v1 models read 256-dim features, v2 768-dim)")
    version, f0 = versions[phone.shape[1]], "enc_p.emb_pitch.weight" in state
    rates = [rate for rate in SAMPLE_RATES if _fits(state, version, rate, f0)]
    if len(rates) != 1:
        why = f"it fits {' and '.join(rates)} alike" if rates else "it matches no released RVC decoder"
        raise ModelFileError(f"{source}: cannot tell the sample rate from the decoder's shapes ({why}); "
                             "extract it with RVC WebUI, which asks for the rate")
    return version, rates[0], f0


def _fits(state: dict[str, torch.Tensor], version: str, sr: str, f0: bool) -> bool:
    """Whether the decoder of `state` is the released one of (version, sr): its upsampling kernels, its NSF noise
    convs (kernel twice the stride to the source rate, 1 at the last stage) and the spectrogram width of enc_q."""
    config = release_config(version, sr)
    rates = config.upsample_rates
    want = {f"dec.ups.{i}.weight_v": (2, k) for i, k in enumerate(config.upsample_kernel_sizes)}
    if f0:
        want |= {f"dec.noise_convs.{i}.weight": (2, 2 * math.prod(rates[i + 1:]) if i + 1 < len(rates) else 1)
                 for i in range(len(rates))}
    if "enc_q.pre.weight" in state:
        want["enc_q.pre.weight"] = (1, config.spec_channels)
    stages = sum(k.startswith("dec.ups.") and k.endswith(".weight_v") for k in state)
    return stages == len(rates) and all(k in state and state[k].ndim > dim and state[k].shape[dim] == size
                                        for k, (dim, size) in want.items())


def generator_dims(state: dict[str, torch.Tensor]) -> dict[str, int]:
    """Synthesizer widths of a generator state_dict (released bases give the released config; tiny test bases
    give theirs), so training and extraction build exactly the architecture of the weights they hold."""
    proj, ffn = state["enc_p.proj.weight"], state["enc_p.encoder.ffn_layers.0.conv_1.weight"]
    emb = state["emb_g.weight"]
    return {"inter_channels": proj.shape[0] // 2, "hidden_channels": proj.shape[1],
            "filter_channels": ffn.shape[0], "kernel_size": ffn.shape[2],
            "n_heads": proj.shape[1] // state["enc_p.encoder.attn_layers.0.emb_rel_k"].shape[2],
            "n_layers": len({k.split(".")[3] for k in state if k.startswith("enc_p.encoder.attn_layers.")}),
            "upsample_initial_channel": state["dec.conv_pre.weight"].shape[0],
            "spk_embed_dim": emb.shape[0], "gin_channels": emb.shape[1]}


def _generator_config(state: dict[str, torch.Tensor], version: str, sr: int | str,
                      source: Path | str) -> SynthesizerConfig:
    """The released config of (version, sr) at the widths of `state`."""
    try:
        dims = generator_dims(state)
    except (KeyError, IndexError, ZeroDivisionError):
        raise ModelFileError(f"{source}: weights do not match an RVC generator (its text encoder is missing "
                             "or malformed)") from None
    return dataclasses.replace(release_config(version, sr), **dims)


class CheckpointInfo(NamedTuple):
    iteration: int  # the epoch the checkpoint was written at
    learning_rate: float  # the initial learning rate of that run


def save_checkpoint(path: str | Path, net: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    learning_rate: float, iteration: int) -> None:
    """Write a ``G_*.pth`` / ``D_*.pth`` training checkpoint in RVC's layout (fp32, enc_q included)."""
    torch.save({"model": {k: v.detach().cpu() for k, v in net.state_dict().items()}, "iteration": int(iteration),
                "optimizer": optimizer.state_dict(), "learning_rate": float(learning_rate)}, Path(path))


def load_checkpoint(path: str | Path, net: torch.nn.Module,
                    optimizer: torch.optim.Optimizer | None = None) -> CheckpointInfo:
    """Load a training checkpoint (ours, RVC's, Applio's or a pretrained base) strictly into ``net``.

    The optimizer state is restored when both it and the file have one; RVC indexes it in
    ``net.parameters()`` order, which our modules reproduce.
    """
    path = Path(path)
    ckpt = _torch_load(path)
    if "model" not in ckpt:
        raise ModelFileError(f"{path}: not a training checkpoint (no 'model'; has {sorted(ckpt)})")
    _load_strict(net, canonical_state_dict(ckpt["model"]), path)
    if optimizer is not None and "optimizer" in ckpt:
        optimizer.load_state_dict(ckpt["optimizer"])
    return CheckpointInfo(int(ckpt.get("iteration", 0)), float(ckpt.get("learning_rate", 1e-4)))


def canonical_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map the key spellings found in the wild onto ours: no ``module.`` prefix (DDP), and
    ``parametrizations.weight.original0/1`` (torch's new weight norm, used by Applio) -> ``weight_g/weight_v``."""
    out = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        key = key.replace(".parametrizations.weight.original0", ".weight_g")
        key = key.replace(".parametrizations.weight.original1", ".weight_v")
        out[key] = value
    return out


def _torch_load(path: Path) -> dict:
    if not path.is_file():
        raise ModelFileError(f"{path}: no such file")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in many ways
        # Never pass on torch's own text: it names server paths and advises weights_only=False (runs code).
        why = ("it holds Python objects besides weights, which are refused because loading them could run code"
               if "Unsupported global" in str(err) else "the file is damaged, truncated or not a model")
        raise ModelFileError(f"{path.name}: not a readable PyTorch checkpoint ({why})") from None
    if not isinstance(ckpt, dict):
        raise ModelFileError(f"{path}: expected a dict checkpoint, found {type(ckpt).__name__}")
    return ckpt


def _refuse_non_models(ckpt: dict, path: Path) -> None:
    vocoder = ckpt.get("vocoder") or "HiFi-GAN"  # absent (or None) means RVC's HiFi-GAN
    if vocoder not in COMPATIBLE_VOCODERS:
        raise ModelFileError(f"{path}: uses the {vocoder!r} vocoder (an Applio-only decoder); only HiFi-GAN "
                             "RVC models are supported")
    if "model" in ckpt and "weight" not in ckpt:
        model = ckpt["model"]
        if isinstance(model, dict) and _is_discriminator(model):
            raise TrainingCheckpointError(
                f"{path}: is a discriminator training checkpoint (D_*.pth), not a voice model; voice models are "
                "the small .pth files written at the end of training", generator=False)
        raise TrainingCheckpointError(
            f"{path}: is a generator training checkpoint (G_*.pth or a pretrained base), not a shareable voice "
            "model; convert it with rvc.extract_model(path, out_path)", generator=True)


def _is_discriminator(state: dict) -> bool:
    return any(str(k).startswith(("discriminators.", "module.discriminators.")) for k in state)


def _parse_f0(value: Any, path: Path) -> bool:
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return value.strip() == "1"
    if isinstance(value, (bool, int)) and int(value) in (0, 1):
        return bool(value)
    raise ModelFileError(f"{path}: bad 'f0' value {value!r} (expected 0/1)")


def _check_keys(net: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    expected = net.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} != {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [f"{name} ({len(keys)}): {', '.join(keys[:5])}{' ...' if len(keys) > 5 else ''}"
                 for name, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong))
                 if keys]
        raise ModelFileError(f"{source}: weights do not match the architecture; " + "; ".join(parts))


def _load_strict(net: torch.nn.Module, state: dict[str, torch.Tensor], source: Path | str) -> None:
    _check_keys(net, state, source)
    dtype = next(net.parameters()).dtype
    net.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()})


def shared_model_dict(weights: dict[str, torch.Tensor], config: SynthesizerConfig, version: str, f0: bool,
                      info: str = "", metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The dict RVC stores in a shareable file: fp16 weights without enc_q, config[1] = 32, sr as "40k"."""
    rates = {hz: name for name, hz in SAMPLE_RATES.items()}
    if config.sr not in rates:
        raise ValueError(f"sample rate {config.sr} has no RVC name; expected one of {list(SAMPLE_RATES.values())}")
    ckpt = {
        "weight": {k: v.half() for k, v in weights.items() if not k.startswith("enc_q.")},
        "config": dataclasses.replace(config, segment_size=SAVED_SEGMENT_SIZE).to_list(),
        "info": info,
        "sr": rates[config.sr],
        "f0": int(f0),
        "version": version,
    }
    ckpt.update(metadata or {})
    return ckpt


def _write_model(path: Path, weights: dict[str, torch.Tensor], config: SynthesizerConfig, version: str, f0: bool,
                 info: str, metadata: dict[str, Any] | None = None) -> None:
    ckpt = shared_model_dict(weights, config, version, f0, info, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
