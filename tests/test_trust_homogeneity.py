"""Homogeneity that cannot be fooled (issue 11, item 2).

A degree is accepted only when f(cθ) = c^L f(θ) holds at the parameters *and* at a random
perturbation of them; normalization layers, non-homogeneous activations and random layers are
refused by name; a declared degree is checked once; and the check never changes the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

import implicitbias as ib

F32, F64 = torch.float32, torch.float64


def _X(n: int = 16, d: int = 4, dtype: torch.dtype = F64, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _seq(*mods: nn.Module, dtype: torch.dtype = F64, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(*mods).to(dtype)


def _snapshot(model: nn.Module) -> dict:
    return {
        "tensors": {
            k: v.detach().clone() for k, v in [*model.named_parameters(), *model.named_buffers()]
        },
        "versions": {k: v._version for k, v in model.named_parameters()},
        "ids": {k: id(v) for k, v in model.named_parameters(remove_duplicate=False)},
        "modes": {k: m.training for k, m in model.named_modules()},
    }


def _assert_untouched(model: nn.Module, snap: dict) -> None:
    now = dict([*model.named_parameters(), *model.named_buffers()])
    assert set(now) == set(snap["tensors"])
    for k, v in snap["tensors"].items():
        assert now[k].dtype == v.dtype and torch.equal(now[k].detach(), v), k  # bitwise
    assert {k: v._version for k, v in model.named_parameters()} == snap["versions"]
    # the very same nn.Parameter objects, under every name (a layer used twice included)
    named = dict(model.named_parameters(remove_duplicate=False))
    assert {k: id(v) for k, v in named.items()} == snap["ids"]
    assert all(isinstance(v, nn.Parameter) for v in named.values())
    assert {k: m.training for k, m in model.named_modules()} == snap["modes"]
    assert all(p.grad is None for p in model.parameters())


def _scaled_copy(model: nn.Module, c: float) -> nn.Module:
    """An independent reference: a deep copy with every trainable parameter multiplied by c."""
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            if p.requires_grad:
                p.mul_(c)
    return other


def _reference_degree(model: nn.Module, X: torch.Tensor, c: float = 2.0) -> float:
    """log(f(cθ)/f(θ))/log c from two plain forward passes (all outputs must agree)."""
    with torch.no_grad():
        f = model(X).reshape(-1)
        fc = _scaled_copy(model, c)(X).reshape(-1)
    keep = f.abs() > 1e-6 * f.abs().max()
    ratios = torch.log(fc[keep] / f[keep]) / torch.log(torch.tensor(c, dtype=f.dtype))
    assert float(ratios.max() - ratios.min()) < 1e-3
    return float(ratios.mean())


# ----------------------------------------------------------------------- normalization layers
def _norm_net(kind: str, dtype: torch.dtype) -> nn.Module:
    norm: nn.Module = {
        "LayerNorm": lambda: nn.LayerNorm(8),
        "GroupNorm": lambda: nn.GroupNorm(2, 8),
        "RMSNorm": lambda: nn.RMSNorm(8),
        "BatchNorm1d": lambda: nn.BatchNorm1d(8),
    }[kind]()
    return _seq(
        nn.Linear(4, 8, bias=False), norm, nn.ReLU(), nn.Linear(8, 1, bias=False), dtype=dtype
    )


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
@pytest.mark.parametrize("kind", ["LayerNorm", "GroupNorm", "RMSNorm"])
def test_normalization_layer_is_refused_by_name(kind: str, dtype: torch.dtype) -> None:
    """A LayerNorm net in float32 used to pass as 2-homogeneous within the float32 tolerance."""
    net = _norm_net(kind, dtype)
    snap = _snapshot(net)
    with pytest.raises(ib.NotHomogeneousError, match=rf"'1' \({kind}\) is a normalization layer"):
        ib.homogeneity_degree(net, _X(dtype=dtype))
    _assert_untouched(net, snap)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fresh_batchnorm_is_refused_and_left_untouched(mode: str) -> None:
    """A fresh BatchNorm (mean 0, var 1, β = 0) is exactly linear at init in eval mode."""
    net = _norm_net("BatchNorm1d", F64)
    net.train(mode == "train")
    net[3].train()  # mixed modes: each submodule's flag must come back as it was
    bn = net[1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    tracked = bn.num_batches_tracked.clone()
    snap = _snapshot(net)
    with pytest.raises(ib.NotHomogeneousError, match=r"'1' \(BatchNorm1d\)"):
        ib.homogeneity_degree(net, _X())
    with pytest.raises(ib.NotHomogeneousError, match=r"'1' \(BatchNorm1d\)"):
        ib.Homogeneous(net, example_input=_X())
    _assert_untouched(net, snap)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert int(bn.num_batches_tracked) == int(tracked) == 0
    assert bn.training == (mode == "train") and net[3].training


def test_instance_norm_is_refused_by_name() -> None:
    net = _seq(
        nn.Linear(4, 8, bias=False),
        nn.Unflatten(1, (2, 4)),
        nn.InstanceNorm1d(2, affine=True),
        nn.Flatten(),
        nn.ReLU(),
        nn.Linear(8, 1, bias=False),
    )
    with pytest.raises(ib.NotHomogeneousError, match=r"'2' \(InstanceNorm1d\)"):
        ib.homogeneity_degree(net, _X())


def test_batchnorm_through_kkt_residuals_is_refused_untouched() -> None:
    net = _norm_net("BatchNorm1d", F64).train()
    X = _X()
    y = torch.where(torch.arange(16) % 2 == 0, 1.0, -1.0).to(F64)
    snap = _snapshot(net)
    with pytest.raises(ib.NotHomogeneousError, match=r"BatchNorm1d"):
        ib.kkt_residuals(net, X, y)
    _assert_untouched(net, snap)


# ----------------------------------------------------------------------- biases and shifts
@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_hidden_bias_zero_at_init_is_caught_by_the_perturbation(dtype: torch.dtype) -> None:
    """At θ the zero bias is invisible; at a random perturbation θ′ it is not."""
    net = _seq(
        nn.Linear(4, 8, bias=False),
        nn.ReLU(),
        nn.Linear(8, 8),
        nn.ReLU(),
        nn.Linear(8, 1, bias=False),
        dtype=dtype,
    )
    nn.init.zeros_(net[2].bias)
    snap = _snapshot(net)
    with pytest.raises(
        ib.NotHomogeneousError, match=r"perturbation.*'2' \(Linear\) has a bias after the first"
    ):
        ib.homogeneity_degree(net, _X(dtype=dtype))
    _assert_untouched(net, snap)


def test_zero_conv_bias_in_second_layer_is_caught() -> None:
    net = _seq(
        nn.Conv2d(1, 3, 3, bias=False),
        nn.ReLU(),
        nn.Conv2d(3, 2, 3),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(8, 1, bias=False),
    )
    nn.init.zeros_(net[2].bias)
    X = torch.randn(6, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=F64)
    with pytest.raises(ib.NotHomogeneousError, match=r"'2' \(Conv2d\) has a bias"):
        ib.homogeneity_degree(net, X)


class _OutputShift(nn.Module):
    """A bias-free net plus a trainable output offset that starts at zero."""

    def __init__(self) -> None:
        super().__init__()
        self.l1 = nn.Linear(4, 8, bias=False)
        self.l2 = nn.Linear(8, 1, bias=False)
        self.shift = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x))).squeeze(-1) + self.shift


def test_additive_output_shift_zero_at_init_is_caught() -> None:
    torch.manual_seed(0)
    net = _OutputShift().double()
    with pytest.raises(ib.NotHomogeneousError, match="perturbation"):
        ib.homogeneity_degree(net, _X())


@pytest.mark.parametrize("dtype", [F32, F64], ids=["f32", "f64"])
def test_first_layer_bias_two_layer_relu_is_accepted(dtype: torch.dtype) -> None:
    """THEORY §1: a first-layer bias keeps a two-layer ReLU net 2-homogeneous jointly."""
    net = _seq(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1, bias=False), dtype=dtype)
    with torch.no_grad():
        net[0].bias.uniform_(-1.0, 1.0)
    X = _X(dtype=dtype)
    assert ib.homogeneity_degree(net, X) == 2
    assert round(_reference_degree(net.double(), X.double()), 6) == 2.0
    builtin = ib.HomogeneousMLP(4, [8], first_layer_bias=True, seed=0, dtype=dtype)
    assert ib.homogeneity_degree(builtin, X) == 2  # zero bias at init, perturbed: still 2


def test_bias_free_three_layer_net_has_degree_three() -> None:
    net = _seq(
        nn.Linear(4, 8, bias=False),
        nn.ReLU(),
        nn.Linear(8, 8, bias=False),
        nn.ReLU(),
        nn.Linear(8, 1, bias=False),
    )
    X = _X()
    assert ib.homogeneity_degree(net, X) == 3
    assert round(_reference_degree(net, X), 9) == 3.0


def test_shared_leaky_relu_object_is_homogeneous() -> None:
    act = nn.LeakyReLU(0.1)
    net = _seq(
        nn.Linear(4, 8, bias=False),
        act,
        nn.Linear(8, 8, bias=False),
        act,
        nn.Linear(8, 1, bias=False),
    )
    X = _X()
    assert ib.homogeneity_degree(net, X) == 3
    assert round(_reference_degree(net, X), 9) == 3.0


@pytest.mark.parametrize(
    "make",
    [
        lambda: (
            lambda lin: nn.Sequential(
                nn.Linear(4, 8, bias=False),
                nn.ReLU(),
                lin,
                nn.ReLU(),
                lin,
                nn.ReLU(),
                nn.Linear(8, 1, bias=False),
            )
        )(nn.Linear(8, 8, bias=False)),
        lambda: nn.Sequential(
            weight_norm(nn.Linear(4, 8, bias=False)),
            nn.ReLU(),
            weight_norm(nn.Linear(8, 1, bias=False)),
        ),
    ],
    ids=["tied-layer-used-twice", "weight-norm"],
)
def test_tied_and_parametrized_models_match_the_reference(make: Callable[[], nn.Module]) -> None:
    torch.manual_seed(0)
    net = make().double()
    X = _X()
    assert ib.homogeneity_degree(net, X) == round(_reference_degree(net, X))


def test_layer_used_twice_keeps_its_parameter_through_every_check() -> None:
    """functional_call alone would leave a plain tensor in place of the shared layer's weight."""
    lin = nn.Linear(8, 8, bias=False)
    net = _seq(
        nn.Linear(4, 8, bias=False),
        nn.ReLU(),
        lin,
        nn.ReLU(),
        lin,
        nn.ReLU(),
        nn.Linear(8, 1, bias=False),
    )
    X = _X()
    snap = _snapshot(net)
    assert ib.homogeneity_degree(net, X) == 4
    h = ib.Homogeneous(net, degree=4)
    J = h.jacobian(X)
    with pytest.warns(UserWarning, match="not zero"):
        ib.check_zero_output(net, X, action="warn")
    _assert_untouched(net, snap)
    # and the Jacobian is that of the model itself: Euler's identity J θ = L f
    torch.testing.assert_close(J @ h.theta(), 4 * net(X).detach().reshape(-1), rtol=1e-10, atol=0)


