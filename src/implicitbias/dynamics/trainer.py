r"""Full-batch training of a homogeneous model: fixed-step GD or adaptive gradient flow.

:func:`train` is a short composition of parts, one private module each:

=====================  =========================================================================
module                 part
=====================  =========================================================================
``_options``           the options, checked and converted (output paths refused up front)
``_setup``             the problem (model and degree, inputs, labels, schedule, configuration and
                       its fingerprint) and the start point, fresh or resumed from a checkpoint
``_checkpoint``        output paths, atomic writes, the fingerprint, checkpoint save / load, and
                       when a run checkpoints (``Checkpointer``)
``_recorder``          history rows with the user's metrics, the CSV and its JSON sidecar, the
                       wall clock, the progress bar
``_metrics``           the columns of a row, computed by the code :class:`Monitor` uses in any
                       other training loop (one implementation of every metric)
``_interrupt``         Ctrl-C deferred to step boundaries
``_run``               what the loops share, the dispatch to the method's loop, clean-up on error
``_gd_loop``           ``method="gd"``
``_flow_loop``         ``method="flow"``, on the Runge–Kutta steps of :mod:`.flow`
``_problem``           the objective on a flat θ, the committed (resumable) state, the GD stash
=====================  =========================================================================

A new method is a loop module with ``run_<method>(run, start, ...) -> (status, last committed
state)``, its name in :data:`Method` and a branch in ``Run.execute``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import get_args

import numpy as np
import torch
from torch import nn

from implicitbias._progress import check_progress
from implicitbias._results import ResultRecord
from implicitbias._status import renamed
from implicitbias.dynamics._options import METHODS, Method, check_options
from implicitbias.dynamics._run import Run, TrainStatus
from implicitbias.dynamics._setup import set_up, starting_point
from implicitbias.dynamics.flow import IntegratorName
from implicitbias.dynamics.history import History
from implicitbias.dynamics.losses import LossName
from implicitbias.models.homogeneous import Homogeneous

__all__ = ["train", "TrainResult", "METHODS", "STATUSES"]

#: Values of :attr:`TrainResult.status` (:data:`TrainStatus`).
STATUSES: tuple[TrainStatus, ...] = get_args(TrainStatus)
_FUNC = "train"

Metrics = Callable[[Homogeneous, float], Mapping[str, float]]


@dataclass(frozen=True)
class TrainResult(ResultRecord):
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
    status : {"completed", "interrupted", "diverged", "step_size_too_small"}
        ``"completed"``, ``"interrupted"``, ``"diverged"`` (θ or the loss became non-finite) or
        ``"step_size_too_small"`` (flow: the step size underflowed).
    method : {"gd", "flow"}
        The method that ran.
    iterations : int
        Accepted steps (GD: the number of GD steps).
    n_rejected : int
        Rejected steps (flow; 0 for GD).
    resumed_from : float or None
        Gradient-flow time of the checkpoint the run resumed from (``resume=True`` and the
        checkpoint existed); None for a fresh start.
    loss : {"logistic", "exponential", "squared", "cross_entropy"}
        The loss ℓ trained on.
    weight_decay : float
        λ.
    lr : float
        η: the GD step; for the flow the first trial step and the unit of ``steps_equivalent``.
    degree : float
        The homogeneity degree L the run used (for ``normalized_margin`` = q_min/‖θ‖^L): the
        ``degree`` argument, the model's own, or the measured one.
    n_steps : int
        Deprecated alias of ``iterations`` (since 0.2, removed in 0.3).

    Examples
    --------
    What a run was trained with travels with it, e.g. to compare runs or to continue one:

    >>> import torch, implicitbias as ib
    >>> X = torch.tensor([[1.0, 2.0], [-1.0, 0.5]], dtype=torch.float64)
    >>> res = ib.train(ib.DiagonalNet(2, alpha=1.0, dtype=torch.float64), X,
    ...                torch.tensor([1.0, -1.0], dtype=torch.float64),
    ...                weight_decay=0.01, lr=0.1, steps=20, num_evals=2)
    >>> res.method, res.loss, res.weight_decay, res.lr, res.degree, res.iterations
    ('gd', 'logistic', 0.01, 0.1, 2.0, 20)
    """

    model: Homogeneous
    history: History
    t_final: float
    steps_equivalent: float
    grad_evals: int
    wall_time: float
    interrupted: bool
    status: TrainStatus
    method: Method = "gd"
    iterations: int = 0
    n_rejected: int = 0
    resumed_from: float | None = None
    loss: LossName = field(kw_only=True)
    weight_decay: float = field(kw_only=True)
    lr: float = field(kw_only=True)
    degree: float = field(kw_only=True)

    n_steps = renamed("iterations")


