"""train as a composition of small parts (issue 12, item 1): the refactor changed nothing a run
computes or writes, and TrainResult records what the run was trained with.

The reference values below were recorded with the code before the refactor (commit 7b5f127,
one intra-op thread, float64): hashes of the final θ and of the history's numbers (all columns
but ``wall_time``) of short runs through every path of both loops, and two checkpoints of
format 2 written by that code. A run on this code must reproduce them bit for bit (rtol 0).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import signal
import threading
import typing
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import implicitbias as ib
from implicitbias import InvalidArgumentError
from implicitbias.dynamics import (
    INTEGRATORS,
    LOSSES,
    METHODS,
    STATUSES,
    TrainResult,
    train,
)

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------------------- instances
class Diag(nn.Module):
    """f(x) = <u⊙u − v⊙v, x>: 2-homogeneous (defined here, so that the recorded values do not
    depend on the library's models; its repr, "Diag()", enters the checkpoint fingerprint)."""

    def __init__(self, d: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.u = nn.Parameter(0.5 + 0.1 * torch.randn(d, generator=g, dtype=DT))
        self.v = nn.Parameter(0.5 + 0.1 * torch.randn(d, generator=g, dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ (self.u * self.u - self.v * self.v)


class MLP(nn.Module):
    """Bias-free ReLU net with C logits: 2-homogeneous."""

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


def digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().numpy().tobytes()).hexdigest()[:16]


def table_digest(h: ib.History) -> str:
    cols = [c for c in h.columns if c != "wall_time"]
    text = ";".join(c + ":" + ",".join(repr(float(v)) for v in h[c]) for c in cols)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def accuracy_metrics(Xt: torch.Tensor, yt: torch.Tensor):
    def metrics(model, t):
        with torch.no_grad():
            out = model(Xt)
        return {"test_acc": float((yt * out > 0).to(DT).mean()), "half_t": t / 2}

    return metrics


def run_case(name: str, **extra):
    """One short run through one path of the loops."""
    if name == "gd_logistic":
        X, y = sign_data()
        return train(Diag(8, 0), X, y, weight_decay=0.01, lr=0.05, steps=300, num_evals=20,
                     metrics=accuracy_metrics(*sign_data(40, seed=5)), **extra)  # fmt: skip
    if name == "flow_logistic":
        X, y = sign_data()
        return train(Diag(8, 0), X, y, weight_decay=0.01, lr=0.05, steps=300, num_evals=20,
                     method="flow", metrics=accuracy_metrics(*sign_data(40, seed=5)), **extra)  # fmt: skip
    if name == "flow_dopri5_squared":
        X, y = reg_data()
        return train(Diag(6, 3), X, y, loss="squared", weight_decay=0.001, lr=0.02, t_max=3.0,
                     method="flow", integrator="dopri5", rtol=1e-6, atol=1e-9, max_step=0.4,
                     eval_times=[0.0, 0.1, 0.35, 1.0, 2.5, 3.0], **extra)  # fmt: skip
    if name == "gd_cross_entropy":
        X, y = class_data()
        return train(MLP(5, 7, 3, 4), X, y, loss="cross_entropy", weight_decay=0.003, lr=0.1,
                     steps=150, num_evals=12, **extra)  # fmt: skip
    if name == "flow_cross_entropy":
        X, y = class_data()
        return train(MLP(5, 7, 3, 4), X, y, loss="cross_entropy", weight_decay=0.003, lr=0.1,
                     steps=150, num_evals=12, method="flow", rtol=1e-2, **extra)  # fmt: skip
    if name == "gd_exponential_alpha":
        X, y = sign_data(seed=7)
        return train(Diag(8, 9), X, y, loss="exponential", weight_decay=0.02, lr=0.03,
                     t_max=3.6, eval_times=np.linspace(0, 3.6, 9), alpha=3.0, degree=2,
                     **extra)  # fmt: skip
    if name == "flow_rejects":
        X, y = reg_data()
        return train(Diag(6, 3), X, y, loss="squared", weight_decay=0.0, lr=3.0, t_max=6.0,
                     method="flow", rtol=1e-5, num_evals=7, **extra)  # fmt: skip
    assert name == "gd_diverges"
    X, y = reg_data()
    with pytest.warns(RuntimeWarning, match="train: the gd run diverged"):
        return train(Diag(6, 3), X, y, loss="squared", weight_decay=0.0, lr=2.0, steps=500,
                     num_evals=30, **extra)  # fmt: skip


def summary(res: TrainResult) -> tuple:
    return (
        res.status,
        res.iterations,
        res.n_rejected,
        res.grad_evals,
        repr(res.t_final),
        len(res.history),
        digest(res.model.theta()),
        table_digest(res.history),
    )


# (status, iterations, n_rejected, grad_evals, t_final, rows, θ hash, history hash), recorded
# before the refactor
RECORDED = {
    "gd_logistic": ("completed", 300, 0, 300, "15.0", 19, "1d1e8255d4f1578c", "23a2976f85adbfa9"),
    "flow_logistic": ("completed", 20, 0, 61, "15.0", 19, "b1360adfdc6d145f", "8e8b48a9c8361ea6"),
    "flow_dopri5_squared":
        ("completed", 29, 0, 175, "3.0", 6, "f748b410f7bb908f", "73fe619730e6b5df"),
    "gd_cross_entropy":
        ("completed", 150, 0, 150, "15.0", 12, "c7520d2be10af726", "678369de4c5059b7"),
    "flow_cross_entropy":
        ("completed", 17, 0, 52, "15.0", 12, "84e65baaacc52612", "2e9a6e77cd132f18"),
    "gd_exponential_alpha": ("completed", 120, 0, 120, "3.5999999999999996", 9,
                             "b13811c737627d29", "a58861cadf53caaf"),
    "flow_rejects": ("completed", 43, 5, 145, "6.0", 3, "18a941830e3772e6", "1bd4431ff83f27ab"),
    "gd_diverges": ("diverged", 5, 0, 7, "10.0", 6, "6e6fb4bae5f8830c", "0f81cc8c4bac16d1"),
}  # fmt: skip


def _same_arithmetic_as_recorded() -> bool:
    """Whether torch's kernels on this machine round like those of the recording: a plain
    torch SGD loop (no library code) on the first instance, hashed."""
    X, y = sign_data()
    net = Diag(8, 0)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, weight_decay=0.01)
    for _ in range(300):
        opt.zero_grad()
        F.softplus(-y * net(X)).mean().backward()
        opt.step()
    return digest(torch.cat([net.u.detach(), net.v.detach()])) == "19e237e04c26ad70"


@pytest.fixture(scope="module")
def recorded_platform() -> None:
    if not _same_arithmetic_as_recorded():
        pytest.skip("torch rounds differently on this machine than where the values were recorded")


# ---------------------------------------------------------------------------- bit for bit
@pytest.mark.parametrize("name", list(RECORDED))
def test_trajectory_is_bit_identical_to_before_the_refactor(name: str, recorded_platform) -> None:
    assert summary(run_case(name)) == RECORDED[name]


# ---------------------------------------------------------------------------- checkpoints
def ckpt_problem() -> tuple[torch.Tensor, torch.Tensor, dict]:
    X, y = sign_data(12, 4, seed=3)
    return X, y, dict(weight_decay=0.02, lr=0.1, steps=80, num_evals=8)


def interrupting(at: int | None):
    """Metrics with one column ``m``; a KeyboardInterrupt at evaluation number ``at``."""
    calls: list[float] = []

    def metrics(model, t):
        calls.append(t)
        if at is not None and len(calls) == at:
            raise KeyboardInterrupt
        return {"m": 2.0 * t}

    return metrics


# Checkpoints written before the refactor by
#   train(Diag(4, 11), X, y, method=..., checkpoint_path=..., metrics=interrupting(5), **kw)
# (interrupted at the fifth evaluation), θ and F as lists (repr of a float round-trips).
# fmt: off
OLD_GD = {'alpha': 1.460946528426984,
 'config': {'alpha': None,
            'architecture': '7f9dbab599143ae968b4c55c9d62a0b5d37a0603a3bcde297aee2e868e4c7f50',
            'atol': 1e-06,
            'data_fingerprint': '3cda20be8fa36b04552aa3f8d27ca85b1b6a99ad85d7e7413e7a9fad699afb9f',
            'degree': 2.0,
            'dtype': 'torch.float64',
            'integrator': 'bs32',
            'loss': 'logistic',
            'lr': 0.1,
            'max_step': None,
            'method': 'gd',
            'n': 12,
            'num_eval_times': 8,
            'p': 8,
            'rtol': 0.001,
            't_max': 8.0,
            'weight_decay': 0.02},
 'error_prev': 1.0,
 'eval_index': 4,
 'eval_times': [0.0, 0.1, 0.2, 0.4, 0.9, 1.9000000000000001, 3.9000000000000004, 8.0],
 'f': None,
 'fingerprint': '9c9322b80704e61079cf3d4a62c4db73d9de40de3b144a50d4095444d77f3a07',
 'format': 2,
 'grad_evals': 9,
 'h': 0.1,
 'history': {'grad_evals': [0.0, 1.0, 2.0, 4.0],
             'm': [0.0, 0.2, 0.4, 0.8],
             'normalized_margin': [-0.3002670997142297, -0.2617972768508537, -0.2254885518343502,
                                   -0.1581162799810366],
             'objective': [0.7868250858406334, 0.7377509255844579, 0.6965521739367291,
                           0.6293979169700088],
             'rescaled_time': [0.0, 0.005275868116323485, 0.01055173623264697, 0.02110347246529394],
             'step': [0.0, 1.0, 2.0, 4.0],
             't': [0.0, 0.1, 0.2, 0.4],
             'theta_norm': [1.460946528426984, 1.448001290377958, 1.4421049257262322,
                            1.4463750856058322],
             'train_acc': [0.25, 0.3333333333333333, 0.6666666666666666, 0.9166666666666666],
             'train_loss': [0.7654814382514048, 0.7167838482150956, 0.6757555077686904,
                            0.608477908087396],
             'wall_time': [1.2962536360009835, 1.304937188000622, 1.3112458560008236,
                           1.319603089001248]},
 'history_columns': ['t', 'step', 'rescaled_time', 'grad_evals', 'train_loss', 'objective',
                     'train_acc', 'theta_norm', 'normalized_margin', 'wall_time', 'm'],
 'n_rejected': 0,
 'n_steps': 9,
 't': 0.9,
 'theta': [0.6922349832067679, 0.3799785961889863, 0.4961166222160812, 0.3297235919935107,
           0.35698973063154055, 0.8041068059048667, 0.4373710775959006, 0.5926217690823495],
 'wall_time': 1.3318530700016709}

OLD_FLOW = {'alpha': 1.460946528426984,
 'config': {'alpha': None,
            'architecture': '7f9dbab599143ae968b4c55c9d62a0b5d37a0603a3bcde297aee2e868e4c7f50',
            'atol': 1e-06,
            'data_fingerprint': '3cda20be8fa36b04552aa3f8d27ca85b1b6a99ad85d7e7413e7a9fad699afb9f',
            'degree': 2.0,
            'dtype': 'torch.float64',
            'integrator': 'bs32',
            'loss': 'logistic',
            'lr': 0.1,
            'max_step': None,
            'method': 'flow',
            'n': 12,
            'num_eval_times': 8,
            'p': 8,
            'rtol': 0.001,
            't_max': 8.0,
            'weight_decay': 0.02},
 'error_prev': 0.10363003700650045,
 'eval_index': 4,
 'eval_times': [0.0, 0.1, 0.2, 0.4, 0.9, 1.9000000000000001, 3.9000000000000004, 8.0],
 'f': [0.12650789152692876, -0.2102491414656716, 0.08109081262178709, -0.0417183844857075,
       -0.08322516140215125, 0.35930690517609276, -0.09229079332917614, 0.04972962430264331],
 'fingerprint': '8161914c0383f9c52dfa4eecf2e823f09c936356fa3e268200730f4c8c26e949',
 'format': 2,
 'grad_evals': 13,
 'h': 0.27373691023004026,
 'history': {'grad_evals': [1.0, 4.0, 7.0, 10.0],
             'm': [0.0, 0.2, 0.4, 0.8],
             'normalized_margin': [-0.3002670997142297, -0.26313789343467836, -0.22755851481136427,
                                   -0.16063862920332045],
             'objective': [0.7868250858406334, 0.7396631434456646, 0.6993163016579014,
                           0.632477015714298],
             'rescaled_time': [0.0, 0.005275868116323485, 0.01055173623264697, 0.02110347246529394],
             'step': [0.0, 1.0, 2.0, 4.0],
             't': [0.0, 0.1, 0.2, 0.4],
             'theta_norm': [1.460946528426984, 1.4499169335212763, 1.4452290033246404,
                            1.450812408150414],
             'train_acc': [0.25, 0.3333333333333333, 0.6666666666666666, 0.9166666666666666],
             'train_loss': [0.7654814382514048, 0.7186405523045473, 0.678429432937394,
                            0.611428449277866],
             'wall_time': [0.005761907999840332, 0.013747396998951444, 0.02256998799930443,
                           0.03158193299896084]},
 'history_columns': ['t', 'step', 'rescaled_time', 'grad_evals', 'train_loss', 'objective',
                     'train_acc', 'theta_norm', 'normalized_margin', 'wall_time', 'm'],
 'n_rejected': 0,
 'n_steps': 4,
 't': 0.7944965489476381,
 'theta': [0.678524991159927, 0.41415868541515444, 0.4881286296260855, 0.33455952207545914,
           0.3675285351781418, 0.7683185088223182, 0.44773989590562474, 0.5871512289794302],
 'wall_time': 0.050727675999951316}
# fmt: on

OLD = {"gd": OLD_GD, "flow": OLD_FLOW}

# summary() of the uninterrupted run of the same problem (metrics=interrupting(None))
FINAL = {
    "gd": ("completed", 80, 0, 80, "8.0", 8, "078c7901393e3d05", "00da2e3e9be7be35"),
    "flow": ("completed", 16, 0, 49, "8.0", 8, "370b8ab1f0c37c2f", "1a0437fac0e5804b"),
}


def _as_checkpoint(lit: dict) -> dict:
    return {
        k: (torch.tensor(v, dtype=DT) if k in ("theta", "f") and v is not None else v)
        for k, v in lit.items()
    }


def _without_wall_time(ck: dict) -> dict:
    out = {k: v for k, v in ck.items() if k != "wall_time"}
    out["history"] = {c: v for c, v in ck["history"].items() if c != "wall_time"}
    return out


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_checkpoint_written_before_the_refactor_resumes_to_the_same_answer(
    tmp_path: Path, method: str, recorded_platform
) -> None:
    ck = tmp_path / "old.pt"
    torch.save(_as_checkpoint(OLD[method]), ck)
    X, y, kw = ckpt_problem()
    res = train(Diag(4, 11), X, y, method=method, checkpoint_path=ck, resume=True,
                metrics=interrupting(None), **kw)  # fmt: skip
    assert res.resumed_from == OLD[method]["t"]
    assert summary(res) == FINAL[method]
    assert (res.method, res.loss, res.weight_decay, res.lr, res.degree) == (
        method, "logistic", 0.02, 0.1, 2.0,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_checkpoint_written_now_is_the_one_written_before(
    tmp_path: Path, method: str, recorded_platform
) -> None:
    """Same format, keys, configuration, fingerprint, state and history (wall times aside)."""
    ck = tmp_path / "new.pt"
    X, y, kw = ckpt_problem()
    cut = train(Diag(4, 11), X, y, method=method, checkpoint_path=ck, metrics=interrupting(5), **kw)
    assert cut.status == "interrupted" and cut.interrupted
    new = torch.load(ck, weights_only=True)
    lit = {k: (v.tolist() if isinstance(v, torch.Tensor) else v) for k, v in new.items()}
    assert _without_wall_time(lit) == _without_wall_time(OLD[method])


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_sidecar_keeps_its_keys(tmp_path: Path, method: str) -> None:
    """The JSON beside the history CSV is a file format: it keeps ``n_steps``."""
    X, y, kw = ckpt_problem()
    csv = tmp_path / "run.csv"
    res = train(Diag(4, 11), X, y, method=method, history_path=csv, **kw)
    side = json.loads(csv.with_suffix(".json").read_text())
    assert sorted(side) == [
        "alpha", "config", "grad_evals", "n_rejected", "n_steps", "resumed_from", "status",
        "steps_equivalent", "t_final", "wall_time",
    ]  # fmt: skip
    assert (side["status"], side["n_steps"], side["grad_evals"]) == (
        res.status, res.iterations, res.grad_evals,
    )  # fmt: skip
    assert side["config"]["loss"] == res.loss and side["config"]["lr"] == res.lr
    assert side["config"]["weight_decay"] == res.weight_decay
    assert side["config"]["degree"] == res.degree and side["config"]["method"] == res.method


# ---------------------------------------------------------------------------- TrainResult
def _linear() -> nn.Module:
    lin = nn.Linear(4, 1, bias=False).to(DT)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.3, -0.2, 0.1, 0.4]], dtype=DT))
    return nn.Sequential(lin, nn.Flatten(0))


