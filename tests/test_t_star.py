"""ib.t_star: t* = log(α)/λ, the α convention (α = factor on a base θ̄; read off θ(0) as
‖θ(0)‖₂/‖θ̄‖₂), agreement with the experiments' configs and with train's rescaled time, and bad
input that names the argument."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import implicitbias as ib
from conftest import ARG, TYP, arg
from implicitbias.experiments import ALL_SCALES, EXPERIMENTS, get_experiment
from implicitbias.experiments.configs import ModularConfig

F = "t_star"


# ------------------------------------------------------------------ closed forms by hand
@pytest.mark.parametrize(
    ("alpha", "lam", "want"),
    [
        (math.e, 1.0, 1.0),  # log e = 1
        (math.e**5, 0.5, 10.0),
        (128.0, 1e-3, 1000 * 7 * math.log(2)),  # the paper's sparse-linear setting: 4852.03
        (10.0, 1e-4, 1e4 * math.log(10)),  # matrix completion: U = V = 10·I, λ = 1e-4
        (2, 1, math.log(2)),  # ints
    ],
)
def test_closed_form(alpha: float, lam: float, want: float) -> None:
    assert ib.t_star(alpha, lam) == pytest.approx(want, rel=1e-15)
    assert ib.t_star(alpha=alpha, weight_decay=lam) == ib.t_star(alpha, lam)
    assert type(ib.t_star(alpha, lam)) is float


@pytest.mark.parametrize(
    "alpha",
    [np.float64(128.0), np.float32(128.0), np.int64(128), torch.tensor(128.0), np.array(128.0),
     torch.tensor([128.0], dtype=torch.float64)],
    ids=["np.float64", "np.float32", "np.int64", "0-d tensor", "0-d array", "1-element tensor"],
)
def test_numpy_and_tensor_scalars(alpha: object) -> None:
    assert ib.t_star(alpha, torch.tensor(1e-3, dtype=torch.float64)) == pytest.approx(math.log(128) / 1e-3, rel=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    log_alpha=st.floats(1e-3, 700.0),
    lam=st.floats(1e-12, 1e3),
    k=st.integers(1, 3),
)
def test_identities(log_alpha: float, lam: float, k: int) -> None:
    """λ·t* = log α, and t*(α^k) = k·t*(α) (rescaling θ̄ by a power of α)."""
    alpha = math.exp(log_alpha)
    ts = ib.t_star(alpha, lam)
    assert ts * lam == pytest.approx(log_alpha, rel=1e-12)
    if k * log_alpha < 700:
        assert ib.t_star(alpha**k, lam) == pytest.approx(k * ts, rel=1e-12)


# ------------------------------------------------------------------ reading α off θ(0)
def test_theta0_norm_convention() -> None:
    """DiagonalNet(alpha_mode="norm") has ‖θ(0)‖ = α: reading α off θ(0) gives it back, from
    the module, its flat tensor, a numpy copy and model.parameters()."""
    net = ib.DiagonalNet(300, alpha=128.0, alpha_mode="norm", dtype=torch.float64)
    want = ib.t_star(128.0, 1e-3)
    theta = ib.flat_parameters(net)
    for theta0 in (net, theta, theta.numpy(), net.parameters(), [net.u, net.v]):
        assert ib.t_star(weight_decay=1e-3, theta0=theta0) == pytest.approx(want, rel=1e-14)


@pytest.mark.parametrize("d", [1, 7, 500])
def test_theta0_with_base_norm_recovers_the_scale(d: int) -> None:
    """u = v = α·1 (θ̄ = (1, 1), ‖θ̄‖ = √(2d)) and U = V = α·I (‖θ̄‖ = √(2d)): base_norm gives
    back the model's α; without it α is the initial norm, larger by √(2d)."""
    base = math.sqrt(2 * d)
    diag = ib.DiagonalNet(d, alpha=3.0, dtype=torch.float64)
    mf = ib.MatrixFactorization(d, alpha=3.0, dtype=torch.float64)
    for net in (diag, mf):
        got = ib.t_star(weight_decay=0.1, theta0=net, base_norm=base)
        assert got == pytest.approx(ib.t_star(3.0, 0.1), rel=1e-14)
        assert ib.t_star(weight_decay=0.1, theta0=net) == pytest.approx(
            math.log(3.0 * base) / 0.1, rel=1e-14
        )


def test_theta0_after_scale_init() -> None:
    """scale_init(mode="norm") sets ‖θ‖ = α; mode="scale" multiplies θ̄ by α."""
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(5, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False))
    mlp = mlp.double()
    base = float(ib.flat_parameters(mlp).norm())
    ib.scale_init(mlp, 20.0)
    assert ib.t_star(weight_decay=1e-2, theta0=mlp, base_norm=base) == pytest.approx(
        ib.t_star(20.0, 1e-2), rel=1e-13
    )
    ib.scale_init(mlp, 50.0, mode="norm")
    assert ib.t_star(weight_decay=1e-2, theta0=mlp) == pytest.approx(
        ib.t_star(50.0, 1e-2), rel=1e-13
    )


