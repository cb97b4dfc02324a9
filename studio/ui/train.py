"""Train tab: recordings -> dataset report -> training with live progress, previews, stop/resume -> export."""
from __future__ import annotations

import time
from pathlib import Path

import gradio as gr
import pandas as pd

from ..service import Studio
from ..training import ACTIVE, SAMPLE_RATES, TRASH_KINDS, TrainOptions, devices
from ..values import whole_or_blank
from .common import GPU, QUIET, confirm_step, user_errors

STATUS_EVERY_S = 1.0   # how often /train_status looks at the events file
STATUS_QUIET_S = 5.0   # a status is sent at least this often, even when nothing changed

GUIDE = ("Upload 5-10 minutes of one person speaking (several files or a zip). The dataset report shows what "
         "will train before any training starts. Every *save every* epochs the model is saved and a held-out clip "
         "is converted with it: listen, and watch the speaker similarity next to the smoothed loss; pick the epoch "
         "where it stops improving and export it.")


def report_markdown(report: dict | None) -> str:
    if not report:
        return ""
    snr = "n/a (no pauses to measure)" if report.get("snr_db") is None else f"{report['snr_db']} dB"
    lines = [f"**{report.get('name', '')}**: {report['minutes']} min of speech kept in {report['clips']} clips "
             f"from {report['files']} file(s); clipping {report['clipped_percent']} %; estimated SNR {snr}; "
             f"held-out preview clip {report['probe_seconds']} s."]
    lines += [f"- ⚠ {w}" for w in report.get("warnings", [])]
    lines += [f"- {n}" for n in report.get("notes", [])]
    return "\n".join(lines)


def status_view(status: dict | None, epoch: str | None = None, files: list[str] | None = None):
    """Status dict + preview files -> (message, mel loss plot, per-epoch similarity plot, chosen preview, saved
    epochs).

    The two plots sit side by side; the similarity plot's tooltip also gives the smoothed mel loss at that save.
    """
    if not status or "state" not in status:
        return "", None, None, None, gr.update(choices=[])
    loss = status.get("loss") or {}
    rows = [{"step": s, "loss": v, "series": "mel loss"} for s, v in zip(loss.get("step", []), loss.get("mel", []))]
    rows += [{"step": s, "loss": v, "series": "smoothed"}
             for s, v in zip(loss.get("step", []), loss.get("mel_smoothed", []))]
    saves = status.get("saves") or []
    per_epoch = [{"epoch": s["epoch"], "similarity": s["similarity"], "smoothed mel loss": s.get("mel_smoothed")}
                 for s in saves if s.get("similarity") is not None]
    message = f"**{status['state']}**: {status.get('message', '')}"
    if status.get("notes"):
        message += "\n" + "\n".join(f"- {n}" for n in status["notes"])
    return (message, pd.DataFrame(rows, columns=["step", "loss", "series"]),
            pd.DataFrame(per_epoch, columns=["epoch", "similarity", "smoothed mel loss"]),
            preview_of(epoch, status, files),
            gr.update(choices=[str(s["epoch"]) for s in saves]))


def preview_of(epoch: str | None, status: dict | None, files: list[str] | None = None) -> str | None:
    """The preview of the chosen saved epoch (the latest when none is chosen), among the handed-over files
    (a save's `preview` is the file's name)."""
    by_name = {Path(f).name: f for f in files or []}
    previews = [s for s in (status or {}).get("saves") or [] if s.get("preview") in by_name]
    chosen = [s for s in previews if str(s["epoch"]) == str(epoch)] if epoch else previews[-1:]
    return by_name[chosen[0]["preview"]] if chosen else None


TRAININGS = ["name", "state", "epoch", "epochs", "updated"]


def trainings_view(studio: Studio, pick: bool = True):
    """The team's trainings (running first, then most recent) for the table and the picker; on page load
    (`pick`) the picker shows the one that is running, so a reloaded page finds its place again."""
    rows = studio.training.overview()
    running = next((r["name"] for r in rows if r["state"] in ACTIVE), None)
    picker = {"value": running} if pick else {}
    return pd.DataFrame(rows, columns=TRAININGS), gr.update(choices=[r["name"] for r in rows], **picker)


def settings_of(studio: Studio, name: str | None):
    """A picked training: its name and the settings of its current run into the controls."""
    if not name:
        return (gr.update(),) * 7
    s = studio.training.status(name)
    keys = ("epochs", "batch_size", "save_every", "sample_rate", "f0", "device")
    return (s["name"], *(gr.update() if s.get(k) is None else gr.update(value=s[k]) for k in keys))


