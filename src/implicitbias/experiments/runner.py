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
``summary.json``             status, key numbers, baselines, wall times, the acceptance
                             ``checks`` (each ``PASS``, ``FAIL`` or ``n/a``)
``figure.png``               the three-panel figure (:func:`plot_run`)
``checkpoint.pt``,           interrupted runs only: the trainer's checkpoint and the
``snapshots.bin``            experiment's own per-evaluation state, for ``resume=True``
===========================  ==========================================================

Every argument is checked before anything is written. The run is written into a fresh
folder next to the destination and moved into place when it ends (see
:mod:`implicitbias.experiments._rundir`): a destination holds one run, never the config of
one beside the history of another.

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

from implicitbias._progress import check_progress
from implicitbias._results import ResultRecord
from implicitbias._validation import check_bool, check_choice, check_int, fail, fail_type
from implicitbias.dynamics import History, Method
from implicitbias.experiments import _rundir
from implicitbias.experiments._common import (
    CheckSpec,
    RunInterrupted,
    RunOutput,
    check_device,
    unreached_checks,
)
from implicitbias.experiments.configs import build_config
from implicitbias.experiments.registry import (
    ALL_SCALES,
    EXPERIMENTS,
    Experiment,
    get_experiment,
)

__all__ = ["run", "RunResult", "list_experiments"]


@dataclass(frozen=True)
class RunResult(ResultRecord):
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
        ``history_csv``, ``history_json``, ``train_log``, ``config``, ``summary``,
        ``figure``; ``checkpoint`` for an interrupted run. Files a run did not write (the
        figure and test columns of an interrupted run) are absent.
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
    def status(self) -> str:
        """``"completed"``, ``"interrupted"``, ``"diverged"`` or ``"step_size_too_small"``."""
        return str(self.output.summary.get("status", "completed"))

    @property
    def passed(self) -> bool:
        """True when the run completed and every acceptance check passed."""
        checks = self.output.summary.get("checks", {}).values()
        return self.status == "completed" and all(c["passed"] is True for c in checks)


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


def _dispatch(name: str, cfg: Any, kwargs: dict[str, Any], work: Path) -> RunOutput:
    """Train and measure experiment ``name`` through its registered runner."""
    experiment = get_experiment(name, "run")
    kwargs = {**kwargs, "checkpoint_path": work / _rundir.CHECKPOINT}
    return experiment.runner(cfg, name=name, workdir=work, **kwargs)


def check_specs(name: str) -> dict[str, CheckSpec]:
    """The acceptance checks of experiment ``name``: check name → (op, threshold, description)."""
    return dict(get_experiment(name, "check_specs").checks)


#: Settings added to the configs after runs were first recorded, with the value a run recorded
#: before then had: an interrupted run from an earlier version resumes when they match.
_ADDED_SETTINGS: dict[str, Any] = {
    "data_source": "library",
    "steps": 0,
    "zero_last_layer": True,
}


def _settings_diff(saved: dict[str, Any], record: dict[str, Any]) -> list[str]:
    keys = ("experiment", "scale", "seed", "method")
    diff = [f"{k} {saved.get(k)!r} vs {record[k]!r}" for k in keys if saved.get(k) != record[k]]
    found = saved.get("settings")
    old: dict[str, Any] = dict(found) if isinstance(found, dict) else {}
    for k, before in _ADDED_SETTINGS.items():
        if k in record["settings"] and k not in old:
            old[k] = before
    new = _jsonable(record["settings"])
    for k in sorted(set(old) | set(new)):
        if old.get(k) != new.get(k):
            diff.append(f"{k} {old.get(k)!r} vs {new.get(k)!r}")
    return diff


def _resume_source(dest: Path, record: dict[str, Any], func: str) -> Path:
    """The interrupted run that ``resume=True`` continues: the most advanced one of ``dest``
    with this run's settings (experiment, scale, seed, method and every config field)."""
    found = _rundir.find_resumable(dest)
    if not found:
        raise fail(
            func,
            "resume",
            "given only where out_dir holds an interrupted run (or a killed run left its "
            "partial folder beside it)",
            f"nothing to resume in {str(dest)!r}",
            "Run without resume to start afresh.",
        )
    for source, saved in found:
        if not _settings_diff(saved, record):
            return source
    source, saved = found[0]
    raise fail(
        func,
        "resume",
        "given with the settings of the interrupted run it continues",
        "settings that differ in " + "; ".join(_settings_diff(saved, record)),
        f"(interrupted run: {str(source)!r}).",
    )


