"""One result vocabulary (issue 12): the same names and one scaling for the same problem.

* ``kernel_svm(X @ X.T, y)`` and ``l2_max_margin(X, y)`` solve one problem, so they report the
  same ``objective``, ``dual``, ``dual_objective`` and ``duality_gap`` (norm form); likewise
  ``kernel_regression(X @ X.T, y)`` and ``min_l2_interpolation(X, y)``, and the multiclass SVM
  with two classes and the binary one;
* the fields mean what ``docs/results.md`` says, checked against independent cvxpy solves;
* every solver result has every field of the vocabulary, and every renamed field keeps a
  read-only alias that warns :class:`DeprecationWarning` and returns the new value.
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from typing import Any, get_args

import cvxpy as cp
import numpy as np
import pytest

import implicitbias as ib
from implicitbias import InaccurateSolutionWarning
from implicitbias._status import INACCURATE_GAP, INACCURATE_KKT, Status

# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------


def _separable(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs, labels from a random hyperplane through the origin."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(X @ rng.standard_normal(d))
    return X, y


def _regression(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal(n)


# (n, d, seed, scale of X): fewer and more features than examples, and data far from unit size
MARGIN_CASES = [
    (30, 8, 0, 1.0),
    (40, 3, 1, 1.0),
    (12, 50, 2, 1.0),
    (30, 8, 3, 1e-6),
    (30, 8, 4, 1e6),
]


def _close_gaps(a: Any, b: Any) -> None:
    """Both gaps certify the same optimum: tiny, and within 1e-9 of the objective of each
    other."""
    assert abs(a.duality_gap - b.duality_gap) <= 1e-9 * b.objective
    assert abs(a.relative_gap - b.relative_gap) <= 1e-9


# --------------------------------------------------------------------------------------------
# one problem, one answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d", "seed", "scale"), MARGIN_CASES)
def test_kernel_svm_reports_the_l2_max_margin_answer(
    n: int, d: int, seed: int, scale: float
) -> None:
    X, y = _separable(n, d, seed)
    X = scale * X
    ks = ib.kernel_svm(X @ X.T, y)
    l2 = ib.l2_max_margin(X, y)
    np.testing.assert_allclose(ks.objective, l2.objective, rtol=1e-8)
    np.testing.assert_allclose(ks.dual, l2.dual, rtol=1e-8, atol=1e-8 * float(l2.dual.max()))
    np.testing.assert_allclose(ks.dual_objective, l2.dual_objective, rtol=1e-8)
    np.testing.assert_allclose(ks.dual.sum(), l2.dual.sum(), rtol=1e-8)  # issue: 97.93 vs 9.90
    _close_gaps(ks, l2)
    np.testing.assert_allclose(ks.margin, l2.margin, rtol=1e-8)
    # the K1 multipliers are the norm-form ones times ||h|| (l2_max_margin's docstring)
    np.testing.assert_allclose(ks.svm_dual, l2.dual * l2.norm, rtol=1e-7, atol=1e-12)


def test_kernel_svm_and_l2_max_margin_agree_through_lp_max_margin() -> None:
    X, y = _separable(25, 6, 7)
    ks = ib.kernel_svm(X @ X.T, y)
    lp = ib.lp_max_margin(X, y, p=2.0)
    np.testing.assert_allclose(ks.objective, lp.objective, rtol=1e-8)
    np.testing.assert_allclose(ks.dual, lp.dual, rtol=1e-7, atol=1e-9 * float(lp.dual.max()))
    _close_gaps(ks, lp)


@pytest.mark.parametrize(("n", "d", "seed"), [(6, 20, 0), (10, 10, 1), (1, 3, 2)])
@pytest.mark.parametrize("scale", [1e-5, 1.0, 1e5])
def test_kernel_regression_reports_the_min_l2_interpolation_answer(
    n: int, d: int, seed: int, scale: float
) -> None:
    X, y = _regression(n, d, seed)
    X = scale * X
    kr = ib.kernel_regression(X @ X.T, y)
    li = ib.min_l2_interpolation(X, y)
    np.testing.assert_allclose(kr.objective, li.objective, rtol=1e-8)
    np.testing.assert_allclose(kr.dual, li.dual, rtol=1e-7, atol=1e-8 * np.abs(li.dual).max())
    np.testing.assert_allclose(kr.dual_objective, li.dual_objective, rtol=1e-8)
    _close_gaps(kr, li)
    assert kr.iterations == li.iterations == 0


def test_kernel_regression_singular_kernel_matches_min_l2_interpolation() -> None:
    """A duplicated example with the same target: K is singular (pinv route, warned)."""
    X, y = _regression(5, 12, 3)
    X = np.vstack([X, X[:1]])
    y = np.append(y, y[0])
    with pytest.warns(InaccurateSolutionWarning, match="numerically singular"):
        kr = ib.kernel_regression(X @ X.T, y)
    li = ib.min_l2_interpolation(X, y)
    np.testing.assert_allclose(kr.objective, li.objective, rtol=1e-8)
    np.testing.assert_allclose(kr.dual_objective, li.dual_objective, rtol=1e-8)
    _close_gaps(kr, li)
    # the dual is not unique here (two equal rows); both are feasible and optimal
    assert float(np.sqrt(kr.dual @ (X @ X.T) @ kr.dual)) <= 1.0 + 1e-12


def test_kernel_regression_zero_targets_have_zero_figures() -> None:
    X, _ = _regression(4, 7, 4)
    kr = ib.kernel_regression(X @ X.T, np.zeros(4))
    li = ib.min_l2_interpolation(X, np.zeros(4))
    assert kr.objective == li.objective == 0.0
    assert kr.duality_gap == 0.0 and kr.relative_gap == 0.0 and kr.dual_objective == 0.0
    np.testing.assert_array_equal(kr.dual, np.zeros(4))


def test_kernel_regression_multi_output_dual_is_the_stacked_one() -> None:
    """Several outputs: ||h|| of the stacked h, nu with <nu, Y> summed over outputs."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 15))
    Y = rng.standard_normal((6, 3))
    kr = ib.kernel_regression(X @ X.T, Y)
    W = np.linalg.lstsq(X, Y, rcond=None)[0]  # the minimum-Frobenius-norm interpolant
    np.testing.assert_allclose(kr.objective, np.linalg.norm(W), rtol=1e-9)
    assert kr.dual.shape == Y.shape
    np.testing.assert_allclose(kr.dual_objective, float(np.sum(kr.dual * Y)), rtol=1e-12)
    np.testing.assert_allclose(kr.dual_objective, kr.objective, rtol=1e-9)
    assert np.linalg.norm(X.T @ kr.dual) <= 1.0 + 1e-12  # ||sum_i nu_i phi(x_i)|| <= 1


