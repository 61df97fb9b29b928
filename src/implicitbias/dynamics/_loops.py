"""The two loops of :func:`~implicitbias.dynamics.train` — fixed-step GD and the adaptive
gradient flow — and what they share: history rows, checkpoints, the divergence check.

Divergence. Every state a loop moves to is checked before it is used. GD checks θ_k, the
outputs at θ_k and the losses (where finite outputs do not already prove them finite: see
:meth:`~implicitbias.dynamics.Loss.derivative_and_guard`) at every step, reusing the outputs of
the gradient pass: one copy into a stash and one sum (:class:`Stash`, about 3% of a step of the
small benchmark instance). The flow checks θ, F(θ), the outputs and the losses at every accepted
step and at every interpolated evaluation, and calls an underflowing step size that follows
rejections of non-finite trial steps a divergence too. The first non-finite state stops the run
with status ``"diverged"`` at the last state that passed (GD: θ_{k−1}, kept in the stash).
Nothing non-finite is recorded or checkpointed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from implicitbias._validation import fail, fail_type
from implicitbias.dynamics._checkpoint import all_finite, save_checkpoint
from implicitbias.dynamics._problem import Committed, DeferredInterrupt, Problem, Stash
from implicitbias.dynamics.flow import next_step_size, rk_step
from implicitbias.dynamics.history import STANDARD_COLUMNS, History, _CSVWriter
from implicitbias.dynamics.losses import Loss

__all__: list[str] = []

_FUNC = "train"


class Run:
    """A run's recording and checkpointing, shared by both loops."""

    def __init__(
        self,
        *,
        prob: Problem,
        ell: Loss,
        y: torch.Tensor,
        lr: float,
        lam: float,
        rescale: float,
        metrics: Callable[..., Mapping[str, float]] | None,
        history: History,
        writer: _CSVWriter | None,
        ckpt_file: Path | None,
        ckpt_static: dict[str, Any],
        checkpoint_every: float | None,
        wall: Callable[[], float],
        tick: Callable[[float], None],
        interrupt: DeferredInterrupt,
    ) -> None:
        self.prob, self.ell, self.y = prob, ell, y
        self.lr, self.lam, self.rescale = lr, lam, rescale
        self.degree = float(prob.h.degree)
        self.metrics = metrics
        self.history, self.writer = history, writer
        self.ckpt_file, self.ckpt_static = ckpt_file, ckpt_static
        self.checkpoint_every = checkpoint_every
        self.wall, self.tick, self.interrupt = wall, tick, interrupt
        self.next_ckpt = 0.0
        #: the last consistent state, set when an exception escapes a loop
        self.committed: Committed | None = None

    # ------------------------------------------------------------------ checks
    def losses(self, out: torch.Tensor) -> torch.Tensor:
        """Per-example losses at outputs ``out``."""
        return self.ell.values(out, self.y)

    # ------------------------------------------------------------------ history
    def record(
        self,
        theta: torch.Tensor,
        out: torch.Tensor,
        t: float,
        grad_evals: int,
        step: float | None = None,
        values: torch.Tensor | None = None,
    ) -> None:
        """Append the row of the (checked, finite) state θ at time ``t``."""
        ell, y_t, lam = self.ell, self.y, self.lam
        norm = float(theta.norm())
        if values is None:
            values = ell.values(out, y_t)
        train_loss = float(values.mean())
        row: dict[str, float] = {
            "t": t,
            "step": t / self.lr if step is None else step,
            "rescaled_time": t * self.rescale,
            "grad_evals": float(grad_evals),
            "train_loss": train_loss,
            "objective": train_loss + 0.5 * lam * norm * norm,
        }
        if ell.is_classification:
            row["train_acc"] = ell.accuracy(out, y_t)
        else:
            row["train_mse"] = ell.mse(out, y_t)
        row["theta_norm"] = norm
        if ell.is_classification:
            q_min = float(ell.margins(out, y_t).min())
            row["normalized_margin"] = q_min / norm**self.degree if norm > 0 else float("nan")
        if self.metrics is not None:
            self.prob.load(theta)
            extra = self.metrics(self.prob.h, t)
            if not isinstance(extra, Mapping):
                raise fail_type(_FUNC, "metrics", "a callable returning a dict of floats", extra)
            for k, v in extra.items():
                if k in STANDARD_COLUMNS:
                    raise fail(
                        _FUNC, "metrics", "keys other than the standard columns", f"key {k!r}"
                    )
                try:
                    if isinstance(v, (str, bytes)):
                        raise TypeError(v)
                    row[str(k)] = float(v)
                except (TypeError, ValueError, RuntimeError) as exc:
                    raise fail_type(
                        _FUNC,
                        "metrics",
                        f"a callable returning a dict of real numbers (key {k!r})",
                        v,
                    ) from exc
        row["wall_time"] = self.wall()
        ordered = [c for c in STANDARD_COLUMNS if c in row] + [
            c for c in row if c not in STANDARD_COLUMNS
        ]
        row = {c: row[c] for c in ordered}  # the first row fixes the column order
        known = self.history.columns
        if known and set(row) != set(known):
            raise fail(
                _FUNC,
                "metrics",
                f"a callable returning the same keys at every evaluation (the history's "
                f"columns {known}, also those of the checkpoint's history when resuming)",
                f"the columns {list(row)}",
            )
        self.history.append(row)
        if self.writer is not None:
            self.writer.write(row, self.history.columns)

    # ------------------------------------------------------------------ checkpoints
    def save(self, s: Committed) -> bool:
        """Checkpoint the committed state ``s`` (never a non-finite one); False if not written."""
        if self.ckpt_file is None:
            return False
        data = self.history.to_lists()
        cols = self.history.columns
        obj = dict(self.ckpt_static)
        obj.update(
            {
                "theta": s.theta.detach().clone(),
                "t": s.t,
                "n_steps": s.n_steps,
                "n_rejected": s.n_rejected,
                "grad_evals": s.grad_evals,
                "eval_index": s.eval_index,
                "h": s.h,
                "error_prev": s.error_prev,
                "f": None if s.f is None else s.f.detach().clone(),
                "history_columns": cols,
                "history": {c: data[c][: s.history_len] for c in cols},
                "wall_time": self.wall(),
            }
        )
        return save_checkpoint(self.ckpt_file, obj)

    def start_clock(self, s: Committed) -> None:
        """Set the time of the next periodic checkpoint after the committed state ``s``."""
        if self.checkpoint_every is not None:
            self.next_ckpt = (math.floor(s.t / self.checkpoint_every) + 1) * self.checkpoint_every

    def due(self, t: float) -> bool:
        """Whether a periodic checkpoint is due at time ``t``."""
        return self.checkpoint_every is not None and t >= self.next_ckpt

    def maybe_checkpoint(self, s: Committed, evaluated: bool) -> None:
        if self.ckpt_file is None:
            return
        if self.checkpoint_every is None:
            if evaluated:
                self.save(s)
        elif s.t >= self.next_ckpt:
            self.save(s)
            self.start_clock(s)


