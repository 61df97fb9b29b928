r"""Block principal pivoting for ``min_{x ≥ 0} ½ xᵀQx − bᵀx`` with a large passive set.

Lawson–Hanson changes one variable per step, each step a triangular solve of the passive set:
``O(s³)`` memory-bound work for a support of ``s`` (minutes at ``s`` of a few thousand). Block
principal pivoting (Júdice & Pires 1994; Kim & Park 2011) exchanges **all** infeasible
variables at once, each step one Cholesky factorization (``s³/3`` flops at BLAS-3 speed), and
usually ends in a handful of steps from a warm start; a backup rule (one exchange at a time
after three steps without fewer infeasible variables) makes it finite when ``Q_FF`` is
positive definite. A singular ``Q_FF`` (dependent constraints) or a step limit returns a
status other than ``"optimal"``, and the caller falls back to Lawson–Hanson.

Optimality is Lawson–Hanson's, with the same rounding bound on ``w = b − Qx``:
``x_F > 0``, ``w_F = 0`` and ``w_i ≤ 64·eps·(|b_i| + max_j |Q_ij|·Σx)·√|F|`` off ``F``.

Mixed precision: the factor of ``Q_FF`` is computed in float32 (half the memory, about 2.5×
the speed of a float64 Cholesky) and each solve is refined in float64 against ``Q`` itself
(``x_F ← x_F + Q_FF⁻¹(b_F − Q_FF x_F)`` with the float32 factor), which reaches float64
accuracy in two or three O(|F|²) steps while ``cond(Q_FF)·2⁻²⁴ ≪ 1``. When the refinement
stalls (an ill-conditioned ``Q_FF``) the factor switches to float64 for good.
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import scipy.linalg as sla

LOG = logging.getLogger("implicitbias.kkt")

__all__ = ["PassiveFactor", "principal_pivoting", "row_absmax"]

_EPS = float(np.finfo(np.float64).eps)


def row_absmax(Q: np.ndarray, block: int = 2048) -> np.ndarray:
    """``max_j |Q_ij|`` per row, in row blocks (no full-size temporary)."""
    out = np.empty(Q.shape[0])
    for i in range(0, Q.shape[0], block):
        out[i : i + block] = np.max(np.abs(Q[i : i + block]), axis=1)
    return out


#: Largest float64 residual reduction per refinement step that counts as converging.
_REFINE_RATE = 0.1
#: Refinement steps before the float32 factor is given up.
_REFINE_STEPS = 8


class PassiveFactor:
    """Cholesky factor of ``Q_FF`` for an ordered passive set, refactored from the first
    position that changed: passive variables keep their order, entering ones are appended, so
    a step that only drops recent entries (the common case) reuses most of the factor.

    The factor is float32 (``dtype``) until a refinement stalls, then float64.
    """

    def __init__(self, Q: np.ndarray, *, dtype: type = np.float32) -> None:
        self.Q = Q
        self.dtype = np.dtype(dtype)
        self.order = np.zeros(0, dtype=np.int64)
        self.L = np.zeros((0, 0), dtype=self.dtype)

    def rebase(self, Q: np.ndarray, new_index: np.ndarray) -> bool:
        """Carry the factor to a problem ``Q`` whose variable ``new_index[i]`` is the old
        variable ``i`` (``−1``: gone); ``False`` (factor unchanged) when a passive variable
        is gone."""
        order = new_index[self.order]
        if np.any(order < 0):
            return False
        self.Q = Q
        self.order = order
        return True

    def prefix(self, F: np.ndarray) -> int:
        """How many leading passive variables of the factor stay passive under ``F``."""
        stay = F[self.order]
        return int(np.argmin(stay)) if not stay.all() else int(self.order.size)

    def update(self, F: np.ndarray, priority: np.ndarray | None = None) -> bool:
        """Factor ``Q_FF`` for the new passive mask ``F``; ``False`` when it is singular.

        The refactored tail is ordered by decreasing ``priority`` (the current multipliers:
        large ones rarely leave), so that later steps tend to change only the end.
        """
        old = self.order
        p = self.prefix(F)
        kept = old[F[old]]
        fresh = np.flatnonzero(F)
        fresh = fresh[~np.isin(fresh, kept)]
        head, tail = kept[:p], np.concatenate([kept[p:], fresh])
        if priority is not None and tail.size:
            tail = tail[np.argsort(-priority[tail], kind="stable")]
        order = np.concatenate([head, tail])
        old_L = self.L
        # invalid until the end (a singular block leaves an empty factor); frees memory early
        self.order, self.L = np.zeros(0, dtype=np.int64), np.zeros((0, 0), dtype=self.dtype)
        dt = self.dtype
        B = None
        if p and tail.size:
            head_L = old_L if p == old_L.shape[0] else old_L[:p, :p]
            B = sla.solve_triangular(
                head_L, self.Q[np.ix_(head, tail)].astype(dt, copy=False), lower=True,
                check_finite=False,
            )  # fmt: skip
        L = np.zeros((order.size, order.size), dtype=dt)
        L[:p, :p] = old_L[:p, :p]
        del old_L
        if tail.size:
            S = self.Q[np.ix_(tail, tail)].astype(dt, copy=False)
            if B is not None:
                L[p:, :p] = B.T
                # S ← S − BᵀB on the triangle the Cholesky reads (the upper one of the F-ordered
                # Sᵀ): a rank-p SYRK, half the flops of the full product
                syrk = sla.blas.get_blas_funcs("syrk", (B,))
                S = syrk(-1.0, B.T, beta=1.0, c=S.T, trans=0, lower=0, overwrite_c=1).T
                del B
            diag = np.diag(self.Q)[tail]
            # a float32 factor must keep pivots well above its rounding
            small = 1e-12 if dt == np.float64 else 1e-5
            try:  # S is symmetric: factor its F-ordered transpose in place (no copy)
                U = sla.cholesky(S.T, lower=False, overwrite_a=True, check_finite=False)
                ok = bool(
                    np.min(np.diag(U).astype(np.float64) ** 2)
                    > small * max(float(np.max(diag)), 1e-300)
                )
            except np.linalg.LinAlgError:
                ok = False
            if not ok:
                if dt == np.float64:
                    return False
                # beyond float32's reach, not necessarily singular: float64 from now on
                del L, S
                self.to_float64()
                return self.update(F, priority)
            L[p:, p:] = U.T
        self.order, self.L = order, L
        return True

    def solve(self, b: np.ndarray) -> np.ndarray:
        """``Q_FF⁻¹ b_F`` in the factor's order (in the factor's precision)."""
        rhs = b[self.order].astype(self.dtype, copy=False)
        z = sla.solve_triangular(self.L, rhs, lower=True, check_finite=False)
        z = sla.solve_triangular(self.L, z, lower=True, trans="T", check_finite=False)
        return z.astype(np.float64)

    def solve_vec(self, r: np.ndarray) -> np.ndarray:
        """``Q_FF⁻¹ r`` for ``r`` already in the factor's order (a refinement step)."""
        z = sla.solve_triangular(self.L, r.astype(self.dtype), lower=True, check_finite=False)
        z = sla.solve_triangular(self.L, z, lower=True, trans="T", check_finite=False)
        return z.astype(np.float64)

    def to_float64(self) -> None:
        """Give up the float32 factor: the next :meth:`update` refactors in float64."""
        self.dtype = np.dtype(np.float64)
        self.order, self.L = np.zeros(0, dtype=np.int64), np.zeros((0, 0))


