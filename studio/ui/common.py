"""Helpers every tab uses: turning studio errors into messages people see."""
from __future__ import annotations

import contextlib
import functools
import inspect
import logging
from typing import Callable

import gradio as gr

log = logging.getLogger("studio")

LANGUAGES = ["auto", "english", "chinese", "japanese", "korean", "german", "french", "russian",
             "portuguese", "spanish", "italian"]
GPU_LANE = "gpu"  # every model event shares this concurrency_id: one job on the accelerator at a time


@contextlib.contextmanager
def _as_user_error(fn: Callable):
    try:
        yield
    except gr.Error:
        raise
    except (ValueError, FileNotFoundError, RuntimeError) as e:
        raise gr.Error(str(e)) from None
    except Exception as e:  # never a traceback on the page; the log keeps it
        log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
        raise gr.Error(f"Internal error ({type(e).__name__}); details are in the studio log.") from None


def user_errors(fn: Callable) -> Callable:
    """Show studio errors as gr.Error with their own words; log anything unexpected.

    Generator functions stay generators (Gradio streams them), with the same handling around each step.
    """
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def stream(*args, **kwargs):
            with _as_user_error(fn):
                yield from fn(*args, **kwargs)

        return stream

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _as_user_error(fn):
            return fn(*args, **kwargs)

    return wrapper