def test_theta0_counts_trainable_parameters_once() -> None:
    """A tied weight counts once and a frozen one not at all, as train's ‖θ(0)‖ does."""
    lin = nn.Linear(4, 4, bias=False)
    with torch.no_grad():
        lin.weight.fill_(1.0)  # ‖W‖ = 4
    frozen = nn.Linear(4, 4, bias=False)
    frozen.weight.requires_grad_(False)
    with torch.no_grad():
        frozen.weight.fill_(100.0)
    model = nn.ModuleDict({"a": lin, "b": lin, "frozen": frozen})
    assert ib.t_star(weight_decay=1.0, theta0=model) == pytest.approx(math.log(4.0), rel=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32])
def test_theta0_low_precision_and_huge_entries(dtype: torch.dtype) -> None:
    """The norm is taken in float64 without squaring large entries."""
    big = 6e4 if dtype == torch.float16 else 1e30
    theta = torch.full((4,), big, dtype=dtype)
    got = ib.t_star(weight_decay=2.0, theta0=theta)
    assert got == pytest.approx(math.log(2 * float(theta[0])) / 2.0, rel=1e-12)


def test_agrees_with_train_rescaled_time() -> None:
    """train's default α is ‖θ(0)‖₂: its rescaled_time is t / t_star(theta0=θ(0)), with θ(0)
    read before training."""
    torch.manual_seed(0)
    X = torch.randn(6, 5, dtype=torch.float64)
    y = torch.sign(X[:, 0])
    net = ib.DiagonalNet(5, alpha=4.0, dtype=torch.float64)
    ts = ib.t_star(weight_decay=0.05, theta0=net)
    res = ib.train(net, X, y, weight_decay=0.05, lr=0.01, steps=20, num_evals=4, progress=False)
    h = res.history
    np.testing.assert_allclose(h["rescaled_time"], h["t"] / ts, rtol=1e-13, atol=0)
    # after training, θ has shrunk and grown: reading it now gives another number
    assert ib.t_star(weight_decay=0.05, theta0=net) != pytest.approx(ts, rel=1e-6)


# ------------------------------------------------------------------ the experiments' configs
_PRESETS = [(name, scale) for name in EXPERIMENTS for scale in ALL_SCALES]


@pytest.mark.parametrize(("name", "scale"), _PRESETS, ids=[f"{n}-{s}" for n, s in _PRESETS])
def test_experiment_configs_use_t_star(name: str, scale: str) -> None:
    cfg = get_experiment(name).preset(scale)
    if cfg.alpha <= 1 or cfg.weight_decay == 0:
        # no transition (Fig. 2(a): He init ×1; Fig. 4: no weight decay): t* is NaN, never a
        # number, and the horizon is given in GD steps
        assert math.isnan(cfg.t_star)
        assert cfg.steps > 0 and cfg.t_max == cfg.steps * cfg.lr
        with pytest.raises(ib.InvalidArgumentError):
            ib.t_star(cfg.alpha, cfg.weight_decay)
        return
    assert cfg.t_star == ib.t_star(cfg.alpha, cfg.weight_decay)
    assert cfg.t_star == pytest.approx(math.log(cfg.alpha) / cfg.weight_decay, rel=1e-15)
    expected = cfg.steps * cfg.lr if cfg.steps > 0 else cfg.horizon * cfg.t_star
    assert cfg.t_max == expected


@pytest.mark.parametrize("name", ["sparse-linear", "misgrokking", "matrix-completion"])
def test_experiment_models_follow_the_convention(name: str) -> None:
    """The θ(0) each experiment builds has the θ̄ docs/theory.md lists: a unit vector for the
    diagonal nets (α = ‖θ(0)‖), (I, I) for matrix completion (‖θ̄‖ = √(2d))."""
    cfg = get_experiment(name).preset("tiny")
    if name == "matrix-completion":
        net = ib.MatrixFactorization(cfg.d, alpha=cfg.alpha, dtype=torch.float64)
        got = ib.t_star(weight_decay=cfg.weight_decay, theta0=net, base_norm=math.sqrt(2 * cfg.d))
    else:
        net = ib.DiagonalNet(cfg.d, alpha=cfg.alpha, alpha_mode="norm", dtype=torch.float64)
        got = ib.t_star(weight_decay=cfg.weight_decay, theta0=net)
    assert got == pytest.approx(cfg.t_star, rel=1e-13)


def test_modular_config_without_transition_is_nan() -> None:
    """A hand-built modular config at He ×1 (α = 1) has no transition: NaN, as before."""
    assert math.isnan(ModularConfig(p=7).t_star)
    assert ModularConfig(p=7, alpha=4.0).t_star == ib.t_star(4.0, 1e-4)


def test_get_config_refuses_an_overflowing_t_star_under_its_name() -> None:
    with pytest.raises(ARG, match=arg("get_config", "weight_decay") + ".*finite"):
        ib.experiments.get_config("sparse-linear", "tiny", {"weight_decay": 5e-324})


