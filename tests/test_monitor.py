"""ib.Monitor (issue 14, item 1): the theory's quantities recorded inside any training loop.

- A plain PyTorch loop (torch.optim.SGD with weight_decay, full batch) with ``mon(k, lr)`` gives
  the history ``ib.train(method="gd")`` gives for the same run: same columns, values to
  rounding (train's update and torch's differ in the last bits).
- The extra columns equal the library's independent functions (normalized and smoothed margin,
  kkt_residuals) and hand computations (test accuracy, cosines).
- The sinks: CSV and JSON files read back equal to the history; a TensorBoard event file is
  written and read back; a callable receives each record.
- Monitoring does not change the run, and does no work between schedule points.
- Misuse raises, naming the argument.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import implicitbias as ib
from conftest import tol
from implicitbias import InvalidArgumentError, InvalidArgumentTypeError

DT = torch.float64
RT = tol(DT)


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- instances
class Diag(nn.Module):
    """f(x) = <u⊙u − v⊙v, x>: 2-homogeneous, nonzero at init (so margins are defined)."""

    degree = 2

    def __init__(self, d: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.u = nn.Parameter(0.5 + 0.1 * torch.randn(d, generator=g, dtype=DT))
        self.v = nn.Parameter(0.5 + 0.1 * torch.randn(d, generator=g, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.u * self.u - self.v * self.v)


class MLP(nn.Module):
    """Bias-free ReLU net with C logits: 2-homogeneous (its degree is measured)."""

    def __init__(self, d: int, width: int, c: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a = nn.Parameter(torch.randn(width, d, generator=g, dtype=DT) / d**0.5)
        self.b = nn.Parameter(torch.randn(c, width, generator=g, dtype=DT) / width**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x @ self.a.T) @ self.b.T


def sign_data(n: int = 24, d: int = 8, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (n, d), generator=g).to(DT) * 2 - 1
    return X, torch.sign(X[:, 0] - X[:, 1] + X[:, 2])


def class_data(n: int = 30, d: int = 5, c: int = 3, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=DT)
    return X, torch.randint(0, c, (n,), generator=g)


def reg_data(n: int = 20, d: int = 6, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=g, dtype=DT)
    return X, torch.randn(n, generator=g, dtype=DT)


TORCH_LOSS = {
    "logistic": lambda out, y: F.softplus(-y * out).mean(),
    "exponential": lambda out, y: torch.exp(-y * out).mean(),
    "squared": lambda out, y: ((out - y) ** 2).mean(),
    "cross_entropy": lambda out, y: F.cross_entropy(out, y),
}

CASES = {
    # name: (model factory, data, loss, λ, η, steps, num_evals)
    "logistic": (lambda: Diag(8, 0), sign_data(), "logistic", 0.01, 0.05, 300, 20),
    "exponential": (lambda: Diag(8, 9), sign_data(seed=7), "exponential", 0.02, 0.03, 120, 9),
    "squared": (lambda: Diag(6, 3), reg_data(), "squared", 0.001, 0.02, 150, 12),
    "cross_entropy": (lambda: MLP(5, 7, 3, 4), class_data(), "cross_entropy", 0.003, 0.1, 150, 12),
}


def sgd_loop(model, X, y, loss, lam, lr, steps, mon=None, *, every=1):
    """Full-batch GD as a researcher writes it: torch.optim.SGD with weight_decay = λ."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=lam)
    if mon is not None:
        mon(0, lr)
    for k in range(1, steps + 1):
        opt.zero_grad()
        TORCH_LOSS[loss](model(X), y).backward()
        opt.step()
        if mon is not None and k % every == 0:
            mon(k, lr)
    return model


def assert_same_history(a: ib.History, b: ib.History, rtol: float = 1e-9) -> None:
    assert a.columns == b.columns
    for c in a.columns:
        if c != "wall_time":
            np.testing.assert_allclose(a[c], b[c], rtol=rtol, atol=1e-12, err_msg=c)


# ---------------------------------------------------------------------------- train == loop
@pytest.mark.parametrize("name", list(CASES))
def test_plain_sgd_loop_with_monitor_gives_trains_history(name: str) -> None:
    make, (X, y), loss, lam, lr, steps, num = CASES[name]
    res = ib.train(make(), X, y, loss=loss, weight_decay=lam, lr=lr, steps=steps, num_evals=num)
    model = make()
    mon = ib.Monitor(model, X, y, loss=loss, weight_decay=lam, lr=lr, steps=steps, num_evals=num)
    sgd_loop(model, X, y, loss, lam, lr, steps, mon)
    assert len(mon.history) == len(res.history) > 5
    assert_same_history(mon.history, res.history)
    # the time is t = k·η exactly, as train's
    np.testing.assert_array_equal(mon.history["t"], res.history["t"])
    np.testing.assert_array_equal(mon.times, res.history["t"])


