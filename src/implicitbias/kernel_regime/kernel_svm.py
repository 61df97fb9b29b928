"""Problem (K1): the hard-margin kernel SVM without bias, solved exactly through its dual.

The dual of (K1) is a bound-constrained convex quadratic program (no equality constraint,
because there is no bias). :func:`implicitbias._nonneg_qp.solve_nonneg_qp` (shared with
:func:`implicitbias.nnls_gram`) solves it exactly:

* an outer working-set (chunking) loop, so the linear algebra scales with the number of
  support vectors rather than with ``n``;
* on each working set, block principal pivoting (the primal-dual active-set method of
  Kunisch and Rendl, with the Judice--Pires safeguard against cycling), falling back to
  Lawson--Hanson (and a monotone primal active-set loop with divergence detection) when
  pivoting does not settle (as on rank-deficient kernels);
* face systems ``Q_FF x = 1`` solved by a face solver that reuses one Cholesky
  factor across nearby faces and handles singular ``Q_FF`` with a tiny proximal shift plus
  proximal-point refinement.

The answer is then certified (primal feasibility, complementary slackness, zero duality gap)
before it is returned. :mod:`implicitbias.kernel_regime.multiclass_svm` reuses the solver.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from implicitbias._errors import (
    InaccurateSolutionWarning,
    NotSeparableError,
    SolverError,
)
from implicitbias._nonneg_qp import SEPARABILITY_FLOOR as _SEPARABILITY_FLOOR
from implicitbias._nonneg_qp import QPOutcome as _QPOutcome  # noqa: F401  (its result type)
from implicitbias._nonneg_qp import solve_nonneg_qp as _solve_nonneg_qp
from implicitbias._validation import (
    as_float_array,
    as_kernel_matrix,
    as_pm1_labels,
    check_bool,
    check_choice,
    check_cvxpy_solver,
    check_positive,
    fail,
)

__all__ = ["KernelSVMResult", "kernel_svm"]

_FUNC = "kernel_svm"

# Above `tol`, up to this level, an answer is returned with an InaccurateSolutionWarning.
_INACCURATE_LEVEL = 1e-5


@dataclass(frozen=True)
class _Certificate:
    max_violation: float
    complementarity: float
    duality_gap: float
    margin_lower: float
    margin_upper: float

    @property
    def kkt_residual(self) -> float:
        return max(self.max_violation, self.complementarity, self.duality_gap)


def _certify(Q: np.ndarray, a: np.ndarray) -> _Certificate:
    """Optimality figures of a dual point ``a >= 0`` (all dimensionless; inf when unusable)."""
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        return _Certificate(np.inf, np.inf, np.inf, 0.0, np.inf)
    Qa = Q @ a
    s = float(np.sum(a))
    quad = float(a @ Qa)
    if s <= 0 or quad <= 0:
        return _Certificate(np.inf, np.inf, np.inf, 0.0, np.inf)
    g = Qa - 1.0
    max_violation = max(0.0, float(-np.min(g)))
    complementarity = float(np.max(a * np.abs(g))) / s
    duality_gap = abs(quad - s) / s
    margin_lower = max(0.0, float(np.min(Qa)) / np.sqrt(quad))
    margin_upper = np.sqrt(quad) / s
    return _Certificate(max_violation, complementarity, duality_gap, margin_lower, margin_upper)


def _status_from(cert: _Certificate, tol: float) -> str | None:
    r = cert.kkt_residual
    if r <= tol:
        return "optimal"
    if r <= max(_INACCURATE_LEVEL, tol):
        return "optimal_inaccurate"
    return None


def _cvxpy_nonneg_qp(Q: np.ndarray, *, formulation: str, cvxpy_solver: str | None) -> np.ndarray:
    """Reference route: the same dual through cvxpy (imported lazily).

    ``formulation="quad_form"`` passes ``Q`` as the quadratic term (``psd_wrap`` skips the
    eigenvalue check); ``"factor"`` writes ``||B^T a||^2`` with ``Q = B B^T`` from an eigen
    decomposition truncated at the numerical rank (fast when the rank is low).
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
        raise SolverError(f"{_FUNC}: cvxpy solver {solver} failed: {exc}") from exc
    if prob.status in ("unbounded", "unbounded_inaccurate"):
        return np.full(n, np.inf)
    if a.value is None or prob.status not in ("optimal", "optimal_inaccurate"):
        raise SolverError(f"{_FUNC}: cvxpy solver {solver} returned status {prob.status!r}")
    return np.maximum(np.asarray(a.value, dtype=np.float64), 0.0)