# ------------------------------------------------------------------ bad input
@pytest.mark.parametrize("alpha", [1.0, 0.5, 0.0, -2.0, 1])
def test_alpha_at_most_one(alpha: float) -> None:
    with pytest.raises(ARG, match=arg(F, "alpha") + r" must be a finite number > 1.*per-entry scale"):
        ib.t_star(alpha, 1e-3)


@pytest.mark.parametrize("alpha", [math.inf, math.nan, np.float64("nan")])
def test_alpha_not_finite(alpha: float) -> None:
    with pytest.raises(ARG, match=arg(F, "alpha") + " must be a finite number > 1"):
        ib.t_star(alpha, 1e-3)


@pytest.mark.parametrize(
    "alpha",
    [True, "128", 1 + 2j, torch.tensor([2.0, 3.0]), torch.tensor(5.0 + 0j), [128.0]],
    ids=["bool", "str", "complex", "2-element tensor", "complex tensor", "list"],
)
def test_alpha_wrong_type(alpha: object) -> None:
    with pytest.raises(TYP, match=arg(F, "alpha")):
        ib.t_star(alpha, 1e-3)  # type: ignore[arg-type]


def test_weight_decay_missing() -> None:
    with pytest.raises(ARG, match=arg(F, "weight_decay") + ".*got None.*no transition time"):
        ib.t_star(128.0)


@pytest.mark.parametrize("lam", [0.0, -1e-3, math.inf, math.nan])
def test_weight_decay_not_positive_finite(lam: float) -> None:
    with pytest.raises(ARG, match=arg(F, "weight_decay") + " must be a positive finite number"):
        ib.t_star(128.0, lam)


def test_weight_decay_zero_says_why() -> None:
    with pytest.raises(ARG, match=arg(F, "weight_decay") + ".*Without weight decay"):
        ib.t_star(128.0, 0)


@pytest.mark.parametrize("lam", [False, "1e-3", [1e-3]])
def test_weight_decay_wrong_type(lam: object) -> None:
    with pytest.raises(TYP, match=arg(F, "weight_decay")):
        ib.t_star(128.0, lam)  # type: ignore[arg-type]


def test_weight_decay_so_small_that_t_star_overflows() -> None:
    with pytest.raises(ARG, match=arg(F, "weight_decay") + " must be large enough that t\\* .* is finite"):
        ib.t_star(128.0, 5e-324)


def test_alpha_and_theta0_both_or_neither() -> None:
    net = ib.DiagonalNet(3, alpha=10.0, alpha_mode="norm", dtype=torch.float64)
    with pytest.raises(ARG, match=arg(F, "theta0") + ".*got both alpha and theta0"):
        ib.t_star(10.0, 1e-3, theta0=net)
    with pytest.raises(ARG, match=arg(F, "alpha") + ".*got neither"):
        ib.t_star(weight_decay=1e-3)


def test_theta0_norm_at_most_one_says_read_it_before_training() -> None:
    with pytest.raises(ARG, match=arg(F, "theta0") + r".*α = 0\.5 .*before training"):
        ib.t_star(weight_decay=1e-3, theta0=torch.tensor([0.3, 0.4]))
    # a base norm that makes α ≤ 1
    with pytest.raises(ARG, match=arg(F, "theta0") + r".*base_norm = 1000"):
        ib.t_star(weight_decay=1e-3, theta0=torch.tensor([30.0, 40.0]), base_norm=1000.0)


@pytest.mark.parametrize(
    ("theta0", "match"),
    [
        (torch.zeros(5), "nonzero norm"),
        (torch.tensor([1.0, math.nan]), "finite parameters"),
        (np.array([math.inf, 2.0]), "finite parameters"),
        ([], "non-empty"),
        (torch.zeros(0), "non-empty"),
        (torch.empty(3, device="meta"), "meta"),
    ],
    ids=["zero", "nan", "inf", "empty list", "empty tensor", "meta"],
)
def test_theta0_bad_values(theta0: object, match: str) -> None:
    with pytest.raises(ARG, match=arg(F, "theta0") + ".*" + match):
        ib.t_star(weight_decay=1e-3, theta0=theta0)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "theta0",
    ["weights", {"u": torch.ones(2)}, torch.ones(3, dtype=torch.complex64),
     np.array(["a", "b"]), torch.ones(2, dtype=torch.bool), [torch.ones(2), "w"]],
    ids=["str", "dict", "complex tensor", "str array", "bool tensor", "list with a str"],
)
def test_theta0_wrong_type(theta0: object) -> None:
    with pytest.raises(TYP, match=arg(F, "theta0")):
        ib.t_star(weight_decay=1e-3, theta0=theta0)  # type: ignore[arg-type]


@pytest.mark.parametrize("base_norm", [0.0, -1.0, math.nan, math.inf])
def test_base_norm_not_positive_finite(base_norm: float) -> None:
    with pytest.raises(ARG, match=arg(F, "base_norm")):
        ib.t_star(weight_decay=1e-3, theta0=torch.full((4,), 10.0), base_norm=base_norm)
