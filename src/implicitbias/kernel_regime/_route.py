"""What every empirical-NTK route provides to the blocked kernel loop (see ``ntk.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

# One logger for the NTK routes: which route computed a kernel, and why a faster one was not
# used (``logging.getLogger("implicitbias").setLevel(logging.DEBUG)`` shows it).
LOG = logging.getLogger("implicitbias.kernel_regime.ntk")


class _Unsupported(Exception):
    """A route does not apply to a module; the message says why."""


@dataclass
class _Route:
    """A kernel route: per-example ``features`` of a batch, their row ``take``, and
    ``contract(F1, F2, full, dest)``, which adds the kernel block between two batches of
    features to ``dest`` (a view into the output)."""

    name: str
    features: Callable[[torch.Tensor], Any]
    take: Callable[[Any, int, int], Any]
    contract: Callable[[Any, Any, bool, torch.Tensor], None]
    bytes_per_row: int  # memory of one example's features
    bytes_per_pair: int  # temporaries per kernel entry (i, j) during a contraction
