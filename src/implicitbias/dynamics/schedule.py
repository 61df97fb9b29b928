"""Evaluation schedules: when, in gradient-flow time, a run records its history."""

from __future__ import annotations

import numpy as np

from implicitbias._validation import check_int, check_positive, fail

__all__ = ["log_schedule"]


def log_schedule(
    t_max: float,
    num: int = 200,
    *,
    t_min: float | None = None,
    step: float | None = None,
) -> np.ndarray:
    r"""Log-spaced evaluation times on [0, t_max]: dense early, sparse late.

    Returns ``0``, then ``num − 1`` times geometrically spaced from ``t_min`` to ``t_max``
    (both included). With ``step`` (a GD step η) every time is rounded to a multiple k·η of it
    and duplicates are dropped, so fewer than ``num`` times may come back; the last is then
    ``floor(t_max/η + ½)·η``.

    Parameters
    ----------
    t_max : float
        Final gradient-flow time, > 0.
    num : int, default 200
        Number of times (≥ 2) before rounding.
    t_min : float, optional
        First positive time. Default: ``step`` when given, else ``t_max · 1e-5``.
    step : float, optional
        Round to multiples of this step.

    Returns
    -------
    numpy.ndarray
        Strictly increasing float64 times starting at 0.

    Examples
    --------
    >>> from implicitbias.dynamics import log_schedule
    >>> log_schedule(1000.0, 5, t_min=1.0)
    array([   0.,    1.,   10.,  100., 1000.])
    >>> log_schedule(1.0, 6, step=0.1)
    array([0. , 0.1, 0.2, 0.3, 0.6, 1. ])
    """
    func = "log_schedule"
    t_max = check_positive(t_max, func, "t_max")
    num = check_int(num, func, "num", minimum=2)
    if step is not None:
        step = check_positive(step, func, "step")
        if step > t_max:
            raise fail(func, "step", f"at most t_max = {t_max:g}", repr(step))
    if t_min is None:
        t_min = step if step is not None else t_max * 1e-5
    t_min = check_positive(t_min, func, "t_min")
    if t_min > t_max:
        raise fail(func, "t_min", f"at most t_max = {t_max:g}", repr(t_min))
    positive = np.geomspace(t_min, t_max, num - 1) if num > 2 else np.array([t_max])
    times = np.concatenate([[0.0], positive])
    if step is not None:
        k = np.unique(np.floor(times / step + 0.5).astype(np.int64))
        times = k.astype(np.float64) * step
        times = times[(times > 0) | (k == 0)]
    return np.unique(times)
