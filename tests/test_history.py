"""History: columns, exact CSV/JSON round trips, a torn last line, mismatched rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from implicitbias import InvalidArgumentError, InvalidArgumentTypeError
from implicitbias.dynamics import History


def _history() -> History:
    h = History()
    for i in range(5):
        h.append(
            {
                "t": 0.1 * i,
                "train_acc": 1 / 3 + i,
                "normalized_margin": math.nan if i == 0 else math.pi * i,
            }
        )
    return h


def test_columns_access_and_length() -> None:
    h = _history()
    assert len(h) == 5
    assert h.columns == ["t", "train_acc", "normalized_margin"]
    assert isinstance(h["t"], np.ndarray) and h["t"].dtype == np.float64
    np.testing.assert_array_equal(h["t"], 0.1 * np.arange(5))
    assert set(h.as_dict()) == set(h.columns)
    assert h.row(-1)["t"] == 0.1 * 4
    assert "t" in h and "x" not in h
    with pytest.raises(KeyError, match="has no column 'x'"):
        h["x"]


def test_csv_round_trip_is_exact(tmp_path: Path) -> None:
    h = _history()
    h.to_csv(tmp_path / "h.csv")
    back = History.from_csv(tmp_path / "h.csv")
    assert back == h
    assert math.isnan(back["normalized_margin"][0])


def test_json_round_trip(tmp_path: Path) -> None:
    h = _history()
    text = h.to_json(tmp_path / "h.json")
    json.loads(text)  # valid JSON (NaN written as null)
    assert History.from_json(tmp_path / "h.json") == h
    assert History.from_json(text) == h


def test_torn_last_line_is_ignored(tmp_path: Path) -> None:
    h = _history()
    path = tmp_path / "h.csv"
    h.to_csv(path)
    with open(path, "a") as fh:
        fh.write("0.5,0.33")  # a process killed while writing
    assert History.from_csv(path) == h


def test_rows_must_keep_the_same_columns() -> None:
    h = _history()
    with pytest.raises(InvalidArgumentError, match=r"missing \['train_acc'\]"):
        h.append({"t": 1.0, "normalized_margin": 0.0, "extra": 1.0})


def test_truncate_and_empty(tmp_path: Path) -> None:
    h = _history()
    h.truncate(2)
    assert len(h) == 2
    assert len(History()) == 0
    (tmp_path / "empty.csv").write_text("")
    assert len(History.from_csv(tmp_path / "empty.csv")) == 0


def test_bad_rows_lengths_and_sources_name_the_argument() -> None:
    h = _history()
    with pytest.raises(InvalidArgumentError, match=r"The 'length' argument of History\.truncate"):
        h.truncate(-1)
    assert len(h) == 5  # nothing dropped
    h.truncate(10)  # more rows than there are: nothing to drop
    assert len(h) == 5
    fresh = History()
    with pytest.raises(
        InvalidArgumentTypeError, match=r"The 'row' argument of History\.append .*column 'a'"
    ):
        fresh.append({"a": "x"})
    assert fresh.columns == []  # a rejected first row does not fix the columns
    with pytest.raises(
        InvalidArgumentTypeError, match=r"The 'source' argument of History\.from_json"
    ):
        History.from_json(3)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"The 'source' argument of History\.from_json"):
        History.from_json("{not json")
