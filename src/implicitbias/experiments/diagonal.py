r"""Diagonal linear networks on linear classification: grokking and misgrokking (THEORY §4, §6).

A depth-2 diagonal net f(θ; x) = ⟨u⊙u − v⊙v, x⟩ with u = v = α/√(2d)·1 is trained on the
logistic loss with weight decay λ. Its kernel-regime predictor is the ℓ2 max-margin classifier
w₂* and its rich-regime predictor the ℓ1 max-margin classifier w₁* of the training set
(THEORY §4), so test accuracy moves from w₂*'s level to w₁*'s near t* = (1/λ)·log α: up on a
sparse target (grokking), down on data with a large ℓ2 margin (misgrokking).

Test metrics are computed after training in one pass over the test set, from the snapshots of
w = u² − v² taken at every evaluation: the predictor is linear in w, so all evaluations cost one
matrix product per chunk of test rows, and the test set (4 GB at paper scale) is generated in
seeded chunks and never held in memory.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, Section 3.1, Figures 1 and 3.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from implicitbias._validation import check_choice
from implicitbias.dynamics import Method
from implicitbias.experiments._common import (
    CheckSpec,
    EvalCounter,
    RunOutput,
    Timer,
    kkt_epsilon_rel,
    measure_checks,
    merge_columns,
    schedule,
    torch_dtype,
    train_configured,
    value_at,
    window,
)
from implicitbias.experiments._linear import Snapshots, cosine, evaluate_linear
from implicitbias.experiments._rundir import SNAPSHOTS
from implicitbias.experiments.configs import DiagonalConfig
from implicitbias.experiments.data import large_margin_task, sparse_linear_task
from implicitbias.experiments.registry import Experiment, register
from implicitbias.models import DiagonalNet
from implicitbias.rich_regime import l1_max_margin, l2_max_margin

__all__ = ["run_diagonal", "evaluate_linear", "check_specs"]


def _l1_baseline(X: np.ndarray, y: np.ndarray, *, screen: int) -> tuple[np.ndarray, dict[str, Any]]:
    """The ℓ1 max-margin classifier, exactly (``screen=0``) or over screened features.

    Screening keeps the ``screen`` features with the largest ``|Xᵀy|``; the result is feasible
    for the full problem but certified only on the screened set, so its dual violation
    ``‖Xᵀ(μ ⊙ y)‖_∞ − 1`` over all features is reported.
    """
    d = X.shape[1]
    if screen <= 0 or screen >= d:
        res = l1_max_margin(X, y)
        return np.asarray(res.w, dtype=np.float64), {
            "margin": float(res.margin),
            "support_size": int(len(res.active_features)),
            "route": f"exact ({res.solver})",
            "status": res.status,
        }
    score = np.abs(X.T @ y)
    keep = np.sort(np.argpartition(-score, screen - 1)[:screen])
    res = l1_max_margin(X[:, keep], y)
    w = np.zeros(d)
    w[keep] = res.w
    violation = float(np.max(np.abs(X.T @ (np.asarray(res.dual) * y)))) - 1.0
    return w, {
        "margin": float(res.margin),
        "support_size": int(len(res.active_features)),
        "route": f"screened to the {screen} features with largest |X^T y| ({res.solver})",
        "status": res.status,
        "dual_violation_all_features": violation,
    }


def run_diagonal(
    cfg: DiagonalConfig,
    *,
    name: str,
    seed: int = 0,
    device: str = "cpu",
    method: Method | None = None,
    progress: bool | None = False,
    history_path: Any = None,
    log: Any = None,
    checkpoint_path: Any = None,
    snapshot_path: Any = None,
    resume: bool = False,
) -> RunOutput:
    """Train the diagonal net of ``cfg`` and measure everything the figure and checks need.

    Parameters
    ----------
    cfg : DiagonalConfig
        The setting (see :mod:`implicitbias.experiments.configs`).
    name : {"sparse-linear", "misgrokking"}
        Which checks to run.
    seed : int
        Data seed.
    device : str
        Torch device of the training.
    method : {"gd", "flow"}, optional
        Overrides ``cfg.method``.
    progress : bool or None
        The trainer's progress (see :func:`implicitbias.train`).
    history_path : path, optional
        The trainer's incremental CSV.
    log : callable, optional
        ``log(str)`` for progress messages.
    checkpoint_path : path, optional
        The trainer's checkpoint (see :func:`implicitbias.train`).
    snapshot_path : path, optional
        File of the snapshots of w taken at the evaluations (what a resumed run needs besides
        the checkpoint to score the evaluations before the interruption).
    resume : bool, default False
        Continue from ``checkpoint_path`` and ``snapshot_path``.

    Returns
    -------
    RunOutput
    """
    check_choice(name, "run_diagonal", "name", tuple(_SPECS))
    say = log or (lambda s: None)
    timer = Timer()
    src, n, n_test = cfg.data_source, cfg.n, cfg.n_test
    if cfg.task == "sparse":
        task = sparse_linear_task(cfg.d, k=cfg.k, seed=seed, data_source=src, n=n, n_test=n_test)
    else:
        task = large_margin_task(
            cfg.d, gamma=cfg.gamma, seed=seed, data_source=src, n=n, n_test=n_test
        )
    X_np, y_np = task.sample(cfg.n)
    X64, y64 = X_np.astype(np.float64), y_np.astype(np.float64)

    say("solving the l2 max-margin problem (kernel-regime baseline) ...")
    t0 = timer()
    l2 = l2_max_margin(X64, y64)
    t_l2 = timer() - t0
    say(f"  done in {t_l2:.1f} s; solving the l1 max-margin problem (rich-regime baseline) ...")
    t0 = timer()
    w1, l1_info = _l1_baseline(X64, y64, screen=cfg.l1_screen)
    t_l1 = timer() - t0
    l1_info["solve_time"] = t_l1
    say(f"  done in {t_l1:.1f} s")
    w2 = np.asarray(l2.w, dtype=np.float64)

    dtype = torch_dtype(cfg.dtype)
    dev = torch.device(device)
    X = torch.as_tensor(X_np, dtype=dtype, device=dev)
    y = torch.as_tensor(y_np, dtype=dtype, device=dev)
    net = DiagonalNet(cfg.d, alpha=cfg.alpha, alpha_mode="norm", dtype=dtype, device=dev)

    times, kkt_idx = schedule(cfg.t_max, cfg.num_evals, cfg.lr, cfg.kkt_evals, cfg.t_star)
    counter = EvalCounter(times)
    snapshots = Snapshots(cfg.d, snapshot_path, resume=resume)

    def metrics(h: Any, t: float) -> dict[str, float]:
        w = h.model.w.detach().to("cpu", torch.float64).numpy()
        i = counter.index(t)
        snapshots.add(i, w)
        eps = math.nan
        if i in kkt_idx and i > 0:
            eps = kkt_epsilon_rel(h, X, y, task="classification", weight_decay=cfg.weight_decay)
        return {"cos_l2": cosine(w, w2), "cos_l1": cosine(w, w1), "kkt_epsilon_rel": eps}

    res = train_configured(
        net,
        X,
        y,
        cfg,
        loss="logistic",
        method=method,
        times=times,
        metrics=metrics,
        history_path=history_path,
        progress=progress,
        say=say,
        checkpoint_path=checkpoint_path,
        resume=resume,
    )
    hist = res.history
    say(
        f"  done in {res.wall_time:.1f} s ({res.grad_evals} gradient evaluations); evaluating on "
        f"{cfg.n_test} test points ..."
    )
    t0 = timer()
    rows = [counter.index(float(t)) for t in hist["t"]] if len(hist) else []
    W = np.concatenate(
        [snapshots.stack(rows), w2.astype(np.float32)[None], w1.astype(np.float32)[None]]
    )
    acc, loss = evaluate_linear(task, cfg.n_test, W)
    t_test = timer() - t0
    l2_acc, l1_acc = float(acc[-2]), float(acc[-1])
    hist = merge_columns(hist, {"test_acc": acc[: len(hist)], "test_loss": loss[: len(hist)]})

    # final KKT (the schedule's last point is always included; recompute if it was cut short)
    eps_col = hist["kkt_epsilon_rel"]
    summary: dict[str, Any] = {
        "t_star": cfg.t_star,
        "t_star_steps": cfg.t_star / cfg.lr,
        "l2_max_margin": {"test_acc": l2_acc, "margin": float(l2.margin), "solve_time": t_l2},
        "l1_max_margin": {"test_acc": l1_acc, **l1_info},
        "test_eval_time": t_test,
        "final": {
            "train_acc": float(hist["train_acc"][-1]),
            "test_acc": float(hist["test_acc"][-1]),
            "cos_l1": float(hist["cos_l1"][-1]),
            "cos_l2": float(hist["cos_l2"][-1]),
            "theta_norm": float(hist["theta_norm"][-1]),
            "kkt_epsilon_rel": float(eps_col[-1]),
            "rescaled_time": float(hist["rescaled_time"][-1]),
        },
    }
    summary["checks"] = _checks(name, hist, l2_acc, l1_acc)
    baselines = {"l2 max-margin (kernel regime)": l2_acc, "l1 max-margin (rich regime)": l1_acc}
    info = {
        "method": res.method,
        "status": res.status,
        "grad_evals": res.grad_evals,
        "steps_equivalent": res.steps_equivalent,
        "train_wall_time": res.wall_time,
        "n_steps": res.iterations,
        "n_rejected": res.n_rejected,
    }
    return RunOutput(name, hist, summary, baselines, "accuracy", cfg.t_star, cfg.lr, info)


def _kernel_window(hist: Any) -> np.ndarray:
    """Evaluations of the kernel phase: 0.1 ≤ t/t* ≤ 0.5, training set fitted."""
    return window(hist, 0.1, 0.5) & (hist["train_acc"] >= 1.0)


_COMMON_SPECS: dict[str, CheckSpec] = {
    "train_acc_100_at_rescaled_time": (
        "<=",
        0.05,
        "train accuracy reaches 100% early (first time, in units of t*)",
    ),
    "kernel_phase_test_acc_vs_l2": (
        "<=",
        0.03,
        "max |test acc − l2 max-margin test acc| over the kernel phase 0.1 ≤ t/t* ≤ 0.5",
    ),
    "kernel_phase_cos_l2_min": (
        ">=",
        0.95,
        "min cos(w, w2*) over the kernel phase 0.1 ≤ t/t* ≤ 0.5",
    ),
    "kkt_epsilon_rel_drop": (
        ">=",
        10.0,
        "median KKT epsilon_rel over the kernel phase / epsilon_rel at the end",
    ),
}
_SPARSE_SPECS: dict[str, CheckSpec] = {
    "final_cos_l1": (">=", 0.95, "cos(w, w1*) at the end"),
    "kernel_phase_test_acc_below_75": (
        "<",
        0.75,
        "max test accuracy up to t*/2 (the jump must be unmistakable)",
    ),
    "l1_test_acc": (">=", 0.95, "l1 max-margin test accuracy"),
    "test_acc_at_2t_star_vs_l1": (
        ">=",
        -0.03,
        "test acc at t = 2t* minus l1 max-margin test acc",
    ),
}
_MISGROKKING_SPECS: dict[str, CheckSpec] = {
    "kernel_phase_test_acc_high": (">=", 0.9, "median test accuracy over the kernel phase"),
    "final_test_acc_vs_l1": ("<=", 0.05, "|final test acc − l1 max-margin test acc|"),
    "test_acc_drop": (
        ">=",
        0.2,
        "kernel-phase test accuracy minus final test accuracy",
    ),
}


_SPECS: dict[str, dict[str, CheckSpec]] = {
    "sparse-linear": {**_COMMON_SPECS, **_SPARSE_SPECS},
    "misgrokking": {**_COMMON_SPECS, **_MISGROKKING_SPECS},
}


def check_specs(name: str) -> dict[str, CheckSpec]:
    """The acceptance checks of ``name`` ("sparse-linear" or "misgrokking"): name → (op,
    threshold, description)."""
    check_choice(name, "check_specs", "name", tuple(_SPECS))
    return dict(_SPECS[name])


def _checks(name: str, hist: Any, l2_acc: float, l1_acc: float) -> dict[str, Any]:
    acc = hist["test_acc"]
    r = hist["rescaled_time"]
    kw = _kernel_window(hist)
    fitted = np.flatnonzero(hist["train_acc"] >= 1.0)
    t_fit = float(r[fitted[0]]) if fitted.size else math.nan
    eps = hist["kkt_epsilon_rel"]
    eps_kernel = eps[kw & np.isfinite(eps)]
    eps_final = float(eps[np.isfinite(eps)][-1]) if np.isfinite(eps).any() else math.nan
    eps_ratio = float(np.median(eps_kernel)) / eps_final if eps_kernel.size else math.nan
    dev = float(np.max(np.abs(acc[kw] - l2_acc))) if kw.any() else math.nan
    cos2_min = float(np.min(hist["cos_l2"][kw])) if kw.any() else math.nan
    values: dict[str, float] = {
        "train_acc_100_at_rescaled_time": t_fit,
        "kernel_phase_test_acc_vs_l2": dev,
        "kernel_phase_cos_l2_min": cos2_min,
        "kkt_epsilon_rel_drop": eps_ratio,
    }
    if name == "sparse-linear":
        half = window(hist, 0.0, 0.5)
        values["final_cos_l1"] = float(hist["cos_l1"][-1])
        values["kernel_phase_test_acc_below_75"] = (
            float(np.max(acc[half])) if half.any() else math.nan
        )
        values["l1_test_acc"] = l1_acc
        values["test_acc_at_2t_star_vs_l1"] = value_at(hist, "test_acc", 2.0) - l1_acc
    else:
        early = float(np.median(acc[kw])) if kw.any() else math.nan
        final = float(acc[-1])
        values["kernel_phase_test_acc_high"] = early
        values["final_test_acc_vs_l1"] = abs(final - l1_acc)
        values["test_acc_drop"] = early - final
    return measure_checks(check_specs(name), values)


def _launch(cfg: DiagonalConfig, *, name: str, workdir: Path, **kwargs: Any) -> RunOutput:
    """:func:`run_diagonal` as the registry calls it (the snapshots live in the run folder)."""
    return run_diagonal(cfg, name=name, snapshot_path=Path(workdir) / SNAPSHOTS, **kwargs)


register(
    Experiment(
        name="sparse-linear",
        description=(
            "Grokking: diagonal net on a 3-sparse linear classification task; test accuracy jumps "
            "from the l2 (kernel) to the l1 (rich) max-margin level near t* = log(alpha)/lambda."
        ),
        presets={
            "paper": DiagonalConfig(
                task="sparse",
                d=100_000,
                n=256,
                n_test=10_000,
                alpha=128.0,
                weight_decay=1e-3,
                lr=0.01,
                horizon=2e6 * 0.01 / (math.log(128.0) / 1e-3),
                num_evals=100,
                kkt_evals=12,
            ),
            "quick": DiagonalConfig(
                task="sparse",
                d=500,
                n=256,
                n_test=10_000,
                alpha=512.0,
                weight_decay=0.1,
                lr=1e-3,
                horizon=3.0,
            ),
            "tiny": DiagonalConfig(
                task="sparse",
                d=200,
                n=64,
                n_test=1000,
                alpha=128.0,
                weight_decay=0.1,
                lr=1e-3,
                horizon=2.5,
                num_evals=40,
                kkt_evals=6,
                rtol=1e-4,
            ),
        },
        runner=_launch,
        checks=check_specs("sparse-linear"),
        metric="accuracy",
    )
)
register(
    Experiment(
        name="misgrokking",
        description=(
            "Misgrokking: diagonal net on data with a large l2 margin; test accuracy is high early "
            "(l2 max-margin) and falls after t* (l1 max-margin)."
        ),
        presets={
            "paper": DiagonalConfig(
                task="large_margin",
                d=100_000,
                n=32,
                n_test=10_000,
                gamma=25.0,
                alpha=128.0,
                weight_decay=1e-3,
                lr=0.01,
                horizon=2e7 * 0.01 / (math.log(128.0) / 1e-3),
                num_evals=100,
                kkt_evals=12,
            ),
            "quick": DiagonalConfig(
                task="large_margin",
                d=20_000,
                n=32,
                n_test=10_000,
                gamma=25.0,
                alpha=512.0,
                weight_decay=0.1,
                lr=1e-3,
                horizon=40.0,
            ),
            "tiny": DiagonalConfig(
                task="large_margin",
                d=200,
                n=16,
                n_test=1000,
                gamma=25.0,
                alpha=128.0,
                weight_decay=0.1,
                lr=1e-3,
                horizon=4.0,
                num_evals=40,
                kkt_evals=6,
                rtol=1e-4,
            ),
        },
        runner=_launch,
        checks=check_specs("misgrokking"),
        metric="accuracy",
    )
)
