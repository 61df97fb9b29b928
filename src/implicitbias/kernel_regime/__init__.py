"""Kernel regime: the empirical NTK and the kernel methods of the early phase (THEORY §2)."""

from implicitbias.kernel_regime.ntk import empirical_ntk

__all__ = [
    "empirical_ntk",
]
