"""Solver faults (issue 8): every solver checks what its backend returned.

Each test injects one failure at the seam where the solver calls its backend (HiGHS through
``scipy.optimize.linprog``, ``scipy.optimize.nnls``, ``cvxpy.Problem.solve``, the internal
active-set QP, the Lawson–Hanson Gram loop, the ALM of the nuclear-norm completion, the
Cholesky solve of kernel regression) and checks that nothing wrong comes back: a
:class:`~implicitbias.SolverError` that says what happened and what to try, the next route,
or an :class:`~implicitbias.InaccurateSolutionWarning` for an answer that is only slightly
off. Strict xfails are library bugs found here (see the reasons).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

import cvxpy as cp
import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.optimize import OptimizeResult

import implicitbias as ib


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# The package re-exports functions under their module names (implicitbias.kernel_regime.
# kernel_svm is the function), so fetch the modules themselves.
KSVM = importlib.import_module("implicitbias.kernel_regime.kernel_svm")
KREG = importlib.import_module("implicitbias.kernel_regime.kernel_regression")
MM = importlib.import_module("implicitbias.rich_regime.max_margin")
INTERP = importlib.import_module("implicitbias.rich_regime.interpolation")
NUC = importlib.import_module("implicitbias.rich_regime.nuclear_norm")
NNLS = importlib.import_module("implicitbias.kkt.nnls")


def X4() -> np.ndarray:
    return np.array([[1.0, 0.5], [0.2, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def y4() -> np.ndarray:
    return np.array([1.0, 1.0, -1.0, -1.0])


def K4() -> np.ndarray:
    X = X4()
    return X @ X.T + np.eye(4)


XU = np.array([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 1.0, 3.0]])
YU = np.array([1.0, -2.0])
# A unit vector of the null space of XU (X n = 0): moving along it keeps X w = y.
_NULL = scipy.linalg.null_space(XU)[:, 0]

COMPLETION = dict(d=3, rows=[0, 1, 2, 0], cols=[0, 1, 2, 1], values=[1.0, 2.0, 3.0, 0.5])


# ------------------------------------------------------------------------------- helpers
def wrap_linprog(monkeypatch: pytest.MonkeyPatch, module: Any, edit: Any) -> None:
    """Replace ``module.linprog`` by the real one followed by ``edit(result)``."""
    real = module.linprog

    def fake(*args: Any, **kwargs: Any) -> OptimizeResult:
        res = real(*args, **kwargs)
        edit(res)
        return res

    monkeypatch.setattr(module, "linprog", fake)


def set_status(status: int, message: str = "injected failure") -> Any:
    def edit(res: OptimizeResult) -> None:
        res.status = status
        res.message = message
        res.success = False

    return edit


def fake_cvxpy_status(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    """``Problem.solve`` that does not solve and leaves ``problem.status == status``."""

    def solve(self: cp.Problem, *args: Any, **kwargs: Any) -> None:
        self._status = status
        return None

    monkeypatch.setattr(cp.Problem, "solve", solve)


def raising_cvxpy(monkeypatch: pytest.MonkeyPatch) -> None:
    def solve(self: cp.Problem, *args: Any, **kwargs: Any) -> None:
        raise cp.error.SolverError("injected: the solver crashed")

    monkeypatch.setattr(cp.Problem, "solve", solve)


def perturbing_cvxpy(monkeypatch: pytest.MonkeyPatch, size: float) -> None:
    """The real solve, then every variable moved by ``size`` (relative, fixed direction)."""
    real = cp.Problem.solve

    def solve(self: cp.Problem, *args: Any, **kwargs: Any) -> Any:
        out = real(self, *args, **kwargs)
        rng = np.random.default_rng(0)
        for v in self.variables():
            val = np.asarray(v.value, dtype=float)
            v.value = val + size * np.max(np.abs(val)) * rng.standard_normal(val.shape)
        return out

    monkeypatch.setattr(cp.Problem, "solve", solve)


# ====================================================================== l1_max_margin (HiGHS)
@pytest.mark.parametrize(
    ("status", "message"), [(1, "iteration limit"), (4, "numerical difficulties")]
)
def test_l1_highs_failure_status_raises_with_status_and_hint(
    monkeypatch: pytest.MonkeyPatch, status: int, message: str
) -> None:
    wrap_linprog(monkeypatch, MM, set_status(status, message))
    with pytest.raises(ib.SolverError, match=rf"HiGHS stopped with status {status} .*cvxpy"):
        ib.l1_max_margin(X4(), y4())


def _edit_l1(f_x: Any, f_marg: Any) -> Any:
    """Edit both the LP point and its row marginals: the l1 route reads w from one and the
    multipliers from the other (which one depends on whether it solves the primal or the
    dual LP), so the faults below do not depend on that choice."""

    def edit(res: OptimizeResult) -> None:
        res.x = f_x(np.asarray(res.x, dtype=float))
        res.ineqlin.marginals = f_marg(np.asarray(res.ineqlin.marginals, dtype=float))

    return edit


def test_l1_highs_slightly_wrong_answer_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = ib.l1_max_margin(X4(), y4())

    def skew(v: np.ndarray) -> np.ndarray:
        return v * (1.0 + 1e-5 * np.arange(1, v.size + 1))

    wrap_linprog(monkeypatch, MM, _edit_l1(skew, skew))
    with pytest.warns(ib.InaccurateSolutionWarning, match="l1_max_margin.*duality gap"):
        res = ib.l1_max_margin(X4(), y4())
    assert res.status == "optimal_inaccurate"
    assert res.relative_gap > 1e-7
    # the returned point is feasible (rescaled), near the optimum, and its gap is the one reported
    assert float(np.min(y4() * (X4() @ res.w))) >= 1.0 - 1e-12
    np.testing.assert_allclose(res.norm - res.dual_objective, res.duality_gap, rtol=1e-12)
    np.testing.assert_allclose(res.margin, reference.margin, rtol=1e-3)


def test_l1_highs_wrong_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def wrong(v: np.ndarray) -> np.ndarray:
        return v + np.linspace(0.2, 0.9, v.size)

    wrap_linprog(monkeypatch, MM, _edit_l1(wrong, wrong))
    with pytest.raises(ib.SolverError, match="l1_max_margin: the highs-colgen route returned"):
        ib.l1_max_margin(X4(), y4())


def test_l1_highs_nonseparating_point_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    wrap_linprog(monkeypatch, MM, _edit_l1(np.negative, np.negative))
    with pytest.raises(ib.SolverError, match=r"min_i y_i <w, x_i> = .* <= 0.*cvxpy"):
        ib.l1_max_margin(X4(), y4())


def test_l1_highs_nan_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def nan(v: np.ndarray) -> np.ndarray:
        return np.full_like(v, np.nan)

    wrap_linprog(monkeypatch, MM, _edit_l1(nan, nan))
    with pytest.raises(ib.SolverError, match="l1_max_margin"):
        ib.l1_max_margin(X4(), y4())


def test_l1_highs_zero_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    wrap_linprog(monkeypatch, MM, _edit_l1(np.zeros_like, np.zeros_like))
    with pytest.raises(ib.SolverError, match="l1_max_margin: the highs-colgen route returned"):
        ib.l1_max_margin(X4(), y4())


def test_l1_column_generation_route_checks_the_ipm(monkeypatch: pytest.MonkeyPatch) -> None:
    """d > max(2n, 200) takes the column-generation route (interior point, no crossover)."""
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(6, 300))
    y = np.sign(X[:, 0] + X[:, 1] + X[:, 2])
    wrap_linprog(monkeypatch, MM, set_status(4, "numerical difficulties"))
    with pytest.raises(ib.SolverError, match=r"status 4 \(numerical difficulties\)"):
        ib.l1_max_margin(X, y)


# ======================================================================= l2_max_margin (NNLS)
def test_l2_nnls_zero_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MM, "nnls", lambda E, f, **kw: (np.zeros(E.shape[1]), 1.0))
    with pytest.raises(ib.SolverError, match="l2_max_margin: NNLS returned w = 0.*cvxpy"):
        ib.l2_max_margin(X4(), y4())


def test_l2_nnls_slightly_wrong_answer_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    real = MM.nnls

    def fake(E: np.ndarray, f: np.ndarray, **kw: Any) -> tuple[np.ndarray, float]:
        u, r = real(E, f, **kw)
        return u * (1.0 + 1e-5 * np.arange(1, u.size + 1)), r

    monkeypatch.setattr(MM, "nnls", fake)
    with pytest.warns(ib.InaccurateSolutionWarning, match="l2_max_margin"):
        res = ib.l2_max_margin(X4(), y4())
    assert res.status == "optimal_inaccurate"


def test_l2_nnls_wrong_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    real = MM.nnls

    def fake(E: np.ndarray, f: np.ndarray, **kw: Any) -> tuple[np.ndarray, float]:
        u, r = real(E, f, **kw)
        u = u.copy()
        u[np.argmax(u)] *= 0.5
        return u, r

    monkeypatch.setattr(MM, "nnls", fake)
    with pytest.raises(ib.SolverError, match="l2_max_margin"):
        ib.l2_max_margin(X4(), y4())


def test_l2_nnls_nan_answer_is_a_solver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MM, "nnls", lambda E, f, **kw: (np.full(E.shape[1], np.nan), np.nan))
    with pytest.raises(ib.SolverError, match="l2_max_margin"):
        ib.l2_max_margin(X4(), y4())


# ============================================================ cvxpy routes (lp, l1/l2 reference)
CVXPY_ROUTES = {
    "lp_max_margin": lambda: ib.lp_max_margin(X4(), y4(), p=3.0),
    "l1_max_margin": lambda: ib.l1_max_margin(X4(), y4(), solver="cvxpy"),
    "l2_max_margin": lambda: ib.l2_max_margin(X4(), y4(), solver="cvxpy"),
}


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
@pytest.mark.parametrize(
    "status", ["unbounded", "solver_error", "user_limit", "infeasible_or_unbounded"]
)
def test_cvxpy_bad_status_raises_with_status_and_hint(
    monkeypatch: pytest.MonkeyPatch, func: str, status: str
) -> None:
    fake_cvxpy_status(monkeypatch, status)
    with pytest.raises(ib.SolverError, match=rf"{func}: .*status '{status}'.*cvxpy_solver="):
        CVXPY_ROUTES[func]()


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
def test_cvxpy_infeasible_status_on_separable_data_is_a_solver_error(
    monkeypatch: pytest.MonkeyPatch, func: str
) -> None:
    """X4 is separable: "not separable" needs a Farkas certificate, which does not exist, so a
    backend's "infeasible" is the backend's failure (issue 11)."""
    fake_cvxpy_status(monkeypatch, "infeasible")
    with pytest.raises(ib.SolverError, match=rf"{func}: .*infeasible, but the data are separable"):
        CVXPY_ROUTES[func]()


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
def test_cvxpy_crash_raises_solver_error(monkeypatch: pytest.MonkeyPatch, func: str) -> None:
    raising_cvxpy(monkeypatch)
    with pytest.raises(ib.SolverError, match=rf"{func}: the cvxpy solver CLARABEL failed"):
        CVXPY_ROUTES[func]()


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
def test_cvxpy_optimal_without_values_raises(monkeypatch: pytest.MonkeyPatch, func: str) -> None:
    fake_cvxpy_status(monkeypatch, "optimal")
    with pytest.raises(ib.SolverError, match=rf"{func}: cvxpy:CLARABEL returned no solution"):
        CVXPY_ROUTES[func]()


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
def test_cvxpy_slightly_wrong_answer_warns(monkeypatch: pytest.MonkeyPatch, func: str) -> None:
    perturbing_cvxpy(monkeypatch, 1e-5)
    with pytest.warns(ib.InaccurateSolutionWarning, match=func):
        res = CVXPY_ROUTES[func]()
    assert res.status == "optimal_inaccurate"


@pytest.mark.parametrize("func", list(CVXPY_ROUTES))
def test_cvxpy_wrong_answer_raises(monkeypatch: pytest.MonkeyPatch, func: str) -> None:
    perturbing_cvxpy(monkeypatch, 0.3)
    with pytest.raises(ib.SolverError, match=func):
        CVXPY_ROUTES[func]()


# ============================================================ min-norm interpolation (HiGHS)
@pytest.mark.parametrize("status", [1, 4])
def test_basis_pursuit_failure_status_raises(monkeypatch: pytest.MonkeyPatch, status: int) -> None:
    wrap_linprog(monkeypatch, INTERP, set_status(status))
    with pytest.raises(ib.SolverError, match=rf"HiGHS stopped with status {status}"):
        ib.min_l1_interpolation(XU, YU)


def _move_along_null_space(t: float) -> Any:
    def edit(res: OptimizeResult) -> None:
        d = _NULL.size
        step = t * _NULL
        res.x = res.x.copy()
        res.x[:d] += np.maximum(step, 0.0)
        res.x[d:] += np.maximum(-step, 0.0)

    return edit


def test_basis_pursuit_slightly_suboptimal_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    wrap_linprog(monkeypatch, INTERP, _move_along_null_space(1e-5))
    with pytest.warns(ib.InaccurateSolutionWarning, match="min_l1_interpolation"):
        res = ib.min_l1_interpolation(XU, YU)
    assert res.status == "optimal_inaccurate"
    np.testing.assert_allclose(XU @ res.w, YU, atol=1e-9)


def test_basis_pursuit_suboptimal_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    wrap_linprog(monkeypatch, INTERP, _move_along_null_space(0.5))
    with pytest.raises(ib.SolverError, match="min_l1_interpolation.*fails its optimality check"):
        ib.min_l1_interpolation(XU, YU)


def test_basis_pursuit_infeasible_point_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(res: OptimizeResult) -> None:
        res.x = res.x * 1.01

    wrap_linprog(monkeypatch, INTERP, edit)
    with pytest.raises(ib.SolverError, match="HiGHS returned a point with residual"):
        ib.min_l1_interpolation(XU, YU)


def test_basis_pursuit_nan_answer_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    def edit(res: OptimizeResult) -> None:
        res.x = np.full_like(res.x, np.nan)

    wrap_linprog(monkeypatch, INTERP, edit)
    with pytest.raises(ib.SolverError, match="min_l1_interpolation"):
        ib.min_l1_interpolation(XU, YU)


def test_basis_pursuit_infeasible_status_on_feasible_data_is_a_solver_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wrap_linprog(monkeypatch, INTERP, set_status(2, "The problem is infeasible."))
    with pytest.raises(ib.SolverError, match="min_l1_interpolation"):
        ib.min_l1_interpolation(XU, YU)


def test_min_l2_interpolation_inaccurate_lstsq_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A least-squares answer moved slightly off the row space: feasible, not minimal."""
    real = np.linalg.lstsq

    def fake(a: np.ndarray, b: np.ndarray, rcond: Any = None) -> Any:
        out = list(real(a, b, rcond=rcond))
        if a.shape == XU.shape:  # the primal solve, not the certificate's
            out[0] = out[0] + 1e-3 * _NULL
        return tuple(out)

    monkeypatch.setattr(np.linalg, "lstsq", fake)
    with pytest.warns(ib.InaccurateSolutionWarning, match="min_l2_interpolation"):
        res = ib.min_l2_interpolation(XU, YU)
    assert res.status == "optimal_inaccurate"


