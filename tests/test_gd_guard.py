"""The deferred divergence guard of the GD loop (issue 15, item 3): read by the host every K
steps instead of every step, it ends every run exactly as the per-step guard does.

The CPU reads the guard every step by default; these tests force K > 1 there (the default on
CUDA, tested in tests/test_gpu.py) and compare with K = 1, bit for bit: a finite run; a run that
diverges inside a window, on its first or last step, on an evaluation step; a Ctrl-C or an
exception inside a window; checkpoints and resume across windows; and the number of host reads.
"""

from __future__ import annotations

import math
import os
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
from _guard_common import HostReads as _HostReads
from _guard_common import force_guard_every as _force
from _guard_common import one_thread  # noqa: F401  (autouse)
from _guard_common import same_train_run as _same
from implicitbias.dynamics import TrainResult, _gd_loop, train
from implicitbias.dynamics._problem import Problem, Stash

DT = torch.float64


# ---------------------------------------------------------------------------- problems
def _sign_data(n: int = 16, d: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 2, (n, d), generator=g).to(DT) * 2 - 1
    return X, torch.sign(X[:, 0] - X[:, 1] + X[:, 2])


def _diag() -> ib.DiagonalNet:
    return ib.DiagonalNet(10, alpha=4.0, alpha_mode="norm", dtype=DT)


KW = dict(weight_decay=0.05, lr=0.05, steps=200, num_evals=15)


def _regression() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, generator=g, dtype=DT), torch.randn(8, generator=g, dtype=DT)


def _linear() -> ib.Homogeneous:
    lin = nn.Linear(3, 1, bias=False).to(DT)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]], dtype=DT))
    return ib.Homogeneous(lin, degree=1)


# η·λ_max(2XᵀX/n) ≫ 2: the squared loss overflows after ~130 steps, θ later
BLOWUP = dict(loss="squared", weight_decay=0.0, lr=5.0, steps=2000)


def _diverging(**kw) -> TrainResult:
    X, y = _regression()
    with pytest.warns(RuntimeWarning, match="train: the gd run diverged"):
        return train(_linear(), X, y, **dict(dict(BLOWUP, num_evals=2), **kw))


@pytest.fixture(scope="module")
def first_bad() -> int:
    """D, the first step whose state is non-finite under the per-step guard."""
    res = _diverging()
    assert res.status == "diverged" and 20 < res.iterations < 1000
    return res.iterations + 1


# ---------------------------------------------------------------------------- finite runs
@pytest.mark.parametrize("every", [2, 7, 64, 10_000])
def test_finite_run_is_bit_identical_to_the_per_step_guard(
    monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    X, y = _sign_data()
    ref = train(_diag(), X, y, **KW)
    _force(monkeypatch, every)
    _same(train(_diag(), X, y, **KW), ref)


def test_cross_entropy_run_with_metrics_and_periodic_checkpoints(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A ReLU MLP on three classes, user metrics and checkpoints every 0.37 time units (looks
    off the window grid): the same history, θ and last checkpoint as with K = 1."""
    g = torch.Generator().manual_seed(4)
    X = torch.randn(30, 5, generator=g, dtype=DT)
    y = torch.argmax(X[:, :3], dim=1)

    def net() -> ib.HomogeneousMLP:
        return ib.HomogeneousMLP(5, [16], 3, seed=2, dtype=DT)

    def norm(model: ib.Homogeneous, t: float) -> dict[str, float]:
        return {"norm": float(model.theta().norm())}

    kw = dict(loss="cross_entropy", weight_decay=0.01, lr=0.1, steps=150, num_evals=9)
    ref = train(net(), X, y, metrics=norm, checkpoint_path=tmp_path / "a.pt",
                checkpoint_every=0.37, **kw)  # fmt: skip
    _force(monkeypatch, 16)
    res = train(net(), X, y, metrics=norm, checkpoint_path=tmp_path / "b.pt",
                checkpoint_every=0.37, **kw)  # fmt: skip
    _same(res, ref)
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert (a["n_steps"], a["eval_index"]) == (b["n_steps"], b["eval_index"])
    torch.testing.assert_close(a["theta"], b["theta"], rtol=0.0, atol=0.0)


def test_huge_finite_states_are_not_divergence(monkeypatch: pytest.MonkeyPatch) -> None:
    """Weights of 1e308 (every sum of them overflows): the deferred guard adds ⟨state, 0⟩,
    which stays 0, so nothing is replayed and the run completes as with K = 1."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(6, 3, generator=g, dtype=DT)
    X[:, :2] *= 1e-300
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], dtype=DT)

    def huge() -> ib.Homogeneous:
        lin = nn.Linear(3, 1, bias=False).to(DT)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[1e308, 1e308, 0.5]], dtype=DT))
        return ib.Homogeneous(lin, degree=1)

    ref = train(huge(), X, y, weight_decay=0.0, lr=0.5, steps=20)
    _force(monkeypatch, 8)
    calls = [0]
    real = Problem.param_gradients

    def counted(self: Problem):
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(Problem, "param_gradients", counted)
    res = train(huge(), X, y, weight_decay=0.0, lr=0.5, steps=20)
    _same(res, ref)
    assert res.status == "completed" and calls[0] == 20  # no step replayed


