r"""A monitor for any training loop: the theory's quantities on a log-spaced schedule, recorded
into a :class:`History` and forwarded to CSV/JSON files, TensorBoard or any callable."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from implicitbias._modules import untouched
from implicitbias._validation import (
    check_bool,
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.dynamics._clock import Clock
from implicitbias.dynamics._inputs import check_labels, homogeneous_and_inputs, probe_outputs
from implicitbias.dynamics._metrics import Metrics, StateMetrics, append_row, user_metrics
from implicitbias.dynamics._monitor_parts import (
    Extras,
    ParameterSignature,
    check_baselines,
    kkt_indices,
    schedule,
)
from implicitbias.dynamics._sinks import Sink, make_sinks
from implicitbias.dynamics.history import STANDARD_COLUMNS, History
from implicitbias.dynamics.losses import LOSSES, LossName, loss_function

__all__ = ["Monitor"]

_FUNC = "Monitor"


class Monitor:
    r"""Record the theory's quantities of a model inside any training loop.

    Add it to your own loop (plain PyTorch, Lightning, another trainer): ``mon(step, lr)``
    after each optimizer step, or ``mon.step(t)`` with the gradient-flow time t. On the
    points of a log-spaced schedule (dense early, sparse late: :func:`log_schedule`) it
    evaluates the model on the training set (and a test set, baselines, the KKT check) and
    appends one row to :attr:`history`; between them a call costs a comparison.

    .. math::

        t = \sum_{k} \eta_k \quad (\text{GD: } t = \eta\,k), \qquad
        \text{rescaled time } \frac{t\,\lambda}{\log\alpha}, \qquad
        \bar\gamma = \frac{\min_i q_i}{\lVert\theta\rVert^L}, \qquad
        \cos(a, b) = \frac{\langle a, b\rangle}{\lVert a\rVert\,\lVert b\rVert}.

    The transition from the kernel to the rich regime sits near rescaled time 1
    (t* = log(α)/λ, THEORY §1). :func:`train` records its history with the same code
    (the standard columns below), so a loop of ``torch.optim.SGD(lr=η, weight_decay=λ)`` steps
    with ``mon(k, η)`` gives the history ``train(..., method="gd")`` gives, to rounding.

    ===============  ===================  =================================================
    symbol           argument             meaning
    ===============  ===================  =================================================
    f(θ; x), L       ``model``            L-homogeneous model at its current parameters θ
    x_i, y_i         ``X``, ``y``         the n training examples and labels
    ℓ                ``loss``             per-example loss, mean over the training set
    λ                ``weight_decay``     the weight decay of the objective L + (λ/2)‖θ‖²
    η                ``lr``               the GD step (schedule on multiples of η)
    α                ``alpha``            initialization scale of the rescaled time
    ===============  ===================  =================================================

    Parameters
    ----------
    model : torch.nn.Module
        The model being trained (read at each record, never changed). Its degree L is
        ``degree`` when given, else the model's own ``degree``, else measured on ``X``.
    X : torch.Tensor
        Training inputs, shape ``(n, ...)`` (cast to the parameters' dtype).
    y : array_like
        Labels, shape ``(n,)``: ±1 for ``"logistic"``/``"exponential"``, classes ``0..C−1``
        for ``"cross_entropy"``, reals (``(n,)`` or ``(n, C)``) for ``"squared"``.
    loss : {"logistic", "exponential", "squared", "cross_entropy"}, default "logistic"
        The loss ℓ of ``train_loss``, ``objective`` and ``test_loss``.
    weight_decay : float
        λ ≥ 0 (``torch.optim.SGD``'s ``weight_decay`` is this λ).
    lr : float, optional
        η > 0: the schedule's times are multiples of η (:func:`train`'s GD schedule), and
        ``mon.step(t)`` records ``step = t/η``.
    steps, t_max : float, optional
        The horizon, in steps of ``lr`` or in gradient-flow time (at most one of them). The
        default schedule is ``log_schedule(t_max, num_evals, step=lr)``: 0, then log-spaced
        times up to the horizon.
    eval_times : array_like of float, optional
        Explicit recording times instead, ≥ 0 and strictly increasing (with ``lr``: rounded
        to the nearest step, as :func:`train`'s GD does).
    num_evals : int, default 200
        Size of the default schedule.
    alpha : float, optional
        α of the rescaled time. Default: ‖θ‖ when the monitor is created (create it before
        training: the initial-norm convention of :func:`train`). ``rescaled_time`` is NaN
        when log α ≤ 0.
    degree : int or float, optional
        The homogeneity degree L (see ``model``).
    X_test, y_test : optional
        A test set (both or neither): adds ``test_loss`` and ``test_acc`` (``test_mse``).
    baselines : dict, optional
        ``{name: baseline}``, one column ``cos_<name>`` each. A tensor or array of shape
        ``(p,)`` is a parameter vector: cos(θ, b). A callable ``g(X) -> outputs``, or an object
        with ``decision_function`` (an :class:`~implicitbias.kernel_regime.NTKPredictor`, a
        fitted scikit-learn estimator, a module), is a predictor: cos(f(θ; X_eval), g(X_eval))
        on ``X_test`` (on ``X`` without a test set), ``g`` evaluated once, here.
    kkt_evals : int, default 0
        Number of KKT checkpoints: the records nearest to ``kkt_evals`` times log-spaced from
        0.01·t* (t* = log(α)/λ; from the first positive time when λ = 0 or α ≤ 1) to the end
        of the schedule (its last time is always one) add ``kkt_epsilon_rel`` =
        :func:`~implicitbias.kkt_residuals`'s ε/‖θ̃‖, one NTK each. The column is NaN at the
        other records and where a classifier does not separate the training set yet.
    smoothed_margin : bool, default False
        Add ``smoothed_margin`` (classification): :func:`~implicitbias.smoothed_margin` with
        the training loss (one more forward pass per record).
    metrics : callable, optional
        ``metrics(model, t) -> dict[str, float]``, as :func:`train`'s: more columns.
    sinks : sequence, optional
        Where each record goes besides :attr:`history`: paths ending in ``.csv`` (one flushed
        line per record, :func:`train`'s CSV format) or ``.json`` (:meth:`History.to_json`,
        replaced atomically), TensorBoard ``SummaryWriter`` objects (``add_scalar`` per
        column, ``global_step`` = ``step``), or callables ``sink(record)`` (W&B:
        ``lambda r: wandb.log(r, step=int(r["step"]))``; MLflow:
        ``lambda r: mlflow.log_metrics(r, step=int(r["step"]))``). Files are created now.

    Attributes
    ----------
    history : History
        The rows so far.
    alpha, weight_decay : float
        α and λ as used (α defaults to the initial ‖θ‖).
    times : numpy.ndarray
        The schedule.
    overhead_seconds : float
        Seconds spent inside the monitor (all calls, records included).
    record_seconds : float
        The part of ``overhead_seconds`` spent recording.
    calls : int
        Calls so far (``mon(step, lr)`` and ``mon.step(t)``).

    Raises
    ------
    InvalidArgumentError, InvalidArgumentTypeError
        A bad argument, naming it (here or at a call: see Notes).
    NotHomogeneousError
        The model carries no degree and is not positively homogeneous on ``X``.

    Notes
    -----
    **The record** (one :class:`History` row, and the dict a callable sink receives), in
    column order:

    ======================  ================================================================
    column                  meaning
    ======================  ================================================================
    ``t``                   gradient-flow time: Σ lr over the steps (``mon(step, lr)``), or
                            the ``t`` of ``mon.step(t)``
    ``step``                the step index; ``mon.step(t)``: t/lr (NaN without ``lr``)
    ``rescaled_time``       t·λ/log α
    ``grad_evals``          the step index (one gradient per GD step); ``mon.step(t)``: its
                            ``grad_evals`` argument, else NaN
    ``train_loss``          (1/n) Σ ℓ(f(θ; x_i), y_i)
    ``objective``           train_loss + (λ/2)‖θ‖²
    ``train_acc``           accuracy, f = 0 counting half (``train_mse`` for regression)
    ``theta_norm``          ‖θ‖₂ of the trainable parameters
    ``normalized_margin``   q_min/‖θ‖^L (classification)
    ``wall_time``           seconds since the first call
    ``smoothed_margin``     with ``smoothed_margin=True``
    ``test_loss``,          with a test set (``test_mse`` for regression)
    ``test_acc``
    ``cos_<name>``          per baseline
    ``kkt_epsilon_rel``     with ``kkt_evals > 0``; callable and TensorBoard sinks get it
                            only at KKT checkpoints
    user metrics            the keys of ``metrics``
    ======================  ================================================================

    NaN values (a diverged run, a margin of a zero θ) are recorded as NaN, not dropped.

    **No silent wrong answer.** A step or time that goes backwards, a non-positive or
    non-finite ``lr``, a model whose parameters changed dtype, shape or device since the monitor
    was created, and mixing ``mon(step, lr)`` with ``mon.step(t)`` raise, naming the argument.
    A record evaluates the model in its current train/eval mode and leaves it as it found it
    (parameters, buffers, train/eval flags and the random state), so monitoring does not change
    the run.

    **Cost.** Between schedule points a call does a few comparisons (about a microsecond:
    ``overhead_seconds`` measures it); a record costs one forward pass on ``X`` (and one on
    ``X_test``), a copy of θ, and the KKT check's NTK at KKT checkpoints.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> g = torch.Generator().manual_seed(0)
    >>> X = torch.randint(0, 2, (16, 5), generator=g).double() * 2 - 1
    >>> y = torch.sign(X[:, 0] + X[:, 1] + X[:, 2])
    >>> net = ib.DiagonalNet(5, alpha=2.0, dtype=torch.float64)
    >>> opt = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.01)
    >>> mon = ib.Monitor(net, X, y, weight_decay=0.01, lr=0.1, steps=100, num_evals=10)
    >>> _ = mon(0, 0.1)  # the initial state
    >>> for k in range(1, 101):
    ...     opt.zero_grad()
    ...     torch.nn.functional.softplus(-y * net(X)).mean().backward()
    ...     opt.step()
    ...     _ = mon(k, 0.1)
    >>> len(mon.history), float(mon.history["step"][-1]), float(mon.history["train_acc"][-1])
    (10, 100.0, 1.0)

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu, *Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking*, ICLR 2024, arXiv:2311.18817.
    K. Lyu, J. Li, *Gradient Descent Maximizes the Margin of Homogeneous Neural Networks*,
    ICLR 2020, arXiv:1906.05890.
    """

    def __init__(
        self,
        model: nn.Module,
        X: torch.Tensor,
        y: Any,
        *,
        loss: LossName = "logistic",
        weight_decay: float,
        lr: float | None = None,
        steps: int | None = None,
        t_max: float | None = None,
        eval_times: Any = None,
        num_evals: int = 200,
        alpha: float | None = None,
        degree: int | float | None = None,
        X_test: torch.Tensor | None = None,
        y_test: Any = None,
        baselines: Any = None,
        kkt_evals: int = 0,
        smoothed_margin: bool = False,
        metrics: Metrics | None = None,
        sinks: Any = None,
    ) -> None:
        check_choice(loss, _FUNC, "loss", LOSSES)
        ell = loss_function(loss)
        lam = check_nonnegative(weight_decay, _FUNC, "weight_decay")
        eta = None if lr is None else check_positive(lr, _FUNC, "lr")
        num = check_int(num_evals, _FUNC, "num_evals", minimum=2)
        times = schedule(
            lr=eta, steps=steps, t_max=t_max, eval_times=eval_times, num_evals=num, func=_FUNC
        )
        n_kkt = check_int(kkt_evals, _FUNC, "kkt_evals", minimum=0)
        smoothed = check_bool(smoothed_margin, _FUNC, "smoothed_margin")
        if smoothed and not ell.is_classification:
            raise fail(
                _FUNC,
                "smoothed_margin",
                f"False for the regression loss {loss!r} (margins need a classification loss)",
                "True",
            )
        if metrics is not None and not callable(metrics):
            raise fail_type(_FUNC, "metrics", "a callable metrics(model, t) -> dict", metrics)
        h, X, out_shape = homogeneous_and_inputs(model, X, degree, func=_FUNC)
        theta0 = h.theta()
        y_t = check_labels(ell, y, X.shape[0], out_shape, theta0.dtype, theta0.device, func=_FUNC)
        test = self._test_set(h, ell, X_test, y_test)
        if alpha is None:
            alpha = float(theta0.norm())
        else:
            alpha = check_positive(alpha, _FUNC, "alpha")
        X_eval, where = (X, "X") if test is None else (test[0], "X_test")
        eval_shape = out_shape if test is None else tuple(test[2])
        base = check_baselines(baselines, h, X_eval, eval_shape, func=_FUNC, where=where)

        self._h, self._X, self._loss = h, X, ell
        self._state = StateMetrics(ell, y_t, lam, float(h.degree), alpha)
        self._extras = Extras(
            h,
            X,
            y_t,
            ell,
            smoothed=smoothed,
            test=None if test is None else (test[0], test[1]),
            baselines=base,
            kkt=n_kkt > 0,
        )
        self._reserved = frozenset(STANDARD_COLUMNS) | set(self._extras.columns)
        self._metrics = metrics
        self._signature = ParameterSignature(h)
        rate = self._state.rescale  # λ/log α: t* = log(α)/λ where it is positive
        t_star = 1.0 / rate if 0.0 < rate < math.inf else math.nan
        self._clock = Clock(times, kkt_indices(times, n_kkt, t_star=t_star), eta)
        self.alpha, self.weight_decay = alpha, lam
        self._history = History()
        self._overhead = self._record_time = 0.0
        self._calls = 0
        self._sinks: list[Sink] = make_sinks(sinks, self._history, func=_FUNC)  # files last

    @staticmethod
    def _test_set(
        h: Any, ell: Any, X_test: Any, y_test: Any
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]] | None:
        """(inputs, labels, outputs' shape) of the test set, checked; None without one."""
        if X_test is None and y_test is None:
            return None
        if X_test is None or y_test is None:
            missing, given = ("X_test", "y_test") if X_test is None else ("y_test", "X_test")
            raise fail(_FUNC, missing, f"given together with '{given}'", "None")
        Xt = h.prepare_input(X_test, func=_FUNC, arg="X_test")
        shape = probe_outputs(h, Xt, func=_FUNC, arg="X_test")
        theta = h.theta()
        yt = check_labels(
            ell, y_test, Xt.shape[0], shape, theta.dtype, theta.device, func=_FUNC, arg="y_test"
        )
        return Xt, yt, shape

    # ------------------------------------------------------------------ calls
    def __call__(self, step: int, lr: float) -> dict[str, float] | None:
        """Note that ``step`` optimizer steps are done, the last ones with learning rate ``lr``.

        The time advances by ``lr`` per step since the previous call (``t = Σ lr``; with a
        constant ``lr``, ``t = step·lr`` exactly); at a schedule point the current state is
        recorded. Call it with ``step=0`` before training to record the initial state, then
        after each optimizer step with the learning rate that step used.

        Parameters
        ----------
        step : int
            Optimizer steps done so far, ≥ the previous call's.
        lr : float
            The learning rate of the steps since the previous call, > 0.

        Returns
        -------
        dict or None
            The record when one was taken (a copy of the new history row), else None.
        """
        t0 = time.perf_counter()
        try:
            return self._take() if self._clock.by_steps(step, lr) else None
        finally:
            self._calls += 1
            self._overhead += time.perf_counter() - t0

    def step(self, t: float, *, grad_evals: int | None = None) -> dict[str, float] | None:
        """Note that the run has reached gradient-flow time ``t``; record at a schedule point.

        Parameters
        ----------
        t : float
            The time reached, ≥ 0 and ≥ the previous call's.
        grad_evals : int, optional
            Gradient evaluations so far, for the ``grad_evals`` column (NaN when not given).

        Returns
        -------
        dict or None
            The record when one was taken, else None.
        """
        t0 = time.perf_counter()
        try:
            return self._take() if self._clock.by_time(t, grad_evals) else None
        finally:
            self._calls += 1
            self._overhead += time.perf_counter() - t0

    def record(self) -> dict[str, float] | None:
        """Record the current state now, off the schedule (e.g. at the end of a run stopped
        early), at the time of the last call (0 before any); None when that time is recorded
        already. KKT is checked when ``kkt_evals > 0``."""
        t0 = time.perf_counter()
        try:
            clock = self._clock
            clock.check_open()
            if clock.recorded_t is not None and clock.recorded_t == clock.t:
                return None
            return self._take(force=True)
        finally:
            self._overhead += time.perf_counter() - t0

    # ------------------------------------------------------------------ records
    def _take(self, force: bool = False) -> dict[str, float]:
        """Record at the current time; then move the schedule past it."""
        i1, kkt_now = self._clock.plan(force)
        t0 = time.perf_counter()
        try:
            row = self._record(kkt_now)
            self._clock.commit(i1)  # before the sinks: one that raises leaves no row to repeat
            record = row if kkt_now else {k: v for k, v in row.items() if k != "kkt_epsilon_rel"}
            for sink in self._sinks:
                sink.write(record, len(self._history) - 1)
        finally:
            self._record_time += time.perf_counter() - t0
        return dict(row)

    def _record(self, kkt_now: bool) -> dict[str, float]:
        """Evaluate the model at its current parameters and append the row."""
        t0 = time.perf_counter()
        self._signature.check(_FUNC)
        h, t = self._h, self._clock.t
        step, grad_evals = self._clock.columns
        with untouched(h.model):
            with torch.no_grad():
                theta = h.theta()
                norm = float(theta.norm())
                out = h(self._X)
                row = self._state.row(norm, out, t=t, step=step, grad_evals=grad_evals)
                q_min = self._state.q_min(out) if self._loss.is_classification else None
            row.update(self._extras.evaluate(theta, norm, out, q_min, kkt_now=kkt_now))
            if self._metrics is not None:
                extra = self._metrics(h, t)
                row.update(
                    user_metrics(
                        extra,
                        func=_FUNC,
                        reserved=self._reserved,
                        reserved_name="the monitor's own columns",
                    )
                )
        row["wall_time"] = self._clock.wall(t0)
        return append_row(self._history, row, func=_FUNC)

    # ------------------------------------------------------------------ the end
    def close(self) -> None:
        """Close the files of the sinks and flush the TensorBoard writers (idempotent)."""
        if self._clock.closed:
            return
        self._clock.closed = True
        for sink in self._sinks:
            sink.close()

    def __enter__(self) -> Monitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ state
    @property
    def history(self) -> History:
        """The rows recorded so far (the monitor's own object: it grows with the run)."""
        return self._history

    @property
    def times(self) -> np.ndarray:
        """The schedule (a copy)."""
        return self._clock.times.copy()

    @property
    def t(self) -> float:
        """The gradient-flow time of the last call (0 before any)."""
        return self._clock.t

    @property
    def next_time(self) -> float:
        """The next schedule time (``inf`` when the schedule is done)."""
        return self._clock.next_time

    @property
    def overhead_seconds(self) -> float:
        """Seconds spent inside the monitor over all calls, records included."""
        return self._overhead

    @property
    def record_seconds(self) -> float:
        """Seconds spent recording (the rest of ``overhead_seconds`` is the bookkeeping)."""
        return self._record_time

    @property
    def calls(self) -> int:
        """Calls of ``mon(step, lr)`` and ``mon.step(t)`` so far."""
        return self._calls

    def __repr__(self) -> str:
        clock = self._clock
        state = "closed" if clock.closed else f"next t={clock.next_time:g}"
        return (
            f"Monitor({len(self._history)} records of {len(clock.times)} scheduled, "
            f"t={clock.t:g}, {state}, overhead={self._overhead:.3g} s)"
        )
