"""Max-margin linear classifiers without bias: ℓ1 (rich regime), ℓ2 (kernel regime), ℓp.

All three solve

    min_w ‖w‖_p   s.t.   y_i ⟨w, x_i⟩ ≥ 1,  i = 1..n,

whose dual is ``max Σ μ_i s.t. μ ≥ 0, ‖Xᵀ(μ ⊙ y)‖_q ≤ 1`` with ``1/p + 1/q = 1``. Every route
returns a primal point rescaled to be exactly feasible and multipliers rescaled to be exactly
dual feasible, so ``norm − Σ μ`` is a certified bound on suboptimality.

Scale-free: ``X → cX`` maps the answer to ``w / c`` (margin ``c·margin``), so every route
solves for ``X / s`` with ``s`` the power of two nearest to ``max |X_ij|`` (an exact rescaling)
and maps back; the certificate is evaluated on the caller's ``X``. "Not separable" is said only
with a verified Farkas certificate (:mod:`._farkas`). Ill-conditioned data (relative ℓ2 margin
below 1e-3) whose first answer is not certified are re-solved: by the exact nearest-point
route (ℓ2), by simplex at the data's and at the margin's scale with a linear-algebra polish of
the vertex (ℓ1), or at the margin's scale (cvxpy).
"""

from __future__ import annotations

import numbers
import time
from typing import Any, Literal

import numpy as np
from scipy.optimize import linprog, nnls

from implicitbias._errors import SolverError
from implicitbias._validation import (
    as_float_array,
    as_pm1_labels,
    check_choice,
    check_int,
    check_positive,
    check_same_length,
    fail,
    fail_type,
)
from implicitbias.rich_regime._certificate import Certificate
from implicitbias.rich_regime._cvxpy import check_cvxpy_solver
from implicitbias.rich_regime._farkas import ILL_MARGIN, decide_separable, relative_l2_margin
from implicitbias.rich_regime._l1_lp import l1_colgen, l1_rescue
from implicitbias.rich_regime._lp_cvxpy import cvxpy_max_margin
from implicitbias.rich_regime._mm_common import (
    HINT,
    Infeasible,
    l2_nearest_point,
    zero_rows,
)
from implicitbias.rich_regime._results import MaxMarginResult
from implicitbias.rich_regime._scaling import pow2_scale, rescaled

__all__ = ["l1_max_margin", "l2_max_margin", "lp_max_margin"]

#: The ``solver`` options of :func:`l1_max_margin`, :func:`l2_max_margin` and
#: :func:`lp_max_margin`.
L1Solver = Literal["auto", "highs", "cvxpy"]
L2Solver = Literal["auto", "nnls", "cvxpy"]
LpSolver = Literal["auto", "cvxpy"]


