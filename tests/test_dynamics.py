"""train: GD against the hand formula and torch SGD, flow against closed forms, histories,
checkpoints and resume, interrupts, determinism, and bad configurations."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import torch
from torch import nn

import implicitbias as ib
from implicitbias import InvalidArgumentError, InvalidArgumentTypeError
from implicitbias.dynamics import History, TrainResult, log_schedule, train

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    """These problems are tiny: intra-op threads only add synchronization (and, on a loaded
    machine, scheduler waits of milliseconds per operation)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sparse_data(n: int, d: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (n, d), generator=g).to(DT) * 2 - 1
    y = torch.sign(X[:, 0] - X[:, 1] + X[:, 2])
    return X, y


def _diag(d: int, alpha: float = 4.0) -> ib.DiagonalNet:
    return ib.DiagonalNet(d, alpha=alpha, alpha_mode="norm", dtype=DT)


def _same(a: History, b: History, rtol: float = 0.0) -> None:
    """Histories equal column by column, apart from wall-clock time."""
    assert a.columns == b.columns
    assert len(a) == len(b)
    for c in a.columns:
        if c != "wall_time":
            np.testing.assert_allclose(a[c], b[c], rtol=rtol, atol=0.0, err_msg=c)


# ---------------------------------------------------------------------------- GD
def test_gd_one_step_matches_hand_formula() -> None:
    X, y = _sparse_data(12, 7)
    net = ib.DiagonalNet(7, alpha=0.7, dtype=DT)
    with torch.no_grad():
        net.u.add_(0.1 * torch.arange(7, dtype=DT))
    u, v = net.u.detach().clone(), net.v.detach().clone()
    lam, eta = 0.03, 0.2
    res = train(net, X, y, weight_decay=lam, lr=eta, steps=1)
    # by hand: f = X(u²−v²), r_i = ℓ'(f_i) = −y_i σ(−y_i f_i), ∇_u = 2u⊙Xᵀr/n, ∇_v = −2v⊙Xᵀr/n
    f = X @ (u**2 - v**2)
    r = -y * torch.sigmoid(-y * f)
    gu = 2 * u * (X.T @ r) / 12
    gv = -2 * v * (X.T @ r) / 12
    expect = torch.cat([u - eta * (gu + lam * u), v - eta * (gv + lam * v)])
    torch.testing.assert_close(res.model.theta(), expect, rtol=1e-13, atol=1e-15)
    assert (res.t_final, res.steps_equivalent, res.grad_evals, res.iterations) == (eta, 1.0, 1, 1)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_gd_matches_torch_sgd_with_weight_decay(loss: str) -> None:
    X, y = _sparse_data(16, 10)
    lam, eta, k = 0.05, 0.1, 7
    ref = ib.HomogeneousMLP(10, [6], seed=0, dtype=DT)
    net = ib.HomogeneousMLP(10, [6], seed=0, dtype=DT)
    opt = torch.optim.SGD(ref.parameters(), lr=eta, weight_decay=lam)
    ell = ib.loss_function(loss)
    for _ in range(k):
        opt.zero_grad()
        ell(ref(X), y).backward()
        opt.step()
    res = train(net, X, y, loss=loss, weight_decay=lam, lr=eta, steps=k)
    torch.testing.assert_close(
        res.model.theta(), ib.Homogeneous(ref).theta(), rtol=1e-12, atol=1e-14
    )


