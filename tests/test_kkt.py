"""Tests of kkt_residuals: exact KKT points, non-KKT points, identities, training, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import torch

import implicitbias as ib
from implicitbias.kkt.margins import _prepare

F64 = torch.float64


# --------------------------------------------------------------------------- helpers
def sparse_data(n: int, d: int, seed: int, k: int = 3) -> tuple[torch.Tensor, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    w = np.zeros(d)
    w[:k] = rng.choice([-1.0, 1.0], size=k)
    y = np.sign(X @ w + 0.5)
    return torch.tensor(X, dtype=F64), y


def l1_max_margin_lp(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """min ‖w‖₁ s.t. y_i ⟨w, x_i⟩ ≥ 1, as an LP in (w⁺, w⁻) solved by dual simplex."""
    n, d = X.shape
    A = -(y[:, None] * X)
    res = scipy.optimize.linprog(
        np.ones(2 * d),
        A_ub=np.hstack([A, -A]),
        b_ub=-np.ones(n),
        bounds=(0, None),
        method="highs-ds",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0
    return res.x[:d] - res.x[d:]


def diagonal_net_from_w(w: np.ndarray) -> ib.DiagonalNet:
    net = ib.DiagonalNet(w.shape[0], dtype=F64)
    with torch.no_grad():
        net.u.copy_(torch.tensor(np.sqrt(np.maximum(w, 0.0)), dtype=F64))
        net.v.copy_(torch.tensor(np.sqrt(np.maximum(-w, 0.0)), dtype=F64))
    return net


def explicit_pairs_matrix(model, X, y, scale):
    """Explicit columns g_i = y_i ∇f(θ̃; x_i) (p × n) from the Jacobian at θ."""
    h = ib.Homogeneous(model)
    J = h.jacobian(X).numpy()
    L = h.degree
    return (J * y[:, None]).T * scale ** (L - 1), h.theta().numpy() * scale


# --------------------------------------------------------------------------- exact KKT points
def test_exact_kkt_point_diagonal_net_from_l1_max_margin():
    X, y = sparse_data(40, 25, seed=1)
    w = l1_max_margin_lp(X.numpy(), y)
    net = diagonal_net_from_w(w)
    rep = ib.kkt_residuals(net, X, y, certificate=False)
    assert rep.epsilon_rel <= 1e-8
    assert rep.delta <= 1e-8
    assert rep.is_kkt(epsilon=1e-8, delta=1e-8)
    # ‖θ̃‖² equals the ℓ1 optimum; the multipliers' lower bound is valid (multipliers are not
    # unique here, so this certificate need not be tight)
    np.testing.assert_allclose(rep.rescaled_theta_norm**2, np.abs(w).sum(), rtol=1e-8)
    assert rep.convex_lower_bound <= np.abs(w).sum() * (1 + 1e-10)
    assert rep.dual_norm >= 1 - 1e-12
    # G is rank-deficient here (few nonzero coordinates): far more points than active coords
    assert np.count_nonzero(np.abs(w) > 1e-9) < X.shape[0]
    assert np.all(rep.multipliers >= 0)
    np.testing.assert_allclose(rep.margins.min(), 1.0, rtol=0, atol=1e-12)


def test_exact_kkt_point_is_reported_with_small_delta_when_nnls_is_not_unique():
    # Duplicate the active direction with an inactive copy that has the same gradient
    # direction: an unrestricted NNLS may use it; the reported multipliers must not.
    X = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [3.0, 0.0], [-2.0, 0.0]], dtype=F64)
    y = np.array([1.0, -1.0, 1.0, -1.0])
    net = diagonal_net_from_w(np.array([1.0, 0.0]))
    rep = ib.kkt_residuals(net, X, y)
    assert rep.epsilon_rel <= 1e-12
    assert rep.delta <= 1e-12
    np.testing.assert_array_equal(rep.multipliers[2:], [0.0, 0.0])
    # the unrestricted NNLS puts its weight on the inactive copy (δ = 1/3)
    g = np.array([2.0, 2.0, 6.0, 4.0])
    q = np.array([1.0, 1.0, 3.0, 2.0])
    mu = ib.nnls_gram(np.outer(g, g), 2 * q).solution
    assert np.max(mu * (q - 1)) >= 0.3
    assert rep.epsilon_min <= 1e-12


def test_exact_kkt_point_matrix_factorization_psd_rank_one():
    # X* = a aᵀ with its diagonal observed: ‖W‖_* ≥ tr W = tr X*, so X* is the minimum
    # nuclear-norm completion and θ = (U = [a, 0, …], V = 0) an exact KKT point (S = I).
    d = 5
    a = np.array([1.0, -2.0, 0.5, 1.5, -1.0])
    Xstar = np.outer(a, a)
    pairs = [(i, i) for i in range(d)] + [(0, 1), (1, 3), (2, 4), (3, 0)]
    idx = torch.tensor(pairs, dtype=torch.int64)
    y = np.array([Xstar[i, j] for i, j in pairs])
    mf = ib.MatrixFactorization(d, dtype=F64)
    with torch.no_grad():
        mf.U.zero_()
        mf.U[:, 0] = torch.tensor(a, dtype=F64)
        mf.V.zero_()
    rep = ib.kkt_residuals(mf, idx, y)
    assert rep.task == "regression"
    assert rep.epsilon_rel <= 1e-8
    assert rep.max_violation <= 1e-12
    np.testing.assert_allclose(rep.theta_norm**2, np.trace(Xstar), rtol=1e-12)
    # the minimum nuclear norm, computed here with cvxpy (small SDP)
    cp = pytest.importorskip("cvxpy")
    W = cp.Variable((d, d), symmetric=True)
    cons = [W[i, j] == Xstar[i, j] for i, j in pairs]
    prob = cp.Problem(cp.Minimize(cp.normNuc(W)), cons)
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(rep.theta_norm**2, prob.value, rtol=1e-6)
    assert rep.convex_lower_bound <= prob.value * (1 + 1e-6)


# --------------------------------------------------------------------------- non-KKT points
def test_random_point_has_large_residuals():
    torch.manual_seed(0)
    net = ib.HomogeneousMLP(5, [20], seed=3, dtype=F64)
    X = torch.randn(30, 5, dtype=F64, generator=torch.Generator().manual_seed(4))
    y = np.sign(net(X).detach().numpy())
    rep = ib.kkt_residuals(net, X, y)
    assert rep.epsilon_rel >= 0.1
    assert not rep.is_kkt()


def test_kernel_regime_point_has_large_residuals():
    X, y = sparse_data(20, 30, seed=2)
    net = ib.DiagonalNet(30, alpha=20.0, dtype=F64)
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    yt = torch.tensor(y)
    for _ in range(50):
        opt.zero_grad()
        torch.nn.functional.softplus(-yt * net(X)).mean().backward()
        opt.step()
    rep = ib.kkt_residuals(net, X, y)
    assert rep.epsilon_rel >= 0.5


# --------------------------------------------------------------------------- identities
def test_invariant_to_rescaling_theta():
    net = ib.HomogeneousMLP(4, [12, 12], seed=0, dtype=F64)
    X = torch.randn(25, 4, dtype=F64, generator=torch.Generator().manual_seed(1))
    y = np.sign(net(X).detach().numpy())
    r1 = ib.kkt_residuals(net, X, y, weight_decay=0.1)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(1.7)
    r2 = ib.kkt_residuals(net, X, y, weight_decay=0.1)
    np.testing.assert_allclose(r2.epsilon_rel, r1.epsilon_rel, rtol=1e-9)
    np.testing.assert_allclose(r2.delta, r1.delta, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(r2.multipliers, r1.multipliers, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(r2.margins, r1.margins, rtol=1e-12)
    np.testing.assert_allclose(r2.normalized_margin, r1.normalized_margin, rtol=1e-12)
    np.testing.assert_allclose(r2.rescaled_theta_norm, r1.rescaled_theta_norm, rtol=1e-12)
    np.testing.assert_allclose(r2.theta_norm, 1.7**3 * r1.theta_norm / 1.7**2, rtol=1e-12)


def test_gram_nnls_matches_scipy_on_explicit_jacobian():
    net = ib.HomogeneousMLP(3, [8], seed=5, dtype=F64)  # p = 32 < n: G has full column rank? no
    X = torch.randn(20, 3, dtype=F64, generator=torch.Generator().manual_seed(6))
    y = np.sign(net(X).detach().numpy())
    rep = ib.kkt_residuals(net, X, y, direct=True)
    q = y * net(X).detach().numpy()
    scale = q.min() ** (-1 / 2)
    G, theta_t = explicit_pairs_matrix(net, X, y, scale)
    mu_ref, rnorm = scipy.optimize.nnls(G, theta_t)
    np.testing.assert_allclose(rep.epsilon_min, rnorm, rtol=1e-8)
    np.testing.assert_allclose(
        np.linalg.norm(theta_t - G @ rep.multipliers), rep.epsilon, rtol=1e-8, atol=1e-12
    )


def test_nnls_gram_matches_scipy_nnls():
    rng = np.random.default_rng(0)
    for trial in range(20):
        p, n = 60, 25
        A = rng.standard_normal((p, n))
        t = A @ np.abs(rng.standard_normal(n)) * (trial % 2) + rng.standard_normal(p)
        x_ref, r_ref = scipy.optimize.nnls(A, t)
        res = ib.nnls_gram(A.T @ A, A.T @ t)
        np.testing.assert_allclose(res.solution, x_ref, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(np.sqrt(t @ t + 2 * res.objective), r_ref, rtol=1e-8)
        assert res.status == "optimal"
        assert res.max_violation <= 1e-10 * np.abs(A.T @ t).max()


def test_nnls_gram_rank_deficient():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((40, 4)) @ rng.standard_normal((4, 15))
    t = rng.standard_normal(40)
    _, r_ref = scipy.optimize.nnls(A, t)
    res = ib.nnls_gram(A.T @ A, A.T @ t)
    assert np.all(res.solution >= 0)
    np.testing.assert_allclose(np.linalg.norm(t - A @ res.solution), r_ref, rtol=1e-8)


def test_multiclass_mlp_matches_explicit_pairwise_nnls():
    C = 3
    net = ib.HomogeneousMLP(4, [10], d_out=C, seed=2, dtype=F64)
    X = torch.randn(12, 4, dtype=F64, generator=torch.Generator().manual_seed(3))
    out = net(X).detach().numpy()
    y = out.argmax(axis=1)
    rep = ib.kkt_residuals(net, X, y, weight_decay=0.05, direct=True)
    assert rep.task == "multiclass"
    assert rep.multipliers.shape == (12, C)
    np.testing.assert_array_equal(rep.multipliers[np.arange(12), y], 0.0)
    assert rep.wd_multipliers.shape == (12, C)
    # explicit columns ∇f_{y_i} − ∇f_j at θ̃
    srt = np.sort(out, axis=1)
    q_min = (srt[:, -1] - srt[:, -2]).min()
    scale = q_min ** (-1 / 2)
    J = ib.Homogeneous(net).jacobian(X).numpy() * scale  # (n, C, p), L - 1 = 1
    cols = [(i, j) for i in range(12) for j in range(C) if j != y[i]]
    G = np.stack([J[i, y[i]] - J[i, j] for i, j in cols], axis=1)
    theta_t = ib.Homogeneous(net).theta().numpy() * scale
    _, rnorm = scipy.optimize.nnls(G, theta_t)
    np.testing.assert_allclose(rep.epsilon_min, rnorm, rtol=1e-8)
    mu = np.array([rep.multipliers[i, j] for i, j in cols])
    np.testing.assert_allclose(np.linalg.norm(theta_t - G @ mu), rep.epsilon, rtol=1e-8)
    np.testing.assert_allclose(rep.margins.min(), 1.0, rtol=1e-12)


def test_weight_decay_route_equals_stationarity_of_regularized_loss():
    net = ib.HomogeneousMLP(3, [9], seed=7, dtype=F64)
    X = torch.randn(15, 3, dtype=F64, generator=torch.Generator().manual_seed(8))
    yt = torch.sign(net(X)).detach()
    lam = 0.03
    rep = ib.kkt_residuals(net, X, yt.numpy(), weight_decay=lam, direct=True)
    net.zero_grad()
    loss = torch.nn.functional.softplus(-yt * net(X)).mean()
    loss.backward()
    grad = torch.cat([p.grad.reshape(-1) for p in net.parameters()])
    theta = ib.Homogeneous(net).theta()
    expected = float((grad + lam * theta).norm() / (lam * theta.norm()))
    np.testing.assert_allclose(rep.stationarity_residual, expected, rtol=1e-9)
    np.testing.assert_allclose(rep.wd_epsilon_rel, expected, rtol=1e-9)


def test_regression_weight_decay_route_matrix_factorization():
    d = 6
    rng = np.random.default_rng(3)
    pairs = [(i, j) for i in range(d) for j in range(i, d) if rng.random() < 0.5]
    idx = torch.tensor(pairs, dtype=torch.int64)
    mf = ib.MatrixFactorization(d, alpha=0.5, dtype=F64)
    with torch.no_grad():
        mf.U.add_(0.3 * torch.tensor(rng.standard_normal((d, d))))
    y = torch.tensor(rng.standard_normal(len(pairs)))
    lam = 0.1
    rep = ib.kkt_residuals(mf, idx, y.numpy(), weight_decay=lam, task="regression", direct=True)
    mf.zero_grad()
    ((mf(idx) - y) ** 2).mean().backward()
    grad = torch.cat([mf.U.grad.reshape(-1), mf.V.grad.reshape(-1)])
    theta = torch.cat([mf.U.detach().reshape(-1), mf.V.detach().reshape(-1)])
    expected = float((grad + lam * theta).norm() / (lam * theta.norm()))
    np.testing.assert_allclose(rep.stationarity_residual, expected, rtol=1e-9)
    np.testing.assert_allclose(
        rep.max_violation, np.abs(mf(idx).detach().numpy() - y.numpy()).max(), rtol=1e-12
    )
    assert rep.convex_surrogate == "min_nuclear_norm"
    # least-squares multipliers: no other μ gives a smaller ε
    assert rep.epsilon <= rep.wd_epsilon


# --------------------------------------------------------------------------- training
def test_trained_diagonal_net_becomes_kkt_after_transition():
    X, y = sparse_data(16, 40, seed=0)
    yt = torch.tensor(y)
    alpha, lam, eta = 10.0, 0.05, 0.25
    t_star = np.log(alpha) / lam
    net = ib.DiagonalNet(40, alpha=alpha, dtype=F64)
    opt = torch.optim.SGD(net.parameters(), lr=eta, weight_decay=lam)
    reports = {}
    step = 0
    for frac in (0.3, 8.0):
        while step * eta < frac * t_star:
            opt.zero_grad()
            torch.nn.functional.softplus(-yt * net(X)).mean().backward()
            opt.step()
            step += 1
        reports[frac] = ib.kkt_residuals(net, X, y, weight_decay=lam)
    early, late = reports[0.3], reports[8.0]
    assert early.epsilon_rel >= 0.5
    assert late.epsilon_rel <= 1e-2
    assert late.epsilon_rel <= 1e-2 * early.epsilon_rel
    assert late.wd_epsilon_rel <= 0.1 * early.wd_epsilon_rel
    assert late.normalized_margin > early.normalized_margin


# --------------------------------------------------------------------------- errors
def test_not_homogeneous_model_raises():
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 5, bias=False), torch.nn.Tanh(), torch.nn.Linear(5, 1, bias=False)
    ).double()
    X = torch.randn(8, 3, dtype=F64)
    with pytest.raises(ib.NotHomogeneousError):
        ib.kkt_residuals(seq, X, np.ones(8))


def test_plain_module_degree_is_estimated():
    seq = torch.nn.Sequential(
        torch.nn.Linear(3, 6, bias=False), torch.nn.ReLU(), torch.nn.Linear(6, 1, bias=False)
    ).double()
    X = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    y = np.sign(seq(X).detach().numpy()[:, 0])
    rep = ib.kkt_residuals(seq, X, y)
    assert rep.degree == 2


def test_misclassified_points_raise_with_count():
    net = ib.HomogeneousMLP(3, [6], seed=1, dtype=F64)
    X = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    y = np.sign(net(X).detach().numpy())
    y[[0, 3, 7]] *= -1
    with pytest.raises(ib.InvalidArgumentError, match="3 of 10 points misclassified"):
        ib.kkt_residuals(net, X, y)


def test_bad_labels_and_lengths():
    net = ib.HomogeneousMLP(3, [6], seed=1, dtype=F64)
    X = torch.randn(10, 3, dtype=F64)
    with pytest.raises(ValueError, match="'y'.*y = 2\\*y - 1"):
        ib.kkt_residuals(net, X, np.array([0, 1] * 5))
    with pytest.raises(ValueError, match="'X' and 'y'"):
        ib.kkt_residuals(net, X, np.ones(9))
    y = np.ones(10)
    y[2] = np.nan
    with pytest.raises(ValueError, match="'y'.*finite"):
        ib.kkt_residuals(net, X, y)
    with pytest.raises(ValueError, match="'weight_decay'"):
        ib.kkt_residuals(net, X, np.ones(10), weight_decay=-1.0)
    with pytest.raises(ValueError, match="'task'"):
        ib.kkt_residuals(net, X, np.ones(10), task="multiclass")


def test_report_summary_and_is_kkt():
    net = diagonal_net_from_w(np.array([1.0, 0.0]))
    X = torch.tensor([[1.0, 0.5], [-1.0, 0.5]], dtype=F64)
    rep = ib.kkt_residuals(net, X, [1, -1])
    text = str(rep)
    assert "epsilon_rel" in text and "is a" in text
    assert rep.to_table().count("\n") >= 10
    assert rep.is_kkt(epsilon=0.0, delta=0.0)
    with pytest.raises(dataclasses_frozen_error()):
        rep.epsilon = 1.0  # type: ignore[misc]


def dataclasses_frozen_error():
    import dataclasses

    return dataclasses.FrozenInstanceError


def test_prepare_infers_tasks():
    net = ib.HomogeneousMLP(3, [6], seed=1, dtype=F64)
    X = torch.randn(4, 3, dtype=F64)
    assert _prepare(net, X, [1, -1, 1, 1], "f", task=None).task == "classification"
    assert _prepare(net, X, [0.3, -1, 2, 1], "f", task=None).task == "regression"


# --------------------------------------------------------------------------- convex gaps
def _require(name: str) -> None:
    if not hasattr(ib.rich_regime, name):
        pytest.skip(f"implicitbias.rich_regime.{name} is not available yet")


def test_certificate_gap_diagonal_net_l1_max_margin():
    _require("l1_max_margin")
    X, y = sparse_data(30, 20, seed=4)
    w = l1_max_margin_lp(X.numpy(), y)
    net = diagonal_net_from_w(w)
    rep = ib.kkt_residuals(net, X, y, certificate=True)
    assert rep.convex_surrogate == "l1_max_margin"
    np.testing.assert_allclose(rep.convex_optimum, np.abs(w).sum(), rtol=1e-6)
    assert abs(rep.convex_gap_rel) <= 1e-6
    # a non-optimal separating direction has a positive gap
    net2 = diagonal_net_from_w(w + 0.05 * np.sign(np.arange(20) % 3 - 1))
    y2 = np.sign(net2(X).detach().numpy())
    if np.array_equal(y2, y):
        rep2 = ib.kkt_residuals(net2, X, y, certificate=True)
        assert rep2.convex_gap_rel > 1e-3


def test_certificate_gap_matrix_factorization_min_nuclear_norm():
    _require("min_nuclear_norm_completion")
    d = 5
    a = np.array([1.0, -2.0, 0.5, 1.5, -1.0])
    pairs = [(i, i) for i in range(d)] + [(0, 1), (1, 3), (2, 4)]
    idx = torch.tensor(pairs, dtype=torch.int64)
    y = np.array([a[i] * a[j] for i, j in pairs])
    mf = ib.MatrixFactorization(d, dtype=F64)
    with torch.no_grad():
        mf.U.zero_()
        mf.U[:, 0] = torch.tensor(a, dtype=F64)
        mf.V.zero_()
    rep = ib.kkt_residuals(mf, idx, y, certificate=True)
    assert rep.convex_surrogate == "min_nuclear_norm"
    np.testing.assert_allclose(rep.convex_optimum, (a**2).sum(), rtol=1e-5)
    assert abs(rep.convex_gap_rel) <= 1e-5


@pytest.mark.slow
def test_gram_route_matches_explicit_nnls_on_trained_mlp():
    torch.manual_seed(0)
    d, n = 20, 150
    X = torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(0)) / d**0.5
    teacher = ib.HomogeneousMLP(d, [200], seed=1, dtype=F64)
    t = torch.sign(teacher(X)).detach()
    net = ib.HomogeneousMLP(d, [200], seed=2, dtype=F64)
    opt = torch.optim.SGD(net.parameters(), lr=2.0, weight_decay=1e-3)
    for _ in range(300):
        opt.zero_grad()
        torch.nn.functional.softplus(-t * net(X)).mean().backward()
        opt.step()
    y = np.sign(net(X).detach().numpy())
    rep = ib.kkt_residuals(net, X, y, weight_decay=1e-3)
    q = y * net(X).detach().numpy()
    G, theta_t = explicit_pairs_matrix(net, X, y, q.min() ** -0.5)
    _, rnorm = scipy.optimize.nnls(G, theta_t)
    np.testing.assert_allclose(rep.epsilon_min, rnorm, rtol=1e-8)
    assert rep.epsilon <= rep.epsilon_min * (1 + 1e-2) + rep.epsilon_floor


def test_bad_input_is_reported_by_the_public_function():
    net = ib.HomogeneousMLP(3, [6], seed=1, dtype=F64)
    X = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    y = np.sign(net(X).detach().numpy())
    Xn = X.clone()
    Xn[1, 1] = float("nan")
    with pytest.raises(ValueError, match="'X' argument of kkt_residuals must be finite"):
        ib.kkt_residuals(net, Xn, y)
    with pytest.raises(ValueError, match="'degree' argument of kkt_residuals"):
        ib.kkt_residuals(net, X, y, degree=0)
    with pytest.raises(ValueError, match="'chunk_size' argument of kkt_residuals"):
        ib.kkt_residuals(net, X, y, chunk_size=0)
    with pytest.raises(ValueError, match="'Q' argument of nnls_gram must be positive semidefinite"):
        ib.nnls_gram(-np.array([[2.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0]))
    with pytest.raises(ValueError, match="'Q' argument of nnls_gram must be positive semidefinite"):
        ib.nnls_gram(np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([1.0, 1.0]))
