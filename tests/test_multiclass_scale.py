"""Kernel-regime multiclass at scale: the K ⊗ I_C structure (detected, never assumed), the
working-set route of multiclass_kernel_svm, and ntk_predictor(task="multiclass") on it.

Every answer is compared with an independent one: today's dense route on the full
(nC, nC) kernel, a cvxpy solve of the primal in an explicit feature space, or the full
multi-output NTK computed by empirical_ntk.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import implicitbias as ib
from implicitbias import InvalidArgumentError, NotSeparableError
from implicitbias.experiments import data
from implicitbias.kernel_regime._kron_ntk import kron_ntk

RTOL = 1e-8  # two exact solvers of the same problem


def _features(n: int, r: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, r))


def _labels(n: int, C: int, seed: int) -> np.ndarray:
    y = np.random.default_rng(seed + 1).integers(0, C, size=n)
    y[:C] = np.arange(C)  # every class present
    return y


def _rbf(n: int, seed: int) -> np.ndarray:
    X = np.random.default_rng(seed).standard_normal((n, 5))
    sq = np.sum(X**2, axis=1)
    return np.exp(-np.maximum(sq[:, None] + sq[None, :] - 2 * X @ X.T, 0.0) / 5.0)


def _dense(K: np.ndarray, y: np.ndarray, C: int) -> ib.MulticlassKernelSVMResult:
    """Today's route: the whole (nC, nC) kernel and the dense pair matrix."""
    return ib.multiclass_kernel_svm(np.kron(K, np.eye(C)), y, solver="active-set")


def _assert_same(res: ib.MulticlassKernelSVMResult, ref: ib.MulticlassKernelSVMResult) -> None:
    np.testing.assert_allclose(res.objective, ref.objective, rtol=RTOL)
    np.testing.assert_allclose(res.dual_objective, ref.dual_objective, rtol=RTOL)
    np.testing.assert_allclose(res.margin, ref.margin, rtol=RTOL)
    top = float(np.max(ref.dual))
    np.testing.assert_allclose(res.dual, ref.dual, rtol=RTOL, atol=RTOL * top)
    np.testing.assert_allclose(
        res.svm_dual, ref.svm_dual, rtol=RTOL, atol=RTOL * float(np.max(ref.svm_dual))
    )
    np.testing.assert_array_equal(res.support, ref.support)


def _certified(res: ib.MulticlassKernelSVMResult, tol: float = 1e-9) -> None:
    """The results vocabulary: feasible, dual feasible, zero gap (docs/results.md)."""
    assert res.status == "optimal"
    assert res.max_violation <= tol
    assert res.kkt_residual <= tol
    assert res.duality_gap >= -1e-12 * res.objective
    assert res.relative_gap <= tol
    assert np.all(res.dual >= 0)


