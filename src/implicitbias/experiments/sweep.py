"""Sweeps: one experiment run at several values of one setting, in sequence or in parallel.

:func:`run_sweep` runs ``name`` once per value of ``key`` (each run a whole
:func:`~implicitbias.experiments.run`, in its own folder), then compares the runs: one figure
with their curves overlaid on a common x axis (GD steps, log scale), as the paper draws its
panels, and the sweep's checks (the orderings the paper reports) in ``sweep.json``.

A sweep writes into ``out_dir``:

=======================  =====================================================================
``KEY=VALUE/``           one run folder per value (history, config, summary, figure)
``sweep.json``           experiment, scale, key, values, the settings every run shares, each
                         run's status, wall time and milestones (:func:`run_metrics`), and the
                         sweep ``checks`` (each ``PASS``, ``FAIL`` or ``n/a``)
``sweep.png``            the runs' curves overlaid (:func:`plot_sweep`)
=======================  =====================================================================

A declared sweep (:func:`~implicitbias.experiments.registry.register_sweep`; e.g. the init
scale α of modular addition, the paper's Fig. 2(b)) brings the base settings of each scale, the
default values and the checks; any other setting of any experiment can be swept with explicit
values (no checks then). ``resume=True`` keeps the runs that completed with the same settings,
continues the interrupted ones and starts the others.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from implicitbias._progress import check_progress
from implicitbias._results import ResultRecord
from implicitbias._validation import check_bool, check_choice, check_int, fail, fail_type
from implicitbias.dynamics import History, Method
from implicitbias.experiments import _rundir
from implicitbias.experiments._common import check_device
from implicitbias.experiments._sweepdir import check_sweep_folder, run_folder_name, write_json
from implicitbias.experiments._sweepjobs import execute
from implicitbias.experiments.configs import build_config
from implicitbias.experiments.plotting import plot_sweep
from implicitbias.experiments.registry import (
    ALL_SCALES,
    SWEEPS,
    SweepPreset,
    get_experiment,
    get_sweep,
)
from implicitbias.experiments.runner import _config_record, _settings_diff
from implicitbias.experiments.sweep_checks import (
    RUN_METRICS,
    run_metrics,
    sweep_checks,
    unreached_sweep_checks,
)

__all__ = ["run_sweep", "SweepResult", "SweepRun", "list_sweeps"]

_FUNC = "run_sweep"


@dataclass(frozen=True)
class SweepRun(ResultRecord):
    """One run of a sweep.

    Attributes
    ----------
    value : float or str
        The value of the swept setting.
    out_dir : Path
        The run's folder.
    status : str
        The run's status (``"completed"``, ``"interrupted"``, ``"diverged"``, ...), or
        ``"not run"`` when the sweep stopped before it.
    action : str
        ``"ran"``, ``"resumed"``, ``"kept"`` (completed before, with these settings) or
        ``"not run"``.
    wall_time : float
        The run's end-to-end seconds (NaN if not run).
    metrics : dict[str, float]
        Its milestones (:data:`~implicitbias.experiments.sweep_checks.RUN_METRICS`).
    checks_passed : bool or None
        Whether all of the run's own checks passed (None: not graded).
    """

    value: Any
    out_dir: Path
    status: str
    action: str
    wall_time: float
    metrics: dict[str, float]
    checks_passed: bool | None


@dataclass(frozen=True)
class SweepResult(ResultRecord):
    """The outcome of :func:`run_sweep`.

    Attributes
    ----------
    name, scale, key : str
        The experiment, its scale and the swept setting.
    values : tuple
        The swept values, in the order run.
    runs : tuple of SweepRun
        One per value.
    summary : dict
        The content of ``sweep.json`` (with the sweep ``checks``).
    out_dir : Path
        The sweep's folder.
    paths : dict[str, Path]
        ``summary`` (``sweep.json``) and ``figure`` (``sweep.png``, when drawn).
    wall_time : float
        End-to-end seconds.
    """

    name: str
    scale: str
    key: str
    values: tuple[Any, ...]
    runs: tuple[SweepRun, ...]
    summary: dict[str, Any]
    out_dir: Path
    paths: dict[str, Path]
    wall_time: float

    @property
    def status(self) -> str:
        """``"completed"`` (every run completed), ``"interrupted"`` or ``"failed"``."""
        return str(self.summary["status"])

    @property
    def checks(self) -> dict[str, Any]:
        return dict(self.summary["checks"])

    @property
    def passed(self) -> bool:
        """True when every run completed and every sweep check passed."""
        return self.status == "completed" and all(
            c["passed"] is True for c in self.summary["checks"].values()
        )

    def report(self) -> str:
        """A few lines for a terminal: each run's milestones and the sweep checks."""
        s = self.summary
        lines = [
            f"== {self.name}: sweep of {self.key} ({self.scale}, seed {s['seed']}): "
            f"{self.status} ==",
            f"wall time: {self.wall_time:.1f} s ({s['jobs']} job(s), {s['threads']} torch "
            f"thread(s) each)",
        ]
        for r in self.runs:
            m = r.metrics
            lines.append(
                f"  {run_folder_name(self.key, r.value):<20} {r.status:<11} {r.action:<8} "
                f"{_num(r.wall_time, '.0f')} s  fit {_num(m.get('fit_step'))}  "
                f"test>=50% {_num(m.get('test_acc_50_step'))}  "
                f"test>=90% {_num(m.get('test_acc_90_step'))}  final train/test "
                f"{_num(m.get('final_train_acc'), '.3f')}/{_num(m.get('final_test_acc'), '.3f')}"
            )
        lines.append("  (fit, test>=50%, test>=90%: first GD step; '-' never)")
        if s["checks"]:
            lines.append("sweep checks:")
            for c in s["checks"].values():
                lines.append(f"  [{c['result']}] {c['description']}: {c.get('detail', '')}")
        lines.append("files:")
        for label, path in self.paths.items():
            lines.append(f"  {label:<8} {path}")
        lines.append(f"  runs     {self.out_dir}/{self.key}=...")
        return "\n".join(lines)


