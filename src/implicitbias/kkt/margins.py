r"""Margins of a homogeneous model on labelled data: normalized and smoothed (THEORY §3).

For binary labels :math:`y_i \in \{\pm 1\}` the margins are :math:`q_i(\theta) = y_i f(\theta;
x_i)`; for ``C`` logits and integer labels they are
:math:`q_i = f_{y_i}(\theta; x_i) - \max_{j \ne y_i} f_j(\theta; x_i)`, with the pairwise
margins :math:`q_{ij} = f_{y_i} - f_j`. Both are ``L``-homogeneous in θ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from scipy.special import logsumexp
from torch import nn

from implicitbias._validation import (
    as_class_labels,
    as_float_array,
    as_pm1_labels,
    check_choice,
    check_positive,
    check_same_length,
    fail,
    fail_type,
)
from implicitbias.models import prepare_input
from implicitbias.models.homogeneous import Homogeneous

__all__ = ["normalized_margin", "smoothed_margin"]

#: The ``task=`` option of the KKT check (also the task a :class:`_Setup` resolved).
TaskOption = Literal["classification", "regression", "multiclass"]
#: The loss of a smoothed margin.
MarginLoss = Literal["exponential", "logistic"]
_TASKS = ("classification", "regression", "multiclass")


@dataclass(frozen=True)
class _Setup:
    """A validated (model, data) pair: the wrapped model, labels, outputs and parameters."""

    h: Homogeneous
    X: torch.Tensor
    y: np.ndarray  # ±1 floats, int classes, or float targets
    task: TaskOption
    n: int
    C: int
    L: float
    theta: torch.Tensor
    theta_norm: float
    outputs: np.ndarray  # float64, (n,) or (n, C)


def _wrap(model: Any, X: torch.Tensor, func: str, degree: Any) -> Homogeneous:
    if degree is not None:
        degree = check_positive(degree, func, "degree")
        if degree == round(degree):
            degree = int(round(degree))
    if isinstance(model, Homogeneous):
        if degree is None or degree == model.degree:
            return model
        return Homogeneous(model.model, degree=degree)
    if not isinstance(model, nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    if degree is not None:
        return Homogeneous(model, degree=degree)
    if not isinstance(X, torch.Tensor):
        raise fail_type(func, "X", "a torch.Tensor of inputs", X)
    prepare_input(model, X, func=func)  # device, NaN
    # Declared degree (built-in models) is verified, an unknown one estimated, on a few inputs;
    # a model that is not homogeneous raises NotHomogeneousError here.
    return Homogeneous(model, example_input=X[: min(int(X.shape[0]), 256)])


def _outputs(h: Homogeneous, theta: torch.Tensor, X: torch.Tensor, chunk: int = 4096) -> np.ndarray:
    blocks = []
    with torch.no_grad():
        for start in range(0, X.shape[0], chunk):
            out = h.function(theta, X[start : start + chunk])
            blocks.append(out.detach().cpu().to(torch.float64).numpy())
    return np.concatenate(blocks, axis=0)


def _prepare(
    model: Any, X: Any, y: Any, func: str, *, task: TaskOption | None, degree: Any = None
) -> _Setup:
    if task is not None:
        check_choice(task, func, "task", _TASKS)
    if not isinstance(X, torch.Tensor):
        raise fail_type(func, "X", "a torch.Tensor of inputs", X)
    if y is None or (not hasattr(y, "__len__")):
        raise fail_type(func, "y", "an array of labels or targets", y)
    n = check_same_length(func, X=X, y=y)
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        bad = int(X.numel() - int(torch.isfinite(X).sum()))
        raise fail(func, "X", "finite (no NaN or inf)", f"{bad} non-finite entries")
    h = _wrap(model, X, func, degree)
    X = h.prepare_input(X, func=func)
    theta = h.theta()
    out = _outputs(h, theta, X)
    C = 1 if out.ndim == 1 else int(out.shape[1])
    if C == 1 and out.ndim == 2:
        out = out[:, 0]
    if C > 1:
        if task not in (None, "multiclass"):
            raise fail(
                func,
                "task",
                "'multiclass' for a model with several outputs",
                f"task={task!r} for a model with {C} outputs",
            )
        task = "multiclass"
        labels = as_class_labels(y, func, "y", n=n, n_classes=C)
    else:
        if task == "multiclass":
            raise fail(
                func,
                "task",
                "'classification' or 'regression' for a one-output model",
                "'multiclass'",
            )
        if task is None:
            values = np.unique(as_float_array(y, func, "y", ndim=(1, 2)))
            task = "classification" if np.all(np.isin(values, (-1.0, 1.0))) else "regression"
            if task == "regression" and np.all(np.isin(values, (0.0, 1.0))):
                # {0, 1} labels are not converted silently; regression must be asked for.
                raise fail(
                    func,
                    "y",
                    "a vector of labels in {-1, +1} (or real targets with task='regression')",
                    f"values {values.tolist()}",
                    "Convert {0, 1} labels with y = 2*y - 1, or pass task='regression'.",
                )
        if task == "classification":
            labels = as_pm1_labels(y, func, "y", n=n)
        else:
            labels = as_float_array(y, func, "y", ndim=(1, 2))
            if labels.ndim == 2:
                if labels.shape[1] != 1:
                    raise fail(func, "y", "a vector of targets", f"shape {labels.shape}")
                labels = labels[:, 0]
    L = float(h.degree)
    return _Setup(
        h=h,
        X=X,
        y=labels,
        task=task,
        n=n,
        C=C,
        L=L,
        theta=theta,
        theta_norm=float(theta.detach().to(torch.float64).norm()),
        outputs=out,
    )


def _pair_margins(out: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``q_ij = f_{y_i} − f_j``, shape ``(n, C)``, with ``+inf`` at ``j = y_i``."""
    rows = np.arange(out.shape[0])
    q = out[rows, labels][:, None] - out
    q[rows, labels] = np.inf
    return q


