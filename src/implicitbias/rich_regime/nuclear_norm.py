"""Minimum nuclear-norm matrix completion (the rich-regime bias of matrix factorization)."""

from __future__ import annotations

import time
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from scipy.optimize import minimize
from scipy.sparse.linalg import eigsh, svds

from implicitbias._blas import blas_single_thread
from implicitbias._errors import SolverError
from implicitbias._validation import (
    check_choice,
    check_int,
    check_positive,
    fail_type,
)
from implicitbias.rich_regime._completion_input import observed_entries, shape_of
from implicitbias.rich_regime._cvxpy import check_cvxpy_solver, check_solver_cones, solve_problem
from implicitbias.rich_regime._results import NuclearNormResult, classify
from implicitbias.rich_regime._scaling import pow2_scale

__all__ = ["CompletionSolver", "min_nuclear_norm_completion"]

#: The ``solver`` option of :func:`min_nuclear_norm_completion`.
CompletionSolver = Literal["auto", "alm", "cvxpy"]

_FUNC = "min_nuclear_norm_completion"
_HINT = "Try solver='cvxpy', a larger max_iter, or check the observed entries."

#: ``solver="auto"`` takes the SDP route (cvxpy, SCS) up to this size and the ALM route above
#: it. Measured side by side on the loaded 2-core development machine (SCS at eps 1e-8, ALM
#: with one BLAS thread), as ALM / SDP seconds, for a rank-2 X* at 30% / 10% observed and the
#: multiplication table at 5%: d = 40: 0.07/0.08, 2.4/0.18, 3.5/0.45; d = 60: 0.05/0.14,
#: 9.9/0.86, 18/4.7; d = 97: 0.08/0.24, 0.32/0.81, 0.22/0.81; d = 150: 0.62/0.69, 0.12/1.3,
#: 0.49/1.6; d = 250 (10%): 0.53/4.5. The ALM is fast when the completion has low rank and
#: slow (one rank-escape column per outer round) when few entries leave the answer of high
#: rank; the SDP's time does not depend on the rank and grows like d³ per SCS iteration (two
#: d×d eigendecompositions). Hence the SDP for small d, where its worst case is cheap, and
#: the ALM above. Rectangular problems count by their one (d1 + d2)-cone: the SDP when
#: (d1 + d2)³ ≤ 2·AUTO_SDP_MAX_D³.
AUTO_SDP_MAX_D = 100


# ----------------------------------------------------------------------------------------------
# Certificates


def _dual_matrix(
    lam: np.ndarray, r: np.ndarray, c: np.ndarray, shape: tuple[int, int], sym: bool
) -> sp.csr_matrix:
    """Y = Σ_p λ_p A_p with A_p = e_i e_jᵀ (rectangular) or its symmetrization (symmetric)."""
    if sym:
        off = r != c
        rr = np.concatenate([r, c[off]])
        cc = np.concatenate([c, r[off]])
        vv = np.concatenate([np.where(off, lam / 2.0, lam), lam[off] / 2.0])
        return sp.csr_matrix((vv, (rr, cc)), shape=shape)
    return sp.csr_matrix((lam, (r, c)), shape=shape)


def _op_norm(Y: sp.csr_matrix, sym: bool) -> float:
    if Y.nnz == 0:
        return 0.0
    if min(Y.shape) <= 400:
        A = Y.toarray()
        if sym:
            return float(np.max(np.abs(np.linalg.eigvalsh(A))))
        return float(np.linalg.norm(A, 2))
    if sym:
        vals = eigsh(Y, k=2, which="BE", return_eigenvectors=False, tol=1e-10)
        return float(np.max(np.abs(vals)))
    s = svds(Y, k=1, return_singular_vectors=False, tol=1e-10)
    return float(s[0])


def _nuclear(W: np.ndarray, sym: bool) -> float:
    if sym:
        return float(np.sum(np.abs(np.linalg.eigvalsh(0.5 * (W + W.T)))))
    return float(np.sum(np.linalg.svd(W, compute_uv=False)))


