"""Exact rescaling and overflow-free norms for the scale-free convex solvers.

The max-margin and interpolation problems are equivariant under a global rescaling of the
data (``X → cX`` maps the max-margin ``w`` to ``w / c``; ``(X, y) → (cX, by)`` maps the
interpolant to ``(b / c) w``), so the solvers work on data rescaled to unit size and map the
answer back. The scale is a power of two: dividing by it is exact in floating point, so the
rescaled problem is *the same* problem and the mapped-back answer carries no rounding of the
rescaling itself.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pow2_scale", "rescaled", "pnorm", "dual_exponent"]


#: Data whose largest entry lies in [1/KEEP, KEEP] are solved as given (no rescaling needed,
#: and the answers on ordinary data stay bit-identical to solving them directly).
KEEP = 16.0


def pow2_scale(a: np.ndarray, keep: float = KEEP) -> float:
    """A power of two near ``max |a|``, or 1.0 if ``max |a|`` is in ``[1/keep, keep]`` or 0."""
    top = max(float(a.max()), -float(a.min())) if a.size else 0.0  # no |a| copy
    if not (top > 0.0 and np.isfinite(top)) or 1.0 / keep <= top <= keep:
        return 1.0
    _, e = np.frexp(top)  # top = m · 2**e with m in [0.5, 1)
    return float(np.ldexp(1.0, int(e)))


def rescaled(a: np.ndarray, s: float) -> np.ndarray:
    """``a / s`` (exact for a power of two ``s``); ``a`` itself, not a copy, when ``s == 1``."""
    return a if s == 1.0 else a / s


def pnorm(v: np.ndarray, p: float) -> float:
    """``‖v‖_p`` for any ``p >= 1`` or ``inf``, without overflow or underflow.

    ``numpy.linalg.norm(v, ord=p)`` forms ``Σ|v_i|^p``, which overflows for large ``p``
    (``2.0**1e6 = inf``) and underflows for tiny entries; here ``v`` is first divided by its
    largest entry, so every term lies in ``[0, 1]``.
    """
    a = np.abs(np.asarray(v, dtype=np.float64))
    if a.size == 0:
        return 0.0
    top = float(a.max())
    if not np.isfinite(top):
        return float("inf") if not np.isnan(top) else float("nan")
    if top == 0.0:
        return 0.0
    if p == 1.0:
        return float(a.sum())
    if np.isinf(p):
        return top
    r = a / top
    if p == 2.0:
        return top * float(np.sqrt(np.dot(r, r)))
    return top * float(np.sum(r**p) ** (1.0 / p))


def dual_exponent(p: float) -> float:
    """``q`` with ``1/p + 1/q = 1`` (``1 ↔ inf``)."""
    if p == 1.0:
        return float("inf")
    if np.isinf(p):
        return 1.0
    return 1.0 + 1.0 / (p - 1.0)