def _check_data(X: Any, y: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
    X = as_float_array(X, func, "X", ndim=2)
    y = as_pm1_labels(y, func, "y")
    check_same_length(func, X=X, y=y)
    return X, y


def _check_cvxpy_arg(cvxpy_solver: Any, func: str) -> None:
    """An unknown ``cvxpy_solver`` is an error on every route, also where cvxpy is not used."""
    if cvxpy_solver is not None:
        check_cvxpy_solver(cvxpy_solver, func, "CLARABEL")


def l1_max_margin(
    X: Any,
    y: Any,
    *,
    solver: L1Solver = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-7,
    max_iter: int = 200,
) -> MaxMarginResult:
    r"""ℓ1 max-margin linear classifier without bias (the diagonal network's rich-regime bias).

    .. math::

        \min_{w \in \mathbb{R}^d} \|w\|_1 \quad \text{s.t.} \quad y_i \langle w, x_i\rangle
        \ge 1, \quad i = 1, \dots, n,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\ \|X^\top(\mu \odot y)\|_\infty
    \le 1`. The unit-ℓ1 direction :math:`w/\|w\|_1` has the maximal ℓ1 margin
    :math:`1/\|w\|_1`. This is the global optimum of the margin problem (R1) of a depth-2
    diagonal linear network (Lyu et al. 2024, §4 of THEORY.md).

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`x_i`, :math:`y_i`    ``X[i]``, ``y[i]``
    :math:`w`                   ``result.w``
    :math:`\mu`                 ``result.dual``
    :math:`1/\|w\|_1`           ``result.margin``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one example per row.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    solver : {"auto", "highs", "cvxpy"}
        ``"highs"`` (the default for ``"auto"``): HiGHS dual simplex through
        :func:`scipy.optimize.linprog` on a working set of features, grown by column
        generation: all ``d`` features are priced with one product ``Xᵀ(μ ⊙ y)`` and the most
        violated ones (``|·| > 1 + tol``) are added; when none is left, ``μ`` is dual feasible,
        which certifies global optimality. An elastic slack keeps the restricted LPs feasible.
        ``"cvxpy"``: the LP written in cvxpy (reference route).
    cvxpy_solver : str, optional
        Name of an installed cvxpy solver for ``solver="cvxpy"`` (default ``"CLARABEL"``); an
        unknown name is refused on every route.
    tol : float
        Tolerance on the certified relative duality gap (and the pricing tolerance of column
        generation). A gap above ``tol`` but below ``1e-3`` gives status
        ``"optimal_inaccurate"`` and an :class:`~implicitbias.InaccurateSolutionWarning`. On
        data with a tiny relative margin, where float64 cannot evaluate the certificate to
        ``tol`` (each ``y_i⟨w, x_i⟩`` is uncertain by ~``ε·Σ_j |x_ij w_j|``), a gap within that
        rounding floor counts as optimal.
    max_iter : int
        Maximal number of column-generation rounds.

    Returns
    -------
    MaxMarginResult
        ``w`` (shape (d,), scaled so ``min_i y_i⟨w, x_i⟩ = 1``), ``margin``, ``norm``,
        ``dual`` (shape (n,)), ``support``, ``active_features``, certificate fields.

    Raises
    ------
    NotSeparableError
        If no ``w`` satisfies the constraints, only with a verified Farkas certificate:
        ``α ≥ 0``, ``Σα = 1``, ``‖Σ_i α_i y_i x_i‖ ≤ 1e-10 · Σ_i α_i ‖x_i‖`` (on at most
        rank + 1 examples where possible), in the message and on the error's ``.alpha``.
        Data separable with a relative margin of 1e-8 are solved, not refused.
    SolverError
        If the solver fails or its answer fails the duality-gap check (also when a backend
        reports "infeasible" on data that are separable).
    InvalidArgumentError
        For a bad argument, including an unknown ``cvxpy_solver``.

    Notes
    -----
    Scale-free: ``X`` is divided by the power of two nearest to ``max |X_ij|`` (an exact
    rescaling; data whose largest entry is within ``[1/16, 16]`` are used as given), solved,
    and the answer mapped back (``w / s``, ``μ / s``); the certificate is evaluated on the
    caller's ``X``. If the first answer is not certified and the data are ill conditioned
    (relative ℓ2 margin below 1e-3), the LP is re-solved by simplex in equivalent forms
    (variable scaled by the margin; rows scaled to unit size) and its vertex recomputed by
    linear algebra on the support.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.l1_max_margin(X, np.array([1.0, -1.0]))
    >>> res.w.round(6).tolist(), round(res.margin, 6)
    ([0.333333, 0.333333], 1.5)

    References
    ----------
    Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
    Induce Grokking*, ICLR 2024, arXiv:2311.18817. Lyu & Li, *Gradient Descent Maximizes the
    Margin of Homogeneous Neural Networks*, ICLR 2020, arXiv:1906.05890.
    """
    func = "l1_max_margin"
    t0 = time.perf_counter()
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "highs", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    max_iter = check_int(max_iter, func, "max_iter", minimum=1)
    _check_cvxpy_arg(cvxpy_solver, func)
    if solver == "cvxpy":
        return cvxpy_max_margin(X, y, 1.0, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0)
    s = pow2_scale(X)
    Xs = rescaled(X, s)  # exact: s is a power of two
    cert = Certificate(X, y, 1.0)
    route = "highs-colgen"
    it = 0
    first: Exception | None = None
    try:
        w, mu, c, it = l1_colgen(Xs, y, tol=tol, max_iter=max_iter, func=func, linprog=linprog)
        cert.add(w / s, mu / s, pricing=c)
    except Infeasible:
        decide_separable(Xs, y, func, " (HiGHS: the LP is infeasible)")  # raises if it is
        first = SolverError(
            f"{func}: HiGHS reported the LP infeasible, but the data are separable (the "
            f"origin is outside conv{{y_i x_i}}). {HINT}"
        )
    except SolverError as exc:
        first = exc
    if cert.ok(tol):
        return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=it, hint=HINT)
    if relative_l2_margin(Xs, y, func) < ILL_MARGIN:
        l1_rescue(Xs, y, s, cert, func, tol, linprog=linprog)
    if cert.primal is None and first is not None:
        raise first
    return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=it, hint=HINT)


