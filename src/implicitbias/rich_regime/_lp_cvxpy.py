"""The ℓp max-margin problem in cvxpy, for every ``p`` in ``[1, ∞]``.

``‖w‖_p ≤ t`` is written with power cones of *real* exponent: ``|w_j| ≤ r_j^{1/p} t^{1−1/p}``,
``Σ r_j = t`` (:class:`cvxpy.PowCone3D`), exact for any ``p``; ``cvxpy.pnorm`` instead rounds
``p`` to a fraction of denominator ≤ 1024 (so ``p = 1.0001`` becomes ``1`` and fails DCP, and
``p ≥ 1e4`` divides by zero). ``p = 1`` and ``p = ∞`` are LPs, ``p = 2`` an SOCP.

Robustness: the data are solved at unit scale (an exact power-of-two rescaling) and the answer
mapped back. If that is not certified and the data are ill conditioned (relative ℓ2 margin
below 1e-3), it is solved again in equivalent forms (``w`` scaled by the margin, so that it
is of size 1; each row ``y_i⟨w, x_i⟩ ≥ 1`` multiplied by ``1/max_j |x_ij|``), and for
extreme ``p`` the limit problems (``p → 1``: ℓ1, ``p → ∞``: ℓ∞; their multipliers are feasible for the ℓp dual)
add candidates; the best primal and dual of all attempts are certified together.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from implicitbias._errors import SolverError
from implicitbias.rich_regime._certificate import Certificate
from implicitbias.rich_regime._cvxpy import check_cvxpy_solver, check_solver_cones, solve_problem
from implicitbias.rich_regime._farkas import ILL_MARGIN, relative_l2_margin
from implicitbias.rich_regime._linf import linf_highs_candidates
from implicitbias.rich_regime._results import MaxMarginResult
from implicitbias.rich_regime._scaling import pow2_scale, rescaled

__all__ = ["cvxpy_max_margin"]

_HINT = "Try solver='cvxpy' (optionally with another cvxpy_solver) or rescale the data."
#: Tighter-than-default tolerances for the reference routes (the answer is certified anyway).
_CVXPY_OPTIONS = {
    "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
}
#: Beyond these, ‖·‖_p and its limit norm agree to ~ln(d)/p (resp. (p−1)·ln d) relative.
_P_NEAR_ONE = 1e-12
_P_HUGE = 1e12


class _InfeasibleClaim(Exception):
    """cvxpy reported the problem infeasible (to be checked against a certificate)."""


def _cones(p: float) -> tuple[tuple[str, ...], str]:
    if p == 1.0 or np.isinf(p):
        return (), "linear programs"
    if p == 2.0:
        return ("SOC",), "second-order cone programs (p = 2)"
    return ("PowCone3D",), f"power-cone programs (p = {p:g})"


def _solve_once(
    A: np.ndarray, D: np.ndarray, k: float, p: float, *, func: str, name: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """One cvxpy solve of ``min ‖w'‖_p s.t. (D_i/k)⟨w', a_i⟩ ≥ D_i`` (``a_i = y_i x_i``), an
    equivalent form of ``A w ≥ 1`` with ``w = w'/k``; returns (w, μ, iterations), μ for
    ``A w ≥ 1``."""
    import cvxpy as cp

    Z = (D / k)[:, None] * A
    n, d = Z.shape
    w = cp.Variable(d)
    extra = []
    obj: cp.Expression
    if p == 1.0:
        obj = cp.norm1(w)
    elif p == 2.0:
        obj = cp.norm(w, 2)
    elif np.isinf(p):
        obj = cp.norm_inf(w)
    else:
        r = cp.Variable(d)
        t = cp.Variable()
        obj = t
        extra = [cp.sum(r) == t, cp.PowCone3D(r, t * np.ones(d), w, 1.0 / p)]
    cons = [Z @ w >= D, *extra]
    prob = cp.Problem(cp.Minimize(obj), cons)
    _, iters = solve_problem(
        prob, func=func, solver=name, options=_CVXPY_OPTIONS.get(name),
        infeasible=_InfeasibleClaim(),
    )  # fmt: skip
    if w.value is None or cons[0].dual_value is None:
        raise SolverError(f"{func}: cvxpy:{name} returned no solution. {_HINT}")
    mu = D * np.asarray(cons[0].dual_value, dtype=np.float64).reshape(n) / k
    return np.asarray(w.value, dtype=np.float64) / k, mu, iters


def cvxpy_max_margin(
    X: np.ndarray,
    y: np.ndarray,
    p: float,
    *,
    func: str,
    cvxpy_solver: Any,
    tol: float,
    t0: float,
    highs_rescue: bool = False,
) -> MaxMarginResult:
    """The cvxpy route of l1/l2/lp_max_margin (see the module docstring). With
    ``highs_rescue`` (``lp_max_margin(p=inf, solver="auto")``), ill-conditioned data whose
    answer is not certified also get the HiGHS simplex answers of the ℓ∞ LP."""
    name = check_cvxpy_solver(cvxpy_solver, func, "CLARABEL")
    cones, what = _cones(p)
    check_solver_cones(name, func, cones, what)
    route = f"cvxpy:{name}"
    s = pow2_scale(X)
    Xs = rescaled(X, s)
    cert = Certificate(X, y, p)
    iters = 0
    first: Exception | None = None
    margin: list[float] = []

    def rel_margin() -> float:
        if not margin:
            margin.append(relative_l2_margin(Xs, y, func))
        return margin[0]

    A = y[:, None] * Xs
    n = A.shape[0]

    def attempt(D: np.ndarray, k: float, q: float) -> None:
        """Solve an equivalent form (D, k) with norm q; add the mapped-back candidates."""
        nonlocal iters, first
        try:
            w, mu, it = _solve_once(A, D, k, q, func=func, name=name)
        except _InfeasibleClaim:
            g = rel_margin()  # NotSeparableError with a certificate
            err: Exception = SolverError(
                f"{func}: {route} reported the problem infeasible, but the data are separable "
                f"(relative l2 margin {g:.3g}, from the nearest point of conv{{y_i x_i}} to the "
                f"origin). {_HINT}"
            )
            first = first or err
            return
        except SolverError as exc:
            first = first or exc
            return
        iters += it
        cert.add(w / s, mu / s)

    near_one = p != 1.0 and p - 1.0 <= _P_NEAR_ONE
    huge = not np.isinf(p) and p >= _P_HUGE
    main = 1.0 if near_one else (np.inf if huge else p)
    one = np.ones(n)
    attempt(one, 1.0, main)
    if cert.ok(tol):
        return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=iters, hint=_HINT)
    if main != p:
        attempt(one, 1.0, p)
    elif p != 1.0 and p - 1.0 <= 1e-3:
        attempt(one, 1.0, 1.0)
    elif not np.isinf(p) and p >= 1e3:
        attempt(one, 1.0, np.inf)
    if not cert.ok(tol) and rel_margin() < ILL_MARGIN:
        # ill conditioned: the variable scaled by the margin, then each row by 1/max_j |a_ij|
        attempt(one, pow2_scale(np.array([rel_margin()]), keep=1.0), p)
        if not cert.ok(tol):
            attempt(1.0 / np.array([pow2_scale(a, keep=1.0) for a in A]), 1.0, p)
        if highs_rescue and np.isinf(p) and not cert.ok(tol):
            linf_highs_candidates(A, s, rel_margin(), cert, func, tol)
            route = f"{route}+highs-linf"
    if cert.primal is None and first is not None:
        raise first
    return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=iters, hint=_HINT)
