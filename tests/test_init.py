"""Zero-output initializations and the initialization scale."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import implicitbias as ib

DT = torch.float64


def _x(n: int = 12, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=DT)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ib.HomogeneousMLP(5, [16], seed=0, dtype=DT),
        lambda: ib.HomogeneousMLP(5, [8, 8, 8], d_out=3, first_layer_bias=True, seed=1, dtype=DT),
        lambda: nn.Sequential(
            nn.Linear(5, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False)
        ).to(DT),
    ],
    ids=["mlp2", "mlp4-multi-bias", "user"],
)
def test_symmetrize_is_exactly_zero_with_nonzero_gradients(make) -> None:
    torch.manual_seed(0)
    model = make()
    X = _x()
    degree = ib.homogeneity_degree(model, X)
    sym = ib.symmetrize(model)
    assert float(sym(X).detach().abs().max()) == 0.0
    assert ib.check_zero_output(sym, X) == 0.0
    h = ib.Homogeneous(sym, degree=degree)
    J = h.jacobian(X)
    assert float(J.abs().max()) > 0.1
    assert ib.homogeneity_degree(sym, X) == degree  # measured through the gradient


def test_mirror_init_zero_output_same_degree() -> None:
    net = ib.HomogeneousMLP(5, [7, 9], seed=0, dtype=DT)
    X = _x()
    mir = ib.mirror_init(net)
    assert mir.widths == (7, 18)
    assert float(mir(X).detach().abs().max()) <= 1e-13
    ib.check_zero_output(mir, X)
    assert ib.homogeneity_degree(mir, X) == 3
    # the original is untouched
    assert net.widths == (7, 9) and float(net(X).detach().abs().max()) > 0
    seq = nn.Sequential(nn.Linear(5, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False)).to(DT)
    assert float(ib.mirror_init(seq)(X).detach().abs().max()) <= 1e-13


def test_zero_last_layer() -> None:
    net = ib.zero_last_layer(ib.HomogeneousMLP(5, [7], seed=0, dtype=DT))
    X = _x()
    assert float(net(X).detach().abs().max()) == 0.0
    with pytest.raises(TypeError, match="'model' argument of zero_last_layer"):
        ib.zero_last_layer(ib.DiagonalNet(3))


@pytest.mark.parametrize("alpha", [1e-3, 1.0, 128.0, 1e4])
def test_scale_init_norm_mode(alpha: float) -> None:
    net = ib.HomogeneousMLP(5, [16, 16], seed=0, dtype=DT)
    ib.scale_init(net, alpha, mode="norm")
    norm = float(ib.flat_parameters(net).norm())
    assert abs(norm - alpha) <= 1e-12 * alpha


def test_scale_init_diagonal_paper_convention() -> None:
    d = 1000
    a = ib.DiagonalNet(d, alpha=128.0, alpha_mode="norm", dtype=DT)
    b = ib.scale_init(ib.DiagonalNet(d, dtype=DT), 128.0, mode="norm")
    torch.testing.assert_close(ib.flat_parameters(a), ib.flat_parameters(b), rtol=1e-14, atol=0)
    torch.testing.assert_close(a.u.detach(), torch.full((d,), 128.0 / math.sqrt(2 * d), dtype=DT))


def test_scale_init_scales_outputs_as_alpha_power_L() -> None:
    X = _x()
    net = ib.HomogeneousMLP(5, [6, 6], seed=0, dtype=DT)
    f = net(X).detach()
    ib.scale_init(net, 3.0)
    torch.testing.assert_close(net(X).detach(), 27.0 * f, rtol=1e-12, atol=1e-12)


def test_check_zero_output_raises_and_warns() -> None:
    net = ib.HomogeneousMLP(5, [6], seed=0, dtype=DT)
    X = _x()
    with pytest.raises(ib.NonZeroInitError, match="symmetrize"):
        ib.check_zero_output(net, X)
    with pytest.warns(UserWarning, match="not zero"):
        ib.check_zero_output(net, X, action="warn")


def test_scale_init_bad_arguments() -> None:
    with pytest.raises(ValueError, match="'alpha' argument of scale_init"):
        ib.scale_init(ib.DiagonalNet(3), 0.0)
    with pytest.raises(ValueError, match="'mode' argument of scale_init"):
        ib.scale_init(ib.DiagonalNet(3), 1.0, mode="l1")
    with pytest.raises(TypeError, match="'model' argument of scale_init"):
        ib.scale_init("net", 1.0)  # type: ignore[arg-type]
    zero = ib.zero_last_layer(ib.HomogeneousMLP(2, [], seed=0))
    with pytest.raises(ValueError, match="nonzero norm"):
        ib.scale_init(zero, 1.0, mode="norm")


def test_package_import_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, implicitbias; print('cvxpy' in sys.modules, 'matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
