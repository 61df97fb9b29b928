"""Adversarial tests of the matrix-free route of kkt_residuals: models the way a researcher
writes them (a shared nn.ReLU, hooks, float32, odd scales, tied and frozen things, integer
inputs, a custom autograd Function), near-KKT points, tiny budgets, an interrupt mid-solve and
the auto fallback; and of ``lower_bound`` itself on any real μ.

Core invariant of every case, against the exact NNLS optimum ``ε*`` (the dense route's, or an
explicit NNLS on the Jacobian where the dense route's Gram cancellation is not accurate)::

    epsilon_min_lower ≤ ε*·(1 + 1e-9)  and  ε* ≤ epsilon_min·(1 + 1e-9)

with the upper end the optimum to 1e-6 when no InaccurateSolutionWarning was raised (the two
ends then within 1e-6, or held apart by rounding alone near a KKT point), and ``epsilon``
the residual ‖θ̃ − Σ μ_k ∇q_k(θ̃)‖ of the reported multipliers (recomputed by plain autograd).
"""

from __future__ import annotations

import copy
import math
import sys
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import scipy.optimize
import torch
import torch.autograd.forward_ad as fwAD
from torch import nn

import implicitbias as ib
from implicitbias.kkt._matrix_free import lower_bound
from test_kkt_working_set import explicit_eps_min

F64 = torch.float64
TOL = 1e-9  # the bracket's slack against the exact optimum (float64)
BRACKET = 1e-6  # the route's stopping width
U64 = float(np.finfo(np.float64).eps) / 2


