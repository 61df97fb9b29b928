"""Deferred Ctrl-C for a training run: SIGINT becomes a flag the loops check at step
boundaries, so an interrupted run stops in a consistent state (and checkpoints it)."""

from __future__ import annotations

import signal
import threading
from typing import Any

__all__: list[str] = []


class DeferredInterrupt:
    """Turn SIGINT (Ctrl-C) into a flag checked at step boundaries, so that an interrupted run
    always stops in a consistent state; a second Ctrl-C interrupts at once. Only in the main
    thread (elsewhere Python does not deliver signals).

    Use as a context manager around the loop; :meth:`check` raises ``KeyboardInterrupt`` once
    a Ctrl-C has been requested. The previous handler is restored on exit.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> DeferredInterrupt:
        if threading.current_thread() is threading.main_thread():
            try:
                self._previous = signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except ValueError:  # pragma: no cover - e.g. embedded interpreters
                self._installed = False
        return self

    def check(self) -> None:
        """Raise ``KeyboardInterrupt`` if a Ctrl-C arrived since the run started."""
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._previous)
