"""Property-based tests (issue 8): small, bounded shapes; derandomized; no deadline.

- solver outputs are feasible and certified optimal by their own certificates (kernel_svm,
  kernel_regression, l1_max_margin, min_l1_interpolation);
- f(cθ) = c^L f(θ) and Euler's identity ⟨∇_θ f, θ⟩ = L f for random HomogeneousMLPs;
- empirical_ntk: structured and Jacobian routes agree on random architectures.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import implicitbias as ib


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


F64 = torch.float64

FAST = settings(
    max_examples=12,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@st.composite
def data(draw: st.DrawFn, *, max_n: int = 6, max_d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """A small (n, d) matrix from a seed (hypothesis picks shape and seed, numpy the values)."""
    n = draw(st.integers(2, max_n))
    d = draw(st.integers(1, max_d))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    return X, rng


@st.composite
def labels_for(draw: st.DrawFn, n: int) -> np.ndarray:
    y = np.array(draw(st.lists(st.sampled_from([-1.0, 1.0]), min_size=n, max_size=n)))
    return y


# --------------------------------------------------------------------------------- solvers
@FAST
@given(data(), st.data())
def test_kernel_svm_is_feasible_and_certified(Xr: tuple, more: st.DataObject) -> None:
    X, _ = Xr
    n = X.shape[0]
    y = more.draw(labels_for(n))
    K = X @ X.T + 0.1 * np.eye(n)  # positive definite: always separable
    res = ib.kernel_svm(K, y)
    assert res.status == "optimal"
    f = K @ res.coef  # f(x_i) = <φ(x_i), h>
    q = y * f
    assert float(q.min()) >= 1.0 - 1e-8
    assert float(res.svm_dual.min()) >= 0.0
    # complementary slackness and strong duality, from the solution itself
    np.testing.assert_allclose(res.svm_dual * (q - 1.0), 0.0, atol=1e-8 * max(1.0, res.svm_dual.max()))
    np.testing.assert_allclose(res.norm**2, res.coef @ K @ res.coef, rtol=1e-9)
    np.testing.assert_allclose(res.norm**2, res.svm_dual.sum(), rtol=1e-8)
    np.testing.assert_allclose(res.margin, 1.0 / res.norm, rtol=1e-12)
    assert res.kkt_residual <= 1e-9


@FAST
@given(data())
def test_kernel_regression_interpolates(Xr: tuple) -> None:
    X, rng = Xr
    n = X.shape[0]
    y = rng.standard_normal(n)
    K = X @ X.T + 0.1 * np.eye(n)
    res = ib.kernel_regression(K, y)
    assert res.status == "optimal"
    np.testing.assert_allclose(K @ res.coef, y, atol=1e-9 * max(1.0, np.abs(y).max()))
    np.testing.assert_allclose(res.norm**2, res.coef @ K @ res.coef, rtol=1e-9)


@FAST
@given(data(max_n=6, max_d=6))
def test_l1_max_margin_is_feasible_and_certified(Xr: tuple) -> None:
    X, rng = Xr
    w_star = rng.standard_normal(X.shape[1])
    s = X @ w_star
    assume(float(np.abs(s).min()) > 1e-3)
    y = np.sign(s)  # separable through the origin by construction
    res = ib.l1_max_margin(X, y)
    assert res.status == "optimal"
    q = y * (X @ res.w)
    assert float(q.min()) >= 1.0 - 1e-9
    mu = res.dual
    assert float(mu.min()) >= 0.0
    # dual feasibility ‖Xᵀ(μ⊙y)‖_∞ ≤ 1 and a zero gap ‖w‖₁ = Σμ certify optimality
    assert float(np.abs(X.T @ (mu * y)).max()) <= 1.0 + 1e-9
    np.testing.assert_allclose(np.abs(res.w).sum(), mu.sum(), rtol=1e-7)
    np.testing.assert_allclose(res.margin, 1.0 / np.abs(res.w).sum(), rtol=1e-9)


@FAST
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 2**16))
def test_min_l1_interpolation_is_feasible_and_certified(n: int, extra: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n + extra))  # full row rank (almost surely)
    y = rng.standard_normal(n)
    res = ib.min_l1_interpolation(X, y)
    assert res.status == "optimal"
    np.testing.assert_allclose(X @ res.w, y, atol=1e-9 * max(1.0, np.abs(y).max()))
    nu = res.dual
    assert float(np.abs(X.T @ nu).max()) <= 1.0 + 1e-9
    np.testing.assert_allclose(np.abs(res.w).sum(), nu @ y, rtol=1e-7)
    # never worse than the minimum-ℓ2 interpolant in ℓ1 norm
    w2 = ib.min_l2_interpolation(X, y).w
    assert np.abs(res.w).sum() <= np.abs(w2).sum() * (1.0 + 1e-9)


# ------------------------------------------------------------------------- homogeneity
@st.composite
def mlps(draw: st.DrawFn) -> tuple[ib.HomogeneousMLP, torch.Tensor]:
    d_in = draw(st.integers(1, 4))
    widths = draw(st.lists(st.integers(1, 5), min_size=0, max_size=3))
    d_out = draw(st.integers(1, 3))
    bias = draw(st.booleans())
    activation = draw(st.sampled_from(["relu", "linear"]))
    seed = draw(st.integers(0, 2**16))
    net = ib.HomogeneousMLP(
        d_in, widths, d_out, first_layer_bias=bias, activation=activation, seed=seed, dtype=F64
    )
    X = torch.randn(
        draw(st.integers(1, 5)), d_in, dtype=F64, generator=torch.Generator().manual_seed(seed)
    )
    return net, X


@FAST
@given(mlps(), st.sampled_from([0.5, 2.0, 3.7]))
def test_homogeneity_identity(model: tuple, c: float) -> None:
    net, X = model
    L = net.degree
    scaled = ib.scale_init(copy.deepcopy(net), c)
    with torch.no_grad():
        torch.testing.assert_close(scaled(X), c**L * net(X), rtol=1e-12, atol=1e-14)


@FAST
@given(mlps())
def test_euler_identity(model: tuple) -> None:
    """⟨∇_θ f(θ; x), θ⟩ = L f(θ; x), checked on a random linear combination of the outputs."""
    net, X = model
    L = net.degree
    params = [p for p in net.parameters() if p.requires_grad]
    out = net(X)
    r = torch.randn(out.shape, dtype=F64, generator=torch.Generator().manual_seed(1))
    s = (r * out).sum()
    grads = torch.autograd.grad(s, params, allow_unused=True)
    inner = sum((g * p).sum() for g, p in zip(grads, params) if g is not None)
    torch.testing.assert_close(inner.detach(), L * s.detach(), rtol=1e-10, atol=1e-12)


@FAST
@given(mlps(), st.booleans(), st.booleans())
def test_empirical_ntk_structured_matches_jacobian(
    model: tuple, symmetrized: bool, cross: bool
) -> None:
    net, X = model
    m = ib.symmetrize(net) if symmetrized else net
    X2 = X[:-1] * 1.5 + 0.25 if cross and X.shape[0] > 1 else None
    K_s = ib.empirical_ntk(m, X, X2, method="structured")
    K_j = ib.empirical_ntk(m, X, X2, method="jacobian")
    assert K_s.shape == K_j.shape
    scale = float(K_j.abs().max()) if K_j.numel() else 0.0
    torch.testing.assert_close(K_s, K_j, rtol=1e-10, atol=1e-12 * max(scale, 1.0))
    if X2 is None:
        torch.testing.assert_close(K_s, K_s.transpose(0, 1), rtol=0.0, atol=1e-12 * max(scale, 1.0))
