"""RVC voices in the studio library: community or trained models (.pth + optional .index).

Each voice lives in $STUDIO_HOME/rvc/<random id>/ as model.pth (+ model.index),
recorded in the same SQLite library as the cast. A model is loaded strictly once
at upload, so a corrupt file, a training checkpoint or an incompatible vocoder is
refused with a clear message before anything is stored. A G_*.pth training
checkpoint becomes a voice when the uploader asks for it (`from_checkpoint`): its
voice is extracted as RVC WebUI's "extract small model" does, with the sample
rate, pitch guidance and version read from the weights.
"""
from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from . import durable, limits, names, trash
from .library import LibraryError, clean_name, connect

EXTRACT_LABEL = "Extract the voice from this training checkpoint"  # the Convert tab's checkbox says the same


@dataclass(frozen=True)
class RVCVoice:
    id: str
    name: str
    version: str
    sample_rate: int
    f0: bool
    has_index: bool
    info: str
    folder: Path
    created: float

    @property
    def model_path(self) -> Path:
        return self.folder / "model.pth"

    @property
    def index_path(self) -> Path | None:
        return self.folder / "model.index" if self.has_index else None

    def as_dict(self) -> dict:
        return {"id": self.id, "name": self.name, "version": self.version, "sample_rate": self.sample_rate,
                "pitch_guided": self.f0, "has_index": self.has_index, "info": self.info,
                "created": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.created))}


def unpack_upload(files: list[str | Path], work: Path) -> tuple[Path, Path | None]:
    """Find the one .pth (and at most one .index) among uploaded files or inside a .zip.

    A zip's members are counted and sized from its headers before anything is extracted
    (see limits.extract_zip), so a bomb or an archive of many models writes nothing.
    """
    found: list[Path] = []
    for f in map(Path, files):
        if f.suffix.lower() != ".zip":
            found.append(f)
            continue
        wanted = [n for n in limits.zip_names(f) if Path(n).suffix.lower() in (".pth", ".index")]
        _check_counts([Path(n) for n in wanted] + [p for p in found], f.name)
        counter = iter(range(len(found), len(found) + len(wanted)))

        def select(member: str) -> str | None:
            suffix = Path(member).suffix.lower()  # the target name never comes from the archive
            return f"{next(counter)}{suffix}" if suffix in (".pth", ".index") else None

        found += limits.extract_zip(f, select, work)
    others = [p.name for p in found if p.suffix.lower() not in (".pth", ".index")]
    if others:
        raise LibraryError(f"unexpected file(s) {', '.join(others)}: upload a .pth model, its .index, or a .zip")
    _check_counts(found, "upload")
    models = [p for p in found if p.suffix.lower() == ".pth"]
    if not models:
        raise LibraryError("upload exactly one .pth voice model")
    indexes = [p for p in found if p.suffix.lower() == ".index"]
    return models[0], (indexes[0] if indexes else None)


def _check_counts(paths: list[Path], where: str) -> None:
    models = sum(p.suffix.lower() == ".pth" for p in paths)
    indexes = sum(p.suffix.lower() == ".index" for p in paths)
    if models > 1:
        raise LibraryError(f"{where}: found {models} .pth files; upload exactly one voice model")
    if indexes > 1:
        raise LibraryError(f"found {indexes} .index files; upload only the one trained with this model")


def _voice_model(src: Path, dest: Path, from_checkpoint: bool):
    """Load the uploaded model strictly (a clear ValueError on anything unusable) and write it to `dest`: as
    uploaded, or the voice extracted from a G_ training checkpoint when the uploader asked for that."""
    from rvc.model_file import TrainingCheckpointError, extract_model, load_model

    try:
        model = load_model(src)
    except TrainingCheckpointError as err:
        if not err.generator:
            raise LibraryError(f"{src.name} is a discriminator training checkpoint (D_*.pth): it holds no voice; "
                               "upload the G_*.pth saved with it") from None
        if not from_checkpoint:
            raise LibraryError(f"{src.name} is a training checkpoint (G_*.pth), not a voice model: tick "
                               f"'{EXTRACT_LABEL}' and add it again (through the API: from_checkpoint=True)") \
                from None
        extract_model(src, dest)  # sample rate, f0 and version read from the weights, or a clear refusal
        return load_model(dest)
    shutil.copyfile(src, dest)
    return model


