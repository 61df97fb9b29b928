"""Set-up of a training run: the model and inputs, the labels, the schedule, the start point."""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from implicitbias._errors import NotHomogeneousError
from implicitbias._modules import untouched
from implicitbias._validation import (
    as_class_labels,
    as_float_array,
    as_pm1_labels,
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.dynamics._checkpoint import all_finite, data_digest, model_digest
from implicitbias.dynamics._problem import Committed
from implicitbias.dynamics.flow import INTEGRATORS
from implicitbias.dynamics.history import History
from implicitbias.dynamics.losses import LOSSES, Loss
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.models.homogeneous import Homogeneous, homogeneity_degree

__all__: list[str] = []

_FUNC = "train"
METHODS = ("gd", "flow")


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


def check_labels(loss: Loss, y: Any, n: int, out_shape: tuple[int, ...], dtype, device):
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


def check_options(
    *,
    model: Any,
    degree: Any,
    history_path: Any,
    checkpoint_path: Any,
    loss: Any,
    method: Any,
    integrator: Any,
    weight_decay: Any,
    lr: Any,
    steps: Any,
    t_max: Any,
    num_evals: Any,
    rtol: Any,
    atol: Any,
    max_step: Any,
    checkpoint_every: Any,
    metrics: Any,
    resume: Any,
    alpha: Any,
) -> tuple[Any, float, float, float, int, float, float, Any, Any, Any]:
    """Validate the scalar options of ``train``; (degree, λ, η, t_max, num_evals, rtol, atol,
    max_step, checkpoint_every, alpha), converted."""
    if not isinstance(model, nn.Module):
        raise fail_type(_FUNC, "model", "a torch.nn.Module", model)
    if degree is not None:
        if isinstance(degree, bool) or not isinstance(
            degree, (int, float, np.integer, np.floating)
        ):
            raise fail_type(_FUNC, "degree", "a positive number", degree)
        if not (float(degree) > 0 and math.isfinite(float(degree))):
            raise fail(_FUNC, "degree", "a positive finite number", repr(degree))
        degree = int(degree) if isinstance(degree, (int, np.integer)) else float(degree)
    for name, path in (("history_path", history_path), ("checkpoint_path", checkpoint_path)):
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise fail_type(_FUNC, name, "a file path (str or os.PathLike)", path)
    check_choice(loss, _FUNC, "loss", LOSSES)
    check_choice(method, _FUNC, "method", METHODS)
    check_choice(integrator, _FUNC, "integrator", INTEGRATORS)
    lam = check_nonnegative(weight_decay, _FUNC, "weight_decay")
    lr = check_positive(lr, _FUNC, "lr")
    if (steps is None) == (t_max is None):
        got = "both" if steps is not None else "neither"
        raise fail(_FUNC, "steps", "given, or 't_max' given, but not both", got)
    if steps is not None:
        t_end = lr * check_positive(steps, _FUNC, "steps")
    else:
        t_end = check_positive(t_max, _FUNC, "t_max")
    if not math.isfinite(t_end):
        raise fail(_FUNC, "steps", "a horizon lr·steps that is a finite number", f"{t_end!r}")
    num_evals = check_int(num_evals, _FUNC, "num_evals", minimum=2)
    rtol = check_positive(rtol, _FUNC, "rtol")
    atol = check_positive(atol, _FUNC, "atol")
    if max_step is not None:
        max_step = check_positive(max_step, _FUNC, "max_step")
    if checkpoint_every is not None:
        checkpoint_every = check_positive(checkpoint_every, _FUNC, "checkpoint_every")
    if metrics is not None and not callable(metrics):
        raise fail_type(_FUNC, "metrics", "a callable metrics(model, t) -> dict", metrics)
    if not isinstance(resume, bool):
        raise fail_type(_FUNC, "resume", "a bool", resume)
    if resume and checkpoint_path is None:
        raise fail(_FUNC, "checkpoint_path", "given when resume=True", "None")
    if alpha is not None:
        alpha = check_positive(alpha, _FUNC, "alpha")
    return degree, lam, lr, t_end, num_evals, rtol, atol, max_step, checkpoint_every, alpha


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


def progress_bar(
    progress: bool | None, t_end: float, method: str
) -> tuple[Any, Callable[[float], None]]:
    """A tqdm bar (None when off) and its update function."""
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=float(t_end), unit="t", desc=f"train ({method})", leave=False)

    def tick(t: float) -> None:
        if bar is not None:
            bar.update(t - bar.n)

    return bar, tick