def test_user_metrics_and_alpha_go_through_as_in_train() -> None:
    X, y = sign_data()
    Xt, yt = sign_data(40, seed=5)

    def metrics(model, t):
        with torch.no_grad():
            out = model(Xt)
        return {"test_acc_hand": float((yt * out > 0).to(DT).mean()), "half_t": t / 2}

    kw = dict(weight_decay=0.01, lr=0.05, alpha=3.0, eval_times=np.linspace(0, 6.0, 7))
    res = ib.train(Diag(8, 0), X, y, steps=120, metrics=metrics, **kw)
    model = Diag(8, 0)
    mon = ib.Monitor(model, X, y, metrics=metrics, **kw)
    sgd_loop(model, X, y, "logistic", 0.01, 0.05, 120, mon)
    assert_same_history(mon.history, res.history)
    np.testing.assert_allclose(
        mon.history["rescaled_time"], mon.history["t"] * 0.01 / math.log(3.0), rtol=1e-15
    )


# ---------------------------------------------------------------------------- extra columns
def test_extra_columns_equal_the_librarys_functions_and_hand_computations() -> None:
    X, y = sign_data()
    Xt, yt = sign_data(50, seed=11)
    model = Diag(8, 0)
    theta_ref = torch.randn(16, dtype=DT, generator=torch.Generator().manual_seed(3))
    w_ref = torch.randn(8, dtype=DT, generator=torch.Generator().manual_seed(4))
    mon = ib.Monitor(
        model,
        X,
        y,
        weight_decay=0.01,
        lr=0.05,
        steps=400,
        num_evals=15,
        X_test=Xt,
        y_test=yt,
        baselines={"rich": theta_ref, "lin": lambda Z: Z @ w_ref},
        kkt_evals=3,
        smoothed_margin=True,
    )
    sgd_loop(model, X, y, "logistic", 0.01, 0.05, 400, mon)
    h = mon.history
    assert h.columns[-6:] == [
        "smoothed_margin",
        "test_loss",
        "test_acc",
        "cos_rich",
        "cos_lin",
        "kkt_epsilon_rel",
    ]
    last = h.row(-1)
    theta = torch.cat([model.u.detach(), model.v.detach()])
    with torch.no_grad():
        out_t = model(Xt)
    assert last["normalized_margin"] == pytest.approx(ib.normalized_margin(model, X, y), rel=RT)
    assert last["smoothed_margin"] == pytest.approx(
        ib.smoothed_margin(model, X, y, loss="logistic"), rel=RT
    )
    q = yt * out_t
    assert last["test_acc"] == pytest.approx(float(((q > 0).double() + 0.5 * (q == 0)).mean()))
    assert last["test_loss"] == pytest.approx(float(F.softplus(-q).mean()), rel=RT)
    cos = float(theta @ theta_ref / (theta.norm() * theta_ref.norm()))
    assert last["cos_rich"] == pytest.approx(cos, rel=RT)
    a, b = out_t, Xt @ w_ref
    assert last["cos_lin"] == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=RT)
    rep = ib.kkt_residuals(model, X, y)
    assert last["kkt_epsilon_rel"] == pytest.approx(rep.epsilon_rel, rel=1e-6, abs=1e-12)
    # KKT at 3 checkpoints at most, the last one included; NaN elsewhere
    done = np.isfinite(h["kkt_epsilon_rel"])
    assert 1 <= done.sum() <= 3 and done[-1]
    assert not np.isfinite(h["kkt_epsilon_rel"][0])  # t = 0 is no checkpoint


def test_kkt_is_nan_while_the_classifier_does_not_separate() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    with torch.no_grad():  # misclassify everything: q_min < 0
        model.u.copy_(0.1 * torch.ones(8, dtype=DT))
        model.v.copy_(0.1 * torch.ones(8, dtype=DT))
        model.v[0] = 0.5
    mon = ib.Monitor(model, X, y, weight_decay=0.0, eval_times=[0.0], kkt_evals=1)
    row = mon.step(0.0)
    assert row is not None and row["normalized_margin"] < 0
    assert math.isnan(row["kkt_epsilon_rel"])


