"""Configured reproductions of the paper's experiments (THEORY §6), reachable as
``implicitbias.experiments`` (not star-exported into ``implicitbias``).

- :func:`run` — train, measure, write history/config/summary and a figure;
- :func:`run_sweep` — one experiment at several values of one setting (in sequence or in
  parallel processes), the runs overlaid in one figure, the orderings checked (it returns a
  :class:`~implicitbias.experiments.sweep.SweepResult`);
- :func:`list_experiments`, :func:`list_sweeps` — names and one-line descriptions;
- :mod:`~implicitbias.experiments.data` — seeded data generators;
- :mod:`~implicitbias.experiments.configs` — the config classes and :func:`get_config`;
- :mod:`~implicitbias.experiments.registry` — the one registry: each experiment module declares
  itself (description, presets of every scale, runner, checks, figure) in one
  :func:`register` call, and every lookup by name goes through :func:`get_experiment`.

The command line ``implicitbias reproduce NAME [--sweep KEY=V1,V2,...]`` calls :func:`run` (or
:func:`run_sweep`) and uses only the names of this module's ``__all__``.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

# Importing an experiment module registers its experiments; this order (diagonal:
# sparse-linear, misgrokking; matrix-completion; modular-addition; the modular-addition
# figures: modular-addition-he-init and the sweeps of Fig. 2(b), 2(c); modular-addition-no-wd)
# is the order of ``implicitbias list``.
from implicitbias.experiments import (
    configs,
    data,
    diagonal,
    matrix_completion,
    modular_addition,
    modular_figures,
    modular_no_wd,
    registry,
)
from implicitbias.experiments.configs import ExperimentConfig, get_config
from implicitbias.experiments.registry import (
    ALL_SCALES,
    EXPERIMENTS,
    SCALES,
    Experiment,
    get_experiment,
    register,
)
from implicitbias.experiments.runner import RunResult, list_experiments, run
from implicitbias.experiments.sweep import list_sweeps, run_sweep

__all__ = [
    "run",
    "RunResult",
    "run_sweep",
    "list_experiments",
    "list_sweeps",
    "get_config",
    "get_experiment",
    "register",
    "Experiment",
    "ExperimentConfig",
    "EXPERIMENTS",
    "SCALES",
    "ALL_SCALES",
    "configs",
    "data",
    "registry",
]
