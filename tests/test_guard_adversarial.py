"""Adversarial checks of the windowed divergence guards (issue 15, item 3): models and callbacks
that a researcher's own runs bring, each run with the guard read every step (K = 1, the CPU
default) and by windows (K forced to 3, 7 or 64 on the CPU), compared bit for bit.

``ib.train(method="gd")``: forward hooks and pre-hooks (one that rewrites the outputs, one that
reads them on an activation module used twice), frozen parameters and buffers, float32 and
float64; outputs that turn infinite while θ stays finite, a cross-entropy that overflows on
finite logits, weights and outputs of 1e300; NaN at an evaluation, a checkpoint and the last
step; metrics that move the parameters or raise; errors and Ctrl-C from the model's forward;
resume across K. The Fig. 4 loop: checkpoints off the window grid, Ctrl-C and errors from the
forward with resume across K, divergence at a record and at a checkpoint. The parallel sweep's
stop flag. tests/test_gd_guard.py and tests/test_no_wd_device_loop.py hold the basic cases.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import signal
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
import implicitbias.experiments._no_wd_loop as nowd_loop
import implicitbias.experiments.modular_no_wd as nowd
from _guard_common import force_guard_every as _force
from _guard_common import one_thread  # noqa: F401  (autouse)
from _guard_common import same_train_run as _same
from implicitbias.dynamics import TrainResult, log_schedule, train
from implicitbias.dynamics._problem import Problem
from implicitbias.experiments import _sweepjobs, get_config

DT = torch.float64


def _flat(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters() if p.requires_grad])


def _same_checkpoint(a: Path, b: Path) -> dict[str, Any]:
    """Two checkpoints of train with the same state and rows; the second, loaded."""
    ca, cb = (torch.load(p, weights_only=True) for p in (a, b))
    for key in ("n_steps", "eval_index", "grad_evals", "t", "history_columns"):
        assert ca[key] == cb[key], key
    torch.testing.assert_close(ca["theta"], cb["theta"], rtol=0.0, atol=0.0)
    assert bool(torch.isfinite(cb["theta"]).all())
    for c in ca["history_columns"]:
        if c != "wall_time":
            np.testing.assert_array_equal(ca["history"][c], cb["history"][c], err_msg=c)
    return cb


def _diverging(model: nn.Module, X: torch.Tensor, y: torch.Tensor, **kw: Any) -> TrainResult:
    with pytest.warns(RuntimeWarning, match="train: the gd run diverged"):
        return train(model, X, y, **kw)


# ---------------------------------------------------------------------------- hooks
class _Hooked(nn.Module):
    """A bias-free 5-8-8-1 ReLU net with one activation module used twice, a frozen parameter and
    a buffer; a pre-hook doubles the inputs, a hook on the shared activation reads its outputs,
    and a hook on the last layer makes the outputs +inf once ‖θ‖ > ``c`` (θ itself finite)."""

    def __init__(self, dtype: torch.dtype, c: float) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.l1, self.l2, self.l3 = (
            nn.Linear(i, o, bias=False) for i, o in ((5, 8), (8, 8), (8, 1))
        )
        for layer in (self.l1, self.l2, self.l3):
            layer.to(dtype)
            with torch.no_grad():
                layer.weight.copy_(0.5 * torch.randn(layer.weight.shape, generator=g).to(dtype))
        self.frozen = nn.Parameter(torch.linspace(0.5, 1.5, 8, dtype=dtype), requires_grad=False)
        self.register_buffer("scale", torch.full((8,), 0.9, dtype=dtype))
        self.act = nn.ReLU()
        self.seen: list[float] = []
        self.act.register_forward_hook(lambda m, i, o: self.seen.append(float(o.detach().sum())))
        self.register_forward_pre_hook(lambda m, i: (2.0 * i[0],))
        self.c = c
        self.l3.register_forward_hook(self._blow)

    def norm(self) -> torch.Tensor:
        return torch.sqrt(sum((w.detach() ** 2).sum() for w in self.weights()))

    def weights(self) -> list[torch.Tensor]:
        return [self.l1.weight, self.l2.weight, self.l3.weight]

    def _blow(self, module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
        return out * torch.where(self.norm() > self.c, math.inf, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.l1(x)) * self.frozen * self.scale
        return self.l3(self.act(self.l2(h))).squeeze(-1)


def _hooked_data(dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    X = torch.randn(20, 5, generator=g).to(dtype)
    return X, torch.sign(X[:, 0] + 0.3)


HOOKED = dict(weight_decay=0.0, lr=0.5, steps=300, num_evals=12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("every", [3, 7, 64])
def test_outputs_turn_infinite_through_a_hook_while_theta_stays_finite(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, every: int
) -> None:
    """The last layer's hook sends the outputs to +inf at the step D where ‖θ_D‖ > c, θ_D
    finite: "diverged" at θ_{D−1} as with K = 1, with the same counters, rows and bits, after
    at most one window of extra gradient passes; the frozen parameter and buffer untouched."""
    X, y = _hooked_data(dtype)

    calls = [0]
    real = Problem.param_gradients

    def counted(self: Problem):
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(Problem, "param_gradients", counted)

    def run() -> tuple[TrainResult, _Hooked, int]:
        net, calls[0] = _Hooked(dtype, c=6.0), 0
        res = _diverging(ib.Homogeneous(net, degree=3, check=False), X, y, **HOOKED)
        return res, net, calls[0]

    ref, ref_net, ref_calls = run()
    assert ref.status == "diverged" and 10 < ref.iterations < 100 and ref_net.seen
    # θ_D = θ_{D−1} − η∇L is finite and past c: it is the outputs that went infinite
    out = ref_net(X)
    loss = nn.functional.softplus(-y * out).mean()
    grads = torch.autograd.grad(loss, ref_net.weights())
    step = [w.detach() - HOOKED["lr"] * g for w, g in zip(ref_net.weights(), grads)]
    assert all(bool(torch.isfinite(w).all()) for w in step)
    assert ref_net.norm() <= 6.0 < float(torch.sqrt(sum((w**2).sum() for w in step)))
    _force(monkeypatch, every)
    res, net, n_calls = run()
    _same(res, ref)
    assert ref_calls < n_calls <= ref_calls + every + 1  # one window replayed, once
    torch.testing.assert_close(net.frozen, ref_net.frozen, rtol=0.0, atol=0.0)
    torch.testing.assert_close(net.scale, ref_net.scale, rtol=0.0, atol=0.0)


def test_hooked_finite_run_is_bit_identical(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same hooked net with c out of reach: completed, nothing replayed (the hook that
    reads the shared activation sees exactly the forward passes of K = 1)."""
    X, y = _hooked_data(DT)
    ref_net = _Hooked(DT, c=1e9)
    ref = train(ib.Homogeneous(ref_net, degree=3, check=False), X, y, **HOOKED)
    _force(monkeypatch, 7)
    net = _Hooked(DT, c=1e9)
    res = train(ib.Homogeneous(net, degree=3, check=False), X, y, **HOOKED)
    _same(res, ref)
    assert res.status == "completed" and net.seen == ref_net.seen


