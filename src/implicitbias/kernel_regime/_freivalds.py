r"""Randomized (Freivalds) checks that a recorded layer call did the arithmetic the
structured NTK route assumes, at O(n · width) cost (``_chain.py``, point 4).

For a fixed random vector v, a linear layer's output z must satisfy z v = x (Wᵀv) + b·v row by
row, to the rounding error of the products: first within 2(d+2)·ε·(|z v| + |x Wᵀv|), which
costs nothing more, and otherwise within the rigorous bound 4(d+2)·ε·(‖x_i‖ ‖|W|ᵀ|v|‖ + |b|·|v|)
(d the length of the dot products). A wrong weight, a changed input or an extra term shows as
an O(1) relative deviation; the chance that it is orthogonal to a Gaussian v is zero.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

_VECTORS: dict[tuple, torch.Tensor] = {}


def _vector(k: int, like: torch.Tensor) -> torch.Tensor:
    """A fixed random vector of length ``k`` (Freivalds' check), cached per dtype and device."""
    key = (k, like.dtype, like.device)
    v = _VECTORS.get(key)
    if v is None:
        gen = torch.Generator().manual_seed(k)
        v = torch.randn(k, generator=gen, dtype=like.dtype).to(like.device)
        if len(_VECTORS) < 64:
            _VECTORS[key] = v
    return v


def _agree(
    lhs: torch.Tensor, rhs: torch.Tensor, depth: int, bound: Callable[[], torch.Tensor]
) -> bool:
    """|lhs − rhs| within the rounding error of a length-``depth`` dot product, everywhere.

    First against (|lhs| + |rhs|), which costs nothing and is below the rigorous bound
    (|rhs_i| ≤ ``bound()_i``, up to rounding); only where that fails (heavy cancellation) is
    the rigorous ``bound()`` computed."""
    unit = 2 * (depth + 2) * torch.finfo(lhs.dtype).eps
    diff = (lhs - rhs).abs()
    if bool((diff <= unit * (lhs.abs() + rhs.abs())).all()):
        return True
    return bool((diff <= 2 * unit * bound()).all())


def _weight_terms(W: torch.Tensor, cache: dict) -> tuple[torch.Tensor, torch.Tensor, float]:
    """v, vᵀW and ‖|W|ᵀ|v|‖ of a (flattened) weight, cached for the pass (``cache``)."""
    key = (id(W), W._version, W.data_ptr())
    terms = cache.get(key)
    if terms is None:
        v = _vector(W.shape[0], W)
        terms = (v, v @ W, float(torch.linalg.vector_norm(v.abs() @ W.abs())))
        cache[key] = terms
    return terms


def linear_check(m: nn.Linear, x: Any, z: Any, cache: dict) -> str | None:
    """Freivalds: z v = x (Wᵀ v) + b·v for a random v, at O(n (in + out)) cost; the rigorous
    rounding bound of row i is ‖x_i‖ ‖|W|ᵀ|v|‖ + |b|·|v| (Cauchy-Schwarz)."""
    if not isinstance(x, torch.Tensor) or not isinstance(z, torch.Tensor) or x.ndim != 2:
        return "does not map a batch of (n, features) inputs to (n, features) outputs"
    W, b = m.weight.detach(), m.bias
    v, vW, wnorm = _weight_terms(W, cache)
    x = x.detach()
    lhs, rhs = z.detach() @ v, x @ vW
    bias = 0.0
    if b is not None:
        rhs, bias = rhs + b.detach() @ v, float(b.detach().abs() @ v.abs())

    def bound() -> torch.Tensor:
        return torch.linalg.vector_norm(x, dim=1) * wnorm + bias

    return None if _agree(lhs, rhs, W.shape[1], bound) else "does not compute x Wᵀ + b"


def conv_check(m: nn.Conv2d, U: torch.Tensor, z: torch.Tensor, cache: dict) -> str | None:
    """Freivalds for a convolution through its unfolded input patches U (n, c·kh·kw, P), which
    the route needs anyway: Σ_o v_o z_o = (Σ_o v_o W_o) U + b·v, at O(n · c·kh·kw · P) cost;
    the bound per patch is ‖U_p‖ ‖|W|ᵀ|v|‖ + |b|·|v|, as for a linear layer."""
    n, P = U.shape[0], U.shape[2]
    if z.ndim != 4 or z.shape[0] != n or z[0, 0].numel() != P:
        return "does not map a 4-D batch to a 4-D batch of its patches"
    W, b = m.weight.detach().reshape(m.out_channels, -1), m.bias
    v, vW, wnorm = _weight_terms(W, cache)
    lhs = torch.einsum("nop,o->np", z.detach().reshape(n, W.shape[0], P), v)
    rhs = torch.einsum("k,nkp->np", vW, U)
    bias = 0.0
    if b is not None:
        rhs, bias = rhs + b.detach() @ v, float(b.detach().abs() @ v.abs())

    def bound() -> torch.Tensor:
        return torch.linalg.vector_norm(U, dim=1) * wnorm + bias

    return None if _agree(lhs, rhs, W.shape[1], bound) else "does not compute conv2d(x, W) + b"
