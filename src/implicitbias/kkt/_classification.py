r"""The multipliers of a margin problem (binary or multiclass) at the rescaled point θ̃.

The margin problem ``min ½‖θ‖² s.t. q_c(θ) ≥ 1`` has one constraint per example (binary,
``q_i = y_i f_i``) or per pair (multiclass, ``q_ij = f_{y_i} − f_j``, ``j ≠ y_i``). At
``θ̃ = θ / q_min^{1/L}`` (``min_c q_c(θ̃) = 1``) the multipliers ``μ ≥ 0`` solve the Gram NNLS
``min ½ μᵀQμ − bᵀμ`` with ``Q = DᵀK(θ̃)D`` and ``b = L q(θ̃)`` (:mod:`._epsilon`), then are
restricted to the near-active constraints to keep δ small (:func:`select_multipliers`).
Route (b) adds the multipliers implied by stationarity of the weight-decayed training loss.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import numpy as np
from scipy.special import expit, softmax

from implicitbias._errors import InaccurateSolutionWarning
from implicitbias.kkt._epsilon import EpsilonForm, Fit, GramForm
from implicitbias.kkt._gram_cache import GramBudgetError
from implicitbias.kkt._matrix_free import solve_matrix_free
from implicitbias.kkt._working_set import WorkingSetForm, make_solver, select_working_set
from implicitbias.kkt.margins import (
    _check_separating,
    _example_margins,
    _pair_margins,
    _Setup,
    _smoothed,
)
from implicitbias.kkt.nnls import _finish_nnls
from implicitbias.kkt.report import Loss, NNLSRoute

__all__ = [
    "ACTIVE_THRESHOLDS",
    "MarginProblem",
    "assemble_fit",
    "margin_fit",
    "margin_problem",
    "select_multipliers",
    "working_set_fit",
]

#: Slack thresholds τ tried, in order, when restricting the multipliers to the near-active
#: constraints ``q_i(θ̃) − 1 ≤ τ`` (see kkt_residuals, "Choice of multipliers").
ACTIVE_THRESHOLDS = (1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def select_multipliers(
    Q: np.ndarray,
    b: np.ndarray,
    slack: np.ndarray,
    tt: float,
    floor2: float,
    rtol: float,
) -> tuple[np.ndarray, float, float, int]:
    """Smallest-ε NNLS, then the near-active restriction with the smallest δ.

    The first threshold τ of :data:`ACTIVE_THRESHOLDS` whose restricted NNLS reaches
    ``ε ≤ (1 + rtol)·ε_min + √floor2`` wins; else the unrestricted minimizer.

    Returns ``(μ, ε_min, τ, iterations)``.
    """
    m = b.shape[0]
    full = _finish_nnls(Q, b, np.ones(m, dtype=bool), None, 10 * m + 10)
    iterations = full.iterations
    if full.status != "optimal":
        warnings.warn(
            f"kkt_residuals: the Gram NNLS stopped at its iteration limit ({full.iterations} "
            f"active-set changes); epsilon_min may be slightly too large.",
            InaccurateSolutionWarning,
            stacklevel=4,
        )
    eps_min2 = max(tt + 2.0 * full.objective, 0.0)
    eps_min = math.sqrt(eps_min2)
    if full.support.size == 0:
        return full.solution, eps_min, math.inf, iterations
    tau_full = float(slack[full.support].max())
    floor = math.sqrt(floor2)
    accept = (1.0 + rtol) * eps_min + floor
    previous = -1
    for tau in ACTIVE_THRESHOLDS:
        if tau >= tau_full:
            break
        cand = slack <= tau
        count = int(cand.sum())
        if count == previous or count == 0:
            continue
        previous = count
        res = _finish_nnls(Q, b, cand, None, 10 * count + 10)
        iterations += res.iterations
        eps = math.sqrt(max(tt + 2.0 * res.objective, 0.0))
        if eps <= accept:
            return res.solution, eps_min, tau, iterations
    return full.solution, eps_min, tau_full, iterations


class _Layout:
    """Where each constraint's multiplier sits: example ``rows[c]``, output ``cols[c]``.

    Binary: one constraint per example (``cols = 0``). Multiclass: one per pair ``(i, j)``,
    ``j ≠ y_i``, with ``∇q_ij = ∇f_{y_i} − ∇f_j``.
    """

    def __init__(self, s: _Setup, rows: np.ndarray, cols: np.ndarray) -> None:
        self.s, self.rows, self.cols = s, rows, cols

    def coefficients(self, m: np.ndarray) -> np.ndarray:
        """Output-space coefficients ``c`` with ``Σ μ g = ∇_θ Σ c·f`` at θ̃."""
        s = self.s
        if s.task == "multiclass":
            c = np.zeros((s.n, s.C))
            np.add.at(c, (self.rows, self.cols), -m)
            np.add.at(c, (self.rows, s.y[self.rows]), m)
            return c
        return m * s.y

    def table(self, m: np.ndarray) -> np.ndarray:
        """The reported multipliers: ``(n,)``, or ``(n, C)`` with zeros at ``j = y_i``."""
        s = self.s
        if s.task == "multiclass":
            out = np.zeros((s.n, s.C))
            out[self.rows, self.cols] = m
            return out
        return m.copy()


@dataclass(frozen=True)
class MarginProblem:
    """The margin constraints at ``θ̃ = θ / q_min^{1/L}``, before any Gram is formed."""

    layout: _Layout
    q_ex: np.ndarray  # example margins at θ
    q_min: float
    scale: float  # q_min^{−1/L}
    tt: float  # ‖θ̃‖²
    qc: np.ndarray  # constraint margins at θ̃, (m,)
    b: np.ndarray  # L·qc
    slack: np.ndarray  # max(qc − 1, 0)


def margin_problem(s: _Setup, func: str) -> MarginProblem:
    """The constraints (binary: one per example; multiclass: one per pair ``j ≠ y_i``), their
    margins at θ̃ and the scale; raises on a model that does not separate the data."""
    q_ex = _example_margins(s)
    q_min = _check_separating(q_ex, func)
    scale = q_min ** (-1.0 / s.L)
    if s.task == "multiclass":
        qp = _pair_margins(s.outputs, s.y) / q_min  # (n, C), inf at y_i
        rows, cols = np.nonzero(np.isfinite(qp))
        qc = qp[rows, cols]
    else:
        qc = q_ex / q_min
        rows = np.arange(s.n)
        cols = np.zeros(s.n, dtype=np.int64)
    return MarginProblem(
        layout=_Layout(s, rows, cols),
        q_ex=q_ex,
        q_min=q_min,
        scale=scale,
        tt=(s.theta_norm * scale) ** 2,
        qc=qc,
        b=s.L * qc,
        slack=np.maximum(qc - 1.0, 0.0),
    )


def _gram(s: _Setup, Kt: np.ndarray, layout: _Layout) -> np.ndarray:
    """``Q = DᵀK(θ̃)D`` of the margin constraints, from the NTK ``Kt`` at θ̃."""
    if s.task == "multiclass":
        C = s.C
        A = layout.rows * C + s.y[layout.rows]
        B = layout.rows * C + layout.cols
        Q = Kt[np.ix_(A, A)] - Kt[np.ix_(A, B)] - Kt[np.ix_(B, A)] + Kt[np.ix_(B, B)]
    else:
        Q = np.outer(s.y, s.y) * Kt
    return 0.5 * (Q + Q.T)


def _weight_decay_multipliers(
    s: _Setup, pb: MarginProblem, weight_decay: float, loss: Loss
) -> np.ndarray:
    """Route (b): ``μ_c = q_min^{(L−2)/L} r_c / (nλ)``, ``r_c = −ℓ'(q_c)`` (multiclass
    cross-entropy: the softmax probability of the pair's wrong class)."""
    if s.task == "multiclass":
        q_raw = pb.qc * pb.q_min
        if loss == "exponential":
            r = np.exp(-q_raw)
        else:
            r = softmax(s.outputs, axis=1)[pb.layout.rows, pb.layout.cols]
    else:
        q_raw = pb.q_ex
        r = np.exp(-q_raw) if loss == "exponential" else expit(-q_raw)
    L = s.L
    return pb.q_min ** ((L - 2.0) / L) * r / (s.n * weight_decay)