def test_min_l2_interpolation_wrong_lstsq_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    real = np.linalg.lstsq

    def fake(a: np.ndarray, b: np.ndarray, rcond: Any = None) -> Any:
        out = list(real(a, b, rcond=rcond))
        if a.shape == XU.shape:
            out[0] = out[0] + 0.5 * _NULL
        return tuple(out)

    monkeypatch.setattr(np.linalg, "lstsq", fake)
    with pytest.raises(ib.SolverError, match="min_l2_interpolation.*fails its optimality check"):
        ib.min_l2_interpolation(XU, YU)


# ================================================================ kernel SVMs (active-set QP)
def _garbage_qp(value: float) -> Any:
    def fake(Q: np.ndarray, **kw: Any) -> Any:
        return KSVM._QPOutcome(a=np.full(Q.shape[0], value), diverged=False, iterations=1)

    return fake


def _scaled_qp(factor: float) -> Any:
    real = KSVM._solve_nonneg_qp

    def fake(Q: np.ndarray, **kw: Any) -> Any:
        out = real(Q, **kw)
        return KSVM._QPOutcome(a=out.a * factor, diverged=False, iterations=out.iterations)

    return fake


def _mc() -> Any:
    return ib.multiclass_kernel_svm(np.kron(K4(), np.eye(3)), np.array([0, 1, 2, 0]), n_classes=3)


