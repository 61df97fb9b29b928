"""The difference of two copies of a model: a zero-output, degree-preserving construction."""

from __future__ import annotations

import copy

import torch
from torch import nn

from implicitbias._validation import fail_type
from implicitbias.models.capabilities import check_input, input_spec

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

    # The capability protocol (models/capabilities.py): both copies take the same inputs, and
    # the kernel of g(θ₁) − g(θ₂) is the sum of the copies' kernels when θ₁, θ₂ are disjoint.
    def input_spec(self) -> str | None:
        """The inputs of the wrapped model, in words (its own ``input_spec``), or ``None``."""
        return input_spec(self.positive)

    def check_input(self, X: torch.Tensor, *, func: str, arg: str = "X") -> None:
        """The wrapped model's own input check (see :func:`~implicitbias.models.check_input`)."""
        check_input(self.positive, X, func=func, arg=arg)

    def ntk_parts(self) -> dict[str, nn.Module]:
        """The two copies, whose NTKs sum to this model's when they share no parameter."""
        return {"positive": self.positive, "negative": self.negative}
