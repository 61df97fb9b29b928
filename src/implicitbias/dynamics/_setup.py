"""Set-up of a training run: the model and inputs, the labels, the schedule, the configuration
and its fingerprint (:func:`set_up`), and the start point, fresh or resumed
(:func:`starting_point`)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from implicitbias._validation import (
    as_float_array,
    fail,
)
from implicitbias.dynamics._checkpoint import (
    all_finite,
    data_digest,
    fingerprint,
    load_checkpoint,
    model_digest,
)
from implicitbias.dynamics._inputs import check_labels, homogeneous_and_inputs
from implicitbias.dynamics._options import Options
from implicitbias.dynamics._problem import Committed, Problem
from implicitbias.dynamics.history import History
from implicitbias.dynamics.losses import Loss, loss_function
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.models.homogeneous import Homogeneous

__all__: list[str] = []

_FUNC = "train"


@dataclass(frozen=True)
class Setup:
    """A run as its options determine it, before anything is written.

    Attributes
    ----------
    opts : Options
        The validated options.
    problem : Problem
        The objective on the model (a :class:`Homogeneous`), the checked inputs and labels.
    theta0 : torch.Tensor
        The model's parameters at the call (a fresh run starts there).
    times : numpy.ndarray
        The evaluation times (GD: multiples of η).
    eval_steps : numpy.ndarray or None
        GD: the steps of ``times``; None for the flow.
    total_steps : int
        GD: the number of steps; 0 for the flow.
    t_end : float
        The horizon (GD: rounded to whole steps).
    config : dict
        The configuration a checkpoint must match (and the sidecar records).
    digest : str
        The SHA-256 fingerprint of ``config`` and ``times``.
    """

    opts: Options
    problem: Problem
    theta0: torch.Tensor
    times: np.ndarray
    eval_steps: np.ndarray | None
    total_steps: int
    t_end: float
    config: dict[str, Any]
    digest: str


def set_up(model: nn.Module, X: Any, y: Any, opts: Options, eval_times: Any) -> Setup:
    """The model as a :class:`Homogeneous` of known degree, the checked inputs, labels and
    starting point, the schedule, the configuration and its fingerprint."""
    ell = loss_function(opts.loss)
    h, X, out_shape = homogeneous_and_inputs(model, X, opts.degree, func=_FUNC)
    n = X.shape[0]
    theta0 = h.theta()
    y_t = check_labels(ell, y, n, out_shape, theta0.dtype, theta0.device, func=_FUNC)
    check_start(h, X, y_t, ell, theta0)
    times, eval_steps, total_steps, t_end = schedule(
        opts.method, opts.lr, opts.t_end, eval_times, opts.num_evals
    )
    config = run_config(
        method=opts.method,
        loss=opts.loss,
        lam=opts.lam,
        lr=opts.lr,
        t_end=t_end,
        rtol=opts.rtol,
        atol=opts.atol,
        max_step=opts.max_step,
        integrator=opts.integrator,
        h=h,
        X=X,
        y=y_t,
        alpha=opts.alpha,
        num_times=len(times),
    )
    return Setup(
        opts=opts,
        problem=Problem(h, X, y_t, ell, opts.lam),
        theta0=theta0,
        times=times,
        eval_steps=eval_steps,
        total_steps=total_steps,
        t_end=t_end,
        config=config,
        digest=fingerprint(config, times),
    )


class Start(NamedTuple):
    """Where a run starts: its state, the history so far, α, the wall time already spent, and
    the time of the checkpoint it resumed from (None for a fresh start)."""

    state: Committed
    history: History
    alpha: float
    wall_time: float
    resumed_from: float | None


def starting_point(spec: Setup, checkpoint: Path | None) -> Start:
    """Resume from ``checkpoint`` (checked to belong to this run) when it is given and exists,
    else start afresh at θ(0); α defaults to ‖θ(0)‖."""
    prob, theta0 = spec.problem, spec.theta0
    if checkpoint is not None and checkpoint.exists():
        ck = load_checkpoint(_FUNC, checkpoint, spec.config, spec.times, spec.digest)
        state, history, alpha, wall_before = resumed_state(ck, theta0.dtype, theta0.device)
        prob.grad_evals = state.grad_evals
        return Start(state, history, alpha, wall_before, state.t)
    state = Committed(theta0.clone(), 0.0, 0, 0, 0, 0, 0, spec.opts.lr, 1.0, None, None)
    alpha = float(theta0.norm()) if spec.opts.alpha is None else spec.opts.alpha
    return Start(state, History(), alpha, 0.0, None)


def schedule(
    method: str, lr: float, t_end: float, eval_times: Any, num_evals: int
) -> tuple[np.ndarray, np.ndarray | None, int, float]:
    """(evaluation times, GD evaluation steps, GD steps, horizon) from the validated options."""
    total_steps = 0
    if method == "gd":
        total_steps = int(math.floor(t_end / lr + 0.5))
        if total_steps < 1:
            raise fail(_FUNC, "steps", "at least one GD step (t_max ≥ lr/2)", f"t_max = {t_end:g}")
        t_end = total_steps * lr
    if eval_times is None:
        # multiples of η (the same grid for both methods); the flow also records at t_max
        # itself when t_max is not a multiple of η
        k_end = max(1, int(math.floor(t_end / lr + 0.5)))
        times = log_schedule(k_end * lr, num_evals, step=lr)
        times = times[times <= t_end * (1 + 1e-12)]
        if times[-1] < t_end * (1 - 1e-12):
            times = np.append(times, t_end)
    else:
        times = as_float_array(eval_times, _FUNC, "eval_times", ndim=1)
        if np.any(times < 0) or np.any(times > t_end * (1 + 1e-12)):
            raise fail(
                _FUNC,
                "eval_times",
                f"times in [0, t_max = {t_end:g}]",
                f"range [{times.min():g}, {times.max():g}]",
            )
        if np.any(np.diff(times) <= 0):
            i = int(np.argmax(np.diff(times) <= 0))
            raise fail(
                _FUNC,
                "eval_times",
                "strictly increasing times (history row i is eval_times[i])",
                f"eval_times[{i}] = {times[i]:g} followed by {times[i + 1]:g}",
                "Sort them and drop repeats, e.g. numpy.unique(eval_times).",
            )
        times = np.minimum(times, t_end)
    eval_steps: np.ndarray | None = None
    if method == "gd":
        eval_steps = np.unique(np.floor(times / lr + 0.5).astype(np.int64))
        times = eval_steps * lr
    return times, eval_steps, total_steps, t_end


def check_start(
    h: Homogeneous, X: torch.Tensor, y: torch.Tensor, ell: Loss, theta0: torch.Tensor
) -> None:
    """The starting point must be finite: parameters, outputs and losses."""
    if not all_finite(theta0):
        bad = int((~torch.isfinite(theta0)).sum())
        raise fail(
            _FUNC,
            "model",
            "a model with finite parameters",
            f"{bad} non-finite parameter entries (NaN or inf)",
            "Re-initialize the model.",
        )
    with torch.no_grad():
        out = h(X)
    if not all_finite(out):
        bad = int((~torch.isfinite(out)).sum())
        raise fail(
            _FUNC,
            "model",
            "a model with finite outputs on X",
            f"{bad} non-finite outputs at the initial parameters",
            "Lower the initialization scale (or use float64).",
        )
    if not all_finite(ell.values(out, y)):
        raise fail(
            _FUNC,
            "y",
            f"labels with a finite initial {ell.name!r} loss",
            "a loss that overflows at the initial parameters",
            "Rescale the targets or lower the initialization scale.",
        )


def resumed_state(
    ck: dict[str, Any], dtype: torch.dtype, device: torch.device
) -> tuple[Committed, History, float, float]:
    """(start state, history so far, α, wall time so far) from a checked checkpoint."""
    columns = list(ck["history_columns"])
    history = History(columns=columns or None)
    data = ck["history"]
    for i in range(len(data[columns[0]]) if columns else 0):
        history.append({c: data[c][i] for c in columns})
    start = Committed(
        theta=ck["theta"].to(dtype=dtype, device=device),
        t=float(ck["t"]),
        n_steps=int(ck["n_steps"]),
        n_rejected=int(ck["n_rejected"]),
        grad_evals=int(ck["grad_evals"]),
        eval_index=int(ck["eval_index"]),
        history_len=len(history),
        h=float(ck["h"]),
        error_prev=float(ck["error_prev"]),
        f=None if ck["f"] is None else ck["f"].to(dtype=dtype, device=device),
        out=None,
    )
    return start, history, float(ck["alpha"]), float(ck["wall_time"])


def run_config(
    *,
    method: str,
    loss: str,
    lam: float,
    lr: float,
    t_end: float,
    rtol: float,
    atol: float,
    max_step: float | None,
    integrator: str,
    h: Homogeneous,
    X: torch.Tensor,
    y: torch.Tensor,
    alpha: float | None,
    num_times: int,
) -> dict[str, Any]:
    """The configuration a checkpoint must match to resume (and the sidecar records), with
    SHA-256 digests of the model's architecture and of the data."""
    return {
        "method": method,
        "loss": loss,
        "weight_decay": lam,
        "lr": lr,
        "t_max": t_end,
        "rtol": rtol,
        "atol": atol,
        "max_step": max_step,
        "integrator": integrator,
        "n": int(X.shape[0]),
        "p": int(h.num_parameters),
        "degree": float(h.degree),
        "alpha": alpha,
        "dtype": str(h.dtype),
        "num_eval_times": num_times,
        "architecture": model_digest(h.model),
        "data_fingerprint": data_digest(X, y),
    }
