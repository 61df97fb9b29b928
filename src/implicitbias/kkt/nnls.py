r"""Non-negative least squares in Gram form: the active-set solver for the KKT multipliers.

The smallest-ε certificate of a KKT point, ``min_{μ ≥ 0} ‖θ̃ − G μ‖``, only needs ``Q = GᵀG``
(an NTK) and ``b = Gᵀθ̃`` (the margins, by Euler's identity), so it is solved here as the
bound-constrained quadratic program ``min_{μ ≥ 0} ½ μᵀQμ − bᵀμ`` on ``n`` variables, never
touching the ``p``-dimensional vectors. The Lawson--Hanson loop itself lives in
:mod:`implicitbias._lawson_hanson` (shared with the kernel SVM solvers); ``_lawson_hanson_gram`` is
its name here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from implicitbias._blas import blas_single_thread
from implicitbias._errors import SolverError
from implicitbias._lawson_hanson import lawson_hanson as _lawson_hanson_gram
from implicitbias._results import ResultRecord
from implicitbias._validation import as_float_array, as_kernel_matrix, check_int, fail
from implicitbias.kkt._pivoting import row_absmax

__all__ = ["GramNNLSResult", "nnls_gram"]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True)
class GramNNLSResult(ResultRecord):
    """Solution of ``min_{μ ≥ 0} ½ μᵀQμ − bᵀμ`` (NNLS in Gram form).

    Attributes
    ----------
    solution : ndarray of shape (n,)
        The minimizer ``μ ≥ 0`` (zero outside ``candidates``).
    objective : float
        ``½ μᵀQμ − bᵀμ``. With ``Q = GᵀG`` and ``b = Gᵀt`` the least-squares residual is
        ``‖t − Gμ‖² = ‖t‖² + 2·objective``.
    gradient : ndarray of shape (n,)
        ``b − Qμ`` (``= Gᵀ(t − Gμ)``): zero on the support, ``≤ tol`` elsewhere at optimality.
    support : ndarray of int
        Indices with ``μ_i > 0``.
    max_violation : float
        The optimality violation left: ``max |(b − Qμ)_i|`` over the support and
        ``max(0, (b − Qμ)_i)`` over the other candidates.
    status : str
        ``"optimal"``, or ``"max_iter"`` when the iteration limit stopped the solver.
    solver : str
        ``"lawson-hanson-gram"``.
    solve_time : float
        Wall time in seconds.
    iterations : int
        Active-set changes (additions plus removals).
    """

    solution: np.ndarray
    objective: float
    gradient: np.ndarray
    support: np.ndarray
    max_violation: float
    status: str
    solver: str
    solve_time: float
    iterations: int


def nnls_gram(
    Q: Any,
    b: Any,
    *,
    candidates: Any = None,
    tol: float | None = None,
    max_iter: int | None = None,
) -> GramNNLSResult:
    r"""Non-negative least squares given only the Gram matrix: ``min_{μ ≥ 0} ½ μᵀQμ − bᵀμ``.

    .. math::

        \min_{\mu \ge 0}\ \tfrac12 \lVert t - G\mu \rVert_2^2
        \;=\; \tfrac12\lVert t\rVert^2 + \min_{\mu \ge 0}\ \tfrac12 \mu^\top Q \mu - b^\top \mu,
        \qquad Q = G^\top G,\ b = G^\top t.

    The optimality (KKT) conditions are ``μ ≥ 0``, ``b − Qμ ≤ 0`` and ``μ_i (b − Qμ)_i = 0``.
    Solved by the Lawson–Hanson active-set method run on the normal equations, with an
    incrementally updated Cholesky factor of the passive block, in float64. ``Q`` may be
    singular (rank-deficient ``G``): the passive set is kept linearly independent, as in the
    classical method, so every step solves a positive-definite system.

    ===============  ===============================
    math             argument
    ===============  ===============================
    :math:`Q`        ``Q``, shape ``(n, n)``, PSD
    :math:`b`        ``b``, shape ``(n,)``
    :math:`\mu`      ``result.solution``
    ===============  ===============================

    Parameters
    ----------
    Q : array_like of shape (n, n)
        Symmetric positive semi-definite matrix (symmetrized before use; rejected when an
        eigenvalue is below ``−1e-6·max|Q|``, checked for ``n ≤ 4000``).
    b : array_like of shape (n,)
        Linear term.
    candidates : array_like of bool, shape (n,), optional
        Restrict the support of ``μ`` to these indices (the others are fixed at 0).
    tol : float, optional
        Stop when ``max_i (b − Qμ)_i ≤ tol`` over the free candidates. Default: a
        coordinate-wise bound on the rounding error of ``b − Qμ``
        (``64·eps·(|b_i| + max_j |Q_ij|·Σμ)·√|P|``).
    max_iter : int, optional
        Limit on active-set changes (default ``10·n + 10``).

    Returns
    -------
    GramNNLSResult

    Examples
    --------
    >>> import numpy as np, implicitbias as ib
    >>> A = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]); t = np.array([2.0, 1.0, 1.0])
    >>> res = ib.nnls_gram(A.T @ A, A.T @ t)
    >>> np.round(res.solution, 12).tolist()
    [1.5, 1.0]
    >>> bool(np.isclose(np.sqrt(t @ t + 2 * res.objective), np.sqrt(0.5)))
    True

    References
    ----------
    C. L. Lawson, R. J. Hanson, *Solving Least Squares Problems*, SIAM 1995, ch. 23.
    R. Bro, S. De Jong, A fast non-negativity-constrained least squares algorithm,
    J. Chemometrics 11 (1997).
    """
    func = "nnls_gram"
    t0 = time.perf_counter()
    Q = as_kernel_matrix(Q, func, "Q")
    n = Q.shape[0]
    _check_psd(Q, func)
    b = as_float_array(b, func, "b", ndim=1)
    if b.shape[0] != n:
        raise fail(func, "b", f"a vector of length {n} (the size of Q)", f"length {b.shape[0]}")
    if candidates is None:
        cand = np.ones(n, dtype=bool)
    else:
        cand = np.asarray(candidates)
        if cand.dtype != bool or cand.shape != (n,):
            raise fail(
                func,
                "candidates",
                f"a boolean mask of shape ({n},)",
                f"dtype {cand.dtype} and shape {cand.shape}",
            )
    if tol is not None:
        tol = float(tol)
        if not (tol >= 0 and np.isfinite(tol)):
            raise fail(func, "tol", "a non-negative finite number", repr(tol))
    max_iter = 10 * n + 10 if max_iter is None else check_int(max_iter, func, "max_iter", minimum=1)
    return _finish_nnls(Q, b, cand, tol, max_iter, t0)


def _blas_single_thread(n: int) -> contextlib.AbstractContextManager[Any]:
    """Limit BLAS to one thread for small systems, when ``threadpoolctl`` is installed.

    The active-set loop issues many small (``n × n`` matvec, ``k × k`` triangular) BLAS calls;
    multi-threading them is pure overhead, and on a busy machine it made this solver ~5x
    slower (measured: 13.7 s vs 2.6 s for n = 1000).
    """
    if n > 4000:
        return contextlib.nullcontext()
    return blas_single_thread()


def _check_psd(Q: np.ndarray, func: str) -> None:
    """Reject a matrix that is not positive semidefinite (the objective is then unbounded)."""
    scale = max(float(np.max(np.abs(Q))), 1e-300) if Q.size else 1.0
    tol = 1e-6 * scale  # rounding (even of a float32 Gram matrix) stays far below this
    diag_min = float(np.min(np.diag(Q))) if Q.size else 0.0
    if diag_min < -tol:
        raise fail(
            func,
            "Q",
            "positive semidefinite (a Gram matrix GᵀG)",
            f"a diagonal entry {diag_min:.4g}",
        )
    if 0 < Q.shape[0] <= 4000:
        lam_min = float(scipy.linalg.eigvalsh(Q, subset_by_index=[0, 0], check_finite=False)[0])
        if lam_min < -tol:
            raise fail(
                func,
                "Q",
                "positive semidefinite (a Gram matrix GᵀG)",
                f"smallest eigenvalue {lam_min:.4g}",
            )


def _finish_nnls(
    Q: np.ndarray,
    b: np.ndarray,
    cand: np.ndarray,
    tol: float | None,
    max_iter: int,
    t0: float | None = None,
    x0: np.ndarray | None = None,
) -> GramNNLSResult:
    """Run the Lawson–Hanson loop (warm-started at ``x0``, a face minimizer on a linearly
    independent support, when given) and check and package its answer."""
    t0 = time.perf_counter() if t0 is None else t0
    with _blas_single_thread(b.shape[0]):
        mu, iterations, status = _lawson_hanson_gram(
            Q, b, cand, tol=tol, max_iter=max_iter, x0=x0
        )
    return package_nnls(Q, b, cand, mu, iterations, status, t0)


def package_nnls(
    Q: np.ndarray,
    b: np.ndarray,
    cand: np.ndarray,
    mu: np.ndarray,
    iterations: int,
    status: str,
    t0: float,
    *,
    rowmax: np.ndarray | None = None,
) -> GramNNLSResult:
    """Check a solver's answer (finite, ``≥ 0``, optimal to far above rounding when it says
    so) and package it as a :class:`GramNNLSResult` (``rowmax``: ``max_j |Q_ij|`` when the
    solver already has it)."""
    if not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise SolverError(
            "nnls_gram: the Lawson–Hanson loop returned a non-finite or negative solution "
            f"(min {np.nanmin(mu) if mu.size else 0.0:.3g}); Q may be badly scaled or not PSD."
        )
    grad = b - Q @ mu
    off = cand & (mu == 0)
    viol_off = float(max(0.0, grad[off].max())) if off.any() else 0.0
    viol_on = float(np.abs(grad[mu > 0]).max()) if np.any(mu > 0) else 0.0
    violation = max(viol_off, viol_on)
    if status == "optimal":
        # Rounding bound of b − Qμ (as in the loop), with a wide margin: only garbage fails.
        rowmax = row_absmax(Q) if rowmax is None else rowmax
        bound = 64 * _EPS * (np.abs(b) + rowmax * float(mu.sum()))
        bound = bound * np.sqrt(max(1, int(np.count_nonzero(mu))))
        bad = np.where(mu > 0, np.abs(grad), np.maximum(grad, 0.0) * off) > 1e6 * bound + 1e-300
        if np.any(bad):
            raise SolverError(
                "nnls_gram: the Lawson–Hanson loop returned a solution that fails its optimality "
                f"check: max |(b − Qμ)_i| on the support / max (b − Qμ)_i off it = {violation:.3g}, "
                "far above rounding. Q may be badly scaled or not PSD."
            )
    return GramNNLSResult(
        solution=mu,
        objective=float(0.5 * mu @ (Q @ mu) - b @ mu),
        gradient=grad,
        support=np.flatnonzero(mu > 0),
        max_violation=violation,
        status=status,
        solver="lawson-hanson-gram",
        solve_time=time.perf_counter() - t0,
        iterations=iterations,
    )
