r"""The structured NTK route: K = Σ_l (Ã_l Ã_l'ᵀ) ⊙ (Δ_l Δ_l'ᵀ) layer by layer, for a layer
chain proven by ``_chain.py`` (see ``empirical_ntk``).

The layer inputs A_l and activation derivatives come from the model's own forward pass,
recorded and checked call by call (:meth:`Chain.run`); Δ_l = ∂f/∂z_l is back-propagated by
hand through the chain, for all examples at once (:func:`_backward`), and two batches of
per-layer features are contracted into a kernel block by :class:`_Contraction`.
"""

from __future__ import annotations

from typing import Any, NamedTuple, cast

import torch
from torch import nn
from torch.nn.grad import conv2d_input

from implicitbias.kernel_regime._chain import Chain, _Op
from implicitbias.kernel_regime._route import _Route, _Unsupported


class _Dense(NamedTuple):
    """Features of an ``nn.Linear`` layer: its inputs A (n, in), Δ = ∂f/∂z (n, C, out) or
    ``None`` (the identity, for an output layer), and whether its bias and weight train."""

    A: torch.Tensor
    delta: torch.Tensor | None
    bias: bool
    weight: bool


class _Grad(NamedTuple):
    """Features of an ``nn.Conv2d`` layer: its per-example gradients E, (n, C, q)."""

    E: torch.Tensor


_Feature = _Dense | _Grad


def _rows(f: _Feature) -> int:
    return f.E.shape[0] if isinstance(f, _Grad) else f.A.shape[0]