def _gd_state(theta: torch.Tensor, k: int, idx: int, lr: float) -> Committed:
    return Committed(theta, k * lr, k, 0, k, idx, idx, lr, 1.0, None, None)


def run_gd(
    run: Run, start: Committed, total_steps: int, eval_steps: np.ndarray
) -> tuple[str, Committed]:
    """GD from the committed state ``start`` to ``total_steps``; (status, last good state).

    The parameters are updated in place (like ``torch.optim.SGD``); (params, k, idx) is the
    state, with one history row per recorded evaluation (rows = idx), materialized as a flat θ
    only at evaluations and checkpoints. Every step first stashes θ_k with its outputs and
    losses (:class:`Stash`: one copy, one sum), so that the first non-finite state ends the run
    at θ_{k−1}.
    """
    prob, lr = run.prob, run.lr
    prob.load(start.theta)
    committed = start
    k, idx = start.n_steps, start.eval_index
    n_eval = len(eval_steps)
    next_eval = int(eval_steps[idx]) if idx < n_eval else -1
    stash: Stash | None = None
    theta_eval = start.theta
    phase = "top"
    try:
        while True:
            phase = "top"
            run.interrupt.check()
            if k < total_steps:
                grads, out, guard = prob.param_gradients()
            else:
                grads = None
                out, guard = prob.current_outputs()
            if stash is None:
                stash = Stash(prob.params, out, guard)
            if not stash.check(k, out, guard):
                if k > start.n_steps:
                    committed = _gd_state(stash.theta(k - 1), k - 1, idx, lr)
                return "diverged", committed
            evaluated = k == next_eval
            if evaluated:
                theta_eval = stash.theta(k)
                phase = "record"
                run.record(theta_eval, out, k * lr, k, float(k), guard)
                if run.metrics is not None:
                    prob.load(theta_eval)  # in case the metrics moved the parameters
                    stash.refresh()
                idx += 1
                phase = "top"
                next_eval = int(eval_steps[idx]) if idx < n_eval else -1
                run.tick(k * lr)
            if evaluated or run.due(k * lr):
                committed = _gd_state(theta_eval if evaluated else stash.theta(k), k, idx, lr)
                run.maybe_checkpoint(committed, evaluated)
            if grads is None:
                break
            phase = "update"
            prob.sgd_step(grads, lr)
            k += 1
        # the final state (also when the schedule does not end at the last step)
        return "completed", _gd_state(stash.theta(k), k, idx, lr)
    except BaseException as exc:
        # the live state is consistent: θ_k (before the metrics of step k ran, if they
        # raised; the stashed θ_k if the update was cut short), k steps, idx evaluations
        if phase == "record":
            theta_now = theta_eval
        elif phase == "update":
            assert stash is not None
            theta_now = stash.theta(k)
        else:
            theta_now = prob.flat()
        run.committed = _gd_state(theta_now, k, idx, lr)
        if isinstance(exc, KeyboardInterrupt):
            return "interrupted", run.committed
        raise


