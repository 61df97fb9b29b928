"""The early-phase NTK predictor (THEORY §2): diagonal net ↔ ℓ2 max margin, zero-fill completion."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import implicitbias as ib

DT = torch.float64
SOLVER_RTOL = 1e-6  # interior-point accuracy of the convex solvers (both sides of a comparison)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _separable(n: int, d: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    X = _randn(n, d, seed=seed)
    w = _randn(d, seed=seed + 1)
    y = np.sign((X @ w).numpy())
    return X, y


def _l2_max_margin(X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Unit-norm ℓ2 max-margin direction and its margin, by cvxpy directly."""
    import cvxpy as cp

    w = cp.Variable(X.shape[1])
    problem = cp.Problem(cp.Minimize(cp.sum_squares(w)), [cp.multiply(y, X @ w) >= 1])
    problem.solve()
    assert problem.status == cp.OPTIMAL
    w_opt = np.asarray(w.value)
    norm = float(np.linalg.norm(w_opt))
    return w_opt / norm, 1.0 / norm


@pytest.mark.parametrize("alpha", [1.0, 0.3])
def test_diagonal_net_kernel_svm_is_the_l2_max_margin_classifier(alpha: float) -> None:
    # K = 8 α² <x, x'> (THEORY §4): (K1) is the ℓ2 max-margin problem, margin scaled by √8 α.
    X, y = _separable(12, 5, seed=0)
    net = ib.DiagonalNet(5, alpha=alpha, dtype=DT)
    pred = ib.ntk_predictor(net, X, y)
    w_unit, gamma = _l2_max_margin(X.numpy(), y)
    np.testing.assert_allclose(pred.margin, np.sqrt(8.0) * alpha * gamma, rtol=SOLVER_RTOL)
    np.testing.assert_allclose(pred.norm, 1.0 / pred.margin, rtol=SOLVER_RTOL)
    X_test = _randn(30, 5, seed=5)
    np.testing.assert_allclose(
        pred.decision_function(X_test, normalized=True),
        np.sqrt(8.0) * alpha * (X_test.numpy() @ w_unit),
        rtol=0,
        atol=SOLVER_RTOL * np.sqrt(8.0) * alpha * float(X_test.abs().max()) * np.sqrt(5),
    )
    np.testing.assert_allclose(pred.predict(X), y)


def test_classification_conventions() -> None:
    X, y = _separable(16, 4, seed=3)
    net = ib.HomogeneousMLP(4, [32], seed=0, dtype=DT)
    pred = ib.ntk_predictor(net, X, y)
    values = pred.decision_function(X).numpy()
    # the min-norm solution of (K1): functional margins >= 1, equal to 1 on the support
    np.testing.assert_allclose(np.min(y * values), 1.0, rtol=SOLVER_RTOL)
    np.testing.assert_allclose(
        pred.decision_function(X, normalized=True).numpy(), values / pred.norm, rtol=1e-14
    )
    np.testing.assert_allclose(pred.margin, np.min(y * values) / pred.norm, rtol=1e-12)
    np.testing.assert_allclose(pred.predict(X), y)
    torch.testing.assert_close(pred.kernel, ib.empirical_ntk(net, X))


def test_predictor_is_frozen_at_the_parameters_it_was_built_at() -> None:
    X, y = _separable(10, 3, seed=4)
    net = ib.HomogeneousMLP(3, [16], seed=1, dtype=DT)
    pred = ib.ntk_predictor(net, X, y)
    before = pred.decision_function(X)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)
    np.testing.assert_allclose(pred.decision_function(X), before, rtol=0, atol=0)


def test_regression_is_min_norm_kernel_interpolation() -> None:
    X = _randn(10, 4, seed=6)
    y = _randn(10, seed=7).numpy()
    net = ib.HomogeneousMLP(4, [32, 32], seed=2, dtype=DT)
    pred = ib.ntk_predictor(net, X, y, task="regression")
    assert pred.margin is None
    K = ib.empirical_ntk(net, X).numpy()
    np.testing.assert_allclose(pred.decision_function(X), y, rtol=0, atol=1e-8 * np.abs(y).max())
    X_new = _randn(5, 4, seed=8)
    Kx = ib.empirical_ntk(net, X_new, X).numpy()
    expected = Kx @ np.linalg.solve(K, y)
    np.testing.assert_allclose(
        pred.predict(X_new), expected, rtol=0, atol=1e-8 * np.abs(expected).max()
    )


