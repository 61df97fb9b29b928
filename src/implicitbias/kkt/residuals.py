r"""(ε, δ)-KKT certificates of a trained homogeneous model for its margin problem (THEORY §3).

:func:`kkt_residuals` is a short composition: validate, wrap and evaluate the model
(``margins._prepare``), the NTK at θ (``_epsilon.ntk``), the task's multipliers
(``_classification.margin_fit`` or ``_regression.regression_fit``), ε of them and of the
route-(b) multipliers (``_epsilon.GramForm.epsilon``), and the convex certificate the model
declares (:mod:`implicitbias.kkt.certificates`); the :class:`KKTReport` is built in one place.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from implicitbias._progress import Progress, check_progress
from implicitbias._validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
    fail_type,
)
from implicitbias.kkt._classification import ACTIVE_THRESHOLDS, margin_fit, working_set_fit
from implicitbias.kkt._epsilon import Fit, ntk, unit_roundoff
from implicitbias.kkt._matrix_free import DEFAULT_STEPS
from implicitbias.kkt._regression import regression_fit
from implicitbias.kkt.certificates import ConvexCertificate, convex_certificate
from implicitbias.kkt.margins import TaskOption, _prepare, _Setup
from implicitbias.kkt.report import EpsilonMethod, KKTReport, Loss, NNLSRoute, NNLSRouteOption

__all__ = ["ACTIVE_THRESHOLDS", "DEFAULT_MEMORY_BUDGET", "KKTReport", "kkt_residuals"]

#: Default ``memory_budget`` of :func:`kkt_residuals`: 2 GiB.
DEFAULT_MEMORY_BUDGET = 2 * 2**30


def kkt_residuals(
    model: nn.Module,
    X: torch.Tensor,
    y: Any,
    *,
    task: TaskOption | None = None,
    weight_decay: float | None = None,
    loss: Loss = "logistic",
    degree: int | float | None = None,
    certificate: bool = False,
    epsilon_tolerance: float = 1e-2,
    direct: bool | None = None,
    chunk_size: int | None = None,
    memory_budget: int | float = DEFAULT_MEMORY_BUDGET,
    nnls_route: NNLSRouteOption = "auto",
    matrix_free_steps: int = DEFAULT_STEPS,
    progress: bool | None = None,
) -> KKTReport:
    r"""(ε, δ)-KKT residuals of a trained ``L``-homogeneous model for its margin problem.

    Classification checks the margin problem (R1) at the rescaled feasible point
    :math:`\tilde\theta = \theta / q_{\min}(\theta)^{1/L}` (so :math:`\min_i q_i(\tilde\theta)
    = 1`):

    .. math::

        \min_\theta \tfrac12 \lVert\theta\rVert^2 \ \text{ s.t. }\ q_i(\theta) = y_i f(\theta;
        x_i) \ge 1, \qquad i = 1..n.

    A feasible θ is an **(ε, δ)-KKT point** (Dutta et al. 2013; Lyu & Li 2020) when some
    :math:`\mu \ge 0` gives

    .. math::

        \Big\lVert \theta - \sum_i \mu_i y_i \nabla_\theta f(\theta; x_i) \Big\rVert \le
        \varepsilon, \qquad \mu_i \big(q_i(\theta) - 1\big) \le \delta \ \ \forall i.

    Regression (R2) checks θ itself for ``min ½‖θ‖² s.t. f(θ; x_i) = y_i`` with free-sign
    :math:`\mu` (ε as above without :math:`y_i`, feasibility ``max_i |f_i − y_i|``).
    Multiclass (``C`` logits, labels ``0..C−1``) has one constraint per pair,
    :math:`f_{y_i} - f_j \ge 1` for ``j ≠ y_i``, and
    :math:`\theta = \sum_{i,j} \mu_{ij} (\nabla f_{y_i}(\theta; x_i) - \nabla f_j(\theta;
    x_i))`.

    ======================================  ===========================================
    math                                    name
    ======================================  ===========================================
    :math:`f(\theta; x)`, :math:`L`         ``model`` at its parameters, its degree
    :math:`x_i`, :math:`y_i`                ``X[i]``, ``y[i]``
    :math:`q_i(\tilde\theta)`               ``report.margins``
    :math:`\mu`                             ``report.multipliers``
    :math:`\varepsilon`, :math:`\delta`     ``report.epsilon``, ``report.delta``
    :math:`\lambda`                         ``weight_decay``
    :math:`K(\tilde\theta)`                 the empirical NTK at θ̃ (:func:`empirical_ntk`)
    ======================================  ===========================================

    **Gram form (no p-dimensional sums).** With :math:`G = [y_i \nabla f(\tilde\theta; x_i)]`,
    Euler's identity :math:`\langle \nabla f(\theta; x), \theta \rangle = L f(\theta; x)` gives

    .. math::

        \lVert \tilde\theta - G\mu \rVert^2 = \lVert\tilde\theta\rVert^2
        - 2L\,\mu^\top q(\tilde\theta) + \mu^\top \big(yy^\top \odot K(\tilde\theta)\big)\mu,

    so the multipliers solve :math:`\min_{\mu \ge 0} \tfrac12 \mu^\top Q \mu - b^\top\mu` with
    :math:`Q = yy^\top \odot K`, :math:`b = L q(\tilde\theta)` (:func:`nnls_gram`, float64),
    and :math:`K(\tilde\theta) = q_{\min}^{-2(L-1)/L} K(\theta)` needs one NTK at θ. Regression
    solves :math:`K\mu = L f(\theta)` in the least-squares sense (minimum-norm μ). Multiclass
    uses the ``(nC, nC)`` NTK: :math:`Q = D^\top K D` for the pair differences D, and
    :math:`b = L q_{ij}(\tilde\theta)`.

    **Choice of multipliers.** The smallest-ε certificate (unrestricted NNLS, ``epsilon_min``)
    is not unique when G is rank-deficient (e.g. a sparse diagonal net: only a few nonzero
    coordinates), and NNLS may then put weight on inactive constraints and report a large δ
    at an exact KKT point. So the constraints are restricted to the near-active ones,
    ``q_i(θ̃) − 1 ≤ τ`` for τ in ``ACTIVE_THRESHOLDS`` (1e-9, 1e-7, …, 3), smallest first;
    the first restriction whose ε is within ``(1 + epsilon_tolerance)·ε_min`` plus the
    accuracy floor is reported, else the unrestricted minimizer. The reported μ is thus a
    near-minimizer of ε whose support has the least slack it can have, keeping δ small.

    **Accuracy.** The Gram formula cancels: its absolute error is about
    :math:`\sqrt{u\,S}` with ``u`` the unit roundoff of the NTK's dtype and ``S`` the sum of the
    magnitudes of its three terms (≈ 1e-8·‖θ̃‖ in float64, ≈ 3e-4·‖θ̃‖ in float32). When the
    Gram value is below 1000× that floor (or ``direct=True``), ε is re-evaluated directly as
    :math:`\lVert\tilde\theta - \nabla_\theta \sum_i \mu_i y_i f(\tilde\theta; x_i)\rVert` with
    one vector-Jacobian product (no Jacobian; float64 when the module runs in float64), whose
    floor is about ``u·(‖θ̃‖ + Σ|μ_i|‖g_i‖)``. ``epsilon_floor`` reports the floor that applies.

    **Working-set route (many constraints).** The dense route needs the ``(nC)²`` NTK and the
    ``m × m`` Gram of all ``m`` constraints. When they do not fit ``memory_budget`` (or with
    ``nnls_route="working_set"``) the NNLS is solved on a working set ``W`` of constraints only:
    its Gram ``Q_WW`` is built from per-constraint gradients (the per-layer factors
    :math:`\delta_k a_k^\top` of ``nn.Linear`` layers, or vector-Jacobian products for any
    module), and the restricted answer is checked against **all** constraints with one
    Jacobian-vector product: with :math:`r = \tilde\theta - G_W^\top\mu_W`, it is the NNLS
    optimum over all constraints iff :math:`\langle\nabla q_k, r\rangle = (b - Q\mu)_k \le 0`
    for every excluded ``k``, to the rounding of the model's precision ``u``:
    :math:`4u\lVert\nabla q_k\rVert(\lVert\tilde\theta\rVert + \sum_j \mu_j\lVert\nabla
    q_j\rVert)`. Otherwise the most violated constraints join ``W`` and the problem is solved
    again, warm-started (Lawson–Hanson on small sets, block principal pivoting with a float32
    Cholesky factor refined in float64 on large ones), until none is violated. ε, δ and ``epsilon_min`` are those of the
    dense route; ``constraints_touched`` reports how many constraints ever entered a Gram
    (the cost follows the constraints that matter, not ``n·C``), ``nnls_route`` which route ran.

    **Matrix-free route (a support too large for any Gram).** When the working set's support
    outgrows ``memory_budget`` (``"auto"``; ``"exact"`` and ``"working_set"`` raise instead),
    or with ``nnls_route="matrix_free"``, the NNLS over all constraints is solved with products
    only (Jacobi-scaled accelerated projected gradient with restarts, conjugate gradients on
    the current face; memory ``O(m + p)``), warm-started from the working set's last
    multipliers. A weak-duality bound brackets the minimum:
    ``epsilon_min_lower ≤ min ε ≤ epsilon_min``. It stops when the bracket is within 1e-6
    relative (or as close as the rounding of the products lets it be certified), else after
    ``matrix_free_steps`` products with an
    :class:`~implicitbias.InaccurateSolutionWarning` that gives the bracket. ε and δ are exact
    for the reported multipliers (no restriction to near-active constraints is tried on this
    route: ``active_threshold`` is the largest slack in the support).

    **Weight decay (route (b)).** With ``weight_decay=λ`` and the mean loss
    :math:`L_\lambda = \frac1n\sum_i \ell(q_i) + \frac\lambda2\lVert\theta\rVert^2`,
    stationarity gives :math:`\mu_i = q_{\min}^{(L-2)/L} r_i / (n\lambda)`,
    :math:`r_i = -\ell'(q_i)` (logistic :math:`1/(1+e^{q_i})`, exponential :math:`e^{-q_i}`;
    multiclass cross-entropy: the softmax probabilities :math:`p_{ij}`), and
    ``stationarity_residual`` :math:`= \lVert\frac1n\sum r_i y_i\nabla f(\theta; x_i) -
    \lambda\theta\rVert / (\lambda\lVert\theta\rVert)`, which equals the relative ε of these
    multipliers. Regression (mean squared error): :math:`\mu_i = -2(f_i - y_i)/(n\lambda)`.

    **Convex certificates.** The model names its convex surrogate itself (its
    ``convex_surrogate(task)`` method, asked through
    :func:`implicitbias.models.convex_surrogate`; the computations are in
    :mod:`implicitbias.kkt.certificates`). Depth-2 :class:`DiagonalNet`: ``dual_norm``
    :math:`=\lVert 2\sum_i \mu_i y_i x_i\rVert_\infty` (``≤ 1`` with ε = 0 certifies the
    global ℓ1 max-margin optimum, THEORY §4) and, with ``certificate=True``, the gap between
    :math:`\lVert\tilde\theta\rVert^2` and :math:`\lVert w_1^*\rVert_1`
    (:func:`l1_max_margin`, an LP). :class:`MatrixFactorization` regression: ``dual_norm`` the
    operator norm of :math:`\sum_k \mu_k (E_{i_k j_k} + E_{j_k i_k})` and, with
    ``certificate=True``, the gap between :math:`\lVert\theta\rVert^2` and the minimum nuclear
    norm (:func:`min_nuclear_norm_completion`, an SDP).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model, at its current parameters. A plain module is wrapped with
        :class:`Homogeneous` (its degree verified, or estimated, on ``X``).
    X : torch.Tensor
        Training inputs, shape ``(n, ...)`` (index pairs ``(n, 2)`` for matrix factorization).
    y : array_like of shape (n,)
        Labels in {−1, +1} (binary), integers ``0..C−1`` (``C`` logits) or real targets.
    task : {"classification", "regression", "multiclass"}, optional
        Inferred when ``None``: ``multiclass`` for several outputs, ``classification`` when
        ``y`` is ±1, ``regression`` otherwise. {0, 1} labels raise (not converted silently).
    weight_decay : float, optional
        λ of training: adds the route-(b) multipliers and the stationarity residual.
    loss : {"logistic", "exponential"}, default "logistic"
        Training loss for route (b) (``"logistic"`` is cross-entropy for multiclass).
    degree : int or float, optional
        Override the homogeneity degree ``L``.
    certificate : bool, default False
        Also solve the convex surrogate (LP or SDP) for ``convex_optimum`` and ``convex_gap``.
    epsilon_tolerance : float, default 1e-2
        Relative slack on ε when choosing multipliers that keep δ small (see above).
    direct : bool, optional
        Force (``True``) or forbid (``False``) the direct evaluation of ε; default automatic.
    chunk_size : int, optional
        Examples per chunk in the NTK and vector-Jacobian products.
    memory_budget : int or float, default ``2 * 2**30`` (2 GiB)
        Bytes the multipliers may use, at least ``2**20``. The dense route runs when its
        estimate, about ``8·(3(nC)² + 5m²)`` bytes for ``m`` constraints, fits; the
        working-set route keeps its Gram within a quarter of the budget (at most
        ``√(budget/32)`` constraints at a time; a support that does not fit raises on the exact
        routes, and ``"auto"`` goes on matrix-free) and sizes its
        chunks of gradients by the budget (on an accelerator, also by half its free memory).
    nnls_route : {"auto", "exact", "dense", "working_set", "matrix_free"}, default "auto"
        How the multipliers are found: ``"dense"`` (the NTK over all constraints),
        ``"working_set"`` or ``"matrix_free"`` (see above; classification and multiclass only),
        ``"exact"`` (dense when it fits ``memory_budget``, else the working set: the exact
        NNLS optimum or an error) or ``"auto"`` (as ``"exact"``, falling back to matrix-free
        when the working set's support outgrows the budget).
    matrix_free_steps : int, default 1000
        Most products (one reverse- and one forward-mode pass over the data each) of the
        matrix-free route.
    progress : bool, optional
        Progress over the four stages (set-up, multipliers, ε, convex certificate): by default
        a tqdm bar on a terminal or in Jupyter, else an ``INFO`` line of the
        ``"implicitbias.progress"`` logger every ~10 s; ``True`` a bar, ``False`` nothing.

    Returns
    -------
    KKTReport

    Raises
    ------
    NotHomogeneousError
        If the model is not positively homogeneous.
    InvalidArgumentError
        If a training point is misclassified (``q_min ≤ 0``; the message gives the count),
        labels are not ±1 / classes, lengths differ, or inputs contain NaN; or if the model
        names a convex surrogate unknown for its task; or if the working set outgrows
        ``memory_budget`` on ``nnls_route="exact"`` or ``"working_set"`` (the message gives the
        bytes it needs).

    Examples
    --------
    An exact KKT point: ``w = (1, 0)`` is the ℓ1 max-margin classifier of two points, and the
    diagonal net ``u = (1, 0), v = 0`` represents it.

    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(2, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.u.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64))
    ...     _ = net.v.zero_()
    >>> X = torch.tensor([[1.0, 0.5], [-1.0, 0.5]], dtype=torch.float64)
    >>> rep = ib.kkt_residuals(net, X, [1, -1])
    >>> rep.epsilon_rel < 1e-12, rep.delta < 1e-12, rep.is_kkt()
    (True, True, True)
    >>> rep.multipliers.round(12).tolist(), rep.dual_norm
    ([0.5, 0.0], 1.0)

    References
    ----------
    K. Lyu, J. Li, Gradient Descent Maximizes the Margin of Homogeneous Neural Networks,
    ICLR 2020, arXiv:1906.05890 (Definition of (ε, δ)-KKT, Section 4).
    J. Dutta, K. Deb, R. Tulshyan, R. Arora, Approximate KKT points and a proximity measure
    for termination, J. Global Optimization 56 (2013).
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu, Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking, ICLR 2024, arXiv:2311.18817.
    """
    func = "kkt_residuals"
    t_start = time.perf_counter()
    weight_decay, epsilon_tolerance, chunk_size = _check_options(
        func, loss, weight_decay, epsilon_tolerance, direct, certificate, chunk_size
    )
    budget = _check_budget(func, memory_budget, nnls_route)
    steps = check_int(matrix_free_steps, func, "matrix_free_steps", minimum=1)
    progress = check_progress(progress, func)
    with Progress(4, desc=func, unit="stage", progress=progress) as bar:
        s = _prepare(model, X, y, func, task=task, degree=degree)
        bar.set(1)
        return _certify(s, bar, func, nnls_route, budget, weight_decay, epsilon_tolerance, loss,
                        direct, certificate, chunk_size, t_start, steps)  # fmt: skip


def _certify(
    s: _Setup,
    bar: Progress,
    func: str,
    nnls_route: Any,
    budget: int,
    weight_decay: float | None,
    epsilon_tolerance: float,
    loss: Loss,
    direct: bool | None,
    certificate: bool,
    chunk_size: int | None,
    t_start: float,
    steps: int,
) -> KKTReport:
    """The stages after the set-up: multipliers (2), ε (3), convex certificate (4)."""
    route = _route(s, nnls_route, budget, func)
    if route != "dense":
        fit = working_set_fit(
            s,
            rtol=epsilon_tolerance,
            weight_decay=weight_decay,
            loss=loss,
            func=func,
            budget=budget,
            chunk_size=chunk_size,
            route=route,
            fallback=nnls_route == "auto",
            steps=steps,
        )
    else:
        u_K = unit_roundoff(s.theta.dtype)
        K = ntk(s, chunk_size)
        if s.task == "regression":
            fit = regression_fit(s, K, u_K, weight_decay=weight_decay)
        else:
            fit = margin_fit(
                s, K, u_K, rtol=epsilon_tolerance, weight_decay=weight_decay, loss=loss, func=func
            )
    bar.set(2)
    epsilon = fit.form.epsilon(fit.mu, direct=direct, chunk_size=chunk_size)
    wd = _WeightDecayRoute.of(fit, direct, chunk_size)
    bar.set(3)
    cert = convex_certificate(s, fit.mu, fit.form.tt, solve=certificate, func=func)
    bar.set(4)
    return _report(s, fit, epsilon, wd, cert, weight_decay, t_start)


def _check_options(
    func: str,
    loss: Any,
    weight_decay: Any,
    epsilon_tolerance: Any,
    direct: Any,
    certificate: Any,
    chunk_size: Any,
) -> tuple[float | None, float, int | None]:
    """Validate the options of :func:`kkt_residuals`; the checked ``(λ, tolerance, chunk)``."""
    check_choice(loss, func, "loss", ("logistic", "exponential"))
    if weight_decay is not None:
        weight_decay = check_positive(weight_decay, func, "weight_decay")
    epsilon_tolerance = check_nonnegative(epsilon_tolerance, func, "epsilon_tolerance")
    if direct is not None and not isinstance(direct, bool):
        raise fail(func, "direct", "True, False or None", repr(direct))
    if not isinstance(certificate, bool):
        raise fail(func, "certificate", "True or False", repr(certificate))
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, func, "chunk_size", minimum=1)
    return weight_decay, epsilon_tolerance, chunk_size


def _check_budget(func: str, memory_budget: Any, nnls_route: Any) -> int:
    """Validate ``memory_budget`` (bytes) and ``nnls_route``; the budget as an int."""
    check_choice(
        nnls_route, func, "nnls_route", ("auto", "exact", "dense", "working_set", "matrix_free")
    )
    if isinstance(memory_budget, bool) or not isinstance(
        memory_budget, (int, float, np.integer, np.floating)
    ):
        raise fail_type(func, "memory_budget", "a number of bytes", memory_budget)
    value = float(memory_budget)
    if not (math.isfinite(value) and value >= 2**20):
        raise fail(
            func,
            "memory_budget",
            "a finite number of bytes, at least 2**20 (1 MiB)",
            repr(memory_budget),
            "It is in bytes: 2 GiB is 2 * 2**30.",
        )
    return int(value)


def dense_bytes(n: int, C: int, m: int) -> int:
    """Peak memory of the dense route (bytes, float64): the ``(nC)²`` NTK with its copies,
    and the ``m × m`` Gram of the ``m`` constraints with the temporaries that build it."""
    nC = n * C
    return 8 * (3 * nC * nC + 5 * m * m)


def _route(s: _Setup, option: str, budget: int, func: str) -> NNLSRoute:
    """The route of the multipliers: ``option``, or by memory when ``"auto"``."""
    if s.task == "regression":
        if option in ("working_set", "matrix_free"):
            raise fail(
                func,
                "nnls_route",
                "'auto' or 'dense' for regression (the working-set and matrix-free routes "
                "apply to the margin problems of classification and multiclass)",
                repr(option),
            )
        return "dense"
    if option not in ("auto", "exact"):
        return option  # type: ignore[return-value]
    m = s.n * (s.C - 1) if s.task == "multiclass" else s.n
    return "dense" if dense_bytes(s.n, s.C, m) <= budget else "working_set"


@dataclass(frozen=True)
class _WeightDecayRoute:
    """Route (b): the multipliers implied by stationarity of the weight-decayed loss, their ε,
    ε/‖t‖ (= the stationarity residual) and δ; all ``None`` without ``weight_decay``."""

    multipliers: np.ndarray | None = None
    epsilon: float | None = None
    epsilon_rel: float | None = None
    delta: float | None = None

    @classmethod
    def of(cls, fit: Fit, direct: bool | None, chunk_size: int | None) -> _WeightDecayRoute:
        if fit.wd_mu is None:
            return cls()
        eps, _, _ = fit.form.epsilon(fit.wd_mu, direct=direct, chunk_size=chunk_size)
        return cls(fit.table(fit.wd_mu), eps, fit.form.relative(eps), fit.slackness(fit.wd_mu))


def _lower(eps: float, fit: Fit) -> float:
    """``epsilon_min_lower``: the route's certified bound, else ``epsilon_min`` itself."""
    if fit.epsilon_min_lower is not None:
        return fit.epsilon_min_lower
    return eps if fit.epsilon_min is None else fit.epsilon_min


