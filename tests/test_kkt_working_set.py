"""The working-set route of kkt_residuals (issue 13): the same ε, δ and ε_min as the dense route
and as an explicit NNLS over all constraints, on models a researcher would bring."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import scipy.optimize
import torch
from torch import nn

import implicitbias as ib
from implicitbias._lawson_hanson import lawson_hanson
from implicitbias.kkt import _pivoting, _working_set

F64 = torch.float64
RTOL = 1e-6  # the agreement target (float64 models)


# --------------------------------------------------------------------------- helpers
def _multiclass(seed: int = 0, n: int = 40, d: int = 6, C: int = 5, width: int = 16):
    net = ib.HomogeneousMLP(d, [width], d_out=C, first_layer_bias=True, seed=seed, dtype=F64)
    X = torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed + 1))
    y = net(X).detach().numpy().argmax(1)
    return net, X, y


def _binary(seed: int = 0, n: int = 50, d: int = 5, width: int = 20):
    net = ib.HomogeneousMLP(d, [width], seed=seed, dtype=F64)
    X = torch.randn(n, d, dtype=F64, generator=torch.Generator().manual_seed(seed + 1))
    y = np.sign(net(X).detach().numpy())
    return net, X, y


def explicit_eps_min(model: nn.Module, X: torch.Tensor, y: np.ndarray) -> float:
    """‖θ̃ − Gμ‖ of scipy's NNLS on the explicit columns of all constraints at θ̃."""
    h = ib.Homogeneous(model, example_input=X)
    L = h.degree
    J = h.jacobian(X).to(F64).numpy()
    out = h(X).detach().to(F64).numpy()
    theta = h.theta().to(F64).numpy()
    if out.ndim == 1:
        q = y * out
        cols = (J * y[:, None]).T
    else:
        n, C = out.shape
        pairs = [(i, j) for i in range(n) for j in range(C) if j != y[i]]
        q = np.array([out[i, y[i]] - out[i, j] for i, j in pairs])
        cols = np.stack([J[i, y[i]] - J[i, j] for i, j in pairs], axis=1)
    scale = q.min() ** (-1.0 / L)
    _, rnorm = scipy.optimize.nnls(cols * scale ** (L - 1), theta * scale, maxiter=50 * q.size)
    return float(rnorm)


def both_routes(model, X, y, **kw):
    dense = ib.kkt_residuals(model, X, y, nnls_route="dense", **kw)
    ws = ib.kkt_residuals(model, X, y, nnls_route="working_set", **kw)
    assert dense.nnls_route == "dense" and ws.nnls_route == "working_set"
    assert dense.constraints_touched == dense.n_constraints
    assert 0 < ws.constraints_touched <= ws.n_constraints
    return dense, ws


def assert_same(dense, ws, rtol: float = RTOL, *, unique: bool = True) -> None:
    np.testing.assert_allclose(ws.epsilon_min, dense.epsilon_min, rtol=rtol)
    np.testing.assert_allclose(ws.epsilon_rel, dense.epsilon_rel, rtol=rtol)
    np.testing.assert_allclose(ws.epsilon, dense.epsilon, rtol=rtol)
    scale = max(dense.delta, 1e-12 * dense.rescaled_theta_norm)
    np.testing.assert_allclose(ws.delta, dense.delta, rtol=rtol, atol=rtol * scale)
    assert ws.active_threshold == dense.active_threshold
    if unique:  # the multipliers are unique when the active gradients are independent
        np.testing.assert_allclose(ws.multipliers, dense.multipliers, rtol=1e-4, atol=1e-8)