@pytest.mark.parametrize("alpha", [1.0, 10.0])
def test_matrix_completion_kernel_predictor_fills_zeros(alpha: float) -> None:
    # THEORY §5: distinct unordered pairs have orthogonal NTK features, so the kernel-regime
    # predictor fits the observed entries and their mirrors and predicts 0 everywhere else.
    d = 6
    g = np.arange(d, dtype=np.float64) + 1.0
    truth = np.outer(g, g) / d**2
    observed = [(0, 1), (2, 2), (3, 1), (5, 4), (0, 5), (4, 4), (2, 3)]
    mf = ib.MatrixFactorization(d, alpha=alpha, dtype=DT)
    idx = torch.tensor(observed)
    pred = ib.ntk_predictor(mf, idx, truth[idx[:, 0], idx[:, 1]], task="regression")
    every = torch.tensor([(i, j) for i in range(d) for j in range(d)])
    filled = pred.predict(every).reshape(d, d)
    expected = np.zeros((d, d))
    for i, j in observed:
        expected[i, j] = expected[j, i] = truth[i, j]
    np.testing.assert_allclose(filled, expected, rtol=0, atol=1e-12)


def test_multiclass() -> None:
    import implicitbias.kernel_regime as kr

    if not hasattr(kr, "multiclass_kernel_svm"):
        pytest.importorskip("implicitbias.kernel_regime.multiclass_svm")
    C = 3
    X = _randn(15, 4, seed=9)
    y = np.arange(15) % C
    net = ib.HomogeneousMLP(4, [24], C, seed=3, dtype=DT)
    pred = ib.ntk_predictor(net, X, y, task="multiclass")
    scores = pred.decision_function(X)
    assert scores.shape == (15, C)
    np.testing.assert_allclose(pred.predict(X), y)
    gaps = scores[np.arange(15), y][:, None] - scores
    gaps[np.arange(15), y] = np.inf
    np.testing.assert_allclose(gaps.min(), 1.0, rtol=SOLVER_RTOL)
    np.testing.assert_allclose(pred.margin, gaps.min() / pred.norm, rtol=1e-12)


def test_errors() -> None:
    X, y = _separable(8, 3, seed=10)
    net = ib.HomogeneousMLP(3, [8], seed=0, dtype=DT)
    with pytest.raises(ValueError, match=r"y = 2\*y - 1"):
        ib.ntk_predictor(net, X, (y + 1) / 2)
    with pytest.raises(ValueError, match="'y' argument of ntk_predictor"):
        ib.ntk_predictor(net, X, y[:5])
    with pytest.raises(ValueError, match="'task' argument"):
        ib.ntk_predictor(net, X, y, task="ranking")
    with pytest.raises(ValueError, match="task='multiclass'"):
        ib.ntk_predictor(ib.HomogeneousMLP(3, [8], 2, seed=0, dtype=DT), X, y)
    pred = ib.ntk_predictor(net, X, y)
    with pytest.raises(ValueError, match="'X_new' argument"):
        pred.decision_function(_randn(4, 5))
    X_bad = torch.cat([X, X[:1]])  # the same input with both labels: not separable
    with pytest.raises(ib.NotSeparableError):
        ib.ntk_predictor(copy.deepcopy(net), X_bad, np.append(y, -y[0]))


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_unknown_solver_option_names_solver_options(task: str) -> None:
    X, y = _separable(8, 3, seed=10)
    net = ib.HomogeneousMLP(3, [8], seed=0, dtype=DT)
    solver = "kernel_svm" if task == "classification" else "kernel_regression"
    with pytest.raises(
        ib.InvalidArgumentError,
        match=rf"The 'solver_options' argument of ntk_predictor must be a dict of keyword "
        rf"arguments of {solver} .*got unknown key \['nope'\]",
    ):
        ib.ntk_predictor(net, X, y, task=task, solver_options={"nope": 1})


def test_tensors_in_tensors_out() -> None:
    """A predictor asked with a tensor answers with a tensor on its device (issue 14)."""
    X, y = _separable(16, 4, seed=3)
    net32 = ib.HomogeneousMLP(4, [32], seed=0, dtype=torch.float32)
    pred = ib.ntk_predictor(net32, X.float(), y)
    v = pred.decision_function(X.float())
    assert isinstance(v, torch.Tensor) and v.dtype == torch.float32 and v.shape == (16,)
    p = pred.predict(X.float())
    assert isinstance(p, torch.Tensor) and torch.equal(p, torch.sign(v))
    np.testing.assert_allclose(v.numpy(), pred._values(X.float()), rtol=1e-6)