def test_predictor_baseline_with_decision_function_is_evaluated_once() -> None:
    X, y = sign_data()
    Xt, yt = sign_data(30, seed=12)

    class Predictor:
        calls = 0

        def decision_function(self, Z):
            Predictor.calls += 1
            return (Z[:, 0] - Z[:, 1]).numpy()

    model = Diag(8, 0)
    mon = ib.Monitor(
        model, X, y, weight_decay=0.0, t_max=1.0, num_evals=5, X_test=Xt, y_test=yt,
        baselines={"ref": Predictor()},
    )  # fmt: skip
    for k in range(0, 11):
        mon.step(0.1 * k)
    assert Predictor.calls == 1
    with torch.no_grad():
        a = model(Xt)
    b = Xt[:, 0] - Xt[:, 1]
    cos = float(a @ b / (a.norm() * b.norm()))
    assert mon.history["cos_ref"][-1] == pytest.approx(cos, rel=RT)


def test_nan_metrics_are_recorded_as_nan_not_dropped() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    mon = ib.Monitor(
        model, X, y, weight_decay=0.01, t_max=2.0, eval_times=[0.0, 1.0, 2.0],
        smoothed_margin=True, kkt_evals=3, baselines={"p": torch.ones(16, dtype=DT)},
    )  # fmt: skip
    mon.step(0.0)
    with torch.no_grad():
        model.u[0] = math.nan  # a run that diverged
    row = mon.step(1.0)
    assert row is not None and len(mon.history) == 2
    for c in ("train_loss", "objective", "train_acc", "theta_norm", "normalized_margin",
              "smoothed_margin", "cos_p", "kkt_epsilon_rel"):  # fmt: skip
        assert math.isnan(row[c]), c
    assert row["t"] == 1.0


# ---------------------------------------------------------------------------- time and schedule
def test_time_is_the_sum_of_learning_rates() -> None:
    X, y = sign_data()
    mon = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, eval_times=[0.0, 0.5, 0.7, 2.0])
    lrs = [0.1] * 5 + [0.05] * 5 + [0.2] * 3
    seen = []
    for k in range(0, 14):
        row = mon(k, lrs[k - 1] if k else 0.1)
        if row is not None:
            seen.append((row["step"], row["t"]))
    assert mon.t == pytest.approx(0.5 + 0.25 + 0.6, rel=1e-15)
    # records at the first step whose time reaches each schedule time (2.0 is never reached)
    assert [s for s, _ in seen] == [0.0, 5.0, 9.0]
    np.testing.assert_allclose([t for _, t in seen], [0.0, 0.5, 0.7], rtol=1e-12)
    assert mon.next_time == 2.0


def test_calls_that_skip_steps_record_at_the_first_call_past_each_time() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    mon = ib.Monitor(model, X, y, weight_decay=0.01, lr=0.05, steps=300, num_evals=20)
    sgd_loop(model, X, y, "logistic", 0.01, 0.05, 300, mon, every=10)
    steps = mon.history["step"]
    assert steps[0] == 0 and steps[-1] == 300 and np.all(steps % 10 == 0)
    assert np.all(np.diff(steps) > 0)
    # every record is the first call at or past a schedule time
    times = mon.times
    for s in steps[1:]:
        passed = times[(times <= s * 0.05 + 1e-12) & (times > (s - 10) * 0.05 + 1e-12)]
        assert passed.size >= 1


def test_step_driven_by_time_records_step_as_t_over_lr_and_grad_evals() -> None:
    X, y = sign_data()
    mon = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, lr=0.5, t_max=4.0, num_evals=4)
    assert mon.times.tolist() == [0.0, 0.5, 1.5, 4.0]
    for t in (0.0, 0.2, 0.6, 1.6, 3.0, 4.0):
        mon.step(t, grad_evals=int(10 * t))
    h = mon.history
    assert h["t"].tolist() == [0.0, 0.6, 1.6, 4.0]
    assert h["step"].tolist() == [0.0, 1.2, 3.2, 8.0]
    assert h["grad_evals"].tolist() == [0.0, 6.0, 16.0, 40.0]
    assert mon.record() is None  # t = 4 is recorded already
    mon2 = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, t_max=4.0, num_evals=4)
    assert math.isnan(mon2.step(0.0)["step"])  # no lr: no step count


def test_record_forces_a_row_off_the_schedule() -> None:
    X, y = sign_data()
    mon = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, lr=0.1, steps=1000, num_evals=5)
    for k in range(0, 37):
        mon(k, 0.1)
    n = len(mon.history)
    row = mon.record()
    assert row is not None and row["step"] == 36 and len(mon.history) == n + 1
    assert mon.record() is None and len(mon.history) == n + 1


# ---------------------------------------------------------------------------- no side effects
class CountingDiag(Diag):
    forwards = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        CountingDiag.forwards += 1
        return super().forward(x)