# --------------------------------------------------------------------------------------------
# multiclass_kernel_svm(K, y, structure="kron") equals the dense route on K ⊗ I_C
# --------------------------------------------------------------------------------------------
KERNELS = {
    "rbf": lambda n, s: _rbf(n, s),  # full rank
    "features-r>n": lambda n, s: (lambda F: F @ F.T)(_features(n, 3 * n, s)),
    "features-r<n": lambda n, s: (lambda F: F @ F.T)(_features(n, n // 2, s)),
}


@pytest.mark.parametrize("kind", list(KERNELS))
@pytest.mark.parametrize(("n", "C"), [(30, 4), (45, 9)])
def test_kron_equals_dense_route(kind: str, n: int, C: int) -> None:
    K = KERNELS[kind](n, 3)
    y = _labels(n, C, 3)
    ref = _dense(K, y, C)
    res = ib.multiclass_kernel_svm(K, y, n_classes=C, structure="kron")
    assert res.structure == "kron" and res.solver == "working-set"
    _assert_same(res, ref)
    _certified(res)
    # predictions on new points: (m, n) per-class cross kernel vs the (mC, nC) full one
    Kx = KERNELS[kind](n + 7, 3)[n:, :n] if kind == "rbf" else None
    if Kx is None:
        F = _features(n, 3 * n if kind == "features-r>n" else n // 2, 3)
        Fx = np.random.default_rng(9).standard_normal((7, F.shape[1]))
        Kx = Fx @ F.T
    scores = res.decision_function(Kx)
    full = ref.decision_function(np.kron(Kx, np.eye(C)))
    np.testing.assert_allclose(scores, full, rtol=RTOL, atol=RTOL * float(np.max(np.abs(full))))
    np.testing.assert_array_equal(res.predict(Kx), ref.predict(np.kron(Kx, np.eye(C))))


def test_kron_matches_cvxpy_primal() -> None:
    """Independent reference: the primal min 1/2 ||H||^2 s.t. (F H)_{i y_i} - (F H)_{ic} >= 1
    in the explicit feature space (K = F F^T), solved by cvxpy."""
    cp = pytest.importorskip("cvxpy")
    n, C, r = 24, 5, 40
    F = _features(n, r, 21)
    y = _labels(n, C, 21)
    H = cp.Variable((r, C))
    S = F @ H
    cons = [S[i, y[i]] - S[i, c] >= 1 for i in range(n) for c in range(C) if c != y[i]]
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(H)), cons).solve(solver="CLARABEL")
    res = ib.multiclass_kernel_svm(F @ F.T, y, n_classes=C, structure="kron")
    np.testing.assert_allclose(res.objective, np.linalg.norm(H.value), rtol=1e-6)
    # h = sum_{i,b} coef_ib phi_b(x_i): column b of H is F^T coef[:, b]
    np.testing.assert_allclose(F.T @ res.coef, H.value, atol=1e-5 * np.abs(H.value).max())


def test_working_set_must_grow() -> None:
    # 60 x 14 = 840 pairs, more than the first working set (8 random classes per example)
    n, C = 60, 15
    K = _rbf(n, 4)
    y = _labels(n, C, 4)
    res = ib.multiclass_kernel_svm(K, y, n_classes=C, structure="kron")
    ref = _dense(K, y, C)
    _assert_same(res, ref)
    # pairs were added to the first working set, and not all pairs were ever needed
    assert 8 * n < res.constraints_touched < n * (C - 1)
    assert ref.constraints_touched == n * (C - 1)


def test_full_kernel_working_set_route() -> None:
    """The general K_full route with working sets of dense blocks equals the dense route."""
    rng = np.random.default_rng(8)
    n, C = 40, 12
    Phi = rng.standard_normal((n * C, 3 * n * C))  # a multi-output kernel that is not K ⊗ I
    K_full = Phi @ Phi.T
    y = _labels(n, C, 8)
    ref = ib.multiclass_kernel_svm(K_full, y, solver="active-set")
    res = ib.multiclass_kernel_svm(K_full, y, solver="working-set")
    assert res.structure == "full"
    _assert_same(res, ref)
    _certified(res)
    assert res.constraints_touched < n * (C - 1)


def test_working_set_budget_refused_for_full_kernel() -> None:
    rng = np.random.default_rng(8)
    n, C = 40, 12
    Phi = rng.standard_normal((n * C, 2 * n * C))
    y = _labels(n, C, 8)
    with pytest.raises(ib.SolverError, match="memory_budget"):
        ib.multiclass_kernel_svm(Phi @ Phi.T, y, solver="working-set", memory_budget=10**5)


@pytest.mark.parametrize("budget", [2 * 2**30, 3 * 10**5])
def test_low_rank_kernel_singular_faces(budget: int) -> None:
    """Rank 12 per class (60 independent pair directions, 160 pairs): the first faces are
    singular. With room for dense blocks they are solved there; without (3e5 bytes), by the
    structured monotone loop's zero-curvature rays. Both give the dense route's answer."""
    n, C = 40, 5
    F = _features(n, 12, 12)
    y = _labels(n, C, 12)
    ref = _dense(F @ F.T, y, C)
    res = ib.multiclass_kernel_svm(F @ F.T, y, n_classes=C, structure="kron", memory_budget=budget)
    np.testing.assert_allclose(res.objective, ref.objective, rtol=RTOL)
    np.testing.assert_allclose(res.margin, ref.margin, rtol=RTOL)
    np.testing.assert_allclose(F.T @ res.coef, F.T @ ref.coef, rtol=1e-7, atol=1e-9)  # same h
    _certified(res)


@pytest.mark.parametrize("budget", [2 * 2**30, 3 * 10**5])
def test_not_separable_with_certificate(budget: int) -> None:
    """A duplicated input with another label: a >= 0, sum(a) = 1 with sum a_ic z_ic = 0."""
    n, C = 40, 5
    F = _features(n, 60, 1)
    y = _labels(n, C, 1)
    F2 = np.vstack([F, F[:1]])
    y2 = np.append(y, (y[0] + 1) % C)
    K = F2 @ F2.T
    with pytest.raises(NotSeparableError, match="not separable") as info:
        ib.multiclass_kernel_svm(K, y2, n_classes=C, structure="kron", memory_budget=budget)
    a = info.value.certificate
    assert a.shape == (n + 1, C)
    assert np.all(a >= 0) and np.all(a[np.arange(n + 1), y2] == 0)
    np.testing.assert_allclose(a.sum(), 1.0, rtol=1e-12)
    coef = -a.copy()
    coef[np.arange(n + 1), y2] = a.sum(axis=1)
    value = float(np.sqrt(max(np.sum(coef * (K @ coef)), 0.0)))  # ||sum a z||
    radius = float(np.sqrt(2 * np.max(np.diag(K))))
    assert value <= 1e-7 * radius
    assert info.value.certificate_norm <= 1e-7 * info.value.radius


@settings(max_examples=8, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=25),
    C=st.integers(min_value=2, max_value=7),
    seed=st.integers(min_value=0, max_value=10**6),
    scale=st.sampled_from([1e-6, 1.0, 1e6]),
)
def test_kron_fuzz_equals_dense(n: int, C: int, seed: int, scale: float) -> None:
    K = _rbf(n, seed) * scale
    y = np.random.default_rng(seed).integers(0, C, size=n)
    ref = _dense(K, y, C)
    res = ib.multiclass_kernel_svm(K, y, n_classes=C, structure="kron")
    _assert_same(res, ref)


