"""Training runs that fail safe (issue 11, item 6): divergence stops at the step it happens and
leaves the last finite state, outputs never share a file, resume refuses another run's
checkpoint (a real hash of data, configuration and model), torn history files, killed runs."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
from implicitbias import InvalidArgumentError
from implicitbias.dynamics import History, train
from implicitbias.dynamics._problem import Problem

DT = torch.float64


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(n: int = 16, d: int = 10, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    X = torch.randint(0, 2, (n, d), generator=g).to(DT) * 2 - 1
    return X, torch.sign(X[:, 0] - X[:, 1] + X[:, 2])


def _diag(d: int = 10) -> ib.DiagonalNet:
    return ib.DiagonalNet(d, alpha=4.0, alpha_mode="norm", dtype=DT)


KW = dict(weight_decay=0.05, lr=0.05, steps=200, num_evals=15)


def _same(a: History, b: History) -> None:
    """Equal histories, column by column, apart from wall-clock time (exactly)."""
    assert a.columns == b.columns and len(a) == len(b)
    for c in a.columns:
        if c != "wall_time":
            np.testing.assert_array_equal(a[c], b[c], err_msg=c)


def _table(h: History) -> np.ndarray:
    """The recorded numbers (``rescaled_time`` is NaN by definition when λ = 0 or α ≤ 1)."""
    return np.column_stack([h[c] for c in h.columns if c != "rescaled_time"])


# ---------------------------------------------------------------------------- divergence
def _regression() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(8, 3, generator=g, dtype=DT), torch.randn(8, generator=g, dtype=DT)


def _linear() -> ib.Homogeneous:
    lin = nn.Linear(3, 1, bias=False).to(DT)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]], dtype=DT))
    return ib.Homogeneous(lin, degree=1)


GD_BLOWUP = dict(loss="squared", weight_decay=0.0, lr=5.0)  # η·λ_max(2XᵀX/n) ≫ 2


def _diverging_gd(**kw):
    X, y = _regression()
    with pytest.warns(RuntimeWarning, match=r"train: the gd run diverged .* after t = "):
        return train(_linear(), X, y, steps=2000, num_evals=40, **GD_BLOWUP, **kw)


def test_gd_divergence_stops_at_the_last_finite_iterate() -> None:
    """A too-large step: the run stops where the loss first overflows, with θ_{K} the last
    finite iterate — exactly the parameters of a run of K steps — and one more step from it is
    non-finite (the check runs every step, not every 1000)."""
    res = _diverging_gd()
    K = res.iterations
    assert res.status == "diverged" and not res.interrupted
    assert 0 < K < 2000 and res.t_final == K * 5.0
    ref = train(_linear(), *_regression(), steps=K, num_evals=2, **GD_BLOWUP)
    assert ref.status == "completed"
    torch.testing.assert_close(res.model.theta(), ref.model.theta(), rtol=0.0, atol=0.0)
    # the next iterate is the first non-finite one
    X, y = _regression()
    prob = Problem(res.model, X, y, ib.loss_function("squared"), 0.0)
    grads, _, values = prob.param_gradients()
    assert bool(torch.isfinite(values).all())
    prob.sgd_step(grads, 5.0)
    _, values_next = prob.current_outputs()
    assert not bool(torch.isfinite(values_next).all())
    # the history stops at the last finite point and holds only finite numbers
    assert np.all(np.isfinite(_table(res.history)))
    assert res.history["step"][-1] <= K


def test_gd_divergence_never_overwrites_the_last_good_checkpoint(tmp_path: Path) -> None:
    """Periodic checkpoints every 50 steps: the file keeps the last one before the divergence
    (finite, equal to a run of that many steps); the diverged end is not written over it."""
    ckpt, csv = tmp_path / "run.pt", tmp_path / "run.csv"
    res = _diverging_gd(checkpoint_path=ckpt, checkpoint_every=250.0, history_path=csv)
    saved = torch.load(ckpt, weights_only=True)
    assert saved["n_steps"] == 50 * (res.iterations // 50) < res.iterations
    assert bool(torch.isfinite(saved["theta"]).all())
    ref = train(_linear(), *_regression(), steps=saved["n_steps"], num_evals=2, **GD_BLOWUP)
    torch.testing.assert_close(saved["theta"], ref.model.theta(), rtol=0.0, atol=0.0)
    # the CSV on disk is the result's history; the sidecar says diverged
    assert History.from_csv(csv) == res.history
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"
    # resuming replays the same divergence from the good checkpoint
    X, y = _regression()
    with pytest.warns(RuntimeWarning, match="diverged"):
        again = train(
            _linear(), X, y, steps=2000, num_evals=40, checkpoint_path=ckpt,
            checkpoint_every=250.0, resume=True, **GD_BLOWUP,
        )  # fmt: skip
    assert again.resumed_from == saved["t"]
    assert again.iterations == res.iterations
    torch.testing.assert_close(again.model.theta(), res.model.theta(), rtol=0.0, atol=0.0)


class _Threshold(nn.Module):
    """w·x, with outputs that become +inf (``mode="shift"``: the gradient stays finite) or
    inf·w·x (``mode="scale"``: non-finite gradients) once ‖w‖ exceeds 30."""

    def __init__(self, mode: str) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1, bias=False).to(DT)
        self.mode = mode
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[0.1, -0.2, 0.3]], dtype=DT))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x)
        if float(self.lin.weight.detach().norm()) > 30.0:
            return out + math.inf if self.mode == "shift" else out * math.inf
        return out


@pytest.mark.parametrize("mode", ["shift", "scale"])
@pytest.mark.parametrize("method", ["gd", "flow"])
def test_model_blowing_up_mid_run_is_diverged_at_a_finite_state(mode: str, method: str) -> None:
    """A model whose outputs become non-finite past a radius (the flow's accepted step lands
    there with a finite error estimate for 'shift'; for 'scale' every trial beyond is rejected
    until the step size underflows): status diverged, never step_size_too_small, and the model,
    the history and the outputs are finite."""
    g = torch.Generator().manual_seed(0)
    X = torch.randn(8, 3, generator=g, dtype=DT)
    y = 100.0 * (X @ torch.tensor([1.0, -2.0, 0.5], dtype=DT))  # pulls ‖w‖ to ~230
    model = _Threshold(mode)
    with pytest.warns(RuntimeWarning, match=f"the {method} run diverged"):
        res = train(
            model, X, y, loss="squared", weight_decay=0.0, lr=0.01, t_max=20.0, num_evals=30,
            method=method, degree=1,
        )  # fmt: skip
    assert res.status == "diverged"
    assert res.t_final < 20.0
    theta = res.model.theta()
    assert bool(torch.isfinite(theta).all()) and float(theta.norm()) <= 30.0
    with torch.no_grad():
        assert bool(torch.isfinite(model(X)).all())  # the module itself was restored
    assert np.all(np.isfinite(_table(res.history)))
    assert res.history["t"][-1] <= res.t_final


def test_huge_finite_parameters_are_not_divergence() -> None:
    """Two weights of 1e308 (their sum overflows; every entry is finite) on inputs of 1e-300,
    one ordinary weight: the quick check's overflow is re-checked entry by entry, and the run
    equals plain torch SGD."""
    g = torch.Generator().manual_seed(2)
    X = torch.randn(6, 3, generator=g, dtype=DT)
    X[:, :2] *= 1e-300
    y = torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0, -1.0], dtype=DT)

    def huge() -> nn.Linear:
        lin = nn.Linear(3, 1, bias=False).to(DT)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor([[1e308, 1e308, 0.5]], dtype=DT))
        return lin

    res = train(ib.Homogeneous(huge(), degree=1), X, y, weight_decay=0.0, lr=0.5, steps=20)
    assert res.status == "completed" and res.iterations == 20
    ref = huge()
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    ell = ib.loss_function("logistic")
    for _ in range(20):
        opt.zero_grad()
        ell(ref(X).reshape(-1), y).backward()
        opt.step()
    theta = res.model.theta()
    torch.testing.assert_close(theta, ref.weight.detach().reshape(-1), rtol=1e-12, atol=0)
    assert float(theta[2]) != 0.5  # it trained


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_model_with_non_finite_parameters_is_refused(value: float, tmp_path: Path) -> None:
    X, y = _data()
    net = _diag()
    with torch.no_grad():
        net.u[3] = value
    with pytest.raises(InvalidArgumentError, match=r"The 'model' argument of train .*finite"):
        train(net, X, y, history_path=tmp_path / "h.csv", **KW)
    assert not (tmp_path / "h.csv").exists()


def test_initial_loss_that_overflows_is_refused() -> None:
    X, _ = _regression()
    huge = torch.full((8,), 1e200, dtype=DT)  # (f − y)² overflows float64
    with pytest.raises(InvalidArgumentError, match=r"The 'y' argument of train .*finite initial"):
        train(_linear(), X, huge, loss="squared", weight_decay=0.0, lr=0.1, steps=5)


# ---------------------------------------------------------------------------- output files
def _collide(tmp_path: Path, how: str) -> tuple[Path, Path]:
    hist = tmp_path / "run.csv"
    if how == "same":
        return hist, tmp_path / "run.csv"
    if how == "spelling":
        (tmp_path / "sub").mkdir()
        return hist, tmp_path / "sub" / ".." / "." / "run.csv"
    if how == "symlink":
        hist.write_text("")
        (tmp_path / "link.pt").symlink_to(hist)
        return hist, tmp_path / "link.pt"
    if how == "hardlink":
        hist.write_text("")
        os.link(hist, tmp_path / "hard.pt")
        return hist, tmp_path / "hard.pt"
    assert how == "sidecar"  # run.csv writes its configuration to run.json
    return hist, tmp_path / "run.json"


@pytest.mark.parametrize("how", ["same", "spelling", "symlink", "hardlink", "sidecar"])
def test_two_outputs_on_one_file_are_refused_before_writing(tmp_path: Path, how: str) -> None:
    hist, ckpt = _collide(tmp_path, how)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    with pytest.raises(
        InvalidArgumentError, match=r"The 'checkpoint_path' argument of train .*history_path"
    ):
        train(_diag(), *_data(), history_path=hist, checkpoint_path=ckpt, **KW)
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before  # nothing written, nothing created


def test_relative_and_absolute_spellings_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidArgumentError, match=r"'checkpoint_path'.*history_path"):
        train(_diag(), *_data(), history_path="run.csv", checkpoint_path=tmp_path / "run.csv", **KW)
    assert list(tmp_path.iterdir()) == []


def test_history_whose_sidecar_is_itself_is_refused(tmp_path: Path) -> None:
    hist = tmp_path / "run.csv"
    hist.write_text("")
    (tmp_path / "run.json").symlink_to(hist)
    with pytest.raises(InvalidArgumentError, match=r"The 'history_path' argument .*sidecar"):
        train(_diag(), *_data(), history_path=hist, **KW)
    assert hist.read_text() == ""


@pytest.mark.parametrize("arg", ["history_path", "checkpoint_path"])
def test_output_that_is_a_directory_or_under_a_file_is_refused(tmp_path: Path, arg: str) -> None:
    with pytest.raises(InvalidArgumentError, match=f"The '{arg}' argument of train .*directory"):
        train(_diag(), *_data(), **{arg: tmp_path}, **KW)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError, match=f"The '{arg}' argument of train .*under"):
        train(_diag(), *_data(), **{arg: tmp_path / "file" / "run.out"}, **KW)
    assert [p.name for p in tmp_path.iterdir()] == ["file"]


# ---------------------------------------------------------------------------- fingerprint
def _edit(X: torch.Tensor, y: torch.Tensor, how: str) -> tuple[torch.Tensor, torch.Tensor]:
    X, y = X.clone(), y.clone()
    if how == "permuted rows":
        perm = torch.roll(torch.arange(len(y)), 1)
        return X[perm], y[perm]
    if how == "one ulp":
        X[5, 2] = float(np.nextafter(X[5, 2].item(), np.inf))
        return X, y
    if how == "swapped features of one example":  # same sums, same sum of squares
        X[0, 3], X[0, 4] = X[0, 4].item(), X[0, 3].item()
        assert not torch.equal(X, _data()[0])
        return X, y
    assert how == "one label"
    y[7] = -y[7]
    return X, y


@pytest.mark.parametrize(
    "how", ["permuted rows", "one ulp", "swapped features of one example", "one label"]
)
def test_resume_refuses_an_edited_dataset(tmp_path: Path, how: str) -> None:
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    train(_diag(), X, y, checkpoint_path=ckpt, **KW)
    stamp = ckpt.read_bytes()
    X2, y2 = _edit(X, y, how)
    with pytest.raises(
        InvalidArgumentError,
        match=r"The 'checkpoint_path' argument of train .*resume=True.*data_fingerprint",
    ):
        train(_diag(), X2, y2, checkpoint_path=ckpt, resume=True, **KW)
    assert ckpt.read_bytes() == stamp


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (dict(lr=0.04, steps=250), "lr"),
        (dict(method="flow", rtol=1e-4), "rtol"),
        (dict(method="flow", integrator="dopri5"), "integrator"),
        (dict(alpha=3.0), "alpha"),
        (dict(loss="exponential"), "loss"),
        (dict(method="flow", atol=1e-7), "atol"),
        (dict(method="flow", max_step=0.5), "max_step"),
        (dict(num_evals=16), "num_eval_times"),
    ],
)
def test_resume_refuses_another_configuration(tmp_path: Path, change: dict, key: str) -> None:
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    base = dict(KW, method=change.get("method", "gd"))
    train(_diag(), X, y, checkpoint_path=ckpt, **base)
    with pytest.raises(InvalidArgumentError, match=rf"'checkpoint_path'.*differs in .*{key}"):
        train(_diag(), X, y, checkpoint_path=ckpt, resume=True, **{**base, **change})


def _mlp(act: nn.Module) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 4, bias=False), act, nn.Linear(4, 1, bias=False), nn.Flatten(0)
    ).to(DT)


def test_resume_refuses_a_checkpoint_of_another_architecture(tmp_path: Path) -> None:
    """Same parameter names and shapes, another activation: not the same run."""
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    train(_mlp(nn.ReLU()), X, y, checkpoint_path=ckpt, degree=2, **KW)
    with pytest.raises(InvalidArgumentError, match=r"'checkpoint_path'.*differs in architecture"):
        train(_mlp(nn.LeakyReLU(0.2)), X, y, checkpoint_path=ckpt, resume=True, degree=2, **KW)
    with pytest.raises(
        InvalidArgumentError, match=r"'checkpoint_path'.*in p: 44 \(checkpoint\) vs 20"
    ):
        train(_diag(), X, y, checkpoint_path=ckpt, resume=True, degree=2, **KW)


@pytest.mark.parametrize("content", ["csv", "state_dict", "old_format", "truncated"])
def test_resume_from_a_file_that_is_not_this_checkpoint(tmp_path: Path, content: str) -> None:
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    if content == "csv":
        ckpt.write_text("t,train_loss\n0.0,0.69\n")
        match = "torch.load cannot read"
    elif content == "state_dict":
        torch.save(_diag().state_dict(), ckpt)
        match = "not a train checkpoint"
    elif content == "old_format":
        torch.save({"format": 1, "config": {}, "theta": torch.zeros(20, dtype=DT)}, ckpt)
        match = "format 1"
    else:
        train(_diag(), X, y, checkpoint_path=ckpt, **KW)
        ckpt.write_bytes(ckpt.read_bytes()[:200])
        match = "torch.load cannot read"
    with pytest.raises(InvalidArgumentError, match=rf"The 'checkpoint_path' argument .*{match}"):
        train(_diag(), X, y, checkpoint_path=ckpt, resume=True, **KW)


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_resume_without_a_checkpoint_is_a_fresh_run(tmp_path: Path, method: str) -> None:
    X, y = _data()
    ckpt = tmp_path / "new" / "run.pt"
    a = train(_diag(), X, y, checkpoint_path=ckpt, resume=True, method=method, **KW)
    b = train(_diag(), X, y, method=method, **KW)
    assert a.resumed_from is None and ckpt.exists()
    _same(a.history, b.history)
    torch.testing.assert_close(a.model.theta(), b.model.theta(), rtol=0.0, atol=0.0)
    # a completed checkpoint resumes to the same answer without a further step
    c = train(_diag(), X, y, checkpoint_path=ckpt, resume=True, method=method, **KW)
    assert c.resumed_from == a.t_final and c.grad_evals == a.grad_evals
    _same(c.history, a.history)
    torch.testing.assert_close(c.model.theta(), a.model.theta(), rtol=0.0, atol=0.0)


# ---------------------------------------------------------------------------- killed runs
def _stopper(at: int, exc: type[BaseException] = KeyboardInterrupt):
    count = [0]

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        count[0] += 1
        if count[0] == at:
            raise exc("stop")
        return {"u0": float(model.model.u[0].detach())}

    return metrics


@pytest.mark.parametrize("method", ["gd", "flow"])
@pytest.mark.parametrize("every", [None, 0.35])
@pytest.mark.parametrize("at", [2, 9])
def test_interrupted_run_resumes_to_the_uninterrupted_answer(
    tmp_path: Path, method: str, every: float | None, at: int
) -> None:
    X, y = _data()
    kw = dict(KW, method=method, checkpoint_every=every)
    full = train(_diag(), X, y, metrics=_stopper(0), **kw)
    ckpt, csv = tmp_path / "run.pt", tmp_path / "run.csv"
    part = train(_diag(), X, y, metrics=_stopper(at), checkpoint_path=ckpt, history_path=csv, **kw)
    assert part.status == "interrupted"
    saved = torch.load(ckpt, weights_only=True)
    assert len(saved["history"]["t"]) == saved["eval_index"] <= at - 1
    rest = train(
        _diag(), X, y, metrics=_stopper(0), checkpoint_path=ckpt, history_path=csv, resume=True,
        **kw,
    )  # fmt: skip
    assert rest.status == "completed" and rest.resumed_from == saved["t"]
    _same(rest.history, full.history)
    _same(History.from_csv(csv), full.history)
    torch.testing.assert_close(rest.model.theta(), full.model.theta(), rtol=0.0, atol=0.0)
    assert (rest.grad_evals, rest.iterations) == (full.grad_evals, full.iterations)


def test_gd_interrupted_inside_an_update_resumes_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second Ctrl-C that lands while the parameters are half updated (here: after the first
    parameter tensor moved): the run stops at θ_k from the copy kept aside, not at a mix."""
    X, y = _data()
    full = train(_diag(), X, y, **KW)
    real = Problem.sgd_step
    calls = [0]

    def torn(self: Problem, grads: list[torch.Tensor], lr: float) -> None:
        calls[0] += 1
        if calls[0] == 37:
            with torch.no_grad():
                self.params[0].add_(grads[0], alpha=-lr)  # one tensor moved, then Ctrl-C
            raise KeyboardInterrupt
        real(self, grads, lr)

    monkeypatch.setattr(Problem, "sgd_step", torn)
    ckpt = tmp_path / "run.pt"
    part = train(_diag(), X, y, checkpoint_path=ckpt, **KW)
    assert part.status == "interrupted" and part.iterations == 36
    monkeypatch.setattr(Problem, "sgd_step", real)
    ref = train(_diag(), X, y, **dict(KW, steps=36))
    torch.testing.assert_close(part.model.theta(), ref.model.theta(), rtol=0.0, atol=0.0)
    rest = train(_diag(), X, y, checkpoint_path=ckpt, resume=True, **KW)
    _same(rest.history, full.history)
    torch.testing.assert_close(rest.model.theta(), full.model.theta(), rtol=0.0, atol=0.0)


