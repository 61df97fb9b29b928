"""Minimum-norm interpolation: basis pursuit (ℓ1, rich regime) and min-ℓ2 (kernel regime)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from scipy.optimize import linprog

from implicitbias._errors import InfeasibleError, SolverError
from implicitbias._validation import (
    as_float_array,
    check_positive,
    check_same_length,
)
from implicitbias.rich_regime._results import InterpolationResult, classify, nonzero_indices
from implicitbias.rich_regime._scaling import pnorm, pow2_scale, rescaled

__all__ = ["min_l1_interpolation", "min_l2_interpolation"]

_HINT = "Check that X has full row rank, or rescale the data."


def _check(X: Any, y: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array(X, func, "X", ndim=2)
    y = as_float_array(y, func, "y", ndim=1)
    check_same_length(func, X=X, y=y)
    return X, y


def _row_scales(X: np.ndarray) -> np.ndarray:
    """Powers of two near ``1 / max_j |x_ij|`` (1 for zero rows): ``D X w = D y`` is the same
    system as ``X w = y`` with every row of unit size (exact)."""
    top = np.max(np.abs(X), axis=1)
    D = np.ones(X.shape[0])
    nz = top > 0
    _, e = np.frexp(top[nz])
    D[nz] = np.ldexp(1.0, -np.clip(e, -1000, 1000))
    return D


def _misfit(X: np.ndarray, y: np.ndarray, w: np.ndarray, rtol: float) -> tuple[float, float]:
    """(max_i |⟨w, x_i⟩ − y_i|, that residual over ``rtol·max|y|``): a ratio ``≤ 1`` means
    ``X w = y`` holds to ``rtol``."""
    res = float(np.max(np.abs(X @ w - y)))
    bound = rtol * float(np.max(np.abs(y)))
    if res == 0.0:
        return 0.0, 0.0
    return res, (res / bound if bound > 0 else float("inf"))


#: Units of rounding of ``Σ_j |x_ij w_j|`` that a row's residual may have (see below).
_FLOOR_ULPS = 32.0


def _at_rounding_floor(
    DX: np.ndarray, X: np.ndarray, y: np.ndarray, w: np.ndarray, rtol: float
) -> bool:
    """Whether a residual above ``rtol·max|y|`` is only the rounding of evaluating ``X w``:
    rows of very different size (1e-4 beside 1e4) make ``w`` large, and a large row's
    ``⟨w, x_i⟩`` is then off by ``~ε·Σ_j |x_ij w_j|`` in float64. Trusted only when the
    row-normalized ``DX`` is well conditioned (``cond·ε ≤ rtol``, so ``w`` itself is
    accurate); a nearly singular X (conflicting near-duplicates) is not excused."""
    eps = float(np.finfo(np.float64).eps)
    if not np.linalg.cond(DX) * eps <= rtol:
        return False
    floor = rtol * float(np.max(np.abs(y))) + _FLOOR_ULPS * eps * (np.abs(X) @ np.abs(w))
    return bool(np.all(np.abs(X @ w - y) <= floor))


def _fits(X: np.ndarray, y: np.ndarray, w: np.ndarray, rtol: float) -> tuple[float, bool]:
    """(max_i |⟨w, x_i⟩ − y_i|, whether ``X w = y`` holds to ``rtol·max|y|`` or to the
    rounding floor of :func:`_at_rounding_floor`)."""
    res, ratio = _misfit(X, y, w, rtol)
    if ratio <= 1.0:
        return res, True
    return res, _at_rounding_floor(_row_scales(X)[:, None] * X, X, y, w, rtol)


def _lstsq(
    X: np.ndarray, y: np.ndarray, func: str, rtol: float, unit: float = 1.0
) -> tuple[np.ndarray, float]:
    """Minimum-ℓ2 solution of X w = y (rows equilibrated first: a row of size 1e-4 beside one
    of size 1e4 is a scale, not an inconsistency); InfeasibleError when y is not in range(X).
    ``unit``: the scale of the caller's y (for the message only)."""
    D = _row_scales(X)
    w, *_ = np.linalg.lstsq(D[:, None] * X, D * y, rcond=None)
    res, ok = _fits(X, y, w, rtol)
    scale = max(float(np.max(np.abs(y))), np.finfo(np.float64).tiny)
    if not ok:
        rank = int(np.linalg.matrix_rank(D[:, None] * X))
        if rank == X.shape[0]:
            # full row rank: an interpolant exists; float64 cannot evaluate it to rtol
            raise SolverError(
                f"{func}: X has full row rank ({rank}), so X w = y has solutions, but the "
                f"least-squares one fits only to max_i |<w, x_i> - y_i| = {res * unit:.3g} "
                f"(relative {res / scale:.3g} > rtol = {rtol:.3g}) in float64: X is ill "
                f"conditioned (condition number {np.linalg.cond(D[:, None] * X):.2g} with "
                "rows at unit size) or its rows differ so much in size that the large rows' "
                "residuals are rounding errors of their terms. Remove nearly dependent "
                "examples, rescale the rows, or raise rtol."
            )
        raise InfeasibleError(
            f"{func}: no w satisfies X w = y: the least-squares residual is "
            f"max_i |<w, x_i> - y_i| = {res * unit:.3g} (relative {res / scale:.3g} > "
            f"{rtol:.3g}), so y is not in the range of X (X has {X.shape[0]} rows and rank "
            f"{rank}). Remove redundant or contradicting examples."
        )
    return w, res