def run_flow(
    run: Run,
    start: Committed,
    times: np.ndarray,
    t_end: float,
    tab: Any,
    rtol: float,
    atol: float,
    max_step: float | None,
) -> tuple[str, Committed]:
    """Integrate the flow from the committed state ``start`` to ``t_end``; (status, last good
    state). Evaluations inside an accepted step come from the dense output; all of them, and
    the new point, are checked before any is recorded."""
    prob = run.prob
    s = committed = start
    status = "completed"
    try:
        if s.f is None:  # a fresh start (checkpoints of flow runs store F)
            f0, out0 = prob.rhs(s.theta)
            s = s._replace(f=f0, out=out0, grad_evals=prob.grad_evals)
        committed = s
        out = s.out if s.out is not None else prob.outputs(s.theta)
        values = run.losses(out)
        if not all_finite(s.theta, out, values):
            return "diverged", committed
        n_eval = len(times)
        # evaluations at the current time (t = 0, or a resumed point)
        idx = s.eval_index
        while idx < n_eval and times[idx] <= s.t:
            run.record(s.theta, out, float(times[idx]), s.grad_evals, values=values)
            idx += 1
        if idx != s.eval_index:
            s = s._replace(eval_index=idx, history_len=len(run.history))
            committed = s
            run.maybe_checkpoint(s, True)
        if not all_finite(s.f):
            return "diverged", committed
        hstep = s.h
        blown_up = False
        while s.t < t_end:
            run.interrupt.check()
            if max_step is not None:
                hstep = min(hstep, max_step)
            last = s.t + hstep >= t_end * (1 - 1e-12)
            if last:
                hstep = t_end - s.t
            if hstep <= 1e-12 * max(1.0, abs(s.t)):
                # the step size underflowed: the flow itself blows up when the trial steps
                # were rejected for non-finite values, else it is too stiff to follow
                status = "diverged" if blown_up else "step_size_too_small"
                break
            att = rk_step(prob.rhs, tab, s.theta, s.f, hstep, rtol, atol)
            if att.error > 1.0:
                blown_up = not all_finite(att.theta_new, att.f_new, att.out_new)
                hstep = next_step_size(hstep, att.error, s.error_prev, tab, accepted=False)
                s = s._replace(n_rejected=s.n_rejected + 1, grad_evals=prob.grad_evals, h=hstep)
                committed = s
                continue
            blown_up = False
            t_new = t_end if last else s.t + hstep
            ge = prob.grad_evals
            values_new = run.losses(att.out_new)
            if not all_finite(att.theta_new, att.f_new, att.out_new, values_new):
                status = "diverged"
                break
            pending = []
            idx = s.eval_index
            while idx < n_eval and times[idx] <= t_new:
                te = float(times[idx])
                if te >= t_new:
                    th_e, out_e, v_e = att.theta_new, att.out_new, values_new
                else:
                    th_e = att.dense(s.theta, (te - s.t) / hstep, tab)
                    out_e = prob.outputs(th_e)
                    v_e = run.losses(out_e)
                    if not all_finite(th_e, out_e, v_e):
                        status = "diverged"
                        break
                pending.append((te, th_e, out_e, v_e))
                idx += 1
            if status != "completed":
                break
            for te, th_e, out_e, v_e in pending:
                run.record(th_e, out_e, te, ge, values=v_e)
                run.tick(te)
            h_next = next_step_size(hstep, att.error, s.error_prev, tab, accepted=True)
            s = Committed(
                att.theta_new,
                t_new,
                s.n_steps + 1,
                s.n_rejected,
                ge,
                idx,
                len(run.history),
                h_next,
                max(att.error, 1e-4),
                att.f_new,
                att.out_new,
            )
            committed = s
            run.maybe_checkpoint(s, bool(pending))
            hstep = h_next
    except BaseException as exc:
        run.committed = committed
        if not isinstance(exc, KeyboardInterrupt):
            raise
        status = "interrupted"
    return status, committed
