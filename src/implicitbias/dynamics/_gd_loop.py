"""Fixed-step gradient descent, θ_{k+1} = θ_k − η(∇L(θ_k) + λθ_k): the ``method="gd"`` loop of
:func:`~implicitbias.dynamics.train`.

The parameters are updated in place (exactly ``torch.optim.SGD(lr=η, weight_decay=λ)``); the
state is (parameters, k, evaluations recorded), materialized as a flat θ only at evaluations
and checkpoints.

Divergence. Every step first checks θ_k, the outputs at θ_k and the losses (where finite outputs
do not already prove them finite: see :meth:`~implicitbias.dynamics.Loss.derivative_and_guard`),
reusing the outputs of the gradient pass: one copy into a stash and one sum (:class:`Stash`,
about 3% of a step of the small benchmark instance). The first non-finite state stops the run
with status ``"diverged"`` at θ_{k−1}, kept in the stash. Nothing non-finite is recorded or
checkpointed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from implicitbias.dynamics._problem import Committed, Stash

if TYPE_CHECKING:
    from implicitbias.dynamics._run import Run, TrainStatus

__all__: list[str] = []


def _gd_state(theta: torch.Tensor, k: int, idx: int, lr: float) -> Committed:
    """The committed state after ``k`` GD steps with ``idx`` evaluations recorded."""
    return Committed(theta, k * lr, k, 0, k, idx, idx, lr, 1.0, None, None)


def run_gd(
    run: Run, start: Committed, total_steps: int, eval_steps: np.ndarray
) -> tuple[TrainStatus, Committed]:
    """GD from the committed state ``start`` to ``total_steps``; (status, last good state).

    One history row per step in ``eval_steps`` (rows = evaluations recorded); every step first
    stashes θ_k with its outputs and losses (:class:`Stash`: one copy, one sum), so that the
    first non-finite state ends the run at θ_{k−1}. A ``KeyboardInterrupt`` returns
    ``"interrupted"`` with the live state; any other exception sets ``run.committed`` to it and
    propagates.
    """
    prob, lr, rec, ckpt = run.prob, run.lr, run.recorder, run.checkpoints
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
                rec.record(theta_eval, out, k * lr, k, float(k), guard)
                if rec.metrics is not None:
                    prob.load(theta_eval)  # in case the metrics moved the parameters
                    stash.refresh()
                idx += 1
                phase = "top"
                next_eval = int(eval_steps[idx]) if idx < n_eval else -1
                rec.tick(k * lr)
            if evaluated or ckpt.due(k * lr):
                committed = _gd_state(theta_eval if evaluated else stash.theta(k), k, idx, lr)
                ckpt.maybe_save(committed, evaluated)
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