@pytest.mark.parametrize("method", ["gd", "flow"])
def test_metrics_error_leaves_a_resumable_run(tmp_path: Path, method: str) -> None:
    """An exception from the user's metrics escapes; the model is back at the last consistent
    state, the sidecar says failed, and the checkpoint resumes to the uninterrupted answer."""
    X, y = _data()
    kw = dict(KW, method=method)
    full = train(_diag(), X, y, metrics=_stopper(0), **kw)
    ckpt, csv = tmp_path / "run.pt", tmp_path / "run.csv"
    net = _diag()
    with pytest.raises(ZeroDivisionError):
        train(net, X, y, metrics=_stopper(7, ZeroDivisionError), checkpoint_path=ckpt,
              history_path=csv, **kw)  # fmt: skip
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "failed"
    saved = torch.load(ckpt, weights_only=True)
    torch.testing.assert_close(ib.Homogeneous(net).theta(), saved["theta"], rtol=0, atol=0)
    rest = train(_diag(), X, y, metrics=_stopper(0), checkpoint_path=ckpt, history_path=csv,
                 resume=True, **kw)  # fmt: skip
    _same(rest.history, full.history)
    torch.testing.assert_close(rest.model.theta(), full.model.theta(), rtol=0.0, atol=0.0)


def test_metrics_returning_a_non_number_names_metrics() -> None:
    X, y = _data()
    with pytest.raises(
        ib.InvalidArgumentTypeError, match=r"The 'metrics' argument of train .*key 'v'"
    ):
        train(_diag(), X, y, metrics=lambda m, t: {"v": torch.ones(3)}, **KW)


