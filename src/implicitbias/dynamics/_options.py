"""The options of :func:`~implicitbias.dynamics.train`, checked and converted before anything
is computed or written."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
from torch import nn

from implicitbias._validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.dynamics._checkpoint import check_output_paths
from implicitbias.dynamics.flow import INTEGRATORS, IntegratorName
from implicitbias.dynamics.losses import LOSSES, LossName

__all__: list[str] = []

_FUNC = "train"

#: The training methods: fixed-step gradient descent, or the adaptive gradient flow.
Method = Literal["gd", "flow"]
METHODS: tuple[Method, ...] = get_args(Method)


class Options(NamedTuple):
    """The scalar options of a run, validated and converted (``t_end``: the horizon asked
    for, as gradient-flow time)."""

    degree: int | float | None
    loss: LossName
    method: Method
    integrator: IntegratorName
    lam: float
    lr: float
    t_end: float
    num_evals: int
    rtol: float
    atol: float
    max_step: float | None
    checkpoint_every: float | None
    alpha: float | None
    history_file: Path | None
    checkpoint_file: Path | None


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
) -> Options:
    """Validate the scalar options of ``train`` and its output paths (refused before anything
    is written: see :func:`check_output_paths`); the :class:`Options`."""
    if not isinstance(model, nn.Module):
        raise fail_type(_FUNC, "model", "a torch.nn.Module", model)
    degree = _check_degree(degree)
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
    hist_file = None if history_path is None else Path(history_path)
    ckpt_file = None if checkpoint_path is None else Path(checkpoint_path)
    check_output_paths(_FUNC, hist_file, ckpt_file)
    return Options(
        degree=degree,
        loss=loss,
        method=method,
        integrator=integrator,
        lam=lam,
        lr=lr,
        t_end=t_end,
        num_evals=num_evals,
        rtol=rtol,
        atol=atol,
        max_step=max_step,
        checkpoint_every=checkpoint_every,
        alpha=alpha,
        history_file=hist_file,
        checkpoint_file=ckpt_file,
    )


def _check_degree(degree: Any) -> int | float | None:
    """A declared degree L: a positive finite number (an integer stays an ``int``)."""
    if degree is None:
        return None
    if isinstance(degree, bool) or not isinstance(degree, (int, float, np.integer, np.floating)):
        raise fail_type(_FUNC, "degree", "a positive number", degree)
    if not (float(degree) > 0 and math.isfinite(float(degree))):
        raise fail(_FUNC, "degree", "a positive finite number", repr(degree))
    return int(degree) if isinstance(degree, (int, np.integer)) else float(degree)
