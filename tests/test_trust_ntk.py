"""The structured NTK only where its structure is proven (issue 11, item 1).

Each case is a model a researcher plausibly writes (a shared activation object, tied weights,
hooks, parametrizations, frozen layers, a custom forward, wrappers); the default route must
equal ``method="jacobian"`` to 1e-10 in float64, and where it matters an independent
per-example autograd reference. The route taken is read off the DEBUG log.
"""

from __future__ import annotations

import logging
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import orthogonal, weight_norm

import implicitbias as ib
from implicitbias._errors import InvalidArgumentError

DT = torch.float64
LOGGER = "implicitbias.kernel_regime.ntk"
STRUCTURED = "structured route for model"
FALLBACK = "falling back to the Jacobian route"


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=DT)


def _lin(i: int, o: int, bias: bool = False, seed: int = 0) -> nn.Linear:
    layer = nn.Linear(i, o, bias=bias).to(DT)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=DT) / p.shape[-1] ** 0.5)
    return layer


def _assert_agree(K: torch.Tensor, reference: torch.Tensor) -> None:
    scale = float(reference.abs().max())
    assert scale > 0
    torch.testing.assert_close(K, reference, rtol=0, atol=1e-10 * scale)


def _kernel(model: nn.Module, X: torch.Tensor, caplog: pytest.LogCaptureFixture, **kw) -> str:
    """Default route == Jacobian route (1e-10); return the DEBUG log of the default call."""
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        K = ib.empirical_ntk(model, X, **kw)
    log = caplog.text
    _assert_agree(K, ib.empirical_ntk(model, X, method="jacobian", **kw))
    return log


def _autograd_ntk(model: nn.Module, X: torch.Tensor) -> torch.Tensor:
    """Independent reference: per-example gradients of each output w.r.t. the trainable
    parameters by plain autograd, one example at a time."""
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(X.shape[0]):
        out = model(X[i : i + 1]).reshape(-1)
        for a in range(out.numel()):
            grads = torch.autograd.grad(out[a], params, retain_graph=True, allow_unused=True)
            flat = [
                torch.zeros(p.numel(), dtype=DT) if g is None else g.reshape(-1)
                for g, p in zip(grads, params)
            ]
            rows.append(torch.cat(flat))
    J = torch.stack(rows)
    return J @ J.T


def _mlp(act_a: nn.Module, act_b: nn.Module, d_out: int = 1) -> nn.Sequential:
    return nn.Sequential(
        _lin(4, 8, seed=1), act_a, _lin(8, 8, seed=2), act_b, _lin(8, d_out, seed=3)
    )


X = _randn(10, 4, seed=7)


# ------------------------------------------------------------------- shared activation objects
def test_issue_example_shared_relu_is_right_and_stays_structured(caplog) -> None:
    act = nn.ReLU()
    model = _mlp(act, act)
    log = _kernel(model, X, caplog)
    assert STRUCTURED in log
    separate = _mlp(nn.ReLU(), nn.ReLU())
    _assert_agree(ib.empirical_ntk(model, X), ib.empirical_ntk(separate, X))
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


@pytest.mark.parametrize(
    "make", [nn.ReLU, lambda: nn.LeakyReLU(0.2), nn.Identity, lambda: nn.LeakyReLU(-0.5)]
)
def test_shared_activation_kinds(make, caplog) -> None:
    act = make()
    model = _mlp(act, act, d_out=2)
    for trace in (False, True):
        assert STRUCTURED in _kernel(model, X, caplog, trace=trace)


def test_shared_inplace_activation(caplog) -> None:
    act = nn.ReLU(inplace=True)
    model = _mlp(act, act)
    assert STRUCTURED in _kernel(model, X, caplog)
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


# ------------------------------------------------------------------------------ tied weights
def test_same_linear_used_twice_is_tied_and_falls_back(caplog) -> None:
    hidden = _lin(8, 8, seed=2)
    model = nn.Sequential(_lin(4, 8, seed=1), nn.ReLU(), hidden, nn.ReLU(), hidden, _lin(8, 1))
    log = _kernel(model, X, caplog)
    assert FALLBACK in log and "applied twice (tied weights)" in log
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))
    with pytest.raises(InvalidArgumentError, match=r"'method' argument.*applied twice"):
        ib.empirical_ntk(model, X, method="structured")