def _mc_nofallback() -> Any:
    return ib.multiclass_kernel_svm(
        np.kron(K4(), np.eye(3)), np.array([0, 1, 2, 0]), n_classes=3, fallback=False
    )


@pytest.mark.parametrize("value", [0.0, -1.0, 1e6])
def test_kernel_svm_garbage_qp_falls_back_to_cvxpy(
    monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    reference = ib.kernel_svm(K4(), y4())
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _garbage_qp(value))
    res = ib.kernel_svm(K4(), y4())
    assert res.solver == "cvxpy:CLARABEL (fallback)"
    np.testing.assert_allclose(res.margin, reference.margin, rtol=1e-6)
    with pytest.raises(ib.SolverError, match=r"no route passed the optimality checks \(active-set"):
        ib.kernel_svm(K4(), y4(), fallback=False)


@pytest.mark.parametrize("value", [0.0, 1e6])
def test_multiclass_svm_garbage_qp_falls_back_or_raises(
    monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _garbage_qp(value))
    assert _mc().solver == "cvxpy:CLARABEL (fallback)"
    with pytest.raises(ib.SolverError, match="multiclass_kernel_svm: no route passed"):
        _mc_nofallback()


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_kernel_svm_non_finite_qp_is_never_returned(
    monkeypatch: pytest.MonkeyPatch, value: float
) -> None:
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _garbage_qp(value))
    with pytest.raises(ib.SolverError, match="kernel_svm"):
        ib.kernel_svm(K4(), y4(), fallback=False)