# ----------------------------------------------------------------------------------------------
# ℓ2: least-distance programming by NNLS (Lawson & Hanson 1974, ch. 23)


def _l2_ldp(X: np.ndarray, y: np.ndarray, func: str) -> tuple[np.ndarray, np.ndarray, float]:
    """SVM dual coefficients a >= 0 (w = Xᵀ(a ⊙ y), ‖w‖² = Σ a) via LDP → NNLS, for X at unit
    scale (the caller rescales), and ``1 − Σu = 1/(1 + ‖w‖²)``, which is tiny (and ``a``
    inaccurate, by cancellation) for tiny margins. Raises :class:`Infeasible` if the LDP
    says infeasible."""
    n, d = X.shape
    if d > n:
        # w in the row space of X. With X Xᵀ = V Λ Vᵀ, X = B Qᵀ for B = V Λ^{1/2} and some Q
        # with orthonormal columns, so X w = B c for w = Q c: an n-dimensional LDP. (The Gram
        # matrix costs one BLAS-3 product; a QR of Xᵀ is far slower at d = 10⁵. It squares the
        # condition number, which the nearest-point route of ill-conditioned data avoids.)
        lam, V = np.linalg.eigh(X @ X.T)
        keep = lam > lam[-1] * n * np.finfo(np.float64).eps
        G = y[:, None] * (V[:, keep] * np.sqrt(lam[keep]))
    else:
        G = y[:, None] * X
    m = G.shape[1]
    E = np.vstack([G.T, np.ones((1, n))])
    f = np.zeros(m + 1)
    f[m] = 1.0
    u, _ = nnls(E, f, maxiter=max(50 * n, 1000))
    if not np.all(np.isfinite(u)) or np.any(u < 0):
        raise SolverError(
            f"{func}: scipy.optimize.nnls returned a non-finite or negative solution to the "
            f"least-distance problem. {HINT}"
        )
    denom = 1.0 - float(u.sum())  # = −r_{m+1} = 1/(1 + ‖w‖²); zero means infeasible constraints
    if not denom > 0.0:
        raise Infeasible()
    a = u / denom
    return a, X.T @ (a * y), denom