def test_resume_with_other_metrics_names_metrics(tmp_path: Path) -> None:
    """The checkpoint's history has a column 'u0'; metrics returning other keys on resume are
    refused by name, and the checkpoint is left as it was."""
    X, y = _data()
    ckpt = tmp_path / "run.pt"
    train(_diag(), X, y, metrics=_stopper(4), checkpoint_path=ckpt, **KW)
    before = torch.load(ckpt, weights_only=True)
    with pytest.raises(InvalidArgumentError, match=r"The 'metrics' argument of train .*same keys"):
        train(_diag(), X, y, checkpoint_path=ckpt, resume=True, **KW)
    after = torch.load(ckpt, weights_only=True)
    assert (after["t"], after["history"]) == (before["t"], before["history"])
    torch.testing.assert_close(after["theta"], before["theta"], rtol=0.0, atol=0.0)


# ---------------------------------------------------------------------------- bad values
@pytest.mark.parametrize(
    ("change", "arg", "got"),
    [
        (dict(lr=math.inf), "lr", "inf"),
        (dict(lr=math.nan), "lr", "nan"),
        (dict(weight_decay=-1e-3), "weight_decay", "-0.001"),
        (dict(weight_decay=math.nan), "weight_decay", "nan"),
        (dict(steps=0), "steps", "0"),
        (dict(steps=1e308, lr=1e10), "steps", "inf"),
        (dict(eval_times=[0.0, 2.0, 1.0]), "eval_times", r"eval_times\[1\] = 2"),
        (dict(eval_times=[0.0, 1.0, 1.0]), "eval_times", r"eval_times\[1\] = 1"),
        (dict(eval_times=[0.0, 10.5]), "eval_times", r"10\.5"),
    ],
)
def test_bad_values_name_their_argument(tmp_path: Path, change: dict, arg: str, got: str) -> None:
    kw = {**KW, **change}
    with pytest.raises(InvalidArgumentError, match=rf"The '{arg}' argument of train .*{got}"):
        train(_diag(), *_data(), history_path=tmp_path / "h.csv", **kw)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- History files
