r"""The matrix-free route of the margin NNLS: no Gram at all, memory ``O(m + p)``.

The smallest-ε multipliers solve :math:`\min_{\mu\ge0} \tfrac12\lVert\tilde\theta -
G^\top\mu\rVert^2` over all ``m`` constraints. When even the Gram of the NNLS *support* does
not fit the memory budget (the working-set route's limit; at paper-scale modular addition the
support runs to tens of thousands of constraints), this route works with products only: the
pullback :math:`G^\top\mu` (one reverse-mode pass over the data) and the directional
derivatives :math:`d = G r` (one forward-mode pass), with :math:`r = \tilde\theta - G^\top\mu`
and :math:`d = b - Q\mu`, the negative gradient of :math:`\tfrac12\mu^\top Q\mu - b^\top\mu`.

**Solver.** Accelerated projected gradient (FISTA, Beck & Teboulle 2009) with the Jacobi
scaling :math:`D = \mathrm{diag}(\lVert\nabla q_k\rVert^2)` and step :math:`1/\Lambda`,
:math:`\Lambda \ge \lambda_{\max}(D^{-1/2}QD^{-1/2})` from a power iteration (doubled if a
plain step ever goes up), and the function-value restart of O'Donoghue & Candès (2015). Every
``POLISH_EVERY`` steps conjugate gradients minimize over GPCG's free set :math:`\{\mu_k > 0 \text{
or } d_k > 0\}` (Moré & Toraldo 1991) for up to ``POLISH_STEPS`` products, followed by a
projected backtracking search along that step (kept only if it lowers ε).

**Certified bracket.** Every ``CHECK_EVERY`` steps (and at the end) a dual-feasible point
bounds :math:`\varepsilon_{\min}` from below. With :math:`c = \max_k (d_k + e_k)^+/b_k`
(``e_k`` the rounding bound of ``d_k``, ``b_k = ⟨∇q_k, θ̃⟩ = L q_k > 0`` by Euler's identity),
:math:`u = r - c\,\tilde\theta` satisfies :math:`Gu \le 0`, so weak duality
(:math:`\tfrac12\varepsilon_{\min}^2 = \max_{G\rho\le0} \langle\rho,\tilde\theta\rangle -
\tfrac12\lVert\rho\rVert^2`) gives :math:`\varepsilon_{\min}^2 \ge
\langle u,\tilde\theta\rangle^2/\lVert u\rVert^2`; and convexity with
:math:`b^\top\mu^* = \lVert\tilde\theta\rVert^2 - \varepsilon_{\min}^2` gives
:math:`f^* \ge (f(\mu) + d^\top\mu)/(1 - 2c)` for :math:`c < 1/2`. The larger of the two is
the lower bound; ``ε(μ)`` itself is the upper one. Both meet at the optimum (``c = 0``,
:math:`\langle r^*, \tilde\theta\rangle = \lVert r^*\rVert^2`). The solve stops when the
bracket is within ``rtol`` (or would be in exact arithmetic: only the products' rounding keeps
it open) or after ``steps`` products.

References
----------
A. Beck, M. Teboulle, A fast iterative shrinkage-thresholding algorithm for linear inverse
problems, SIAM J. Imaging Sciences 2 (2009).
B. O'Donoghue, E. Candès, Adaptive restart for accelerated gradient schemes, Found. Comput.
Math. 15 (2015).
J. J. Moré, G. Toraldo, On the solution of large quadratic programming problems with bound
constraints, SIAM J. Optimization 1 (1991).
"""

from __future__ import annotations

import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from implicitbias._errors import InaccurateSolutionWarning
from implicitbias.kkt._gradients import ConstraintGradients

__all__ = ["DEFAULT_STEPS", "MatrixFreeResult", "matrix_free_nnls", "solve_matrix_free"]

#: Default most products (one pullback and one forward-mode pass each) of the solve.
DEFAULT_STEPS = 1000
#: Steps between two certified brackets (each costs one more forward-mode pass).
CHECK_EVERY = 25
#: Steps between two conjugate-gradient solves on the current face, and their most products.
POLISH_EVERY = 50
POLISH_STEPS = 20
#: Most halvings of the projected search along a face step (each costs one pullback).
LINE_SEARCH = 8
#: Power-iteration products for λ_max(Q), and the safety factor on the estimate.
POWER_STEPS = 20
POWER_SAFETY = 1.1