def test_no_work_between_schedule_points_and_the_cost_is_reported() -> None:
    X, y = sign_data()
    model = CountingDiag(8, 0)
    mon = ib.Monitor(model, X, y, weight_decay=0.0, lr=0.01, steps=10**6, num_evals=10)
    CountingDiag.forwards = 0
    for k in range(0, 20001):
        mon(k, 0.01)
    assert len(mon.history) == np.sum(mon.times <= 200.0 + 1e-9) == 7  # up to t = 20000·0.01
    assert CountingDiag.forwards == len(mon.history)  # one forward per record, none between
    assert mon.calls == 20001
    assert 0 < mon.record_seconds < mon.overhead_seconds
    per_call = (mon.overhead_seconds - mon.record_seconds) / mon.calls
    assert per_call < 1e-3  # a comparison, not an evaluation (about 2 µs measured)
    assert "7 records of 10 scheduled" in repr(mon)


def test_monitoring_does_not_change_the_run() -> None:
    """A loop on random mini-batches drawn from torch's global RNG, with a forward graph alive
    across the monitor's call: the same trajectory bit for bit with and without the monitor."""
    X, y = sign_data(40)

    def run(with_monitor: bool) -> torch.Tensor:
        torch.manual_seed(123)
        model = Diag(8, 0)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, weight_decay=0.01)
        mon = None
        if with_monitor:
            mon = ib.Monitor(
                model, X, y, weight_decay=0.01, lr=0.05, steps=60, num_evals=8, kkt_evals=3,
                smoothed_margin=True, baselines={"p": torch.ones(16, dtype=DT)},
                metrics=lambda m, t: {"r": float(torch.rand(()))},  # draws from the global RNG
            )  # fmt: skip
            mon(0, 0.05)
        for k in range(1, 61):
            idx = torch.randint(0, 40, (16,))
            opt.zero_grad()
            loss = F.softplus(-y[idx] * model(X[idx])).mean()
            if mon is not None:
                mon(k - 1, 0.05)  # between the forward pass and its backward
            loss.backward()
            opt.step()
        if mon is not None:
            mon(60, 0.05)
            assert len(mon.history) >= 5
        return torch.cat([model.u.detach(), model.v.detach()])

    assert torch.equal(run(True), run(False))


# ---------------------------------------------------------------------------- sinks
def test_csv_and_json_sinks_read_back_equal_to_the_history(tmp_path: Path) -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    csv_path, json_path = tmp_path / "out" / "run.csv", tmp_path / "run.json"
    mon = ib.Monitor(
        model, X, y, weight_decay=0.01, lr=0.05, steps=200, num_evals=12, kkt_evals=2,
        sinks=[csv_path, str(json_path)],
    )  # fmt: skip
    assert ib.History.from_json(json_path) == ib.History()  # created up front
    mon(0, 0.05)
    assert ib.History.from_csv(csv_path) == mon.history  # flushed row by row, readable mid-run
    with mon:
        sgd_loop(model, X, y, "logistic", 0.01, 0.05, 200, mon)
    assert ib.History.from_csv(csv_path) == mon.history
    assert ib.History.from_json(json_path) == mon.history  # NaN KKT rows included


def test_callable_sink_receives_each_record() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    got: list[dict[str, float]] = []

    def sink(record: dict[str, float]) -> None:
        got.append(record)
        record["t"] = -1.0  # a sink that edits its record changes nothing else

    mon = ib.Monitor(
        model, X, y, weight_decay=0.01, lr=0.05, steps=200, num_evals=12, kkt_evals=2,
        sinks=[sink],
    )  # fmt: skip
    sgd_loop(model, X, y, "logistic", 0.01, 0.05, 200, mon)
    h = mon.history
    assert len(got) == len(h) > 5
    assert np.all(h["t"] >= 0)
    last_has_kkt, with_kkt = "kkt_epsilon_rel" in got[-1], 0
    for i, record in enumerate(got):
        row = h.row(i)
        row["t"] = -1.0
        if "kkt_epsilon_rel" in record:  # the KKT column only at KKT checkpoints
            with_kkt += 1
            np.testing.assert_equal(record["kkt_epsilon_rel"], row["kkt_epsilon_rel"])  # NaN too
        else:
            assert math.isnan(row.pop("kkt_epsilon_rel"))
        record.pop("kkt_epsilon_rel", None)
        row.pop("kkt_epsilon_rel", None)
        assert record == row
    assert 1 <= with_kkt <= 2 and last_has_kkt


