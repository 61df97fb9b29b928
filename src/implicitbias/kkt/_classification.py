r"""The multipliers of a margin problem (binary or multiclass) at the rescaled point θ̃.

The margin problem ``min ½‖θ‖² s.t. q_c(θ) ≥ 1`` has one constraint per example (binary,
``q_i = y_i f_i``) or per pair (multiclass, ``q_ij = f_{y_i} − f_j``, ``j ≠ y_i``). At
``θ̃ = θ / q_min^{1/L}`` (``min_c q_c(θ̃) = 1``) the multipliers ``μ ≥ 0`` solve the Gram NNLS
``min ½ μᵀQμ − bᵀμ`` with ``Q = DᵀK(θ̃)D`` and ``b = L q(θ̃)`` (:mod:`._epsilon`), then are
restricted to the near-active constraints to keep δ small (:func:`select_multipliers`).
Route (b) adds the multipliers implied by stationarity of the weight-decayed training loss.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from scipy.special import expit, softmax

from implicitbias._errors import InaccurateSolutionWarning
from implicitbias.kkt._epsilon import Fit, GramForm
from implicitbias.kkt.margins import (
    _check_separating,
    _example_margins,
    _pair_margins,
    _Setup,
    _smoothed,
)
from implicitbias.kkt.nnls import _finish_nnls
from implicitbias.kkt.report import Loss

__all__ = ["ACTIVE_THRESHOLDS", "margin_fit", "select_multipliers"]

#: Slack thresholds τ tried, in order, when restricting the multipliers to the near-active
#: constraints ``q_i(θ̃) − 1 ≤ τ`` (see kkt_residuals, "Choice of multipliers").
ACTIVE_THRESHOLDS = (1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


def select_multipliers(
    Q: np.ndarray,
    b: np.ndarray,
    slack: np.ndarray,
    tt: float,
    floor2: float,
    rtol: float,
) -> tuple[np.ndarray, float, float, int]:
    """Smallest-ε NNLS, then the near-active restriction with the smallest δ.

    The first threshold τ of :data:`ACTIVE_THRESHOLDS` whose restricted NNLS reaches
    ``ε ≤ (1 + rtol)·ε_min + √floor2`` wins; else the unrestricted minimizer.

    Returns ``(μ, ε_min, τ, iterations)``.
    """
    m = b.shape[0]
    full = _finish_nnls(Q, b, np.ones(m, dtype=bool), None, 10 * m + 10)
    iterations = full.iterations
    if full.status != "optimal":
        warnings.warn(
            f"kkt_residuals: the Gram NNLS stopped at its iteration limit ({full.iterations} "
            f"active-set changes); epsilon_min may be slightly too large.",
            InaccurateSolutionWarning,
            stacklevel=4,
        )
    eps_min2 = max(tt + 2.0 * full.objective, 0.0)
    eps_min = math.sqrt(eps_min2)
    if full.support.size == 0:
        return full.solution, eps_min, math.inf, iterations
    tau_full = float(slack[full.support].max())
    floor = math.sqrt(floor2)
    accept = (1.0 + rtol) * eps_min + floor
    previous = -1
    for tau in ACTIVE_THRESHOLDS:
        if tau >= tau_full:
            break
        cand = slack <= tau
        count = int(cand.sum())
        if count == previous or count == 0:
            continue
        previous = count
        res = _finish_nnls(Q, b, cand, None, 10 * count + 10)
        iterations += res.iterations
        eps = math.sqrt(max(tt + 2.0 * res.objective, 0.0))
        if eps <= accept:
            return res.solution, eps_min, tau, iterations
    return full.solution, eps_min, tau_full, iterations


class _Layout:
    """Where each constraint's multiplier sits: example ``rows[c]``, output ``cols[c]``.

    Binary: one constraint per example (``cols = 0``). Multiclass: one per pair ``(i, j)``,
    ``j ≠ y_i``, with ``∇q_ij = ∇f_{y_i} − ∇f_j``.
    """

    def __init__(self, s: _Setup, rows: np.ndarray, cols: np.ndarray) -> None:
        self.s, self.rows, self.cols = s, rows, cols

    def coefficients(self, m: np.ndarray) -> np.ndarray:
        """Output-space coefficients ``c`` with ``Σ μ g = ∇_θ Σ c·f`` at θ̃."""
        s = self.s
        if s.task == "multiclass":
            c = np.zeros((s.n, s.C))
            np.add.at(c, (self.rows, self.cols), -m)
            np.add.at(c, (self.rows, s.y[self.rows]), m)
            return c
        return m * s.y

    def table(self, m: np.ndarray) -> np.ndarray:
        """The reported multipliers: ``(n,)``, or ``(n, C)`` with zeros at ``j = y_i``."""
        s = self.s
        if s.task == "multiclass":
            out = np.zeros((s.n, s.C))
            out[self.rows, self.cols] = m
            return out
        return m.copy()


def _constraints(
    s: _Setup, Kt: np.ndarray, q_ex: np.ndarray, q_min: float
) -> tuple[_Layout, np.ndarray, np.ndarray]:
    """``(layout, Q, q(θ̃))`` of the margin constraints, from the NTK ``Kt`` at θ̃."""
    if s.task == "multiclass":
        C = s.C
        qp = _pair_margins(s.outputs, s.y) / q_min  # (n, C), inf at y_i
        rows, cols = np.nonzero(np.isfinite(qp))
        A = rows * C + s.y[rows]
        B = rows * C + cols
        Q = Kt[np.ix_(A, A)] - Kt[np.ix_(A, B)] - Kt[np.ix_(B, A)] + Kt[np.ix_(B, B)]
        qc = qp[rows, cols]
    else:
        Q = np.outer(s.y, s.y) * Kt
        qc = q_ex / q_min
        rows = np.arange(s.n)
        cols = np.zeros(s.n, dtype=np.int64)
    return _Layout(s, rows, cols), 0.5 * (Q + Q.T), qc


def _weight_decay_multipliers(
    s: _Setup,
    layout: _Layout,
    qc: np.ndarray,
    q_ex: np.ndarray,
    q_min: float,
    weight_decay: float,
    loss: Loss,
) -> np.ndarray:
    """Route (b): ``μ_c = q_min^{(L−2)/L} r_c / (nλ)``, ``r_c = −ℓ'(q_c)`` (multiclass
    cross-entropy: the softmax probability of the pair's wrong class)."""
    if s.task == "multiclass":
        q_raw = qc * q_min
        if loss == "exponential":
            r = np.exp(-q_raw)
        else:
            r = softmax(s.outputs, axis=1)[layout.rows, layout.cols]
    else:
        q_raw = q_ex
        r = np.exp(-q_raw) if loss == "exponential" else expit(-q_raw)
    L = s.L
    return q_min ** ((L - 2.0) / L) * r / (s.n * weight_decay)


