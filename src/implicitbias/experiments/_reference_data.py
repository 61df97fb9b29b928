"""The samples of the paper's published code, drawn the way it draws them (THEORY §6).

The paper's code seeds torch's global CPU generator with ``torch.manual_seed(seed)`` and draws
its data with a fixed sequence of ``torch`` calls. Here the same calls, in the same order, shapes
and dtypes, draw from a private CPU :class:`torch.Generator` seeded with the same seed: it is the
same Mersenne-Twister engine as the global CPU generator, so it yields the same numbers, and the
caller's global random state is never read or written (nor disturbed by another thread drawing
at the same time). The samples of the same seeds on CUDA are different; these are the CPU ones.

Large sets are drawn in chunks of rows: ``randint`` consumes one engine output per entry in
order, so chunking leaves its values unchanged; ``randn`` fills float32 tensors of at least 16
entries in blocks of 16 and redraws the last 16 of a tensor whose size is not a multiple of 16,
so every chunk but the last has a multiple of 16 entries and the last at least 16 (see
:func:`draw_schedule`), which reproduces one call over the whole set.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, and its published code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from implicitbias._validation import check_int, fail, fail_type

__all__ = [
    "DataSource",
    "DATA_SOURCES",
    "REFERENCE_SEEDS",
    "ReferenceSample",
    "check_data_source",
    "check_reference_seed",
    "reference_count",
    "reference_permutation",
    "reference_sparse",
    "reference_large_margin",
    "reference_test_chunks",
    "reference_rows",
    "reference_test_iter",
    "reference_sizes",
    "split",
    "rechunk",
]

DataSource = Literal["library", "reference"]
DATA_SOURCES: tuple[str, ...] = ("library", "reference")

#: The data seeds of the paper's figures (THEORY §6): pass one as ``seed`` with
#: ``data_source="reference"`` to get the samples of that figure.
REFERENCE_SEEDS: dict[str, int] = {
    "sparse-linear": 24181325235,
    "matrix-completion": 35235125,
    "modular-addition": 2435253235,
}

#: The integer dtype of the paper's code's draws (torch's default; every draw names its dtype
#: and device so that a caller's ``torch.set_default_dtype`` or default device changes nothing).
_INT = torch.int64

#: Entries per drawn chunk of a test set (a multiple of 16 rows at least).
_CHUNK_ENTRIES = 1 << 22


def check_data_source(data_source: object, func: str) -> str:
    """``"library"`` (the library's seeded generator) or ``"reference"`` (the paper's code)."""
    if not isinstance(data_source, str):
        raise fail_type(func, "data_source", "one of 'library', 'reference'", data_source)
    if data_source not in DATA_SOURCES:
        raise fail(
            func,
            "data_source",
            "one of 'library', 'reference'",
            repr(data_source),
            "'reference' draws the samples of the paper's published code; 'library' (the "
            "default) the library's own seeded generator.",
        )
    return data_source


def check_reference_seed(seed: int, func: str) -> int:
    """A seed ``torch.manual_seed`` accepts (below 2**64)."""
    if seed >= 1 << 64:
        raise fail(
            func,
            "seed",
            "below 2**64 with data_source='reference' (a seed of torch.manual_seed)",
            repr(seed),
        )
    return seed


def reference_count(fraction: float, total: int) -> int:
    """The paper's code's training-set size ``int(fraction · total)`` (truncated, not rounded:
    3763 of the 97² modular-addition pairs at 40%, 470 of the 97² entries at 5%)."""
    return int(fraction * total)


def reference_sizes(func: str, seed: int, n: int | None, n_test: int | None) -> tuple[int, int]:
    """The checked seed and set sizes of a reference linear task (both sizes are required)."""
    check_reference_seed(seed, func)
    sizes = []
    for arg, value in (("n", n), ("n_test", n_test)):
        if value is None:
            raise fail(
                func,
                arg,
                "given with data_source='reference' (the paper's code draws the training set, "
                "then the test set, so their sizes fix every later draw)",
                "None",
            )
        sizes.append(check_int(value, func, arg, minimum=1))
    return sizes[0], sizes[1]


def split(
    func: str,
    arg: str,
    fraction: float,
    total: int,
    seed: int,
    source: str,
    library: Callable[[int], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the training and test items of ``range(total)``.

    ``"library"``: the first ``round(fraction · total)`` of ``library(total)`` (a seeded
    permutation), each part sorted. ``"reference"``: the first ``int(fraction · total)`` of
    ``torch.randperm(total)`` after ``torch.manual_seed(seed)``, in its order (the paper's code).
    """
    reference = check_data_source(source, func) == "reference"
    n_train = reference_count(fraction, total) if reference else int(round(fraction * total))
    if not 1 <= n_train < total:
        what = "observed entries" if arg == "fraction" else "training pairs"
        raise fail(func, arg, f"giving between 1 and {total - 1} {what}", repr(fraction))
    if reference:
        perm = reference_permutation(total, check_reference_seed(seed, func))
        return perm[:n_train], perm[n_train:]
    perm = library(total)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _generator(seed: int) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed(seed)
    return gen


