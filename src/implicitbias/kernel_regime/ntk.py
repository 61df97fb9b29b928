"""The empirical neural tangent kernel K(x, x') = ⟨∇_θ f(θ; x), ∇_θ f(θ; x')⟩ (THEORY §2)."""

from __future__ import annotations

import torch
from torch import nn

from implicitbias._validation import check_choice
from implicitbias.models.homogeneous import Homogeneous

__all__ = ["empirical_ntk"]


def empirical_ntk(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    method: str = "auto",
) -> torch.Tensor:
    """Empirical NTK at the model's current parameters (generic Jacobian-contraction route)."""
    check_choice(method, "empirical_ntk", "method", ("auto", "jacobian"))
    h = model if isinstance(model, Homogeneous) else Homogeneous(model, degree=1, _skip_check=True)
    J1 = h.jacobian(X1, chunk_size=chunk_size)
    J2 = J1 if X2 is None else h.jacobian(X2, chunk_size=chunk_size)
    return J1 @ J2.T