def _event_accumulator():
    pytest.importorskip("tensorboard")
    with warnings.catch_warnings():
        # tensorboard's own imports may warn (protobuf, pkg_resources); not ours to fix
        warnings.filterwarnings(
            "ignore", category=DeprecationWarning, module=r"(tensorboard|google)"
        )
        from tensorboard.backend.event_processing import event_accumulator
        from torch.utils.tensorboard import SummaryWriter
    return event_accumulator, SummaryWriter


def test_tensorboard_event_file_is_written_and_read_back(tmp_path: Path) -> None:
    event_accumulator, SummaryWriter = _event_accumulator()
    X, y = sign_data()
    model = Diag(8, 0)
    writer = SummaryWriter(log_dir=str(tmp_path / "tb"))
    with ib.Monitor(
        model, X, y, weight_decay=0.01, lr=0.05, steps=200, num_evals=12, kkt_evals=2,
        sinks=[writer],
    ) as mon:  # fmt: skip
        sgd_loop(model, X, y, "logistic", 0.01, 0.05, 200, mon)
    writer.close()
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))
    acc = event_accumulator.EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    h = mon.history
    tags = set(acc.Tags()["scalars"])
    assert tags == set(h.columns) - {"step"}
    steps = h["step"].astype(int).tolist()
    for tag in ("train_loss", "theta_norm", "normalized_margin", "t"):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == steps
        np.testing.assert_allclose([e.value for e in events], h[tag], rtol=1e-6)  # float32
    kkt = acc.Scalars("kkt_epsilon_rel")  # only at the KKT checkpoints, the last one included
    assert 1 <= len(kkt) <= 2 and kkt[-1].step == 200
    by_step = dict(zip(steps, h["kkt_epsilon_rel"]))
    np.testing.assert_allclose([e.value for e in kkt], [by_step[e.step] for e in kkt], rtol=1e-6)


# ---------------------------------------------------------------------------- misuse
def mon_kw(**kw):
    X, y = sign_data()
    base = dict(weight_decay=0.01, lr=0.05, steps=100, num_evals=10)
    base.update(kw)
    return X, y, base


def A(func: str, name: str) -> str:
    return rf"The '{name}' argument of {func}\b"


@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        (dict(weight_decay=-1.0), InvalidArgumentError, A("Monitor", "weight_decay")),
        (dict(lr=0.0), InvalidArgumentError, A("Monitor", "lr")),
        (dict(lr=None), InvalidArgumentError, A("Monitor", "lr") + ".*'steps' is given"),
        (dict(t_max=5.0), InvalidArgumentError, A("Monitor", "steps") + ".*one horizon"),
        (dict(steps=None), InvalidArgumentError, A("Monitor", "t_max") + ".*horizon"),
        (dict(steps=10.5), InvalidArgumentTypeError, A("Monitor", "steps")),
        (dict(steps=None, eval_times=[0.0, 2.0, 1.0]), InvalidArgumentError,
         A("Monitor", "eval_times") + ".*strictly increasing"),
        (dict(eval_times=[0.0, 50.0]), InvalidArgumentError, A("Monitor", "eval_times")),
        (dict(num_evals=1), InvalidArgumentError, A("Monitor", "num_evals")),
        (dict(loss="hinge"), InvalidArgumentError, A("Monitor", "loss")),
        (dict(loss="squared", smoothed_margin=True), InvalidArgumentError,
         A("Monitor", "smoothed_margin")),
        (dict(smoothed_margin="yes"), InvalidArgumentTypeError, A("Monitor", "smoothed_margin")),
        (dict(kkt_evals=-1), InvalidArgumentError, A("Monitor", "kkt_evals")),
        (dict(alpha=0.0), InvalidArgumentError, A("Monitor", "alpha")),
        (dict(metrics=3), InvalidArgumentTypeError, A("Monitor", "metrics")),
        (dict(X_test=torch.ones(3, 8, dtype=DT)), InvalidArgumentError, A("Monitor", "y_test")),
        (dict(X_test=torch.ones(3, 8, dtype=DT), y_test=torch.ones(4, dtype=DT)),
         InvalidArgumentError, A("Monitor", "y_test")),
        (dict(X_test=torch.ones(3, 5, dtype=DT), y_test=torch.ones(3, dtype=DT)),
         InvalidArgumentError, A("Monitor", "X_test")),
        (dict(baselines=[1.0]), InvalidArgumentTypeError, A("Monitor", "baselines")),
        (dict(baselines={"w": torch.ones(8, dtype=DT)}), InvalidArgumentError,
         A("Monitor", "baselines") + r".*shape \(16,\).*'w'"),
        (dict(baselines={"z": torch.zeros(16, dtype=DT)}), InvalidArgumentError,
         A("Monitor", "baselines") + ".*nonzero"),
        (dict(baselines={"f": lambda Z: Z[:3, 0]}), InvalidArgumentError,
         A("Monitor", "baselines") + r".*shape \(24,\)"),
        (dict(baselines={"s": "kernel"}), InvalidArgumentTypeError, A("Monitor", "baselines")),
        (dict(sinks="run.csv"), InvalidArgumentTypeError, A("Monitor", "sinks") + ".*list"),
        (dict(sinks=["run.txt"]), InvalidArgumentError, A("Monitor", "sinks") + ".*'.csv'"),
        (dict(sinks=[3]), InvalidArgumentTypeError, A("Monitor", "sinks")),
    ],
    ids=lambda v: None,
)
def test_bad_construction_raises_naming_the_argument(kw, exc, match) -> None:
    X, y, base = mon_kw(**kw)
    with pytest.raises(exc, match=match):
        ib.Monitor(Diag(8, 0), X, y, **base)


