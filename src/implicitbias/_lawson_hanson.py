r"""Lawson--Hanson active set for ``min_{x >= 0} 1/2 x^T Q x - b^T x`` on the normal equations.

The primal active-set method of Lawson and Hanson (1974, ch. 23) in the Gram form of Bro and
de Jong ("fast NNLS"): the passive set is kept linearly independent, with an incrementally
grown Cholesky factor of ``Q[P, P]``, so every step solves a positive-definite system; exact on
singular ``Q`` and cheap when the support is small. Shared by :func:`implicitbias.nnls_gram`
(``Q = G^T G``, ``b = G^T t``), the kernel SVM's working-set solver
(:mod:`implicitbias._nonneg_qp`, ``b = 1`` with exchange steps) and the exact min-norm point
of the non-separability certificate.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

__all__ = ["lawson_hanson"]

_EPS = float(np.finfo(np.float64).eps)


def _cholesky_jitter(A: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor; a tiny diagonal jitter if rounding made ``A`` indefinite."""
    try:
        return sla.cholesky(A, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        jitter = 1e2 * _EPS * max(float(np.max(np.diag(A))), 1e-300) * A.shape[0]
        return sla.cholesky(A + jitter * np.eye(A.shape[0]), lower=True, check_finite=False)


def _solve(Lf: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    z = sla.solve_triangular(Lf, rhs, lower=True, check_finite=False)
    return sla.solve_triangular(Lf, z, lower=True, trans="T", check_finite=False)


def lawson_hanson(
    Q: np.ndarray,
    b: np.ndarray,
    candidates: np.ndarray,
    *,
    tol: float | None,
    max_iter: int,
    exchange: bool = False,
    x0: np.ndarray | None = None,
) -> tuple[np.ndarray, int, str]:
    """Lawson–Hanson active set on the normal equations (Bro & de Jong's "fast NNLS").

    The passive set P is kept with an incrementally grown Cholesky factor of ``Q[P, P]``
    (``O(|P|²)`` per addition, refactored from scratch after removals). A candidate whose
    column is numerically dependent on those of P (pivot ``≤ 1e-12·Q_jj``) is skipped until
    the next removal: in exact arithmetic Lawson–Hanson never adds one when ``b`` lies in the
    range of ``Q`` (NNLS: ``b = Gᵀt``), so this only guards against rounding.

    ``exchange=True`` (for ``b`` outside the range of a singular ``Q``, as in the SVM dual
    with ``b = 1``): a violated dependent candidate ``j`` is exchanged in instead. Along
    ``d = (−Q_PP⁻¹ Q_Pj, 1)`` the curvature is zero and the objective falls at rate
    ``(b − Qμ)_j > 0``, so step until a passive coordinate reaches 0 and swap it for ``j``
    (the new passive set stays independent); if no passive coordinate decreases the objective
    is unbounded below and the status is ``"unbounded"``.

    ``x0``: a warm start, used when its support is a linearly independent set on which it is
    the face minimizer (as the answer of this function on a sub-problem is); else ignored.
    """
    n = b.shape[0]
    mu = np.zeros(n)
    in_p = np.zeros(n, dtype=bool)
    skipped = np.zeros(n, dtype=bool)
    P: list[int] = []
    Lf = np.zeros((max(1, int(candidates.sum())), max(1, int(candidates.sum()))))
    k = 0
    w = b.copy()
    absQ_diag = np.abs(np.diag(Q))
    rowmax = np.max(np.abs(Q), axis=1)
    absb = np.abs(b)
    iterations = 0
    status = "optimal"
    if x0 is not None:
        P, k = _warm_start(Q, b, candidates, x0, Lf)
        if k:
            in_p[P] = True
            mu[P] = x0[P]
            w = b - Q @ mu

    def threshold() -> np.ndarray:
        # A bound on the rounding error of w = b − Qμ, coordinate-wise.
        if tol is not None:
            return np.full(n, tol)
        return 64 * _EPS * (absb + rowmax * float(np.sum(mu))) * np.sqrt(max(k, 1)) + 1e-300

    while True:
        if iterations >= max_iter:
            status = "max_iter"
            break
        free = candidates & ~in_p & ~skipped
        if not free.any():
            break
        score = np.where(free, w - threshold(), -np.inf)
        j = int(np.argmax(score))
        if score[j] <= 0:
            break
        iterations += 1
        # Grow the Cholesky factor of Q[P, P] by the row/column of j.
        if k > 0:
            col = Q[P, j]
            ell = sla.solve_triangular(Lf[:k, :k], col, lower=True, check_finite=False)
            d2 = Q[j, j] - float(ell @ ell)
        else:
            ell = np.zeros(0)
            d2 = float(Q[j, j])
        first = True
        if not d2 > 1e-12 * max(absQ_diag[j], 1e-300):
            if not exchange:
                skipped[j] = True
                continue
            swapped = _exchange(Q, Lf, P, j, mu, in_p, skipped)
            if swapped is None:
                status = "unbounded"
                break
            P, k = swapped, len(swapped)
            first = False  # the entering j is in: go to the face minimization
        else:
            Lf[k, :k] = ell
            Lf[k, k] = np.sqrt(d2)
            P.append(j)
            in_p[j] = True
            k += 1
        while True:
            z = _solve(Lf[:k, :k], b[P])
            if np.all(z > 0):
                mu[P] = z
                break
            if first and z[-1] <= 0:
                # Rounding made the entering variable non-positive: undo the addition.
                P.pop()
                in_p[j] = False
                k -= 1
                skipped[j] = True
                break
            first = False
            iterations += 1
            muP = mu[P]
            neg = z <= 0
            ratios = muP[neg] / (muP[neg] - z[neg])
            alpha = float(np.min(ratios))
            muP = muP + alpha * (z - muP)
            drop = muP <= 16 * _EPS * max(float(np.max(np.abs(muP))), 1e-300)
            drop[np.flatnonzero(neg)[np.argmin(ratios)]] = True
            muP[drop] = 0.0
            mu[P] = muP
            for idx in np.asarray(P)[drop]:
                in_p[idx] = False
            P = [int(i) for i, d in zip(P, drop) if not d]
            k = len(P)
            skipped[:] = False
            if k == 0:
                break
            Lf[:k, :k] = _cholesky_jitter(Q[np.ix_(P, P)])
            Lf[:k, k:] = 0.0
            if iterations >= max_iter:
                status = "max_iter"
                break
        if status == "max_iter":
            break
        w = b - Q @ mu  # one dense matvec: cheaper than gathering the columns of P
    return mu, iterations, status


def _exchange(
    Q: np.ndarray,
    Lf: np.ndarray,
    P: list[int],
    j: int,
    mu: np.ndarray,
    in_p: np.ndarray,
    skipped: np.ndarray,
) -> list[int] | None:
    """The exchange step of :func:`lawson_hanson` for a violated dependent candidate ``j``.

    Steps along ``d = (−Q_PP⁻¹ Q_Pj, 1)`` until a passive coordinate reaches 0 and swaps it
    for ``j``; updates ``mu``, ``in_p``, ``skipped`` and the factor ``Lf`` in place and
    returns the new passive set, or ``None`` when no passive coordinate decreases (the
    objective is unbounded below).
    """
    k = len(P)
    dP = -_solve(Lf[:k, :k], Q[P, j]) if k else np.zeros(0)
    dec = dP < 0
    if not dec.any():
        return None
    muP = mu[P]
    ratios = muP[dec] / -dP[dec]
    alpha = float(np.min(ratios))
    muP = muP + alpha * dP
    drop = muP <= 16 * _EPS * max(float(np.max(np.abs(muP))), 1e-300)
    drop[np.flatnonzero(dec)[np.argmin(ratios)]] = True
    muP[drop] = 0.0
    mu[P] = muP
    mu[j] = alpha
    for idx in np.asarray(P)[drop]:
        in_p[idx] = False
    P = [int(i) for i, d in zip(P, drop) if not d] + [j]
    in_p[j] = True
    k = len(P)
    skipped[:] = False
    Lf[:k, :k] = _cholesky_jitter(Q[np.ix_(P, P)])
    Lf[:k, k:] = 0.0
    return P


def _warm_start(
    Q: np.ndarray, b: np.ndarray, candidates: np.ndarray, x0: np.ndarray, Lf: np.ndarray
) -> tuple[list[int], int]:
    """Passive set and Cholesky factor (written into ``Lf``) of a warm start, or ``([], 0)``."""
    P = np.flatnonzero(x0 > 0)
    if P.size == 0 or P.size > Lf.shape[0] or not np.all(candidates[P]):
        return [], 0
    try:
        L = sla.cholesky(Q[np.ix_(P, P)], lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return [], 0
    if np.min(np.diag(L) ** 2) <= 1e-12 * np.max(np.abs(np.diag(Q)[P])):
        return [], 0  # (numerically) dependent columns
    z = _solve(L, b[P])
    if not np.allclose(z, x0[P], rtol=1e-8, atol=0.0):
        return [], 0  # not the face minimizer
    Lf[: P.size, : P.size] = L
    return [int(i) for i in P], int(P.size)