def test_symmetrized_first_layer_bias_net_is_measured_through_the_gradient() -> None:
    sym = ib.symmetrize(ib.HomogeneousMLP(4, [8, 8], first_layer_bias=True, seed=0, dtype=F64))
    X = _X()
    assert float(sym(X).detach().abs().max()) == 0.0
    assert ib.homogeneity_degree(sym, X) == 3


# ----------------------------------------------------------------------- activations
@pytest.mark.parametrize("act", [nn.Tanh, nn.Sigmoid, nn.GELU, nn.Softplus, nn.ELU, nn.SiLU])
def test_non_homogeneous_activation_is_refused_by_name(act: type[nn.Module]) -> None:
    net = _seq(nn.Linear(4, 8, bias=False), act(), nn.Linear(8, 1, bias=False), dtype=F32)
    with torch.no_grad():  # tiny pre-activations: tanh(z) ≈ z would pass a purely numerical test
        net[0].weight.mul_(1e-3)
    name = act.__name__
    with pytest.raises(ib.NotHomogeneousError, match=rf"'1' \({name}\) is an activation"):
        ib.homogeneity_degree(net, _X(dtype=F32))


def test_trainable_prelu_slope_is_refused() -> None:
    net = _seq(nn.Linear(4, 8, bias=False), nn.PReLU(), nn.Linear(8, 1, bias=False))
    with pytest.raises(ib.NotHomogeneousError, match=r"'1' \(PReLU\) has a trainable"):
        ib.homogeneity_degree(net, _X())