# --------------------------------------------------------------------------- helpers
@pytest.fixture(autouse=True)
def _one_thread() -> Any:
    """Tiny problems: on a loaded machine intra-op threads only add synchronization (the
    fallback case ran 100x slower with two threads under CI load)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _shared_relu_net(d: int, h: int, C: int, seed: int, dtype: torch.dtype = F64) -> nn.Sequential:
    """Three bias-free layers with ONE nn.ReLU object used twice (degree 3)."""
    torch.manual_seed(seed)
    act = nn.ReLU()
    net = nn.Sequential(
        nn.Linear(d, h, bias=False), act, nn.Linear(h, h, bias=False), act,
        nn.Linear(h, C, bias=False),
    )  # fmt: skip
    return net.to(dtype)


def _labels(net: nn.Module, X: torch.Tensor) -> np.ndarray:
    """Labels the net separates: argmax (several outputs) or sign (one output)."""
    with torch.no_grad():
        out = net(X).to(F64).numpy()
    if out.ndim == 2 and out.shape[1] > 1:
        return out.argmax(1)
    return np.sign(out.reshape(-1))


def _coefficients(out: torch.Tensor, y: Any, mu: np.ndarray) -> torch.Tensor:
    """Output coefficients ``c`` with ``Σ μ_k ∇q_k = ∇ Σ c·f``."""
    m = torch.as_tensor(np.asarray(mu), dtype=out.dtype)
    if out.ndim == 2 and out.shape[1] > 1:
        yy = torch.as_tensor(np.asarray(y), dtype=torch.long)
        coef = -m
        coef[torch.arange(len(yy)), yy] = m.sum(1)
        return coef
    return (m * torch.as_tensor(np.asarray(y), dtype=out.dtype)).reshape(out.shape)


def _residual(model: nn.Module, X: torch.Tensor, y: Any, rep: Any) -> float:
    """‖θ̃ − Σ μ_k ∇q_k(θ̃)‖ of ``rep.multipliers`` by plain autograd (on a copy)."""
    net = copy.deepcopy(model)
    params = [p for p in net.parameters() if p.requires_grad]
    theta = torch.cat([p.detach().reshape(-1).to(F64) for p in params])
    point = theta / rep.q_min ** (1.0 / rep.degree)
    with torch.no_grad():
        offset = 0
        for p in params:
            p.copy_(point[offset : offset + p.numel()].reshape(p.shape).to(p.dtype))
            offset += p.numel()
    out = net(X)
    grads = torch.autograd.grad((out * _coefficients(out, y, rep.multipliers)).sum(), params)
    g = torch.cat([gr.reshape(-1) for gr in grads]).to(F64)
    return float(torch.linalg.norm(point - g))


def _explicit_at(model: nn.Module, point: torch.Tensor, X: torch.Tensor, y: np.ndarray) -> float:
    """min_{μ≥0} ‖point − Σ μ_k ∇q_k(point)‖ of a one-output model, in float64 (a float64 copy
    without hooks, the explicit Jacobian, scipy's NNLS)."""
    twin = copy.deepcopy(model).to(F64)
    for mod in twin.modules():
        mod._forward_pre_hooks.clear()
    named = [(n, p.shape) for n, p in twin.named_parameters() if p.requires_grad]

    def f(flat: torch.Tensor) -> torch.Tensor:
        ps, offset = {}, 0
        for n, shape in named:
            k = int(np.prod(shape))
            ps[n] = flat[offset : offset + k].reshape(shape)
            offset += k
        return torch.func.functional_call(twin, ps, (X.to(F64),)).reshape(-1)

    J = torch.autograd.functional.jacobian(f, point.to(F64)).numpy()
    _, rnorm = scipy.optimize.nnls((J * y[:, None]).T, point.to(F64).numpy(), maxiter=10_000)
    return float(rnorm)


@dataclass
class Run:
    rep: Any
    warned: bool
    caught: list


def _matrix_free(model: nn.Module, X: torch.Tensor, y: Any, steps: int, **kw: Any) -> Run:
    """The matrix-free route with its InaccurateSolutionWarning recorded (any other warning
    stays an error: the project's filter)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ib.InaccurateSolutionWarning)
        rep = ib.kkt_residuals(model, X, y, nnls_route="matrix_free", matrix_free_steps=steps,
                               **kw)  # fmt: skip
    return Run(rep, bool(caught), list(caught))


def _check_bracket(run: Run, exact: float, *, tol: float = TOL) -> None:
    """The core invariant against the exact optimum ``exact``."""
    rep = run.rep
    lo, up = rep.epsilon_min_lower, rep.epsilon_min
    assert rep.nnls_route == "matrix_free"
    assert math.isfinite(lo) and math.isfinite(up) and 0.0 <= lo <= up
    assert lo <= exact * (1 + tol), (lo, exact, up)
    assert exact <= up * (1 + tol), (lo, exact, up)
    if not run.warned:  # converged: the bracket is within 1e-6, or only rounding keeps it
        # open (near a KKT point); either way the upper end is the optimum
        np.testing.assert_allclose(up, exact, rtol=BRACKET)
        assert up - lo <= BRACKET * up or lo >= (1 - 1e-3) * exact, (lo, up)
    else:  # a warning only when the bracket really is wider than 1e-6, and it says so
        assert up - lo > 0.999 * BRACKET * up, (lo, up)
        (w,) = run.caught
        assert "raise matrix_free_steps" in str(w.message)
        assert f"[{lo:.6g}, {up:.6g}]" in str(w.message)
        assert w.filename == __file__  # stacklevel points at the caller's line
    mu = np.asarray(rep.multipliers)
    assert np.all(np.isfinite(mu)) and np.all(mu >= 0)
    assert rep.delta >= 0 and math.isfinite(rep.delta)
    assert rep.iterations >= 1


def _check_all(
    model: nn.Module, X: torch.Tensor, y: Any, steps: int, *, tol: float = TOL, **kw: Any
) -> tuple[Run, Any]:
    dense = ib.kkt_residuals(model, X, y, nnls_route="dense", **kw)
    assert dense.nnls_route == "dense"
    run = _matrix_free(model, X, y, steps, **kw)
    _check_bracket(run, dense.epsilon_min, tol=tol)
    assert run.rep.n_constraints == dense.n_constraints
    np.testing.assert_allclose(run.rep.q_min, dense.q_min, rtol=1e-12)
    # ε is the residual of the reported multipliers, and the upper end is that ε
    np.testing.assert_allclose(run.rep.epsilon, _residual(model, X, y, run.rep), rtol=1e-9)
    np.testing.assert_allclose(run.rep.epsilon, run.rep.epsilon_min, rtol=1e-9)
    return run, dense


def _in_matrix_free() -> bool:
    """Whether the current call stack is inside the matrix-free solve."""
    f = sys._getframe(1)
    while f is not None:
        if f.f_code.co_name == "matrix_free_nnls":
            return True
        f = f.f_back
    return False


def _near_kkt(eta: float, n: int = 5, d: int = 6, h: int = 4, seed: int = 0) -> tuple:
    """A two-layer ReLU net at a KKT point of its margin problem, then every parameter moved by
    ``eta``·N(0, 1): ε_rel ≈ 0.5·eta. All hidden units active on all data, so the net is the
    balanced factorization of the hard-margin SVM of data whose constraints are all active
    (μ₀ > 0, Σ μ₀ᵢ xᵢ = β, xᵢ·β = 1), rotated at random."""
    g = np.random.default_rng(seed)
    mu0 = g.uniform(0.5, 1.5, size=n)
    s = 1.3
    mu0 *= s * s / mu0.sum()
    Z = np.zeros((n, d))
    Z[:, 1:4] = g.normal(size=(n, 3))
    Z -= (mu0 @ Z) / mu0.sum()
    R, _ = np.linalg.qr(g.normal(size=(d, d)))
    X = (np.eye(1, d) / s + Z) @ R.T
    beta = R @ (np.eye(d)[0] * s)
    c = g.uniform(0.5, 1.5, size=h)
    c /= np.linalg.norm(c)
    net = nn.Sequential(nn.Linear(d, h, bias=False), nn.ReLU(), nn.Linear(h, 1, bias=False))
    net = net.to(F64)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(np.outer(c, beta / np.linalg.norm(beta))))
        net[2].weight.copy_(torch.tensor(c)[None])
        for p in net.parameters():
            p.add_(eta * torch.randn(p.shape, dtype=F64, generator=_gen(seed + 7)))
    X = torch.tensor(X)
    y = np.ones(n)
    assert np.all(_labels(net, X) == y)
    return net, X, y


class _StraightReLU(torch.autograd.Function):
    """A hand-written ReLU without a forward-mode formula (no ``jvp``)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return g * (x > 0).to(g.dtype)


class _CustomAct(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _StraightReLU.apply(x)


# --------------------------------------------------------------------------- lower_bound
def test_lower_bound_holds_for_any_real_mu_on_random_problems() -> None:
    """``lower_bound ≤ ε_min²`` for μ anywhere in ℝᵐ (the face step passes unclipped points),
    with the route's rounding allowance, on random problems with ``b = Gθ̃ > 0``; tight near
    the optimum."""
    rng = np.random.default_rng(0)
    tight = 0
    for _ in range(300):
        m, p = int(rng.integers(1, 7)), int(rng.integers(1, 9))
        G = rng.normal(size=(m, p))
        theta = rng.normal(size=p)
        b = G @ theta
        G[b < 0] *= -1
        b = np.abs(b)
        if b.min() < 1e-2:
            continue
        mu_star, rnorm = scipy.optimize.nnls(G.T, theta)
        e2, tt = rnorm**2, float(theta @ theta)
        norms = np.linalg.norm(G, axis=1)
        for mu in (
            rng.normal(scale=2.0, size=m),  # negative entries too
            np.abs(rng.normal(size=m)),
            mu_star * rng.uniform(0.0, 2.0, size=m),
            mu_star + 1e-7 * rng.normal(size=m),
        ):
            r = theta - G.T @ mu
            eps2 = float(r @ r)
            err = 4 * U64 * norms * (math.sqrt(tt) + np.abs(mu) @ norms + math.sqrt(eps2))
            got = lower_bound(tt, b, mu, eps2, float(r @ theta), G @ r, err)
            assert got <= e2 * (1 + TOL) + 1e-15 * tt, (got, e2)
        tight += got >= e2 * (1 - 1e-4)
    assert tight >= 100  # the bound is not trivially 0


def test_lower_bound_closed_form_with_negative_entries() -> None:
    """∇q₁ = e₁, ∇q₂ = e₂ at θ̃ = (1, 1, 1): μ* = (1, 1), ε_min = 1."""
    theta = np.ones(3)
    G = np.eye(3)[:2]
    tt, b = 3.0, G @ theta
    zero = np.zeros(2)
    for mu in ([-1.0, 0.5], [3.0, -2.0], [1.0, -1e-3], [-5.0, -5.0]):
        mu = np.asarray(mu)
        r = theta - G.T @ mu
        assert lower_bound(tt, b, mu, float(r @ r), float(r @ theta), G @ r, zero) <= 1 + 1e-12
    assert lower_bound(tt, b, np.ones(2), 1.0, 1.0, zero, zero) == pytest.approx(1.0, rel=1e-14)


def test_lower_bound_rounding_allowance_never_raises_it() -> None:
    theta = np.array([1.0, 2.0, 0.5, 1.0])
    G = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 0.0], [0.5, 0.5, 0.0, 0.0]])
    tt, b = float(theta @ theta), G @ theta
    rng = np.random.default_rng(1)
    for _ in range(100):
        mu = rng.normal(size=3)
        r = theta - G.T @ mu
        args = (tt, b, mu, float(r @ r), float(r @ theta), G @ r)
        base = lower_bound(*args, np.zeros(3))
        for scale in (1e-12, 1e-6, 1e-2):
            assert lower_bound(*args, np.full(3, scale)) <= base + 1e-15


