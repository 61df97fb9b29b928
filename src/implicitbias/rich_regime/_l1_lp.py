"""ℓ1 max margin by HiGHS: column generation over the features, and the rescue of
ill-conditioned data (simplex in equivalent forms, with a linear-algebra polish of the vertex).

Every function takes the LP backend as ``linprog`` (the signature of
:func:`scipy.optimize.linprog`): :func:`implicitbias.l1_max_margin` passes the ``linprog`` of
:mod:`implicitbias.rich_regime.max_margin`, looked up at call time, so the backend has one seam
(where the fault-injection tests replace it).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.optimize import OptimizeWarning

from implicitbias._errors import SolverError
from implicitbias.rich_regime._certificate import Certificate
from implicitbias.rich_regime._farkas import decide_separable, relative_l2_margin
from implicitbias.rich_regime._mm_common import (
    HIGHS_OPTIONS,
    HINT,
    Infeasible,
    rescalings,
    vertex_polish_l1,
)
from implicitbias.rich_regime._results import nonzero_indices

__all__ = ["LinProg", "l1_colgen", "l1_rescue", "restricted_l1_lp"]

#: The LP backend: :func:`scipy.optimize.linprog` (or a stand-in with its signature).
LinProg = Callable[..., Any]


def restricted_l1_lp(
    Z: np.ndarray, func: str, b: np.ndarray | None = None, *, linprog: LinProg
) -> tuple[np.ndarray, np.ndarray]:
    """The LP over the columns of Z by HiGHS simplex, in its dual form (faster on dense data):
    ``max bᵀμ s.t. |Zᵀμ| ≤ 1, μ ≥ 0`` (``b = 1`` by default: the dual of ``Zw ≥ b``); ``w``
    is read off the row marginals. Returns (w, μ)."""
    n, k = Z.shape
    res = linprog(
        -np.ones(n) if b is None else -b,
        A_ub=np.vstack([Z.T, -Z.T]),
        b_ub=np.ones(2 * k),
        bounds=(0, None),
        method="highs",
        options=HIGHS_OPTIONS,
    )
    if res.status in (2, 3):  # dual unbounded <=> primal infeasible
        raise Infeasible()
    if res.status != 0:
        raise SolverError(
            f"{func}: HiGHS stopped with status {res.status} ({res.message}) on an LP with "
            f"{n} examples and {k} features. {HINT}"
        )
    marg = np.asarray(res.ineqlin.marginals, dtype=np.float64)
    return marg[k:] - marg[:k], np.asarray(res.x, dtype=np.float64)


def _restricted_l1_dual_ipm(
    Z: np.ndarray, M: float, func: str, *, linprog: LinProg
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
            options={**HIGHS_OPTIONS, "ipm_optimality_tolerance": 1e-10, "run_crossover": "off"},
        )
    if res.status != 0:
        raise SolverError(
            f"{func}: HiGHS (interior point) stopped with status {res.status} ({res.message}) "
            f"on a restricted LP with {n} examples and {k} features. {HINT}"
        )
    marg = np.asarray(res.ineqlin.marginals, dtype=np.float64)
    w_S = marg[k:] - marg[:k]
    # Primal slack of the elastic LP (the bound marginals of an interior point are unreliable).
    s = np.maximum(0.0, 1.0 - Z @ w_S)
    return np.asarray(res.x, dtype=np.float64), w_S, s


def _polish_l1(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, func: str, *, linprog: LinProg
) -> np.ndarray:
    """Re-solve on the features where the interior-point ``w`` is not negligible (simplex);
    keep the vertex solution if it is feasible and no worse, else keep ``w``."""
    J = nonzero_indices(w, 1e-7)
    if J.size == 0:
        return w
    try:
        v_J, _ = restricted_l1_lp(y[:, None] * X[:, J], func, linprog=linprog)
    except (Infeasible, SolverError):
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


def l1_colgen(
    X: np.ndarray, y: np.ndarray, *, tol: float, max_iter: int, func: str, linprog: LinProg
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    n, d = X.shape
    if d <= _L1_START:
        # Small enough for one LP over all features (simplex: a vertex solution).
        w, mu = restricted_l1_lp(y[:, None] * X, func, linprog=linprog)
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
    separable = False
    for it in range(1, max_iter + 1):
        S = np.flatnonzero(in_S)
        mu, w_S, s = _restricted_l1_dual_ipm(y[:, None] * X[:, S], M, func, linprog=linprog)
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
            # M is too small, or the data are not separable (decided once, with a certificate).
            if not separable:
                decide_separable(X, y, func)
                separable = True
            M *= 1e3
            continue
        # Polish: a vertex (sparse) solution by simplex on the features the interior solution
        # uses; the interior multipliers μ certify whichever primal point is returned.
        w = np.zeros(d)
        w[S] = w_S
        w = _polish_l1(X, y, w, func, linprog=linprog)
        return w, mu, c, it
    raise SolverError(
        f"{func}: column generation did not converge in max_iter = {max_iter} rounds "
        f"({int(in_S.sum())} of {d} features in the working set). Increase max_iter or "
        f"try solver='cvxpy'."
    )


def l1_rescue(
    Xs: np.ndarray,
    y: np.ndarray,
    s: float,
    cert: Certificate,
    func: str,
    tol: float,
    *,
    linprog: LinProg,
) -> None:
    """Ill-conditioned ℓ1 data whose first answer is not certified: polish it, then solve the
    full LP by simplex in the equivalent forms of :func:`._mm_common.rescalings`; each answer is
    polished, and every candidate goes to the certificate."""
    A = y[:, None] * Xs

    def add_polished(w: np.ndarray, mu: np.ndarray) -> None:
        cert.add(w / s, mu / s)
        out = vertex_polish_l1(A, w, mu)
        if out is not None:
            cert.add(out[0] / s, out[1] / s)

    if cert.primal is not None and cert.dual is not None:
        add_polished(cert.primal.w * s, cert.dual.mu * s)
        if cert.ok(tol):
            return
    for D, k in rescalings(A, relative_l2_margin(Xs, y, func)):
        try:
            w, nu = restricted_l1_lp((D / k)[:, None] * A, func, D, linprog=linprog)
        except (Infeasible, SolverError):
            continue
        add_polished(w / k, D * nu / k)
        if cert.ok(tol):
            return
