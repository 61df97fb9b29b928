"""The one registry of experiments: each is declared once, every lookup goes through here.

An experiment module ends with one :func:`register` call that declares everything the runner,
the configs and the command line need: the name and one-line description, the preset config
of every scale, the function that trains and measures, the acceptance checks, the metric of
the figure and the figure itself. Nothing else names an experiment, so adding one is a new
module plus its import in :mod:`implicitbias.experiments`. An unknown name is an
:class:`~implicitbias.InvalidArgumentError` naming the argument and listing the known names.

A :class:`SweepPreset` (:func:`register_sweep`) declares a sweep of one setting of an experiment
the paper draws as one panel (e.g. the init scale α of modular addition, Fig. 2(b)): the base
config of each scale, the values, and the checks of the ordering across the runs.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from implicitbias._validation import check_choice
from implicitbias.dynamics import Method
from implicitbias.experiments._common import CheckSpec, RunOutput
from implicitbias.experiments.plotting import plot_run

if TYPE_CHECKING:
    from implicitbias.experiments.configs import ExperimentConfig

__all__ = [
    "SCALES",
    "ALL_SCALES",
    "Experiment",
    "ExperimentRunner",
    "EXPERIMENTS",
    "register",
    "get_experiment",
    "experiment_names",
    "SweepCheckSpec",
    "SweepPreset",
    "SWEEPS",
    "register_sweep",
    "get_sweep",
]

#: Public scales; ``"tiny"`` exists for tests and is accepted but not advertised.
SCALES = ("quick", "paper")
#: Every scale an experiment declares a preset for and :func:`get_experiment`'s callers accept.
ALL_SCALES = ("quick", "paper", "tiny")


class ExperimentRunner(Protocol):
    """How the runner calls an experiment: train, measure, and hand back a :class:`RunOutput`.

    ``workdir`` is the run's (partial) output folder, for the experiment's own resumable state
    (e.g. the diagonal runs' ``snapshots.bin``); the trainer's files are passed explicitly.
    """

    def __call__(
        self,
        cfg: Any,
        *,
        name: str,
        workdir: Path,
        seed: int,
        device: str,
        method: Method | None,
        progress: bool | None,
        history_path: Any,
        log: Callable[[str], None] | None,
        checkpoint_path: Any,
        resume: bool,
    ) -> RunOutput: ...


#: ``figure(output, path, *, title=...)`` writes the PNG of a run.
FigureFn = Callable[..., None]


@dataclass(frozen=True)
class Experiment:
    """The declaration of one experiment.

    Attributes
    ----------
    name : str
        The name ``run`` and ``implicitbias reproduce`` take.
    description : str
        One line for :func:`~implicitbias.experiments.list_experiments` and ``implicitbias list``.
    presets : mapping of str to ExperimentConfig
        The config of each scale (``"quick"``, ``"paper"`` and the test-only ``"tiny"``).
    runner : ExperimentRunner
        Trains and measures one run.
    checks : mapping of str to (op, threshold, description)
        The acceptance checks the run grades.
    metric : {"accuracy", "mse"}
        What the figure's main panel shows (also for a run interrupted before it measured).
    figure : callable, default :func:`~implicitbias.experiments.plotting.plot_run`
        ``figure(output, path, *, title=...)`` writes ``figure.png``.
    """

    name: str
    description: str
    presets: Mapping[str, ExperimentConfig]
    runner: ExperimentRunner
    checks: Mapping[str, CheckSpec]
    metric: str
    figure: FigureFn = field(default=plot_run)

    def __post_init__(self) -> None:
        # Declarations are code, not input: a wrong one is a programming error.
        missing = [s for s in ALL_SCALES if s not in self.presets]
        if missing:
            raise ValueError(f"experiment {self.name!r} declares no preset for scales {missing}")
        if self.metric not in ("accuracy", "mse"):
            raise ValueError(f"experiment {self.name!r}: unknown metric {self.metric!r}")
        object.__setattr__(self, "presets", types.MappingProxyType(dict(self.presets)))
        object.__setattr__(self, "checks", types.MappingProxyType(dict(self.checks)))

    def preset(self, scale: Any, func: str = "get_config") -> ExperimentConfig:
        """The preset config of ``scale``; an unknown scale is an InvalidArgumentError."""
        check_choice(scale, func, "scale", ALL_SCALES)
        return self.presets[scale]


_REGISTRY: dict[str, Experiment] = {}
_DESCRIPTIONS: dict[str, str] = {}

#: Experiment names and their one-line descriptions, in the order they were registered (a
#: read-only view of the registry).
EXPERIMENTS: Mapping[str, str] = types.MappingProxyType(_DESCRIPTIONS)


def register(experiment: Experiment) -> Experiment:
    """Add ``experiment`` to the registry (once per name) and return it."""
    if not isinstance(experiment, Experiment):
        raise TypeError(f"register takes an Experiment, got {type(experiment).__name__}")
    if experiment.name in _REGISTRY:
        raise ValueError(f"experiment {experiment.name!r} is already registered")
    _REGISTRY[experiment.name] = experiment
    _DESCRIPTIONS[experiment.name] = experiment.description
    return experiment


def experiment_names() -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(_REGISTRY)


def get_experiment(name: Any, func: str = "get_experiment", arg: str = "name") -> Experiment:
    """The declaration of experiment ``name``.

    Raises
    ------
    InvalidArgumentError
        ``name`` is not a registered experiment; the message names ``func``'s argument ``arg``
        and lists the known names.
    """
    check_choice(name, func, arg, tuple(_REGISTRY))
    return _REGISTRY[name]


@dataclass(frozen=True)
class SweepCheckSpec:
    """An acceptance check of a sweep, computed from its runs (see
    :func:`~implicitbias.experiments.sweep_checks.sweep_check`).

    Attributes
    ----------
    metric : str
        A per-run measurement (:data:`~implicitbias.experiments.sweep_checks.RUN_METRICS`),
        e.g. ``"fit_step"``.
    relation : {"increasing", "decreasing", "largest_below", "largest_above"}
        ``"increasing"``/``"decreasing"``: the metric is strictly monotone in the swept value
        (a run that never reached it breaks the order); ``"largest_below"``/``"largest_above"``:
        the metric of the largest value is < / > ``threshold``.
    description : str
        One line, e.g. ``"first step with train accuracy 100% falls as alpha grows"``.
    threshold : float, default nan
        For the ``largest_*`` relations.
    exclude_largest : bool, default False
        Monotone relations only: leave the largest value out (e.g. a λ too large to fit).
    """

    metric: str
    relation: str
    description: str
    threshold: float = float("nan")
    exclude_largest: bool = False

    def __post_init__(self) -> None:
        relations = ("increasing", "decreasing", "largest_below", "largest_above")
        if self.relation not in relations:
            raise ValueError(f"unknown sweep relation {self.relation!r}")


@dataclass(frozen=True)
class SweepPreset:
    """The declaration of a sweep the paper draws as one panel.

    Attributes
    ----------
    experiment : str
        The registered experiment swept.
    key : str
        The config field swept (e.g. ``"alpha"``).
    figure : str
        The paper's panel, e.g. ``"Fig. 2(b)"``.
    description : str
        One line for ``implicitbias list``.
    values : mapping of str to tuple of float
        The values of each scale (``"quick"``, ``"paper"``, ``"tiny"``).
    base : mapping of str to ExperimentConfig
        The config of each scale that the values replace ``key`` of (its ``steps`` gives all
        runs one horizon and the figure one x axis).
    checks : mapping of str to SweepCheckSpec
        The ordering checks across the runs.
    """

    experiment: str
    key: str
    figure: str
    description: str
    values: Mapping[str, tuple[float, ...]]
    base: Mapping[str, ExperimentConfig]
    checks: Mapping[str, SweepCheckSpec]

    def __post_init__(self) -> None:
        for what, table in (("values", self.values), ("base", self.base)):
            missing = [s for s in ALL_SCALES if s not in table]
            if missing:
                raise ValueError(f"sweep {self.experiment}/{self.key}: no {what} for {missing}")
        for scale, cfg in self.base.items():
            if not hasattr(cfg, self.key):
                raise ValueError(f"sweep {self.experiment}/{self.key}: {scale} config lacks it")
        object.__setattr__(self, "values", types.MappingProxyType(dict(self.values)))
        object.__setattr__(self, "base", types.MappingProxyType(dict(self.base)))
        object.__setattr__(self, "checks", types.MappingProxyType(dict(self.checks)))


_SWEEPS: dict[tuple[str, str], SweepPreset] = {}
#: The declared sweeps, keyed by (experiment, config field), in registration order.
SWEEPS: Mapping[tuple[str, str], SweepPreset] = types.MappingProxyType(_SWEEPS)


def register_sweep(preset: SweepPreset) -> SweepPreset:
    """Declare the preset sweep of ``preset.key`` of a registered experiment (once per pair)."""
    if not isinstance(preset, SweepPreset):
        raise TypeError(f"register_sweep takes a SweepPreset, got {type(preset).__name__}")
    if preset.experiment not in _REGISTRY:
        raise ValueError(f"sweep of unknown experiment {preset.experiment!r}")
    pair = (preset.experiment, preset.key)
    if pair in _SWEEPS:
        raise ValueError(f"the sweep of {preset.key!r} of {preset.experiment!r} is registered")
    _SWEEPS[pair] = preset
    return preset


def get_sweep(name: str, key: str) -> SweepPreset | None:
    """The preset sweep of setting ``key`` of experiment ``name``, or None."""
    return _SWEEPS.get((name, key))
