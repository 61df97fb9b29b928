"""Numerical extremes (issue 8): float32 and float64 everywhere, α up to 1e4, λ down to 1e−6,
margins up to 1e8, d up to 1e5 — no overflow, no NaN, and the documented dtypes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias as ib


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


F32, F64 = torch.float32, torch.float64
RTOL = {F64: 1e-10, F32: 1e-4}


def _X() -> np.ndarray:
    return np.array(
        [[1.0, 0.5, -0.3], [0.2, 1.0, 0.4], [-1.0, 0.1, 0.2], [0.3, -1.0, 0.5], [0.7, 0.7, -1.0]]
    )


def _y() -> np.ndarray:
    return np.array([1.0, -1.0, 1.0, -1.0, 1.0])


# ---------------------------------------------------- reference solvers: float64 whatever comes in
def _sol(res: Any) -> np.ndarray:
    for field in ("coef", "w", "W", "solution"):
        if hasattr(res, field):
            return getattr(res, field)
    raise AssertionError(type(res))


SOLVERS: dict[str, Callable[[Callable[[np.ndarray], Any]], Any]] = {
    # each takes a converter (float32 numpy / torch / float64) applied to every array argument
    "kernel_svm": lambda c: ib.kernel_svm(c(_X() @ _X().T + np.eye(5)), c(_y())),
    "kernel_regression": lambda c: ib.kernel_regression(c(_X() @ _X().T + np.eye(5)), c(_y())),
    "multiclass_kernel_svm": lambda c: ib.multiclass_kernel_svm(
        c(np.kron(_X() @ _X().T + np.eye(5), np.eye(3))), np.array([0, 1, 2, 0, 1]), n_classes=3
    ),
    "l1_max_margin": lambda c: ib.l1_max_margin(c(_X()), c(_y())),
    "l2_max_margin": lambda c: ib.l2_max_margin(c(_X()), c(_y())),
    "lp_max_margin": lambda c: ib.lp_max_margin(c(_X()), c(_y()), p=3.0),
    "min_l1_interpolation": lambda c: ib.min_l1_interpolation(c(_X().T), c(_X()[:3, 0])),
    "min_l2_interpolation": lambda c: ib.min_l2_interpolation(c(_X().T), c(_X()[:3, 0])),
    "min_nuclear_norm_completion": lambda c: ib.min_nuclear_norm_completion(
        3, [0, 1, 2, 0], [0, 1, 2, 1], c(np.array([1.0, 2.0, 3.0, 0.5]))
    ),
    "nnls_gram": lambda c: ib.nnls_gram(c(_X() @ _X().T), c(_X() @ np.array([1.0, -0.5, 2.0]))),
}


def _f32_np(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def _f32_torch(a: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=F32)


def _f32_rounded_f64(a: np.ndarray) -> np.ndarray:
    return np.asarray(a, dtype=np.float32).astype(np.float64)


@pytest.mark.parametrize("func", list(SOLVERS))
@pytest.mark.parametrize("convert", [_f32_np, _f32_torch], ids=["numpy32", "torch32"])
def test_reference_solvers_compute_in_float64(func: str, convert: Callable[..., Any]) -> None:
    """float32 input: the answer is float64 and is the float64 answer on the same numbers."""
    res32 = SOLVERS[func](convert)
    res64 = SOLVERS[func](_f32_rounded_f64)
    sol32, sol64 = _sol(res32), _sol(res64)
    assert sol32.dtype == np.float64
    np.testing.assert_allclose(sol32, sol64, rtol=1e-10, atol=1e-12)
    assert res32.status == res64.status == "optimal"


@pytest.mark.parametrize("scale", [1e-8, 1e-4, 1e4, 1e8])
def test_kernel_svm_margin_scales_with_the_kernel(scale: float) -> None:
    """margin(cK) = √c · margin(K), from c = 1e−8 to 1e8, with the certificates intact."""
    K = _X() @ _X().T + np.eye(5)
    base = ib.kernel_svm(K, _y())
    res = ib.kernel_svm(scale * K, _y())
    np.testing.assert_allclose(res.margin, math.sqrt(scale) * base.margin, rtol=1e-9)
    np.testing.assert_allclose(res.svm_dual * scale, base.svm_dual, rtol=1e-8, atol=1e-14)
    assert res.kkt_residual <= 1e-9


@pytest.mark.parametrize(
    ("func", "scale"),
    [
        ("l1_max_margin", 1e-6),
        ("l1_max_margin", 1e6),
        ("l2_max_margin", 1e-6),
        ("l2_max_margin", 1e6),
    ],
)
def test_max_margin_scales_with_the_data(scale: float, func: str) -> None:
    fn = getattr(ib, func)
    base = fn(_X(), _y())
    res = fn(scale * _X(), _y())
    np.testing.assert_allclose(res.margin, scale * base.margin, rtol=1e-8)
    np.testing.assert_allclose(res.w * scale, base.w, rtol=1e-7, atol=1e-10)


def test_nuclear_norm_completion_scales_with_the_values() -> None:
    args = (4, [0, 1, 2, 3, 0], [0, 1, 2, 3, 1])
    m = np.array([1.0, 2.0, 3.0, 4.0, 0.5])
    base = ib.min_nuclear_norm_completion(*args, m)
    for c in (1e-6, 1e6):
        res = ib.min_nuclear_norm_completion(*args, c * m)
        np.testing.assert_allclose(res.nuclear_norm, c * base.nuclear_norm, rtol=1e-6)
        assert np.all(np.isfinite(res.W))


# ---------------------------------------------------------------------------- models and NTK
def _sym_mlp(dtype: torch.dtype) -> ib.Symmetrized:
    return ib.symmetrize(ib.HomogeneousMLP(3, [5, 4], seed=0, dtype=dtype))  # 3-homogeneous


@pytest.mark.parametrize("dtype", [F32, F64])
def test_empirical_ntk_dtype_follows_the_model(dtype: torch.dtype) -> None:
    X = torch.tensor(_X()).to(F64 if dtype == F32 else F32)  # the other dtype
    net64 = _sym_mlp(F64)
    net = net64 if dtype == F64 else _sym_mlp(F64).to(dtype)
    K = ib.empirical_ntk(net, X)
    assert K.dtype == dtype
    K_ref = ib.empirical_ntk(net64, X.double())
    torch.testing.assert_close(K.double(), K_ref, rtol=RTOL[dtype] * 10, atol=0.0)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("alpha", [1e2, 1e4])
@pytest.mark.parametrize("kind", ["diagonal", "mlp"])
def test_ntk_at_large_alpha_is_finite_and_scales(
    dtype: torch.dtype, alpha: float, kind: str
) -> None:
    """For an L-homogeneous model the NTK at α·θ̄ is α^{2(L−1)} K (THEORY §2), up to α = 1e4."""
    X = torch.tensor(_X(), dtype=dtype)
    if kind == "diagonal":
        net, L = ib.DiagonalNet(3, dtype=dtype), 2
    else:
        net, L = _sym_mlp(dtype), 3
    K1 = ib.empirical_ntk(net, X)
    ib.scale_init(net, alpha)
    Ka = ib.empirical_ntk(net, X)
    assert bool(torch.isfinite(Ka).all())
    torch.testing.assert_close(Ka / alpha ** (2 * (L - 1)), K1, rtol=RTOL[dtype] * 10, atol=0.0)
    np.testing.assert_allclose(ib.check_zero_output(net, X), 0.0, atol=0.0)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("method", ["gd", "flow"])
def test_training_at_alpha_1e4_and_lambda_1e6_stays_finite(dtype: torch.dtype, method: str) -> None:
    X = torch.tensor(_X(), dtype=dtype)
    y = torch.tensor(_y(), dtype=dtype)
    net = ib.DiagonalNet(3, alpha=1e4, dtype=dtype)
    res = ib.train(net, X, y, weight_decay=1e-6, lr=1e-9, steps=20, num_evals=5, method=method)
    assert res.status == "completed"
    for col in ("train_loss", "theta_norm", "objective"):
        values = res.history[col]
        assert np.all(np.isfinite(values)), (col, values)
    theta = ib.flat_parameters(res.model)
    assert theta.dtype == dtype
    assert bool(torch.isfinite(theta).all())


# ----------------------------------------------------------------------- losses in stable forms
@pytest.mark.parametrize("dtype", [F32, F64])
def test_logistic_loss_is_exact_at_huge_margins(dtype: torch.dtype) -> None:
    loss = ib.loss_function("logistic")
    out = torch.tensor([-1e8, 1e8, 0.0], dtype=dtype)
    y = torch.ones(3, dtype=dtype)
    values = loss.values(out, y)
    torch.testing.assert_close(
        values, torch.tensor([1e8, 0.0, math.log(2.0)], dtype=dtype), rtol=RTOL[dtype], atol=0.0
    )
    torch.testing.assert_close(
        loss.derivative(out, y), torch.tensor([-1.0, 0.0, -0.5], dtype=dtype), rtol=0, atol=0
    )


@pytest.mark.parametrize("dtype", [F32, F64])
def test_exponential_loss_is_clamped_not_infinite(dtype: torch.dtype) -> None:
    loss = ib.loss_function("exponential")
    out = torch.tensor([-1e8, 1e8, 0.0], dtype=dtype)
    y = torch.ones(3, dtype=dtype)
    clamp = 0.5 * math.log(torch.finfo(dtype).max)
    expected = torch.tensor([math.exp(clamp), 0.0, 1.0], dtype=dtype)
    torch.testing.assert_close(loss.values(out, y), expected, rtol=RTOL[dtype], atol=0.0)
    mean = loss(out.repeat(100), y.repeat(100))
    assert bool(torch.isfinite(mean))
    assert bool(torch.isfinite(loss.derivative(out, y)).all())


@pytest.mark.parametrize("dtype", [F32, F64])
def test_cross_entropy_is_exact_at_huge_logits(dtype: torch.dtype) -> None:
    loss = ib.loss_function("cross_entropy")
    out = torch.tensor([[1e8, -1e8, 0.0], [0.0, 1e8, -1e8]], dtype=dtype)
    y = torch.tensor([1, 1])
    torch.testing.assert_close(
        loss.values(out, y), torch.tensor([2e8, 0.0], dtype=dtype), rtol=RTOL[dtype], atol=0.0
    )
    grad = loss.derivative(out, y)
    torch.testing.assert_close(
        grad,
        torch.tensor([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], dtype=dtype),
        rtol=0.0,
        atol=0.0,
    )


# ------------------------------------------------------------------ margins and KKT, huge scales
def _l1_net(scale: float, dtype: torch.dtype) -> ib.DiagonalNet:
    w = ib.l1_max_margin(_X(), _y()).w
    return ib.diagonal_net_from_w(scale * w, dtype=dtype)


@pytest.mark.parametrize("dtype", [F32, F64])
def test_margins_are_scale_free_up_to_margins_of_1e8(dtype: torch.dtype) -> None:
    X, y = torch.tensor(_X(), dtype=dtype), torch.tensor(_y(), dtype=dtype)
    base = ib.normalized_margin(_l1_net(1.0, F64), torch.tensor(_X()), torch.tensor(_y()))
    np.testing.assert_allclose(base, ib.l1_max_margin(_X(), _y()).margin, rtol=1e-10)
    n = len(_y())
    for scale in (1e2, 1e4, 1e8):  # q_min = scale
        net = _l1_net(scale, dtype)
        gbar = ib.normalized_margin(net, X, y)
        gtil = ib.smoothed_margin(net, X, y)
        np.testing.assert_allclose(gbar, base, rtol=RTOL[dtype] * 10)
        theta_L = float(ib.flat_parameters(net).double().norm()) ** 2
        # γ̄ − log(n)/‖θ‖^L ≤ γ̃ ≤ γ̄ (Lyu & Li), with both finite
        assert math.isfinite(gtil)
        assert gbar - math.log(n) / theta_L - 1e-6 * base <= gtil <= gbar + 1e-6 * base


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("weight_decay", [None, 1e-6])
def test_kkt_residuals_are_scale_free_and_finite(
    dtype: torch.dtype, weight_decay: float | None
) -> None:
    X, y = torch.tensor(_X(), dtype=dtype), torch.tensor(_y(), dtype=dtype)
    for scale in (1.0, 1e4, 1e8):
        rep = ib.kkt_residuals(_l1_net(scale, dtype), X, y, weight_decay=weight_decay)
        assert rep.epsilon_rel <= (1e-9 if dtype == F64 else 1e-3), (scale, rep.epsilon_rel)
        np.testing.assert_allclose(rep.q_min, scale, rtol=RTOL[dtype] * 10)
        assert np.all(np.isfinite(rep.multipliers))
        if weight_decay is not None:
            assert math.isfinite(rep.stationarity_residual)
            assert np.all(np.isfinite(rep.wd_multipliers))


# ---------------------------------------------------------------------------------- d = 1e5
D_BIG, N_BIG = 100_000, 8


@pytest.fixture(scope="module")
def big() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(N_BIG, D_BIG))
    y = np.sign(X[:, 0] + X[:, 1] + X[:, 2])
    return X, y


def test_d_1e5_ntk_matches_closed_form(big: tuple[np.ndarray, np.ndarray]) -> None:
    """u = v = c·1 with c = α/√(2d): φ(x) = (2c x, −2c x), K = 8c² X Xᵀ."""
    X, _ = big
    alpha = 128.0
    net = ib.DiagonalNet(D_BIG, alpha=alpha, alpha_mode="norm", dtype=F64)
    K = ib.empirical_ntk(net, torch.tensor(X))
    c2 = alpha**2 / (2 * D_BIG)
    np.testing.assert_allclose(K.numpy(), 8 * c2 * (X @ X.T), rtol=1e-12)


def test_d_1e5_max_margin_and_kkt(big: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = big
    l1 = ib.l1_max_margin(X, y)
    assert l1.status == "optimal"
    assert float(np.min(y * (X @ l1.w))) >= 1.0 - 1e-9
    assert l1.relative_gap <= 1e-7
    l2 = ib.l2_max_margin(X, y)
    np.testing.assert_allclose(l2.margin, ib.kernel_svm(X @ X.T, y).margin, rtol=1e-8)
    # the ℓ1 solution realized as a diagonal net is a KKT point, with γ̄ = 1/‖w‖₁
    net = ib.diagonal_net_from_w(l1.w)
    rep = ib.kkt_residuals(net, torch.tensor(X), torch.tensor(y))
    assert rep.epsilon_rel <= 1e-8
    np.testing.assert_allclose(rep.normalized_margin, l1.margin, rtol=1e-10)


def test_d_1e5_a_few_gd_steps(big: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = big
    net = ib.DiagonalNet(D_BIG, alpha=128.0, alpha_mode="norm", dtype=F32)
    res = ib.train(
        net, torch.tensor(X, dtype=F32), torch.tensor(y, dtype=F32),
        weight_decay=1e-6, lr=0.01, steps=2, num_evals=2,
    )  # fmt: skip
    assert res.status == "completed"
    loss = res.history["train_loss"]
    assert np.all(np.isfinite(loss))
    np.testing.assert_allclose(loss[0], math.log(2.0), rtol=1e-6)  # f = 0 at init
    assert loss[-1] < loss[0]
