"""The convex certificates of kkt_residuals are asked of the model (its convex_surrogate), not
of its class; the report's renamed fields (iterations, max_violation) and their deprecated
aliases; regression at θ = 0."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
from conftest import tol

F64 = torch.float64


# --------------------------------------------------------------------------- toy models
class MyDiagonal(nn.Module):
    """A researcher's own depth-2 diagonal net ``⟨u² − v², x⟩`` (not a DiagonalNet)."""

    degree = 2

    def __init__(self, u: np.ndarray, v: np.ndarray, surrogate: object = "auto") -> None:
        super().__init__()
        self.u = nn.Parameter(torch.tensor(u, dtype=F64))
        self.v = nn.Parameter(torch.tensor(v, dtype=F64))
        self._surrogate = surrogate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.u**2 - self.v**2)

    def convex_surrogate(self, task: str) -> object:
        if self._surrogate != "auto":
            return self._surrogate
        return {"classification": "l1_max_margin", "regression": "l1_interpolation"}[task]


class MyFactorization(nn.Module):
    """A researcher's own ``W = UUᵀ − VVᵀ`` on index pairs, without a ``d`` attribute."""

    degree = 2

    def __init__(self, U: torch.Tensor, V: torch.Tensor) -> None:
        super().__init__()
        self.U = nn.Parameter(U.clone())
        self.V = nn.Parameter(V.clone())

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        W = self.U @ self.U.T - self.V @ self.V.T
        return W[idx[:, 0], idx[:, 1]]

    def convex_surrogate(self, task: str) -> str | None:
        return "min_nuclear_norm" if task == "regression" else None


class NoCertificateDiagonalNet(ib.DiagonalNet):
    """A DiagonalNet subclass that declares no convex surrogate."""

    def convex_surrogate(self, task: str) -> str | None:
        return None


