"""The matrix-free route of kkt_residuals (issue 13): products only, a certified bracket of
ε_min, and the fallback of ``nnls_route="auto"`` when the working set outgrows the budget."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

import implicitbias as ib
from implicitbias.kkt._matrix_free import lower_bound
from test_kkt_matrix_free_adversarial import _residual as _direct_epsilon
from test_kkt_working_set import F64, RTOL, _binary, _multiclass, explicit_eps_min


# --------------------------------------------------------------------------- closed form
def test_lower_bound_closed_form() -> None:
    """One constraint ∇q = e₁ at θ̃ = (1, 1): μ* = 1, ε_min = 1 (worked by hand). The bound
    sits below its exact-arithmetic value by its float64 reduction allowance only."""
    tt, b = 2.0, np.array([1.0])
    zero = np.zeros(1)
    # at μ = 0.9: r = (0.1, 1), d = 0.1, c = 0.1, u = r − cθ̃ = (0, 0.9): ⟨u,θ̃⟩²/‖u‖² = 1
    near = lower_bound(tt, b, np.array([0.9]), 1.01, 1.1, np.array([0.1]), zero)
    assert near <= 1.0 and near == pytest.approx(1.0, rel=1e-12)
    # at μ = 0: c = 1 (both bounds fail) -> 0, still a bound
    assert lower_bound(tt, b, zero, 2.0, 2.0, np.array([1.0]), zero) == 0.0
    # at the optimum the bound is exact up to that allowance
    at = lower_bound(tt, b, np.array([1.0]), 1.0, 1.0, np.array([0.0]), zero)
    assert at <= 1.0 and at == pytest.approx(1.0, rel=1e-12)
    # a rounding allowance on d only lowers it
    assert lower_bound(tt, b, np.array([0.9]), 1.01, 1.1, np.array([0.1]), np.array([0.05])) < near


# --------------------------------------------------------------------------- agreement
@pytest.mark.parametrize(
    "make", [lambda: _multiclass(0), lambda: _multiclass(1), _binary], ids=["mc0", "mc1", "binary"]
)
def test_matrix_free_reaches_the_dense_optimum_and_certifies_it(make) -> None:  # noqa: ANN001
    net, X, y = make()
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ib.InaccurateSolutionWarning)
        mf = ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=5000)
    assert mf.nnls_route == "matrix_free"
    np.testing.assert_allclose(mf.epsilon_min, dense.epsilon_min, rtol=RTOL)
    np.testing.assert_allclose(mf.epsilon_min, explicit_eps_min(net, X, y), rtol=RTOL)
    # the certified bracket holds the optimum and is within 1e-6
    assert mf.epsilon_min_lower <= dense.epsilon_min * (1 + 1e-12) <= mf.epsilon_min * (1 + 2e-12)
    assert mf.epsilon_min - mf.epsilon_min_lower <= 1e-6 * mf.epsilon_min
    # ε is the residual of the reported multipliers (checked by plain autograd), δ their slack
    np.testing.assert_allclose(mf.epsilon, _direct_epsilon(net, X, y, mf), rtol=1e-9)
    assert np.all(mf.multipliers >= 0)
    assert mf.epsilon == pytest.approx(mf.epsilon_min, rel=1e-9)
    assert mf.delta >= 0 and math.isfinite(mf.delta)
    assert mf.iterations <= 5000


def test_exact_routes_report_their_optimum_as_the_lower_bound() -> None:
    net, X, y = _multiclass(0)
    for route in ("dense", "working_set"):
        rep = ib.kkt_residuals(net, X, y, nnls_route=route)
        assert rep.epsilon_min_lower == rep.epsilon_min


@pytest.mark.parametrize("steps", [25, 60, 200])
def test_a_short_budget_warns_and_still_brackets_the_optimum(steps: int) -> None:
    net, X, y = _multiclass(1)
    exact = ib.kkt_residuals(net, X, y, nnls_route="dense").epsilon_min
    with pytest.warns(ib.InaccurateSolutionWarning, match="raise matrix_free_steps"):
        mf = ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=steps)
    assert mf.iterations <= steps
    assert mf.epsilon_min_lower <= exact * (1 + 1e-12)
    assert exact <= mf.epsilon_min * (1 + 1e-12)
    np.testing.assert_allclose(mf.epsilon, _direct_epsilon(net, X, y, mf), rtol=1e-9)


def test_scale_invariance_of_the_bracket() -> None:
    """ε_rel and its bracket do not depend on the scale the net was trained to."""
    net, X, y = _multiclass(0)
    base = ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=5000)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1e3)
    big = ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=5000)
    np.testing.assert_allclose(big.epsilon_rel, base.epsilon_rel, rtol=1e-6)
    ratio = big.rescaled_theta_norm / base.rescaled_theta_norm
    np.testing.assert_allclose(big.epsilon_min_lower / ratio, base.epsilon_min_lower, rtol=1e-5)


# --------------------------------------------------------------------------- the fallback
def test_auto_falls_back_to_matrix_free_when_the_working_set_outgrows_the_budget() -> None:
    # 2100 constraints; far from KKT the support alone (~215) outgrows what 1 MiB holds
    net, X, y = _multiclass(seed=0, n=300, C=8, width=128)
    budget = 2**20
    for route in ("working_set", "exact"):  # the exact routes raise, saying what would do
        with pytest.raises(ib.InvalidArgumentError, match="nnls_route='matrix_free'"):
            ib.kkt_residuals(net, X, y, nnls_route=route, memory_budget=budget)
    # "exact" is the dense route where that fits
    assert ib.kkt_residuals(net, X, y, nnls_route="exact").nnls_route == "dense"
    rep = ib.kkt_residuals(net, X, y, memory_budget=budget, matrix_free_steps=5000)
    assert rep.nnls_route == "matrix_free"
    assert rep.constraints_touched > 0  # the working set's, before it fell back
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    np.testing.assert_allclose(rep.epsilon_min, dense.epsilon_min, rtol=RTOL)
    assert rep.epsilon_min_lower <= dense.epsilon_min * (1 + 1e-12)


# --------------------------------------------------------------------------- bad input
def test_bad_matrix_free_options() -> None:
    net, X, y = _multiclass(0)
    with pytest.raises(ib.InvalidArgumentError, match="matrix_free_steps"):
        ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=0)
    with pytest.raises(TypeError, match="matrix_free_steps"):
        ib.kkt_residuals(net, X, y, matrix_free_steps=10.5)
    reg = ib.HomogeneousMLP(3, [4], seed=0, dtype=F64)
    Xr = torch.randn(6, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ib.InvalidArgumentError, match="nnls_route"):
        ib.kkt_residuals(reg, Xr, torch.randn(6, dtype=F64), task="regression",
                         nnls_route="matrix_free")  # fmt: skip