def train(
    model: nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    loss: LossName = "logistic",
    weight_decay: float,
    method: Method = "gd",
    lr: float,
    steps: float | None = None,
    t_max: float | None = None,
    eval_times: Sequence[float] | np.ndarray | None = None,
    num_evals: int = 200,
    metrics: Metrics | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-6,
    max_step: float | None = None,
    integrator: IntegratorName = "bs32",
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
    eval_times : sequence or array of float, optional
        Gradient-flow times at which to record a history row, strictly increasing, in
        [0, t_max] (GD rounds each to the nearest step, and times that round to one step give
        one row). Default: ``log_schedule(K·η, num_evals, step=lr)`` with
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
        the outcome (status, t_final, grad_evals, wall_time, ...; ``"failed"`` when an exception
        escaped). On resume the CSV is rewritten (atomically) from the checkpoint's history.
    checkpoint_path : path, optional
        ``torch.save`` file (tensors and Python primitives only: loadable with
        ``torch.load(path, weights_only=True)``) with θ, the integrator state, the schedule
        position, the history so far and a SHA-256 fingerprint of the run. Written atomically
        (a temporary file renamed over it) every ``checkpoint_every``, on ``KeyboardInterrupt``
        and at the end, and only ever with finite parameters: a diverged run leaves the last
        good checkpoint as it was. It must be another file than ``history_path`` and its sidecar
        (any spelling of the same file, a symbolic or hard link included, is refused before
        anything is written).
    checkpoint_every : float, optional
        Gradient-flow time between checkpoints (the first step boundary past each multiple).
        Default: after every evaluation.
    resume : bool, default False
        Continue from ``checkpoint_path``: the run follows the same trajectory, and gives the
        same history and final parameters, as an uninterrupted one. The checkpoint must carry
        the fingerprint of this call — a SHA-256 hash of the bytes, dtypes and shapes of ``X``
        and ``y``, of the configuration (loss, λ, method, η, horizon, schedule, integrator,
        tolerances, degree, ``alpha``) and of the model's architecture (parameter names and
        shapes, ``repr``, the names of its hooks) — else an error names ``checkpoint_path``
        and what differs (a permuted or edited dataset does not resume). If the file does not
        exist the run starts from the model's current parameters (``TrainResult.resumed_from``
        is then None).
    progress : bool, optional
        Progress in gradient-flow time t: by default a tqdm bar when stderr is a terminal,
        else an ``INFO`` line of the ``"implicitbias.progress"`` logger every ~10 s (shown
        where logging is configured); ``True`` a bar, ``False`` nothing.
    alpha : float, optional
        α in the rescaled time t·λ/log α. Default: ‖θ(0)‖ (the initial-norm convention of the
        paper's experiments). ``rescaled_time`` is NaN when log α ≤ 0.
    degree : int or float, optional
        The homogeneity degree L of ``model`` (used by ``normalized_margin`` = q_min/‖θ‖^L).
        Default: see ``model``.

    Returns
    -------
    TrainResult
        The trained model, its history and counters, and what it was trained with (``loss``,
        ``weight_decay``, ``lr``, ``method``, ``degree``).
        On ``KeyboardInterrupt`` the result recorded so far, with ``interrupted=True``. A Ctrl-C
        (SIGINT, main thread) is deferred to the end of the current step or evaluation, so the
        run stops in a consistent state (and checkpoints it); a second Ctrl-C stops at once.
        A ``KeyboardInterrupt`` raised by ``metrics`` stops the run before that evaluation.
        A run whose parameters, outputs or loss become non-finite (NaN or inf) stops at the
        step where that happens, with ``status="diverged"`` and a ``RuntimeWarning``; the model
        is left at the last finite state (GD: θ_{k−1} when θ_k is the first non-finite iterate;
        flow: the last accepted step) and the history holds the evaluations up to it.

    Raises
    ------
    ValueError
        Bad configuration (negative λ, lr ≤ 0, both or neither of ``steps``/``t_max``,
        unknown loss or method, inputs the model does not accept, labels that do not fit the
        loss, unsorted ``eval_times``, a model with non-finite parameters or outputs, two
        outputs on one file, a checkpoint of another run with ``resume=True``, ...), naming the
        argument.
    NotHomogeneousError
        The model carries no degree and is not positively homogeneous on ``X``.

    Notes
    -----
    History columns: see :class:`History`. Accuracy counts f = 0 as half correct; regression
    losses record ``train_mse`` instead of ``train_acc`` and no ``normalized_margin``
    (= q_min/‖θ‖^L). GD reuses the outputs of each gradient pass for the record at that step;
    the flow records interpolated states with one extra forward pass each. The columns are
    computed by the code of :class:`Monitor`, which records the same history inside your own
    training loop.

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

    GPU: between two evaluations the GD loop never waits for the device. Its divergence check
    stays on the device and is read every 64 steps (and before every record, checkpoint, the
    end and a Ctrl-C); a window that went non-finite is replayed with the check read every
    step, so the run stops at the same step with the same parameters (bit for bit where the
    kernels are deterministic, and the forward is a function of θ and the data: no dropout or
    batch-norm statistics). On the CPU, where a read costs nothing, it is read every step.

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
    progress = check_progress(progress, "train")
    opts = check_options(
        model=model,
        degree=degree,
        history_path=history_path,
        checkpoint_path=checkpoint_path,
        loss=loss,
        method=method,
        integrator=integrator,
        weight_decay=weight_decay,
        lr=lr,
        steps=steps,
        t_max=t_max,
        num_evals=num_evals,
        rtol=rtol,
        atol=atol,
        max_step=max_step,
        checkpoint_every=checkpoint_every,
        metrics=metrics,
        resume=resume,
        alpha=alpha,
    )
    spec = set_up(model, X, y, opts, eval_times)
    start = starting_point(spec, opts.checkpoint_file if resume else None)
    prob = spec.problem

    run = Run.open(spec, start, metrics=metrics, progress=progress)
    status, last = run.execute(start.state, spec)
    if status == "diverged":
        warnings.warn(
            f"train: the {opts.method} run diverged (non-finite parameters, outputs or loss) "
            f"after t = {last.t:g}; the model is left at that last finite state. Lower 'lr' "
            f"(GD) or tighten 'rtol' (flow).",
            RuntimeWarning,
            stacklevel=2,
        )
    else:
        run.checkpoints.save(last)  # a diverged run leaves the last good checkpoint as it is
    prob.load(last.theta)

    wall_time = run.recorder.wall()
    result = TrainResult(
        model=prob.h,
        history=start.history,
        t_final=last.t,
        steps_equivalent=last.t / opts.lr,
        grad_evals=prob.grad_evals,
        wall_time=wall_time,
        interrupted=status == "interrupted",
        status=status,
        method=opts.method,
        iterations=last.n_steps,
        n_rejected=last.n_rejected,
        resumed_from=start.resumed_from,
        loss=opts.loss,
        weight_decay=opts.lam,
        lr=opts.lr,
        degree=float(prob.h.degree),
    )
    run.recorder.sidecar(
        status,
        t_final=last.t,
        steps_equivalent=last.t / opts.lr,
        grad_evals=prob.grad_evals,
        wall_time=wall_time,
        n_steps=last.n_steps,
        n_rejected=last.n_rejected,
        resumed_from=start.resumed_from,
    )
    return result