@pytest.mark.parametrize("method", ["auto", "jacobian"])
def test_kernel_leaves_a_tied_model_untouched(method: str) -> None:
    # torch.func.functional_call(tie_weights=True) on a module used at two paths restores the
    # second path to the swapped-in tensor: the model would lose its nn.Parameter silently.
    hidden = _lin(8, 8, seed=2)
    model = nn.Sequential(_lin(4, 8, seed=1), nn.ReLU(), hidden, nn.ReLU(), hidden, _lin(8, 1))
    before = {name: (p, p.detach().clone()) for name, p in model.named_parameters()}
    ib.empirical_ntk(model, X, method=method)
    after = dict(model.named_parameters())
    assert after.keys() == before.keys()
    for name, (p, value) in before.items():
        assert after[name] is p and isinstance(p, nn.Parameter) and p.requires_grad
        torch.testing.assert_close(p.detach(), value, rtol=0, atol=0)
    assert hidden.weight is before["2.weight"][0]


def test_one_weight_tensor_in_two_linears_falls_back(caplog) -> None:
    a, b = _lin(8, 8, seed=2), _lin(8, 8, seed=3)
    b.weight = a.weight
    model = nn.Sequential(_lin(4, 8, seed=1), nn.ReLU(), a, nn.ReLU(), b, nn.ReLU(), _lin(8, 1))
    log = _kernel(model, X, caplog)
    assert "tied weights" in log
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


# ------------------------------------------------------------------------------------- hooks
def _hooked(kind: str) -> nn.Sequential:
    model = _mlp(nn.ReLU(), nn.ReLU())
    if kind == "forward-scales-output":
        model[1].register_forward_hook(lambda m, i, o: 2.0 * o)
    elif kind == "pre-scales-input":
        model[2].register_forward_pre_hook(lambda m, i: (3.0 * i[0],))
    elif kind == "model-forward":
        model.register_forward_hook(lambda m, i, o: o + o)
    elif kind == "forward-noop":
        model[0].register_forward_hook(lambda m, i, o: None)
    elif kind == "pre-noop":
        model[4].register_forward_pre_hook(lambda m, i: None)
    elif kind == "kwargs-noop":
        model[3].register_forward_hook(lambda m, a, k, o: None, with_kwargs=True)
    return model


@pytest.mark.parametrize(
    "kind",
    [
        "forward-scales-output",
        "pre-scales-input",
        "model-forward",
        "forward-noop",
        "pre-noop",
        "kwargs-noop",
    ],
)
def test_hooks_take_the_jacobian_route(kind: str, caplog) -> None:
    model = _hooked(kind)
    log = _kernel(model, X, caplog)
    assert FALLBACK in log and "hook" in log
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


def test_hook_is_named_when_structured_is_forced() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'method'.*model\[1\] has a forward hook"):
        ib.empirical_ntk(_hooked("forward-scales-output"), X, method="structured")


def test_global_module_hook_takes_the_jacobian_route(caplog) -> None:
    model = _mlp(nn.ReLU(), nn.ReLU())
    handle = nn.modules.module.register_module_forward_hook(lambda m, i, o: None)
    try:
        log = _kernel(model, X, caplog)
    finally:
        handle.remove()
    assert "global module forward hook" in log
    assert STRUCTURED in _kernel(model, X, caplog)  # and back once it is removed


# ---------------------------------------------------------------------------- parametrizations
class _Doubled(nn.Module):
    def forward(self, W: torch.Tensor) -> torch.Tensor:
        return 2.0 * W


@pytest.mark.parametrize("kind", ["orthogonal", "custom", "weight_norm", "old_weight_norm"])
def test_parametrized_layers_take_the_jacobian_route(kind: str, caplog) -> None:
    model = nn.Sequential(_lin(4, 4, seed=1), nn.ReLU(), _lin(4, 3, seed=2), nn.ReLU(), _lin(3, 1))
    if kind == "orthogonal":
        orthogonal(model[0])
    elif kind == "custom":
        parametrize.register_parametrization(model[2], "weight", _Doubled())
    elif kind == "weight_norm":
        model[2] = weight_norm(model[2])
    else:  # the deprecated hook-based weight_norm
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            model[2] = torch.nn.utils.weight_norm(model[2])
    log = _kernel(model, X, caplog)
    assert FALLBACK in log and ("parametrization" in log or "WeightNorm" in log)
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