_EPS = float(np.finfo(np.float64).eps)
#: Relative error allowed for a float64 sum of squares or dot product over ``p`` entries
#: (pairwise summation: about ``log2(p)·ε``; 64ε covers ``p`` up to ``2⁶⁴``).
REDUCTION_ERROR = 64 * _EPS
LOG = logging.getLogger("implicitbias.kkt")


@dataclass(frozen=True)
class MatrixFreeResult:
    """The matrix-free NNLS: multipliers and the certified bracket of ``ε_min``.

    ``epsilon`` is ``ε(mu)`` (the upper end), ``epsilon_lower`` a certified lower bound of
    the NNLS optimum over all constraints; ``status`` is ``"optimal"`` when the bracket met
    ``rtol``, else ``"step_limit"``.
    """

    mu: np.ndarray
    epsilon: float
    epsilon_lower: float
    steps: int
    status: str
    seconds: float


class _Products:
    """``r(μ) = θ̃ − Gᵀμ`` and ``d = G r`` with their costs counted."""

    def __init__(self, grads: ConstraintGradients, coefficients: Any) -> None:
        self.grads, self.coefficients = grads, coefficients
        self.point = grads.point
        self.count = 0

    def residual(self, mu: np.ndarray) -> torch.Tensor:
        return self.point - self.grads.pullback(self.coefficients(mu))

    def directional(self, r: torch.Tensor) -> np.ndarray:
        self.count += 1
        return self.grads.directional(r)

    def Q(self, v: np.ndarray) -> np.ndarray:
        """``Qv = G Gᵀ v``."""
        return self.directional(self.grads.pullback(self.coefficients(v)))


def _sq(t: torch.Tensor) -> float:
    return float(torch.sum(t.to(torch.float64) ** 2))


def _lambda_max(prod: _Products, pre: np.ndarray, count: int) -> float:
    """``λ_max(Q)`` from below by ``count`` power-iteration products from the all-ones vector
    (``Q`` is positive semidefinite; a step that proves too long later doubles the estimate)."""
    half = np.sqrt(pre)
    v = np.ones(pre.shape[0]) / math.sqrt(pre.shape[0])
    lam = 0.0
    for _ in range(count):
        w = half * prod.Q(half * v)
        lam = float(np.linalg.norm(w))
        if not lam > 0:
            return 0.0
        v = w / lam
    return lam


def lower_bound(
    tt: float,
    b: np.ndarray,
    mu: np.ndarray,
    eps2: float,
    r_theta: float,
    d: np.ndarray,
    err: np.ndarray,
    *,
    rounding: bool = True,
) -> float:
    """A certified lower bound of ``ε_min²`` from any ``μ`` (see the module docstring).

    ``eps2 = ‖r‖²``, ``r_theta = ⟨r, θ̃⟩``, ``d = G r`` and ``err`` its rounding bound. The
    scalars ``tt``, ``eps2`` and ``r_theta`` are float64 reductions, each taken to carry a
    relative error of at most ``REDUCTION_ERROR``; the two formulas, which cancel terms of
    size ``‖θ̃‖²``, are lowered by what that error can do to them. ``0`` is always a bound.
    ``rounding=False`` drops both allowances: the bound in exact arithmetic, which tells when
    only rounding keeps the bracket open.
    """
    if not rounding:
        err = np.zeros_like(d)
    c = max(0.0, float(np.max((d + err) / b))) if b.size else 0.0
    e = REDUCTION_ERROR if rounding else 0.0
    best = 0.0
    # weak duality at κ(r − cθ̃): ⟨u, θ̃⟩² / ‖u‖², numerator lowered and denominator raised
    u_theta = r_theta - c * tt
    u_theta -= e * (abs(r_theta) + c * tt)
    u_sq = eps2 - 2.0 * c * r_theta + c * c * tt
    u_sq += e * (eps2 + 2.0 * c * abs(r_theta) + c * c * tt)
    if u_theta > 0 and u_sq > 0:
        best = u_theta * u_theta / u_sq
    if c < 0.5:  # convexity: f* ≥ (f + dᵀμ)/(1 − 2c)
        f = 0.5 * (eps2 - tt) - 0.5 * e * (eps2 + tt)
        dmu = float(d @ mu) - float(err @ np.abs(mu))
        dmu -= e * float(np.abs(d) @ np.abs(mu))
        best = max(best, tt * (1.0 - e) + 2.0 * (f + dmu) / (1.0 - 2.0 * c))
    return max(best, 0.0)