def _mapped_back(
    X: np.ndarray, y: np.ndarray, w: np.ndarray, rtol: float, func: str, sx: float, sy: float
) -> float:
    """Check that ``w`` (mapped back by ``s_y/s_X``) still solves the caller's
    ``X w = y``: it may overflow or underflow float64 when the scales of X and y are far
    apart. Returns the residual."""
    if not np.all(np.isfinite(w)):
        raise SolverError(
            f"{func}: the interpolant overflows float64: mapped back to the data's scale "
            f"(times s_y/s_X, s_y = {sy:.3g}, s_X = {sx:.3g}) its entries are not finite. Rescale X or y."
        )
    res, ok = _fits(X, y, w, rtol)
    if not ok:
        raise SolverError(
            f"{func}: the interpolant underflows float64: mapped back to the data's scale "
            f"(times s_y/s_X, s_y = {sy:.3g}, s_X = {sx:.3g}) it leaves a residual max_i |<w, x_i> - y_i| = "
            f"{res:.3g}. Rescale X or y."
        )
    return res


def min_l2_interpolation(X: Any, y: Any, *, rtol: float = 1e-8) -> InterpolationResult:
    r"""Minimum-ℓ2-norm interpolant (ridgeless regression; the diagonal net's kernel regime).

    .. math::

        \min_w \|w\|_2 \quad \text{s.t.} \quad X w = y,

    solved by :func:`numpy.linalg.lstsq` (``w = X⁺ y``). The dual certificate is
    ``ν = (X Xᵀ)⁺ y / ‖w‖₂`` (``‖Xᵀν‖₂ = 1``, ``⟨ν, y⟩ = ‖w‖₂``). Scale-free: solved for
    ``(X/s_X, y/s_y)`` (exact powers of two) and mapped back, ``w = (s_y/s_X)·w'``; the
    certificate is evaluated on the caller's data.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`X`, :math:`y`        ``X`` (n, d), ``y`` (n,)
    :math:`w`, :math:`\nu`      ``result.w``, ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
        Real targets.
    rtol : float
        Largest accepted residual ``max_i |⟨w, x_i⟩ − y_i|`` relative to ``max |y|``.

    Returns
    -------
    InterpolationResult

    Raises
    ------
    InfeasibleError
        If ``y`` is not in the range of ``X``.

    Examples
    --------
    >>> import implicitbias as ib
    >>> ib.min_l2_interpolation([[1.0, 1.0]], [2.0]).w.round(12).tolist()
    [1.0, 1.0]

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817 (K2).
    """
    func = "min_l2_interpolation"
    t0 = time.perf_counter()
    X, y = _check(X, y, func)
    rtol = check_positive(rtol, func, "rtol")
    sx, sy = pow2_scale(X), pow2_scale(y)
    Xs, ys = rescaled(X, sx), rescaled(y, sy)  # exact: powers of two
    w_s, _ = _lstsq(Xs, ys, func, rtol, sy)
    norm_s = pnorm(w_s, 2.0)
    if norm_s > 0:
        nu, *_ = np.linalg.lstsq(Xs.T, w_s / norm_s, rcond=None)
        nu = nu / max(pnorm(Xs.T @ nu, 2.0), 1.0)
    else:
        nu = np.zeros_like(y)
    # Map back (X = sx·Xs, y = sy·ys): w = (sy/sx)·w_s, ν = ν_s/sx; certify on the caller's data.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        w = w_s * sy / sx  # checked by _mapped_back
    nu = nu / sx
    res = _mapped_back(X, y, w, rtol, func, sx, sy)
    norm = pnorm(w, 2.0)
    nu = nu / max(pnorm(X.T @ nu, 2.0), 1.0)
    dual_obj = float(nu @ y)
    gap = norm - dual_obj
    rel = abs(gap) / norm if norm > 0 else 0.0
    status = classify(func, rel, 1e-7, what="lstsq route", hint=_HINT)
    return InterpolationResult(
        w=w, norm=norm, objective=norm, dual=nu, dual_objective=dual_obj,
        active_features=nonzero_indices(w), p=2.0, status=status, solver="lstsq",
        solve_time=time.perf_counter() - t0, duality_gap=gap, relative_gap=rel,
        max_violation=res,
    )  # fmt: skip