def test_gd_history_columns_and_schedule() -> None:
    X, y = _sparse_data(16, 10)
    res = train(_diag(10), X, y, weight_decay=0.01, lr=0.05, steps=300, num_evals=30)
    h = res.history
    assert isinstance(res, TrainResult) and res.status == "completed" and not res.interrupted
    assert h.columns == [
        "t",
        "step",
        "rescaled_time",
        "grad_evals",
        "train_loss",
        "objective",
        "train_acc",
        "theta_norm",
        "normalized_margin",
        "wall_time",
    ]
    expect_t = log_schedule(300 * 0.05, 30, step=0.05)
    np.testing.assert_allclose(h["t"], expect_t, rtol=1e-15)
    np.testing.assert_allclose(h["step"], np.round(expect_t / 0.05), rtol=1e-12)
    np.testing.assert_array_equal(h["grad_evals"], h["step"])  # one gradient per GD step
    assert h["step"][-1] == 300 and res.grad_evals == 300
    # t = 0: zero output, loss log 2, accuracy 1/2 (f = 0 counts half), norm α
    assert h["train_loss"][0] == pytest.approx(math.log(2))
    assert h["train_acc"][0] == 0.5
    assert h["theta_norm"][0] == pytest.approx(4.0)
    # objective = loss + λ/2 ‖θ‖², rescaled time = t λ / log α with α = ‖θ(0)‖ by default
    np.testing.assert_allclose(h["objective"], h["train_loss"] + 0.005 * h["theta_norm"] ** 2)
    np.testing.assert_allclose(h["rescaled_time"], h["t"] * 0.01 / math.log(4.0))
    assert np.all(np.diff(h["wall_time"]) >= 0)


def test_explicit_eval_times_and_alpha() -> None:
    X, y = _sparse_data(16, 10)
    times = [0.0, 0.25, 1.0, 2.0]
    for method in ("gd", "flow"):
        res = train(
            _diag(10),
            X,
            y,
            weight_decay=0.1,
            lr=0.05,
            t_max=2.0,
            eval_times=times,
            method=method,
            alpha=math.e,
        )
        np.testing.assert_allclose(res.history["t"], times, rtol=1e-14)
        np.testing.assert_allclose(res.history["rescaled_time"], 0.1 * np.array(times), rtol=1e-14)
        assert res.t_final == pytest.approx(2.0, rel=1e-14)


# ---------------------------------------------------------------------------- flow
@pytest.mark.parametrize("integrator", ["bs32", "dopri5"])
def test_flow_linear_least_squares_matches_expm(integrator: str, gen: torch.Generator) -> None:
    # f(θ; x) = ⟨θ, x⟩, squared loss: dθ/dt = −Aθ + b, A = (2/n)XᵀX + λI, b = (2/n)Xᵀy, so
    # θ(t) = θ* + e^{−At}(θ0 − θ*) with θ* = A⁻¹b.
    n, d, lam = 20, 6, 0.1
    X = torch.randn(n, d, generator=gen, dtype=DT)
    y = torch.randn(n, generator=gen, dtype=DT)
    lin = nn.Linear(d, 1, bias=False).to(DT)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(1, d, generator=gen, dtype=DT))
    theta0 = lin.weight.detach().reshape(-1).numpy().copy()
    model = ib.Homogeneous(lin, degree=1)
    times = np.array([0.0, 0.01, 0.3, 1.0, 2.5, 7.0])
    res = train(
        model,
        X,
        y,
        loss="squared",
        weight_decay=lam,
        method="flow",
        lr=1e-3,
        t_max=7.0,
        eval_times=times,
        rtol=1e-8 if integrator == "bs32" else 1e-9,  # global error ≈ 0.02·rtol measured
        atol=1e-12,
        integrator=integrator,
    )
    Xn, yn = X.numpy(), y.numpy()
    A = 2 / n * Xn.T @ Xn + lam * np.eye(d)
    b = 2 / n * Xn.T @ yn
    star = np.linalg.solve(A, b)

    def exact(t: float) -> np.ndarray:
        return star + scipy.linalg.expm(-A * t) @ (theta0 - star)

    mse = [np.mean((Xn @ exact(t) - yn) ** 2) for t in times]
    norms = [np.linalg.norm(exact(t)) for t in times]
    np.testing.assert_allclose(res.history["train_mse"], mse, rtol=1e-7)
    np.testing.assert_allclose(res.history["theta_norm"], norms, rtol=1e-7)
    np.testing.assert_allclose(res.model.theta().numpy(), exact(7.0), rtol=1e-7, atol=1e-10)
    assert "train_acc" not in res.history and "normalized_margin" not in res.history
    assert res.grad_evals < 6000  # 3rd / 5th order at rtol 1e-8 / 1e-9


