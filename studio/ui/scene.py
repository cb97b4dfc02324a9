"""Scene tab: import a script, cast its characters, render every line, re-roll or swap, export."""
from __future__ import annotations

import gradio as gr

from ..direct import DirectOptions
from ..mix import MAX_GAP_S, MIX, MixOptions
from ..scene import script_text
from ..script import FORMATS, read_script_file
from ..service import Studio
from ..takes import BACKENDS, EXPORT_FORMATS
from .common import GPU, LANGUAGES, QUIET, login, random_seed_box, random_seed_js, user_errors

LINE_COLUMNS = ["line", "character", "text", "direction", "status", "takes", "similarity", "intelligibility",
                "score", "duration_check"]
CAST_COLUMNS = ["character", "cast_member", "backend", "rvc_voice", "direction", "language"]
SCENE_LIST_COLUMNS = ["name", "lines", "rendered", "picked", "updated"]


def build(studio: Studio) -> list[tuple[callable, list]]:
    """Build the tab; returns the (function, outputs) pairs run on page load (the user's list of scenes)."""
    def scenes(request: gr.Request | None):
        """Scene mode as the request's user sees it: with logins, their own scenes only."""
        return studio.scenes.for_user(login(request))

    with gr.Tab("Scene"):
        gr.Markdown("Bring a whole scene: import a script (Fountain, `NAME (direction): line` rows, or CSV with "
                    "character,line,direction), give each character a voice, render K takes of every line and "
                    "get the best one by voice **and** intelligibility, then export the mix, a stem per "
                    "character, subtitles and the take sheet.")
        with gr.Accordion("Your scenes", open=True):
            scene_list = gr.Dataframe(headers=SCENE_LIST_COLUMNS, interactive=False, elem_id="scene_list")
            scene_pick = gr.Dropdown([], value=None, label="Open a scene", elem_id="scene_open")
        with gr.Row():
            with gr.Column(scale=3):
                script = gr.Textbox(label="Script", lines=10, elem_id="scene_script",
                                    placeholder="INT. KITCHEN - NIGHT\n\nANNA\n(quietly)\nYou came back.")
                upload = gr.File(label="…or a script file", file_types=[".fountain", ".txt", ".csv"], height=80)
            with gr.Column(scale=1):
                name = gr.Textbox(label="Scene name", elem_id="scene_name", placeholder="kitchen")
                fmt = gr.Dropdown(list(FORMATS), value="auto", label="Script format")
                do_import = gr.Button("Import script", variant="primary", elem_id="scene_import")
        summary = gr.JSON(label="Scene", visible=False)
        status = gr.Markdown(elem_id="scene_status")

        with gr.Accordion("Cast table", open=True):
            cast_table = gr.Dataframe(headers=CAST_COLUMNS, interactive=False, elem_id="scene_cast_table")
            with gr.Row():
                character = gr.Dropdown([], label="Character", allow_custom_value=True, elem_id="scene_character")
                cast_member = gr.Dropdown([], label="Cast member", allow_custom_value=True,
                                          elem_id="scene_cast_member")
                backend = gr.Radio(list(BACKENDS), value=BACKENDS[0], label="Backend")
                rvc_voice = gr.Dropdown([], value=None, label="RVC voice", allow_custom_value=True)
            with gr.Row():
                direction = gr.Textbox(label="Default direction (joined to each line's own)", value="")
                language = gr.Dropdown(LANGUAGES, value="auto", label="Language")
                do_cast = gr.Button("Cast character", elem_id="scene_cast")

        with gr.Row():
            k = gr.Slider(DirectOptions.K_MIN, DirectOptions.K_MAX, value=DirectOptions.K_DEFAULT, step=1,
                          label="Takes per line (K)", elem_id="scene_k")
            seed = gr.Number(value=None, precision=0, label="Seed (same seed, same takes)", elem_id="scene_seed")
            random_seed = random_seed_box("scene_random_seed")
            do_render = gr.Button("Render scene", variant="primary", elem_id="scene_render")
        lines = gr.Dataframe(headers=LINE_COLUMNS, interactive=False, label="Lines", elem_id="scene_lines")
        picked = gr.Audio(label="Last picked take", type="filepath", interactive=False, buttons=["download"],
                          elem_id="scene_picked")

        with gr.Row():
            line = gr.Number(value=1, precision=0, label="Line", elem_id="scene_line")
            do_reroll = gr.Button("Re-roll this line", elem_id="scene_reroll")
            take = gr.Dropdown([], label="Its takes (best first)", allow_custom_value=True, elem_id="scene_take")
            do_swap = gr.Button("Use this take", elem_id="scene_swap")
        take_player = gr.Audio(label="Take", type="filepath", interactive=False, buttons=["download"])

        with gr.Row():
            gap = gr.Slider(0, MAX_GAP_S, value=MIX.gap_s, step=0.05, label="Gap between lines (s)")
            export_fmt = gr.Dropdown(list(EXPORT_FORMATS), value="wav", label="Export format")
            do_mix = gr.Button("Assemble", elem_id="scene_mix")
            do_export = gr.Button("Export zip", elem_id="scene_export")
        mix = gr.Audio(label="Scene mix", type="filepath", interactive=False, buttons=["download"])
        export_file = gr.File(label="Export (mix, stems, subtitles, take sheet)", elem_id="scene_export_file")

        def table(rows: list[dict]) -> list[list]:
            return [[r.get(c) for c in LINE_COLUMNS] for r in rows]

        def stream(events):
            audio = None  # the last picked take stays in its player until the next pick (not cleared per event)
            for ev in events:
                if ev.kind == "picked" and ev.line is not None:
                    take_id = ev.lines[ev.line - 1]["take_id"]
                    audio = str(studio.takes.get(take_id).audio_path)
                yield table(ev.lines), f"{ev.message} ({ev.picked}/{ev.total} lines picked)", audio

        @user_errors
        def scene_import(script: str, name: str, format: str = "auto", request: gr.Request = None) -> dict:
            """Import a script as scene `name`: its characters, lines (with status) and notes."""
            return scenes(request).import_script(script, name, format)

        @user_errors
        def scene_cast(name: str, character: str, cast_member: str | None, backend: str = "seed-vc",
                       rvc_voice: str | None = None, direction: str = "", language: str = "auto",
                       request: gr.Request = None) -> dict:
            """Give a character a voice (cast member for Seed-VC, or an RVC voice) and a default direction."""
            return scenes(request).cast(name, character, cast_member, backend, rvc_voice, direction, language)

        @user_errors
        def scene_render(name: str, k: int = DirectOptions.K_DEFAULT, seed: int | None = None,
                         request: gr.Request = None, progress=gr.Progress()):
            """Render every pending line (K takes each, best picked); streams the line table per line."""
            on = lambda done, total, desc: progress((done, total), desc=desc)  # noqa: E731
            yield from stream(scenes(request).render(name, k, None if seed in (None, "") else seed, login(request),
                                            on_progress=on))

        @user_errors
        def scene_reroll(name: str, line: int, request: gr.Request = None, progress=gr.Progress()):
            """New takes for one line (1-based); the others are untouched."""
            on = lambda done, total, desc: progress((done, total), desc=desc)  # noqa: E731
            yield from stream(scenes(request).reroll(name, line, user=login(request), on_progress=on))

        @user_errors
        def scene_swap(name: str, line: int, take_id: str, request: gr.Request = None) -> dict:
            """Pick another of a line's takes."""
            return scenes(request).swap(name, line, take_id)

        @user_errors
        def scene_takes(name: str, line: int, request: gr.Request = None) -> list[dict]:
            """A line's takes, best first, with their scores."""
            return [{k: v for k, v in t.items() if k != "audio_path"}
                    for t in scenes(request).line_takes(name, line)]

        @user_errors
        def scene_mix(name: str, gap: float = MIX.gap_s, request: gr.Request = None) -> str:
            """Assemble the picked takes into the scene mix (seconds; nothing is re-rendered)."""
            scene, out = scenes(request).assemble(name, MixOptions(gap_s=float(gap)))
            return str(studio.save_take(out.mix, out.sr, "wav", kind="scenes"))

        @user_errors
        def scene_export(name: str, format: str = "wav", gap: float = MIX.gap_s, request: gr.Request = None) -> str:
            """One zip: mix, a stem per character, SRT + WebVTT subtitles, take sheet (CSV + JSON)."""
            return str(scenes(request).export(name, format, MixOptions(gap_s=float(gap))))

        @user_errors
        def scene_list_api(request: gr.Request = None) -> list[dict]:
            """Your scenes, most recently changed first: name, lines, lines rendered and picked, last change."""
            return scenes(request).store.list_scenes()

        def list_scenes(request: gr.Request = None):
            rows = scene_list_api(request)
            return [[r[c] for c in SCENE_LIST_COLUMNS] for r in rows], gr.update(choices=[r["name"] for r in rows])

        @user_errors
        def open_scene(name: str, request: gr.Request = None):
            """A listed scene back in the tab: its name, script (as rows), cast table and lines."""
            view = scenes(request)
            scene = view.store.get(name)
            return scene.name, script_text(scene.script), "text", view.summary(scene)

        def show(summary: dict):
            cast_rows = [[c.get(x) for x in CAST_COLUMNS] for c in summary["cast"]]
            return (cast_rows, table(summary["lines"]), gr.update(choices=summary["characters"],
                                                                  value=summary["characters"][0]))

        @user_errors
        def takes_for_line(name, line, request: gr.Request = None):
            takes = scenes(request).line_takes(name, line) if name else []
            labels = [(f"{'* ' if t['picked'] else ''}{t['take_id'][:8]} score {t['score']}", t["take_id"])
                      for t in takes]
            return gr.update(choices=labels, value=labels[0][1] if labels else None)

        @user_errors
        def listen(name, line, take_id, request: gr.Request = None):
            takes = {t["take_id"]: t["audio_path"] for t in scenes(request).line_takes(name, line)} if take_id else {}
            return takes.get(take_id)

        @user_errors
        def read_file(path):
            """The uploaded script into the Script box, decoded as an editor would (studio.script)."""
            return read_script_file(path) if path else (gr.update(), gr.update())

        upload.upload(read_file, upload, [script, status], api_visibility="private", queue=False)
        do_import.click(scene_import, [script, name, fmt], summary, api_name="scene_import").then(
            show, summary, [cast_table, lines, character], api_visibility="private").then(
            list_scenes, None, [scene_list, scene_pick], **QUIET)
        do_cast.click(scene_cast, [name, character, cast_member, backend, rvc_voice, direction, language], summary,
                      api_name="scene_cast").then(show, summary, [cast_table, lines, character],
                                                  api_visibility="private")
        render_inputs = [name, k, seed]
        do_render.click(scene_render, render_inputs, [lines, status, picked], api_name="scene_render",
                        js=random_seed_js(random_seed, render_inputs, seed), **GPU).then(
            list_scenes, None, [scene_list, scene_pick], **QUIET)
        do_reroll.click(scene_reroll, [name, line], [lines, status, picked], api_name="scene_reroll",
                        **GPU).then(
            takes_for_line, [name, line], take, api_visibility="private")
        do_swap.click(scene_swap, [name, line, take], summary, api_name="scene_swap").then(
            show, summary, [cast_table, lines, character], api_visibility="private")
        line.change(takes_for_line, [name, line], take, api_visibility="private")
        take.change(listen, [name, line, take], take_player, api_visibility="private")
        do_mix.click(scene_mix, [name, gap], mix, api_name="scene_mix")
        do_export.click(scene_export, [name, export_fmt, gap], export_file, api_name="scene_export")
        gr.api(scene_takes, api_name="scene_takes")
        gr.api(scene_list_api, api_name="scene_list")
        scene_pick.input(open_scene, scene_pick, [name, script, fmt, summary], **QUIET).success(
            show, summary, [cast_table, lines, character], **QUIET)

        def choices():
            return (gr.update(choices=[m["name"] for m in studio.cast_list()]),
                    gr.update(choices=[v["name"] for v in studio.rvc_list()]))

        cast_member.focus(choices, None, [cast_member, rvc_voice], queue=False, **QUIET)
        rvc_voice.focus(choices, None, [cast_member, rvc_voice], queue=False, **QUIET)
    return [(list_scenes, [scene_list, scene_pick])]
