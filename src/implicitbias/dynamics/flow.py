r"""Adaptive explicit Runge–Kutta integration of the gradient flow dθ/dt = −∇L_λ(θ).

Two embedded pairs with first-same-as-last (FSAL) stages, local-extrapolation, a PI step-size
controller and a continuous extension ("dense output") so evaluations land exactly on requested
times without shortening steps:

- ``"bs32"``: Bogacki–Shampine 3(2), 3 new gradient evaluations per step, cubic dense output.
- ``"dopri5"``: Dormand–Prince 5(4), 6 new gradient evaluations per step, quartic dense output.

The error of a step is the root-mean-square of ``e_i / (atol + rtol·max(|θ_i|, |θ̂_i|))``
(Hairer–Nørsett–Wanner II.4); a step is accepted when it is ≤ 1.

References
----------
E. Hairer, S. P. Nørsett, G. Wanner, *Solving Ordinary Differential Equations I*, 2nd ed.,
Springer 1993, §II.4 (step-size control), §II.5 (Dormand–Prince), §II.6 (dense output).
P. Bogacki, L. F. Shampine, *A 3(2) pair of Runge–Kutta formulas*, Appl. Math. Lett. 2 (1989).
K. Gustafsson, *Control-theoretic techniques for stepsize selection in explicit Runge–Kutta
methods*, ACM TOMS 17 (1991) — the PI controller.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

__all__ = ["INTEGRATORS"]

#: The Runge–Kutta pairs (``train(integrator=...)``).
IntegratorName = Literal["bs32", "dopri5"]
INTEGRATORS: tuple[IntegratorName, ...] = get_args(IntegratorName)


@dataclass(frozen=True)
class _Tableau:
    order: int  # order of the propagated solution
    error_order: int  # order of the embedded estimate
    C: np.ndarray  # (s,) nodes
    A: list[list[float]]  # rows of the strictly lower triangular matrix (row i: i entries)
    B: np.ndarray  # (s,) weights
    E: np.ndarray  # (s + 1,) error weights (last: the FSAL stage at the new point)
    P: np.ndarray  # (s + 1, q) dense-output coefficients


_BS32 = _Tableau(
    order=3,
    error_order=2,
    C=np.array([0.0, 1 / 2, 3 / 4]),
    A=[[], [1 / 2], [0.0, 3 / 4]],
    B=np.array([2 / 9, 1 / 3, 4 / 9]),
    E=np.array([5 / 72, -1 / 12, -1 / 9, 1 / 8]),
    P=np.array([[1, -4 / 3, 5 / 9], [0, 1, -2 / 3], [0, 4 / 3, -8 / 9], [0, -1, 1]]),
)

_DOPRI5 = _Tableau(
    order=5,
    error_order=4,
    C=np.array([0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1]),
    A=[
        [],
        [1 / 5],
        [3 / 40, 9 / 40],
        [44 / 45, -56 / 15, 32 / 9],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    ],
    B=np.array([35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84]),
    E=np.array([-71 / 57600, 0, 71 / 16695, -71 / 1920, 17253 / 339200, -22 / 525, 1 / 40]),
    # Shampine's continuous extension (as in scipy.integrate.RK45).
    P=np.array(
        [
            [1, -8048581381 / 2820520608, 8663915743 / 2820520608, -12715105075 / 11282082432],
            [0, 0, 0, 0],
            [0, 131558114200 / 32700410799, -68118460800 / 10900136933, 87487479700 / 32700410799],
            [0, -1754552775 / 470086768, 14199869525 / 1410260304, -10690763975 / 1880347072],
            [
                0,
                127303824393 / 49829197408,
                -318862633887 / 49829197408,
                701980252875 / 199316789632,
            ],
            [0, -282668133 / 205662961, 2019193451 / 616988883, -1453857185 / 822651844],
            [0, 40617522 / 29380423, -110615467 / 29380423, 69997945 / 29380423],
        ]
    ),
)

TABLEAUX: dict[str, _Tableau] = {"bs32": _BS32, "dopri5": _DOPRI5}

#: A right-hand side: θ ↦ (F(θ) = −∇L_λ(θ), model outputs at θ).
RHS = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


@dataclass
class StepAttempt:
    """One attempted step from (t, θ) of size h."""

    h: float
    theta_new: torch.Tensor
    f_new: torch.Tensor  # F(θ_new): the FSAL stage
    out_new: torch.Tensor  # model outputs at θ_new
    error: float  # scaled RMS error estimate; accept when ≤ 1
    stages: list[torch.Tensor]  # K_1..K_{s+1} (the last is f_new)

    def dense(self, theta: torch.Tensor, s: float, tab: _Tableau) -> torch.Tensor:
        """θ at t + s·h, 0 ≤ s ≤ 1, from the continuous extension (exact at s = 1)."""
        if s >= 1.0:
            return self.theta_new
        powers = np.cumprod(np.full(tab.P.shape[1], s))  # s, s², …
        coeff = tab.P @ powers  # (s+1,)
        out = theta.clone()
        for c, k in zip(coeff, self.stages):
            if c != 0.0:
                out.add_(k, alpha=float(self.h * c))
        return out


def rk_step(
    rhs: RHS,
    tab: _Tableau,
    theta: torch.Tensor,
    f0: torch.Tensor,
    h: float,
    rtol: float,
    atol: float,
) -> StepAttempt:
    """One embedded RK step of size ``h`` from θ with F(θ) = ``f0``; costs s − 1 + 1 = s RHS calls
    (the stages 2..s and the FSAL stage at the new point)."""
    stages = [f0]
    for i in range(1, len(tab.C)):
        y = theta.clone()
        for a, k in zip(tab.A[i], stages):
            if a != 0.0:
                y.add_(k, alpha=float(h * a))
        f, _ = rhs(y)
        stages.append(f)
    theta_new = theta.clone()
    for b, k in zip(tab.B, stages):
        if b != 0.0:
            theta_new.add_(k, alpha=float(h * b))
    f_new, out_new = rhs(theta_new)
    stages.append(f_new)
    err = torch.zeros_like(theta)
    for e, k in zip(tab.E, stages):
        if e != 0.0:
            err.add_(k, alpha=float(h * e))
    scale = torch.maximum(theta.abs(), theta_new.abs()).mul_(rtol).add_(atol)
    error = float(torch.sqrt(torch.mean((err / scale) ** 2)))
    if not np.isfinite(error):
        error = float("inf")
    return StepAttempt(h, theta_new, f_new, out_new, error, stages)


def next_step_size(
    h: float, error: float, error_prev: float, tab: _Tableau, *, accepted: bool
) -> float:
    """PI controller (Gustafsson 1991; Hairer–Wanner's DOPRI5 constants).

    ``h_new = h · 0.9 · err^{−(0.7/k)} · err_prev^{0.4/k}``, k = error order + 1, limited to a
    factor in [0.2, 5] (at most 1 right after a rejection).
    """
    k = tab.error_order + 1
    if error == 0.0:
        factor = 5.0
    elif not np.isfinite(error):
        factor = 0.2
    else:
        factor = 0.9 * error ** (-0.7 / k) * max(error_prev, 1e-4) ** (0.4 / k)
    factor = min(5.0, max(0.2, factor))
    if not accepted:
        factor = min(factor, 1.0)
    return h * factor
