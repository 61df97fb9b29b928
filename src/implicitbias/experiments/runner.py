"""Configured runs of the paper's experiments: :func:`run` trains, measures, writes and plots.

A run writes into its output folder:

===========================  ==========================================================
file                         content
===========================  ==========================================================
``history.csv``              one row per evaluation (log-spaced): the trainer's columns
                             (t, step, rescaled_time, train loss/accuracy or MSE, ‖θ‖,
                             normalized margin, ...) and the experiment's (test metrics,
                             alignments, ``kkt_epsilon_rel`` at coarser checkpoints)
``history.json``             the same, as ``{"columns": [...], "data": {...}}``
``train_log.csv`` / ``.json``  the trainer's incremental log (readable while running)
``config.json``              experiment, scale, seed, method, device, all settings
``summary.json``             key numbers, baselines, wall times, the acceptance ``checks``
``figure.png``               the three-panel figure (:func:`plot_run`)
===========================  ==========================================================

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from implicitbias._validation import check_choice, check_int
from implicitbias.experiments._common import RunOutput
from implicitbias.experiments.configs import _ALL_SCALES, EXPERIMENTS, build_config

__all__ = ["run", "RunResult", "list_experiments"]


@dataclass(frozen=True)
class RunResult:
    """The outcome of :func:`run`.

    Attributes
    ----------
    name, scale : str
        The experiment and its scale.
    config : dataclass
        The settings used.
    output : RunOutput
        History, summary (with ``checks``), baselines.
    out_dir : Path
        Where the files were written.
    paths : dict[str, Path]
        ``history_csv``, ``history_json``, ``config``, ``summary``, ``figure``.
    wall_time : float
        End-to-end seconds (data, baselines, training, evaluation, files, figure).
    """

    name: str
    scale: str
    config: Any
    output: RunOutput
    out_dir: Path
    paths: dict[str, Path]
    wall_time: float

    @property
    def summary(self) -> dict[str, Any]:
        return self.output.summary

    @property
    def history(self) -> Any:
        return self.output.history

    @property
    def passed(self) -> bool:
        """True when every acceptance check passed."""
        return all(c["passed"] for c in self.output.summary.get("checks", {}).values())


def list_experiments() -> dict[str, str]:
    """Experiment names and their one-line descriptions."""
    return dict(EXPERIMENTS)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if hasattr(x, "item") and callable(x.item):
        return _jsonable(x.item())
    if isinstance(x, Path):
        return str(x)
    return x


def _dispatch(name: str, cfg: Any, kwargs: dict[str, Any]) -> RunOutput:
    if name in ("sparse-linear", "misgrokking"):
        from implicitbias.experiments.diagonal import run_diagonal

        return run_diagonal(cfg, name=name, **kwargs)
    if name == "matrix-completion":
        from implicitbias.experiments.matrix_completion import run_matrix_completion

        return run_matrix_completion(cfg, **kwargs)
    from implicitbias.experiments.modular_addition import run_modular_addition

    return run_modular_addition(cfg, **kwargs)


def run(
    name: str,
    *,
    scale: str = "quick",
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    method: str | None = None,
    progress: bool = False,
    overrides: Mapping[str, Any] | None = None,
    figure: bool = True,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
) -> RunResult:
    r"""Run one of the paper's experiments at a given scale and write its outputs.

    ====================  =====================================================================
    name                  what it shows (THEORY §6)
    ====================  =====================================================================
    ``sparse-linear``     grokking: diagonal net, 3-sparse target; test accuracy jumps from the
                          ℓ2 to the ℓ1 max-margin level near t* = (1/λ)·log α
    ``misgrokking``       the mirror image on data with a large ℓ2 margin
    ``matrix-completion`` test MSE on the zero-fill plateau, then at the min-nuclear-norm level
    ``modular-addition``  delayed generalization of a two-layer ReLU net (cross-entropy)
    ====================  =====================================================================

    Parameters
    ----------
    name : str
        One of :func:`list_experiments`.
    scale : {"quick", "paper"}, default "quick"
        ``"paper"``: the paper's settings; ``"quick"``: a CPU-sized default showing the same
        effect (see :mod:`implicitbias.experiments.configs` and ``docs/reproduce.md``).
        ``"tiny"`` is a seconds-long setting for tests.
    seed : int, default 0
        Seed of the data.
    out_dir : path, optional
        Output folder, default ``runs/<name>-<scale>``.
    device : str, default "cpu"
        Torch device for training (e.g. ``"cuda"``).
    method : {"gd", "flow"}, optional
        Fixed-step GD or adaptive gradient flow; default the config's (flow for the diagonal
        and matrix-completion runs).
    progress : bool, default False
        Show the trainer's progress bar.
    overrides : mapping, optional
        Config fields to replace, e.g. ``{"d": 500}``.
    figure : bool, default True
        Write ``figure.png``.
    threads : int, optional
        Torch intra-op threads during the run (restored afterwards). Default 1: these problems
        are small or memory-bound, and on a shared 2-core machine two spinning threads were
        measured up to 14× slower than one.
    log : callable, optional
        Called with progress messages.

    Returns
    -------
    RunResult

    Examples
    --------
    >>> import implicitbias as ib
    >>> res = ib.experiments.run("sparse-linear", scale="tiny", out_dir="/tmp/ib-doc",
    ...                          figure=False)  # doctest: +SKIP
    >>> res.summary["final"]["test_acc"]  # doctest: +SKIP
    1.0

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817.
    """
    func = "run"
    check_choice(name, func, "name", tuple(EXPERIMENTS))
    check_choice(scale, func, "scale", _ALL_SCALES)
    seed = check_int(seed, func, "seed", minimum=0)
    if method is not None:
        check_choice(method, func, "method", ("gd", "flow"))
    cfg = build_config(name, scale, overrides, func=func)
    try:
        torch.device(device)
    except (RuntimeError, TypeError) as exc:
        from implicitbias._validation import fail

        raise fail(func, "device", "a torch device such as 'cpu' or 'cuda'", repr(device)) from exc
    out = Path(out_dir) if out_dir is not None else Path("runs") / f"{name}-{scale}"
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "history_csv": out / "history.csv",
        "history_json": out / "history.json",
        "train_log": out / "train_log.csv",
        "config": out / "config.json",
        "summary": out / "summary.json",
        "figure": out / "figure.png",
    }
    used_method = method or cfg.method
    config_record = {
        "experiment": name,
        "scale": scale,
        "seed": seed,
        "device": device,
        "method": used_method,
        "settings": dataclasses.asdict(cfg),
        "t_star": cfg.t_star,
        "t_star_steps": cfg.t_star / cfg.lr,
        "steps_equivalent": cfg.t_max / cfg.lr,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    paths["config"].write_text(json.dumps(_jsonable(config_record), indent=2))

    if threads is not None:
        threads = check_int(threads, func, "threads", minimum=1)
    else:
        threads = 1
    saved_threads = torch.get_num_threads()
    if log is not None:
        log(f"{name} at scale {scale!r} (seed {seed}, method {used_method}) -> {out}")
    t0 = time.perf_counter()
    kwargs = {
        "seed": seed,
        "device": device,
        "method": used_method,
        "progress": progress,
        "history_path": paths["train_log"],
        "log": log,
    }
    try:
        if threads is not None:
            torch.set_num_threads(threads)
        output = _dispatch(name, cfg, kwargs)
    finally:
        torch.set_num_threads(saved_threads)

    output.history.to_csv(paths["history_csv"])
    output.history.to_json(paths["history_json"])
    if figure:
        from implicitbias.experiments.plotting import plot_run

        wall_so_far = time.perf_counter() - t0
        plot_run(
            output,
            paths["figure"],
            title=f"{name} ({scale}, {used_method}, seed {seed}): {wall_so_far:.0f} s",
        )
    else:
        paths.pop("figure")
    wall = time.perf_counter() - t0
    summary = dict(output.summary)
    summary.update(
        {
            "experiment": name,
            "scale": scale,
            "seed": seed,
            "wall_time": wall,
            "training": output.train_info,
            "baselines": output.baselines,
            "all_checks_passed": all(c["passed"] for c in summary.get("checks", {}).values()),
        }
    )
    output = dataclasses.replace(output, summary=summary)
    paths["summary"].write_text(json.dumps(_jsonable(summary), indent=2))
    return RunResult(name, scale, cfg, output, out, paths, wall)
