"""The linear predictors of the diagonal runs: snapshots of w, cosines, one-pass test metrics.

:func:`evaluate_linear` is re-exported by :mod:`implicitbias.experiments.diagonal`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from implicitbias._validation import fail
from implicitbias.experiments.data import LinearTask, iter_test_chunks

__all__ = ["Snapshots", "cosine", "evaluate_linear"]


class Snapshots:
    """The snapshots of w = u² − v² taken at the evaluations, by index in the schedule.

    With a ``path`` each snapshot is also appended to a binary file (an int64 index, then ``d``
    float32 values), so that a resumed run gets back the snapshots of the evaluations its
    checkpoint holds; a record cut short by a killed process is ignored.
    """

    def __init__(self, d: int, path: Any = None, *, resume: bool = False) -> None:
        self.d = d
        self.path = None if path is None else Path(path)
        self.items: dict[int, np.ndarray] = {}
        if self.path is not None and resume and self.path.exists():
            raw = self.path.read_bytes()
            size = 8 + 4 * d
            for start in range(0, len(raw) - size + 1, size):
                i = int(np.frombuffer(raw, dtype="<i8", count=1, offset=start)[0])
                w = np.frombuffer(raw, dtype="<f4", count=d, offset=start + 8)
                self.items[i] = w.copy()

    def add(self, i: int, w: np.ndarray) -> None:
        with np.errstate(over="ignore"):  # a diverging run: |w| beyond float32 is inf
            w32 = np.ascontiguousarray(w, dtype="<f4")
        self.items[i] = w32
        if self.path is not None:
            with open(self.path, "ab") as fh:
                fh.write(np.int64(i).astype("<i8").tobytes() + w32.tobytes())

    def stack(self, indices: list[int]) -> np.ndarray:
        missing = [i for i in indices if i not in self.items]
        if missing:
            raise fail(
                "run",
                "resume",
                "a run whose saved snapshots cover its checkpoint",
                f"no snapshot of evaluations {missing[:5]}",
            )
        return np.stack([self.items[i] for i in indices]) if indices else np.zeros((0, self.d))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """cos(a, b), computed on a/max|a| and b/max|b| (no overflow for a diverging run); NaN for a
    zero or non-finite vector."""
    sa, sb = float(np.max(np.abs(a), initial=0.0)), float(np.max(np.abs(b), initial=0.0))
    if not (0.0 < sa < math.inf and 0.0 < sb < math.inf):
        return math.nan
    a, b = a / sa, b / sb
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def evaluate_linear(
    task: LinearTask, n_test: int, W: np.ndarray, *, chunk_rows: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Test accuracy and mean logistic loss of many linear predictors in one pass.

    Parameters
    ----------
    task : LinearTask
        The task whose test stream is read (in seeded chunks).
    n_test : int
        Number of test points.
    W : ndarray of shape (m, d)
        The predictors, one per row.
    chunk_rows : int, default 512
        Test rows per chunk (memory ``chunk_rows · (d + m) · 4`` bytes).

    Returns
    -------
    accuracy, loss : ndarray of shape (m,)
        Accuracy counts f = 0 as half correct.
    """
    Wt = torch.from_numpy(np.ascontiguousarray(W, dtype=np.float32).T)  # (d, m)
    correct = torch.zeros(W.shape[0], dtype=torch.float64)
    loss = torch.zeros(W.shape[0], dtype=torch.float64)
    for Xc, yc in iter_test_chunks(task, n_test, chunk_rows=chunk_rows):
        F = torch.from_numpy(Xc) @ Wt  # (rows, m)
        yt = torch.from_numpy(yc)[:, None]
        q = (F * yt).double()
        correct += (q > 0).double().sum(0) + 0.5 * (q == 0).double().sum(0)
        loss += torch.nn.functional.softplus(-q).sum(0)
    return (correct / n_test).numpy(), (loss / n_test).numpy()
