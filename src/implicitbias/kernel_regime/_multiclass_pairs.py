r"""The pair constraints of the multiclass kernel SVM as an operator: products, blocks, norms.

The multiclass hard-margin SVM without bias (:func:`~implicitbias.multiclass_kernel_svm`) has
one constraint per pair :math:`(i, c)`, :math:`c \ne y_i`, with feature
:math:`z_{ic} = \phi_{y_i}(x_i) - \phi_c(x_i)`. Its dual matrix
:math:`M_{(i,c),(j,d)} = \langle z_{ic}, z_{jd}\rangle` has :math:`n(C-1)` rows; these classes
never form it whole. A dual point is an ``(n, C)`` array ``a`` with ``a[i, y_i] = 0``; it
defines the expansion :math:`h = \sum_{i,b} \mathrm{coef}_{ib}\,\phi_b(x_i)` with
``coef[i, c] = -a[i, c]`` and ``coef[i, y_i] = sum_c a[i, c]``, and

.. math::

    (M a)_{ic} = S_{i y_i} - S_{ic}, \qquad S_{jb} = \langle \phi_b(x_j), h \rangle,
    \qquad a^\top M a = \langle \mathrm{coef}, S \rangle.

* :class:`KronPairs`: the multi-output kernel is :math:`K \otimes I_C` (every class block is
  the same ``n x n`` kernel ``K``, cross-class blocks vanish), so ``S = K coef`` costs
  ``O(n^2 C)`` and :math:`M_{(i,c),(j,d)} = K_{ij}(\delta_{y_i y_j} - \delta_{y_i d} -
  \delta_{c y_j} + \delta_{cd})`.
* :class:`FullPairs`: a general ``(nC, nC)`` multi-output kernel, ``S = K_full coef``.

Both hold the kernel divided by ``scale = max_{(i,c)} M_{(i,c),(i,c)}`` (the squared feature
radius), so every figure of the solvers is dimensionless; pairs are named by their flat index
``i * C + c`` into an ``(n, C)`` array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FullPairs", "KronPairs", "Pairs"]


class Pairs:
    """What the working-set solver needs of the pair constraints (normalized units)."""

    n: int
    C: int
    y: np.ndarray
    scale: float  # max diagonal of M in the user's units (squared feature radius)
    structure: str

    def __init__(self, y: np.ndarray, C: int) -> None:
        self.n = int(y.shape[0])
        self.C = int(C)
        self.y = y
        mask = np.ones((self.n, self.C), dtype=bool)
        mask[np.arange(self.n), y] = False
        self.mask = mask  # True at the pairs (i, c), c != y_i
        self.label_flat = np.arange(self.n) * self.C + y

    @property
    def size(self) -> int:
        """The number of pair constraints, ``n (C - 1)``."""
        return self.n * (self.C - 1)

    def pairs(self) -> np.ndarray:
        """Flat indices of all pairs, in row-major order of ``(i, c)``."""
        return np.flatnonzero(self.mask.ravel())

    def coef(self, a: np.ndarray) -> np.ndarray:
        """``coef`` of the dual point ``a`` (shape (n, C), zero at the labels)."""
        out = -a
        out[np.arange(self.n), self.y] = a.sum(axis=1)
        return out

    def scores(self, coef: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def products(self, a: np.ndarray) -> tuple[np.ndarray, float]:
        """``(M a, a^T M a)``: ``M a`` as an (n, C) array (0 at the labels)."""
        coef = self.coef(a)
        S = self.scores(coef)
        Ma = S[np.arange(self.n), self.y][:, None] - S
        Ma[~self.mask] = 0.0
        return Ma, float(np.sum(coef * S))

    def block(self, W: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """The dense block ``M[W, W]`` for flat pair indices ``W``."""
        raise NotImplementedError


class KronPairs(Pairs):
    """Pairs of the multi-output kernel ``K ⊗ I_C`` (``K`` is ``n x n``)."""

    structure = "kron"

    def __init__(self, K: np.ndarray, y: np.ndarray, C: int) -> None:
        super().__init__(y, C)
        # M_{(i,c),(i,c)} = 2 K_ii for c != y_i
        self.scale = 2.0 * max(float(np.max(np.diag(K))), 0.0)
        self.K = K / self.scale if self.scale > 0 else K  # our own copy, normalized

    def scores(self, coef: np.ndarray) -> np.ndarray:
        # only the examples with a non-zero coefficient contribute: K[:, rows] coef[rows]
        rows = np.flatnonzero(np.any(coef != 0, axis=1))
        if rows.size == 0:
            return np.zeros_like(coef)
        if rows.size == self.n:
            return self.K @ coef
        return self.K[:, rows] @ coef[rows]

    def block(self, W: np.ndarray) -> np.ndarray:
        i, c = np.divmod(W, self.C)
        yi = self.y[i]
        T = (yi[:, None] == yi[None, :]).astype(np.float64)
        T -= yi[:, None] == c[None, :]
        T -= c[:, None] == yi[None, :]
        T += c[:, None] == c[None, :]
        T *= self.K[np.ix_(i, i)]
        return T


class FullPairs(Pairs):
    """Pairs of a general multi-output kernel ``K_full`` (``nC x nC``, row ``i*C + a``)."""

    structure = "full"

    def __init__(self, K_full: np.ndarray, y: np.ndarray, C: int) -> None:
        super().__init__(y, C)
        W = self.pairs()
        i = W // C
        d = K_full.diagonal()
        diag = d[self.label_flat[i]] - 2.0 * K_full[self.label_flat[i], W] + d[W]
        self.scale = max(float(np.max(diag)), 0.0) if diag.size else 0.0
        self.K = K_full
        if self.scale > 0:
            self.K /= self.scale  # in place: the caller hands over its own copy

    def scores(self, coef: np.ndarray) -> np.ndarray:
        return (self.K @ coef.ravel()).reshape(self.n, self.C)

    def block(self, W: np.ndarray) -> np.ndarray:
        ry = self.label_flat[W // self.C]
        out = self.K[np.ix_(ry, ry)]
        out -= self.K[np.ix_(ry, W)]
        out -= self.K[np.ix_(W, ry)]
        out += self.K[np.ix_(W, W)]
        out += out.T  # exactly symmetric (the four terms round differently)
        out *= 0.5
        return out
