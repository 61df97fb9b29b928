"""Where a :class:`~implicitbias.dynamics.Monitor` sends each record besides its history.

=====================================  ===========================================================
``sinks`` entry                        what happens at each record
=====================================  ===========================================================
a path ending in ``.csv``              one flushed CSV line (the format of ``train``'s history
                                       CSV; :meth:`History.from_csv` reads it, also mid-run)
a path ending in ``.json``             the whole history as :meth:`History.to_json`, replaced
                                       atomically (a killed run leaves the last whole file)
an object with ``add_scalar``          ``add_scalar(column, value, global_step=step)`` for each
(``torch.utils.tensorboard``           column of the record but ``step`` (TensorBoard needs
``SummaryWriter``)                     integer steps: the ``step`` column, or the record's index
                                       when it is NaN); flushed by ``Monitor.close``
a callable                             ``sink(record)`` with a fresh ``dict[str, float]``
=====================================  ===========================================================
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from implicitbias._validation import fail, fail_type
from implicitbias.dynamics._checkpoint import atomic_write_text
from implicitbias.dynamics.history import History, _CSVWriter

__all__: list[str] = []


class Sink(Protocol):
    """A destination of records: ``write`` after each record, ``close`` at the end."""

    def write(self, record: Mapping[str, float], index: int) -> None: ...

    def close(self) -> None: ...


class CSVSink:
    """The history as CSV, one flushed line per record."""

    def __init__(self, path: Path, history: History) -> None:
        self.history = history
        self.writer = _CSVWriter(path, history)

    def write(self, record: Mapping[str, float], index: int) -> None:
        self.writer.write(self.history.row(-1), self.history.columns)

    def close(self) -> None:
        self.writer.close()


class JSONSink:
    """The history as :meth:`History.to_json`, replaced atomically at each record."""

    def __init__(self, path: Path, history: History) -> None:
        self.path, self.history = path, history
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, history.to_json())

    def write(self, record: Mapping[str, float], index: int) -> None:
        atomic_write_text(self.path, self.history.to_json())

    def close(self) -> None:
        pass


class ScalarSink:
    """A TensorBoard ``SummaryWriter`` (anything with ``add_scalar``): one scalar per column."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def write(self, record: Mapping[str, float], index: int) -> None:
        step = record.get("step", math.nan)
        global_step = int(step) if math.isfinite(step) else index
        for name, value in record.items():
            if name != "step":
                self.writer.add_scalar(name, value, global_step=global_step)

    def close(self) -> None:
        flush = getattr(self.writer, "flush", None)
        if callable(flush):
            flush()


class CallableSink:
    """``fn(record)`` with a fresh dict per call (a sink that edits it changes nothing else)."""

    def __init__(self, fn: Callable[[dict[str, float]], Any]) -> None:
        self.fn = fn

    def write(self, record: Mapping[str, float], index: int) -> None:
        self.fn(dict(record))

    def close(self) -> None:
        pass


def _check_path(entry: str | os.PathLike[str], func: str, k: int) -> Path:
    path = Path(entry)
    if path.suffix.lower() not in (".csv", ".json"):
        raise fail(
            func,
            "sinks",
            "paths ending in '.csv' or '.json' (or SummaryWriters, or callables)",
            f"{os.fspath(entry)!r} at position {k}",
            "For TensorBoard pass a torch.utils.tensorboard.SummaryWriter(log_dir).",
        )
    if path.is_dir():
        raise fail(func, "sinks", "file paths", f"the directory {os.fspath(entry)!r}")
    return path


def make_sinks(sinks: Any, history: History, *, func: str) -> list[Sink]:
    """The sinks of the ``sinks`` argument (see the module's table), files opened (created or
    truncated) now; two entries naming one file are refused before anything is written."""
    if sinks is None:
        return []
    if isinstance(sinks, (str, bytes, os.PathLike)) or not isinstance(sinks, Iterable):
        raise fail_type(
            func,
            "sinks",
            "a sequence of sinks (paths, SummaryWriters, callables)",
            sinks,
            "Wrap a single sink in a list: sinks=[...].",
        )
    entries = list(sinks)
    paths: dict[str, int] = {}
    for k, entry in enumerate(entries):
        if isinstance(entry, (str, os.PathLike)):
            _check_path(entry, func, k)
            key = os.path.realpath(os.fspath(entry))
            if key in paths:
                raise fail(
                    func,
                    "sinks",
                    "distinct files",
                    f"positions {paths[key]} and {k} naming the same file {os.fspath(entry)!r}",
                )
            paths[key] = k
        elif not (callable(getattr(entry, "add_scalar", None)) or callable(entry)):
            raise fail_type(
                func,
                "sinks",
                f"a sequence of paths ('.csv', '.json'), SummaryWriters or callables (entry {k})",
                entry,
            )
    out: list[Sink] = []
    for entry in entries:
        if isinstance(entry, (str, os.PathLike)):
            path = Path(entry)
            out.append(
                CSVSink(path, history) if path.suffix.lower() == ".csv" else JSONSink(path, history)
            )
        elif callable(getattr(entry, "add_scalar", None)):
            out.append(ScalarSink(entry))
        else:
            out.append(CallableSink(entry))
    return out