def test_multiclass_with_two_classes_reports_the_binary_answer() -> None:
    """With phi_c(x) = s_c x / 2, s = (-1, +1), the pair feature phi_{y_i} - phi_other is
    y_i x_i: the two-class problem is the binary one, figure by figure."""
    X, ypm = _separable(30, 5, 6)
    s = np.array([-1.0, 1.0])
    K_full = np.kron(X @ X.T, np.outer(s, s)) / 4.0
    labels = ((ypm + 1) / 2).astype(int)
    mc = ib.multiclass_kernel_svm(K_full, labels)
    binary = ib.kernel_svm(X @ X.T, ypm)
    other = 1 - labels
    np.testing.assert_allclose(mc.objective, binary.objective, rtol=1e-8)
    np.testing.assert_allclose(mc.dual_objective, binary.dual_objective, rtol=1e-8)
    np.testing.assert_allclose(mc.dual[np.arange(30), other], binary.dual, rtol=1e-7, atol=1e-10)
    np.testing.assert_array_equal(mc.dual[np.arange(30), labels], 0.0)
    _close_gaps(mc, binary)


@pytest.mark.parametrize("c", [1e-8, 1e8])
def test_norm_form_scales_with_the_kernel(c: float) -> None:
    """K -> cK: objective, dual and gaps scale as 1/sqrt(c), svm_dual as 1/c."""
    X, y = _separable(20, 4, 8)
    K = X @ X.T
    ref = ib.kernel_svm(K, y)
    res = ib.kernel_svm(c * K, y)
    r = np.sqrt(c)
    np.testing.assert_allclose(res.objective * r, ref.objective, rtol=1e-10)
    np.testing.assert_allclose(res.dual * r, ref.dual, rtol=1e-9, atol=1e-12 * ref.dual.max())
    np.testing.assert_allclose(res.dual_objective * r, ref.dual_objective, rtol=1e-10)
    assert abs(res.duality_gap * r - ref.duality_gap) <= 1e-12 * ref.objective
    np.testing.assert_allclose(res.svm_dual * c, ref.svm_dual, rtol=1e-9, atol=1e-14)