def test_flow_pure_weight_decay_is_exponential() -> None:
    # zero data gradient (all-zero inputs): dθ/dt = −λθ, θ(t) = e^{−λt}θ(0)
    X = torch.zeros(4, 5, dtype=DT)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=DT)
    res = train(
        _diag(5, 3.0),
        X,
        y,
        weight_decay=0.5,
        method="flow",
        lr=0.01,
        t_max=10.0,
        rtol=1e-8,
        atol=1e-14,
        integrator="dopri5",
    )
    np.testing.assert_allclose(
        res.history["theta_norm"], 3.0 * np.exp(-0.5 * res.history["t"]), rtol=1e-6
    )
    assert res.iterations < 200  # 5th order: h ≈ 0.05 at rtol = 1e-8


def _test_accuracy(Xt: torch.Tensor, yt: torch.Tensor):
    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        with torch.no_grad():
            out = model(Xt)
        return {"test_acc": float(((yt * out > 0).to(DT) + 0.5 * (out == 0).to(DT)).mean())}

    return metrics


def test_flow_agrees_with_gd_on_sparse_diagonal_net() -> None:
    # Reduced grokking instance (THEORY §6.1): kernel phase ~69% test accuracy, rich phase ~100%.
    n, d, log_alpha, lam, eta = 32, 100, 2.5, 0.05, 0.01
    X, y = _sparse_data(n + 2000, d)
    metrics = _test_accuracy(X[n:], y[n:])
    t_max = 2 * log_alpha / lam  # two transition times
    runs = {}
    for method in ("gd", "flow"):
        net = _diag(d, math.exp(log_alpha))
        runs[method] = train(
            net,
            X[:n],
            y[:n],
            weight_decay=lam,
            lr=eta,
            t_max=t_max,
            method=method,
            num_evals=60,
            metrics=metrics,
        )
    gd, flow = runs["gd"].history, runs["flow"].history
    np.testing.assert_array_equal(gd["t"], flow["t"])
    deviation = np.abs(gd["test_acc"] - flow["test_acc"])
    assert deviation.max() <= 0.02, deviation.max()
    # the instance shows the transition (so the agreement is not trivial)
    assert gd["test_acc"][len(gd) // 3] < 0.8 and gd["test_acc"][-1] > 0.95
    assert runs["gd"].grad_evals == 10_000
    assert runs["gd"].grad_evals >= 50 * runs["flow"].grad_evals, runs["flow"].grad_evals


def test_flow_lands_on_default_schedule_and_counts_evaluations() -> None:
    X, y = _sparse_data(16, 10)
    res = train(_diag(10), X, y, weight_decay=0.05, method="flow", lr=0.05, steps=400, num_evals=25)
    np.testing.assert_array_equal(res.history["t"], log_schedule(20.0, 25, step=0.05))
    assert res.history["grad_evals"][-1] == res.grad_evals
    # FSAL: 1 initial evaluation + 3 per attempted step of Bogacki–Shampine
    assert res.grad_evals == 1 + 3 * (res.iterations + res.n_rejected)
    assert res.steps_equivalent == pytest.approx(400)


@pytest.mark.parametrize("loss", ["logistic", "exponential"])
def test_flow_stays_finite_at_large_alpha(loss: str) -> None:
    X, y = _sparse_data(16, 20)
    res = train(
        _diag(20, 1e4),
        X,
        y,
        loss=loss,
        weight_decay=0.1,
        method="flow",
        lr=0.01,
        t_max=2 * math.log(1e4) / 0.1,
        num_evals=20,
    )
    assert res.status == "completed"
    table = np.column_stack([res.history[c] for c in res.history.columns])
    assert np.all(np.isfinite(table))
    assert res.history["train_acc"][-1] == 1.0


def test_gd_divergence_is_reported() -> None:
    X, y = _sparse_data(16, 20)
    with pytest.warns(RuntimeWarning, match="diverged"):
        res = train(
            _diag(20, 1e4),
            X,
            y,
            loss="exponential",
            weight_decay=0.1,
            lr=10.0,
            steps=50,
            num_evals=50,
        )
    assert res.status == "diverged"


def test_cross_entropy_and_regression_models_train(gen: torch.Generator) -> None:
    X = torch.randn(24, 5, generator=gen, dtype=DT)
    classes = torch.randint(0, 3, (24,), generator=gen)
    net = ib.HomogeneousMLP(5, [16], d_out=3, seed=0, dtype=DT)
    res = train(
        net,
        X,
        classes,
        loss="cross_entropy",
        weight_decay=1e-3,
        method="flow",
        lr=0.1,
        t_max=5.0,
        num_evals=10,
    )
    assert res.history["train_loss"][-1] < res.history["train_loss"][0]
    assert "normalized_margin" in res.history
    mf = ib.MatrixFactorization(4, alpha=1.0, dtype=DT)
    idx = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 0]])
    target = torch.tensor([0.5, -0.2, 0.1, 1.0], dtype=DT)
    res = train(
        mf,
        idx,
        target,
        loss="squared",
        weight_decay=1e-3,
        method="flow",
        lr=0.01,
        t_max=20.0,
        num_evals=10,
    )
    assert res.history["train_mse"][-1] < 1e-2 * res.history["train_mse"][0]


