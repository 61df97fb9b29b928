"""Configured reproductions of the paper's experiments (THEORY §6), reachable as
``implicitbias.experiments`` (not star-exported into ``implicitbias``).

- :func:`run` — train, measure, write history/config/summary and a figure;
- :func:`list_experiments` — names and one-line descriptions;
- :mod:`~implicitbias.experiments.data` — seeded data generators;
- :mod:`~implicitbias.experiments.configs` — the ``quick`` / ``paper`` settings.

The command line ``implicitbias reproduce NAME`` calls :func:`run`.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

from implicitbias.experiments import configs, data
from implicitbias.experiments.configs import EXPERIMENTS, SCALES, get_config
from implicitbias.experiments.runner import RunResult, list_experiments, run

__all__ = [
    "run",
    "RunResult",
    "list_experiments",
    "get_config",
    "EXPERIMENTS",
    "SCALES",
    "configs",
    "data",
]