def test_stash_deferred_verdict() -> None:
    """⟨buffer, 0⟩ accumulated on the device: finite for huge finite states, not for NaN or
    ±inf; each read starts a new window."""
    p = [torch.tensor([1e308, 1e308, -1e308], dtype=DT)]
    out = torch.tensor([1e308, 2.0], dtype=DT)
    stash = Stash(p, out, None)
    assert stash.deferred_finite()  # nothing deferred yet
    for k in range(3):
        stash.defer(k, out, None)
    assert stash.deferred_finite()
    for bad in (math.nan, math.inf, -math.inf):
        stash.defer(3, torch.tensor([bad, 0.0], dtype=DT), None)
        stash.defer(4, out, None)
        assert not stash.deferred_finite()
        assert stash.deferred_finite()  # a new window
    stash.defer(5, out, None)
    stash.keep(5)
    assert stash.kept is not None
    torch.testing.assert_close(stash.kept, p[0], rtol=0.0, atol=0.0)


# ---------------------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    "where", ["inside", "first", "last", "beyond the run", "every 2", "with evaluations"]
)
def test_divergence_in_a_window_ends_where_the_per_step_guard_does(
    monkeypatch: pytest.MonkeyPatch, first_bad: int, where: str
) -> None:
    """The first non-finite step D inside a window (2 evaluations: reads at the multiples of K),
    on its first step (K = D − 1), on its last (K = D), in a window longer than the run, and
    with 40 evaluations (each one a read that starts a new window): "diverged" at θ_{D−1},
    with the counters and history of K = 1."""
    D = first_bad
    every, num_evals = {
        "inside": (D + 7, 2),
        "first": (D - 1, 2),
        "last": (D, 2),
        "beyond the run": (100_000, 2),
        "every 2": (2, 2),
        "with evaluations": (16, 40),
    }[where]
    ref = _diverging(num_evals=num_evals)
    _force(monkeypatch, every)
    res = _diverging(num_evals=num_evals)
    _same(res, ref)
    assert res.iterations == D - 1 and bool(torch.isfinite(res.model.theta()).all())
    finite = [c for c in res.history.columns if c != "rescaled_time"]  # NaN when λ = 0
    assert np.all(np.isfinite(np.column_stack([res.history[c] for c in finite])))


@pytest.mark.parametrize("offset", [-1, 0])
def test_divergence_at_an_evaluation_step(
    monkeypatch: pytest.MonkeyPatch, first_bad: int, offset: int
) -> None:
    """An evaluation at D (its row must not be written) or at D − 1 (its row is the last)."""
    D = first_bad
    lr = BLOWUP["lr"]
    times = np.array([0.0, 10 * lr, (D + offset) * lr, 2000 * lr])
    ref = _diverging(eval_times=times)
    _force(monkeypatch, 32)
    res = _diverging(eval_times=times)
    _same(res, ref)
    assert res.history["step"][-1] == (D - 1 if offset == -1 else 10)