# ---------------------------------------------------------------------------- files, resume
def test_history_file_and_sidecar(tmp_path: Path) -> None:
    X, y = _sparse_data(16, 10)
    path = tmp_path / "run.csv"
    res = train(
        _diag(10), X, y, weight_decay=0.05, lr=0.05, steps=100, num_evals=12, history_path=path
    )
    assert History.from_csv(path) == res.history
    side = json.loads((tmp_path / "run.json").read_text())
    assert side["status"] == "completed" and side["config"]["weight_decay"] == 0.05
    assert side["grad_evals"] == 100


def test_keyboard_interrupt_returns_partial_result(tmp_path: Path) -> None:
    X, y = _sparse_data(16, 10)
    calls = []

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(t)
        return {"calls": float(len(calls))}

    for method in ("gd", "flow"):
        calls.clear()
        path = tmp_path / f"{method}.csv"
        res = train(
            _diag(10),
            X,
            y,
            weight_decay=0.05,
            lr=0.05,
            steps=200,
            num_evals=20,
            metrics=metrics,
            method=method,
            history_path=path,
        )
        assert res.interrupted and res.status == "interrupted"
        assert len(res.history) == 5
        assert History.from_csv(path) == res.history
        assert json.loads((tmp_path / f"{method}.json").read_text())["status"] == "interrupted"


@pytest.mark.parametrize("method", ["gd", "flow"])
@pytest.mark.parametrize("every", [None, 0.7])
def test_resume_continues_the_same_trajectory(
    tmp_path: Path, method: str, every: float | None
) -> None:
    X, y = _sparse_data(16, 10)
    kw = dict(
        weight_decay=0.05, lr=0.05, steps=600, num_evals=30, method=method, checkpoint_every=every
    )

    def metrics_factory(stop_after: int | None):
        count = [0]

        def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
            if stop_after is not None and count[0] == stop_after:
                raise KeyboardInterrupt
            count[0] += 1
            return {"u0": float(model.model.u[0].detach())}

        return metrics

    full = train(_diag(10), X, y, metrics=metrics_factory(None), **kw)
    ckpt = tmp_path / "run.pt"
    csv_path = tmp_path / "run.csv"
    part = train(
        _diag(10),
        X,
        y,
        metrics=metrics_factory(17),
        checkpoint_path=ckpt,
        history_path=csv_path,
        **kw,
    )
    assert part.interrupted and len(part.history) == 17
    saved = torch.load(ckpt, weights_only=True)
    assert saved["eval_index"] <= 17 and saved["theta"].shape == (20,)
    rest = train(
        _diag(10),
        X,
        y,
        metrics=metrics_factory(None),
        checkpoint_path=ckpt,
        history_path=csv_path,
        resume=True,
        **kw,
    )
    assert rest.status == "completed"
    _same(rest.history, full.history, rtol=1e-12)
    _same(History.from_csv(csv_path), full.history, rtol=1e-12)
    torch.testing.assert_close(rest.model.theta(), full.model.theta(), rtol=1e-12, atol=0.0)
    assert rest.grad_evals == full.grad_evals
    assert rest.iterations == full.iterations and rest.n_rejected == full.n_rejected


