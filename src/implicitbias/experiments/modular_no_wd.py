r"""Modular addition without weight decay: the step on log L (THEORY §6.6, Appendix B.1).

The network and data of Fig. 2(a) (two-layer ReLU net, plain He initialization, last layer not
zeroed), trained by full-batch GD on the mean cross-entropy L with **no weight decay**. While
log L > s (s = −5) the step is taken on c·L (c = 10, an effective rate c·η); afterwards on
log L, whose gradient is ∇L/L — an effective rate η/L(θ):

.. math::

    \theta_{k+1} = \theta_k - \eta_k \nabla L(\theta_k), \qquad
    \eta_k = \begin{cases} c\,\eta & \log L(\theta_k) > s, \\
                           \eta / L(\theta_k) & \text{otherwise.} \end{cases}

Once the training set is fitted, L decays exponentially in the margin, so plain GD would
crawl; the η/L rule is normalized GD, which keeps the margin growing at a steady pace. Without
weight decay the implicit bias of GD (Lyu & Li 2020: the direction converges to a KKT point of
the margin problem, the normalized margin grows) again takes the network from a memorizing to a
generalizing solution (Lyu et al. 2024, Appendix B.1, Fig. 4).

log L is computed in float64 from the logits, stably where L underflows (below ~1e-300 the
logsumexp of the margins stands in for log Σ log(1 + ·), as in the paper's code).

The loop is a plain PyTorch loop with :class:`~implicitbias.Monitor` (the trainer's history
columns) plus ``log_lr_effective`` (log η_k of the last step), ``log_train_loss`` (log L in
float64, finite where the float32 ``train_loss`` underflows to 0) and ``log_flow_time``
(log Σ η_k); logs, since η/L outgrows any float once the margins pass ~700. ``t`` and
``step`` count GD steps (t = η·step with the nominal η). Each step chooses its branch on the
device; the host reads log L every step on the CPU and every 64 steps (and at records,
checkpoints, the end and a Ctrl-C) on a GPU, with the same trajectory, divergence included
(``implicitbias.experiments._no_wd_loop``).

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, Appendix B.1.
Lyu, Li, *Gradient Descent Maximizes the Margin of Homogeneous Neural Networks*, ICLR 2020,
arXiv:1906.05890.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from implicitbias.dynamics import History, Method, Monitor, log_schedule
from implicitbias.experiments._common import CheckSpec, RunOutput, measure_checks, torch_dtype
from implicitbias.experiments._no_wd_loop import LogLossSteps, State, combined, run_loop
from implicitbias.experiments.configs import NoDecayConfig
from implicitbias.experiments.data import modular_addition_data
from implicitbias.experiments.modular_addition import MILESTONE_SPECS, modular_network
from implicitbias.experiments.registry import Experiment, register
from implicitbias.experiments.sweep_checks import run_metrics

__all__ = [
    "log_effective_lr",
    "log_mean_cross_entropy",
    "log_loss_step",
    "run_no_weight_decay",
    "NO_WD_SPECS",
]

#: Below this value of the largest per-example log-loss exponent, log Σ softplus is taken as
#: the logsumexp of the margins (relative error < e^-30).
_TINY = -30.0

NO_WD_SPECS: dict[str, CheckSpec] = {
    # the milestones of Fig. 2(a), in GD steps
    **{k: MILESTONE_SPECS[k] for k in ("memorization_first", "delayed_generalization")},
    "final_test_acc": MILESTONE_SPECS["final_test_acc"],
    "margin_grows": (
        ">=",
        1.5,
        "normalized margin at the end / at the first record on log L",
    ),
}


def log_mean_cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    r"""log L for L = (1/n) Σ_i CE(z_i, y_i), in float64, differentiable, without underflow.

    With the margins d_ij = z_ij − z_{i,y_i} (j ≠ y_i) and s_i = logsumexp_j d_ij,
    CE_i = log(1 + e^{s_i}) = softplus(s_i) and log L = log Σ_i softplus(s_i) − log n; when
    every s_i < −30, softplus(s) = e^s to double precision and log L = logsumexp_i s_i − log n.

    Parameters
    ----------
    logits : torch.Tensor, shape (n, C)
    y : torch.Tensor of int, shape (n,)

    Returns
    -------
    torch.Tensor
        A float64 scalar.

    Examples
    --------
    >>> import torch
    >>> z = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    >>> y = torch.tensor([0, 1])
    >>> ce = torch.nn.functional.cross_entropy(z.double(), y)
    >>> bool(torch.isclose(log_mean_cross_entropy(z, y), ce.log()))
    True
    """
    z = logits.double()
    d = z - z.gather(1, y.view(-1, 1))
    d = d.scatter(1, y.view(-1, 1), -math.inf)  # the true class is not a margin
    s = torch.logsumexp(d, dim=1)
    # both forms, chosen on the device (no host read); the softplus form, where it is not the
    # one taken, gets s = 0, so its zero gradient holds no 0·inf (log of an underflowed sum)
    large = s.detach().max() >= _TINY
    sums = torch.log(torch.nn.functional.softplus(torch.where(large, s, 0.0)).sum())
    return torch.where(large, sums, torch.logsumexp(s, dim=0)) - math.log(z.shape[0])


def log_effective_lr(
    log_loss: float, *, lr: float, lr_factor: float, switch_log_loss: float
) -> float:
    """log η_k of the rule: η_k = ``lr_factor·lr`` while ``log_loss > switch_log_loss``, else
    ``lr / L``, so log η_k = log(lr) − log_loss (finite where η_k itself overflows).

    Examples
    --------
    >>> import math
    >>> round(math.exp(log_effective_lr(-1.0, lr=0.01, lr_factor=10.0, switch_log_loss=-5.0)), 12)
    0.1
    >>> round(math.exp(log_effective_lr(-6.0, lr=0.01, lr_factor=10.0, switch_log_loss=-5.0)), 4)
    4.0343
    """
    if log_loss > switch_log_loss:
        return math.log(lr * lr_factor)
    return math.log(lr) - log_loss


def log_loss_step(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    lr_factor: float,
    switch_log_loss: float,
) -> tuple[float, float]:
    """One GD step of the rule, in place: θ ← θ − η_k ∇L(θ) (see the module docstring).

    The gradient is that of c·L (log L > s) or of log L (otherwise), taken with step η, which
    is θ − η_k ∇L exactly. The branch is chosen on the device (the objective
    ``where(log L > s, c·exp(log L), log L)``, whose gradient is the chosen branch's, bit for
    bit); the one host read is log L, before the update.

    Parameters
    ----------
    model : torch.nn.Module
        Returns ``(n, C)`` logits; its trainable parameters are updated.
    X, y : torch.Tensor
        Inputs and integer classes.
    lr, lr_factor, switch_log_loss : float
        η, c and s.

    Returns
    -------
    (float, float)
        log L(θ_k) before the step and log η_k of the step. A non-finite log L leaves the
        parameters as they were and gives log η_k = NaN.
    """
    log_loss, objective = _objective(
        model, X, y, lr_factor=lr_factor, switch_log_loss=switch_log_loss
    )
    value = float(log_loss.detach())
    if not math.isfinite(value):  # leave θ as it is: the caller stops (diverged)
        return value, math.nan
    _descend(model, objective, lr)
    return value, log_effective_lr(
        value, lr=lr, lr_factor=lr_factor, switch_log_loss=switch_log_loss
    )


def _queued_step(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr: float,
    lr_factor: float,
    switch_log_loss: float,
) -> torch.Tensor:
    """:func:`log_loss_step` without its read: the step is queued on the device whatever log L
    is (a non-finite one makes θ non-finite), and log L(θ_k) is returned as a device scalar."""
    log_loss, objective = _objective(
        model, X, y, lr_factor=lr_factor, switch_log_loss=switch_log_loss
    )
    _descend(model, objective, lr)
    return log_loss.detach()


def _objective(
    model: torch.nn.Module,
    X: torch.Tensor,
    y: torch.Tensor,
    *,
    lr_factor: float,
    switch_log_loss: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(log L, the objective of the step: c·L where log L > s, else log L), on the device.

    The branch not taken gets a zero gradient with no 0·inf: c·exp(log L) is not taken only
    where log L ≤ s (finite), log L's own gradient is 1.
    """
    for q in model.parameters():
        q.grad = None
    log_loss = log_mean_cross_entropy(model(X), y)
    objective = torch.where(log_loss > switch_log_loss, lr_factor * torch.exp(log_loss), log_loss)
    return log_loss, objective