def matrix_free_nnls(
    grads: ConstraintGradients,
    b: np.ndarray,
    tt: float,
    coefficients: Any,
    norms: np.ndarray,
    *,
    mu0: np.ndarray | None = None,
    steps: int = DEFAULT_STEPS,
    rtol: float = 1e-6,
) -> MatrixFreeResult:
    """``min_{μ ≥ 0} ½‖θ̃ − Gᵀμ‖²`` over all constraints with products only.

    Parameters
    ----------
    grads : ConstraintGradients
        The constraints' gradients at θ̃.
    b : ndarray of shape (m,)
        ``L·q(θ̃)`` (positive).
    tt : float
        ``‖θ̃‖²``.
    coefficients : callable
        Multipliers ``(m,)`` ↦ output coefficients (``Gᵀμ = ∇ Σ c·f``).
    norms : ndarray of shape (m,)
        ``‖∇q_k‖``, for the rounding bounds of the products.
    mu0 : ndarray of shape (m,), optional
        A non-negative start (e.g. the working set's last multipliers).
    steps : int
        Most forward-mode passes (each step costs one, and one pullback).
    rtol : float
        Stop when ``(ε(μ) − ε_lower)/ε(μ) ≤ rtol``.
    """
    t_start = time.perf_counter()
    m = int(b.shape[0])
    prod = _Products(grads, coefficients)
    u = max(_EPS, grads.unit_roundoff)
    theta = prod.point
    # Jacobi scaling: a step of d_k / (Λ‖∇q_k‖²), Λ ≥ λ_max(D^{-1/2} Q D^{-1/2}); a short
    # budget spends at most a fifth on Λ (an underestimate is caught below)
    sq = np.asarray(norms, dtype=np.float64) ** 2
    pre = np.divide(1.0, sq, out=np.zeros(m), where=sq > 0)
    n_power = min(POWER_STEPS, max(1, steps // 5)) if steps > 1 else 0
    lam = _lambda_max(prod, pre, n_power) * POWER_SAFETY if n_power else math.inf
    if not lam > 0:  # every gradient is zero: μ = 0 is optimal, ε = ‖θ̃‖
        return MatrixFreeResult(np.zeros(m), math.sqrt(tt), math.sqrt(tt), prod.count, "optimal",
                                time.perf_counter() - t_start)  # fmt: skip

    def state(x: np.ndarray) -> tuple[torch.Tensor, float]:
        r = prod.residual(x)
        return r, _sq(r)

    ideal2 = 0.0  # the largest bound in exact arithmetic (for the stopping rule only)

    def bracket(x: np.ndarray, r: torch.Tensor, eps2: float) -> float:
        nonlocal ideal2
        d = prod.directional(r)
        scale = math.sqrt(tt) + float(np.abs(x) @ norms)
        err = 4.0 * u * norms * (scale + math.sqrt(eps2))
        r_theta = float(torch.dot(r.to(torch.float64), theta.to(torch.float64)))
        ideal2 = max(ideal2, lower_bound(tt, b, x, eps2, r_theta, d, err, rounding=False))
        return lower_bound(tt, b, x, eps2, r_theta, d, err)

    def closed(eps2: float) -> bool:
        """The bracket is within ``rtol``, or would be but for rounding."""
        eps = math.sqrt(eps2)
        return eps - math.sqrt(max(lower2, ideal2)) <= rtol * eps

    mu = np.zeros(m) if mu0 is None else np.maximum(np.asarray(mu0, dtype=np.float64), 0.0)
    r_mu, e_mu = state(mu)
    best = (mu, e_mu, r_mu)
    lower2 = 0.0
    y, r_y, at_mu = mu, r_mu, True
    t = 1.0
    status = "step_limit"
    k = 0
    while prod.count < steps - 1:  # one product is kept for the last bracket
        k += 1
        d = prod.directional(r_y)
        new = np.maximum(y + pre * d / lam, 0.0)
        r_new, e_new = state(new)
        # rounding of ‖r‖²: r carries about u·(‖θ̃‖ + Σ|μ_k|‖∇q_k‖) per entry
        noise = 16.0 * u * math.sqrt(e_mu) * (math.sqrt(tt) + float(new @ norms))
        if e_new > e_mu + noise or (e_new > e_mu and not at_mu):
            t = 1.0  # restart the momentum from μ itself
            if at_mu:  # a plain projected-gradient step went up: the step was too long
                lam *= 2.0
            y, r_y, at_mu = mu, r_mu, True
            continue
        at_mu = False
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        beta = (t - 1.0) / t_new
        y = new + beta * (new - mu)
        r_y = r_new + beta * (r_new - r_mu)
        mu, r_mu, e_mu, t = new, r_new, e_new, t_new
        if e_mu < best[1]:
            best = (mu, e_mu, r_mu)
        if k % POLISH_EVERY == 0 and prod.count + POLISH_STEPS + 2 < steps:
            w = _face_step(prod, mu, r_mu)
            if w is not None:
                # the face's minimizer bounds ε_min from below even where it is negative
                r_w, e_w = state(w)
                lower2 = max(lower2, bracket(w, r_w, e_w))
                # projected search along the face step: μ + α(w − μ), α = 1, ½, ¼, ...
                for alpha in 0.5 ** np.arange(LINE_SEARCH):
                    p_mu = np.maximum(mu + alpha * (w - mu), 0.0)
                    p_r, p_e = state(p_mu)
                    if p_e < e_mu:
                        break
                LOG.debug("matrix-free NNLS: face step (α = %g) %.10g -> %.10g", alpha, e_mu, p_e)
                if p_e < e_mu:
                    mu, r_mu, e_mu = p_mu, p_r, p_e
                    y, r_y, t, at_mu = mu, r_mu, 1.0, True
                    if e_mu < best[1]:
                        best = (mu, e_mu, r_mu)
        if k % CHECK_EVERY == 0 and prod.count < steps - 1:
            low = bracket(best[0], best[2], best[1])
            lower2 = max(lower2, low)
            LOG.debug(
                "matrix-free NNLS: %d products, ε %.6g, lower %.6g, support %d",
                prod.count, math.sqrt(best[1]), math.sqrt(lower2), np.count_nonzero(best[0]),
            )  # fmt: skip
            if closed(best[1]):
                status = "optimal"
                break
    mu, e_mu, r_mu = best
    if status != "optimal":
        low = bracket(mu, r_mu, e_mu)
        lower2 = max(lower2, low)
        if closed(e_mu):
            status = "optimal"
    eps = math.sqrt(e_mu)
    return MatrixFreeResult(mu, eps, min(eps, math.sqrt(lower2)), prod.count, status,
                            time.perf_counter() - t_start)  # fmt: skip


def _face_step(prod: _Products, mu: np.ndarray, r: torch.Tensor) -> np.ndarray | None:
    """Conjugate gradients on the free set ``F = {μ_k > 0 or d_k > 0}`` (GPCG's): ``μ + w``
    with ``w`` minimizing ``½ wᵀQ_FF w − d_Fᵀw`` from 0 in up to ``POLISH_STEPS`` products,
    unprojected; ``None`` on an empty set."""
    d = prod.directional(r)
    face = (mu > 0) | (d > 0)
    if not face.any():
        return None
    res = np.where(face, d, 0.0)
    w = np.zeros_like(mu)
    p = res.copy()
    rr = float(res @ res)
    for _ in range(POLISH_STEPS - 1):
        if not rr > 0:
            break
        Qp = np.where(face, prod.Q(p), 0.0)
        pQp = float(p @ Qp)
        if not pQp > 0:
            break
        a = rr / pQp
        w += a * p
        res -= a * Qp
        rr_new = float(res @ res)
        p = res + (rr_new / rr) * p
        rr = rr_new
    return mu + w


def solve_matrix_free(
    solver: Any, tt: float, *, steps: int, mu0: np.ndarray | None
) -> tuple[np.ndarray, float, float, float, int]:
    """The matrix-free route of :func:`~implicitbias.kkt_residuals`: the NNLS over all
    constraints of a :class:`._working_set.WorkingSetSolver`'s problem, from ``mu0``.

    Returns ``(μ, ε_min, ε_min_lower, τ, products)`` with ``τ`` the largest slack in the
    support (no near-active restriction); warns when the bracket is wider than 1e-6.
    """
    norms = solver.cache.norms()
    res = matrix_free_nnls(
        solver.grads, solver.b, tt, solver.coefficients, norms, mu0=mu0, steps=steps
    )
    if res.status != "optimal":
        width = (res.epsilon - res.epsilon_lower) / res.epsilon if res.epsilon > 0 else 0.0
        warnings.warn(
            f"kkt_residuals: the matrix-free NNLS stopped after {res.steps} products with "
            f"epsilon_min in [{res.epsilon_lower:.6g}, {res.epsilon:.6g}] (relative width "
            f"{width:.2g}); raise matrix_free_steps for a tighter bracket. epsilon and delta "
            "are exact for the reported multipliers.",
            InaccurateSolutionWarning,
            stacklevel=5,
        )
    support = np.flatnonzero(res.mu > 0)
    tau = float(solver.slack[support].max()) if support.size else math.inf
    return res.mu, res.epsilon, res.epsilon_lower, tau, res.steps
