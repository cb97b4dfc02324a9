"""The GPU lane: model jobs run one at a time, and past a bound of waiting jobs a new one is refused at once with
"busy, retry in N s" instead of joining a queue that would keep its client waiting for many minutes.

The refusal is Gradio's event validator (gr.validate at join time: HTTP 422, gradio_client's ValidationError with
our words, the message on the event's first input in the page). StudioBlocks answers it (studio/ui/common.py).
"""
from __future__ import annotations

import logging
import math
from collections import deque

import gradio as gr

log = logging.getLogger("studio")

GPU_LANE = "gpu"  # every model event shares this concurrency_id: one job on the accelerator at a time
FIRST_JOB_GUESS_S = 30.0  # seconds per job assumed until one has finished (a real model job takes seconds to minutes)
RECENT_JOBS = 20  # the retry estimate follows the mean duration of this many latest jobs


def admit(*inputs) -> dict:
    """The validator of every GPU event. StudioBlocks answers it itself at join time (Lane.verdict) without
    preprocessing the inputs: an upload is not decoded twice, and a bad file keeps the event's own message."""
    raise TypeError("GPU lane events must be served by a StudioBlocks, which answers their admission")


# The keyword arguments of every event that runs a model: `button.click(fn, inputs, outputs, **GPU)`.
GPU = {"concurrency_id": GPU_LANE, "concurrency_limit": 1, "validator": admit}


def lane_jobs(blocks: gr.Blocks) -> tuple[int, int]:
    """(waiting, running) jobs of the GPU lane. The one place that reads Gradio's private queue (6.17.3); a gradio
    upgrade that moves it fails every GPU event loudly, and tests/test_load_and_faults.py."""
    queue = blocks._queue.event_queue_per_concurrency_id[GPU_LANE]  # created by Queue.push before the validator
    return len(queue.queue), queue.current_concurrency


class Lane:
    """Admission to the GPU lane of one app, and the recent job durations its retry estimate comes from."""

    def __init__(self, bound: int) -> None:
        self.bound = bound
        self.durations: deque[float] = deque(maxlen=RECENT_JOBS)
        self.running: float | None = None  # seconds the current job has used so far

    def seconds_per_job(self) -> float:
        """Mean of the recent jobs, or a guess before any has finished."""
        return sum(self.durations) / len(self.durations) if self.durations else FIRST_JOB_GUESS_S

    def busy_message(self, waiting: int, running: int) -> str | None:
        """None when a new job may join; else what its client is told: the time the jobs ahead of it need."""
        if waiting < self.bound:
            return None
        retry = max(1, math.ceil((waiting + running) * self.seconds_per_job()))
        return f"The studio is busy: {waiting} jobs are waiting for the GPU; retry in about {retry} s."

    def verdict(self, blocks: gr.Blocks) -> dict:
        """gr.validate for a job that asks to join the lane now; a refusal is one line in the log."""
        message = self.busy_message(*lane_jobs(blocks))
        if message:
            log.info("GPU job refused: %s", message)
        return gr.validate(message is None, message or "")

    def record(self, first: bool, seconds: float, finished: bool) -> None:
        """Time one run of a GPU event's function (a streaming event runs once per update)."""
        if first:
            if self.running is not None:  # the previous stream was cancelled before its end
                self.durations.append(self.running)
            self.running = 0.0
        self.running = (self.running or 0.0) + seconds
        if finished:
            self.durations.append(self.running)
            self.running = None