# --------------------------------------------------------------------------------------------
# the fields mean what they say: independent cvxpy solves of the norm forms
# --------------------------------------------------------------------------------------------


def _cvxpy_norm_max_margin(Z: np.ndarray) -> tuple[float, np.ndarray]:
    """min ||w|| s.t. Z w >= 1 (rows z_i the constraint features); (optimum, multipliers).

    CLARABEL's optimum is good to ~1e-9 relative, its multipliers only to ~1e-5 (an interior
    point's duals of an SOCP): the tests compare the multipliers loosely and prove ours
    optimal through the optimum (a dual-feasible ``mu`` with ``sum(mu)`` equal to it)."""
    w = cp.Variable(Z.shape[1])
    con = Z @ w >= 1
    prob = cp.Problem(cp.Minimize(cp.norm(w, 2)), [con])
    prob.solve(solver="CLARABEL")
    assert prob.status == "optimal"
    return float(prob.value), np.asarray(con.dual_value, dtype=np.float64)


def test_kernel_svm_fields_match_an_independent_cvxpy_solve() -> None:
    X, y = _separable(25, 6, 9)
    ks = ib.kernel_svm(X @ X.T, y)
    opt, mu = _cvxpy_norm_max_margin(y[:, None] * X)
    np.testing.assert_allclose(ks.objective, opt, rtol=1e-8)
    np.testing.assert_allclose(ks.dual_objective, opt, rtol=1e-8)
    np.testing.assert_allclose(ks.dual, mu, atol=1e-4 * mu.max())
    # the definitions, from the result itself
    h = X.T @ ks.coef
    q = y * (X @ h)
    np.testing.assert_allclose(ks.objective, np.linalg.norm(h) / q.min(), rtol=1e-12)
    assert np.linalg.norm(X.T @ (ks.dual * y)) <= 1.0 + 1e-12  # exactly dual feasible
    np.testing.assert_allclose(ks.dual_objective, ks.dual.sum(), rtol=1e-14)
    assert ks.duality_gap == ks.objective - ks.dual_objective
    assert ks.relative_gap == abs(ks.duality_gap) / ks.objective
    assert -1e-14 * ks.objective <= ks.duality_gap <= 1e-9 * ks.objective
    np.testing.assert_allclose(ks.max_violation, max(0.0, 1.0 - q.min()), atol=1e-12)
    # the certified margin bounds are the two objectives' reciprocals
    np.testing.assert_allclose(1.0 / ks.objective, ks.margin_lower, rtol=1e-12)
    np.testing.assert_allclose(1.0 / ks.dual_objective, ks.margin_upper, rtol=1e-12)