def l2_max_margin(
    X: Any,
    y: Any,
    *,
    solver: L2Solver = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-7,
) -> MaxMarginResult:
    r"""ℓ2 max-margin linear classifier without bias (hard-margin linear SVM, no intercept).

    .. math::

        \min_{w} \|w\|_2 \quad \text{s.t.} \quad y_i \langle w, x_i\rangle \ge 1,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\ \|X^\top(\mu\odot y)\|_2 \le 1`.
    The usual SVM coefficients :math:`a` (:math:`w = X^\top(a \odot y)`,
    :math:`\|w\|_2^2 = \sum a_i`) are ``result.dual * result.norm``. For a depth-2 diagonal
    network this is the kernel-regime (K1) predictor: its NTK at θ̄ = (1, 1) is 8⟨x, x'⟩.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`x_i`, :math:`y_i`    ``X[i]``, ``y[i]``
    :math:`w`                   ``result.w``
    :math:`\mu`                 ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs, one example per row.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    solver : {"auto", "nnls", "cvxpy"}
        ``"nnls"`` (the default for ``"auto"``): the problem as a least-distance program solved
        by Lawson–Hanson NNLS (:func:`scipy.optimize.nnls`), in the row space of ``X`` (via the
        Gram matrix) when ``d > n``; for ill-conditioned data (relative margin below 1e-3) also
        the exact nearest point of ``conv{y_i x_i}`` (NNLS on a QR reduction, rescaled by the
        margin) with ``w`` recomputed on the support vectors (route
        ``"nnls-ldp+nearest-point"``). ``"cvxpy"``: an SOCP in cvxpy (reference route).
    cvxpy_solver : str, optional
        Installed cvxpy solver for ``solver="cvxpy"`` (default ``"CLARABEL"``); an unknown name
        is refused on every route.
    tol : float
        Tolerance on the certified relative duality gap.

    Returns
    -------
    MaxMarginResult
        As for :func:`l1_max_margin`, with ``p = 2``.

    Raises
    ------
    NotSeparableError
        If the data are not linearly separable through the origin (with a Farkas
        certificate, see :func:`l1_max_margin`).

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.l2_max_margin(X, np.array([1.0, -1.0]))
    >>> res.w.round(6).tolist(), round(res.margin**2, 6)
    ([0.333333, 0.333333], 4.5)

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817 (the kernel regime, K1). Lawson & Hanson, *Solving
    Least Squares Problems*, 1974, ch. 23 (LDP by NNLS).
    """
    func = "l2_max_margin"
    t0 = time.perf_counter()
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "nnls", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    _check_cvxpy_arg(cvxpy_solver, func)
    if solver == "cvxpy":
        return cvxpy_max_margin(X, y, 2.0, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0)
    s = pow2_scale(X)
    Xs = rescaled(X, s)  # exact: s is a power of two
    zero_rows(Xs, y, func)
    cert = Certificate(X, y, 2.0)
    route = "nnls-ldp"
    first: Exception | None = None
    infeasible = False
    try:
        a, w, denom = _l2_ldp(Xs, y, func)
        nw = float(np.linalg.norm(w))
        if not nw > 0:
            raise SolverError(f"{func}: NNLS returned w = 0. {HINT}")
        cert.add(w / s, a / nw / s)
        if denom < 1e-6:  # margin < 1e-3 at unit scale: a carries ~eps/denom relative error
            l2_nearest_point(Xs, y, s, cert)
            route = "nnls-ldp+nearest-point"
    except Infeasible:
        infeasible = True
    except SolverError as exc:
        first = exc
    if cert.ok(tol):
        return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=0, hint=HINT)
    g = relative_l2_margin(Xs, y, func)  # NotSeparableError with a certificate
    if infeasible:
        first = SolverError(
            f"{func}: the least-distance problem was reported infeasible, but the data are "
            f"separable (relative l2 margin {g:.3g}). {HINT}"
        )
    if infeasible or g < ILL_MARGIN:
        l2_nearest_point(Xs, y, s, cert)
        route = "nnls-ldp+nearest-point"
    if cert.primal is None and first is not None:
        raise first
    return cert.result(func=func, route=route, tol=tol, t0=t0, iterations=0, hint=HINT)


# ----------------------------------------------------------------------------------------------
# ℓp (cvxpy: _lp_cvxpy.py)


def _check_p(p: Any, func: str) -> float:
    expect = "a real number p >= 1 or numpy.inf"
    if isinstance(p, (bool, np.bool_)) or not isinstance(p, numbers.Real):
        raise fail_type(func, "p", expect, p)
    v = float(p)
    if np.isnan(v) or v < 1.0:
        raise fail(func, "p", expect, repr(p), "p < 1 is not a norm (the problem is not convex).")
    return v