def test_resume_rejects_another_configuration(tmp_path: Path) -> None:
    X, y = _sparse_data(16, 10)
    ckpt = tmp_path / "run.pt"
    train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=20, checkpoint_path=ckpt)
    with pytest.raises(InvalidArgumentError, match="weight_decay"):
        train(
            _diag(10), X, y, weight_decay=0.1, lr=0.05, steps=20, checkpoint_path=ckpt, resume=True
        )


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_deterministic(method: str) -> None:
    X, y = _sparse_data(16, 10)
    a = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=300, num_evals=20, method=method)
    b = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=300, num_evals=20, method=method)
    _same(a.history, b.history)


def test_progress_bar_runs(capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _sparse_data(8, 5)
    res = train(_diag(5), X, y, weight_decay=0.05, lr=0.05, steps=20, progress=True)
    assert res.status == "completed"


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (
            dict(weight_decay=-0.1, lr=0.1, steps=10),
            r"The 'weight_decay' argument of train must be a non-negative",
        ),
        (
            dict(weight_decay=0.1, lr=0.0, steps=10),
            r"The 'lr' argument of train must be a positive",
        ),
        (
            dict(weight_decay=0.1, lr=0.1),
            r"The 'steps' argument of train must be given, or 't_max'.*neither",
        ),
        (dict(weight_decay=0.1, lr=0.1, steps=10, t_max=1.0), r"'steps'.*got both"),
        (
            dict(weight_decay=0.1, lr=0.1, steps=10, loss="hinge"),
            r"The 'loss' argument of train must be one of",
        ),
        (dict(weight_decay=0.1, lr=0.1, steps=10, method="adam"), r"The 'method' argument"),
        (
            dict(weight_decay=0.1, lr=0.1, steps=10, eval_times=[0.0, 5.0]),
            r"The 'eval_times' argument",
        ),
        (dict(weight_decay=0.1, lr=0.1, steps=10, resume=True), r"The 'checkpoint_path' argument"),
        (dict(weight_decay=0.1, lr=0.1, steps=10, rtol=0.0), r"The 'rtol' argument"),
        (
            dict(weight_decay=0.1, lr=0.1, steps=10, loss="cross_entropy"),
            r"The 'model' argument of train must be a model with C",
        ),
    ],
)
def test_bad_configurations(kwargs: dict, match: str) -> None:
    X, y = _sparse_data(8, 5)
    with pytest.raises(InvalidArgumentError, match=match):
        train(_diag(5), X, y, **kwargs)


def test_zero_one_labels_are_not_converted() -> None:
    X, y = _sparse_data(8, 5)
    with pytest.raises(
        InvalidArgumentError, match=r"The 'y' argument of train .*Convert \{0, 1\} labels"
    ):
        train(_diag(5), X, (y + 1) / 2, weight_decay=0.1, lr=0.1, steps=10)
    with pytest.raises(
        InvalidArgumentError, match=r"The 'y' argument of train must be of length 8"
    ):
        train(_diag(5), X, y[:5], weight_decay=0.1, lr=0.1, steps=10)


def test_bad_types() -> None:
    X, y = _sparse_data(8, 5)
    with pytest.raises(InvalidArgumentTypeError, match="'model' argument of train"):
        train("net", X, y, weight_decay=0.1, lr=0.1, steps=10)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="'metrics' argument of train"):
        train(_diag(5), X, y, weight_decay=0.1, lr=0.1, steps=10, metrics=3)  # type: ignore[arg-type]
    with pytest.raises(
        InvalidArgumentError, match="'metrics' argument of train must be keys other"
    ):
        train(_diag(5), X, y, weight_decay=0.1, lr=0.1, steps=10, metrics=lambda m, t: {"t": 1.0})


def test_resume_rejects_other_data(tmp_path: Path) -> None:
    X, y = _sparse_data(16, 10)
    ckpt = tmp_path / "run.pt"
    train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=20, checkpoint_path=ckpt)
    with pytest.raises(InvalidArgumentError, match="data_fingerprint"):
        train(
            _diag(10),
            X,
            -y,
            weight_decay=0.05,
            lr=0.05,
            steps=20,
            checkpoint_path=ckpt,
            resume=True,
        )