# ----------------------------------------------------------------------- randomness
def _dropout_net() -> nn.Sequential:
    return _seq(
        nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 1, bias=False)
    )


def test_dropout_in_train_mode_is_a_nondeterminism_error() -> None:
    net = _dropout_net().train()
    rng = torch.get_rng_state()
    snap = _snapshot(net)
    with pytest.raises(ib.NotHomogeneousError, match=r"nondeterministic.*'2' \(Dropout\)"):
        ib.homogeneity_degree(net, _X())
    _assert_untouched(net, snap)
    assert torch.equal(torch.get_rng_state(), rng)


def test_dropout_in_eval_mode_is_fine() -> None:
    net = _dropout_net().eval()
    X = _X()
    assert ib.homogeneity_degree(net, X) == 2
    assert round(_reference_degree(net, X), 9) == 2.0
    assert not net.training


class _Noisy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x + 0.01 * torch.randn_like(x)).squeeze(-1)


def test_functional_noise_in_forward_is_a_nondeterminism_error() -> None:
    torch.manual_seed(0)
    net = _Noisy().double()
    rng = torch.get_rng_state()
    with pytest.raises(ib.NotHomogeneousError, match="nondeterministic"):
        ib.homogeneity_degree(net, _X())
    assert torch.equal(torch.get_rng_state(), rng)