def _example_margins(s: _Setup) -> np.ndarray:
    if s.task == "multiclass":
        return _pair_margins(s.outputs, s.y).min(axis=1)
    return s.y * s.outputs


def _check_separating(q: np.ndarray, func: str) -> float:
    q_min = float(q.min())
    if not q_min > 0:
        bad = int(np.count_nonzero(q <= 0))
        raise fail(
            func,
            "model",
            "a model that classifies every training point correctly (q_i = y_i f(θ; x_i) > 0), "
            "since the margin problem min ½‖θ‖² s.t. q_i(θ) ≥ 1 is only posed at a separating θ",
            f"{bad} of {q.shape[0]} points misclassified or on the boundary "
            f"(min margin {q_min:.4g})",
            "Train longer, or check that y matches the model's output convention.",
        )
    return q_min


def _log_softplus(a: np.ndarray) -> np.ndarray:
    """``log(log(1 + e^a))``, accurate for very negative ``a``."""
    a = np.asarray(a, dtype=np.float64)
    out = np.empty_like(a)
    tiny = a < -30  # log1p(t)/t = 1 − t/2 + O(t²), and t may underflow to 0
    mid = (a < 0) & ~tiny
    big = a >= 0
    out[tiny] = a[tiny] - 0.5 * np.exp(a[tiny])
    t = np.exp(a[mid])
    out[mid] = a[mid] + np.log(np.log1p(t) / t)
    out[big] = np.log(np.logaddexp(0.0, a[big]))
    return out


def _logistic_inverse_from_log(log_v: float) -> float:
    """``ℓ⁻¹(v) = −log(e^v − 1)`` for the logistic loss, from ``log v``."""
    v = float(np.exp(log_v))
    if v < 1e-6:
        return -(log_v + np.log1p(v / 2 + v * v / 6))
    if v > 30:
        return -(v + np.log1p(-np.exp(-v)))
    return -float(np.log(np.expm1(v)))


def _smoothed(s: _Setup, loss: MarginLoss) -> float:
    """Smoothed margin with the summed loss, ``ℓ⁻¹(Σ ℓ) / ‖θ‖^L`` (see smoothed_margin)."""
    if s.task == "multiclass":
        q = _pair_margins(s.outputs, s.y)
        mask = np.isfinite(q)
        if loss == "exponential":
            value = -float(logsumexp(-q[mask]))
        else:  # cross-entropy: Σ_i log(1 + Σ_{j≠y_i} e^{−q_ij}), inverted with the logistic ℓ
            a = logsumexp(np.where(mask, -q, -np.inf), axis=1)
            value = _logistic_inverse_from_log(float(logsumexp(_log_softplus(a))))
    else:
        q = s.y * s.outputs
        if loss == "exponential":
            value = -float(logsumexp(-q))
        else:
            value = _logistic_inverse_from_log(float(logsumexp(_log_softplus(-q))))
    return value / s.theta_norm**s.L