CONFIGS = {
    # name: (model factory, data, train options, expected degree)
    "measured degree": (lambda: Diag(4, 1), sign_data(12, 4), dict(method="gd"), 2.0),
    "declared int degree": (lambda: Diag(4, 1), sign_data(12, 4),
                            dict(method="flow", degree=2), 2.0),
    "built-in model": (lambda: ib.DiagonalNet(4, alpha=1.0, dtype=DT), sign_data(12, 4),
                       dict(method="gd", loss="exponential"), 2.0),
    "wrapped, degree 1": (lambda: ib.Homogeneous(_linear(), degree=1), reg_data(10, 4),
                          dict(method="flow", loss="squared", integrator="dopri5"), 1.0),
    "multiclass relu": (lambda: MLP(5, 4, 3, 0), class_data(), dict(loss="cross_entropy"), 2.0),
}  # fmt: skip


@pytest.mark.parametrize("name", list(CONFIGS))
def test_result_records_what_the_run_was_trained_with(name: str) -> None:
    make, (X, y), opts, degree = CONFIGS[name]
    res = train(make(), X, y, weight_decay=0.03, lr=0.07, steps=12, num_evals=3, **opts)
    assert res.method == opts.get("method", "gd")
    assert res.loss == opts.get("loss", "logistic")
    assert res.weight_decay == 0.03 and res.lr == 0.07
    assert res.degree == degree and type(res.degree) is float
    assert res.iterations == (12 if res.method == "gd" else res.iterations) > 0


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_result_fields_are_enough_to_rerun_the_run(method: str) -> None:
    """A caller re-running (or continuing) a run passes what the result records, nothing
    else, and gets the same trajectory."""
    X, y = sign_data(16, 6)
    first = train(Diag(6, 2), X, y, loss="exponential", weight_decay=0.05, lr=0.04, steps=90,
                  num_evals=7, method=method)  # fmt: skip
    again = train(Diag(6, 2), X, y, loss=first.loss, weight_decay=first.weight_decay,
                  lr=first.lr, method=first.method, degree=first.degree,
                  steps=first.steps_equivalent, num_evals=7)  # fmt: skip
    assert summary(again) == summary(first)


