"""Train RVC voices from a person's recordings: datasets, one training process, previews, export.

Each training lives in $STUDIO_HOME/training/<random id>/ (its name is display text, never a path):
    meta.json            name, dataset report, the current run
    speech/, probe.wav   the speech kept (per-file segments) and the held-out preview clip
    dataset_<sr>/        RVC's dataset layout + cached pitch/content features (rvc.dataset)
    runs/<sr>_<f0>/      cfg.json, events-<n>.jsonl (one per launch), train-<n>.log, G_/D_ checkpoints,
                         job.json (pid of the running process), previews.json
Previews and exports are written under $STUDIO_HOME/takes/training/<id>/, from where the page hands copies
over; the status names previews by file name only.

Nothing a training saved is removed silently: training again over saved epochs (`start_over`) or preparing a
dataset under a name in use (`replace`) must be asked for, and moves the old run or training into
$STUDIO_HOME/trash/training/<item>/ with a row in the library's trash (restorable, purged after trash_days).

Training runs `python -m rvc.train` in its own process group: Stop is a signal, the page never waits on a
step, and a studio restart finds the job again from job.json and the events files.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import soundfile as sf

from . import audio, names, trainset, trash
from .library import LibraryError, clean_name, connect
from .public import public_message
from .settings import ROOT

if TYPE_CHECKING:
    from .service import Studio

SAMPLE_RATES = ("32k", "40k", "48k")
ACTIVE = ("starting", "training", "stopping", "previewing")
TRASH_KINDS = ("training", "training run")  # a whole training (dataset too) / the runs of one training
STOP_GRACE_S = 60.0        # a graceful stop saves G_/D_; past this the process is killed
REFERENCE_S = 15.0         # dataset speech the previews are compared with
LOSS_POINTS = 400          # loss history points sent to the page
SMOOTHING = 0.9            # exponential smoothing of the mel loss


class TrainingError(ValueError):
    """Something a person asked of training that cannot be done; the message says what to do."""


@dataclass(frozen=True)
class TrainOptions:
    """Ranges and defaults of the training controls (the UI reads them from here)."""
    epochs: int = 20
    batch_size: int = 4
    sample_rate: str = "40k"
    f0: bool = True
    save_every: int = 5
    EPOCHS = (1, 1000)
    BATCH = (1, 64)
    SAVE_EVERY = (1, 100)

    def __post_init__(self) -> None:
        for label, value, (lo, hi) in (("epochs", self.epochs, self.EPOCHS),
                                       ("batch size", self.batch_size, self.BATCH),
                                       ("save every", self.save_every, self.SAVE_EVERY)):
            if not lo <= value <= hi:
                raise TrainingError(f"{label} must be between {lo} and {hi} (got {value})")
        if self.sample_rate not in SAMPLE_RATES:
            raise TrainingError(f"sample rate must be one of {', '.join(SAMPLE_RATES)} (got {self.sample_rate!r})")


@dataclass(frozen=True)
class Training:
    id: str
    folder: Path
    meta: dict

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def run_dir(self) -> Path | None:
        run = self.meta.get("run")
        return self.folder / "runs" / run if run else None


def _read_json(path: Path, default=None):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return default


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def read_events(run_dir: Path) -> list[list[dict]]:
    """Every launch's events, in order; a half-written last line is ignored."""
    launches = []
    for path in sorted(run_dir.glob("events-*.jsonl"), key=lambda p: int(p.stem.split("-")[1])):
        events = []
        for line in path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
        launches.append(events)
    return launches