def test_resume_without_checkpoint_file_starts_fresh(tmp_path: Path) -> None:
    X, y = _sparse_data(16, 10)
    a = train(
        _diag(10),
        X,
        y,
        weight_decay=0.05,
        lr=0.05,
        steps=50,
        checkpoint_path=tmp_path / "x.pt",
        resume=True,
    )
    b = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=50)
    _same(a.history, b.history)
    assert (tmp_path / "x.pt").exists()


def test_multi_output_regression_and_json_history_path(
    tmp_path: Path, gen: torch.Generator
) -> None:
    X = torch.randn(12, 4, generator=gen, dtype=DT)
    target = torch.randn(12, 2, generator=gen, dtype=DT)
    net = ib.HomogeneousMLP(4, [], d_out=2, activation="linear", seed=0, dtype=DT)
    path = tmp_path / "run.json"
    res = train(
        net,
        X,
        target,
        loss="squared",
        weight_decay=0.01,
        lr=0.05,
        steps=100,
        num_evals=5,
        history_path=path,
    )
    assert res.history["train_mse"][-1] < res.history["train_mse"][0]
    assert History.from_csv(path) == res.history  # the CSV keeps its given name
    assert json.loads((tmp_path / "run.config.json").read_text())["status"] == "completed"


_KILLED_RUN = """
import os, signal, sys
import torch
import implicitbias as ib
from implicitbias.dynamics import train

torch.set_num_threads(1)
g = torch.Generator().manual_seed(0)
X = torch.randint(0, 2, (16, 10), generator=g).to(torch.float64) * 2 - 1
y = torch.sign(X[:, 0] - X[:, 1] + X[:, 2])
count = [0]

def metrics(model, t):
    count[0] += 1
    if count[0] == 13:
        os.kill(os.getpid(), signal.SIGKILL)  # a hard kill: no cleanup, no exception
    return {"u0": float(model.model.u[0].detach())}

net = ib.DiagonalNet(10, alpha=4.0, alpha_mode="norm", dtype=torch.float64)
train(net, X, y, weight_decay=0.05, lr=0.05, steps=600, num_evals=30, method=sys.argv[1],
      metrics=metrics, history_path=sys.argv[2], checkpoint_path=sys.argv[3], checkpoint_every=1.3)
"""


@pytest.mark.parametrize("method", [pytest.param("gd", marks=pytest.mark.slow), "flow"])
def test_killed_process_leaves_csv_and_resumes(tmp_path: Path, method: str) -> None:
    import subprocess
    import sys

    script = tmp_path / "run.py"
    script.write_text(_KILLED_RUN)
    csv_path, ckpt = tmp_path / "run.csv", tmp_path / "run.pt"
    proc = subprocess.run(
        [sys.executable, str(script), method, str(csv_path), str(ckpt)],
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    on_disk = History.from_csv(csv_path)
    assert len(on_disk) == 12  # every evaluation before the kill was flushed
    assert ckpt.exists()

    X, y = _sparse_data(16, 10)

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        return {"u0": float(model.model.u[0].detach())}

    kw = dict(weight_decay=0.05, lr=0.05, steps=600, num_evals=30, method=method, metrics=metrics)
    full = train(_diag(10), X, y, **kw)
    _same(on_disk, History(rows=[full.history.row(i) for i in range(12)]))
    rest = train(
        _diag(10),
        X,
        y,
        checkpoint_path=ckpt,
        history_path=csv_path,
        resume=True,
        checkpoint_every=1.3,
        **kw,
    )
    _same(rest.history, full.history, rtol=1e-12)
    _same(History.from_csv(csv_path), full.history, rtol=1e-12)
    assert rest.grad_evals == full.grad_evals


def test_default_schedule_is_shared_when_t_max_is_off_the_step_grid() -> None:
    X, y = _sparse_data(16, 10)
    kw = dict(weight_decay=0.05, lr=0.01, t_max=14.554, num_evals=60)
    gd = train(_diag(10), X, y, method="gd", **kw)
    flow = train(_diag(10), X, y, method="flow", **kw)
    assert gd.t_final == pytest.approx(14.55) and flow.t_final == 14.554  # GD: whole steps
    np.testing.assert_array_equal(gd.history["t"], flow.history["t"][:-1])
    assert flow.history["t"][-1] == 14.554


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_ctrl_c_stops_at_a_step_boundary_and_resumes(tmp_path: Path, method: str) -> None:
    import os
    import signal

    X, y = _sparse_data(16, 10)
    kw = dict(weight_decay=0.05, lr=0.05, steps=600, num_evals=30, method=method)
    full = train(_diag(10), X, y, **kw)
    count = [0]

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        count[0] += 1
        if count[0] == 9:
            os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered during the run
        return {}

    ckpt = tmp_path / "run.pt"
    part = train(_diag(10), X, y, metrics=metrics, checkpoint_path=ckpt, **kw)
    assert part.interrupted and len(part.history) == 9  # the evaluation in progress completes
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    rest = train(_diag(10), X, y, checkpoint_path=ckpt, resume=True, **kw)
    _same(rest.history, full.history, rtol=1e-12)


def test_gd_final_state_when_schedule_ends_early() -> None:
    X, y = _sparse_data(16, 10)
    a = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=100, eval_times=[0.0, 0.5])
    b = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=100)
    assert a.t_final == b.t_final == pytest.approx(5.0) and len(a.history) == 2
    torch.testing.assert_close(a.model.theta(), b.model.theta(), rtol=0.0, atol=0.0)