def test_divergence_never_checkpoints_a_non_finite_state(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first_bad: int
) -> None:
    """Periodic checkpoints every 50 steps, windows of 32: the file holds the last periodic
    state before D, as with K = 1, and resuming from it diverges at the same step."""
    ref = _diverging(checkpoint_path=tmp_path / "a.pt", checkpoint_every=250.0)
    _force(monkeypatch, 32)
    res = _diverging(checkpoint_path=tmp_path / "b.pt", checkpoint_every=250.0)
    _same(res, ref)
    a, b = (torch.load(tmp_path / f, weights_only=True) for f in ("a.pt", "b.pt"))
    assert a["n_steps"] == b["n_steps"] == 50 * ((first_bad - 1) // 50)
    torch.testing.assert_close(a["theta"], b["theta"], rtol=0.0, atol=0.0)
    again = _diverging(checkpoint_path=tmp_path / "b.pt", checkpoint_every=250.0, resume=True)
    assert again.iterations == res.iterations
    torch.testing.assert_close(again.model.theta(), res.model.theta(), rtol=0.0, atol=0.0)


# ---------------------------------------------------------------------------- interrupts
def _ctrl_c_at_update(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """A real Ctrl-C (SIGINT) delivered during update number ``call`` (θ_{call−1} → θ_call)."""
    real = Problem.sgd_step
    count = [0]

    def update(self: Problem, grads: list[torch.Tensor], lr: float) -> None:
        count[0] += 1
        real(self, grads, lr)
        if count[0] == call:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(Problem, "sgd_step", update)


def test_ctrl_c_inside_a_window(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A Ctrl-C during update 45 (windows of 16, restarted at each evaluation): the run reads
    the guard at once and stops at θ_45, as with K = 1; its checkpoint resumes to the full
    run."""
    X, y = _sign_data()
    full = train(_diag(), X, y, **KW)
    with monkeypatch.context() as m:
        _ctrl_c_at_update(m, 45)
        ref = train(_diag(), X, y, checkpoint_path=tmp_path / "a.pt", **KW)
    with monkeypatch.context() as m:
        _force(m, 16)
        _ctrl_c_at_update(m, 45)
        res = train(_diag(), X, y, checkpoint_path=tmp_path / "b.pt", **KW)
    assert res.status == "interrupted" and res.iterations == 45
    _same(res, ref)
    _force(monkeypatch, 16)
    rest = train(_diag(), X, y, checkpoint_path=tmp_path / "b.pt", resume=True, **KW)
    _same(rest, full)


def test_ctrl_c_after_a_divergence_inside_the_window(
    monkeypatch: pytest.MonkeyPatch, first_bad: int
) -> None:
    """The state went non-finite at D and the Ctrl-C comes three updates later, before the
    window is read (one window from step 1 on): the run ends "diverged" at θ_{D−1}, as the
    per-step guard ends it."""
    ref = _diverging()
    _force(monkeypatch, 100_000)
    _ctrl_c_at_update(monkeypatch, first_bad + 3)
    res = _diverging()
    _same(res, ref)


def _raise_at_update(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """A second Ctrl-C (KeyboardInterrupt at once) inside update number ``call``, after the
    first parameter tensor moved."""
    real = Problem.sgd_step
    count = [0]

    def update(self: Problem, grads: list[torch.Tensor], lr: float) -> None:
        count[0] += 1
        if count[0] == call:
            with torch.no_grad():
                self.params[0].add_(grads[0], alpha=-lr)
            raise KeyboardInterrupt
        real(self, grads, lr)

    monkeypatch.setattr(Problem, "sgd_step", update)


def test_keyboard_interrupt_inside_a_finite_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Cut inside update 38 (windows of 16): the pending window and θ_37 are finite, so the
    run stops at θ_37 as with K = 1, and resumes to the full run."""
    X, y = _sign_data()
    full = train(_diag(), X, y, **KW)
    with monkeypatch.context() as m:
        _raise_at_update(m, 38)
        ref = train(_diag(), X, y, **KW)
    _force(monkeypatch, 16)
    with monkeypatch.context() as m:
        _raise_at_update(m, 38)
        res = train(_diag(), X, y, checkpoint_path=tmp_path / "run.pt", **KW)
    assert res.status == "interrupted" and res.iterations == 37
    _same(res, ref)
    _same(train(_diag(), X, y, checkpoint_path=tmp_path / "run.pt", resume=True, **KW), full)


def test_keyboard_interrupt_after_an_unread_divergence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first_bad: int
) -> None:
    """Cut inside update D + 2 with the non-finite states of D, D + 1 not yet read (windows
    of 50, periodic checkpoints every 25 steps, each one a read): the run stops "interrupted"
    at the last verified state — the last checkpoint's, finite — never at the live one, and
    resuming from its checkpoint diverges exactly as the uninterrupted run."""
    D = first_bad
    ref = _diverging()
    _force(monkeypatch, 50)
    with monkeypatch.context() as m:
        _raise_at_update(m, D + 2)
        X, y = _regression()
        res = train(_linear(), X, y, num_evals=2, checkpoint_path=tmp_path / "run.pt",
                    checkpoint_every=125.0, **BLOWUP)  # fmt: skip
    assert res.status == "interrupted"
    assert res.iterations == 25 * ((D - 1) // 25) > 0
    assert bool(torch.isfinite(res.model.theta()).all())
    saved = torch.load(tmp_path / "run.pt", weights_only=True)
    assert saved["n_steps"] == res.iterations and bool(torch.isfinite(saved["theta"]).all())
    again = _diverging(checkpoint_path=tmp_path / "run.pt", checkpoint_every=125.0, resume=True)
    assert again.iterations == ref.iterations
    torch.testing.assert_close(again.model.theta(), ref.model.theta(), rtol=0.0, atol=0.0)


def test_resume_across_windows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Interrupted by the metrics at the 9th evaluation with checkpoints every 0.35 time
    units (7 steps) and windows of 5: the part and the resumed rest give the full K = 1 run."""
    X, y = _sign_data()

    def stopper(at: int | None):
        count = [0]

        def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
            count[0] += 1
            if count[0] == at:
                raise KeyboardInterrupt
            return {"u0": float(model.model.u[0].detach())}

        return metrics

    kw = dict(KW, checkpoint_every=0.35)
    full = train(_diag(), X, y, metrics=stopper(None), **kw)
    _force(monkeypatch, 5)
    ck = tmp_path / "run.pt"
    part = train(_diag(), X, y, metrics=stopper(9), checkpoint_path=ck, **kw)
    assert part.status == "interrupted" and len(part.history) == 8
    rest = train(_diag(), X, y, metrics=stopper(None), checkpoint_path=ck, resume=True, **kw)
    _same(rest, full)


# ---------------------------------------------------------------------------- host reads
def _reads_per_step(monkeypatch: pytest.MonkeyPatch, every: int) -> list[int]:
    """Host reads between two consecutive updates of a 200-step run (2 evaluations)."""
    X, y = _sign_data()
    _force(monkeypatch, every)
    mode = _HostReads()
    marks: list[int] = []
    real = Problem.sgd_step

    def update(self: Problem, grads: list[torch.Tensor], lr: float) -> None:
        marks.append(mode.n)
        real(self, grads, lr)

    monkeypatch.setattr(Problem, "sgd_step", update)
    with mode:
        res = train(_diag(), X, y, **dict(KW, num_evals=2))
    assert res.status == "completed" and len(marks) == 200
    return np.diff(marks).tolist()


def test_the_deferred_loop_reads_the_host_once_per_window(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Between two updates the per-step guard reads one value; with K = 16 only every 16th
    step does (the reads of the first step, the records and the end lie outside)."""
    assert all(n >= 1 for n in _reads_per_step(monkeypatch, 1))
    per_step = _reads_per_step(monkeypatch, 16)
    reading = [i + 1 for i, n in enumerate(per_step) if n]
    assert reading == list(range(16, 200, 16))
    assert all(per_step[i - 1] == 1 for i in reading)


def test_default_reads() -> None:
    """Every step on the CPU (a read costs nothing there), every 64 steps on a GPU."""
    assert _gd_loop.guard_every(torch.device("cpu")) == 1
    assert _gd_loop.guard_every(torch.device("cuda")) == 64
