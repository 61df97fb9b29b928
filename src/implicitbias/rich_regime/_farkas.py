"""Separability with a certificate: the minimum-norm point of a convex hull, and Farkas (Gordan).

Some ``w`` has ``y_i ⟨w, x_i⟩ > 0`` for all ``i`` (the data are linearly separable through the
origin) exactly when **no** ``α ≥ 0``, ``Σα = 1`` has ``Σ_i α_i y_i x_i = 0`` (Gordan's
theorem). Both sides are decided by one problem: the point of ``conv{y_i x_i}`` nearest to the
origin. Its distance is the ℓ2 margin of the data; if it is zero, the minimizing ``α`` is the
certificate of non-separability.

The distance is computed by Lawson–Hanson NNLS on the least-distance form
``min_{u ≥ 0} ‖Aᵀu‖² + (Σu − 1)²`` (whose minimizer is ``u = α/(1 + ‖Aᵀα‖²)`` for the
minimum-norm ``α``), reading ``α = u / Σu`` and ``‖Aᵀα‖`` directly instead of the
cancellation-prone ``1 − Σu``; when the distance is tiny the problem is solved again with
``A`` rescaled by it, where NNLS is well conditioned. For ``d > n`` the rows are first reduced
by a QR factorization of ``Aᵀ`` (``‖Aᵀα‖ = ‖Rα‖`` exactly; a Gram matrix would square the
condition number and lose half the digits of a small distance).
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linprog, nnls

from implicitbias._errors import NotSeparableError, SolverError

__all__ = [
    "CERT_RTOL",
    "ILL_MARGIN",
    "hull_min_norm",
    "decide_separable",
    "not_separable_error",
    "relative_l2_margin",
]

#: A combination counts as a certificate of non-separability when, in every coordinate j,
#: ``|Σ α_i y_i x_ij| ≤ CERT_RTOL · Σ α_i |x_ij|`` (``α ≥ 0``, ``Σα = 1``): the vectors cancel
#: to ten digits feature by feature, whatever the features' units (a Euclidean criterion would
#: let a feature 1e-6 times smaller than another go uncancelled). Data separable with a
#: relative ℓ2 margin above this are never called non-separable.
CERT_RTOL = 1e-10
#: Below this relative ℓ2 margin a max-margin problem counts as ill conditioned: an answer that
#: is not certified is retried in equivalent forms and polished (above it, reported as is).
ILL_MARGIN = 1e-3


def hull_min_norm(A: np.ndarray) -> tuple[np.ndarray, float]:
    """``α`` in the simplex minimizing ``‖Aᵀα‖₂``, and that norm (rows of ``A`` are points).

    Raises :class:`SolverError` if NNLS returns nothing usable.
    """
    n, d = A.shape
    # ‖Aᵀα‖ = ‖Rα‖ (mode="r" returns the array R alone)
    R: np.ndarray = np.asarray(np.linalg.qr(A.T, mode="r")) if d > n else A.T
    m = R.shape[0]
    f = np.zeros(m + 1)
    f[m] = 1.0
    best: tuple[np.ndarray, float] | None = None
    t = 1.0
    for _ in range(6):
        E = np.vstack([R / t, np.ones((1, n))])
        try:
            u, _ = nnls(E, f, maxiter=max(50 * n, 1000))
        except RuntimeError:  # iteration limit
            break
        s = float(u.sum())
        if not (np.isfinite(s) and s > 0.0):
            break
        alpha = u / s
        g = float(np.linalg.norm(R @ alpha))
        if best is None or g <= best[1]:
            best = (alpha, g)
        if g == 0.0 or 0.5 <= g / t <= 2.0:
            break
        t = g  # solve again with the points scaled to distance ~1 from the origin
    if best is None:
        raise SolverError(
            "NNLS returned no usable point on the convex hull of the examples y_i x_i "
            f"({n} examples, {d} features)."
        )
    return best


def _row_norms(X: np.ndarray) -> np.ndarray:
    top = float(np.max(np.abs(X))) if X.size else 0.0
    if top == 0.0:
        return np.zeros(X.shape[0])
    return top * np.linalg.norm(X / top, axis=1)


def _unit_columns(X: np.ndarray) -> np.ndarray:
    """``X`` with every column divided by a power of two near its largest entry (exact).

    Separability and certificates do not depend on the units of the features (``w_j → w_j /
    c_j``; ``Σ α_i y_i x_i = 0`` in every coordinate), but a Euclidean distance does: with
    one feature in units 1e6 times larger than another, a combination that cancels the large
    feature looks like a certificate while the small one does not cancel at all. Deciding on
    unit-size features removes that. Falls back to ``X`` if the rescaling would underflow a
    row to zero (features spanning more than ~1e600).
    """
    top = np.max(np.abs(X), axis=0)
    scale = np.ones(X.shape[1])
    nz = top > 0
    _, e = np.frexp(top[nz])
    scale[nz] = np.ldexp(1.0, -np.clip(e, -1000, 1000))
    Xc = X * scale
    if np.array_equal(np.any(Xc != 0, axis=1), np.any(X != 0, axis=1)):
        return Xc
    return X  # pragma: no cover - absurd dynamic range within one feature


def _euclidean_residual(X: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> float:
    """``‖Σ α_i y_i x_i‖₂ / Σ α_i ‖x_i‖₂`` (the figure in the message; at most
    :func:`certificate_residual`)."""
    rn = _row_norms(X)
    den = float(alpha @ rn)
    if den == 0.0:
        return 0.0
    top = float(np.max(np.abs(X)))
    return float(np.linalg.norm((X / top).T @ (alpha * y))) * top / den


def certificate_residual(X: np.ndarray, y: np.ndarray, alpha: np.ndarray) -> float:
    """``max_j |Σ_i α_i y_i x_ij| / Σ_i α_i |x_ij|``: how far the combination is from
    cancelling, coordinate by coordinate, relative to the size of its terms (0 when every
    term is 0). Invariant under rescaling rows (through ``α``) and columns; a certificate
    that is exact in real arithmetic evaluates to a few units of rounding."""
    Xc = _unit_columns(X)
    v = np.abs(Xc.T @ (alpha * y))
    den = np.abs(Xc).T @ alpha
    pos = den > 0
    if not np.any(pos):
        return 0.0
    if np.any(v[~pos] > 0):  # pragma: no cover - v_j = 0 whenever every term is 0
        return float("inf")
    return float(np.max(v[pos] / den[pos]))


def not_separable_error(
    func: str, alpha: np.ndarray, residual: float, detail: str = ""
) -> NotSeparableError:
    """The error, with the certificate in its message and on ``.alpha`` / ``.residual``."""
    idx = np.flatnonzero(alpha > 0)
    shown = ", ".join(str(int(i)) for i in idx[:8]) + (", ..." if idx.size > 8 else "")
    err = NotSeparableError(
        f"{func}: the data are not linearly separable by a linear classifier without bias "
        f"(no w satisfies y_i <w, x_i> >= 1 for all i){detail}. Certificate (Farkas/Gordan): "
        f"alpha >= 0 with sum(alpha) = 1 on {idx.size} examples (indices {shown}) gives "
        f"||sum_i alpha_i y_i x_i|| = {residual:.2g} * sum_i alpha_i ||x_i||, so "
        "sum_i alpha_i y_i <w, x_i> = 0 for every w; the error's .alpha attribute holds alpha. "
        "The max-margin problem has no solution; check the labels, or use features in which "
        "the classes are separable."
    )
    err.alpha = alpha  # type: ignore[attr-defined]
    err.residual = residual  # type: ignore[attr-defined]
    return err


def _sparse_certificate(A: np.ndarray, alpha: np.ndarray) -> np.ndarray | None:
    """A certificate on at most rank + 1 examples (Carathéodory), easier to read than the
    NNLS one: a vertex of ``{α ≥ 0 : Aᵀα = 0, Σα = 1}`` on the NNLS support by simplex,
    then solved exactly on its support. None if that fails (the NNLS one is used)."""
    S = np.flatnonzero(alpha > 0)
    if S.size <= 2:
        return None
    B = np.vstack([A[S].T, np.ones((1, S.size))])
    rhs = np.zeros(B.shape[0])
    rhs[-1] = 1.0
    try:
        res = linprog(np.zeros(S.size), A_eq=B, b_eq=rhs, bounds=(0, None), method="highs")
    except ValueError:  # pragma: no cover - HiGHS refused the model
        return None
    if res.status != 0:
        return None
    V = S[np.asarray(res.x) > 0]
    if V.size == 0 or V.size >= S.size:
        return None
    Bv = np.vstack([A[V].T, np.ones((1, V.size))])
    a_V, *_ = np.linalg.lstsq(Bv, rhs, rcond=None)
    if not np.all(a_V > 0):
        return None
    out = np.zeros_like(alpha)
    out[V] = a_V
    return out


def decide_separable(X: np.ndarray, y: np.ndarray, func: str, detail: str = "") -> float:
    """Raise :class:`NotSeparableError` with a verified certificate, or return the relative
    ℓ2 margin ``ĝ > 0`` of the row-normalized data with unit-size features (the distance of
    the origin from ``conv{y_i x̃_i / ‖x̃_i‖}``, ``x̃_ij = x_ij / max_k |x_kj|`` up to a power
    of two). A certificate must cancel in every coordinate to ``CERT_RTOL`` relative to the
    size of that coordinate's terms (:func:`certificate_residual`).

    Raises :class:`SolverError` when neither side can be established in float64.
    """
    n = X.shape[0]
    zero = np.flatnonzero(~np.any(X != 0, axis=1))
    if zero.size:
        alpha = np.zeros(n)
        alpha[zero[0]] = 1.0
        raise not_separable_error(
            func, alpha, 0.0, f" (example {int(zero[0])} is x = 0, so y <w, x> = 0 < 1){detail}"
        )
    Xc = _unit_columns(X)  # features in one unit: see _unit_columns
    rn = _row_norms(Xc)
    A = (y / rn)[:, None] * Xc
    alpha_hat, g = hull_min_norm(A)
    if g > CERT_RTOL:
        return g
    resid = np.inf
    for candidate in (_sparse_certificate(A, alpha_hat), alpha_hat):
        if candidate is None:
            continue
        alpha = candidate / rn
        alpha = alpha / alpha.sum()
        resid = certificate_residual(X, y, alpha)
        if resid <= CERT_RTOL:
            raise not_separable_error(func, alpha, _euclidean_residual(X, y, alpha), detail)
    raise SolverError(
        f"{func}: cannot decide in float64 whether the data are separable: the nearest point "
        f"of conv{{y_i x_i / ||x_i||}} (features at unit scale) to the origin is at distance {g:.2g}, but the "
        f"combination found cancels only to {resid:.2g} (certificates need <= {CERT_RTOL:g}). "
        "The classes touch to within rounding; rescale or clean the features."
    )


def relative_l2_margin(Xs: np.ndarray, y: np.ndarray, func: str) -> float:
    """ℓ2 margin of the (unit-scale) data relative to the largest example norm, from the
    nearest point of ``conv{y_i x_i}``; raises :class:`NotSeparableError` with a verified
    certificate if the data are not separable."""
    A = y[:, None] * Xs
    _, g = hull_min_norm(A)
    top = float(np.max(np.linalg.norm(A, axis=1)))
    if g <= CERT_RTOL * top:
        decide_separable(Xs, y, func)  # raises with a certificate, or the rows are tiny
    return g / top if top > 0 else 0.0
