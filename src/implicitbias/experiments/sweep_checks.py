"""The measurements a sweep compares across its runs, and its ordering checks.

Each run of a sweep is reduced to a few numbers read off its history (:func:`run_metrics`):
when the training set is first fitted, when the test accuracy first rises, where the run
ends. A sweep's checks (:class:`~implicitbias.experiments.registry.SweepCheckSpec`) then
compare them across the swept values: the orderings the paper's panels show, e.g. Fig. 2(b)
of Lyu et al. (ICLR 2024, arXiv:2311.18817), "the larger the init scale, the sooner the
training set is fitted and the later the test accuracy rises".

A first crossing is located between two evaluations of the (log-spaced) schedule by linear
interpolation in log(step), so that runs a few percent apart are ordered by their curves
rather than by the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from implicitbias.dynamics import History
from implicitbias.experiments.registry import SweepCheckSpec

__all__ = [
    "RUN_METRICS",
    "first_crossing",
    "run_metrics",
    "sweep_check",
    "sweep_checks",
    "unreached_sweep_checks",
]


def first_crossing(steps: Any, values: Any, level: float) -> float:
    """The first step at which ``values`` reaches ``level`` (``values ≥ level``).

    Between the last evaluation below ``level`` and the first at or above it, the step is
    interpolated linearly in ``log(step)`` (linearly in the step when the earlier one is 0).

    Parameters
    ----------
    steps : array_like, shape (m,)
        Increasing steps of the evaluations.
    values : array_like, shape (m,)
        The measured values (NaN never reaches a level).
    level : float
        The level.

    Returns
    -------
    float
        The step; NaN when ``values`` never reaches ``level``.

    Examples
    --------
    >>> round(first_crossing([0, 10, 100, 1000], [0.0, 0.2, 0.6, 1.0], 0.4), 2)
    31.62
    """
    s = np.asarray(steps, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    hit = np.flatnonzero(np.nan_to_num(v, nan=-np.inf) >= level)
    if hit.size == 0:
        return math.nan
    i = int(hit[0])
    if i == 0 or not np.isfinite(v[i - 1]) or v[i] == v[i - 1]:
        return float(s[i])
    frac = (level - v[i - 1]) / (v[i] - v[i - 1])
    lo, hi = s[i - 1], s[i]
    if lo <= 0:
        return float(lo + frac * (hi - lo))
    return float(math.exp(math.log(lo) + frac * (math.log(hi) - math.log(lo))))


def _column(history: History, name: str) -> np.ndarray:
    if name in history.columns and len(history):
        return np.asarray(history[name], dtype=np.float64)
    return np.full(len(history), np.nan)


def _final(history: History, name: str) -> float:
    col = _column(history, name)
    return float(col[-1]) if col.size else math.nan


_Metric = Callable[[History], float]

#: The per-run measurements a sweep check may compare: name → (description, function).
RUN_METRICS: Mapping[str, tuple[str, _Metric]] = {
    "fit_step": (
        "first step with train accuracy 100%",
        lambda h: first_crossing(_column(h, "step"), _column(h, "train_acc"), 1.0),
    ),
    "test_acc_50_step": (
        "first step with test accuracy ≥ 50%",
        lambda h: first_crossing(_column(h, "step"), _column(h, "test_acc"), 0.5),
    ),
    "test_acc_90_step": (
        "first step with test accuracy ≥ 90%",
        lambda h: first_crossing(_column(h, "step"), _column(h, "test_acc"), 0.9),
    ),
    "final_train_acc": ("final train accuracy", lambda h: _final(h, "train_acc")),
    "final_test_acc": ("final test accuracy", lambda h: _final(h, "test_acc")),
    "final_step": ("last step recorded", lambda h: _final(h, "step")),
}


def run_metrics(history: History) -> dict[str, float]:
    """Every :data:`RUN_METRICS` measurement of one run's history (NaN where not reached)."""
    return {name: float(fn(history)) for name, (_, fn) in RUN_METRICS.items()}


