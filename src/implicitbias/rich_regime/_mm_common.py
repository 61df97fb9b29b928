"""Shared pieces of the max-margin routes: the infeasibility signal, equivalent rescalings of
the constraints, and the linear-algebra polish of LP vertices and of the ℓ2 nearest point."""

from __future__ import annotations

import numpy as np

from implicitbias.rich_regime._certificate import Certificate
from implicitbias.rich_regime._farkas import decide_separable, hull_min_norm
from implicitbias.rich_regime._results import nonzero_indices
from implicitbias.rich_regime._scaling import pow2_scale

__all__ = [
    "HIGHS_OPTIONS",
    "HINT",
    "Infeasible",
    "least_norm_on",
    "l2_nearest_point",
    "rescalings",
    "vertex_polish_l1",
    "zero_rows",
]

HIGHS_OPTIONS = {
    "primal_feasibility_tolerance": 1e-10,
    "dual_feasibility_tolerance": 1e-10,
}
HINT = "Try solver='cvxpy' (optionally with another cvxpy_solver) or rescale the data."


class Infeasible(Exception):
    """A backend reported the (full) problem infeasible; to be checked against a certificate."""


def vertex_polish_l1(
    A: np.ndarray, w: np.ndarray, mu: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Recompute the vertex of an LP answer by linear algebra: on the support vectors S and
    active features J, ``A_SJ w_J = 1`` and ``A_SJᵀ μ_S = sign(w_J)`` (least squares; the
    certificate judges the result)."""
    J = nonzero_indices(w, 1e-9)
    S = nonzero_indices(mu, 1e-9)
    if J.size == 0 or S.size == 0:
        return None
    B = A[np.ix_(S, J)]
    if not np.all(np.any(B != 0, axis=1)):
        return None
    D = 1.0 / np.linalg.norm(B, axis=1)  # row scales are not rank deficiency (see below)
    w_J, *_ = np.linalg.lstsq(D[:, None] * B, D, rcond=None)
    nu_S, *_ = np.linalg.lstsq((D[:, None] * B).T, np.sign(w[J]), rcond=None)
    mu_S = D * nu_S
    w2 = np.zeros_like(w)
    w2[J] = w_J
    mu2 = np.zeros_like(mu)
    mu2[S] = np.maximum(mu_S, 0.0)
    return w2, mu2


def rescalings(A: np.ndarray, g: float) -> list[tuple[np.ndarray, float]]:
    """Equivalent forms ``(D_i/k)⟨w', a_i⟩ ≥ D_i`` (``w = w'/k``, ``μ = D ⊙ ν / k``) of the
    constraints ``⟨w, a_i⟩ ≥ 1`` to retry an ill-conditioned LP with: as given; with the
    variable scaled by the margin ``g`` (``w'`` of size ~1); with each row scaled by
    ``1/max_j |a_ij|`` (HiGHS drops matrix entries below 1e-9; its tolerances are absolute).
    All factors are powers of two."""
    n = A.shape[0]
    one = np.ones(n)
    rows = 1.0 / np.array([pow2_scale(a, keep=1.0) for a in A])
    return [(one, 1.0), (one, pow2_scale(np.array([g]), keep=1.0)), (rows, 1.0)]


def l2_nearest_point(Xs: np.ndarray, y: np.ndarray, s: float, cert: Certificate) -> None:
    """Ill-conditioned ℓ2 data: ``w* = v/‖v‖²`` for the point ``v`` of ``conv{y_i x_i}``
    nearest to the origin (exact NNLS on a QR reduction, rescaled by the margin), with ``w``
    recomputed in the primal as the least-norm solution of ``y_i⟨w, x_i⟩ = 1`` on the
    support vectors (no cancellation in ``Σ a_i y_i x_i``); multipliers ``μ = α/‖v‖``."""
    A = y[:, None] * Xs
    alpha, g = hull_min_norm(A)
    if not g > 0:
        return
    cert.add((A.T @ alpha) / g**2 / s, alpha / g / s)
    S = alpha > 0
    for _ in range(5):
        # add the constraints the least-norm w violates (support vectors NNLS left at 0)
        w_S = least_norm_on(A[S])
        cert.add(w_S / s, None)
        low = (A @ w_S < 1.0 - 1e-9) & ~S
        if not low.any():
            break
        S |= low


def least_norm_on(B: np.ndarray) -> np.ndarray:
    """Least-norm ``w`` with ``B w = 1``, the rows normalized first (``D B w = D 1``): a row
    of size 1e-20 beside rows of size 1 is a scale, not a rank deficiency."""
    D = 1.0 / np.linalg.norm(B, axis=1)
    w, *_ = np.linalg.lstsq(D[:, None] * B, D, rcond=None)
    return w


def zero_rows(Xs: np.ndarray, y: np.ndarray, func: str) -> None:
    """An example x_i = 0 can never have y_i⟨w, x_i⟩ >= 1: not separable, certificate e_i."""
    if not np.all(np.any(Xs != 0.0, axis=1)):
        decide_separable(Xs, y, func)
