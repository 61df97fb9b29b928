"""The shared progress reporter: a bar on a terminal, log lines every ~10 s elsewhere."""

from __future__ import annotations

import io
import logging

import numpy as np
import pytest

from implicitbias._errors import InvalidArgumentTypeError
from implicitbias._progress import Progress, check_progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_not_a_terminal_logs_one_line_per_interval_with_units(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    bar = Progress(100.0, desc="train (gd)", unit="t", clock=clock)  # stderr is captured
    assert bar.mode == "log"
    for step in range(1, 101):
        clock.now = step * 0.5  # 50 s of work in 100 updates
        bar.set(float(step))
    bar.close()
    lines = [r.getMessage() for r in caplog.records]
    # one line at 10, 20, 30, 40, 50 s (updates 20, 40, ..., 100); the last one is the final state
    assert len(lines) == 5
    assert lines[0] == "train (gd): t = 20 / 100 (20%), 10 s elapsed, ~40 s left"
    assert lines[-1] == "train (gd): t = 100 / 100 (100%), 50 s elapsed (done)"


def test_short_work_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    with Progress(3, desc="blocks", unit="block", clock=clock) as bar:
        for _ in range(3):
            clock.now += 1.0
            bar.update()
    assert caplog.records == []
    assert bar.n == 3


def test_logging_not_enabled_costs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="implicitbias.progress")
    bar = Progress(10, desc="x", unit="block")
    assert bar.mode == "off"