# --------------------------------------------------------------------------- agreement
@pytest.mark.parametrize("seed", [0, 1])
def test_multiclass_matches_dense_and_explicit_nnls(seed: int) -> None:
    net, X, y = _multiclass(seed)
    dense, ws = both_routes(net, X, y, weight_decay=0.01)
    assert dense.n_constraints == 40 * 4
    assert_same(dense, ws)
    np.testing.assert_allclose(ws.epsilon_min, explicit_eps_min(net, X, y), rtol=RTOL)
    # route (b) multipliers (dense over all pairs): evaluated directly, same numbers
    np.testing.assert_allclose(ws.wd_epsilon, dense.wd_epsilon, rtol=RTOL)
    np.testing.assert_allclose(ws.wd_delta, dense.wd_delta, rtol=RTOL)
    np.testing.assert_allclose(ws.stationarity_residual, dense.stationarity_residual, rtol=RTOL)


def test_binary_matches_dense_and_explicit_nnls() -> None:
    net, X, y = _binary()
    dense, ws = both_routes(net, X, y)
    assert_same(dense, ws)
    np.testing.assert_allclose(ws.epsilon_min, explicit_eps_min(net, X, y), rtol=RTOL)


def test_paper_size_modular_addition_net_agrees_at_small_p() -> None:
    """The experiment's own data generator and network (first-layer bias), p = 7."""
    from implicitbias.experiments.data import modular_addition_data

    data = modular_addition_data(7, train_fraction=0.6, seed=0)
    X = torch.as_tensor(data.X_train, dtype=F64)
    net = ib.HomogeneousMLP(14, [24], 7, first_layer_bias=True, seed=3, dtype=F64)
    y = net(X).detach().numpy().argmax(1)  # labels the net separates
    dense, ws = both_routes(net, X, y)
    assert dense.n_constraints == X.shape[0] * 6
    assert_same(dense, ws)
    np.testing.assert_allclose(ws.epsilon_min, explicit_eps_min(net, X, y), rtol=RTOL)


@pytest.mark.slow
def test_float32_trained_modular_addition_many_active_pairs_is_exact() -> None:
    """A float32 net trained on modular addition only until it separates the data, far from
    a KKT point (ε_rel ≈ 0.4), with hundreds of pairs in the NNLS support: the working set's
    stopping test must see violations far below float32's crude worst-case bound (a bound of
    ``64·u·(|b| + max Q·Σμ)·√k`` stopped the route 43% above ε_min at p = 31)."""
    from implicitbias.experiments.data import modular_addition_data

    data = modular_addition_data(11, train_fraction=0.7, seed=0)
    X = torch.as_tensor(data.X_train, dtype=torch.float32)
    y = torch.as_tensor(data.y_train)
    net = ib.HomogeneousMLP(22, [48], 11, first_layer_bias=True, seed=0, dtype=torch.float32)
    ib.init.scale_init(net, 2.0)
    ib.init.zero_last_layer(net)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=2e-3)
    for _ in range(4000):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(X), y).backward()
        opt.step()
        if bool((net(X).argmax(1) == y).all()):
            break
    dense, ws = both_routes(net, X, y)
    assert dense.n_constraints == X.shape[0] * 10
    assert dense.epsilon_rel > 0.05  # far from KKT: a large support
    assert int(np.count_nonzero(ws.multipliers)) > 100
    assert_same(dense, ws, unique=False)


class _ExplicitGradients:
    """The interface of ``_gradients.ConstraintGradients`` over explicit gradient rows ``G``
    (float64), declaring a float32 model's unit roundoff: the stopping test of the working
    set, isolated."""

    def __init__(self, G: np.ndarray, point: np.ndarray) -> None:
        self.G = torch.as_tensor(G)
        self.point = torch.as_tensor(point)
        self.p, self.dtype = int(G.shape[1]), torch.float64
        self.unit_roundoff = 2.0**-24

    def rows_of(self, idx: np.ndarray, *, batched: bool = True) -> torch.Tensor:
        return self.G[torch.as_tensor(idx)]

    def pullback(self, coef: np.ndarray) -> torch.Tensor:
        return self.G.T @ torch.as_tensor(coef)

    def directional(self, r: torch.Tensor) -> np.ndarray:
        return (self.G @ r).numpy()


