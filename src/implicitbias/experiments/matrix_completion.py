r"""Overparameterized matrix completion of the multiplication table (THEORY §5, §6.3).

W(θ) = UUᵀ − VVᵀ with U = V = α·I, squared loss on the observed entries, weight decay λ. The
kernel-regime predictor fits the observed entries (and their mirrors) and fills every other
entry with 0; the rich-regime predictor is the minimum nuclear-norm completion. The test MSE
therefore sits on the zero-fill plateau until about t* = (1/λ)·log α and then drops by orders
of magnitude, while ‖θ‖² approaches the minimum nuclear norm.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, Section 3.2, Figure 4.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from implicitbias.dynamics import Method
from implicitbias.experiments._common import (
    CheckSpec,
    EvalCounter,
    RunOutput,
    Timer,
    kkt_epsilon_rel,
    measure_checks,
    schedule,
    torch_dtype,
    train_configured,
    window,
)
from implicitbias.experiments.configs import CompletionConfig
from implicitbias.experiments.data import CompletionData, matrix_completion_data
from implicitbias.experiments.registry import Experiment, register
from implicitbias.models import MatrixFactorization

__all__ = ["run_matrix_completion", "zero_fill_predictor", "check_specs"]


def zero_fill_predictor(data: CompletionData) -> np.ndarray:
    """The kernel-regime (K2) completion: observed entries and their mirrors, 0 elsewhere.

    For U = V = α·I the NTK features of distinct unordered pairs are orthogonal (THEORY §5),
    so min-norm kernel regression fits each observed entry and predicts 0 on every pair
    {i, j} that was not observed in either order.

    Parameters
    ----------
    data : CompletionData

    Returns
    -------
    ndarray of shape (d, d)
    """
    W = np.zeros((data.d, data.d))
    W[data.train_rows, data.train_cols] = data.train_values
    W[data.train_cols, data.train_rows] = data.train_values
    return W


def _nuclear_completion(data: CompletionData) -> tuple[np.ndarray, float, str]:
    from implicitbias.rich_regime import min_nuclear_norm_completion

    res = min_nuclear_norm_completion(
        data.d, data.train_rows, data.train_cols, data.train_values, symmetric=True
    )
    W = np.asarray(res.W, dtype=np.float64)
    return W, float(res.nuclear_norm), str(getattr(res, "status", "optimal"))


def run_matrix_completion(
    cfg: CompletionConfig,
    *,
    seed: int = 0,
    device: str = "cpu",
    method: Method | None = None,
    progress: bool | None = False,
    history_path: Any = None,
    log: Any = None,
    checkpoint_path: Any = None,
    resume: bool = False,
) -> RunOutput:
    """Train the factorization of ``cfg`` and measure test MSE and the distances to both
    regimes' completions (see :func:`implicitbias.experiments.run`)."""
    say = log or (lambda s: None)
    timer = Timer()
    data = matrix_completion_data(
        cfg.d, fraction=cfg.fraction, seed=seed, data_source=cfg.data_source
    )
    W_ker = zero_fill_predictor(data)
    say("solving the minimum nuclear-norm completion (rich-regime baseline, an SDP) ...")
    t0 = timer()
    W_nuc, nuc_norm, nuc_status = _nuclear_completion(data)
    t_nuc = timer() - t0
    say(f"  done in {t_nuc:.1f} s (status {nuc_status})")
    tr, tc, tv = data.test_rows, data.test_cols, data.test_values

    def mse(W: np.ndarray) -> float:
        return float(np.mean((W[tr, tc] - tv) ** 2))

    ker_mse, nuc_mse = mse(W_ker), mse(W_nuc)
    n_ker, n_nuc = float(np.linalg.norm(W_ker)), float(np.linalg.norm(W_nuc))

    dtype = torch_dtype(cfg.dtype)
    dev = torch.device(device)
    idx = torch.as_tensor(np.stack([data.train_rows, data.train_cols], 1), device=dev)
    y = torch.as_tensor(data.train_values, dtype=dtype, device=dev)
    model = MatrixFactorization(cfg.d, alpha=cfg.alpha, dtype=dtype, device=dev)

    times, kkt_idx = schedule(cfg.t_max, cfg.num_evals, cfg.lr, cfg.kkt_evals, cfg.t_star)
    counter = EvalCounter(times)

    def metrics(h: Any, t: float) -> dict[str, float]:
        with torch.no_grad():
            W = h.model.W.detach().to("cpu", torch.float64).numpy()
        eps = math.nan
        i = counter.index(t)
        if i in kkt_idx and i > 0:
            eps = kkt_epsilon_rel(h, idx, y, task="regression", weight_decay=cfg.weight_decay)
        theta_sq = float(sum(float((p.detach().double() ** 2).sum()) for p in h.model.parameters()))
        return {
            "test_mse": mse(W),
            "dist_kernel": float(np.linalg.norm(W - W_ker)) / n_ker,
            "dist_nuclear": float(np.linalg.norm(W - W_nuc)) / n_nuc,
            "theta_sq_over_nuclear": theta_sq / nuc_norm,
            "kkt_epsilon_rel": eps,
        }

    res = train_configured(
        model,
        idx,
        y,
        cfg,
        loss="squared",
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
    say(f"  done in {res.wall_time:.1f} s ({res.grad_evals} gradient evaluations)")
    summary: dict[str, Any] = {
        "t_star": cfg.t_star,
        "t_star_steps": cfg.t_star / cfg.lr,
        "n_observed": int(data.train_rows.size),
        "zero_fill": {"test_mse": ker_mse},
        "min_nuclear_norm": {
            "test_mse": nuc_mse,
            "nuclear_norm": nuc_norm,
            "status": nuc_status,
            "solve_time": t_nuc,
        },
        "final": {
            "train_mse": float(hist["train_mse"][-1]),
            "test_mse": float(hist["test_mse"][-1]),
            "dist_kernel": float(hist["dist_kernel"][-1]),
            "dist_nuclear": float(hist["dist_nuclear"][-1]),
            "theta_sq_over_nuclear": float(hist["theta_sq_over_nuclear"][-1]),
            "kkt_epsilon_rel": float(hist["kkt_epsilon_rel"][-1]),
            "rescaled_time": float(hist["rescaled_time"][-1]),
        },
        "checks": _checks(hist, ker_mse),
    }
    baselines = {
        "zero-fill (kernel regime)": ker_mse,
        "min nuclear norm (rich regime)": nuc_mse,
    }
    info = {
        "method": res.method,
        "status": res.status,
        "grad_evals": res.grad_evals,
        "steps_equivalent": res.steps_equivalent,
        "train_wall_time": res.wall_time,
        "n_steps": res.iterations,
        "n_rejected": res.n_rejected,
    }
    return RunOutput("matrix-completion", hist, summary, baselines, "mse", cfg.t_star, cfg.lr, info)


_SPECS: dict[str, CheckSpec] = {
    "plateau_at_zero_fill": (
        "<=",
        0.1,
        "max |test MSE / zero-fill test MSE − 1| over the kernel phase 0.1 ≤ t/t* ≤ 0.5",
    ),
    "test_mse_drop": (">=", 100.0, "kernel-phase (median) test MSE / final test MSE"),
    "final_dist_nuclear": ("<=", 0.1, "‖W − W_nuc‖_F / ‖W_nuc‖_F at the end"),
    "theta_sq_matches_nuclear_norm": ("<=", 0.05, "|‖θ‖² / min nuclear norm − 1| at the end"),
    "kkt_epsilon_rel_drop": (
        ">=",
        10.0,
        "median KKT epsilon_rel over the kernel phase / epsilon_rel at the end",
    ),
}


def check_specs(name: str = "matrix-completion") -> dict[str, CheckSpec]:
    """The acceptance checks: name → (op, threshold, description)."""
    return dict(_SPECS)


def _checks(hist: Any, ker_mse: float) -> dict[str, Any]:
    mse = hist["test_mse"]
    kw = window(hist, 0.1, 0.5)
    plateau = float(np.median(mse[kw])) if kw.any() else math.nan
    dev = float(np.max(np.abs(mse[kw] / ker_mse - 1.0))) if kw.any() else math.nan
    eps = hist["kkt_epsilon_rel"]
    fin = np.isfinite(eps)
    eps_k = eps[kw & fin]
    eps_final = float(eps[fin][-1]) if fin.any() else math.nan
    values = {
        "plateau_at_zero_fill": dev,
        "test_mse_drop": plateau / float(mse[-1]),
        "final_dist_nuclear": float(hist["dist_nuclear"][-1]),
        "theta_sq_matches_nuclear_norm": abs(float(hist["theta_sq_over_nuclear"][-1]) - 1.0),
        "kkt_epsilon_rel_drop": float(np.median(eps_k)) / eps_final if eps_k.size else math.nan,
    }
    return measure_checks(_SPECS, values)


def _launch(cfg: CompletionConfig, *, name: str, workdir: Any, **kwargs: Any) -> RunOutput:
    """:func:`run_matrix_completion` as the registry calls it."""
    return run_matrix_completion(cfg, **kwargs)


register(
    Experiment(
        name="matrix-completion",
        description=(
            "Matrix completion of the multiplication table with U U^T - V V^T: test MSE sits on "
            "the zero-fill (kernel) plateau, then drops to the min-nuclear-norm completion after "
            "t*."
        ),
        presets={
            "paper": CompletionConfig(
                d=97,
                fraction=0.05,
                alpha=10.0,
                weight_decay=1e-4,
                lr=0.1,
                horizon=1e7 * 0.1 / (math.log(10.0) / 1e-4),
            ),
            "quick": CompletionConfig(
                d=40,
                fraction=0.2,
                alpha=10.0,
                weight_decay=1e-3,
                lr=0.1,
                horizon=10.0,
            ),
            "tiny": CompletionConfig(
                d=12,
                fraction=0.4,
                alpha=5.0,
                weight_decay=1e-2,
                lr=0.05,
                horizon=6.0,
                num_evals=40,
                kkt_evals=5,
                rtol=1e-5,
            ),
        },
        runner=_launch,
        checks=_SPECS,
        metric="mse",
    )
)