def _descend(model: torch.nn.Module, objective: torch.Tensor, lr: float) -> None:
    """θ ← θ − η∇(objective) in place on the trainable parameters; their gradients cleared."""
    objective.backward()
    params: list[torch.Tensor] = []
    grads: list[torch.Tensor] = []
    for q in model.parameters():
        if q.requires_grad and q.grad is not None:
            params.append(q)
            grads.append(q.grad)
            q.grad = None
    with torch.no_grad():
        torch._foreach_add_(params, grads, alpha=-lr)


def run_no_weight_decay(
    cfg: NoDecayConfig,
    *,
    name: str = "modular-addition-no-wd",
    seed: int = 0,
    device: str = "cpu",
    method: Method | None = None,
    progress: bool | None = False,
    history_path: Any = None,
    log: Any = None,
    checkpoint_path: Any = None,
    resume: bool = False,
) -> RunOutput:
    """Train the net of ``cfg`` on modular addition without weight decay, the step on log L
    once log L ≤ s (see the module docstring and :func:`implicitbias.experiments.run`).

    Checkpoints (``checkpoint_path``) every 1% of the steps and on Ctrl-C, which ends the loop
    at a step boundary and raises ``KeyboardInterrupt`` for the runner to record; ``resume``
    continues from the checkpoint with the same trajectory.
    """
    say = log or (lambda s: None)
    data = modular_addition_data(
        cfg.p, train_fraction=cfg.train_fraction, seed=seed, data_source=cfg.data_source
    )
    dtype, dev = torch_dtype(cfg.dtype), torch.device(device)
    X = torch.as_tensor(data.X_train, dtype=dtype, device=dev)
    y = torch.as_tensor(data.y_train, device=dev)
    Xt = torch.as_tensor(data.X_test, dtype=dtype, device=dev)
    yt = torch.as_tensor(data.y_test, device=dev)
    net = modular_network(cfg, seed=seed, dtype=dtype, device=dev)
    ckpt = Path(checkpoint_path) if checkpoint_path is not None else None
    state = State()
    times = log_schedule(cfg.steps * cfg.lr, cfg.num_evals, step=cfg.lr)
    if resume and ckpt is not None and ckpt.exists():
        state = State.load(ckpt, net)
        say(f"resuming from step {state.k} of {cfg.steps} ({ckpt})")
        # the checkpoint holds the record of its own step, if that step is on the schedule
        times = times[times > (state.k + 0.5) * cfg.lr]
    else:
        say(f"training (gd, step on log L below log L = {cfg.switch_log_loss:g}) ...")

    def extra(h: Any, t: float) -> dict[str, float]:
        with torch.no_grad():
            value = float(log_mean_cross_entropy(h(X), y))
        return {
            "log_train_loss": value,
            "log_lr_effective": state.log_lr_effective,
            "log_flow_time": state.log_flow_time,
        }

    def write_log(record: Any) -> None:
        if history_path is not None:
            combined(state.history, mon.history).to_csv(history_path)

    mon = Monitor(
        net, X, y, loss="cross_entropy", weight_decay=0.0, lr=cfg.lr, eval_times=times,
        alpha=cfg.alpha, degree=2, X_test=Xt, y_test=yt, metrics=extra, sinks=[write_log],
    )  # fmt: skip
    kw = {"lr": cfg.lr, "lr_factor": cfg.lr_factor, "switch_log_loss": cfg.switch_log_loss}
    steps = LogLossSteps(
        exact=lambda: log_loss_step(net, X, y, **kw),
        queued=lambda: _queued_step(net, X, y, **kw),
        log_lr=lambda value: log_effective_lr(value, **kw),
    )
    t0, k0 = time.perf_counter(), state.k
    status = run_loop(cfg, net, mon, state, ckpt, progress, steps)
    wall = time.perf_counter() - t0
    hist = combined(state.history, mon.history)
    say(f"  {status} in {wall:.1f} s ({state.k - k0} steps)")
    info = {
        "method": "gd",
        "status": status,
        "grad_evals": state.k,
        "steps_equivalent": float(state.k),
        "train_wall_time": wall,
        "n_steps": state.k,
        "n_rejected": 0,
    }
    summary = _summary(cfg, hist, data, state)
    baselines = {"chance": 1.0 / cfg.p}
    return RunOutput(name, hist, summary, baselines, "accuracy", math.nan, cfg.lr, info)