def lp_max_margin(
    X: Any,
    y: Any,
    *,
    p: float,
    solver: LpSolver = "auto",
    cvxpy_solver: str | None = None,
    tol: float = 1e-6,
) -> MaxMarginResult:
    r"""ℓp max-margin linear classifier without bias, for any :math:`p \ge 1` or :math:`p = \infty`.

    .. math::

        \min_{w} \|w\|_p \quad \text{s.t.} \quad y_i \langle w, x_i\rangle \ge 1,

    with dual :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\
    \|X^\top(\mu\odot y)\|_q \le 1`, :math:`1/p + 1/q = 1`.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`p`                   ``p``
    :math:`w`, :math:`\mu`      ``result.w``, ``result.dual``
    ==========================  ==================================

    Parameters
    ----------
    X : array_like of shape (n, d)
        Inputs.
    y : array_like of shape (n,)
        Labels in {-1, +1}.
    p : float
        The norm, ``p >= 1`` or ``numpy.inf``.
        Any value in ``[1, ∞]`` works, including ``p`` near 1 (``1.0001``) and very large
        (``1e6``): ``‖w‖_p ≤ t`` is posed with power cones of real exponent ``1/p``
        (exact; ``cvxpy.pnorm`` would round ``p`` to a fraction); where that is not certified
        to ``tol``, the limit problem (ℓ1 for ``p − 1 ≤ 1e-3``, ℓ∞ for ``p ≥ 1e3``) adds
        candidates, and beyond ``1 + 1e-12`` / ``1e12`` it is solved first (the norms then
        agree to float64 rounding).
    solver : {"auto", "cvxpy"}
        ``"auto"`` uses :func:`l1_max_margin` for ``p = 1``, :func:`l2_max_margin` for
        ``p = 2`` and cvxpy otherwise (for ``p = ∞`` on ill-conditioned data whose answer is
        not certified, also HiGHS simplex on the LP: route ``"cvxpy:CLARABEL+highs-linf"``);
        ``"cvxpy"`` always uses cvxpy only (for ``p ∉ {1, 2, ∞}`` a power-cone program).
    cvxpy_solver : str, optional
        Installed cvxpy solver (default ``"CLARABEL"``); an unknown name is refused on every
        route, and one that cannot handle the problem's cones (e.g. ``"HIGHS"`` for
        ``p = 3``) where cvxpy is used.
    tol : float
        Tolerance on the certified relative duality gap.

    Returns
    -------
    MaxMarginResult

    Raises
    ------
    InvalidArgumentError
        If ``p < 1`` or NaN, or ``cvxpy_solver`` is unknown or unsuited.
    InvalidArgumentTypeError
        If ``p`` is not a real number (a bool, a string).
    NotSeparableError
        If the data are not separable (with a Farkas certificate, see :func:`l1_max_margin`).
    SolverError
        If no route produces a certified answer (for example extremely ill-conditioned data
        on the power-cone route).

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> res = ib.lp_max_margin(X, np.array([1.0, -1.0]), p=np.inf)
    >>> res.w.round(6).tolist()
    [0.333333, 0.333333]

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817; Lyu & Li, ICLR 2020, arXiv:1906.05890.
    """
    func = "lp_max_margin"
    t0 = time.perf_counter()
    p = _check_p(p, func)
    X, y = _check_data(X, y, func)
    check_choice(solver, func, "solver", ("auto", "cvxpy"))
    tol = check_positive(tol, func, "tol")
    _check_cvxpy_arg(cvxpy_solver, func)
    if solver == "auto" and p == 1.0:
        return l1_max_margin(X, y, tol=tol)
    if solver == "auto" and p == 2.0:
        return l2_max_margin(X, y, tol=tol)
    return cvxpy_max_margin(
        X, y, p, func=func, cvxpy_solver=cvxpy_solver, tol=tol, t0=t0,
        highs_rescue=solver == "auto",
    )  # fmt: skip
