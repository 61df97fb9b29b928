"""Problem (K2): minimum-norm kernel interpolation ("ridgeless" kernel regression).

Reported in the norm form of every interpolation result (``docs/results.md``), as
:func:`implicitbias.min_l2_interpolation` reports ``min ||w||_2 s.t. X w = y``.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import scipy.linalg as sla
import torch

from implicitbias._errors import InaccurateSolutionWarning, InfeasibleError, SolverError
from implicitbias._psd import psd_error, psd_rtol
from implicitbias._results import ResultRecord, match_input
from implicitbias._status import OPTIMAL, OPTIMAL_INACCURATE, Status, renamed
from implicitbias._validation import (
    as_float_array,
    as_kernel_matrix,
    check_positive,
    fail,
)

__all__ = ["KernelRegressionResult", "kernel_regression"]

_FUNC = "kernel_regression"


@dataclass(frozen=True)
class KernelRegressionResult(ResultRecord):
    """Solution of the minimum-norm interpolation problem (K2).

    The figures of the problem follow the library's result vocabulary (``docs/results.md``),
    in the norm form ``min ||h|| s.t. <phi(x_i), h> = y_i`` with dual
    ``max <nu, y> s.t. ||sum_i nu_i phi(x_i)|| <= 1``, so ``kernel_regression(X @ X.T, y)``
    reports the ``objective``, ``dual`` and ``duality_gap`` of
    :func:`~implicitbias.min_l2_interpolation` on ``(X, y)``.

    Attributes
    ----------
    coef : ndarray, shape (n,) or (n, C)
        ``c`` with ``K c = y``; ``h = sum_j c_j phi(x_j)``.
    norm : float
        ``||h|| = sqrt(c^T K c)`` (for multi-output ``y``, the norm of the stacked ``h``:
        ``sqrt(trace(c^T K c))``).
    objective : float
        The optimal value ``||h||`` (equal to ``norm``).
    dual : ndarray, like ``coef``
        ``nu = c / ||h||``, free in sign, rescaled so that ``||sum_i nu_i phi(x_i)|| =
        sqrt(nu^T K nu) <= 1`` holds exactly (zero when ``h = 0``).
    dual_objective : float
        ``<nu, y>`` (summed over outputs), a lower bound on ``||h||``.
    duality_gap : float
        ``objective - dual_objective`` (absolute).
    relative_gap : float
        ``|duality_gap| / objective`` (0 when ``h = 0``).
    max_violation : float
        ``max |K c - y|``: the interpolation residual.
    status : {"optimal", "optimal_inaccurate"}
        ``"optimal"`` (Cholesky on a nonsingular ``K``) or ``"optimal_inaccurate"`` (``K``
        numerically singular; the pseudo-inverse was used).
    solver : str
        ``"cholesky"`` or ``"pinv"``.
    solve_time : float
        Wall time in seconds.
    iterations : int
        0 (a direct solve).
    rank : int
        Numerical rank of ``K`` used (``n`` on the Cholesky route).
    max_abs_residual : float
        Deprecated alias of ``max_violation`` (since 0.2, removed in 0.3).
    """

    coef: np.ndarray
    norm: float
    objective: float
    dual: np.ndarray
    dual_objective: float
    duality_gap: float
    relative_gap: float
    max_violation: float
    status: Status
    solver: str
    solve_time: float
    rank: int
    iterations: int = 0
    _n: int = field(default=0, repr=False)

    max_abs_residual = renamed("max_violation")

    @overload
    def predict(self, K_new_train: torch.Tensor) -> torch.Tensor: ...
    @overload
    def predict(self, K_new_train: Any) -> np.ndarray: ...
    def predict(self, K_new_train: Any) -> Any:
        """Predictions ``<phi(x), h> = sum_j c_j K(x, x_j)``.

        Parameters
        ----------
        K_new_train : array_like or torch.Tensor, shape (m, n)
            Kernel between new points (rows) and the training points (columns).

        Returns
        -------
        ndarray or torch.Tensor, shape (m,) or (m, C)
            A numpy array for array input; for a tensor, a tensor on its device in its
            floating dtype (float64 for an integer tensor). Computed in float64.
        """
        Kn = as_float_array(K_new_train, "KernelRegressionResult.predict", "K_new_train", ndim=2)
        if Kn.shape[1] != self._n:
            raise fail(
                "KernelRegressionResult.predict",
                "K_new_train",
                f"an (m, {self._n}) kernel between new and training points",
                f"shape {Kn.shape}",
            )
        return match_input(Kn @ self.coef, K_new_train)


def kernel_regression(K: Any, y: Any, *, rtol: float = 1e-8) -> KernelRegressionResult:
    r"""Minimum-norm kernel interpolation (problem K2).

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad\text{s.t.}\quad \langle\phi(x_i), h\rangle = y_i,
        \qquad h = \sum_j c_j \phi(x_j),\quad K c = y,

    so the predictor is :math:`x \mapsto k(x)^\top K^{-1} y` and
    :math:`\|h\| = \sqrt{c^\top K c}`. This is the early-phase (kernel-regime) regression
    predictor of Lyu et al. (2024) when ``K`` is the empirical NTK at initialization. The
    result reports it in norm form, :math:`\min \|h\|` s.t. the same constraints, with dual
    :math:`\max \langle \nu, y\rangle` s.t. :math:`\|\sum_i \nu_i \phi(x_i)\| \le 1`, solved by
    :math:`\nu = c / \|h\|`.

    ======================  ======================  ==============
    math                    argument / field        shape
    ======================  ======================  ==============
    :math:`K_{ij}`          ``K``                   (n, n)
    :math:`y_i`             ``y``                   (n,) or (n, C)
    :math:`c`               ``result.coef``         like ``y``
    :math:`\|h\|`           ``result.objective``    scalar
    :math:`\nu = c/\|h\|`   ``result.dual``         like ``y``
    ======================  ======================  ==============

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric positive semidefinite kernel matrix, checked on every route: symmetric to
        ``max|K - K^T| <= 1e-8 max|K|``, finite, and ``lambda_min(K) >= -max(1e-6, n eps32) *
        max_i K_ii`` (``eps32 = 2**-23``: room for a kernel computed in float32). The Cholesky
        factorization that solves the system proves it; where it fails, the eigenvalues of
        the pseudo-inverse route decide. Every test is relative, so ``K -> c K`` gives
        ``coef -> coef / c`` for every ``c > 0``.
    y : array_like, shape (n,) or (n, C)
        Real targets (one column per output).
    rtol : float
        Relative tolerance: eigenvalues below ``rtol * max eigenvalue`` count as zero on the
        pseudo-inverse route, and interpolation must hold to ``max|Kc - y| <= sqrt(rtol) *
        max|y|`` (relative to the targets, whatever their size; else
        :class:`~implicitbias.InfeasibleError`).

    Returns
    -------
    KernelRegressionResult

    Raises
    ------
    InvalidArgumentError
        ``K`` is not positive semidefinite beyond rounding (an eigenvalue below
        ``-max(1e-6, n eps32) · max_i K_ii``, eps32 the float32 machine epsilon; the message
        gives the smallest eigenvalue), not symmetric, or not finite.
    InfeasibleError
        ``y`` is not in the range of ``K`` (singular ``K``): no ``h`` interpolates the data.
    SolverError
        The linear solve returned a non-finite solution.

    Warns
    -----
    InaccurateSolutionWarning
        ``K`` is numerically singular; the pseudo-inverse route was used. ``h`` (and every
        prediction) is still unique; ``coef`` is the minimum-Euclidean-norm choice.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> res = ib.kernel_regression(K, np.array([1.0, -1.0]))
    >>> res.coef
    array([ 1., -1.])
    >>> round(res.norm, 12)  # sqrt(c^T K c) = sqrt(2)
    1.414213562373
    >>> res.predict(np.array([[1.0, 0.0]]))
    array([1.])

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu. Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking. ICLR 2024, arXiv:2311.18817.
    """
    t0 = time.perf_counter()
    Km = as_kernel_matrix(K, _FUNC, "K")
    n = Km.shape[0]
    yv = as_float_array(y, _FUNC, "y", ndim=(1, 2))
    if yv.shape[0] != n:
        raise fail(_FUNC, "y", f"of length {n} (one target per row of K)", f"shape {yv.shape}")
    rtol = check_positive(rtol, _FUNC, "rtol")
    y_scale = float(np.max(np.abs(yv)))
    accept = np.sqrt(rtol) * y_scale  # relative to the targets: y ~ 1e-6 is judged as y ~ 1

    coef: np.ndarray | None = None
    solver, rank = "cholesky", n
    status: Status = OPTIMAL
    why = ""  # why the Cholesky route was left, for the warning
    try:
        c_fac = sla.cho_factor(Km, lower=True, check_finite=False)
        d = np.abs(np.diag(c_fac[0]))
        # squared pivots bound the eigenvalues; a tiny one means K is numerically singular
        if float(np.min(d)) ** 2 > rtol * float(np.max(np.diag(Km))):
            coef = sla.cho_solve(c_fac, yv, check_finite=False)
            coef = coef + sla.cho_solve(c_fac, yv - Km @ coef, check_finite=False)
            chol_residual = float(np.max(np.abs(Km @ coef - yv)))
            # written so that a NaN residual (a NaN solve) also fails the check
            if not chol_residual <= accept:
                why = (
                    f"the Cholesky solve failed its residual check (max|Kc - y| = "
                    f"{chol_residual:.3g} > {accept:.3g})"
                )
                coef = None
    except np.linalg.LinAlgError:
        coef = None
    if coef is None:
        w, V = np.linalg.eigh(Km)
        k_scale = max(float(np.max(np.diag(Km))), 0.0)
        k_tol = psd_rtol(n) * k_scale
        if float(w[0]) < -k_tol:
            n_neg = int(np.count_nonzero(w < -k_tol))
            how = f"computed by eigh; {n_neg} of {n} eigenvalues below the bound"
            raise psd_error(_FUNC, "K", float(w[0]), k_scale, k_tol, how, 1.0)
        keep = w > rtol * max(float(w[-1]), 0.0)
        rank = int(np.count_nonzero(keep))
        Vk = V[:, keep]
        coef = Vk @ ((Vk.T @ yv) / (w[keep] if yv.ndim == 1 else w[keep][:, None]))
        solver, status = "pinv", OPTIMAL_INACCURATE
    residual = float(np.max(np.abs(Km @ coef - yv)))
    if not np.isfinite(residual) or not np.all(np.isfinite(coef)):
        raise SolverError(
            f"{_FUNC}: the {solver} route returned a non-finite solution (max|Kc - y| = "
            f"{residual:.3g}). Check the scale of K and y (max|K| = "
            f"{float(np.max(np.abs(Km))):.3g}, max|y| = {float(np.max(np.abs(yv))):.3g})."
        )
    if residual > accept:
        raise InfeasibleError(
            f"{_FUNC}: y is not in the range of the (singular) kernel matrix K, so no h "
            f"interpolates the data (numerical rank {rank} of {n}; best residual max|Kc - y| = "
            f"{residual:.3g}, relative to max|y| = {y_scale:.3g}: {residual / y_scale:.3g} > "
            f"sqrt(rtol) = {np.sqrt(rtol):.3g}). Duplicate inputs with different targets cause "
            f"this; "
            f"use kernel ridge regression instead."
        )
    if solver == "pinv":
        if rank < n:
            reason = f"K is numerically singular (rank {rank} of {n})"
        else:
            reason = why or f"the Cholesky factorization of K failed (rank {rank} of {n})"
        warnings.warn(
            f"{_FUNC}: {reason}; used the pseudo-inverse. The interpolant h is unique, coef is "
            f"the minimum-norm choice.",
            InaccurateSolutionWarning,
            stacklevel=2,
        )
    quad = float(np.sum(coef * (Km @ coef)))
    norm = float(np.sqrt(max(quad, 0.0)))
    objective, nu, dual_objective, gap, rel = _norm_form(Km, yv, coef, norm)
    return KernelRegressionResult(
        coef=coef,
        norm=norm,
        objective=objective,
        dual=nu,
        dual_objective=dual_objective,
        duality_gap=gap,
        relative_gap=rel,
        max_violation=residual,
        status=status,
        solver=solver,
        solve_time=time.perf_counter() - t0,
        rank=rank,
        iterations=0,
        _n=n,
    )


def _norm_form(
    K: np.ndarray, y: np.ndarray, coef: np.ndarray, norm: float
) -> tuple[float, np.ndarray, float, float, float]:
    """``(objective, nu, <nu, y>, gap, relative gap)`` of ``min ||h|| s.t. <phi_i, h> = y_i``,
    certified as :func:`implicitbias.min_l2_interpolation` certifies it: ``nu = c / ||h||``
    divided by ``||sum_i nu_i phi_i|| = sqrt(nu^T K nu)`` where rounding puts that above 1."""
    if not norm > 0:
        return norm, np.zeros_like(coef), 0.0, 0.0, 0.0
    nu = coef / norm
    nu = nu / max(float(np.sqrt(max(float(np.sum(nu * (K @ nu))), 0.0))), 1.0)
    dual_objective = float(np.sum(nu * y))
    gap = norm - dual_objective
    return norm, nu, dual_objective, gap, abs(gap) / norm