def test_multiclass_svm_nan_qp_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _garbage_qp(np.nan))
    with pytest.raises(ib.SolverError, match="multiclass_kernel_svm"):
        _mc_nofallback()


def test_kernel_svm_slightly_wrong_qp_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = ib.kernel_svm(K4(), y4()).margin
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _scaled_qp(1.0 + 1e-7))
    with pytest.warns(ib.InaccurateSolutionWarning, match="kernel_svm: the active-set answer"):
        res = ib.kernel_svm(K4(), y4(), fallback=False)
    assert res.status == "optimal_inaccurate"
    np.testing.assert_allclose(res.margin, reference, rtol=1e-6)


def test_kernel_svm_wrong_qp_raises_without_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _scaled_qp(1.0 + 1e-3))
    with pytest.raises(ib.SolverError, match=r"KKT residual 0\.001"):
        ib.kernel_svm(K4(), y4(), fallback=False)
    assert ib.kernel_svm(K4(), y4()).solver.endswith("(fallback)")


@pytest.mark.parametrize("status", ["infeasible", "solver_error", "user_limit"])
def test_kernel_svm_cvxpy_bad_status_raises(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    fake_cvxpy_status(monkeypatch, status)
    with pytest.raises(ib.SolverError, match=rf"kernel_svm: cvxpy solver CLARABEL .*'{status}'"):
        ib.kernel_svm(K4(), y4(), solver="cvxpy")


def test_kernel_svm_cvxpy_crash_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    raising_cvxpy(monkeypatch)
    with pytest.raises(ib.SolverError, match="kernel_svm: cvxpy solver CLARABEL failed"):
        ib.kernel_svm(K4(), y4(), solver="cvxpy")


def test_kernel_svm_both_routes_failing_reports_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(KSVM, "_solve_nonneg_qp", _garbage_qp(1e6))
    perturbing_cvxpy(monkeypatch, 0.3)
    with pytest.raises(ib.SolverError, match=r"active-set: KKT residual .*; cvxpy:CLARABEL"):
        ib.kernel_svm(K4(), y4())


# ==================================================================== kernel regression
def test_kernel_regression_wrong_cholesky_solve_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = ib.kernel_regression(K4(), y4()).coef
    monkeypatch.setattr(scipy.linalg, "cho_solve", lambda c, b, **kw: np.ones_like(b) * 7.0)
    with pytest.warns(ib.InaccurateSolutionWarning, match="kernel_regression"):
        res = ib.kernel_regression(K4(), y4())
    np.testing.assert_allclose(res.coef, reference, rtol=1e-8)
    assert res.solver == "pinv"


def test_kernel_regression_nan_solve_is_never_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scipy.linalg, "cho_solve", lambda c, b, **kw: np.full_like(b, np.nan))
    try:
        with pytest.warns(ib.InaccurateSolutionWarning):
            res = ib.kernel_regression(K4(), y4())
    except ib.SolverError:
        return
    assert np.all(np.isfinite(res.coef))


