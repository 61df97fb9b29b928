"""Kernel regime: the empirical NTK and the kernel methods of the early phase (THEORY §2)."""

from implicitbias.kernel_regime.kernel_regression import KernelRegressionResult, kernel_regression
from implicitbias.kernel_regime.kernel_svm import KernelSVMResult, kernel_svm
from implicitbias.kernel_regime.multiclass_svm import (
    MulticlassKernelSVMResult,
    multiclass_kernel_svm,
)
from implicitbias.kernel_regime.ntk import empirical_ntk
from implicitbias.kernel_regime.predictor import NTKPredictor, ntk_predictor

__all__ = [
    "empirical_ntk",
    "ntk_predictor",
    "NTKPredictor",
    "kernel_svm",
    "KernelSVMResult",
    "kernel_regression",
    "KernelRegressionResult",
    "multiclass_kernel_svm",
    "MulticlassKernelSVMResult",
]