def _written(tmp_path: Path) -> tuple[History, Path]:
    h = History()
    for i in range(4):
        h.append({"t": 0.5 * i, "loss": math.pi / (i + 1)})
    path = tmp_path / "h.csv"
    h.to_csv(path)
    return h, path


def test_torn_last_line_that_parses_is_ignored(tmp_path: Path) -> None:
    """The killed writer got as far as ``2.0,0.6`` of ``2.0,0.6283185307179586``: same number
    of fields, numbers that parse, and still not a row."""
    h, path = _written(tmp_path)
    with open(path, "a", newline="") as fh:
        fh.write("2.0,0.6")
    assert History.from_csv(path) == h
    with open(path, "a", newline="") as fh:
        fh.write("283185307179586\r")  # even the carriage return, without its newline
    assert History.from_csv(path) == h


def test_header_only_empty_and_torn_header_files(tmp_path: Path) -> None:
    h, path = _written(tmp_path)
    path.write_text("t,loss\n")
    back = History.from_csv(path)
    assert back.columns == ["t", "loss"] and len(back) == 0
    path.write_text("")
    assert History.from_csv(path) == History() and History.from_csv(path).columns == []
    path.write_text("t,lo")  # killed while writing the header
    assert History.from_csv(path).columns == []


def test_malformed_middle_line_is_an_error(tmp_path: Path) -> None:
    _, path = _written(tmp_path)
    lines = path.read_text().splitlines(keepends=True)
    lines[2] = "0.5\n"
    path.write_text("".join(lines))
    with pytest.raises(InvalidArgumentError, match=r"The 'path' argument .*1 fields on line 3"):
        History.from_csv(path)


