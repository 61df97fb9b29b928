"""A training run in motion: the parts the loops share (:class:`Run`: the objective, the
recorder with its files, the checkpoints, deferred Ctrl-C), opened on a set-up run, and the
dispatch to the method's loop, with the clean-up when an exception escapes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from implicitbias.dynamics._checkpoint import Checkpointer, prepare_folders
from implicitbias.dynamics._flow_loop import run_flow
from implicitbias.dynamics._gd_loop import run_gd
from implicitbias.dynamics._interrupt import DeferredInterrupt
from implicitbias.dynamics._problem import Committed, Problem
from implicitbias.dynamics._recorder import Metrics, Recorder
from implicitbias.dynamics._setup import Setup, Start
from implicitbias.dynamics.flow import TABLEAUX

__all__: list[str] = []

_FUNC = "train"

#: How a run ended (``TrainResult.status``): ``"diverged"`` when θ or the loss became
#: non-finite, ``"step_size_too_small"`` when the flow's step size underflowed.
TrainStatus = Literal["completed", "interrupted", "diverged", "step_size_too_small"]


@dataclass
class Run:
    """What a loop works with: the objective, the recorder, the checkpoints, Ctrl-C, and the
    GD step η."""

    prob: Problem
    recorder: Recorder
    checkpoints: Checkpointer
    interrupt: DeferredInterrupt
    lr: float
    #: the last consistent state, set by a loop when an exception escapes it
    committed: Committed | None = None

    @classmethod
    def open(
        cls, spec: Setup, start: Start, *, metrics: Metrics | None, progress: bool | None
    ) -> Run:
        """Create the outputs' folders, start the CSV (with the rows so far of a resumed run)
        and its sidecar (``"running"``), the progress bar and the checkpoint clock."""
        opts = spec.opts
        prepare_folders(
            _FUNC, ("history_path", opts.history_file), ("checkpoint_path", opts.checkpoint_file)
        )
        recorder = Recorder(
            spec.problem,
            lr=opts.lr,
            metrics=metrics,
            history=start.history,
            hist_file=opts.history_file,
            config=spec.config,
            alpha=start.alpha,
            wall_before=start.wall_time,
        )
        recorder.sidecar("running")
        recorder.show_progress(progress, spec.t_end, opts.method)
        checkpoints = Checkpointer(
            opts.checkpoint_file,
            config=spec.config,
            digest=spec.digest,
            times=spec.times,
            alpha=start.alpha,
            every=opts.checkpoint_every,
            history=start.history,
            wall=recorder.wall,
        )
        if start.resumed_from is not None:  # a fresh run checkpoints its first state too
            checkpoints.start_clock(start.state)
        return cls(spec.problem, recorder, checkpoints, DeferredInterrupt(), opts.lr)

    def execute(self, start: Committed, spec: Setup) -> tuple[TrainStatus, Committed]:
        """Run the method's loop from ``start`` with Ctrl-C deferred; (status, last good state).

        Afterwards the progress bar and the CSV are closed. When an exception escapes (from the
        user's metrics or the model), the model and the checkpoint are left at the last
        consistent state, the sidecar says ``"failed"``, and the exception propagates.
        """
        opts = spec.opts
        status: TrainStatus | Literal["failed"] = "failed"
        committed = start
        try:
            with self.interrupt:
                if opts.method == "gd":
                    assert spec.eval_steps is not None
                    status, committed = run_gd(self, start, spec.total_steps, spec.eval_steps)
                else:
                    tab = TABLEAUX[opts.integrator]
                    status, committed = run_flow(
                        self,
                        start,
                        spec.times,
                        spec.t_end,
                        tab,
                        opts.rtol,
                        opts.atol,
                        opts.max_step,
                    )
        finally:
            self.recorder.close()
            if status == "failed":
                if self.committed is not None:  # leave the model, and the checkpoint, consistent
                    self.prob.load(self.committed.theta)
                    self.checkpoints.save(self.committed)
                self.recorder.sidecar("failed")
        return status, committed
