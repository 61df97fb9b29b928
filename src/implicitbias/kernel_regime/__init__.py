"""Kernel regime: the empirical NTK and the kernel methods of the early phase (THEORY §2)."""

from implicitbias.kernel_regime.ntk import empirical_ntk
from implicitbias.kernel_regime.predictor import NTKPredictor, ntk_predictor

__all__ = [
    "empirical_ntk",
    "ntk_predictor",
    "NTKPredictor",
]