def dense_point(
    seed: int = 0, n: int = 12, d: int = 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A dense (u, v) and inputs/labels it separates: the NTK has full rank n, μ is unique."""
    rng = np.random.default_rng(seed)
    u = rng.uniform(0.2, 1.0, d)
    v = rng.uniform(0.0, 0.5, d)
    X = rng.standard_normal((n, d))
    y = np.sign(X @ (u**2 - v**2))
    return u, v, X, y


def diagonal_net(u: np.ndarray, v: np.ndarray, cls: type = ib.DiagonalNet) -> ib.DiagonalNet:
    net = cls(u.shape[0], dtype=F64)
    with torch.no_grad():
        net.u.copy_(torch.tensor(u, dtype=F64))
        net.v.copy_(torch.tensor(v, dtype=F64))
    return net


def rank_one_completion() -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    d = 5
    a = np.array([1.0, -2.0, 0.5, 1.5, -1.0])
    pairs = [(i, i) for i in range(d)] + [(0, 1), (1, 3), (2, 4)]
    return torch.tensor(pairs, dtype=torch.int64), np.array([a[i] * a[j] for i, j in pairs]), a


CERT_FIELDS = ("dual_norm", "convex_lower_bound", "convex_optimum", "convex_gap", "convex_gap_rel")


# --------------------------------------------------------------------------- the capability
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_own_diagonal_net_gets_the_same_certificate_as_the_builtin(task: str) -> None:
    u, v, X, y = dense_point()
    if task == "regression":
        y = X @ (u**2 - v**2) + 0.1  # real targets, off the model's outputs
    Xt = torch.tensor(X, dtype=F64)
    ref = ib.kkt_residuals(diagonal_net(u, v), Xt, y, task=task, certificate=True)
    mine = ib.kkt_residuals(MyDiagonal(u, v), Xt, y, task=task, certificate=True)
    assert mine.convex_surrogate == ref.convex_surrogate
    assert ref.convex_surrogate == {"classification": "l1_max_margin"}.get(task, "l1_interpolation")
    for name in CERT_FIELDS:
        a, b = getattr(mine, name), getattr(ref, name)
        if b is None:
            assert a is None, name
        else:
            np.testing.assert_allclose(a, b, rtol=1e-8, err_msg=name)
    np.testing.assert_allclose(mine.multipliers, ref.multipliers, rtol=1e-8, atol=1e-12)


def test_wrapped_model_is_asked_through_the_wrapper() -> None:
    u, v, X, y = dense_point(seed=1)
    Xt = torch.tensor(X, dtype=F64)
    net = diagonal_net(u, v)
    ref = ib.kkt_residuals(net, Xt, y)
    rep = ib.kkt_residuals(ib.Homogeneous(net), Xt, y)
    assert rep.convex_surrogate == "l1_max_margin"
    assert rep.dual_norm == ref.dual_norm and rep.convex_lower_bound == ref.convex_lower_bound


def test_subclass_that_declares_no_surrogate_has_no_certificate() -> None:
    u, v, X, y = dense_point(seed=2)
    rep = ib.kkt_residuals(
        diagonal_net(u, v, NoCertificateDiagonalNet), torch.tensor(X, dtype=F64), y,
        certificate=True,
    )
    assert rep.convex_surrogate is None
    assert all(getattr(rep, name) is None for name in CERT_FIELDS)


def test_own_factorization_without_d_matches_the_builtin() -> None:
    idx, y, a = rank_one_completion()
    mf = ib.MatrixFactorization(5, dtype=F64)
    with torch.no_grad():
        mf.U.zero_()
        mf.U[:, 0] = torch.tensor(a, dtype=F64)
        mf.V.zero_()
    ref = ib.kkt_residuals(mf, idx, y, certificate=True)
    mine = ib.kkt_residuals(MyFactorization(mf.U.detach(), mf.V.detach()), idx, y, certificate=True)
    assert mine.convex_surrogate == ref.convex_surrogate == "min_nuclear_norm"
    np.testing.assert_allclose(mine.convex_optimum, (a**2).sum(), rtol=1e-5)
    for name in ("dual_norm", "convex_lower_bound"):
        np.testing.assert_allclose(getattr(mine, name), getattr(ref, name), rtol=1e-8)


@pytest.mark.parametrize(
    ("surrogate", "task"),
    [
        ("l2_max_margin", "classification"),  # not a certificate kkt_residuals knows
        ("l1_max_margin", "regression"),  # known, for the other task
        ("min_nuclear_norm", "classification"),
    ],
)
def test_unknown_or_mismatched_surrogate_is_refused(surrogate: str, task: str) -> None:
    u, v, X, y = dense_point(seed=3)
    if task == "regression":
        y = X @ (u**2 - v**2)
    model = MyDiagonal(u, v, surrogate=surrogate)
    with pytest.raises(ib.InvalidArgumentError, match=r"'model' argument of kkt_residuals.*"
                       rf"convex_surrogate\('{task}'\).*got '{surrogate}'"):
        ib.kkt_residuals(model, torch.tensor(X, dtype=F64), y, task=task)


def test_nuclear_norm_surrogate_on_float_inputs_names_X() -> None:
    u, v, X, _ = dense_point(seed=4, d=2)
    model = MyDiagonal(u, v, surrogate="min_nuclear_norm")
    match = r"'X' argument of kkt_residuals.*index pairs"
    with pytest.raises(ib.InvalidArgumentError, match=match):
        ib.kkt_residuals(model, torch.tensor(X, dtype=F64), X @ (u**2 - v**2), task="regression")


# --------------------------------------------------------------------------- the vocabulary
def test_classification_max_violation_is_zero_and_iterations_counted() -> None:
    u, v, X, y = dense_point(seed=5)
    rep = ib.kkt_residuals(diagonal_net(u, v), torch.tensor(X, dtype=F64), y)
    assert rep.max_violation == 0.0 and isinstance(rep.max_violation, float)
    assert rep.margins is not None and rep.margins.min() == 1.0
    assert isinstance(rep.iterations, int) and rep.iterations >= len(rep.support) >= 1
    assert "max_violation" in rep.to_table() and "iterations" in rep.to_table()


def test_multiclass_max_violation_is_zero() -> None:
    torch.manual_seed(0)
    X = torch.randn(15, 4, dtype=F64)
    net = ib.HomogeneousMLP(4, [8], 3, seed=0, dtype=F64)
    y = net(X).detach().argmax(1).numpy()
    rep = ib.kkt_residuals(net, X, y)
    assert rep.task == "multiclass" and rep.max_violation == 0.0
    assert rep.convex_surrogate is None


def test_regression_max_violation_is_the_interpolation_error() -> None:
    idx, y, a = rank_one_completion()
    mf = ib.MatrixFactorization(5, alpha=0.3, dtype=F64)
    rep = ib.kkt_residuals(mf, idx, y)
    err = np.abs(mf(idx).detach().numpy() - y).max()
    np.testing.assert_allclose(rep.max_violation, err, rtol=tol(F64))
    assert rep.delta == rep.max_violation and rep.iterations == 0


def test_deprecated_aliases_warn_and_return_the_values() -> None:
    u, v, X, y = dense_point(seed=6)
    rep = ib.kkt_residuals(diagonal_net(u, v), torch.tensor(X, dtype=F64), y)
    with pytest.warns(DeprecationWarning, match=r"KKTReport\.solver_iterations is deprecated "
                      r"since 0\.2 and will be removed in 0\.3; use iterations"):
        assert rep.solver_iterations == rep.iterations
    match = r"KKTReport\.max_abs_residual .* use max_violation"
    with pytest.warns(DeprecationWarning, match=match):
        assert rep.max_abs_residual == rep.max_violation == 0.0  # the new value (was None)
    with pytest.raises(AttributeError, match="solver_iterations"):
        rep.solver_iterations = 3  # type: ignore[misc]
    idx, yr, _ = rank_one_completion()
    reg = ib.kkt_residuals(ib.MatrixFactorization(5, alpha=0.3, dtype=F64), idx, yr)
    with pytest.warns(DeprecationWarning, match="max_abs_residual"):
        assert reg.max_abs_residual == reg.max_violation > 0


# --------------------------------------------------------------------------- edge cases
def test_regression_at_zero_parameters_with_weight_decay() -> None:
    # zero initialization: θ = 0, every gradient vanishes; the relative residuals are inf
    # (they used to raise ZeroDivisionError with weight_decay)
    idx, y, _ = rank_one_completion()
    mf = ib.MatrixFactorization(5, dtype=F64)
    with torch.no_grad():
        mf.U.zero_()
        mf.V.zero_()
    rep = ib.kkt_residuals(mf, idx, y, weight_decay=0.1)
    assert rep.theta_norm == 0.0 and rep.epsilon == 0.0
    assert rep.epsilon_rel == math.inf and rep.wd_epsilon_rel == math.inf
    assert rep.stationarity_residual == math.inf and rep.wd_epsilon == 0.0
    np.testing.assert_allclose(rep.wd_multipliers, 2.0 * y / (len(y) * 0.1), rtol=tol(F64))
    assert rep.max_violation == np.abs(y).max()
