r"""The bound-constrained convex QP ``min_{x >= 0} 1/2 x^T Q x - 1^T x`` (``Q`` symmetric PSD).

The dual of the hard-margin SVM without bias, shared by :func:`implicitbias.kernel_svm` and
:func:`implicitbias.multiclass_kernel_svm`. :func:`solve_nonneg_qp` solves it exactly for large
supports: working-set chunking, block principal pivoting (Kunisch--Rendl, Judice--Pires
safeguard) on each working set with Cholesky factors reused across faces
(:class:`_FaceSolver`), and :func:`~implicitbias._lawson_hanson.lawson_hanson` (then a monotone
primal active-set loop with divergence detection) where pivoting does not settle, as on
rank-deficient kernels.

It runs with one BLAS thread (:func:`implicitbias._blas.blas_single_thread`). The
Lawson--Hanson loop (also used by :func:`implicitbias.nnls_gram`) lives in
:mod:`implicitbias._lawson_hanson`; it and the BLAS helper are re-exported here for the
modules that import them from this one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg as sla

from implicitbias._blas import blas_single_thread
from implicitbias._errors import SolverError
from implicitbias._lawson_hanson import lawson_hanson

__all__ = ["QPOutcome", "blas_single_thread", "lawson_hanson", "solve_nonneg_qp"]

# A margin below this fraction of the feature radius sqrt(max K_ii) is numerically zero
# (kernel SVM): bounds the dual sum before the loop reports divergence.
SEPARABILITY_FLOOR = 1e-7
# Relative proximal term that keeps the working block positive definite (removed by refinement).
_PROX = 1e-12
# Each working-set round adds up to this many violators per current support vector.
_GROW = 1.0
# Initial working set: this fraction of the points (at least `chunk`), drawn at random.
_INIT = 1 / 16


def _refine_face(Q: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``x`` with its face equations ``Q_SS x_S = 1`` (``S`` = support) refined once.

    One step of iterative refinement in float64 (the Lawson--Hanson factor was grown one row
    at a time, with exchanges); kept only if it stays positive.
    """
    S = np.flatnonzero(x > 0)
    if S.size == 0:
        return x
    QSS = Q[np.ix_(S, S)]
    try:
        c = sla.cho_factor(QSS, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return x
    xs = x[S] + sla.cho_solve(c, 1.0 - QSS @ x[S], check_finite=False)
    if not np.all(xs > 0):
        return x
    out = np.zeros_like(x)
    out[S] = xs
    return out


# --------------------------------------------------------------------------------------------
# Working sets + block principal pivoting (b = 1)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QPOutcome:
    a: np.ndarray
    diverged: bool  # the dual objective grew without bound (primal infeasible)
    iterations: int


def _cholesky(H: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``H + rho I``, raising ``rho`` until the factorization succeeds.

    ``H`` (symmetric) is overwritten: its lower triangle by the factor, its strict upper
    triangle by zeros.
    """
    m = H.shape[0]
    diag = H.diagonal().copy()
    scale = max(float(np.max(diag)) if m else 1.0, 1e-300)
    r = rho
    for attempt in range(8):
        if attempt:  # potrf overwrote (part of) the lower triangle: restore it from the upper
            low = np.tril_indices(m, -1)
            H[low] = H.T[low]
        H.flat[:: m + 1] = diag + r
        try:
            L = sla.cholesky(H, lower=True, check_finite=False, overwrite_a=True)
        except np.linalg.LinAlgError:
            r = max(10.0 * r, 1e-14 * scale)
            continue
        return L, r
    raise SolverError(
        "nonneg QP: could not factor a principal block of Q even with a proximal shift"
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
        L, r = _cholesky(self.Q[np.ix_(F, F)], self.rho)
        self.rho = r
        self.L = L
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
            if solver.last_residual > 1e-8:
                # singular face system with 1 outside its range: pivoting cannot settle here
                return None, k
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


def solve_nonneg_qp(
    Q: np.ndarray,
    *,
    tol: float,
    max_iter: int = 10_000,
    chunk: int = 128,
    seed: int = 0,
    func: str = "kernel_svm",
) -> QPOutcome:
    """Exact solution of ``min 1/2 a^T Q a - 1^T a, a >= 0`` for a symmetric PSD ``Q``.

    Outer loop (chunking): keep a working set ``W``; solve the QP restricted to ``W`` exactly;
    compute the full gradient ``g = Q a - 1`` and add the most violated ``g_i < 0`` outside
    ``W`` (at least ``chunk``, at most ``_GROW`` per current support vector). Each restricted
    optimum lowers the objective, so the loop ends.
    On ``W``: block principal pivoting first (:func:`_block_pivot`). If it does not settle (it
    cycles, or a face system is singular and inconsistent, as on rank-deficient kernels), from
    then on :func:`lawson_hanson` on ``W`` (independent passive sets: exact on singular
    ``Q``), and where that leaves a violated coordinate (a dependent column it had to skip,
    as when the data are not separable), a monotone primal active-set loop: minimize on the
    face of the passive set; if some coordinates go negative, take the projected step when it
    lowers the objective, else the ratio-test step (dropping at least one index); when the
    face minimizer is positive, add the coordinates with negative gradient (all at once, or
    only the most violated after a round without progress, which guarantees strict descent).
    ``diverged`` reports a dual objective growing without bound (primal infeasible).
    ``func`` names the caller in error messages.
    """
    n = Q.shape[0]
    scale = max(float(np.max(np.diag(Q))), 1e-300)
    rng = np.random.default_rng(seed)
    a = np.zeros(n)
    in_w = np.zeros(n, dtype=bool)
    in_w[rng.permutation(n)[: min(n, max(chunk, int(n * _INIT)))]] = True
    face = _FaceSolver(Q, _PROX * scale)
    with blas_single_thread():
        return _chunking_loop(Q, a, in_w, face, tol=tol, max_iter=max_iter, chunk=chunk, func=func)


def _chunking_loop(
    Q: np.ndarray,
    a: np.ndarray,
    in_w: np.ndarray,
    face: _FaceSolver,
    *,
    tol: float,
    max_iter: int,
    chunk: int,
    func: str,
) -> QPOutcome:
    """The outer loop of :func:`solve_nonneg_qp` (see there)."""
    scale = max(float(np.max(np.diag(Q))), 1e-300)
    sum_cap = 1.0 / (SEPARABILITY_FLOOR**2 * scale)
    gtol = 0.1 * tol
    it = 0
    use_pivoting = True

    def objective(x_idx: np.ndarray, x_val: np.ndarray) -> float:
        return 0.5 * float(x_val @ (Q[np.ix_(x_idx, x_idx)] @ x_val)) - float(np.sum(x_val))

    while True:
        # ---- solve the QP restricted to the working set W exactly ----
        W = np.flatnonzero(in_w)
        aw = a[W].copy()
        Qw = Q[np.ix_(W, W)]
        settled = False
        # fast path: block principal pivoting (primal-dual active set, Kunisch--Rendl) with
        # the Judice--Pires safeguard
        if use_pivoting:
            free0 = (aw > 0) | ~np.isin(W, np.flatnonzero(a > 0))
            pd, k_pd = _block_pivot(Qw, W, face, free0, aw, gtol)
            it += k_pd
            if pd is not None:
                aw, settled = pd, True
            else:
                use_pivoting = False  # it cycles on this problem (e.g. rank-deficient Q)
        if not settled:
            # Lawson--Hanson: exact on singular blocks, cheap for the small supports they have
            mu, k_lh, lh_status = lawson_hanson(
                Qw,
                np.ones(W.size),
                np.ones(W.size, dtype=bool),
                tol=gtol,
                max_iter=max_iter,
                exchange=True,
                x0=aw,
            )
            it += k_lh
            gw = Qw @ mu - 1.0
            if (
                lh_status == "optimal"
                and np.all(np.isfinite(mu))
                and not np.any((mu == 0) & (gw < -gtol))
            ):
                aw, settled = _refine_face(Qw, mu), True
            elif np.all(np.isfinite(mu)):
                aw = mu  # a good start for the monotone loop (it descends from there)
        if not settled:
            aw, it, diverged = _monotone_active_set(
                Qw, W, aw, face, objective, gtol, sum_cap, it, max_iter, func
            )
            if diverged:
                a[:] = 0.0
                a[W] = aw
                return QPOutcome(a=a, diverged=True, iterations=it)
        a[:] = 0.0
        a[W] = aw
        # ---- KKT on the full problem: add the most violated coordinates outside W ----
        S = W[aw > 0]
        g = Q @ a - 1.0
        viol = np.flatnonzero(~in_w & (g < -gtol))
        if viol.size == 0:
            return QPOutcome(a=a, diverged=False, iterations=it)
        k = max(chunk, int(_GROW * S.size))
        new = viol[np.argsort(g[viol], kind="stable")[:k]]
        in_w[:] = False
        in_w[S] = True
        in_w[new] = True


def _monotone_active_set(
    Qw: np.ndarray,
    W: np.ndarray,
    aw: np.ndarray,
    face: _FaceSolver,
    objective: Any,
    gtol: float,
    sum_cap: float,
    it: int,
    max_iter: int,
    func: str,
) -> tuple[np.ndarray, int, bool]:
    """The monotone primal active-set loop of :func:`solve_nonneg_qp` on the working set.

    Returns ``(aw, iterations so far, diverged)``.
    """
    P = aw > 0
    prev_f = np.inf
    while True:
        it += 1
        if it > max_iter:
            raise SolverError(f"{func}: the active-set solver did not converge in {max_iter} steps")
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
            return aw, it, True
        S = np.flatnonzero(P)
        gw = Qw @ aw - 1.0
        cand = np.flatnonzero(~P & (gw < -gtol))
        if cand.size == 0:
            return aw, it, False
        f_now = objective(S, aw[S]) if S.size else 0.0
        single = f_now >= prev_f - 1e-15 * abs(prev_f)
        prev_f = f_now
        if single:
            cand = cand[[int(np.argmin(gw[cand]))]]
        P = P.copy()
        P[cand] = True
        # newly added coordinates start at zero; the face solve moves them
