"""Helpers every tab uses: turning studio errors into messages people see."""
from __future__ import annotations

import functools
import inspect
import logging
import time
from typing import Callable

import gradio as gr
import pydantic

from ..languages import LANGUAGES
from ..public import public_message
from .lane import GPU, GPU_LANE, Lane, admit  # noqa: F401 - GPU and GPU_LANE are the tabs' lane

log = logging.getLogger("studio")

# Events that only refill a table or picker (page load, after Keep/Add/Delete, on focus) are private and show no
# progress. Gradio 6.17.3 mounts a tab's components only when the tab is first opened; a "pending" status sent to
# a component before then is stored on its tree node and, once it mounts, its prop sync replays that stale
# "pending" over the "complete" that followed, so a spinner with a running timer stays on it and swallows clicks
# (tests/test_browser.py). With show_progress="hidden" there is no overlay to get stuck; these events take
# milliseconds, so nothing is lost.
QUIET = {"api_visibility": "private", "show_progress": "hidden"}

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
            return {"data": [self.lane.verdict(self)]}
        if block_fn.concurrency_id != GPU_LANE:
            return await self._process_checked(block_fn, inputs, *args, **kwargs)
        start, finished = time.monotonic(), True
        try:
            output = await self._process_checked(block_fn, inputs, *args, **kwargs)
            finished = not output.get("is_generating")
            return output
        finally:
            self.lane.record(kwargs.get("iterator") is None, time.monotonic() - start, finished)

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
