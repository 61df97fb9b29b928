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

from implicitbias._errors import NotHomogeneousError
from implicitbias._modules import untouched
from implicitbias._validation import (
    as_class_labels,
    as_float_array,
    as_pm1_labels,
    fail,
    fail_type,
)
from implicitbias.dynamics._checkpoint import (
    all_finite,
    data_digest,
    fingerprint,
    load_checkpoint,
    model_digest,
)
from implicitbias.dynamics._options import Options
from implicitbias.dynamics._problem import Committed, Problem
from implicitbias.dynamics.history import History
from implicitbias.dynamics.losses import Loss, loss_function
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.models.homogeneous import Homogeneous, homogeneity_degree

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
    h, X, out_shape = homogeneous_and_inputs(model, X, opts.degree)
    n = X.shape[0]
    theta0 = h.theta()
    y_t = check_labels(ell, y, n, out_shape, theta0.dtype, theta0.device)
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


def homogeneous_and_inputs(
    model: nn.Module, X: Any, degree: int | float | None
) -> tuple[Homogeneous, torch.Tensor, tuple[int, ...]]:
    """The model as a :class:`Homogeneous`, the validated inputs and the outputs' shape.

    The inputs are checked (and one forward pass is run on all of them) first, so that a bad
    ``X`` is reported as ``train``'s argument. The degree is ``degree`` when given, else the
    model's own, else measured on ``X``.
    """
    probe = Homogeneous(model, degree=1, check=False)
    X = probe.prepare_input(X, func=_FUNC)
    out_shape = _probe_outputs(probe, X)
    if degree is not None:
        h = Homogeneous(model, degree=degree)
    elif isinstance(model, Homogeneous):
        h = model
    elif getattr(model, "degree", None) is not None:
        h = Homogeneous(model)
    else:
        try:
            measured = homogeneity_degree(model, X)
        except NotHomogeneousError as exc:
            raise NotHomogeneousError(
                f"{_FUNC}: the model carries no `degree`, so its degree was measured on X, and "
                f"it is not positively homogeneous in its parameters. {exc} Train an "
                f"L-homogeneous model (a built-in one, or ib.Homogeneous(model, degree=L)), or "
                f"pass degree=L."
            ) from exc
        h = Homogeneous(model, degree=measured, check=False)
    if h is not probe:
        # A declared degree (degree=, a Homogeneous wrapper, a model's own `degree`) is checked
        # once against the model here, before any step: a wrong L silently changes ε and t*.
        X = h.prepare_input(X, func=_FUNC)
    return h, X, out_shape


def _probe_outputs(h: Homogeneous, X: torch.Tensor) -> tuple[int, ...]:
    """Shape of the model's outputs on the whole of ``X``; a forward that fails names ``X``."""
    try:
        with torch.no_grad(), untouched(h.model):  # a BatchNorm in train mode keeps its stats
            out = h(X)
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise fail(
            _FUNC,
            "X",
            "a batch of inputs the model accepts",
            f"shape {tuple(X.shape)} and dtype {X.dtype}",
            f"The model's forward raised {type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise fail_type(_FUNC, "model", "a module whose forward returns a tensor", out)
    n = X.shape[0]
    if out.ndim == 0 or out.shape[0] != n:
        # one output row per example, else the loss pairs outputs with the wrong labels
        arg = "X" if X.ndim == 1 else "model"
        raise fail(
            _FUNC,
            arg,
            f"a model and inputs with one output per example (outputs of shape (n,) or (n, C) "
            f"with n = X.shape[0] = {n})",
            f"outputs of shape {tuple(out.shape)} for X of shape {tuple(X.shape)}",
            "A single example needs its batch dimension (X.unsqueeze(0)); a forward must not "
            "sum, average or flatten over the batch.",
        )
    return tuple(out.shape)


def check_labels(
    loss: Loss,
    y: Any,
    n: int,
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
) -> torch.Tensor:
    """The labels as a tensor the loss takes, checked against the loss and the outputs."""
    if loss.task == "binary":
        if len(out_shape) != 1:
            raise fail(
                _FUNC,
                "model",
                f"a single-output model (outputs of shape (n,)) for the {loss.name!r} loss",
                f"outputs of shape {out_shape}",
                "Use loss='cross_entropy' for several logits.",
            )
        arr = as_pm1_labels(y, _FUNC, "y", n=n)
        return torch.as_tensor(arr, dtype=dtype, device=device)
    if loss.task == "multiclass":
        if len(out_shape) != 2 or out_shape[1] < 2:
            raise fail(
                _FUNC,
                "model",
                "a model with C ≥ 2 outputs (logits of shape (n, C)) for the 'cross_entropy' loss",
                f"outputs of shape {out_shape}",
            )
        arr = as_class_labels(y, _FUNC, "y", n=n, n_classes=out_shape[1])
        return torch.as_tensor(arr, dtype=torch.int64, device=device)
    arr = as_float_array(y, _FUNC, "y", ndim=(1, 2))
    if arr.shape[0] != n:
        raise fail(_FUNC, "y", f"of length {n} (one target per example)", f"length {arr.shape[0]}")
    if tuple(arr.shape[1:]) != tuple(out_shape[1:]):
        raise fail(
            _FUNC, "y", f"targets of shape {out_shape} (the model's outputs)", f"shape {arr.shape}"
        )
    return torch.as_tensor(arr, dtype=dtype, device=device)


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