def reference_permutation(total: int, seed: int) -> np.ndarray:
    """``torch.manual_seed(seed); torch.randperm(total)`` as int64 numpy."""
    return torch.randperm(total, generator=_generator(seed), dtype=_INT, device="cpu").numpy()


@dataclass(frozen=True, eq=False)
class ReferenceSample:
    """The drawn training set of a reference linear task, and where its test set starts.

    Attributes
    ----------
    X_train : ndarray of shape (n, d), float32
    y_train : ndarray of shape (n,), float32
    n_test : int
        Size of the test set the sample was drawn with (the draws after it depend on it).
    test_state : torch.Tensor
        The generator state just before the test inputs are drawn.
    w : torch.Tensor
        The target as the code holds it: the k signs (int64) of the sparse task, the unit
        vector (float32, length d) of the large-margin task.
    w_star : ndarray of shape (d,)
        The target as a float64 vector of length d.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    n_test: int
    test_state: torch.Tensor
    w: torch.Tensor
    w_star: np.ndarray


def draw_schedule(rows: int, d: int) -> list[int]:
    """Row counts of the chunks that reproduce one draw of ``rows × d`` entries."""
    step = max(16, (_CHUNK_ENTRIES // max(d, 1)) // 16 * 16)
    sizes = [step] * (rows // step)
    rest = rows - step * len(sizes)
    if rest:
        if rest * d < 16 and sizes:
            sizes[-1] += rest  # a last chunk under 16 entries would take randn's other path
        else:
            sizes.append(rest)
    return sizes


def _signs(gen: torch.Generator, rows: int, d: int) -> torch.Tensor:
    return (_randint(gen, (rows, d)) * 2 - 1).to(torch.float32)


def _randint(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=gen, dtype=_INT, device="cpu")


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float32, device="cpu")


def _sparse_labels(X: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    k = w.numel()
    return ((X[:, :k] @ w.to(torch.float32) > 0).to(torch.float32) * 2 - 1).to(torch.float32)


def _margin_rows(z: torch.Tensor, w: torch.Tensor, gamma: float) -> tuple[torch.Tensor, ...]:
    y = ((z @ w > 0).to(torch.float32) * 2 - 1).to(torch.float32)
    return z + y[:, None] * (gamma / 2) * w[None, :], y


def reference_sparse(d: int, k: int, n: int, n_test: int, seed: int) -> ReferenceSample:
    """Train inputs ``randint(0, 2, (n, d))·2 − 1``, test inputs likewise, then the k signs."""
    gen = _generator(seed)
    X = _signs(gen, n, d)
    state = gen.get_state()
    for rows in draw_schedule(n_test, d):  # drawn only to advance the engine to w
        _randint(gen, (rows, d))
    w = _randint(gen, (k,)) * 2 - 1
    y = _sparse_labels(X, w)
    w_star = np.zeros(d)
    w_star[:k] = w.numpy()
    return ReferenceSample(X.numpy(), y.numpy(), n_test, state, w, w_star)


def reference_large_margin(d: int, gamma: float, n: int, n_test: int, seed: int) -> ReferenceSample:
    """w = ``randn(d)`` normalised, then train z = ``randn(n, d)``; the test z come next."""
    gen = _generator(seed)
    w = _randn(gen, d)
    w = w / w.norm()
    z = _randn(gen, n, d)
    state = gen.get_state()
    X, y = _margin_rows(z, w, gamma)
    return ReferenceSample(X.numpy(), y.numpy(), n_test, state, w, w.numpy().astype(np.float64))


def reference_test_chunks(
    ref: ReferenceSample, kind: str, d: int, gamma: float, n: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The first ``n`` test rows (``n ≤ ref.n_test``), in the chunks of :func:`draw_schedule`."""
    gen = torch.Generator(device="cpu")
    gen.set_state(ref.test_state)
    done = 0
    for rows in draw_schedule(ref.n_test, d):
        if done >= n:
            return
        if kind == "sparse":
            X = _signs(gen, rows, d)
            y = _sparse_labels(X, ref.w)
        else:
            X, y = _margin_rows(_randn(gen, rows, d), ref.w, gamma)
        take = min(rows, n - done)
        yield X[:take].numpy(), y[:take].numpy()
        done += take