def _summary(cfg: NoDecayConfig, hist: History, data: Any, state: State) -> dict[str, Any]:
    """Milestones (GD steps), the margin before and after the switch, and the checks."""
    steps, train, test = hist["step"], hist["train_acc"], hist["test_acc"]
    margin = hist["normalized_margin"]
    m = run_metrics(hist)
    fitted = np.flatnonzero(train >= 1.0)
    until = test[: fitted[0] + 1] if fitted.size else test
    on_log = np.flatnonzero(steps > state.switch_step)  # NaN: none
    margin_switch = float(margin[on_log[0]]) if on_log.size else math.nan
    ratio = float(margin[-1]) / margin_switch if margin_switch > 0 else math.nan
    return {
        "t_star": math.nan,
        "t_star_steps": math.nan,
        "n_train": int(data.y_train.size),
        "n_test": int(data.y_test.size),
        "chance": 1.0 / cfg.p,
        "milestones": m,
        "switch_step": state.switch_step,
        "normalized_margin_at_switch": margin_switch,
        "log_flow_time": state.log_flow_time,
        "final": {
            "train_acc": float(train[-1]),
            "test_acc": float(test[-1]),
            "theta_norm": float(hist["theta_norm"][-1]),
            "normalized_margin": float(margin[-1]),
            "log_train_loss": float(hist["log_train_loss"][-1]),
            "log_lr_effective": state.log_lr_effective,
            "step": float(steps[-1]),
        },
        "checks": measure_checks(
            NO_WD_SPECS,
            {
                "memorization_first": float(np.max(until)) if fitted.size else math.nan,
                "delayed_generalization": m["test_acc_90_step"] / max(m["fit_step"], 1.0),
                "final_test_acc": float(test[-1]),
                "margin_grows": ratio,
            },
        ),
    }