def min_l1_interpolation(
    X: Any, y: Any, *, tol: float = 1e-7, rtol: float = 1e-8
) -> InterpolationResult:
    r"""Basis pursuit: the minimum-ℓ1-norm interpolant (the diagonal net's rich regime, R2).

    .. math::

        \min_w \|w\|_1 \quad \text{s.t.} \quad X w = y,

    with dual :math:`\max \langle \nu, y\rangle` s.t. :math:`\|X^\top \nu\|_\infty \le 1`
    (:math:`\nu` free in sign). Solved as an LP in ``w = a − b`` (``a, b ≥ 0``) by HiGHS
    (dual simplex) through :func:`scipy.optimize.linprog`; ``ν`` is the equality marginal.
    HiGHS' tolerances are absolute, so the LP is solved for ``(X/s_X, y/s_y)`` (exact powers
    of two) and mapped back; the certificate is evaluated on the caller's data.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`X`, :math:`y`        ``X`` (n, d), ``y`` (n,)
    :math:`w`, :math:`\nu`      ``result.w``, ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
    y : array_like of shape (n,)
        Real targets.
    tol : float
        Tolerance on the certified relative duality gap.
    rtol : float
        Largest accepted residual relative to ``max |y|`` (feasibility is decided by a
        least-squares solve first).

    Returns
    -------
    InterpolationResult

    Raises
    ------
    InfeasibleError
        If ``y`` is not in the range of ``X`` (decided by the least-squares pre-check).
    SolverError
        If HiGHS fails (any status other than optimal, including "infeasible" on data the
        pre-check found feasible) or returns a point that fails the residual check.

    Examples
    --------
    >>> import implicitbias as ib
    >>> ib.min_l1_interpolation([[1.0, 2.0]], [2.0]).w.tolist()
    [0.0, 1.0]

    References
    ----------
    Chen, Donoho, Saunders, *Atomic decomposition by basis pursuit*, 1998. Lyu et al.,
    ICLR 2024, arXiv:2311.18817.
    """
    func = "min_l1_interpolation"
    t0 = time.perf_counter()
    X, y = _check(X, y, func)
    tol = check_positive(tol, func, "tol")
    rtol = check_positive(rtol, func, "rtol")
    # HiGHS' tolerances are absolute: solve for (X/sx, y/sy) (exact powers of two) and map back.
    sx, sy = pow2_scale(X), pow2_scale(y)
    Xs, ys = rescaled(X, sx), rescaled(y, sy)
    _, ls_resid = _lstsq(Xs, ys, func, rtol, sy)
    ls_resid *= sy
    n, d = X.shape
    D = _row_scales(Xs)  # rows of unit size (HiGHS' tolerances are absolute)
    res = linprog(
        np.ones(2 * d),
        A_eq=np.hstack([D[:, None] * Xs, -D[:, None] * Xs]),
        b_eq=D * ys,
        bounds=(0, None),
        method="highs",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    if res.status == 2:
        # feasibility was already decided by the least-squares pre-check: this is the solver's
        # failure, not the user's data
        raise SolverError(
            f"{func}: HiGHS stopped with status 2 ({res.message}) although X w = y is feasible: "
            f"a least-squares solve satisfies it to max_i |<w, x_i> - y_i| = {ls_resid:.3g}. "
            f"The LP is numerically hard for HiGHS. {_HINT}"
        )
    if res.status != 0:
        raise SolverError(f"{func}: HiGHS stopped with status {res.status} ({res.message}).")
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        w = (res.x[:d] - res.x[d:]) * sy / sx  # checked by _mapped_back
    w_s = res.x[:d] - res.x[d:]
    resid_s, ok = _fits(Xs, ys, w_s, 10 * rtol)
    if not ok:
        raise SolverError(
            f"{func}: HiGHS returned a point with residual {resid_s * sy:.3g}. {_HINT}"
        )
    resid = _mapped_back(X, y, w, 10 * rtol, func, sx, sy)
    nu = D * np.asarray(res.eqlin.marginals, dtype=np.float64) / sx
    cinf = float(np.max(np.abs(X.T @ nu)))
    nu = nu / max(cinf, 1.0)
    norm = pnorm(w, 1.0)
    dual_obj = float(nu @ y)
    gap = norm - dual_obj
    rel = abs(gap) / norm if norm > 0 else abs(gap)
    status = classify(func, rel, tol, what="HiGHS route", hint=_HINT)
    return InterpolationResult(
        w=w, norm=norm, objective=norm, dual=nu, dual_objective=dual_obj,
        active_features=nonzero_indices(w), p=1.0, status=status, solver="highs",
        solve_time=time.perf_counter() - t0, duality_gap=gap, relative_gap=rel,
        max_violation=resid, iterations=int(getattr(res, "nit", 0)),
    )  # fmt: skip
