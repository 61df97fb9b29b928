"""Configured reproductions of the paper's experiments (THEORY §6), reachable as
``implicitbias.experiments`` (not star-exported into ``implicitbias``).

- :func:`run` — train, measure, write history/config/summary and a figure;
- :func:`list_experiments` — names and one-line descriptions;
- :mod:`~implicitbias.experiments.data` — seeded data generators;
- :mod:`~implicitbias.experiments.configs` — the config classes and :func:`get_config`;
- :mod:`~implicitbias.experiments.registry` — the one registry: each experiment module declares
  itself (description, presets of every scale, runner, checks, figure) in one
  :func:`register` call, and every lookup by name goes through :func:`get_experiment`.

The command line ``implicitbias reproduce NAME`` calls :func:`run` and uses only the names of
this module's ``__all__``.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

# Importing an experiment module registers its experiments; this order (diagonal:
# sparse-linear, misgrokking; matrix-completion; modular-addition) is the order of
# ``implicitbias list``.
from implicitbias.experiments import (
    configs,
    data,
    diagonal,
    matrix_completion,
    modular_addition,
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

__all__ = [
    "run",
    "RunResult",
    "list_experiments",
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
