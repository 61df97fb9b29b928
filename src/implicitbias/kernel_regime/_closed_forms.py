"""Closed-form empirical NTKs of the built-in models whose gradient is known by hand.

Each kernel sums over the trainable parameter tensors only (``requires_grad``); the caller
(:func:`empirical_ntk`) checks first that the model's forward pass is its class's own (no hooks,
no parametrization, no instance-level ``forward``, no parameter shared between its factors).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from implicitbias.models.diagonal_net import DiagonalNet
from implicitbias.models.matrix_factorization import MatrixFactorization, QuadraticNet


def _diagonal_kernel(net: DiagonalNet, X1: torch.Tensor, X2: torch.Tensor | None) -> torch.Tensor:
    D = net.depth
    u, v = net.u.detach(), net.v.detach()
    weight = torch.zeros_like(u)
    if net.u.requires_grad:
        weight += D**2 * u ** (2 * D - 2)
    if net.v.requires_grad:
        weight += D**2 * v ** (2 * D - 2)
    Xb = X2 if X2 is not None else X1
    return (X1 * weight) @ Xb.T


def _factorization_kernel(
    mf: MatrixFactorization, X1: torch.Tensor, X2: torch.Tensor | None
) -> torch.Tensor:
    Xb = X2 if X2 is not None else X1
    i, j = X1[:, 0].long(), X1[:, 1].long()
    k, m = Xb[:, 0].long(), Xb[:, 1].long()
    K = torch.zeros((X1.shape[0], Xb.shape[0]), dtype=mf.U.dtype, device=mf.U.device)
    for P in (mf.U, mf.V):
        if not P.requires_grad:
            continue
        G = P.detach() @ P.detach().T
        eq_ik = (i[:, None] == k[None, :]).to(G.dtype)
        eq_im = (i[:, None] == m[None, :]).to(G.dtype)
        eq_jk = (j[:, None] == k[None, :]).to(G.dtype)
        eq_jm = (j[:, None] == m[None, :]).to(G.dtype)
        K += eq_ik * G[j][:, m] + eq_im * G[j][:, k] + eq_jk * G[i][:, m] + eq_jm * G[i][:, k]
    return K


def _quadratic_kernel(net: QuadraticNet, X1: torch.Tensor, X2: torch.Tensor | None) -> torch.Tensor:
    # ∂f/∂U = a (Uᵀb)ᵀ + b (Uᵀa)ᵀ for the bilinear form aᵀ(UUᵀ − VVᵀ)b.
    def pair(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (X, X) if X.ndim == 2 else (X[:, 0], X[:, 1])

    a1, b1 = pair(X1)
    a2, b2 = pair(X2 if X2 is not None else X1)
    K = torch.zeros((a1.shape[0], a2.shape[0]), dtype=a1.dtype, device=a1.device)
    for P in (net.U, net.V):
        if not P.requires_grad:
            continue
        P = P.detach()
        p1, q1, p2, q2 = b1 @ P, a1 @ P, b2 @ P, a2 @ P
        K += (a1 @ a2.T) * (p1 @ p2.T) + (a1 @ b2.T) * (p1 @ q2.T)
        K += (b1 @ a2.T) * (q1 @ p2.T) + (b1 @ b2.T) * (q1 @ q2.T)
    return K


CLOSED_FORMS: dict[type, Callable[..., torch.Tensor]] = {
    DiagonalNet: _diagonal_kernel,
    MatrixFactorization: _factorization_kernel,
    QuadraticNet: _quadratic_kernel,
}
