"""Tests of kernel_regression (K2): exact interpolation, singular kernels, errors."""

from __future__ import annotations

import numpy as np
import pytest

import implicitbias as ib
from implicitbias import InaccurateSolutionWarning, InfeasibleError


def _rbf(X: np.ndarray, Z: np.ndarray) -> np.ndarray:
    D2 = np.sum(X**2, 1)[:, None] + np.sum(Z**2, 1)[None, :] - 2 * X @ Z.T
    return np.exp(-np.maximum(D2, 0.0) / 2.0)


def test_two_by_two_by_hand() -> None:
    K = np.array([[2.0, 1.0], [1.0, 2.0]])
    res = ib.kernel_regression(K, np.array([1.0, -1.0]))
    np.testing.assert_allclose(res.coef, [1.0, -1.0], rtol=1e-14)
    np.testing.assert_allclose(res.norm, np.sqrt(2.0), rtol=1e-14)
    assert res.status == "optimal"
    assert res.solver == "cholesky"


def test_rbf_interpolation_is_exact() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = np.sin(X[:, 0]) + X[:, 1]
    K = _rbf(X, X)
    res = ib.kernel_regression(K, y)
    np.testing.assert_allclose(res.coef, np.linalg.solve(K, y), rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.predict(K), y, atol=1e-9)
    assert res.max_violation <= 1e-9
    np.testing.assert_allclose(res.norm, np.sqrt(y @ np.linalg.solve(K, y)), rtol=1e-8)
    Xn = rng.standard_normal((5, 3))
    np.testing.assert_allclose(
        res.predict(_rbf(Xn, X)), _rbf(Xn, X) @ np.linalg.solve(K, y), rtol=1e-7, atol=1e-9
    )


def test_multi_output() -> None:
    rng = np.random.default_rng(1)
    X = rng.standard_normal((20, 2))
    Y = rng.standard_normal((20, 3))
    K = _rbf(X, X)
    res = ib.kernel_regression(K, Y)
    assert res.coef.shape == (20, 3)
    np.testing.assert_allclose(res.predict(K), Y, atol=1e-9)
    np.testing.assert_allclose(res.norm**2, np.trace(Y.T @ np.linalg.solve(K, Y)), rtol=1e-8)


def test_singular_kernel_warns_and_gives_min_norm_linear_interpolant() -> None:
    rng = np.random.default_rng(2)
    X = rng.standard_normal((10, 4))  # linear kernel of rank 4 < 10
    w_true = rng.standard_normal(4)
    y = X @ w_true  # in the range of K
    with pytest.warns(InaccurateSolutionWarning, match="numerically singular"):
        res = ib.kernel_regression(X @ X.T, y)
    assert res.solver == "pinv"
    assert res.rank == 4
    assert res.status == "optimal_inaccurate"
    w = X.T @ res.coef  # h in the linear feature space
    np.testing.assert_allclose(w, np.linalg.pinv(X) @ y, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(res.norm, np.linalg.norm(np.linalg.pinv(X) @ y), rtol=1e-8)
    Xn = rng.standard_normal((3, 4))
    np.testing.assert_allclose(res.predict(Xn @ X.T), Xn @ w, rtol=1e-8)


def test_y_outside_range_is_infeasible() -> None:
    K = np.array([[1.0, 1.0], [1.0, 1.0]])  # the same point twice
    with pytest.raises(InfeasibleError, match="not in the range"):
        ib.kernel_regression(K, np.array([1.0, 2.0]))


def test_bad_inputs_name_the_argument() -> None:
    with pytest.raises(ValueError, match="'K' argument of kernel_regression must be a square"):
        ib.kernel_regression(np.ones((2, 3)), np.ones(2))
    with pytest.raises(ValueError, match="'K' argument of kernel_regression must be a symmetric"):
        ib.kernel_regression(np.array([[1.0, 2.0], [0.0, 1.0]]), np.ones(2))
    with pytest.raises(ValueError, match="'y' argument of kernel_regression must be of length 2"):
        ib.kernel_regression(np.eye(2), np.ones(3))
    with pytest.raises(ValueError, match="'y' argument of kernel_regression must be finite"):
        ib.kernel_regression(np.eye(2), np.array([1.0, np.nan]))
    res = ib.kernel_regression(np.eye(2), np.ones(2))
    with pytest.raises(ValueError, match="'K_new_train' argument"):
        res.predict(np.ones((1, 3)))


def test_kernel_that_is_not_psd_is_rejected() -> None:
    """An indefinite or negative K is not a kernel: say so, naming 'K' (not "singular")."""
    K = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    with pytest.raises(
        ib.InvalidArgumentError,
        match=r"'K' argument of kernel_regression .*"
        r"positive semidefinite.*smallest eigenvalue -1",
    ):
        ib.kernel_regression(K, np.ones(2))
    with pytest.raises(ib.InvalidArgumentError, match="positive semidefinite"):
        ib.kernel_regression(-np.eye(3), np.ones(3))


def test_float32_rounded_psd_kernel_is_accepted() -> None:
    """A rank-deficient PSD kernel rounded to float32 has eigenvalues slightly below 0: that is
    rounding, not indefiniteness."""
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60, 4)) * 10.0
    K32 = (X @ X.T).astype(np.float32)
    assert np.linalg.eigvalsh(K32.astype(np.float64))[0] < 0  # rounding made it indefinite
    y = (X @ rng.standard_normal(4)).astype(np.float32)
    with pytest.warns(InaccurateSolutionWarning, match="rank 4 of 60"):
        res = ib.kernel_regression(K32, y, rtol=1e-6)
    np.testing.assert_allclose(K32.astype(np.float64) @ res.coef, y, atol=1e-2)