def normalized_margin(
    model: nn.Module, X: torch.Tensor, y: Any, *, degree: int | float | None = None
) -> float:
    r"""Normalized margin :math:`\bar\gamma(\theta) = q_{\min}(\theta) / \lVert\theta\rVert^L`.

    .. math::

        \bar\gamma(\theta) = \frac{\min_i q_i(\theta)}{\lVert \theta \rVert_2^{L}},
        \qquad q_i = y_i f(\theta; x_i)
        \ \text{ or }\ q_i = f_{y_i}(\theta; x_i) - \max_{j \ne y_i} f_j(\theta; x_i).

    Scale-invariant in θ for an ``L``-homogeneous model; maximizing it is equivalent to the
    margin problem ``min ½‖θ‖² s.t. q_i(θ) ≥ 1`` (whose optimum is ``½ γ̄*^{−2/L}``).

    ==========================  ======================================
    math                        argument
    ==========================  ======================================
    :math:`f(\theta; x)`, L     ``model`` (its degree), current parameters
    :math:`x_i`                 ``X[i]``, shape ``(n, ...)``
    :math:`y_i`                 ``y[i]``: ±1 (one output) or ``0..C−1`` (``C`` outputs)
    ==========================  ======================================

    Parameters
    ----------
    model : torch.nn.Module
        An ``L``-homogeneous model (wrapped with :class:`Homogeneous`; an unknown degree is
        estimated on ``X``).
    X : torch.Tensor
        Inputs, shape ``(n, ...)``.
    y : array_like of shape (n,)
        Labels in {−1, +1} for a one-output model, integers in ``0..C−1`` for ``C`` logits.
    degree : int or float, optional
        Override the homogeneity degree ``L``.

    Returns
    -------
    float
        ``γ̄``; negative when some point is misclassified.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(2, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.u.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64))
    ...     _ = net.v.zero_()
    >>> X = torch.tensor([[1.0, 0.0], [-2.0, 1.0]], dtype=torch.float64)
    >>> ib.normalized_margin(net, X, [1, -1])
    1.0

    References
    ----------
    K. Lyu, J. Li, Gradient Descent Maximizes the Margin of Homogeneous Neural Networks,
    ICLR 2020, arXiv:1906.05890.
    """
    s = _prepare(model, X, y, "normalized_margin", task=None, degree=degree)
    if s.task == "regression":
        raise fail(
            "normalized_margin",
            "y",
            "classification labels in {-1, +1} (or integer classes for a multi-output model)",
            "real-valued targets",
        )
    return float(_example_margins(s).min()) / s.theta_norm**s.L


def smoothed_margin(
    model: nn.Module,
    X: torch.Tensor,
    y: Any,
    *,
    loss: MarginLoss = "exponential",
    degree: int | float | None = None,
) -> float:
    r"""Smoothed margin :math:`\tilde\gamma(\theta) = \ell^{-1}(\sum_i \ell(q_i)) / \lVert\theta\rVert^L`.

    The loss is **summed**, not averaged (Lyu & Li 2020). For the exponential loss, computed
    stably with ``logsumexp``:

    .. math::

        \tilde\gamma(\theta) = \frac{-\log \sum_i e^{-q_i(\theta)}}{\lVert\theta\rVert^L},
        \qquad \bar\gamma - \frac{\log n}{\lVert\theta\rVert^L} \le \tilde\gamma \le \bar\gamma.

    For the logistic loss :math:`\ell(q) = \log(1 + e^{-q})`,
    :math:`\ell^{-1}(v) = -\log(e^{v} - 1)`, evaluated from :math:`\log v` so that large
    margins do not underflow. For ``C`` logits the sum runs over the pairwise margins
    :math:`q_{ij} = f_{y_i} - f_j`, ``j ≠ y_i`` (exponential), or over the per-example
    cross-entropies :math:`\log(1 + \sum_{j \ne y_i} e^{-q_{ij}})` (``loss="logistic"``,
    inverted with the logistic ℓ); then ``log n`` above becomes ``log(n(C − 1))``.

    Parameters
    ----------
    model : torch.nn.Module
        An ``L``-homogeneous model.
    X : torch.Tensor
        Inputs, shape ``(n, ...)``.
    y : array_like of shape (n,)
        Labels in {−1, +1}, or integer classes ``0..C−1`` for ``C`` logits.
    loss : {"exponential", "logistic"}, default "exponential"
        The loss ℓ of the smoothing.
    degree : int or float, optional
        Override the homogeneity degree ``L``.

    Returns
    -------
    float

    Examples
    --------
    >>> import math, torch, implicitbias as ib
    >>> net = ib.DiagonalNet(2, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.u.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64))
    ...     _ = net.v.zero_()
    >>> X = torch.tensor([[1.0, 0.0], [-1.0, 1.0]], dtype=torch.float64)
    >>> round(ib.smoothed_margin(net, X, [1, -1]), 12) == round(1 - math.log(2), 12)
    True

    References
    ----------
    K. Lyu, J. Li, Gradient Descent Maximizes the Margin of Homogeneous Neural Networks,
    ICLR 2020, arXiv:1906.05890, Section 4.1.
    """
    func = "smoothed_margin"
    check_choice(loss, func, "loss", ("exponential", "logistic"))
    s = _prepare(model, X, y, func, task=None, degree=degree)
    if s.task == "regression":
        raise fail(
            func,
            "y",
            "classification labels in {-1, +1} (or integer classes for a multi-output model)",
            "real-valued targets",
        )
    return _smoothed(s, loss)
