r"""The multiclass SVM dual over its pairs, certified: the working-set route (with its
certificate computed over all pairs from one product ``M a``) and the dense routes of
:func:`~implicitbias.kernel_svm` (the active-set solver on the whole pair matrix, cvxpy).
Used by :func:`~implicitbias.multiclass_kernel_svm`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import numpy as np

from implicitbias._errors import InaccurateSolutionWarning, SolverError
from implicitbias._nonneg_qp import SEPARABILITY_FLOOR
from implicitbias._status import OPTIMAL_INACCURATE, Status
from implicitbias.kernel_regime._multiclass_pairs import Pairs
from implicitbias.kernel_regime._multiclass_ws import DENSE_COPIES, solve_working_set
from implicitbias.kernel_regime._svm_dual import (
    Certificate,
    certify,
    not_separable_error,
    separability_certificate,
    status_from,
    support_of,
)
from implicitbias.kernel_regime.kernel_svm import _solve_certified

__all__ = ["CertifiedPairs", "certified_working_set", "solve_dual"]


class _Known:
    """``Q @ a`` already computed (over all pairs, by :meth:`Pairs.products`): lets
    :func:`~implicitbias.kernel_regime._svm_dual.certify` judge ``a`` without the matrix."""

    def __init__(self, Qa: np.ndarray) -> None:
        self.Qa = Qa

    def __matmul__(self, a: np.ndarray) -> np.ndarray:
        return self.Qa


@dataclass(frozen=True)
class CertifiedPairs:
    """A certified working-set answer: ``a`` over the pairs (row-major order of ``(i, c)``),
    its :class:`Certificate`, the status, the iterations and the pairs touched."""

    a: np.ndarray
    certificate: Certificate
    status: Status
    iterations: int
    touched: int
    route: str


def certified_working_set(
    pairs: Pairs,
    *,
    func: str,
    tol: float,
    memory_budget: int,
    prove: Callable[[], None],
    what: str,
) -> CertifiedPairs | None:
    """:func:`solve_working_set`, certified over all pairs; ``None`` when the answer fails its
    certificate (the caller may fall back to a dense route). Raises :class:`NotSeparableError`
    with a certificate, as :func:`~implicitbias.kernel_regime.kernel_svm._solve_certified`."""
    out = solve_working_set(pairs, tol=tol, memory_budget=memory_budget, func=func)
    radius = float(np.sqrt(pairs.scale))
    a = out.a[pairs.mask]
    Qa = out.Ma[pairs.mask]
    cert = certify(cast(np.ndarray, _Known(Qa)), a)
    if out.diverged or cert.margin_upper <= SEPARABILITY_FLOOR:
        s = float(np.sum(a))
        value = float(np.sqrt(max(out.quad, 0.0))) / s if s > 0 else np.inf
        found = (a / s, value) if value <= SEPARABILITY_FLOOR else None
        if found is None and DENSE_COPIES * 8 * a.size**2 <= memory_budget:
            found = separability_certificate(pairs.block(pairs.pairs()), None)
        prove()  # the certificate means "sum a z = 0" only for a PSD kernel
        if found is not None:
            raise not_separable_error(func, found[0], found[1], radius, what=what)
        raise SolverError(
            f"{func}: the working-set dual diverged (margin upper bound "
            f"{cert.margin_upper:.3g}), but no certificate of non-separability was found"
        )
    status = status_from(cert, tol)
    if status is None:
        return None
    if status == OPTIMAL_INACCURATE:
        warnings.warn(
            f"{func}: the working-set answer satisfies the optimality checks only to "
            f"{cert.kkt_residual:.3g} (tol {tol:.3g}); margin bounds "
            f"[{cert.margin_lower * radius:.10g}, {cert.margin_upper * radius:.10g}].",
            InaccurateSolutionWarning,
            stacklevel=4,  # the caller of multiclass_kernel_svm
        )
    return CertifiedPairs(a, cert, status, out.iterations, out.touched, out.route)


def solve_dual(
    pairs: Pairs,
    *,
    route: str,
    tol: float,
    fallback: bool,
    cvxpy_solver: str | None,
    memory_budget: int,
    prove: Callable[[], None],
    func: str,
    what: str,
) -> tuple[np.ndarray, Certificate, Status, str, int, int, np.ndarray]:
    """The certified dual over the pairs by ``route``: ``(a, certificate, status, solver name,
    iterations, pairs touched, support indices)``. The working-set route falls back to the
    dense cvxpy route (when ``fallback`` and the matrix fits) if its answer fails the checks."""
    n_pairs = pairs.size
    if route == "working-set":
        found = certified_working_set(
            pairs, func=func, tol=tol, memory_budget=memory_budget, prove=prove, what=what
        )
        if found is not None:
            a = found.a
            sup = np.flatnonzero(a > 0)
            return (
                a,
                found.certificate,
                found.status,
                "working-set",
                found.iterations,
                found.touched,
                sup,
            )
        if not (fallback and DENSE_COPIES * 8 * n_pairs**2 <= memory_budget):
            prove()
            raise SolverError(
                f"{func}: the working-set answer failed its optimality checks (tol "
                f"{tol:.3g}) and the dense fallback does not fit memory_budget"
            )
    M = pairs.block(pairs.pairs())
    a, cert, status, name, iterations, how = _solve_certified(
        M,
        func=func,
        solver="cvxpy" if route in ("working-set", "cvxpy") else "active-set",
        tol=tol,
        fallback=fallback,
        cvxpy_solver=cvxpy_solver,
        cvxpy_formulation="quad_form",
        radius=float(np.sqrt(pairs.scale)),
        prove=prove,
        what=what,
    )
    if route == "working-set":
        name += " (fallback)"
    sup = np.flatnonzero(a > 0) if how == "active-set" else support_of(a, M)
    return a, cert, status, name, iterations, n_pairs, sup
