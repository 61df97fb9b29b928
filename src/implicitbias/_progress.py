"""Progress of long computations: a tqdm bar on a terminal, a log line every ~10 s elsewhere.

Every long computation of the library (NTK blocks, certificates, training, experiments) reports
through :class:`Progress`, so a user sees the same units whether the work runs in a terminal, a
notebook, a batch job or a CI log:

``progress=None`` (the default of the public functions)
    a tqdm bar when stderr is a terminal or in a Jupyter notebook; otherwise one ``INFO`` record of the logger
    ``implicitbias.progress`` at most every ``log_every`` seconds (and one at the end), e.g.
    ``train (gd): t = 12.5 / 100 (12%), 3.1 s elapsed, ~22 s left``. The records appear where
    the user's logging is configured (``logging.basicConfig(level=logging.INFO)``); a library
    never prints on its own.
``progress=True``
    a tqdm bar even when stderr is not a terminal.
``progress=False``
    nothing.

The cost of an update between two displays is one clock read and a comparison.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

__all__ = ["LOG", "Progress", "check_progress"]

#: The logger of the progress lines (``INFO``) when stderr is not a terminal.
LOG = logging.getLogger("implicitbias.progress")
#: The default clock (a module attribute, so that tests can replace it).
_now: Callable[[], float] = time.perf_counter


def check_progress(progress: Any, func: str, arg: str = "progress") -> bool | None:
    """Validate a ``progress`` option: ``None``, ``True`` or ``False``."""
    from implicitbias._validation import describe, fail_type

    if progress is None or isinstance(progress, bool):
        return progress
    raise fail_type(func, arg, "None, True or False", describe(progress))


def _fmt_seconds(s: float) -> str:
    if not math.isfinite(s):
        return "?"
    if s < 60:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 3600:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def _fmt_amount(x: float) -> str:
    return f"{x:.0f}" if float(x).is_integer() else f"{x:.4g}"


class Progress:
    """Report the progress of ``total`` units of work (see the module docstring).

    Parameters
    ----------
    total : float
        The amount of work (blocks, constraints, gradient-flow time, ...), > 0.
    desc : str
        What is running, e.g. ``"empirical_ntk"`` or ``"train (flow)"``.
    unit : str
        The unit of ``total``, e.g. ``"block"`` or ``"t"``.
    progress : bool or None, default None
        ``None``: a bar on a terminal, else log lines; ``True``: a bar; ``False``: nothing.
    log_every : float, default 10.0
        Seconds between two log lines.
    clock : callable, optional
        The clock (default ``time.perf_counter``); tests pass a fake one.

    Examples
    --------
    >>> with Progress(4, desc="blocks", unit="block", progress=False) as bar:
    ...     for _ in range(4):
    ...         bar.update(1)
    >>> bar.n
    4.0
    """

    def __init__(
        self,
        total: float,
        *,
        desc: str,
        unit: str,
        progress: bool | None = None,
        log_every: float = 10.0,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.total = float(total)
        self.desc = desc
        self.unit = unit
        self.n = 0.0
        self.log_every = float(log_every)
        self._clock = clock if clock is not None else _now
        self._start = self._clock()
        self._last_log = self._start
        self._logged_n = -1.0
        self._bar: Any = None
        self._log = False
        self._closed = False
        if progress is None:
            progress = True if _stderr_is_terminal() else None
        if progress is True:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, unit=unit, desc=desc, leave=False)
        elif progress is None:
            self._log = LOG.isEnabledFor(logging.INFO)

    @property
    def mode(self) -> str:
        """``"bar"``, ``"log"`` or ``"off"``."""
        return "bar" if self._bar is not None else ("log" if self._log else "off")

    def update(self, amount: float = 1.0) -> None:
        """Add ``amount`` units of work done."""
        self.set(self.n + amount)

    def set(self, done: float) -> None:
        """Set the work done so far to ``done`` (never moves backwards)."""
        if done <= self.n or self._closed:
            return
        if self._bar is not None:
            self._bar.update(done - self.n)
        self.n = float(done)
        if self._log:
            now = self._clock()
            if now - self._last_log >= self.log_every:
                self._last_log = now
                self._logged_n = self.n
                LOG.info(self.line(now))

    def line(self, now: float | None = None) -> str:
        """The log line of the current state."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        frac = self.n / self.total if self.total > 0 else 1.0
        text = (
            f"{self.desc}: {self.unit} = {_fmt_amount(self.n)} / {_fmt_amount(self.total)} "
            f"({100 * frac:.0f}%), {_fmt_seconds(elapsed)} elapsed"
        )
        if 0 < frac < 1:
            text += f", ~{_fmt_seconds(elapsed * (1 - frac) / frac)} left"
        return text + (" (done)" if frac >= 1 else "")

    def close(self) -> None:
        """Close the bar, or log the final state (when the work took longer than ``log_every``
        and the last line did not already show it)."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._log:
            now = self._clock()
            if now - self._start >= self.log_every and self.n != self._logged_n:
                LOG.info(self.line(now))

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stderr_is_terminal() -> bool:
    """Interactive: stderr is a terminal, or we run in a Jupyter kernel (tqdm.auto draws a
    notebook widget there)."""
    try:
        if sys.stderr.isatty():
            return True
    except (AttributeError, ValueError):  # replaced or closed stderr
        pass
    shell = sys.modules.get("IPython")
    get = getattr(shell, "get_ipython", None)
    return callable(get) and type(get()).__name__ == "ZMQInteractiveShell"
