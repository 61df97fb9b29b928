"""Minimum nuclear-norm completion: closed form, fast route against the SDP, recovery, errors."""

from __future__ import annotations

import numpy as np
import pytest

import implicitbias as ib


def _instance(d: int, p: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, 2))
    Xs = A @ A.T - 0.5 * np.outer(A[:, 0], A[:, 0])  # symmetric, rank 2
    mask = rng.random((d, d)) < p
    r, c = np.nonzero(mask)
    return Xs, r, c


def test_closed_form() -> None:
    res = ib.min_nuclear_norm_completion(2, [0, 0], [0, 1], [1.0, 1.0])
    np.testing.assert_allclose(res.W, np.ones((2, 2)), atol=1e-5)
    np.testing.assert_allclose(res.nuclear_norm, 2.0, rtol=1e-6)
    assert res.status == "optimal"


@pytest.mark.parametrize(("d", "p", "seed"), [(20, 0.5, 0), (40, 0.3, 0)])
def test_fast_matches_sdp(d: int, p: float, seed: int) -> None:
    Xs, r, c = _instance(d, p, seed)
    fast = ib.min_nuclear_norm_completion(d, r, c, Xs[r, c], solver="alm")
    ref = ib.min_nuclear_norm_completion(d, r, c, Xs[r, c], solver="cvxpy")
    assert fast.solver == "alm" and ref.solver == "cvxpy:SCS"
    # the SDP's own certificate (gap from its dual λ rescaled to ‖Y‖_op ≤ 1)
    assert ref.status == "optimal" and ref.relative_gap <= 1e-6
    np.testing.assert_allclose(fast.nuclear_norm, ref.nuclear_norm, rtol=1e-4)
    np.testing.assert_allclose(fast.W, ref.W, atol=1e-3 * np.abs(Xs).max())
    assert fast.relative_gap <= 1e-6
    assert fast.max_violation <= 1e-6 * np.abs(Xs).max()
    # the certificate: supported on Ω, symmetric, ‖Y‖_op ≤ 1, ⟨Y, M⟩ = dual objective
    Y = fast.dual
    off = np.ones((d, d), dtype=bool)
    off[r, c] = False
    off[c, r] = False
    np.testing.assert_array_equal(Y[off], 0.0)
    assert np.abs(np.linalg.eigvalsh(Y)).max() <= 1 + 1e-9
    np.testing.assert_allclose(np.sum(Y * Xs), fast.dual_objective, rtol=1e-9)


def test_rectangular() -> None:
    rng = np.random.default_rng(3)
    Xs = rng.standard_normal((12, 1)) @ rng.standard_normal((1, 8))
    mask = rng.random(Xs.shape) < 0.6
    r, c = np.nonzero(mask)
    fast = ib.min_nuclear_norm_completion((12, 8), r, c, Xs[r, c], symmetric=False, solver="alm")
    ref = ib.min_nuclear_norm_completion((12, 8), r, c, Xs[r, c], symmetric=False, solver="cvxpy")
    assert fast.W.shape == ref.W.shape == (12, 8)
    np.testing.assert_allclose(fast.nuclear_norm, ref.nuclear_norm, rtol=1e-4)
    np.testing.assert_allclose(ref.W[r, c], Xs[r, c], atol=1e-6)
    assert ref.relative_gap <= 1e-6
    # a third route: cvxpy's own normNuc on the primal (CLARABEL, small problem)
    import cvxpy as cp

    W = cp.Variable((12, 8))
    val = cp.Problem(cp.Minimize(cp.normNuc(W)), [W[r, c] == Xs[r, c]]).solve(solver="CLARABEL")
    np.testing.assert_allclose(ref.nuclear_norm, val, rtol=1e-6)


@pytest.mark.parametrize("cvxpy_solver", ["SCS", "CLARABEL"])
def test_psd_ground_truth_sdp_route(cvxpy_solver: str) -> None:
    # A PSD X* recoverable from its entries: the minimum is tr X* (= ‖X*‖_*), W = X*.
    rng = np.random.default_rng(1)
    A = rng.standard_normal((30, 2))
    Xs = A @ A.T
    r, c = np.nonzero(rng.random((30, 30)) < 0.5)
    res = ib.min_nuclear_norm_completion(
        30, r, c, Xs[r, c], solver="cvxpy", cvxpy_solver=cvxpy_solver
    )
    assert res.solver == f"cvxpy:{cvxpy_solver}"
    np.testing.assert_allclose(res.nuclear_norm, np.trace(Xs), rtol=1e-6)
    np.testing.assert_allclose(res.W, Xs, atol=1e-5 * np.abs(Xs).max())
    assert res.status == "optimal" and res.relative_gap <= 1e-6
    assert res.max_violation <= 1e-6 * np.abs(Xs).max()