def test_n_steps_is_a_deprecated_read_only_alias_of_iterations() -> None:
    X, y = sign_data(12, 4)
    res = train(Diag(4, 1), X, y, weight_decay=0.01, lr=0.1, steps=20, num_evals=2)
    with pytest.warns(
        DeprecationWarning,
        match=r"^TrainResult\.n_steps is deprecated since 0\.2 and will be removed in 0\.3; "
        r"use iterations$",
    ):
        assert res.n_steps == res.iterations == 20
    with pytest.raises(AttributeError):
        res.n_steps = 3  # type: ignore[misc]
    names = [f.name for f in dataclasses.fields(TrainResult)]
    assert "iterations" in names and "n_steps" not in names
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "n_steps" not in repr(res) and "iterations=20" in repr(res)


def test_string_options_are_literal_types() -> None:
    hints = typing.get_type_hints(train)
    assert typing.get_args(hints["method"]) == METHODS == ("gd", "flow")
    assert typing.get_args(hints["loss"]) == LOSSES
    assert typing.get_args(hints["integrator"]) == INTEGRATORS == ("bs32", "dopri5")
    fields = typing.get_type_hints(TrainResult)
    assert typing.get_args(fields["status"]) == STATUSES
    assert STATUSES == ("completed", "interrupted", "diverged", "step_size_too_small")
    assert typing.get_args(fields["method"]) == METHODS
    assert typing.get_args(fields["loss"]) == LOSSES


