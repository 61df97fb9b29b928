"""Diagonal linear networks f(θ; x) = ⟨u^D − v^D, x⟩ (THEORY §4)."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from implicitbias._validation import (
    check_choice,
    check_float_dtype,
    check_int,
    check_model_input,
    check_positive,
    check_scale_fits,
)
from implicitbias.models.capabilities import Task

__all__ = ["DiagonalNet"]

AlphaMode = Literal["scale", "norm"]


class DiagonalNet(nn.Module):
    r"""Depth-``D`` diagonal linear network, a ``D``-homogeneous model.

    .. math::

        f(\theta; x) = \langle u^{\odot D} - v^{\odot D}, x \rangle,
        \qquad \theta = (u, v) \in \mathbb{R}^{2d}.

    The effective linear predictor is ``w = u**D - v**D`` (property :attr:`w`). At the
    initialization ``u = v`` the output is exactly zero.

    Parameters
    ----------
    d : int
        Input dimension.
    depth : int, default 2
        ``D``, the homogeneity degree.
    alpha : float, default 1.0
        Initialization scale. Refused when the entries underflow the dtype or the outputs
        (``d`` terms of size ``entry**depth``) would overflow it.
    alpha_mode : {"scale", "norm"}, default "scale"
        ``"scale"``: ``u = v = alpha * 1`` (the paper's θ̄ = (1, 1) scaled by α).
        ``"norm"``: ``u = v = alpha / sqrt(2 d) * 1``, so that ``‖θ‖₂ = alpha`` (the convention
        of the paper's experiments, which quote the initial norm).
    dtype, device :
        Passed to the parameters (default: torch's default dtype, CPU).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(3, alpha=2.0, dtype=torch.float64)
    >>> net(torch.ones(4, 3, dtype=torch.float64))
    tensor([0., 0., 0., 0.], dtype=torch.float64, grad_fn=<MvBackward0>)
    >>> net.degree
    2

    References
    ----------
    Lyu et al., Dichotomy of Early and Late Phase Implicit Biases Can Provably Induce Grokking,
    ICLR 2024, arXiv:2311.18817, Section 3.1.
    """

    def __init__(
        self,
        d: int,
        *,
        depth: int = 2,
        alpha: float = 1.0,
        alpha_mode: AlphaMode = "scale",
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        name = "DiagonalNet"
        self.d = check_int(d, name, "d", minimum=1)
        self.depth = check_int(depth, name, "depth", minimum=1)
        alpha = check_positive(alpha, name, "alpha")
        check_choice(alpha_mode, name, "alpha_mode", ("scale", "norm"))
        check_float_dtype(dtype, name)
        value = alpha if alpha_mode == "scale" else alpha / math.sqrt(2 * self.d)
        check_scale_fits(alpha, value, self.depth, dtype, name, terms=self.d)
        self.u = nn.Parameter(torch.full((self.d,), value, dtype=dtype, device=device))
        self.v = nn.Parameter(torch.full((self.d,), value, dtype=dtype, device=device))

    @property
    def degree(self) -> int:
        """The homogeneity degree ``D``."""
        return self.depth

    @property
    def w(self) -> torch.Tensor:
        """The effective linear predictor ``u**D - v**D``, shape ``(d,)``."""
        return self.u**self.depth - self.v**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs ``X @ w``, shape ``(n,)``, for inputs of shape ``(n, d)``."""
        ok = isinstance(x, torch.Tensor) and x.ndim == 2 and x.shape[-1] == self.d
        check_model_input(x, "DiagonalNet", "x", f"(n, {self.d})", ok, self.u.dtype)
        return x @ self.w

    def input_spec(self) -> str:
        """The expected inputs, in words (capability protocol)."""
        return f"a float tensor of shape (n, {self.d})"

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        r"""The exact NTK block ``K(X1, X2)`` (``X2 = X1`` when omitted), shape ``(n1, n2)``.

        ``∇_u f = D u^{D−1} ⊙ x`` and ``∇_v f = −D v^{D−1} ⊙ x``, so
        ``K(x, x') = Σ_k D² (u_k^{2D−2} + v_k^{2D−2}) x_k x'_k``, summed over the trainable
        factors only (``requires_grad``). Valid for this class's own forward (no hook,
        parametrization or shared factor: :func:`~implicitbias.empirical_ntk` checks).
        """
        D = self.depth
        u, v = self.u.detach(), self.v.detach()
        weight = torch.zeros_like(u)
        if self.u.requires_grad:
            weight += D**2 * u ** (2 * D - 2)
        if self.v.requires_grad:
            weight += D**2 * v ** (2 * D - 2)
        Xb = X2 if X2 is not None else X1
        return (X1 * weight) @ Xb.T

    def convex_surrogate(self, task: Task) -> str | None:
        """The convex problem whose solutions are this model's KKT points (THEORY §5).

        Depth 2 only (``w = u² − v²``): ``"l1_max_margin"`` for classification and
        ``"l1_interpolation"`` for regression; ``None`` otherwise.
        """
        if self.depth != 2:
            return None
        return {"classification": "l1_max_margin", "regression": "l1_interpolation"}.get(task)

    def extra_repr(self) -> str:
        return f"d={self.d}, depth={self.depth}"
