"""Where a monitored run is — in gradient-flow time, in steps, in the schedule — and when it
records: the bookkeeping of :class:`~implicitbias.dynamics.Monitor` between its records.

A call costs a few comparisons; it raises, naming the argument, when time goes backwards,
when ``lr`` is not a positive finite number, when the monitor is driven both by steps and by
times, or once it is closed. A call that raises moves nothing.
"""

from __future__ import annotations

import math
import operator
import time
from typing import Any

import numpy as np

from implicitbias._validation import check_int, fail, fail_type

__all__: list[str] = []

_FUNC = "Monitor"
_RTOL = 1e-12  # a time within this relative distance of a schedule time reaches it


def _real(x: Any, func: str, arg: str) -> float:
    """``float(x)`` of a real number (a Python or numpy number, a one-element tensor); a
    bool, a string or anything else raises, naming the argument."""
    if not isinstance(x, (bool, np.bool_, str, bytes)):
        try:
            return float(x)
        except (TypeError, ValueError, RuntimeError):
            pass
    raise fail_type(func, arg, "a real number", x)


def _as_step(step: Any) -> int:
    """A step index: an integer ≥ 0 (a Python or numpy integer, an integer tensor), not a bool."""
    if type(step) is int and step >= 0:
        return step
    if isinstance(step, (bool, np.bool_)):
        raise fail_type(_FUNC, "step", "an integer step index ≥ 0", step)
    try:
        k = operator.index(step)
    except TypeError as exc:
        raise fail_type(_FUNC, "step", "an integer step index ≥ 0", step) from exc
    if k < 0:
        raise fail(_FUNC, "step", "an integer step index ≥ 0", repr(step))
    return k


class Clock:
    """The time t of a monitored run, the values of its ``step`` and ``grad_evals`` columns,
    and its position in the schedule ``times`` (with the KKT checkpoints ``kkt``, indices into
    it); ``lr`` is the unit of ``step = t/lr`` for a run driven by times."""

    def __init__(self, times: np.ndarray, kkt: frozenset[int], lr: float | None) -> None:
        self.times, self.kkt, self.lr = times, kkt, lr
        self.mode: str | None = None
        self.t = 0.0
        # the learning rate last changed at step step_b, time t_b, to lr_b
        self.step_b, self.t_b, self.lr_b = 0, 0.0, math.nan
        self.last_step: int | None = None
        self.grad_evals = 0.0  # of the last call by time (NaN when not given)
        self.idx = 0
        self.due = float(times[0]) * (1 - _RTOL)
        self.recorded_t: float | None = None
        self.wall_start: float | None = None
        self.closed = False

    # ------------------------------------------------------------------ calls
    def by_steps(self, step: Any, lr: Any) -> bool:
        """``step`` steps done, the ones since the previous call with ``lr``; whether a record
        is due."""
        if self.mode != "steps" or self.closed:
            self._start("steps", "Monitor.__call__", "step")
        k = step if type(step) is int and step >= 0 else _as_step(step)
        eta = lr if type(lr) is float else _real(lr, _FUNC, "lr")
        if not 0.0 < eta < math.inf:
            raise fail(_FUNC, "lr", "a positive finite learning rate", repr(lr))
        last = self.last_step
        if last is None:
            self.step_b, self.t_b, self.lr_b = 0, 0.0, eta
        elif k < last:
            raise fail(
                _FUNC,
                "step",
                f"at least the previous call's step {last} (time only moves forward)",
                repr(step),
                "Create a new Monitor to start another run.",
            )
        elif eta != self.lr_b:  # the steps up to the previous call used lr_b
            self.t_b += (last - self.step_b) * self.lr_b
            self.step_b, self.lr_b = last, eta
        self.last_step = k
        self.t = t = self.t_b + (k - self.step_b) * eta  # t = k·lr exactly while lr is constant
        return t >= self.due

    def by_time(self, t: Any, grad_evals: Any) -> bool:
        """Time ``t`` reached (after ``grad_evals`` gradient evaluations, if given); whether a
        record is due."""
        func = "Monitor.step"
        if self.mode != "time" or self.closed:
            self._start("time", func, "t")
        now = t if type(t) is float else _real(t, func, "t")
        if not 0.0 <= now < math.inf:
            raise fail(func, "t", "a finite time ≥ 0", repr(t))
        if now < self.t:
            raise fail(
                func,
                "t",
                f"at least the previous call's time {self.t!r} (time only moves forward)",
                repr(t),
                "Create a new Monitor to start another run.",
            )
        ge = math.nan
        if grad_evals is not None:
            ge = float(check_int(grad_evals, func, "grad_evals", minimum=0))
        self.t, self.grad_evals = now, ge
        return now >= self.due

    @property
    def columns(self) -> tuple[float, float]:
        """The ``step`` and ``grad_evals`` columns at the last call: the step index twice (one
        gradient per GD step) for a run driven by steps; t/lr (NaN without ``lr``) and the
        given count for one driven by times; (0, 0) before any call."""
        if self.mode == "steps" and self.last_step is not None:
            return float(self.last_step), float(self.last_step)
        if self.mode == "time":
            return (self.t / self.lr if self.lr is not None else math.nan), self.grad_evals
        return 0.0, 0.0

    def _start(self, mode: str, func: str, arg: str) -> None:
        """The first call sets how the monitor is driven; the other way then raises (and so
        does any call once the monitor is closed)."""
        self.check_open()
        if self.mode is not None:
            other = "mon(step, lr)" if self.mode == "steps" else "mon.step(t)"
            raise fail(
                func,
                arg,
                f"used on a monitor driven the same way since its first call ({other})",
                f"a call of {func}",
                "Drive a monitor by steps or by times, not both.",
            )
        self.mode = mode
        self.wall_start = time.perf_counter()

    def check_open(self) -> None:
        """Raise once the monitor is closed."""
        if self.closed:
            raise fail(_FUNC, "self", "an open monitor", "one closed by close()")

    # ------------------------------------------------------------------ records
    def plan(self, force: bool) -> tuple[int, bool]:
        """(the schedule position past the current time, whether this record checks KKT: it
        passes a KKT checkpoint, or it is a forced record of a monitor with any)."""
        times, i1 = self.times, self.idx
        while i1 < len(times) and times[i1] <= self.t * (1 + _RTOL):
            i1 += 1
        kkt_now = any(i in self.kkt for i in range(self.idx, i1)) or (force and bool(self.kkt))
        return i1, kkt_now

    def commit(self, i1: int) -> None:
        """The record at the current time is taken: move the schedule to ``i1``."""
        self.idx = i1
        self.due = float(self.times[i1]) * (1 - _RTOL) if i1 < len(self.times) else math.inf
        self.recorded_t = self.t

    def wall(self, now: float) -> float:
        """Seconds since the first call (or since ``now``, the first record, without one)."""
        if self.wall_start is None:
            self.wall_start = now
        return time.perf_counter() - self.wall_start

    @property
    def next_time(self) -> float:
        """The next schedule time (``inf`` when the schedule is done)."""
        return float(self.times[self.idx]) if self.idx < len(self.times) else math.inf