def margin_fit(
    s: _Setup,
    K: np.ndarray,
    u_K: float,
    *,
    rtol: float,
    weight_decay: float | None,
    loss: Loss,
    func: str,
) -> Fit:
    """The multipliers of the margin problem at ``θ̃ = θ / q_min^{1/L}``.

    Parameters
    ----------
    s : _Setup
        Validated model and data (task ``"classification"`` or ``"multiclass"``).
    K : ndarray of shape (n·C, n·C)
        The NTK at θ (float64).
    u_K : float
        Unit roundoff of the NTK's dtype.
    rtol : float
        ``epsilon_tolerance`` of :func:`select_multipliers`.
    weight_decay, loss :
        Route (b), when ``weight_decay`` is given.
    func : str
        The public function, for the error on a non-separating model.
    """
    L = s.L
    q_ex = _example_margins(s)
    q_min = _check_separating(q_ex, func)
    scale = q_min ** (-1.0 / L)
    tt = (s.theta_norm * scale) ** 2
    Kt = K * scale ** (2.0 * (L - 1.0))
    layout, Q, qc = _constraints(s, Kt, q_ex, q_min)
    b = L * qc
    slack = np.maximum(qc - 1.0, 0.0)
    mu, eps_min, tau, iterations = select_multipliers(
        Q, b, slack, tt, floor2=8 * u_K * tt * max(1.0, math.sqrt(b.size)), rtol=rtol
    )
    form = GramForm(s, s.theta * scale, tt, Q, b, u_K, layout.coefficients)
    multipliers = layout.table(mu)
    margins = q_ex / q_min
    wd_mu = None
    if weight_decay is not None:
        wd_mu = _weight_decay_multipliers(s, layout, qc, q_ex, q_min, weight_decay, loss)
    return Fit(
        form=form,
        mu=mu,
        multipliers=multipliers,
        support=np.flatnonzero(multipliers.reshape(s.n, -1).max(axis=1) > 0),
        delta=float(np.max(mu * slack)) if mu.size else 0.0,
        # θ̃ is feasible by construction: min_i q_i(θ̃) = q_min / q_min = 1 exactly.
        max_violation=float(np.max(np.maximum(1.0 - margins, 0.0))),
        epsilon_min=eps_min,
        active_threshold=tau,
        iterations=iterations,
        n_constraints=int(b.size),
        point_norm=math.sqrt(tt),
        loss=loss,
        margins=margins,
        q_min=q_min,
        normalized_margin=q_min / s.theta_norm**L,
        smoothed_margin=_smoothed(s, "exponential"),
        wd_mu=wd_mu,
        slack=slack,
        table=layout.table,
    )
