r"""Full-batch training of a homogeneous model: fixed-step GD or adaptive gradient flow."""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from implicitbias._errors import NotHomogeneousError
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
from implicitbias.dynamics.flow import INTEGRATORS, TABLEAUX, next_step_size, rk_step
from implicitbias.dynamics.history import STANDARD_COLUMNS, History, _CSVWriter
from implicitbias.dynamics.losses import LOSSES, Loss, loss_function
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.models.homogeneous import Homogeneous, homogeneity_degree

__all__ = ["train", "TrainResult", "METHODS", "STATUSES"]

METHODS = ("gd", "flow")
#: Values of :attr:`TrainResult.status`.
STATUSES = ("completed", "interrupted", "diverged", "step_size_too_small")
_FUNC = "train"
_CHECKPOINT_FORMAT = 1

Metrics = Callable[[Homogeneous, float], Mapping[str, float]]


@dataclass(frozen=True)
class TrainResult:
    """The outcome of :func:`train`.

    Attributes
    ----------
    model : Homogeneous
        The trained model (it shares its parameters with the module passed in, which is
        trained in place too).
    history : History
        One row per evaluation time reached (see :class:`History` for the columns).
    t_final : float
        Gradient-flow time reached.
    steps_equivalent : float
        ``t_final / lr``: the number of GD steps the run corresponds to.
    grad_evals : int
        Gradient evaluations of the training objective spent (flow: including rejected steps).
    wall_time : float
        Seconds spent training (over all resumed segments).
    interrupted : bool
        True when the run was stopped by ``KeyboardInterrupt``.
    status : str
        ``"completed"``, ``"interrupted"``, ``"diverged"`` (θ or the loss became non-finite) or
        ``"step_size_too_small"`` (flow: the step size underflowed).
    method : str
        ``"gd"`` or ``"flow"``.
    n_steps : int
        Accepted steps (GD: the number of GD steps).
    n_rejected : int
        Rejected steps (flow; 0 for GD).
    """

    model: Homogeneous
    history: History
    t_final: float
    steps_equivalent: float
    grad_evals: int
    wall_time: float
    interrupted: bool
    status: str
    method: str = "gd"
    n_steps: int = 0
    n_rejected: int = 0


class _Committed(NamedTuple):
    """A consistent state at a step boundary: resuming from it continues the same trajectory.

    ``eval_index`` is the number of schedule times already recorded (all ≤ t).
    """

    theta: torch.Tensor
    t: float
    n_steps: int
    n_rejected: int
    grad_evals: int
    eval_index: int
    history_len: int
    h: float  # flow: next step size
    error_prev: float  # flow: PI controller memory
    f: torch.Tensor | None  # flow: F(θ) (FSAL)
    out: torch.Tensor | None  # outputs at θ