# --------------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------------
F_ = "multiclass_kernel_svm"


def _arg(name: str, func: str = F_) -> str:
    return rf"The '{name}' argument of {func}\b"


def test_kron_needs_n_classes() -> None:
    with pytest.raises(InvalidArgumentError, match=_arg("n_classes") + ".*structure='kron'"):
        ib.multiclass_kernel_svm(np.eye(3), np.array([0, 1, 0]), structure="kron")


def test_kron_refuses_the_full_kernel() -> None:
    K = _rbf(4, 0)
    y = np.array([0, 1, 2, 0])
    with pytest.raises(
        InvalidArgumentError, match=_arg("K_full") + r".*\(4, 4\).*shape \(12, 12\)"
    ):
        ib.multiclass_kernel_svm(np.kron(K, np.eye(3)), y, n_classes=3, structure="kron")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"structure": "kronecker"}, "structure"),
        ({"solver": "working_set"}, "solver"),
        ({"memory_budget": 0}, "memory_budget"),
        ({"memory_budget": 1.5e9}, "memory_budget"),
    ],
)
def test_bad_options(kwargs: dict, name: str) -> None:
    with pytest.raises((InvalidArgumentError, ib.InvalidArgumentTypeError), match=_arg(name)):
        ib.multiclass_kernel_svm(np.eye(3), np.array([0, 1, 2]), n_classes=3,
                                 **{"structure": "kron", **kwargs})  # fmt: skip


def test_dense_route_refused_over_budget() -> None:
    K = _rbf(30, 0)
    y = _labels(30, 4, 0)
    with pytest.raises(InvalidArgumentError, match=_arg("memory_budget") + ".*working-set"):
        ib.multiclass_kernel_svm(K, y, n_classes=4, structure="kron", solver="active-set",
                                 memory_budget=10**5)  # fmt: skip


def test_kron_result_refuses_full_cross_kernel() -> None:
    res = ib.multiclass_kernel_svm(np.eye(2), np.array([0, 1]), n_classes=3, structure="kron")
    name = "MulticlassKernelSVMResult.decision_function"
    with pytest.raises(InvalidArgumentError, match=_arg("K_full_new_train", name) + ".*kron"):
        res.decision_function(np.eye(6))


def test_kron_refuses_indefinite_kernel() -> None:
    K = np.array([[1.0, 2.0], [2.0, 1.0]])
    with pytest.raises(InvalidArgumentError, match=_arg("K_full") + ".*positive semidefinite"):
        ib.multiclass_kernel_svm(K, np.array([0, 1]), n_classes=3, structure="kron")


# --------------------------------------------------------------------------------------------
# detection of K ⊗ I_C on networks, and ntk_predictor
# --------------------------------------------------------------------------------------------
D, C_OUT, N = 6, 4, 9


def _x(n: int = N, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, D, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


def _mlp(zero: bool, bias: bool = True) -> nn.Module:
    net = ib.HomogeneousMLP(D, [16], C_OUT, first_layer_bias=bias, seed=0, dtype=torch.float64)
    return ib.zero_last_layer(net) if zero else net


def _seq(zero: bool) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(D, 16), nn.ReLU(), nn.Linear(16, C_OUT)).double()
    if zero:
        with torch.no_grad():
            net[2].weight.zero_()
    return net


def _frozen_features() -> nn.Module:
    net = _seq(zero=False)
    net[0].requires_grad_(False)  # only the last layer trains: a random-features model
    return net


