"""Issue 11, items 3-4 (kernel half): every kernel is checked before it is trusted.

``kernel_svm`` (every solver), ``multiclass_kernel_svm`` and ``kernel_regression`` refuse a
kernel that is not symmetric PSD (to ``max(1e-6, n eps32) max_i K_ii``) with an error that
names the argument and gives the smallest eigenvalue; accept rounding-level negative
eigenvalues; give the same digits at every kernel scale; say "not separable" only with a
certificate that is checked here independently; and refuse an unknown ``cvxpy_solver`` on
every route.
"""

from __future__ import annotations

import importlib
import re
import warnings
from typing import Any

import numpy as np
import pytest

import implicitbias as ib

PSD = importlib.import_module("implicitbias._psd")
KSVM = importlib.import_module("implicitbias.kernel_regime.kernel_svm")

SOLVERS = ["auto", "active-set", "cvxpy"]
SCALES = [1e-10, 1e-5, 1e5, 1e10]


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def rbf(n: int = 40, d: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A full-rank RBF kernel and labels a kernel machine separates (a sphere)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.where(np.linalg.norm(X[:, :2], axis=1) > 1.1, 1.0, -1.0)
    sq = np.sum(X**2, axis=1)
    D2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    return np.exp(-D2 / (2.0 * d)), y


def linear(n: int = 40, d: int = 6, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A rank-d linear kernel, labels from a hyperplane through 0 (separable)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X @ X.T, np.sign(X @ rng.standard_normal(d))


def with_smallest_eigenvalue(K: np.ndarray, rel: float) -> np.ndarray:
    """``K`` with its smallest eigenvalue replaced by ``rel * max_i K_ii`` (exactly symmetric)."""
    w, V = np.linalg.eigh(K)
    w = w.copy()
    w[0] = rel * float(np.max(np.diag(K)))
    out = (V * w) @ V.T
    return 0.5 * (out + out.T)


def reported_eigenvalue(message: str) -> float:
    m = re.search(r"got a matrix with smallest eigenvalue (-?[0-9.]+(?:e[-+]?\d+)?)", message)
    assert m is not None, message
    return float(m.group(1))


def margin_certificate_ok(K: np.ndarray, y: np.ndarray, err: Any) -> None:
    """Check the certificate of a NotSeparableError independently of the library."""
    a = np.asarray(err.certificate, dtype=float)
    assert a.shape == y.shape
    assert np.all(a >= 0)
    np.testing.assert_allclose(np.sum(a), 1.0, rtol=1e-12)
    Q = np.outer(y, y) * K
    value = float(np.sqrt(max(a @ Q @ a, 0.0)))  # ||sum_i a_i y_i phi(x_i)||
    radius = float(np.sqrt(np.max(np.diag(K))))
    assert value <= 1e-7 * radius
    np.testing.assert_allclose(err.radius, radius, rtol=1e-12)
    assert err.certificate_norm <= 1e-7 * radius


def quiet(fn: Any, *args: Any, **kw: Any) -> Any:
    """Call ``fn``; the cvxpy route may warn that its interior-point answer is inaccurate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ib.InaccurateSolutionWarning)
        return fn(*args, **kw)


# --------------------------------------------------------------------------------------------
# indefinite kernels: refused on every route, naming the argument and lambda_min
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_kernel_svm_refuses_one_negative_eigenvalue(solver: str, kind: str) -> None:
    """A kernel whose smallest eigenvalue is -1e-3 of its scale (a hand-made or mis-summed
    kernel) is refused before any solve, whichever solver is asked for."""
    K, y = rbf() if kind == "rbf" else linear()
    Kb = with_smallest_eigenvalue(K, -1e-3)
    lam = float(np.linalg.eigvalsh(Kb)[0])
    with pytest.raises(
        ib.InvalidArgumentError, match="'K' argument of kernel_svm must be positive semidefinite"
    ) as info:
        ib.kernel_svm(Kb, y, solver=solver)
    np.testing.assert_allclose(reported_eigenvalue(str(info.value)), lam, rtol=1e-2)


@pytest.mark.parametrize("scale", [1e-12, 1e12])
def test_indefinite_kernel_refused_at_any_scale(scale: float) -> None:
    K, y = rbf()
    Kb = with_smallest_eigenvalue(K, -1e-3) * scale
    with pytest.raises(ib.InvalidArgumentError, match="'K' argument of kernel_svm") as info:
        ib.kernel_svm(Kb, y)
    lam = float(np.linalg.eigvalsh(Kb)[0])
    np.testing.assert_allclose(reported_eigenvalue(str(info.value)), lam, rtol=1e-2)


@pytest.mark.parametrize("solver", ["auto", "cvxpy"])
def test_multiclass_svm_refuses_indefinite_k_full(solver: str) -> None:
    K, _ = rbf(n=12)
    Kf = np.kron(with_smallest_eigenvalue(K, -1e-3), np.eye(3))
    lam = float(np.linalg.eigvalsh(Kf)[0])
    y = np.arange(12) % 3
    with pytest.raises(
        ib.InvalidArgumentError,
        match="'K_full' argument of multiclass_kernel_svm must be positive semidefinite",
    ) as info:
        ib.multiclass_kernel_svm(Kf, y, solver=solver)
    np.testing.assert_allclose(reported_eigenvalue(str(info.value)), lam, rtol=1e-2)


@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_kernel_regression_refuses_one_negative_eigenvalue(kind: str) -> None:
    K, y = rbf() if kind == "rbf" else linear()
    Kb = with_smallest_eigenvalue(K, -1e-3)
    with pytest.raises(
        ib.InvalidArgumentError,
        match="'K' argument of kernel_regression must be positive semidefinite",
    ) as info:
        ib.kernel_regression(Kb, y)
    lam = float(np.linalg.eigvalsh(Kb)[0])
    np.testing.assert_allclose(reported_eigenvalue(str(info.value)), lam, rtol=1e-2)


def test_distance_matrix_is_not_a_kernel() -> None:
    """Passing pairwise distances (zero diagonal) instead of a kernel."""
    X = np.random.default_rng(0).standard_normal((10, 3))
    D = np.linalg.norm(X[:, None] - X[None], axis=-1)
    with pytest.raises(ib.InvalidArgumentError, match="'K' argument of kernel_svm.*semidefinite"):
        ib.kernel_svm(D, np.where(X[:, 0] > 0, 1.0, -1.0))


def test_screen_above_proof_size_refuses_a_tanh_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Above PROOF_MAX_N the up-front check is a screen (a random principal submatrix): a
    sigmoid 'kernel', indefinite, is still refused with a bound on lambda_min."""
    monkeypatch.setattr(PSD, "PROOF_MAX_N", 10)
    monkeypatch.setattr(PSD, "SCREEN_SIZE", 40)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 4))
    K = np.tanh(0.5 * X @ X.T + 1.0)  # positive diagonal, eigenvalues down to -6.8
    assert np.min(np.diag(K)) > 0 and np.linalg.eigvalsh(K)[0] < -1.0
    with pytest.raises(ib.InvalidArgumentError, match=r"'K' argument of kernel_svm.*submatrix"):
        ib.kernel_svm(K, np.sign(X[:, 0]))


