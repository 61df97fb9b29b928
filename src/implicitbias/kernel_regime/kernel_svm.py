"""Problem (K1): the hard-margin kernel SVM without bias, and its fast dual solver.

The dual of (K1) is a bound-constrained convex quadratic program (no equality constraint,
because there is no bias). :func:`_solve_nonneg_qp` solves it exactly:

* an outer working-set (chunking) loop, so the linear algebra scales with the number of
  support vectors rather than with ``n``;
* on each working set, block principal pivoting (the primal-dual active-set method of
  Kunisch and Rendl, with the Judice--Pires safeguard against cycling), falling back to a
  monotone Lawson--Hanson-type primal active-set loop when pivoting does not settle (as on
  rank-deficient kernels);
* face systems ``Q_FF x = 1`` solved by :class:`_FaceSolver`, which reuses one Cholesky
  factor across nearby faces and handles singular ``Q_FF`` with a tiny proximal shift plus
  proximal-point refinement.

The answer is then certified (primal feasibility, complementary slackness, zero duality gap)
before it is returned. :mod:`implicitbias.kernel_regime.multiclass_svm` reuses the solver.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.linalg as sla

from implicitbias._errors import (
    InaccurateSolutionWarning,
    NotSeparableError,
    SolverError,
)
from implicitbias._validation import (
    as_float_array,
    as_kernel_matrix,
    as_pm1_labels,
    check_choice,
    check_positive,
    fail,
)

__all__ = ["KernelSVMResult", "kernel_svm"]

_FUNC = "kernel_svm"

# A margin below this fraction of the feature radius sqrt(max K_ii) is numerically zero.
_SEPARABILITY_FLOOR = 1e-7
# Relative proximal term that keeps the working block positive definite (removed by refinement).
_PROX = 1e-12
# Above `tol`, up to this level, an answer is returned with an InaccurateSolutionWarning.
_INACCURATE_LEVEL = 1e-5


# --------------------------------------------------------------------------------------------
# The bound-constrained QP  min_a  1/2 a^T Q a - 1^T a   s.t.  a >= 0   (Q symmetric PSD)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _QPOutcome:
    a: np.ndarray
    diverged: bool  # the dual objective grew without bound (primal infeasible)
    n_iter: int


_SMALL_BLOCK = 700
_CONTROLLER: list[Any] = []


def _blas_limit(m: int) -> Any:
    """One BLAS thread for small blocks: thread wake-up costs more than it saves there, and
    on a loaded machine it costs far more (busy-waiting threads)."""
    if m >= _SMALL_BLOCK:
        return contextlib.nullcontext()
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - optional
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    if _CONTROLLER[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def _cholesky(H: np.ndarray, rho: float) -> tuple[Any, float]:
    """Cholesky factor of ``H + rho I``, raising ``rho`` until the factorization succeeds."""
    m = H.shape[0]
    scale = max(float(np.max(np.diag(H))) if m else 1.0, 1e-300)
    r = rho
    for _ in range(8):
        try:
            with _blas_limit(m):
                c = sla.cho_factor(H + r * np.eye(m), lower=False, check_finite=False)
            return c, r
        except np.linalg.LinAlgError:
            r = max(10.0 * r, 1e-14 * scale)
    raise SolverError(
        "kernel_svm: could not factor a principal block of Q even with a proximal shift"
    )


class _FaceSolver:
    """Solves ``Q_FF x = 1`` on varying index sets ``F`` with few Cholesky factorizations.

    Keeps the factor of ``Q_BB + rho I`` for a base set ``B``. For a nearby ``F`` (added set
    ``A = F - B``, dropped set ``D = B - F``) it borders the factor with ``A`` (a Schur
    complement of size ``|A|``) and removes ``D`` as equality constraints ``x_D = 0`` (a Schur
    complement of size ``|D|``): ``O(|B|^2 (|A| + |D|))`` instead of ``O(|F|^3)``. It refactors
    when the change is large or a small Schur complement is not positive definite.

    The proximal shift ``rho`` keeps factorizations stable when ``Q_FF`` is singular
    (rank-deficient kernels); proximal-point iterations ``(Q_FF + rho I) x_{k+1} = 1 + rho x_k``
    remove its bias on the range of ``Q_FF``.
    """

    def __init__(self, Q: np.ndarray, rho: float) -> None:
        self.Q = Q
        self.rho = rho
        self.base: np.ndarray | None = None
        self.L: np.ndarray | None = None
        self.n_factor = 0
        self.last_residual = np.inf

    def _refactor(self, F: np.ndarray) -> None:
        c, r = _cholesky(self.Q[np.ix_(F, F)], self.rho)
        self.rho = r
        self.L = np.triu(c[0]).T  # lower factor
        self.base = F
        self.n_factor += 1

    def solve(self, F: np.ndarray, x0: np.ndarray) -> np.ndarray:
        """``x`` on ``F`` (sorted global indices), started at ``x0`` (values on ``F``)."""
        if F.size == 0:
            return np.zeros(0)
        B = self.base
        if B is not None:
            A = np.setdiff1d(F, B, assume_unique=True)
            D = np.setdiff1d(B, F, assume_unique=True)
            if A.size + D.size <= max(8, B.size // 6) and B.size > 0:
                try:
                    x = self._solve_updated(F, A, D, x0)
                except (np.linalg.LinAlgError, _UpdateFailed):
                    pass
                else:
                    # the constrained solve can lose digits by cancellation when Q_FF is
                    # (nearly) singular; accept it only if the face equations hold tightly
                    if self.last_residual <= 1e-10:
                        return x
        self._refactor(F)
        return self._solve_updated(F, F[:0], F[:0], x0)

    def _solve_updated(
        self, F: np.ndarray, A: np.ndarray, D: np.ndarray, x0: np.ndarray
    ) -> np.ndarray:
        Q, rho, L, B = self.Q, self.rho, self.L, self.base
        assert L is not None and B is not None
        nb = B.size
        tri = sla.solve_triangular
        if A.size:
            W = tri(L, Q[np.ix_(B, A)], lower=True, check_finite=False)
            S = Q[np.ix_(A, A)] + rho * np.eye(A.size) - W.T @ W
            try:
                LS = np.linalg.cholesky(S)
            except np.linalg.LinAlgError as exc:
                raise _UpdateFailed from exc
        else:
            W = np.zeros((nb, 0))
            LS = np.zeros((0, 0))
        U = np.concatenate([B, A])

        def solve_u(r: np.ndarray) -> np.ndarray:
            z1 = tri(L, r[:nb], lower=True, check_finite=False)
            z2 = r[nb:] - W.T @ z1
            if A.size:
                z2 = tri(LS, z2, lower=True, check_finite=False)
                y2 = tri(LS, z2, lower=True, trans="T", check_finite=False)
            else:
                y2 = z2
            y1 = tri(L, z1 - W @ y2, lower=True, trans="T", check_finite=False)
            return np.concatenate([y1, y2])

        posD = np.searchsorted(B, D)
        if D.size:
            E = np.zeros((U.size, D.size))
            E[posD, np.arange(D.size)] = 1.0
            Z = solve_u(E)
            G = Z[posD]
            try:
                LG = np.linalg.cholesky(0.5 * (G + G.T))
            except np.linalg.LinAlgError as exc:
                raise _UpdateFailed from exc
        # positions of F inside U = [B, A]
        inB = np.isin(F, B, assume_unique=True)
        posF = np.empty(F.size, dtype=np.intp)
        posF[inB] = np.searchsorted(B, F[inB])
        posF[~inB] = nb + np.searchsorted(A, F[~inB])
        x = np.zeros(U.size)
        x[posF] = x0
        QFF = Q[np.ix_(F, F)]
        prev_res = np.inf
        for k in range(30):
            r = np.zeros(U.size)
            r[posF] = 1.0 + rho * x[posF]
            x = solve_u(r)
            if D.size:
                mu = sla.cho_solve((LG, True), x[posD], check_finite=False)
                x = x - Z @ mu
                x[posD] = 0.0
            res = float(np.max(np.abs(QFF @ x[posF] - 1.0)))
            # stop when the face equations hold, or when refinement stalls (singular Q_FF
            # with 1 outside its range: the face has no minimizer; the caller moves on)
            if res <= 1e-12 or (k >= 2 and res > 0.5 * prev_res):
                break
            prev_res = res
        self.last_residual = res
        return x[posF]


class _UpdateFailed(Exception):
    """A bordered/constrained update of a Cholesky factor lost definiteness."""


def _block_pivot(
    Qw: np.ndarray,
    W: np.ndarray,
    solver: _FaceSolver,
    free: np.ndarray,
    a0: np.ndarray,
    gtol: float,
    max_iter: int = 25,
) -> tuple[np.ndarray | None, int]:
    """Block principal pivoting on the working-set QP; ``None`` when it does not settle.

    Swaps every infeasible index at once (negative ``a`` on the free set, negative gradient on
    the bound set) while the number of infeasibilities decreases; after three non-improving
    swaps it pivots one index at a time (largest index first), as Judice and Pires do.
    """
    m = Qw.shape[0]
    best = m + 1
    fails = 0
    a = a0
    for k in range(1, max_iter + 1):
        F = np.flatnonzero(free)
        a = np.zeros(m)
        if F.size:
            a[F] = solver.solve(W[F], a0[F])
            g = Qw @ a - 1.0  # a full gemv is cheaper than gathering the columns F
        else:
            g = -np.ones(m)
        bad = (free & (a < 0)) | (~free & (g < -gtol))
        nbad = int(np.count_nonzero(bad))
        if nbad == 0:
            return a, k
        if nbad < best:
            best, fails = nbad, 0
            free = free ^ bad
        else:
            fails += 1
            if fails <= 3:
                free = free ^ bad
            else:
                i = int(np.flatnonzero(bad)[-1])
                free = free.copy()
                free[i] = not free[i]
        a0 = np.maximum(a, 0.0)
    return None, max_iter


def _solve_nonneg_qp(
    Q: np.ndarray,
    *,
    tol: float,
    max_iter: int = 10_000,
    chunk: int = 64,
    seed: int = 0,
) -> _QPOutcome:
    """Exact solution of ``min 1/2 a^T Q a - 1^T a, a >= 0`` for a symmetric PSD ``Q``.

    Outer loop (chunking): keep a working set ``W``; solve the QP restricted to ``W`` exactly;
    compute the full gradient ``g = Q a - 1`` and add the most violated ``g_i < 0`` outside
    ``W`` (at least ``chunk``, at most as many as current support vectors). Each restricted
    optimum lowers the objective, so the loop ends.
    On ``W``: block principal pivoting first (:func:`_block_pivot`); if it does not settle,
    and from then on, a monotone primal active-set loop (Lawson--Hanson type): minimize on the
    face of the passive set; if some coordinates go negative, take the projected step when it
    lowers the objective, else the ratio-test step (dropping at least one index); when the
    face minimizer is positive, add the coordinates with negative gradient (all at once, or
    only the most violated after a round without progress, which guarantees strict descent).
    ``diverged`` reports a dual objective growing without bound (primal infeasible).
    """
    n = Q.shape[0]
    scale = max(float(np.max(np.diag(Q))), 1e-300)
    rng = np.random.default_rng(seed)
    a = np.zeros(n)
    in_w = np.zeros(n, dtype=bool)
    in_w[rng.permutation(n)[: min(n, max(chunk, n // 16))]] = True
    face = _FaceSolver(Q, _PROX * scale)
    with contextlib.ExitStack() as threads:
        return _chunking_loop(Q, a, in_w, face, threads, tol=tol, max_iter=max_iter, chunk=chunk)


def _chunking_loop(
    Q: np.ndarray,
    a: np.ndarray,
    in_w: np.ndarray,
    face: _FaceSolver,
    threads: contextlib.ExitStack,
    *,
    tol: float,
    max_iter: int,
    chunk: int,
) -> _QPOutcome:
    """The outer loop of :func:`_solve_nonneg_qp` (see there)."""
    scale = max(float(np.max(np.diag(Q))), 1e-300)
    sum_cap = 1.0 / (_SEPARABILITY_FLOOR**2 * scale)
    gtol = 0.1 * tol
    it = 0
    use_pivoting = True

    def objective(x_idx: np.ndarray, x_val: np.ndarray) -> float:
        return 0.5 * float(x_val @ (Q[np.ix_(x_idx, x_idx)] @ x_val)) - float(np.sum(x_val))

    while True:
        # ---- solve the QP restricted to the working set W exactly ----
        W = np.flatnonzero(in_w)
        threads.close()  # one BLAS thread while the working set is small
        threads.enter_context(_blas_limit(W.size))
        aw = a[W].copy()
        Qw = Q[np.ix_(W, W)]
        # fast path: block principal pivoting (primal-dual active set, Kunisch--Rendl) with
        # the Judice--Pires safeguard; on failure, the monotone active-set loop below.
        if use_pivoting:
            free0 = (aw > 0) | ~np.isin(W, np.flatnonzero(a > 0))
            pd, k_pd = _block_pivot(Qw, W, face, free0, aw, gtol)
            it += k_pd
            if pd is not None:
                aw = pd
            else:
                use_pivoting = False  # it cycles on this problem (e.g. rank-deficient Q)
        P = aw > 0
        single = False
        prev_f = np.inf
        while True:
            it += 1
            if it > max_iter:
                raise SolverError(
                    f"{_FUNC}: the active-set solver did not converge in {max_iter} steps"
                )
            # make aw the positive minimizer of a face contained in P
            while True:
                F = np.flatnonzero(P)
                if F.size == 0:
                    aw[:] = 0.0
                    break
                z = np.zeros(W.size)
                z[F] = face.solve(W[F], aw[F])
                neg = P & (z <= 0)
                if not neg.any():
                    aw = z
                    break
                f_now = objective(F, aw[F])
                zp = np.maximum(z, 0.0)
                Fp = np.flatnonzero(zp > 0)
                if Fp.size and objective(Fp, zp[Fp]) < f_now:
                    aw = zp
                else:
                    idx = np.flatnonzero(neg)
                    ratios = aw[idx] / (aw[idx] - z[idx])
                    alpha = float(np.min(ratios))
                    aw = aw + alpha * (z - aw)
                    aw[idx[ratios <= alpha]] = 0.0
                    aw[aw < 0] = 0.0
                P = aw > 0
            if float(np.sum(aw)) > sum_cap:
                a[:] = 0.0
                a[W] = aw
                return _QPOutcome(a=a, diverged=True, n_iter=it)
            S = np.flatnonzero(P)
            gw = Qw @ aw - 1.0
            cand = np.flatnonzero(~P & (gw < -gtol))
            if cand.size == 0:
                break
            f_now = objective(S, aw[S]) if S.size else 0.0
            single = f_now >= prev_f - 1e-15 * abs(prev_f)
            prev_f = f_now
            if single:
                cand = cand[[int(np.argmin(gw[cand]))]]
            P = P.copy()
            P[cand] = True
            # newly added coordinates start at zero; the face solve moves them
        a[:] = 0.0
        a[W] = aw
        # ---- KKT on the full problem: add the most violated coordinates outside W ----
        S = W[aw > 0]
        g = Q @ a - 1.0
        viol = np.flatnonzero(~in_w & (g < -gtol))
        if viol.size == 0:
            return _QPOutcome(a=a, diverged=False, n_iter=it)
        k = max(chunk, S.size // 2)
        new = viol[np.argsort(g[viol], kind="stable")[:k]]
        in_w[:] = False
        in_w[S] = True
        in_w[new] = True


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
    """Optimality figures of a dual point ``a >= 0`` (all dimensionless)."""
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
    if np.any(np.diag(Km) < 0):
        raise fail(
            _FUNC, "K", "positive semidefinite (non-negative diagonal)", "a negative diagonal entry"
        )

    Q = (yv[:, None] * yv[None, :]) * Km
    radius = float(np.sqrt(max(float(np.max(np.diag(Km))), 0.0)))
    if radius == 0.0:
        raise NotSeparableError(_not_separable_message(_FUNC, 0.0, 0.0))

    routes = ["active-set", "cvxpy"] if solver in ("auto", "active-set") else ["cvxpy"]
    if not fallback:
        routes = routes[:1]
    failures: list[str] = []
    for k, route in enumerate(routes):
        n_iter = 0
        if route == "active-set":
            with _blas_limit(n):
                out = _solve_nonneg_qp(Q, tol=tol)
            a, n_iter = out.a, out.n_iter
            name = "active-set"
        else:
            a = _cvxpy_nonneg_qp(Q, formulation=cvxpy_formulation, cvxpy_solver=cvxpy_solver)
            name = f"cvxpy:{cvxpy_solver or 'CLARABEL'}" + (" (fallback)" if k > 0 else "")
            if not np.all(np.isfinite(a)):
                raise NotSeparableError(_not_separable_message(_FUNC, 0.0, radius))
        cert = _certify(Q, a)
        if cert.margin_upper <= _SEPARABILITY_FLOOR * radius:
            raise NotSeparableError(_not_separable_message(_FUNC, cert.margin_upper, radius))
        status = _status_from(cert, tol)
        if status is None:
            failures.append(f"{name}: KKT residual {cert.kkt_residual:.3g}")
            continue
        if status == "optimal_inaccurate":
            warnings.warn(
                f"{_FUNC}: the {name} answer satisfies the optimality checks only to "
                f"{cert.kkt_residual:.3g} (tol {tol:.3g}); margin bounds "
                f"[{cert.margin_lower:.10g}, {cert.margin_upper:.10g}].",
                InaccurateSolutionWarning,
                stacklevel=2,
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
    raise SolverError(f"{_FUNC}: no route passed the optimality checks ({'; '.join(failures)}).")


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
