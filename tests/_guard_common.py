"""Helpers shared by the tests of the deferred divergence guard (``test_gd_guard``,
``test_no_wd_device_loop``, ``test_guard_adversarial``): one torch thread, forcing windows
on the CPU, comparing two ``train`` runs bit for bit, and counting host reads."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from implicitbias.dynamics import TrainResult, _gd_loop

#: Tensor operations that bring a value to the host (on CUDA: a sync).
READS = ("item", "__bool__", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu")


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """One torch thread (bit-identical runs, and fast on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def force_guard_every(monkeypatch: pytest.MonkeyPatch, every: int) -> None:
    """Read the GD guard every ``every`` steps on the CPU."""
    monkeypatch.setattr(_gd_loop, "_CPU_GUARD_EVERY", every)


def same_train_run(a: TrainResult, b: TrainResult) -> None:
    """The same run: status, counters, history (but wall time) and θ, bit for bit."""
    keys = ("status", "iterations", "grad_evals", "t_final", "interrupted")
    assert [getattr(a, k) for k in keys] == [getattr(b, k) for k in keys]
    assert a.history.columns == b.history.columns and len(a.history) == len(b.history)
    for c in a.history.columns:
        if c != "wall_time":
            np.testing.assert_array_equal(a.history[c], b.history[c], err_msg=c)
    torch.testing.assert_close(a.model.theta(), b.model.theta(), rtol=0.0, atol=0.0)


class HostReads(TorchFunctionMode):
    """Counts the tensor operations that bring a value to the host (on CUDA: a sync)."""

    def __init__(self) -> None:
        super().__init__()
        self.n = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        if getattr(func, "__name__", "") in READS:
            self.n += 1
        return func(*args, **(kwargs or {}))
