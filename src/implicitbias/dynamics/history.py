"""The record of a training run: one row per evaluation time, written incrementally to CSV."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from implicitbias._results import TableRecord
from implicitbias._validation import check_int, fail, fail_type
from implicitbias.dynamics._checkpoint import atomic_write_text

__all__ = ["History", "STANDARD_COLUMNS"]

#: Columns :func:`train` records, in order (``train_acc``/``normalized_margin`` for
#: classification, ``train_mse`` for regression), before the user metrics.
STANDARD_COLUMNS = (
    "t",
    "step",
    "rescaled_time",
    "grad_evals",
    "train_loss",
    "objective",
    "train_acc",
    "train_mse",
    "theta_norm",
    "normalized_margin",
    "wall_time",
)


def _fmt(v: float) -> str:
    # repr of a Python float is the shortest string that round-trips exactly.
    return repr(float(v))


class History(TableRecord):
    r"""Columns of floats, one row per evaluation time of a training run.

    Indexing by a column name returns a float64 numpy array: ``history["train_acc"]``.
    The standard columns recorded by :func:`~implicitbias.dynamics.train` are

    =====================  ==============================================================
    column                 meaning
    =====================  ==============================================================
    ``t``                  gradient-flow time t (GD: t = η·step)
    ``step``               steps-equivalent t/η
    ``rescaled_time``      t·λ/log α; the early-to-late transition sits near 1
    ``grad_evals``         gradient evaluations spent so far
    ``train_loss``         unregularized mean loss (1/n) Σ ℓ(f(θ; x_i), y_i)
    ``objective``          regularized L_λ(θ) = train_loss + (λ/2)‖θ‖²
    ``train_acc``          training accuracy, f = 0 counts half (classification)
    ``train_mse``          training mean squared error (regression, instead of train_acc)
    ``theta_norm``         ‖θ‖₂
    ``normalized_margin``  q_min/‖θ‖^L (classification only)
    ``wall_time``          seconds since the start of training (excluding checkpoint I/O)
    =====================  ==============================================================

    followed by the keys of the user's ``metrics``.

    Parameters
    ----------
    columns : sequence of str, optional
        Column names, in order. Default: taken from the first appended row.
    rows : iterable of mapping, optional
        Initial rows.

    Examples
    --------
    >>> from implicitbias.dynamics import History
    >>> h = History()
    >>> h.append({"t": 0.0, "train_loss": 0.69})
    >>> h.append({"t": 1.0, "train_loss": 0.5})
    >>> len(h), h["t"].tolist(), h.columns
    (2, [0.0, 1.0], ['t', 'train_loss'])
    """

    def __init__(
        self,
        columns: Iterable[str] | None = None,
        rows: Iterable[Mapping[str, float]] | None = None,
    ) -> None:
        if isinstance(columns, (str, bytes)):
            raise fail_type("History", "columns", "a sequence of column names", columns)
        self._columns: list[str] | None = None if columns is None else [str(c) for c in columns]
        if self._columns is not None and len(set(self._columns)) != len(self._columns):
            twice = sorted({c for c in self._columns if self._columns.count(c) > 1})
            raise fail("History", "columns", "distinct column names", f"{twice} more than once")
        self._data: dict[str, list[float]] = {c: [] for c in (self._columns or [])}
        for row in rows or ():
            self.append(row)

    # ------------------------------------------------------------------ building
    def append(self, row: Mapping[str, float]) -> None:
        """Add one row of real numbers; its keys must be exactly the columns (set by the first
        row)."""
        func = "History.append"
        if not isinstance(row, Mapping):
            raise fail_type(func, "row", "a mapping of column names to real numbers", row)
        columns = self._columns if self._columns is not None else [str(k) for k in row]
        if set(row) != set(columns):
            missing = sorted(set(columns) - set(row))
            extra = sorted(set(row) - set(columns))
            raise fail(
                func,
                "row",
                f"a mapping with exactly the columns {columns}",
                f"missing {missing} and extra {extra}",
                "User metrics must return the same keys at every evaluation.",
            )
        values = []
        for c in columns:
            v = row[c]
            try:
                if isinstance(v, (str, bytes)):
                    raise TypeError(f"a {type(v).__name__} is not a number")
                values.append(float(v))
            except (TypeError, ValueError, RuntimeError) as exc:
                raise fail_type(
                    func, "row", f"a mapping of column names to real numbers (column {c!r})", v
                ) from exc
        if self._columns is None:
            self._columns = columns
            self._data = {c: [] for c in columns}
        for c, v in zip(columns, values):
            self._data[c].append(v)

    def truncate(self, length: int) -> None:
        """Keep only the first ``length`` rows (``length >= 0``; more rows than there are is a
        no-op)."""
        check_int(length, "History.truncate", "length", minimum=0)
        for c in self._data:
            del self._data[c][length:]

    # ------------------------------------------------------------------ access
    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self._columns or [])

    def __len__(self) -> int:
        if not self._columns:
            return 0
        return len(self._data[self._columns[0]])

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._data:
            raise KeyError(f"History has no column {key!r}; its columns are {self.columns}.")
        return np.asarray(self._data[key], dtype=np.float64)

    def row(self, i: int) -> dict[str, float]:
        """Row ``i`` as a dict (negative indices count from the end)."""
        return {c: self._data[c][i] for c in self.columns}

    def as_dict(self) -> dict[str, np.ndarray]:
        """All columns as ``{name: float64 array}``, in column order."""
        return {c: self[c] for c in self.columns}

    def to_lists(self) -> dict[str, list[float]]:
        """All columns as ``{name: list of float}`` (plain Python, for checkpoints and JSON)."""
        return {c: list(self._data[c]) for c in self.columns}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, History):
            return NotImplemented
        if self.columns != other.columns:
            return False
        return all(np.array_equal(self[c], other[c], equal_nan=True) for c in self.columns)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"History({len(self)} rows, columns={self.columns})"

    # ------------------------------------------------------------------ files
    def to_csv(self, path: str | os.PathLike[str]) -> None:
        """Write a CSV with a header row; floats are written so that they round-trip exactly."""
        with open(path, "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(self.columns)
            for i in range(len(self)):
                writer.writerow([_fmt(self._data[c][i]) for c in self.columns])

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> History:
        """Read a CSV written by :meth:`to_csv` or incrementally by ``train``.

        A last line that does not end in a newline (a process killed while writing it) is
        ignored, even when its fields happen to parse: its last number may be cut short. An
        empty file, or one whose header line is itself cut short, reads as an empty
        ``History()``; a header alone gives the columns and no rows; blank lines are skipped.
        Any other malformed line (a wrong number of fields, or a field that is not a number) is
        an error naming the line, and so is a header that names a column twice.
        """
        func = "History.from_csv"
        if not isinstance(path, (str, os.PathLike)):
            raise fail_type(func, "path", "a file path (str or os.PathLike)", path)
        with open(path, newline="") as fh:
            text = fh.read()
        if not text.endswith("\n"):
            text = text[: text.rfind("\n") + 1]  # drop a torn last line ("" if no newline)
        reader = csv.reader(io.StringIO(text, newline=""))
        try:
            header = next(reader)
        except StopIteration:
            return cls()
        if len(set(header)) != len(header):
            twice = sorted({c for c in header if header.count(c) > 1})
            raise fail(
                func,
                "path",
                "a history CSV whose header names each column once",
                f"the columns {twice} more than once in {os.fspath(path)!r}",
            )
        out = cls(columns=header)
        for line in reader:
            if not line:
                continue  # a blank line (a hand-edited file)
            where = f"line {reader.line_num} of {os.fspath(path)!r}"
            if len(line) != len(header):
                raise fail(
                    func,
                    "path",
                    f"a history CSV whose rows have {len(header)} fields (one per column)",
                    f"{len(line)} fields on {where}",
                )
            try:
                values = [float(v) for v in line]
            except ValueError as exc:
                raise fail(
                    func, "path", "a history CSV of numbers", f"{line!r} on {where}"
                ) from exc
            out.append(dict(zip(header, values)))
        return out

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The history as JSON ``{"columns": [...], "data": {name: [...]}}``, written to ``path``
        when given. Strict JSON has no NaN or inf: non-finite values are written as ``null``
        (and read back as NaN)."""
        data = {
            c: [None if not math.isfinite(v) else v for v in self._data[c]] for c in self.columns
        }
        text = json.dumps({"columns": self.columns, "data": data})
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, source: str | os.PathLike[str]) -> History:
        """Read :meth:`to_json` output, from a path or a JSON string (``null`` reads as NaN)."""
        func = "History.from_json"
        if not isinstance(source, (str, os.PathLike)):
            raise fail_type(func, "source", "a JSON string or a path (str or os.PathLike)", source)
        text = str(source)
        if not text.lstrip().startswith("{"):
            text = Path(source).read_text()
        try:
            obj: Any = json.loads(text)
        except json.JSONDecodeError as exc:
            raise fail(func, "source", "History JSON", f"invalid JSON ({exc})") from exc
        if not isinstance(obj, dict) or "columns" not in obj or "data" not in obj:
            raise fail_type("History.from_json", "source", "History JSON", source)
        columns = obj["columns"]
        out = cls(columns=columns)
        n = len(obj["data"][columns[0]]) if columns else 0
        for i in range(n):
            out.append(
                {c: (math.nan if obj["data"][c][i] is None else obj["data"][c][i]) for c in columns}
            )
        return out


class _CSVWriter:
    """Appends rows to a CSV, one flushed line per row, so a killed process leaves it readable."""

    def __init__(self, path: Path, history: History) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # header + the rows so far (a resumed run), or nothing; replaced atomically, so a run
        # killed here leaves the old file or the new one, whole
        buf = io.StringIO(newline="")
        if history.columns:
            writer = csv.writer(buf)
            writer.writerow(history.columns)
            for row in zip(*(history.to_lists()[c] for c in history.columns)):
                writer.writerow([_fmt(v) for v in row])
        atomic_write_text(path, buf.getvalue())
        self._fh = open(path, "a", newline="")  # noqa: SIM115 - closed in close()
        self._writer = csv.writer(self._fh)
        self._columns = history.columns
        self._header_written = bool(self._columns)

    def write(self, row: Mapping[str, float], columns: list[str]) -> None:
        if not self._header_written:
            self._writer.writerow(columns)
            self._columns = columns
            self._header_written = True
        self._writer.writerow([_fmt(row[c]) for c in self._columns])
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()
