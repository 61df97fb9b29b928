"""Scale-free convex solvers (issue 11, item 4): no silent wrong answer at odd scales.

The max-margin and interpolation problems are equivariant under rescaling the data
(``X → cX`` maps the max-margin ``w`` to ``w / c`` and the margin to ``c·margin``), so the
answers must be too, at scales 1e-10 … 1e15 and for relative margins down to 1e-8. "Not
separable" must come with a Farkas certificate. ``lp_max_margin`` must work for every
``p ∈ [1, ∞]``; unknown solvers and bad ``p`` are refused naming the argument.

Every answer is checked against an independent reference: a closed form, the answer of the
unscaled problem mapped by the exact scaling law, another route, or the primal-dual optimality
conditions verified here from scratch (feasible ``w``, feasible ``μ``, equal objectives).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linprog

import implicitbias as ib

# ------------------------------------------------------------------------------- references


def _pnorm(v: np.ndarray, p: float) -> float:
    """‖v‖_p written out here (largest entry factored out: no overflow for p = 1e6)."""
    a = np.abs(np.asarray(v, dtype=np.float64))
    top = float(a.max())
    if top == 0.0:
        return 0.0
    if math.isinf(p):
        return top
    return top * math.fsum((a / top) ** p) ** (1.0 / p)


def _dual_exp(p: float) -> float:
    return math.inf if p == 1.0 else (1.0 if math.isinf(p) else p / (p - 1.0))


def _assert_optimal(res: ib.MaxMarginResult, X: np.ndarray, y: np.ndarray, p: float,
                    rtol: float = 1e-6, feas: float = 1e-9) -> None:  # fmt: skip
    """Optimality from first principles: y_i<w, x_i> >= 1, μ >= 0, ‖Xᵀ(μ⊙y)‖_q <= 1 and
    ‖w‖_p = Σμ (weak duality makes this a proof of optimality), each to ``feas``."""
    q = y * (X @ res.w)
    assert q.min() >= 1.0 - feas
    assert np.all(res.dual >= 0)
    assert _pnorm(X.T @ (res.dual * y), _dual_exp(p)) <= 1.0 + feas
    norm = _pnorm(res.w, p)
    assert abs(norm - res.dual.sum()) <= rtol * norm
    np.testing.assert_allclose(res.margin, 1.0 / norm, rtol=1e-12)


def _separable(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sign(X @ rng.standard_normal(d))


def _two_points(delta: float) -> tuple[np.ndarray, np.ndarray]:
    """x_1 = (1, 0) labelled +1 and x_2 = (1, δ) labelled -1: nearly collinear with the origin,
    separable with relative margin ~δ/2. For every p the optimum is w = (1, -2/δ)."""
    return np.array([[1.0, 0.0], [1.0, delta]]), np.array([1.0, -1.0])


def _two_point_margin(delta: float, p: float) -> float:
    return 1.0 / _pnorm(np.array([1.0, 2.0 / delta]), p)


def _nearly_touching(n: int, d: int, delta: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian data labelled by a random w*, plus a pair x (+1) and x - δ‖x‖ w*/‖w*‖ (-1) in
    general position: separable, relative margin ~δ, support vectors cancelling in every
    coordinate."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    ws = rng.standard_normal(d)
    y = np.sign(X @ ws)
    u = ws / np.linalg.norm(ws)
    x = rng.standard_normal(d)
    x = x - (x @ u) * u + 0.25 * delta * np.linalg.norm(x) * u
    x2 = x - delta * np.linalg.norm(x) * u
    return np.vstack([X, x, x2]), np.r_[y, 1.0, -1.0]


SOLVERS: dict[str, tuple[float, Callable[..., ib.MaxMarginResult]]] = {
    "l1": (1.0, lambda X, y: ib.l1_max_margin(X, y)),
    "l1-cvxpy": (1.0, lambda X, y: ib.l1_max_margin(X, y, solver="cvxpy")),
    "l2": (2.0, lambda X, y: ib.l2_max_margin(X, y)),
    "l2-cvxpy": (2.0, lambda X, y: ib.l2_max_margin(X, y, solver="cvxpy")),
    "lp3": (3.0, lambda X, y: ib.lp_max_margin(X, y, p=3.0)),
    "lpinf": (math.inf, lambda X, y: ib.lp_max_margin(X, y, p=np.inf)),
    "lpinf-cvxpy": (math.inf, lambda X, y: ib.lp_max_margin(X, y, p=np.inf, solver="cvxpy")),
}


def _linf_reference(X: np.ndarray, y: np.ndarray) -> float:
    """The l-inf margin by a dense LP written here (HiGHS): min t, y_i<w, x_i> >= 1, |w| <= t."""
    n, d = X.shape
    eye, col = np.eye(d), np.ones((d, 1))
    A = np.block([[-(y[:, None] * X), np.zeros((n, 1))], [eye, -col], [-eye, -col]])
    b = np.r_[-np.ones(n), np.zeros(2 * d)]
    res = linprog(np.r_[np.zeros(d), 1.0], A_ub=A, b_ub=b, bounds=(None, None), method="highs")
    assert res.status == 0
    return 1.0 / res.x[-1]


def _pnorm_reference(X: np.ndarray, y: np.ndarray, p: float) -> float:
    """Margin by cvxpy's own pnorm with power cones (``approx=False``), not the library's
    formulation."""
    w = cp.Variable(X.shape[1])
    prob = cp.Problem(cp.Minimize(cp.pnorm(w, p, approx=False)), [cp.multiply(y, X @ w) >= 1])
    prob.solve(solver="CLARABEL")
    return 1.0 / _pnorm(np.asarray(w.value) / min(y * (X @ w.value)), p)


#: an answer at scale 1 from another route or another formulation
REFERENCE: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "l1": lambda X, y: ib.l1_max_margin(X, y, solver="cvxpy").margin,
    "l1-cvxpy": lambda X, y: ib.l1_max_margin(X, y).margin,
    "l2": lambda X, y: ib.l2_max_margin(X, y, solver="cvxpy").margin,
    "l2-cvxpy": lambda X, y: ib.l2_max_margin(X, y).margin,
    "lp3": lambda X, y: _pnorm_reference(X, y, 3.0),
    "lpinf": _linf_reference,
    "lpinf-cvxpy": _linf_reference,
}
#: w itself is compared where it is unique *and* computed to full accuracy (an interior-point
#: w for p = 3 is accurate only to ~sqrt(duality gap), though its norm is certified)
UNIQUE_W = {2.0}


# ==================================================================== scaling law (property)
@pytest.mark.parametrize("name", ["l1", "l2", "lpinf", "lp3"])
@settings(max_examples=10, deadline=None, derandomize=True)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 12),
    d=st.integers(1, 6),
    k=st.floats(-10.0, 10.0),
)
def test_margin_scales_exactly_with_the_data(name: str, seed: int, n: int, d: int,
                                             k: float) -> None:  # fmt: skip
    p, f = SOLVERS[name]
    X, y = _separable(n, d, seed)
    c = 10.0**k
    base = f(X, y)
    scaled = f(c * X, y)
    np.testing.assert_allclose(scaled.margin, c * base.margin, rtol=1e-6)
    np.testing.assert_allclose(scaled.norm, base.norm / c, rtol=1e-6)
    if p in UNIQUE_W:
        np.testing.assert_allclose(
            scaled.w * c, base.w, rtol=1e-5, atol=1e-6 * np.abs(base.w).max()
        )
    _assert_optimal(scaled, c * X, y, p, rtol=1e-5)


# ==================================================================== fixed scales, every route
@pytest.mark.parametrize("scale", [1e-10, 1e-5, 1e5, 1e10, 1e15])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_max_margin_at_extreme_scales(name: str, scale: float) -> None:
    p, f = SOLVERS[name]
    X, y = _separable(25, 6, 3)
    res = f(scale * X, y)
    assert res.status == "optimal"
    np.testing.assert_allclose(res.margin, scale * REFERENCE[name](X, y), rtol=1e-6)
    if p in UNIQUE_W:  # the exact (NNLS) l2 answer at scale 1
        ref_w = ib.l2_max_margin(X, y).w
        np.testing.assert_allclose(res.w * scale, ref_w, atol=1e-5 * np.abs(ref_w).max())
    # the certificate holds on the caller's (scaled) data, not just on the normalized copy
    _assert_optimal(res, scale * X, y, p, rtol=1e-6)
    np.testing.assert_allclose(res.duality_gap, res.norm - res.dual_objective, rtol=1e-9,
                               atol=1e-12 * res.norm)  # fmt: skip


# ==================================================================== tiny relative margins
@pytest.mark.parametrize("scale", [1.0, 1e-10, 1e12])
@pytest.mark.parametrize("name", list(SOLVERS))
def test_tiny_margin_two_points_closed_form(name: str, scale: float) -> None:
    p, f = SOLVERS[name]
    delta = 1e-8
    X, y = _two_points(delta)
    res = f(scale * X, y)  # separable: must not raise NotSeparableError
    np.testing.assert_allclose(res.margin, scale * _two_point_margin(delta, p), rtol=1e-6)
    np.testing.assert_allclose(res.w * scale, [1.0, -2.0 / delta], rtol=1e-6)


@pytest.mark.parametrize("name", ["l2", "l2-cvxpy"])
def test_tiny_margin_rotated_two_points_l2(name: str) -> None:
    """A rotation keeps the l2 margin but makes the support vectors cancel in both
    coordinates (w ~ 1e8 with <w, x_i> ~ 1)."""
    delta = 1e-8
    X, y = _two_points(delta)
    t = 0.7
    Q = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    res = SOLVERS[name][1](X @ Q, y)
    np.testing.assert_allclose(res.margin, _two_point_margin(delta, 2.0), rtol=1e-6)
    np.testing.assert_allclose(Q @ res.w, [1.0, -2.0 / delta], rtol=1e-6)


@pytest.mark.parametrize(("n", "d"), [(20, 5), (40, 120)])
@pytest.mark.parametrize("name", ["l1", "l2", "lpinf"])
def test_tiny_margin_general_position(name: str, n: int, d: int) -> None:
    """Relative margin ~1e-8 in general position: separable (no NotSeparableError), the
    scaling law holds, and the optimality conditions hold to the float64 rounding floor."""
    p, f = SOLVERS[name]
    X, y = _nearly_touching(n, d, 1e-8, 0)
    res = f(X, y)
    assert res.margin < 1e-6
    assert res.status == "optimal"
    big = f(1e12 * X, y)
    np.testing.assert_allclose(big.margin, 1e12 * res.margin, rtol=1e-6)
    # ‖w‖ ~ 1e8 with <w, x_i> ~ 1: re-evaluating y_i<w, x_i> in float64 is itself off by
    # ~ε·Σ_j|x_ij w_j| ~ 1e-8, so feasibility is checked to 1e-7 here (1e-9 elsewhere)
    _assert_optimal(res, X, y, p, rtol=1e-6, feas=1e-7)
    if p == 2.0:  # the hull distance is the l2 margin: an independent route agrees
        ref = ib.l2_max_margin(X, y, solver="cvxpy")
        np.testing.assert_allclose(res.margin, ref.margin, rtol=1e-6)


# ==================================================================== not separable: certified
def _nonseparable(kind: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    if kind == "collinear":
        a = np.array([1.0, 2.0, -1.0])
        return np.stack([a, -a, 2 * a]), np.array([1.0, 1.0, -1.0])
    if kind == "random":  # 40 random labels in 3 dimensions
        return rng.standard_normal((40, 3)), rng.choice([-1.0, 1.0], size=40)
    if kind == "zero-row":
        return np.array([[1.0, 2.0], [0.0, 0.0], [3.0, -1.0]]), np.array([1.0, 1.0, -1.0])
    if kind == "tiny-scale":
        a = np.array([1.0, 2.0, -1.0])
        return 1e-12 * np.stack([a, -a, 2 * a]), np.array([1.0, 1.0, -1.0])
    if kind == "huge-scale":
        return 1e15 * rng.standard_normal((30, 2)), rng.choice([-1.0, 1.0], size=30)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["collinear", "random", "zero-row", "tiny-scale", "huge-scale"])
@pytest.mark.parametrize("name", ["l1", "l2", "l1-cvxpy", "lp3", "lpinf"])
def test_not_separable_comes_with_a_farkas_certificate(name: str, kind: str) -> None:
    X, y = _nonseparable(kind)
    with pytest.raises(ib.NotSeparableError, match="not linearly separable.*alpha") as info:
        SOLVERS[name][1](X, y)
    alpha = info.value.alpha  # type: ignore[attr-defined]
    assert alpha.shape == y.shape
    assert np.all(alpha >= 0)
    np.testing.assert_allclose(alpha.sum(), 1.0, rtol=1e-12)
    # Σ α_i y_i x_i = 0 to ten digits relative to the size of the combined vectors
    combo = X.T @ (alpha * y)
    assert np.linalg.norm(combo) <= 1e-9 * float(alpha @ np.linalg.norm(X, axis=1))


def test_not_separable_after_cvxpy_infeasible_is_certified_on_l2() -> None:
    X, y = _nonseparable("collinear")
    with pytest.raises(ib.NotSeparableError, match=r"l2_max_margin.*\.alpha") as info:
        ib.l2_max_margin(X, y, solver="cvxpy")
    alpha = info.value.alpha  # type: ignore[attr-defined]
    assert np.linalg.norm(X.T @ (alpha * y)) <= 1e-9 * float(alpha @ np.linalg.norm(X, axis=1))


@pytest.mark.parametrize("name", ["l1", "l2", "lpinf"])
def test_certificate_of_a_duplicated_flipped_point_names_the_pair(name: str) -> None:
    """A researcher's typo: one example repeated with the other label. The certificate is
    the pair itself (a sparse certificate, not a blur over all examples)."""
    X, y = _separable(30, 8, 6)
    X2, y2 = np.vstack([X, X[3:4]]), np.append(y, -y[3])
    with pytest.raises(ib.NotSeparableError, match=r"on 2 examples \(indices 3, 30\)") as info:
        SOLVERS[name][1](X2, y2)
    np.testing.assert_allclose(info.value.alpha[[3, 30]], [0.5, 0.5], rtol=1e-12)  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["l1", "l2", "lpinf"])
def test_examples_of_very_different_size(name: str) -> None:
    """One example 1e20 times shorter than the other: w = (1e20, 1) for every p (HiGHS drops
    matrix entries below 1e-9; a least-squares cut-off would call the row rank deficient)."""
    p, f = SOLVERS[name]
    X = np.array([[1e-20, 0.0], [0.0, 1.0]])
    res = f(X, np.array([1.0, 1.0]))
    np.testing.assert_allclose(res.w, [1e20, 1.0], rtol=1e-9)
    np.testing.assert_allclose(res.margin, 1.0 / _pnorm(np.array([1e20, 1.0]), p), rtol=1e-9)


# ==================================================================== every p in [1, ∞]
@pytest.mark.parametrize("p", [1.0, 1.0001, 1.5, 2.0, 3.0, 50.0, 1e3, 1e6, math.inf])
def test_lp_max_margin_for_every_p(p: float) -> None:
    X, y = _separable(15, 6, 1)
    d = X.shape[1]
    res = ib.lp_max_margin(X, y, p=p)
    assert res.status == "optimal"
    _assert_optimal(res, X, y, p, rtol=1e-6)
    m1 = ib.l1_max_margin(X, y, solver="cvxpy").margin
    minf = ib.lp_max_margin(X, y, p=np.inf, solver="cvxpy").margin
    # ‖w‖_p <= ‖w‖_1 <= d^(1-1/p) ‖w‖_p and ‖w‖_inf <= ‖w‖_p <= d^(1/p) ‖w‖_inf
    assert m1 * (1 - 1e-7) <= res.margin <= d ** (1 - 1 / p) * m1 * (1 + 1e-7)
    assert minf * d ** (-1 / p) * (1 - 1e-7) <= res.margin <= minf * (1 + 1e-7)
    if p in (1.0, 2.0, math.inf):
        ref = {1.0: m1, 2.0: ib.l2_max_margin(X, y, solver="cvxpy").margin, math.inf: minf}[p]
        np.testing.assert_allclose(res.margin, ref, rtol=1e-6)
    if p in (1.5, 3.0, 50.0):
        np.testing.assert_allclose(res.margin, _pnorm_reference(X, y, p), rtol=1e-6)


@pytest.mark.parametrize("p", [1.0 + 1e-13, 1e13, 1e300])
def test_lp_p_beyond_float_resolution_is_the_limit_problem(p: float) -> None:
    """‖·‖_p and its limit norm agree to rounding here: the answer is certified for p."""
    X, y = _separable(15, 6, 1)
    res = ib.lp_max_margin(X, y, p=p)
    assert res.status == "optimal"
    _assert_optimal(res, X, y, p, rtol=1e-6)
    limit = ib.l1_max_margin(X, y) if p < 2 else ib.lp_max_margin(X, y, p=np.inf)
    np.testing.assert_allclose(res.margin, limit.margin, rtol=1e-9)


@pytest.mark.parametrize("p", [1.0001, 1e6])
def test_lp_extreme_p_at_extreme_scale(p: float) -> None:
    X, y = _separable(12, 4, 2)
    base = ib.lp_max_margin(X, y, p=p)
    res = ib.lp_max_margin(1e-10 * X, y, p=p, solver="cvxpy")
    np.testing.assert_allclose(res.margin, 1e-10 * base.margin, rtol=1e-6)
    _assert_optimal(res, 1e-10 * X, y, p, rtol=1e-6)


@pytest.mark.parametrize("p", [0.5, 0, -1, -math.inf, math.nan, 0.999])
def test_lp_rejects_p_below_one(p: float) -> None:
    X, y = _separable(5, 2, 0)
    with pytest.raises(ib.InvalidArgumentError, match=r"'p' argument of lp_max_margin.*>= 1"):
        ib.lp_max_margin(X, y, p=p)


@pytest.mark.parametrize("p", [True, np.bool_(False), "2", None, 2 + 0j, [2.0]])
def test_lp_rejects_p_of_the_wrong_type(p: Any) -> None:
    X, y = _separable(5, 2, 0)
    with pytest.raises(ib.InvalidArgumentTypeError, match=r"'p' argument of lp_max_margin"):
        ib.lp_max_margin(X, y, p=p)


# ==================================================================== cvxpy_solver on every route
X5, Y5 = _separable(8, 3, 4)
COMPLETION = dict(d=3, rows=[0, 1, 2, 0], cols=[0, 1, 2, 1], values=[1.0, 2.0, 3.0, 0.5])
ROUTES: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "l1-auto": ("l1_max_margin", lambda s: ib.l1_max_margin(X5, Y5, cvxpy_solver=s)),
    "l1-cvxpy": ("l1_max_margin",
                 lambda s: ib.l1_max_margin(X5, Y5, solver="cvxpy", cvxpy_solver=s)),
    "l2-auto": ("l2_max_margin", lambda s: ib.l2_max_margin(X5, Y5, cvxpy_solver=s)),
    "l2-cvxpy": ("l2_max_margin",
                 lambda s: ib.l2_max_margin(X5, Y5, solver="cvxpy", cvxpy_solver=s)),
    "lp1-auto": ("lp_max_margin", lambda s: ib.lp_max_margin(X5, Y5, p=1, cvxpy_solver=s)),
    "lp2-auto": ("lp_max_margin", lambda s: ib.lp_max_margin(X5, Y5, p=2, cvxpy_solver=s)),
    "lpinf-auto": ("lp_max_margin",
                   lambda s: ib.lp_max_margin(X5, Y5, p=np.inf, cvxpy_solver=s)),
    "lp3": ("lp_max_margin", lambda s: ib.lp_max_margin(X5, Y5, p=3, cvxpy_solver=s)),
    "nuclear-alm": ("min_nuclear_norm_completion",
                    lambda s: ib.min_nuclear_norm_completion(**COMPLETION, solver="alm",
                                                             cvxpy_solver=s)),
    "nuclear-cvxpy": ("min_nuclear_norm_completion",
                      lambda s: ib.min_nuclear_norm_completion(**COMPLETION, solver="cvxpy",
                                                               cvxpy_solver=s)),
}  # fmt: skip


@pytest.mark.parametrize("route", list(ROUTES))
def test_unknown_cvxpy_solver_is_rejected_on_every_route(route: str) -> None:
    func, call = ROUTES[route]
    with pytest.raises(ib.InvalidArgumentError, match=rf"'cvxpy_solver' argument of {func}"):
        call("NO_SUCH_SOLVER")


@pytest.mark.parametrize("route", ["l2-auto", "nuclear-alm"])
def test_non_string_cvxpy_solver_is_rejected(route: str) -> None:
    func, call = ROUTES[route]
    with pytest.raises(ib.InvalidArgumentError, match=rf"'cvxpy_solver' argument of {func}"):
        call(42)


@pytest.mark.parametrize("route", ["lp3", "l2-cvxpy", "nuclear-cvxpy"])
def test_installed_solver_that_cannot_handle_the_cones_is_refused(route: str) -> None:
    """HiGHS (installed with cvxpy) solves LPs only: power cones, SOC and PSD are refused up
    front naming the argument, not by a cvxpy SolverError from deep inside."""
    func, call = ROUTES[route]
    with pytest.raises(ib.InvalidArgumentError, match=rf"'cvxpy_solver' argument of {func}"):
        call("HIGHS")


def test_lp_solver_named_in_lower_case_is_accepted() -> None:
    res = ib.l1_max_margin(X5, Y5, solver="cvxpy", cvxpy_solver="clarabel")
    np.testing.assert_allclose(res.margin, ib.l1_max_margin(X5, Y5).margin, rtol=1e-7)


# ==================================================================== interpolation
XI = np.random.default_rng(9).standard_normal((5, 12))
YI = np.random.default_rng(10).standard_normal(5)


@pytest.mark.parametrize(("cx", "cy"), [(1.0, 1e-8), (1.0, 1e8), (1e-10, 1.0), (1e12, 1e-8),
                                        (1e-6, 1e6)])  # fmt: skip
@pytest.mark.parametrize("func", [ib.min_l1_interpolation, ib.min_l2_interpolation])
def test_interpolation_scales_with_X_and_y(func: Callable[..., Any], cx: float,
                                           cy: float) -> None:  # fmt: skip
    base = func(XI, YI)
    res = func(cx * XI, cy * YI)
    assert res.status == "optimal"
    np.testing.assert_allclose(res.w * (cx / cy), base.w, atol=1e-8 * np.abs(base.w).max())
    np.testing.assert_allclose(res.norm, base.norm * cy / cx, rtol=1e-8)
    assert res.max_violation <= 1e-8 * cy * np.abs(YI).max()
    # the dual certificate on the caller's data: ‖(cX)ᵀν‖_q <= 1 and <ν, cy·y> = ‖w‖_p
    q = math.inf if res.p == 1.0 else 2.0
    assert _pnorm((cx * XI).T @ res.dual, q) <= 1.0 + 1e-9
    np.testing.assert_allclose(res.dual @ (cy * YI), res.norm, rtol=1e-7)


@pytest.mark.parametrize("cy", [1e-6, 1e-12])
@pytest.mark.parametrize("func", [ib.min_l1_interpolation, ib.min_l2_interpolation])
def test_tiny_targets_that_cannot_be_fitted_are_infeasible(func: Callable[..., Any],
                                                           cy: float) -> None:  # fmt: skip
    X = np.array([[1.0, 0.0], [2.0, 0.0]])
    y = cy * np.array([1.0, 3.0])  # needs w_1 = cy and w_1 = 1.5 cy
    with pytest.raises(ib.InfeasibleError, match="no w satisfies X w = y"):
        func(X, y)


# ==================================================================== nuclear-norm completion
@pytest.mark.parametrize("scale", [1e-10, 1e10])
@pytest.mark.parametrize("solver", ["alm", "cvxpy"])
def test_nuclear_completion_scales_with_the_values(solver: str, scale: float) -> None:
    kw = dict(COMPLETION)
    values = np.asarray(kw.pop("values"))
    base = ib.min_nuclear_norm_completion(**kw, values=values, solver=solver)
    res = ib.min_nuclear_norm_completion(**kw, values=scale * values, solver=solver)
    assert res.status == "optimal"
    np.testing.assert_allclose(res.W / scale, base.W, atol=1e-5 * np.abs(base.W).max())
    np.testing.assert_allclose(res.nuclear_norm, scale * base.nuclear_norm, rtol=1e-5)
    assert res.max_violation <= 1e-5 * scale * np.abs(values).max()


def test_nuclear_duplicates_disagreeing_at_a_tiny_scale_are_rejected() -> None:
    """Entry (0, 1) observed as 1e-14 and 2e-14: as inconsistent as 1 and 2."""
    with pytest.raises(ib.InvalidArgumentError, match="'values' argument of min_nuclear"):
        ib.min_nuclear_norm_completion(2, [0, 0, 1], [0, 1, 0], [1e-14, 1e-14, 2e-14])


# ==================================================================== features in other units
def _column_scaled() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Separable data (labels of a random w0) whose features are in units 1e-6 … 1e6 apart:
    ``X·diag(c)`` is separable by ``w0 / c``, so "not separable" is wrong whatever the units."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    w0 = rng.standard_normal(4)
    c = np.array([6e-5, 4.7e5, 4.8e4, 7.4e3])
    return X * c, np.sign(X @ w0), w0 / c


@pytest.mark.parametrize("name", ["l1", "l2", "lp3", "lpinf", "l1-cvxpy"])
def test_separable_data_with_features_in_other_units_is_not_called_non_separable(
    name: str,
) -> None:
    """Regression: a Euclidean certificate test let the 6e-5 feature go uncancelled (it was
    1e-10 of the largest one) and raised NotSeparableError on separable data."""
    X, y, w_sep = _column_scaled()
    assert (y * (X @ w_sep)).min() > 0  # separable, by construction
    p, f = SOLVERS[name]
    # the dual constraint sums terms of ~1e10 to ~1: 1e-5 is its float64 floor here
    _assert_optimal(f(X, y), X, y, p, rtol=1e-5, feas=1e-5)


@pytest.mark.parametrize("name", ["l1", "l2", "lp3", "lpinf"])
def test_certificate_cancels_in_every_feature_whatever_its_units(name: str) -> None:
    X, y, _ = _column_scaled()
    X2, y2 = np.vstack([X, 0.25 * X[2] + 0.75 * X[5]]), np.append(y, 0.0)
    y2[2], y2[5], y2[-1] = 1.0, 1.0, -1.0  # x_12 is in the cone of x_2, x_5: contradicting label
    with pytest.raises(ib.NotSeparableError, match="not linearly separable") as info:
        SOLVERS[name][1](X2, y2)
    alpha = info.value.alpha  # type: ignore[attr-defined]
    assert np.all(alpha >= 0)
    np.testing.assert_allclose(alpha.sum(), 1.0, rtol=1e-12)
    combo = np.abs(X2.T @ (alpha * y2))
    assert np.all(combo <= 1e-9 * (np.abs(X2).T @ alpha))  # feature by feature


# ==================================================================== interpolation: row sizes
def _row_scaled(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full row rank X (5 × 12) with rows of sizes 1e-4 … 1e4, and the min-ℓ2 interpolant by
    the normal equations of the row-normalized system (``D X w = D y`` is the same system)."""
    rng = np.random.default_rng(seed)
    X0 = rng.standard_normal((5, 12))
    y = rng.standard_normal(5)
    r = 10.0 ** np.array([-4.0, -2.0, 0.0, 2.0, 4.0])
    w_ref = X0.T @ np.linalg.solve(X0 @ X0.T, y / r)
    return X0 * r[:, None], y, w_ref


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_l2_interpolation_with_rows_of_very_different_size(seed: int) -> None:
    """Regression: rows of size 1e-4 beside 1e4 were called "y is not in the range of X" (for
    a full-row-rank X) by the l1 route; both now solve the row-normalized system."""
    X, y, w_ref = _row_scaled(seed)
    res = ib.min_l2_interpolation(X, y)
    np.testing.assert_allclose(res.w, w_ref, rtol=1e-7, atol=1e-9 * np.abs(w_ref).max())
    # rtol·max|y|, or the float64 rounding of the largest row's terms (w is ~1e4 here)
    floor = 32 * np.finfo(float).eps * float(np.max(np.abs(X) @ np.abs(res.w)))
    assert res.max_violation <= 1e-8 * np.abs(y).max() + floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_l1_interpolation_with_rows_of_very_different_size(seed: int) -> None:
    X, y, _ = _row_scaled(seed)
    res = ib.min_l1_interpolation(X, y)
    D = 1.0 / np.abs(X).max(axis=1)
    w = cp.Variable(X.shape[1])
    cp.Problem(cp.Minimize(cp.norm1(w)), [(D[:, None] * X) @ w == D * y]).solve(
        solver="CLARABEL"
    )
    np.testing.assert_allclose(res.norm, np.abs(w.value).sum(), rtol=1e-6)
    floor = 32 * np.finfo(float).eps * float(np.max(np.abs(X) @ np.abs(res.w)))
    assert res.max_violation <= 1e-7 * np.abs(y).max() + floor