def rechunk(
    parts: Iterable[tuple[np.ndarray, np.ndarray]], chunk_rows: int, *, limit: int | None = None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The rows of ``parts`` (the first ``limit`` of them) again, in chunks of ``chunk_rows``
    (the last may be shorter); each row is copied at most once. Used by both data sources."""
    pend_X: list[np.ndarray] = []
    pend_y: list[np.ndarray] = []
    have = 0
    left = -1 if limit is None else limit
    for X, y in parts:
        if left == 0:
            break
        if left > 0:
            X, y = X[:left], y[:left]
            left -= X.shape[0]
        start = 0
        while start < X.shape[0]:
            take = min(chunk_rows - have, X.shape[0] - start)
            pend_X.append(X[start : start + take])
            pend_y.append(y[start : start + take])
            have += take
            start += take
            if have == chunk_rows:
                yield np.concatenate(pend_X), np.concatenate(pend_y)
                pend_X, pend_y, have = [], [], 0
    if have:
        yield np.concatenate(pend_X), np.concatenate(pend_y)


def _check_size(task: Any, n: int, func: str, arg: str, *, test: bool) -> ReferenceSample:
    ref: ReferenceSample = task.reference
    size = ref.n_test if test else ref.X_train.shape[0]
    if n > size:
        which = "n_test" if test else "n"
        raise fail(
            func,
            arg,
            f"at most {size}, the {which} this data_source='reference' task was drawn with",
            repr(n),
            f"The paper's code draws sets of fixed sizes; build the task with a larger {which}.",
        )
    return ref


def reference_rows(task: Any, n: int, *, test: bool) -> tuple[np.ndarray, np.ndarray]:
    """``task.sample(n)`` of a reference :class:`~implicitbias.experiments.data.LinearTask`:
    the first ``n`` rows of its training (or test) set, as fresh arrays."""
    ref = _check_size(task, n, "LinearTask.sample", "n", test=test)
    if not test:
        return ref.X_train[:n].copy(), ref.y_train[:n].copy()
    parts = list(reference_test_chunks(ref, task.kind, task.d, task.gamma, n))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def reference_test_iter(
    task: Any, n_test: int, chunk_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``iter_test_chunks`` of a reference linear task."""
    ref = _check_size(task, n_test, "iter_test_chunks", "n_test", test=True)
    parts = reference_test_chunks(ref, task.kind, task.d, task.gamma, n_test)
    return rechunk(parts, chunk_rows)
