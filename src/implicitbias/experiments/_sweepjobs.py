"""How a sweep runs its runs: one after the other in this process, or ``jobs`` at a time in
worker processes (``spawn``: a fresh interpreter each, so no torch thread pool is inherited
across ``fork``).

Ctrl-C reaches the workers too (they share the terminal's process group): each run lands as
interrupted with its checkpoint, the pool is drained, and the sweep reports itself interrupted.
A run already queued to a worker (the pool hands out one more than it has workers) cannot be
cancelled; a shared stop flag, set by the sweep and by any run that was interrupted, makes it
return at once as not run instead of training from scratch after the Ctrl-C.
"""

from __future__ import annotations

import concurrent.futures
import math
import multiprocessing
from typing import Any

from implicitbias.experiments.runner import run

__all__ = ["execute", "run_job"]

#: Status of a queued run that a Ctrl-C stopped before it began (not recorded as an outcome).
NOT_RUN = "not run"
#: The sweep's stop flag in a worker process (set by :func:`_init_worker`).
_STOP: Any = None


def _init_worker(stop: Any) -> None:
    global _STOP
    _STOP = stop


def execute(
    tasks: list[dict[str, Any]], plan: list[str], jobs: int, progress: bool | None, say: Any
) -> tuple[dict[int, tuple[str, float]], bool]:
    """Run the tasks not kept; (index → (status, wall time), whether Ctrl-C stopped it)."""
    todo = [i for i, action in enumerate(plan) if action != "kept"]
    done: dict[int, tuple[str, float]] = {}
    if jobs == 1 or len(todo) <= 1:
        for i in todo:
            status, wall = run_job({**tasks[i], "progress": progress}, say)
            done[i] = (status, wall)
            if status == "interrupted":
                return done, True
        return done, False
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    with concurrent.futures.ProcessPoolExecutor(
        min(jobs, len(todo)), mp_context=ctx, initializer=_init_worker, initargs=(stop,)
    ) as pool:
        futures = {pool.submit(run_job, {**tasks[i], "progress": False}): i for i in todo}
        try:
            for fut in concurrent.futures.as_completed(futures):
                done[futures[fut]] = fut.result()
        except KeyboardInterrupt:
            # the runs got the Ctrl-C too (one process group): each lands as interrupted; the
            # queued ones return at once (the stop flag) and the pending ones are cancelled
            stop.set()
            for fut in futures:
                fut.cancel()
            concurrent.futures.wait(futures)
            for fut, i in futures.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    done[i] = fut.result()
        interrupted = stop.is_set() or any(s == "interrupted" for s, _ in done.values())
    return {i: o for i, o in done.items() if o[0] != NOT_RUN}, interrupted


def run_job(task: dict[str, Any], say: Any = None) -> tuple[str, float]:
    """One run of a sweep (also the entry point of a worker process); ``("not run", NaN)``
    when the sweep's stop flag is set."""
    if _STOP is not None and _STOP.is_set():
        return NOT_RUN, math.nan
    prefix = task["prefix"]
    if say is None:
        say = (lambda m: None) if task["quiet"] else (lambda m: print(m, flush=True))
    res = run(
        task["name"],
        scale=task["scale"],
        seed=task["seed"],
        out_dir=task["out_dir"],
        device=task["device"],
        method=task["method"],
        progress=task["progress"],
        overrides=task["overrides"],
        figure=task["figure"],
        threads=task["threads"],
        log=lambda msg: say(f"[{prefix}] {msg}"),
        resume=task["resume"],
    )
    if res.status == "interrupted" and _STOP is not None:
        _STOP.set()  # a Ctrl-C reached this process group: queued runs must not start
    return res.status, res.wall_time