def test_lower_bound_survives_cancellation_when_r_is_nearly_parallel_to_theta() -> None:
    """One constraint g almost parallel to θ̃ (ε_rel ≈ 9e-5, far above float64's floor) and a
    small μ (so r = θ̃ − μg ≈ c·θ̃ with c = 0.99975): ``u = r − c·θ̃`` is tiny, and
    ``‖u‖² = eps2 − 2c·r_θ + c²·tt`` cancels terms of size ‖θ̃‖². Inputs computed in float64
    exactly as the route does (``err`` its allowance); the reference is exact (rationals):
    ε_min² = ‖θ̃‖² − ⟨g, θ̃⟩²/‖g‖²."""
    theta = np.array([-0.21771471381816104, 1.7754568723919455, 0.4317857058015602,
                      0.5141276213055189, 0.5545047312321162])  # fmt: skip
    g = np.array([-0.7966319774831336, 6.498803269528745, 1.580632606514977,
                  1.8825017137184974, 2.029640548890956])  # fmt: skip
    mu = np.array([6.935418636692645e-05])
    tt, b = float(theta @ theta), np.array([float(g @ theta)])
    r = theta - g * mu[0]
    eps2 = float(r @ r)
    norms = np.array([float(np.linalg.norm(g))])
    err = 4 * U64 * norms * (math.sqrt(tt) + mu @ norms + math.sqrt(eps2))
    got = lower_bound(tt, b, mu, eps2, float(r @ theta), np.array([float(g @ r)]), err)
    T, Gq = [Fraction(x) for x in theta], [Fraction(x) for x in g]
    gt = sum(a * c for a, c in zip(Gq, T))
    exact = float(sum(a * a for a in T) - gt * gt / sum(a * a for a in Gq))
    assert exact / tt > 1e-9  # well above float64's floor (ε_rel ≈ 9e-5)
    assert got <= exact * (1 + TOL), f"lower bound {got:.6g} > exact eps_min^2 {exact:.6g}"


