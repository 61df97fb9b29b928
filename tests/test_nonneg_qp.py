"""Tests of the shared bound-constrained QP solvers (``implicitbias._nonneg_qp``).

``min_{x >= 0} 1/2 x^T Q x - b^T x`` with ``Q`` PSD: KKT conditions checked by hand, the two
solvers against each other and against scipy's NNLS, and the single-thread BLAS guard.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize

from implicitbias import _nonneg_qp as qp


def _kkt(Q: np.ndarray, b: np.ndarray, x: np.ndarray) -> tuple[float, float, float]:
    """(min x, max violated gradient, max |gradient| on the support), gradient = Qx - b."""
    g = Q @ x - b
    on = x > 0
    return (
        float(np.min(x)),
        float(max(0.0, -np.min(g[~on]))) if np.any(~on) else 0.0,
        float(np.max(np.abs(g[on]))) if np.any(on) else 0.0,
    )


def _rbf_q(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    r = np.linalg.norm(X[:, :3], axis=1)
    y = np.where(r > np.median(r), 1.0, -1.0)
    D2 = np.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
    return np.outer(y, y) * np.exp(-D2 / (2.0 * d))


def _linear_q(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    y = np.sign(X @ rng.standard_normal(d))
    Z = y[:, None] * X
    return Z @ Z.T


@pytest.mark.parametrize("kind", ["rbf", "linear-rank-5"])
def test_svm_dual_satisfies_kkt(kind: str) -> None:
    Q = _rbf_q(400, 10, seed=1) if kind == "rbf" else _linear_q(400, 5, seed=1)
    out = qp.solve_nonneg_qp(Q, tol=1e-9, chunk=16)
    assert not out.diverged
    xmin, viol, stat = _kkt(Q, np.ones(400), out.a)
    assert xmin >= 0
    assert viol <= 1e-9
    assert stat <= 1e-9
    # zero duality gap of the SVM dual: a^T Q a = sum(a)
    np.testing.assert_allclose(out.a @ Q @ out.a, out.a.sum(), rtol=1e-9)


def test_two_solvers_agree_on_positive_definite_q() -> None:
    """Working sets + block pivoting and Lawson--Hanson reach the same (unique) minimizer."""
    Q = _rbf_q(300, 8, seed=2)
    a = qp.solve_nonneg_qp(Q, tol=1e-9, chunk=16).a
    mu, _, status = qp.lawson_hanson(
        Q, np.ones(300), np.ones(300, dtype=bool), tol=None, max_iter=10_000
    )
    assert status == "optimal"
    np.testing.assert_allclose(a, mu, rtol=1e-7, atol=1e-9 * np.max(mu))
    np.testing.assert_array_equal(np.flatnonzero(a > 0), np.flatnonzero(mu > 0))


def test_lawson_hanson_exchange_solves_the_singular_svm_dual() -> None:
    """b = 1 outside the range of a rank-3 Q: exchange steps reach the working-set answer."""
    Q = _linear_q(200, 3, seed=4)
    a = qp.solve_nonneg_qp(Q, tol=1e-9, chunk=16).a
    ones = np.ones(200)
    mu, _, status = qp.lawson_hanson(
        Q, ones, np.ones(200, dtype=bool), tol=1e-10, max_iter=10_000, exchange=True
    )
    assert status == "optimal"
    _, viol, stat = _kkt(Q, ones, mu)
    assert viol <= 1e-9
    assert stat <= 1e-9
    np.testing.assert_allclose(mu.sum(), a.sum(), rtol=1e-9)  # ||h||^2, unique
    # without exchange steps a dependent violated column is skipped: not optimal here
    mu0, _, _ = qp.lawson_hanson(Q, ones, np.ones(200, dtype=bool), tol=1e-10, max_iter=10_000)
    assert _kkt(Q, ones, mu0)[1] > 1e-6


def test_lawson_hanson_exchange_reports_an_unbounded_dual() -> None:
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    Z = np.array([1.0, -1.0, 1.0])[:, None] * X
    _, _, status = qp.lawson_hanson(
        Z @ Z.T, np.ones(3), np.ones(3, dtype=bool), tol=1e-10, max_iter=100, exchange=True
    )
    assert status == "unbounded"


def test_lawson_hanson_matches_scipy_nnls_with_candidates() -> None:
    rng = np.random.default_rng(3)
    A = rng.standard_normal((40, 25))
    t = rng.standard_normal(40)
    cand = rng.random(25) < 0.6
    mu, _, status = qp.lawson_hanson(A.T @ A, A.T @ t, cand, tol=None, max_iter=1000)
    ref, _ = scipy.optimize.nnls(A[:, cand], t)
    assert status == "optimal"
    assert np.all(mu[~cand] == 0)
    np.testing.assert_allclose(mu[cand], ref, atol=1e-10)


def test_not_separable_dual_is_unbounded() -> None:
    """Duplicate points with opposite labels: the SVM dual is unbounded, and the answer shows it.

    The solver either reports divergence or returns a dual whose margin bound
    ``sqrt(a^T Q a) / sum(a)`` is below the separability floor (what kernel_svm checks).
    """
    X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    y = np.array([1.0, -1.0, 1.0])
    Z = y[:, None] * X
    Q = Z @ Z.T
    out = qp.solve_nonneg_qp(Q, tol=1e-9)
    bound = np.sqrt(max(out.a @ Q @ out.a, 0.0)) / out.a.sum()
    assert out.diverged or bound <= qp.SEPARABILITY_FLOOR


def test_blas_single_thread_is_restored() -> None:
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    with qp.blas_single_thread():
        inside = [
            i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"
        ]
    after = [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]
    assert all(k == 1 for k in inside)
    assert after == before