def _config_record(name: str, scale: str, seed: int, device: str, method: str, cfg: Any) -> dict:
    return {
        "experiment": name,
        "scale": scale,
        "seed": seed,
        "device": device,
        "method": method,
        "settings": dataclasses.asdict(cfg),
        "t_star": cfg.t_star,
        "t_star_steps": cfg.t_star / cfg.lr,
        "steps_equivalent": cfg.t_max / cfg.lr,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def run(
    name: str,
    *,
    scale: str = "quick",
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    method: Method | None = None,
    progress: bool | None = False,
    overrides: Mapping[str, Any] | None = None,
    figure: bool = True,
    threads: int | None = None,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
) -> RunResult:
    r"""Run one of the paper's experiments at a given scale and write its outputs.

    ============================  =============================================================
    name                          what it shows (THEORY §6)
    ============================  =============================================================
    ``sparse-linear``             grokking: diagonal net, 3-sparse target; test accuracy jumps
                                  from the ℓ2 to the ℓ1 max-margin level near t* = (1/λ)·log α
    ``misgrokking``               the mirror image on data with a large ℓ2 margin
    ``matrix-completion``         test MSE on the zero-fill plateau, then at the
                                  min-nuclear-norm level
    ``modular-addition``          delayed generalization of a two-layer ReLU net
                                  (cross-entropy)
    ``modular-addition-he-init``  Fig. 2(a): the same net from the plain He initialization
                                  (last layer not zeroed, α = 1): memorization first,
                                  generalization much later
    ``modular-addition-no-wd``    Fig. 4: no weight decay, the step on log L once the loss is
                                  small (rate η/L); the margin grows, test accuracy rises
    ============================  =============================================================

    Sweeps of one setting (the paper's Fig. 2(b), 2(c)): :func:`run_sweep`.

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
        Output folder, default ``runs/<name>-<scale>``. It must be new, empty, or the folder
        of an earlier run, which is replaced as a whole when this run ends (until then it is
        left intact; see the notes).
    device : str, default "cpu"
        Torch device for training (e.g. ``"cuda"``); checked up front by putting a tensor there.
    method : {"gd", "flow"}, optional
        Fixed-step GD or adaptive gradient flow; default the config's (flow for the diagonal
        and matrix-completion runs).
    progress : bool or None, default False
        The trainer's progress (``train``'s ``progress``): ``True`` a bar, ``None`` a bar on a
        terminal and else an ``INFO`` line of the ``"implicitbias.progress"`` logger every
        ~10 s, ``False`` nothing.
    overrides : mapping, optional
        Config fields to replace, e.g. ``{"d": 500}``; every field is type- and range-checked.
    figure : bool, default True
        Write ``figure.png``.
    threads : int, optional
        Torch intra-op threads during the run (restored afterwards). Default 1: these problems
        are small or memory-bound, and on a shared 2-core machine two spinning threads were
        measured up to 14× slower than one.
    log : callable, optional
        Called with progress messages.
    resume : bool, default False
        Continue the interrupted run of ``out_dir`` (a Ctrl-C'd run, or the partial folder a
        killed run left beside it) from its checkpoint, with the same settings (checked). The
        result equals that of an uninterrupted run, apart from wall times.

    Returns
    -------
    RunResult
        ``result.status`` is ``"completed"``, ``"interrupted"`` (Ctrl-C: the run is recorded,
        not raised), ``"diverged"`` or ``"step_size_too_small"``. Only a completed run grades
        its checks; the others report every check as ``"n/a"``.

    Raises
    ------
    InvalidArgumentError, InvalidArgumentTypeError
        A bad argument or setting, an unusable device or output folder, or ``resume=True``
        with nothing (or a run of other settings) to resume. Raised before anything is
        written.

    Notes
    -----
    Files: the run is written into a fresh folder ``.NAME.partial-*`` next to ``out_dir``
    and replaces ``out_dir`` in one rename when it ends, so ``out_dir`` always holds one whole
    run. An interrupted run lands too, with ``summary.json`` saying ``"interrupted"``, its
    partial history and its checkpoint (``checkpoint.pt``, plus ``snapshots.bin`` for the
    diagonal runs); a run killed outright leaves ``out_dir`` untouched and its partial folder
    beside it, and both are what ``resume=True`` continues. Checkpoints are written after every
    evaluation of a flow run and every 1% of the horizon of a GD run; a run that ends deletes
    them. A run without ``resume`` into a folder that holds an interrupted run starts afresh and
    replaces it when it ends. A run that raises an error deletes its partial folder and leaves
    ``out_dir`` as it was.

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
    experiment = get_experiment(name, func)
    check_choice(scale, func, "scale", ALL_SCALES)
    seed = check_int(seed, func, "seed", minimum=0)
    if method is not None:
        check_choice(method, func, "method", ("gd", "flow"))
    cfg = build_config(name, scale, overrides, func=func)
    device = check_device(device, func)
    threads = 1 if threads is None else check_int(threads, func, "threads", minimum=1)
    progress = check_progress(progress, func)
    figure = check_bool(figure, func, "figure")
    resume = check_bool(resume, func, "resume")
    if log is not None and not callable(log):
        raise fail_type(func, "log", "a callable log(str)", log)
    if out_dir is None:
        out_dir = Path("runs") / f"{name}-{scale}"
    dest = _rundir.check_destination(out_dir, func)
    used_method = method or cfg.method
    record = _config_record(name, scale, seed, device, used_method, cfg)
    source = _resume_source(dest, record, func) if resume else None
    if source is not None:
        record["resumed_from"] = str(source)

    # ---- nothing was written up to here
    say = log or (lambda msg: None)
    work = _rundir.new_workdir(dest)
    t0 = time.perf_counter()
    try:
        if source is not None:
            _rundir.take_over(source, work)
        (work / "config.json").write_text(json.dumps(_jsonable(record), indent=2))
        say(f"{name} at scale {scale!r} (seed {seed}, method {used_method}) -> {dest}")
        kwargs = {
            "seed": seed,
            "device": device,
            "method": used_method,
            "progress": progress,
            "history_path": work / "train_log.csv",
            "log": log,
            "resume": source is not None,
        }
        saved_threads = torch.get_num_threads()
        interrupted: KeyboardInterrupt | None = None
        output: RunOutput | None = None
        try:
            torch.set_num_threads(threads)
            output = _dispatch(name, cfg, kwargs, work)
        except KeyboardInterrupt as exc:
            interrupted = exc
        finally:
            torch.set_num_threads(saved_threads)
        with _rundir.deferred_sigint():
            if output is not None:
                title = f"{name} ({scale}, {used_method}, seed {seed})"
                output = _finish(output, experiment, work, figure=figure, t0=t0, title=title)
            else:
                assert interrupted is not None
                output = _finish_interrupted(experiment, cfg, work, interrupted, t0=t0)
            output.summary.update({"experiment": name, "scale": scale, "seed": seed})
            (work / "summary.json").write_text(json.dumps(_jsonable(output.summary), indent=2))
            _rundir.land(work, dest)
    except BaseException:
        _rundir.discard(work)
        raise
    if interrupted is not None:
        say(f"interrupted; the partial run and its checkpoint are in {dest}")
    paths = {key: dest / file for key, file in _FILES.items() if (dest / file).exists()}
    return RunResult(name, scale, cfg, output, dest, paths, output.summary["wall_time"])


_FILES = {
    "history_csv": "history.csv",
    "history_json": "history.json",
    "train_log": "train_log.csv",
    "config": "config.json",
    "summary": "summary.json",
    "figure": "figure.png",
    "checkpoint": _rundir.CHECKPOINT,
}


def _finish(
    output: RunOutput, experiment: Experiment, work: Path, *, figure: bool, t0: float, title: str
) -> RunOutput:
    """Write the history, figure and summary of a run that ended (completed or not)."""
    output.history.to_csv(work / "history.csv")
    output.history.to_json(work / "history.json")
    if figure:
        elapsed = time.perf_counter() - t0
        experiment.figure(output, work / "figure.png", title=f"{title}: {elapsed:.0f} s")
    status = str(output.train_info.get("status", "completed"))
    summary = dict(output.summary)
    if status != "completed":
        summary["checks"] = unreached_checks(
            experiment.checks, f"training {status}: the run did not reach its end"
        )
    summary.update(
        {
            "status": status,
            "wall_time": time.perf_counter() - t0,
            "training": output.train_info,
            "baselines": output.baselines,
            "all_checks_passed": (
                all(c["passed"] for c in summary.get("checks", {}).values())
                if status == "completed"
                else None
            ),
        }
    )
    for name in _rundir.RESUME_FILES:  # a run that ended is not resumed
        (work / name).unlink(missing_ok=True)
    return dataclasses.replace(output, summary=summary)


def _finish_interrupted(
    experiment: Experiment, cfg: Any, work: Path, exc: KeyboardInterrupt, *, t0: float
) -> RunOutput:
    """Record an interrupted run: its partial history, ``n/a`` checks, and its checkpoint."""
    train_info: dict[str, Any] = {}
    if isinstance(exc, RunInterrupted):
        res = exc.result
        history = res.history
        stage = "training"
        train_info = {
            "method": res.method,
            "status": "interrupted",
            "grad_evals": res.grad_evals,
            "steps_equivalent": res.steps_equivalent,
            "train_wall_time": res.wall_time,
            "t_final": res.t_final,
        }
    elif (work / "train_log.csv").exists():
        history = History.from_csv(work / "train_log.csv")
        stage = "training or evaluation"
    else:
        history = History()
        stage = "before training"
    if len(history):
        history.to_csv(work / "history.csv")
        history.to_json(work / "history.json")
    summary = {
        "status": "interrupted",
        "interrupted_during": stage,
        "resumable": True,
        "checkpoint": (work / _rundir.CHECKPOINT).exists(),
        "t_star": cfg.t_star,
        "t_star_steps": cfg.t_star / cfg.lr,
        "wall_time": time.perf_counter() - t0,
        "training": train_info,
        "baselines": {},
        "final": {},
        "checks": unreached_checks(
            experiment.checks, "interrupted before the checks were measured"
        ),
        "all_checks_passed": None,
    }
    return RunOutput(
        experiment.name, history, summary, {}, experiment.metric, cfg.t_star, cfg.lr, train_info
    )
