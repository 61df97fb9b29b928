r"""The multipliers of the interpolation problem ``min ½‖θ‖² s.t. f(θ; x_i) = y_i`` at θ.

Equality constraints: the multipliers are free in sign and solve ``Kμ = L f(θ)`` in the
least-squares sense (minimum-norm μ, :func:`least_squares`), which minimizes
``ε(μ)² = ‖θ‖² − 2L fᵀμ + μᵀKμ`` (:mod:`._epsilon`). Route (b), for the mean squared error
with weight decay λ: ``μ_i = −2(f_i − y_i)/(nλ)``.
"""

from __future__ import annotations

import math

import numpy as np

from implicitbias.kkt._epsilon import Fit, GramForm, identity
from implicitbias.kkt.margins import _Setup

__all__ = ["least_squares", "regression_fit"]


def least_squares(Q: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
    """Minimum-norm solution of ``Qμ = b`` (``Q`` PSD) by a truncated eigendecomposition."""
    w, V = np.linalg.eigh(Q)
    cutoff = max(float(w.max()), 0.0) * max(Q.shape[0], 1) * max(u, float(np.finfo(float).eps))
    keep = w > cutoff
    return V[:, keep] @ ((V[:, keep].T @ b) / w[keep])


def regression_fit(
    s: _Setup, K: np.ndarray, u_K: float, *, weight_decay: float | None
) -> Fit:
    """The least-squares multipliers of the interpolation problem at θ.

    Parameters
    ----------
    s : _Setup
        Validated model and data (task ``"regression"``).
    K : ndarray of shape (n, n)
        The NTK at θ (float64).
    u_K : float
        Unit roundoff of the NTK's dtype.
    weight_decay : float, optional
        λ of route (b).
    """
    f = s.outputs
    tt = s.theta_norm**2
    b = s.L * f
    mu = least_squares(K, b, u_K)
    max_res = float(np.max(np.abs(f - s.y)))
    scale = max(float(np.abs(mu).max()), 1e-300)
    wd_mu = None if weight_decay is None else -2.0 * (f - s.y) / (s.n * weight_decay)
    return Fit(
        form=GramForm(s, s.theta, tt, K, b, u_K, identity),
        mu=mu,
        multipliers=mu,
        support=np.flatnonzero(np.abs(mu) > 1e-12 * scale),
        delta=max_res,
        max_violation=max_res,
        epsilon_min=None,
        active_threshold=math.inf,
        iterations=0,
        n_constraints=s.n,
        point_norm=s.theta_norm,
        loss="squared",
        margins=None,
        q_min=None,
        normalized_margin=None,
        smoothed_margin=None,
        wd_mu=wd_mu,
        slack=None,
        table=identity,
        nnls_route="dense",
        constraints_touched=s.n,
    )