def test_bad_labels_and_inputs_name_the_argument() -> None:
    X, y = sign_data()
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "y") + r".*2\*y - 1"):
        ib.Monitor(Diag(8, 0), X, (y > 0).to(DT), weight_decay=0.0, t_max=1.0)
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "X")):
        ib.Monitor(Diag(8, 0), X[:, :5], y, weight_decay=0.0, t_max=1.0)
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "model") + ".*C ≥ 2"):
        ib.Monitor(Diag(8, 0), X, y.long().clamp(min=0), loss="cross_entropy",
                   weight_decay=0.0, t_max=1.0)  # fmt: skip


def test_two_sinks_on_one_file_are_refused_before_writing(tmp_path: Path) -> None:
    X, y, base = mon_kw()
    a = tmp_path / "a.csv"
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "sinks") + ".*same file"):
        ib.Monitor(Diag(8, 0), X, y, sinks=[a, tmp_path / "." / "a.csv"], **base)
    assert not a.exists()


def test_a_step_that_goes_backwards_raises() -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, **base)
    mon(0, 0.05)
    mon(5, 0.05)
    match = A("Monitor", "step") + ".*previous call's step 5"
    with pytest.raises(InvalidArgumentError, match=match):
        mon(4, 0.05)
    mon(5, 0.05)  # the same step again is no progress, not an error
    mon2 = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, t_max=5.0)
    mon2.step(1.0)
    with pytest.raises(InvalidArgumentError, match=A("Monitor.step", "t") + ".*forward"):
        mon2.step(0.5)


@pytest.mark.parametrize(
    ("step", "lr", "exc", "name"),
    [
        (1, 0.0, InvalidArgumentError, "lr"),
        (1, -0.1, InvalidArgumentError, "lr"),
        (1, math.nan, InvalidArgumentError, "lr"),
        (1, math.inf, InvalidArgumentError, "lr"),
        (1, True, InvalidArgumentTypeError, "lr"),
        (1, "0.1", InvalidArgumentTypeError, "lr"),
        (1.0, 0.1, InvalidArgumentTypeError, "step"),
        (-1, 0.1, InvalidArgumentError, "step"),
        (True, 0.1, InvalidArgumentTypeError, "step"),
    ],
)
def test_bad_step_or_lr_raises_naming_it(step, lr, exc, name) -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, **base)
    with pytest.raises(exc, match=A("Monitor", name)):
        mon(step, lr)
    assert mon.t == 0.0 and len(mon.history) == 0  # nothing moved


def test_tensor_step_and_lr_are_accepted() -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, **base)
    mon(torch.tensor(0), torch.tensor(0.05))
    mon(np.int64(3), np.float64(0.05))
    assert mon.t == pytest.approx(0.15, rel=1e-15) and len(mon.history) >= 1


def test_bad_time_raises_naming_it() -> None:
    X, y = sign_data()
    mon = ib.Monitor(Diag(8, 0), X, y, weight_decay=0.0, t_max=5.0)
    for bad, exc in ((math.nan, InvalidArgumentError), (-1.0, InvalidArgumentError),
                     ("1", InvalidArgumentTypeError)):  # fmt: skip
        with pytest.raises(exc, match=A("Monitor.step", "t")):
            mon.step(bad)
    with pytest.raises(InvalidArgumentError, match=A("Monitor.step", "grad_evals")):
        mon.step(1.0, grad_evals=-2)


