"""The record of a run while it runs: history rows (with the user's metrics), the incremental
CSV and its JSON sidecar, the wall clock and the progress bar."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from implicitbias._validation import fail, fail_type
from implicitbias.dynamics._checkpoint import write_sidecar
from implicitbias.dynamics._problem import Problem
from implicitbias.dynamics.history import STANDARD_COLUMNS, History, _CSVWriter

__all__: list[str] = []

_FUNC = "train"

#: ``metrics(model, t) -> {column: value}``, called at every evaluation.
Metrics = Callable[..., Mapping[str, float]]


def progress_bar(
    progress: bool | None, t_end: float, method: str
) -> tuple[Any, Callable[[float], None]]:
    """A tqdm bar (None when off: by default unless stderr is a terminal) and its update
    function."""
    show = sys.stderr.isatty() if progress is None else bool(progress)
    bar = None
    if show:
        from tqdm.auto import tqdm

        bar = tqdm(total=float(t_end), unit="t", desc=f"train ({method})", leave=False)

    def tick(t: float) -> None:
        if bar is not None:
            bar.update(t - bar.n)

    return bar, tick


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
        # rescaled time t·λ/log α (NaN when log α ≤ 0)
        log_alpha = math.log(alpha) if alpha > 0 else float("nan")
        self.rescale = prob.lam / log_alpha if log_alpha > 0 else float("nan")
        self.degree = float(prob.h.degree)
        self.metrics = metrics
        self.history = history
        self.hist_file, self.config, self.alpha = hist_file, config, alpha
        self._wall_before = wall_before
        self._t_start = time.perf_counter()
        self.writer = _CSVWriter(hist_file, history) if hist_file is not None else None
        self.bar: Any = None
        self.tick: Callable[[float], None] = lambda t: None

    def wall(self) -> float:
        """Seconds spent training, over all resumed segments."""
        return self._wall_before + (time.perf_counter() - self._t_start)

    def show_progress(self, progress: bool | None, t_end: float, method: str) -> None:
        """Open the progress bar (see :func:`progress_bar`); :meth:`tick` moves it."""
        self.bar, self.tick = progress_bar(progress, t_end, method)

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
        (and per-example losses ``values`` when already computed)."""
        ell, y_t, lam = self.prob.loss, self.prob.y, self.prob.lam
        norm = float(theta.norm())
        if values is None:
            values = ell.values(out, y_t)
        train_loss = float(values.mean())
        row: dict[str, float] = {
            "t": t,
            "step": t / self.lr if step is None else step,
            "rescaled_time": t * self.rescale,
            "grad_evals": float(grad_evals),
            "train_loss": train_loss,
            "objective": train_loss + 0.5 * lam * norm * norm,
        }
        if ell.is_classification:
            row["train_acc"] = ell.accuracy(out, y_t)
        else:
            row["train_mse"] = ell.mse(out, y_t)
        row["theta_norm"] = norm
        if ell.is_classification:
            q_min = float(ell.margins(out, y_t).min())
            row["normalized_margin"] = q_min / norm**self.degree if norm > 0 else float("nan")
        if self.metrics is not None:
            row.update(self._user_metrics(theta, t))
        row["wall_time"] = self.wall()
        self._append(row)

    def _user_metrics(self, theta: torch.Tensor, t: float) -> dict[str, float]:
        """The user's ``metrics(model, t)`` at θ, checked: a mapping of new column names to
        real numbers."""
        assert self.metrics is not None
        self.prob.load(theta)
        extra = self.metrics(self.prob.h, t)
        if not isinstance(extra, Mapping):
            raise fail_type(_FUNC, "metrics", "a callable returning a dict of floats", extra)
        row: dict[str, float] = {}
        for k, v in extra.items():
            if k in STANDARD_COLUMNS:
                raise fail(_FUNC, "metrics", "keys other than the standard columns", f"key {k!r}")
            try:
                if isinstance(v, (str, bytes)):
                    raise TypeError(v)
                row[str(k)] = float(v)
            except (TypeError, ValueError, RuntimeError) as exc:
                raise fail_type(
                    _FUNC,
                    "metrics",
                    f"a callable returning a dict of real numbers (key {k!r})",
                    v,
                ) from exc
        return row

    def _append(self, row: dict[str, float]) -> None:
        """Order the row's columns (standard ones first), check them against the history's,
        append it and write it to the CSV."""
        ordered = [c for c in STANDARD_COLUMNS if c in row] + [
            c for c in row if c not in STANDARD_COLUMNS
        ]
        row = {c: row[c] for c in ordered}  # the first row fixes the column order
        known = self.history.columns
        if known and set(row) != set(known):
            raise fail(
                _FUNC,
                "metrics",
                f"a callable returning the same keys at every evaluation (the history's "
                f"columns {known}, also those of the checkpoint's history when resuming)",
                f"the columns {list(row)}",
            )
        self.history.append(row)
        if self.writer is not None:
            self.writer.write(row, self.history.columns)