def test_multiclass_fields_match_an_independent_cvxpy_solve() -> None:
    rng = np.random.default_rng(10)
    n, C, p = 12, 3, 40
    Phi = rng.standard_normal((n * C, p))  # phi_c(x_i) = Phi[i*C + c]
    y = rng.integers(0, C, size=n)
    mc = ib.multiclass_kernel_svm(Phi @ Phi.T, y)
    pairs = [(i, j) for i in range(n) for j in range(C) if j != y[i]]
    Z = np.array([Phi[i * C + y[i]] - Phi[i * C + j] for i, j in pairs])
    opt, mu = _cvxpy_norm_max_margin(Z)
    ref = np.zeros((n, C))
    for (i, j), m in zip(pairs, mu):
        ref[i, j] = m
    np.testing.assert_allclose(mc.objective, opt, rtol=1e-8)
    np.testing.assert_allclose(mc.dual_objective, opt, rtol=1e-8)
    np.testing.assert_allclose(mc.dual, ref, atol=1e-4 * mu.max())
    # exactly dual feasible: ||sum_p mu_p z_p|| <= 1
    assert float(np.linalg.norm(Z.T @ mc.dual[tuple(np.array(pairs).T)])) <= 1.0 + 1e-12
    np.testing.assert_allclose(mc.dual_objective, mc.dual.sum(), rtol=1e-14)
    assert mc.duality_gap == mc.objective - mc.dual_objective
    assert mc.relative_gap <= 1e-9


def test_kernel_regression_fields_match_an_independent_cvxpy_solve() -> None:
    X, y = _regression(7, 15, 11)
    kr = ib.kernel_regression(X @ X.T, y)
    w = cp.Variable(15)
    con = X @ w == y
    prob = cp.Problem(cp.Minimize(cp.norm(w, 2)), [con])
    prob.solve(solver="CLARABEL")
    nu = np.asarray(con.dual_value, dtype=np.float64)
    nu = nu * np.sign(nu @ y)  # cvxpy's sign convention for equality multipliers
    np.testing.assert_allclose(kr.objective, prob.value, rtol=1e-8)
    np.testing.assert_allclose(kr.dual, nu, atol=1e-4 * np.abs(nu).max())
    np.testing.assert_allclose(kr.dual_objective, float(kr.dual @ y), rtol=1e-14)
    np.testing.assert_allclose(kr.max_violation, np.abs(X @ X.T @ kr.coef - y).max(), rtol=1e-12)
    assert kr.duality_gap == kr.objective - kr.dual_objective


# --------------------------------------------------------------------------------------------
# every result has every field
# --------------------------------------------------------------------------------------------

CORE = ("iterations", "max_violation", "status", "solver", "solve_time")
GAPS = ("objective", "dual", "dual_objective", "duality_gap", "relative_gap")


def _results() -> dict[str, Any]:
    X, y = _separable(12, 4, 12)
    Xr, yr = _regression(4, 9, 13)
    rows, cols = np.triu_indices(3)
    M = np.outer([1.0, 2.0, -1.0], [1.0, 2.0, -1.0])
    return {
        "KernelSVMResult": ib.kernel_svm(X @ X.T, y),
        "KernelSVMResult-cvxpy": ib.kernel_svm(X @ X.T, y, solver="cvxpy"),
        "MulticlassKernelSVMResult": ib.multiclass_kernel_svm(np.eye(3), np.array([0])),
        "KernelRegressionResult": ib.kernel_regression(Xr @ Xr.T, yr),
        "MaxMarginResult-l1": ib.l1_max_margin(X, y),
        "MaxMarginResult-l2": ib.l2_max_margin(X, y),
        "MaxMarginResult-linf": ib.lp_max_margin(X, y, p=np.inf),
        "InterpolationResult-l1": ib.min_l1_interpolation(Xr, yr),
        "InterpolationResult-l2": ib.min_l2_interpolation(Xr, yr),
        "NuclearNormResult-alm": ib.min_nuclear_norm_completion(
            3, rows, cols, M[rows, cols], solver="alm"
        ),
        "NuclearNormResult-cvxpy": ib.min_nuclear_norm_completion(
            3, rows, cols, M[rows, cols], solver="cvxpy"
        ),
    }


@pytest.fixture(scope="module")
def results() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InaccurateSolutionWarning)
        return _results()