# ----------------------------------------------------------------------------- frozen layers
@pytest.mark.parametrize("frozen", ["0.weight", "2.weight", "4.weight", "2.bias", "0.*"])
def test_frozen_parameters_are_not_in_theta_on_either_route(frozen: str, caplog) -> None:
    model = nn.Sequential(
        _lin(4, 6, bias=True, seed=1), nn.ReLU(), _lin(6, 5, bias=True, seed=2), nn.ReLU(),
        _lin(5, 2, seed=3),
    )  # fmt: skip
    for name, p in model.named_parameters():
        if name == frozen or (frozen.endswith("*") and name.startswith(frozen[:-1])):
            p.requires_grad_(False)
    assert STRUCTURED in _kernel(model, X, caplog)
    # the NTK over the trainable parameters only, by plain autograd
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


def test_trainable_parameter_outside_the_chain_falls_back(caplog) -> None:
    model = _mlp(nn.ReLU(), nn.ReLU())
    model.register_parameter("unused", nn.Parameter(torch.ones(3, dtype=DT)))
    log = _kernel(model, X, caplog)
    assert "'unused' is outside the parsed layers" in log


# ------------------------------------------------------------------------ custom forward passes
class _Net(nn.Module):
    """Submodules registered in an order other than the order of the calls."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.head = _lin(8, 1, seed=3)
        self.act = nn.ReLU()
        self.body = _lin(8, 8, seed=2)
        self.stem = _lin(4, 8, seed=1)
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.stem(x))
        if self.mode == "reordered":
            return self.head(self.act(self.body(h)))
        if self.mode == "scaled":
            return self.head(self.act(self.body(2.0 * h)))
        if self.mode == "functional":
            return self.head(torch.relu(self.body(h)))
        if self.mode == "residual":
            return self.head(self.act(self.body(h)) + h)
        if self.mode == "inplace":
            z = self.body(h)
            z.mul_(0.5)
            return self.head(self.act(z))
        if self.mode == "detach_":
            z = self.body(h)
            z.detach_()
            return self.head(self.act(z))
        if self.mode == "no_grad":
            with torch.no_grad():
                z = self.body(h)
            return self.head(self.act(z))
        if self.mode == "squeeze":
            return self.head(self.act(self.body(h))).squeeze(-1)
        if self.mode == "batch_dependent":  # a different computation for batches of > 1 row
            z = self.act(self.body(h))
            return self.head(z if x.shape[0] == 1 else z * 3.0)
        if self.mode == "batch_of_3":  # another computation for batches of exactly 3 rows
            z = self.act(self.body(h))
            return self.head(z * 3.0 if x.shape[0] == 3 else z)
        raise AssertionError(self.mode)


def test_custom_forward_in_its_own_order_stays_structured(caplog) -> None:
    model = _Net("reordered")
    assert STRUCTURED in _kernel(model, X, caplog)
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


@pytest.mark.parametrize(
    "mode",
    ["scaled", "functional", "residual", "inplace", "detach_", "no_grad", "squeeze"]
    + ["batch_dependent"],
)
def test_custom_forward_with_extra_operations_falls_back(mode: str, caplog) -> None:
    model = _Net(mode)
    log = _kernel(model, X, caplog)
    assert FALLBACK in log
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


def test_instance_level_forward_falls_back(caplog) -> None:
    model = _mlp(nn.ReLU(), nn.ReLU())
    model[1].forward = lambda x: torch.relu(x) * 2.0
    log = _kernel(model, X, caplog)
    assert "its own forward method" in log
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))


def test_nested_sequentials_with_shared_objects(caplog) -> None:
    act = nn.LeakyReLU(0.1)
    block = nn.Sequential(_lin(8, 8, bias=True, seed=2), act, nn.Identity())
    model = nn.Sequential(nn.Sequential(_lin(4, 8, seed=1), act), block, nn.Sequential(_lin(8, 3)))
    assert STRUCTURED in _kernel(model, X, caplog)
    _assert_agree(ib.empirical_ntk(model, X), _autograd_ntk(model, X))
    shared_block = nn.Sequential(_lin(4, 8, seed=1), act, block, act, block, _lin(8, 1))
    assert "applied twice" in _kernel(shared_block, X, caplog)


def test_homogeneous_mlp_inside_a_sequential(caplog) -> None:
    mlp = ib.HomogeneousMLP(4, [6, 5], 3, seed=0, dtype=DT)
    model = nn.Sequential(nn.Flatten(), mlp, nn.ReLU(), _lin(3, 1))
    Z = X.reshape(10, 2, 2)
    assert STRUCTURED in _kernel(model, Z, caplog)
    hooked = ib.HomogeneousMLP(4, [6, 5], seed=0, dtype=DT)
    hooked.layers[1].register_forward_hook(lambda m, i, o: -o)
    log = _kernel(hooked, X, caplog)
    assert "model.layers[1] has a forward hook" in log
    _assert_agree(ib.empirical_ntk(hooked, X), _autograd_ntk(hooked, X))


# ---------------------------------------------------------------------------------- wrappers
def test_symmetrized_shared_activation_mlp(caplog) -> None:
    act = nn.ReLU()
    sym = ib.symmetrize(_mlp(act, act))
    with torch.no_grad():
        sym.negative[2].weight.mul_(1.3)  # the copies apart: K = K₊ + K₋
    log = _kernel(sym, X, caplog)
    assert "structured route for model.positive" in log
    assert "structured route for model.negative" in log
    _assert_agree(ib.empirical_ntk(sym, X), _autograd_ntk(sym, X))


@pytest.mark.parametrize("where", ["symmetrized", "inside"])
def test_symmetrized_with_a_hook(where: str, caplog) -> None:
    sym = ib.symmetrize(_mlp(nn.ReLU(), nn.ReLU()))
    with torch.no_grad():
        sym.negative[0].weight.mul_(0.7)
    target = sym if where == "symmetrized" else sym.negative[1]
    target.register_forward_hook(lambda m, i, o: 1.5 * o)
    log = _kernel(sym, X, caplog)
    assert FALLBACK in log
    _assert_agree(ib.empirical_ntk(sym, X), _autograd_ntk(sym, X))


def test_symmetrized_tied_model_and_homogeneous_wrapper(caplog) -> None:
    hidden = _lin(8, 8, seed=2)
    tied = nn.Sequential(_lin(4, 8, seed=1), nn.ReLU(), hidden, nn.ReLU(), hidden, _lin(8, 1))
    sym = ib.symmetrize(tied)
    with torch.no_grad():
        sym.negative[2].weight.mul_(1.2)
    _assert_agree(ib.empirical_ntk(sym, X), _autograd_ntk(sym, X))
    act = nn.ReLU()
    wrapped = ib.Homogeneous(_mlp(act, act), degree=3)
    assert STRUCTURED in _kernel(wrapped, X, caplog)
    _assert_agree(ib.empirical_ntk(wrapped, X), _autograd_ntk(wrapped.model, X))


# ------------------------------------------------------------------------------- conv layers
def test_conv_net_with_shared_activation(caplog) -> None:
    torch.manual_seed(0)
    act = nn.ReLU()
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3, padding=1, bias=False), act, nn.Conv2d(3, 2, 2, stride=2), act,
        nn.Flatten(), _lin(8, 2),
    ).to(DT)  # fmt: skip
    Z = _randn(5, 2, 4, 4, seed=3)
    assert STRUCTURED in _kernel(model, Z, caplog)
    _assert_agree(ib.empirical_ntk(model, Z), _autograd_ntk(model, Z))
    # a convolution as the output layer
    head = nn.Sequential(nn.Conv2d(2, 3, 3, bias=False), act, nn.Flatten()).to(DT)
    assert STRUCTURED in _kernel(head, Z, caplog)


# --------------------------------------------------------------------- blocks and closed forms
def test_small_memory_budget_proves_every_row_first(monkeypatch, caplog) -> None:
    from implicitbias.kernel_regime import ntk

    act = nn.ReLU()
    model = _mlp(act, act, d_out=2)
    Y = _randn(7, 4, seed=8)
    expected = ib.empirical_ntk(model, X, Y, method="jacobian")
    monkeypatch.setattr(ntk, "_FEATURE_BYTES", 8 * 40)  # a few rows per block
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        _assert_agree(ib.empirical_ntk(model, X, Y), expected)
    assert "by a pass over all rows" in caplog.text
    batchy = _Net("batch_dependent")
    log = _kernel(batchy, X, caplog)  # no partial kernel is left behind by the fallback
    assert FALLBACK in log


def test_forward_that_changes_between_blocks_is_an_error_not_a_kernel() -> None:
    # Blocks of 3 rows (chunk_size=3 < n2): every row is proven first, in larger chunks; the
    # blocks then see another computation. The kernel is undefined: say so, never mix routes.
    model = _Net("batch_of_3")
    with pytest.raises(RuntimeError, match="changed between two passes"):
        ib.empirical_ntk(model, X, _randn(7, 4, seed=8), chunk_size=3)


def _rows_after_first_scaled(out: torch.Tensor) -> torch.Tensor:
    scale = torch.ones(out.shape[0], *[1] * (out.ndim - 1), dtype=out.dtype)
    scale[1:] = 1.5
    return out * scale


@pytest.mark.parametrize("layer", ["linear", "conv"])
def test_layer_arithmetic_is_checked_on_every_row(layer: str, monkeypatch, caplog) -> None:
    # A patched class forward that is right on the first row (where the whole chain is
    # replayed) and wrong on the others: the per-row (Freivalds) check must catch it.
    torch.manual_seed(0)
    if layer == "linear":
        cls, model, Z = nn.Linear, _mlp(nn.ReLU(), nn.ReLU()), X
    else:
        model = nn.Sequential(nn.Conv2d(2, 3, 2), nn.ReLU(), nn.Flatten(), _lin(27, 1)).to(DT)
        cls, Z = nn.Conv2d, _randn(6, 2, 4, 4, seed=3)
    original = cls.forward
    monkeypatch.setattr(cls, "forward", lambda self, x: _rows_after_first_scaled(original(self, x)))
    log = _kernel(model, Z, caplog)
    assert FALLBACK in log and ("does not compute" in log)
    _assert_agree(ib.empirical_ntk(model, Z), _autograd_ntk(model, Z))


def test_closed_forms_need_their_own_forward(caplog) -> None:
    net = ib.DiagonalNet(4, dtype=DT)
    with torch.no_grad():
        net.u.copy_(_randn(4, seed=1))
    net.register_forward_hook(lambda m, i, o: 3.0 * o)
    log = _kernel(net, X, caplog)
    assert "closed form not used" in log
    _assert_agree(ib.empirical_ntk(net, X), _autograd_ntk(net, X))
    tied = ib.DiagonalNet(4, dtype=DT)
    tied.v = tied.u  # f ≡ 0: K ≡ 0, not the closed form's 2·D²·u^(2D-2)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        K = ib.empirical_ntk(tied, X)
    assert "one tensor (tied)" in caplog.text
    torch.testing.assert_close(K, torch.zeros(10, 10, dtype=DT), rtol=0, atol=0)
    with pytest.raises(InvalidArgumentError, match=r"'method'.*one tensor \(tied\)"):
        ib.empirical_ntk(tied, X, method="closed_form")


# ---------------------------------------------------------------------------------- consumers
def test_fallback_is_logged_under_the_package_logger(caplog) -> None:
    hidden = _lin(8, 8, seed=2)
    tied = nn.Sequential(_lin(4, 8, seed=1), nn.ReLU(), hidden, nn.ReLU(), hidden, _lin(8, 1))
    with caplog.at_level(logging.DEBUG, logger="implicitbias"):
        ib.empirical_ntk(tied, X)
    records = [r for r in caplog.records if r.name.startswith("implicitbias")]
    assert any(
        r.levelno == logging.DEBUG and FALLBACK in r.getMessage() and "tied" in r.getMessage()
        for r in records
    )


def test_float32_shared_activation_stays_structured(caplog) -> None:
    act = nn.ReLU()
    model = _mlp(act, act, d_out=2).float()
    Z = X.float()
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=LOGGER):
        K = ib.empirical_ntk(model, Z)
    assert STRUCTURED in caplog.text
    reference = ib.empirical_ntk(model.double(), X, method="jacobian")
    torch.testing.assert_close(K.double(), reference, rtol=0, atol=1e-4 * reference.abs().max())


def test_plain_models_keep_the_fast_route(caplog) -> None:
    for model in (
        ib.HomogeneousMLP(4, [8, 8], seed=0, dtype=DT),
        _mlp(nn.ReLU(), nn.ReLU()),
        ib.mirror_init(_mlp(nn.ReLU(), nn.ReLU())),
    ):
        log = _kernel(model, X, caplog)
        assert STRUCTURED in log and FALLBACK not in log


def test_ntk_predictor_and_kkt_get_the_guard() -> None:
    act = nn.ReLU()
    shared = _mlp(act, act)
    separate = _mlp(nn.ReLU(), nn.ReLU())  # the same weights, separate activation objects
    y = torch.where(separate(X).reshape(-1) > 0, 1.0, -1.0).numpy()
    pred_shared = ib.ntk_predictor(shared, X, y)
    pred_separate = ib.ntk_predictor(separate, X, y)
    _assert_agree(pred_shared.kernel, pred_separate.kernel)
    Z = _randn(4, 4, seed=9)
    _assert_agree(pred_shared.cross_kernel(Z), ib.empirical_ntk(separate, Z, X, method="jacobian"))
    r_shared = ib.kkt_residuals(shared, X, y, degree=3)
    r_separate = ib.kkt_residuals(separate, X, y, degree=3)
    assert abs(r_shared.epsilon_rel - r_separate.epsilon_rel) <= 1e-8 * r_separate.epsilon_rel


# ------------------------------------------------------------------------------------ property
@st.composite
def _architectures(draw: st.DrawFn) -> tuple[nn.Module, torch.Tensor]:
    """A bias-free nn.Sequential of random depth and widths; activations drawn from ReLU,
    LeakyReLU and Identity, each either a fresh object or one already used; possibly a square
    layer applied twice (tied); possibly a forward hook (scaling, or a no-op) on any module."""
    seed = draw(st.integers(0, 2**16))
    d_in, d_out = draw(st.integers(1, 4)), draw(st.integers(1, 3))
    widths = draw(st.lists(st.integers(1, 6), min_size=1, max_size=3))
    kinds = {"relu": nn.ReLU, "leaky": lambda: nn.LeakyReLU(0.3), "identity": nn.Identity}
    pool: dict[str, nn.Module] = {}

    def activation() -> nn.Module:
        kind = draw(st.sampled_from(sorted(kinds)))
        if kind not in pool or not draw(st.booleans()):
            pool[kind] = kinds[kind]()
        return pool[kind]  # a fresh object, or one shared with an earlier position

    layers: list[nn.Module] = []
    sizes = [d_in, *widths]
    for k in range(len(widths)):
        layers += [_lin(sizes[k], sizes[k + 1], seed=seed + k), activation()]
    if draw(st.booleans()):  # a tied layer: the same square nn.Linear applied twice
        square = _lin(sizes[-1], sizes[-1], seed=seed + 50)
        layers += [square, activation(), square, activation()]
    layers.append(_lin(sizes[-1], d_out, seed=seed + 99))
    model = nn.Sequential(*layers)
    hook = draw(st.sampled_from(["none", "none", "scale", "noop"]))
    if hook != "none":
        target = layers[draw(st.integers(0, len(layers) - 1))]
        scale = 1.5 if hook == "scale" else None
        target.register_forward_hook(lambda m, i, o: None if scale is None else scale * o)
    return model, _randn(5, d_in, seed=seed + 1)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(_architectures())
def test_property_default_route_equals_jacobian(arch) -> None:
    model, Z = arch
    K = ib.empirical_ntk(model, Z)
    reference = ib.empirical_ntk(model, Z, method="jacobian")
    atol = 1e-10 * max(float(reference.abs().max()), 1e-300)
    torch.testing.assert_close(K, reference, rtol=0, atol=atol)
    torch.testing.assert_close(K, _autograd_ntk(model, Z), rtol=0, atol=atol)


@pytest.mark.parametrize("consumer", ["empirical_ntk", "ntk_predictor", "kkt_residuals", "train"])
def test_a_hook_on_the_homogeneous_wrapper_itself_is_refused(consumer: str) -> None:
    """Every route evaluates the wrapped module, so a hook registered on the ib.Homogeneous
    wrapper would be skipped silently: each consumer refuses it, naming `model`."""
    torch.manual_seed(0)
    X = torch.randn(12, 4, dtype=torch.float64)
    net = nn.Sequential(
        nn.Linear(4, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False)
    ).double()
    h = ib.Homogeneous(net, degree=2)
    y = torch.sign(h(X).detach().reshape(-1))
    h.register_forward_hook(lambda mod, inp, out: 2 * out)
    calls = {
        "empirical_ntk": lambda: ib.empirical_ntk(h, X),
        "ntk_predictor": lambda: ib.ntk_predictor(h, X, y),
        "kkt_residuals": lambda: ib.kkt_residuals(h, X, y),
        "train": lambda: ib.train(h, X, y, weight_decay=0.1, lr=0.1, steps=2),
    }
    with pytest.raises(ib.InvalidArgumentError, match=r"'model' argument of .*without hooks"):
        calls[consumer]()
