"""Max-margin linear classifiers without bias: ℓ1 (rich regime), ℓ2 (kernel regime), ℓp.

All three solve

    min_w ‖w‖_p   s.t.   y_i ⟨w, x_i⟩ ≥ 1,  i = 1..n,

whose dual is ``max Σ μ_i s.t. μ ≥ 0, ‖Xᵀ(μ ⊙ y)‖_q ≤ 1`` with ``1/p + 1/q = 1``. Every route
returns a primal point rescaled to be exactly feasible and multipliers rescaled to be exactly
dual feasible, so ``norm − Σ μ`` is a certified bound on suboptimality.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning, linprog, nnls

from implicitbias._errors import NotSeparableError, SolverError
from implicitbias._validation import (
    as_float_array,
    as_pm1_labels,
    check_choice,
    check_int,
    check_positive,
    check_same_length,
    fail,
    fail_type,
)
from implicitbias.rich_regime._cvxpy import check_cvxpy_solver, solve_problem
from implicitbias.rich_regime._results import MaxMarginResult, classify, nonzero_indices

__all__ = ["l1_max_margin", "l2_max_margin", "lp_max_margin"]

_HIGHS_OPTIONS = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}
#: Tighter-than-default tolerances for the reference routes (the answer is certified anyway).
_CVXPY_OPTIONS = {
    "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
}
_HINT = "Try solver='cvxpy' (optionally with another cvxpy_solver) or rescale the data."


def _not_separable(func: str, detail: str = "") -> NotSeparableError:
    return NotSeparableError(
        f"{func}: the data are not linearly separable by a linear classifier without bias "
        f"(no w satisfies y_i <w, x_i> >= 1 for all i){detail}. The max-margin problem has no "
        "solution; check the labels, or use features in which the classes are separable."
    )


def _check_data(X: Any, y: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array(X, func, "X", ndim=2)
    y = as_pm1_labels(y, func, "y")
    check_same_length(func, X=X, y=y)
    return X, y


def _dual_exponent(p: float) -> float:
    if p == 1.0:
        return np.inf
    if np.isinf(p):
        return 1.0
    return p / (p - 1.0)


def _norm(v: np.ndarray, p: float) -> float:
    return float(np.linalg.norm(v, ord=p))


def _finish(
    X: np.ndarray,
    y: np.ndarray,
    w: np.ndarray,
    mu: np.ndarray,
    *,
    p: float,
    func: str,
    route: str,
    tol: float,
    t0: float,
    iterations: int,
    pricing: np.ndarray | None = None,
) -> MaxMarginResult:
    """Rescale to exact primal/dual feasibility, certify the gap, build the record."""
    q = y * (X @ w)
    qmin = float(q.min())
    if not qmin > 0:
        raise SolverError(
            f"{func}: the {route} route returned a point with min_i y_i <w, x_i> = {qmin:.3g} "
            f"<= 0, which cannot be rescaled to a feasible one. {_HINT}"
        )
    max_violation = max(0.0, 1.0 - qmin)
    w = w / qmin
    mu = np.maximum(np.asarray(mu, dtype=np.float64), 0.0)
    c = X.T @ (mu * y) if pricing is None else pricing
    cq = _norm(c, _dual_exponent(p))
    dual_violation = max(0.0, cq - 1.0)
    if cq > 1.0:
        mu = mu / cq
    norm = _norm(w, p)
    dual_obj = float(mu.sum())
    gap = norm - dual_obj
    rel = abs(gap) / norm if norm > 0 else abs(gap)
    status = classify(func, rel, tol, what=f"{route} route", hint=_HINT)
    return MaxMarginResult(
        w=w,
        margin=1.0 / norm,
        norm=norm,
        objective=norm,
        dual=mu,
        dual_objective=dual_obj,
        support=nonzero_indices(mu),
        active_features=nonzero_indices(w),
        p=float(p),
        status=status,
        solver=route,
        solve_time=time.perf_counter() - t0,
        duality_gap=float(gap),
        relative_gap=float(rel),
        max_violation=float(max_violation),
        dual_violation=float(dual_violation),
        iterations=int(iterations),
    )


# ----------------------------------------------------------------------------------------------
# Separability (exact LP in the range of X; used only when the fast ℓ1 route needs it)


def _is_separable(X: np.ndarray, y: np.ndarray) -> bool:
    """Whether some w has y_i <w, x_i> >= 1 for all i, by an LP over an orthonormal basis
    of range(X) (r <= min(n, d) free variables)."""
    U, s, _ = np.linalg.svd(X, full_matrices=False)
    r = int(np.sum(s > s[0] * max(X.shape) * np.finfo(float).eps)) if s.size and s[0] > 0 else 0
    if r == 0:
        return False
    B = y[:, None] * U[:, :r]
    res = linprog(
        np.zeros(r),
        A_ub=-B,
        b_ub=-np.ones(len(y)),
        bounds=(None, None),
        method="highs",
        options=_HIGHS_OPTIONS,
    )
    if res.status == 2:
        return False
    if res.status == 0:
        return True
    raise SolverError(f"HiGHS failed on the separability LP: {res.message}. {_HINT}")


# ----------------------------------------------------------------------------------------------
# ℓ1: column generation with HiGHS


def _restricted_l1_lp(Z: np.ndarray, func: str) -> tuple[np.ndarray, np.ndarray]:
    """The LP over the columns of Z by HiGHS simplex, in its dual form (faster on dense data):
    ``max Σμ s.t. |Zᵀμ| ≤ 1, μ ≥ 0``; ``w`` is read off the row marginals. Returns (w, μ)."""
    n, k = Z.shape
    res = linprog(
        -np.ones(n),
        A_ub=np.vstack([Z.T, -Z.T]),
        b_ub=np.ones(2 * k),
        bounds=(0, None),
        method="highs",
        options=_HIGHS_OPTIONS,
    )
    if res.status in (2, 3):  # dual unbounded <=> primal infeasible
        raise _not_separable(func, " (HiGHS: the LP is infeasible)")
    if res.status != 0:
        raise SolverError(
            f"{func}: HiGHS stopped with status {res.status} ({res.message}) on an LP with "
            f"{n} examples and {k} features. {_HINT}"
        )
    marg = np.asarray(res.ineqlin.marginals, dtype=np.float64)
    return marg[k:] - marg[:k], np.asarray(res.x, dtype=np.float64)


def _restricted_l1_dual_ipm(
    Z: np.ndarray, M: float, func: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Dual of the restricted LP by HiGHS' interior-point method *without* crossover.

    ``max Σμ s.t. |Z_Sᵀμ| ≤ 1, 0 ≤ μ ≤ M``. An interior-point solution without crossover lies
    near the analytic centre of the optimal dual face, so its multipliers are spread over all
    support vectors instead of sitting at a vertex; pricing with them avoids the tailing-off
    that vertex duals cause on these highly degenerate LPs (e.g. sparse ±1 data, where
    hundreds of support vectors are tight). Returns (μ, w_S, slack s).
    """
    n, k = Z.shape
    with warnings.catch_warnings():
        # scipy warns that run_crossover is passed to HiGHS verbatim; that is intended.
        warnings.simplefilter("ignore", OptimizeWarning)
        res = linprog(
            -np.ones(n),
            A_ub=np.vstack([Z.T, -Z.T]),
            b_ub=np.ones(2 * k),
            bounds=(0, M),
            method="highs-ipm",
            options={**_HIGHS_OPTIONS, "ipm_optimality_tolerance": 1e-10, "run_crossover": "off"},
        )
    if res.status != 0:
        raise SolverError(
            f"{func}: HiGHS (interior point) stopped with status {res.status} ({res.message}) "
            f"on a restricted LP with {n} examples and {k} features. {_HINT}"
        )
    marg = np.asarray(res.ineqlin.marginals, dtype=np.float64)
    w_S = marg[k:] - marg[:k]
    # Primal slack of the elastic LP (the bound marginals of an interior point are unreliable).
    s = np.maximum(0.0, 1.0 - Z @ w_S)
    return np.asarray(res.x, dtype=np.float64), w_S, s


