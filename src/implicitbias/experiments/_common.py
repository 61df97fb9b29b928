"""Pieces shared by the experiments: the run record, schedules, KKT hook, checks."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from implicitbias.dynamics import History, TrainResult, log_schedule, train


@dataclass(frozen=True)
class RunOutput:
    """What an experiment hands to the runner (before files and figures).

    Attributes
    ----------
    name : str
        Experiment name.
    history : History
        One row per evaluation: the trainer's columns and the experiment's (test metrics,
        alignments, ``kkt_epsilon_rel``).
    summary : dict
        Key numbers and the measured acceptance ``checks``.
    baselines : dict[str, float]
        Reference levels drawn as horizontal lines (e.g. ``{"l2 max-margin (kernel)": 0.66}``).
    metric : {"accuracy", "mse"}
        What the figure's main panel shows.
    t_star : float
        The transition time (1/λ)·log α.
    lr : float
        η, the unit of steps = t/η.
    train_info : dict
        Method, status, gradient evaluations, steps-equivalent, wall time of training.
    """

    name: str
    history: History
    summary: dict[str, Any]
    baselines: dict[str, float]
    metric: str
    t_star: float
    lr: float
    train_info: dict[str, Any] = field(default_factory=dict)


def torch_dtype(name: str) -> torch.dtype:
    return {"float64": torch.float64, "float32": torch.float32}[name]


def schedule(
    t_max: float, num_evals: int, lr: float, kkt_evals: int, t_star: float
) -> tuple[np.ndarray, set[int]]:
    """Log-spaced evaluation times (multiples of η) and the indices where KKT is computed.

    The KKT checkpoints are the evaluations nearest to ``kkt_evals`` times log-spaced from
    0.01·t* to t_max (the run's end is always one of them).
    """
    times = log_schedule(t_max, num_evals, step=lr)
    kkt: set[int] = set()
    if kkt_evals > 0 and len(times) > 1:
        lo = min(0.01 * t_star, t_max) if np.isfinite(t_star) and t_star > 0 else times[1]
        targets = np.geomspace(max(lo, times[1]), times[-1], kkt_evals)
        idx = {int(np.argmin(np.abs(times - t))) for t in targets}
        kkt = {i for i in idx if i > 0} | {len(times) - 1}
    return times, kkt


class EvalCounter:
    """Maps the time a metrics callback receives to its index in the schedule."""

    def __init__(self, times: np.ndarray) -> None:
        self.times = np.asarray(times, dtype=np.float64)

    def index(self, t: float) -> int:
        i = int(np.argmin(np.abs(self.times - t)))
        return i


def kkt_epsilon_rel(
    model: Any, X: torch.Tensor, y: torch.Tensor, *, task: str, weight_decay: float
) -> float:
    """``kkt_residuals(...).epsilon_rel`` of the model at its current parameters.

    NaN when a classifier does not yet separate the training set (the margin problem is only
    posed at a separating θ) or when the KKT module is not available in this installation.
    """
    try:
        from implicitbias.kkt import kkt_residuals  # type: ignore[attr-defined]
    except ImportError:
        return math.nan
    if task != "regression":
        with torch.no_grad():
            out = model(X)
        if task == "classification":
            q_min = float((out * y).min())
        else:
            true = out.gather(1, y.view(-1, 1))
            others = out.scatter(1, y.view(-1, 1), -math.inf)
            q_min = float((true[:, 0] - others.max(1).values).min())
        if not q_min > 0:
            return math.nan
    report = kkt_residuals(model, X, y, task=task, weight_decay=weight_decay)
    return float(report.epsilon_rel)


def check(value: float, op: str, threshold: float, description: str) -> dict[str, Any]:
    """A measured acceptance check: ``value op threshold``."""
    ops: dict[str, Callable[[float, float], bool]] = {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        "<": lambda a, b: a < b,
        ">": lambda a, b: a > b,
    }
    ok = bool(np.isfinite(value) and ops[op](value, threshold))
    return {
        "description": description,
        "value": None if not np.isfinite(value) else float(value),
        "op": op,
        "threshold": float(threshold),
        "passed": ok,
    }


def value_at(history: History, column: str, rescaled: float) -> float:
    """The recorded value of ``column`` at the evaluation nearest to t = rescaled·t*."""
    r = history["rescaled_time"]
    i = int(np.argmin(np.abs(r - rescaled)))
    return float(history[column][i])


def window(history: History, lo: float, hi: float) -> np.ndarray:
    """Mask of evaluations with lo ≤ t/t* ≤ hi."""
    r = history["rescaled_time"]
    return (r >= lo) & (r <= hi)


def merge_columns(history: History, extra: Mapping[str, np.ndarray]) -> History:
    """A new History with ``extra`` columns appended (same number of rows)."""
    cols = history.columns + [c for c in extra if c not in history.columns]
    out = History(columns=cols)
    for i in range(len(history)):
        row = history.row(i)
        for c, v in extra.items():
            row[c] = float(v[i])
        out.append(row)
    return out


class Timer:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self) -> float:
        return time.perf_counter() - self.t0


def train_configured(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    cfg: Any,
    *,
    loss: str,
    method: str | None,
    times: np.ndarray,
    metrics: Callable[..., dict[str, float]],
    history_path: Any,
    progress: bool | None,
    say: Callable[[str], None],
) -> TrainResult:
    """One call of :func:`implicitbias.train` with an experiment config's settings, announced."""
    say(f"training ({method or cfg.method}) to {cfg.t_max / cfg.lr:.3g} steps-equivalent ...")
    return train(
        model,
        X,
        y,
        loss=loss,
        weight_decay=cfg.weight_decay,
        method=method or cfg.method,
        lr=cfg.lr,
        t_max=float(times[-1]),
        eval_times=times,
        metrics=metrics,
        rtol=cfg.rtol,
        atol=cfg.atol,
        history_path=history_path,
        progress=progress,
        alpha=cfg.alpha,
    )
