"""The kernel of the kernel estimators: a scikit-learn kernel name, ``"precomputed"``, or a
callable ``kernel(A, B)`` returning the ``(len(A), len(B))`` kernel matrix."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.metrics.pairwise import pairwise_kernels  # type: ignore[import-untyped]

from implicitbias._errors import InvalidArgumentError
from implicitbias._validation import (
    as_float_array,
    check_int,
    check_nonnegative,
    check_positive,
    describe,
    fail,
    fail_type,
)

__all__ = ["KERNELS", "KernelMixin"]

#: Kernel names accepted besides ``"precomputed"`` and a callable: the positive semidefinite
#: kernels of :func:`sklearn.metrics.pairwise.pairwise_kernels` (``"sigmoid"`` is not PSD, so
#: the hard-margin problems are not convex with it).
KERNELS = ("linear", "poly", "rbf", "laplacian", "cosine")
_EXPECT = (
    f"one of {', '.join(repr(k) for k in KERNELS)}, 'precomputed', or a callable "
    "kernel(A, B) returning the (len(A), len(B)) kernel matrix"
)


class KernelMixin:
    """``kernel``, ``gamma``, ``degree``, ``coef0`` as in :class:`sklearn.svm.SVC`."""

    kernel: Any
    gamma: Any
    degree: Any
    coef0: Any

    def _check_kernel_params(self, func: str) -> None:
        kernel = self.kernel
        if not callable(kernel) and not (
            isinstance(kernel, str) and (kernel in KERNELS or kernel == "precomputed")
        ):
            hint = None
            if kernel == "sigmoid":
                hint = "The sigmoid kernel is not positive semidefinite."
            if isinstance(kernel, str):
                raise fail(func, "kernel", _EXPECT, repr(kernel), hint)
            raise fail_type(func, "kernel", _EXPECT, kernel)
        if kernel in ("poly", "rbf", "laplacian") and not (
            isinstance(self.gamma, str) and self.gamma in ("scale", "auto")
        ):
            if isinstance(self.gamma, str):
                raise fail(func, "gamma", "'scale', 'auto' or a positive number",
                           repr(self.gamma))  # fmt: skip
            check_positive(self.gamma, func, "gamma")
        if kernel == "poly":
            check_int(self.degree, func, "degree", minimum=1)
            if not isinstance(self.coef0, numbers.Real) or isinstance(self.coef0, bool):
                raise fail_type(func, "coef0", "a real number >= 0", self.coef0)
            check_nonnegative(self.coef0, func, "coef0")

    def _fit_gamma(self, X: np.ndarray) -> None:
        """``gamma="scale"``: ``1 / (n_features · X.var())`` (1 if ``X`` is constant);
        ``"auto"``: ``1 / n_features``; as in :class:`sklearn.svm.SVC`."""
        self._gamma: float | None = None
        if self.kernel not in ("poly", "rbf", "laplacian"):
            return
        if self.gamma == "scale":
            var = float(X.var())
            self._gamma = 1.0 / (X.shape[1] * var) if var > 0 else 1.0
        elif self.gamma == "auto":
            self._gamma = 1.0 / X.shape[1]
        else:
            self._gamma = float(self.gamma)

    @property
    def _precomputed(self) -> bool:
        return isinstance(self.kernel, str) and self.kernel == "precomputed"

    def _check_square(self, X: np.ndarray, func: str) -> None:
        if self._precomputed and X.shape[0] != X.shape[1]:
            raise fail(func, "X", "a square (n_samples, n_samples) kernel matrix for "
                       "kernel='precomputed'", f"shape {X.shape}")  # fmt: skip

    def _kernel(self, A: np.ndarray, B: np.ndarray | None, func: str) -> np.ndarray:
        """``K(A, B)`` (``A`` itself for ``"precomputed"``), float64, shape checked."""
        if self._precomputed:
            return A
        Bm = A if B is None else B
        if callable(self.kernel):
            K = self.kernel(A, Bm)
            want = (A.shape[0], Bm.shape[0])
            try:
                Km = as_float_array(K, func, "kernel", ndim=2)
            except InvalidArgumentError as exc:
                raise fail(func, "kernel", f"a callable returning a finite {want} matrix",
                           describe(K), str(exc)) from exc  # fmt: skip
            if Km.shape != want:
                raise fail(func, "kernel", f"a callable returning the {want} kernel matrix "
                           "kernel(A, B) of the rows of A and B", f"shape {Km.shape}")  # fmt: skip
            return Km
        return np.asarray(
            pairwise_kernels(A, Bm, metric=self.kernel, filter_params=True, gamma=self._gamma,
                             degree=self.degree, coef0=self.coef0),
            dtype=np.float64,
        )  # fmt: skip

    def _kernel_error(self, exc: InvalidArgumentError, func: str) -> InvalidArgumentError:
        """A solver's complaint about ``K`` (not PSD, not symmetric), naming what the user
        passed: ``X`` for a precomputed kernel, else ``kernel``."""
        arg = "X" if self._precomputed else "kernel"
        what = "kernel matrix" if self._precomputed else "kernel whose matrix on X is"
        return fail(func, arg, f"a {what} symmetric positive semidefinite", "one that is not",
                    str(exc))  # fmt: skip
