"""Cast tab: the library of reference voices — list, listen, rename, delete, upload."""
from __future__ import annotations

import gradio as gr

from ..service import Studio
from .common import GPU, QUIET, confirm_step, language_dropdown, user_errors

COLUMNS = ["name", "description", "language", "origin", "created"]


def build(studio: Studio) -> tuple[gr.Dataframe, gr.Dropdown, callable]:
    """Build the tab; returns (table, picker, refresh) so other tabs can update them."""
    with gr.Tab("Cast"):
        with gr.Row():
            with gr.Column(scale=3):
                table = gr.Dataframe(headers=COLUMNS, interactive=False, label="Cast members", elem_id="cast_table")
            with gr.Column(scale=2):
                picker = gr.Dropdown([], label="Cast member", elem_id="cast_picker", allow_custom_value=True)
                preview = gr.Audio(label="Reference", type="filepath", interactive=False, buttons=["download"],
                                   elem_id="cast_preview")
                new_name = gr.Textbox(label="New name", elem_id="cast_new_name")
                with gr.Row():
                    rename = gr.Button("Rename", elem_id="cast_rename")
                    delete = gr.Button("Delete", variant="stop", elem_id="cast_delete")
                confirm = confirm_step(delete, lambda name: _ask(name, studio.settings.trash_days), picker,
                                       "cast_delete_confirm")
        status = gr.Markdown(elem_id="cast_status")
        with gr.Accordion("Recently deleted", open=False):
            with gr.Row():
                trashed = gr.Dropdown([], label="Deleted cast member", elem_id="cast_trash_picker",
                                      allow_custom_value=True)
                restore = gr.Button("Restore", elem_id="cast_restore", scale=0)
        with gr.Accordion("Add your own reference voice", open=False):
            gr.Markdown("3-30 s of one person speaking, clean and close to the microphone. "
                        "Silence is trimmed and loudness normalised.")
            upload = gr.Audio(label="Recording", type="filepath", sources=["upload", "microphone"])
            with gr.Row():
                up_name = gr.Textbox(label="Name", elem_id="upload_name")
                up_description = gr.Textbox(label="Description", elem_id="upload_description")
                up_language = language_dropdown()
            add = gr.Button("Add to cast", variant="primary", elem_id="cast_add")
        with gr.Accordion("Compare recordings with the picked cast member", open=False):
            gr.Markdown(f"Speaker similarity (cosine, 1 = the same voice) by the **{studio.se_model}** encoder "
                        "(SE_MODEL), best first.")
            compare_files = gr.File(label="Recordings", file_count="multiple", file_types=["audio"])
            compare = gr.Button("Compare", elem_id="cast_compare")
            scores = gr.JSON(label="Similarity", elem_id="cast_similarity")

        def refresh(selected: str | None = None):
            members = studio.cast_list()
            names = [m["name"] for m in members]
            value = selected if selected in names else (names[0] if names else None)
            return [[m[c] for c in COLUMNS] for m in members], gr.update(choices=names, value=value)

        @user_errors
        def listen(name):
            return str(studio.library.get(name).audio_path) if name else None

        @user_errors
        def do_rename(name, new):
            if not name:
                raise gr.Error("pick a cast member first")
            member = studio.cast_rename(name, new)
            return f"Renamed to **{member['name']}**.", member["name"]

        @user_errors
        def cast_delete(name: str) -> str:
            """Delete a cast member by name; returns a confirmation."""
            if not name:
                raise gr.Error("pick a cast member first")
            studio.cast_delete(name)
            return f"Deleted {name}."

        @user_errors
        def cast_restore(name: str) -> str:
            """Bring a deleted cast member back from the trash by name."""
            if not name:
                raise gr.Error("pick a deleted cast member first")
            return f"Restored **{studio.cast_restore(name)['name']}**."

        def trashed_names():
            return gr.update(choices=[t["name"] for t in studio.trash_list() if t["kind"] == "cast"])

        @user_errors
        def cast_upload(audio, name, description, language):
            if not audio:
                raise gr.Error("upload or record a reference first")
            member = studio.cast_upload(audio, name, description, language)
            return f"Added **{member.name}** to the cast."

        @user_errors
        def cast_list() -> list[dict]:
            """Every cast member as plain values, newest first."""
            return studio.cast_list()

        @user_errors
        def similarity(cast_member: str, files: list[str]) -> list[dict]:
            """Score recordings against a cast voice: [{file, similarity, rank, encoder}], best first."""
            if not cast_member:
                raise gr.Error("pick a cast member first")
            return studio.similarity(cast_member, list(files or []))

        picker.change(listen, picker, preview, queue=False, **QUIET)
        rename.click(do_rename, [picker, new_name], [status, picker], api_name="cast_rename").then(
            refresh, picker, [table, picker], **QUIET)
        confirm.click(cast_delete, picker, status, api_name="cast_delete").then(
            refresh, None, [table, picker], **QUIET)
        restore.click(cast_restore, trashed, status, api_name="cast_restore").then(
            refresh, trashed, [table, picker], **QUIET)
        trashed.focus(trashed_names, None, trashed, queue=False, **QUIET)
        add.click(cast_upload, [upload, up_name, up_description, up_language], status,
                  api_name="cast_upload").then(refresh, up_name, [table, picker], **QUIET)
        gr.api(cast_list, api_name="cast_list")
        compare.click(similarity, [picker, compare_files], scores, api_name="similarity",
                      **GPU)
    return table, picker, refresh


def _ask(name: str | None, days: int) -> str:
    if not name:
        raise gr.Error("pick a cast member first")
    return f"Delete **{name}**? It stays in *Recently deleted* for {days} days."