def _hooked() -> nn.Module:
    net = _mlp(zero=True)
    net.layers[1].register_forward_hook(lambda m, i, o: 2 * o)
    return net


def _act_after_last() -> nn.Module:
    net = _seq(zero=True)
    return nn.Sequential(net, nn.ReLU())


def _kron_of(K_full: torch.Tensor, n: int, m: int) -> torch.Tensor:
    return K_full.reshape(m, C_OUT, n, C_OUT)[:, 0, :, 0]


KRON = {
    "mlp-zero-last": lambda: _mlp(zero=True),
    "mlp-zero-last-no-bias": lambda: _mlp(zero=True, bias=False),
    "sequential-biases-zero-last": lambda: _seq(zero=True),
    "symmetrized-zero-last": lambda: ib.symmetrize(_mlp(zero=True)),
    "homogeneous-wrapper": lambda: ib.Homogeneous(_mlp(zero=True)),
    "only-last-layer-trains": _frozen_features,
}
NOT_KRON = {
    "symmetrized-nonzero-last": lambda: ib.symmetrize(_mlp(zero=False)),
    "biases-nonzero-last": lambda: _seq(zero=False),
    "mirror-init": lambda: ib.mirror_init(_mlp(zero=False)),
    "forward-hook": _hooked,
    "activation-after-last": _act_after_last,
}


@pytest.mark.parametrize("name", list(KRON))
def test_detection_yes_equals_empirical_ntk(name: str) -> None:
    model = KRON[name]()
    X, Xn = _x(), _x(5, seed=1)
    K, why = kron_ntk(model, X, None, C_OUT)
    assert K is not None, why
    full = ib.empirical_ntk(model, X)
    torch.testing.assert_close(full, torch.kron(K, torch.eye(C_OUT, dtype=K.dtype)), rtol=1e-12,
                               atol=1e-12)  # fmt: skip
    Kc, _ = kron_ntk(model, Xn, X, C_OUT)
    assert Kc is not None
    cross = ib.empirical_ntk(model, Xn, X)
    torch.testing.assert_close(cross, torch.kron(Kc, torch.eye(C_OUT, dtype=K.dtype)), rtol=1e-12,
                               atol=1e-12)  # fmt: skip


@pytest.mark.parametrize("name", list(NOT_KRON))
def test_detection_no(name: str) -> None:
    model = NOT_KRON[name]()
    X = _x()
    K, why = kron_ntk(model, X, None, C_OUT)
    assert K is None and why
    full = ib.empirical_ntk(model, X)
    # and indeed (except for the hooked net, refused because it cannot be proven) the full
    # kernel is not K ⊗ I_C
    if name != "forward-hook":
        K0 = _kron_of(full, N, N)
        assert not torch.allclose(full, torch.kron(K0, torch.eye(C_OUT, dtype=full.dtype)))


def _modular(p: int = 7) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
    Dm = data.modular_addition_data(p, train_fraction=0.6, seed=0)
    return (
        torch.tensor(Dm.X_train, dtype=torch.float64),
        Dm.y_train,
        torch.tensor(Dm.X_test, dtype=torch.float64),
    )


def test_ntk_predictor_kron_equals_full_route() -> None:
    X, y, Xt = _modular()
    net = ib.zero_last_layer(
        ib.HomogeneousMLP(14, [64], 7, first_layer_bias=True, seed=0, dtype=torch.float64)
    )
    kron = ib.ntk_predictor(net, X, y, task="multiclass")
    full = ib.ntk_predictor(net, X, y, task="multiclass", structure="full")
    assert kron.structure == "kron" and full.structure == "full"
    assert kron.kernel.shape == (X.shape[0], X.shape[0])
    assert full.kernel.shape == (7 * X.shape[0], 7 * X.shape[0])
    np.testing.assert_allclose(kron.margin, full.margin, rtol=RTOL)
    np.testing.assert_allclose(kron.norm, full.norm, rtol=RTOL)
    np.testing.assert_allclose(kron.coef, full.coef, rtol=RTOL, atol=RTOL * np.abs(full.coef).max())
    a, b = kron.decision_function(Xt).numpy(), full.decision_function(Xt).numpy()
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * np.abs(b).max())
    assert torch.equal(kron.predict(Xt), full.predict(Xt))
    assert kron.cross_kernel(Xt).shape == (Xt.shape[0], X.shape[0])


def test_ntk_predictor_auto_uses_full_kernel_when_not_kron() -> None:
    X, y, _ = _modular()
    net = ib.symmetrize(
        ib.HomogeneousMLP(14, [32], 7, first_layer_bias=True, seed=0, dtype=torch.float64)
    )
    pred = ib.ntk_predictor(net, X, y, task="multiclass")
    assert pred.structure == "full"
    assert pred.kernel.shape == (7 * X.shape[0], 7 * X.shape[0])


