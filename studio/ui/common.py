"""Helpers every tab uses: turning studio errors into messages people see."""
from __future__ import annotations

import functools
import inspect
import logging
import re
import time
from typing import Callable

import gradio as gr
import pydantic
from gradio.exceptions import ComponentProcessingError, InvalidPathError

from ..languages import LANGUAGES
from ..public import public_message
from ..values import flag, number
from .lane import GPU, GPU_LANE, Lane, admit  # noqa: F401 - GPU and GPU_LANE are the tabs' lane

log = logging.getLogger("studio")

# Events that only refill a table or picker (page load, after Keep/Add/Delete, on focus) are private and show no
# progress. Gradio 6.17.3 mounts a tab's components only when the tab is first opened; a "pending" status sent to
# a component before then is stored on its tree node and, once it mounts, its prop sync replays that stale
# "pending" over the "complete" that followed, so a spinner with a running timer stays on it and swallows clicks
# (tests/test_browser.py). With show_progress="hidden" there is no overlay to get stuck; these events take
# milliseconds, so nothing is lost.
QUIET = {"api_visibility": "private", "show_progress": "hidden"}
NOT_AN_UPLOAD = "that file is not an upload: send files with gradio_client's handle_file(path)"

def _as_user_error(e: Exception, name: str) -> gr.Error:
    """Studio errors keep their words (one log line); anything else is logged with its traceback."""
    if isinstance(e, gr.Error):
        log.info("%s refused: %s", name, e.message)
        e.message, e.print_exception = public_message(e.message), False
        return e
    if isinstance(e, (ValueError, FileNotFoundError, RuntimeError)):
        log.info("%s refused: %s", name, e)
        return gr.Error(public_message(str(e)), print_exception=False)
    log.error("unexpected error in %s", name, exc_info=e)  # never a traceback on the page; the log keeps it
    return gr.Error(f"Internal error ({type(e).__name__}); details are in the studio log.", print_exception=False)


def login(request: gr.Request | None) -> str | None:
    """Who sent the request (None without logins): the owner of the takes it makes or reads."""
    return getattr(request, "username", None) if request is not None else None


def language_dropdown() -> gr.Dropdown:
    """The language picker; scripts may send any spelling ("English"), which the studio normalises."""
    return gr.Dropdown(list(LANGUAGES), value="auto", label="Language", allow_custom_value=True)


def user_errors(fn: Callable) -> Callable:
    """Show studio errors as gr.Error with their own words; a traceback in the log only if unexpected.

    Works for plain functions and generators (streaming events: an error after some updates keeps those).
    """
    name = getattr(fn, "__name__", str(fn))
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise _as_user_error(e, name) from None

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise _as_user_error(e, name) from None

    return wrapper


def join_check(check: Callable) -> Callable:
    """Give an event's function a cheap check of its own inputs (a studio function taking some of the event's
    parameter names), run when a GPU job asks to join the lane: a bad request is refused before it waits."""
    def attach(fn: Callable) -> Callable:
        fn.join_check = check
        return fn

    return attach