def margin_fit(
    s: _Setup,
    K: np.ndarray,
    u_K: float,
    *,
    rtol: float,
    weight_decay: float | None,
    loss: Loss,
    func: str,
) -> Fit:
    """The multipliers of the margin problem at ``θ̃ = θ / q_min^{1/L}`` (the dense route).

    Parameters
    ----------
    s : _Setup
        Validated model and data (task ``"classification"`` or ``"multiclass"``).
    K : ndarray of shape (n·C, n·C)
        The NTK at θ (float64).
    u_K : float
        Unit roundoff of the NTK's dtype.
    rtol : float
        ``epsilon_tolerance`` of :func:`select_multipliers`.
    weight_decay, loss :
        Route (b), when ``weight_decay`` is given.
    func : str
        The public function, for the error on a non-separating model.
    """
    pb = margin_problem(s, func)
    Kt = K * pb.scale ** (2.0 * (s.L - 1.0))
    Q = _gram(s, Kt, pb.layout)
    mu, eps_min, tau, iterations = select_multipliers(
        Q, pb.b, pb.slack, pb.tt, floor2=accuracy_floor2(u_K, pb), rtol=rtol
    )
    form = GramForm(s, s.theta * pb.scale, pb.tt, Q, pb.b, u_K, pb.layout.coefficients)
    return assemble_fit(
        s, pb, form, mu, eps_min, tau, iterations, weight_decay, loss, "dense", pb.b.size
    )