RESULT_NAMES = [
    "KernelSVMResult",
    "KernelSVMResult-cvxpy",
    "MulticlassKernelSVMResult",
    "KernelRegressionResult",
    "MaxMarginResult-l1",
    "MaxMarginResult-l2",
    "MaxMarginResult-linf",
    "InterpolationResult-l1",
    "InterpolationResult-l2",
    "NuclearNormResult-alm",
    "NuclearNormResult-cvxpy",
]


def test_the_parametrization_covers_every_result(results: dict[str, Any]) -> None:
    assert sorted(results) == sorted(RESULT_NAMES)


@pytest.mark.parametrize("name", RESULT_NAMES)
def test_every_solver_result_has_the_vocabulary(results: dict[str, Any], name: str) -> None:
    res = results[name]
    assert type(res).__name__ == name.split("-")[0]
    names = {f.name for f in dataclasses.fields(res)}
    assert set(CORE + GAPS) <= names, set(CORE + GAPS) - names
    assert isinstance(res.iterations, int) and res.iterations >= 0
    assert isinstance(res.max_violation, float) and res.max_violation >= 0.0
    assert res.status in get_args(Status)
    assert isinstance(res.solver, str) and res.solver
    assert isinstance(res.solve_time, float) and res.solve_time >= 0.0
    for f in ("objective", "dual_objective", "duality_gap", "relative_gap"):
        assert isinstance(getattr(res, f), float), f
    # absolute gap, relative gap, one convention everywhere
    np.testing.assert_allclose(res.duality_gap, res.objective - res.dual_objective, rtol=1e-12)
    np.testing.assert_allclose(
        res.relative_gap, abs(res.duality_gap) / res.objective, rtol=1e-12, atol=1e-300
    )
    assert res.relative_gap <= 1e-6
    if "MaxMargin" in name or "SVM" in name:
        # primal rescaled to exact feasibility, dual to exact dual feasibility: gap >= 0
        assert res.duality_gap >= -1e-12 * res.objective


def test_gram_nnls_result_has_the_core_vocabulary() -> None:
    Q = np.array([[2.0, 1.0], [1.0, 2.0]])
    res = ib.nnls_gram(Q, np.array([1.0, -1.0]))
    names = {f.name for f in dataclasses.fields(res)}
    assert set(CORE) <= names


def test_status_literal_and_thresholds() -> None:
    assert get_args(Status) == ("optimal", "optimal_inaccurate")
    assert INACCURATE_KKT == 1e-5 and INACCURATE_GAP == 1e-3


# --------------------------------------------------------------------------------------------
# deprecated aliases of renamed fields
# --------------------------------------------------------------------------------------------

ALIASES = [
    ("KernelSVMResult", "n_iter", "iterations"),
    ("KernelSVMResult-cvxpy", "n_iter", "iterations"),
    ("MulticlassKernelSVMResult", "n_iter", "iterations"),
    ("KernelRegressionResult", "max_abs_residual", "max_violation"),
    ("InterpolationResult-l1", "max_residual", "max_violation"),
    ("InterpolationResult-l2", "max_residual", "max_violation"),
    ("NuclearNormResult-alm", "max_constraint_violation", "max_violation"),
]


@pytest.mark.parametrize(("name", "old", "new"), ALIASES)
def test_renamed_field_warns_and_returns_the_new_value(
    results: dict[str, Any], name: str, old: str, new: str
) -> None:
    res = results[name]
    cls = type(res).__name__
    msg = f"{cls}.{old} is deprecated since 0.2 and will be removed in 0.3; use {new}"
    with pytest.warns(DeprecationWarning, match=re.escape(msg)):
        value = getattr(res, old)
    assert value == getattr(res, new)
    assert old not in {f.name for f in dataclasses.fields(res)}
    assert old not in repr(res)
    with pytest.raises(AttributeError):
        setattr(res, old, 0)
    with pytest.raises(TypeError):  # not a constructor argument
        dataclasses.replace(res, **{old: 0})


def test_renamed_field_warning_points_at_the_caller(results: dict[str, Any]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ = results["KernelSVMResult"].n_iter
    assert len(caught) == 1 and caught[0].filename == __file__
