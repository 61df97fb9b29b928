r"""The working-set route of the margin NNLS: cost follows the near-active constraints.

The smallest-ε multipliers solve the NNLS :math:`\min_{\mu \ge 0} \lVert\tilde\theta -
G^\top\mu\rVert` over all ``m`` margin constraints (``n`` binary, ``n(C−1)`` multiclass pairs).
The dense route forms the ``(nC)²`` NTK; this route solves the NNLS restricted to a working
set ``W`` of constraints, whose Gram block ``Q_WW`` is built from per-constraint gradients only
(:mod:`._gram_features`), and checks the restricted solution against **all** constraints with
one Jacobian-vector product over the data: with the residual :math:`r = \tilde\theta - G_W^\top\mu_W`, the
restricted solution is the NNLS optimum over all constraints iff
:math:`g_k = \langle\nabla q_k, r\rangle \le 0` (to rounding) for every excluded ``k`` — the
optimality condition ``b − Qμ ≤ 0`` of the excluded coordinates, since
:math:`(b - Q\mu)_k = \langle \nabla q_k, \tilde\theta - G^\top\mu\rangle` by Euler's identity.
Otherwise the most violated excluded constraints join ``W`` (as many as its current support
holds, so ``W`` about doubles while the support grows; up to 8× more when the check over all
constraints costs more than the restricted solve, as at large ``n`` with a small support) and the restricted problem is solved
again, warm-started (Lawson–Hanson on small sets, block principal pivoting on large ones,
:mod:`._pivoting`). The answer is the same NNLS optimum as the dense route's; only the
constraints that were ever in ``W`` are touched.

The Gram of the touched constraints is cached (float64, :mod:`._gram_cache`), so the
near-active restrictions of ``select_multipliers`` reuse it. Nothing of size ``(nC)²`` or
``m²`` is formed: the cache holds at most ``√(budget/32)`` constraints at a time, and when it is
full the constraints with zero multiplier farthest from entering are evicted (the support stays,
so the objective still decreases every round); a support that alone does not fit raises.
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from implicitbias._errors import InaccurateSolutionWarning
from implicitbias.kkt._epsilon import _direct_epsilon, _gram_eps2
from implicitbias.kkt._gradients import ConstraintGradients, device_budget
from implicitbias.kkt._gram_cache import GramCache
from implicitbias.kkt._gram_features import gram_provider
from implicitbias.kkt._pivoting import PassiveFactor, principal_pivoting, row_absmax
from implicitbias.kkt.nnls import GramNNLSResult, _finish_nnls, package_nnls
from implicitbias.kkt.report import EpsilonMethod

__all__ = ["GramCache", "WorkingSetForm", "WorkingSetSolver", "INITIAL_SIZE"]

#: Constraints in the first working set besides those with slack ≤ ``INITIAL_SLACK``: the
#: ``INITIAL_SIZE`` smallest slacks.
INITIAL_SIZE = 64
#: Constraints with ``q_k(θ̃) − 1`` at most this start in the working set.
INITIAL_SLACK = 1e-3
#: Fewest constraints added when the working set grows.
MIN_GROWTH = 64
#: Most the growth is multiplied by when the check over all constraints dominates a round
#: (by the cube root of its time over the restricted solve's and the Gram's).
MAX_BOOST = 8.0
#: Working sets of at least this size are solved by block principal pivoting (BLAS-3 steps),
#: smaller ones by Lawson–Hanson (the dense route's solver), which is also the fallback.
PIVOTING_FROM = 1024

_EPS = float(np.finfo(np.float64).eps)
#: Each round of the working set at DEBUG level (``logging.getLogger("implicitbias.kkt")``).
LOG = logging.getLogger("implicitbias.kkt")


@dataclass
class _Solution:
    mu: np.ndarray  # (m,), zero outside the working set
    objective: float
    status: str
    iterations: int
    rounds: int


def restricted_nnls(
    Q: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray | None,
    *,
    guess: np.ndarray | None = None,
    factor: PassiveFactor | None = None,
) -> GramNNLSResult:
    """The NNLS on one working set.

    ``x0`` is the previous working set's answer (a face minimizer, zero on the new
    constraints), from which Lawson–Hanson continues on small sets. Large sets are solved by
    block principal pivoting from the support of ``x0`` or else of ``guess`` (any
    non-negative vector), continuing the Cholesky factor ``factor`` of the previous set.
    """
    t0 = time.perf_counter()
    cand = np.ones(b.shape[0], dtype=bool)
    if b.shape[0] >= PIVOTING_FROM:
        start = x0 if x0 is not None else guess
        rowmax = row_absmax(Q)  # once for the pivoting's tolerances and the final check
        x, iterations, status = principal_pivoting(
            Q, b, x0=start, factor=factor, rowmax=rowmax
        )
        if status == "optimal":
            return package_nnls(Q, b, cand, x, iterations, status, t0, rowmax=rowmax)
        LOG.debug(
            "principal pivoting: %s after %d steps; Lawson-Hanson takes over", status, iterations
        )
        x0 = None
    return _finish_nnls(Q, b, cand, None, 10 * b.shape[0] + 10, t0, x0=x0)


class WorkingSetSolver:
    """The NNLS ``min_{μ ≥ 0} ½ μᵀQμ − bᵀμ`` over a universe of constraints, by working sets.

    Parameters
    ----------
    grads : ConstraintGradients
        The constraints' gradients at θ̃ (directional derivatives and pullbacks).
    cache : GramCache
        The Gram of the touched constraints.
    b : ndarray of shape (m,)
        ``L·q(θ̃)``.
    slack : ndarray of shape (m,)
        ``q_k(θ̃) − 1``, which orders the first working set.
    coefficients : callable
        Multipliers ``(m,)`` ↦ output coefficients ``(n, C)`` (``Σ μ_k ∇q_k = ∇ Σ c·f``).
    """

    def __init__(
        self,
        grads: ConstraintGradients,
        cache: GramCache,
        b: np.ndarray,
        slack: np.ndarray,
        coefficients: Any,
    ) -> None:
        self.grads, self.cache, self.b, self.slack = grads, cache, b, slack
        self.coefficients = coefficients
        self.m = int(b.shape[0])
        self.order = np.argsort(slack, kind="stable")
        self.last_mu: np.ndarray | None = None

    def start(self, universe: np.ndarray, guess: np.ndarray | None) -> np.ndarray:
        """The first working set in ``universe``: the touched constraints, slack ≤
        ``INITIAL_SLACK``, and the ``INITIAL_SIZE`` smallest slacks; beyond the budget, the
        support of ``guess`` and then the smallest slacks first. Touched constraints outside
        it are evicted when the new ones would not fit."""
        inside = universe[self.order]
        first = self.order[inside][:INITIAL_SIZE]
        near = np.flatnonzero(universe & (self.slack <= INITIAL_SLACK))
        touched = self.cache.order[universe[self.cache.order]]
        W = np.unique(np.concatenate([touched, first, near]))
        cap = max(1, self.cache.limit - MIN_GROWTH)
        if W.size > cap:
            lead = np.zeros(W.size, dtype=bool) if guess is None else guess[W] > 0
            W = W[np.lexsort((self.slack[W], ~lead))[:cap]]
        fresh = int(np.count_nonzero(self.cache.pos[W] < 0))
        excess = fresh - self.cache.room()
        if excess > 0:  # evict touched constraints outside W: largest slack first
            T = self.cache.order
            out = T[~np.isin(T, W)]
            drop = out[np.argsort(-self.slack[out], kind="stable")][:excess]
            self.cache.keep(T[~np.isin(T, drop)])
        return W

    def solve(self, universe: np.ndarray, guess: np.ndarray | None = None) -> _Solution:
        """The NNLS over the constraints in the boolean mask ``universe``; ``guess`` (shape
        ``(m,)``, e.g. the answer over a larger universe) suggests the first support."""
        W, _ = self._sorted(self.start(universe, guess), None)
        x0: np.ndarray | None = None
        factor: PassiveFactor | None = None
        W_prev = W
        iterations = 0
        rounds = 0
        t_gram = 0.0
        while True:
            rounds += 1
            Qw, bw = self.cache.block(W), self.b[W]
            if factor is not None:  # keep the factor of the previous set's passive variables
                where = np.full(self.m, -1, dtype=np.int64)
                where[W] = np.arange(W.size)
                if not factor.rebase(Qw, where[W_prev]):
                    factor = None
            if factor is None:
                factor = PassiveFactor(Qw)
            W_prev = W
            t0 = time.perf_counter()
            res = restricted_nnls(
                Qw, bw, x0, guess=None if guess is None else guess[W], factor=factor
            )
            iterations += res.iterations
            t1 = time.perf_counter()
            mu = np.zeros(self.m)
            mu[W] = res.solution
            self.last_mu = mu  # where a fallback to the matrix-free route starts
            excluded = universe.copy()
            excluded[W] = False
            add = self._violated(mu, excluded) if excluded.any() else mu[:0]
            t2 = time.perf_counter()
            if add.size == 0:
                self._log(rounds, W, res, 0, t1 - t0, t2 - t1, 0.0)
                break
            # as many as the support holds (the set roughly doubles while the support grows),
            # times up to MAX_BOOST when the check over all constraints costs more than the
            # restricted solve and its Gram (large n, small support): fewer, larger rounds
            boost = (t2 - t1) / max(t1 - t0 + t_gram, 1e-3)
            boost = min(MAX_BOOST, max(1.0, boost ** (1.0 / 3.0)))
            grow = min(add.size, int(boost * max(MIN_GROWTH, res.support.size)))
            W, x_w = self._make_room(W, res, grow)
            if self.cache.room() == 0:
                raise self.cache.too_small(
                    W.size + grow,
                    f"after {rounds} rounds: support {res.support.size:,}, {add.size:,} of "
                    f"{self.m:,} constraints still violated",
                )
            grow = min(grow, self.cache.room())
            W_new = np.concatenate([W, add[:grow].astype(np.int64)])
            W, x0 = self._sorted(W_new, np.concatenate([x_w, np.zeros(grow)]))
            t_gram = time.perf_counter() - t2
            self._log(rounds, W_prev, res, add.size, t1 - t0, t2 - t1, t_gram)
        return _Solution(mu, res.objective, res.status, iterations, rounds)

    @staticmethod
    def _log(
        rounds: int,
        W: np.ndarray,
        res: GramNNLSResult,
        viol: int,
        t_nnls: float,
        t_check: float,
        t_gram: float,
    ) -> None:
        LOG.debug(
            "working set round %d: |W| = %d, support %d, %d violated; NNLS %.2f s (%d changes), "
            "check %.2f s, Gram of the additions %.2f s",
            rounds,
            W.size,
            res.support.size,
            viol,
            t_nnls,
            res.iterations,
            t_check,
            t_gram,
        )

    def _make_room(
        self, W: np.ndarray, res: GramNNLSResult, want: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Evict constraints so that ``want`` more fit the budget: first touched ones outside
        ``W``, then those of ``W`` with ``μ = 0`` farthest from entering (most negative
        ``(b − Qμ)_k``). The support stays, so the objective keeps decreasing (no cycling).
        Returns the kept ``W`` and its multipliers."""
        need = want - self.cache.room()
        x = res.solution
        if need <= 0:
            return W, x
        outside = self.cache.size - W.size
        drop = max(0, need - outside)
        keep_w = np.ones(W.size, dtype=bool)
        if drop:
            zero = np.flatnonzero(x == 0)
            worst = zero[np.argsort(res.gradient[zero], kind="stable")][:drop]
            keep_w[worst] = False
        W, x = W[keep_w], x[keep_w]
        self.cache.keep(W)
        LOG.debug("working set: evicted %d constraints to stay within the budget", need)
        return W, x

    def _sorted(self, W: np.ndarray, x0: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
        """Touch ``W``; ``W`` (and ``x0``) in the cache's order, so that ``W = T`` needs no copy
        of the Gram and the previous set's positions keep their relative order."""
        self.cache.add(W)
        o = np.argsort(self.cache.pos[W], kind="stable")
        return W[o], None if x0 is None else x0[o]

    def _violated(self, mu: np.ndarray, excluded: np.ndarray) -> np.ndarray:
        """Excluded constraints with ``⟨∇q_k, r⟩`` above its rounding bound, most violated
        first.

        ``r = θ̃ − Σ_j μ_j ∇q_j`` and the products are computed in the model's precision ``u``,
        so ``⟨∇q_k, r⟩`` carries an error of about ``u·‖∇q_k‖·(‖θ̃‖ + Σ_j μ_j‖∇q_j‖)``; a
        constraint counts as violated above 4× that. (A constraint that rounding lifts over
        the bound only joins ``W``, where the restricted NNLS settles it exactly; one that
        rounding hides was at most that close to entering, which moves ε by far less than the
        1e-6 relative the route promises: ``O(bound²/‖∇q_k‖²)`` in ``ε²``.)
        """
        g = self.grads
        r = g.point - g.pullback(self.coefficients(mu))
        d = g.directional(r)
        norms = self.cache.norms()
        u = max(_EPS, g.unit_roundoff)
        scale = math.sqrt(float(torch.sum(g.point.double() ** 2))) + float(mu @ norms)
        tol = 4 * u * norms * scale + 1e-300
        viol = np.flatnonzero(excluded & (d > tol))
        return viol[np.argsort(-d[viol], kind="stable")]


def select_working_set(
    solver: WorkingSetSolver, tt: float, floor2: float, rtol: float, active: tuple[float, ...]
) -> tuple[np.ndarray, float, float, int]:
    """:func:`._classification.select_multipliers` on the working-set route.

    Returns ``(μ, ε_min, τ, iterations)``.
    """
    slack = solver.slack
    m = solver.m
    full = solver.solve(np.ones(m, dtype=bool))
    iterations = full.iterations
    if full.status != "optimal":
        warnings.warn(
            f"kkt_residuals: the Gram NNLS stopped at its iteration limit ({full.iterations} "
            f"active-set changes); epsilon_min may be slightly too large.",
            InaccurateSolutionWarning,
            stacklevel=4,
        )
    eps_min = math.sqrt(max(tt + 2.0 * full.objective, 0.0))
    support = np.flatnonzero(full.mu > 0)
    if support.size == 0:
        return full.mu, eps_min, math.inf, iterations
    tau_full = float(slack[support].max())
    accept = (1.0 + rtol) * eps_min + math.sqrt(floor2)
    previous = -1
    for tau in active:
        if tau >= tau_full:
            break
        cand = slack <= tau
        count = int(cand.sum())
        if count == previous or count == 0:
            continue
        previous = count
        res = solver.solve(cand, guess=full.mu)
        iterations += res.iterations
        eps = math.sqrt(max(tt + 2.0 * res.objective, 0.0))
        if eps <= accept:
            return res.mu, eps_min, tau, iterations
    return full.mu, eps_min, tau_full, iterations


@dataclass(frozen=True)
class WorkingSetForm:
    r"""``ε(μ)`` on the working-set route: the Gram formula over the touched constraints,
    else (or when it cancels) directly with one vector-Jacobian product.

    The interface of :class:`._epsilon.GramForm` (``tt``, ``norm``, ``relative``,
    ``epsilon``).
    """

    s: Any
    point: torch.Tensor
    tt: float
    b: np.ndarray
    cache: GramCache
    unit_roundoff: float
    coefficients: Any

    @property
    def norm(self) -> float:
        return math.sqrt(self.tt)

    def relative(self, value: float) -> float:
        norm = self.norm
        return value / norm if norm > 0 else math.inf

    def epsilon(
        self, mu: np.ndarray, *, direct: bool | None, chunk_size: int | None
    ) -> tuple[float, EpsilonMethod, float]:
        """``(ε, route, floor)`` of ``mu`` (see :meth:`._epsilon.GramForm.epsilon`).

        Multipliers outside the touched set (route (b), the matrix-free route) are always
        evaluated directly, their floor from the norms of all constraints' gradients.
        """
        S = np.flatnonzero(mu)
        pos = self.cache.pos[S]
        diag = np.diag(self.cache.Q)
        if np.all(pos >= 0):
            Q = self.cache.Q[np.ix_(pos, pos)]
            value, magnitude = _gram_eps2(self.tt, self.b[S], Q, mu[S])
            floor_gram = math.sqrt(8 * self.unit_roundoff * magnitude)
            eps_gram = math.sqrt(max(value, 0.0))
            if direct is False or (direct is None and eps_gram >= 1e3 * floor_gram):
                return eps_gram, "gram", floor_gram
            norms = np.sqrt(np.maximum(diag[pos], 0.0))
        else:  # outside the touched set: the norms of all constraints (computed once)
            norms = self.cache.norms()[S]
        eps_d, u_d = _direct_epsilon(self.s, self.point, self.coefficients(mu), chunk_size)
        floor_d = 8 * u_d * (self.norm + float(np.abs(mu[S]) @ norms))
        return eps_d, "direct", floor_d


def make_solver(
    s: Any,
    point: torch.Tensor,
    rows: np.ndarray,
    cols: np.ndarray,
    b: np.ndarray,
    slack: np.ndarray,
    coefficients: Any,
    *,
    budget: int,
    chunk_size: int | None,
    func: str,
) -> WorkingSetSolver:
    """The gradients, Gram provider, cache and solver of one margin problem."""
    on_device = device_budget(point.device, budget)
    grads = ConstraintGradients(s, point, rows, cols, budget=on_device, chunk_size=chunk_size)
    # the factored Gram is checked against explicit rows: the 4 smallest slacks and 4 more
    # spread over the constraints
    m = slack.shape[0]
    spread = np.random.default_rng(0).choice(m, size=min(4, m), replace=False)
    probe = np.unique(np.concatenate([np.argsort(slack, kind="stable")[:4], spread]))
    provider = gram_provider(grads, probe)
    cache = GramCache(provider, int(b.shape[0]), budget, func, feature_budget=on_device)
    return WorkingSetSolver(grads, cache, b, slack, coefficients)
