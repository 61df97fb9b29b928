"""Minimum-norm interpolation: basis pursuit and min-ℓ2."""

from __future__ import annotations

import numpy as np
import pytest

import implicitbias as ib


def test_closed_forms() -> None:
    r1 = ib.min_l1_interpolation([[1.0, 2.0]], [2.0])
    np.testing.assert_allclose(r1.w, [0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(r1.dual, [0.5], atol=1e-12)
    r2 = ib.min_l2_interpolation([[1.0, 2.0]], [2.0])
    np.testing.assert_allclose(r2.w, [0.4, 0.8], atol=1e-12)
    np.testing.assert_allclose(r2.norm, 2 / np.sqrt(5), rtol=1e-12)


def test_basis_pursuit_recovers_sparse_vector() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 200))
    w = np.zeros(200)
    w[[3, 50, 120]] = [1.0, -2.0, 0.5]
    res = ib.min_l1_interpolation(X, X @ w)
    np.testing.assert_allclose(res.w, w, atol=1e-9)
    assert res.status == "optimal"
    assert np.abs(X.T @ res.dual).max() <= 1 + 1e-12
    np.testing.assert_allclose(res.dual_objective, res.norm, rtol=1e-9)
    l2 = ib.min_l2_interpolation(X, X @ w)
    np.testing.assert_allclose(X @ l2.w, X @ w, atol=1e-9)
    assert l2.norm <= np.linalg.norm(w) and np.abs(l2.w).sum() >= res.norm


def test_l1_interpolation_matches_cvxpy() -> None:
    import cvxpy as cp

    rng = np.random.default_rng(1)
    X = rng.standard_normal((15, 40))
    y = rng.standard_normal(15)
    res = ib.min_l1_interpolation(X, y)
    w = cp.Variable(40)
    cp.Problem(cp.Minimize(cp.norm1(w)), [X @ w == y]).solve(solver="CLARABEL")
    np.testing.assert_allclose(res.norm, np.abs(w.value).sum(), rtol=1e-6)


def test_infeasible() -> None:
    X = np.array([[1.0, 1.0], [2.0, 2.0]])
    for f in (ib.min_l1_interpolation, ib.min_l2_interpolation):
        with pytest.raises(ib.InfeasibleError, match="not in the range of X"):
            f(X, [1.0, 3.0])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="'y' argument of min_l1_interpolation must be finite"):
        ib.min_l1_interpolation(np.eye(2), [np.nan, 1.0])
    with pytest.raises(ValueError, match="'X' and 'y'"):
        ib.min_l2_interpolation(np.eye(2), [1.0, 2.0, 3.0])
