"""The GD loop of ``modular-addition-no-wd`` (Fig. 4): steps on c·L, then on log L, with the
host reading the device only once per window of steps.

The rule's only per-step number is log L(θ_k) (THEORY §6.6): the step itself chooses its branch
on the device (:func:`~implicitbias.experiments.modular_no_wd.log_loss_step`), and the rest of
the state — the step count, log Σ η_k, the first step on log L, the last log L and log η_k — is
a function of the log L values, computed on the host with the same float64 operations whether
they are read one by one or by windows.

When the host reads (:func:`read_every`). On the CPU, every step (a read costs nothing there):
each step reads its log L first and, where it is not finite, stops before updating θ. On any
other device a read waits for all the work queued before it, so the steps are queued and their
log L values (device scalars) kept; the host reads them together every 64 steps and before
anything leaves the device or depends on them: a record of the monitor, a checkpoint, the end,
a Ctrl-C. Nothing else in a step waits for the device. θ at the start of each window is kept
aside (one copy per window); a window with a non-finite log L is replayed from it with the
per-step read (GD is deterministic), so the run ends exactly as with a read every step:
``"diverged"`` at θ_j of the first step j whose log L is not finite, with the same history —
the same bits on the CPU (CUDA kernels that are not bitwise deterministic may place it
differently) — at the cost of at most one window of extra steps, once.

Checkpoints and Ctrl-C. A checkpoint holds a verified state only (its step's record included); a
Ctrl-C is taken at the next step boundary after the pending window is read (and, if it failed,
replayed); an exception inside a window leaves the state of the last read, the one the last
checkpoint was written from or after.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from implicitbias._progress import Progress
from implicitbias.dynamics import History, Monitor
from implicitbias.experiments._rundir import deferred_sigint
from implicitbias.experiments.configs import NoDecayConfig

__all__: list[str] = []

#: Steps between two host reads of log L on the CPU, and on any other device (module attributes:
#: the tests force windows on the CPU).
_CPU_READ_EVERY = 1
_DEVICE_READ_EVERY = 64
#: A read is forced once the step's time is within this relative distance of the monitor's next
#: schedule time (wider than the monitor's own 1e-12: a read too many costs one sync).
_DUE_RTOL = 1e-9


def read_every(device: torch.device) -> int:
    """Steps between two host reads of log L on ``device``: :data:`_CPU_READ_EVERY` (1) on the
    CPU, :data:`_DEVICE_READ_EVERY` (64) elsewhere."""
    return _CPU_READ_EVERY if device.type == "cpu" else _DEVICE_READ_EVERY


def read_values(values: list[torch.Tensor]) -> list[float]:
    """The host read of a window: the log L scalars of its steps as floats (one transfer)."""
    return torch.stack(values).tolist()


@dataclass(frozen=True)
class LogLossSteps:
    """The GD step of the rule, as the loop calls it.

    Attributes
    ----------
    exact : callable
        ``exact() -> (log L, log η_k)``: one step with its read; θ is left as it is when log L
        is not finite.
    queued : callable
        ``queued() -> log L``: one step without a read, log L as a device scalar (θ is updated
        whatever log L is).
    log_lr : callable
        ``log_lr(log L) -> log η_k``, the step's log rate for its log L.
    """

    exact: Callable[[], tuple[float, float]]
    queued: Callable[[], torch.Tensor]
    log_lr: Callable[[float], float]


@dataclass
class State:
    """Where the loop is: steps done, Σ η_k, the last step's log L and η_k, the first step on
    log L, and the records of the run so far (restored from a checkpoint)."""

    k: int = 0
    log_flow_time: float = -math.inf
    log_loss: float = math.nan
    log_lr_effective: float = math.nan
    switch_step: float = math.nan
    history: History = field(default_factory=History)

    def book(self, value: float, log_eta: float, switch_log_loss: float) -> None:
        """One more step, taken at log L = ``value`` with log η_k = ``log_eta``."""
        if value <= switch_log_loss and not math.isfinite(self.switch_step):
            self.switch_step = float(self.k)
        self.k += 1
        self.log_loss, self.log_lr_effective = value, log_eta
        self.log_flow_time = float(np.logaddexp(self.log_flow_time, log_eta))

    def save(self, path: Path, model: torch.nn.Module, monitor: Monitor) -> None:
        """Write the checkpoint atomically (a temporary file renamed over it); a state with
        non-finite parameters is not written (a step with a finite log L but a NaN gradient
        gives one, and the run stops "diverged" at the next step): the last checkpoint stays."""
        if not all(bool(torch.isfinite(v).all()) for v in model.parameters()):
            return
        rows = combined(self.history, monitor.history)
        blob = {
            "params": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
            "k": self.k,
            "log_flow_time": self.log_flow_time,
            "log_loss": self.log_loss,
            "log_lr_effective": self.log_lr_effective,
            "switch_step": self.switch_step,
            "columns": rows.columns,
            "history": rows.to_lists(),
        }
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        torch.save(blob, tmp)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path, model: torch.nn.Module) -> State:
        """The state of the checkpoint at ``path``; its parameters are loaded into ``model``."""
        blob = torch.load(path, weights_only=True)
        model.load_state_dict(blob["params"])
        hist = History(columns=list(blob["columns"]))
        data = blob["history"]
        for i in range(len(data[hist.columns[0]]) if hist.columns else 0):
            hist.append({c: float(data[c][i]) for c in hist.columns})
        return cls(
            int(blob["k"]),
            float(blob["log_flow_time"]),
            float(blob["log_loss"]),
            float(blob["log_lr_effective"]),
            float(blob["switch_step"]),
            hist,
        )


def combined(before: History, after: History) -> History:
    """The rows of ``before`` followed by those of ``after`` (a resumed run's history)."""
    if not len(before):
        return after
    out = History(columns=before.columns)
    for part in (before, after):
        for i in range(len(part)):
            out.append(part.row(i))
    return out


class _Loop:
    """Steps ``state.k`` to ``cfg.steps``: per-step reads, or windows read together (module
    docstring). ``self.k`` counts the steps queued, ``state.k`` those read and booked."""

    def __init__(
        self,
        cfg: NoDecayConfig,
        net: torch.nn.Module,
        mon: Monitor,
        state: State,
        ckpt: Path | None,
        steps: LogLossSteps,
        every: int,
        bar: Progress,
    ) -> None:
        self.cfg, self.net, self.mon, self.state, self.ckpt = cfg, net, mon, state, ckpt
        self.steps, self.every, self.bar = steps, every, bar
        self.params: list[torch.Tensor] = [q for q in net.parameters() if q.requires_grad]
        self.save_every = max(1, cfg.steps // 100)
        self.k = state.k
        self.exact_until = state.k  # steps before it are replayed with per-step reads
        self.pending: list[torch.Tensor] = []  # log L of steps state.k .. k-1, unread
        self.kept: list[torch.Tensor] = []  # θ_{state.k}, where a failed window restarts

    def run(self, sigint: Any) -> str:
        """``"completed"``, or ``"diverged"`` (θ_j of the first step j whose log L is not
        finite is recorded); a Ctrl-C checkpoints and raises ``KeyboardInterrupt``."""
        cfg, state = self.cfg, self.state
        self.mon(state.k, cfg.lr)
        while True:
            stop = sigint.requested and self.k >= self.exact_until
            if self.pending and (stop or self._read_due()) and not self._read_window():
                continue  # replay the failed window from θ_kept, one read per step
            if state.k >= cfg.steps:
                return "completed"
            if stop:
                if self.ckpt is not None:
                    state.save(self.ckpt, self.net, self.mon)
                raise KeyboardInterrupt
            if self.every == 1 or self.k < self.exact_until:
                value, log_eta = self.steps.exact()
                if not math.isfinite(value):
                    self.mon.record()
                    return "diverged"
                state.book(value, log_eta, cfg.switch_log_loss)
                self.k = state.k
                self._verified(state.k % 64 == 0)
            else:
                if not self.pending:
                    self._keep()
                self.pending.append(self.steps.queued())
                self.k += 1

    def _read_due(self) -> bool:
        """Whether the pending window must be read before step ``k``: it is full, or step
        ``k`` ends the run, is recorded by the monitor or checkpointed."""
        k, cfg = self.k, self.cfg
        return (
            len(self.pending) >= self.every
            or k >= cfg.steps
            or k * cfg.lr >= self.mon.next_time * (1.0 - _DUE_RTOL)
            or (self.ckpt is not None and k % self.save_every == 0)
        )

    def _read_window(self) -> bool:
        """Read the pending window (one host read): book its steps if every log L is finite;
        otherwise restore θ_kept and replay the window step by step (False)."""
        values = read_values(self.pending)
        self.pending.clear()
        if not all(math.isfinite(v) for v in values):
            with torch.no_grad():
                torch._foreach_copy_(self.params, self.kept)
            self.exact_until, self.k = self.k, self.state.k
            return False
        for value in values:
            self.state.book(value, self.steps.log_lr(value), self.cfg.switch_log_loss)
        self._verified(True)
        return True

    def _verified(self, show: bool) -> None:
        """The host side of a verified step boundary: the monitor, the bar, the checkpoint."""
        state, cfg = self.state, self.cfg
        self.mon(state.k, cfg.lr)
        if show:
            self.bar.set(state.k)
        if self.ckpt is not None and state.k % self.save_every == 0 and state.k < cfg.steps:
            state.save(self.ckpt, self.net, self.mon)

    def _keep(self) -> None:
        """Copy θ_{state.k}, the start of a new window, aside."""
        if not self.kept:
            self.kept = [q.detach().clone() for q in self.params]
        else:
            torch._foreach_copy_(self.kept, [q.detach() for q in self.params])


def run_loop(
    cfg: NoDecayConfig,
    net: torch.nn.Module,
    mon: Monitor,
    state: State,
    ckpt: Path | None,
    progress: bool | None,
    steps: LogLossSteps,
    *,
    every: int | None = None,
) -> str:
    """Steps ``state.k`` to ``cfg.steps``, monitored; a Ctrl-C checkpoints and re-raises.

    ``every``: steps between two host reads of log L (default :func:`read_every` of the
    parameters' device). Returns ``"completed"``, or ``"diverged"`` when log L is not finite
    (the state before that step is recorded).
    """
    if every is None:
        every = read_every(next(net.parameters()).device)
    bar = Progress(cfg.steps, desc="train (gd, log L)", unit="step", progress=progress)
    bar.set(state.k)
    loop = _Loop(cfg, net, mon, state, ckpt, steps, every, bar)
    with bar, deferred_sigint() as sigint:
        status = loop.run(sigint)
        bar.set(state.k)
    return status