# --------------------------------------------------------------------------- researcher models
def test_shared_relu_multiclass_reaches_the_optimum() -> None:
    net = _shared_relu_net(4, 8, 3, seed=0)
    X = torch.randn(7, 4, dtype=F64, generator=_gen(1))
    y = _labels(net, X)
    before = [p.detach().clone() for p in net.parameters()]
    run, _ = _check_all(net, X, y, steps=3000)
    assert not run.warned
    # the shared activation stays one object, the parameters untouched (bit for bit)
    assert net[1] is net[3]
    for p, q in zip(net.parameters(), before):
        assert isinstance(p, nn.Parameter) and torch.equal(p.detach(), q)


def test_hooks_that_read_values_and_rescale_outputs() -> None:
    """A forward hook that reads values (``.item()``: ``vmap`` cannot batch it), one that
    rescales an output by 3 and a pre-hook that halves the input (still homogeneous)."""
    net = _shared_relu_net(3, 6, 4, seed=2)
    seen: list[float] = []
    net[1].register_forward_hook(lambda m, a, out: seen.append(float(out.detach().sum().item())))
    net[4].register_forward_hook(lambda m, a, out: out * 3.0)
    net[0].register_forward_pre_hook(lambda m, args: (args[0] * 0.5,))
    X = torch.randn(6, 3, dtype=F64, generator=_gen(3))
    y = _labels(net, X)
    seen.clear()
    run, _ = _check_all(net, X, y, steps=3000)
    assert seen  # the hooks ran on the route
    assert not run.warned
    # the hooks are part of the model: outputs 3·f(x/2) = 1.5·f(x) (f is 1-homogeneous in x)
    plain = _shared_relu_net(3, 6, 4, seed=2)
    with torch.no_grad():
        out = plain(X).numpy()
    true = out[np.arange(6), y]
    out[np.arange(6), y] = -np.inf
    np.testing.assert_allclose(run.rep.q_min, 1.5 * float((true - out.max(1)).min()), rtol=1e-12)