def test_mixing_steps_and_times_raises() -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, **base)
    mon(0, 0.05)
    with pytest.raises(InvalidArgumentError, match=A("Monitor.step", "t") + ".*not both"):
        mon.step(0.1)
    mon2 = ib.Monitor(Diag(8, 0), X, y, **base)
    mon2.step(0.0)
    with pytest.raises(InvalidArgumentError, match=A("Monitor.__call__", "step") + ".*not both"):
        mon2(1, 0.05)


def test_a_model_whose_parameters_changed_dtype_raises() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    mon = ib.Monitor(model, X, y, weight_decay=0.01, lr=0.05, eval_times=[0.0, 2.0])
    mon(0, 0.05)
    model.float()  # e.g. a mixed-precision switch in the middle of a run
    mon(1, 0.05)  # between schedule points nothing is looked at
    match = A("Monitor", "model") + ".*'u' of dtype torch.float32"
    with pytest.raises(InvalidArgumentError, match=match):
        mon(40, 0.05)
    assert len(mon.history) == 1


def test_a_model_whose_parameter_was_replaced_by_another_shape_raises() -> None:
    X, y, base = mon_kw()
    model = Diag(8, 0)
    mon = ib.Monitor(model, X, y, **base)
    model.v = nn.Parameter(torch.zeros(4, dtype=DT))
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "model") + r".*'v'.*shape \(4,\)"):
        mon(0, 0.05)


def test_user_metrics_may_not_shadow_the_monitors_columns() -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, smoothed_margin=True,
                     metrics=lambda m, t: {"smoothed_margin": 1.0}, **base)  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=A("Monitor", "metrics") + ".*own columns"):
        mon(0, 0.05)


def test_a_closed_monitor_refuses_calls(tmp_path: Path) -> None:
    X, y, base = mon_kw()
    mon = ib.Monitor(Diag(8, 0), X, y, sinks=[tmp_path / "r.csv"], **base)
    mon(0, 0.05)
    mon.close()
    mon.close()  # idempotent
    with pytest.raises(InvalidArgumentError, match="closed"):
        mon(1, 0.05)


