"""Shared helpers for the benchmarks: side-by-side timing and one row format.

Every benchmark module exposes ``run(quick: bool) -> list[Row]``; ``benchmarks/run.py`` calls them
all in one process and prints (and writes) one table. Benchmarks are measurements, not tests:
they report ratios measured side by side in one run, never assert on absolute times.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One comparison: our route against the natural alternative, measured in the same run."""

    operation: str
    size: str
    ours: str  # name of our route
    ours_s: float
    alternative: str  # name of the alternative
    alternative_s: float | None  # None when the alternative was skipped (say why in `agreement`)
    agreement: str  # how closely results agree, e.g. "rel. diff 3e-12"

    @property
    def ratio(self) -> float | None:
        if self.alternative_s is None or self.ours_s <= 0:
            return None
        return self.alternative_s / self.ours_s


def timed(fn: Callable[[], Any], *, repeat: int = 1) -> tuple[Any, float]:
    """Run ``fn`` ``repeat`` times; return its last result and the best wall time in seconds."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def print_rows(rows: list[Row]) -> None:
    for r in rows:
        ratio = "-" if r.ratio is None else f"{r.ratio:.1f}x"
        alt = "skipped" if r.alternative_s is None else f"{r.alternative_s:.3g} s"
        print(
            f"{r.operation:<34} {r.size:<22} ours {r.ours_s:.3g} s | {r.alternative}: {alt} | "
            f"ratio {ratio} | {r.agreement}"
        )