def test_custom_autograd_function_without_forward_mode() -> None:
    """A hand-written ReLU (autograd.Function, no jvp) shared by two layers: the forward-mode
    products fall back to reverse over reverse."""
    torch.manual_seed(3)
    act = _CustomAct()
    net = nn.Sequential(
        nn.Linear(3, 6, bias=False), act, nn.Linear(6, 6, bias=False), act,
        nn.Linear(6, 3, bias=False),
    ).to(F64)  # fmt: skip
    X = torch.randn(7, 3, dtype=F64, generator=_gen(4))
    run, _ = _check_all(net, X, _labels(net, X), steps=3000)
    assert not run.warned


def test_kinks_and_ties_at_the_point() -> None:
    """Exact ties in a max-pool over duplicated hidden units, and a ReLU pre-activation that is
    exactly 0 on every example: forward and reverse mode must take the same subgradient."""

    class PoolNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1 = nn.Linear(3, 4, bias=False)
            self.pool = nn.MaxPool1d(2)
            self.l2 = nn.Linear(2, 3, bias=False)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.l2(self.pool(self.l1(x).unsqueeze(1)).squeeze(1))

    torch.manual_seed(0)
    net = PoolNet().to(F64)
    with torch.no_grad():
        net.l1.weight[1] = net.l1.weight[0]
        net.l1.weight[3] = net.l1.weight[2]
    X = torch.randn(6, 3, dtype=F64, generator=_gen(1))
    run, _ = _check_all(net, X, _labels(net, X), steps=3000)
    assert not run.warned

    relu_net = _shared_relu_net(3, 5, 3, seed=1)
    with torch.no_grad():
        relu_net[0].weight[0] = torch.tensor([0.0, 0.0, 1.0], dtype=F64)
    X = torch.randn(6, 3, dtype=F64, generator=_gen(2))
    X[:, 2] = 0.0
    run, _ = _check_all(relu_net, X, _labels(relu_net, X), steps=3000)
    assert not run.warned


def test_binary_model_with_output_shape_n_by_1() -> None:
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(3, 10, bias=False), nn.ReLU(), nn.Linear(10, 1, bias=False))
    net = net.to(F64)
    X = torch.randn(9, 3, dtype=F64, generator=_gen(5))
    with torch.no_grad():
        assert net(X).shape == (9, 1)
    run, _ = _check_all(net, X, _labels(net, X), steps=3000)
    assert run.rep.task == "classification" and run.rep.multipliers.shape == (9,)
    assert not run.warned


def test_float32_model_against_its_float64_twin() -> None:
    """A float32 model (the route computes in float64 when the module runs there): the bracket
    holds the optimum of the same parameters evaluated in float64, and the dense float32
    route's."""
    net = _shared_relu_net(4, 8, 3, seed=6, dtype=torch.float32)
    X = torch.randn(8, 4, generator=_gen(7))
    y = _labels(net, X)
    exact = ib.kkt_residuals(copy.deepcopy(net).to(F64), X.to(F64), y, nnls_route="dense")
    run = _matrix_free(net, X, y, steps=3000)
    # float32 outputs set q_min (so θ̃) to float32 accuracy: ε_min moves by ~1e-7 relative
    _check_bracket(run, exact.epsilon_min, tol=2e-6)
    dense32 = ib.kkt_residuals(net, X, y, nnls_route="dense")
    _check_bracket(run, dense32.epsilon_min, tol=2e-6)
    np.testing.assert_allclose(run.rep.epsilon, _residual(net, X, y, run.rep), rtol=1e-5)


@pytest.mark.parametrize("eta", [1e-1, 1e-2], ids=["far", "near"])
def test_float32_model_that_computes_in_float32(eta: float) -> None:
    """A pre-hook casts the input to float32, so the module cannot run in float64: products,
    rounding allowances and ε live in float32. The lower end must still be below the float64
    optimum at the route's own point θ̃ (float32 θ times q_min^{-1/L}); the upper end, a
    float32 residual, may sit below it by no more than the reported floor."""
    net, X, y = _near_kkt(eta)
    net, X = net.float(), X.float()
    net[0].register_forward_pre_hook(lambda m, args: (args[0].to(torch.float32),))
    run = _matrix_free(net, X, y, steps=300)
    rep = run.rep
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    point = theta * rep.q_min ** (-1.0 / rep.degree)  # float32, as the route forms it
    exact = _explicit_at(net, point, X, y)
    assert rep.epsilon_min_lower <= exact * (1 + TOL), (rep.epsilon_min_lower, exact)
    assert exact <= rep.epsilon_min + rep.epsilon_floor, (exact, rep.epsilon_min)
    assert rep.epsilon_floor < 1e-3 * exact


