"""Figures of the experiments, mirroring the paper's panels (matplotlib, Agg, imported lazily).

Left: train/test accuracy (or MSE) and ‖θ‖ against GD steps on a log axis, t*/η marked, the
kernel- and rich-regime baselines as horizontal lines. Middle: the same against rescaled time
t·λ/log α (the transition sits near 1). Right: the alignment diagnostics (cosines or relative
distances) and the KKT residual.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from implicitbias.experiments._common import RunOutput

__all__ = ["plot_run", "plot_run_dir"]

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
    for x, ax, xlabel in ((steps, ax0, "GD steps (t/η)"), (resc, ax1, "rescaled time t·λ/log α")):
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
    ax0.axvline(out.t_star / out.lr, color="k", lw=1.0, ls="-", alpha=0.6)
    ax0.text(out.t_star / out.lr, 0.02, " t*/η", transform=ax0.get_xaxis_transform(), fontsize=9)
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
        float(config["t_star"]),
        float(config["settings"]["lr"]),
    )
    target = Path(path) if path is not None else folder / "figure.png"
    title = (
        f"{config['experiment']} ({config['scale']}, {config['method']}, seed {config['seed']}): "
        f"{summary.get('wall_time', float('nan')):.0f} s"
    )
    plot_run(out, target, title=title)
    return str(target)