def test_ntk_predictor_kron_refused_when_not_proven() -> None:
    X, y, _ = _modular()
    net = ib.HomogeneousMLP(14, [32], 7, seed=0, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match=_arg("structure", "ntk_predictor") + ".*zero"):
        ib.ntk_predictor(net, X, y, task="multiclass", structure="kron")


def test_ntk_predictor_bad_structure_options() -> None:
    X, y, _ = _modular()
    net = _mlp(zero=True)
    Xb = torch.randn(5, D, dtype=torch.float64)
    with pytest.raises(InvalidArgumentError, match=_arg("structure", "ntk_predictor")):
        ib.ntk_predictor(net, Xb, [1, -1, 1, -1, 1], structure="kron")
    with pytest.raises(InvalidArgumentError, match=_arg("solver_options", "ntk_predictor")):
        ib.ntk_predictor(net, Xb, [0, 1, 2, 3, 0], task="multiclass",
                         solver_options={"structure": "full"})  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=_arg("solver_options", "ntk_predictor")):
        ib.ntk_predictor(net, Xb, [0, 1, 2, 3, 0], task="multiclass",
                         solver_options={"n_classes": 9})  # fmt: skip


def test_ntk_predictor_full_kernel_over_budget_is_refused() -> None:
    X, y, _ = _modular()
    net = ib.symmetrize(ib.HomogeneousMLP(14, [16], 7, seed=0, dtype=torch.float64))
    with pytest.raises(InvalidArgumentError, match=_arg("model", "ntk_predictor") + ".*not zero"):
        ib.ntk_predictor(net, X, y, task="multiclass", solver_options={"memory_budget": 10**5})


def test_modular_addition_p31_certified() -> None:
    """A paper-like size (p = 31, 40% of the pairs: n = 384, C = 31, 11,520 pairs) with the
    kernel of a width-256 network at a last-layer-zero init: certified, and the working set
    touches a fraction of the pairs."""
    Dm = data.modular_addition_data(31, train_fraction=0.4, seed=0)
    X = torch.tensor(Dm.X_train, dtype=torch.float64)
    net = ib.zero_last_layer(
        ib.HomogeneousMLP(62, [256], 31, first_layer_bias=True, seed=0, dtype=torch.float64)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = ib.ntk_predictor(net, X, Dm.y_train, task="multiclass")
    res = pred.solution
    assert pred.structure == "kron"
    _certified(res)
    assert res.constraints_touched < 0.8 * 384 * 30
    np.testing.assert_array_equal(pred.predict(X), Dm.y_train)  # the kernel fits the data


def test_chunking_loop_when_pivoting_does_not_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The safe route (working-set rounds, each solved exactly) gives the same answer when the
    fast global pivoting gives up at once."""
    from implicitbias.kernel_regime import _multiclass_ws as ws

    def give_up(pairs, W, *args, **kwargs):  # type: ignore[no-untyped-def]
        return ws._PivotOutcome(None, (np.zeros((pairs.n, pairs.C)), 0.0), 0, 0, W)

    monkeypatch.setattr(ws, "_global_pivot", give_up)
    n, C = 60, 15
    K = _rbf(n, 6)
    y = _labels(n, C, 6)
    res = ib.multiclass_kernel_svm(K, y, n_classes=C, structure="kron")
    _assert_same(res, _dense(K, y, C))
    assert 8 * n < res.constraints_touched < n * (C - 1)


def test_multiclass_result_answers_in_the_type_it_is_asked_in() -> None:
    X = torch.randn(60, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    labels = ((X[:, 0] > 0).long() + (X[:, 1] > 0).long()).numpy()
    net = ib.zero_last_layer(ib.HomogeneousMLP(5, [64], d_out=3, seed=0, dtype=torch.float64))
    K = ib.empirical_ntk(net, X, trace=True) / 3
    res = ib.multiclass_kernel_svm(K.numpy(), labels, n_classes=3, structure="kron")
    scores_np, scores_t = res.decision_function(K.numpy()), res.decision_function(K)
    assert isinstance(scores_np, np.ndarray) and isinstance(scores_t, torch.Tensor)
    np.testing.assert_array_equal(scores_t.numpy(), scores_np)
    classes = res.predict(K)
    assert isinstance(classes, torch.Tensor) and classes.dtype == torch.int64
    np.testing.assert_array_equal(classes.numpy(), labels)  # separable: all training points right