def test_metrics_that_move_the_parameters_do_not_change_gd() -> None:
    X, y = _sparse_data(16, 10)

    def clobber(model: ib.Homogeneous, t: float) -> dict[str, float]:
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(3.0)
        return {}

    a = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=100, metrics=clobber)
    b = train(_diag(10), X, y, weight_decay=0.05, lr=0.05, steps=100)
    _same(a.history, b.history)


def _plain_relu() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(5, 6, bias=False), nn.ReLU(), nn.Linear(6, 1, bias=False), nn.Flatten(0)
    ).to(DT)


def test_plain_module_degree_is_measured_on_X_or_given() -> None:
    X, y = _sparse_data(8, 5)
    res = train(_plain_relu(), X, y, weight_decay=0.1, lr=0.1, steps=5, num_evals=2)
    assert res.model.degree == 2
    given = train(_plain_relu(), X, y, weight_decay=0.1, lr=0.1, steps=5, num_evals=2, degree=2)
    assert given.model.degree == 2
    _same(res.history, given.history)
    with pytest.raises(InvalidArgumentError, match="The 'degree' argument of train"):
        train(_plain_relu(), X, y, weight_decay=0.1, lr=0.1, steps=5, degree=0)

    class Tanh(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = nn.Linear(5, 1, bias=False, dtype=DT)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.tanh(self.lin(x)).squeeze(-1)

    with pytest.raises(ib.NotHomogeneousError, match="train: the model carries no `degree`"):
        train(Tanh(), X, y, weight_decay=0.1, lr=0.1, steps=5)


def test_inputs_the_model_rejects_name_X_with_their_shape(tmp_path: Path) -> None:
    _, y = _sparse_data(8, 5)
    with pytest.raises(
        InvalidArgumentError, match=r"The 'X' argument of train .*got shape \(8, 4\)"
    ):
        train(_diag(5), torch.ones(8, 4, dtype=DT), y, weight_decay=0.1, lr=0.1, steps=5)
    X, _ = _sparse_data(8, 5)
    for name in ("history_path", "checkpoint_path"):
        with pytest.raises(InvalidArgumentTypeError, match=f"The '{name}' argument of train"):
            train(_diag(5), X, y, weight_decay=0.1, lr=0.1, steps=5, **{name: 3})
    assert not list(tmp_path.iterdir())


def test_log_schedule_blames_step_when_it_exceeds_t_max() -> None:
    with pytest.raises(InvalidArgumentError, match="The 'step' argument of log_schedule"):
        log_schedule(1.0, 10, step=5.0)
