r"""Face systems :math:`M_{FF}\,x = r` of the multiclass SVM dual on ``K ⊗ I_C``, never forming
:math:`M_{FF}`.

For a set ``F`` of pairs, write the dual point through its expansion ``coef`` (see
:mod:`._multiclass_pairs`): the pairs of ``F`` own the *slots* ``(i, c)`` and every example
``i`` touched by ``F`` owns its label slot ``(i, y_i)``. Per class ``b`` the slots hold a vector
:math:`u_b` on the examples :math:`E_b` of that class's slots, and
:math:`M_{FF} = P^\top D P` with :math:`D = \mathrm{diag}_b(K_b)`, :math:`K_b = K[E_b, E_b]`
(at most one slot per example and class), and ``P`` the map ``x -> u`` (``u = -x`` on a pair's
slot, ``u = sum_c x_ic`` on the label slot). The range of ``P`` is exactly the set of ``u``
whose slots sum to zero per example, so :math:`M_{FF}\,x = r` is the saddle-point system

.. math::

    K_b u_b + \lambda_{E_b} = w_b \ (\text{every class } b), \qquad
    \textstyle\sum_{\text{slots of } i} u = 0 \ (\text{every example } i),

with ``w = -r`` on the pair slots and 0 on the label slots, and ``x = -u`` on the pair slots.
Eliminating :math:`u_b = K_b^{-1}(w_b - \lambda_{E_b})` leaves the ``n_F x n_F`` system
:math:`H\lambda = \sum_b E_b K_b^{-1} w_b`, :math:`H = \sum_b E_b K_b^{-1} E_b^\top`, with
``n_F`` the number of examples touched. The cost is one Cholesky factorization per class
(``|E_b|^3 / 3``) and one of ``H`` (``n_F^3 / 3``); the memory ``2 sum_b |E_b|^2 + n_F^2``
numbers, against ``|F|^2`` for the dense block. A singular :math:`K_b` gets a tiny proximal
shift (``K_b + rho I``); iterative refinement with the exact product :math:`M_{FF}\,x` removes
its effect (it is the proximal-point iteration in the metric :math:`P^\top P`).
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from implicitbias.kernel_regime._multiclass_pairs import KronPairs

__all__ = ["KronFace", "face_bytes"]

# proximal shift of the class blocks, relative to the normalized kernel (max_i K_ii = 1/2)
_RHO = 1e-8


def face_bytes(pairs: KronPairs, F: np.ndarray) -> int:
    """Memory (bytes) of the factorization :class:`KronFace` builds for the face ``F``."""
    i, c = np.divmod(F, pairs.C)
    ex = np.unique(i)
    sizes = np.bincount(np.concatenate([pairs.y[ex], c]), minlength=pairs.C)
    return 8 * int(2 * np.sum(sizes.astype(np.int64) ** 2) + ex.size**2)


def _cholesky(A: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """Lower Cholesky factor of ``A + rho I`` (``A`` is overwritten), raising ``rho`` until it
    exists."""
    diag = A.diagonal().copy()
    r = rho
    for _ in range(12):
        A.flat[:: A.shape[0] + 1] = diag + r
        try:
            return sla.cholesky(A, lower=True, check_finite=False), r
        except np.linalg.LinAlgError:
            r = max(100.0 * r, 1e-14)
    raise np.linalg.LinAlgError("a class block of the face could not be factored")


def _inverse_pd(A: np.ndarray, rho: float) -> tuple[np.ndarray, float]:
    """``(A + rho I)^{-1}`` of a symmetric PSD ``A`` (overwritten) by LAPACK ``potrf`` +
    ``potri`` (``n^3`` flops, half those of solving against the identity), raising ``rho``
    until the factorization exists."""
    L, r = _cholesky(A, rho)  # zero above the diagonal
    inv, info = sla.lapack.dpotri(L, lower=1, overwrite_c=1)
    if info != 0:  # pragma: no cover - potrf succeeded, so the factor is non-singular
        raise np.linalg.LinAlgError("potri failed")
    inv += np.tril(inv, -1).T  # potri fills the lower triangle only
    return inv, r


class KronFace:
    """Factorization of the face ``F`` (sorted flat pair indices) of :class:`KronPairs`.

    :meth:`solve` returns the face minimizer ``x`` (``M_FF x = r``) with ``last_residual``
    ``= max |M_FF x - r|``; :meth:`matvec` is the exact product ``M_FF x``.
    """

    def __init__(self, pairs: KronPairs, F: np.ndarray) -> None:
        C, y, K = pairs.C, pairs.y, pairs.K
        fi, fc = np.divmod(F, C)
        ex = np.unique(fi)
        nF, m = ex.size, F.size
        loc = np.full(pairs.n, -1, dtype=np.intp)
        loc[ex] = np.arange(nF)
        # slots: the label slots of the touched examples, then the pair slots
        slot_ex = np.concatenate([ex, fi])
        slot_cls = np.concatenate([y[ex], fc])
        order = np.lexsort((slot_ex, slot_cls))
        bounds = np.searchsorted(slot_cls[order], np.arange(C + 1))
        self.m, self.nF = m, nF
        self.pair_label = loc[fi]  # label slot of each pair (slots 0..nF-1 are the labels)
        self.blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        H = np.zeros((nF, nF))
        self.rho_max = 0.0
        for b in range(C):
            sl = order[bounds[b] : bounds[b + 1]]
            if sl.size == 0:
                continue
            idx = slot_ex[sl]
            Kb = K[np.ix_(idx, idx)]
            inv, rho = _inverse_pd(Kb.copy(), _RHO)
            self.rho_max = max(self.rho_max, rho)
            lb = loc[idx]
            H[np.ix_(lb, lb)] += inv
            self.blocks.append((sl, lb, Kb, inv))
        self.L_H, _ = _cholesky(H, 0.0)
        self.last_residual = np.inf
        self.nbytes = 8 * (2 * sum(blk[2].size for blk in self.blocks) + nF * nF)

    def _inverse(self, r: np.ndarray) -> np.ndarray:
        """``(M_FF + rho P^T P)^{-1} r`` by the Schur complement in ``lambda``."""
        nF = self.nF
        w = np.zeros(nF + self.m)
        w[nF:] = -r
        t_all = []
        rhs = np.zeros(nF)
        for sl, lb, _, inv in self.blocks:
            t = inv @ w[sl]
            rhs[lb] += t  # lb is unique within a class
            t_all.append(t)
        lam = sla.cho_solve((self.L_H, True), rhs, check_finite=False)
        u = np.empty(nF + self.m)
        for (sl, lb, _, inv), t in zip(self.blocks, t_all):
            u[sl] = t - inv @ lam[lb]
        return -u[nF:]

    def matvec(self, x: np.ndarray) -> np.ndarray:
        """The exact product ``M_FF x``."""
        nF = self.nF
        u = np.empty(nF + self.m)
        u[nF:] = -x
        u[:nF] = np.bincount(self.pair_label, weights=x, minlength=nF)
        s = np.empty_like(u)
        for sl, _, Kb, _ in self.blocks:
            s[sl] = Kb @ u[sl]
        return s[self.pair_label] - s[nF:]

    def solve(self, r: np.ndarray, x0: np.ndarray | None = None) -> np.ndarray:
        """The solution of ``M_FF x = r`` (iterative refinement from ``x0``, up to 30 steps)."""
        x = np.zeros(self.m) if x0 is None else x0.copy()
        res_vec = r - self.matvec(x) if x0 is not None else r.copy()
        scale = max(float(np.max(np.abs(r))), 1e-300)
        prev = np.inf
        res = float(np.max(np.abs(res_vec))) / scale
        for k in range(30):
            x += self._inverse(res_vec)
            res_vec = r - self.matvec(x)
            res = float(np.max(np.abs(res_vec))) / scale
            if res <= 1e-13 or (k >= 2 and res > 0.5 * prev):
                break
            prev = res
        self.last_residual = res
        return x