class _Problem:
    """The objective L_λ(θ) = mean ℓ(f(θ; x_i), y_i) + (λ/2)‖θ‖² on a flat θ."""

    def __init__(self, h: Homogeneous, X: torch.Tensor, y: torch.Tensor, loss: Loss, lam: float):
        self.h = h
        self.X = X
        self.y = y
        self.loss = loss
        self.lam = lam
        self.n = X.shape[0]
        self.params = [p for n_, p in h.model.named_parameters() if p.requires_grad]
        self.sizes = [p.numel() for p in self.params]
        self.grad_evals = 0

    def load(self, theta: torch.Tensor) -> None:
        """Copy θ into the model's parameters."""
        with torch.no_grad():
            for p, v in zip(self.params, torch.split(theta, self.sizes)):
                p.copy_(v.view_as(p))

    def outputs(self, theta: torch.Tensor) -> torch.Tensor:
        self.load(theta)
        with torch.no_grad():
            return self.h(self.X)

    def gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇L_λ(θ), outputs at θ) — one forward and one backward pass."""
        self.load(theta)
        with torch.enable_grad():
            out = self.h(self.X)
            dl = self.loss.derivative(out.detach(), self.y).div_(self.n)
            grads = torch.autograd.grad(out, self.params, grad_outputs=dl, allow_unused=True)
        flat = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self.params)
            ]
        )
        self.grad_evals += 1
        if self.lam != 0.0:
            flat.add_(theta, alpha=self.lam)
        return flat, out.detach()

    def rhs(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F(θ) = −∇L_λ(θ) and the outputs."""
        g, out = self.gradient(theta)
        return g.neg_(), out

    # GD works on the parameters in place (no flat copies per step), like torch.optim.SGD
    def flat(self) -> torch.Tensor:
        """The current parameters as a new flat vector θ."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def current_outputs(self) -> torch.Tensor:
        with torch.no_grad():
            return self.h(self.X)

    def param_gradients(self) -> tuple[list[torch.Tensor], torch.Tensor]:
        """(per-parameter ∇L, outputs) at the current parameters."""
        with torch.enable_grad():
            out = self.h(self.X)
            dl = self.loss.derivative(out.detach(), self.y).div_(self.n)
            grads = torch.autograd.grad(out, self.params, grad_outputs=dl, allow_unused=True)
        self.grad_evals += 1
        return [
            g if g is not None else torch.zeros_like(p) for g, p in zip(grads, self.params)
        ], out.detach()

    def sgd_step(self, grads: list[torch.Tensor], lr: float) -> None:
        """θ ← θ − η(∇L + λθ), exactly torch.optim.SGD(lr=η, weight_decay=λ)."""
        with torch.no_grad():
            if self.lam != 0.0:
                torch._foreach_add_(grads, self.params, alpha=self.lam)
            torch._foreach_add_(self.params, grads, alpha=-lr)


class _DeferredInterrupt:
    """Turn SIGINT (Ctrl-C) into a flag checked at step boundaries, so that an interrupted run
    always stops in a consistent state; a second Ctrl-C interrupts at once. Only in the main
    thread (elsewhere Python does not deliver signals)."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> _DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # pragma: no cover - e.g. embedded interpreters
                self._installed = False
        return self

    def check(self) -> None:
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)


def _homogeneous_and_inputs(
    model: nn.Module, X: Any, degree: int | float | None
) -> tuple[Homogeneous, torch.Tensor, tuple[int, ...]]:
    """The model as a :class:`Homogeneous`, the validated inputs and the outputs' shape.

    The inputs are checked (and one forward pass is run on all of them) first, so that a bad
    ``X`` is reported as ``train``'s argument. The degree is ``degree`` when given, else the
    model's own, else measured on ``X``.
    """
    probe = Homogeneous(model, degree=1, _skip_check=True)
    X = probe._prepare_input(X, _FUNC)
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
        h = Homogeneous(model, degree=measured, _skip_check=True)
    return h, X, out_shape


def _probe_outputs(h: Homogeneous, X: torch.Tensor) -> tuple[int, ...]:
    """Shape of the model's outputs on the whole of ``X``; a forward that fails names ``X``."""
    try:
        with torch.no_grad():
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
    return tuple(out.shape)


def _check_labels(loss: Loss, y: Any, n: int, out_shape: tuple[int, ...], dtype, device):
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


