"""Convert tab: any audio into a cast voice with Seed-VC V2, or into an RVC voice model."""
from __future__ import annotations

import gradio as gr

from ..audio import OUTPUT_FORMATS
from ..service import Studio
from ..voices import EXTRACT_LABEL
from .common import GPU, QUIET, confirm_step, user_errors

F0_METHODS = ["auto", "rmvpe", "fcpe", "harvest", "dio"]
RVC_COLUMNS = ["name", "version", "sample_rate", "pitch_guided", "has_index", "created"]


def build(studio: Studio) -> list[tuple[callable, list]]:
    """Build the tab; returns the (function, outputs) pairs that fill its pickers on page load."""
    with gr.Tab("Convert"):
        source = gr.Audio(label="Source audio (any speech or singing)", type="filepath",
                          sources=["upload", "microphone"], elem_id="convert_source")
        with gr.Tabs():
            with gr.Tab("Seed-VC (a cast voice)"):
                gr.Markdown("Zero-shot: the result takes the timbre of a cast member, or of a reference you "
                            "upload here (3-30 s of clean speech).")
                with gr.Row():
                    cast = gr.Dropdown([], label="Cast member", elem_id="convert_cast", allow_custom_value=True)
                    reference = gr.Audio(label="…or a reference recording", type="filepath")
                with gr.Row():
                    steps = gr.Slider(1, 100, value=studio.settings.default_diff_steps, step=1,
                                      label="Diffusion steps (more = cleaner, slower)")
                    intelligibility = gr.Slider(0, 1.5, value=0.7, step=0.05, label="Intelligibility guidance")
                    similarity = gr.Slider(0, 1.5, value=0.7, step=0.05, label="Similarity guidance")
                with gr.Row():
                    convert_style = gr.Checkbox(False, label="Convert style too (accent, emotion)")
                    length_adjust = gr.Slider(0.5, 2.0, value=1.0, step=0.05,
                                              label="Length adjust (style conversion only)")
                    seed = gr.Number(0, precision=0, label="Seed")
                go_seed = gr.Button("Convert with Seed-VC", variant="primary", elem_id="convert_go")
            with gr.Tab("RVC (a voice model)"):
                with gr.Row():
                    voice = gr.Dropdown([], label="RVC voice", elem_id="rvc_voice", allow_custom_value=True)
                    key = gr.Slider(-24, 24, value=0, step=1, label="Pitch shift (semitones)")
                    f0_method = gr.Dropdown(F0_METHODS, value="auto",
                                            label="Pitch method (auto: RMVPE if installed, else FCPE)")
                with gr.Row():
                    index_rate = gr.Slider(0, 1, value=0.75, step=0.05, label="Index rate")
                    protect = gr.Slider(0, 0.5, value=0.33, step=0.01, label="Protect consonants")
                    fmt = gr.Dropdown(list(OUTPUT_FORMATS), value="wav", label="Output format", elem_id="rvc_format")
                go_rvc = gr.Button("Convert with RVC", variant="primary", elem_id="convert_rvc_go")
                with gr.Accordion("RVC voices: add or remove", open=False):
                    gr.Markdown("Upload a shared RVC model: the `.pth` and its `.index`, or a `.zip` of them. "
                                "A training checkpoint (G_*.pth) is not a voice model: tick the box below to "
                                "extract its voice (sample rate, pitch guidance and version are read from it).")
                    files = gr.File(label="Model files", file_count="multiple", file_types=[".pth", ".index", ".zip"],
                                    elem_id="rvc_files")
                    from_checkpoint = gr.Checkbox(False, label=EXTRACT_LABEL, elem_id="rvc_from_checkpoint")
                    with gr.Row():
                        voice_name = gr.Textbox(label="RVC voice name", elem_id="rvc_name")
                        add_voice = gr.Button("Add voice", elem_id="rvc_add")
                        delete_voice = gr.Button("Delete selected voice", variant="stop")
                    confirm = confirm_step(delete_voice, lambda name: _ask(name, studio.settings.trash_days), voice,
                                           "rvc_delete_confirm")
                    with gr.Row():
                        trashed = gr.Dropdown([], label="Deleted RVC voice", elem_id="rvc_trash_picker",
                                              allow_custom_value=True)
                        restore = gr.Button("Restore", elem_id="rvc_restore", scale=0)
                    voices_table = gr.Dataframe(headers=RVC_COLUMNS, interactive=False, label="RVC voices",
                                                elem_id="rvc_table")
        result = gr.Audio(label="Converted", type="filepath", interactive=False, buttons=["download"],
                          elem_id="convert_result")
        status = gr.Markdown(elem_id="convert_status")

        @user_errors
        def convert(source, cast, reference, steps, intelligibility, similarity, convert_style, length_adjust,
                    seed, progress=gr.Progress()):
            if not source:
                raise gr.Error("upload the source audio to convert")
            progress(0, desc="Preparing the reference voice")
            out = studio.convert(source, cast or None, reference or None, diffusion_steps=int(steps),
                                 intelligibility_cfg_rate=float(intelligibility),
                                 similarity_cfg_rate=float(similarity), convert_style=bool(convert_style),
                                 length_adjust=float(length_adjust), seeds=[int(seed or 0)],
                                 on_stage=lambda stage, fraction: progress(fraction, desc=f"Seed-VC: {stage}"))
            return str(studio.save_take(out.takes[0], out.sample_rate)), "; ".join(out.notes)

        @user_errors
        def convert_rvc(source, voice, key, f0_method, index_rate, protect, fmt, progress=gr.Progress()):
            if not source:
                raise gr.Error("upload the source audio to convert")
            if not voice:
                raise gr.Error("pick an RVC voice (add one under 'RVC voices')")
            progress(0, desc="Converting with RVC")
            out = studio.convert_rvc(source, voice, key=float(key), f0_method=f0_method,
                                     index_rate=float(index_rate), protect=float(protect))
            return str(studio.save_take(out.takes[0], out.sample_rate, fmt)), "; ".join(out.notes)

        @user_errors
        def rvc_upload(files, name, from_checkpoint=False):
            if not files:
                raise gr.Error("upload a .pth model (and its .index), or a .zip of them")
            v = studio.rvc_upload(files, name, bool(from_checkpoint))
            return f"Added RVC voice **{v.name}** ({v.version}, {v.sample_rate} Hz, " \
                   f"{'with' if v.has_index else 'no'} index)."

        @user_errors
        def rvc_delete(name: str) -> str:
            """Delete an RVC voice by name."""
            if not name:
                raise gr.Error("pick an RVC voice first")
            studio.rvc_delete(name)
            return f"Deleted RVC voice {name}."

        @user_errors
        def rvc_restore(name: str) -> str:
            """Bring a deleted RVC voice back from the trash by name."""
            if not name:
                raise gr.Error("pick a deleted RVC voice first")
            return f"Restored RVC voice **{studio.rvc_restore(name)['name']}**."

        def trashed_names():
            return gr.update(choices=[t["name"] for t in studio.trash_list() if t["kind"] == "rvc"])

        @user_errors
        def rvc_list() -> list[dict]:
            """Every RVC voice as plain values, newest first."""
            return studio.rvc_list()

        def refresh_rvc(selected: str | None = None):
            voices = studio.rvc_list()
            names = [v["name"] for v in voices]
            return [[v[c] for c in RVC_COLUMNS] for v in voices], gr.update(choices=names, value=selected if selected in names else
                                     (names[0] if names else None))

        go_seed.click(convert, [source, cast, reference, steps, intelligibility, similarity, convert_style,
                                length_adjust, seed], [result, status], api_name="convert",
                      **GPU)
        go_rvc.click(convert_rvc, [source, voice, key, f0_method, index_rate, protect, fmt], [result, status],
                     api_name="convert_rvc", **GPU)
        add_voice.click(rvc_upload, [files, voice_name, from_checkpoint], status, api_name="rvc_upload").then(
            refresh_rvc, voice_name, [voices_table, voice], **QUIET)
        confirm.click(rvc_delete, voice, status, api_name="rvc_delete").then(
            refresh_rvc, None, [voices_table, voice], **QUIET)
        restore.click(rvc_restore, trashed, status, api_name="rvc_restore").then(
            refresh_rvc, trashed, [voices_table, voice], **QUIET)
        trashed.focus(trashed_names, None, trashed, queue=False, **QUIET)
        gr.api(rvc_list, api_name="rvc_list")

        def cast_choices(selected: str | None = None):
            return gr.update(choices=[m["name"] for m in studio.cast_list()], value=selected)

        # Dropdowns re-read the library whenever they are opened, so voices added in any tab show up.
        cast.focus(cast_choices, cast, cast, queue=False, **QUIET)
        voice.focus(refresh_rvc, voice, [voices_table, voice], queue=False, **QUIET)
    return [(refresh_rvc, [voices_table, voice]), (cast_choices, [cast])]


def _ask(name: str | None, days: int) -> str:
    if not name:
        raise gr.Error("pick an RVC voice first")
    return f"Delete RVC voice **{name}**? It stays in the trash for {days} days (Restore below)."