def test_resumed_run_rewrites_a_csv_with_rows_past_the_checkpoint(tmp_path: Path) -> None:
    """A run killed with rows in its CSV that its last checkpoint does not hold (here: the
    checkpoint of the 5th evaluation put back after the run went on to the 10th): resuming
    rewrites the CSV from the checkpoint, so no row appears twice or goes missing."""
    X, y = _data()
    ckpt, csv = tmp_path / "run.pt", tmp_path / "run.csv"
    full = train(_diag(), X, y, metrics=_stopper(0), **KW)
    kept: list[bytes] = []
    stop = _stopper(10)

    def metrics(model: ib.Homogeneous, t: float) -> dict[str, float]:
        if not kept and ckpt.exists() and torch.load(ckpt, weights_only=True)["eval_index"] == 5:
            kept.append(ckpt.read_bytes())
        return stop(model, t)

    train(_diag(), X, y, metrics=metrics, checkpoint_path=ckpt, history_path=csv, **KW)
    assert len(History.from_csv(csv)) == 9
    ckpt.write_bytes(kept[0])  # the state of a process killed before its later checkpoints
    rest = train(_diag(), X, y, metrics=_stopper(0), checkpoint_path=ckpt, history_path=csv,
                 resume=True, **KW)  # fmt: skip
    assert rest.status == "completed"
    _same(History.from_csv(csv), full.history)
    _same(rest.history, full.history)