class Trainer:
    """Datasets, the one training job, its previews and exports; held by Studio as `studio.training`."""

    def __init__(self, studio: "Studio") -> None:
        self.studio = studio
        self.root = studio.settings.home / "training"
        self.root.mkdir(parents=True, exist_ok=True)
        self.public = studio.takes_dir / "training"
        self._lock = threading.RLock()
        self._procs: dict[str, subprocess.Popen] = {}
        self._stopping: set[str] = set()
        self._preview_lock = threading.Lock()
        self._watching: dict[str, threading.Thread] = {}  # trainings whose previews are still being made
        self.trash = studio.settings.home / "trash" / "training"
        self.trash.mkdir(parents=True, exist_ok=True)
        for partial in self.root.glob("*.partial"):  # an interrupted preparation
            shutil.rmtree(partial, ignore_errors=True)
        self._sweep_trash()
        for t in self.list():  # a studio restart: follow trainings whose process still runs
            if self._alive(t):
                self._watch(t)

    # -- trainings -------------------------------------------------------------------------------

    def list(self) -> list[Training]:
        out = []
        for d in sorted(self.root.iterdir()):
            meta = None if d.suffix == ".partial" else _read_json(d / "meta.json")
            if meta:
                out.append(Training(d.name, d, meta))
        return out

    def overview(self) -> list[dict]:
        """The team's trainings, running ones first, then most recently changed: name, state, epoch of epochs."""
        rows = []
        for t in self.list():
            s = self.status(t.id)
            rows.append({"name": t.name, "state": s["state"], "epoch": s.get("epoch"), "epochs": s.get("epochs"),
                         "updated": _last_change(t)})
        rows.sort(key=lambda r: (r["state"] not in ACTIVE, -r["updated"]))
        return [{**r, "updated": time.strftime("%Y-%m-%d %H:%M", time.localtime(r["updated"]))} for r in rows]

    def get(self, name: str) -> Training:
        key = names.key(name)
        for t in self.list():
            if names.key(t.name) == key or t.id == key:
                return t
        raise TrainingError(f"no training named {name!r}: prepare its dataset first")

    def _save_meta(self, t: Training, **changes) -> Training:
        meta = {**t.meta, **changes}
        _write_json(t.folder / "meta.json", meta)
        return Training(t.id, t.folder, meta)

    # -- dataset ---------------------------------------------------------------------------------

    def prepare(self, files: list[str | Path], name: str, isolate: bool = False,
                on_progress: Callable[[float, str], None] | None = None, replace: bool = False) -> dict:
        """Uploads -> checked speech -> RVC dataset (40k) with cached features -> the report.

        Refuses (TrainingError / DatasetError) before anything is kept when the data cannot train. A name in
        use (names compare without case) is refused unless `replace`: then the old training goes to the trash.
        """
        progress = on_progress or (lambda f, d: None)
        name = clean_name(name, "dataset")
        if not files:
            raise TrainingError("upload recordings of the voice (audio files or a zip of them)")
        existing = next((t for t in self.list() if names.key(t.name) == names.key(name)), None)
        if existing and self._busy(existing):
            raise TrainingError(f"{existing.name!r} is training: stop it before preparing its dataset again")
        if existing and not replace:
            raise TrainingError(f"a training named {existing.name!r} already exists; pick another name, or replace "
                                f"it (its dataset, checkpoints, previews and exports go to the trash, restorable "
                                f"for {self.studio.settings.trash_days} days)")
        folder = self.root / f"{uuid.uuid4().hex}.partial"
        try:
            progress(0.0, "Reading the uploads")
            paths, notes = trainset.gather_uploads(files, folder / "uploads")
            recordings = trainset.read_all(paths)
            isolation_note = None
            if isolate:
                progress(0.1, "Isolating the voice")
                recordings, isolation_note = self._isolate(recordings, folder / "isolated")
            progress(0.25, "Finding speech")
            seg = trainset.find_speech(recordings)
            seg.notes[:0] = notes
            shutil.rmtree(folder / "uploads", ignore_errors=True)
            self._keep_speech(folder, seg)
            progress(0.4, "Slicing, filtering and normalising (RVC recipe)")
            stats = self._write_dataset(folder, "40k", lambda f, d: progress(0.4 + 0.55 * f, d))
            rep = trainset.report(seg, stats["clips"], isolation_note)
            meta = {"name": name, "created": time.time(), "report": rep, "run": None,
                    "voice_id": existing.meta.get("voice_id") if existing else None}
            _write_json(folder / "meta.json", meta)
            with connect(self.studio.settings.home) as db:
                if existing:
                    self._discard(db, "training", existing, {"training": existing.folder,
                                                             "public": self.public / existing.id})
                os.replace(folder, self.root / folder.name.removesuffix(".partial"))
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        progress(1.0, "Dataset ready")
        return {"name": name, **rep}

    def _isolate(self, recordings, work: Path):
        """Vocals only, with the BS-RoFormer separator when it is installed; otherwise a visible note."""
        from .separation import isolate_vocals

        return isolate_vocals(recordings, self.studio.settings.models_dir, work)

    @staticmethod
    def _keep_speech(folder: Path, seg: trainset.Segments) -> None:
        speech = folder / "speech"
        speech.mkdir(parents=True)
        for i, (wave, sr) in enumerate(seg.clips):
            sf.write(speech / f"{i:05d}.flac", np.clip(wave, -1, 1), sr, subtype="PCM_24")
        sf.write(folder / "probe.wav", seg.probe[0], seg.probe[1], subtype="FLOAT")
        ref, total = [], 0.0
        for wave, sr in seg.clips:
            ref.append(audio.resample(wave, sr, 16000))
            total += len(wave) / sr
            if total >= REFERENCE_S:
                break
        sf.write(folder / "reference.wav", np.concatenate(ref), 16000, subtype="FLOAT")

    def _write_dataset(self, folder: Path, sample_rate: str, progress: Callable[[float, str], None]) -> dict:
        """RVC's dataset folders at `sample_rate` from the kept speech, features extracted once (cached)."""
        from rvc.dataset import extract_features, slice_and_normalise, write_dataset
        from rvc.synthesizer import parse_sample_rate

        dataset = folder / f"dataset_{sample_rate}"
        rate = parse_sample_rate(sample_rate)
        clips = ((clip, rate) for path in sorted((folder / "speech").glob("*.flac"))
                 for clip in slice_and_normalise(*audio.load_audio(path), sample_rate))
        stats = write_dataset(clips, dataset, sample_rate)
        if stats.clips == 0:
            raise trainset.DatasetError("no clip survived slicing: the speech is too quiet or broken; "
                                        "upload clearer recordings")
        rvc = self.studio.rvc()
        f0_method = "rmvpe" if rvc.rmvpe_path else "fcpe"
        progress(0.2, f"Extracting pitch ({f0_method}) and content features")
        extract_features(dataset, rvc.contentvec, f0_method=f0_method, rmvpe_path=rvc.rmvpe_path,
                         device=rvc.device, on_progress=lambda done, total: progress(
                             0.2 + 0.8 * done / max(total, 1), f"Features {done}/{total}"))
        return {"seconds": float(stats.seconds), "clips": int(stats.clips)}

    def _dataset(self, t: Training, sample_rate: str) -> Path:
        dataset = t.folder / f"dataset_{sample_rate}"
        if not dataset.is_dir():
            self._write_dataset(t.folder, sample_rate, lambda f, d: None)
        return dataset

    # -- trash ---------------------------------------------------------------------------------------

    def _discard(self, db, kind: str, t: Training, parts: dict[str, Path]) -> None:
        """Move `parts` (label -> path) of `t` into the trash as one item (inside the caller's transaction).

        item.json names where each part came from, so a crash before the commit is put back by _sweep_trash.
        """
        home = self.studio.settings.home
        item = uuid.uuid4().hex
        folder = self.trash / item
        paths = {label: str(p.relative_to(home)) for label, p in parts.items() if p.exists()}
        row = {"id": item, "name": t.name, "training_id": t.id, "run": t.meta.get("run"), "paths": paths}
        folder.mkdir()
        _write_json(folder / "item.json", row)
        trash.put(db, kind, item, row)
        for label in paths:
            os.replace(parts[label], folder / label)

    def restore(self, name: str) -> dict:
        """Bring back the most recently trashed training or run called `name`; whatever holds its place now
        (a training of that name, or the training's newer runs) goes to the trash in its stead."""
        home = self.studio.settings.home
        with self._lock, connect(home) as db:
            kind, row = trash.take(db, TRASH_KINDS, name, "training")
            if kind == "training":
                current = next((t for t in self.list() if names.key(t.name) == names.key(row["name"])), None)
                swap = current and ("training", current, {"training": current.folder,
                                                          "public": self.public / current.id})
            else:
                current = next((t for t in self.list() if t.id == row["training_id"]), None)
                if current is None:
                    raise TrainingError(f"the training {row['name']!r} of this run is in the trash itself: "
                                        "restore it first")
                swap = ("training run", current, {"runs": current.folder / "runs",
                                                  "public": self.public / current.id})
            if current is not None and self._busy(current):
                raise TrainingError(f"{current.name!r} is training: stop it before restoring over it")
            if swap and any(p.exists() for p in swap[2].values()):
                self._discard(db, *swap)
            folder = self.trash / row["id"]
            for label, rel in row["paths"].items():
                os.replace(folder / label, home / rel)
            shutil.rmtree(folder, ignore_errors=True)
            if kind == "training run":
                self._save_meta(current, run=row["run"])
        return self.status(row["training_id"])

    def _sweep_trash(self) -> None:
        """Drop trashed trainings past the keep time; put back an item whose trashing a crash interrupted."""
        home = self.studio.settings.home
        with connect(home) as db:
            expired = [r for kind in TRASH_KINDS for r in trash.purge(db, kind, self.studio.settings.trash_days)]
            kept = {r["id"] for kind in TRASH_KINDS for r in trash.rows(db, kind)}
        for row in expired:
            shutil.rmtree(self.trash / row["id"], ignore_errors=True)
        for folder in self.trash.iterdir():
            if folder.name in kept:
                continue
            row = _read_json(folder / "item.json", {})
            for label, rel in row.get("paths", {}).items():
                if (folder / label).exists() and not (home / rel).exists():
                    os.replace(folder / label, home / rel)
            shutil.rmtree(folder, ignore_errors=True)

    # -- the training process --------------------------------------------------------------------

    def start(self, name: str, epochs: int = TrainOptions.epochs, batch_size: int = TrainOptions.batch_size,
              sample_rate: str = TrainOptions.sample_rate, f0: bool = TrainOptions.f0,
              save_every: int = TrainOptions.save_every, device: str | None = None,
              start_over: bool = False) -> dict:
        """Train from the pretrained bases (a fresh run).

        Over saved epochs this is refused (Resume continues them) unless `start_over`: then the training's
        runs, previews and exports go to the trash, restorable.
        """
        opts = TrainOptions(int(epochs), int(batch_size), str(sample_rate), bool(f0), int(save_every))
        if device and device not in devices():
            raise TrainingError(f"device {device!r} is not available here; pick one of {', '.join(devices())}")
        device = device or self.studio.settings.vc_device
        with self._lock:
            t = self.get(name)
            self._refuse_second(t, device)
            run = f"{opts.sample_rate}_{'f0' if opts.f0 else 'nof0'}"
            run_dir = t.folder / "runs" / run
            saved = _saved_epochs(t.folder / "runs")
            if saved and not start_over:
                raise TrainingError(
                    f"{t.name!r} already has saved epochs ({', '.join(saved)}): press Resume to continue "
                    f"it, or Start over to train again from the start (its checkpoints, previews and exports go "
                    f"to the trash, restorable for {self.studio.settings.trash_days} days)")
            if saved:
                with connect(self.studio.settings.home) as db:
                    self._discard(db, "training run", t, {"runs": t.folder / "runs", "public": self.public / t.id})
            shutil.rmtree(run_dir, ignore_errors=True)  # an earlier try that saved nothing
            shutil.rmtree(self.public / t.id / run, ignore_errors=True)
            run_dir.mkdir(parents=True)
            t = self._save_meta(t, run=run)
            cfg = self._config(t, opts, run_dir, device)
            _write_json(run_dir / "cfg.json", cfg)
            self._launch(t)
        return self.status(t.name)

    def resume(self, name: str) -> dict:
        """Continue the last run from its latest G_/D_ checkpoints (same step, same optimiser state)."""
        with self._lock:
            t = self.get(name)
            if t.run_dir is None or not (t.run_dir / "cfg.json").is_file():
                raise TrainingError(f"{t.name!r} has not been trained yet: press Train first")
            cfg = _read_json(t.run_dir / "cfg.json")
            self._refuse_second(t, cfg["device"])
            if _resume_step(t.run_dir) is None:
                raise TrainingError(f"{t.name!r} has no saved checkpoint to resume from: press Train to start "
                                    "again (or restore its run from the trash)")
            self._launch(t)
        return self.status(t.name)

    def _refuse_second(self, t: Training, device: str) -> None:
        if t.id in self._watching and not self._alive(t):
            raise TrainingError(f"{t.name!r} is making the preview of its last save; try again in a moment")
        for other in self.list():
            if self._alive(other):
                cfg = _read_json(other.run_dir / "cfg.json", {})
                if other.id == t.id:
                    raise TrainingError(f"{t.name!r} is already training; watch it or stop it first")
                if cfg.get("device") == device:
                    raise TrainingError(f"{other.name!r} is already training on {device}: two trainings at once "
                                        "on one device run out of memory. Stop it or wait until it finishes")

    def wait_for_device(self, device: str, poll_s: float = 2.0) -> None:
        """Hold a conversion while a training uses the same GPU (both would run out of memory).

        The caller sits in the `gpu` lane, so later GPU work queues behind it; CPU work is not held (it only
        shares cores). Set the training's device apart (train_start's `device`) to convert meanwhile.
        """
        if not device.startswith("cuda"):
            return
        while any(self._alive(t) and _read_json(t.run_dir / "cfg.json", {}).get("device") == device
                  for t in self.list()):
            time.sleep(poll_s)

    def _config(self, t: Training, opts: TrainOptions, run_dir: Path, device: str) -> dict:
        from .registry import RVC_FILES, role_paths

        from rvc.dataset import write_filelist

        dataset = self._dataset(t, opts.sample_rate)
        write_filelist(dataset, "v2", opts.f0)  # features of both kinds are cached; the list picks them
        bases = role_paths(self.studio.settings.models_dir, RVC_FILES)
        # The registry holds the v2 40k pitch bases; other settings train from scratch (noted in the status).
        use_bases = opts.sample_rate == "40k" and opts.f0 and bases["pretrained_G"].is_file()
        return {"dataset_dir": str(dataset), "out_dir": str(run_dir), "name": _file_stem(t.name),
                "sample_rate": opts.sample_rate, "f0": opts.f0, "epochs": opts.epochs,
                "batch_size": opts.batch_size, "save_every": opts.save_every,
                "pretrained_g": str(bases["pretrained_G"]) if use_bases else None,
                "pretrained_d": str(bases["pretrained_D"]) if use_bases else None,
                "device": device, "seed": 1234, "fp16": device.startswith("cuda")}

    def _launch(self, t: Training) -> None:
        run_dir = t.run_dir
        n = len(list(run_dir.glob("events-*.jsonl")))
        events, log = run_dir / f"events-{n}.jsonl", run_dir / f"train-{n}.log"
        events.touch()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rvc.train", "--config", str(run_dir / "cfg.json"),
                                     "--events", str(events)], cwd=ROOT, env=env, stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self._procs[t.id] = proc
        self._stopping.discard(t.id)
        _write_json(run_dir / "job.json", {"pid": proc.pid, "started": time.time(), "launch": n})
        self._watch(t)

    def _alive(self, t: Training) -> bool:
        proc = self._procs.get(t.id)
        if proc is not None:
            return proc.poll() is None
        job = _read_json(t.run_dir / "job.json") if t.run_dir else None
        if not job:
            return False
        try:  # after a restart: the pid must still be our trainer on this run, not a reused pid
            cmdline = Path(f"/proc/{job['pid']}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return "rvc.train" in cmdline and str(t.run_dir / "cfg.json") in cmdline

    def _busy(self, t: Training) -> bool:
        """Training, or still previewing its last save: its files are in use."""
        return t.id in self._watching or self._alive(t)

    def _pid(self, t: Training) -> int | None:
        proc = self._procs.get(t.id)
        if proc is not None:
            return proc.pid
        job = _read_json(t.run_dir / "job.json") if t.run_dir else None
        return job["pid"] if job else None

    def stop(self, name: str, grace_s: float = STOP_GRACE_S) -> dict:
        """Ask the trainer to save and stop (SIGTERM); kill it if it has not stopped after `grace_s`. Returns
        once the preview of its last save is made, like a finished training."""
        t = self.get(name)
        if not self._alive(t):
            return self.status(t.name)
        pid = self._pid(t)
        self._stopping.add(t.id)
        _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while self._alive(t) and time.monotonic() < deadline:
            time.sleep(0.2)
        if self._alive(t):
            _signal(pid, signal.SIGKILL)
            while self._alive(t):
                time.sleep(0.1)
        watcher = self._watching.get(t.id)
        if watcher is not None:
            watcher.join()
        return self.status(t.name)

    def _watch(self, t: Training) -> None:
        """Make a preview of every save while the process runs, and once more after it ends; until that last
        one exists (or has failed), the status says "previewing", not finished."""
        def loop():
            try:
                while self._alive(t):
                    self._previews(t)
                    time.sleep(1.0)
                proc = self._procs.get(t.id)
                if proc is not None:
                    proc.wait()
                self._previews(t)
            finally:
                self._watching.pop(t.id, None)

        thread = self._watching[t.id] = threading.Thread(target=loop, name=f"train-watch-{t.id[:8]}", daemon=True)
        thread.start()

    # -- status ----------------------------------------------------------------------------------

    def status(self, name: str) -> dict:
        """Where the training stands: state (and why), epoch/step, speed, ETA, losses, saved epochs."""
        t = self.get(name)
        base = {"name": t.name, "report": t.meta.get("report")}
        if t.run_dir is None:
            return {**base, "state": "ready", "message": "Dataset ready: press Train."}
        cfg = _read_json(t.run_dir / "cfg.json", {})
        launches = read_events(t.run_dir)
        events = [e for launch in launches for e in launch]
        steps = [e for e in events if e.get("type") == "step" and e.get("loss_mel") is not None]
        last = launches[-1][-1] if launches and launches[-1] else {}
        alive = self._alive(t)
        state, reason = self._state(t, alive, last)
        step = max((e.get("step") or 0 for e in events), default=0)
        epoch = max((e.get("epoch") or 0 for e in events), default=0)
        per_epoch = self._steps_per_epoch(events)
        speeds = [e["seconds_per_step"] for e in steps[-20:] if e.get("seconds_per_step")]
        sps = float(np.median(speeds)) if speeds else None
        total = per_epoch * cfg.get("epochs", 0) if per_epoch else None
        eta = (max(total - step, 0) * sps) if (sps and total and state in ACTIVE) else None
        notes = [] if cfg.get("pretrained_g") else ["no pretrained base for these settings: training starts "
                                                    "from scratch and needs many more epochs"]
        previews = _read_json(t.run_dir / "previews.json", {})
        notes += [f"epoch {k}: no preview ({public_message(p['error'])})"
                  for k, p in sorted(previews.items(), key=lambda kv: int(kv[0])) if p.get("error")]
        out = {**base, "state": state, "reason": reason, "epoch": epoch, "epochs": cfg.get("epochs"),
               "step": step, "steps_total": total, "seconds_per_step": sps,
               "eta_s": None if eta is None else round(eta), "sample_rate": cfg.get("sample_rate"),
               "f0": cfg.get("f0"), "device": cfg.get("device"), "batch_size": cfg.get("batch_size"),
               "save_every": cfg.get("save_every"),
               "loss": _loss_history(steps), "saves": self._saves(t, events, steps), "notes": notes,
               "resume_step": None if state in ACTIVE + ("finished",) else _resume_step(t.run_dir)}
        out["message"] = _message(out)
        return out

    def _state(self, t: Training, alive: bool, last: dict) -> tuple[str, str | None]:
        kind = last.get("type")
        if alive:
            if t.id in self._stopping:
                return "stopping", None
            return ("training", None) if kind else ("starting", None)
        if t.id in self._watching:  # the process ended; the last save's preview is still being made
            return "previewing", None
        if kind in ("finished", "stopped"):
            return kind, None
        if kind == "failed":  # the trainer's own words, which may name files under $STUDIO_HOME
            return "failed", public_message(last.get("error") or "the trainer reported a failure")
        if t.id in self._stopping:
            return "stopped", "killed after not stopping in time; the last saved checkpoint is kept"
        proc = self._procs.get(t.id)
        if proc is None:  # launched by an earlier studio and gone without a last word: a crash or power cut
            return "interrupted", "the studio (or its machine) stopped while it trained"
        tail = _last_line(self._log(t))
        return "failed", f"the training process ended without finishing (exit code {proc.returncode})" + (
            f": {public_message(tail)}" if tail else "")

    @staticmethod
    def _log(t: Training) -> Path | None:
        logs = sorted(t.run_dir.glob("train-*.log"), key=lambda p: int(p.stem.split("-")[1]))
        return logs[-1] if logs else None

    @staticmethod
    def _steps_per_epoch(events: list[dict]) -> int | None:
        starts = [e["steps_per_epoch"] for e in events if e.get("type") == "start" and e.get("steps_per_epoch")]
        return starts[-1] if starts else None

    def _saves(self, t: Training, events: list[dict], steps: list[dict]) -> list[dict]:
        previews = _read_json(t.run_dir / "previews.json", {})
        smooth = _smoothed([e["loss_mel"] for e in steps])
        out = {}
        for e in events:
            if e.get("type") in ("save", "finished") and (e.get("model_path") or e.get("g_path")):
                i = max((k for k, s in enumerate(steps) if s["step"] <= e.get("step", 0)), default=None)
                p = previews.get(str(e.get("epoch")), {})
                out[e.get("epoch")] = {"epoch": e.get("epoch"), "step": e.get("step"),
                                       "mel_smoothed": None if i is None else round(smooth[i], 4),
                                       "preview": Path(p["path"]).name if p.get("path") else None,
                                       "similarity": p.get("similarity")}
        return [out[k] for k in sorted(out)]

    def previews(self, name: str) -> list[Path]:
        """The preview clips of the current run's saves, by epoch; their file names are the saves' `preview`.

        The status names them only: the files themselves are handed over by the caller (the page and
        gradio_client get copies from Gradio's cache), so no server path reaches a client.
        """
        t = self.get(name)
        done = _read_json(t.run_dir / "previews.json", {}) if t.run_dir else {}
        paths = [Path(p["path"]) for _, p in sorted(done.items(), key=lambda kv: int(kv[0])) if p.get("path")]
        return [p for p in paths if p.is_file()]

    # -- previews --------------------------------------------------------------------------------

    def _previews(self, t: Training) -> None:
        """Convert the probe clip with every saved model not previewed yet; score it against the dataset."""
        with self._preview_lock:
            done = _read_json(t.run_dir / "previews.json", {})
            saves = [e for launch in read_events(t.run_dir) for e in launch
                     if e.get("type") in ("save", "finished") and str(e.get("epoch")) not in done]
            for e in saves:
                try:
                    done[str(e["epoch"])] = self._preview(t, e)
                except Exception as err:  # a preview must never stop the training or the status
                    done[str(e["epoch"])] = {"path": None, "similarity": None, "error": str(err)}
                _write_json(t.run_dir / "previews.json", done)

    def _preview(self, t: Training, event: dict) -> dict:
        from rvc.model_file import load_model
        from rvc.pipeline import SAMPLE_RATE, Pipeline

        model_path = self._model_file(t, event)
        rvc = self.studio.rvc()
        pipeline = Pipeline(load_model(model_path, device=rvc.device), rvc.contentvec, None, rvc.rmvpe_path,
                            rvc.device)
        probe, sr = audio.load_audio(t.folder / "probe.wav")
        result = pipeline(audio.resample(probe, sr, SAMPLE_RATE))
        path = audio.save_audio(self.public / t.id / t.meta["run"] / f"preview_epoch{event['epoch']}.wav",
                                result.audio, result.sample_rate)
        reference = audio.load_audio(t.folder / "reference.wav")
        score = self.studio.speaker().similarity(reference, [(result.audio, result.sample_rate)])[0]
        return {"path": str(path), "similarity": round(float(score), 4), "model": str(model_path)}

    def _model_file(self, t: Training, event: dict) -> Path:
        """The shareable .pth of a save; extracted from its G_ checkpoint when the trainer wrote none."""
        if event.get("model_path") and Path(event["model_path"]).is_file():
            return Path(event["model_path"])
        from rvc.model_file import extract_model

        cfg = _read_json(t.run_dir / "cfg.json")
        out = t.run_dir / f"epoch{event['epoch']}.pth"
        if not out.is_file():
            extract_model(event["g_path"], out, cfg["sample_rate"], cfg["f0"], "v2", info=f"{event['epoch']}epoch")
        return out

    # -- export ----------------------------------------------------------------------------------

    def export(self, name: str, epoch: int | None = None) -> dict:
        """`<name>.pth` + `<name>.index` + a zip of both (shared RVC format), added to the RVC voices.

        `epoch` picks a saved epoch; by default the final model (or the latest save when not finished).
        """
        t = self.get(name)
        if t.run_dir is None:
            raise TrainingError(f"{t.name!r} has not been trained yet: press Train first")
        events = [e for launch in read_events(t.run_dir) for e in launch
                  if e.get("type") in ("save", "finished") and (e.get("model_path") or e.get("g_path"))]
        if epoch is not None:
            events = [e for e in events if e.get("epoch") == int(epoch)]
            if not events:
                raise TrainingError(f"epoch {epoch} was not saved; pick one of the saved epochs")
        if not events:
            raise TrainingError(f"{t.name!r} has no saved model yet: train until the first save, then export")
        model = self._model_file(t, events[-1])
        index = self._index(t)
        stem = _file_stem(t.name)
        out = self.public / t.id / "export"
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        pth, idx, archive = out / f"{stem}.pth", out / f"{stem}.index", out / f"{stem}.zip"
        shutil.copyfile(model, pth)
        shutil.copyfile(index, idx)
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
            z.write(pth, pth.name)
            z.write(idx, idx.name)
        voice = self._register(t, pth, idx)
        return {"pth": str(pth), "index": str(idx), "zip": str(archive), "voice": voice.name,
                "epoch": events[-1].get("epoch")}

    def _index(self, t: Training) -> Path:
        """The retrieval index the trainer built at the end, or built now from the dataset's features."""
        from rvc.train import build_index

        built = [e["index_path"] for launch in read_events(t.run_dir) for e in launch
                 if e.get("type") == "finished" and e.get("index_path") and Path(e["index_path"]).is_file()]
        if built:
            return Path(built[-1])
        cfg = _read_json(t.run_dir / "cfg.json")
        return build_index(Path(cfg["dataset_dir"]), t.run_dir, cfg["name"])

    def _register(self, t: Training, pth: Path, idx: Path):
        """Add to the RVC voices; a voice this training exported before is replaced, anyone else's kept."""
        voices = self.studio.rvc_voices
        try:
            previous = voices.get(t.name)
        except LibraryError:
            previous = None
        if previous is not None and previous.id == t.meta.get("voice_id"):
            voices.delete(previous.id)
        voice = voices.add(t.name, [pth, idx])
        self._save_meta(t, voice_id=voice.id)
        return voice


def devices() -> list[str]:
    """Where a training can run: the CPU and every visible CUDA device."""
    import torch

    return ["cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count()))]


def _resume_step(run_dir: Path) -> int | None:
    """The step of the newest complete G_/D_ pair, which a resume continues from (None: nothing to resume)."""
    from rvc.train import checkpoints

    pairs = checkpoints(run_dir)
    return pairs[0][0] if pairs else None


def _saved_epochs(runs: Path) -> list[str]:
    """The epochs any run of a training saved (what a fresh start would lose); a checkpoint whose save was
    not recorded yet counts too."""
    epochs = sorted({e.get("epoch") or 0 for run in runs.glob("*") if run.is_dir() for launch in read_events(run)
                     for e in launch if e.get("type") in ("save", "finished")})
    if not epochs and any(runs.glob("*/G_*.pth")):
        return ["a checkpoint"]
    return [str(e) for e in epochs]


def _last_change(t: Training) -> float:
    """When the training last changed: its meta, or its current run's events."""
    files = [t.folder / "meta.json", *(t.run_dir.glob("events-*.jsonl") if t.run_dir else [])]
    return max((f.stat().st_mtime for f in files if f.exists()), default=0.0)


def _signal(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    try:
        os.killpg(pid, sig)  # its own session: the group id is its pid, so helpers it spawned stop too
    except ProcessLookupError:
        pass


def _last_line(path: Path | None) -> str:
    if path is None or not path.is_file():
        return ""
    lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def _smoothed(values: list[float]) -> list[float]:
    out, acc = [], None
    for v in values:
        acc = v if acc is None else SMOOTHING * acc + (1 - SMOOTHING) * v
        out.append(acc)
    return out


def _loss_history(steps: list[dict]) -> dict:
    """Step, mel loss and its smoothed curve, thinned to at most LOSS_POINTS points."""
    mel = [float(e["loss_mel"]) for e in steps]
    smooth = _smoothed(mel)
    keep = np.unique(np.linspace(0, len(steps) - 1, min(len(steps), LOSS_POINTS)).astype(int)) if steps else []
    return {"step": [steps[i]["step"] for i in keep], "mel": [round(mel[i], 4) for i in keep],
            "mel_smoothed": [round(smooth[i], 4) for i in keep]}


def _file_stem(name: str) -> str:
    """A file name from display text: letters, digits, '-', '_' and '.'; never a path."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return stem[:80] or "voice"


def _message(s: dict) -> str:
    state = s["state"]
    resume = ("Press Train to start again: no checkpoint was saved." if s.get("resume_step") is None else
              f"Resume continues from the last checkpoint (step {s['resume_step']}).")
    if state == "failed":
        return f"Training failed: {s['reason']}. {resume}"
    if state == "finished":
        return f"Finished {s['epochs']} epochs ({s['step']} steps): export the model."
    if state in ("stopped", "interrupted"):
        why = f" ({s['reason']})" if state == "interrupted" else ""
        return f"{state.capitalize()} at epoch {s['epoch']}, step {s['step']}{why}. {resume}"
    if state == "previewing":
        return f"Making the preview of the last save (epoch {s['epoch']})..."
    if state == "starting":
        return "Starting the trainer (loading the dataset and the pretrained bases)..."
    eta = f", about {s['eta_s'] / 60:.0f} min left" if s.get("eta_s") is not None else ""
    speed = f", {s['seconds_per_step']:.2f} s/step" if s.get("seconds_per_step") else ""
    verb = "Stopping (saving the checkpoint) at" if state == "stopping" else "Training:"
    return f"{verb} epoch {s['epoch']}/{s['epochs']}, step {s['step']}{speed}{eta}."
