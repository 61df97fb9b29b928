"""Pieces shared by the experiments: the run record, schedules, KKT hook, checks."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from implicitbias._results import ResultRecord
from implicitbias._validation import fail, fail_type
from implicitbias.dynamics import History, LossName, Method, TrainResult, log_schedule, train
from implicitbias.kkt import kkt_residuals
from implicitbias.kkt.report import Task


@dataclass(frozen=True)
class RunOutput(ResultRecord):
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
    model: Any, X: torch.Tensor, y: torch.Tensor, *, task: Task, weight_decay: float
) -> float:
    """``kkt_residuals(...).epsilon_rel`` of the model at its current parameters.

    NaN when a classifier does not yet separate the training set (the margin problem is only
    posed at a separating θ).
    """
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


#: An acceptance check before it is measured: (op, threshold, description).
CheckSpec = tuple[str, float, str]

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": lambda a, b: a >= b,
    "<=": lambda a, b: a <= b,
    "<": lambda a, b: a < b,
    ">": lambda a, b: a > b,
}


def check(value: float, op: str, threshold: float, description: str) -> dict[str, Any]:
    """A measured acceptance check: ``value op threshold``.

    ``result`` is ``"PASS"`` or ``"FAIL"`` (a non-finite value fails); :func:`unreached_checks`
    gives the ``"n/a"`` records of a run that did not get to measure its checks.
    """
    ok = bool(np.isfinite(value) and _OPS[op](value, threshold))
    return {
        "description": description,
        "value": None if not np.isfinite(value) else float(value),
        "op": op,
        "threshold": float(threshold),
        "passed": ok,
        "result": "PASS" if ok else "FAIL",
    }


def measure_checks(specs: Mapping[str, CheckSpec], values: Mapping[str, float]) -> dict[str, Any]:
    """The checks ``specs`` (name → (op, threshold, description)) at the measured ``values``."""
    missing = set(specs) ^ set(values)
    if missing:  # pragma: no cover - a programming error of an experiment
        raise RuntimeError(f"checks and measured values differ in {sorted(missing)}")
    return {k: check(float(values[k]), *specs[k]) for k in specs}


def unreached_checks(specs: Mapping[str, CheckSpec], reason: str) -> dict[str, Any]:
    """The records of checks a run did not reach (interrupted, diverged): never a PASS."""
    return {
        k: {
            "description": description,
            "value": None,
            "op": op,
            "threshold": float(threshold),
            "passed": None,
            "result": "n/a",
            "reason": reason,
        }
        for k, (op, threshold, description) in specs.items()
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


class RunInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (or a ``KeyboardInterrupt`` raised by a metrics callback).

    :func:`implicitbias.train` returns an interrupted run instead of raising; the experiments
    raise this at once instead of measuring a partial run, so that the runner records the run
    as interrupted (with its partial history and checkpoint) and never grades it.

    Attributes
    ----------
    result : TrainResult
        What training recorded before it stopped.
    """

    def __init__(self, result: TrainResult) -> None:
        super().__init__("training interrupted")
        self.result = result


def train_configured(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    cfg: Any,
    *,
    loss: LossName,
    method: Method | None,
    times: np.ndarray,
    metrics: Callable[..., dict[str, float]],
    history_path: Any,
    progress: bool | None,
    say: Callable[[str], None],
    checkpoint_path: Any = None,
    resume: bool = False,
) -> TrainResult:
    """One call of :func:`implicitbias.train` with an experiment config's settings, announced.

    With ``checkpoint_path`` the trainer checkpoints the run: after every evaluation for the
    flow (its evaluations are log-spaced, like its work), every 1% of the horizon for GD (whose
    work is linear in time), on Ctrl-C and at the end. ``resume`` continues from that file.

    Raises
    ------
    RunInterrupted
        Training was interrupted (the trainer has checkpointed it).
    """
    used = method or cfg.method
    t_max = float(times[-1])
    if resume and checkpoint_path is not None and os.path.exists(checkpoint_path):
        say(f"resuming ({used}) from {checkpoint_path} ...")
    else:
        say(f"training ({used}) to {cfg.t_max / cfg.lr:.3g} steps-equivalent ...")
    every = t_max / 100.0 if (checkpoint_path is not None and used == "gd") else None
    res = train(
        model,
        X,
        y,
        loss=loss,
        weight_decay=cfg.weight_decay,
        method=used,
        lr=cfg.lr,
        t_max=t_max,
        eval_times=times,
        metrics=metrics,
        rtol=cfg.rtol,
        atol=cfg.atol,
        history_path=history_path,
        checkpoint_path=checkpoint_path,
        checkpoint_every=every,
        resume=bool(resume and checkpoint_path is not None),
        progress=progress,
        alpha=cfg.alpha,
    )
    if res.status == "interrupted":
        raise RunInterrupted(res)
    return res


def check_device(device: Any, func: str) -> str:
    """The device string, after checking that torch can put a tensor there."""
    if not isinstance(device, (str, torch.device)):
        raise fail_type(func, "device", "a torch device such as 'cpu' or 'cuda'", device)
    text = str(device)
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise fail(func, "device", "a torch device such as 'cpu' or 'cuda'", repr(text)) from exc
    if dev.type == "meta":
        raise fail(func, "device", "a device that holds data (not 'meta')", repr(text))
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise fail(
                func,
                "device",
                "an available torch device",
                repr(text),
                "CUDA is not available to this torch (torch.cuda.is_available() is False); "
                "use 'cpu'.",
            )
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise fail(
                func, "device", f"a CUDA device of this machine (it has {count})", repr(text)
            )
    try:
        torch.zeros(1, device=dev)
    except Exception as exc:  # noqa: BLE001 - any failure means the device is not usable
        reason = " ".join(str(exc).split())[:160]
        raise fail(
            func, "device", "an available torch device", repr(text), f"torch: {reason}"
        ) from exc
    return text