@pytest.mark.parametrize("c", [1.0, 1e6])
def test_screen_miss_is_caught_before_not_separable(
    monkeypatch: pytest.MonkeyPatch, c: float
) -> None:
    """If the screen misses an indefinite kernel, "not separable" is still never said: the
    certificate means sum a_i y_i phi(x_i) = 0 only for a PSD K, so K is proved first."""
    monkeypatch.setattr(PSD, "PROOF_MAX_N", 4)
    monkeypatch.setattr(PSD, "_submatrix_witness", lambda K, tol, **kw: None)
    # two near-duplicates with opposite labels, their kernel entry 5% too large: the 2 x 2
    # block [[1, 1.05], [1.05, 1]] has eigenvalue -0.05, and a = (1, 1) makes the dual unbounded
    K = np.eye(8)
    K[0, 1] = K[1, 0] = 1.05
    y = np.array([1.0, -1.0, 1.0, -1.0, 1.0, -1.0, 1.0, -1.0])
    with pytest.raises(
        ib.InvalidArgumentError, match="'K' argument of kernel_svm.*semidefinite"
    ) as info:
        ib.kernel_svm(K * c, y)
    np.testing.assert_allclose(reported_eigenvalue(str(info.value)), -0.05 * c, rtol=1e-2)


@pytest.mark.parametrize("kind", ["linear", "rbf"])
def test_check_proves_below_proof_size_and_screens_above(
    monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Up to PROOF_MAX_N the kernel is proved PSD: a rank-6 kernel by pivoted Cholesky plus
    Gershgorin on the residual, a full-rank one by Cholesky of K + tau I. Above, it is
    screened only; the answer is the same either way."""
    K, y = rbf(n=120) if kind == "rbf" else linear(n=120)
    report = PSD.check_psd(K, "kernel_svm", "K")
    assert report.proven
    assert report.method == ("low-rank proof" if kind == "linear" else "Cholesky proof")
    ref = ib.kernel_svm(K, y)
    monkeypatch.setattr(PSD, "PROOF_MAX_N", 50)
    report = PSD.check_psd(K, "kernel_svm", "K")
    assert report.method == "screen" and not report.proven
    np.testing.assert_allclose(ib.kernel_svm(K, y).margin, ref.margin, rtol=1e-12)


def test_low_rank_proof_never_proves_an_indefinite_kernel() -> None:
    """The low-rank route only ever accepts: a rank-6 kernel with a -1e-3 eigenvalue is not
    proved by it (the Gershgorin bound on the residual sees the negative part)."""
    K, _ = linear(n=120)
    Kb = with_smallest_eigenvalue(K, -1e-3)
    scale = float(np.max(np.diag(Kb)))
    tol = PSD.psd_rtol(120) * scale
    assert PSD._low_rank_proof(K, tol, scale)
    assert not PSD._low_rank_proof(Kb, tol, scale)


# --------------------------------------------------------------------------------------------
# malformed kernels: asymmetric, non-finite
# --------------------------------------------------------------------------------------------


def _multiclass(K: np.ndarray, y: np.ndarray) -> Any:
    with np.errstate(invalid="ignore"):  # inf * 0 in the Kronecker product is NaN: fine here
        K_full = np.kron(K, np.eye(2))
    return ib.multiclass_kernel_svm(K_full, (y > 0).astype(int))


FUNCS = {
    "kernel_svm": (lambda K, y: ib.kernel_svm(K, y), "K"),
    "kernel_regression": (lambda K, y: ib.kernel_regression(K, y), "K"),
    "multiclass_kernel_svm": (_multiclass, "K_full"),
}


@pytest.mark.parametrize("func", list(FUNCS))
def test_asymmetric_kernel_refused_with_its_asymmetry(func: str) -> None:
    """A cross-kernel K(X, X') (not symmetric) passed where K(X, X) is expected."""
    K, y = rbf(n=10)
    K = K.copy()
    K[0, 1] += 1e-3
    call, arg = FUNCS[func]
    with pytest.raises(
        ib.InvalidArgumentError,
        match=rf"'{arg}' argument of {func} must be a symmetric.*max \|K - K\^T\| = 0\.001",
    ):
        call(K, y)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("func", list(FUNCS))
def test_non_finite_kernel_refused(func: str, bad: float) -> None:
    K, y = rbf(n=10)
    K = K.copy()
    K[3, 3] = bad
    call, arg = FUNCS[func]
    with pytest.raises(
        ib.InvalidArgumentError, match=rf"'{arg}' argument of {func} must be finite"
    ):
        call(K, y)


# --------------------------------------------------------------------------------------------
# rounding-level negative eigenvalues are accepted
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", SOLVERS)
def test_kernel_svm_accepts_rounding_negative_eigenvalue(solver: str) -> None:
    """-1e-14 of the scale is rounding, not indefiniteness: same answer as the PSD kernel."""
    K, y = rbf()
    K0 = with_smallest_eigenvalue(K, 0.0)
    Kr = with_smallest_eigenvalue(K, -1e-14)
    assert np.linalg.eigvalsh(Kr)[0] < 0
    ref = quiet(ib.kernel_svm, K0, y, solver=solver)
    res = quiet(ib.kernel_svm, Kr, y, solver=solver)
    np.testing.assert_allclose(res.margin, ref.margin, rtol=1e-7)


def test_kernel_svm_accepts_float32_rounded_low_rank_kernel() -> None:
    """A rank-5 kernel rounded to float32 has many eigenvalues ~ -1e-7 of its scale."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((200, 5)) * 3.0
    y = np.sign(X @ rng.standard_normal(5))
    K32 = (X @ X.T).astype(np.float32)
    assert np.linalg.eigvalsh(K32.astype(np.float64))[0] < 0
    res = ib.kernel_svm(K32, y)
    ref = ib.l2_max_margin(X, y)
    np.testing.assert_allclose(res.margin, ref.margin, rtol=1e-5)


def test_multiclass_accepts_rounding_negative_eigenvalue() -> None:
    K, _ = rbf(n=12)
    y = np.arange(12) % 3
    ref = ib.multiclass_kernel_svm(np.kron(with_smallest_eigenvalue(K, 0.0), np.eye(3)), y)
    res = ib.multiclass_kernel_svm(np.kron(with_smallest_eigenvalue(K, -1e-14), np.eye(3)), y)
    np.testing.assert_allclose(res.margin, ref.margin, rtol=1e-8)


def test_kernel_regression_accepts_rounding_negative_eigenvalue() -> None:
    K, _ = rbf()
    Kr = with_smallest_eigenvalue(K, -1e-14)
    y = Kr @ np.random.default_rng(0).standard_normal(K.shape[0])  # in the range of K
    with pytest.warns(ib.InaccurateSolutionWarning, match="kernel_regression"):
        res = ib.kernel_regression(Kr, y)
    np.testing.assert_allclose(Kr @ res.coef, y, atol=1e-8 * np.max(np.abs(y)))


# --------------------------------------------------------------------------------------------
# scale: K -> c K gives svm_dual / c, margin * sqrt(c), to the last digits
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", SCALES)
@pytest.mark.parametrize("kind", ["rbf", "linear"])
def test_kernel_svm_answer_scales_exactly(c: float, kind: str) -> None:
    K, y = rbf() if kind == "rbf" else linear()
    ref = ib.kernel_svm(K, y)
    res = ib.kernel_svm(K * c, y)
    np.testing.assert_allclose(res.margin, ref.margin * np.sqrt(c), rtol=1e-12)
    np.testing.assert_allclose(res.svm_dual * c, ref.svm_dual, rtol=1e-10, atol=1e-12 * ref.svm_dual.max())
    np.testing.assert_array_equal(res.support, ref.support)
    np.testing.assert_allclose(res.decision_function(K * c), ref.decision_function(K), atol=1e-9)


@pytest.mark.parametrize("c", [1e-10, 1e10])
def test_kernel_svm_cvxpy_route_at_extreme_scale_matches_active_set(c: float) -> None:
    """Without normalization CLARABEL's absolute tolerances would see a dual of size 1e-10
    (or 1e10) as zero (or overflowing); the reference route must agree at every scale."""
    K, y = rbf(n=30)
    ref = ib.kernel_svm(K, y)
    res = quiet(ib.kernel_svm, K * c, y, solver="cvxpy")
    np.testing.assert_allclose(res.margin, ref.margin * np.sqrt(c), rtol=1e-6)
    np.testing.assert_allclose(res.svm_dual * c, ref.svm_dual, atol=1e-5 * ref.svm_dual.max())


@pytest.mark.parametrize("c", [1e-10, 1e10])
def test_multiclass_answer_scales_exactly(c: float) -> None:
    K, _ = rbf(n=15)
    Kf = np.kron(K, np.eye(3)) + 0.1 * np.kron(K, np.ones((3, 3)))
    y = np.arange(15) % 3
    ref = ib.multiclass_kernel_svm(Kf, y)
    res = ib.multiclass_kernel_svm(Kf * c, y)
    np.testing.assert_allclose(res.margin, ref.margin * np.sqrt(c), rtol=1e-12)
    np.testing.assert_allclose(res.svm_dual * c, ref.svm_dual, atol=1e-12 * ref.svm_dual.max())


@pytest.mark.parametrize("c", [1e-10, 1e10])
def test_kernel_regression_answer_scales_exactly(c: float) -> None:
    K, y = rbf()
    ref = ib.kernel_regression(K, y)
    res = ib.kernel_regression(K * c, y)
    np.testing.assert_allclose(
        res.coef * c, ref.coef, rtol=1e-9, atol=1e-9 * np.abs(ref.coef).max()
    )
    np.testing.assert_allclose(res.norm * np.sqrt(c), ref.norm, rtol=1e-10)


# --------------------------------------------------------------------------------------------
# kernel_regression judges interpolation relative to the targets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("c", [1.0, 1e-10])
def test_kernel_regression_tiny_targets_outside_the_range_are_infeasible(c: float) -> None:
    """Targets of size 1e-6 that no h fits (duplicate inputs, different targets) used to pass
    an absolute residual test; they are judged relative to max|y| now."""
    K, _ = linear(n=10, d=3)
    y = 1e-6 * np.random.default_rng(0).standard_normal(10)  # rank 3: not in the range
    with pytest.raises(ib.InfeasibleError, match="kernel_regression: y is not in the range"):
        ib.kernel_regression(K * c, y)


def test_kernel_regression_tiny_targets_in_the_range_fit_to_relative_accuracy() -> None:
    K, _ = rbf()
    y = 1e-6 * (K @ np.random.default_rng(0).standard_normal(K.shape[0]))
    res = ib.kernel_regression(K, y)
    assert res.max_violation <= 1e-8 * np.max(np.abs(y))


# --------------------------------------------------------------------------------------------
# cvxpy_solver is checked on every route
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("solver", ["auto", "active-set"])
def test_unknown_cvxpy_solver_refused_on_the_fast_route(solver: str) -> None:
    K, y = rbf(n=10)
    with pytest.raises(
        ib.InvalidArgumentError, match="'cvxpy_solver' argument of kernel_svm.*'NOPE'"
    ):
        ib.kernel_svm(K, y, solver=solver, cvxpy_solver="NOPE")


def test_unknown_cvxpy_solver_refused_on_multiclass_fast_route() -> None:
    with pytest.raises(
        ib.InvalidArgumentError, match="'cvxpy_solver' argument of multiclass_kernel_svm"
    ):
        ib.multiclass_kernel_svm(np.eye(6), np.array([0, 1]), cvxpy_solver="GUROBl")


@pytest.mark.parametrize("solver", ["auto", "cvxpy"])
def test_lp_only_cvxpy_solver_refused_up_front(solver: str) -> None:
    """SCIPY (installed, LP only) cannot solve the dual QP: refused before solving."""
    K, y = rbf(n=10)
    with pytest.raises(
        ib.InvalidArgumentError,
        match="'cvxpy_solver' argument of kernel_svm must be .*quadratic programs.*'SCIPY'",
    ):
        ib.kernel_svm(K, y, solver=solver, cvxpy_solver="SCIPY")


def test_cvxpy_solver_of_wrong_type_refused() -> None:
    K, y = rbf(n=10)
    with pytest.raises(ib.InvalidArgumentError, match="'cvxpy_solver' argument of kernel_svm"):
        ib.kernel_svm(K, y, cvxpy_solver=3)


# --------------------------------------------------------------------------------------------
# "not separable" only with a certificate
# --------------------------------------------------------------------------------------------


def _duplicates() -> tuple[np.ndarray, np.ndarray]:
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.5, 0.5]])
    return X @ X.T, np.array([1.0, 1.0, -1.0, 1.0])


def _random_labels() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 2))
    return X @ X.T, np.where(rng.random(60) < 0.5, -1.0, 1.0)


@pytest.mark.parametrize("solver", ["auto", "cvxpy"])
@pytest.mark.parametrize("data", ["duplicates", "random_labels"])
@pytest.mark.parametrize("c", [1.0, 1e-8])
def test_not_separable_carries_a_checked_certificate(solver: str, data: str, c: float) -> None:
    K, y = _duplicates() if data == "duplicates" else _random_labels()
    with pytest.raises(ib.NotSeparableError, match="Certificate \\(error.certificate\\)") as info:
        ib.kernel_svm(K * c, y, solver=solver)
    margin_certificate_ok(K * c, y, info.value)


def test_zero_kernel_not_separable_with_certificate() -> None:
    K, y = np.zeros((3, 3)), np.array([1.0, -1.0, 1.0])
    with pytest.raises(ib.NotSeparableError, match="kernel_svm: the data are not separable") as e:
        ib.kernel_svm(K, y)
    np.testing.assert_allclose(np.sum(e.value.certificate), 1.0)
    assert e.value.certificate_norm == 0.0


def test_multiclass_not_separable_certificate() -> None:
    """The same input twice with different classes: the pair features of the two copies
    cancel. The certificate lives on the pairs (i, j), j != y_i."""
    n, C = 2, 3
    Kf = np.kron(np.ones((2, 2)), np.eye(3))
    y = np.array([0, 1])
    with pytest.raises(ib.NotSeparableError, match="multiclass_kernel_svm") as info:
        ib.multiclass_kernel_svm(Kf, y)
    a = info.value.certificate
    assert a.shape == (n, C)
    assert np.all(a >= 0) and np.all(a[np.arange(n), y] == 0)
    np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-12)
    # sum_ij a_ij (phi_{y_i}(x_i) - phi_j(x_i)) has zero norm: coefficients on the features
    coef = -a.copy()
    coef[np.arange(n), y] = a.sum(axis=1)
    v = coef.ravel()
    assert float(np.sqrt(max(v @ Kf @ v, 0.0))) <= 1e-7 * info.value.radius


def test_diverging_solver_without_certificate_is_not_called_not_separable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A solver that claims divergence on separable data is not believed: no certificate
    exists, so the answer comes from the fallback route (or a SolverError), never from
    a NotSeparableError."""
    K, y = rbf(n=20)
    ref = ib.kernel_svm(K, y)

    def fake(Q: np.ndarray, **kw: Any) -> Any:
        return KSVM._QPOutcome(a=np.full(Q.shape[0], 1e9), diverged=True, iterations=1)

    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", fake)
    res = quiet(ib.kernel_svm, K, y)
    assert res.solver == "cvxpy:CLARABEL (fallback)"
    np.testing.assert_allclose(res.margin, ref.margin, rtol=1e-6)
    with pytest.raises(ib.SolverError, match="no certificate of non-separability"):
        ib.kernel_svm(K, y, fallback=False)


def test_cvxpy_unbounded_without_certificate_is_a_solver_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import cvxpy as cp

    def solve(self: cp.Problem, *args: Any, **kwargs: Any) -> None:
        self._status = "unbounded"

    monkeypatch.setattr(cp.Problem, "solve", solve)
    K, y = rbf(n=10)
    with pytest.raises(ib.SolverError, match="kernel_svm: .*unbounded.*no certificate"):
        ib.kernel_svm(K, y, solver="cvxpy")


def test_result_scalars_are_python_floats() -> None:
    """margin, norm and the certified bounds are plain floats at every kernel scale (the
    rescaling back to the user's K must not leak numpy scalars into the result record)."""
    X = np.array([[1.0, 0.0], [0.0, 2.0]])
    for c in (1e-10, 1.0, 1e10):
        res = ib.kernel_svm(c * (X @ X.T), np.array([1.0, -1.0]))
        for name in ("margin", "norm", "margin_lower", "margin_upper"):
            assert type(getattr(res, name)) is float, name
        assert res.margin == pytest.approx(np.sqrt(c) / np.sqrt(1.25), rel=1e-12)
    multi = ib.multiclass_kernel_svm(np.eye(9), np.array([0, 1, 2]))
    assert type(multi.margin) is float and type(multi.norm) is float