def parameter_names(block_fn) -> list[str]:
    """The names of the event function's parameters that its inputs fill, in order (not gr.Request, gr.Progress)."""
    names = []
    for p in inspect.signature(block_fn.fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.annotation in (gr.Request, "gr.Request") \
                or isinstance(p.default, gr.Progress):
            continue
        names.append(p.name)
    return names[:len(block_fn.inputs)] + [f"input {i + 1}" for i in range(len(names), len(block_fn.inputs))]


def _value_check(component) -> Callable | None:
    """check(value, name) for a number or yes/no input, or None: what Gradio's own preprocessing would choke on
    (a string where a number goes: a TypeError; NaN: an int() error; "false" for a tick box: taken as yes)."""
    if isinstance(component, gr.Checkbox):
        return flag
    if isinstance(component, (gr.Slider, gr.Number)):
        whole = (component.precision == 0) if isinstance(component, gr.Number) else \
            float(component.step).is_integer() and float(component.minimum).is_integer()
        return functools.partial(number, lo=component.minimum, hi=component.maximum, whole=whole,
                                 optional=isinstance(component, gr.Number))
    schema = getattr(component, "_api_info", None) or {}  # gr.api's inputs carry their type hint's JSON type
    kind = schema.get("type") if isinstance(schema, dict) else None
    if kind == "boolean":
        return flag
    if kind in ("integer", "number"):
        return functools.partial(number, whole=kind == "integer", optional="default" in schema)
    return None


def checked_inputs(block_fn, inputs: list) -> list:
    """The request's inputs with every number and yes/no checked (ValueError naming the parameter if wrong)."""
    names = parameter_names(block_fn)
    sent = [n for n, c in zip(names, block_fn.inputs) if not getattr(c, "stateful", False)]  # not a gr.State
    if len(inputs) < len(sent):
        raise ValueError(f"{len(inputs)} inputs sent; this endpoint takes {len(sent)}: {', '.join(sent)}")
    checked = list(inputs)
    for i, (component, name) in enumerate(zip(block_fn.inputs, names)):
        check = _value_check(component)
        if check is not None and i < len(checked):
            checked[i] = check(checked[i], name)
    return checked


class StudioBlocks(gr.Blocks):
    """gr.Blocks whose own input checks (a value past a slider's range, a wrong file type) are user errors too:
    one line in the log instead of Gradio's traceback. It also runs the GPU lane (studio/ui/lane.py): it answers
    the lane's admission when a job joins, and times the lane's jobs for the retry estimate."""

    def __init__(self, *args, gpu_queue: int = 16, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lane = Lane(gpu_queue)

    async def process_api(self, block_fn, inputs, *args, **kwargs):
        if isinstance(block_fn, int):
            block_fn = self.fns[block_fn]
        if block_fn.fn is admit:  # Queue.push asks the event's validator before queueing it
            problem = self.join_problem(block_fn, inputs)
            return {"data": [gr.validate(False, problem) if problem else self.lane.verdict(self)]}
        if block_fn.concurrency_id != GPU_LANE:
            return await self._process_checked(block_fn, inputs, *args, **kwargs)
        start, finished = time.monotonic(), True
        try:
            output = await self._process_checked(block_fn, inputs, *args, **kwargs)
            finished = not output.get("is_generating")
            return output
        finally:
            self.lane.record(kwargs.get("iterator") is None, time.monotonic() - start, finished)

    def join_problem(self, validator, inputs: list) -> str | None:
        """What is wrong with a GPU job's own inputs, found before it joins the lane: its numbers and yes/nos,
        then its function's join_check (see `join_check`). None when nothing is."""
        event = next((f for f in self.fns.values() if f.validator is admit and len(f.inputs) == len(validator.inputs)
                      and all(a is b for a, b in zip(f.inputs, validator.inputs))), None)
        if event is None:
            return None
        check = getattr(event.fn, "join_check", None)
        try:
            values = dict(zip(parameter_names(event), checked_inputs(event, inputs)))
            if check is not None:
                wanted = inspect.signature(check).parameters
                check(**{k: v for k, v in values.items() if k in wanted})
        except ValueError as e:
            log.info("%s refused: %s", event.api_name or event.name, e)
            return public_message(str(e))
        return None

    async def preprocess_data(self, block_fn, inputs, state, explicit_call=False):
        """Gradio's preprocessing, after the studio's checks of numbers and yes/nos, with its refusals of a
        hand-built request in the studio's words (Gradio's name server paths or the component's index)."""
        try:
            inputs = checked_inputs(block_fn, inputs)
        except ValueError as e:
            raise gr.Error(public_message(str(e))) from None
        try:
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except InvalidPathError:  # a path that was not uploaded through Gradio
            raise gr.Error(NOT_AN_UPLOAD) from None
        except ComponentProcessingError as e:
            where = re.search(r"input component at index (\d+)", str(e))
            names = parameter_names(block_fn)
            name = names[int(where.group(1))] if where and int(where.group(1)) < len(names) else "an input"
            raise gr.Error(f"{name}: this value cannot be used ({type(e.__cause__).__name__})") from None

    async def _process_checked(self, block_fn, inputs, *args, **kwargs):
        name = getattr(block_fn, "api_name", None) or "event"
        try:
            return await super().process_api(block_fn, inputs, *args, **kwargs)
        except gr.Error as e:
            if e.print_exception:
                log.info("%s refused: %s", name, e.message)
                e.print_exception = False
            raise
        except pydantic.ValidationError as e:  # a malformed request, e.g. a plain string where a file goes
            log.info("%s refused: malformed input (%s)", name, e.errors()[0].get("msg", "") if e.errors() else "")
            raise gr.Error("malformed input: send files with gradio_client's handle_file(path)",
                           print_exception=False) from None


def random_seed_box(elem_id: str) -> gr.Checkbox:
    """A page-only "random seed" tick box: Gradio's number box always sends a number (an empty box sends 0), so
    the page cannot leave a seed out the way a script can (`seed=None`). See `random_seed_js`."""
    return gr.Checkbox(True, label="Random seed (untick to use the seed box)", elem_id=elem_id, interactive=True)


def random_seed_js(box: gr.Checkbox, inputs: list, seed: gr.Number) -> str:
    """Browser-side step of an event on `inputs`: while the tick box `box` is ticked, send no seed (None, drawn by
    the studio) in place of the `seed` input. It runs only in the page, so the API's parameters and defaults stay."""
    return (f"(...args) => {{ const box = document.querySelector('#{box.elem_id} input[type=checkbox]'); "
            f"if (box && box.checked) args[{inputs.index(seed)}] = null; return args; }}")


def confirm_step(button: gr.Button, question: Callable[..., str], inputs, elem_id: str,
                 yes_label: str = "Yes, delete") -> gr.Button:
    """Put a confirmation between `button` and a destructive action: returns the "Yes" button to wire it to.

    Clicking `button` shows question(*inputs) with Yes / Cancel (in the page only, not in the API).
    """
    with gr.Row(visible=False) as row:
        prompt = gr.Markdown()
        yes = gr.Button(yes_label, variant="stop", elem_id=elem_id, scale=0)
        cancel = gr.Button("Cancel", scale=0)

    def ask(*values):
        try:
            return gr.update(visible=True), question(*values)
        except gr.Error as e:
            return gr.update(visible=False), e.message

    button.click(ask, inputs, [row, prompt], api_visibility="private", queue=False)
    for b in (yes, cancel):
        b.click(lambda: gr.update(visible=False), None, row, api_visibility="private", queue=False)
    return yes