@pytest.mark.parametrize(("cx", "cy", "what"), [(1e300, 1e-300, "underflows"),
                                                (1e-300, 1e300, "overflows")])  # fmt: skip
@pytest.mark.parametrize("func", [ib.min_l1_interpolation, ib.min_l2_interpolation])
def test_interpolant_beyond_float64_is_refused(func: Callable[..., Any], cx: float, cy: float,
                                               what: str) -> None:  # fmt: skip
    """Regression: with w = (cy/cx)·w₁ = 1e-600·w₁, min_l2_interpolation returned w = 0 with
    status "optimal" (X w = 0 ≠ y)."""
    with pytest.raises(ib.SolverError, match=f"interpolant {what} float64"):
        func(cx * XI, cy * YI)


@pytest.mark.parametrize("func", [ib.min_l1_interpolation, ib.min_l2_interpolation])
def test_full_row_rank_but_ill_conditioned_is_not_called_infeasible(
    func: Callable[..., Any],
) -> None:
    """Two nearly equal rows with different targets: X has full row rank, so an interpolant
    exists (of norm ~1e13); float64 cannot fit it to rtol. That is a SolverError saying so,
    not an InfeasibleError claiming y is outside the range of X."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5, 12))
    X = np.vstack([X, X[0] + 1e-13 * rng.standard_normal(12)])
    y = np.r_[rng.standard_normal(5), 0.0]
    y[5] = y[0] + 1.0
    with pytest.raises(ib.SolverError, match="full row rank"):
        func(X, y)


def test_nuclear_conflicting_duplicate_message_shows_plain_numbers() -> None:
    with pytest.raises(ib.InvalidArgumentError,
                       match=r"'values'.*entry \(0, 1\) with values 1\.0 and 2\.0 instead"):  # fmt: skip
        ib.min_nuclear_norm_completion(2, [0, 0], [1, 1], [1.0, 2.0])