def test_working_set_stops_only_at_the_nnls_optimum_with_a_large_support() -> None:
    """m = 1,500 constraints, ~500 of them in the NNLS support, a float32 model's rounding:
    the working set's answer is the explicit NNLS optimum to 1e-6 (a worst-case stopping bound
    ``64·u·(|b| + max Q·Σμ)·√k`` ends rounds early here, like the 43% error it caused on a
    p = 31 modular-addition net)."""
    from implicitbias.kkt._gram_cache import GramCache
    from implicitbias.kkt._gram_features import GradientRows

    rng = np.random.default_rng(0)
    m, p = 1500, 1200
    G = rng.standard_normal((m, p)) / np.sqrt(p) + 0.3 * rng.standard_normal(p) / np.sqrt(p)
    theta = G.T @ np.abs(rng.standard_normal(m)) + 3.0 * rng.standard_normal(p)  # ε_rel ≈ 0.2
    b = G @ theta
    grads = _ExplicitGradients(G, theta)
    cache = GramCache(GradientRows(grads), m, 2**30, "kkt_residuals")  # type: ignore[arg-type]
    slack = np.maximum(b - b.min(), 0.0)
    solver = _working_set.WorkingSetSolver(grads, cache, b, slack, lambda mu: mu)  # type: ignore[arg-type]
    sol = solver.solve(np.ones(m, dtype=bool))
    eps = float(np.sqrt(max(theta @ theta + 2 * sol.objective, 0.0)))
    _, ref = scipy.optimize.nnls(G.T, theta, maxiter=50 * m)
    assert int(np.count_nonzero(sol.mu)) > 300
    np.testing.assert_allclose(eps, ref, rtol=1e-6)


def test_first_working_set_too_small_must_grow(monkeypatch: pytest.MonkeyPatch) -> None:
    net, X, y = _multiclass(seed=4)
    monkeypatch.setattr(_working_set, "INITIAL_SIZE", 2)
    monkeypatch.setattr(_working_set, "MIN_GROWTH", 3)
    rounds: list[int] = []
    solve = _working_set.WorkingSetSolver.solve

    def spy(self, universe, guess=None):  # noqa: ANN001, ANN202
        res = solve(self, universe, guess)
        rounds.append(res.rounds)
        return res

    monkeypatch.setattr(_working_set.WorkingSetSolver, "solve", spy)
    dense, ws = both_routes(net, X, y)
    assert rounds[0] >= 3  # the full solve grew its working set at least twice
    assert ws.constraints_touched > 2 + 3
    assert_same(dense, ws)


def test_large_working_sets_by_principal_pivoting_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_working_set, "PIVOTING_FROM", 1)
    net, X, y = _multiclass(seed=5, n=60)
    dense, ws = both_routes(net, X, y)
    assert_same(dense, ws)


def test_near_kkt_point_touches_few_constraints() -> None:
    """At an exact KKT point (ℓ1 max-margin diagonal net) only the near-active constraints
    enter a Gram; a generic module (no nn.Linear factors) goes through gradient rows."""
    rng = np.random.default_rng(1)
    X = rng.choice([-1.0, 1.0], size=(80, 20))
    y = np.sign(X[:, 0] + X[:, 1] - X[:, 2] + 0.5)
    w = _l1_max_margin(X, y)
    net = ib.DiagonalNet(20, dtype=F64)
    with torch.no_grad():
        net.u.copy_(torch.tensor(np.sqrt(np.maximum(w, 0.0))))
        net.v.copy_(torch.tensor(np.sqrt(np.maximum(-w, 0.0))))
    Xt = torch.tensor(X)
    dense, ws = both_routes(net, Xt, y)
    assert ws.epsilon_rel <= 1e-8 and ws.delta <= 1e-8
    assert ws.constraints_touched < ws.n_constraints
    np.testing.assert_allclose(ws.epsilon, dense.epsilon, atol=1e-8 * dense.rescaled_theta_norm)


def _l1_max_margin(X: np.ndarray, y: np.ndarray) -> np.ndarray:
    n, d = X.shape
    A = -(y[:, None] * X)
    res = scipy.optimize.linprog(
        np.ones(2 * d),
        A_ub=np.hstack([A, -A]),
        b_ub=-np.ones(n),
        bounds=(0, None),
        method="highs-ds",
        options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10},
    )
    assert res.status == 0
    return res.x[:d] - res.x[d:]


