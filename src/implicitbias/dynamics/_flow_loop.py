"""The adaptive gradient flow dθ/dt = −∇L_λ(θ): the ``method="flow"`` loop of
:func:`~implicitbias.dynamics.train`, built on the embedded Runge–Kutta steps of :mod:`.flow`.

Each attempted step is accepted when its error estimate is ≤ 1; evaluation times inside an
accepted step come from the step's dense output. The state after each accepted step (θ, F(θ)
for FSAL, the step-size controller's memory) is a :class:`Committed` a run resumes from.

Divergence. θ, F(θ), the outputs and the losses are checked at every accepted step and at every
interpolated evaluation, before anything of that step is recorded; a step size that underflows
after rejections of non-finite trial steps is a divergence too (without them: the flow is too
stiff to follow, status ``"step_size_too_small"``). The run stops at the last accepted state
that passed. Nothing non-finite is recorded or checkpointed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from implicitbias.dynamics._checkpoint import all_finite
from implicitbias.dynamics._problem import Committed
from implicitbias.dynamics.flow import StepAttempt, next_step_size, rk_step

if TYPE_CHECKING:
    from implicitbias.dynamics._run import Run, TrainStatus

__all__: list[str] = []

#: An evaluation inside an accepted step: (time, θ, outputs, per-example losses).
Pending = tuple[float, torch.Tensor, torch.Tensor, torch.Tensor]


def run_flow(
    run: Run,
    start: Committed,
    times: np.ndarray,
    t_end: float,
    tab: Any,
    rtol: float,
    atol: float,
    max_step: float | None,
) -> tuple[TrainStatus, Committed]:
    """Integrate the flow from the committed state ``start`` to ``t_end``; (status, last good
    state). A ``KeyboardInterrupt`` returns ``"interrupted"``; any other exception sets
    ``run.committed`` to the last good state and propagates."""
    prob, rec = run.prob, run.recorder
    s = committed = start
    status: TrainStatus = "completed"
    try:
        if s.f is None:  # a fresh start (checkpoints of flow runs store F)
            f0, out0 = prob.rhs(s.theta)
            s = s._replace(f=f0, out=out0, grad_evals=prob.grad_evals)
        committed = s
        out = s.out if s.out is not None else prob.outputs(s.theta)
        values = prob.losses(out)
        if not all_finite(s.theta, out, values):
            return "diverged", committed
        recorded = _record_now(run, s, out, values, times)
        if recorded.eval_index != s.eval_index:
            s = committed = recorded
            run.checkpoints.maybe_save(s, True)
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
            assert s.f is not None
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
            pending = _evaluations_in_step(run, s, att, t_new, times, tab)
            if pending is None:
                status = "diverged"
                break
            for te, th_e, out_e, v_e in pending:
                rec.record(th_e, out_e, te, ge, values=v_e)
                rec.tick(te)
            h_next = next_step_size(hstep, att.error, s.error_prev, tab, accepted=True)
            s = Committed(
                att.theta_new,
                t_new,
                s.n_steps + 1,
                s.n_rejected,
                ge,
                s.eval_index + len(pending),
                len(rec.history),
                h_next,
                max(att.error, 1e-4),
                att.f_new,
                att.out_new,
            )
            committed = s
            run.checkpoints.maybe_save(s, bool(pending))
            hstep = h_next
    except BaseException as exc:
        run.committed = committed
        if not isinstance(exc, KeyboardInterrupt):
            raise
        status = "interrupted"
    return status, committed


def _record_now(
    run: Run, s: Committed, out: torch.Tensor, values: torch.Tensor, times: np.ndarray
) -> Committed:
    """Record the evaluations at the current time (t = 0, or a resumed point); the state with
    the schedule moved past them."""
    idx = s.eval_index
    while idx < len(times) and times[idx] <= s.t:
        run.recorder.record(s.theta, out, float(times[idx]), s.grad_evals, values=values)
        idx += 1
    if idx == s.eval_index:
        return s
    return s._replace(eval_index=idx, history_len=len(run.recorder.history))


def _evaluations_in_step(
    run: Run,
    s: Committed,
    att: StepAttempt,
    t_new: float,
    times: np.ndarray,
    tab: Any,
) -> list[Pending] | None:
    """The checked states at the evaluation times in (s.t, t_new] of the accepted step
    ``att`` (from its dense output; the new point itself at t_new); None when the new point or
    one of them is not finite."""
    prob = run.prob
    values_new = prob.losses(att.out_new)
    if not all_finite(att.theta_new, att.f_new, att.out_new, values_new):
        return None
    pending: list[Pending] = []
    idx = s.eval_index
    while idx < len(times) and times[idx] <= t_new:
        te = float(times[idx])
        if te >= t_new:
            th_e, out_e, v_e = att.theta_new, att.out_new, values_new
        else:
            th_e = att.dense(s.theta, (te - s.t) / att.h, tab)
            out_e = prob.outputs(th_e)
            v_e = prob.losses(out_e)
            if not all_finite(th_e, out_e, v_e):
                return None
        pending.append((te, th_e, out_e, v_e))
        idx += 1
    return pending
