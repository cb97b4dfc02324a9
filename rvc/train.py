"""Train an RVC v2 voice from a prepared dataset (rvc.dataset), following RVC WebUI 20240604's recipe.

    cfg = TrainConfig(dataset_dir=Path("ds"), out_dir=Path("run"), name="alice", pretrained_g=..., pretrained_d=...)
    result = train(cfg, on_event=print)      # -> {"type": "finished", "model_path": ..., "index_path": ...}

    python -m rvc.train --config cfg.json --events events.jsonl    # one JSON event per line; SIGTERM = stop

The recipe (configs/rvc_train/v2_<rate>.json are upstream's training configs, as data):
- G is the synthesizer with its posterior encoder, D the multi-period + scale discriminator; both start from
  the pretrained bases (loaded strictly) and train with AdamW(1e-4, betas (0.8, 0.99), eps 1e-9), the learning
  rate decaying ×0.999875 after every epoch.
- Clips are batched by length (buckets of 0.75 s), a random `segment_size` slice of each is decoded, and
  D learns real vs generated (LSGAN) before G steps on adversarial + 2·feature-matching + 45·mel-L1 + 1·KL.
- Every `save_every` epochs: G_<step>.pth / D_<step>.pth (model, optimiser state, epoch, lr; RVC's format) and
  a shareable <name>_e<epoch>_s<step>.pth. Stopping saves G_/D_ at once; training resumes from the newest pair
  at the same step, with the same optimiser state and learning rate. At the end: <name>.pth and the index.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F

from . import index as feature_index
from . import losses
from .dataset import FILELIST, feature_dir_name
from .discriminator import MultiPeriodDiscriminator
from .model_file import generator_dims, load_checkpoint, save_checkpoint, save_model
from .synthesizer import FEATURE_DIMS, SAMPLE_RATES, Synthesizer, SynthesizerConfig, release_config

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs" / "rvc_train"
MAX_FRAMES = 900  # upstream caps an item's features at 900 frames (9 s)
BUCKET_FRAMES = tuple(75 * k for k in range(1, 10))  # upstream's length buckets [100..900] in its units = 0.75 s
_CHECKPOINT = re.compile(r"^G_(\d+)\.pth$")

Event = dict[str, Any]


def recipe(sample_rate: str, version: str = "v2") -> dict:
    """RVC's training json for a sample rate ({"train": ..., "data": ..., "model": ...})."""
    path = CONFIG_DIR / f"{version}_{sample_rate}.json"
    if not path.is_file():
        raise ValueError(f"no training recipe for {version} at {sample_rate!r}; have "
                         f"{sorted(p.stem for p in CONFIG_DIR.glob('*.json'))}")
    return json.loads(path.read_text())


@dataclass
class TrainConfig:
    """One training run. Recipe values left as None are read from configs/rvc_train/v2_<sample_rate>.json."""

    dataset_dir: Path  # prepared by rvc.dataset (filelist.txt, 0_gt_wavs, features)
    out_dir: Path  # checkpoints, shareable models and the index go here; holding G_/D_ files means resume
    name: str
    sample_rate: str = "40k"
    f0: bool = True
    epochs: int = 20
    batch_size: int = 4
    save_every: int = 5  # epochs
    pretrained_g: Path | None = None
    pretrained_d: Path | None = None
    device: str = "cpu"
    seed: int = 1234
    fp16: bool = True  # mixed precision, used on CUDA only (half precision on CPU is not supported upstream)
    version: str = "v2"
    keep_checkpoints: int = 1  # newest G_/D_ pairs kept (a v2 pair is ~1.3 GB with optimiser state)
    build_index: bool = True  # at the end of training
    # recipe hyper-parameters
    learning_rate: float | None = None
    betas: tuple[float, float] | None = None
    eps: float | None = None
    lr_decay: float | None = None
    segment_size: int | None = None  # samples at the model rate
    c_mel: float | None = None
    c_kl: float | None = None

    def __post_init__(self) -> None:
        if self.sample_rate not in SAMPLE_RATES:
            raise ValueError(f"sample_rate must be one of {list(SAMPLE_RATES)}, got {self.sample_rate!r}")
        if self.version not in FEATURE_DIMS:
            raise ValueError(f"version must be one of {list(FEATURE_DIMS)}, got {self.version!r}")
        for name in ("epochs", "batch_size", "save_every", "keep_checkpoints"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not re.fullmatch(r"[\w.-]+", self.name):
            raise ValueError(f"model name {self.name!r} may only hold letters, digits, '_', '-' and '.'")
        self.dataset_dir, self.out_dir = Path(self.dataset_dir), Path(self.out_dir)
        self.pretrained_g = Path(self.pretrained_g) if self.pretrained_g else None
        self.pretrained_d = Path(self.pretrained_d) if self.pretrained_d else None
        for base in (self.pretrained_g, self.pretrained_d):
            if base is not None and not base.is_file():
                raise ValueError(f"pretrained base not found: {base} (install it with setup_models.py)")
        train = recipe(self.sample_rate, self.version)["train"]
        for name in ("learning_rate", "eps", "lr_decay", "segment_size", "c_mel", "c_kl", "betas"):
            if getattr(self, name) is None:
                setattr(self, name, train[name])
        self.betas = tuple(self.betas)

    @property
    def data(self) -> dict:
        """The recipe's audio settings (sampling_rate, filter_length, hop_length, win_length, n_mel_channels)."""
        return recipe(self.sample_rate, self.version)["data"]

    @classmethod
    def from_json(cls, path: str | Path) -> "TrainConfig":
        fields = json.loads(Path(path).read_text())
        unknown = set(fields) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"{path}: unknown training settings {sorted(unknown)}")
        return cls(**fields)

    def to_json(self) -> str:
        return json.dumps({k: str(v) if isinstance(v, Path) else v for k, v in dataclasses.asdict(self).items()},
                          indent=2)