# --------------------------------------------------------------------------- attacks
class _Probe(nn.Module):
    """A layer whose weight is not an nn.Linear's (forces the generic gradient rows)."""

    def __init__(self, d: int, h: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(7)
        self.W = nn.Parameter(torch.randn(h, d, generator=g, dtype=F64) / d**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.W.T


def _sequential(kind: str) -> nn.Module:
    torch.manual_seed(0)
    relu = nn.ReLU()  # one activation object, used at every layer
    if kind == "shared_activation":
        return nn.Sequential(
            nn.Linear(6, 12, bias=False), relu, nn.Linear(12, 12, bias=False), relu,
            nn.Linear(12, 4, bias=False),
        ).double()
    if kind == "layer_used_twice":
        mid = nn.Linear(10, 10, bias=False)
        return nn.Sequential(
            nn.Linear(6, 10, bias=False), relu, mid, relu, mid, relu, nn.Linear(10, 4, bias=False)
        ).double()
    if kind == "generic_module":
        return nn.Sequential(_Probe(6, 12), relu, nn.Linear(12, 4, bias=False)).double()
    if kind == "tied_weights":  # one Parameter in two nn.Linear modules
        a, b = nn.Linear(10, 10, bias=False), nn.Linear(10, 10, bias=False)
        b.weight = a.weight
        return nn.Sequential(
            nn.Linear(6, 10, bias=False), relu, a, relu, b, relu, nn.Linear(10, 4, bias=False)
        ).double()
    if kind == "frozen_bias":
        first = nn.Linear(6, 12)
        first.bias.requires_grad_(False)
        with torch.no_grad():
            first.bias.zero_()
        return nn.Sequential(first, relu, nn.Linear(12, 4, bias=False)).double()
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind",
    ["shared_activation", "layer_used_twice", "generic_module", "tied_weights", "frozen_bias"],
)
def test_module_shapes_agree_with_dense_and_explicit(kind: str) -> None:
    net = _sequential(kind)
    X = torch.randn(30, 6, dtype=F64, generator=torch.Generator().manual_seed(2))
    y = net(X).detach().numpy().argmax(1)
    dense, ws = both_routes(net, X, y)
    assert_same(dense, ws)
    np.testing.assert_allclose(ws.epsilon_min, explicit_eps_min(net, X, y), rtol=RTOL)


class _EmbeddingNet(nn.Module):
    """Modular addition as researchers often write it: embeddings of the integer pair."""

    def __init__(self, p: int) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.embed = nn.Embedding(p, 6)
        self.hidden = nn.Linear(12, 16, bias=False)
        self.out = nn.Linear(16, p, bias=False)

    def forward(self, pairs: torch.Tensor) -> torch.Tensor:
        z = self.embed(pairs).reshape(pairs.shape[0], -1)
        return self.out(torch.relu(self.hidden(z)))


def test_embedding_model_on_integer_pairs() -> None:
    p = 7
    net = _EmbeddingNet(p).double()
    pairs = torch.cartesian_prod(torch.arange(p), torch.arange(p))[::2]
    y = net(pairs).detach().numpy().argmax(1)
    dense, ws = both_routes(net, pairs, y)
    assert dense.degree == 3
    assert_same(dense, ws)


def test_hooks_that_read_values_and_rescale_do_not_change_the_answer() -> None:
    net, X, y = _multiclass(seed=6)
    seen: list[float] = []
    first = net.layers[0]
    h1 = first.register_forward_hook(lambda m, a, out: seen.append(float(out.detach().sum())))
    h2 = first.register_forward_pre_hook(lambda m, a: (a[0] * 1.0,))
    try:
        dense, ws = both_routes(net, X, y)
        ref = explicit_eps_min(net, X, y)
    finally:
        h1.remove()
        h2.remove()
    assert seen  # the hooks ran during the check
    assert_same(dense, ws)
    np.testing.assert_allclose(ws.epsilon_min, ref, rtol=RTOL)


def test_hook_reading_item_forces_the_unbatched_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generic layer with a hook that calls .item(): vmap cannot batch it, the rows are
    computed one by one with autograd, and the answer does not change."""
    from implicitbias.kkt._gradients import ConstraintGradients

    loops = []
    loop = ConstraintGradients._rows_loop

    def spy(self, xs, cot):  # noqa: ANN001, ANN202
        loops.append(xs.shape[0])
        return loop(self, xs, cot)

    monkeypatch.setattr(ConstraintGradients, "_rows_loop", spy)
    net = _sequential("generic_module")
    X = torch.randn(24, 6, dtype=F64, generator=torch.Generator().manual_seed(4))
    y = net(X).detach().numpy().argmax(1)
    ref = ib.kkt_residuals(net, X, y, nnls_route="dense")
    calls = []
    handle = net[0].register_forward_hook(lambda m, a, out: calls.append(out.sum().item()))
    try:
        ws = ib.kkt_residuals(net, X, y, nnls_route="working_set")
    finally:
        handle.remove()
    assert calls and loops  # the hook ran, and the rows fell back to the autograd loop
    assert_same(ref, ws)


@pytest.mark.parametrize("scale", [1e-3, 1e3])
def test_working_set_is_scale_invariant(scale: float) -> None:
    net, X, y = _multiclass(seed=7)
    base = ib.kkt_residuals(net, X, y, nnls_route="working_set")
    with torch.no_grad():
        for prm in net.parameters():
            prm.mul_(scale)
    scaled = ib.kkt_residuals(net, X, y, nnls_route="working_set")
    np.testing.assert_allclose(scaled.epsilon_rel, base.epsilon_rel, rtol=RTOL)
    np.testing.assert_allclose(scaled.delta, base.delta, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(scaled.rescaled_theta_norm, base.rescaled_theta_norm, rtol=1e-8)


def test_float32_model_agrees_with_dense_and_float64_reference() -> None:
    net, X, y = _multiclass(seed=2)
    ref = ib.kkt_residuals(net, X, y, nnls_route="dense")
    net32 = net.float()
    X32 = X.float()
    y32 = net32(X32).detach().numpy().argmax(1)
    assert np.array_equal(y32, y)
    dense, ws = both_routes(net32, X32, y)
    assert_same(dense, ws, rtol=1e-3)
    # the working set computes in float64 when the module allows it
    np.testing.assert_allclose(ws.epsilon_min, ref.epsilon_min, rtol=1e-4)
    assert net32.layers[0].weight.dtype == torch.float32  # the model is left as it was


def test_duplicate_examples_and_tied_constraints() -> None:
    """Identical rows of X give identical (dependent) constraints: a singular Gram."""
    net, X, y = _multiclass(seed=3, n=20)
    X2 = torch.cat([X, X[:10]])
    y2 = np.concatenate([y, y[:10]])
    dense, ws = both_routes(net, X2, y2)
    assert_same(dense, ws, unique=False)
    np.testing.assert_allclose(ws.epsilon_min, explicit_eps_min(net, X2, y2), rtol=RTOL)
    # a duplicate's weight may sit on either copy; their sums are unique
    def folded(m: np.ndarray) -> np.ndarray:
        return np.concatenate([m[:10] + m[20:], m[10:20]])

    np.testing.assert_allclose(
        folded(ws.multipliers), folded(dense.multipliers), rtol=1e-4, atol=1e-8
    )


def test_duplicates_with_principal_pivoting_fall_back(monkeypatch, caplog) -> None:  # noqa: ANN001
    monkeypatch.setattr(_working_set, "PIVOTING_FROM", 1)
    net, X, y = _binary(seed=2, n=30)
    X2 = torch.cat([X, X])
    y2 = np.concatenate([y, y])
    with caplog.at_level(logging.DEBUG, logger="implicitbias.kkt"):
        dense, ws = both_routes(net, X2, y2)
    assert_same(dense, ws, unique=False)
    assert "Lawson-Hanson takes over" in caplog.text


def test_non_separating_model_raises_on_the_working_set_route() -> None:
    net, X, y = _multiclass(seed=0)
    y = y.copy()
    y[:3] = (y[:3] + 1) % 5
    with pytest.raises(ib.InvalidArgumentError, match=r"'model' argument of kkt_residuals"):
        ib.kkt_residuals(net, X, y, nnls_route="working_set")


def test_model_is_left_untouched() -> None:
    net, X, y = _multiclass(seed=1)
    before = [p.detach().clone() for p in net.parameters()]
    ib.kkt_residuals(net, X, y, nnls_route="working_set")
    for p, q in zip(net.parameters(), before):
        assert torch.equal(p, q) and p.requires_grad


# --------------------------------------------------------------------------- route and budget
def test_auto_route_follows_the_memory_budget() -> None:
    net, X, y = _multiclass(seed=0)
    assert ib.kkt_residuals(net, X, y).nnls_route == "dense"
    # the dense route needs about 8·(3·200² + 5·160²) ≈ 2 MB here
    small = ib.kkt_residuals(net, X, y, memory_budget=2**20)
    assert small.nnls_route == "working_set"
    assert small.constraints_touched <= small.n_constraints


def test_working_set_beyond_the_budget_raises_with_the_bytes_needed() -> None:
    # 2100 constraints; far from KKT the support alone (~215) outgrows √(2**20/40) = 161
    net, X, y = _multiclass(seed=0, n=300, C=8, width=128)
    with pytest.raises(
        ib.InvalidArgumentError,
        match=r"'memory_budget' argument of kkt_residuals must be at least [\d,]+ bytes",
    ) as err:
        ib.kkt_residuals(net, X, y, nnls_route="working_set", memory_budget=2**20)
    # where the working set stood: rounds, support and what was still violated
    assert re.search(r"after \d+ rounds: support [\d,]+, [\d,]+ of 2,100 constraints still "
                     r"violated", str(err.value))  # fmt: skip


def test_tight_budget_evicts_and_still_finds_the_optimum(caplog) -> None:  # noqa: ANN001
    """The Gram may hold only 260 constraints; about 500 must be looked at on the way to a
    support of ~176: inactive ones are evicted (touched > what fits), same answer."""
    net, X, y = _multiclass(seed=0, n=300, C=8, width=64)
    budget = 40 * 260**2
    with caplog.at_level(logging.DEBUG, logger="implicitbias.kkt"):
        ws = ib.kkt_residuals(net, X, y, nnls_route="working_set", memory_budget=budget)
    dense = ib.kkt_residuals(net, X, y, nnls_route="dense")
    assert "evicted" in caplog.text
    assert ws.constraints_touched > 260
    assert_same(dense, ws)


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"memory_budget": True}, ib.InvalidArgumentTypeError, "'memory_budget' argument"),
        ({"memory_budget": "2GB"}, ib.InvalidArgumentTypeError, "'memory_budget' argument"),
        ({"memory_budget": 1000}, ib.InvalidArgumentError, r"at least 2\*\*20 .*got 1000"),
        ({"memory_budget": float("nan")}, ib.InvalidArgumentError, "'memory_budget' argument"),
        ({"memory_budget": -5.0}, ib.InvalidArgumentError, "'memory_budget' argument"),
        ({"nnls_route": "sparse"}, ib.InvalidArgumentError, "'nnls_route' argument"),
    ],
)
def test_bad_budget_and_route_options(kwargs, exc, match) -> None:  # noqa: ANN001
    net, X, y = _multiclass(seed=0, n=8)
    with pytest.raises(exc, match=match):
        ib.kkt_residuals(net, X, y, **kwargs)


def test_regression_has_no_working_set_route() -> None:
    net = ib.HomogeneousMLP(3, [8], seed=0, dtype=F64)
    X = torch.randn(10, 3, dtype=F64, generator=torch.Generator().manual_seed(0))
    y = np.linspace(-1.0, 2.0, 10)
    with pytest.raises(ib.InvalidArgumentError, match=r"'nnls_route' argument of kkt_residuals"):
        ib.kkt_residuals(net, X, y, task="regression", nnls_route="working_set")
    rep = ib.kkt_residuals(net, X, y, task="regression", memory_budget=2**20)
    assert rep.nnls_route == "dense" and rep.constraints_touched == 10


# --------------------------------------------------------------------------- the solvers
@pytest.mark.parametrize(("n", "p"), [(40, 80), (150, 300), (120, 60)])
def test_principal_pivoting_matches_scipy_nnls(n: int, p: int) -> None:
    rng = np.random.default_rng(n)
    A = rng.standard_normal((p, n))
    t = rng.standard_normal(p) + A @ np.abs(rng.standard_normal(n)) * 0.2
    Q, b = A.T @ A, A.T @ t
    x, _, status = _pivoting.principal_pivoting(Q, b)
    _, rnorm = scipy.optimize.nnls(A, t)
    if n > p:  # rank-deficient: singular passive blocks are reported, not solved wrongly
        assert status in ("singular", "optimal")
        if status == "singular":
            return
    assert status == "optimal"
    assert np.all(x >= 0)
    np.testing.assert_allclose(np.linalg.norm(t - A @ x), rnorm, rtol=1e-10)
    ref, _, _ = lawson_hanson(Q, b, np.ones(n, dtype=bool), tol=None, max_iter=10 * n + 10)
    np.testing.assert_allclose(x, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("dtype", "tol"), [(np.float64, 1e-10), (np.float32, 1e-5)])
def test_passive_factor_reuses_its_prefix_and_stays_exact(dtype: type, tol: float) -> None:
    # exact to the factor's own precision (float32: the mixed-precision default, refined in
    # float64 by principal_pivoting)
    rng = np.random.default_rng(3)
    A = rng.standard_normal((50, 30))
    Q = A.T @ A
    f = _pivoting.PassiveFactor(Q, dtype=dtype)
    F = np.zeros(30, dtype=bool)
    for step in range(6):
        F ^= rng.random(30) < 0.3
        assert f.update(F)
        L = f.L.astype(np.float64)
        assert f.L.dtype == dtype
        idx = f.order
        scale = float(np.abs(Q).max())
        np.testing.assert_allclose(L @ L.T, Q[np.ix_(idx, idx)], rtol=tol, atol=tol * scale)
        assert set(idx.tolist()) == set(np.flatnonzero(F).tolist()), step


def test_principal_pivoting_float32_factor_refines_to_float64_or_switches() -> None:
    # The solution is strictly positive (b = Q x*, x* > 0) and the warm start makes every
    # variable passive: one solve of Q x = b. cond(Q) = 10: the float32 factor plus float64
    # refinement gives the float64 answer. cond(Q) = 1e9: float32 can neither factor nor
    # refine it; the factor switches to float64 and gives the same answer.
    rng = np.random.default_rng(7)
    U, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    x_true = 1.0 + rng.random(60)
    # tolerances: a backward-stable float64 solve, cond·eps up to a modest factor
    for cond, dtype, tol in ((10.0, np.float32, 1e-10), (1e9, np.float64, 1e-5)):
        Q = (U * np.geomspace(1.0, 1.0 / cond, 60)) @ U.T
        Q = 0.5 * (Q + Q.T)
        b = Q @ x_true
        ref, _, st_ref = _pivoting.principal_pivoting(
            Q, b, x0=np.ones(60), factor=_pivoting.PassiveFactor(Q, dtype=np.float64)
        )
        f32 = _pivoting.PassiveFactor(Q)
        x, _, st = _pivoting.principal_pivoting(Q, b, x0=np.ones(60), factor=f32)
        assert st == st_ref == "optimal"
        assert f32.dtype == dtype
        np.testing.assert_allclose(x, ref, rtol=tol)
        np.testing.assert_allclose(x, x_true, rtol=tol)