def _solve_certified(
    Q: np.ndarray,
    K: np.ndarray,
    *,
    func: str,
    solver: str,
    tol: float,
    fallback: bool,
    cvxpy_solver: str | None,
    cvxpy_formulation: str,
    radius: float,
) -> tuple[np.ndarray, _Certificate, str, str, int, str]:
    """Solve min_{a>=0} ½aᵀQa − 1ᵀa by the chosen routes in turn; return the first certified answer.

    Shared by :func:`kernel_svm` and :func:`multiclass_kernel_svm`. Raises
    :class:`NotSeparableError` on a certified infeasible primal, a clear ``ValueError`` when the
    kernel ``K`` turns out not to be positive semidefinite, and :class:`SolverError` when no
    route passes the checks. Returns ``(a, certificate, status, solver name, iterations, route)``.
    """
    routes = ["active-set", "cvxpy"] if solver in ("auto", "active-set") else ["cvxpy"]
    if not fallback:
        routes = routes[:1]
    failures: list[str] = []
    for k, route in enumerate(routes):
        n_iter = 0
        if route == "active-set":
            try:
                out = _solve_nonneg_qp(Q, tol=tol, func=func)
            except SolverError as exc:
                _check_psd(K, func, exc)
                failures.append(f"active-set: {exc}")
                continue
            a, n_iter = out.a, out.n_iter
            name = "active-set"
            if getattr(out, "diverged", False):
                cert = _certify(Q, a)
                raise NotSeparableError(_not_separable_message(func, cert.margin_upper, radius))
        else:
            a = _cvxpy_nonneg_qp(Q, formulation=cvxpy_formulation, cvxpy_solver=cvxpy_solver)
            name = f"cvxpy:{cvxpy_solver or 'CLARABEL'}" + (" (fallback)" if k > 0 else "")
            if np.all(np.isinf(a)):  # cvxpy reported the dual unbounded
                raise NotSeparableError(_not_separable_message(func, 0.0, radius))
        cert = _certify(Q, a)
        if np.all(np.isfinite(a)) and cert.margin_upper <= _SEPARABILITY_FLOOR * radius:
            raise NotSeparableError(_not_separable_message(func, cert.margin_upper, radius))
        status = _status_from(cert, tol)
        if status is None:
            failures.append(f"{name}: KKT residual {cert.kkt_residual:.3g}")
            continue
        if status == "optimal_inaccurate":
            warnings.warn(
                f"{func}: the {name} answer satisfies the optimality checks only to "
                f"{cert.kkt_residual:.3g} (tol {tol:.3g}); margin bounds "
                f"[{cert.margin_lower:.10g}, {cert.margin_upper:.10g}].",
                InaccurateSolutionWarning,
                stacklevel=3,
            )
        return a, cert, status, name, n_iter, route
    raise SolverError(f"{func}: no route passed the optimality checks ({'; '.join(failures)}).")


def _check_psd(K: np.ndarray, func: str, cause: Exception) -> None:
    """After a solver failure: say so plainly when the kernel is not positive semidefinite."""
    lam_min = float(np.linalg.eigvalsh(K)[0])
    scale = max(float(np.max(np.abs(K))), 1e-300)
    if lam_min < -1e-8 * scale * K.shape[0]:
        raise fail(
            func,
            "K" if func == "kernel_svm" else "K_full",
            "a positive semidefinite kernel matrix",
            f"a matrix with smallest eigenvalue {lam_min:.3g}",
        ) from cause


