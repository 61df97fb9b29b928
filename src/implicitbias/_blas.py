"""BLAS thread control shared by the solvers that issue many mid-sized BLAS calls.

numpy and scipy each bundle an OpenBLAS whose spinning worker threads fight each other on
small and mid-sized products (measured on a loaded 2-core machine: the kernel SVM on an RBF
kernel with n = 4000, 12-14 s with two threads vs 2-3 s with one; a 1233-block Cholesky took
1.9 s instead of 0.16 s; the nuclear-norm ALM on the d = 97 table, 10 s vs 0.1 s). The
active-set QP solvers, the PSD proofs and the ALM run inside :func:`blas_single_thread`.
"""

from __future__ import annotations

import contextlib
from typing import Any

__all__ = ["blas_single_thread"]

_CONTROLLER: list[Any] = []


def blas_single_thread() -> contextlib.AbstractContextManager[Any]:
    """One BLAS thread (all BLAS libraries loaded) for the duration, when threadpoolctl is there."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - optional
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    if _CONTROLLER[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    return _CONTROLLER[0].limit(limits=1, user_api="blas")
