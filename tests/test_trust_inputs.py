"""Non-finite and odd inputs never flow on (issue 11, item 5).

NaN or infinite parameters and outputs (a NaN weight, a scale that overflows the dtype) are
errors that name the argument; tensors and models on the ``meta`` device are refused; and one
dtype rule holds for every library function that takes a model and inputs: a float ``X`` is cast
to the parameters' dtype, an integer ``X`` goes on only as indices, ``bool``/complex ``X`` and
mixed-dtype or complex models are refused.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch
from torch import nn

import implicitbias as ib

F32, F64 = torch.float32, torch.float64
ARG, TYP = ib.InvalidArgumentError, ib.InvalidArgumentTypeError


def _X(n: int = 8, d: int = 3, dtype: torch.dtype = F64) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0), dtype=dtype)


def _mlp(dtype: torch.dtype = F64, widths: tuple[int, ...] = (6,)) -> ib.HomogeneousMLP:
    return ib.HomogeneousMLP(3, list(widths), seed=0, dtype=dtype)


def _nan_mlp() -> ib.HomogeneousMLP:
    net = _mlp()
    with torch.no_grad():
        net.layers[0].weight[0, 0] = float("nan")
    return net


def _params(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ------------------------------------------------------------------------ scale_init
@pytest.mark.parametrize(
    ("dtype", "alpha"),
    [(F32, 1e39), (F64, 1e308), (F32, 1e-46)],
    ids=["f32-overflow", "f64-overflow", "f32-underflow"],
)
def test_scale_init_refuses_a_scale_the_dtype_cannot_hold(dtype: torch.dtype, alpha: float) -> None:
    net = _mlp(dtype)
    before = _params(net)
    with pytest.raises(ARG, match=rf"The 'alpha' argument of scale_init .*{dtype}"):
        ib.scale_init(net, alpha)
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p.detach(), q)  # refused before touching anything


def test_scale_init_refuses_infinite_alpha() -> None:
    with pytest.raises(ARG, match=r"The 'alpha' argument of scale_init .*finite.*inf"):
        ib.scale_init(_mlp(), float("inf"))


def test_scale_init_refuses_a_model_with_nan_weights() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of scale_init .*finite.*layers.0.weight"):
        ib.scale_init(_nan_mlp(), 2.0)


def test_scale_init_refuses_a_meta_model() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of scale_init .*'meta' device"):
        ib.scale_init(ib.HomogeneousMLP(3, [4], device="meta"), 2.0)


@pytest.mark.parametrize("alpha", [1e-6, 1e6])
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_odd_scales_keep_the_degree_and_scale_the_outputs(alpha: float, dtype: torch.dtype) -> None:
    """Outputs scale as α^L exactly as the float64 reference says, and the degree is unchanged."""
    net = _mlp(dtype, (6, 6))
    X = _X(dtype=dtype)
    f = net(X).detach().double()
    ib.scale_init(net, alpha)
    assert ib.homogeneity_degree(net, X) == 3
    rtol = 1e-12 if dtype == F64 else 1e-5
    torch.testing.assert_close(net(X).detach().double(), alpha**3 * f, rtol=rtol, atol=0.0)


# ------------------------------------------------------------------------ check_zero_output
def test_check_zero_output_refuses_nan_weights() -> None:
    """A NaN output used to compare as 'not greater' than the tolerance and pass as zero."""
    with pytest.raises(ARG, match=r"The 'model' argument of check_zero_output .*finite"):
        ib.check_zero_output(ib.symmetrize(_nan_mlp()), _X())


def test_check_zero_output_refuses_overflowing_outputs() -> None:
    net = ib.scale_init(_mlp(F32, (6, 6)), 1e13)  # parameters fine, outputs ~1e39 overflow
    assert bool(torch.isfinite(ib.flat_parameters(net)).all())
    with pytest.raises(ARG, match=r"The 'model' argument of check_zero_output .*finite outputs"):
        ib.check_zero_output(net, _X(dtype=F32))


def test_check_zero_output_leaves_batchnorm_statistics_alone() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(3, 4, bias=False), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 1, bias=False)
    ).double()
    with pytest.warns(UserWarning, match="not zero"):
        ib.check_zero_output(net, _X(), action="warn")
    assert int(net[1].num_batches_tracked) == 0 and float(net[1].running_mean.abs().max()) == 0


# ------------------------------------------------------------------------ homogeneity_degree
def test_homogeneity_degree_refuses_nan_weights() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of homogeneity_degree .*NaN"):
        ib.homogeneity_degree(_nan_mlp(), _X())


def test_homogeneity_degree_refuses_outputs_that_overflow_when_rescaled() -> None:
    net = _mlp(F32, (6, 6))
    X = _X(dtype=F32)
    top = float(net(X).detach().abs().max())
    ib.scale_init(net, (5e37 / top) ** (1 / 3))  # max |f| = 5e37: finite, but 3^3 · f is not
    assert bool(torch.isfinite(net(X)).all())
    with pytest.raises(ARG, match=r"The 'model' argument of homogeneity_degree .*rescaled"):
        ib.homogeneity_degree(net, X)


def test_homogeneity_degree_refuses_outputs_that_are_already_infinite() -> None:
    net = ib.scale_init(_mlp(F32, (6, 6)), 1e13)
    with pytest.raises(ARG, match=r"The 'model' argument of homogeneity_degree .*finite outputs"):
        ib.homogeneity_degree(net, _X(dtype=F32))


# ------------------------------------------------------------------------ Homogeneous consumers
def test_homogeneous_refuses_a_model_with_a_nan_parameter() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of Homogeneous .*'layers.0.weight'"):
        ib.Homogeneous(_nan_mlp(), degree=2)


def test_homogeneous_jacobian_refuses_parameters_that_became_nan() -> None:
    net = _mlp()
    h = ib.Homogeneous(net)
    with torch.no_grad():
        net.layers[1].weight.fill_(float("inf"))
    with pytest.raises(ARG, match=r"The 'model' argument of Homogeneous.jacobian .*finite"):
        h.jacobian(_X())


@pytest.mark.parametrize(
    "call",
    [
        lambda m, X: ib.empirical_ntk(m, X),
        lambda m, X: ib.kkt_residuals(m, X, torch.ones(X.shape[0], dtype=F64)),
        lambda m, X: ib.normalized_margin(m, X, torch.ones(X.shape[0], dtype=F64)),
    ],
    ids=["empirical_ntk", "kkt_residuals", "normalized_margin"],
)
def test_consumers_refuse_nan_weights_naming_the_model(call: Callable[..., Any]) -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of \w+ must be a module with finite"):
        call(ib.symmetrize(_nan_mlp()), _X())


# ------------------------------------------------------------------------ meta device
@pytest.mark.parametrize(
    ("call", "func"),
    [
        (lambda X: ib.homogeneity_degree(_mlp(), X), "homogeneity_degree"),
        (lambda X: ib.check_zero_output(_mlp(), X), "check_zero_output"),
        (lambda X: ib.Homogeneous(_mlp()).jacobian(X), "Homogeneous.jacobian"),
    ],
    ids=["homogeneity_degree", "check_zero_output", "jacobian"],
)
def test_inputs_on_the_meta_device_are_refused(call: Callable[..., Any], func: str) -> None:
    with pytest.raises(ARG, match=rf"The 'X' argument of {func} .*'meta' device"):
        call(torch.ones(4, 3, dtype=F64, device="meta"))


def test_model_on_the_meta_device_is_refused_by_homogeneous() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of Homogeneous .*'meta' device"):
        ib.Homogeneous(ib.HomogeneousMLP(3, [4], device="meta"), degree=2)


def test_flat_parameters_refuses_a_meta_model() -> None:
    with pytest.raises(ARG, match=r"The 'model' argument of flat_parameters .*'meta'"):
        ib.flat_parameters(ib.DiagonalNet(3, device="meta"))


# ------------------------------------------------------------------------ one dtype rule
CONSUMERS: dict[str, Callable[[nn.Module, torch.Tensor], Any]] = {
    "homogeneity_degree": lambda m, X: ib.homogeneity_degree(m, X),
    "check_zero_output": lambda m, X: ib.check_zero_output(ib.symmetrize(m), X),
    "Homogeneous.jacobian": lambda m, X: ib.Homogeneous(m).jacobian(X),
    "empirical_ntk": lambda m, X: ib.empirical_ntk(m, X, method="jacobian"),
}
ARGNAME = {"empirical_ntk": "X1"}


@pytest.mark.parametrize("func", list(CONSUMERS))
def test_integer_inputs_for_an_mlp_are_refused_everywhere(func: str) -> None:
    X = torch.ones(4, 3, dtype=torch.int64)
    arg = ARGNAME.get(func, "X")
    with pytest.raises(ARG, match=rf"The '{arg}' argument of {func} .*float tensor.*int64"):
        CONSUMERS[func](_mlp(F32), X)


@pytest.mark.parametrize("func", list(CONSUMERS))
def test_float64_inputs_to_a_float32_model_are_cast_everywhere(func: str) -> None:
    """The stated rule: a float X is cast to the parameters' dtype (the same answer as X.float())."""
    X64 = _X()
    got = CONSUMERS[func](_mlp(F32), X64)
    ref = CONSUMERS[func](_mlp(F32), X64.to(F32))
    if isinstance(got, torch.Tensor):
        assert got.dtype == F32
        assert torch.equal(got, ref)
    else:
        assert got == ref


