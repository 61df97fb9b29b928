r"""The multiclass SVM dual by working sets: cost and memory follow the near-active pairs.

Solves :math:`\min_{a \ge 0} \tfrac12 a^\top M a - \mathbf 1^\top a` over the ``n(C-1)`` pair
constraints of :func:`~implicitbias.multiclass_kernel_svm` (``M`` normalized to unit diagonal
maximum) without forming ``M``: only products ``M a`` over all pairs (one kernel product,
``O(n^2 C)`` on ``K ⊗ I_C``; see :mod:`._multiclass_pairs`) and systems restricted to a set of
pairs.

**Fast path** (``K ⊗ I_C``, :func:`_global_pivot`): block principal pivoting over all pairs
whose free set starts small and grows by at most one pair per positive multiplier per step;
each face system ``M_FF x = 1`` is solved by :class:`._multiclass_face.KronFace`
(``O(sum_b |E_b|^3 + n_F^3)``, no ``M[F, F]``). It stops at a point that is KKT for the whole
problem, and hands over to the loop below when it does not settle.

**Safe loop** (chunking, as :func:`implicitbias._nonneg_qp.solve_nonneg_qp` does inside a
dense matrix): solve the problem restricted to a working set ``W`` exactly; compute the
gradient ``g = M a - 1`` over **all** pairs; stop when no pair outside ``W`` has
``g < -0.1 tol`` (then ``a`` is optimal for the whole problem: it is optimal on ``W`` and every
excluded pair is dual feasible); else keep the support and add the most violated pairs (at
least ``chunk``, at most one per current support pair). Each restricted optimum lowers the
objective, so the loop ends. On ``W``:

* (``K ⊗ I_C``) block principal pivoting on ``W`` (Kunisch--Rendl, with the Judice--Pires
  safeguard) with the structured face solves;
* where that does not settle (a singular face, as on low-rank kernels), or for a general
  multi-output kernel, the dense block ``M[W, W]`` and the exact active-set solver of
  ``_nonneg_qp`` when the block fits the memory budget;
* else (``K ⊗ I_C``) the monotone primal active-set loop with structured face solves, whose
  steps on a singular face follow its zero-curvature descent rays (and detect a diverging
  dual: data that are not separable).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from implicitbias._blas import blas_single_thread
from implicitbias._errors import SolverError
from implicitbias._nonneg_qp import SEPARABILITY_FLOOR, solve_nonneg_qp
from implicitbias.kernel_regime._multiclass_face import KronFace, face_bytes
from implicitbias.kernel_regime._multiclass_pairs import KronPairs, Pairs

__all__ = ["DENSE_COPIES", "WorkingSetOutcome", "solve_working_set"]

# Initial working set: this many pairs (at least ``chunk``), spread over the examples.
_INIT_PER_EXAMPLE = 8
# A dense block M[W, W] is used when 3 copies of it fit the memory budget (the block, the
# solver's working copy and its factorization).
DENSE_COPIES = 3


@dataclass(frozen=True)
class WorkingSetOutcome:
    """``a`` (normalized, shape (n, C), zero at the labels), ``Ma`` (= M a, same shape),
    ``quad`` (= aᵀMa), whether the dual diverged (``a`` then is the diverging iterate),
    the iterations (inner active-set steps), the outer rounds, the number of distinct pairs that
    ever entered the working set (``touched``), the largest working set, and the route of the
    restricted solves (``"dense blocks"``, ``"structured faces"`` or both)."""

    a: np.ndarray
    Ma: np.ndarray
    quad: float
    diverged: bool
    iterations: int
    rounds: int
    touched: int
    largest: int
    route: str


def _initial(pairs: Pairs, chunk: int, rng: np.random.Generator) -> np.ndarray:
    """All pairs when few, else ``_INIT_PER_EXAMPLE`` random classes per example."""
    allp = pairs.pairs()
    if allp.size <= max(chunk, _INIT_PER_EXAMPLE * pairs.n):
        return allp
    k = _INIT_PER_EXAMPLE
    # k random other classes per example: random keys, smallest k per row (labels excluded)
    keys = rng.random((pairs.n, pairs.C))
    keys[~pairs.mask] = np.inf
    cls = np.argpartition(keys, k - 1, axis=1)[:, :k]
    return np.sort((np.arange(pairs.n)[:, None] * pairs.C + cls).ravel())


def solve_working_set(
    pairs: Pairs,
    *,
    tol: float,
    memory_budget: int,
    func: str,
    chunk: int = 256,
    max_rounds: int = 1000,
    seed: int = 0,
    dense_bytes: int | None = None,
) -> WorkingSetOutcome:
    """Exact solution of the pair dual by working sets (see the module doc). ``dense_bytes``
    (default ``memory_budget``) bounds the dense blocks ``M[W, W]``."""
    dense = memory_budget if dense_bytes is None else dense_bytes
    gtol = 0.1 * tol
    rng = np.random.default_rng(seed)
    n, C = pairs.n, pairs.C
    a = np.zeros((n, C))
    W = _initial(pairs, chunk, rng)
    touched = np.zeros(n * C, dtype=bool)
    iterations = 0
    largest = 0
    routes: set[str] = set()
    with blas_single_thread():
        if isinstance(pairs, KronPairs):
            fast = _global_pivot(pairs, W, gtol, memory_budget, chunk, touched)
            iterations += fast.iterations
            largest = fast.largest
            if fast.a is not None:
                Ma, quad = fast.products
                return WorkingSetOutcome(
                    fast.a, Ma, quad, False, iterations, 0, int(touched.sum()), largest,
                    "structured faces",
                )  # fmt: skip
            W = fast.W  # did not settle: the safe loop from its last free set
        for rounds in range(1, max_rounds + 1):
            touched[W] = True
            largest = max(largest, W.size)
            aw, it, diverged, route = _restricted(
                pairs, W, a, tol, gtol, memory_budget, dense, func
            )
            iterations += it
            routes.add(route)
            a = np.zeros((n, C))
            a.ravel()[W] = aw
            Ma, quad = pairs.products(a)
            if diverged:
                return WorkingSetOutcome(
                    a, Ma, quad, True, iterations, rounds, int(touched.sum()), largest, route
                )
            g = (Ma - 1.0).ravel()
            g[pairs.label_flat] = 0.0
            g[W] = 0.0  # optimal on W: only the pairs outside W can be violated
            viol = np.flatnonzero(g < -gtol)
            if viol.size == 0:
                return WorkingSetOutcome(
                    a,
                    Ma,
                    quad,
                    False,
                    iterations,
                    rounds,
                    int(touched.sum()),
                    largest,
                    " + ".join(sorted(routes)),
                )
            S = W[aw > 0]
            k = max(chunk, S.size)
            new = viol[np.argsort(g[viol], kind="stable")[:k]]
            W = np.union1d(S, new)
    raise SolverError(
        f"{func}: the working-set solver did not converge in {max_rounds} rounds "
        f"({int(touched.sum())} pairs touched)"
    )


@dataclass
class _PivotOutcome:
    a: np.ndarray | None  # the optimum (None: pivoting did not settle)
    products: tuple[np.ndarray, float]
    iterations: int
    largest: int
    W: np.ndarray  # the free set of the last iterate


def _global_pivot(
    pairs: KronPairs,
    W: np.ndarray,
    gtol: float,
    memory_budget: int,
    chunk: int,
    touched: np.ndarray,
    max_iter: int = 60,
) -> _PivotOutcome:
    """Block principal pivoting over all pairs with structured face solves, additions limited.

    The free set ``F`` starts at ``W``. Each step solves the face ``M_FF x = 1``, computes the
    gradient over all pairs, frees no longer the pairs with ``x < 0`` and frees the most
    violated others (at least ``chunk``, at most one per positive ``x``): the chunking loop of
    :func:`solve_working_set` with the restricted solves merged into the pivoting (measured:
    3-4 times fewer face factorizations). It stops at a KKT point (no negative ``x``, no
    violated pair: optimal for the whole problem), and gives up (``a=None``) on a singular
    face, a face over the memory budget, or when the number of infeasible pairs has not
    decreased for 4 steps (the Judice--Pires test of :func:`_pivot`).
    """
    n, C = pairs.n, pairs.C
    free = np.zeros(n * C, dtype=bool)
    free[W] = True
    best, fails, largest = np.inf, 0, 0
    k = 0
    for k in range(1, max_iter + 1):
        F = np.flatnonzero(free)
        if face_bytes(pairs, F) > memory_budget:
            return _PivotOutcome(None, (np.zeros((n, C)), 0.0), k - 1, largest, W)
        touched[F] = True
        largest = max(largest, F.size)
        face = KronFace(pairs, F)
        x = face.solve(np.ones(F.size))
        if face.last_residual > 1e-8:
            break
        del face
        a = np.zeros((n, C))
        a.ravel()[F] = x
        Ma, quad = pairs.products(a)
        g = (Ma - 1.0).ravel()
        g[pairs.label_flat] = 0.0
        g[F] = 0.0
        viol = np.flatnonzero(g < -gtol)
        neg = F[x < 0]
        nbad = neg.size + viol.size
        if nbad == 0:
            return _PivotOutcome(a, (Ma, quad), k, largest, F)
        if nbad < best:
            best, fails = nbad, 0
        else:
            fails += 1
            if fails > 3:
                break
        add = viol[np.argsort(g[viol], kind="stable")[: max(chunk, int(np.sum(x > 0)))]]
        free[neg] = False
        free[add] = True
    return _PivotOutcome(None, (np.zeros((n, C)), 0.0), k, largest, np.flatnonzero(free))


def _restricted(
    pairs: Pairs,
    W: np.ndarray,
    a: np.ndarray,
    tol: float,
    gtol: float,
    memory_budget: int,
    dense: int,
    func: str,
) -> tuple[np.ndarray, int, bool, str]:
    """The exact optimum of the problem restricted to ``W``: ``(a_W, iterations, diverged,
    route)``."""
    fits = DENSE_COPIES * 8 * W.size**2 <= dense
    if isinstance(pairs, KronPairs):
        aw0 = a.ravel()[W]
        free0 = (aw0 > 0) | ~np.isin(W, np.flatnonzero(a.ravel() > 0))
        out = _pivot(pairs, W, free0, gtol, memory_budget, func)
        if out is not None:
            return out[0], out[1], False, "structured faces"
        if not fits:  # a singular face or cycling: the monotone loop, structured
            aw, it, diverged = _monotone(pairs, W, np.maximum(aw0, 0.0), gtol, memory_budget, func)
            return aw, it, diverged, "structured faces"
    elif not fits:
        raise SolverError(
            f"{func}: the working set grew to {W.size} pairs, whose dense block "
            f"({DENSE_COPIES * 8 * W.size**2 / 2**30:.3g} GiB with the solver's copies) exceeds "
            f"memory_budget = {memory_budget / 2**30:.3g} GiB; raise memory_budget, or pass the "
            "per-class kernel with structure='kron' when the multi-output kernel is K ⊗ I_C"
        )
    # the dense block: exact also on singular faces (Lawson--Hanson with exchange steps)
    res = solve_nonneg_qp(pairs.block(W), tol=tol, func=func)
    return res.a, res.iterations, res.diverged, "dense blocks"


def _face(pairs: KronPairs, F: np.ndarray, memory_budget: int, func: str) -> KronFace:
    need = face_bytes(pairs, F)
    if need > memory_budget:
        raise SolverError(
            f"{func}: a face of {F.size} pairs needs {need / 2**30:.3g} GiB to factor, more than "
            f"memory_budget = {memory_budget / 2**30:.3g} GiB; raise memory_budget"
        )
    return KronFace(pairs, F)


def _gradient_on(pairs: Pairs, W: np.ndarray, aw: np.ndarray) -> np.ndarray:
    """``(M a)_W - 1`` for ``a`` supported on ``W``."""
    a = np.zeros(pairs.n * pairs.C)
    a[W] = aw
    Ma, _ = pairs.products(a.reshape(pairs.n, pairs.C))
    return Ma.ravel()[W] - 1.0


def _pivot(
    pairs: KronPairs,
    W: np.ndarray,
    free: np.ndarray,
    gtol: float,
    memory_budget: int,
    func: str,
    max_iter: int = 25,
) -> tuple[np.ndarray, int] | None:
    """Block principal pivoting on ``W`` with structured face solves; ``None`` when it does not
    settle (as :func:`implicitbias._nonneg_qp._block_pivot`)."""
    m = W.size
    best = m + 1
    fails = 0
    for k in range(1, max_iter + 1):
        F = np.flatnonzero(free)
        aw = np.zeros(m)
        if F.size:
            face = _face(pairs, W[F], memory_budget, func)
            aw[F] = face.solve(np.ones(F.size))
            if face.last_residual > 1e-8:
                return None  # singular face, 1 outside its range
            del face
        g = _gradient_on(pairs, W, aw)
        bad = (free & (aw < 0)) | (~free & (g < -gtol))
        nbad = int(np.count_nonzero(bad))
        if nbad == 0:
            return aw, k
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
    return None


def _monotone(
    pairs: KronPairs,
    W: np.ndarray,
    aw: np.ndarray,
    gtol: float,
    memory_budget: int,
    func: str,
    max_iter: int = 10_000,
) -> tuple[np.ndarray, int, bool]:
    """The monotone primal active-set loop on ``W`` with structured face solves (as
    :func:`implicitbias._nonneg_qp._monotone_active_set`): ``(a_W, iterations, diverged)``.

    Every step lowers the objective: to the face minimizer when it is positive; else along the
    segment to it (or to its projection, when that is lower), stopping where a coordinate
    reaches 0. A singular face without a minimizer (its system inconsistent) gives, through
    the proximal solve, a direction of (near) zero curvature and negative slope, followed by an
    exact line search with the ratio test; with no coordinate to block it the dual is
    unbounded (``diverged``).
    """
    sum_cap = 1.0 / SEPARABILITY_FLOOR**2
    P = aw > 0
    prev_f = np.inf
    it = 0
    while True:
        it += 1
        if it > max_iter:
            raise SolverError(f"{func}: the active-set solver did not converge in {max_iter} steps")
        while True:  # make aw the positive minimizer of a face contained in P
            F = np.flatnonzero(P)
            if F.size == 0:
                aw = np.zeros(W.size)
                break
            face = _face(pairs, W[F], memory_budget, func)
            x = aw[F]

            def f_face(v: np.ndarray, face: KronFace = face) -> float:
                return 0.5 * float(v @ face.matvec(v)) - float(np.sum(v))

            z = face.solve(np.ones(F.size))
            if face.last_residual > 1e-8:  # no face minimizer: a zero-curvature descent ray
                # the proximal solve from 0 is dominated by the null directions of M_FF along
                # which the objective falls (1 is not in the range of M_FF)
                d = z / max(float(np.max(np.abs(z))), 1e-300)
                gd = float((face.matvec(x) - 1.0) @ d)
                curv = float(d @ face.matvec(d))
                if not gd < 0:
                    raise SolverError(
                        f"{func}: a singular face of {F.size} pairs gave no descent direction; "
                        "raise memory_budget so that the working set is solved on a dense block"
                    )
                t = -gd / curv if curv > 0 else np.inf
                neg = d < 0
                if neg.any():
                    t = min(t, float(np.min(x[neg] / -d[neg])))
                if not np.isfinite(t) or float(np.sum(x + min(t, sum_cap) * d)) > sum_cap:
                    aw = np.zeros(W.size)
                    aw[F] = np.maximum(x + min(t, sum_cap) * d, 0.0)
                    return aw, it, True
                x = x + t * d
                x[x <= 1e-15 * max(float(np.max(x)), 1e-300)] = 0.0
            elif np.all(z > 0):
                aw = np.zeros(W.size)
                aw[F] = z
                break
            else:
                zp = np.maximum(z, 0.0)
                if np.any(zp > 0) and f_face(zp) < f_face(x):
                    x = zp
                else:
                    neg = z <= 0
                    ratios = x[neg] / (x[neg] - z[neg])
                    alpha = float(np.min(ratios))
                    x = x + alpha * (z - x)
                    x[np.flatnonzero(neg)[ratios <= alpha]] = 0.0
                    x[x < 0] = 0.0
            aw = np.zeros(W.size)
            aw[F] = x
            P = aw > 0
            it += 1
            if it > max_iter:
                raise SolverError(
                    f"{func}: the active-set solver did not converge in {max_iter} steps"
                )
        if float(np.sum(aw)) > sum_cap:
            return aw, it, True
        gw = _gradient_on(pairs, W, aw)
        cand = np.flatnonzero(~P & (gw < -gtol))
        if cand.size == 0:
            return aw, it, False
        f_now = 0.5 * float(aw @ (gw + 1.0)) - float(np.sum(aw))
        if f_now >= prev_f - 1e-15 * abs(prev_f):
            cand = cand[[int(np.argmin(gw[cand]))]]
        prev_f = f_now
        P = P.copy()
        P[cand] = True