def _refine(
    Q: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    w: np.ndarray,
    tol: np.ndarray,
    factor: PassiveFactor,
) -> bool:
    """Float64 iterative refinement of the passive solution ``x`` (in place, with ``w = b − Qx``
    kept current) until ``|w_F| ≤ tol_F``; ``False`` when the residual stops falling."""
    o = factor.order
    prev = math.inf
    for _ in range(_REFINE_STEPS):
        r = w[o]
        size = float(np.max(np.abs(r) - tol[o])) if o.size else 0.0
        if size <= 0.0:
            return True
        now = float(np.max(np.abs(r)))
        if now > _REFINE_RATE * prev:
            return False
        prev = now
        x[o] += factor.solve_vec(r)
        w[:] = b - Q @ x
    return False


def principal_pivoting(
    Q: np.ndarray,
    b: np.ndarray,
    *,
    x0: np.ndarray | None = None,
    max_iter: int | None = None,
    rowmax: np.ndarray | None = None,
    factor: PassiveFactor | None = None,
) -> tuple[np.ndarray, int, str]:
    """Block principal pivoting (Kim & Park 2011, Algorithm 2 for one right-hand side).

    Parameters
    ----------
    Q : ndarray of shape (n, n)
        Symmetric positive semidefinite.
    b : ndarray of shape (n,)
    x0 : ndarray of shape (n,), optional
        Warm start: its support is the first passive set.
    max_iter : int, optional
        Limit on pivoting steps (default ``50 + n // 10``).
    rowmax : ndarray of shape (n,), optional
        ``max_j |Q_ij|`` (:func:`row_absmax`), when already known.
    factor : PassiveFactor, optional
        A factor to continue from (its passive set factored for this ``Q``, e.g. from a
        previous call on a sub-problem, carried over with :meth:`PassiveFactor.rebase`); it
        is updated in place.

    Returns
    -------
    x : ndarray of shape (n,)
        The solution (the last iterate, clipped at 0, when not optimal).
    iterations : int
        Pivoting steps (factorizations).
    status : {"optimal", "singular", "max_iter"}
    """
    n = b.shape[0]
    max_iter = 50 + n // 10 if max_iter is None else max_iter
    rowmax = row_absmax(Q) if rowmax is None else rowmax
    absb = np.abs(b)
    F = np.zeros(n, dtype=bool) if x0 is None else x0 > 0
    x = np.zeros(n)
    factor = PassiveFactor(Q) if factor is None else factor
    best, backup = n + 1, 3
    iterations = 0
    status = "max_iter"
    while iterations < max_iter:
        iterations += 1
        t0 = time.perf_counter()
        reused = factor.prefix(F)
        if not factor.update(F, priority=x if iterations > 1 else x0):
            status = "singular"
            break
        LOG.debug(
            "pivoting step %d: %d passive, factor reused for %d, %.2f s",
            iterations,
            int(F.sum()),
            reused,
            time.perf_counter() - t0,
        )
        x[:] = 0.0
        x[factor.order] = factor.solve(b)
        w = b - Q @ x
        k = max(1, int(F.sum()))
        tol = 64 * _EPS * (absb + rowmax * float(np.sum(np.abs(x)))) * np.sqrt(k) + 1e-300
        if factor.dtype != np.float64 and not _refine(Q, b, x, w, tol, factor):
            LOG.debug("pivoting: float32 refinement stalled; the factor is float64 from now on")
            factor.to_float64()
            if not factor.update(F, priority=x):
                status = "singular"
                break
            x[:] = 0.0
            x[factor.order] = factor.solve(b)
            w[:] = b - Q @ x
            tol = 64 * _EPS * (absb + rowmax * float(np.sum(np.abs(x)))) * np.sqrt(k) + 1e-300
        bad = (F & (x < 0)) | (~F & (w > tol))
        count = int(bad.sum())
        if count == 0:
            status = "optimal"
            break
        if count < best:
            best, backup = count, 3
            F ^= bad
        elif backup >= 1:
            backup -= 1
            F ^= bad
        else:  # backup rule: exchange the infeasible variable of largest index only
            F[int(np.flatnonzero(bad)[-1])] ^= True
    np.maximum(x, 0.0, out=x)
    return x, iterations, status