# ====================================================================== nnls_gram (kkt)
@pytest.mark.parametrize(
    "garbage",
    [np.array([np.nan, 0.0]), np.array([-1.0, 0.0]), np.array([5.0, 5.0])],
    ids=["nan", "negative", "not-stationary"],
)
def test_nnls_gram_checks_its_solution(
    monkeypatch: pytest.MonkeyPatch, garbage: np.ndarray
) -> None:
    monkeypatch.setattr(NNLS, "_lawson_hanson_gram", lambda *a, **kw: (garbage, 1, "optimal"))
    with pytest.raises(ib.SolverError, match="nnls_gram"):
        ib.nnls_gram(np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0]))


def test_nnls_gram_reports_max_iter() -> None:
    """An early stop is reported in the record, with the violated optimality condition."""
    rng = np.random.default_rng(0)
    G = rng.standard_normal((8, 6))
    res = ib.nnls_gram(G.T @ G, G.T @ rng.standard_normal(8) + 3.0, max_iter=1)
    assert res.status == "max_iter"
    assert res.iterations == 1


# ================================================================ nuclear-norm completion
def _alm_edit(edit: Any) -> Any:
    real = NUC._alm

    def fake(prob: Any, **kw: Any) -> Any:
        return edit(*real(prob, **kw))

    return fake


