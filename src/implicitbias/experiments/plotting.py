"""Figures of the experiments, mirroring the paper's panels (matplotlib, Agg, imported lazily).

Left: train/test accuracy (or MSE) and ‖θ‖ against GD steps on a log axis, t*/η marked, the
kernel- and rich-regime baselines as horizontal lines. Middle: the same against rescaled time
t·λ/log α (the transition sits near 1; for a run without t* — α ≤ 1 or λ = 0 — the train and
test loss against GD steps instead). Right: the alignment diagnostics (cosines or relative
distances) and the KKT residual, else the normalized margin.

:func:`plot_sweep` overlays the runs of a sweep on one GD-steps axis, as the paper's panels do.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from implicitbias.dynamics import History
from implicitbias.experiments._common import RunOutput

__all__ = ["plot_run", "plot_run_dir", "plot_sweep"]

_BASELINE_STYLES = ("--", ":", "-.")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_run(out: RunOutput, path: str | os.PathLike[str], *, title: str | None = None) -> None:
    """Save the three-panel figure of a run as a PNG.

    Parameters
    ----------
    out : RunOutput
        The run.
    path : path
        Output file (``.png``).
    title : str, optional
        Figure title (default: the experiment name and its wall time).
    """
    plt = _pyplot()
    h = out.history
    steps = np.maximum(h["step"], 1e-1)
    resc = h["rescaled_time"]
    pos = h["step"] > 0
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    ax0, ax1, ax2 = axes

    if out.metric == "accuracy":
        series = [("train_acc", "train acc", "C0"), ("test_acc", "test acc", "C3")]
        ylabel = "accuracy"
    else:
        series = [("train_mse", "train MSE", "C0"), ("test_mse", "test MSE", "C3")]
        ylabel = "MSE"
    has_t_star = bool(np.isfinite(out.t_star) and np.isfinite(resc[pos]).any())
    panels = [(steps, ax0, "GD steps (t/η)")]
    if has_t_star:
        panels.append((resc, ax1, "rescaled time t·λ/log α"))
    else:
        _plot_losses(ax1, h, steps, pos)
    for x, ax, xlabel in panels:
        for col, label, color in series:
            if col in h:
                ax.plot(x[pos], h[col][pos], color=color, label=label, lw=1.8)
        for (label, value), ls in zip(out.baselines.items(), _BASELINE_STYLES):
            ax.axhline(value, color="gray", ls=ls, lw=1.2, label=f"{label}: {value:.3g}")
        ax.set_xscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if out.metric == "mse":
            ax.set_yscale("log")
            vals = np.concatenate([h[c][pos] for c, _, _ in series if c in h])
            vals = vals[np.isfinite(vals) & (vals > 0)]
            if vals.size:
                ax.set_ylim(0.3 * vals.min(), 3 * vals.max())
        else:
            vals = np.concatenate([h[c][pos] for c, _, _ in series if c in h])
            vals = np.concatenate([vals[np.isfinite(vals)], list(out.baselines.values())])
            low = min(0.4, float(vals.min()) - 0.03) if vals.size else 0.4
            ax.set_ylim(max(low, -0.02), 1.02)
        ax.grid(alpha=0.3, which="both")
    if has_t_star:
        ax0.axvline(out.t_star / out.lr, color="k", lw=1.0, ls="-", alpha=0.6)
        ax0.text(
            out.t_star / out.lr, 0.02, " t*/η", transform=ax0.get_xaxis_transform(), fontsize=9
        )
        ax1.axvline(1.0, color="k", lw=1.0, alpha=0.6)
        ax1.text(1.0, 0.02, " t*", transform=ax1.get_xaxis_transform(), fontsize=9)
    twin = ax0.twinx()
    twin.plot(steps[pos], h["theta_norm"][pos], color="C2", lw=1.2, ls="-", alpha=0.8, label="‖θ‖")
    twin.set_yscale("log")
    twin.set_ylabel("‖θ‖", color="C2")
    lines, labels = ax0.get_legend_handles_labels()
    l2_, lab2 = twin.get_legend_handles_labels()
    ax0.legend(lines + l2_, labels + lab2, fontsize=8, loc="best")
    ax0.set_title("vs GD steps")
    if has_t_star:
        ax1.set_title("vs rescaled time")

    diag = [c for c in ("cos_l2", "cos_l1", "dist_kernel", "dist_nuclear") if c in h]
    labels_map = {
        "cos_l2": "cos(w, w₂*) (kernel)",
        "cos_l1": "cos(w, w₁*) (rich)",
        "dist_kernel": "‖W − W_kernel‖/‖W_kernel‖",
        "dist_nuclear": "‖W − W_nuc‖/‖W_nuc‖",
    }
    for c, color in zip(diag, ("C0", "C3", "C4", "C5")):
        ax2.plot(resc[pos], h[c][pos], color=color, label=labels_map[c], lw=1.8)
    margin = _positive(h, "normalized_margin", pos)
    kkt_shown = "kkt_epsilon_rel" in h and bool(np.isfinite(h["kkt_epsilon_rel"][pos]).any())
    if not has_t_star or (not diag and not kkt_shown and margin.any()):
        _plot_margin(ax2, h, steps, margin)
        fig.suptitle(title or out.name)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return
    ax2.set_xscale("log")
    ax2.set_xlabel("rescaled time t·λ/log α")
    ax2.axvline(1.0, color="k", lw=1.0, alpha=0.6)
    if "kkt_epsilon_rel" in h:
        e = h["kkt_epsilon_rel"]
        ok = pos & np.isfinite(e) & (e > 0)
        if ok.any():
            tw2 = ax2.twinx()
            tw2.plot(resc[ok], e[ok], "o-", color="k", ms=3, lw=1, label="KKT ε_rel")
            tw2.set_yscale("log")
            tw2.set_ylabel("KKT ε_rel")
            tw2.legend(fontsize=8, loc="lower left")
    if diag:
        ax2.legend(fontsize=8, loc="center left")
    elif not ("kkt_epsilon_rel" in h and np.isfinite(h["kkt_epsilon_rel"][pos]).any()):
        ax2.text(
            0.5,
            0.5,
            "no alignment or KKT metric\nrecorded for this experiment",
            transform=ax2.transAxes,
            ha="center",
            va="center",
            color="gray",
        )
    ax2.grid(alpha=0.3, which="both")
    ax2.set_title("alignment with the kernel / rich solutions")
    fig.suptitle(title or out.name)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _positive(h: History, col: str, pos: np.ndarray) -> np.ndarray:
    """Mask of the records (among ``pos``) where ``col`` is finite and positive."""
    if col not in h:
        return np.zeros_like(pos)
    v = h[col]
    with np.errstate(invalid="ignore"):
        return pos & np.isfinite(v) & (v > 0)


def _plot_losses(ax: Any, h: History, steps: np.ndarray, pos: np.ndarray) -> None:
    """Train (and test) loss against GD steps, log-log (the panel of a run without t*)."""
    drawn = False
    for col, label, color in (
        ("train_loss", "train loss", "C0"),
        ("test_loss", "test loss", "C3"),
    ):
        ok = _positive(h, col, pos)
        if ok.any():
            ax.plot(steps[ok], h[col][ok], color=color, label=label, lw=1.6)
            drawn = True
    if drawn:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.tick_params(which="minor", labelbottom=False, labelleft=False)
        ax.legend(fontsize=8, loc="lower left")
    if "log_train_loss" in h:  # float64 log L: readable where the float32 loss underflows
        with np.errstate(invalid="ignore"):
            ok = pos & (-h["log_train_loss"] > 0)
        if ok.any():
            twin = ax.twinx()
            twin.plot(steps[ok], -h["log_train_loss"][ok], color="k", ls="--", lw=1.1)
            twin.set_yscale("log")
            twin.set_ylabel("−log L, train (dashed)")
    ax.set_xlabel("GD steps (t/η)")
    ax.set_title("loss (no t*: α ≤ 1 or λ = 0)")
    ax.grid(alpha=0.3, which="both")


def _plot_margin(ax: Any, h: History, steps: np.ndarray, ok: np.ndarray) -> None:
    """The normalized margin q_min/‖θ‖^L against GD steps (where it is positive), and the
    effective step size where the run records one (``log_lr_effective``)."""
    if ok.any():
        ax.plot(steps[ok], h["normalized_margin"][ok], color="C4", lw=1.8, label="q_min/‖θ‖^L")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.tick_params(which="minor", labelbottom=False, labelleft=False)
        if "log_lr_effective" in h:
            eta = (steps > 0) & np.isfinite(h["log_lr_effective"])
            twin = ax.twinx()
            log10 = h["log_lr_effective"][eta] / math.log(10.0)
            twin.plot(steps[eta], log10, color="k", ls="--", lw=1.1)
            twin.set_yscale("symlog")
            twin.set_ylabel("log10 of the effective step η_k (dashed)")
    else:
        ax.text(0.5, 0.5, "the training set is never separated", transform=ax.transAxes,
                ha="center", va="center", color="gray")  # fmt: skip
    ax.set_xlabel("GD steps (t/η)")
    ax.set_ylabel("q_min / ‖θ‖^L")
    ax.set_title("normalized margin")
    ax.grid(alpha=0.3, which="both")


def plot_sweep(
    key: str,
    runs: Sequence[tuple[Any, History]],
    path: str | os.PathLike[str],
    *,
    lr: Sequence[float],
    t_star: Sequence[float],
    metric: str = "accuracy",
    title: str | None = None,
) -> None:
    """Overlay the runs of a sweep on one GD-steps axis (log scale), as the paper's panels.

    Left: train (dashed) and test (solid) accuracy, or MSE, one color per value; t*/η of each
    run as a dotted vertical line where it exists. Right: ‖θ‖.

    Parameters
    ----------
    key : str
        The swept setting.
    runs : sequence of (value, History)
        The runs (an empty history draws nothing).
    path : path
        Output PNG.
    lr, t_star : sequence of float
        η and t* of each run (NaN: none).
    metric : {"accuracy", "mse"}, default "accuracy"
    title : str, optional
    """
    plt = _pyplot()
    fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(13, 4.6))
    cols = ("train_acc", "test_acc") if metric == "accuracy" else ("train_mse", "test_mse")
    for i, ((value, h), eta, ts) in enumerate(zip(runs, lr, t_star)):
        if not len(h):
            continue
        color = f"C{i % 10}"
        pos = h["step"] > 0
        x = h["step"][pos]
        name = f"{key}={value:g}" if isinstance(value, (int, float)) else f"{key}={value}"
        for col, ls in zip(cols, ("--", "-")):
            if col in h:
                label = name if ls == "-" else None
                ax0.plot(x, h[col][pos], color=color, ls=ls, lw=1.7, label=label)
        ax1.plot(x, h["theta_norm"][pos], color=color, lw=1.7, label=name)
        if math.isfinite(ts) and ts > 0:
            for ax in (ax0, ax1):
                ax.axvline(ts / eta, color=color, ls=":", lw=1.1, alpha=0.8)
    ax0.plot([], [], color="gray", ls="--", label="train")
    ax0.plot([], [], color="gray", ls="-", label="test")
    for ax in (ax0, ax1):
        ax.set_xscale("log")
        ax.set_xlabel("GD steps")
        ax.grid(alpha=0.3, which="both")
    if metric == "accuracy":
        ax0.set_ylim(-0.02, 1.02)
        ax0.set_ylabel("accuracy")
    else:
        ax0.set_yscale("log")
        ax0.set_ylabel("MSE")
    ax1.set_yscale("log")
    ax1.set_ylabel("‖θ‖")
    ax0.legend(fontsize=8, loc="best")
    ax1.legend(fontsize=8, loc="best")
    ax0.set_title("train (dashed) and test (solid); t*/η dotted")
    ax1.set_title("parameter norm")
    fig.suptitle(title or f"sweep of {key}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_run_dir(
    out_dir: str | os.PathLike[str], path: str | os.PathLike[str] | None = None
) -> str:
    """Redraw the figure of a finished run from its folder (history, config, summary).

    Parameters
    ----------
    out_dir : path
        A folder written by :func:`implicitbias.experiments.run`.
    path : path, optional
        Output PNG (default ``out_dir/figure.png``).

    Returns
    -------
    str
        The path written.
    """
    import json
    from pathlib import Path

    from implicitbias.dynamics import History

    folder = Path(out_dir)
    history = History.from_csv(folder / "history.csv")
    summary = json.loads((folder / "summary.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    metric = "mse" if "train_mse" in history.columns else "accuracy"
    baselines = {k: float(v) for k, v in summary.get("baselines", {}).items()}
    out = RunOutput(
        config["experiment"],
        history,
        summary,
        baselines,
        metric,
        math.nan if config.get("t_star") is None else float(config["t_star"]),
        float(config["settings"]["lr"]),
    )
    target = Path(path) if path is not None else folder / "figure.png"
    title = (
        f"{config['experiment']} ({config['scale']}, {config['method']}, seed {config['seed']}): "
        f"{summary.get('wall_time', float('nan')):.0f} s"
    )
    plot_run(out, target, title=title)
    return str(target)