def test_progress_false_is_silent_and_true_draws_a_bar(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    assert Progress(10, desc="x", unit="block", progress=False).mode == "off"
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with Progress(4, desc="ntk", unit="block", progress=True) as bar:
        assert bar.mode == "bar"
        bar.update(4)
    assert "ntk" in err.getvalue() and "block" in err.getvalue()


def test_a_terminal_gets_a_bar_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stderr", Tty())
    with Progress(2, desc="x", unit="block") as bar:
        assert bar.mode == "bar"


def test_progress_never_moves_backwards() -> None:
    bar = Progress(10, desc="x", unit="t", progress=False)
    bar.set(5)
    bar.set(3)
    assert bar.n == 5


@pytest.mark.parametrize("bad", [1, "yes", 0.5])
def test_check_progress_names_the_argument(bad: object) -> None:
    with pytest.raises(InvalidArgumentTypeError, match=r"The 'progress' argument of f must be"):
        check_progress(bad, "f")
    assert check_progress(None, "f") is None and check_progress(True, "f") is True


def test_empirical_ntk_reports_rows_of_the_jacobian_route(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    import implicitbias as ib
    from implicitbias import _progress

    clock = FakeClock()

    def tick() -> float:
        clock.now += 11.0  # every update is "11 s" later: each one logs
        return clock.now

    mlp = ib.HomogeneousMLP(4, [8], seed=0, dtype=torch.float64)
    X = torch.randn(10, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    quiet = ib.empirical_ntk(mlp, X, method="jacobian", chunk_size=3, progress=False)
    monkeypatch.setattr(_progress, "_now", tick)
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    K = ib.empirical_ntk(mlp, X, method="jacobian", chunk_size=3)
    assert torch.equal(K, quiet)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("empirical_ntk (jacobian): row = 3 / 10 (30%)")
    assert lines[-1].startswith("empirical_ntk (jacobian): row = 10 / 10 (100%)")
    assert lines[-1].endswith("(done)")
    with pytest.raises(InvalidArgumentTypeError, match=r"'progress' argument of empirical_ntk"):
        ib.empirical_ntk(mlp, X, progress="yes")


def test_train_logs_progress_in_gradient_flow_time(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    import implicitbias as ib
    from implicitbias import _progress

    clock = FakeClock()

    def tick() -> float:
        clock.now += 11.0
        return clock.now

    def problem() -> tuple[ib.DiagonalNet, torch.Tensor, torch.Tensor]:
        net = ib.DiagonalNet(3, alpha=2.0, dtype=torch.float64)
        X = torch.eye(3, dtype=torch.float64)
        return net, X, torch.tensor([1.0, -1.0, 1.0], dtype=torch.float64)

    quiet = ib.train(*problem(), weight_decay=0.1, lr=0.01, t_max=1.0, num_evals=5, progress=False)
    monkeypatch.setattr(_progress, "_now", tick)
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    res = ib.train(*problem(), weight_decay=0.1, lr=0.01, t_max=1.0, num_evals=5)
    new, old = res.history.to_dict(), quiet.history.to_dict()
    assert all(np.array_equal(new[k], old[k], equal_nan=True) for k in old if k != "wall_time")
    lines = [r.getMessage() for r in caplog.records]
    assert lines and all(line.startswith("train (gd): t = ") for line in lines)
    assert lines[-1].startswith("train (gd): t = 1 / 1 (100%)")
    assert sum("(100%)" in line for line in lines) == 1
    with pytest.raises(InvalidArgumentTypeError, match=r"The 'progress' argument of train"):
        ib.train(*problem(), weight_decay=0.1, lr=0.01, t_max=1.0, progress="yes")


def test_cli_not_on_a_terminal_logs_training_progress_in_its_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from implicitbias import _progress
    from implicitbias.cli import main

    clock = FakeClock()

    def tick() -> float:
        clock.now += 11.0
        return clock.now

    monkeypatch.setattr(_progress, "_now", tick)
    logger = logging.getLogger("implicitbias.progress")
    level, handlers = logger.level, list(logger.handlers)
    argv = ["reproduce", "sparse-linear", "--scale", "tiny", "--no-figure"]
    assert main([*argv, "--out", f"{tmp_path}/a"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "train (flow): t = " in line]
    assert lines and lines[0].startswith("[") and "s] train (flow): t = " in lines[0]
    assert lines[-1].endswith("(done)")
    assert logger.level == level and logger.handlers == handlers  # detached afterwards
    assert main([*argv, "--no-progress", "--out", f"{tmp_path}/b"]) == 0
    assert "train (flow): t = " not in capsys.readouterr().out


def test_a_jupyter_kernel_gets_a_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys
    import types

    class ZMQInteractiveShell:  # the class name Jupyter's kernel shell has
        pass

    fake = types.ModuleType("IPython")
    fake.get_ipython = lambda: ZMQInteractiveShell()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", fake)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    with Progress(2, desc="x", unit="block") as bar:
        assert bar.mode == "bar"
    fake.get_ipython = lambda: None  # type: ignore[attr-defined]  # plain IPython / no shell
    assert Progress(2, desc="x", unit="block").mode in ("off", "log")


def test_kkt_residuals_reports_its_stages(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import torch

    import implicitbias as ib
    from implicitbias import _progress

    clock = FakeClock()

    def tick() -> float:
        clock.now += 11.0
        return clock.now

    net = ib.DiagonalNet(4, alpha=1.0, dtype=torch.float64)
    X = torch.eye(4, dtype=torch.float64)
    y = torch.tensor([1.0, -1.0, 1.0, -1.0], dtype=torch.float64)
    ib.train(net, X, y, weight_decay=0.01, lr=0.1, steps=200, method="gd", progress=False)
    quiet = ib.kkt_residuals(net, X, y, progress=False)
    monkeypatch.setattr(_progress, "_now", tick)
    caplog.set_level(logging.INFO, logger="implicitbias.progress")
    report = ib.kkt_residuals(net, X, y)
    assert report.epsilon_rel == quiet.epsilon_rel
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0].startswith("kkt_residuals: stage = 1 / 4 (25%)")
    assert lines[-1].startswith("kkt_residuals: stage = 4 / 4 (100%)")
    with pytest.raises(InvalidArgumentTypeError, match=r"'progress' argument of kkt_residuals"):
        ib.kkt_residuals(net, X, y, progress=1)
