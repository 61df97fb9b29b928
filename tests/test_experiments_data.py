"""Seeded data generators of the experiments: determinism, shapes, statistics."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
import pytest

from implicitbias.experiments import data


def test_sparse_linear_is_deterministic_and_seed_dependent() -> None:
    a = data.sparse_linear_task(300, seed=3)
    b = data.sparse_linear_task(300, seed=3)
    c = data.sparse_linear_task(300, seed=4)
    Xa, ya = a.sample(50)
    Xb, yb = b.sample(50)
    np.testing.assert_array_equal(Xa, Xb)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a.w_star, b.w_star)
    Xc, _ = c.sample(50)
    assert not np.array_equal(Xa, Xc)


def test_sparse_linear_statistics() -> None:
    task = data.sparse_linear_task(400, k=3, seed=0)
    assert task.w_star.shape == (400,)
    assert np.count_nonzero(task.w_star) == 3
    np.testing.assert_array_equal(np.abs(task.w_star[task.support]), np.ones(3))
    X, y = task.sample(2000)
    assert X.shape == (2000, 400) and X.dtype == np.float32 and y.dtype == np.float32
    assert set(np.unique(X).tolist()) == {-1.0, 1.0}
    np.testing.assert_allclose(X.mean(), 0.0, atol=0.01)
    # labels are exactly sign<w*, x> (never 0 for k = 3) and balanced
    np.testing.assert_array_equal(y, np.sign(X.astype(np.float64) @ task.w_star))
    np.testing.assert_allclose(y.mean(), 0.0, atol=0.06)


def test_train_and_test_streams_are_independent_and_chunking_invariant() -> None:
    task = data.sparse_linear_task(100, seed=1)
    X_tr, _ = task.sample(300)
    X_te, y_te = task.sample(300, stream="test")
    assert not np.array_equal(X_tr, X_te)
    for rows in (7, 128, 1000):
        parts = list(data.iter_test_chunks(task, 300, chunk_rows=rows))
        assert all(p[0].shape[0] <= rows for p in parts)
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), X_te)
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), y_te)
    # a larger training set extends, not replaces, the smaller one
    X_more, _ = task.sample(500)
    np.testing.assert_array_equal(X_more[:300], X_tr)


def test_large_margin_task_has_its_margin() -> None:
    task = data.large_margin_task(200, gamma=25.0, seed=0)
    np.testing.assert_allclose(np.linalg.norm(task.w_star), 1.0)
    X, y = task.sample(500)
    q = y * (X.astype(np.float64) @ task.w_star)
    assert q.min() >= 12.5 - 1e-4
    # orthogonal to w*, the inputs are standard normal
    P = X - np.outer(X @ task.w_star, task.w_star)
    np.testing.assert_allclose(P.std(), 1.0, atol=0.02)
    X2, y2 = data.large_margin_task(200, gamma=25.0, seed=0).sample(500)
    np.testing.assert_array_equal(X, X2)


def test_multiplication_table_completion_split() -> None:
    M = data.multiplication_table(9)
    np.testing.assert_allclose(M[3, 4], 12 / 81)
    np.testing.assert_allclose(M, M.T)
    assert np.linalg.matrix_rank(M) == 1
    D = data.matrix_completion_data(20, fraction=0.05, seed=2)
    assert D.train_rows.size == 20 and D.test_rows.size == 380
    both = set(zip(D.train_rows.tolist(), D.train_cols.tolist())) | set(
        zip(D.test_rows.tolist(), D.test_cols.tolist())
    )
    assert len(both) == 400  # a partition of all entries
    np.testing.assert_array_equal(D.train_values, D.X_star[D.train_rows, D.train_cols])
    D2 = data.matrix_completion_data(20, fraction=0.05, seed=2)
    np.testing.assert_array_equal(D.train_rows, D2.train_rows)


def test_modular_addition_split() -> None:
    D = data.modular_addition_data(11, train_fraction=0.4, seed=0)
    assert D.X_train.shape == (48, 22) and D.X_test.shape == (121 - 48, 22)
    np.testing.assert_array_equal(D.X_train.sum(1), np.full(48, 2.0))
    a, b = D.pairs_train[:, 0], D.pairs_train[:, 1]
    np.testing.assert_array_equal(D.y_train, (a + b) % 11)
    np.testing.assert_array_equal(D.X_train[np.arange(48), a], np.ones(48))
    np.testing.assert_array_equal(D.X_train[np.arange(48), 11 + b], np.ones(48))
    pairs = {tuple(p) for p in D.pairs_train.tolist()} | {tuple(p) for p in D.pairs_test.tolist()}
    assert len(pairs) == 121


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: data.sparse_linear_task(0), "'d'"),
        (lambda: data.sparse_linear_task(5, k=6), "'k'"),
        (lambda: data.sparse_linear_task(5, seed=-1), "'seed'"),
        (lambda: data.large_margin_task(5, gamma=-1.0), "'gamma'"),
        (lambda: data.matrix_completion_data(5, fraction=1.5), "'fraction'"),
        (lambda: data.modular_addition_data(1), "'p'"),
        (lambda: data.sparse_linear_task(5).sample(3, stream="val"), "'stream'"),
    ],
)
def test_bad_arguments(call: Callable[[], object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def test_default_data_is_unchanged_bit_for_bit() -> None:
    # Digests recorded with the generators as they were before data_source="reference" was
    # added (same calls, default data_source): the default samples must never change.
    t = data.sparse_linear_task(50, k=3, seed=7)
    got = _digest(t.w_star, t.support, *t.sample(40), *t.sample(30, stream="test"))
    assert got == "8cb8803dafea2cdf"
    t = data.large_margin_task(40, gamma=25.0, seed=7)
    assert _digest(t.w_star, *t.sample(40), *t.sample(30, stream="test")) == "bfcd9ac75172955f"
    D = data.matrix_completion_data(13, fraction=0.1, seed=7)
    got = _digest(
        D.X_star,
        D.train_rows,
        D.train_cols,
        D.train_values,
        D.test_rows,
        D.test_cols,
        D.test_values,
    )
    assert got == "e5bfb2391bdba940"
    M = data.modular_addition_data(7, train_fraction=0.4, seed=7)
    got = _digest(M.X_train, M.y_train, M.X_test, M.y_test, M.pairs_train, M.pairs_test)
    assert got == "26b18e255f2cef1c"