# ---------------------------------------------------------------- the declared degree, checked once
def _bias_free_mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False)
    ).to(DT)


@pytest.mark.parametrize("how", ["degree=", "Homogeneous", "attribute"])
def test_a_wrong_declared_degree_is_refused_before_any_step(how: str) -> None:
    """A 2-homogeneous net declared 3-homogeneous (three ways): refused, the net untouched."""
    X, y = _data()
    net = _bias_free_mlp()
    before = [p.detach().clone() for p in net.parameters()]
    if how == "degree=":
        call = lambda: train(net, X, y, weight_decay=1e-2, lr=0.1, steps=5, degree=3)  # noqa: E731
    elif how == "Homogeneous":
        h = ib.Homogeneous(net, degree=3)
        call = lambda: train(h, X, y, weight_decay=1e-2, lr=0.1, steps=5)  # noqa: E731
    else:
        net.degree = 3
        call = lambda: train(net, X, y, weight_decay=1e-2, lr=0.1, steps=5)  # noqa: E731
    with pytest.raises(ib.NotHomogeneousError, match=r"(declared|says it is) 3-homogeneous.*measured degree is 2"):
        call()
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters()))


def test_train_leaves_batchnorm_statistics_alone_when_it_refuses_the_model() -> None:
    """A BatchNorm net in train mode with degree=2 is refused by name; its running statistics
    and its batch count stay as they were (the probe forward pass must not move them)."""
    X, y = _data()
    net = nn.Sequential(
        nn.Linear(10, 8, bias=False), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1, bias=False)
    ).to(DT)
    bn = net[1]
    mean, var = bn.running_mean.clone(), bn.running_var.clone()
    with pytest.raises(ib.NotHomogeneousError, match=r"'1' \(BatchNorm1d\)"):
        train(net, X, y, weight_decay=1e-2, lr=0.1, steps=5, degree=2)
    assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
    assert int(bn.num_batches_tracked) == 0 and net.training and bn.training