# ----------------------------------------------------------------------- declared degrees
@pytest.mark.parametrize(
    ("degree", "exc"),
    [
        (float("nan"), ib.InvalidArgumentError),
        (float("inf"), ib.InvalidArgumentError),
        (0, ib.InvalidArgumentError),
        (-2.0, ib.InvalidArgumentError),
        (True, ib.InvalidArgumentTypeError),
        ("2", ib.InvalidArgumentTypeError),
    ],
    ids=["nan", "inf", "zero", "negative", "bool", "str"],
)
def test_bad_user_degree_is_refused(degree: object, exc: type[Exception]) -> None:
    net = ib.HomogeneousMLP(4, [8], seed=0, dtype=F64)
    with pytest.raises(exc, match=r"The 'degree' argument of Homogeneous must be a positive"):
        ib.Homogeneous(net, degree=degree)  # type: ignore[arg-type]


def test_wrong_degree_with_example_input_names_the_measured_degree() -> None:
    net = ib.HomogeneousMLP(4, [8, 8], seed=0, dtype=F64)
    with pytest.raises(
        ib.NotHomogeneousError, match="declared 2-homogeneous.*measured degree is 3"
    ):
        ib.Homogeneous(net, degree=2, example_input=_X())


def test_wrong_degree_is_checked_at_the_first_use_with_inputs() -> None:
    net = _seq(nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False))
    h = ib.Homogeneous(net, degree=3)  # no inputs yet: nothing to check against
    with pytest.raises(
        ib.NotHomogeneousError, match="Homogeneous.jacobian: .*declared 3-homogeneous.*is 2"
    ):
        h.jacobian(_X())


def test_wrong_degree_in_kkt_residuals_is_refused() -> None:
    net = ib.HomogeneousMLP(4, [8], seed=0, dtype=F64)
    X = _X()
    y = torch.sign(net(X)).detach()
    with pytest.raises(ib.NotHomogeneousError, match="kkt_residuals: .*measured degree is 2"):
        ib.kkt_residuals(net, X, y, degree=3)


