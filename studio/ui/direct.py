"""Cast & Direct tab: K directed takes of a line in a cast voice, streamed in, ranked, circled, exported."""
from __future__ import annotations

from contextlib import closing

import gradio as gr
import pandas as pd

from ..direct import DirectOptions
from ..service import Studio
from ..takes import EXPORT_FORMATS
from .common import GPU, QUIET, join_check, language_dropdown, login, random_seed_box, random_seed_js, user_errors

SLOTS = DirectOptions.K_MAX
HISTORY = ["take_id", "line", "direction", "cast_member", "backend", "seed", "similarity", "intelligibility", "rank",
           "circled", "created"]


def _label(i: int, take: dict | None) -> str:
    if not take:
        return f"Take {i + 1}"
    best = " · best" if take.get("rank") == 1 else ""
    sim = take.get("similarity")
    return f"Take {i + 1}{best}" + (f" · similarity {sim:.2f}" if sim is not None else "") + \
        (" · circled" if take.get("circled") else "")


def build(studio: Studio) -> tuple[list[gr.events.Dependency], list[tuple[callable, list]]]:
    """Build the tab; returns (events that add a cast member, (function, outputs) pairs run on page load)."""
    opts = DirectOptions()
    with gr.Tab("Cast & Direct"):
        gr.Markdown("Type a line and a direction, pick a cast member, and get K takes from one batched TTS call, "
                    "converted to the cast voice and ranked by how much they sound like it. The first take plays "
                    "while the others are still being made.")
        with gr.Row():
            with gr.Column(scale=3):
                line = gr.Textbox(label="Line", elem_id="direct_line", lines=2,
                                  max_length=DirectOptions.LINE_MAX_CHARS,
                                  placeholder="Who's there? Show yourself!")
                direction = gr.Textbox(label="Direction", elem_id="direct_direction",
                                       max_length=DirectOptions.DIRECTION_MAX_CHARS,
                                       placeholder="whisper with trembling fear")
                with gr.Row():
                    cast = gr.Dropdown([], label="Cast member", elem_id="direct_cast", allow_custom_value=True)
                    backend = gr.Radio(list(DirectOptions.BACKENDS), value=DirectOptions.BACKENDS[0],
                                       label="Convert with", elem_id="direct_backend")
                    rvc_voice = gr.Dropdown([], label="RVC voice (RVC only)", elem_id="direct_rvc",
                                            allow_custom_value=True)
            with gr.Column(scale=2):
                k = gr.Slider(DirectOptions.K_MIN, DirectOptions.K_MAX, value=DirectOptions.K_DEFAULT, step=1,
                              label="Takes", elem_id="direct_k")
                with gr.Row():
                    seed = gr.Number(None, precision=0, label="Seed (same seed, same takes)", elem_id="direct_seed")
                    random_seed = random_seed_box("direct_random_seed")
                language = language_dropdown()
                project = gr.Textbox("default", label="Project", elem_id="direct_project")
                style = gr.Checkbox(opts.convert_style, label="Seed-VC: convert style too (undoes the direction)")
        with gr.Row():
            go = gr.Button("Direct", variant="primary", elem_id="direct_go")
            reroll = gr.Button("Re-roll the line (new seeds)", elem_id="direct_reroll")
        status = gr.Markdown(elem_id="direct_status")
        rows, slots = [], []
        for i in range(SLOTS):
            with gr.Row(visible=i < DirectOptions.K_DEFAULT) as row:
                slots.append(gr.Audio(label=f"Take {i + 1}", type="filepath", interactive=False,
                                      buttons=["download"], elem_id=f"direct_take_{i + 1}"))
            rows.append(row)
        with gr.Row():
            chart = gr.BarPlot(x="take", y="similarity", title="Similarity to the cast member",
                               y_lim=[0, 1], elem_id="direct_chart")
            best = gr.Markdown(elem_id="direct_best")
        with gr.Row():
            pick = gr.Dropdown([str(i + 1) for i in range(SLOTS)], value="1", label="Take",
                               elem_id="direct_pick")
            circle = gr.Button("Circle / uncircle", elem_id="direct_circle")
            member_name = gr.Textbox(label="New cast member name", elem_id="direct_member_name")
            keep = gr.Button("Use as cast member", elem_id="direct_keep")
        takes_json = gr.JSON(label="Takes of this run", elem_id="direct_takes")
        with gr.Accordion("Project history and export", open=False):
            history = gr.Dataframe(headers=HISTORY, interactive=False, elem_id="direct_history")
            with gr.Row():
                fmt = gr.Dropdown(list(EXPORT_FORMATS), value=EXPORT_FORMATS[0], label="Export format")
                export_go = gr.Button("Export project (zip + take sheet)", elem_id="direct_export")
            exported = gr.File(label="Export", elem_id="direct_export_file")
        style_state = gr.State(opts.convert_style)  # UI-only option: not a parameter of the /direct API

        @join_check(studio.director.check_words)
        @user_errors
        def direct(line, direction, cast_member, k=DirectOptions.K_DEFAULT, backend="seed-vc", rvc_voice=None,
                   seed=None, language="auto", project="default", convert_style=False,
                   request: gr.Request = None, progress=gr.Progress()):
            """K takes of a line in a cast voice, streamed: every update carries 10 audio slots (the takes made
            so far, in order) and the takes so far as JSON (take_id, rank, similarity, seed, ...)."""
            def on_progress(done, total, desc):
                progress(done / total if total else 0.0, desc=desc)

            progress(0, desc="Starting")
            events = studio.director.direct(line, direction, cast_member, k, backend, rvc_voice or None,
                                            None if seed is None else int(seed), language, project,
                                            user=login(request), convert_style=bool(convert_style),
                                            on_progress=on_progress)
            takes: list = []
            with closing(events):  # a cancelled job or closed page closes the run now: it ranks what it kept
                for event in events:
                    if event.kind != "tts":
                        takes = event.takes if event.kind == "take" else sorted(event.takes, key=lambda t: t.created)
                    paths = [str(t.audio_path) for t in takes]
                    yield (*paths, *[None] * (SLOTS - len(paths)), [t.as_dict() for t in takes], event.message)

        def direct_again(line, direction, cast_member, k, backend, rvc_voice, seed, language, project,
                         convert_style, request: gr.Request = None, progress=gr.Progress()):
            """Re-roll: the same request with new seeds (named parameters, so Gradio passes the login)."""
            yield from direct(line, direction, cast_member, k, backend, rvc_voice, None, language, project,
                              convert_style, request=request, progress=progress)

        @user_errors
        def takes(project: str = "default", request: gr.Request = None) -> list[dict]:
            """Every take of a project, oldest first, as plain values."""
            return [t.as_dict() for t in studio.takes.list(project, login(request))]

        @user_errors
        def take_circle(take_id: str, circled: bool = True, request: gr.Request = None) -> dict:
            """Circle (or uncircle) one of your takes; returns it."""
            return studio.takes.circle(take_id, circled, login(request)).as_dict()

        @user_errors
        def export(project, format, request: gr.Request = None):  # noqa: A002 (the API's parameter name)
            """A zip of the project's takes (wav, flac or mp3) with a take sheet (takes.csv, takes.json)."""
            return str(studio.takes.export(project, format, studio.takes_dir / "exports", login(request)))

        def _chosen(run: list | None, which) -> dict:
            run = run or []
            i = int(which or 1) - 1
            if not 0 <= i < len(run):
                raise gr.Error(f"take {i + 1} has not been made yet: direct a line first")
            return run[i]

        @user_errors
        def circle_picked(run, which, request: gr.Request = None):
            take, user = _chosen(run, which), login(request)
            studio.takes.circle(take["take_id"], not take["circled"], user)
            by_id = {t.take_id: t.as_dict() for t in studio.takes.list(take["project"], user)}
            return [by_id.get(t["take_id"], t) for t in run]

        @user_errors
        def keep_picked(run, which, name, request: gr.Request = None):
            take = studio.takes.get(_chosen(run, which)["take_id"], login(request))
            member = studio.cast_save(take.audio_path, name, take.instruct, take.settings.get("language", "auto"))
            return f"Take {which} is now the cast member **{member.name}**."

        def show(run):
            run = run or []
            frame = pd.DataFrame({"take": [f"Take {i + 1}" for i in range(len(run))],
                                  "similarity": [t.get("similarity") or 0.0 for t in run]})
            top = next((i for i, t in enumerate(run) if t.get("rank") == 1), None)
            text = "" if top is None else (f"**Best: take {top + 1}** (similarity {run[top]['similarity']:.2f})"
                                           if run[top].get("similarity") is not None else f"**Best: take {top + 1}**")
            labels = [gr.update(label=_label(i, run[i] if i < len(run) else None)) for i in range(SLOTS)]
            return frame, text, *labels

        def refresh_history(project_name: str = "default", request: gr.Request = None):
            try:
                rows = studio.takes.list(project_name, login(request))
            except ValueError:
                rows = []
            return [[t.as_dict()[c] for c in HISTORY] for t in reversed(rows)]

        def direct_last(request: gr.Request = None):
            """On page load: the user's run in progress, else their last run, back in the tab (its request, its
            takes in the slots, ranked) after a reload; pickers and history are refilled either way."""
            run = studio.director.last_run(login(request))
            if run is None:
                keep = [gr.update()] * (len(restored) - 3)
                return (*keep, cast_choices(), rvc_choices(), refresh_history("default", request))
            spec, takes = run.spec, run.takes
            paths = [str(t.audio_path) for t in takes]
            best = next((i + 1 for i, t in enumerate(takes) if t.rank == 1), None)
            message = (f"Still running: {len(takes)} of {run.k} take(s) made so far." if run.running else
                       f"Your last run: {len(takes)} of {run.k} take(s), ranked" + (f"; best: take {best}." if best
                                                                                  else "."))
            return (spec.line, spec.direction, spec.backend, run.k, run.seed, spec.language, run.project,
                    spec.convert_style, spec.convert_style, *paths, *[None] * (SLOTS - len(paths)),
                    [t.as_dict() for t in takes], message, cast_choices(spec.cast_member),
                    rvc_choices(spec.rvc_voice), refresh_history(run.project, request))

        inputs = [line, direction, cast, k, backend, rvc_voice, seed, language, project, style_state]
        outputs = [*slots, takes_json, status]
        go.click(direct, inputs, outputs, api_name="direct", js=random_seed_js(random_seed, inputs, seed),
                 **GPU).then(
            refresh_history, project, history, api_visibility="private")
        reroll.click(direct_again, inputs, outputs, api_visibility="private", **GPU).then(
            refresh_history, project, history, api_visibility="private")
        takes_json.change(show, takes_json, [chart, best, *slots], api_visibility="private", queue=False)
        style.change(lambda v: v, style, style_state, api_visibility="private", queue=False)
        k.change(lambda n: [gr.update(visible=i < n) for i in range(SLOTS)], k, rows,
                 api_visibility="private", queue=False)
        circle.click(circle_picked, [takes_json, pick], takes_json, api_visibility="private").then(
            refresh_history, project, history, api_visibility="private")
        keep_event = keep.click(keep_picked, [takes_json, pick, member_name], status, api_visibility="private")
        export_go.click(export, [project, fmt], exported, api_name="export")
        project.submit(refresh_history, project, history, api_visibility="private")
        gr.api(takes, api_name="takes")
        gr.api(take_circle, api_name="take_circle")

        def cast_choices(selected: str | None = None):
            return gr.update(choices=[m["name"] for m in studio.cast_list()], value=selected)

        def rvc_choices(selected: str | None = None):
            return gr.update(choices=[v["name"] for v in studio.rvc_list()], value=selected)

        # Pickers re-read the library whenever they are opened, so voices added in any tab show up.
        cast.focus(cast_choices, cast, cast, queue=False, **QUIET)
        rvc_voice.focus(rvc_choices, rvc_voice, rvc_voice, queue=False, **QUIET)
        restored = [line, direction, backend, k, seed, language, project, style, style_state, *slots, takes_json,
                    status, cast, rvc_voice, history]
    return [keep_event], [(direct_last, restored)]