def _identity(n: int, C: int, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """∂f/∂z for the output z itself (f = z flattened): the identity, shape (n, C, *shape)."""
    eye = torch.eye(C, dtype=like.dtype, device=like.device)
    return eye.expand(n, C, C).reshape(n, C, *shape)


# ---------------------------------------------------------------------------------------------
# Features: Δ back-propagated by hand through the chain, one op at a time
# ---------------------------------------------------------------------------------------------
def _linear_step(
    m: nn.Linear, A: torch.Tensor, delta: torch.Tensor | None, n: int, C: int, feats: list
) -> torch.Tensor:
    """Record the layer's features; return Δ of its input."""
    bias = m.bias is not None and m.bias.requires_grad
    feats.append(_Dense(A, delta, bias, m.weight.requires_grad))
    W = m.weight.detach()
    if delta is None:
        return W.unsqueeze(0).expand(n, *W.shape)
    # one (n·C, out) × (out, in) product, not n small ones
    return (delta.reshape(n * C, -1) @ W).reshape(n, C, -1)


def _conv_step(
    m: nn.Conv2d, saved: tuple, delta: torch.Tensor | None, n: int, C: int, feats: list
) -> torch.Tensor:
    """Record the layer's per-example gradients (from the unfolded patches U); return Δ of its
    input."""
    U, in_shape, out_shape = saved
    if delta is None:  # the output layer
        delta = _identity(n, C, out_shape[1:], U)
    o = m.out_channels
    Dp = delta.reshape(n, C * o, -1)  # (n, C·o, P)
    parts = []
    if m.weight.requires_grad:  # Σ_pos Δ[a, o, pos] U[k, pos]
        parts.append(torch.bmm(Dp, U.transpose(1, 2)).reshape(n, C, -1))
    if m.bias is not None and m.bias.requires_grad:
        parts.append(Dp.sum(-1).reshape(n, C, o))
    if parts:
        feats.append(_Grad(torch.cat(parts, dim=-1)))
    return conv2d_input(
        (n * C, *in_shape[1:]),
        m.weight,
        delta.reshape(n * C, *delta.shape[2:]),
        m.stride,
        m.padding,
        m.dilation,
    ).reshape(n, C, *in_shape[1:])


def _backward(ops: list[_Op], C: int, saved: list[Any], h: torch.Tensor) -> list[_Feature]:
    """Per weighted layer, in order: :class:`_Dense` for nn.Linear, :class:`_Grad` for
    nn.Conv2d, from what :meth:`Chain.run` saved per op and the output ``h``."""
    n = h.shape[0]
    with torch.no_grad():
        if h.reshape(n, -1).shape[1] != C:
            raise _Unsupported(f"the network's output has shape {tuple(h.shape)}")
        delta: torch.Tensor | None = None  # None: the identity, ∂f_a/∂z_b = δ_ab
        feats: list[_Feature] = []
        for op, sv in zip(reversed(ops), reversed(saved)):
            if op.kind == "linear":
                delta = _linear_step(cast(nn.Linear, op.module), sv, delta, n, C, feats)
            elif op.kind == "conv":
                delta = _conv_step(cast(nn.Conv2d, op.module), sv, delta, n, C, feats)
            elif op.kind == "act":
                if delta is None:  # f = σ(z) flattened: Δ = diag(σ'(z))
                    delta = torch.diag_embed(sv.reshape(n, -1)).reshape(n, C, *sv.shape[1:])
                else:
                    delta = delta * sv.unsqueeze(1)
            elif delta is not None:  # reshape: back to the input's per-example shape
                delta = delta.reshape(n, C, *sv[1:])
        feats.reverse()
    return feats


def _take(F: list[_Feature], a: int, b: int) -> list[_Feature]:
    """Rows ``a:b`` of a batch of features."""
    out: list[_Feature] = []
    for f in F:
        if isinstance(f, _Grad):
            out.append(_Grad(f.E[a:b]))
        else:
            delta = None if f.delta is None else f.delta[a:b]
            out.append(_Dense(f.A[a:b], delta, f.bias, f.weight))
    return out


# ---------------------------------------------------------------------------------------------
# Contraction: Σ_l (Ã_l Ã_l'ᵀ) ⊙ (Δ_l Δ_l'ᵀ), into reusable scratch matrices
# ---------------------------------------------------------------------------------------------
class _Contraction:
    """``contract(F1, F2, full, dest)`` of the route, for ``C`` outputs; it keeps two scratch
    matrices between calls (no fresh allocation per block)."""

    def __init__(self, C: int) -> None:
        self.C = C
        self.workspace: dict[int, torch.Tensor] = {}

    def buffer(self, slot: int, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A reusable (rows, cols) scratch matrix."""
        flat = self.workspace.get(slot)
        if flat is None or flat.numel() < rows * cols or flat.device != like.device:
            flat = torch.empty(rows * cols, dtype=like.dtype, device=like.device)
            self.workspace[slot] = flat
        return flat[: rows * cols].view(rows, cols)

    @torch.no_grad()
    def __call__(
        self, F1: list[_Feature], F2: list[_Feature], full: bool, dest: torch.Tensor
    ) -> None:
        C = self.C
        n1, n2 = _rows(F1[0]), _rows(F2[0])
        Kv = dest.view(n1, C, n2, C) if full else dest
        for f1, f2 in zip(F1, F2):
            if isinstance(f1, _Grad):  # per-example gradients of a conv layer
                E2 = cast(_Grad, f2).E
                rows1, rows2 = (n1 * C, n2 * C) if full else (n1, n2)
                dest.addmm_(f1.E.reshape(rows1, -1), E2.reshape(rows2, -1).T)
                continue
            A1, D1, b1, w1 = f1
            A2, D2 = cast(_Dense, f2)[:2]
            if not (w1 or b1):
                continue
            # G = Gram of the layer inputs (augmented with a ones column for a bias).
            G = self.buffer(0, n1, n2, A1)
            if w1:
                torch.mm(A1, A2.T, out=G)
            else:
                G.zero_()
            if b1:
                G += 1.0
            if D1 is None:  # output layer: ΔΔᵀ = I_C
                if full:
                    Kv.diagonal(dim1=1, dim2=3).add_(G.unsqueeze(-1))
                else:
                    dest.add_(G, alpha=float(C))
                continue
            D2 = cast(torch.Tensor, D2)
            if full:
                w = D1.shape[-1]
                DD = self.buffer(1, n1 * C, n2 * C, A1)
                torch.mm(D1.reshape(n1 * C, w), D2.reshape(n2 * C, w).T, out=DD)
                Kv.addcmul_(G[:, None, :, None], DD.view(n1, C, n2, C))
            else:
                DD = self.buffer(1, n1, n2, A1)
                torch.mm(D1.reshape(n1, -1), D2.reshape(n2, -1).T, out=DD)
                dest.addcmul_(G, DD)


def structured_route(chain: Chain, C: int, dtype: torch.dtype) -> _Route:
    """The layer-by-layer route for a proven ``chain`` with ``C`` outputs. Its features
    re-prove the chain on every batch they are computed for (raising _Unsupported)."""
    ops = chain.ops

    def features(X: torch.Tensor) -> list[_Feature]:
        return _backward(ops, C, *chain.run(X))  # per op: see ``Chain.run``

    # Memory per example, measured on the first row (raises _Unsupported before any work).
    sample = _backward(ops, C, *chain.first)
    es = torch.empty((), dtype=dtype).element_size()
    numel = 0
    for f in sample:
        if isinstance(f, _Grad):
            numel += f.E.numel()
        else:
            numel += f.A.numel() + (0 if f.delta is None else f.delta.numel())
    # the forward/backward intermediates (unfolded patches, Δ of conv layers) come on top
    return _Route("structured", features, _take, _Contraction(C), 3 * es * numel, es * 3 * C * C)