def _num(x: Any, spec: str = ".4g") -> str:
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return "-"
    return format(float(x), spec)


def list_sweeps() -> dict[str, dict[str, Any]]:
    """The declared sweeps: ``"NAME --sweep KEY"`` → figure, description, values per scale."""
    return {
        f"{p.experiment} --sweep {p.key}": {
            "experiment": p.experiment,
            "key": p.key,
            "figure": p.figure,
            "description": p.description,
            "values": {s: tuple(p.values[s]) for s in ("quick", "paper")},
        }
        for p in SWEEPS.values()
    }


def _base_overrides(name: str, scale: str, preset: SweepPreset | None) -> dict[str, Any]:
    """The fields in which the sweep's base config differs from the experiment's preset."""
    if preset is None:
        return {}
    plain = get_experiment(name, _FUNC).presets[scale]
    base = preset.base[scale]
    return {
        f.name: getattr(base, f.name)
        for f in dataclasses.fields(base)
        if getattr(base, f.name) != getattr(plain, f.name)
    }


def _check_values(values: Any, key: str, preset: SweepPreset | None, scale: str) -> tuple:
    if values is None:
        if preset is None:
            raise fail(
                _FUNC,
                "values",
                f"given for {key!r} (no preset sweep of it; the declared ones: "
                f"{sorted(list_sweeps())})",
                "None",
            )
        return tuple(preset.values[scale])
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        raise fail_type(_FUNC, "values", "a sequence of setting values", values)
    vals = tuple(values)
    if len(vals) < 2:
        raise fail(_FUNC, "values", "at least two values", repr(list(vals)))
    if len(set(map(repr, vals))) != len(vals):
        raise fail(_FUNC, "values", "distinct values", repr(list(vals)))
    return vals