class _CountingNet(nn.Module):
    degree = 2

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(4, 6, bias=False, dtype=F64)
        self.l2 = nn.Linear(6, 1, bias=False, dtype=F64)
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.l2(torch.relu(self.l1(x))).squeeze(-1)


def test_declared_degree_is_checked_once() -> None:
    net = _CountingNet()
    h = ib.Homogeneous(net)
    X = _X()
    h.jacobian(X)
    first = net.calls
    h.jacobian(X)
    second = net.calls - first
    assert first > second  # the first call also ran the check, the second did not


def test_wrong_degree_attribute_of_a_user_module_is_refused() -> None:
    net = _CountingNet()
    net.degree = 5  # type: ignore[misc]
    with pytest.raises(ib.NotHomogeneousError, match="says it is 5-homogeneous.*is 2"):
        ib.Homogeneous(net).jacobian(_X())


def test_degree_attribute_that_is_not_a_number_is_refused() -> None:
    net = _CountingNet()
    net.degree = float("nan")  # type: ignore[misc]
    with pytest.raises(ib.InvalidArgumentError, match=r"'model' argument of Homogeneous.*degree"):
        ib.Homogeneous(net)


# ----------------------------------------------------------------------- never change the model
class _RaisesWhenLarge(nn.Module):
    """Raises in forward once the weights are scaled up (as an assert in user code might)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(4, 6, bias=False, dtype=F64)
        self.l2 = nn.Linear(6, 1, bias=False, dtype=F64)
        self.register_buffer("seen", torch.zeros((), dtype=torch.int64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.seen += 1
        if float(self.l1.weight.detach().abs().max()) > 2.5:
            raise RuntimeError("weights out of range")
        return self.l2(torch.relu(self.l1(x))).squeeze(-1)


def test_model_restored_exactly_when_the_check_raises() -> None:
    net = _RaisesWhenLarge()
    net.l2.eval()
    snap = _snapshot(net)
    with pytest.raises(RuntimeError, match="out of range"):
        ib.homogeneity_degree(net, _X(), scales=(0.5, 10.0))
    _assert_untouched(net, snap)
    assert int(net.seen) == 0


def test_pending_autograd_graph_survives_the_check() -> None:
    net = ib.HomogeneousMLP(4, [8], seed=0, dtype=F64)
    X = _X()
    loss = net(X).square().sum()
    snap = _snapshot(net)
    assert ib.homogeneity_degree(net, X) == 2
    with pytest.warns(UserWarning, match="not zero"):
        ib.check_zero_output(net, X, action="warn")
    _assert_untouched(net, snap)
    loss.backward()  # would fail had a parameter been modified in place
    assert all(p.grad is not None for p in net.parameters())


def test_check_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    net = _seq(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1, bias=False))
    X = _X()
    state = torch.get_rng_state()
    assert ib.homogeneity_degree(net, X, seed=3) == ib.homogeneity_degree(net, X, seed=3) == 2
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(
    ("seed", "exc"),
    [(-1, ib.InvalidArgumentError), ("a", ib.InvalidArgumentTypeError)],
    ids=["negative", "str"],
)
def test_bad_seed_is_refused(seed: object, exc: type[Exception]) -> None:
    with pytest.raises(exc, match=r"The 'seed' argument of homogeneity_degree"):
        ib.homogeneity_degree(ib.HomogeneousMLP(4, [8], seed=0), _X(), seed=seed)  # type: ignore[arg-type]


# ----------------------------------------------------- researcher models (held-out style)
class _Residual(nn.Module):
    """h + B·relu(A·h) after a first layer: the skip is degree 1, the branch degree 2."""

    def __init__(self, same_degree: bool) -> None:
        super().__init__()
        self.i = nn.Linear(4, 8, bias=False)
        self.a = nn.Linear(8, 8, bias=False)
        self.b = nn.Linear(8, 8, bias=False)
        self.c = nn.Linear(4, 8, bias=False) if same_degree else None
        self.o = nn.Linear(8, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c is None:  # mixes degrees 1 (skip) and 2 (branch)
            h = torch.relu(self.i(x))
            return self.o(h + self.b(torch.relu(self.a(h))))
        # two branches of degree 2 each: homogeneous of degree 3
        return self.o(self.b(torch.relu(self.i(x))) + self.a(torch.relu(self.c(x))))


class _Product(nn.Module):
    """a(x) ⊙ b(relu(c(x))): degrees add (1 + 2), then the output layer: 4."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(4, 8, bias=False), nn.Linear(8, 8, bias=False)
        self.c, self.o = nn.Linear(4, 8, bias=False), nn.Linear(8, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(self.a(x) * self.b(torch.relu(self.c(x))))


class _CalledTwice(nn.Module):
    """One layer applied twice (its weight enters twice): o(relu(a(relu(a(x))))), degree 3."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.o = nn.Linear(4, 4, bias=False), nn.Linear(4, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.o(torch.relu(self.a(torch.relu(self.a(x)))))


def _tied_twice() -> nn.Module:
    shared = nn.Linear(8, 8, bias=False)
    return nn.Sequential(
        nn.Linear(4, 8, bias=False), nn.ReLU(), shared, nn.ReLU(), shared, nn.ReLU(),
        nn.Linear(8, 1, bias=False),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("make", "degree"),
    [
        (lambda: _Residual(same_degree=True), 3),
        (_Product, 4),
        (_CalledTwice, 3),
        (_tied_twice, 4),
    ],
    ids=["residual-same-degree", "product-of-branches", "layer-called-twice", "tied-twice"],
)
def test_researcher_architectures_get_their_degree_by_construction(
    make: Callable[[], nn.Module], degree: int
) -> None:
    torch.manual_seed(0)
    model = make().to(F64)
    X = _X()
    snap = _snapshot(model)
    assert ib.homogeneity_degree(model, X) == degree
    assert _reference_degree(model, X) == pytest.approx(degree, abs=1e-9)
    _assert_untouched(model, snap)


def test_residual_skip_over_a_two_layer_block_is_refused() -> None:
    torch.manual_seed(0)
    model = _Residual(same_degree=False).to(F64)
    with pytest.raises(ib.NotHomogeneousError, match="not positively homogeneous"):
        ib.homogeneity_degree(model, _X())


class _ScaleInvariant(nn.Module):
    """Divides by the weight's norm: f(cθ) = f(θ), degree 0 (or −1 with ``inverse``)."""

    def __init__(self, inverse: bool = False) -> None:
        super().__init__()
        self.a = nn.Linear(4, 1, bias=False)
        self.inverse = inverse

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.inverse:
            return x.sum(1, keepdim=True) / self.a.weight.norm()
        return self.a(x) / self.a.weight.norm()


@pytest.mark.parametrize(
    "call",
    [
        lambda m, X: ib.homogeneity_degree(m, X),
        lambda m, X: ib.Homogeneous(m, example_input=X),
        lambda m, X: ib.train(m, X, torch.sign(X[:, 0]), weight_decay=0.0, lr=0.1, steps=2),
    ],
    ids=["homogeneity_degree", "Homogeneous", "train"],
)
@pytest.mark.parametrize("inverse", [False, True], ids=["degree0", "degree-1"])
def test_scale_invariant_or_negative_degree_model_is_refused(call, inverse: bool) -> None:
    # was: degree 0.0 (or -1.0) returned and used, silently, as the model's degree
    model = _ScaleInvariant(inverse).to(F64)
    snap = _snapshot(model)
    with pytest.raises(ib.NotHomogeneousError, match=r"L > 0"):
        call(model, _X())
    _assert_untouched(model, snap)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_sixteen_bit_model_gets_its_degree(dtype: torch.dtype, depth: int) -> None:
    # was: a raw "ValueError: cannot convert float NaN to integer" (every output was
    # taken for rounding noise, as the noise threshold 1e4·eps exceeds 1 in 16 bits)
    layers: list[nn.Module] = []
    width = 4
    for _ in range(depth - 1):
        layers += [nn.Linear(width, 16, bias=False), nn.ReLU()]
        width = 16
    model = _seq(*layers, nn.Linear(width, 1, bias=False), dtype=dtype)
    assert ib.homogeneity_degree(model, _X(32)) == depth