def test_auto_route_by_size() -> None:
    # SDP up to AUTO_SDP_MAX_D, the ALM route above (rank-1 table: the ALM is quick there).
    from implicitbias.rich_regime.nuclear_norm import AUTO_SDP_MAX_D

    for d, route in [(20, "cvxpy:SCS"), (AUTO_SDP_MAX_D + 1, "alm")]:
        Xs, r, c = _multiplication_table(d, 0.3)
        res = ib.min_nuclear_norm_completion(d, r, c, Xs[r, c])
        assert res.solver == route
        np.testing.assert_allclose(res.W, Xs, atol=1e-4 * np.abs(Xs).max())
    res = ib.min_nuclear_norm_completion((12, 8), [0, 1], [0, 1], [1.0, 2.0], symmetric=False)
    assert res.solver == "cvxpy:SCS"


def test_mirrored_duplicates_ok_and_contradictions_fail() -> None:
    res = ib.min_nuclear_norm_completion(2, [0, 1, 0], [1, 0, 0], [1.0, 1.0, 1.0])
    np.testing.assert_allclose(res.W, np.ones((2, 2)), atol=1e-5)
    with pytest.raises(ValueError, match="'values' argument of min_nuclear_norm_completion"):
        ib.min_nuclear_norm_completion(2, [0, 1], [1, 0], [1.0, 2.0])


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="'rows' argument of min_nuclear_norm_completion"):
        ib.min_nuclear_norm_completion(3, [0, 3], [0, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="'cols' argument"):
        ib.min_nuclear_norm_completion(3, [0, 1], [-1, 1], [1.0, 1.0])
    with pytest.raises(ValueError, match="'values' argument.*finite"):
        ib.min_nuclear_norm_completion(3, [0, 1], [0, 1], [np.nan, 1.0])
    with pytest.raises(ValueError, match="'values' argument.*same length"):
        ib.min_nuclear_norm_completion(3, [0, 1], [0, 1], [1.0])
    with pytest.raises(ValueError, match="'d' argument.*symmetric=False"):
        ib.min_nuclear_norm_completion((3, 4), [0], [0], [1.0])


def _multiplication_table(d: int = 97, frac: float = 0.05, seed: int = 0):
    i = np.arange(d)
    Xs = np.outer(i, i) / d**2
    mask = np.random.default_rng(seed).random((d, d)) < frac
    r, c = np.nonzero(mask)
    return Xs, r, c


def test_multiplication_table_recovered() -> None:
    # d = 97, 5% of the d² entries observed (seed 0); row/column 0 are zero. ALM route, ~0.2 s.
    Xs, r, c = _multiplication_table()
    res = ib.min_nuclear_norm_completion(97, r, c, Xs[r, c], solver="alm")
    err = np.linalg.norm(res.W - Xs) / np.linalg.norm(Xs)
    assert err <= 1e-3
    np.testing.assert_allclose(res.nuclear_norm, np.abs(np.linalg.eigvalsh(Xs)).sum(), rtol=1e-4)
    assert res.relative_gap <= 1e-6


def test_multiplication_table_sdp() -> None:
    # Reference SDP route (SCS, eps 1e-8, dual form): ~1-2 s, ~275 SCS iterations.
    Xs, r, c = _multiplication_table()
    res = ib.min_nuclear_norm_completion(97, r, c, Xs[r, c], solver="cvxpy")
    assert res.solver == "cvxpy:SCS" and res.status == "optimal"
    np.testing.assert_allclose(res.nuclear_norm, np.abs(np.linalg.eigvalsh(Xs)).sum(), rtol=1e-4)
    assert np.linalg.norm(res.W - Xs) / np.linalg.norm(Xs) <= 1e-3
    assert res.relative_gap <= 1e-6


@pytest.mark.slow
def test_d1000_rank2() -> None:
    d = 1000
    rng = np.random.default_rng(0)
    A = rng.standard_normal((d, 2)) / np.sqrt(d)
    Xs = A @ A.T
    r, c = np.nonzero(rng.random((d, d)) < 0.03)
    res = ib.min_nuclear_norm_completion(d, r, c, Xs[r, c])
    assert res.relative_gap <= 1e-6
    assert np.linalg.norm(res.W - Xs) / np.linalg.norm(Xs) <= 1e-3