def test_nuclear_alm_slightly_wrong_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NUC, "_alm", _alm_edit(lambda U, V, lam, it: (U, V, lam * 0.9999, it)))
    with pytest.warns(ib.InaccurateSolutionWarning, match="min_nuclear_norm_completion: the alm"):
        res = ib.min_nuclear_norm_completion(**COMPLETION, solver="alm")
    assert res.status == "optimal_inaccurate"


def test_nuclear_alm_wrong_certificate_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NUC, "_alm", _alm_edit(lambda U, V, lam, it: (U, V, lam * 0.0, it)))
    with pytest.raises(ib.SolverError, match=r"certified relative duality gap 1 .*solver='cvxpy'"):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="alm")


def test_nuclear_alm_infeasible_point_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NUC, "_alm", _alm_edit(lambda U, V, lam, it: (U * 1.1, V * 1.1, lam, it)))
    with pytest.raises(ib.SolverError, match="max constraint violation .*solver='cvxpy'"):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="alm")


def test_nuclear_alm_nan_raises_solver_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(NUC, "_alm", _alm_edit(lambda U, V, lam, it: (U * np.nan, V, lam, it)))
    with pytest.raises(ib.SolverError, match="min_nuclear_norm_completion"):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="alm")


@pytest.mark.parametrize("status", ["unbounded", "solver_error"])
def test_nuclear_cvxpy_bad_status_raises(monkeypatch: pytest.MonkeyPatch, status: str) -> None:
    fake_cvxpy_status(monkeypatch, status)
    with pytest.raises(ib.SolverError, match=rf"status '{status}'.*cvxpy_solver="):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="cvxpy")


def test_nuclear_cvxpy_infeasible_status_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDP is posed in dual form, which λ = 0 always satisfies: "infeasible" is a solver fault.
    fake_cvxpy_status(monkeypatch, "infeasible")
    with pytest.raises(ib.SolverError, match="dual SDP infeasible, which it never is"):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="cvxpy")