def _fmt(x: float) -> str:
    return "never" if not np.isfinite(x) else f"{x:.4g}"


def sweep_check(
    spec: SweepCheckSpec, key: str, values: Sequence[float], measured: Sequence[float]
) -> dict[str, Any]:
    """Grade one sweep check on the runs' measurements.

    Parameters
    ----------
    spec : SweepCheckSpec
        The check.
    key : str
        The swept setting (for the message).
    values : sequence of float
        The swept values, one per run (any order; the check sorts them).
    measured : sequence of float
        ``spec.metric`` of each run (NaN: not reached, or the run did not complete).

    Returns
    -------
    dict
        The check record of a run's checks (``description``, ``value``, ``op``,
        ``threshold``, ``passed``, ``result``) plus ``measured`` (value → metric) and ``detail``
        (one line). A monotone relation has ``value`` = the number of neighbouring pairs out
        of order (a run that never reached the metric breaks both its pairs), ``op`` ``"=="``
        and ``threshold`` 0; a ``largest_*`` relation has the largest value's metric.
    """
    order = np.argsort(np.asarray(values, dtype=np.float64), kind="stable")
    v = [float(values[i]) for i in order]
    m = [float(measured[i]) for i in order]
    table = {f"{x:g}": (None if not np.isfinite(y) else y) for x, y in zip(v, m)}
    if spec.relation in ("increasing", "decreasing"):
        vv, mm = (v[:-1], m[:-1]) if spec.exclude_largest else (v, m)
        sign = 1.0 if spec.relation == "increasing" else -1.0
        bad = sum(
            1
            for a, b in zip(mm, mm[1:])
            if not (np.isfinite(a) and np.isfinite(b) and sign * (b - a) > 0)
        )
        rel = " < " if sign > 0 else " > "
        detail = rel.join(f"{key}={x:g}: {_fmt(y)}" for x, y in zip(vv, mm))
        if len(vv) < 2:
            bad, detail = 1, f"needs two values of {key} (got {len(vv)})"
        value, op, threshold = float(bad), "==", 0.0
    else:
        value = m[-1] if m else math.nan
        op = "<" if spec.relation == "largest_below" else ">"
        threshold = spec.threshold
        detail = f"{key}={v[-1]:g}: {_fmt(value)}" if v else "no runs"
    ok = bool(np.isfinite(value) and _compare(value, op, threshold))
    return {
        "description": spec.description,
        "value": None if not np.isfinite(value) else float(value),
        "op": op,
        "threshold": float(threshold),
        "passed": ok,
        "result": "PASS" if ok else "FAIL",
        "metric": spec.metric,
        "measured": table,
        "detail": detail,
    }


_OP = {"increasing": "==", "decreasing": "==", "largest_below": "<", "largest_above": ">"}


def _compare(a: float, op: str, b: float) -> bool:
    return {"==": a == b, "<": a < b, ">": a > b}[op]


def sweep_checks(
    specs: Mapping[str, SweepCheckSpec],
    key: str,
    values: Sequence[float],
    metrics: Sequence[Mapping[str, float]],
) -> dict[str, dict[str, Any]]:
    """Every check of ``specs`` on the runs' :func:`run_metrics` (one mapping per value)."""
    return {
        name: sweep_check(spec, key, values, [float(m.get(spec.metric, math.nan)) for m in metrics])
        for name, spec in specs.items()
    }


def unreached_sweep_checks(specs: Mapping[str, SweepCheckSpec], reason: str) -> dict[str, Any]:
    """The records of sweep checks not graded (a run did not complete): never a PASS."""
    return {
        name: {
            "description": spec.description,
            "value": None,
            "op": _OP[spec.relation],
            "threshold": 0.0 if spec.relation in ("increasing", "decreasing") else spec.threshold,
            "passed": None,
            "result": "n/a",
            "metric": spec.metric,
            "measured": {},
            "detail": reason,
            "reason": reason,
        }
        for name, spec in specs.items()
    }
