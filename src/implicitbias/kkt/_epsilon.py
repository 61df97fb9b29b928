r"""ε of candidate multipliers: the NTK at θ, the Gram form (Euler's identity) and the direct route.

For multipliers μ at the checked point ``t`` (θ̃ for classification, θ for regression) with
``Gμ = ∇_θ Σ_{i,a} c_{ia}(μ) f_a(t; x_i)``, Euler's identity turns the stationarity residual
into a quadratic in μ,

.. math::

    \varepsilon^2 = \lVert t - G\mu \rVert^2 = \lVert t\rVert^2 - 2 b^\top\mu + \mu^\top Q\mu,

with ``Q = GᵀG`` (from the NTK) and ``b = Gᵀt = L·q`` (from the outputs). :class:`GramForm`
holds ``(‖t‖², b, Q)`` and evaluates ε either from that formula (``"gram"``) or, when the formula
has cancelled to its rounding floor, directly with one vector-Jacobian product (``"direct"``).
:class:`Fit` is what a task's path (``_classification``, ``_regression``) hands to
:func:`~implicitbias.kkt_residuals` to build its report.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from implicitbias.kernel_regime import empirical_ntk
from implicitbias.kkt.margins import _Setup
from implicitbias.kkt.report import EpsilonMethod, NNLSRoute, ReportLoss

__all__ = ["EpsilonForm", "Fit", "GramForm", "ntk", "unit_roundoff"]


def unit_roundoff(dtype: torch.dtype) -> float:
    """Half the machine epsilon of ``dtype``."""
    return float(torch.finfo(dtype).eps) / 2


def _jacobian_ntk(s: _Setup, chunk_size: int | None) -> np.ndarray:
    """``(n·C, n·C)`` NTK from the explicit Jacobian (index ``i*C + a``)."""
    J = s.h.jacobian(s.X, chunk_size=chunk_size).to(torch.float64)
    J = J.reshape(s.n * s.C, -1)
    return (J @ J.T).cpu().numpy()


def ntk(s: _Setup, chunk_size: int | None) -> np.ndarray:
    """The NTK at the model's θ in float64, ``(n·C, n·C)`` indexed ``i*C + a``.

    Uses :func:`implicitbias.empirical_ntk`, whose closed-form and structured routes never form
    the ``n × p`` Jacobian; a kernel in another layout falls back to the explicit Jacobian.
    """
    m = s.n * s.C
    K = empirical_ntk(s.h.model, s.X, chunk_size=chunk_size)
    if tuple(K.shape) != (m, m):
        return _jacobian_ntk(s, chunk_size)
    K64 = K.detach().to(torch.float64).cpu().numpy()
    return 0.5 * (K64 + K64.T)


def _output_vjp(
    s: _Setup, theta: torch.Tensor, coef: np.ndarray, chunk_size: int | None
) -> torch.Tensor:
    """``∇_θ Σ_i Σ_a coef[i, a] f_a(θ; x_i)`` by reverse mode, in chunks of examples."""
    chunk = chunk_size or 1024
    X = s.X
    if theta.dtype == torch.float64 and X.is_floating_point():
        X = X.to(torch.float64)
    c_all = torch.as_tensor(coef, dtype=theta.dtype, device=theta.device)
    grad = torch.zeros_like(theta)
    for start in range(0, s.n, chunk):
        t = theta.detach().requires_grad_(True)
        out = s.h.function(t, X[start : start + chunk])
        c = c_all[start : start + chunk].reshape(out.shape)
        (g,) = torch.autograd.grad((out * c).sum(), t)
        grad += g
    return grad


def _direct_epsilon(
    s: _Setup, theta: torch.Tensor, coef: np.ndarray, chunk_size: int | None
) -> tuple[float, float]:
    """``‖θ − ∇_θ Σ coef·f(θ)‖`` evaluated directly (float64 when the model allows), and the
    unit roundoff it was evaluated in."""
    t64 = theta.detach().to(torch.float64)
    try:
        g = _output_vjp(s, t64, coef, chunk_size)
        u = unit_roundoff(torch.float64)
        r = t64 - g
    except RuntimeError:  # a module that cannot run in float64 (e.g. typed buffers)
        t = theta.detach().to(s.theta.dtype)
        g = _output_vjp(s, t, coef, chunk_size)
        u = unit_roundoff(t.dtype)
        r = (t - g).to(torch.float64)
    return float(r.norm()), u


def _gram_eps2(tt: float, b: np.ndarray, Q: np.ndarray, mu: np.ndarray) -> tuple[float, float]:
    """``‖t − Gμ‖² = ‖t‖² − 2bᵀμ + μᵀQμ`` and the magnitude of its terms (for the floor)."""
    Qmu = Q @ mu
    value = tt - 2.0 * float(b @ mu) + float(mu @ Qmu)
    magnitude = (
        tt + 2.0 * float(np.abs(b) @ np.abs(mu)) + float(np.abs(mu) @ (np.abs(Q) @ np.abs(mu)))
    )
    return value, magnitude


def identity(m: np.ndarray) -> np.ndarray:
    """The output coefficients (or table) of regression multipliers: μ itself."""
    return m


@dataclass(frozen=True)
class GramForm:
    r"""``ε(μ)² = ‖t‖² − 2bᵀμ + μᵀQμ`` at the checked point ``t``, and how to evaluate it.

    Attributes
    ----------
    s : _Setup
        The validated model and data.
    point : torch.Tensor
        The checked parameters ``t`` (θ̃ or θ), flat.
    tt : float
        ``‖t‖²``.
    Q, b : ndarray
        ``GᵀG`` (float64, symmetric) and ``Gᵀt``.
    unit_roundoff : float
        Unit roundoff of the NTK's dtype (sets the floor of the Gram formula).
    coefficients : callable
        ``μ ↦ c`` with ``Gμ = ∇_θ Σ_{i,a} c_{ia} f_a(t; x_i)`` (for the direct route).
    """

    s: _Setup
    point: torch.Tensor
    tt: float
    Q: np.ndarray
    b: np.ndarray
    unit_roundoff: float
    coefficients: Callable[[np.ndarray], np.ndarray]

    @property
    def norm(self) -> float:
        """``‖t‖ = √tt``, the scale of relative residuals."""
        return math.sqrt(self.tt)

    def relative(self, value: float) -> float:
        """``value / ‖t‖`` (``inf`` at ``t = 0``)."""
        norm = self.norm
        return value / norm if norm > 0 else math.inf

    def epsilon(
        self, mu: np.ndarray, *, direct: bool | None, chunk_size: int | None
    ) -> tuple[float, EpsilonMethod, float]:
        """``(ε, route, floor)``: ε of ``mu``, the route that evaluated it, and its accuracy.

        The Gram value is used unless ``direct=True`` or (``direct=None``) it is below 1000×
        its rounding floor ``√(8 u S)`` (``S`` the magnitude of its terms); the direct value
        ``‖t − ∇_θ Σ c·f(t)‖`` has floor ``8 u (‖t‖ + Σ|μ_i|‖g_i‖)``.
        """
        value, magnitude = _gram_eps2(self.tt, self.b, self.Q, mu)
        floor_gram = math.sqrt(8 * self.unit_roundoff * magnitude)
        eps_gram = math.sqrt(max(value, 0.0))
        if direct is False or (direct is None and eps_gram >= 1e3 * floor_gram):
            return eps_gram, "gram", floor_gram
        eps_d, u_d = _direct_epsilon(self.s, self.point, self.coefficients(mu), chunk_size)
        grad_norms = np.sqrt(np.maximum(np.diag(self.Q), 0.0))
        floor_d = 8 * u_d * (math.sqrt(self.tt) + float(np.abs(mu) @ grad_norms))
        return eps_d, "direct", floor_d


class EpsilonForm(Protocol):
    """How a route evaluates ε of candidate multipliers (:class:`GramForm`, or the working-set
    route's ``WorkingSetForm``)."""

    @property
    def tt(self) -> float: ...

    @property
    def norm(self) -> float: ...

    def relative(self, value: float) -> float: ...

    def epsilon(
        self, mu: np.ndarray, *, direct: bool | None, chunk_size: int | None
    ) -> tuple[float, EpsilonMethod, float]: ...


@dataclass(frozen=True)
class Fit:
    """A task's multipliers and the task-specific fields of its report.

    Built by ``_classification.margin_fit`` (binary, multiclass) or
    ``_regression.regression_fit``; :func:`~implicitbias.kkt_residuals` evaluates ε of ``mu``
    (and of ``wd_mu``) with ``form`` and builds the :class:`KKTReport` from the rest.
    """

    form: EpsilonForm
    mu: np.ndarray  # flat multipliers, one per constraint
    multipliers: np.ndarray  # the reported table of mu
    support: np.ndarray
    delta: float
    max_violation: float
    epsilon_min: float | None  # None: the reported ε is the minimum (least squares)
    active_threshold: float
    iterations: int
    n_constraints: int
    point_norm: float  # the report's rescaled_theta_norm
    loss: ReportLoss
    margins: np.ndarray | None
    q_min: float | None
    normalized_margin: float | None
    smoothed_margin: float | None
    wd_mu: np.ndarray | None  # route-(b) multipliers (flat), with weight_decay
    slack: np.ndarray | None  # q_c − 1 ≥ 0 per constraint; None: equality constraints
    table: Callable[[np.ndarray], np.ndarray]
    nnls_route: NNLSRoute  # how the multipliers were found
    constraints_touched: int  # constraints whose gradients entered a Gram
    epsilon_min_lower: float | None = None  # None: epsilon_min is exact

    def slackness(self, m: np.ndarray) -> float | None:
        """``max_c m_c (q_c − 1)`` (complementary slackness); ``None`` for regression."""
        if self.slack is None:
            return None
        return float(np.max(m * self.slack)) if m.size else 0.0