# ---------------------------------------------------------------------------- overflow
def _ce_model(dtype: torch.dtype, c: float) -> ib.Homogeneous:
    """3 classes; once ‖W‖ > c a hook sets the logits to ∓0.75·max (finite, the sign of each
    flipped), whose spread makes the cross-entropy +inf."""
    lin = nn.Linear(3, 3, bias=False).to(dtype)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1, -2, 3], [2, 1, -1], [-3, 2, 1]], dtype=dtype) / 10)
    big = 0.75 * torch.finfo(dtype).max

    def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
        return torch.where(module.weight.detach().norm() > c, -torch.sign(out) * big, out)

    lin.register_forward_hook(hook)
    return ib.Homogeneous(lin, degree=1, check=False)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_entropy_overflows_on_finite_logits(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype
) -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g).to(dtype)
    y = torch.argmax(X, dim=1)
    kw = dict(loss="cross_entropy", weight_decay=0.0, lr=0.02, steps=300, num_evals=4)
    ref = _diverging(_ce_model(dtype, 0.8), X, y, **kw)
    assert 40 < ref.iterations < 100
    for every in (3, 64):
        _force(monkeypatch, every)
        _same(_diverging(_ce_model(dtype, 0.8), X, y, **kw), ref)


@pytest.mark.parametrize(
    "dtype, scale", [(torch.float64, 1e300), (torch.float64, 1e306), (torch.float32, 1e36)]
)
def test_huge_finite_weights_and_outputs_are_never_replayed(
    monkeypatch: pytest.MonkeyPatch, dtype: torch.dtype, scale: float
) -> None:
    """Weights and outputs near the top of the float range, mostly positive (at 1e306 and in
    float32 a window's sum of the stash overflows; the logistic loss keeps the gradient
    bounded): completed, identical, one gradient pass per step (no window read as failed)."""
    g = torch.Generator().manual_seed(1)
    X = torch.randn(10, 4, generator=g).to(dtype)
    X[:, :2] = X[:, :2].abs()
    y = torch.sign(X[:, 3])

    def net() -> ib.Homogeneous:
        lin = nn.Linear(4, 1, bias=False).to(dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[scale, scale, 0.3 * scale, 0.5]], dtype=dtype))
        return ib.Homogeneous(lin, degree=1)

    kw = dict(weight_decay=0.0, lr=0.1, steps=100, num_evals=5)
    ref = train(net(), X, y, **kw)
    top = float(torch.tensor(scale, dtype=dtype))  # the weights never move
    assert ref.status == "completed" and float(ref.model.theta().abs().max()) == top
    calls = [0]
    real = Problem.param_gradients

    def counted(self: Problem):
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(Problem, "param_gradients", counted)
    for every in (3, 64):
        _force(monkeypatch, every)
        calls[0] = 0
        _same(train(net(), X, y, **kw), ref)
        assert calls[0] == 100