def run_sweep(
    name: str,
    key: str,
    values: Sequence[Any] | None = None,
    *,
    scale: str = "quick",
    seed: int = 0,
    out_dir: str | os.PathLike[str] | None = None,
    device: str = "cpu",
    method: Method | None = None,
    overrides: Mapping[str, Any] | None = None,
    jobs: int = 1,
    threads: int | None = None,
    figure: bool = True,
    progress: bool | None = False,
    log: Callable[[str], None] | None = None,
    resume: bool = False,
) -> SweepResult:
    """Run experiment ``name`` at each value of setting ``key``, then compare the runs.

    Parameters
    ----------
    name : str
        One of :func:`~implicitbias.experiments.list_experiments`.
    key : str
        The config field to sweep (``"alpha"``, ``"weight_decay"``, ...; ``-`` reads as ``_``).
    values : sequence, optional
        Its values (at least two, distinct). Default: the declared sweep's values at ``scale``
        (:func:`list_sweeps`).
    scale : {"quick", "paper"}, default "quick"
        The runs' settings: the declared sweep's base config of this scale, else the
        experiment's preset.
    seed, device, method :
        As in :func:`~implicitbias.experiments.run`, for every run.
    out_dir : path, optional
        The sweep's folder, default ``runs/<name>-<scale>-<key>``; run ``KEY=VALUE`` lands in
        ``out_dir/KEY=VALUE``. It must be new, empty, or a sweep's folder.
    overrides : mapping, optional
        Settings replaced in every run (not ``key``).
    jobs : int, default 1
        Runs at a time, each in its own process (``jobs > 1``).
    threads : int, optional
        Torch threads of each run. Default 1, as :func:`~implicitbias.experiments.run`'s: these
        problems are small, and extra threads only spin (the tiny sweep of the tests took 82 s
        with 2 threads per run and 4.3 s with 1 on the loaded 2-core machine). More than
        ``cores // jobs`` oversubscribes the machine.
    figure : bool, default True
        Write each run's ``figure.png`` and the sweep's ``sweep.png``.
    progress : bool or None, default False
        The trainer's progress of a run in this process (``jobs=1``); parallel runs report
        through ``log`` only.
    log : callable, optional
        Called with progress messages (each prefixed with ``KEY=VALUE``).
    resume : bool, default False
        Keep the runs that completed with these settings, continue interrupted ones from
        their checkpoints, start the rest.

    Returns
    -------
    SweepResult
        ``status`` ``"completed"`` when every run completed (its ``checks`` are then graded),
        ``"interrupted"`` after Ctrl-C (``resume=True`` continues), else ``"failed"``.

    Raises
    ------
    InvalidArgumentError, InvalidArgumentTypeError
        A bad argument or setting (every run's config is built and checked first), an
        unusable folder, or a completed run of other settings met with ``resume=True``;
        before anything is written.
    """
    experiment = get_experiment(name, _FUNC)
    check_choice(scale, _FUNC, "scale", ALL_SCALES)
    seed = check_int(seed, _FUNC, "seed", minimum=0)
    jobs = check_int(jobs, _FUNC, "jobs", minimum=1)
    if threads is not None:
        threads = check_int(threads, _FUNC, "threads", minimum=1)
    if method is not None:
        check_choice(method, _FUNC, "method", ("gd", "flow"))
    device = check_device(device, _FUNC)
    figure = check_bool(figure, _FUNC, "figure")
    resume = check_bool(resume, _FUNC, "resume")
    progress = check_progress(progress, _FUNC)
    if not isinstance(key, str):
        raise fail_type(_FUNC, "key", "the name of a setting (str)", key)
    key = key.replace("-", "_")
    fields = sorted(f.name for f in dataclasses.fields(experiment.presets[scale]))
    if key not in fields:
        raise fail(_FUNC, "key", f"a setting of {name} (one of {fields})", repr(key))
    if log is not None and not callable(log):
        raise fail_type(_FUNC, "log", "a callable log(str)", log)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise fail_type(_FUNC, "overrides", "a mapping of setting names to values", overrides)
    preset = get_sweep(name, key)
    values = _check_values(values, key, preset, scale)
    user = dict(overrides or {})
    if key in user:
        raise fail(_FUNC, "overrides", f"without the swept setting {key!r}", repr(sorted(user)))
    base = {k: v for k, v in _base_overrides(name, scale, preset).items() if k != key}
    shared = {**base, **user}
    configs = [build_config(name, scale, {**shared, key: v}, func=_FUNC) for v in values]
    dest = check_sweep_folder(
        out_dir if out_dir is not None else Path("runs") / f"{name}-{scale}-{key}", _FUNC
    )
    folders = [dest / run_folder_name(key, v) for v in values]
    if len(set(folders)) != len(folders):
        raise fail(_FUNC, "values", "values with distinct folder names", repr(list(values)))
    for folder in folders:
        _rundir.check_destination(folder, _FUNC, "out_dir")
    used = [method or cfg.method for cfg in configs]
    plan = [
        _plan(folder, _config_record(name, scale, seed, device, m, cfg), resume)
        for folder, m, cfg in zip(folders, used, configs)
    ]
    threads = threads or 1
    say = log or (lambda msg: None)
    say(f"sweep of {key} over {list(values)} ({name}, {scale}): {len(values)} runs, "
        f"{jobs} at a time, {threads} torch thread(s) each -> {dest}")  # fmt: skip
    t0 = time.perf_counter()
    tasks = [
        {
            "name": name, "scale": scale, "seed": seed, "out_dir": str(folder),
            "device": device, "method": method, "overrides": {**shared, key: v},
            "figure": figure, "threads": threads, "resume": action == "resumed",
            "prefix": run_folder_name(key, v), "quiet": log is None,
        }
        for folder, v, action in zip(folders, values, plan)
    ]  # fmt: skip
    outcome, interrupted = execute(tasks, plan, jobs, progress, say)
    runs = tuple(
        _collect(v, folder, action, outcome.get(i))
        for i, (v, folder, action) in enumerate(zip(values, folders, plan))
    )
    status = (
        "interrupted"
        if interrupted or any(r.status == "interrupted" for r in runs)
        else ("completed" if all(r.status == "completed" for r in runs) else "failed")
    )
    summary = _sweep_summary(name, scale, key, values, seed, runs, preset, shared)
    summary.update({"status": status, "jobs": jobs, "threads": threads})
    if preset is not None and status == "completed":
        summary["checks"] = sweep_checks(preset.checks, key, values, [r.metrics for r in runs])
    elif preset is not None:
        reason = f"sweep {status}: not every run completed"
        summary["checks"] = unreached_sweep_checks(preset.checks, reason)
    checks = summary["checks"].values()
    summary["all_checks_passed"] = all(c["passed"] for c in checks) if checks else None
    summary["wall_time"] = time.perf_counter() - t0
    paths = {"summary": dest / "sweep.json"}
    if figure:
        title = f"{name}: sweep of {key} ({scale}, seed {seed})"
        plot_sweep(key, [(r.value, _history(r.out_dir)) for r in runs], dest / "sweep.png",
                   title=title, lr=[c.lr for c in configs], t_star=[c.t_star for c in configs],
                   metric=experiment.metric)  # fmt: skip
        paths["figure"] = dest / "sweep.png"
    write_json(dest / "sweep.json", summary)
    return SweepResult(name, scale, key, values, runs, summary, dest, paths, summary["wall_time"])