def build(studio: Studio) -> list[tuple[callable, list]]:
    """Build the tab; returns its page-load refills (fn, outputs)."""
    trainer, opts = studio.training, TrainOptions()
    with gr.Tab("Train"):
        gr.Markdown(GUIDE)
        with gr.Row():
            trainings = gr.Dataframe(headers=TRAININGS, interactive=False, label="Trainings (the team's, running "
                                     "first, then most recent)", elem_id="train_trainings")
            picked = gr.Dropdown([], label="Show training", elem_id="train_pick", allow_custom_value=True)
        with gr.Row():
            files = gr.File(label="Recordings (audio files or a zip)", file_count="multiple",
                            elem_id="train_files")
            with gr.Column():
                name = gr.Textbox(label="Dataset name (the trained voice keeps it)", elem_id="train_name",
                                  placeholder="Captain Hale")
                isolate = gr.Checkbox(False, label="Isolate vocals first (music or noise behind the voice)")
                with gr.Row():
                    prepare = gr.Button("Prepare dataset", elem_id="train_prepare")
                    replace = gr.Button("Replace the training of this name", elem_id="train_replace")
                replace_yes = confirm_step(replace, lambda n: _ask_replace(n, studio.settings.trash_days), name,
                                           "train_replace_confirm", "Yes, replace it")
        report = gr.JSON(label="Dataset report", visible=False)
        report_md = gr.Markdown(elem_id="train_report")
        with gr.Row():
            epochs = gr.Slider(*TrainOptions.EPOCHS, value=opts.epochs, step=1, label="Epochs")
            batch_size = gr.Slider(*TrainOptions.BATCH, value=opts.batch_size, step=1,
                                   label="Batch size (GPU memory / 2 GB is a good start)")
            save_every = gr.Slider(*TrainOptions.SAVE_EVERY, value=opts.save_every, step=1,
                                   label="Save and preview every N epochs")
            sample_rate = gr.Dropdown(list(SAMPLE_RATES), value=opts.sample_rate, label="Sample rate")
            f0 = gr.Checkbox(opts.f0, label="Pitch guidance (speech and singing)")
            device = gr.Dropdown(["", *devices()], value="", label="Device (empty = the conversion device; "
                                 "another GPU lets conversions run meanwhile)")
        with gr.Row():
            start = gr.Button("Train", variant="primary", elem_id="train_start")
            stop = gr.Button("Stop", variant="stop", elem_id="train_stop")
            resume = gr.Button("Resume", elem_id="train_resume")
            over = gr.Button("Start over", elem_id="train_start_over")
        over_yes = confirm_step(over, lambda n: _ask_start_over(n, studio.settings.trash_days), name,
                                "train_start_over_confirm", "Yes, start over")
        with gr.Accordion("Trainings in the trash", open=False):
            with gr.Row():
                trashed = gr.Dropdown([], label="Trashed training or run", elem_id="train_trash_picker",
                                      allow_custom_value=True)
                restore = gr.Button("Restore", elem_id="train_restore", scale=0)
        status = gr.JSON(label="Training status", visible=False)
        status_md = gr.Markdown(elem_id="train_status")
        previews = gr.File(label="Previews, one per saved epoch", file_count="multiple", visible=False)
        with gr.Row():
            loss_plot = gr.LinePlot(x="step", y="loss", color="series", label="Mel loss")
            epoch_plot = gr.LinePlot(x="epoch", y="similarity", tooltip=["epoch", "similarity", "smoothed mel loss"],
                                     label="Per saved epoch: the preview's speaker similarity to the dataset "
                                           "(higher is closer; pick where it stops rising)")
        preview = gr.Audio(label="Preview: the held-out clip converted by the chosen epoch (default the latest)",
                           type="filepath", interactive=False, elem_id="train_preview")
        with gr.Row():
            epoch = gr.Dropdown([], label="Export epoch (empty = final or latest)", allow_custom_value=True)
            export = gr.Button("Export and add to RVC voices", elem_id="train_export")
        with gr.Row():
            pth, index, archive = (gr.File(label=label, interactive=False)
                                   for label in ("Model (.pth)", "Index (.index)", "Both (.zip)"))
        export_md = gr.Markdown(elem_id="train_export_status")

        @user_errors
        def dataset_prepare(files, name, isolate=False, replace=False, progress=gr.Progress()) -> dict:
            """Check and slice recordings into a dataset; returns the report (minutes, clips, clipping, SNR).
            A name in use is refused unless `replace` (the old training then goes to the trash)."""
            paths = [f if isinstance(f, str) else f.name for f in (files or [])]
            return trainer.prepare(paths, name, bool(isolate),
                                   on_progress=lambda fraction, desc: progress(fraction, desc=desc),
                                   replace=bool(replace))

        @user_errors
        def train_start(name, epochs, batch_size, sample_rate="40k", f0=True, save_every=opts.save_every,
                        device="", start_over=False) -> dict:
            """Start training a prepared dataset; returns the status at once (watch /train_status). Over saved
            epochs it is refused unless `start_over` (the old run then goes to the trash, restorable)."""
            return trainer.start(name, int(epochs), int(batch_size), sample_rate, bool(f0), int(save_every),
                                 device or None, bool(start_over))

        @user_errors
        def train_stop(name) -> dict:
            """Stop training, keeping the latest checkpoint (Resume continues from it)."""
            return trainer.stop(name)

        @user_errors
        def train_resume(name) -> dict:
            """Continue training from the latest checkpoint (same step and optimiser state)."""
            return trainer.resume(name)

        @user_errors
        def train_status(name):
            """Stream (status, preview clips) until the training finishes, stops or fails (the last status says
            which); each save's `preview` names its clip among the files."""
            last, sent = None, 0.0
            while True:
                s = trainer.status(name)
                if s != last or time.monotonic() - sent > STATUS_QUIET_S:
                    yield s, [str(p) for p in trainer.previews(name)]
                    last, sent = s, time.monotonic()
                if s["state"] not in ACTIVE:
                    return
                time.sleep(STATUS_EVERY_S)

        @user_errors
        def train_restore(name) -> dict:
            """Bring back the latest trashed training or run of that name (what holds its place goes to the
            trash); returns its status."""
            if not name:
                raise gr.Error("pick a trashed training first")
            return trainer.restore(name)

        def trashed_names():
            names = [t["name"] for t in studio.trash_list() if t["kind"] in TRASH_KINDS]
            return gr.update(choices=list(dict.fromkeys(names)))

        def follow(name):
            """The status stream of a picked training (nothing when none is picked)."""
            if name:
                yield from train_status(name)

        @user_errors
        def train_export(name, epoch=None):
            """Build the index and export <name>.pth, <name>.index and a zip; adds the voice to RVC voices."""
            out = trainer.export(name, whole_or_blank(epoch, "epoch", lo=1))
            return out["pth"], out["index"], out["zip"], (f"Exported epoch {out['epoch']} as RVC voice "
                                                          f"**{out['voice']}**: it is in Convert and Cast & "
                                                          "Direct now.")

        view = [status_md, loss_plot, epoch_plot, preview, epoch]
        # Declared first so the public name is exactly /train_status (the private watchers below reuse the fn).
        watch = [status, previews]
        name.submit(train_status, name, watch, api_name="train_status", concurrency_limit=None)
        refill = (lambda: trainings_view(studio, pick=False), None, [trainings, picked])
        # The page's own Train / Prepare send False (refuse); scripts may send True; the confirmed buttons do.
        no, yes = gr.Checkbox(False, visible=False), gr.State(True)
        for button, inputs, api in ((prepare, [files, name, isolate, no], "dataset_prepare"),
                                    (replace_yes, [files, name, isolate, yes], None)):
            button.click(dataset_prepare, inputs, report, api_name=api, api_visibility="public" if api else "private",
                         **GPU).then(report_markdown, report, report_md, api_visibility="private").then(
                *refill, **QUIET)
        start_inputs = [name, epochs, batch_size, sample_rate, f0, save_every, device]
        for button, fn, inputs, api in ((start, train_start, start_inputs + [no], "train_start"),
                                        (resume, train_resume, [name], "train_resume"),
                                        (over_yes, train_start, start_inputs + [yes], None)):
            # Starting waits for conversions on the GPU lane; the training then runs outside the queue.
            button.click(fn, inputs, status, api_name=api, api_visibility="public" if api else "private",
                         **GPU).then(*refill, **QUIET).then(
                train_status, name, watch, api_visibility="private", concurrency_limit=None)
        restore.click(train_restore, trashed, status, api_name="train_restore").then(*refill, **QUIET)
        trashed.focus(trashed_names, None, trashed, queue=False, **QUIET)
        picked.change(user_errors(lambda n: settings_of(studio, n)), picked,
                      [name, epochs, batch_size, save_every, sample_rate, f0, device], queue=False, **QUIET).then(
            follow, picked, watch, concurrency_limit=None, **QUIET)
        stop.click(train_stop, name, status, api_name="train_stop", concurrency_limit=None)
        status.change(status_view, [status, epoch, previews], view, api_visibility="private", queue=False)
        epoch.change(preview_of, [epoch, status, previews], preview, api_visibility="private", queue=False)
        export.click(train_export, [name, epoch], [pth, index, archive, export_md], api_name="train_export",
                     **GPU)
    return [(lambda: trainings_view(studio), refill[2])]


def _ask_replace(name: str, days: int) -> str:
    return (f"Replace the training **{name}** with a new dataset? Its dataset, checkpoints, previews and exports "
            f"go to the trash for {days} days (restore them below). Upload the recordings first.")


def _ask_start_over(name: str, days: int) -> str:
    return (f"Start **{name}** over from the pretrained bases? Its saved epochs, previews and exports go to the "
            f"trash for {days} days (restore them below); Resume continues them instead.")