def _launch(cfg: NoDecayConfig, *, name: str, workdir: Any, **kwargs: Any) -> RunOutput:
    """:func:`run_no_weight_decay` as the registry calls it."""
    return run_no_weight_decay(cfg, name=name, **kwargs)


register(
    Experiment(
        name="modular-addition-no-wd",
        description=(
            "Fig. 4 (App. B.1): modular addition without weight decay, steps on log L once "
            "log L < -5 (rate eta/L): the margin keeps growing and test accuracy rises late."
        ),
        presets={
            # THEORY §6.6 and the paper's code: p = 97, 40%, width 1024, He x 1, last layer
            # not zeroed, eta = 0.01, factor 10 before the switch at log L = -5, 10^7 steps.
            "paper": NoDecayConfig(p=97, train_fraction=0.4, width=1024, steps=10_000_000),
            # quick (measured, docs/reproduce.md): eta = 0.03 (the paper's 0.01 needs ~10x the
            # steps; 0.1 groks too but jolts the normalized margin up and down)
            "quick": NoDecayConfig(
                p=31, train_fraction=0.7, width=256, lr=0.03, steps=40_000, num_evals=80
            ),
            # tiny: the switch at log L = -0.5 is crossed within its 300 steps
            "tiny": NoDecayConfig(
                p=7,
                train_fraction=0.5,
                width=32,
                steps=300,
                num_evals=20,
                dtype="float64",
                switch_log_loss=-0.5,
            ),
        },
        runner=_launch,
        checks=NO_WD_SPECS,
        metric="accuracy",
    )
)
