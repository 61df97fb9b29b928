"""Realization maps: convex solutions → model parameters, and the identities of the theory."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import implicitbias as ib


def test_diagonal_net_depth2_identities() -> None:
    rng = np.random.default_rng(0)
    X = rng.choice([-1.0, 1.0], size=(40, 300))
    y = np.sign(X[:, 0] + X[:, 5] - X[:, 7])
    res = ib.l1_max_margin(X, y)
    net = ib.diagonal_net_from_w(res.w)
    assert net.u.dtype == torch.float64 and net.degree == 2
    theta2 = (net.u.detach() ** 2).sum().item() + (net.v.detach() ** 2).sum().item()
    np.testing.assert_allclose(theta2, res.norm, rtol=1e-12)  # ‖θ‖² = ‖w‖₁
    with torch.no_grad():
        q = torch.as_tensor(y) * net(torch.as_tensor(X))
    np.testing.assert_allclose(q.min().item(), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(net.w.detach().numpy(), res.w, atol=1e-14)


@pytest.mark.parametrize("depth", [1, 3])
def test_diagonal_net_depth(depth: int) -> None:
    w = np.array([0.5, -2.0, 0.0, 3.0])
    net = ib.diagonal_net_from_w(w, depth=depth, dtype=torch.float32)
    assert net.u.dtype == torch.float32 and net.degree == depth
    torch.testing.assert_close(net.w.detach(), torch.as_tensor(w, dtype=torch.float32))


def test_matrix_factorization_identities() -> None:
    rng = np.random.default_rng(1)
    A = rng.standard_normal((6, 6))
    W = A + A.T
    mf = ib.matrix_factorization_from_W(W)
    assert mf.U.shape == (6, 6) and mf.V.shape == (6, 6) and mf.U.dtype == torch.float64
    np.testing.assert_allclose(mf.W.detach().numpy(), W, atol=1e-12)
    theta2 = (mf.U.detach() ** 2).sum().item() + (mf.V.detach() ** 2).sum().item()
    np.testing.assert_allclose(theta2, np.abs(np.linalg.eigvalsh(W)).sum(), rtol=1e-12)


def test_completion_to_factorization() -> None:
    res = ib.min_nuclear_norm_completion(2, [0, 0], [0, 1], [1.0, 1.0])
    mf = ib.matrix_factorization_from_W(res.W)
    theta2 = (mf.U.detach() ** 2).sum().item() + (mf.V.detach() ** 2).sum().item()
    np.testing.assert_allclose(theta2, res.nuclear_norm, rtol=1e-10)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="'W' argument of matrix_factorization_from_W"):
        ib.matrix_factorization_from_W([[0.0, 1.0], [2.0, 0.0]])
    with pytest.raises(ValueError, match="'depth' argument of diagonal_net_from_w"):
        ib.diagonal_net_from_w([1.0], depth=0)
    with pytest.raises(TypeError, match="'dtype' argument"):
        ib.diagonal_net_from_w([1.0], dtype=np.float64)