@pytest.mark.parametrize("scale", [1e-4, 1e4], ids=["1e-4", "1e4"])
def test_whole_model_at_odd_scales_gives_the_same_bracket(scale: float) -> None:
    """θ̃ = θ/q_min^{1/L} does not depend on the scale of θ: outputs at 1e-12 or 1e12 give the
    same NNLS, so the same bracket as the unscaled net."""
    net = _shared_relu_net(4, 6, 3, seed=10)
    X = torch.randn(6, 4, dtype=F64, generator=_gen(11))
    y = _labels(net, X)
    base = _matrix_free(net, X, y, steps=3000).rep
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(scale)
    run, _ = _check_all(net, X, y, steps=3000)
    assert not run.warned
    np.testing.assert_allclose(run.rep.epsilon_min, base.epsilon_min, rtol=1e-9)
    np.testing.assert_allclose(run.rep.epsilon_min_lower, base.epsilon_min_lower, rtol=1e-6)


@pytest.mark.parametrize("C", [1, 3], ids=["binary", "multiclass"])
def test_examples_at_odd_scales(C: int) -> None:
    """Inputs from 1e-3 to 1e3 in one batch: constraint gradients and margins 1e6 apart."""
    net = _shared_relu_net(4, 6, C, seed=12)
    X = torch.randn(8, 4, dtype=F64, generator=_gen(13))
    X = X * torch.logspace(-3, 3, 8, dtype=F64)[:, None]
    run, _ = _check_all(net, X, _labels(net, X), steps=3000)
    assert not run.warned


def test_opposite_layer_scales() -> None:
    """Layer 1 × 30, layer 3 × 1/30: the same function, a differently scaled θ."""
    net = _shared_relu_net(4, 6, 3, seed=12)
    with torch.no_grad():
        net[0].weight.mul_(30.0)
        net[4].weight.div_(30.0)
    X = torch.randn(6, 4, dtype=F64, generator=_gen(13))
    _check_all(net, X, _labels(net, X), steps=400)


def test_duplicated_examples_tie_constraints() -> None:
    """Each example three times: tied constraints, a singular Gram, non-unique μ."""
    net = _shared_relu_net(3, 6, 3, seed=14)
    X0 = torch.randn(4, 3, dtype=F64, generator=_gen(15))
    X = torch.cat([X0, X0, X0])
    y = _labels(net, X)
    run, dense = _check_all(net, X, y, steps=3000)
    assert run.rep.n_constraints == 24
    assert not run.warned
    # the tied copies share their multiplier: only the per-pair totals are determined
    total = run.rep.multipliers.reshape(3, 4, 3).sum(0)
    np.testing.assert_allclose(total, dense.multipliers.reshape(3, 4, 3).sum(0), atol=1e-4)


def test_binary_duplicates_and_tiny_n() -> None:
    torch.manual_seed(16)
    net = nn.Sequential(nn.Linear(2, 5, bias=False), nn.ReLU(), nn.Linear(5, 1, bias=False))
    net = net.to(F64)
    x = torch.randn(1, 2, dtype=F64, generator=_gen(17))
    for X in (x, torch.cat([x, x]), torch.cat([x, x, x])):
        run, _ = _check_all(net, X, _labels(net, X), steps=500)
        assert not run.warned


def test_frozen_parameter_is_not_a_variable() -> None:
    """The last layer frozen (requires_grad=False): θ is the first two layers, degree 2; with
    weight decay (route (b)) and ``direct=False`` on top."""
    net = _shared_relu_net(4, 6, 3, seed=18)
    net[4].weight.requires_grad_(False)
    frozen = net[4].weight.detach().clone()
    X = torch.randn(7, 4, dtype=F64, generator=_gen(19))
    run, dense = _check_all(net, X, _labels(net, X), steps=3000, weight_decay=1e-2, direct=False)
    assert run.rep.degree == 2
    assert not run.warned
    assert torch.equal(net[4].weight, frozen) and not net[4].weight.requires_grad
    np.testing.assert_allclose(run.rep.wd_epsilon, dense.wd_epsilon, rtol=1e-6)


