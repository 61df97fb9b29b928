r"""Shared pieces of the kernel SVM duals: certificates, the cvxpy route, "not separable".

Both :func:`~implicitbias.kernel_svm` and :func:`~implicitbias.multiclass_kernel_svm` solve

.. math::

    \min_{a \ge 0} \tfrac12 a^\top Q a - \mathbf 1^\top a, \qquad Q_{ij} = \langle z_i, z_j\rangle,

with :math:`z_i = y_i \phi(x_i)` (binary) or :math:`z_{(i,j)} = \phi_{y_i}(x_i) - \phi_j(x_i)`
(multiclass), on a copy of ``Q`` normalized to :math:`\max_i Q_{ii} = 1` (the feature radius
is 1). Every figure here is dimensionless and invariant under ``Q -> c Q``.

**Not separable, with a certificate.** By Gordan's alternative exactly one holds: some ``h``
has :math:`\langle z_i, h\rangle > 0` for all ``i``, or some :math:`a \ge 0`,
:math:`\sum_i a_i = 1`, has :math:`\sum_i a_i z_i = 0`. More precisely the hard margin is the
distance from 0 to the convex hull of the :math:`z_i`,
:math:`\gamma^\* = \min_{a \ge 0, \sum a = 1} \|\sum_i a_i z_i\| =
\min \sqrt{a^\top Q a}`, so a point ``a`` of the simplex with
:math:`\sqrt{a^\top Q a} \le 10^{-7}` (:data:`SEPARABILITY_FLOOR` times the radius) proves
that no ``h`` separates the data with a margin above :math:`10^{-7}` of the feature radius.
That ``a`` is the certificate; it is computed exactly by :func:`min_norm_point` when a solver
says "unbounded" without one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from implicitbias._blas import blas_single_thread
from implicitbias._errors import NotSeparableError, SolverError
from implicitbias._lawson_hanson import lawson_hanson
from implicitbias._nonneg_qp import SEPARABILITY_FLOOR
from implicitbias._status import INACCURATE_KKT, OPTIMAL, OPTIMAL_INACCURATE, Status

__all__ = [
    "QPFormulation",
    "SVMSolver",
    "Certificate",
    "certify",
    "cvxpy_nonneg_qp",
    "norm_form",
    "min_norm_point",
    "not_separable_error",
    "separability_certificate",
    "status_from",
    "support_of",
]

#: The ``solver`` option of the kernel SVMs.
SVMSolver = Literal["auto", "active-set", "cvxpy"]
#: How the cvxpy route writes ``aᵀQa`` (``cvxpy_formulation`` of :func:`~implicitbias.kernel_svm`).
QPFormulation = Literal["quad_form", "factor"]


@dataclass(frozen=True)
class Certificate:
    """Optimality figures of a dual point ``a >= 0`` of the normalized (K1) dual.

    ``max_violation``, ``complementarity`` and ``k1_gap`` (``|aᵀQa − Σa| / Σa``, the relative
    gap of the (K1) pair ``½‖h‖²`` / ``Σa − ½aᵀQa``) make up the KKT residual that decides the
    status. The norm form ``min ‖h‖ s.t. ⟨z_i, h⟩ >= 1`` (dual ``max Σμ s.t.
    ‖Σ μ_i z_i‖ <= 1``) is certified as :func:`implicitbias.l2_max_margin` certifies it: the
    primal ``h = Σ a_i z_i`` rescaled to exact feasibility, ``objective = ‖h‖ / min_i (Qa)_i``,
    and the multipliers ``μ = a / ‖h‖`` (``dual_scale = 1/‖h‖``), divided by
    ``‖Σ μ_i z_i‖`` where rounding puts that above 1 (``dual_objective = Σμ``).
    """

    max_violation: float
    complementarity: float
    k1_gap: float
    margin_lower: float
    margin_upper: float
    objective: float = float("inf")
    dual_scale: float = 0.0

    @property
    def kkt_residual(self) -> float:
        return max(self.max_violation, self.complementarity, self.k1_gap)


def certify(Q: np.ndarray, a: np.ndarray) -> Certificate:
    """Optimality figures of a dual point ``a >= 0`` (all dimensionless; inf when unusable)."""
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        return Certificate(np.inf, np.inf, np.inf, 0.0, np.inf)
    Qa = Q @ a
    s = float(np.sum(a))
    quad = float(a @ Qa)
    if s <= 0 or quad <= 0:
        return Certificate(np.inf, np.inf, np.inf, 0.0, np.inf)
    g = Qa - 1.0
    max_violation = max(0.0, float(-np.min(g)))
    complementarity = float(np.max(a * np.abs(g))) / s
    k1_gap = abs(quad - s) / s
    margin_lower = max(0.0, float(np.min(Qa)) / np.sqrt(quad))
    margin_upper = float(np.sqrt(quad) / s)
    # the norm form, rescaled to exact primal and dual feasibility (as l2_max_margin does)
    norm = float(np.sqrt(quad))
    qmin = float(np.min(Qa))
    objective = norm / qmin if qmin > 0 else float("inf")
    dual_scale = 1.0 / norm
    mu = a * dual_scale
    cq = float(np.sqrt(max(float(mu @ (Qa * dual_scale)), 0.0)))  # ‖Σ μ_i z_i‖
    if cq > 1.0:
        dual_scale /= cq
    return Certificate(
        max_violation, complementarity, k1_gap, margin_lower, margin_upper, objective, dual_scale
    )


def norm_form(
    cert: Certificate, a: np.ndarray, radius: float
) -> tuple[float, np.ndarray, float, float, float]:
    """The norm-form figures of ``a`` in the user's units (features ``radius`` times the
    normalized ones): ``(objective, dual, dual_objective, duality_gap, relative_gap)`` with
    ``objective = ‖h‖`` of the exactly feasible primal, ``dual = μ >= 0`` exactly dual
    feasible, ``dual_objective = Σμ``, the absolute gap and ``|gap| / objective``."""
    objective = float(cert.objective / radius)
    mu = a * (cert.dual_scale / radius)
    dual_objective = float(np.sum(mu))
    gap = objective - dual_objective
    return objective, mu, dual_objective, gap, abs(gap) / objective


def status_from(cert: Certificate, tol: float) -> Status | None:
    """``"optimal"`` for a KKT residual ``<= tol``, ``"optimal_inaccurate"`` up to
    :data:`~implicitbias._status.INACCURATE_KKT`, else ``None`` (the route failed)."""
    r = cert.kkt_residual
    if r <= tol:
        return OPTIMAL
    if r <= max(INACCURATE_KKT, tol):
        return OPTIMAL_INACCURATE
    return None


def cvxpy_nonneg_qp(
    Q: np.ndarray, *, func: str, formulation: QPFormulation, cvxpy_solver: str | None
) -> np.ndarray | None:
    """Reference route: the same dual through cvxpy (imported lazily); ``None`` if unbounded.

    ``formulation="quad_form"`` passes ``Q`` as the quadratic term (``psd_wrap`` skips the
    eigenvalue check: the kernel was checked up front); ``"factor"`` writes ``||B^T a||^2``
    with ``Q = B B^T`` from an eigen decomposition truncated at the numerical rank (fast when
    the rank is low).
    """
    import cvxpy as cp

    n = Q.shape[0]
    a = cp.Variable(n, nonneg=True)
    if formulation == "quad_form":
        quad = cp.quad_form(a, cp.psd_wrap(Q))
    else:
        w, V = np.linalg.eigh(Q)
        keep = w > max(float(w[-1]), 0.0) * n * np.finfo(float).eps
        B = V[:, keep] * np.sqrt(w[keep])
        quad = cp.sum_squares(B.T @ a)
    prob = cp.Problem(cp.Maximize(cp.sum(a) - 0.5 * quad))
    solver = cvxpy_solver or "CLARABEL"
    try:
        prob.solve(solver=solver)
    except cp.error.SolverError as exc:
        raise SolverError(f"{func}: cvxpy solver {solver} failed: {exc}") from exc
    if prob.status in ("unbounded", "unbounded_inaccurate"):
        return None
    if a.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise SolverError(f"{func}: cvxpy solver {solver} returned status {prob.status!r}")
    return np.maximum(np.asarray(a.value, dtype=np.float64), 0.0)


def min_norm_point(Q: np.ndarray) -> np.ndarray | None:
    r"""Exact :math:`\arg\min_{a \ge 0, \sum a = 1} a^\top Q a` (the point of the convex hull of
    the features nearest 0), or ``None`` if the active-set loop does not finish.

    The classical NNLS reformulation (Lawson and Hanson, ch. 23):
    :math:`\min_{u \ge 0} \|Z u\|^2 + (\mathbf 1^\top u - 1)^2` has the solution
    :math:`u = a^\* / (1 + \gamma^{\*2})`, so ``a* = u / sum(u)``. In Gram form this is the
    NNLS with matrix :math:`Q + \mathbf 1 \mathbf 1^\top` and right-hand side :math:`\mathbf 1`
    (in its range), solved by the exact Lawson--Hanson loop.
    """
    n = Q.shape[0]
    Qp = Q + 1.0
    with blas_single_thread():
        u, _, status = lawson_hanson(
            Qp, np.ones(n), np.ones(n, dtype=bool), tol=None, max_iter=10 * n + 10
        )
    s = float(np.sum(u))
    if status != "optimal" or not np.all(np.isfinite(u)) or s <= 0:
        return None
    return u / s


def separability_certificate(
    Q: np.ndarray, hint: np.ndarray | None = None
) -> tuple[np.ndarray, float] | None:
    """A certificate ``(a, ||sum a_i z_i||)`` of non-separability (``Q`` normalized), or None.

    ``hint`` (a solver's diverging or tiny-margin iterate) is tried first, normalized to the
    simplex; then the exact :func:`min_norm_point`.
    """
    candidates: list[Callable[[], np.ndarray | None]] = []
    if hint is not None and np.all(np.isfinite(hint)) and np.all(hint >= 0) and hint.sum() > 0:
        candidates.append(lambda: hint / float(np.sum(hint)))
    candidates.append(lambda: min_norm_point(Q))
    for make in candidates:
        a = make()
        if a is None:
            continue
        value = float(np.sqrt(max(float(a @ (Q @ a)), 0.0)))
        if value <= SEPARABILITY_FLOOR:
            return a, value
    return None


def not_separable_error(
    func: str, a: np.ndarray, value: float, radius: float, *, what: str = "y_i phi(x_i)"
) -> NotSeparableError:
    """The error, with the certificate ``a`` in ``error.certificate``.

    ``value`` is ``||sum_i a_i z_i||`` on the normalized kernel and ``radius`` the feature
    radius ``max_i ||z_i||`` in the user's units; ``error.certificate_norm`` is
    ``value * radius`` (in the user's units) and ``error.radius`` is ``radius``.
    """
    err = NotSeparableError(
        f"{func}: the data are not separable in the kernel's feature space: some non-negative "
        f"combination of the feature vectors {what} vanishes, so no h satisfies all margin "
        f"constraints. Certificate (error.certificate): a >= 0 with sum(a) = 1 and "
        f"||sum_i a_i {what}|| = {value * radius:.3g} <= {SEPARABILITY_FLOOR:.0e} x the "
        f"feature radius (largest ||{what}||) = {radius:.3g}, so no h has a margin above "
        f"{SEPARABILITY_FLOOR:.0e} of the radius. Check for duplicate inputs with different "
        f"labels or a rank-deficient kernel; a soft-margin SVM is the usual remedy."
    )
    err.certificate = a  # type: ignore[attr-defined]
    err.certificate_norm = value * radius  # type: ignore[attr-defined]
    err.radius = radius  # type: ignore[attr-defined]
    return err


def support_of(a: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """Support of an interior-point answer, where no multiplier is exactly zero.

    Interior-point iterates keep ``a_i * slack_i`` small but positive, so neither a multiplier
    threshold nor a slack threshold alone reads the support reliably (multipliers of inactive
    constraints decay only like gap / slack; slacks of active ones like gap / a_i). The
    scale-free strict-complementarity split is: ``i`` is a support index when its normalized
    multiplier ``a_i / max(a)`` exceeds its slack ``(Qa)_i - 1`` (and ``1e-9``).
    """
    top = float(np.max(a)) if a.size else 0.0
    if top <= 0:
        return np.zeros(0, dtype=np.intp)
    slack = Q @ a - 1.0
    rel = a / top
    return np.flatnonzero((rel > np.maximum(slack, 0.0)) & (rel > 1e-9))
