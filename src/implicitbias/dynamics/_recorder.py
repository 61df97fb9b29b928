"""The record of a run while it runs: history rows (with the user's metrics), the incremental
CSV and its JSON sidecar, the wall clock and the progress bar."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from implicitbias._progress import Progress
from implicitbias.dynamics._checkpoint import write_sidecar
from implicitbias.dynamics._metrics import Metrics, StateMetrics, append_row, user_metrics
from implicitbias.dynamics._problem import Problem
from implicitbias.dynamics.history import STANDARD_COLUMNS, History, _CSVWriter

__all__: list[str] = []

_FUNC = "train"


class Recorder:
    """Appends one history row per evaluation, writes it to the CSV (one flushed line each),
    keeps the JSON sidecar and the progress bar, and measures the wall time of the run (over
    all its resumed segments: the clock starts at ``wall_before``, now).

    ``alpha`` is α of the rescaled time t·λ/log α and ``config`` the run's configuration, both
    for the sidecar.
    """

    def __init__(
        self,
        prob: Problem,
        *,
        lr: float,
        metrics: Metrics | None,
        history: History,
        hist_file: Path | None,
        config: dict[str, Any],
        alpha: float,
        wall_before: float,
    ) -> None:
        self.prob = prob
        self.lr = lr
        # the standard columns, computed as Monitor computes them (rescaled time t·λ/log α)
        self.state = StateMetrics(prob.loss, prob.y, prob.lam, float(prob.h.degree), alpha)
        self.metrics = metrics
        self.history = history
        self.hist_file, self.config, self.alpha = hist_file, config, alpha
        self._wall_before = wall_before
        self._t_start = time.perf_counter()
        self.writer = _CSVWriter(hist_file, history) if hist_file is not None else None
        self.bar: Progress | None = None
        self.tick: Callable[[float], None] = lambda t: None

    def wall(self) -> float:
        """Seconds spent training, over all resumed segments."""
        return self._wall_before + (time.perf_counter() - self._t_start)

    def show_progress(self, progress: bool | None, t_end: float, method: str) -> None:
        """Open the progress report (:class:`implicitbias._progress.Progress`: a bar on a
        terminal, else an INFO line every ~10 s, in units of gradient-flow time t);
        :meth:`tick` moves it."""
        self.bar = Progress(t_end, desc=f"train ({method})", unit="t", progress=progress)
        self.tick = self.bar.set

    def sidecar(self, status: str, **outcome: Any) -> None:
        """Replace the JSON beside the history CSV: configuration, status and outcome."""
        write_sidecar(self.hist_file, self.config, self.alpha, status, **outcome)

    def close(self) -> None:
        """Close the progress bar and the CSV."""
        if self.bar is not None:
            self.bar.close()
        if self.writer is not None:
            self.writer.close()

    # ------------------------------------------------------------------ rows
    def record(
        self,
        theta: torch.Tensor,
        out: torch.Tensor,
        t: float,
        grad_evals: int,
        step: float | None = None,
        values: torch.Tensor | None = None,
    ) -> None:
        """Append the row of the (checked, finite) state θ at time ``t`` with outputs ``out``
        (and per-example losses ``values`` when already computed): the standard columns of
        :class:`StateMetrics`, the user's metrics, the wall time."""
        row = self.state.row(
            float(theta.norm()),
            out,
            t=t,
            step=t / self.lr if step is None else step,
            grad_evals=float(grad_evals),
            values=values,
        )
        if self.metrics is not None:
            self.prob.load(theta)
            extra = self.metrics(self.prob.h, t)
            row.update(
                user_metrics(
                    extra,
                    func=_FUNC,
                    reserved=STANDARD_COLUMNS,
                    reserved_name="the standard columns",
                )
            )
        row["wall_time"] = self.wall()
        row = append_row(
            self.history,
            row,
            func=_FUNC,
            columns_note=", also those of the checkpoint's history when resuming",
        )
        if self.writer is not None:
            self.writer.write(row, self.history.columns)