def _polish_l1(X: np.ndarray, y: np.ndarray, w: np.ndarray, func: str) -> np.ndarray:
    """Re-solve on the features where the interior-point ``w`` is not negligible (simplex);
    keep the vertex solution if it is feasible and no worse, else keep ``w``."""
    J = nonzero_indices(w, 1e-7)
    if J.size == 0:
        return w
    try:
        v_J, _ = _restricted_l1_lp(y[:, None] * X[:, J], func)
    except (NotSeparableError, SolverError):
        return w
    v = np.zeros_like(w)
    v[J] = v_J
    q = y * (X[:, J] @ v_J)
    if q.min() > 1.0 - 1e-9 and np.abs(v).sum() / q.min() <= np.abs(w).sum() * (1.0 + 1e-9):
        return v
    return w


#: Size of the initial working set of ℓ1 column generation (and the largest d solved as
#: one LP over all features).
_L1_START = 50


def _l1_colgen(
    X: np.ndarray, y: np.ndarray, *, tol: float, max_iter: int, func: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n, d = X.shape
    if d <= _L1_START:
        # Small enough for one LP over all features (simplex: a vertex solution).
        w, mu = _restricted_l1_lp(y[:, None] * X, func)
        return w, mu, X.T @ (mu * y), 1
    # Start from the _L1_START features most correlated with the labels, whatever n: the
    # restricted LPs stay small and pricing adds what is missing (up to max(n, 50) a round).
    # At (n, d) = (1600, 1000) (sparse ±1 data) one LP over all features took 3.6 s, this
    # 0.35 s; at (400, 5000) a start of n features 0.74 s, this 0.17 s. The cost: one more
    # round where the optimum uses ~n features (Gaussian X, random labels, (400, 5000), 374
    # active: 23 s -> 30 s).
    in_S = np.zeros(d, dtype=bool)
    score = np.abs(X.T @ y)
    in_S[np.argpartition(-score, _L1_START - 1)[:_L1_START]] = True
    batch = max(n, 50)
    M = 1e3 / float(np.max(np.abs(X)))
    for it in range(1, max_iter + 1):
        S = np.flatnonzero(in_S)
        mu, w_S, s = _restricted_l1_dual_ipm(y[:, None] * X[:, S], M, func)
        c = X.T @ (mu * y)
        a = np.abs(c)
        a[in_S] = 0.0
        new = np.flatnonzero(a > 1.0 + 0.1 * tol)
        if new.size:
            if new.size > batch:
                new = new[np.argpartition(-a[new], batch - 1)[:batch]]
            in_S[new] = True
            continue
        if float(s.max()) > 1e-7:
            # Every feature is priced out, yet the elastic LP needs slack: either the penalty
            # M is too small, or the data are not separable.
            if not _is_separable(X, y):
                raise _not_separable(func, " (an exact LP over range(X) is infeasible)")
            M *= 1e3
            continue
        # Polish: a vertex (sparse) solution by simplex on the features the interior solution
        # uses; the interior multipliers μ certify whichever primal point is returned.
        w = np.zeros(d)
        w[S] = w_S
        w = _polish_l1(X, y, w, func)
        return w, mu, c, it
    raise SolverError(
        f"{func}: column generation did not converge in max_iter = {max_iter} rounds "
        f"({int(in_S.sum())} of {d} features in the working set). Increase max_iter or "
        f"try solver='cvxpy'."
    )


def l1_max_margin(
    X: Any,
    y: Any,
    *,
    solver: str = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-7,
    max_iter: int = 200,
) -> MaxMarginResult:
    r"""ℓ1 max-margin linear classifier without bias (the diagonal network's rich-regime bias).

    .. math::

        \min_{w \in \mathbb{R}^d} \|w\|_1 \quad \text{s.t.} \quad y_i \langle w, x_i\rangle
        \ge 1, \quad i = 1, \dots, n,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\ \|X^\top(\mu \odot y)\|_\infty
    \le 1`. The unit-ℓ1 direction :math:`w/\|w\|_1` has the maximal ℓ1 margin
    :math:`1/\|w\|_1`. This is the global optimum of the margin problem (R1) of a depth-2
    diagonal linear network (Lyu et al. 2024, §4 of THEORY.md).

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`x_i`, :math:`y_i`    ``X[i]``, ``y[i]``
    :math:`w`                   ``result.w``
    :math:`\mu`                 ``result.dual``
    :math:`1/\|w\|_1`           ``result.margin``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one example per row.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    solver : {"auto", "highs", "cvxpy"}
        ``"highs"`` (the default for ``"auto"``): HiGHS dual simplex through
        :func:`scipy.optimize.linprog` on a working set of features, grown by column
        generation: all ``d`` features are priced with one product ``Xᵀ(μ ⊙ y)`` and the most
        violated ones (``|·| > 1 + tol``) are added; when none is left, ``μ`` is dual feasible,
        which certifies global optimality. An elastic slack keeps the restricted LPs feasible.
        ``"cvxpy"``: the LP written in cvxpy (reference route).
    cvxpy_solver : str, optional
        Name of an installed cvxpy solver for ``solver="cvxpy"`` (default ``"CLARABEL"``).
    tol : float
        Tolerance on the certified relative duality gap (and the pricing tolerance of column
        generation). A gap above ``tol`` but below ``1e-3`` gives status
        ``"optimal_inaccurate"`` and an :class:`~implicitbias.InaccurateSolutionWarning`.
    max_iter : int
        Maximal number of column-generation rounds.

    Returns
    -------
    MaxMarginResult
        ``w`` (shape (d,), scaled so ``min_i y_i⟨w, x_i⟩ = 1``), ``margin``, ``norm``,
        ``dual`` (shape (n,)), ``support``, ``active_features``, certificate fields.

    Raises
    ------
    NotSeparableError
        If no ``w`` satisfies the constraints (the LP is infeasible).
    SolverError
        If the solver fails or its answer fails the duality-gap check.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.l1_max_margin(X, np.array([1.0, -1.0]))
    >>> res.w.round(6).tolist(), round(res.margin, 6)
    ([0.333333, 0.333333], 1.5)

    References
    ----------
    Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
    Induce Grokking*, ICLR 2024, arXiv:2311.18817. Lyu & Li, *Gradient Descent Maximizes the
    Margin of Homogeneous Neural Networks*, ICLR 2020, arXiv:1906.05890.
    """
    func = "l1_max_margin"
    t0 = time.perf_counter()
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "highs", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    max_iter = check_int(max_iter, func, "max_iter", minimum=1)
    if solver == "cvxpy":
        return _lp_cvxpy(X, y, 1.0, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0)
    w, mu, c, it = _l1_colgen(X, y, tol=tol, max_iter=max_iter, func=func)
    return _finish(
        X, y, w, mu, p=1.0, func=func, route="highs-colgen", tol=tol, t0=t0, iterations=it,
        pricing=c,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# ℓ2: least-distance programming by NNLS (Lawson & Hanson 1974, ch. 23)


def _l2_ldp(X: np.ndarray, y: np.ndarray, func: str) -> tuple[np.ndarray, np.ndarray]:
    """SVM dual coefficients a >= 0 (w = Xᵀ(a ⊙ y), ‖w‖² = Σ a) via LDP → NNLS."""
    # The LDP's separability test (1 − Σu > 0, where 1 − Σu = 1/(1 + ‖w‖²)) is not scale-free:
    # solve for X / s with s = max|X_ij| and map back (w = w'/s, a = a'/s²).
    s = float(np.max(np.abs(X)))
    if not s > 0:
        raise _not_separable(func, " (X is all zeros)")
    X_orig, X = X, X / s
    n, d = X.shape
    if d > n:
        # w in the row space of X. With X Xᵀ = V Λ Vᵀ, X = B Qᵀ for B = V Λ^{1/2} and some Q
        # with orthonormal columns, so X w = B c for w = Q c: an n-dimensional LDP. (The Gram
        # matrix costs one BLAS-3 product; a QR of Xᵀ is far slower at d = 10⁵.)
        lam, V = np.linalg.eigh(X @ X.T)
        keep = lam > lam[-1] * n * np.finfo(np.float64).eps
        G = y[:, None] * (V[:, keep] * np.sqrt(lam[keep]))
    else:
        G = y[:, None] * X
    m = G.shape[1]
    E = np.vstack([G.T, np.ones((1, n))])
    f = np.zeros(m + 1)
    f[m] = 1.0
    u, _ = nnls(E, f, maxiter=max(50 * n, 1000))
    if not np.all(np.isfinite(u)) or np.any(u < 0):
        raise SolverError(
            f"{func}: scipy.optimize.nnls returned a non-finite or negative solution to the "
            f"least-distance problem. {_HINT}"
        )
    denom = 1.0 - float(u.sum())  # = −r_{m+1} = 1/(1 + ‖w‖²); zero means infeasible constraints
    if not denom > 1e-12:
        raise _not_separable(func, " (the least-distance problem is infeasible)")
    a = u / denom / s**2
    return a, X_orig.T @ (a * y)


def l2_max_margin(
    X: Any,
    y: Any,
    *,
    solver: str = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-7,
) -> MaxMarginResult:
    r"""ℓ2 max-margin linear classifier without bias (hard-margin linear SVM, no intercept).

    .. math::

        \min_{w} \|w\|_2 \quad \text{s.t.} \quad y_i \langle w, x_i\rangle \ge 1,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\ \|X^\top(\mu\odot y)\|_2 \le 1`.
    The usual SVM coefficients :math:`a` (:math:`w = X^\top(a \odot y)`,
    :math:`\|w\|_2^2 = \sum a_i`) are ``result.dual * result.norm``. For a depth-2 diagonal
    network this is the kernel-regime (K1) predictor: its NTK at θ̄ = (1, 1) is 8⟨x, x'⟩.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`x_i`, :math:`y_i`    ``X[i]``, ``y[i]``
    :math:`w`                   ``result.w``
    :math:`\mu`                 ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one example per row.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    solver : {"auto", "nnls", "cvxpy"}
        ``"nnls"`` (the default for ``"auto"``): the problem as a least-distance program solved
        by Lawson–Hanson NNLS (:func:`scipy.optimize.nnls`), in the row space of ``X`` (via the
        Gram matrix) when ``d > n``. ``"cvxpy"``: an SOCP in cvxpy (reference route).
    cvxpy_solver : str, optional
        Installed cvxpy solver for ``solver="cvxpy"`` (default ``"CLARABEL"``).
    tol : float
        Tolerance on the certified relative duality gap.

    Returns
    -------
    MaxMarginResult
        As for :func:`l1_max_margin`, with ``p = 2``.

    Raises
    ------
    NotSeparableError
        If the data are not linearly separable through the origin.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.l2_max_margin(X, np.array([1.0, -1.0]))
    >>> res.w.round(6).tolist(), round(res.margin**2, 6)
    ([0.333333, 0.333333], 4.5)

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817 (the kernel regime, K1). Lawson & Hanson, *Solving
    Least Squares Problems*, 1974, ch. 23 (LDP by NNLS).
    """
    func = "l2_max_margin"
    t0 = time.perf_counter()
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "nnls", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    if solver == "cvxpy":
        return _lp_cvxpy(X, y, 2.0, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0)
    a, w = _l2_ldp(X, y, func)
    nw = float(np.linalg.norm(w))
    if not nw > 0:
        raise SolverError(f"{func}: NNLS returned w = 0. {_HINT}")
    return _finish(
        X, y, w, a / nw, p=2.0, func=func, route="nnls-ldp", tol=tol, t0=t0, iterations=0
    )


# ----------------------------------------------------------------------------------------------
# ℓp through cvxpy


def _lp_cvxpy(
    X: np.ndarray,
    y: np.ndarray,
    p: float,
    *,
    func: str,
    cvxpy_solver: str | None,
    tol: float,
    t0: float,
) -> MaxMarginResult:
    import cvxpy as cp

    name = check_cvxpy_solver(cvxpy_solver, func, "CLARABEL")
    n, d = X.shape
    w = cp.Variable(d)
    if p == 1.0:
        obj = cp.norm1(w)
    elif p == 2.0:
        obj = cp.norm(w, 2)
    elif np.isinf(p):
        obj = cp.norm_inf(w)
    else:
        obj = cp.pnorm(w, p)
    cons = [cp.multiply(y, X @ w) >= 1]
    prob = cp.Problem(cp.Minimize(obj), cons)
    _, iters = solve_problem(
        prob,
        func=func,
        solver=name,
        options=_CVXPY_OPTIONS.get(name),
        infeasible=_not_separable(func, " (cvxpy)"),
    )
    if w.value is None or cons[0].dual_value is None:
        raise SolverError(f"{func}: cvxpy:{name} returned no solution. {_HINT}")
    mu = np.asarray(cons[0].dual_value, dtype=np.float64).reshape(n)
    return _finish(
        X, y, np.asarray(w.value, dtype=np.float64), mu, p=p, func=func, route=f"cvxpy:{name}",
        tol=tol, t0=t0, iterations=iters,
    )  # fmt: skip


def _check_p(p: Any, func: str) -> float:
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise fail_type(func, "p", "a number p >= 1 or numpy.inf", p)
    v = float(p)
    if np.isnan(v) or v < 1.0:
        raise fail(func, "p", "a number p >= 1 or numpy.inf", repr(p))
    return v


def lp_max_margin(
    X: Any,
    y: Any,
    *,
    p: float,
    solver: str = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-6,
) -> MaxMarginResult:
    r"""ℓp max-margin linear classifier without bias, for any :math:`p \ge 1` or :math:`p = \infty`.

    .. math::

        \min_{w} \|w\|_p \quad \text{s.t.} \quad y_i \langle w, x_i\rangle \ge 1,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\
    \|X^\top(\mu\odot y)\|_q \le 1`, :math:`1/p + 1/q = 1`.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`p`                   ``p``
    :math:`w`, :math:`\mu`      ``result.w``, ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    p : float
        The norm, ``p >= 1`` or ``numpy.inf``.
    solver : {"auto", "cvxpy"}
        ``"auto"`` uses :func:`l1_max_margin` for ``p = 1``, :func:`l2_max_margin` for
        ``p = 2`` and cvxpy otherwise; ``"cvxpy"`` always uses cvxpy (for ``p ∉ {1, 2, ∞}`` a
        power-cone program).
    cvxpy_solver : str, optional
        Installed cvxpy solver (default ``"CLARABEL"``).
    tol : float
        Tolerance on the certified relative duality gap.

    Returns
    -------
    MaxMarginResult

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.lp_max_margin(X, np.array([1.0, -1.0]), p=np.inf)
    >>> res.w.round(6).tolist()
    [0.333333, 0.333333]

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817; Lyu & Li, ICLR 2020, arXiv:1906.05890.
    """
    func = "lp_max_margin"
    t0 = time.perf_counter()
    p = _check_p(p, func)
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    if solver == "auto" and p == 1.0:
        return l1_max_margin(X, y, tol=tol)
    if solver == "auto" and p == 2.0:
        return l2_max_margin(X, y, tol=tol)
    return _lp_cvxpy(X, y, p, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0)