def accuracy_floor2(u: float, pb: MarginProblem) -> float:
    """Squared accuracy floor of the Gram formula, the slack on ε when accepting a
    near-active restriction (:func:`select_multipliers`)."""
    return 8 * u * pb.tt * max(1.0, math.sqrt(pb.b.size))


def assemble_fit(
    s: _Setup,
    pb: MarginProblem,
    form: EpsilonForm,
    mu: np.ndarray,
    eps_min: float,
    tau: float,
    iterations: int,
    weight_decay: float | None,
    loss: Loss,
    route: NNLSRoute,
    touched: int,
) -> Fit:
    """The :class:`Fit` of margin multipliers ``mu`` (either route)."""
    multipliers = pb.layout.table(mu)
    margins = pb.q_ex / pb.q_min
    wd_mu = None
    if weight_decay is not None:
        wd_mu = _weight_decay_multipliers(s, pb, weight_decay, loss)
    return Fit(
        form=form,
        mu=mu,
        multipliers=multipliers,
        support=np.flatnonzero(multipliers.reshape(s.n, -1).max(axis=1) > 0),
        delta=float(np.max(mu * pb.slack)) if mu.size else 0.0,
        # θ̃ is feasible by construction: min_i q_i(θ̃) = q_min / q_min = 1 exactly.
        max_violation=float(np.max(np.maximum(1.0 - margins, 0.0))),
        epsilon_min=eps_min,
        active_threshold=tau,
        iterations=iterations,
        n_constraints=int(pb.b.size),
        point_norm=math.sqrt(pb.tt),
        loss=loss,
        margins=margins,
        q_min=pb.q_min,
        normalized_margin=pb.q_min / s.theta_norm**s.L,
        smoothed_margin=_smoothed(s, "exponential"),
        wd_mu=wd_mu,
        slack=pb.slack,
        table=pb.layout.table,
        nnls_route=route,
        constraints_touched=int(touched),
    )


def working_set_fit(
    s: _Setup,
    *,
    rtol: float,
    weight_decay: float | None,
    loss: Loss,
    func: str,
    budget: int,
    chunk_size: int | None,
    route: NNLSRoute = "working_set",
    fallback: bool = False,
    steps: int = 1000,
) -> Fit:
    """The multipliers of the margin problem without the NTK: on the working-set route, the
    same NNLS optimum and near-active restriction as :func:`margin_fit`, touching only the
    constraints the working sets need (:mod:`._working_set`); on the matrix-free route (or,
    with ``fallback``, when the working set outgrows the budget), products only
    (:mod:`._matrix_free`)."""
    pb = margin_problem(s, func)
    point = s.theta.detach() * pb.scale
    layout = pb.layout
    solver = make_solver(
        s,
        point,
        layout.rows,
        layout.cols,
        pb.b,
        pb.slack,
        layout.coefficients,
        budget=budget,
        chunk_size=chunk_size,
        func=func,
    )
    u = solver.grads.unit_roundoff
    lower = None
    if route == "working_set":
        try:
            mu, eps_min, tau, iterations = select_working_set(
                solver, pb.tt, accuracy_floor2(u, pb), rtol, ACTIVE_THRESHOLDS
            )
        except GramBudgetError:
            if not fallback:
                raise
            route = "matrix_free"
    if route == "matrix_free":
        mu, eps_min, lower, tau, iterations = solve_matrix_free(
            solver, pb.tt, steps=steps, mu0=solver.last_mu
        )
    form = WorkingSetForm(s, point, pb.tt, pb.b, solver.cache, u, layout.coefficients)
    fit = assemble_fit(
        s, pb, form, mu, eps_min, tau, iterations, weight_decay, loss, route,
        solver.cache.touched,
    )  # fmt: skip
    return fit if lower is None else replace(fit, epsilon_min_lower=lower)