# ------------------------------------------------------------- researcher models, odd inputs
def _relu_net(dtype: torch.dtype = DT) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(10, 8, bias=False), nn.ReLU(), nn.Linear(8, 1, bias=False)
    ).to(dtype)


def test_unbatched_inputs_are_refused_naming_X() -> None:
    # was: a raw torch RuntimeError (the model saw one example of 10 features, not 10 examples)
    X, y = _data()
    with pytest.raises(InvalidArgumentError, match=r"'X' argument of train .*unsqueeze\(0\)"):
        train(_relu_net(), X[0], y[:10], **KW)


class _FlattensTheBatch(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(10, 2, bias=False, dtype=DT)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x).reshape(-1)  # (2n,): outputs no longer pair with the labels


def test_outputs_that_do_not_pair_with_the_examples_are_refused_naming_model() -> None:
    X, y = _data()
    with pytest.raises(InvalidArgumentError, match=r"'model' argument of train .* \(32,\)"):
        train(_FlattensTheBatch(), X, y, **KW)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=["f16", "bf16"])
def test_sixteen_bit_model_trains_like_torch_sgd(dtype: torch.dtype) -> None:
    # was: a raw ValueError from the degree measurement of a 16-bit model
    X, y = _data()
    net = _relu_net(dtype)
    ref = _relu_net(dtype)
    opt = torch.optim.SGD(ref.parameters(), lr=0.05, weight_decay=0.05)
    for _ in range(20):
        opt.zero_grad()
        nn.functional.softplus(-y.to(dtype) * ref(X.to(dtype))[:, 0]).mean().backward()
        opt.step()
    res = train(net, X, y, weight_decay=0.05, lr=0.05, steps=20, num_evals=3)
    assert res.status == "completed" and res.model.degree == 2
    eps = torch.finfo(dtype).eps
    for p, q in zip(net.parameters(), ref.parameters()):
        assert float((p - q).detach().abs().max()) <= 8 * eps * float(q.detach().abs().max())