@pytest.mark.parametrize("dtype", [torch.complex64, torch.bool], ids=["complex", "bool"])
def test_complex_and_bool_inputs_are_refused(dtype: torch.dtype) -> None:
    X = torch.ones(4, 3, dtype=dtype)
    with pytest.raises(ARG, match=rf"The 'X' argument of homogeneity_degree .*{dtype}"):
        ib.homogeneity_degree(_mlp(), X)


def test_half_precision_inputs_are_cast_up() -> None:
    X = _X(dtype=F32)
    assert ib.homogeneity_degree(_mlp(F32), X.half()) == 2


def test_float64_inputs_that_overflow_float32_are_refused() -> None:
    X = torch.full((4, 3), 1e300, dtype=F64)
    with pytest.raises(ARG, match=r"The 'X' argument of homogeneity_degree .*torch.float32"):
        ib.homogeneity_degree(_mlp(F32), X)


def test_index_inputs_go_on_to_a_model_that_takes_them() -> None:
    idx = torch.tensor([[0, 1], [2, 2], [1, 3]])
    mf = ib.MatrixFactorization(4, dtype=F64)
    with torch.no_grad():
        mf.U.add_(0.1 * torch.randn(4, 4, generator=torch.Generator().manual_seed(0), dtype=F64))
    assert ib.homogeneity_degree(mf, idx) == 2
    torch.manual_seed(0)
    emb = nn.Sequential(nn.Embedding(5, 3), nn.Flatten(), nn.Linear(6, 1, bias=False)).double()
    assert ib.homogeneity_degree(emb, torch.tensor([[0, 1], [2, 3], [4, 0]])) == 2


