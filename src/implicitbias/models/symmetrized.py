"""The difference of two copies of a model: a zero-output, degree-preserving construction."""

from __future__ import annotations

import copy

import torch
from torch import nn

from implicitbias._validation import fail_type

__all__ = ["Symmetrized"]


class Symmetrized(nn.Module):
    r"""The difference of two copies of a model: f(θ₁, θ₂; x) = g(θ₁; x) − g(θ₂; x).

    At construction θ₂ = θ₁, so the output is exactly zero (both copies run the same
    arithmetic); afterwards the two copies train independently. The difference of two
    L-homogeneous maps is L-homogeneous in (θ₁, θ₂) (Hu et al. 2020; THEORY §1(c)).

    Attributes
    ----------
    positive, negative : torch.nn.Module
        The two copies ``g(θ₁; ·)`` and ``g(θ₂; ·)``.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise fail_type("symmetrize", "model", "a torch.nn.Module", model)
        self.positive = model
        self.negative = copy.deepcopy(model)

    @property
    def degree(self) -> int | float | None:
        """The degree of the wrapped model, when it declares one."""
        return getattr(self.positive, "degree", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.positive(x) - self.negative(x)