def _result(
    W: np.ndarray,
    lam: np.ndarray | None,
    r: np.ndarray,
    c: np.ndarray,
    m: np.ndarray,
    *,
    sym: bool,
    tol: float,
    route: str,
    t0: float,
    iterations: int,
) -> NuclearNormResult:
    if sym:
        W = 0.5 * (W + W.T)
    nuc = _nuclear(W, sym)
    viol = float(np.max(np.abs(W[r, c] - m)))
    Y = None
    dual_obj = float("nan")
    gap = float("nan")
    rel = float("nan")
    if lam is not None:
        Ys = _dual_matrix(lam, r, c, W.shape, sym)
        opn = _op_norm(Ys, sym)
        scale = max(opn, 1.0)
        dual_obj = float(lam @ m) / scale
        Y = Ys.toarray() / scale
        gap = nuc - dual_obj
        rel = abs(gap) / max(nuc, np.finfo(np.float64).tiny)
    scale_m = max(float(np.max(np.abs(m))), np.finfo(np.float64).tiny)
    if viol > 1e-4 * scale_m:
        raise SolverError(
            f"{_FUNC}: the {route} route returned W with max constraint violation {viol:.3g} "
            f"(relative {viol / scale_m:.3g}). {_HINT}"
        )
    status = classify(
        _FUNC, rel if lam is not None else 0.0, tol, what=f"{route} route", hint=_HINT
    )
    if lam is not None and viol > 1e3 * tol * scale_m:
        # A gap is meaningful only for a (nearly) feasible W.
        status = classify(_FUNC, viol / scale_m, tol, what=f"{route} route", hint=_HINT)
    s = np.linalg.svd(W, compute_uv=False)
    rank = int(np.sum(s > 1e-6 * s[0])) if s.size and s[0] > 0 else 0
    return NuclearNormResult(
        W=W, nuclear_norm=nuc, objective=nuc, dual=Y, dual_objective=dual_obj, rank=rank,
        status=status, solver=route, solve_time=time.perf_counter() - t0, duality_gap=gap,
        relative_gap=rel, max_violation=viol, iterations=iterations,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# cvxpy (SDP) route


def _incidence(r: np.ndarray, c: np.ndarray, shape: tuple[int, int], sym: bool) -> sp.csc_matrix:
    """B with ``vec(Y) = B λ`` (row-major) for ``Y = Σ_p λ_p A_p`` (as in :func:`_dual_matrix`)."""
    k = len(r)
    p = np.arange(k)
    if sym:
        off = r != c
        rr = np.concatenate([r, c[off]])
        cc = np.concatenate([c, r[off]])
        vv = np.concatenate([np.where(off, 0.5, 1.0), np.full(int(off.sum()), 0.5)])
        pp = np.concatenate([p, p[off]])
    else:
        rr, cc, vv, pp = r, c, np.ones(k), p
    return sp.csc_matrix((vv, (rr * shape[1] + cc, pp)), shape=(shape[0] * shape[1], k))


def _solve_cvxpy(
    r: np.ndarray,
    c: np.ndarray,
    m: np.ndarray,
    shape: tuple[int, int],
    sym: bool,
    cvxpy_solver: str | None,
    tol: float,
    t0: float,
) -> NuclearNormResult:
    """The SDP, posed in cvxpy in its dual form; W is read off the PSD constraints' duals.

    ``max ⟨λ, m⟩ s.t. ‖Y(λ)‖_op ≤ 1`` with ``Y(λ) = Σ_p λ_p A_p``: |Ω| scalar variables and
    two d×d PSD cones ``I ∓ Y ⪰ 0`` (symmetric) or one (d1+d2)-cone ``[[I, Y], [Yᵀ, I]] ⪰ 0``
    (rectangular). Their multipliers P, N (resp. Z) give the primal ``W = P − N`` with
    ``‖W‖_* ≤ tr P + tr N`` (resp. ``W = −2 Z₁₂``). On the primal form (variables P, N ⪰ 0
    with ``(P − N)_Ω = M``: ~d² variables, |Ω| equations) SCS was seen to crawl at d = 97
    (residuals ~1e-3 after 12,500 iterations, 42 s, at eps 1e-4); the dual form converges to
    eps 1e-8 in ~275 iterations (~1 s).
    """
    import cvxpy as cp

    name = check_cvxpy_solver(cvxpy_solver, _FUNC, "SCS")
    check_solver_cones(name, _FUNC, ("PSD",), "semidefinite programs")
    # Solve for M / s (s an exact power of two; SCS's tolerances are partly absolute) and map
    # back: the optimal λ does not depend on the scale of M, W scales with it.
    m_orig, s = m, pow2_scale(m)
    m = m / s
    d1, d2 = shape
    lam_var = cp.Variable(len(m))
    Yexpr = cp.reshape(_incidence(r, c, shape, sym) @ lam_var, (d1, d2), order="C")
    if sym:
        eye = np.eye(d1)
        cons = [eye - Yexpr >> 0, eye + Yexpr >> 0]
    else:
        cons = [cp.bmat([[np.eye(d1), Yexpr], [Yexpr.T, np.eye(d2)]]) >> 0]
    prob = cp.Problem(cp.Maximize(m @ lam_var), cons)
    # SCS's eps bounds residuals (and the gap) relative to the data; 1e-2·tol leaves room for
    # the certified relative gap (from the rescaled λ) to come in under tol.
    eps = min(1e-6, 1e-2 * tol)
    options = {
        "SCS": {"eps_abs": eps, "eps_rel": eps, "max_iters": 100_000},
        "CLARABEL": {"tol_gap_abs": 1e-10, "tol_gap_rel": 1e-10, "tol_feas": 1e-10},
    }.get(name)
    _, iters = solve_problem(
        prob, func=_FUNC, solver=name, options=options,
        infeasible=SolverError(
            f"{_FUNC}: cvxpy reports the dual SDP infeasible, which it never is (λ = 0 is "
            f"feasible): a solver failure. {_HINT}"
        ),
    )  # fmt: skip
    duals = [con.dual_value for con in cons]
    if any(dv is None for dv in duals) or lam_var.value is None:
        raise SolverError(f"{_FUNC}: the cvxpy solver {name} returned no solution. {_HINT}")
    if sym:
        W = np.asarray(duals[0], dtype=np.float64) - np.asarray(duals[1], dtype=np.float64)
    else:
        W = -2.0 * np.asarray(duals[0], dtype=np.float64)[:d1, d1:]
    lam = np.asarray(lam_var.value, dtype=np.float64).reshape(-1)
    return _result(
        W * s, lam, r, c, m_orig, sym=sym, tol=tol, route=f"cvxpy:{name}", t0=t0,
        iterations=iters,
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Fast route: augmented Lagrangian on a Burer–Monteiro factorization, with rank escape


class _Problem:
    """Observed entries, with sparse incidence matrices to apply G = Σ_p g_p A_p fast."""

    def __init__(
        self, r: np.ndarray, c: np.ndarray, m: np.ndarray, shape: tuple[int, int], sym: bool
    ) -> None:
        self.r, self.c, self.m, self.shape, self.sym = r, c, m, shape, sym
        k = len(m)
        idx = np.arange(k)
        self.Pr = sp.csr_matrix((np.ones(k), (r, idx)), shape=(shape[0], k))
        self.Pc = sp.csr_matrix((np.ones(k), (c, idx)), shape=(shape[1], k))

    def values(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        if self.sym:
            Ur, Uc, Vr, Vc = U[self.r], U[self.c], V[self.r], V[self.c]
            return np.einsum("ij,ij->i", Ur, Uc) - np.einsum("ij,ij->i", Vr, Vc)
        return np.einsum("ij,ij->i", U[self.r], V[self.c])

    def grad(self, U: np.ndarray, V: np.ndarray, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradients of Σ_p g_p ⟨A_p, W(U, V)⟩ with respect to U and V."""
        if self.sym:
            gh = 0.5 * g[:, None]
            GU = self.Pr @ (gh * U[self.c]) + self.Pc @ (gh * U[self.r])
            GV = self.Pr @ (gh * V[self.c]) + self.Pc @ (gh * V[self.r])
            return 2.0 * GU, -2.0 * GV
        return self.Pr @ (g[:, None] * V[self.c]), self.Pc @ (g[:, None] * U[self.r])


def _alm(
    prob: _Problem, *, rank0: int, tol: float, max_iter: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    d1, d2 = prob.shape
    sym = prob.sym
    rng = np.random.default_rng(seed)
    # objective weight: ‖U‖²+‖V‖² = ‖W‖_* at the optimum (symmetric, W = UUᵀ − VVᵀ);
    # ½(‖U‖²+‖V‖²) (rectangular, W = UVᵀ).
    cw = 1.0 if sym else 0.5
    # Start narrow (an exactly parametrized factorization converges linearly; surplus columns
    # that must decay to zero slow the augmented Lagrangian down) and let the rank escape
    # add columns where the certificate asks for them.
    ru = max(1, min(rank0, d1, d2))
    rv = ru if not sym else 0
    init = 1e-2
    U = init * rng.standard_normal((d1, ru)) / np.sqrt(d1)
    V = init * rng.standard_normal((d2, rv)) / np.sqrt(d2)
    lam = np.zeros(len(prob.m))
    rho = 10.0
    m = prob.m
    feas_tol = 0.1 * tol
    last_res = np.inf
    for it in range(1, max_iter + 1):
        ru, rv = U.shape[1], V.shape[1]

        def fg(
            x: np.ndarray,
            lam: np.ndarray = lam,
            rho: float = rho,
            ru: int = ru,
            rv: int = rv,
        ) -> tuple[float, np.ndarray]:
            Uu = x[: d1 * ru].reshape(d1, ru)
            Vv = x[d1 * ru :].reshape(d2, rv)
            res = prob.values(Uu, Vv) - m
            f = cw * (np.sum(Uu * Uu) + np.sum(Vv * Vv)) - lam @ res + 0.5 * rho * (res @ res)
            gU, gV = prob.grad(Uu, Vv, rho * res - lam)
            gU = gU + 2.0 * cw * Uu
            gV = gV + 2.0 * cw * Vv
            return f, np.concatenate([gU.ravel(), gV.ravel()])

        x0 = np.concatenate([U.ravel(), V.ravel()])
        out = minimize(
            fg, x0, jac=True, method="L-BFGS-B",
            options={"maxiter": 5000, "maxcor": 20, "gtol": 1e-10, "ftol": 0.0},
        )  # fmt: skip
        U = out.x[: d1 * ru].reshape(d1, ru)
        V = out.x[d1 * ru :].reshape(d2, rv)
        res = prob.values(U, V) - m
        lam = lam - rho * res
        rmax = float(np.max(np.abs(res)))
        if rmax > 0.5 * last_res and rho < 1e4:
            rho *= 4.0
        last_res = rmax
        # Rank escape: if ‖Y‖_op > 1 for the current multipliers, a new factor column along the
        # top eigen/singular vector of Y lowers the augmented Lagrangian (second order).
        Y = _dual_matrix(lam, prob.r, prob.c, prob.shape, sym)
        added = False
        if sym:
            A = Y.toarray() if d1 <= 400 else None
            if A is not None:
                vals, vecs = np.linalg.eigh(A)
                top, vtop, bot, vbot = vals[-1], vecs[:, -1], vals[0], vecs[:, 0]
            else:
                vals, vecs = eigsh(Y, k=2, which="BE", tol=1e-10)
                top, vtop, bot, vbot = vals[-1], vecs[:, -1], vals[0], vecs[:, 0]
            if top > 1.0 + tol:
                U = np.hstack([U, 1e-3 * vtop[:, None]])
                added = True
            if bot < -1.0 - tol:
                V = np.hstack([V, 1e-3 * vbot[:, None]])
                added = True
        else:
            if min(d1, d2) > 400:
                a, s, bt = svds(Y, k=1, tol=1e-10)
            else:
                a_, s_, bt_ = np.linalg.svd(Y.toarray())
                a, s, bt = a_[:, :1], s_[:1], bt_[:1]
            if s[0] > 1.0 + tol:
                U = np.hstack([U, 1e-3 * a[:, :1]])
                V = np.hstack([V, 1e-3 * bt[:1].T])
                added = True
        if not added and rmax <= feas_tol:
            return U, V, lam, it
    raise SolverError(
        f"{_FUNC}: the augmented-Lagrangian route did not converge in max_iter = {max_iter} "
        f"outer iterations. {_HINT}"
    )


def min_nuclear_norm_completion(
    d: int | tuple[int, int],
    rows: Any,
    cols: Any,
    values: Any,
    *,
    symmetric: bool = True,
    solver: CompletionSolver = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-6,
    rank: int = 1,
    max_iter: int = 200,
    seed: int = 0,
) -> NuclearNormResult:
    r"""Minimum nuclear-norm completion of partially observed entries.

    .. math::

        \min_{W} \|W\|_* \quad \text{s.t.} \quad W_{ij} = M_{ij}\ \ ((i, j) \in \Omega),
        \qquad (\text{and } W = W^\top \text{ if symmetric}),

    with dual :math:`\max \langle Y, M\rangle` over :math:`Y` supported on Ω (symmetrized
    when symmetric) with :math:`\|Y\|_{op} \le 1`. For matrix factorization
    :math:`W = UU^\top - VV^\top` this is the rich-regime (R2) solution (THEORY.md §5).

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`\Omega`              ``zip(rows, cols)``
    :math:`M_{ij}`              ``values``
    :math:`W`, :math:`Y`        ``result.W``, ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    d : int or tuple of int
        Matrix size: ``d`` for a ``d × d`` matrix, or ``(d1, d2)`` (``symmetric=False`` only,
        unless square).
    rows, cols : array_like of int, shape (k,)
        Observed positions, 0-based. For a symmetric completion ``(i, j)`` also fixes
        ``(j, i)``; both may be given if their values agree.
    values : array_like of float, shape (k,)
        Observed values.
    symmetric : bool
        Constrain ``W = Wᵀ``.
    solver : {"auto", "alm", "cvxpy"}
        ``"auto"`` (default): ``"cvxpy"`` for ``d ≤ 100`` (rectangular:
        ``(d1 + d2)³ ≤ 2·100³``), where its time is small whatever the rank of the answer,
        else ``"alm"``; ``result.solver`` records the route taken. ``"alm"``: an augmented
        Lagrangian (one BLAS thread) on the factorization ``W = UUᵀ − VVᵀ`` (symmetric) or
        ``W = UVᵀ`` (rectangular), inner L-BFGS with cost
        ``O(|Ω|·r)`` per evaluation; once feasible, the multipliers form a dual certificate
        ``Y``: if ``‖Y‖_op > 1 + tol``, its top eigen/singular vector is added as a new
        factor column (rank escape) and the solve continues; otherwise the result is
        certified by the duality gap. ``"cvxpy"``: the SDP in cvxpy, posed in its dual form
        ``max ⟨λ, M⟩ s.t. -I ⪯ Σ_p λ_p A_p ⪯ I`` (|Ω| variables, two d×d PSD cones); ``W`` is
        read off the cones' multipliers ``P, N`` as ``W = P − N`` (rectangular: one
        ``[[I, Y], [Yᵀ, I]] ⪰ 0`` cone). SCS solves the paper's d = 97 table in ~1 s;
        the primal form crawls in SCS.
    cvxpy_solver : str, optional
        Installed cvxpy solver for the SDP route (an unknown name is refused on every route,
        one without semidefinite cones, e.g. ``"HIGHS"``, where the SDP is solved); default
        ``"SCS"``, run at
        ``eps_abs = eps_rel = min(1e-6, 1e-2·tol)``. An interior-point solver (CLARABEL)
        factors dense ``d(d+1)/2``-square blocks per cone: memory grows like d⁴.
    tol : float
        Tolerance on the certified relative duality gap (and on feasibility, relative to
        ``max |M_ij|``).
    rank : int
        Initial factor width of the fast route (it grows when needed).
    max_iter : int
        Outer iterations of the fast route.
    seed : int
        Seed of the fast route's random initialization.

    Returns
    -------
    NuclearNormResult

    Examples
    --------
    >>> import implicitbias as ib
    >>> res = ib.min_nuclear_norm_completion(2, [0, 0], [0, 1], [1.0, 1.0])
    >>> res.W.round(4).tolist(), round(res.nuclear_norm, 4)
    ([[1.0, 1.0], [1.0, 1.0]], 2.0)

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817, §5; Candès & Recht, *Exact matrix completion via
    convex optimization*, 2009; Burer & Monteiro, 2003.
    """
    t0 = time.perf_counter()
    if not isinstance(symmetric, (bool, np.bool_)):
        raise fail_type(_FUNC, "symmetric", "a bool", symmetric)
    sym = bool(symmetric)
    shape = shape_of(d, sym)
    check_choice(solver, _FUNC, "solver", ("auto", "alm", "cvxpy"))
    tol = check_positive(tol, _FUNC, "tol")
    rank = check_int(rank, _FUNC, "rank", minimum=1)
    max_iter = check_int(max_iter, _FUNC, "max_iter", minimum=1)
    seed = check_int(seed, _FUNC, "seed")
    r, c, m = observed_entries(rows, cols, values, shape[0], shape[1], sym)
    if cvxpy_solver is not None:  # an unknown name is an error on every route
        check_cvxpy_solver(cvxpy_solver, _FUNC, "SCS")
    if solver == "auto":
        work = 2 * shape[0] ** 3 if sym else (shape[0] + shape[1]) ** 3
        solver = "cvxpy" if work <= 2 * AUTO_SDP_MAX_D**3 else "alm"
    if solver == "cvxpy":
        return _solve_cvxpy(r, c, m, shape, sym, cvxpy_solver, tol, t0)
    scale = float(np.max(np.abs(m)))
    if scale == 0.0:
        W = np.zeros(shape)
        return _result(
            W, np.zeros_like(m), r, c, m, sym=sym, tol=tol, route="alm", t0=t0, iterations=0
        )
    prob = _Problem(r, c, m / scale, shape, sym)
    # One BLAS thread: the ALM's products are small (d×r factors), and multithreaded BLAS on
    # them costs far more than it saves on a loaded machine (d = 97 table: 10 s -> 0.1 s on
    # the 2-core box at load ~7).
    with blas_single_thread():
        U, V, lam, it = _alm(prob, rank0=rank, tol=tol, max_iter=max_iter, seed=seed)
    if not (np.all(np.isfinite(U)) and np.all(np.isfinite(V)) and np.all(np.isfinite(lam))):
        raise SolverError(
            "min_nuclear_norm_completion: the alm route returned non-finite factors or "
            f"multipliers (after {it} iterations). Try solver='cvxpy', a larger max_iter, or "
            "check the observed entries."
        )
    W = (U @ U.T - V @ V.T) if sym else U @ V.T
    return _result(W * scale, lam, r, c, m, sym=sym, tol=tol, route="alm", t0=t0, iterations=it)
