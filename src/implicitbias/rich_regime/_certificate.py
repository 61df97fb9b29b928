"""The duality certificate of the max-margin problems, evaluated on the caller's data.

Every route hands over candidate primal points ``w`` and multipliers ``μ`` *already mapped
back* to the caller's (unscaled) data; each is rescaled to exact feasibility (``w`` so that
``min_i y_i⟨w, x_i⟩ = 1``, ``μ`` so that ``‖Xᵀ(μ ⊙ y)‖_q ≤ 1``), and the best primal and the
best dual are combined: any feasible pair bounds the optimum from both sides, so the gap
``‖w‖_p − Σμ`` certifies the returned point whichever route produced which half.

Rounding floor. Storing ``w`` in float64 moves each ``y_i⟨w, x_i⟩`` by up to
``ε·Σ_j |x_ij w_j|`` (evaluating it adds as much again), and likewise ``Xᵀ(μ ⊙ y)``. On data
with a tiny relative margin (``‖w‖`` huge, the support vectors nearly cancelling) this floor
can exceed a requested ``tol`` of 1e-7; a gap below the floor is then the best float64 can
certify, and is accepted as optimal. On ordinary data the floor is ~1e-15 and changes
nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from implicitbias._errors import SolverError
from implicitbias.rich_regime._results import MaxMarginResult, classify, nonzero_indices
from implicitbias.rich_regime._scaling import dual_exponent, pnorm

__all__ = ["Certificate"]

_EPS = float(np.finfo(np.float64).eps)
#: The floor is this many units of rounding of the largest term sums ``Σ_j |x_ij w_j|`` and
#: ``‖Σ_i μ_i |x_i|‖_q``: below it the certificate of the *stored* float64 ``w`` and ``μ``
#: cannot be told apart from rounding (each stored entry is already off by ε relative).
_FLOOR_ULPS = 8.0


@dataclass
class _Primal:
    w: np.ndarray
    norm: float
    violation: float


@dataclass
class _Dual:
    mu: np.ndarray
    value: float
    violation: float


class Certificate:
    """Best primal and best dual candidate of ``min ‖w‖_p s.t. y_i⟨w, x_i⟩ ≥ 1``."""

    def __init__(self, X: np.ndarray, y: np.ndarray, p: float) -> None:
        self.X, self.y, self.p, self.q = X, y, p, dual_exponent(p)
        self.primal: _Primal | None = None
        self.dual: _Dual | None = None
        self.first_qmin: float | None = None
        self._floor: float | None = None

    # ------------------------------------------------------------------ candidates
    def add(
        self, w: np.ndarray | None, mu: np.ndarray | None, pricing: np.ndarray | None = None
    ) -> None:
        """Evaluate a candidate pair (either half may be None); keep what improves."""
        if w is not None:
            self._add_primal(np.asarray(w, dtype=np.float64))
        if mu is not None:
            self._add_dual(np.asarray(mu, dtype=np.float64), pricing)

    def _add_primal(self, w: np.ndarray) -> None:
        if not np.all(np.isfinite(w)):
            if self.first_qmin is None:
                self.first_qmin = float("nan")
            return
        J = np.flatnonzero(w)
        # sparse w (the ℓ1 answer on 1e5 features has a handful): only its columns
        q = self.y * (self.X[:, J] @ w[J] if 4 * J.size < w.size else self.X @ w)
        qmin = float(q.min())
        if self.first_qmin is None:
            self.first_qmin = qmin
        if not qmin > 0:
            return
        w = w / qmin
        norm = pnorm(w, self.p)
        if not (np.isfinite(norm) and norm > 0):
            return
        if self.primal is None or norm < self.primal.norm:
            self.primal = _Primal(w, norm, max(0.0, 1.0 - qmin))
            self._floor = None

    def _add_dual(self, mu: np.ndarray, pricing: np.ndarray | None) -> None:
        if not np.all(np.isfinite(mu)):
            return
        mu = np.maximum(mu, 0.0)
        c = self.X.T @ (mu * self.y) if pricing is None else pricing
        cq = pnorm(c, self.q)
        if not np.isfinite(cq):
            return
        if cq > 1.0:
            mu = mu / cq
        value = float(mu.sum())
        if self.dual is None or value > self.dual.value:
            self.dual = _Dual(mu, value, max(0.0, cq - 1.0))
            self._floor = None

    # ------------------------------------------------------------------ quality
    @property
    def relative_gap(self) -> float:
        if self.primal is None or self.dual is None:
            return float("inf")
        return abs(self.primal.norm - self.dual.value) / self.primal.norm

    def floor(self) -> float:
        """Rounding floor of the certificate (see the module docstring); lazily computed."""
        if self._floor is not None:
            return self._floor
        if self.primal is None or self.dual is None:
            return 0.0
        X, y = self.X, self.y
        w, mu = self.primal.w, self.dual.mu
        J = np.flatnonzero(w)
        S = np.flatnonzero(mu)
        if J.size == 0 or S.size == 0:
            return 0.0
        kp = float(np.max(np.abs(X[:, J]) @ np.abs(w[J])))  # min_i y_i<w, x_i> = 1
        XS = X[S]
        c = XS.T @ (mu[S] * y[S])
        cabs = np.abs(XS).T @ mu[S]
        cq = pnorm(c, self.q)
        kd = pnorm(cabs, self.q) / cq if cq > 0 else 0.0
        self._floor = _FLOOR_ULPS * _EPS * (kp + kd)
        return self._floor

    def ok(self, tol: float) -> bool:
        rel = self.relative_gap
        return bool(np.isfinite(rel) and (rel <= tol or rel <= self.floor()))

    # ------------------------------------------------------------------ result
    def result(
        self, *, func: str, route: str, tol: float, t0: float, iterations: int, hint: str
    ) -> MaxMarginResult:
        """The record; raises :class:`SolverError` if no candidate separates the data, and
        warns/raises through :func:`classify` on a gap above ``max(tol, floor)``."""
        if self.primal is None:
            qmin = self.first_qmin
            if qmin is not None and qmin > 0:
                raise SolverError(
                    f"{func}: the {route} route returned a point whose norm is not finite in "
                    f"float64 after mapping back to the data's scale. {hint}"
                )
            got = "nan" if qmin is None else f"{qmin:.3g}"
            raise SolverError(
                f"{func}: the {route} route returned a point with min_i y_i <w, x_i> = {got} "
                f"<= 0, which cannot be rescaled to a feasible one. {hint}"
            )
        if self.dual is None:
            raise SolverError(f"{func}: the {route} route returned no usable multipliers. {hint}")
        P, D = self.primal, self.dual
        gap = P.norm - D.value
        rel = self.relative_gap
        eff = tol if not np.isfinite(rel) or rel <= tol else max(tol, self.floor())
        status = classify(func, rel, eff, what=f"{route} route", hint=hint)
        return MaxMarginResult(
            w=P.w, margin=1.0 / P.norm, norm=P.norm, objective=P.norm, dual=D.mu,
            dual_objective=D.value, support=nonzero_indices(D.mu),
            active_features=nonzero_indices(P.w), p=float(self.p), status=status,
            solver=route, solve_time=time.perf_counter() - t0, duality_gap=float(gap),
            relative_gap=float(rel), max_violation=float(P.violation),
            dual_violation=float(D.violation), iterations=int(iterations),
        )  # fmt: skip
