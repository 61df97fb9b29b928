r"""The parts of a :class:`~implicitbias.dynamics.Monitor`: its schedule (:func:`schedule`), its
baselines (:func:`check_baselines`), the check that the model kept its parameters' dtypes
(:class:`ParameterSignature`), and the theory's columns beyond the standard ones
(:class:`Extras`: smoothed margin, test metrics, cosines with baselines, KKT ε_rel).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

import numpy as np
import torch

from implicitbias._validation import (
    as_float_array,
    check_int,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.dynamics._metrics import cosine, data_metrics
from implicitbias.dynamics.losses import Loss
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.kkt import kkt_residuals, smoothed_margin
from implicitbias.models.homogeneous import Homogeneous

__all__: list[str] = []

#: The tolerance on times: a time within 1e-12 (relative) of a schedule time reaches it.
_RTOL = 1e-12


# ------------------------------------------------------------------------ schedule
def schedule(
    *,
    lr: float | None,
    steps: Any,
    t_max: Any,
    eval_times: Any,
    num_evals: int,
    func: str,
) -> np.ndarray:
    """The recording times: ``eval_times`` (with ``lr``: rounded to multiples of it, as
    ``train``'s GD does), else log-spaced up to the horizon — ``lr·steps`` or ``t_max`` — with
    :func:`log_schedule` (multiples of ``lr`` when given: the schedule of ``train``'s GD)."""
    if steps is not None and t_max is not None:
        raise fail(func, "steps", "given without 't_max' (one horizon)", f"steps={steps!r}")
    t_end: float | None = None
    if steps is not None:
        if lr is None:
            raise fail(func, "lr", "the GD step η when 'steps' is given (t_max = lr·steps)", "None")
        t_end = check_int(steps, func, "steps", minimum=1) * lr
    elif t_max is not None:
        t_end = check_positive(t_max, func, "t_max")
    if eval_times is None:
        if t_end is None:
            raise fail(
                func,
                "t_max",
                "the horizon: 't_max' (gradient-flow time), 'steps' (with 'lr'), or 'eval_times'",
                "none of them",
            )
        if lr is None:
            return log_schedule(t_end, num_evals)
        k_end = int(math.floor(t_end / lr + 0.5))
        if k_end < 1:
            raise fail(func, "t_max", f"at least one step of lr = {lr:g}", f"t_max = {t_end:g}")
        return log_schedule(k_end * lr, num_evals, step=lr)
    times = as_float_array(eval_times, func, "eval_times", ndim=1)
    if np.any(times < 0) or (t_end is not None and np.any(times > t_end * (1 + _RTOL))):
        upper = "∞" if t_end is None else f"{t_end:g}"
        raise fail(
            func,
            "eval_times",
            f"times in [0, {upper}]",
            f"range [{times.min():g}, {times.max():g}]",
        )
    if np.any(np.diff(times) <= 0):
        i = int(np.argmax(np.diff(times) <= 0))
        raise fail(
            func,
            "eval_times",
            "strictly increasing times",
            f"eval_times[{i}] = {times[i]:g} followed by {times[i + 1]:g}",
            "Sort them and drop repeats, e.g. numpy.unique(eval_times).",
        )
    if lr is not None:
        times = np.unique(np.floor(times / lr + 0.5).astype(np.int64)) * lr
    return times


def kkt_indices(times: np.ndarray, kkt_evals: int, *, t_star: float) -> frozenset[int]:
    """The schedule indices of the KKT checkpoints: the ones nearest to ``kkt_evals`` times
    log-spaced from 0.01·t* (from the first positive time when t* is not finite and positive)
    to the last time, which is always one of them (as the experiments choose them)."""
    last = len(times) - 1
    if kkt_evals == 0:
        return frozenset()
    if kkt_evals == 1 or last < 1:
        return frozenset({last})
    lo = float(times[1])
    if math.isfinite(t_star) and t_star > 0:
        lo = min(max(0.01 * t_star, lo), float(times[-1]))
    targets = np.geomspace(lo, times[-1], kkt_evals)
    return frozenset(int(np.argmin(np.abs(times - t))) for t in targets) | {last}


# ------------------------------------------------------------------------ baselines
class Baseline(NamedTuple):
    """A baseline of a cosine column: a parameter direction, or a predictor's outputs on the
    evaluation inputs (float64, flat)."""

    column: str
    kind: Literal["parameters", "outputs"]
    vector: torch.Tensor


def _predictor_outputs(
    name: str, g: Any, X_eval: torch.Tensor, out_shape: tuple[int, ...], func: str, where: str
) -> torch.Tensor:
    try:
        with torch.no_grad():
            values = g(X_eval)
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise fail(
            func,
            "baselines",
            "predictors that accept the evaluation inputs",
            f"the entry {name!r}, whose call raised {type(exc).__name__}: {exc}",
        ) from exc
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu()
    arr = as_float_array(values, func, "baselines", ndim=(1, 2))
    if arr.ndim == 2 and arr.shape[1] == 1 and len(out_shape) == 1:
        arr = arr[:, 0]
    if tuple(arr.shape) != tuple(out_shape):
        raise fail(
            func,
            "baselines",
            f"predictors whose outputs on the evaluation inputs ({where}) have the model's shape "
            f"{tuple(out_shape)}",
            f"shape {tuple(arr.shape)} from the entry {name!r}",
        )
    return torch.as_tensor(arr, dtype=torch.float64, device=X_eval.device).reshape(-1)


def check_baselines(
    baselines: Any,
    h: Homogeneous,
    X_eval: torch.Tensor,
    out_shape: tuple[int, ...],
    *,
    func: str,
    where: str,
) -> list[Baseline]:
    """The ``baselines`` argument, checked: ``{name: parameter vector of shape (p,), or a
    predictor (a callable, or an object with decision_function)}``; predictors are evaluated
    once, here, on ``X_eval`` (the argument named ``where``)."""
    if baselines is None:
        return []
    if not isinstance(baselines, Mapping):
        raise fail_type(
            func, "baselines", "a dict {name: parameter vector or predictor}", baselines
        )
    p = h.num_parameters
    out: list[Baseline] = []
    for name, value in baselines.items():
        if not isinstance(name, str) or not name:
            raise fail_type(func, "baselines", "a dict whose keys are non-empty strings", name)
        column = f"cos_{name}"
        if isinstance(value, (torch.Tensor, np.ndarray)):
            if isinstance(value, torch.Tensor):
                value = value.detach().cpu()
            arr = as_float_array(value, func, "baselines")
            if arr.shape != (p,):
                raise fail(
                    func,
                    "baselines",
                    f"parameter vectors of shape ({p},) (θ of the model), or predictors "
                    "(callables)",
                    f"shape {arr.shape} for the entry {name!r}",
                    "A predictor's outputs go in as a callable, e.g. lambda X: outputs.",
                )
            if not np.any(arr):
                raise fail(func, "baselines", "nonzero parameter vectors", f"zeros for {name!r}")
            vec = torch.as_tensor(arr, dtype=torch.float64, device=h.device)
            out.append(Baseline(column, "parameters", vec))
            continue
        g = getattr(value, "decision_function", None)
        if not callable(g):
            g = value if callable(value) else None
        if g is None:
            raise fail_type(
                func,
                "baselines",
                f"a dict of parameter vectors (tensors of shape ({p},)) or predictors "
                f"(callables) (entry {name!r})",
                value,
            )
        vec = _predictor_outputs(name, g, X_eval, out_shape, func, where)
        if not bool(torch.any(vec != 0)):
            raise fail(func, "baselines", "predictors with nonzero outputs", f"zeros for {name!r}")
        out.append(Baseline(column, "outputs", vec))
    return out


# ------------------------------------------------------------------------ the model
class ParameterSignature:
    """Names, dtypes, shapes and devices of a model's trainable parameters, to refuse a record
    of a model changed under the monitor (``model.to(float32)``, a replaced layer)."""

    def __init__(self, h: Homogeneous) -> None:
        self.h = h
        self.names = h.parameter_names
        self.items = self._now()

    def _now(self) -> list[tuple[str, str]]:
        named = dict(self.h.model.named_parameters())
        return [(n, "missing" if n not in named else _describe_param(named[n])) for n in self.names]

    def check(self, func: str) -> None:
        """Raise when a parameter changed dtype, shape or device (or disappeared)."""
        now = self._now()
        if now != self.items:
            (name, was), (_, is_) = next((a, b) for a, b in zip(self.items, now) if a != b)
            raise fail(
                func,
                "model",
                "a model whose trainable parameters keep the dtype, shape and device they had "
                "when the monitor was created",
                f"the parameter {name!r} {is_} (was {was})",
                "Create a new Monitor after model.to(...) or after replacing parameters.",
            )


def _describe_param(p: torch.Tensor) -> str:
    return f"of dtype {p.dtype} and shape {tuple(p.shape)} on {p.device}"


# ------------------------------------------------------------------------ extra columns
_TASK: dict[str, Literal["classification", "multiclass", "regression"]] = {
    "binary": "classification",
    "multiclass": "multiclass",
    "regression": "regression",
}
_MARGIN_LOSS: dict[str, Literal["logistic", "exponential"]] = {
    "logistic": "logistic",
    "exponential": "exponential",
    "cross_entropy": "logistic",
}


class Extras:
    """The theory's columns beyond the standard ones, in this order: ``smoothed_margin``,
    ``test_loss`` and ``test_acc`` (or ``test_mse``), ``cos_<name>`` per baseline,
    ``kkt_epsilon_rel``."""

    def __init__(
        self,
        h: Homogeneous,
        X: torch.Tensor,
        y: torch.Tensor,
        loss: Loss,
        *,
        smoothed: bool,
        test: tuple[torch.Tensor, torch.Tensor] | None,
        baselines: list[Baseline],
        kkt: bool,
    ) -> None:
        self.h, self.X, self.y, self.loss = h, X, y, loss
        self.smoothed = smoothed and loss.is_classification
        self.test = test
        self.baselines = baselines
        self.kkt = kkt
        self.columns: list[str] = []
        if self.smoothed:
            self.columns.append("smoothed_margin")
        if test is not None:
            kind = "acc" if loss.is_classification else "mse"
            self.columns += ["test_loss", f"test_{kind}"]
        self.columns += [b.column for b in baselines]
        if kkt:
            self.columns.append("kkt_epsilon_rel")

    def evaluate(
        self,
        theta: torch.Tensor,
        norm: float,
        out: torch.Tensor,
        q_min: float | None,
        *,
        kkt_now: bool,
    ) -> dict[str, float]:
        """The columns at θ (norm ``norm``, training outputs ``out``, their q_min); KKT only when
        ``kkt_now``, else NaN. Runs with gradients enabled (the KKT check needs them)."""
        row: dict[str, float] = {}
        finite = math.isfinite(norm) and bool(torch.isfinite(out).all())
        separates = finite and (q_min is None or q_min > 0)
        if self.smoothed:
            row["smoothed_margin"] = math.nan
            if finite and norm > 0:
                row["smoothed_margin"] = smoothed_margin(
                    self.h,
                    self.X,
                    self.y,
                    loss=_MARGIN_LOSS[self.loss.name],
                    degree=self.h.degree,
                )
        out_eval = out
        if self.test is not None:
            X_test, y_test = self.test
            with torch.no_grad():
                out_eval = self.h(X_test)
            test_loss, kind, value = data_metrics(self.loss, out_eval, y_test)
            row["test_loss"], row[f"test_{kind}"] = test_loss, value
        for b in self.baselines:
            row[b.column] = cosine(theta if b.kind == "parameters" else out_eval, b.vector)
        if self.kkt:
            row["kkt_epsilon_rel"] = math.nan
            if kkt_now and separates:
                report = kkt_residuals(
                    self.h, self.X, self.y, task=_TASK[self.loss.task], degree=self.h.degree
                )
                row["kkt_epsilon_rel"] = float(report.epsilon_rel)
        return row