class RVCVoices:
    def __init__(self, home: Path, trash_days: int = 14) -> None:
        self.home = Path(home)
        self.trash_days = trash_days
        self.root = self.home / "rvc"
        self.root.mkdir(parents=True, exist_ok=True)
        self.purge()
        with connect(self.home) as db:
            kept = {r[0] for r in db.execute("SELECT id FROM rvc_voices")}
            kept |= {r["id"] for r in trash.rows(db, "rvc")}  # restorable: keep their files
        for d in self.root.iterdir():  # leftovers of an interrupted upload or delete
            if d.name not in kept:
                shutil.rmtree(d, ignore_errors=True)

    def _row(self, row: tuple) -> RVCVoice:
        id_, name, _key, version, sr, f0, has_index, info, created = row
        return RVCVoice(id_, name, version, sr, bool(f0), bool(has_index), info, self.root / id_, created)

    def add(self, name: str, files: list[str | Path], from_checkpoint: bool = False) -> RVCVoice:
        """Validate and store an uploaded voice (.pth [+ .index], or a .zip of them); with `from_checkpoint`
        the .pth may be a G_*.pth training checkpoint, whose voice is extracted."""
        name = clean_name(name, "RVC voice")   # before the import below: a bad name costs nothing
        from rvc.index import load_index

        voice_id = uuid.uuid4().hex
        partial = self.root / f"{voice_id}.partial"
        partial.mkdir()
        try:
            model_src, index_src = unpack_upload(files, partial)
            model = _voice_model(model_src, partial / "model.pth", from_checkpoint)
            if index_src is not None:
                load_index(index_src, dim=model.net.enc_p.in_channels)
                shutil.copyfile(index_src, partial / "model.index")
            for f in partial.iterdir():
                if f.name not in ("model.pth", "model.index"):
                    f.unlink()
            durable.publish(partial, self.root / voice_id)  # the files are on disk before the row commits
            with connect(self.home) as db:
                db.execute("INSERT INTO rvc_voices VALUES (?,?,?,?,?,?,?,?,?)",
                           (voice_id, name, names.key(name), model.version, int(model.sr), int(model.f0),
                            int(index_src is not None), str(model.info or ""), time.time()))
        except BaseException as e:
            shutil.rmtree(partial, ignore_errors=True)
            shutil.rmtree(self.root / voice_id, ignore_errors=True)
            if isinstance(e, sqlite3.IntegrityError):
                raise LibraryError(f"an RVC voice named {name!r} already exists; pick another name") from None
            raise
        return self.get(voice_id)

    def list(self) -> list[RVCVoice]:
        with connect(self.home) as db:
            return [self._row(r) for r in db.execute("SELECT * FROM rvc_voices ORDER BY created DESC")]

    def get(self, id_or_name: str) -> RVCVoice:
        key = " ".join(str(id_or_name or "").split())
        with connect(self.home) as db:
            row = db.execute("SELECT * FROM rvc_voices WHERE id = ? OR name_key = ?", (key, names.key(key))).fetchone()
        if row is None:
            raise LibraryError(f"no RVC voice named {key!r}")
        return self._row(row)

    def delete(self, id_or_name: str) -> None:
        """Move a voice to the trash (restorable for trash_days; its files stay until purged)."""
        voice = self.get(id_or_name)
        with connect(self.home) as db:
            trash.discard(db, "rvc", "rvc_voices", voice.id)
        self.purge()

    def restore(self, name: str) -> RVCVoice:
        """Bring the most recently deleted voice of that name back from the trash."""
        with connect(self.home) as db:
            voice_id = trash.restore(db, "rvc", "rvc_voices", name, "RVC voice")
        return self.get(voice_id)

    def purge(self) -> None:
        """Forget voices deleted more than trash_days ago, then remove their folders."""
        with connect(self.home) as db:
            expired = trash.purge(db, "rvc", self.trash_days)
        for row in expired:
            shutil.rmtree(self.root / row["id"], ignore_errors=True)