def _atomic_save(obj: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _sidecar(path: Path) -> Path:
    """``run.csv`` → ``run.json`` (``run.json`` → ``run.config.json``: never the CSV itself)."""
    if path.suffix == ".json":
        return path.with_suffix(".config.json")
    return path.with_suffix(".json")


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: str = "logistic",
    weight_decay: float,
    method: str = "gd",
    lr: float,
    steps: float | None = None,
    t_max: float | None = None,
    eval_times: Sequence[float] | None = None,
    num_evals: int = 200,
    metrics: Metrics | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    max_step: float | None = None,
    integrator: str = "bs32",
    history_path: str | os.PathLike[str] | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    checkpoint_every: float | None = None,
    resume: bool = False,
    progress: bool | None = None,
    alpha: float | None = None,
    degree: int | float | None = None,
) -> TrainResult:
    r"""Train a homogeneous model by full-batch gradient descent or by its gradient flow.

    The objective and the two dynamics (THEORY §1):

    .. math::

        L_\lambda(\theta) = \frac1n \sum_{i=1}^n \ell\big(f(\theta; x_i), y_i\big)
            + \frac\lambda2 \|\theta\|^2,

        \text{gd:}\quad \theta_{k+1} = \theta_k - \eta\, \nabla L_\lambda(\theta_k),
            \qquad t = \eta k,

        \text{flow:}\quad \frac{d\theta}{dt} = -\nabla L_\lambda(\theta(t)).

    GD with weight decay λ is exactly ``torch.optim.SGD(lr=η, weight_decay=λ)`` on the mean
    loss. The flow is integrated by an adaptive embedded Runge–Kutta pair (Bogacki–Shampine
    3(2) by default, or Dormand–Prince 5(4)) with FSAL, a PI step-size controller and dense
    output, so evaluations land exactly on ``eval_times``; it takes large steps in the slow late
    phase, where GD needs millions of steps.

    ===============  ==================  ==================================================
    symbol           argument            meaning
    ===============  ==================  ==================================================
    f(θ; x)          ``model``           L-homogeneous model, θ ∈ R^p its flat parameters
    x_i, y_i         ``X``, ``y``        n training examples and labels
    ℓ                ``loss``            per-example loss (see :func:`loss_function`)
    λ                ``weight_decay``    weight decay ≥ 0
    η                ``lr``              GD step; flow: the unit of steps-equivalent t/η
    t                ``t_max``           gradient-flow time (``steps`` = t/η)
    α                ``alpha``           initialization scale; rescaled time t·λ/log α
    ===============  ==================  ==================================================

    Parameters
    ----------
    model : torch.nn.Module
        The model, trained in place; wrapped in :class:`~implicitbias.models.Homogeneous` if it
        is not one. Its degree L is ``degree`` when given, else the model's own ``degree``
        (the built-in models carry one), else estimated (and checked) on ``X`` with
        :func:`~implicitbias.models.homogeneity_degree`.
    X : torch.Tensor
        Inputs, shape ``(n, ...)`` (e.g. ``(n, d)``; index pairs ``(n, 2)`` for
        :class:`~implicitbias.models.MatrixFactorization`).
    y : torch.Tensor
        Labels, shape ``(n,)``: ±1 for ``"logistic"``/``"exponential"`` (``{0, 1}`` is *not*
        converted), reals for ``"squared"`` (``(n, C)`` for C outputs), integer classes
        ``0..C−1`` for ``"cross_entropy"`` (the model then returns ``(n, C)`` logits).
    loss : {"logistic", "exponential", "squared", "cross_entropy"}, default "logistic"
    weight_decay : float
        λ ≥ 0.
    method : {"gd", "flow"}, default "gd"
        Fixed-step gradient descent, or adaptive integration of the gradient flow.
    lr : float
        η > 0. GD: the step. Flow: the first trial step and the unit of ``step = t/η``.
    steps, t_max : float
        The horizon, as GD steps (``t_max = lr·steps``) or gradient-flow time: exactly one.
        GD runs ``round(t_max/lr)`` steps.
    eval_times : sequence of float, optional
        Gradient-flow times at which to record a history row (0 ≤ t ≤ t_max; GD rounds each to
        the nearest step). Default: ``log_schedule(K·η, num_evals, step=lr)`` with
        K = round(t_max/η) — 0, then log-spaced multiples of η from η to t_max, identical for
        both methods (the flow adds t_max itself when it is not a multiple of η).
    num_evals : int, default 200
        Size of the default schedule.
    metrics : callable, optional
        ``metrics(model, t) -> dict[str, float]`` called at every evaluation, with the model's
        parameters set to θ(t) (test accuracy, alignments, ...). Its keys become columns.
    rtol, atol : float, default 1e-3, 1e-6
        Flow only: local error tolerances, per coordinate
        ``|error_i| ≤ atol + rtol·|θ_i|`` (root-mean-square over coordinates).
    max_step : float, optional
        Flow only: the largest step in time units.
    integrator : {"bs32", "dopri5"}, default "bs32"
        Flow only: the Runge–Kutta pair (3 or 6 gradient evaluations per step).
    history_path : path, optional
        CSV file written incrementally (one flushed row per evaluation, so a killed process
        leaves a readable file) and a JSON sidecar with the same stem (``run.csv`` →
        ``run.json``) holding the configuration (with ``"status": "running"``) and, at the end,
        the outcome (status, t_final, grad_evals, wall_time, ...).
    checkpoint_path : path, optional
        ``torch.save`` file (tensors and Python primitives only: loadable with
        ``torch.load(path, weights_only=True)``) with θ, the integrator state, the schedule
        position and the history so far. Written atomically every ``checkpoint_every``, on
        ``KeyboardInterrupt`` and at the end.
    checkpoint_every : float, optional
        Gradient-flow time between checkpoints (the first step boundary past each multiple).
        Default: after every evaluation.
    resume : bool, default False
        Continue from ``checkpoint_path`` (which must come from the same configuration): the
        run follows the same trajectory, and gives the same history, as an uninterrupted one.
        If the file does not exist the run starts from the model's current parameters.
    progress : bool, optional
        Show a tqdm progress bar; default only when stderr is a terminal.
    alpha : float, optional
        α in the rescaled time t·λ/log α. Default: ‖θ(0)‖ (the initial-norm convention of the
        paper's experiments). ``rescaled_time`` is NaN when log α ≤ 0.
    degree : int or float, optional
        The homogeneity degree L of ``model`` (used by ``normalized_margin`` = q_min/‖θ‖^L).
        Default: see ``model``.

    Returns
    -------
    TrainResult
        On ``KeyboardInterrupt`` the result recorded so far, with ``interrupted=True``. A Ctrl-C
        (SIGINT, main thread) is deferred to the end of the current step or evaluation, so the
        run stops in a consistent state (and checkpoints it); a second Ctrl-C stops at once.
        A ``KeyboardInterrupt`` raised by ``metrics`` stops the run before that evaluation.

    Raises
    ------
    ValueError
        Bad configuration (negative λ, lr ≤ 0, both or neither of ``steps``/``t_max``,
        unknown loss or method, inputs the model does not accept, labels that do not fit the
        loss, ...), naming the argument.
    NotHomogeneousError
        The model carries no degree and is not positively homogeneous on ``X``.

    Notes
    -----
    History columns: see :class:`History`. Accuracy counts f = 0 as half correct; regression
    losses record ``train_mse`` instead of ``train_acc`` and no ``normalized_margin``
    (= q_min/‖θ‖^L). GD reuses the outputs of each gradient pass for the record at that step;
    the flow records interpolated states with one extra forward pass each.

    Determinism: on CPU the same inputs give the same history (apart from ``wall_time``);
    nothing random is drawn.

    Cost of the flow. The step size is set by accuracy early and by stability late: in the late
    (rich) phase the Bogacki–Shampine steps sit at the edge of the explicit method's stability
    region of the loss Hessian (eigenvalues of a few tens of λ on the sparse diagonal-net
    instance), not of the weight-decay term (λh ≈ 0.1 there), so the number of steps hardly
    depends on ``rtol`` or on λ: about 60–70 steps (≈ 200 gradient evaluations) for a whole
    grokking curve to 2t*, against 2 log(α)/(λη) GD steps. This is why the pair of lowest order
    (3 evaluations per step, real stability interval ≈ 2.5) is the default, and why an
    integrating factor for −λθ would not pay. Piecewise-smooth models (ReLU) are different:
    every change of an activation pattern is a kink of the vector field that error control
    resolves with small steps; there the flow costs about as much as GD at ``rtol=1e-3``
    (measured on a small ReLU MLP with cross-entropy) and ``rtol=1e-2`` is ~5× cheaper.

    Threads: for small problems (p and n·d up to ~10⁶) one intra-op thread
    (``torch.set_num_threads(1)``) is fastest; on a loaded machine extra threads can make each
    small operation wait for the scheduler (20× slower measured).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> from implicitbias.dynamics import train
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randint(0, 2, (32, 20), generator=g).double() * 2 - 1
    >>> y = torch.sign(X[:, 0] + X[:, 1] + X[:, 2])
    >>> net = ib.DiagonalNet(20, alpha=4.0, alpha_mode="norm", dtype=torch.float64)
    >>> res = train(net, X, y, weight_decay=0.01, lr=0.05, steps=500, num_evals=20)
    >>> res.status, float(res.history["step"][-1]), float(res.history["train_acc"][-1])
    ('completed', 500.0, 1.0)
    >>> flow = train(ib.DiagonalNet(20, alpha=4.0, alpha_mode="norm", dtype=torch.float64),
    ...              X, y, weight_decay=0.01, lr=0.05, steps=500, num_evals=20, method="flow")
    >>> flow.grad_evals < res.grad_evals
    True

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu, *Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking*, ICLR 2024, arXiv:2311.18817.
    E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, Springer
    1993, §II.4–II.6 (embedded pairs, step-size control, dense output).
    """
    # ------------------------------------------------------------------ validation
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

    ell = loss_function(loss)
    h, X, out_shape = _homogeneous_and_inputs(model, X, degree)
    n = X.shape[0]
    theta0 = h.theta()
    dtype, device = theta0.dtype, theta0.device
    y_t = _check_labels(ell, y, n, out_shape, dtype, device)

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
        times = np.unique(np.minimum(times, t_end))
    eval_steps: np.ndarray | None = None
    if method == "gd":
        eval_steps = np.unique(np.floor(times / lr + 0.5).astype(np.int64))
        times = eval_steps * lr

    config: dict[str, Any] = {
        "method": method,
        "loss": loss,
        "weight_decay": lam,
        "lr": lr,
        "t_max": t_end,
        "rtol": rtol,
        "atol": atol,
        "max_step": max_step,
        "integrator": integrator,
        "n": n,
        "p": int(theta0.numel()),
        "degree": float(h.degree),
        "dtype": str(dtype),
        "num_eval_times": len(times),
        # a cheap fingerprint of the data, so that resume refuses a checkpoint of other data
        "data_fingerprint": [
            float(X.double().sum()),
            float((X.double() ** 2).sum()),
            float(y_t.double().sum()),
            float(
                (
                    y_t.double().reshape(n, -1)
                    * torch.arange(1, n + 1, dtype=torch.float64, device=device)[:, None]
                ).sum()
            ),
        ],
    }

    ckpt_file = None if checkpoint_path is None else Path(checkpoint_path)
    hist_file = None if history_path is None else Path(history_path)

    # ------------------------------------------------------------------ state
    prob = _Problem(h, X, y_t, ell, lam)
    history = History()
    state: _Committed | None = None
    wall_before = 0.0
    if resume and ckpt_file is not None and ckpt_file.exists():
        ck = torch.load(ckpt_file, weights_only=True, map_location="cpu")
        saved = ck.get("config", {})
        diff = [
            f"{k}: {saved.get(k)!r} vs {v!r}"
            for k, v in config.items()
            if saved.get(k) != v and not (k == "max_step" and saved.get(k) is None and v is None)
        ]
        saved_times = np.asarray(ck.get("eval_times", []), dtype=np.float64)
        if saved_times.shape != times.shape or not np.array_equal(saved_times, times):
            diff.append("eval_times differ")
        if ck.get("format") != _CHECKPOINT_FORMAT:
            diff.append(f"format {ck.get('format')!r} vs {_CHECKPOINT_FORMAT}")
        if diff:
            raise fail(
                _FUNC,
                "checkpoint_path",
                "a checkpoint of the same configuration when resume=True",
                "one that differs in " + "; ".join(diff),
            )
        columns = list(ck["history_columns"])
        history = History(columns=columns or None)
        data = ck["history"]
        for i in range(len(data[columns[0]]) if columns else 0):
            history.append({c: data[c][i] for c in columns})
        alpha = float(ck["alpha"])
        wall_before = float(ck["wall_time"])
        theta = ck["theta"].to(dtype=dtype, device=device)
        state = _Committed(
            theta=theta,
            t=float(ck["t"]),
            n_steps=int(ck["n_steps"]),
            n_rejected=int(ck["n_rejected"]),
            grad_evals=int(ck["grad_evals"]),
            eval_index=int(ck["eval_index"]),
            history_len=len(history),
            h=float(ck["h"]),
            error_prev=float(ck["error_prev"]),
            f=None if ck.get("f") is None else ck["f"].to(dtype=dtype, device=device),
            out=None,
        )
        prob.grad_evals = state.grad_evals
    if alpha is None:
        alpha = float(theta0.norm())
    log_alpha = math.log(alpha) if alpha > 0 else float("nan")
    rescale = lam / log_alpha if log_alpha > 0 else float("nan")

    # ------------------------------------------------------------------ recording
    degree = float(h.degree)
    classification = ell.is_classification
    t_start = time.perf_counter()

    def wall() -> float:
        return wall_before + (time.perf_counter() - t_start)

    writer = _CSVWriter(hist_file, history) if hist_file is not None else None
    if hist_file is not None:
        side = {"config": config, "alpha": alpha, "status": "running"}
        _sidecar(hist_file).write_text(json.dumps(side, indent=2))

    def record(
        theta: torch.Tensor, out: torch.Tensor, t: float, grad_evals: int, step: float | None = None
    ) -> None:
        norm = float(theta.norm())
        values = ell.values(out, y_t)
        train_loss = float(values.mean())
        row: dict[str, float] = {
            "t": t,
            "step": t / lr if step is None else step,
            "rescaled_time": t * rescale,
            "grad_evals": float(grad_evals),
            "train_loss": train_loss,
            "objective": train_loss + 0.5 * lam * norm * norm,
        }
        if classification:
            row["train_acc"] = ell.accuracy(out, y_t)
        else:
            row["train_mse"] = ell.mse(out, y_t)
        row["theta_norm"] = norm
        if classification:
            q_min = float(ell.margins(out, y_t).min())
            row["normalized_margin"] = q_min / norm**degree if norm > 0 else float("nan")
        if metrics is not None:
            prob.load(theta)
            extra = metrics(h, t)
            if not isinstance(extra, Mapping):
                raise fail_type(_FUNC, "metrics", "a callable returning a dict of floats", extra)
            for k, v in extra.items():
                if k in STANDARD_COLUMNS:
                    raise fail(
                        _FUNC, "metrics", "keys other than the standard columns", f"key {k!r}"
                    )
                row[str(k)] = float(v)
        row["wall_time"] = wall()
        ordered = [c for c in STANDARD_COLUMNS if c in row] + [
            c for c in row if c not in STANDARD_COLUMNS
        ]
        row = {c: row[c] for c in ordered}  # the first row fixes the column order
        history.append(row)
        if writer is not None:
            writer.write(row, history.columns)

    def save_checkpoint(s: _Committed) -> None:
        if ckpt_file is None:
            return
        data = history.to_lists()
        cols = history.columns
        obj = {
            "format": _CHECKPOINT_FORMAT,
            "config": config,
            "eval_times": [float(v) for v in times],
            "theta": s.theta.detach().clone(),
            "t": s.t,
            "n_steps": s.n_steps,
            "n_rejected": s.n_rejected,
            "grad_evals": s.grad_evals,
            "eval_index": s.eval_index,
            "h": s.h,
            "error_prev": s.error_prev,
            "f": None if s.f is None else s.f.detach().clone(),
            "history_columns": cols,
            "history": {c: data[c][: s.history_len] for c in cols},
            "alpha": alpha,
            "wall_time": wall(),
        }
        _atomic_save(obj, ckpt_file)

    # ------------------------------------------------------------------ progress
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=float(t_end), unit="t", desc=f"train ({method})", leave=False)

    def tick(t: float) -> None:
        if bar is not None:
            bar.update(t - bar.n)

    status = "completed"
    committed: _Committed | None = state
    next_ckpt = [0.0]

    def maybe_checkpoint(s: _Committed, evaluated: bool) -> None:
        if ckpt_file is None:
            return
        if checkpoint_every is None:
            if evaluated:
                save_checkpoint(s)
        elif s.t >= next_ckpt[0]:
            save_checkpoint(s)
            next_ckpt[0] = (math.floor(s.t / checkpoint_every) + 1) * checkpoint_every

    if committed is not None and checkpoint_every is not None:
        next_ckpt[0] = (math.floor(committed.t / checkpoint_every) + 1) * checkpoint_every

    # ------------------------------------------------------------------ loops
    interrupt = _DeferredInterrupt()
    gd_phase = "top"
    theta_eval = theta0
    k = idx = 0
    try:
        interrupt.__enter__()
        if method == "gd":
            assert eval_steps is not None
            if committed is None:
                committed = _Committed(theta0.clone(), 0.0, 0, 0, 0, 0, 0, lr, 1.0, None, None)
            # GD updates the parameters in place; (params, k, idx) is the state, with one
            # history row per recorded evaluation (rows = idx), materialized as a flat θ only
            # at evaluations and checkpoints.
            prob.load(committed.theta)
            k = committed.n_steps
            idx = committed.eval_index
            n_eval = len(eval_steps)
            next_eval = int(eval_steps[idx]) if idx < n_eval else -1
            while True:
                gd_phase = "top"
                interrupt.check()
                if k < total_steps:
                    grads, out = prob.param_gradients()
                else:
                    grads, out = None, prob.current_outputs()
                if k == next_eval:
                    theta_eval = prob.flat()
                    if not bool(torch.isfinite(out).all()) or not bool(
                        torch.isfinite(theta_eval).all()
                    ):
                        status = "diverged"
                        break
                    gd_phase = "record"
                    record(theta_eval, out, k * lr, k, float(k))
                    if metrics is not None:
                        prob.load(theta_eval)  # in case the metrics moved the parameters
                    idx += 1
                    gd_phase = "top"
                    next_eval = int(eval_steps[idx]) if idx < n_eval else -1
                    tick(k * lr)
                    committed = _Committed(
                        theta_eval, k * lr, k, 0, k, idx, idx, lr, 1.0, None, None
                    )
                    maybe_checkpoint(committed, True)
                if grads is None:
                    break
                gd_phase = "update"
                prob.sgd_step(grads, lr)
                k += 1
                gd_phase = "top"
                if checkpoint_every is not None and k * lr >= next_ckpt[0]:
                    committed = _Committed(
                        prob.flat(), k * lr, k, 0, k, idx, idx, lr, 1.0, None, None
                    )
                    maybe_checkpoint(committed, False)
                if k % 1000 == 0 and not all(bool(torch.isfinite(p).all()) for p in prob.params):
                    status = "diverged"
                    break
            # the final state (also when the schedule does not end at the last step)
            committed = _Committed(prob.flat(), k * lr, k, 0, k, idx, idx, lr, 1.0, None, None)
        else:
            tab = TABLEAUX[integrator]
            if committed is None:
                f0, out0 = prob.rhs(theta0)
                committed = _Committed(
                    theta0.clone(), 0.0, 0, 0, prob.grad_evals, 0, 0, lr, 1.0, f0, out0
                )
            if committed.f is None:  # pragma: no cover - checkpoints of flow runs store F
                f0, out0 = prob.rhs(committed.theta)
                committed = committed._replace(f=f0, out=out0)
            s = committed
            n_eval = len(times)
            # evaluations at the current time (t = 0, or a resumed point)
            idx = s.eval_index
            while idx < n_eval and times[idx] <= s.t:
                out = s.out if s.out is not None else prob.outputs(s.theta)
                record(s.theta, out, float(times[idx]), s.grad_evals)
                idx += 1
            if idx != s.eval_index:
                s = s._replace(eval_index=idx, history_len=len(history))
                committed = s
                maybe_checkpoint(s, True)
            hstep = s.h
            while s.t < t_end:
                interrupt.check()
                if max_step is not None:
                    hstep = min(hstep, max_step)
                last = s.t + hstep >= t_end * (1 - 1e-12)
                if last:
                    hstep = t_end - s.t
                if hstep <= 1e-12 * max(1.0, abs(s.t)):
                    status = "step_size_too_small"
                    break
                att = rk_step(prob.rhs, tab, s.theta, s.f, hstep, rtol, atol)
                if att.error <= 1.0:
                    t_new = t_end if last else s.t + hstep
                    idx = s.eval_index
                    ge = prob.grad_evals
                    evaluated = False
                    while idx < n_eval and times[idx] <= t_new:
                        te = float(times[idx])
                        if te >= t_new:
                            th_e, out_e = att.theta_new, att.out_new
                        else:
                            th_e = att.dense(s.theta, (te - s.t) / hstep, tab)
                            out_e = prob.outputs(th_e)
                        if not bool(torch.isfinite(out_e).all()):
                            status = "diverged"
                            break
                        record(th_e, out_e, te, ge)
                        idx += 1
                        evaluated = True
                        tick(te)
                    if status != "completed":
                        break
                    h_next = next_step_size(hstep, att.error, s.error_prev, tab, accepted=True)
                    s = _Committed(
                        att.theta_new,
                        t_new,
                        s.n_steps + 1,
                        s.n_rejected,
                        ge,
                        idx,
                        len(history),
                        h_next,
                        max(att.error, 1e-4),
                        att.f_new,
                        att.out_new,
                    )
                    committed = s
                    maybe_checkpoint(s, evaluated)
                    hstep = h_next
                    if not bool(torch.isfinite(att.theta_new).all()):
                        status = "diverged"
                        break
                else:
                    hstep = next_step_size(hstep, att.error, s.error_prev, tab, accepted=False)
                    s = s._replace(n_rejected=s.n_rejected + 1, grad_evals=prob.grad_evals, h=hstep)
                    committed = s
    except KeyboardInterrupt:
        status = "interrupted"
        if method == "gd" and gd_phase != "update":
            # the live state is consistent: θ_k (before the metrics of step k ran, if they
            # raised), k steps, idx evaluations (rows beyond idx are dropped from checkpoints)
            theta_now = theta_eval if gd_phase == "record" else prob.flat()
            committed = _Committed(theta_now, k * lr, k, 0, k, idx, idx, lr, 1.0, None, None)
    finally:
        interrupt.__exit__()
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()

    assert committed is not None
    if status == "diverged":
        warnings.warn(
            f"train: the {method} run diverged (non-finite parameters or outputs) at "
            f"t = {committed.t:g}; lower 'lr' (GD) or tighten 'rtol' (flow).",
            RuntimeWarning,
            stacklevel=2,
        )
    save_checkpoint(committed)
    prob.load(committed.theta)
    elapsed = wall()
    t_final = committed.t
    result = TrainResult(
        model=h,
        history=history,
        t_final=t_final,
        steps_equivalent=t_final / lr,
        grad_evals=prob.grad_evals,
        wall_time=elapsed,
        interrupted=status == "interrupted",
        status=status,
        method=method,
        n_steps=committed.n_steps,
        n_rejected=committed.n_rejected,
    )
    if hist_file is not None:
        side = {
            "config": config,
            "alpha": alpha,
            "status": status,
            "t_final": t_final,
            "steps_equivalent": t_final / lr,
            "grad_evals": prob.grad_evals,
            "wall_time": elapsed,
            "n_steps": committed.n_steps,
            "n_rejected": committed.n_rejected,
        }
        _sidecar(hist_file).write_text(json.dumps(side, indent=2))
    return result
