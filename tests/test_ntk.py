"""Empirical NTK: closed forms by hand, routes that agree, identities of the theory (THEORY §2, §4, §5)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
from conftest import tol

DT = torch.float64


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = DT) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = DT) -> None:
    """Relative agreement in the max norm, with the dtype-keyed tolerance."""
    scale = float(b.abs().max())
    torch.testing.assert_close(a, b, rtol=0, atol=tol(dtype) * scale)


def _perturb_bias(net: nn.Module, seed: int = 3) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.Linear) and m.bias is not None:
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=m.bias.dtype))


# ------------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_diagonal_net_at_uniform_init_by_hand(depth: int, alpha: float) -> None:
    # ∇_u f = D u^{D-1} x, ∇_v f = -D v^{D-1} x, u = v = α·1: K = 2 D² α^{2D-2} <x, x'>.
    net = ib.DiagonalNet(5, depth=depth, alpha=alpha, dtype=DT)
    X, Y = _randn(7, 5, seed=1), _randn(4, 5, seed=2)
    expected = 2 * depth**2 * alpha ** (2 * depth - 2) * (X @ Y.T)
    for method in ("auto", "closed_form", "jacobian"):
        _close(ib.empirical_ntk(net, X, Y, method=method), expected)
    if depth == 2:
        _close(ib.empirical_ntk(net, X), 8 * alpha**2 * (X @ X.T))


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_diagonal_net_closed_form_matches_jacobian_at_random_parameters(depth: int) -> None:
    net = ib.DiagonalNet(6, depth=depth, dtype=DT)
    with torch.no_grad():
        net.u.copy_(_randn(6, seed=3))
        net.v.copy_(_randn(6, seed=4))
    X, Y = _randn(8, 6, seed=5), _randn(3, 6, seed=6)
    for X2 in (None, Y):
        _close(
            ib.empirical_ntk(net, X, X2, method="closed_form"),
            ib.empirical_ntk(net, X, X2, method="jacobian"),
        )
    sym = ib.symmetrize(net)
    with torch.no_grad():
        sym.negative.u.mul_(0.7)
    _close(ib.empirical_ntk(sym, X, Y), ib.empirical_ntk(sym, X, Y, method="jacobian"))


def _all_pairs(d: int) -> torch.Tensor:
    return torch.tensor([(i, j) for i in range(d) for j in range(d)])


@pytest.mark.parametrize("alpha", [1.0, 10.0])
def test_matrix_factorization_at_scaled_identity(alpha: float) -> None:
    d = 4
    mf = ib.MatrixFactorization(d, alpha=alpha, dtype=DT)
    pairs = _all_pairs(d)
    K = ib.empirical_ntk(mf, pairs)
    key = [frozenset((int(i), int(j))) for i, j in pairs]
    same = torch.tensor([[a == b for b in key] for a in key])
    off_pair = pairs[:, 0] != pairs[:, 1]
    # distinct unordered pairs are orthogonal; (i, j) and (j, i) share their feature
    torch.testing.assert_close(K[~same], torch.zeros_like(K[~same]), rtol=0, atol=0)
    diag = torch.where(off_pair, 4 * alpha**2, 8 * alpha**2).to(DT)
    torch.testing.assert_close(torch.diagonal(K), diag, rtol=1e-14, atol=0)
    expected = same.to(DT) * diag[:, None]
    torch.testing.assert_close(K, expected, rtol=1e-14, atol=0)
    _close(ib.empirical_ntk(mf, pairs, method="jacobian"), K)


def test_matrix_factorization_closed_form_matches_jacobian_at_random_parameters() -> None:
    mf = ib.MatrixFactorization(5, dtype=DT)
    with torch.no_grad():
        mf.U.copy_(_randn(5, 5, seed=7))
        mf.V.copy_(_randn(5, 5, seed=8))
    P = torch.tensor([[0, 1], [2, 2], [4, 0], [1, 1], [1, 0], [3, 4]])
    J = torch.tensor([[0, 0], [1, 2], [4, 3]])
    for X2 in (None, J):
        _close(
            ib.empirical_ntk(mf, P, X2, method="closed_form"),
            ib.empirical_ntk(mf, P, X2, method="jacobian"),
        )


@pytest.mark.parametrize("pairs", [False, True])
def test_quadratic_net_closed_form_matches_jacobian(pairs: bool) -> None:
    net = ib.QuadraticNet(4, 3, seed=0, dtype=DT)
    with torch.no_grad():
        net.V.copy_(_randn(4, 3, seed=9))
    X = _randn(6, 2, 4, seed=10) if pairs else _randn(6, 4, seed=10)
    _close(
        ib.empirical_ntk(net, X, method="closed_form"), ib.empirical_ntk(net, X, method="jacobian")
    )


# -------------------------------------------------------------------------- structured route
@pytest.mark.parametrize("depth", [2, 3, 4])
@pytest.mark.parametrize("bias", [False, True])
def test_structured_matches_jacobian_on_mlp(depth: int, bias: bool) -> None:
    net = ib.HomogeneousMLP(5, [9] * (depth - 1), first_layer_bias=bias, seed=depth, dtype=DT)
    _perturb_bias(net)
    X, Y = _randn(11, 5, seed=1), _randn(6, 5, seed=2)
    for X2 in (None, Y):
        K = ib.empirical_ntk(net, X, X2, method="structured")
        _close(K, ib.empirical_ntk(net, X, X2, method="jacobian"))
        _close(ib.empirical_ntk(net, X, X2), K)  # auto picks the structured route


@pytest.mark.parametrize("depth", [2, 3])
def test_structured_multi_output_full_and_trace(depth: int) -> None:
    C = 3
    net = ib.HomogeneousMLP(4, [8] * (depth - 1), C, first_layer_bias=True, seed=0, dtype=DT)
    _perturb_bias(net)
    X, Y = _randn(7, 4, seed=1), _randn(5, 4, seed=2)
    for X2, n2 in ((None, 7), (Y, 5)):
        full = ib.empirical_ntk(net, X, X2, method="structured")
        assert full.shape == (7 * C, n2 * C)
        _close(full, ib.empirical_ntk(net, X, X2, method="jacobian"))
        traced = ib.empirical_ntk(net, X, X2, method="structured", trace=True)
        _close(traced, ib.empirical_ntk(net, X, X2, method="jacobian", trace=True))
        # layout: row i*C + a; the trace kernel sums the diagonal output blocks
        blocks = full.reshape(7, C, n2, C)
        _close(traced, torch.einsum("iaja->ij", blocks))
    # entry by entry against per-output gradients
    h = ib.Homogeneous(net)
    J = h.jacobian(X)  # (n, C, p)
    torch.testing.assert_close(
        ib.empirical_ntk(net, X)[2 * C + 1, 4 * C + 2],
        J[2, 1] @ J[4, 2],
        rtol=1e-12,
        atol=0,
    )


def _user_models() -> list[nn.Module]:
    torch.manual_seed(0)
    return [
        nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 1, bias=False)),
        nn.Sequential(
            nn.Flatten(),
            nn.Linear(6, 7, bias=True),
            nn.LeakyReLU(0.1),
            nn.Sequential(nn.Linear(7, 5), nn.Identity(), nn.ReLU()),
            nn.Linear(5, 2),
        ),
        nn.Sequential(nn.Linear(6, 4, bias=False), nn.Linear(4, 3, bias=False), nn.ReLU()),
    ]


@pytest.mark.parametrize("index", [0, 1, 2])
def test_structured_matches_jacobian_on_user_sequential(index: int) -> None:
    model = _user_models()[index].to(DT)
    _perturb_bias(model)
    X = _randn(9, 2, 3, seed=4) if index == 1 else _randn(9, 6, seed=4)
    for trace in (False, True):
        _close(
            ib.empirical_ntk(model, X, method="structured", trace=trace),
            ib.empirical_ntk(model, X, method="jacobian", trace=trace),
        )


@pytest.mark.parametrize("bias", [False, True])
def test_structured_matches_jacobian_on_conv_nets(bias: bool) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, stride=2, bias=bias),
        nn.ReLU(),
        nn.Conv2d(3, 4, (2, 3), dilation=(1, 2), bias=False),
        nn.LeakyReLU(0.2),
        nn.Flatten(),
        nn.Linear(48, 5, bias=False),
        nn.ReLU(),
        nn.Linear(5, 3, bias=False),
    ).to(DT)
    _perturb_bias(model)
    with torch.no_grad():
        if bias:
            model[0].bias.normal_()
    X, Y = _randn(5, 2, 9, 14, seed=1), _randn(3, 2, 9, 14, seed=2)
    for X2, n2 in ((None, 5), (Y, 3)):
        reference = ib.empirical_ntk(model, X, X2, method="jacobian")
        _close(ib.empirical_ntk(model, X, X2, method="structured", chunk_size=2), reference)
        _close(
            ib.empirical_ntk(model, X, X2, method="structured", trace=True),
            torch.einsum("iaja->ij", reference.reshape(5, 3, n2, 3)),
        )


def test_structured_deep_linear_network() -> None:
    net = ib.HomogeneousMLP(4, [5, 6], 2, activation="linear", seed=0, dtype=DT)
    X = _randn(6, 4, seed=1)
    _close(
        ib.empirical_ntk(net, X, method="structured"), ib.empirical_ntk(net, X, method="jacobian")
    )


def test_structured_skips_frozen_parameters() -> None:
    net = ib.HomogeneousMLP(4, [6, 6], first_layer_bias=True, seed=0, dtype=DT)
    _perturb_bias(net)
    net.layers[1].weight.requires_grad_(False)
    net.layers[0].weight.requires_grad_(False)  # bias stays trainable
    X = _randn(8, 4, seed=1)
    _close(
        ib.empirical_ntk(net, X, method="structured"), ib.empirical_ntk(net, X, method="jacobian")
    )


@pytest.mark.parametrize("C", [1, 2])
def test_symmetrized_and_mirrored_models(C: int) -> None:
    base = ib.HomogeneousMLP(4, [6, 5], C, seed=1, dtype=DT)
    X = _randn(8, 4, seed=2)
    mirrored = ib.mirror_init(base)
    sym = ib.symmetrize(copy.deepcopy(base))
    with torch.no_grad():  # move the copies apart: K = K_pos + K_neg must still hold
        sym.negative.layers[0].weight.mul_(1.3)
    for model in (mirrored, sym):
        for trace in (False, True):
            _close(
                ib.empirical_ntk(model, X, method="structured", trace=trace),
                ib.empirical_ntk(model, X, method="jacobian", trace=trace),
            )
    parts = ib.empirical_ntk(sym.positive, X) + ib.empirical_ntk(sym.negative, X)
    _close(ib.empirical_ntk(sym, X), parts)
    seq = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 1, bias=False))
    mseq = ib.mirror_init(seq.to(DT))
    _close(
        ib.empirical_ntk(mseq, X, method="structured"), ib.empirical_ntk(mseq, X, method="jacobian")
    )


def test_symmetrized_with_shared_parameters_falls_back_to_jacobian() -> None:
    base = ib.HomogeneousMLP(3, [5], seed=0, dtype=DT)
    sym = ib.symmetrize(base)
    sym.negative = base  # the two copies now share θ: f ≡ 0 and K ≡ 0
    X = _randn(4, 3, seed=1)
    torch.testing.assert_close(ib.empirical_ntk(sym, X), torch.zeros(4, 4, dtype=DT))
    with pytest.raises(ValueError, match="share parameters"):
        ib.empirical_ntk(sym, X, method="structured")


# ----------------------------------------------------------------------------------- chunking
@pytest.mark.parametrize(
    ("method", "chunk_size"),
    [("structured", 1), ("structured", 3), ("structured", 4), ("structured", 100)]
    + [("jacobian", 4), ("jacobian", 100)],
)
def test_chunking_does_not_change_the_kernel(method: str, chunk_size: int) -> None:
    net = ib.HomogeneousMLP(4, [6, 6], 2, seed=0, dtype=DT)
    X, Y = _randn(10, 4, seed=1), _randn(7, 4, seed=2)
    for X2 in (None, Y):
        for trace in (False, True):
            _close(
                ib.empirical_ntk(net, X, X2, method=method, trace=trace, chunk_size=chunk_size),
                ib.empirical_ntk(net, X, X2, method=method, trace=trace),
            )


def test_symmetric_kernel_is_symmetric() -> None:
    net = ib.HomogeneousMLP(4, [6], 3, seed=0, dtype=DT)
    K = ib.empirical_ntk(net, _randn(9, 4, seed=1), chunk_size=2)
    torch.testing.assert_close(K, K.T, rtol=0, atol=0)


# ---------------------------------------------------------------------------- theory identity
@pytest.mark.parametrize("depth", [2, 3, 4])
def test_ntk_scales_as_alpha_to_the_2l_minus_2(depth: int) -> None:
    alpha = 3.0
    net = ib.HomogeneousMLP(4, [7] * (depth - 1), first_layer_bias=True, seed=0, dtype=DT)
    _perturb_bias(net)
    X = _randn(6, 4, seed=1)
    K = ib.empirical_ntk(net, X)
    K_alpha = ib.empirical_ntk(ib.scale_init(copy.deepcopy(net), alpha), X)
    _close(K_alpha, alpha ** (2 * (depth - 1)) * K)
    diag = ib.DiagonalNet(4, depth=depth, dtype=DT)
    with torch.no_grad():
        diag.u.copy_(_randn(4, seed=2))
    K = ib.empirical_ntk(diag, X)
    _close(ib.empirical_ntk(ib.scale_init(diag, alpha), X), alpha ** (2 * (depth - 1)) * K)


# ------------------------------------------------------------------------------------- dtypes
def test_float32() -> None:
    net = ib.HomogeneousMLP(5, [16, 16], 2, first_layer_bias=True, seed=0, dtype=torch.float32)
    X = _randn(12, 5, seed=1, dtype=torch.float32)
    K = ib.empirical_ntk(net, X)
    assert K.dtype == torch.float32
    reference = ib.empirical_ntk(net.to(DT), X.to(DT), method="jacobian")
    _close(K.to(DT), reference, torch.float32)
    diag = ib.DiagonalNet(5, alpha=2.0, dtype=torch.float32)
    _close(ib.empirical_ntk(diag, X).to(DT), 32.0 * (X.to(DT) @ X.to(DT).T), torch.float32)


def test_float64_inputs_are_cast_to_the_model_dtype() -> None:
    net = ib.HomogeneousMLP(3, [4], seed=0, dtype=torch.float32)
    K = ib.empirical_ntk(net, _randn(5, 3, seed=1))
    assert K.dtype == torch.float32


# ----------------------------------------------------------------------------------- errors
def test_bad_inputs_name_the_argument() -> None:
    net = ib.HomogeneousMLP(3, [4], seed=0, dtype=DT)
    X = _randn(5, 3, seed=1)
    with pytest.raises(ValueError, match=r"'X1' argument of empirical_ntk .*\(n, 3\)"):
        ib.empirical_ntk(net, _randn(5, 4))
    with pytest.raises(ValueError, match=r"'X2' argument of empirical_ntk"):
        ib.empirical_ntk(net, X, _randn(5, 4))
    bad = X.clone()
    bad[2, 1] = float("nan")
    with pytest.raises(ValueError, match=r"'X1' argument .* finite"):
        ib.empirical_ntk(net, bad)
    with pytest.raises(ValueError, match=r"'X2' argument .* device"):
        ib.empirical_ntk(net, X, torch.empty(5, 3, dtype=DT, device="meta"))
    with pytest.raises(ValueError, match=r"'method' argument"):
        ib.empirical_ntk(net, X, method="fast")
    with pytest.raises(ValueError, match=r"no closed form"):
        ib.empirical_ntk(net, X, method="closed_form")
    tanh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1)).to(DT)
    with pytest.raises(ValueError, match=r"Tanh.*structured route supports only"):
        ib.empirical_ntk(tanh, X, method="structured")
    _close(ib.empirical_ntk(tanh, X), ib.empirical_ntk(tanh, X, method="jacobian"))
    mf = ib.MatrixFactorization(3, dtype=DT)
    with pytest.raises(ValueError, match=r"entries in \[-1, 1\]"):
        ib.empirical_ntk(mf, torch.tensor([[0, 1], [-1, 0]]))
    with pytest.raises(TypeError, match="chunk_size"):
        ib.empirical_ntk(net, X, chunk_size=1.5)


# ------------------------------------------------------------------------------ heavy / gpu
@pytest.mark.slow
def test_structured_matches_jacobian_larger() -> None:
    net = ib.HomogeneousMLP(20, [64, 64, 64], 4, first_layer_bias=True, seed=0, dtype=DT)
    _perturb_bias(net)
    X, Y = _randn(300, 20, seed=1), _randn(200, 20, seed=2)
    for trace in (False, True):
        _close(
            ib.empirical_ntk(net, X, Y, method="structured", trace=trace, chunk_size=64),
            ib.empirical_ntk(net, X, Y, method="jacobian", trace=trace, chunk_size=64),
        )
    K = ib.empirical_ntk(net, X, trace=True).numpy()  # a Gram matrix: PSD up to rounding
    np.testing.assert_array_less(-1e-10 * np.abs(K).max(), np.linalg.eigvalsh(K))


@pytest.mark.gpu
# torch's autograd device thread warns once when it first calls cuBLAS (benign, torch-internal)
@pytest.mark.filterwarnings("ignore:Attempting to run cuBLAS:UserWarning")
def test_gpu_routes_agree_and_stay_on_device() -> None:
    dev = torch.device("cuda")
    net = ib.HomogeneousMLP(6, [32, 32], 3, seed=0, dtype=DT, device=dev)
    X = _randn(40, 6, seed=1).to(dev)
    K = ib.empirical_ntk(net, X, method="structured")
    assert K.device.type == "cuda"
    _close(K, ib.empirical_ntk(net, X, method="jacobian"))
    diag = ib.DiagonalNet(6, dtype=DT, device=dev)
    _close(ib.empirical_ntk(diag, X), 8.0 * X @ X.T)
    with pytest.raises(ValueError, match="'X2' argument"):
        ib.empirical_ntk(net, X, X.cpu())


def test_small_memory_budget_blocks_rows_and_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    from implicitbias.kernel_regime import ntk

    net = ib.HomogeneousMLP(4, [6, 6], 2, first_layer_bias=True, seed=0, dtype=DT)
    _perturb_bias(net)
    X, Y = _randn(13, 4, seed=1), _randn(9, 4, seed=2)
    expected = {
        (m, t, y is None): ib.empirical_ntk(net, X, y, method=m, trace=t)
        for m in ("structured", "jacobian")
        for t in (False, True)
        for y in (None, Y)
    }
    monkeypatch.setattr(ntk, "_FEATURE_BYTES", 4 * 8 * 2 * 200)  # a few rows per block
    for (m, t, sym), K in expected.items():
        _close(ib.empirical_ntk(net, X, None if sym else Y, method=m, trace=t), K)


class _DataDependent(nn.Module):
    """A module vmap cannot batch (Python control flow on a tensor value)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(_randn(3, seed=11))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if float(x.sum()) > 1e9:  # never true, but needs the value
            return x @ self.w
        return (x @ self.w) ** 2


def test_jacobian_route_falls_back_for_modules_vmap_cannot_batch() -> None:
    model = _DataDependent()
    X = _randn(5, 3, seed=12)
    s = X @ model.w.detach()
    phi = 2 * s[:, None] * X  # ∇_w (x·w)² = 2 (x·w) x
    _close(ib.empirical_ntk(model, X), phi @ phi.T)