def _plan(folder: Path, record: dict[str, Any], resume: bool) -> str:
    """What to do with one run: ``"kept"``, ``"resumed"`` or ``"ran"``."""
    if not resume:
        return "ran"
    saved = _rundir._read_json(folder / "config.json")
    summary = _rundir._read_json(folder / "summary.json")
    if saved is not None and summary is not None and summary.get("status") == "completed":
        diff = _settings_diff(saved, record)
        if diff:
            raise fail(
                _FUNC,
                "resume",
                "given with the settings of the completed runs it keeps",
                "settings that differ in " + "; ".join(diff),
                f"(run: {str(folder)!r}). Run without resume to start afresh.",
            )
        return "kept"
    found = _rundir.find_resumable(folder)
    if any(not _settings_diff(cfg, record) for _, cfg in found):
        return "resumed"
    return "ran"


def _history(folder: Path) -> History:
    path = folder / "history.csv"
    return History.from_csv(path) if path.exists() else History()


def _collect(value: Any, folder: Path, action: str, outcome: tuple[str, float] | None) -> SweepRun:
    """The record of one run, read back from its folder."""
    summary = _rundir._read_json(folder / "summary.json") or {}
    if outcome is None and action != "kept":
        return SweepRun(value, folder, "not run", "not run", math.nan, _nan_metrics(), None)
    status = str(summary.get("status", outcome[0] if outcome else "not run"))
    metrics = run_metrics(_history(folder)) if status == "completed" else _nan_metrics()
    wall = float(summary.get("wall_time") or math.nan)
    return SweepRun(value, folder, status, action, wall, metrics, summary.get("all_checks_passed"))


def _nan_metrics() -> dict[str, float]:
    return {k: math.nan for k in RUN_METRICS}


def _sweep_summary(
    name: str,
    scale: str,
    key: str,
    values: tuple,
    seed: int,
    runs: tuple[SweepRun, ...],
    preset: SweepPreset | None,
    shared: dict[str, Any],
) -> dict[str, Any]:
    """``sweep.json`` without its status, checks and wall time."""
    return {
        "experiment": name,
        "scale": scale,
        "key": key,
        "values": list(values),
        "seed": seed,
        "figure": preset.figure if preset else None,
        "shared_settings": shared,
        "runs": [
            {
                "value": r.value,
                "folder": r.out_dir.name,
                "status": r.status,
                "action": r.action,
                "wall_time": r.wall_time,
                "run_checks_passed": r.checks_passed,
                "milestones": r.metrics,
            }
            for r in runs
        ],
        "checks": {},
    }
