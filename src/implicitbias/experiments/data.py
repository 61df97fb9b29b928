"""Seeded data generators of the paper's four experiments (THEORY §6).

Every generator takes an explicit integer ``seed`` and draws from its own
:class:`numpy.random.Generator` built from ``SeedSequence([seed, stream, block])``; global random
state (numpy's or torch's) is never read or written. Separate *streams* feed the target, the
training set and the test set, so that asking for more test points never changes the training
set. With ``data_source="reference"`` the generators draw instead the exact samples of the
paper's published code for the seed (its torch CPU random calls; global state untouched).

Large test sets (the sparse-linear experiment at paper scale has 10⁴ test points in
d = 10⁵ dimensions, 4 GB in float32) are never held in memory: they are defined as a sequence of
fixed-size *blocks* of rows, each drawn from its own seed, and read through
:func:`iter_test_chunks` in chunks of any size with identical content.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817, Section 3 and Appendix F.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from implicitbias._validation import check_int, check_nonnegative, check_positive, fail
from implicitbias.experiments import _reference_data as _ref
from implicitbias.experiments._reference_data import REFERENCE_SEEDS, DataSource, ReferenceSample

__all__ = [
    "DataSource",
    "REFERENCE_SEEDS",
    "LinearTask",
    "CompletionData",
    "ModularAdditionData",
    "sparse_linear_task",
    "large_margin_task",
    "iter_test_chunks",
    "multiplication_table",
    "matrix_completion_data",
    "modular_addition_data",
]

#: Rows per seeded block of a linear task's sample; a sample of n rows is the concatenation of
#: ceil(n / BLOCK_ROWS) blocks, so chunked reads see the same rows whatever the chunk size.
BLOCK_ROWS = 128

_STREAM_TARGET, _STREAM_TRAIN, _STREAM_TEST, _STREAM_SPLIT = 0, 1, 2, 3


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *keys]))


def _random_signs(rng: np.random.Generator, rows: int, d: int) -> np.ndarray:
    """Uniform ±1 entries as float32, from random bytes (8 entries per byte)."""
    nbytes = (rows * d + 7) // 8
    bits = np.unpackbits(np.frombuffer(rng.bytes(nbytes), dtype=np.uint8))[: rows * d]
    out = bits.reshape(rows, d).astype(np.float32)
    out *= 2.0
    out -= 1.0
    return out


@dataclass(frozen=True)
class LinearTask:
    r"""A binary linear classification task ``y = sign⟨w*, x⟩`` with a seeded input law.

    Attributes
    ----------
    kind : {"sparse", "large_margin"}
        ``"sparse"``: x ~ U({±1}^d), w* supported on ``k`` coordinates with ±1 signs.
        ``"large_margin"``: z ~ N(0, I_d), y = sign⟨z, w*⟩, x = z + (γ/2)·y·w*, w* a random
        unit vector (its ℓ2 margin is at least γ/2).
    d : int
        Input dimension.
    w_star : ndarray of shape (d,)
        The target direction (float64).
    seed : int
        The seed all samples derive from.
    gamma : float
        γ of the large-margin task (0 for the sparse task).
    support : ndarray of int
        Indices of the nonzero coordinates of ``w_star`` (sparse task; all of them otherwise).
    reference : ReferenceSample or None
        The sets of a ``data_source="reference"`` task (None: the library's streams).
    """

    kind: str
    d: int
    w_star: np.ndarray
    seed: int
    gamma: float
    support: np.ndarray
    reference: ReferenceSample | None = None

    @property
    def data_source(self) -> DataSource:
        """``"reference"`` (the paper's code's samples) or ``"library"``."""
        return "library" if self.reference is None else "reference"

    def block(self, stream: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Block ``index`` of a stream: ``(X, y)`` with ``BLOCK_ROWS`` rows, float32."""
        rng = _rng(self.seed, stream, index)
        if self.kind == "sparse":
            X = _random_signs(rng, BLOCK_ROWS, self.d)
            # ⟨w*, x⟩ is an odd sum of ±1 (k odd) or may vanish (k even); sign(0) -> +1.
            score = X[:, self.support].astype(np.float64) @ self.w_star[self.support]
            y = np.where(score >= 0, 1.0, -1.0).astype(np.float32)
            return X, y
        Z = rng.standard_normal((BLOCK_ROWS, self.d), dtype=np.float32)
        score = Z.astype(np.float64) @ self.w_star
        y = np.where(score >= 0, 1.0, -1.0)
        X = Z + (0.5 * self.gamma * y[:, None] * self.w_star[None, :]).astype(np.float32)
        return X, y.astype(np.float32)

    def sample(self, n: int, *, stream: str = "train") -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` rows of the training or test stream, as float32 ``(X, y)``.

        Parameters
        ----------
        n : int
            Number of examples (for a ``data_source="reference"`` task: at most the size the
            set was drawn with; the first ``n`` rows of that set).
        stream : {"train", "test"}
            Which stream; the two are independent.

        Returns
        -------
        X : ndarray of shape (n, d), float32
        y : ndarray of shape (n,), float32 in {-1, +1}
        """
        n = check_int(n, "LinearTask.sample", "n", minimum=1)
        if self.reference is not None:
            return _ref.reference_rows(self, n, test=_stream_id(stream) == _STREAM_TEST)
        parts = list(_iter_rows(self, _stream_id(stream), n, chunk_rows=n))
        return parts[0]


def _stream_id(stream: str) -> int:
    if stream == "train":
        return _STREAM_TRAIN
    if stream == "test":
        return _STREAM_TEST
    raise fail("LinearTask.sample", "stream", "one of 'train', 'test'", repr(stream))


def _iter_rows(
    task: LinearTask, stream: int, n: int, *, chunk_rows: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Rows 0..n-1 of a stream in chunks of ``chunk_rows`` (the last may be shorter)."""
    blocks = (task.block(stream, i) for i in range(-(-n // BLOCK_ROWS)))
    return _ref.rechunk(blocks, chunk_rows, limit=n)


def iter_test_chunks(
    task: LinearTask, n_test: int, *, chunk_rows: int = 512
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """The test set of ``task`` (``n_test`` rows) in chunks, never all in memory at once.

    The content does not depend on ``chunk_rows``: concatenating the chunks gives
    ``task.sample(n_test, stream="test")``.

    Parameters
    ----------
    task : LinearTask
        The task.
    n_test : int
        Size of the test set.
    chunk_rows : int, default 512
        Rows per yielded chunk (memory: ``chunk_rows · d · 4`` bytes).

    Yields
    ------
    X : ndarray of shape (m, d), float32
    y : ndarray of shape (m,), float32
    """
    func = "iter_test_chunks"
    n_test = check_int(n_test, func, "n_test", minimum=1)
    chunk_rows = check_int(chunk_rows, func, "chunk_rows", minimum=1)
    if task.reference is None:
        yield from _iter_rows(task, _STREAM_TEST, n_test, chunk_rows=chunk_rows)
    else:
        yield from _ref.reference_test_iter(task, n_test, chunk_rows)


def sparse_linear_task(
    d: int,
    *,
    k: int = 3,
    seed: int = 0,
    data_source: DataSource = "library",
    n: int | None = None,
    n_test: int | None = None,
) -> LinearTask:
    r"""Sparse linear classification: x ~ U({±1}^d), y = sign⟨w*, x⟩, ‖w*‖₀ = k.

    The support of w* is ``k`` coordinates drawn uniformly without replacement, with independent
    uniform ±1 signs. With ``k`` odd (the paper's k = 3) ⟨w*, x⟩ is never 0; for even ``k`` a
    tie is labeled +1.

    With ``data_source="reference"`` the task holds the paper's code's CPU samples for ``seed``
    (the figure's: ``REFERENCE_SEEDS["sparse-linear"]``): train inputs ``randint(0, 2, (n, d))·2
    − 1``, test inputs likewise, then the signs ``randint(0, 2, (k,))·2 − 1`` of w* on the
    first ``k`` coordinates; a tie is labeled −1.

    Parameters
    ----------
    d : int
        Input dimension (the paper: 10⁵).
    k : int, default 3
        Sparsity of the target.
    seed : int, default 0
        Seed of the target and of both samples.
    data_source : {"library", "reference"}, default "library"
        The library's seeded streams, or the paper's code's samples.
    n, n_test : int, optional
        Training and test set sizes; required by (and only used by) ``"reference"``.

    Returns
    -------
    LinearTask
        Draw the training set with ``task.sample(n)`` and the test set with
        :func:`iter_test_chunks`.

    Examples
    --------
    >>> from implicitbias.experiments import data
    >>> task = data.sparse_linear_task(50, seed=0)
    >>> X, y = task.sample(8)
    >>> X.shape, sorted(set(X.ravel().tolist())), int((task.w_star != 0).sum())
    ((8, 50), [-1.0, 1.0], 3)

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817, Section 3.1 (Figure 1).
    """
    func = "sparse_linear_task"
    d = check_int(d, func, "d", minimum=1)
    k = check_int(k, func, "k", minimum=1)
    seed = check_int(seed, func, "seed", minimum=0)
    if k > d:
        raise fail(func, "k", f"at most d = {d}", repr(k))
    if _ref.check_data_source(data_source, func) == "reference":
        n, n_test = _ref.reference_sizes(func, seed, n, n_test)
        ref = _ref.reference_sparse(d, k, n, n_test, seed)
        return LinearTask("sparse", d, ref.w_star, seed, 0.0, np.arange(k), ref)
    rng = _rng(seed, _STREAM_TARGET)
    support = np.sort(rng.choice(d, size=k, replace=False))
    w_star = np.zeros(d)
    w_star[support] = rng.choice(np.array([-1.0, 1.0]), size=k)
    return LinearTask("sparse", d, w_star, seed, 0.0, support)


def large_margin_task(
    d: int,
    *,
    gamma: float = 25.0,
    seed: int = 0,
    data_source: DataSource = "library",
    n: int | None = None,
    n_test: int | None = None,
) -> LinearTask:
    r"""Linear classification with a large ℓ2 margin (the misgrokking data).

    w* is a uniformly random unit vector; z ~ N(0, I_d), y = sign⟨z, w*⟩ and
    x = z + (γ/2)·y·w*, so that every example has y⟨x, w*⟩ ≥ γ/2.

    With ``data_source="reference"`` the task holds the paper's code's CPU samples for ``seed``
    (float32 throughout): w* = ``randn(d)`` normalised, then train z = ``randn(n, d)``, then
    test z = ``randn(n_test, d)``; y = ``(z @ w* > 0)·2 − 1``, x = z + y·(γ/2)·w*.

    Parameters
    ----------
    d : int
        Input dimension (the paper: 10⁵).
    gamma : float, default 25.0
        γ ≥ 0, twice the guaranteed ℓ2 margin.
    seed : int, default 0
        Seed of the target and of both samples.
    data_source : {"library", "reference"}, default "library"
        The library's seeded streams, or the paper's code's samples.
    n, n_test : int, optional
        Training and test set sizes; required by (and only used by) ``"reference"``.

    Returns
    -------
    LinearTask

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817, Section 3.1 (misgrokking, Figure 3).
    """
    func = "large_margin_task"
    d = check_int(d, func, "d", minimum=1)
    gamma = check_nonnegative(gamma, func, "gamma")
    seed = check_int(seed, func, "seed", minimum=0)
    if _ref.check_data_source(data_source, func) == "reference":
        n, n_test = _ref.reference_sizes(func, seed, n, n_test)
        ref = _ref.reference_large_margin(d, gamma, n, n_test, seed)
        return LinearTask("large_margin", d, ref.w_star, seed, gamma, np.arange(d), ref)
    rng = _rng(seed, _STREAM_TARGET)
    w = rng.standard_normal(d)
    # the norm from an exactly rounded sum, not BLAS's dot (whose last bit depends on the
    # CPU's kernel): the same w* on every machine
    w /= math.sqrt(math.fsum(w * w))
    return LinearTask("large_margin", d, w, seed, gamma, np.arange(d))


def multiplication_table(d: int) -> np.ndarray:
    r"""The rank-1 matrix X*_ij = i·j/d² for i, j = 0..d−1 (float64, symmetric).

    Examples
    --------
    >>> from implicitbias.experiments import data
    >>> M = data.multiplication_table(4)
    >>> float(M[3, 2]), int(np.linalg.matrix_rank(M))
    (0.375, 1)
    """
    d = check_int(d, "multiplication_table", "d", minimum=1)
    v = np.arange(d, dtype=np.float64) / d
    return np.outer(v, v)


@dataclass(frozen=True)
class CompletionData:
    """Observed and held-out entries of a matrix completion problem.

    Attributes
    ----------
    X_star : ndarray of shape (d, d)
        The ground truth.
    train_rows, train_cols : ndarray of int64, shape (n_train,)
        Observed entries (ordered pairs; (i, j) and (j, i) are drawn independently).
    train_values : ndarray of shape (n_train,)
        ``X_star[train_rows, train_cols]``.
    test_rows, test_cols, test_values :
        All other entries.
    """

    X_star: np.ndarray
    train_rows: np.ndarray
    train_cols: np.ndarray
    train_values: np.ndarray
    test_rows: np.ndarray
    test_cols: np.ndarray
    test_values: np.ndarray

    @property
    def d(self) -> int:
        return int(self.X_star.shape[0])


def matrix_completion_data(
    d: int,
    *,
    fraction: float = 0.05,
    seed: int = 0,
    X_star: np.ndarray | None = None,
    data_source: DataSource = "library",
) -> CompletionData:
    r"""Observe ``round(fraction · d²)`` uniformly random entries of a d×d matrix.

    The entries are ordered pairs (i, j) drawn without replacement from all d² of them (as in
    the paper's code); the test set is every other entry.

    With ``data_source="reference"`` the observed entries are the paper's code's for ``seed``
    (``REFERENCE_SEEDS["matrix-completion"]``): the first ``int(fraction · d²)`` (470 for d = 97)
    of one CPU ``randperm(d·d)``, i = perm // d, j = perm % d, in that order.

    Parameters
    ----------
    d : int
        Matrix size (the paper: 97).
    fraction : float, default 0.05
        Fraction of observed entries, in (0, 1).
    seed : int, default 0
        Seed of the observed set.
    X_star : ndarray of shape (d, d), optional
        Ground truth; default :func:`multiplication_table`.
    data_source : {"library", "reference"}, default "library"
        The library's seeded split (entries in row-major order), or the paper's code's.

    Returns
    -------
    CompletionData

    Examples
    --------
    >>> from implicitbias.experiments import data
    >>> D = data.matrix_completion_data(20, fraction=0.1, seed=0)
    >>> D.train_rows.shape, D.test_rows.shape
    ((40,), (360,))
    """
    func = "matrix_completion_data"
    d = check_int(d, func, "d", minimum=1)
    fraction = check_positive(fraction, func, "fraction")
    if fraction >= 1:
        raise fail(func, "fraction", "in (0, 1)", repr(fraction))
    seed = check_int(seed, func, "seed", minimum=0)
    M = multiplication_table(d) if X_star is None else np.asarray(X_star, dtype=np.float64)
    if M.shape != (d, d):
        raise fail(func, "X_star", f"of shape ({d}, {d})", f"shape {M.shape}")
    library = _rng(seed, _STREAM_SPLIT).permutation
    tr, te = _ref.split(func, "fraction", fraction, d * d, seed, data_source, library)
    rows_tr, cols_tr = np.divmod(tr, d)
    rows_te, cols_te = np.divmod(te, d)
    return CompletionData(
        X_star=M,
        train_rows=rows_tr.astype(np.int64),
        train_cols=cols_tr.astype(np.int64),
        train_values=M[rows_tr, cols_tr],
        test_rows=rows_te.astype(np.int64),
        test_cols=cols_te.astype(np.int64),
        test_values=M[rows_te, cols_te],
    )


@dataclass(frozen=True)
class ModularAdditionData:
    """Modular addition (a, b) ↦ (a + b) mod p, inputs the concatenated one-hots of a and b.

    Attributes
    ----------
    p : int
        The modulus (and number of classes).
    X_train, X_test : ndarray of shape (n, 2p), float32
        ``[onehot(a), onehot(b)]``.
    y_train, y_test : ndarray of int64
        ``(a + b) mod p``.
    pairs_train, pairs_test : ndarray of shape (n, 2), int64
        The pairs ``(a, b)``.
    """

    p: int
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    pairs_train: np.ndarray
    pairs_test: np.ndarray


def modular_addition_data(
    p: int, *, train_fraction: float = 0.4, seed: int = 0, data_source: DataSource = "library"
) -> ModularAdditionData:
    r"""All p² pairs of modular addition, split at random into train and test.

    With ``data_source="reference"`` the split is the paper's code's for ``seed``
    (``REFERENCE_SEEDS["modular-addition"]``): pairs listed with ``a`` outer, ``b`` inner; the
    first ``int(train_fraction·p²)`` (3763 for p = 97) of one CPU ``randperm(p²)``, in order.

    Parameters
    ----------
    p : int
        The modulus (the paper: 97).
    train_fraction : float, default 0.4
        Fraction of the p² pairs used for training, in (0, 1).
    seed : int, default 0
        Seed of the split.
    data_source : {"library", "reference"}, default "library"
        The library's seeded split (pairs in sorted order), or the paper's code's.

    Returns
    -------
    ModularAdditionData

    Examples
    --------
    >>> from implicitbias.experiments import data
    >>> D = data.modular_addition_data(5, train_fraction=0.4, seed=0)
    >>> D.X_train.shape, D.X_test.shape, D.X_train.sum(axis=1).tolist()[:3]
    ((10, 10), (15, 10), [2.0, 2.0, 2.0])
    """
    func = "modular_addition_data"
    p = check_int(p, func, "p", minimum=2)
    train_fraction = check_positive(train_fraction, func, "train_fraction")
    if train_fraction >= 1:
        raise fail(func, "train_fraction", "in (0, 1)", repr(train_fraction))
    seed = check_int(seed, func, "seed", minimum=0)
    library = _rng(seed, _STREAM_SPLIT).permutation
    tr, te = _ref.split(func, "train_fraction", train_fraction, p * p, seed, data_source, library)
    a, b = np.divmod(np.arange(p * p), p)

    def build(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = np.zeros((idx.size, 2 * p), dtype=np.float32)
        X[np.arange(idx.size), a[idx]] = 1.0
        X[np.arange(idx.size), p + b[idx]] = 1.0
        return (
            X,
            ((a[idx] + b[idx]) % p).astype(np.int64),
            np.stack([a[idx], b[idx]], 1).astype(np.int64),
        )

    X_tr, y_tr, P_tr = build(tr)
    X_te, y_te, P_te = build(te)
    return ModularAdditionData(p, X_tr, y_tr, X_te, y_te, P_tr, P_te)