def _embedding_net(vocab: int, dim: int, width: int, C: int, n: int, seed: int) -> tuple:
    """Token pairs through an nn.Embedding (integer X), flattened into a bias-free ReLU MLP
    (degree 3), and ``n`` random pairs."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Embedding(vocab, dim), nn.Flatten(), nn.Linear(2 * dim, width, bias=False), nn.ReLU(),
        nn.Linear(width, C, bias=False),
    ).to(F64)  # fmt: skip
    return net, torch.randint(0, vocab, (n, 2), generator=_gen(seed + 1))


def test_embedding_model_with_integer_inputs_and_tensor_labels() -> None:
    """An nn.Embedding model on integer inputs; labels as a torch tensor."""
    net, X = _embedding_net(5, 3, 8, 4, 9, seed=20)
    y = torch.as_tensor(_labels(net, X))
    run, _ = _check_all(net, X, y, steps=3000)
    assert run.rep.degree == 3 and not run.warned


def test_multiclass_tiny_n_many_classes() -> None:
    net = _shared_relu_net(3, 5, 6, seed=22)
    X = torch.randn(2, 3, dtype=F64, generator=_gen(23))
    run, _ = _check_all(net, X, _labels(net, X), steps=2000)
    assert run.rep.n_constraints == 10 and not run.warned


# --------------------------------------------------------------------------- near KKT
@pytest.mark.parametrize("eta", [1e-2, 1e-5])
def test_linear_model_near_its_kkt_point_closed_form(eta: float) -> None:
    """f(x) = ⟨w, x⟩ with x₁ = e₁, x₂ = e₂ (labels +1) and w = (1, 1, η): θ̃ = w and
    ε_min = |η| exactly (the third coordinate is out of every gradient's reach)."""
    net = nn.Linear(3, 1, bias=False).to(F64)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 1.0, eta]], dtype=F64))
    X = torch.eye(3, dtype=F64)[:2]
    run = _matrix_free(net, X, np.ones(2), steps=200)
    _check_bracket(run, eta)
    np.testing.assert_allclose(run.rep.epsilon_min, eta, rtol=1e-9)
    np.testing.assert_allclose(run.rep.multipliers, [1.0, 1.0], rtol=1e-9)


@pytest.mark.parametrize("eta", [1e-2, 1e-3, 1e-4])
def test_relu_net_near_its_kkt_point(eta: float) -> None:
    """ε_rel from 5e-3 to 5e-5. The reference is an explicit NNLS on the Jacobian (a direct
    residual); the dense route's ε_min (from the Gram objective ‖θ̃‖² + 2f*) carries an
    error of about u/ε_rel² and is held to that."""
    net, X, y = _near_kkt(eta)
    exact = explicit_eps_min(net, X, y)
    run = _matrix_free(net, X, y, steps=3000)
    _check_bracket(run, exact)
    np.testing.assert_allclose(run.rep.epsilon, _residual(net, X, y, run.rep), rtol=1e-9)
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    rel = dense.epsilon_rel
    _check_bracket(run, dense.epsilon_min, tol=max(TOL, 100 * U64 / rel**2))


def test_exact_kkt_point() -> None:
    """At an exact KKT point (ε_min = 0 up to rounding) the route finds ε at machine level;
    nothing positive can be certified."""
    net, X, y = _near_kkt(0.0)
    run = _matrix_free(net, X, y, steps=300)
    rep = run.rep
    assert rep.epsilon_min <= 1e-13 * rep.rescaled_theta_norm
    assert 0.0 <= rep.epsilon_min_lower <= max(rep.epsilon_min, explicit_eps_min(net, X, y))


# --------------------------------------------------------------------------- tiny budgets
def _budget_cases() -> list[tuple[str, Any]]:
    def mc() -> tuple:
        net = _shared_relu_net(4, 8, 3, seed=24)
        X = torch.randn(7, 4, dtype=F64, generator=_gen(25))
        return net, X, _labels(net, X)

    def binary() -> tuple:
        torch.manual_seed(26)
        net = nn.Sequential(nn.Linear(3, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False))
        net = net.to(F64)
        X = torch.randn(8, 3, dtype=F64, generator=_gen(27))
        return net, X, _labels(net, X)

    def embedding() -> tuple:
        net, X = _embedding_net(4, 2, 6, 3, 6, seed=28)
        return net, X, _labels(net, X)

    def near() -> tuple:
        return _near_kkt(1e-3)

    return [("mc", mc), ("binary", binary), ("embedding", embedding), ("near_kkt", near)]


