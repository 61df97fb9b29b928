"""Frozen result records of the rich-regime solvers, and the shared certificate logic.

The records use the library's result vocabulary (:mod:`implicitbias._status`,
``docs/results.md``): ``objective``/``dual``/``dual_objective`` of the norm form of each
problem, ``duality_gap`` (absolute) and ``relative_gap``, ``max_violation``, ``iterations``,
``status``, ``solver``, ``solve_time``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from implicitbias._errors import InaccurateSolutionWarning, SolverError
from implicitbias._results import ResultRecord
from implicitbias._status import (
    INACCURATE_GAP,
    OPTIMAL,
    OPTIMAL_INACCURATE,
    SUPPORT_RTOL,
    Status,
    renamed,
)

__all__ = [
    "MaxMarginResult",
    "InterpolationResult",
    "NuclearNormResult",
]

@dataclass(frozen=True)
class MaxMarginResult(ResultRecord):
    """Solution of ``min ‖w‖_p s.t. y_i ⟨w, x_i⟩ ≥ 1`` with its dual certificate.

    Attributes
    ----------
    w : ndarray of shape (d,)
        The minimum-norm feasible predictor, rescaled so that ``min_i y_i ⟨w, x_i⟩ = 1``.
    margin : float
        ``1 / ‖w‖_p``: the margin ``min_i y_i ⟨w/‖w‖_p, x_i⟩`` of the unit-norm direction.
    norm : float
        ``‖w‖_p``.
    objective : float
        The optimal value of the problem, ``‖w‖_p`` (equal to ``norm``).
    dual : ndarray of shape (n,)
        Multipliers ``μ ≥ 0`` with ``‖Xᵀ(μ ⊙ y)‖_q ≤ 1`` (``1/p + 1/q = 1``), rescaled to be
        exactly dual feasible; ``Σ μ_i`` is a lower bound on the optimal value.
    dual_objective : float
        ``Σ μ_i``.
    support : ndarray of int
        Indices of the support vectors, the examples with ``μ_i > 0``.
    active_features : ndarray of int
        Indices of the nonzero coordinates of ``w``.
    p : float
        The norm (``1.0``, ``2.0``, any ``p ≥ 1``, or ``inf``).
    status : {"optimal", "optimal_inaccurate"}
        From the certified relative gap against ``tol``.
    solver : str
        The route actually used, e.g. ``"highs-colgen"``, ``"nnls-ldp"``, ``"cvxpy:CLARABEL"``.
    solve_time : float
        Wall time in seconds.
    duality_gap : float
        ``norm − dual_objective`` (≥ 0 up to rounding): a certified bound on suboptimality.
    relative_gap : float
        ``|duality_gap| / norm``.
    max_violation : float
        ``max(0, 1 − min_i y_i ⟨w_raw, x_i⟩)`` of the solver's raw output, before rescaling.
    dual_violation : float
        ``max(0, ‖Xᵀ(μ_raw ⊙ y)‖_q − 1)`` of the solver's raw multipliers, before rescaling.
    iterations : int
        Column-generation rounds (fast ℓ1 route), else the solver's iteration count or 0.
    """

    w: np.ndarray
    margin: float
    norm: float
    objective: float
    dual: np.ndarray
    dual_objective: float
    support: np.ndarray
    active_features: np.ndarray
    p: float
    status: Status
    solver: str
    solve_time: float
    duality_gap: float
    relative_gap: float
    max_violation: float
    dual_violation: float
    iterations: int = 0


@dataclass(frozen=True)
class InterpolationResult(ResultRecord):
    """Solution of ``min ‖w‖_p s.t. X w = y`` with its dual certificate.

    Attributes
    ----------
    w : ndarray of shape (d,)
        The minimum-norm interpolant.
    norm : float
        ``‖w‖_p``.
    objective : float
        The optimal value ``‖w‖_p``.
    dual : ndarray of shape (n,)
        A free-sign multiplier ``ν`` with ``‖Xᵀν‖_q ≤ 1``; ``⟨ν, y⟩`` is a lower bound.
    dual_objective : float
        ``⟨ν, y⟩``.
    active_features : ndarray of int
        Indices of the nonzero coordinates of ``w``.
    p : float
        ``1.0`` or ``2.0``.
    status, solver, solve_time :
        As in :class:`MaxMarginResult`.
    duality_gap, relative_gap : float
        ``norm − dual_objective`` and its magnitude relative to ``norm``.
    max_violation : float
        ``max_i |⟨w, x_i⟩ − y_i|``.
    iterations : int
        Simplex iterations (ℓ1), or 0 (ℓ2, a direct solve).
    max_residual : float
        Deprecated alias of ``max_violation`` (since 0.2, removed in 0.3).
    """

    w: np.ndarray
    norm: float
    objective: float
    dual: np.ndarray
    dual_objective: float
    active_features: np.ndarray
    p: float
    status: Status
    solver: str
    solve_time: float
    duality_gap: float
    relative_gap: float
    max_violation: float
    iterations: int = 0

    max_residual = renamed("max_violation")


@dataclass(frozen=True)
class NuclearNormResult(ResultRecord):
    """Solution of ``min ‖W‖_* s.t. W_ij = M_ij on Ω`` (and ``W = Wᵀ``) with its certificate.

    Attributes
    ----------
    W : ndarray of shape (d1, d2)
        The minimum nuclear-norm completion.
    nuclear_norm : float
        ``‖W‖_*``.
    objective : float
        The optimal value (equal to ``nuclear_norm``).
    dual : ndarray of shape (d1, d2) or None
        A dual certificate ``Y`` supported on Ω with ``‖Y‖_op ≤ 1`` (rescaled to be exactly
        feasible), so that ``⟨Y, M⟩`` is a lower bound on the optimal value; ``None`` when the
        route gives none.
    dual_objective : float
        ``⟨Y, M⟩`` (``nan`` without a certificate).
    rank : int
        Numerical rank of ``W`` (singular values above ``1e-6·‖W‖_op``).
    status, solver, solve_time :
        As in :class:`MaxMarginResult`.
    duality_gap, relative_gap : float
        ``nuclear_norm − dual_objective`` and its magnitude relative to ``nuclear_norm``.
    max_violation : float
        ``max_{(i,j)∈Ω} |W_ij − M_ij|`` (``W`` is returned exactly symmetric when
        symmetric).
    iterations : int
        Outer iterations of the fast route, or the solver's iteration count.
    max_constraint_violation : float
        Deprecated alias of ``max_violation`` (since 0.2, removed in 0.3).
    """

    W: np.ndarray
    nuclear_norm: float
    objective: float
    dual: np.ndarray | None
    dual_objective: float
    rank: int
    status: Status
    solver: str
    solve_time: float
    duality_gap: float
    relative_gap: float
    max_violation: float
    iterations: int = 0

    max_constraint_violation = renamed("max_violation")


def classify(func: str, relative_gap: float, tol: float, *, what: str, hint: str) -> Status:
    """Map a certified relative gap to a status; warn when inaccurate, raise when wrong."""
    if not np.isfinite(relative_gap):
        raise SolverError(f"{func}: the {what} returned a non-finite duality gap. {hint}")
    if relative_gap <= tol:
        return OPTIMAL
    if relative_gap <= max(INACCURATE_GAP, tol):
        warnings.warn(
            f"{func}: the {what} returned a solution with certified relative duality gap "
            f"{relative_gap:.3g} > tol = {tol:.3g}. {hint}",
            InaccurateSolutionWarning,
            stacklevel=3,
        )
        return OPTIMAL_INACCURATE
    raise SolverError(
        f"{func}: the {what} returned a solution that fails its optimality check: certified "
        f"relative duality gap {relative_gap:.3g} > {max(INACCURATE_GAP, tol):.3g}. {hint}"
    )


def nonzero_indices(v: np.ndarray, rtol: float = SUPPORT_RTOL) -> np.ndarray:
    """Indices of entries above ``rtol`` times the largest magnitude."""
    a = np.abs(v)
    top = float(a.max()) if a.size else 0.0
    if top == 0.0:
        return np.zeros(0, dtype=np.int64)
    return np.flatnonzero(a > rtol * top).astype(np.int64)