def test_resume_refuses_a_model_with_another_forward_hook(tmp_path: Path) -> None:
    # was: the fingerprint hashed the repr, which does not show hooks; the run resumed
    # silently onto another function's trajectory
    X, y = _data()
    ck = tmp_path / "run.pt"
    net = _relu_net()
    train(net, X, y, checkpoint_path=ck, **KW)
    other = _relu_net()
    other[0].register_forward_hook(lambda mod, args, out: 3 * out)
    with pytest.raises(InvalidArgumentError, match=r"'checkpoint_path' .* architecture"):
        train(other, X, y, checkpoint_path=ck, resume=True, **KW)


def _double(mod: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor:
    return 2 * out


def test_resume_accepts_the_same_forward_hook(tmp_path: Path) -> None:
    # a hook of the same function (as in a re-run of the same script) resumes, exactly
    X, y = _data()
    ck = tmp_path / "run.pt"
    nets = [_relu_net() for _ in range(3)]
    for net in nets:
        net[0].register_forward_hook(_double)
    full = train(nets[0], X, y, **KW)
    stop = {"n": 0}

    def interrupt_at_the_fourth_evaluation(model: ib.Homogeneous, t: float) -> dict:
        stop["n"] += 1
        if stop["n"] == 4:
            raise KeyboardInterrupt
        return {}

    cut = train(nets[1], X, y, checkpoint_path=ck, metrics=interrupt_at_the_fourth_evaluation, **KW)
    assert cut.status == "interrupted"
    nets[2].load_state_dict(nets[1].state_dict())
    done = train(nets[2], X, y, checkpoint_path=ck, resume=True, metrics=lambda m, t: {}, **KW)
    assert done.resumed_from == cut.t_final and done.status == "completed"
    _same(full.history, done.history)
    for p, q in zip(nets[0].parameters(), nets[2].parameters()):
        assert torch.equal(p, q)


def test_history_csv_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    # was: the header "t,t" read one data row as two rows
    path = tmp_path / "h.csv"
    path.write_text("t,t\n0.0,1.0\n")
    with pytest.raises(InvalidArgumentError, match=r"'path' argument of History.from_csv"):
        History.from_csv(path)


def test_history_with_duplicate_columns_is_refused() -> None:
    with pytest.raises(InvalidArgumentError, match=r"'columns' argument of History"):
        History(columns=["t", "loss", "t"])


def test_history_csv_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "h.csv"
    path.write_text("t,loss\n0.0,1.0\n\n1.0,0.5\n\n")
    h = History.from_csv(path)
    assert h["t"].tolist() == [0.0, 1.0] and h["loss"].tolist() == [1.0, 0.5]