# --- data ---------------------------------------------------------------------------------------------------

class Item(NamedTuple):
    """One clip, all streams at 100 frames/s and cut to the same number of frames."""

    phone: np.ndarray  # [frames, 768] content features (50 fps repeated ×2)
    pitch: np.ndarray | None  # [frames] coarse ids
    pitchf: np.ndarray | None  # [frames] Hz
    wave: np.ndarray  # [frames * hop] at the model rate

    @property
    def frames(self) -> int:
        return self.phone.shape[0]


class Batch(NamedTuple):
    phone: torch.Tensor  # [B, T, dim]
    phone_lengths: torch.Tensor  # [B]
    pitch: torch.Tensor | None  # [B, T]
    pitchf: torch.Tensor | None
    spec: torch.Tensor  # [B, n_fft//2+1, T]
    spec_lengths: torch.Tensor
    wave: torch.Tensor  # [B, 1, T*hop]
    sid: torch.Tensor  # [B]


def load_items(cfg: TrainConfig) -> list[Item]:
    """Read every filelist line (features ×2 to 100 fps, capped at 9 s; streams cut to the shortest)."""
    filelist = cfg.dataset_dir / FILELIST
    if not filelist.is_file():
        raise ValueError(f"{cfg.dataset_dir} has no {FILELIST}: prepare the dataset (rvc.dataset) first")
    hop, rate = cfg.data["hop_length"], cfg.data["sampling_rate"]
    min_frames = cfg.segment_size // hop
    items = []
    for line in filelist.read_text().splitlines():
        parts = line.split("|")
        if len(parts) != (5 if cfg.f0 else 3):
            raise ValueError(f"{filelist}: line {line!r} does not fit a {'f0' if cfg.f0 else 'no-f0'} model "
                             f"(prepare the dataset with f0={cfg.f0})")
        wave, sr = sf.read(cfg.dataset_dir / parts[0], dtype="float32")
        if sr != rate:
            raise ValueError(f"{parts[0]} is at {sr} Hz but this is a {cfg.sample_rate} model: prepare the "
                             f"dataset at {rate} Hz")
        phone = np.repeat(np.load(cfg.dataset_dir / parts[1]), 2, axis=0)[:MAX_FRAMES]
        pitch = pitchf = None
        n = min(phone.shape[0], wave.shape[0] // hop)
        if cfg.f0:
            pitch, pitchf = (np.load(cfg.dataset_dir / p) for p in parts[2:4])
            n = min(n, pitch.shape[0], pitchf.shape[0])
            pitch, pitchf = pitch[:n], pitchf[:n]
        if n < min_frames:  # too short to cut a training segment from
            continue
        items.append(Item(phone[:n], pitch, pitchf, wave[:n * hop]))
    if not items:
        raise ValueError(f"{cfg.dataset_dir}: no clip is long enough to train on "
                         f"(each needs at least {cfg.segment_size / rate:.2f} s)")
    return items


def bucket_batches(lengths: list[int], batch_size: int, epoch: int, seed: int) -> list[list[int]]:
    """Batches of similar-length items, reshuffled each epoch (the same for a given seed and epoch, so a
    resumed epoch replays its batch order). Buckets are topped up with repeats to whole batches, as upstream."""
    rng = np.random.default_rng([seed, epoch])
    buckets: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        buckets.setdefault(min(np.searchsorted(BUCKET_FRAMES, n), len(BUCKET_FRAMES) - 1), []).append(i)
    batches = []
    for ids in buckets.values():
        ids = [ids[j] for j in rng.permutation(len(ids))]
        ids += [ids[j % len(ids)] for j in range(-len(ids) % batch_size)]
        batches += [ids[j:j + batch_size] for j in range(0, len(ids), batch_size)]
    return [batches[j] for j in rng.permutation(len(batches))]


def collate(items: list[Item], data: dict, device: torch.device) -> Batch:
    """Zero-pad a batch; spectrograms are computed per item (reflect padding at its own edges)."""
    items = sorted(items, key=lambda it: -it.frames)
    b, t, hop = len(items), items[0].frames, data["hop_length"]
    phone = torch.zeros(b, t, items[0].phone.shape[1])
    spec = torch.zeros(b, data["filter_length"] // 2 + 1, t)
    wave = torch.zeros(b, 1, t * hop)
    pitch = torch.zeros(b, t, dtype=torch.long) if items[0].pitch is not None else None
    pitchf = torch.zeros(b, t) if items[0].pitch is not None else None
    for i, it in enumerate(items):
        n = it.frames
        phone[i, :n] = torch.from_numpy(it.phone)
        w = torch.from_numpy(it.wave)
        wave[i, 0, :n * hop] = w
        spec[i, :, :n] = losses.spectrogram(w[None], data["filter_length"], hop, data["win_length"])[0, :, :n]
        if pitch is not None:
            pitch[i, :n] = torch.from_numpy(it.pitch.astype(np.int64))
            pitchf[i, :n] = torch.from_numpy(it.pitchf.astype(np.float32))
    lengths = torch.tensor([it.frames for it in items])
    to = (lambda x: None if x is None else x.to(device))
    return Batch(to(phone), to(lengths), to(pitch), to(pitchf), to(spec), to(lengths), to(wave),
                 torch.zeros(b, dtype=torch.long, device=device))


# --- models -------------------------------------------------------------------------------------------------

def _base_state(path: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    return ckpt.get("model", ckpt)


def build_models(cfg: TrainConfig, device: torch.device) -> tuple[Synthesizer, MultiPeriodDiscriminator]:
    """G (with enc_q) and D shaped like the pretrained bases (the released v2 config without them)."""
    hop = math.prod(release_config(cfg.version, cfg.sample_rate).upsample_rates)
    dims = generator_dims(_base_state(cfg.pretrained_g)) if cfg.pretrained_g else {}
    config: SynthesizerConfig = dataclasses.replace(release_config(cfg.version, cfg.sample_rate), **dims,
                                                    segment_size=cfg.segment_size // hop)
    shrink = 1
    if cfg.pretrained_d:
        shrink = 32 // _base_state(cfg.pretrained_d)["discriminators.1.convs.0.weight_v"].shape[0]
    return (Synthesizer(config, cfg.version, cfg.f0).to(device),
            MultiPeriodDiscriminator(cfg.version, shrink).to(device))


def checkpoints(out_dir: Path) -> list[tuple[int, Path, Path]]:
    """(step, G path, D path) of every complete G_<step>/D_<step> pair in out_dir, newest first."""
    pairs = []
    for g in Path(out_dir).glob("G_*.pth"):
        if (m := _CHECKPOINT.match(g.name)) and (d := g.with_name(f"D_{m.group(1)}.pth")).is_file():
            pairs.append((int(m.group(1)), g, d))
    return sorted(pairs, reverse=True)


# --- one step -----------------------------------------------------------------------------------------------

def _slice(x: torch.Tensor, starts: torch.Tensor, size: int) -> torch.Tensor:
    return torch.stack([x[i, ..., s:s + size] for i, s in enumerate(starts.tolist())])


def train_step(batch: Batch, net_g: Synthesizer, net_d: MultiPeriodDiscriminator, optim_g: torch.optim.Optimizer,
               optim_d: torch.optim.Optimizer, scaler: torch.amp.GradScaler, cfg: TrainConfig) -> dict[str, float]:
    """One D step then one G step on a batch; returns the losses (G's terms already weighted)."""
    data, device = cfg.data, batch.phone.device
    hop, seg_frames = data["hop_length"], net_g.config.segment_size
    mel_args = (data["sampling_rate"], data["filter_length"], data["n_mel_channels"], data["mel_fmin"],
                data["mel_fmax"])
    amp = torch.autocast(device.type, dtype=torch.float16, enabled=scaler.is_enabled())
    with amp:
        out = net_g(batch.phone, batch.phone_lengths, batch.spec, batch.spec_lengths, batch.sid, batch.pitch,
                    batch.pitchf)
    y_mel = _slice(losses.spec_to_mel(batch.spec, *mel_args), out.ids_slice, seg_frames)
    y_hat_mel = losses.mel_spectrogram(out.y_hat.float().squeeze(1), data["sampling_rate"], data["filter_length"],
                                       hop, data["win_length"], data["n_mel_channels"], data["mel_fmin"],
                                       data["mel_fmax"])
    wave = _slice(batch.wave, out.ids_slice * hop, seg_frames * hop)

    with amp:  # discriminator: real vs the generated slice (no gradient into G)
        real, fake, _, _ = net_d(wave, out.y_hat.detach())
        loss_disc = losses.discriminator_loss(real, fake)
    optim_d.zero_grad(set_to_none=True)
    scaler.scale(loss_disc).backward()
    scaler.step(optim_d)

    with amp:  # generator: fool D, match its features, the mel spectrogram, and the prior
        _, fake, fmap_real, fmap_fake = net_d(wave, out.y_hat)
        loss_gen = losses.generator_loss(fake)
        loss_fm = losses.feature_loss(fmap_real, fmap_fake)
    loss_mel = F.l1_loss(y_mel, y_hat_mel) * cfg.c_mel
    loss_kl = losses.kl_loss(out.z_p, out.logs_q, out.m_p, out.logs_p, out.z_mask) * cfg.c_kl
    optim_g.zero_grad(set_to_none=True)
    scaler.scale(loss_gen + loss_fm + loss_mel + loss_kl).backward()
    scaler.step(optim_g)
    scaler.update()
    return {"loss_mel": loss_mel.item(), "loss_kl": loss_kl.item(), "loss_gen": loss_gen.item(),
            "loss_disc": loss_disc.item(), "loss_fm": loss_fm.item()}


# --- the run ------------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, on_event: Callable[[Event], None] | None = None,
          should_stop: Callable[[], bool] | None = None) -> Event:
    """Train (or resume) until cfg.epochs or should_stop(); returns the last event ("finished" or "stopped")."""
    emit = on_event or (lambda event: None)
    stop = should_stop or (lambda: False)
    device = torch.device(cfg.device)
    out_dir = cfg.out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)

    items = load_items(cfg)
    lengths = [it.frames for it in items]
    steps_per_epoch = len(bucket_batches(lengths, cfg.batch_size, 1, cfg.seed))
    net_g, net_d = build_models(cfg, device)
    optim_g, optim_d = (torch.optim.AdamW(net.parameters(), cfg.learning_rate, betas=cfg.betas, eps=cfg.eps)
                        for net in (net_g, net_d))

    # Resume from our newest G_/D_ pair, else start from the pretrained bases (weights only).
    epoch, step, skip = 1, 0, 0
    resume = next(iter(checkpoints(out_dir)), None)
    if resume is not None:
        step, g_path, d_path = resume
        epoch = load_checkpoint(g_path, net_g, optim_g).iteration
        load_checkpoint(d_path, net_d, optim_d)
        skip = step - (epoch - 1) * steps_per_epoch  # batches of this epoch already trained
        if not 0 <= skip <= steps_per_epoch:
            raise ValueError(f"{g_path}: step {step} at epoch {epoch} does not fit {steps_per_epoch} steps per "
                             "epoch; was the dataset or batch size changed? Start a new run in another folder")
        if skip == steps_per_epoch:
            epoch, skip = epoch + 1, 0
    else:
        for path, net in ((cfg.pretrained_g, net_g), (cfg.pretrained_d, net_d)):
            if path is not None:
                load_checkpoint(path, net)
    # The optimisers hold the current learning rate (restored with their state); decay it once per epoch.
    schedulers = [torch.optim.lr_scheduler.ExponentialLR(o, gamma=cfg.lr_decay) for o in (optim_g, optim_d)]
    scaler = torch.amp.GradScaler(device.type, enabled=cfg.fp16 and device.type == "cuda")
    net_g.train()
    net_d.train()

    def save(kind: str) -> Event:
        """G_/D_ checkpoints (+ a shareable model for "save"); older pairs beyond keep_checkpoints go."""
        for prefix, net, optim in (("G", net_g, optim_g), ("D", net_d, optim_d)):
            tmp = out_dir / f"{prefix}_{step}.pth.tmp"
            save_checkpoint(tmp, net, optim, cfg.learning_rate, epoch)
            tmp.replace(out_dir / f"{prefix}_{step}.pth")
        for _, g, d in checkpoints(out_dir)[cfg.keep_checkpoints:]:
            g.unlink(missing_ok=True)
            d.unlink(missing_ok=True)
        event = {"type": kind, "epoch": epoch, "step": step, "g_path": str(out_dir / f"G_{step}.pth"),
                 "d_path": str(out_dir / f"D_{step}.pth")}
        if kind == "save":  # the small .pth RVC WebUI and Applio load (fp16, no enc_q), info as RVC writes it
            event["model_path"] = str(out_dir / f"{cfg.name}_e{epoch}_s{step}.pth")
            save_model(event["model_path"], net_g, info=f"{epoch}epoch")
        return event

    emit({"type": "start", "epoch": epoch, "step": step, "total_epochs": cfg.epochs,
          "steps_per_epoch": steps_per_epoch, "clips": len(items), "resumed": resume is not None})
    while epoch <= cfg.epochs:
        epoch_start, mel_sum, n = time.perf_counter(), 0.0, 0
        for ids in bucket_batches(lengths, cfg.batch_size, epoch, cfg.seed)[skip:]:
            if stop():
                emit(save("checkpoint"))
                event = {"type": "stopped", "epoch": epoch, "step": step}
                emit(event)
                return event
            t0 = time.perf_counter()
            result = train_step(collate([items[i] for i in ids], cfg.data, device), net_g, net_d, optim_g,
                                optim_d, scaler, cfg)
            step += 1
            mel_sum, n = mel_sum + result["loss_mel"], n + 1
            emit({"type": "step", "epoch": epoch, "step": step, **result, "lr": optim_g.param_groups[0]["lr"],
                  "seconds_per_step": time.perf_counter() - t0})
        skip = 0
        for scheduler in schedulers:
            scheduler.step()
        emit({"type": "epoch", "epoch": epoch, "step": step, "loss_mel": mel_sum / max(n, 1),
              "lr": optim_g.param_groups[0]["lr"], "seconds": time.perf_counter() - epoch_start})
        if epoch % cfg.save_every == 0 or epoch == cfg.epochs:
            emit(save("save"))
        epoch += 1

    epoch -= 1
    event = {"type": "finished", "epoch": epoch, "step": step, "model_path": str(out_dir / f"{cfg.name}.pth")}
    save_model(event["model_path"], net_g, info=f"{epoch}epoch")
    if cfg.build_index:
        event["index_path"] = str(build_index(cfg.dataset_dir, out_dir, cfg.name, cfg.version))
    emit(event)
    return event


def build_index(dataset_dir: Path, out_dir: Path, name: str, version: str = "v2", seed: int = 0) -> Path:
    """The retrieval index of a trained voice from its dataset's content features (RVC's train_index):
    k-means to 10k centres past 200k vectors, IVF{min(16√N, N/39)},Flat, written as added_..._<name>_<v>.index."""
    files = sorted((Path(dataset_dir) / feature_dir_name(version)).glob("*.npy"))
    if not files:
        raise ValueError(f"{dataset_dir} has no {feature_dir_name(version)} features: extract them first")
    feats = np.concatenate([np.load(p) for p in files]).astype(np.float32)
    n_ivf = feature_index.n_ivf_lists(feature_index.reduced_count(feats.shape[0]))
    path = Path(out_dir) / f"added_IVF{n_ivf}_Flat_nprobe_1_{name}_{version}.index"
    return feature_index.build_index(feats, path, seed=seed)


# --- command line -------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Train an RVC voice (SIGTERM / Ctrl-C stops after saving).")
    parser.add_argument("--config", type=Path, required=True, help="JSON with TrainConfig fields")
    parser.add_argument("--events", type=Path, default=None, help="append one JSON event per line here")
    args = parser.parse_args(argv)
    stop_requested = []
    previous = {sig: signal.signal(sig, lambda *_: stop_requested.append(True))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    events = open(args.events, "a", encoding="utf-8") if args.events else None

    def emit(event: Event) -> None:
        line = json.dumps(event)
        print(line, flush=True)
        if events is not None:
            events.write(line + "\n")
            events.flush()

    try:
        train(TrainConfig.from_json(args.config), emit, lambda: bool(stop_requested))
        return 0
    except Exception as err:  # noqa: BLE001 - the job's last line must say why it failed
        message = " ".join(str(err).split()) or type(err).__name__
        emit({"type": "failed", "error": f"{type(err).__name__}: {message}"})
        return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if events is not None:
            events.close()


if __name__ == "__main__":
    sys.exit(main())