# ---------------------------------------------------------------------------- more models and edges
def test_regression_with_a_test_set_on_matrix_completion() -> None:
    d = 6
    g = torch.Generator().manual_seed(0)
    v = torch.arange(d, dtype=DT) / d
    M = torch.outer(v, v)
    perm = torch.randperm(d * d, generator=g)
    idx = torch.stack([perm // d, perm % d], 1)
    Xtr, Xte = idx[:15], idx[15:]
    ytr, yte = M[Xtr[:, 0], Xtr[:, 1]], M[Xte[:, 0], Xte[:, 1]]
    net = ib.MatrixFactorization(d, alpha=1.0, dtype=DT)
    mon = ib.Monitor(
        net, Xtr, ytr, loss="squared", weight_decay=1e-3, lr=0.05, steps=300, num_evals=8,
        X_test=Xte, y_test=yte, kkt_evals=1,
    )  # fmt: skip
    sgd_loop(net, Xtr, ytr, "squared", 1e-3, 0.05, 300, mon)
    h = mon.history
    assert "normalized_margin" not in h and "train_acc" not in h
    last = h.row(-1)
    with torch.no_grad():
        mse = float(((net(Xte) - yte) ** 2).mean())
    assert last["test_mse"] == pytest.approx(mse, rel=RT)
    assert last["test_loss"] == pytest.approx(mse, rel=RT)
    rep = ib.kkt_residuals(net, Xtr, ytr, task="regression")
    assert last["kkt_epsilon_rel"] == pytest.approx(rep.epsilon_rel, rel=1e-6)
    assert np.isfinite(h["kkt_epsilon_rel"]).sum() == 1


def test_multiclass_predictor_baseline_and_smoothed_margin() -> None:
    X, y = class_data()
    model = MLP(5, 7, 3, 4)
    W = torch.randn(5, 3, dtype=DT, generator=torch.Generator().manual_seed(8))
    mon = ib.Monitor(
        model, X, y, loss="cross_entropy", weight_decay=0.003, lr=0.1, steps=50, num_evals=6,
        baselines={"lin": lambda Z: Z @ W}, smoothed_margin=True,
    )  # fmt: skip
    sgd_loop(model, X, y, "cross_entropy", 0.003, 0.1, 50, mon)
    last = mon.history.row(-1)
    with torch.no_grad():
        a, b = model(X).reshape(-1), (X @ W).reshape(-1)
    assert last["cos_lin"] == pytest.approx(float(a @ b / (a.norm() * b.norm())), rel=RT)
    assert last["smoothed_margin"] == pytest.approx(
        ib.smoothed_margin(model, X, y, loss="logistic"), rel=RT
    )


def test_a_model_that_is_not_homogeneous_is_refused_naming_the_monitor() -> None:
    class Tanh(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.Parameter(torch.randn(4, 8, dtype=DT))

        def forward(self, x):
            return torch.tanh(x @ self.a.T).sum(1)

    X, y = sign_data()
    with pytest.raises(ib.NotHomogeneousError, match="Monitor: the model carries no `degree`"):
        ib.Monitor(Tanh(), X, y, weight_decay=0.0, t_max=1.0)


def test_alpha_at_most_one_gives_nan_rescaled_time_and_kkt_still_scheduled() -> None:
    X, y = sign_data()
    model = Diag(8, 0)
    mon = ib.Monitor(model, X, y, weight_decay=0.01, lr=0.1, steps=300, num_evals=8,
                     alpha=0.5, kkt_evals=2)  # fmt: skip
    sgd_loop(model, X, y, "logistic", 0.01, 0.1, 300, mon)
    assert np.all(np.isnan(mon.history["rescaled_time"]))
    assert not math.isnan(mon.history["kkt_epsilon_rel"][-1])


def test_kkt_checkpoints_start_at_a_hundredth_of_t_star() -> None:
    X, y = sign_data()
    # t* = log(α)/λ = log(e²)/0.01 = 200; checkpoints nearest to 2 and 400 on the schedule
    model = Diag(8, 0)
    with torch.no_grad():  # f = x0 − x1 + x2 (plus a little): separates the data from the start
        model.u.copy_(torch.tensor([1.0, 0, 1, 0, 0, 0, 0, 0], dtype=DT) + 0.01)
        model.v.copy_(torch.tensor([0.0, 1, 0, 0, 0, 0, 0, 0], dtype=DT) + 0.01)
    mon = ib.Monitor(model, X, y, weight_decay=0.01, lr=0.1, steps=4000, num_evals=40,
                     alpha=math.e**2, kkt_evals=2)  # fmt: skip
    sgd_loop(model, X, y, "logistic", 0.01, 0.1, 4000, mon)
    h = mon.history
    times = mon.times
    expect = times[np.argmin(np.abs(times - 2.0))]
    assert 1.0 < expect < 3.0 and times[1] == 0.1  # (not the first positive time)
    done = h["t"][np.isfinite(h["kkt_epsilon_rel"])]
    assert done.tolist() == [expect, 400.0]


def test_a_sink_that_raises_leaves_no_row_to_repeat() -> None:
    X, y, base = mon_kw()
    calls = []

    def flaky(record):
        calls.append(record["step"])
        if len(calls) == 2:
            raise OSError("disk full")

    mon = ib.Monitor(Diag(8, 0), X, y, sinks=[flaky], **base)
    mon(0, 0.05)
    with pytest.raises(OSError, match="disk full"):
        mon(1, 0.05)
    mon(1, 0.05)
    mon(2, 0.05)
    assert mon.history["step"].tolist() == [0.0, 1.0, 2.0]
    assert calls == [0.0, 1.0, 2.0]


def test_float32_model_runs_in_its_dtype_and_matches_train() -> None:
    X, y = sign_data()

    def make():
        return Diag(8, 0).float()

    res = ib.train(make(), X, y, weight_decay=0.01, lr=0.05, steps=100, num_evals=8)
    model = make()
    mon = ib.Monitor(model, X, y, weight_decay=0.01, lr=0.05, steps=100, num_evals=8)
    sgd_loop(model, X.float(), y.float(), "logistic", 0.01, 0.05, 100, mon)
    assert_same_history(mon.history, res.history, rtol=tol(torch.float32))


def test_the_ntk_predictor_is_a_baseline_and_the_cosine_is_nan_at_zero_outputs() -> None:
    X, y = sign_data()
    Xt, yt = sign_data(30, seed=3)
    net = ib.DiagonalNet(8, alpha=1.0, dtype=DT)  # f = 0 at init: no direction yet
    pred = ib.ntk_predictor(net, X, y)
    mon = ib.Monitor(net, X, y, weight_decay=0.01, lr=0.05, steps=100, num_evals=5,
                     X_test=Xt, y_test=yt, baselines={"ntk": pred})  # fmt: skip
    sgd_loop(net, X, y, "logistic", 0.01, 0.05, 100, mon)
    cos = mon.history["cos_ntk"]
    assert math.isnan(cos[0]) and np.all(np.isfinite(cos[1:]))
    with torch.no_grad():
        a = net(Xt).numpy()
    b = pred.decision_function(Xt).numpy()
    assert cos[-1] == pytest.approx(float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))), rel=RT)
