"""Tests of kernel_svm (K1) and multiclass_kernel_svm: closed forms, two routes, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import implicitbias as ib
from implicitbias import InaccurateSolutionWarning, NotSeparableError

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _linear_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian inputs, labels from a random hyperplane through 0 (separable, K rank d)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    w = rng.standard_normal(d)
    y = np.sign(X @ w)
    return X, X @ X.T, y


def _rbf_data(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """RBF kernel, labels from a nonlinear rule (a sphere in the first 3 coordinates)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    r = np.linalg.norm(X[:, :3], axis=1)
    y = np.where(r > np.median(r), 1.0, -1.0)
    sq = np.sum(X**2, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    return np.exp(-D2 / (2.0 * d)), y


def _reference(K: np.ndarray, y: np.ndarray, **kw) -> ib.KernelSVMResult:
    """The cvxpy route; its interior-point answer may only reach ~1e-9, so it may warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InaccurateSolutionWarning)
        return ib.kernel_svm(K, y, solver="cvxpy", **kw)


def _check_certificate(res: ib.KernelSVMResult, K: np.ndarray, y: np.ndarray) -> None:
    assert res.status == "optimal"
    assert res.kkt_residual <= 1e-9
    assert np.all(res.svm_dual >= 0)
    q = y * res.decision_function(K)
    np.testing.assert_array_less(1.0 - 1e-9, q)  # primal feasibility
    np.testing.assert_allclose(q[res.support], 1.0, atol=1e-9)  # complementary slackness
    np.testing.assert_allclose(res.norm**2, np.sum(res.svm_dual), rtol=1e-9)  # zero duality gap
    np.testing.assert_allclose(res.margin, 1.0 / np.sqrt(np.sum(res.svm_dual)), rtol=1e-9)
    assert res.margin_lower <= res.margin * (1 + 1e-12)
    assert res.margin <= res.margin_upper * (1 + 1e-12)


# --------------------------------------------------------------------------------------------
# closed forms
# --------------------------------------------------------------------------------------------


def test_two_points_both_support() -> None:
    K = np.array([[2.0, 1.0], [1.0, 2.0]])
    y = np.array([1.0, -1.0])
    res = ib.kernel_svm(K, y)
    # Q = [[2, -1], [-1, 2]], a = Q^{-1} 1 = (1, 1), ||h||^2 = 2
    np.testing.assert_allclose(res.svm_dual, [1.0, 1.0], rtol=1e-12)
    np.testing.assert_allclose(res.margin, 1 / np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(res.objective, np.sqrt(2), rtol=1e-12)  # norm form: ||h||
    np.testing.assert_array_equal(res.support, [0, 1])
    _check_certificate(res, K, y)


def test_two_collinear_points_singular_kernel() -> None:
    # x1 = (1, 0), x2 = (2, 0), both +1: K is singular, h = (1, 0), a = (1, 0)
    X = np.array([[1.0, 0.0], [2.0, 0.0]])
    K = X @ X.T
    y = np.array([1.0, 1.0])
    res = ib.kernel_svm(K, y)
    np.testing.assert_allclose(res.svm_dual, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(res.margin, 1.0, rtol=1e-12)
    np.testing.assert_array_equal(res.support, [0])
    _check_certificate(res, K, y)


def test_orthogonal_features_dual_is_inverse_diagonal() -> None:
    d = np.array([1.0, 4.0, 0.5, 2.0, 3.0])
    y = np.array([1.0, -1.0, -1.0, 1.0, 1.0])
    res = ib.kernel_svm(np.diag(d), y)
    np.testing.assert_allclose(res.svm_dual, 1.0 / d, rtol=1e-12)
    np.testing.assert_allclose(res.margin, 1.0 / np.sqrt(np.sum(1.0 / d)), rtol=1e-12)
    np.testing.assert_array_equal(res.support, np.arange(5))


def test_linear_kernel_is_l2_max_margin_by_hand() -> None:
    # min ||w|| s.t. w1 + 2 w2 >= 1, 2 w1 + w2 >= 1 (both +1): w = (1/3, 1/3)
    X = np.array([[1.0, 2.0], [2.0, 1.0], [3.0, 3.0]])
    y = np.array([1.0, 1.0, 1.0])
    res = ib.kernel_svm(X @ X.T, y)
    w = X.T @ res.coef
    np.testing.assert_allclose(w, [1 / 3, 1 / 3], rtol=1e-12)
    np.testing.assert_allclose(res.margin, 3 / np.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(res.svm_dual, [1 / 9, 1 / 9, 0.0], atol=1e-14)
    np.testing.assert_array_equal(res.support, [0, 1])
    # prediction on new points = sign <x, w>
    Xn = np.array([[1.0, -2.0], [-1.0, 0.5], [0.2, 0.3]])
    np.testing.assert_allclose(res.decision_function(Xn @ X.T), Xn @ w, rtol=1e-12)
    np.testing.assert_array_equal(res.predict(Xn @ X.T), [-1.0, -1.0, 1.0])


def test_linear_kernel_matches_primal_qp() -> None:
    """Independent route: the primal min ||w||^2 s.t. y_i <x_i, w> >= 1 in R^d."""
    cp = pytest.importorskip("cvxpy")
    X, K, y = _linear_data(60, 4, seed=3)
    res = ib.kernel_svm(K, y)
    w = cp.Variable(4)
    cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w) >= 1]).solve(
        solver="CLARABEL"
    )
    np.testing.assert_allclose(X.T @ res.coef, w.value, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(res.margin, 1 / np.linalg.norm(w.value), rtol=1e-6)


# --------------------------------------------------------------------------------------------
# fast route vs cvxpy reference
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [20, 80, 250])
@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_fast_route_matches_cvxpy(kind: str, n: int) -> None:
    if kind == "linear":
        _, K, y = _linear_data(n, 5, seed=n)  # rank 5 < n: rank-deficient Q
    else:
        K, y = _rbf_data(n, 6, seed=n)
    fast = ib.kernel_svm(K, y)
    ref = _reference(K, y)
    assert fast.solver == "active-set"
    _check_certificate(fast, K, y)
    np.testing.assert_allclose(fast.margin, ref.margin, rtol=1e-6)
    np.testing.assert_array_equal(fast.support, ref.support)
    np.testing.assert_allclose(
        fast.decision_function(K), ref.decision_function(K), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("d", [2, 10])
def test_rank_deficient_linear_kernel_many_points(d: int) -> None:
    """n = 600 points in R^d: Q has rank d, working sets are singular (exchange steps)."""
    _, K, y = _linear_data(600, d, seed=d)
    fast = ib.kernel_svm(K, y)
    ref = _reference(K, y, cvxpy_formulation="factor")
    assert fast.solver == "active-set"
    _check_certificate(fast, K, y)
    assert fast.support.size <= d
    np.testing.assert_allclose(fast.margin, ref.margin, rtol=1e-6)
    np.testing.assert_array_equal(fast.support, ref.support)


def test_factor_formulation_agrees() -> None:
    _, K, y = _linear_data(100, 3, seed=7)
    a = _reference(K, y, cvxpy_formulation="quad_form")
    b = _reference(K, y, cvxpy_formulation="factor")
    np.testing.assert_allclose(a.margin, b.margin, rtol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_fast_route_matches_cvxpy_n1000(kind: str) -> None:
    if kind == "linear":
        _, K, y = _linear_data(1000, 20, seed=1)
    else:
        K, y = _rbf_data(1000, 20, seed=1)
    fast = ib.kernel_svm(K, y)
    ref = _reference(K, y)
    _check_certificate(fast, K, y)
    np.testing.assert_allclose(fast.margin, ref.margin, rtol=1e-6)
    np.testing.assert_array_equal(fast.support, ref.support)


def test_result_is_frozen() -> None:
    res = ib.kernel_svm(np.eye(2), np.array([1.0, -1.0]))
    with pytest.raises(AttributeError):
        res.margin = 2.0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# not separable
# --------------------------------------------------------------------------------------------


def test_duplicate_points_opposite_labels_not_separable() -> None:
    K = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    with pytest.raises(NotSeparableError, match="not separable in the kernel's feature space"):
        ib.kernel_svm(K, np.array([1.0, -1.0, 1.0]))


def test_one_dimensional_inconsistent_labels_not_separable() -> None:
    X = np.array([[1.0], [2.0], [-0.5]])
    with pytest.raises(NotSeparableError):
        ib.kernel_svm(X @ X.T, np.array([1.0, -1.0, 1.0]))


def test_random_labels_low_rank_not_separable() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    y = np.where(rng.random(60) < 0.5, -1.0, 1.0)
    with pytest.raises(NotSeparableError):
        ib.kernel_svm(X @ X.T, y)


def test_not_separable_on_cvxpy_route() -> None:
    K = np.ones((2, 2))
    with pytest.raises(NotSeparableError):
        ib.kernel_svm(K, np.array([1.0, -1.0]), solver="cvxpy")


def test_zero_kernel_not_separable() -> None:
    with pytest.raises(NotSeparableError):
        ib.kernel_svm(np.zeros((3, 3)), np.array([1.0, -1.0, 1.0]))


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------


def test_bad_inputs_name_the_argument() -> None:
    y = np.array([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match="'K' argument of kernel_svm must be a square"):
        ib.kernel_svm(np.ones((3, 2)), y)
    with pytest.raises(ValueError, match="'K' argument of kernel_svm must be a symmetric"):
        ib.kernel_svm(np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), y)
    bad = np.eye(3)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="'K' argument of kernel_svm must be finite"):
        ib.kernel_svm(bad, y)
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="'K' argument of kernel_svm"):
        ib.kernel_svm(bad, y)
    with pytest.raises(ValueError, match=r"'y' argument of kernel_svm.*y = 2\*y - 1"):
        ib.kernel_svm(np.eye(3), np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="'y' argument of kernel_svm must be of length 3"):
        ib.kernel_svm(np.eye(3), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="'solver' argument of kernel_svm"):
        ib.kernel_svm(np.eye(3), y, solver="newton")
    with pytest.raises(ValueError, match="'tol' argument of kernel_svm"):
        ib.kernel_svm(np.eye(3), y, tol=-1.0)
    with pytest.raises(
        ValueError, match="'K' argument of kernel_svm must be positive semidefinite"
    ):
        ib.kernel_svm(-np.eye(3), y)
    res = ib.kernel_svm(np.eye(3), y)
    with pytest.raises(ValueError, match=r"'K_new_train' argument .* an \(m, 3\) kernel"):
        res.decision_function(np.ones((2, 4)))
    with pytest.raises(ValueError, match="'K_new_train' argument"):
        res.predict(np.ones(3))


# --------------------------------------------------------------------------------------------
# multiclass
# --------------------------------------------------------------------------------------------


def _multiclass_reference(K_full: np.ndarray, y: np.ndarray) -> ib.MulticlassKernelSVMResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InaccurateSolutionWarning)
        return ib.multiclass_kernel_svm(K_full, y, solver="cvxpy")


def test_multiclass_one_point_three_classes_by_hand() -> None:
    # phi_c orthonormal: constraints h0 - h1 >= 1, h0 - h2 >= 1; optimum h = (2, -1, -1)/3
    res = ib.multiclass_kernel_svm(np.eye(3), np.array([0]))
    np.testing.assert_allclose(res.svm_dual, [[0.0, 1 / 3, 1 / 3]], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(res.coef, [[2 / 3, -1 / 3, -1 / 3]], rtol=1e-12)
    np.testing.assert_allclose(res.margin, np.sqrt(3 / 2), rtol=1e-12)
    np.testing.assert_array_equal(res.support, [[0, 1], [0, 2]])
    np.testing.assert_allclose(res.decision_function(np.eye(3)), [[2 / 3, -1 / 3, -1 / 3]])


def test_multiclass_two_classes_reduces_to_binary() -> None:
    # phi_c(x) = s_c psi(x) / 2 with s = (-1, +1): phi_y - phi_other = (2y - 1) psi
    K, ypm = _rbf_data(40, 4, seed=5)
    s = np.array([-1.0, 1.0])
    K_full = np.kron(K, np.outer(s, s)) / 4.0
    labels = ((ypm + 1) / 2).astype(int)
    mc = ib.multiclass_kernel_svm(K_full, labels)
    binary = ib.kernel_svm(K, ypm)
    np.testing.assert_allclose(mc.margin, binary.margin, rtol=1e-9)
    other = 1 - labels
    np.testing.assert_allclose(
        mc.svm_dual[np.arange(40), other], binary.svm_dual, rtol=1e-8, atol=1e-10
    )
    np.testing.assert_array_equal(mc.predict(K_full), labels)


@pytest.mark.parametrize("structure", ["random-features", "kron-identity"])
def test_multiclass_matches_cvxpy(structure: str) -> None:
    rng = np.random.default_rng(11)
    n, C = 25, 4
    y = rng.integers(0, C, size=n)
    if structure == "random-features":
        p = 60  # n (C - 1) = 75 pairs > p: the pair Gram M is rank-deficient
        Phi = rng.standard_normal((n * C, p))
        K_full = Phi @ Phi.T
    else:
        K, _ = _rbf_data(n, 3, seed=2)
        K_full = np.kron(K, np.eye(C))
    fast = ib.multiclass_kernel_svm(K_full, y)
    ref = _multiclass_reference(K_full, y)
    assert fast.status == "optimal"
    np.testing.assert_allclose(fast.margin, ref.margin, rtol=1e-6)
    np.testing.assert_array_equal(fast.support, ref.support)
    scores = fast.decision_function(K_full)
    gaps = scores[np.arange(n), y][:, None] - scores
    gaps[np.arange(n), y] = np.inf
    np.testing.assert_array_less(1.0 - 1e-9, gaps)  # all pair constraints hold
    np.testing.assert_array_equal(fast.predict(K_full), y)
    np.testing.assert_array_equal(fast.svm_dual[np.arange(n), y], 0.0)


def test_multiclass_not_separable_and_bad_inputs() -> None:
    K_full = np.kron(np.ones((2, 2)), np.eye(3))  # the same input twice
    with pytest.raises(NotSeparableError):
        ib.multiclass_kernel_svm(K_full, np.array([0, 1]))
    with pytest.raises(ValueError, match="'K_full' argument of multiclass_kernel_svm"):
        ib.multiclass_kernel_svm(np.eye(5), np.array([0, 1]))
    with pytest.raises(ValueError, match="'y' argument of multiclass_kernel_svm"):
        ib.multiclass_kernel_svm(np.eye(6), np.array([0, 3]))
    with pytest.raises(ValueError, match="'y' argument of multiclass_kernel_svm"):
        ib.multiclass_kernel_svm(np.eye(6), np.array([0.5, 1.0]))
    res = ib.multiclass_kernel_svm(np.eye(6), np.array([0, 2]))
    with pytest.raises(ValueError, match="'K_full_new_train' argument"):
        res.decision_function(np.ones((3, 5)))
