"""The no-weight-decay loop (Fig. 4) without a host read per step (issue 15, item 3): the host
reads log L every K steps instead of every step, and every run ends exactly as with K = 1.

The CPU reads every step by default; these tests force K > 1 there (the default on CUDA, tested
in tests/test_gpu.py) and compare with K = 1, bit for bit: runs across the switch from c·L to
log L; divergence inside a window; a Ctrl-C or an exception inside a window and the resume from
the checkpoint; and the number of host reads. The step's device-side choice of branch is
checked against closed forms where the loss underflows.
"""

from __future__ import annotations

import dataclasses
import math
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias.experiments._no_wd_loop as loop
import implicitbias.experiments.modular_no_wd as nowd
from _guard_common import HostReads as _HostReads
from _guard_common import one_thread  # noqa: F401  (autouse)
from implicitbias.experiments import get_config
from implicitbias.experiments._common import RunOutput
from implicitbias.experiments.configs import NoDecayConfig


def _cfg(**over: Any) -> NoDecayConfig:
    """The tiny preset (p = 7, width 32, float64, the switch at log L = −0.5 near step 215)."""
    return dataclasses.replace(get_config("modular-addition-no-wd", "tiny"), **over)


def _force(monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    """Read log L every ``every`` steps on the CPU."""
    monkeypatch.setattr(loop, "_CPU_READ_EVERY", every)


def _run(
    monkeypatch: pytest.MonkeyPatch, cfg: NoDecayConfig, **kwargs: Any
) -> tuple[RunOutput, list[torch.Tensor]]:
    """The run of ``cfg`` and its final parameters."""
    nets: list[torch.nn.Module] = []
    real = nowd.modular_network

    def capture(*args: Any, **kw: Any) -> Any:
        nets.append(real(*args, **kw))
        return nets[-1]

    with monkeypatch.context() as m:
        m.setattr(nowd, "modular_network", capture)
        res = nowd.run_no_weight_decay(cfg, **kwargs)
    return res, [q.detach().clone() for q in nets[-1].parameters()]


def _same(a: tuple[RunOutput, list[torch.Tensor]], b: tuple[RunOutput, list[torch.Tensor]]) -> None:
    """The same run, bit for bit: status, steps, summary, history (but wall time), θ."""
    (ra, pa), (rb, pb) = a, b
    for key in ("status", "n_steps"):
        assert ra.train_info[key] == rb.train_info[key], key
    for key in ("switch_step", "log_flow_time", "normalized_margin_at_switch", "final"):
        np.testing.assert_array_equal(
            np.asarray(list(ra.summary[key].values()) if key == "final" else ra.summary[key]),
            np.asarray(list(rb.summary[key].values()) if key == "final" else rb.summary[key]),
            err_msg=key,
        )
    assert ra.history.columns == rb.history.columns and len(ra.history) == len(rb.history)
    for c in ra.history.columns:
        if c != "wall_time":
            np.testing.assert_array_equal(ra.history[c], rb.history[c], err_msg=c)
    for qa, qb in zip(pa, pb, strict=True):
        torch.testing.assert_close(qa, qb, rtol=0.0, atol=0.0, equal_nan=True)


def _reads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(window length, index of its first non-finite log L or −1) of every window read."""
    seen: list[tuple[int, int]] = []
    real = loop.read_values

    def read(values: list[torch.Tensor]) -> list[float]:
        out = real(values)
        bad = [i for i, v in enumerate(out) if not math.isfinite(v)]
        seen.append((len(out), bad[0] if bad else -1))
        return out

    monkeypatch.setattr(loop, "read_values", read)
    return seen


# ---------------------------------------------------------------------------- finite runs
@pytest.mark.parametrize("every", [5, 16, 64])
def test_windows_give_the_per_step_trajectory_across_the_switch(
    monkeypatch: pytest.MonkeyPatch, every: int
) -> None:
    ref = _run(monkeypatch, _cfg())
    _force(monkeypatch, every)
    reads = _reads(monkeypatch)
    res = _run(monkeypatch, _cfg())
    _same(res, ref)
    # the windows did the work: 300 steps in far fewer reads, every one of them finite
    assert sum(n for n, _ in reads) == 300 and len(reads) < 300 // 2
    assert max(n for n, _ in reads) == every and all(bad < 0 for _, bad in reads)
    # and the run crossed the switch: steps at c·η, then at η/L > η·e^{-s}
    cfg, h = _cfg(), res[0].history
    switch = res[0].summary["switch_step"]
    assert 10 < switch < 290 and h["step"][-2] > switch
    log_eta = h["log_lr_effective"][1:]
    np.testing.assert_array_equal(
        log_eta[h["step"][1:] <= switch], math.log(cfg.lr * cfg.lr_factor)
    )
    assert log_eta[-1] > math.log(cfg.lr) - cfg.switch_log_loss


def test_float32_windows_give_the_per_step_trajectory(monkeypatch: pytest.MonkeyPatch) -> None:
    """The paper's dtype (log L still in float64): p = 11, the switch near step 146."""
    cfg = _cfg(dtype="float32", p=11, width=48, steps=400, lr=0.05, switch_log_loss=-1.0)
    ref = _run(monkeypatch, cfg)
    _force(monkeypatch, 7)
    res = _run(monkeypatch, cfg)
    _same(res, ref)
    assert 10 < res[0].summary["switch_step"] < 390


# ---------------------------------------------------------------------------- divergence
def _exploding(monkeypatch: pytest.MonkeyPatch, norm: float) -> None:
    """Nets whose outputs turn NaN once ‖θ‖ > ``norm`` (a function of θ: a replay meets it at
    the same step; ‖θ‖ grows monotonically on the tiny run after step 9)."""
    real = nowd.modular_network

    def make(*args: Any, **kw: Any) -> Any:
        net = real(*args, **kw)
        params = list(net.parameters())

        def hook(module: Any, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            size = torch.sqrt(sum((q.detach() ** 2).sum() for q in params))
            return out * torch.where(size > norm, math.nan, 1.0)

        net.register_forward_hook(hook)
        return net

    monkeypatch.setattr(nowd, "modular_network", make)


@pytest.mark.parametrize("norm", [9.0, 10.0])
@pytest.mark.parametrize("every", [5, 16])
def test_divergence_inside_a_window_stops_at_the_per_step_step(
    monkeypatch: pytest.MonkeyPatch, norm: float, every: int
) -> None:
    """log L turns NaN at step D inside a window: the window is read, fails, and is replayed
    from its start one read per step; the run ends "diverged" at θ_D (parameters finite, the
    update of step D not taken) with the history of K = 1, its NaN record at D included."""
    _exploding(monkeypatch, norm)
    ref = _run(monkeypatch, _cfg())
    res_ref, theta_ref = ref
    d = res_ref.train_info["n_steps"]
    assert res_ref.train_info["status"] == "diverged" and 20 < d < 290
    assert all(bool(torch.isfinite(q).all()) for q in theta_ref)
    assert math.isnan(res_ref.history["log_train_loss"][-1]) and res_ref.history["step"][-1] == d
    _force(monkeypatch, every)
    reads = _reads(monkeypatch)
    res = _run(monkeypatch, _cfg())
    _same(res, ref)
    # one window failed, and steps after D had been queued on a NaN θ: undone by the replay
    failed = [(n, bad) for n, bad in reads if bad >= 0]
    assert len(failed) == 1 and failed[0][1] < failed[0][0] - 1


# ---------------------------------------------------------------------------- interrupts
def _ctrl_c_at_update(monkeypatch: pytest.MonkeyPatch, call: int) -> None:
    """A Ctrl-C (SIGINT) right after the ``call``-th update of θ."""
    real, count = nowd._descend, [0]

    def update(*args: Any) -> None:
        real(*args)
        count[0] += 1
        if count[0] == call:
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(nowd, "_descend", update)


def test_ctrl_c_inside_a_window_and_the_resume(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A Ctrl-C after update 47 (windows of 3 and the checkpoints every 5 steps): the run reads
    its window at once, checkpoints θ_47 as K = 1 does, and resumes to the full run."""
    cfg = _cfg(steps=500)
    full = _run(monkeypatch, cfg)
    for every, name in [(1, "a.pt"), (3, "b.pt")]:
        with monkeypatch.context() as m:
            _force(m, every)
            _ctrl_c_at_update(m, 47)
            with pytest.raises(KeyboardInterrupt):
                _run(m, cfg, checkpoint_path=tmp_path / name)
    a, b = (torch.load(tmp_path / n, weights_only=True) for n in ("a.pt", "b.pt"))
    assert a["k"] == b["k"] == 47 and a["columns"] == b["columns"]
    for c in a["columns"]:
        if c != "wall_time":
            np.testing.assert_array_equal(b["history"][c], a["history"][c], err_msg=c)
    for key, value in a["params"].items():
        torch.testing.assert_close(b["params"][key], value, rtol=0.0, atol=0.0)
    _force(monkeypatch, 3)
    _same(_run(monkeypatch, cfg, checkpoint_path=tmp_path / "b.pt", resume=True), full)


def test_exception_inside_a_window_resumes_from_the_last_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A KeyboardInterrupt raised inside update 49 (a second Ctrl-C; windows of 3): the state of
    the last read stays, the checkpoint is the last periodic one (step 45, itself a record:
    the resumed run does not record it twice), and the resume gives the full run."""
    cfg = _cfg(steps=500)
    full = _run(monkeypatch, cfg)
    _force(monkeypatch, 3)
    real, count = nowd._queued_step, [0]

    def step(*args: Any, **kwargs: Any) -> torch.Tensor:
        count[0] += 1
        if count[0] == 49:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(nowd, "_queued_step", step)
        with pytest.raises(KeyboardInterrupt):
            _run(m, cfg, checkpoint_path=tmp_path / "c.pt")
    blob = torch.load(tmp_path / "c.pt", weights_only=True)
    assert blob["k"] == 45 and blob["history"]["step"][-1] == 45.0
    _same(_run(monkeypatch, cfg, checkpoint_path=tmp_path / "c.pt", resume=True), full)


# ---------------------------------------------------------------------------- host reads
def _reads_per_step(monkeypatch: pytest.MonkeyPatch, every: int) -> list[int]:
    """Host reads between two consecutive updates of a 200-step run (records at 0 and 200)."""
    _force(monkeypatch, every)
    mode = _HostReads()
    marks: list[int] = []
    real = nowd._descend

    def update(*args: Any) -> None:
        marks.append(mode.n)
        real(*args)

    with monkeypatch.context() as m:
        m.setattr(nowd, "_descend", update)
        with mode:
            res = nowd.run_no_weight_decay(_cfg(steps=200, num_evals=2))
    assert res.train_info["status"] == "completed" and len(marks) == 200
    return np.diff(marks).tolist()


def test_the_loop_reads_the_host_once_per_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """With K = 1 each step reads its log L; with K = 16 only every 16th step reads, once (the
    reads of the first step, the records and the end lie outside)."""
    assert all(n >= 1 for n in _reads_per_step(monkeypatch, 1))
    per_step = _reads_per_step(monkeypatch, 16)
    reading = [i + 1 for i, n in enumerate(per_step) if n]
    assert reading == list(range(16, 200, 16))
    assert all(per_step[i - 1] == 1 for i in reading)


def test_default_reads() -> None:
    """Every step on the CPU, every 64 steps on a GPU."""
    assert loop.read_every(torch.device("cpu")) == 1
    assert loop.read_every(torch.device("cuda")) == 64


# ---------------------------------------------------------------------------- the step
def test_log_loss_gradient_where_the_loss_underflows() -> None:
    """Margins of 800 (L = 0 in float64): log L and its gradient are the closed forms, and the
    form not taken (log Σ softplus, whose sum underflows to 0) adds no 0·inf NaN."""
    z = torch.tensor([[800.0, 0.0, 0.0], [0.0, 810.0, 0.0]], dtype=torch.float64)
    z.requires_grad_(True)
    y = torch.tensor([0, 1])
    nowd.log_mean_cross_entropy(z, y).backward()
    # log L = logsumexp_i s_i − log 2 with s_i = log(2) − m_i: d/dz = the weights w_i of the
    # logsumexp, times the margins' softmax (1/2 each) on the wrong classes, −1 on the true one
    w = torch.softmax(torch.tensor([-800.0, -810.0], dtype=torch.float64), 0)
    share = torch.tensor([[-1.0, 0.5, 0.5], [0.5, -1.0, 0.5]], dtype=torch.float64)
    torch.testing.assert_close(z.grad, w[:, None] * share, rtol=1e-12, atol=0.0)


@pytest.mark.parametrize("scale", [1.0, 40.0, 2000.0])
def test_the_step_objective_has_the_chosen_branch_gradient(scale: float) -> None:
    """The step's objective (the branch chosen on the device) has the gradient c·L·∇log L
    above the switch and ∇log L below it, with no NaN where L underflows to 0 (log L < −700: the
    softplus form of log L, not taken there, has a sum of 0 and must not send 0·inf back)."""
    X = torch.tensor([[1.0, 0.5], [-0.3, 2.0], [0.7, -1.2]], dtype=torch.float64)
    y = torch.tensor([0, 2, 1])
    model = torch.nn.Linear(2, 3, bias=False, dtype=torch.float64)
    with torch.no_grad():
        model.weight.copy_(scale * torch.tensor([[1.0, 0.0], [0.0, -1.0], [-1.0, 1.0]]))
    ref = nowd.log_mean_cross_entropy(model(X), y)
    (g_log,) = torch.autograd.grad(ref, [model.weight])
    log_loss, objective = nowd._objective(model, X, y, lr_factor=10.0, switch_log_loss=-5.0)
    objective.backward()
    value = float(log_loss.detach())
    assert (value > -5.0) == (scale == 1.0) and (value < -700.0) == (scale == 2000.0)
    factor = 10.0 * math.exp(value) if value > -5.0 else 1.0
    assert model.weight.grad is not None and bool(torch.isfinite(model.weight.grad).all())
    torch.testing.assert_close(model.weight.grad, factor * g_log, rtol=1e-13, atol=0.0)