def test_mixed_dtype_model_is_refused() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False))
    net[2].double()
    with pytest.raises(ARG, match=r"The 'model' argument of Homogeneous .*one floating-point"):
        ib.Homogeneous(net, degree=2)
    with pytest.raises(ARG, match=r"The 'model' argument of homogeneity_degree .*mixed dtypes"):
        ib.homogeneity_degree(net, _X())


def test_complex_model_is_refused() -> None:
    lin = nn.Linear(3, 1, bias=False, dtype=torch.complex64)
    with pytest.raises(ARG, match=r"The 'model' argument of Homogeneous .*complex64"):
        ib.Homogeneous(lin, degree=1)


def test_builtin_models_do_not_cast() -> None:
    """Called directly, a built-in model raises on another dtype, saying how to convert."""
    with pytest.raises(ARG, match=r"The 'x' argument of DiagonalNet .*Convert with x.to"):
        ib.DiagonalNet(3, dtype=F32)(_X())


# ------------------------------------------------------------------------ built-in model scales
@pytest.mark.parametrize(
    ("make", "func"),
    [
        (lambda: ib.DiagonalNet(4, alpha=1e20, dtype=F32), "DiagonalNet"),
        (lambda: ib.DiagonalNet(4, depth=3, alpha=1e110, dtype=F64), "DiagonalNet"),
        (lambda: ib.DiagonalNet(4, alpha=1e-40, dtype=F32), "DiagonalNet"),
        (lambda: ib.MatrixFactorization(4, alpha=1e20, dtype=F32), "MatrixFactorization"),
        (lambda: ib.MatrixFactorization(4, alpha=1e200, dtype=F64), "MatrixFactorization"),
        (lambda: ib.QuadraticNet(4, 3, alpha=1e20, dtype=F32), "QuadraticNet"),
    ],
    ids=["diag-f32", "diag-depth3-f64", "diag-underflow", "mf-f32", "mf-f64", "quadratic-f32"],
)
def test_builtin_models_refuse_a_scale_that_overflows(make: Callable[[], Any], func: str) -> None:
    with pytest.raises(ARG, match=rf"The 'alpha' argument of {func} .*torch.float(32|64)"):
        make()


def test_diagonal_net_at_large_alpha_float32_is_exact_zero() -> None:
    net = ib.DiagonalNet(4, alpha=1e4, dtype=F32)
    X = _X(d=4, dtype=F32)
    assert float(net(X).detach().abs().max()) == 0.0
    assert ib.check_zero_output(net, X) == 0.0
    assert ib.homogeneity_degree(net, X) == 2


# ------------------------------------------------------- check_zero_output, a random forward
class _FunctionalDropout(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 6, bias=False, dtype=F64)
        self.b = nn.Linear(6, 1, bias=False, dtype=F64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.nn.functional.dropout(torch.relu(self.a(x)), 0.5, training=True)
        return self.b(h)


def test_check_zero_output_names_a_dropout_layer_in_training_mode() -> None:
    # was: NonZeroInitError telling the user to symmetrize a model that already is: the two
    # halves draw different dropout masks
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Linear(3, 6, bias=False), nn.ReLU(), nn.Dropout(0.5), nn.Linear(6, 1, bias=False)
    ).to(F64)
    sym = ib.symmetrize(net)
    with pytest.raises(ib.NotHomogeneousError, match=r"nondeterministic: 'positive\.2' \(Dropout"):
        ib.check_zero_output(sym, _X())
    assert ib.check_zero_output(sym.eval(), _X()) == 0.0  # the same model in eval mode


def test_check_zero_output_calls_a_functional_dropout_nondeterministic() -> None:
    torch.manual_seed(0)
    with pytest.raises(ib.NotHomogeneousError, match="check_zero_output: .* nondeterministic"):
        ib.check_zero_output(ib.symmetrize(_FunctionalDropout()), _X())


def test_check_zero_output_still_reports_a_deterministic_nonzero_output() -> None:
    with pytest.raises(ib.NonZeroInitError, match="not zero"):
        ib.check_zero_output(_mlp(), _X())