# ---------------------------------------------------------------------------- NaN placement
def _limited(c: float, bad: float) -> ib.Homogeneous:
    """A linear model whose outputs become ``bad`` (NaN or inf) once ‖w‖ > c."""
    lin = nn.Linear(3, 1, bias=False).to(DT)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]], dtype=DT))

    def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
        return out * torch.where(module.weight.detach().norm() > c, bad, 1.0)

    lin.register_forward_hook(hook)
    return ib.Homogeneous(lin, degree=1, check=False)


def _limited_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(12, 3, generator=g, dtype=DT)
    return X, torch.sign(X[:, 0])


LIMITED = dict(weight_decay=0.0, lr=0.05, num_evals=3)
D_LIMITED = 60  # the first step with ‖w‖ > 1 (checked below)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
@pytest.mark.parametrize(
    "where", ["eval at D", "eval at D-1", "last step", "checkpoint due at D", "checkpoint at D-1"]
)
def test_non_finite_at_a_record_a_checkpoint_or_the_last_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, bad: float, where: str
) -> None:
    D, lr = D_LIMITED, LIMITED["lr"]
    kw: dict[str, Any] = {
        "eval at D": dict(steps=400, eval_times=np.array([0.0, 10 * lr, D * lr, 400 * lr])),
        "eval at D-1": dict(steps=400, eval_times=np.array([0.0, (D - 1) * lr, 400 * lr])),
        "last step": dict(steps=D, num_evals=50),
        "checkpoint due at D": dict(steps=400, checkpoint_every=D * lr / 2),
        "checkpoint at D-1": dict(steps=400, checkpoint_every=(D - 1) * lr),
    }[where]
    X, y = _limited_data()
    results, files = [], []
    for every in (1, 3, 7, 64):
        _force(monkeypatch, every)
        files.append(tmp_path / f"run{every}.pt")
        extra = {"checkpoint_path": files[-1]} if "checkpoint" in where else {}
        results.append(_diverging(_limited(1.0, bad), X, y, **dict(LIMITED, **kw), **extra))
    assert results[0].iterations == D - 1 and float(results[0].model.theta().norm()) <= 1.0
    for res, path in zip(results[1:], files[1:]):
        _same(res, results[0])
        if "checkpoint" in where:
            saved = _same_checkpoint(files[0], path)
            assert saved["n_steps"] == (D // 2 if where == "checkpoint due at D" else D - 1)
    if where == "eval at D-1":
        assert results[0].history["step"][-1] == D - 1


def test_resume_with_windows_from_a_per_step_checkpoint_of_a_diverging_run(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Checkpoints every 0.35 time units (7 steps) under K = 1; resumed with K = 7 from the last
    one, the run diverges as the uninterrupted one, with the same rows and bits."""
    X, y = _limited_data()
    kw = dict(LIMITED, steps=400, checkpoint_every=0.35)
    ref = _diverging(_limited(1.0, math.inf), X, y, checkpoint_path=tmp_path / "a.pt", **kw)
    assert torch.load(tmp_path / "a.pt", weights_only=True)["n_steps"] == 56
    _force(monkeypatch, 7)
    again = _diverging(_limited(1.0, math.inf), X, y, checkpoint_path=tmp_path / "a.pt",
                       resume=True, **kw)  # fmt: skip
    _same(again, ref)


class _Float64Out(nn.Module):
    """float32 weights, float64 outputs far beyond float32's range (finite in float64)."""

    def __init__(self) -> None:
        super().__init__()
        self.l = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.l.weight.copy_(torch.tensor([[0.5, -0.2, 0.1]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l(x).double().squeeze(-1) * 1e250


def test_float64_outputs_of_a_float32_net_are_not_mistaken_for_divergence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stash holds the outputs in their own (wider) dtype: no window reads as failed, so
    K = 8 takes exactly the gradient passes of K = 1 (before: every window replayed, 135 vs
    64), and θ keeps the parameters' dtype."""
    calls = [0]
    real = Problem.param_gradients

    def counted(self: Problem) -> Any:
        calls[0] += 1
        return real(self)

    monkeypatch.setattr(Problem, "param_gradients", counted)
    g = torch.Generator().manual_seed(2)
    X = torch.randn(10, 3, generator=g)
    y = torch.sign(_Float64Out()(X)).detach()
    runs = []
    for every in (1, 8):
        _force(monkeypatch, every)
        calls[0] = 0
        h = ib.Homogeneous(_Float64Out(), degree=1, check=False)
        res = train(h, X, y, weight_decay=0.0, lr=1e-3, steps=64, num_evals=2, progress=False)
        runs.append((res, calls[0]))
    (ref, passes_1), (res, passes_8) = runs
    assert ref.status == "completed" and passes_8 == passes_1 == 64
    _same(res, ref)
    assert res.model.theta().dtype == torch.float32


@pytest.mark.parametrize("every", [3, 64])
def test_an_error_after_an_unread_divergence_ends_diverged_as_with_a_read_every_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, every: int
) -> None:
    """The model refuses non-finite weights (a ValueError from a pre-hook); θ turns NaN one
    step after the outputs turn infinite at D. K = 1 ends "diverged" at θ_{D−1} before any
    forward sees it; by windows the error comes first, from a state the unread window let
    through, and the window is replayed one step at a time: the same "diverged" at θ_{D−1},
    and the checkpoint finite, on the K = 1 trajectory."""

    def refusing() -> ib.Homogeneous:
        h = _limited(1.0, math.inf)

        def pre(module: nn.Module, inputs: Any) -> None:
            if not bool(torch.isfinite(module.weight).all()):
                raise ValueError("non-finite weight")

        h.model.register_forward_pre_hook(pre)
        return h

    X, y = _limited_data()
    kw = dict(LIMITED, steps=400, checkpoint_every=0.35)
    ref = _diverging(refusing(), X, y, **kw)
    assert ref.iterations == D_LIMITED - 1
    _force(monkeypatch, every)
    model, path = refusing(), tmp_path / "run.pt"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = train(model, X, y, checkpoint_path=path, **kw)
    _same(res, ref)
    assert "diverged" in str(caught[-1].message)
    saved = torch.load(path, weights_only=True)
    assert saved["n_steps"] <= D_LIMITED - 1
    assert bool(torch.isfinite(saved["theta"]).all())
    _force(monkeypatch, 1)
    there = _limited(1.0, math.inf)
    if saved["n_steps"] > 0:
        there = train(there, X, y, **dict(kw, steps=saved["n_steps"])).model
    torch.testing.assert_close(saved["theta"], there.theta(), rtol=0.0, atol=0.0)


# ---------------------------------------------------------------------------- metrics
def _sign_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    X = torch.randint(0, 2, (16, 10), generator=g).to(DT) * 2 - 1
    return X, torch.sign(X[:, 0] - X[:, 1] + X[:, 2])


def _diag() -> ib.DiagonalNet:
    return ib.DiagonalNet(10, alpha=4.0, alpha_mode="norm", dtype=DT)


KW = dict(weight_decay=0.05, lr=0.05, steps=200, num_evals=15, checkpoint_every=0.37)


def _meddler(model: ib.Homogeneous, t: float) -> dict[str, float]:
    """Metrics that scale one parameter in place and swap another's storage."""
    first, *_, last = model.parameters()
    with torch.no_grad():
        first.mul_(3.0)
    last.data = last.data.clone() * -2.0
    return {"t2": 2 * t}


def test_metrics_that_move_the_parameters(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The trajectory is that of harmless metrics, for K = 1 and by windows, with the same
    last checkpoint (written off the window grid)."""
    X, y = _sign_data()
    plain = train(_diag(), X, y, metrics=lambda m, t: {"t2": 2 * t}, **KW)
    results = []
    for every in (1, 3, 64):
        _force(monkeypatch, every)
        path = tmp_path / f"m{every}.pt"
        results.append(train(_diag(), X, y, metrics=_meddler, checkpoint_path=path, **KW))
        _same(results[-1], plain)
    _same_checkpoint(tmp_path / "m1.pt", tmp_path / "m64.pt")


def _raising_metrics(at: int, exc: BaseException | None):
    count = [0]

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        count[0] += 1
        with torch.no_grad():
            next(model.parameters()).add_(1.0)  # moved before raising
        if count[0] == at and exc is not None:
            raise exc
        return {"s": float(model.theta().sum())}

    return metrics


@pytest.mark.parametrize("exc", [ValueError("metrics failed"), KeyboardInterrupt()])
def test_metrics_that_raise(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException
) -> None:
    """Raised by the 6th evaluation's metrics: the model, the checkpoint (θ of that step, the
    row not counted) and the sidecar as with K = 1; resumed with K = 7, the full run."""
    X, y = _sign_data()
    full = train(_diag(), X, y, metrics=_raising_metrics(0, None), **KW)
    for every in (1, 3, 64):
        _force(monkeypatch, every)
        net, path, csv = _diag(), tmp_path / f"r{every}.pt", tmp_path / f"r{every}.csv"
        kw = dict(KW, metrics=_raising_metrics(6, exc), checkpoint_path=path, history_path=csv)
        if isinstance(exc, ValueError):
            with pytest.raises(ValueError, match="metrics failed"):
                train(net, X, y, **kw)
        else:
            res = train(net, X, y, **kw)
            assert res.status == "interrupted" and len(res.history) == 5
        status = json.loads(csv.with_suffix(".json").read_text())["status"]
        assert status == ("failed" if isinstance(exc, ValueError) else "interrupted")
        if every == 1:
            theta = _flat(net)
            shutil.copy(path, tmp_path / "first.pt")
        else:
            torch.testing.assert_close(_flat(net), theta, rtol=0.0, atol=0.0)
            saved = _same_checkpoint(tmp_path / "first.pt", path)
            assert saved["eval_index"] == 5
        _force(monkeypatch, 7)
        rest = train(_diag(), X, y, **dict(kw, metrics=_raising_metrics(0, None), resume=True))
        _same(rest, full)


# ---------------------------------------------------------------------------- the forward raises
def _raising_diag(at: int, exc: BaseException | None) -> ib.DiagonalNet:
    """The diagonal net whose ``at``-th forward with gradients (set-up included) raises."""
    net = _diag()
    count = [0]

    def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
        if torch.is_grad_enabled():
            count[0] += 1
            if count[0] == at and exc is not None:
                raise exc

    net.register_forward_hook(hook)
    return net


@pytest.mark.parametrize("exc", [RuntimeError("forward failed"), KeyboardInterrupt()])
def test_the_forward_raises_inside_a_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException
) -> None:
    """An error or a second Ctrl-C from the 45th forward pass: the same committed state, model
    and checkpoint for every K, and the checkpoint written with K = 1 resumes with K = 7 to the
    uninterrupted run (as do the others)."""
    X, y = _sign_data()
    full = train(_raising_diag(0, None), X, y, **KW)
    for every in (1, 7, 64):
        _force(monkeypatch, every)
        net, path = _raising_diag(45, exc), tmp_path / f"f{every}.pt"
        if isinstance(exc, RuntimeError):
            with pytest.raises(RuntimeError, match="forward failed"):
                train(net, X, y, checkpoint_path=path, **KW)
        else:
            res = train(net, X, y, checkpoint_path=path, **KW)
            assert res.status == "interrupted" and 0 < res.iterations < 200
        if every == 1:
            theta = _flat(net)
        else:
            torch.testing.assert_close(_flat(net), theta, rtol=0.0, atol=0.0)
            _same_checkpoint(tmp_path / "f1.pt", path)
    for every in (1, 7, 64):
        _force(monkeypatch, 7)
        path = tmp_path / f"f{every}.pt"
        _same(train(_raising_diag(0, None), X, y, checkpoint_path=path, resume=True, **KW), full)


def test_error_in_the_final_forward_with_a_window_pending(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The outputs at the last step (no gradient pass) raise while the steps since the last
    record are unread: θ_200 is committed as with K = 1, its row missing, and the resume
    records it."""
    X, y = _sign_data()
    full = train(_diag(), X, y, **KW)
    _force(monkeypatch, 64)
    with monkeypatch.context() as m:
        m.setattr(Problem, "current_outputs", lambda self: (_ for _ in ()).throw(OSError("io")))
        net = _diag()
        with pytest.raises(OSError, match="io"):
            train(net, X, y, checkpoint_path=tmp_path / "end.pt", **KW)
    saved = torch.load(tmp_path / "end.pt", weights_only=True)
    assert saved["n_steps"] == 200 and saved["eval_index"] == len(full.history) - 1
    torch.testing.assert_close(_flat(net), full.model.theta(), rtol=0.0, atol=0.0)
    _same(train(_diag(), X, y, checkpoint_path=tmp_path / "end.pt", resume=True, **KW), full)


# ---------------------------------------------------------------------------- Fig. 4 loop
def _cfg(**over: Any):
    return dataclasses.replace(get_config("modular-addition-no-wd", "tiny"), **over)


def _nowd(monkeypatch: pytest.MonkeyPatch, cfg: Any, hook: Any = None, **kw: Any):
    """(run output, final parameters) of the Fig. 4 loop, the net given ``hook`` first."""
    nets: list[nn.Module] = []
    real = nowd.modular_network

    def make(*args: Any, **kwargs: Any) -> nn.Module:
        nets.append(real(*args, **kwargs))
        if hook is not None:
            hook(nets[-1])
        return nets[-1]

    with monkeypatch.context() as m:
        m.setattr(nowd, "modular_network", make)
        res = nowd.run_no_weight_decay(cfg, **kw)
    return res, [q.detach().clone() for q in nets[-1].parameters()]


def _nowd_same(a: Any, b: Any) -> None:
    (ra, pa), (rb, pb) = a, b
    assert [ra.train_info[k] for k in ("status", "n_steps")] == [
        rb.train_info[k] for k in ("status", "n_steps")
    ]
    for key in ("switch_step", "log_flow_time"):
        np.testing.assert_array_equal(ra.summary[key], rb.summary[key], err_msg=key)
    assert ra.history.columns == rb.history.columns and len(ra.history) == len(rb.history)
    for c in ra.history.columns:
        if c != "wall_time":
            np.testing.assert_array_equal(ra.history[c], rb.history[c], err_msg=c)
    for qa, qb in zip(pa, pb, strict=True):
        torch.testing.assert_close(qa, qb, rtol=0.0, atol=0.0)


def _nowd_same_checkpoint(a: Path, b: Path) -> int:
    ca, cb = (torch.load(p, weights_only=True) for p in (a, b))
    assert ca["k"] == cb["k"] and ca["columns"] == cb["columns"]
    for key, value in ca["params"].items():
        torch.testing.assert_close(cb["params"][key], value, rtol=0.0, atol=0.0)
    for c in ca["columns"]:
        if c != "wall_time":
            np.testing.assert_array_equal(ca["history"][c], cb["history"][c], err_msg=c)
    return int(cb["k"])


def test_fig4_checkpoints_off_the_window_grid(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """400 steps (a checkpoint every 4) read every 5 or 64 steps: the run and the last
    checkpoint's content (step 396) as with K = 1."""
    cfg = _cfg(steps=400)
    ref = _nowd(monkeypatch, cfg, checkpoint_path=tmp_path / "a.pt")
    for every in (5, 64):
        monkeypatch.setattr(nowd_loop, "_CPU_READ_EVERY", every)
        _nowd_same(_nowd(monkeypatch, cfg, checkpoint_path=tmp_path / f"b{every}.pt"), ref)
        assert _nowd_same_checkpoint(tmp_path / "a.pt", tmp_path / f"b{every}.pt") == 396


@pytest.mark.parametrize("first, then", [(1, 7), (7, 1)])
def test_fig4_ctrl_c_resumes_across_read_intervals(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, first: int, then: int
) -> None:
    """A Ctrl-C after update 49 (off the checkpoint grid of 5 and the window grid of 7),
    checkpointed with one K and resumed with the other: the uninterrupted run."""
    cfg = _cfg(steps=500)
    full = _nowd(monkeypatch, cfg)
    real, count = nowd._descend, [0]

    def update(*args: Any) -> None:
        real(*args)
        count[0] += 1
        if count[0] == 49:
            os.kill(os.getpid(), signal.SIGINT)

    with monkeypatch.context() as m:
        m.setattr(nowd_loop, "_CPU_READ_EVERY", first)
        m.setattr(nowd, "_descend", update)
        with pytest.raises(KeyboardInterrupt):
            _nowd(m, cfg, checkpoint_path=tmp_path / "c.pt")
    assert torch.load(tmp_path / "c.pt", weights_only=True)["k"] == 49
    monkeypatch.setattr(nowd_loop, "_CPU_READ_EVERY", then)
    _nowd_same(_nowd(monkeypatch, cfg, checkpoint_path=tmp_path / "c.pt", resume=True), full)


@pytest.mark.parametrize("exc", [RuntimeError("forward failed"), KeyboardInterrupt()])
def test_fig4_the_forward_raises_inside_a_window(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: BaseException
) -> None:
    """The 61st forward pass with gradients raises: the checkpoint left is the one K = 1
    leaves (the last multiple of 3 steps verified), and it resumes to the full run."""

    def raising(net: nn.Module) -> None:
        count = [0]

        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> None:
            if torch.is_grad_enabled():
                count[0] += 1
                if count[0] == 61:
                    raise exc

        net.register_forward_hook(hook)

    cfg = _cfg()
    for every in (1, 7):
        monkeypatch.setattr(nowd_loop, "_CPU_READ_EVERY", every)
        with pytest.raises(type(exc)):
            _nowd(monkeypatch, cfg, hook=raising, checkpoint_path=tmp_path / f"e{every}.pt")
    assert _nowd_same_checkpoint(tmp_path / "e1.pt", tmp_path / "e7.pt") % 3 == 0
    full = _nowd(monkeypatch, cfg)
    _nowd_same(_nowd(monkeypatch, cfg, checkpoint_path=tmp_path / "e7.pt", resume=True), full)


@pytest.mark.parametrize("norm, kind", [(8.6, "record"), (9.6, "checkpoint")])
def test_fig4_divergence_at_a_record_or_a_checkpoint_step(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, norm: float, kind: str
) -> None:
    """log L turns NaN (outputs NaN once ‖θ‖ > ``norm``) exactly at a step the monitor
    records, or one the loop checkpoints: the same run and checkpoint for K = 7 as K = 1."""

    def exploding(net: nn.Module) -> None:
        params = list(net.parameters())

        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            size = torch.sqrt(sum((q.detach() ** 2).sum() for q in params))
            return out * torch.where(size > norm, math.nan, 1.0)

        net.register_forward_hook(hook)

    cfg = _cfg()
    ref = _nowd(monkeypatch, cfg, hook=exploding, checkpoint_path=tmp_path / "a.pt")
    d = ref[0].train_info["n_steps"]
    assert ref[0].train_info["status"] == "diverged"
    steps = np.round(log_schedule(cfg.steps * cfg.lr, cfg.num_evals, step=cfg.lr) / cfg.lr)
    assert (d in steps) if kind == "record" else (d % 3 == 0 and d not in steps)
    monkeypatch.setattr(nowd_loop, "_CPU_READ_EVERY", 7)
    _nowd_same(_nowd(monkeypatch, cfg, hook=exploding, checkpoint_path=tmp_path / "b.pt"), ref)
    _nowd_same_checkpoint(tmp_path / "a.pt", tmp_path / "b.pt")


@pytest.mark.parametrize("every", [1, 7])
def test_fig4_a_nan_gradient_is_never_checkpointed(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, every: int
) -> None:
    """A step whose log L is finite but whose gradient is NaN (the forward unchanged; the
    backward 0·NaN once ‖θ‖² > 75) gives a NaN θ_{k+1}; the run stops "diverged" at the next
    step, and the checkpoint keeps the last finite state, never θ_{k+1}."""

    def nan_gradient(net: nn.Module) -> None:
        params = list(net.parameters())

        def hook(module: nn.Module, inputs: Any, out: torch.Tensor) -> torch.Tensor:
            s = sum((q**2).sum() for q in params)
            return out * torch.where(s > 75.0, torch.ones_like(s), 1.0 + 0.0 * torch.sqrt(75.0 - s))

        net.register_forward_hook(hook)

    monkeypatch.setattr(nowd_loop, "_CPU_READ_EVERY", every)
    res, _ = _nowd(monkeypatch, _cfg(steps=100), hook=nan_gradient,
                   checkpoint_path=tmp_path / "run.pt")  # fmt: skip
    assert res.train_info["status"] == "diverged"
    blob = torch.load(tmp_path / "run.pt", weights_only=True)
    assert all(bool(torch.isfinite(v).all()) for v in blob["params"].values())
    assert blob["k"] == res.train_info["n_steps"] - 1


# ---------------------------------------------------------------------------- sweep stop flag
def test_sweep_stop_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker whose run was interrupted sets the flag; a run queued after it returns
    ("not run", NaN) without training; a completed run leaves the flag alone."""
    outcomes: list[str] = []

    class _Result:
        def __init__(self, status: str) -> None:
            self.status, self.wall_time = status, 1.5

    def fake_run(name: str, **kwargs: Any) -> _Result:
        outcomes.append(name)
        return _Result(name)

    flag = threading.Event()
    monkeypatch.setattr(_sweepjobs, "run", fake_run)
    monkeypatch.setattr(_sweepjobs, "_STOP", flag)
    keys = "scale seed out_dir device method progress overrides figure threads resume"
    task: dict[str, Any] = dict.fromkeys(keys.split())
    task.update(prefix="p", quiet=True)
    assert _sweepjobs.run_job({**task, "name": "completed"}) == ("completed", 1.5)
    assert not flag.is_set()
    assert _sweepjobs.run_job({**task, "name": "interrupted"}) == ("interrupted", 1.5)
    assert flag.is_set()
    status, wall = _sweepjobs.run_job({**task, "name": "completed"})
    assert status == _sweepjobs.NOT_RUN and math.isnan(wall)
    assert outcomes == ["completed", "interrupted"]