CASES = _budget_cases()


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 26])
@pytest.mark.parametrize("make", [m for _, m in CASES], ids=[i for i, _ in CASES])
def test_tiny_step_budgets_never_crash_and_bracket_the_optimum(make: Any, steps: int) -> None:
    net, X, y = make()
    run, _ = _check_all(net, X, y, steps=steps)
    assert run.warned  # nothing this short closes the bracket on these problems


@pytest.mark.parametrize("steps", [1, 2, 3, 7, 30])
def test_tiny_step_budgets_are_honoured(steps: int) -> None:
    """``matrix_free_steps`` is the most products the solve may spend (reported as
    ``iterations``; the docstring: "after ``matrix_free_steps`` products")."""
    net = _shared_relu_net(4, 8, 3, seed=24)
    X = torch.randn(7, 4, dtype=F64, generator=_gen(25))
    run = _matrix_free(net, X, _labels(net, X), steps=steps)
    assert run.rep.iterations <= steps, (run.rep.iterations, steps)


# --------------------------------------------------------------------------- interrupts
def test_keyboard_interrupt_from_a_hook_mid_solve_propagates_and_leaves_the_model() -> None:
    """Ctrl-C inside a forward-mode product of the solve (dual level open, grad mode off, past
    the power iteration): it propagates, and the model is as it was."""
    net = _shared_relu_net(4, 8, 3, seed=30)
    X = torch.randn(7, 4, dtype=F64, generator=_gen(31))
    y = _labels(net, X)
    calls = {"n": 0}

    def hook(mod: nn.Module, args: Any, out: torch.Tensor) -> None:
        if _in_matrix_free() and fwAD.unpack_dual(out).tangent is not None:
            calls["n"] += 1
            if calls["n"] == 30:
                raise KeyboardInterrupt

    handle = net[2].register_forward_hook(hook)
    params = list(net.parameters())
    before = [p.detach().clone() for p in params]
    net.train()
    with pytest.raises(KeyboardInterrupt):
        ib.kkt_residuals(net, X, y, nnls_route="matrix_free", matrix_free_steps=1000)
    assert calls["n"] == 30  # raised inside the solve, after it had made progress
    assert list(net.parameters()) == params  # same Parameter objects, in place
    for p, q in zip(net.parameters(), before):
        assert isinstance(p, nn.Parameter) and p.requires_grad and p.grad is None
        assert torch.equal(p.detach(), q)
    assert net.training and torch.is_grad_enabled()
    assert net[1] is net[3]
    # nothing left behind (dual levels, hooks): the same run completes and brackets the optimum
    handle.remove()
    _check_all(net, X, y, steps=3000)


# --------------------------------------------------------------------------- the fallback
def test_auto_fallback_brackets_the_dense_optimum_and_warns_at_the_caller() -> None:
    """Far from KKT, 1080 pairs and a support (~190) over what 1 MiB holds: "auto" falls back
    to the matrix-free route, warm-started from the working set; "exact" never does."""
    net = ib.HomogeneousMLP(8, [128], 10, first_layer_bias=True, seed=0, dtype=F64)
    seen: list[int] = []
    net.register_forward_hook(lambda m, a, out: seen.append(out.shape[0]))  # reads shapes only
    X = torch.randn(120, 8, dtype=F64, generator=_gen(1))
    y = _labels(net, X)
    budget = 2**20
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    with pytest.raises(ib.InvalidArgumentError, match="nnls_route='matrix_free'"):
        ib.kkt_residuals(net, X, y, nnls_route="exact", memory_budget=budget)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ib.InaccurateSolutionWarning)
        rep = ib.kkt_residuals(net, X, y, memory_budget=budget, matrix_free_steps=300)
    run = Run(rep, bool(caught), list(caught))
    assert rep.nnls_route == "matrix_free" and rep.constraints_touched > 0
    assert run.warned  # 300 products do not close this bracket
    _check_bracket(run, dense.epsilon_min)
    np.testing.assert_allclose(rep.epsilon, _residual(net, X, y, rep), rtol=1e-9)
    assert rep.iterations <= 300
