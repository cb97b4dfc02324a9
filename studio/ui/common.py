"""Helpers every tab uses: turning studio errors into messages people see."""
from __future__ import annotations

import functools
import logging
import re
from typing import Callable

import gradio as gr

log = logging.getLogger("studio")

LANGUAGES = ["auto", "english", "chinese", "japanese", "korean", "german", "french", "russian",
             "portuguese", "spanish", "italian"]
GPU_LANE = "gpu"  # every model event shares this concurrency_id: one job on the accelerator at a time
# Events that only refill a table or picker (page load, after Keep/Add/Delete, on focus) are private and show no
# progress. Gradio 6.17.3 mounts a tab's components only when the tab is first opened; a "pending" status sent to
# a component before then is stored on its tree node and, once it mounts, its prop sync replays that stale
# "pending" over the "complete" that followed, so a spinner with a running timer stays on it and swallows clicks
# (tests/test_browser.py). With show_progress="hidden" there is no overlay to get stuck; these events take
# milliseconds, so nothing is lost.
QUIET = {"api_visibility": "private", "show_progress": "hidden"}
_SERVER_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/:'\"()]+/)+([^\s/:'\"()]+)")


def user_errors(fn: Callable) -> Callable:
    """Show studio errors as gr.Error with their own words; log anything unexpected."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except (ValueError, FileNotFoundError, RuntimeError) as e:
            raise gr.Error(without_server_paths(str(e))) from None
        except Exception as e:  # never a traceback on the page; the log keeps it
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            raise gr.Error(f"Internal error ({type(e).__name__}); details are in the studio log.") from None

    return wrapper


def without_server_paths(message: str) -> str:
    """Name files by their own name: a server path (/tmp/gradio/<sha>/x.pth) tells a user nothing and leaks layout."""
    return _SERVER_PATH.sub(r"\1", message)
