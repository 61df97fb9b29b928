"""Homogeneous models: the identities f(cθ) = c^L f(θ) and ⟨∇f, θ⟩ = L f, degree estimates."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import implicitbias as ib

DT = torch.float64


def _user_mlp(depth: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Linear(4, 7, bias=False)]
    for _ in range(depth - 2):
        layers += [nn.ReLU(), nn.Linear(7, 7, bias=False)]
    layers += [nn.ReLU(), nn.Linear(7, 1, bias=False)]
    return nn.Sequential(*layers).to(DT)


def _user_conv() -> nn.Module:
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(1, 3, 3, bias=False),
        nn.ReLU(),
        nn.Conv2d(3, 2, 3, bias=False),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 2 * 2, 1, bias=False),
    ).to(DT)


def _perturb(model: nn.Module, seed: int = 3) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


CASES = {
    "diagonal-d2": (
        lambda: _perturb(ib.DiagonalNet(6, dtype=DT)),
        lambda g: torch.randn(9, 6, generator=g, dtype=DT),
        2,
    ),
    "diagonal-d3": (
        lambda: _perturb(ib.DiagonalNet(6, depth=3, dtype=DT)),
        lambda g: torch.randn(9, 6, generator=g, dtype=DT),
        3,
    ),
    "mlp-2": (
        lambda: ib.HomogeneousMLP(5, [8], seed=0, dtype=DT),
        lambda g: torch.randn(9, 5, generator=g, dtype=DT),
        2,
    ),
    "mlp-3-bias": (
        lambda: _perturb(ib.HomogeneousMLP(5, [8, 8], first_layer_bias=True, seed=0, dtype=DT)),
        lambda g: torch.randn(9, 5, generator=g, dtype=DT),
        3,
    ),
    "mlp-4-multi": (
        lambda: ib.HomogeneousMLP(5, [8, 8, 8], d_out=3, seed=0, dtype=DT),
        lambda g: torch.randn(9, 5, generator=g, dtype=DT),
        4,
    ),
    "factorization": (
        lambda: _perturb(ib.MatrixFactorization(5, dtype=DT)),
        lambda g: torch.randint(0, 5, (9, 2), generator=g),
        2,
    ),
    "quadratic": (
        lambda: _perturb(ib.QuadraticNet(5, 4, seed=0, dtype=DT)),
        lambda g: torch.randn(9, 5, generator=g, dtype=DT),
        2,
    ),
    "quadratic-pairs": (
        lambda: _perturb(ib.QuadraticNet(5, 4, seed=0, dtype=DT)),
        lambda g: torch.randn(9, 2, 5, generator=g, dtype=DT),
        2,
    ),
    "user-sequential": (
        lambda: _user_mlp(3),
        lambda g: torch.randn(9, 4, generator=g, dtype=DT),
        3,
    ),
    "user-conv": (_user_conv, lambda g: torch.randn(9, 1, 6, 6, generator=g, dtype=DT), 3),
    "symmetrized-mlp": (
        lambda: _perturb(ib.symmetrize(ib.HomogeneousMLP(5, [8], seed=0, dtype=DT))),
        lambda g: torch.randn(9, 5, generator=g, dtype=DT),
        2,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_scaling_identity(name: str, gen: torch.Generator) -> None:
    make, inputs, L = CASES[name]
    h = ib.Homogeneous(make(), degree=L)
    X = inputs(gen)
    theta = h.theta()
    f = h.function(theta, X)
    for c in (0.3, 2.0, 7.5):
        torch.testing.assert_close(
            h.function(c * theta, X), c**L * f, rtol=1e-12, atol=1e-12 * float(f.abs().max())
        )


@pytest.mark.parametrize("name", sorted(CASES))
def test_euler_identity(name: str, gen: torch.Generator) -> None:
    make, inputs, L = CASES[name]
    h = ib.Homogeneous(make(), degree=L)
    X = inputs(gen)
    J = h.jacobian(X)
    theta = h.theta()
    lhs = J @ theta  # (n,) or (n, C)
    torch.testing.assert_close(
        lhs, L * h(X).detach(), rtol=1e-11, atol=1e-11 * float(lhs.abs().max())
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_degree_estimate_matches(name: str, gen: torch.Generator) -> None:
    make, inputs, L = CASES[name]
    assert ib.homogeneity_degree(make(), inputs(gen)) == L


@pytest.mark.parametrize("depth", [1, 2, 3, 4])
def test_degree_estimate_depths(depth: int, gen: torch.Generator) -> None:
    X = torch.randn(10, 4, generator=gen, dtype=DT)
    mlp = ib.HomogeneousMLP(4, [6] * (depth - 1), seed=depth, dtype=DT)
    assert ib.homogeneity_degree(mlp, X) == depth
    diag = _perturb(ib.DiagonalNet(4, depth=depth, dtype=DT))
    assert ib.homogeneity_degree(diag, X) == depth
    assert ib.Homogeneous(mlp, example_input=X).degree == depth


def test_gradient_is_degree_minus_one_homogeneous(gen: torch.Generator) -> None:
    h = ib.Homogeneous(ib.HomogeneousMLP(5, [8, 8], seed=0, dtype=DT))
    X = torch.randn(6, 5, generator=gen, dtype=DT)
    theta = h.theta()
    torch.testing.assert_close(
        h.jacobian(X, theta=2.5 * theta), 2.5**2 * h.jacobian(X), rtol=1e-12, atol=1e-12
    )


@pytest.mark.parametrize(
    "module, culprit",
    [
        (
            lambda: nn.Sequential(
                nn.Linear(4, 8, bias=False),
                nn.ReLU(),
                nn.Linear(8, 8),
                nn.ReLU(),
                nn.Linear(8, 1, bias=False),
            ),
            "bias after the first layer",
        ),
        (
            lambda: nn.Sequential(
                nn.Linear(4, 8, bias=False), nn.Tanh(), nn.Linear(8, 1, bias=False)
            ),
            "Tanh",
        ),
        (
            lambda: nn.Sequential(
                nn.Linear(4, 8, bias=False),
                nn.BatchNorm1d(8),
                nn.ReLU(),
                nn.Linear(8, 1, bias=False),
            ),
            "BatchNorm1d",
        ),
    ],
    ids=["hidden-bias", "tanh", "batchnorm"],
)
def test_not_homogeneous_is_detected(module, culprit: str, gen: torch.Generator) -> None:
    torch.manual_seed(0)
    model = module().to(DT)
    with torch.no_grad():  # give the batch norm a nontrivial affine part
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-1.0, 1.0)
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.uniform_(-1.0, 1.0)
    X = torch.randn(16, 4, generator=gen, dtype=DT)
    with pytest.raises(ib.NotHomogeneousError, match=culprit):
        ib.homogeneity_degree(model, X)
    with pytest.raises(ib.NotHomogeneousError):
        ib.Homogeneous(model, example_input=X)


def test_declared_degree_is_verified(gen: torch.Generator) -> None:
    X = torch.randn(5, 4, generator=gen, dtype=DT)
    with pytest.raises(ib.NotHomogeneousError, match="measured degree is 3"):
        ib.Homogeneous(ib.HomogeneousMLP(4, [5, 5], seed=0, dtype=DT), degree=2, example_input=X)
    with pytest.raises(ib.NotHomogeneousError, match="unknown"):
        ib.Homogeneous(nn.Linear(4, 1, bias=False))


def test_theta_roundtrip_and_diagonal_w() -> None:
    net = ib.DiagonalNet(3, depth=3, dtype=DT)
    h = ib.Homogeneous(net)
    theta = torch.arange(6, dtype=DT) / 4
    h.set_theta(theta)
    torch.testing.assert_close(h.theta(), theta)
    torch.testing.assert_close(net.w, net.u**3 - net.v**3)
    X = torch.eye(3, dtype=DT)
    torch.testing.assert_close(net(X), net.w)
    assert h.num_parameters == 6 and h.parameter_names == ["u", "v"]


def test_matrix_factorization_entries() -> None:
    mf = _perturb(ib.MatrixFactorization(4, dtype=DT))
    idx = torch.tensor([[i, j] for i in range(4) for j in range(4)])
    torch.testing.assert_close(mf(idx).reshape(4, 4), mf.W.detach() + 0 * mf.W.detach())
    torch.testing.assert_close(mf.W.detach(), mf.W.detach().T)


def test_quadratic_net_is_matrix_completion_view() -> None:
    q = _perturb(ib.QuadraticNet(4, 4, init="identity", dtype=DT))
    E = torch.eye(4, dtype=DT)
    pairs = torch.stack([torch.stack([E[i], E[j]]) for i in range(4) for j in range(4)])
    torch.testing.assert_close(q(pairs).detach().reshape(4, 4), q.W.detach())
    x = torch.randn(3, 4, dtype=DT)
    torch.testing.assert_close(q(x).detach(), torch.einsum("ni,ij,nj->n", x, q.W.detach(), x))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_models_respect_dtype(dtype: torch.dtype) -> None:
    for model in (
        ib.DiagonalNet(3, dtype=dtype),
        ib.HomogeneousMLP(3, [4], dtype=dtype),
        ib.MatrixFactorization(3, dtype=dtype),
    ):
        assert all(p.dtype == dtype for p in model.parameters())


def test_bad_constructor_arguments() -> None:
    with pytest.raises(ValueError, match="'d' argument of DiagonalNet"):
        ib.DiagonalNet(0)
    with pytest.raises(TypeError, match="'widths' argument of HomogeneousMLP"):
        ib.HomogeneousMLP(3, 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'alpha' argument of MatrixFactorization"):
        ib.MatrixFactorization(3, alpha=-1.0)
    with pytest.raises(ValueError, match="'alpha_mode'"):
        ib.DiagonalNet(3, alpha_mode="l2")
    with pytest.raises(ValueError, match="'idx' argument of MatrixFactorization"):
        ib.MatrixFactorization(3)(torch.zeros(4, 2))


def test_homogeneous_rejects_bad_inputs(gen: torch.Generator) -> None:
    h = ib.Homogeneous(ib.HomogeneousMLP(3, [4], seed=0, dtype=DT))
    with pytest.raises(TypeError, match="'X' argument of Homogeneous.jacobian"):
        h.jacobian([[1.0, 2.0, 3.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        h.jacobian(torch.tensor([[float("nan"), 0.0, 0.0]], dtype=DT))
    with pytest.raises(ValueError, match="'theta'"):
        h.set_theta(torch.zeros(3, dtype=DT))
    with pytest.raises(ValueError, match="non-empty"):
        h.jacobian(torch.zeros(0, 3, dtype=DT))


def test_jacobian_chunking_and_multi_output(gen: torch.Generator) -> None:
    h = ib.Homogeneous(ib.HomogeneousMLP(3, [6], d_out=4, seed=0, dtype=DT))
    X = torch.randn(11, 3, generator=gen, dtype=DT)
    J = h.jacobian(X)
    assert J.shape == (11, 4, h.num_parameters)
    torch.testing.assert_close(h.jacobian(X, chunk_size=3), J)
    # against a plain autograd loop
    theta = h.theta().requires_grad_(True)
    out = h.function(theta, X[2:3])[0, 1]
    (g,) = torch.autograd.grad(out, theta)
    torch.testing.assert_close(J[2, 1], g)


def test_float32_model_takes_float64_inputs(gen: torch.Generator) -> None:
    h = ib.Homogeneous(ib.HomogeneousMLP(3, [4], seed=0))
    X = torch.randn(5, 3, generator=gen, dtype=DT)
    assert h.jacobian(X).dtype == torch.float32