def _report(
    s: _Setup,
    fit: Fit,
    epsilon: tuple[float, EpsilonMethod, float],
    wd: _WeightDecayRoute,
    cert: ConvexCertificate,
    weight_decay: float | None,
    t_start: float,
) -> KKTReport:
    """The one place a :class:`KKTReport` is built, from the task's fit and the routes."""
    eps, method, floor = epsilon
    return KKTReport(
        task=s.task,
        degree=s.h.degree,
        epsilon=eps,
        epsilon_rel=fit.form.relative(eps),
        delta=fit.delta,
        multipliers=fit.multipliers,
        support=fit.support,
        margins=fit.margins,
        q_min=fit.q_min,
        theta_norm=s.theta_norm,
        rescaled_theta_norm=fit.point_norm,
        normalized_margin=fit.normalized_margin,
        smoothed_margin=fit.smoothed_margin,
        max_violation=fit.max_violation,
        epsilon_min=eps if fit.epsilon_min is None else fit.epsilon_min,
        epsilon_min_lower=_lower(eps, fit),
        active_threshold=fit.active_threshold,
        epsilon_method=method,
        epsilon_floor=floor,
        weight_decay=weight_decay,
        loss=fit.loss,
        wd_multipliers=wd.multipliers,
        wd_epsilon=wd.epsilon,
        wd_epsilon_rel=wd.epsilon_rel,
        wd_delta=wd.delta,
        stationarity_residual=wd.epsilon_rel,
        convex_surrogate=cert.surrogate,
        dual_norm=cert.dual_norm,
        convex_lower_bound=cert.lower_bound,
        convex_optimum=cert.optimum,
        convex_gap=cert.gap,
        convex_gap_rel=cert.gap_rel,
        n_constraints=fit.n_constraints,
        constraints_touched=fit.constraints_touched,
        nnls_route=fit.nnls_route,
        iterations=fit.iterations,
        solve_time=time.perf_counter() - t_start,
    )
