r"""The Gram of the touched margin constraints, grown (and shrunk) within a memory budget.

:class:`GramCache` holds ``Q_TT = G_T G_Tᵀ`` (float64, host memory) for the constraints ``T``
the working-set route has looked at, adds the blocks of new constraints from their features
(:mod:`._gram_features`), and evicts constraints the solver no longer needs when the budget is
reached.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from implicitbias._errors import InvalidArgumentError
from implicitbias._validation import fail
from implicitbias.kkt._gram_features import GramProvider

__all__ = ["GramBudgetError", "GramCache"]


class GramBudgetError(InvalidArgumentError):
    """The working set's Gram outgrew ``memory_budget`` (``nnls_route="auto"`` then goes on
    matrix-free)."""


class GramCache:
    """``Q_TT`` (float64) over the touched constraints ``T``, grown on demand.

    Memory: the Gram lives in a buffer of at most ``budget/4`` bytes (``T`` is limited to
    ``√(budget/32)`` constraints), leaving room for one reallocation and for the solvers'
    copies of sub-blocks and their float32 Cholesky factors (about 24 bytes per entry of the
    support's block in all, :mod:`._pivoting`); the features of ``T`` are kept while they fit
    a quarter of the budget, and recomputed in chunks beyond that whenever a block against new
    constraints is needed.
    """

    def __init__(
        self,
        provider: GramProvider,
        m: int,
        budget: int,
        func: str,
        *,
        feature_budget: int | None = None,
    ) -> None:
        self.provider = provider
        self.pos = np.full(m, -1, dtype=np.int64)
        self.order = np.zeros(0, dtype=np.int64)
        self.ever = np.zeros(m, dtype=bool)  # every constraint whose gradient was computed
        self.buffer = np.zeros((0, 0))
        self.features: Any = None
        self.budget = budget
        self.func = func
        self.limit = int(math.isqrt(max(budget // 32, 1)))
        self.feature_budget = budget if feature_budget is None else feature_budget
        per = provider.bytes_per_constraint
        self.chunk = max(1, min(8192, self.feature_budget // max(1, 8 * per)))
        self._norms: np.ndarray | None = None

    def norms(self) -> np.ndarray:
        """``‖∇q_k‖`` of every constraint, shape ``(m,)`` (computed once, in chunks of
        features: one forward and backward pass per constraint, no Gram)."""
        if self._norms is None:
            m = self.pos.shape[0]
            sq = np.empty(m)
            for i in range(0, m, self.chunk):
                idx = np.arange(i, min(m, i + self.chunk))
                sq[idx] = self.provider.sq_norms(self.provider.features(idx))
            self._norms = np.sqrt(np.maximum(sq, 0.0))
        return self._norms

    @property
    def size(self) -> int:
        return int(self.order.shape[0])

    @property
    def Q(self) -> np.ndarray:
        """``Q_TT``, a view of the buffer."""
        t = self.size
        return self.buffer[:t, :t]

    def room(self) -> int:
        """How many more constraints the Gram may hold within the budget."""
        return max(0, self.limit - self.size)

    @property
    def touched(self) -> int:
        """Constraints whose gradients ever entered the Gram (evicted ones included)."""
        return int(self.ever.sum())

    def too_small(self, size: int, progress: str = "") -> GramBudgetError:
        """The error for a working set of ``size`` constraints that does not fit the budget
        (``progress``: where the working set stood, for the message)."""
        err = fail(
            self.func,
            "memory_budget",
            f"at least {32 * size**2:,} bytes for this problem: the working set must hold "
            f"{size:,} constraints (the multipliers' support and the constraints that would "
            "enter it), whose float64 Gram with room for its copies needs that much"
            + (f" ({progress})" if progress else ""),
            f"{self.budget:,}",
            "Raise memory_budget, use nnls_route='matrix_free' (no Gram), or check a model closer "
            "to a KKT point (its multipliers then concentrate on fewer constraints).",
        )
        return GramBudgetError(str(err))

    def keep(self, idx: np.ndarray) -> None:
        """Evict every constraint but ``idx`` (a subset of ``T``, whose order is kept)."""
        p = np.sort(self.pos[idx])
        k = int(p.size)
        if k == self.size:
            return
        buf = self.buffer
        for i, pi in enumerate(p):  # in place (p ascending): rows, then columns row by row
            if i != pi:
                buf[i] = buf[pi]
        for i in range(k):
            buf[i, :k] = buf[i, p]
        self.pos[self.order] = -1
        self.order = self.order[p]
        self.pos[self.order] = np.arange(k)
        if self.features is not None:
            self.features = self.provider.take(self.features, p)

    def _features(self, idx: np.ndarray) -> Any:
        parts = [
            self.provider.features(idx[i : i + self.chunk])
            for i in range(0, idx.shape[0], self.chunk)
        ]
        return parts[0] if len(parts) == 1 else self.provider.concat(parts)

    def add(self, idx: np.ndarray) -> None:
        """Touch the constraints ``idx`` (those already touched are skipped)."""
        new = np.unique(idx[self.pos[idx] < 0])
        if new.size == 0:
            return
        t, a = self.size, int(new.size)
        if t + a > self.limit:
            raise self.too_small(t + a)
        F_new = self._features(new)
        if t + a > self.buffer.shape[0]:
            cap = min(max(t + a, 2 * self.buffer.shape[0]), self.limit)
            grown = np.empty((cap, cap))
            grown[:t, :t] = self.Q
            self.buffer = grown
        Q = self.buffer
        self._fill(F_new, F_new, Q[t : t + a, t : t + a], lower=True)
        if t:
            self._cross(F_new, Q[t : t + a, :t])
            Q[:t, t : t + a] = Q[t : t + a, :t].T
        self.pos[new] = np.arange(t, t + a)
        self.order = np.concatenate([self.order, new])
        self.ever[new] = True
        per = self.provider.bytes_per_constraint
        if (t + a) * per <= self.feature_budget // 4:
            self.features = (
                F_new if self.features is None else self.provider.concat([self.features, F_new])
            )
        else:
            self.features = None

    def _fill(self, FA: Any, FB: Any, out: np.ndarray, *, lower: bool = False) -> None:
        """``out = G_A G_Bᵀ`` in row chunks (temporaries of about 32 MB); ``lower``: ``A = B``,
        only the lower triangle is computed and mirrored (exactly symmetric)."""
        a, c = out.shape
        take, gram = self.provider.take, self.provider.gram
        r = max(1, min(a, (1 << 25) // max(1, 32 * c)))
        for i in range(0, a, r):
            j = min(a, i + r)
            part = take(FA, np.arange(i, j))
            if lower:
                out[i:j, :j] = gram(part, take(FB, np.arange(j)))
                d = out[i:j, i:j]
                d[:] = 0.5 * (d + d.T)
                out[:i, i:j] = out[i:j, :i].T
            else:
                out[i:j] = gram(part, FB)

    def _cross(self, F_new: Any, out: np.ndarray) -> None:
        """``Q[new, T]`` into ``out``, from stored or recomputed features of ``T``."""
        if self.features is not None:
            self._fill(F_new, self.features, out)
            return
        for i in range(0, self.size, self.chunk):
            cols = self.order[i : i + self.chunk]
            self._fill(F_new, self._features(cols), out[:, i : i + cols.size])

    def block(self, idx: np.ndarray) -> np.ndarray:
        """``Q[idx, idx]`` of touched constraints (no copy when ``idx`` is all of T in order)."""
        p = self.pos[idx]
        if p.shape[0] == self.size and np.array_equal(p, np.arange(self.size)):
            return self.Q
        return self.Q[np.ix_(p, p)]