@pytest.mark.parametrize("bad", [{"method": "sgd"}, {"loss": "hinge"}, {"integrator": "rk4"}])
def test_an_option_outside_its_literal_is_refused_naming_it(bad: dict) -> None:
    X, y = sign_data(12, 4)
    (arg,) = bad
    with pytest.raises(InvalidArgumentError, match=rf"The '{arg}' argument of train must be"):
        train(Diag(4, 1), X, y, weight_decay=0.01, lr=0.1, steps=5, **bad)


# ---------------------------------------------------------------------------- interrupts
def test_training_in_a_worker_thread_leaves_ctrl_c_alone() -> None:
    """Signals reach only the main thread: a run in a worker thread installs no handler, and a
    KeyboardInterrupt from its metrics still returns an interrupted result."""
    before = signal.getsignal(signal.SIGINT)
    X, y, kw = ckpt_problem()
    out: dict[str, TrainResult] = {}
    seen: list[object] = []

    def work() -> None:
        def metrics(model, t):
            seen.append(signal.getsignal(signal.SIGINT))
            if len(seen) == 3:
                raise KeyboardInterrupt
            return {"m": t}

        out["res"] = train(Diag(4, 11), X, y, method="flow", metrics=metrics, **kw)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert out["res"].status == "interrupted" and len(out["res"].history) == 2
    assert all(h is before for h in seen)
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_a_crashing_metrics_restores_the_ctrl_c_handler(tmp_path: Path, method: str) -> None:
    """An exception escaping the run must not leave Ctrl-C deferred (swallowed) afterwards."""
    before = signal.getsignal(signal.SIGINT)
    X, y, kw = ckpt_problem()
    during: list[object] = []

    def metrics(model, t):
        during.append(signal.getsignal(signal.SIGINT))
        if len(during) == 4:
            raise ZeroDivisionError("a bug in the user's metrics")
        return {"m": t}

    with pytest.raises(ZeroDivisionError, match="a bug in the user's metrics"):
        train(Diag(4, 11), X, y, method=method, metrics=metrics,
              history_path=tmp_path / "run.csv", **kw)  # fmt: skip
    assert during[0] is not before  # deferred while running
    assert signal.getsignal(signal.SIGINT) is before
    side = json.loads((tmp_path / "run.json").read_text())
    assert side["status"] == "failed"