def _not_separable_message(func: str, bound: float, radius: float) -> str:
    return (
        f"{func}: the data are not separable in the kernel's feature space: some non-negative "
        f"combination of the signed feature vectors y_i phi(x_i) vanishes, so no h satisfies "
        f"all margin constraints (certified margin upper bound {bound:.3g} vs feature radius "
        f"{radius:.3g}). Check for duplicate inputs with opposite labels or a rank-deficient "
        f"kernel; a soft-margin SVM is the usual remedy."
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSVMResult:
    """Solution of the hard-margin kernel SVM without bias (problem K1).

    Attributes
    ----------
    dual : ndarray, shape (n,)
        Optimal dual variables ``a >= 0``; ``h = sum_i a_i y_i phi(x_i)``.
    coef : ndarray, shape (n,)
        ``a * y``, the expansion coefficients of ``h`` in the features ``phi(x_j)``.
    margin : float
        ``gamma = 1 / ||h||``: the margin of the unit-norm solution ``h / ||h||``.
    norm : float
        ``||h|| = sqrt(a^T Q a)`` (equal to ``sqrt(sum a)`` at the optimum).
    objective : float
        Optimal value ``1/2 ||h||^2`` of (K1) (and of its dual).
    support : ndarray of int
        Indices with ``a_i > 0`` (support vectors).
    status : str
        ``"optimal"`` or ``"optimal_inaccurate"``.
    solver : str
        Route used: ``"active-set"``, ``"cvxpy:<SOLVER>"`` (possibly with ``" (fallback)"``).
    solve_time : float
        Wall time in seconds.
    max_violation : float
        ``max_i max(0, 1 - y_i <phi(x_i), h>)``: primal infeasibility.
    kkt_residual : float
        Largest of ``max_violation``, the relative complementary slackness
        ``max_i a_i |y_i <phi_i, h> - 1| / sum(a)`` and ``duality_gap``.
    duality_gap : float
        ``|a^T Q a - sum(a)| / sum(a)``: relative gap between primal and dual objectives.
    margin_lower, margin_upper : float
        Certified bounds on the optimal margin from this ``a``:
        ``min_i (Qa)_i / sqrt(a^T Q a) <= gamma* <= sqrt(a^T Q a) / sum(a)``.
    n_iter : int
        Inner iterations of the active-set solver (0 for cvxpy).
    """

    dual: np.ndarray
    coef: np.ndarray
    margin: float
    norm: float
    objective: float
    support: np.ndarray
    status: str
    solver: str
    solve_time: float
    max_violation: float
    kkt_residual: float
    duality_gap: float
    margin_lower: float
    margin_upper: float
    n_iter: int = 0
    _n: int = field(default=0, repr=False)

    def decision_function(self, K_new_train: Any) -> np.ndarray:
        """Scores ``<phi(x), h> = sum_j a_j y_j K(x, x_j)`` of the minimum-norm ``h``.

        Parameters
        ----------
        K_new_train : array_like, shape (m, n)
            Kernel between new points (rows) and the training points (columns).

        Returns
        -------
        ndarray, shape (m,)
        """
        Kn = as_float_array(K_new_train, "KernelSVMResult.decision_function", "K_new_train", ndim=2)
        if Kn.shape[1] != self._n:
            raise fail(
                "KernelSVMResult.decision_function",
                "K_new_train",
                f"an (m, {self._n}) kernel between new and training points",
                f"shape {Kn.shape}",
            )
        return Kn @ self.coef

    def predict(self, K_new_train: Any) -> np.ndarray:
        """Predicted labels ``sign(<phi(x), h>)`` in {-1, 0, +1}, shape (m,)."""
        return np.sign(self.decision_function(K_new_train))


def kernel_svm(
    K: Any,
    y: Any,
    *,
    solver: str = "auto",
    tol: float = 1e-9,
    cvxpy_solver: str | None = None,
    cvxpy_formulation: str = "quad_form",
    fallback: bool = True,
) -> KernelSVMResult:
    r"""Hard-margin kernel SVM without bias (problem K1), solved exactly through its dual.

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad \text{s.t.}\quad y_i \langle \phi(x_i), h\rangle \ge 1,
        \qquad i = 1, \dots, n,

    with dual :math:`\max_{a \ge 0} \mathbf 1^\top a - \tfrac12 a^\top Q a`,
    :math:`Q = (y y^\top) \odot K`, :math:`h = \sum_i a_i y_i \phi(x_i)`,
    :math:`\|h\|^2 = \sum_i a_i` and margin :math:`\gamma = 1/\|h\|`. There is no bias, hence
    no equality constraint in the dual. This is the early-phase (kernel-regime) predictor of
    Lyu et al. (2024) when ``K`` is the empirical NTK at initialization.

    ======================  ==========================  ============
    math                    argument / field            shape
    ======================  ==========================  ============
    :math:`K_{ij}`          ``K``                       (n, n)
    :math:`y_i \in \{\pm1\}`  ``y``                     (n,)
    :math:`a`               ``result.dual``             (n,)
    :math:`\gamma`          ``result.margin``           scalar
    ======================  ==========================  ============

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric positive semidefinite kernel (Gram) matrix of the training points.
    y : array_like, shape (n,)
        Labels in {-1, +1} ({0, 1} labels are refused, not converted).
    solver : {"auto", "active-set", "cvxpy"}
        ``"auto"``/``"active-set"``: the dedicated exact active-set solver (working-set
        chunking, block principal pivoting with a monotone active-set fallback, Cholesky
        factors reused across faces, proximal refinement for singular ``K``); ``"cvxpy"``:
        the reference route (an interior-point solve of the same dual).
    tol : float
        Certificate tolerance: the answer is ``"optimal"`` when primal violation, relative
        complementary slackness and relative duality gap are all ``<= tol``.
    cvxpy_solver : str, optional
        Solver for the cvxpy route (default CLARABEL).
    cvxpy_formulation : {"quad_form", "factor"}
        How the cvxpy route writes ``a^T Q a``: ``quad_form`` with ``psd_wrap`` or
        ``sum_squares`` of an eigen-factor of ``Q`` truncated at its numerical rank.
    fallback : bool
        If the active-set answer fails its certificate, retry with cvxpy before raising.

    Returns
    -------
    KernelSVMResult

    Raises
    ------
    NotSeparableError
        The data are not separable in the kernel's feature space (certified: a non-negative
        ``a`` with ``sum(a) = 1`` and ``a^T Q a`` numerically zero).
    SolverError
        No route produced an answer that passes the optimality checks.

    Warns
    -----
    InaccurateSolutionWarning
        The answer satisfies the optimality checks only to within 1e-5.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> res = ib.kernel_svm(X @ X.T, np.array([1.0, -1.0]))
    >>> np.round(res.dual, 6)  # orthogonal features: a_i = 1 / K_ii
    array([1.  , 0.25])
    >>> round(res.margin, 6)  # 1 / sqrt(1 + 1/4)
    0.894427
    >>> res.predict(np.array([[3.0, 0.0], [0.0, 5.0]]) @ X.T)
    array([ 1., -1.])

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu. Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking. ICLR 2024, arXiv:2311.18817.
    K. Kunisch, F. Rendl. An infeasible active set method for quadratic problems with simple
    bounds. SIAM J. Optim. 14(1), 2003. C. L. Lawson, R. J. Hanson. Solving Least Squares
    Problems, 1974 (ch. 23).
    """
    t0 = time.perf_counter()
    Km = as_kernel_matrix(K, _FUNC, "K")
    n = Km.shape[0]
    yv = as_pm1_labels(y, _FUNC, "y", n=n)
    check_choice(solver, _FUNC, "solver", ("auto", "active-set", "cvxpy"))
    check_choice(cvxpy_formulation, _FUNC, "cvxpy_formulation", ("quad_form", "factor"))
    tol = check_positive(tol, _FUNC, "tol")
    fallback = check_bool(fallback, _FUNC, "fallback")
    if cvxpy_solver is not None:
        cvxpy_solver = check_cvxpy_solver(cvxpy_solver, _FUNC, "CLARABEL")
    if np.any(np.diag(Km) < 0):
        raise fail(
            _FUNC, "K", "positive semidefinite (non-negative diagonal)", "a negative diagonal entry"
        )

    Q = Km * yv[:, None]  # Q = (y y^T) * K with one n x n temporary
    Q *= yv[None, :]
    radius = float(np.sqrt(max(float(np.max(np.diag(Km))), 0.0)))
    if radius == 0.0:
        raise NotSeparableError(_not_separable_message(_FUNC, 0.0, 0.0))

    a, cert, status, name, n_iter, route = _solve_certified(
        Q,
        Km,
        func=_FUNC,
        solver=solver,
        tol=tol,
        fallback=fallback,
        cvxpy_solver=cvxpy_solver,
        cvxpy_formulation=cvxpy_formulation,
        radius=radius,
    )
    s = float(np.sum(a))
    quad = float(a @ (Q @ a))
    norm = float(np.sqrt(quad))
    return KernelSVMResult(
        dual=a,
        coef=a * yv,
        margin=1.0 / norm,
        norm=norm,
        objective=0.5 * s,
        support=np.flatnonzero(a > 0) if route == "active-set" else _support_of(a, Q),
        status=status,
        solver=name,
        solve_time=time.perf_counter() - t0,
        max_violation=cert.max_violation,
        kkt_residual=cert.kkt_residual,
        duality_gap=cert.duality_gap,
        margin_lower=cert.margin_lower,
        margin_upper=cert.margin_upper,
        n_iter=n_iter,
        _n=n,
    )


def _support_of(a: np.ndarray, Q: np.ndarray) -> np.ndarray:
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