def test_nuclear_cvxpy_crash_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    raising_cvxpy(monkeypatch)
    with pytest.raises(ib.SolverError, match="the cvxpy solver SCS failed"):
        ib.min_nuclear_norm_completion(**COMPLETION, solver="cvxpy")


# ======================================================================= long-run faults
# tests/test_dynamics.py covers the killed subprocess (flow; gd is `slow`), resume, Ctrl-C and
# determinism of the deterministic DiagonalNet. Added here: incremental writing checked from
# inside the run for both methods (in the default suite), the whole checkpoint being plain
# data, and same-seed determinism of a randomly initialized model.
def _run_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    X = torch.randn(10, 4, generator=g, dtype=torch.float64)
    return X, torch.sign(X[:, 0] - X[:, 1])


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_history_is_on_disk_at_every_evaluation(tmp_path: Path, method: str) -> None:
    """At the k-th evaluation the CSV already holds the k rows before it (flushed), and the
    sidecar says the run is still running: a process killed there loses nothing recorded."""
    X, y = _run_data()
    path = tmp_path / "run.csv"
    seen: list[tuple[int, str]] = []

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        rows = len(ib.History.from_csv(path)) if path.stat().st_size else 0
        status = json.loads((tmp_path / "run.json").read_text())["status"]
        seen.append((rows, status))
        return {"probe": float(len(seen))}

    res = ib.train(
        ib.symmetrize(ib.HomogeneousMLP(4, [6], seed=1, dtype=torch.float64)), X, y,
        weight_decay=0.01, lr=0.05, steps=40, num_evals=8, method=method, metrics=metrics,
        history_path=path,
    )  # fmt: skip
    assert [rows for rows, _ in seen] == list(range(len(res.history)))
    assert {status for _, status in seen} == {"running"}
    on_disk = ib.History.from_csv(path)
    assert on_disk.columns == res.history.columns
    for c in on_disk.columns:
        np.testing.assert_array_equal(on_disk[c], res.history[c], err_msg=c)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "completed"


def _plain(obj: Any, where: str = "checkpoint") -> None:
    """Only tensors, numbers, strings, None and containers of them (weights_only-safe)."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert isinstance(k, str), (where, k)
            _plain(v, f"{where}[{k!r}]")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _plain(v, f"{where}[{i}]")
    else:
        assert obj is None or isinstance(obj, (torch.Tensor, bool, int, float, str)), (
            where,
            type(obj),
        )


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_checkpoint_is_plain_data_mid_run_and_at_the_end(tmp_path: Path, method: str) -> None:
    X, y = _run_data()
    ckpt = tmp_path / "run.pt"
    snapshots: list[dict[str, Any]] = []

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        if ckpt.exists():
            snapshots.append(torch.load(ckpt, weights_only=True))
        return {}

    ib.train(
        ib.symmetrize(ib.HomogeneousMLP(4, [6], seed=1, dtype=torch.float64)), X, y,
        weight_decay=0.01, lr=0.05, steps=40, num_evals=8, method=method, metrics=metrics,
        checkpoint_path=ckpt, checkpoint_every=0.3,
    )  # fmt: skip
    assert snapshots, "no checkpoint was written during the run"
    final = torch.load(ckpt, weights_only=True)
    for snap in [*snapshots, final]:
        _plain(snap)
        assert bool(torch.isfinite(snap["theta"]).all())
    assert not list(tmp_path.glob("*.tmp"))  # atomic replace leaves no partial file


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_same_seed_same_history_on_cpu(method: str) -> None:
    X, y = _run_data()

    def run(seed: int) -> ib.History:
        net = ib.symmetrize(ib.HomogeneousMLP(4, [6, 5], seed=seed, dtype=torch.float64))
        res = ib.train(net, X, y, weight_decay=0.01, lr=0.05, steps=30, num_evals=6, method=method)
        return res.history

    a, b, c = run(7), run(7), run(8)
    for col in a.columns:
        if col != "wall_time":
            np.testing.assert_array_equal(a[col], b[col], err_msg=col)
    assert not np.array_equal(a["theta_norm"], c["theta_norm"])
