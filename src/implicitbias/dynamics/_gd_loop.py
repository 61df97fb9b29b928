"""Fixed-step gradient descent, θ_{k+1} = θ_k − η(∇L(θ_k) + λθ_k): the ``method="gd"`` loop of
:func:`~implicitbias.dynamics.train`.

The parameters are updated in place (exactly ``torch.optim.SGD(lr=η, weight_decay=λ)``); the
state is (parameters, k, evaluations recorded), materialized as a flat θ only at evaluations
and checkpoints.

Divergence. Every step checks θ_k, the outputs at θ_k and the losses (where finite outputs do
not already prove them finite: see :meth:`~implicitbias.dynamics.Loss.derivative_and_guard`),
reusing the outputs of the gradient pass: one copy into a stash (:class:`Stash`). The first
non-finite state stops the run with status ``"diverged"`` at θ_{k−1}. Nothing non-finite is
recorded or checkpointed.

When the host reads the verdict (:func:`guard_every`). On the CPU, every step: one sum and its
read, about 2% of a step of the small benchmark instance. On an accelerator a read waits
for all the work queued before it, so the verdict stays on the device — each step adds
⟨stash, 0⟩ to an accumulator, 0 for any finite state and NaN as soon as one entry is NaN or
±inf — and the host reads it every 64 steps and before anything leaves the device: a record,
a checkpoint, the end of the run, a Ctrl-C. No other step of the loop waits for the device
(the forward and backward passes, the loss derivative, the in-place update and the schedule
bookkeeping queue work without reading it back). The last verified θ is kept aside (one copy
per window); a window that turns out to hold a non-finite state is replayed from it with the
per-step check (GD is deterministic), so the run ends exactly as it would with the check read
every step: ``"diverged"`` at θ_{k−1} of the first non-finite step k — the same k and, on the
CPU, the same bits (CUDA kernels that are not bitwise deterministic may place it differently)
— at the cost of at most one window of extra steps, once. ``TrainResult.grad_evals`` does not
count the replayed steps. The replay assumes the forward is a function of θ and the data: a
model with state of its own (dropout, batch norm in training mode, a hook that counts its calls)
sees the replayed steps again and may diverge elsewhere than with a read every step. An error
raised from a state the unread window let through (e.g. a hook that refuses non-finite weights)
also triggers the replay, so the run ends ``"diverged"`` where a per-step read would have.

Interrupts and errors. A Ctrl-C (deferred to a step boundary) reads the guard first: the run
stops ``"interrupted"`` at a verified θ_k, or ``"diverged"`` as above if the steps since the
last read went non-finite. When an exception (or a second Ctrl-C) escapes a step, the live
state is committed if it is finite (the pending window and θ included), else the last verified
one; an unverified non-finite state is never committed or checkpointed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from implicitbias.dynamics._problem import Committed, Stash

if TYPE_CHECKING:
    from implicitbias.dynamics._run import Run, TrainStatus

__all__: list[str] = []

#: Steps between two reads of the divergence guard by the host on the CPU, and on any other
#: device (module attributes: the tests force deferred checks on the CPU).
_CPU_GUARD_EVERY = 1
_DEVICE_GUARD_EVERY = 64


def guard_every(device: torch.device) -> int:
    """Steps between two host reads of the divergence guard on ``device``: 1 on the CPU (a
    read costs nothing there: the per-step check of old), :data:`_DEVICE_GUARD_EVERY`
    elsewhere (a read waits for the device to finish the queued work)."""
    return _CPU_GUARD_EVERY if device.type == "cpu" else _DEVICE_GUARD_EVERY


def _gd_state(theta: torch.Tensor, k: int, idx: int, lr: float) -> Committed:
    """The committed state after ``k`` GD steps with ``idx`` evaluations recorded."""
    return Committed(theta, k * lr, k, 0, k, idx, idx, lr, 1.0, None, None)


def run_gd(
    run: Run,
    start: Committed,
    total_steps: int,
    eval_steps: np.ndarray,
    *,
    every: int | None = None,
) -> tuple[TrainStatus, Committed]:
    """GD from the committed state ``start`` to ``total_steps``; (status, last good state).

    One history row per step in ``eval_steps`` (rows = evaluations recorded); every step
    stashes θ_k with its outputs and losses (:class:`Stash`), and the first non-finite state
    ends the run at θ_{k−1}. The guard is read every ``every`` steps (default
    :func:`guard_every`) and before every record, checkpoint, the end and a Ctrl-C; a window
    with a non-finite state is replayed from its verified start one step at a time. A
    ``KeyboardInterrupt`` returns ``"interrupted"`` with the live state (the last verified one
    if the live one is not finite); any other exception sets ``run.committed`` to it and
    propagates.
    """
    prob, lr, rec, ckpt = run.prob, run.lr, run.recorder, run.checkpoints
    prob.load(start.theta)
    every = guard_every(start.theta.device) if every is None else every
    k, idx = start.n_steps, start.eval_index
    n_eval = len(eval_steps)
    next_eval = int(eval_steps[idx]) if idx < n_eval else -1
    stash: Stash | None = None
    theta_eval = start.theta
    # steps exact_from..exact_until are checked one by one (the first step, a replayed window);
    # the others are deferred: `pending` of them since θ_{kept}, verified and kept aside
    exact_from = exact_until = kept = k
    pending = kept_evals = 0
    phase = "top"
    while True:  # once more after an error that an unread divergence caused
        try:
            while True:
                phase = "top"
                # a Ctrl-C stops the run at a verified step (a replay first reaches its end)
                stop = run.interrupt.requested and k >= exact_until
                if k < total_steps and not stop:
                    grads, out, guard = prob.param_gradients()
                else:
                    grads = None
                    out, guard = prob.current_outputs()
                if stash is None:
                    stash = Stash(prob.params, out, guard)
                evaluated = k == next_eval
                due = ckpt.path is not None and ckpt.due(k * lr)
                if every == 1 or k <= exact_until:
                    if not stash.check(k, out, guard):
                        if k == start.n_steps:
                            return "diverged", start
                        if k > exact_from:
                            return "diverged", _gd_state(stash.theta(k - 1), k - 1, idx, lr)
                        assert stash.kept is not None  # a replay failing at once
                        return "diverged", _gd_state(stash.kept.clone(), k, idx, lr)
                    verified = True
                else:
                    stash.defer(k, out, guard)
                    pending += 1
                    verified = stop or evaluated or due or grads is None or pending >= every
                    if verified:
                        pending = 0
                        if not stash.deferred_finite():  # replay the window from θ_kept
                            assert stash.kept is not None
                            prob.load(stash.kept)
                            prob.grad_evals = kept_evals
                            exact_from, exact_until, k = kept, k, kept
                            continue
                if verified and every > 1 and k >= exact_until and grads is not None:
                    stash.keep(k)  # θ_k is verified: a failing window restarts here
                    kept, kept_evals = k, prob.grad_evals - 1
                if stop:
                    return "interrupted", _gd_state(stash.theta(k), k, idx, lr)
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
                if evaluated or due:
                    state = _gd_state(theta_eval if evaluated else stash.theta(k), k, idx, lr)
                    ckpt.maybe_save(state, evaluated)
                if grads is None:
                    break
                phase = "update"
                prob.sgd_step(grads, lr)
                k += 1
            # the final state (also when the schedule does not end at the last step)
            return "completed", _gd_state(stash.theta(k), k, idx, lr)
        except BaseException as exc:
            # the live state: θ_k (before the metrics of step k ran, if they raised; the stashed
            # θ_k if the update was cut short), k steps, idx evaluations — if it is finite
            if phase == "record":
                state = _gd_state(theta_eval, k, idx, lr)
            else:
                theta_now = (
                    stash.theta(k) if phase == "update" and stash is not None else prob.flat()
                )
                state = _gd_state(theta_now, k, idx, lr)
                if not _finite(stash, pending, theta_now):
                    if (
                        not isinstance(exc, KeyboardInterrupt)
                        and every > 1
                        and k > exact_until
                        and stash is not None
                        and stash.kept is not None
                    ):
                        # the error came from a state the unread window let through (e.g. a
                        # hook refusing non-finite weights): replay the window one step at a
                        # time, which stops "diverged" where a per-step read would, or meets
                        # the error again from a finite state and raises it
                        prob.load(stash.kept)
                        prob.grad_evals = kept_evals
                        exact_from, exact_until, k = kept, k, kept
                        pending = 0
                        continue
                    exact = exact_from < k <= exact_until
                    state = _last_verified(stash, start, k, kept, idx, lr, 1 if exact else every)
            run.committed = state
            if isinstance(exc, KeyboardInterrupt):
                return "interrupted", state
            raise


def _finite(stash: Stash | None, pending: int, theta: torch.Tensor) -> bool:
    """Whether the deferred steps and ``theta`` are finite (False if that cannot be read)."""
    try:
        window = pending == 0 or stash is None or stash.deferred_finite()
        return window and bool(torch.isfinite(theta).all())
    except Exception:  # the device itself failed: trust only what was verified
        return False


def _last_verified(
    stash: Stash | None, start: Committed, k: int, kept: int, idx: int, lr: float, every: int
) -> Committed:
    """The last verified state before step ``k``: θ_{k−1} of the per-step checks, the kept
    θ of the deferred ones, or ``start``."""
    if stash is None or k == start.n_steps:
        return start
    if every > 1:
        return start if stash.kept is None else _gd_state(stash.kept.clone(), kept, idx, lr)
    return _gd_state(stash.theta(k - 1), k - 1, idx, lr)
