"""ℓ1 / ℓ2 / ℓp max-margin solvers: closed forms, two routes that agree, certificates, errors."""

from __future__ import annotations

import numpy as np
import pytest

import implicitbias as ib


def _sparse_pm1(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    w_star = np.zeros(d)
    idx = rng.choice(d, 3, replace=False)
    w_star[idx] = rng.choice([-1.0, 1.0], size=3)
    return X, np.sign(X @ w_star)


def _gaussian(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, np.sign(X @ rng.standard_normal(d))


def _check_certificate(res: ib.MaxMarginResult, X: np.ndarray, y: np.ndarray) -> None:
    q = y * (X @ res.w)
    np.testing.assert_allclose(q.min(), 1.0, rtol=0, atol=1e-12)
    assert np.all(res.dual >= 0)
    qexp = {1.0: np.inf, 2.0: 2.0}[res.p]
    assert np.linalg.norm(X.T @ (res.dual * y), ord=qexp) <= 1.0 + 1e-12
    np.testing.assert_allclose(res.dual.sum(), res.norm, rtol=1e-6)
    np.testing.assert_allclose(res.margin, 1.0 / res.norm, rtol=1e-14)
    assert res.status == "optimal"


def test_closed_form_single_point() -> None:
    # One example x = (1, 0.5), y = +1: ℓ1 puts all weight on the largest coordinate,
    # ℓ2 is x / ‖x‖², ℓ∞ spreads weight equally: w = (1, 1)/1.5.
    X = np.array([[1.0, 0.5]])
    y = np.array([1.0])
    r1 = ib.l1_max_margin(X, y)
    np.testing.assert_allclose(r1.w, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r1.dual, [1.0], atol=1e-12)
    r2 = ib.l2_max_margin(X, y)
    np.testing.assert_allclose(r2.w, [0.8, 0.4], atol=1e-12)
    np.testing.assert_allclose(r2.margin, np.sqrt(1.25), rtol=1e-12)
    rinf = ib.lp_max_margin(X, y, p=np.inf)
    np.testing.assert_allclose(rinf.w, [2 / 3, 2 / 3], atol=1e-7)
    np.testing.assert_allclose(rinf.margin, 1.5, rtol=1e-7)


def test_closed_form_two_points() -> None:
    X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    y = np.array([1.0, -1.0])
    for solver in ("auto", "cvxpy"):
        r1 = ib.l1_max_margin(X, y, solver=solver)
        np.testing.assert_allclose(r1.w, [1 / 3, 1 / 3], atol=1e-8)
        np.testing.assert_allclose(r1.margin, 1.5, rtol=1e-8)
        r2 = ib.l2_max_margin(X, y, solver=solver)
        np.testing.assert_allclose(r2.w, [1 / 3, 1 / 3], atol=1e-8)
        np.testing.assert_array_equal(r2.support, [0, 1])


@pytest.mark.parametrize(
    ("kind", "n", "d", "seed"),
    [("pm1", 40, 300, 0), ("pm1", 60, 100, 1), ("pm1", 25, 1000, 2), ("gauss", 30, 400, 3),
     ("gauss", 50, 40, 4),
     # n > d through column generation (from 50 features); a dense optimum (~n features)
     # that the small start must grow to over several pricing rounds
     ("pm1", 300, 120, 6), ("gauss", 80, 600, 7)],
)  # fmt: skip
def test_l1_fast_matches_cvxpy(kind: str, n: int, d: int, seed: int) -> None:
    X, y = (_sparse_pm1 if kind == "pm1" else _gaussian)(n, d, seed)
    fast = ib.l1_max_margin(X, y)
    ref = ib.l1_max_margin(X, y, solver="cvxpy")
    assert fast.solver == "highs-colgen"
    assert ref.solver == "cvxpy:CLARABEL"
    np.testing.assert_allclose(fast.objective, ref.objective, rtol=1e-6)
    np.testing.assert_array_equal(fast.active_features, ref.active_features)
    _check_certificate(fast, X, y)
    _check_certificate(ref, X, y)
    assert fast.relative_gap <= 1e-7


def test_l1_recovers_sparse_direction() -> None:
    X, y = _sparse_pm1(120, 2000, 5)
    res = ib.l1_max_margin(X, y)
    assert len(res.active_features) == 3
    np.testing.assert_allclose(res.norm, 3.0, rtol=1e-9)  # w* itself, margin 1 on ±1 data


@pytest.mark.parametrize(("kind", "n", "d"), [("pm1", 30, 200), ("gauss", 40, 25)])
def test_l2_fast_matches_cvxpy(kind: str, n: int, d: int) -> None:
    X, y = (_sparse_pm1 if kind == "pm1" else _gaussian)(n, d, 7)
    fast = ib.l2_max_margin(X, y)
    ref = ib.l2_max_margin(X, y, solver="cvxpy")
    np.testing.assert_allclose(fast.w, ref.w, atol=1e-6 * np.abs(ref.w).max())
    np.testing.assert_allclose(fast.norm, ref.norm, rtol=1e-7)
    _check_certificate(fast, X, y)
    # SVM coefficients a = μ‖w‖: w = Xᵀ(a ⊙ y), ‖w‖² = Σa
    a = fast.dual * fast.norm
    np.testing.assert_allclose(X.T @ (a * y), fast.w, atol=1e-9 * np.abs(fast.w).max())


def test_lp_consistency() -> None:
    X, y = _gaussian(20, 30, 11)
    r1 = ib.l1_max_margin(X, y)
    r2 = ib.l2_max_margin(X, y)
    p1 = ib.lp_max_margin(X, y, p=1, solver="cvxpy")
    p2 = ib.lp_max_margin(X, y, p=2.0, solver="cvxpy")
    np.testing.assert_allclose(p1.norm, r1.norm, rtol=1e-6)
    np.testing.assert_allclose(p2.norm, r2.norm, rtol=1e-6)
    # w₂* is the projection of 0 onto the feasible set, so any feasible w has
    # ‖w − w₂*‖² ≤ ‖w‖² − ‖w₂*‖²: the distance is controlled by the objective gap.
    dist2 = np.sum((p2.w - r2.w) ** 2)
    assert dist2 <= p2.norm**2 - r2.norm**2 + 1e-14
    np.testing.assert_allclose(p2.w, r2.w, atol=1e-4 * np.abs(r2.w).max())
    assert ib.lp_max_margin(X, y, p=1).solver == "highs-colgen"
    # norms are ordered: ‖w_p‖_p is non-increasing in p (‖·‖_p decreases with p)
    p3 = ib.lp_max_margin(X, y, p=3)
    pinf = ib.lp_max_margin(X, y, p=np.inf)
    assert r1.norm >= r2.norm * (1 - 1e-9) >= p3.norm * (1 - 1e-9) >= pinf.norm * (1 - 1e-9)


def test_not_separable() -> None:
    a = np.array([1.0, 2.0, -1.0])
    X = np.stack([a, -a, 2 * a])
    y = np.array([1.0, 1.0, -1.0])
    for f in (ib.l1_max_margin, ib.l2_max_margin):
        with pytest.raises(ib.NotSeparableError, match="not linearly separable"):
            f(X, y)
        with pytest.raises(ib.NotSeparableError, match="not linearly separable"):
            f(X, y, solver="cvxpy")
    # column-generation path (d > 2n, d > 200)
    rng = np.random.default_rng(0)
    b = rng.standard_normal(400)
    X2 = np.stack([b, -b, rng.standard_normal(400)])
    with pytest.raises(ib.NotSeparableError, match="not linearly separable"):
        ib.l1_max_margin(X2, np.ones(3))


def test_bad_inputs() -> None:
    X = np.eye(3)
    with pytest.raises(ValueError, match=r"'y' argument of l1_max_margin.*y = 2\*y - 1"):
        ib.l1_max_margin(X, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="'X' argument of l2_max_margin must be finite"):
        ib.l2_max_margin(np.array([[np.nan, 1.0]]), np.array([1.0]))
    with pytest.raises(ValueError, match="'X' and 'y'"):
        ib.l1_max_margin(X, np.ones(2))
    with pytest.raises(ValueError, match="'p' argument of lp_max_margin"):
        ib.lp_max_margin(X, np.ones(3), p=0.5)
    with pytest.raises(ValueError, match="'solver' argument of l1_max_margin"):
        ib.l1_max_margin(X, np.ones(3), solver="gurobi")
    with pytest.raises(ValueError, match="'cvxpy_solver' argument of l1_max_margin"):
        ib.l1_max_margin(X, np.ones(3), solver="cvxpy", cvxpy_solver="NOPE")


def test_result_is_frozen() -> None:
    res = ib.l1_max_margin(np.eye(2), np.ones(2))
    with pytest.raises(AttributeError):
        res.w = None  # type: ignore[misc]


@pytest.mark.slow
def test_paper_scale_l1() -> None:
    X, y = _sparse_pm1(256, 100_000, 0)
    res = ib.l1_max_margin(X, y)
    _check_certificate(res, X, y)
    assert len(res.active_features) == 3
