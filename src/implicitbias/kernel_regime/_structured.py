r"""The structured NTK route: K = Σ_l (Ã_l Ã_l'ᵀ) ⊙ (Δ_l Δ_l'ᵀ) layer by layer, for a layer
chain proven by ``_chain.py`` (see ``empirical_ntk``).

The layer inputs A_l and activation derivatives come from the model's own forward pass,
recorded and checked call by call (:meth:`Chain.run`); Δ_l = ∂f/∂z_l is back-propagated by
hand through the chain, for all examples at once.
"""

from __future__ import annotations

from typing import Any

import torch

from implicitbias.kernel_regime._chain import Chain
from implicitbias.kernel_regime._route import _Route, _Unsupported


def _identity(n: int, C: int, shape: torch.Size, like: torch.Tensor) -> torch.Tensor:
    """∂f/∂z for the output z itself (f = z flattened): the identity, shape (n, C, *shape)."""
    eye = torch.eye(C, dtype=like.dtype, device=like.device)
    return eye.expand(n, C, C).reshape(n, C, *shape)


def structured_route(chain: Chain, C: int, dtype: torch.dtype) -> _Route:
    """The layer-by-layer route for a proven ``chain`` with ``C`` outputs. Its features
    re-prove the chain on every batch they are computed for (raising _Unsupported)."""
    ops = chain.ops

    def features(X: torch.Tensor) -> list[tuple]:
        """Per weighted layer, in order: ("dense", A, Δ, bias?, weight?) for nn.Linear, with
        Δ = ∂f/∂z of shape (n, C, out) (None: the identity of an output layer), or
        ("grad", E) for nn.Conv2d, E = its per-example gradients (n, C, q)."""
        return backward(*chain.run(X))  # per op: see ``Chain.run``

    def backward(saved: list[Any], h: torch.Tensor) -> list[tuple]:
        n = h.shape[0]
        with torch.no_grad():
            if h.reshape(n, -1).shape[1] != C:
                raise _Unsupported(f"the network's output has shape {tuple(h.shape)}")
            delta: torch.Tensor | None = None  # None: the identity, ∂f_a/∂z_b = δ_ab
            feats: list[tuple] = []
            for op, sv in zip(reversed(ops), reversed(saved)):
                if op.kind == "linear":
                    m = op.module
                    bias = m.bias is not None and m.bias.requires_grad
                    feats.append(("dense", sv, delta, bias, m.weight.requires_grad))
                    W = m.weight.detach()
                    if delta is None:
                        delta = W.unsqueeze(0).expand(n, *W.shape)
                    else:  # one (n·C, out) × (out, in) product, not n small ones
                        delta = (delta.reshape(n * C, -1) @ W).reshape(n, C, -1)
                elif op.kind == "conv":
                    m = op.module
                    U, in_shape, out_shape = sv
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
                        feats.append(("grad", torch.cat(parts, dim=-1)))
                    delta = torch.nn.grad.conv2d_input(
                        (n * C, *in_shape[1:]),
                        m.weight,
                        delta.reshape(n * C, *delta.shape[2:]),
                        m.stride,
                        m.padding,
                        m.dilation,
                    ).reshape(n, C, *in_shape[1:])
                elif op.kind == "act":
                    if delta is None:  # f = σ(z) flattened: Δ = diag(σ'(z))
                        delta = torch.diag_embed(sv.reshape(n, -1)).reshape(n, C, *sv.shape[1:])
                    else:
                        delta = delta * sv.unsqueeze(1)
                elif delta is not None:  # reshape: back to the input's per-example shape
                    delta = delta.reshape(n, C, *sv[1:])
            feats.reverse()
        return feats

    workspace: dict[int, torch.Tensor] = {}

    def buffer(slot: int, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        """A reusable (rows, cols) scratch matrix (no fresh allocation per block)."""
        flat = workspace.get(slot)
        if flat is None or flat.numel() < rows * cols or flat.device != like.device:
            flat = torch.empty(rows * cols, dtype=like.dtype, device=like.device)
            workspace[slot] = flat
        return flat[: rows * cols].view(rows, cols)

    @torch.no_grad()
    def contract(F1: list, F2: list, full: bool, dest: torch.Tensor) -> None:
        n1 = F1[0][1].shape[0]
        n2 = F2[0][1].shape[0]
        Kv = dest.view(n1, C, n2, C) if full else dest
        for f1, f2 in zip(F1, F2):
            if f1[0] == "grad":  # per-example gradients of a conv layer
                E1, E2 = f1[1], f2[1]
                rows1, rows2 = (n1 * C, n2 * C) if full else (n1, n2)
                dest.addmm_(E1.reshape(rows1, -1), E2.reshape(rows2, -1).T)
                continue
            _, A1, D1, b1, w1 = f1
            _, A2, D2, _, _ = f2
            if not (w1 or b1):
                continue
            # G = Gram of the layer inputs (augmented with a ones column for a bias).
            G = buffer(0, n1, n2, A1)
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
            elif full:
                w = D1.shape[-1]
                DD = buffer(1, n1 * C, n2 * C, A1)
                torch.mm(D1.reshape(n1 * C, w), D2.reshape(n2 * C, w).T, out=DD)
                Kv.addcmul_(G[:, None, :, None], DD.view(n1, C, n2, C))
            else:
                DD = buffer(1, n1, n2, A1)
                torch.mm(D1.reshape(n1, -1), D2.reshape(n2, -1).T, out=DD)
                dest.addcmul_(G, DD)

    def take(F: list, a: int, b: int) -> list:
        out = []
        for f in F:
            if f[0] == "grad":
                out.append(("grad", f[1][a:b]))
            else:
                out.append(("dense", f[1][a:b], None if f[2] is None else f[2][a:b], f[3], f[4]))
        return out

    # Memory per example, measured on the first row (raises _Unsupported before any work).
    sample = backward(*chain.first)
    es = torch.empty((), dtype=dtype).element_size()
    bytes_per_row = es * sum(
        sum(t.numel() for t in f[1:3] if isinstance(t, torch.Tensor)) for f in sample
    )
    # the forward/backward intermediates (unfolded patches, Δ of conv layers) come on top
    return _Route("structured", features, take, contract, 3 * bytes_per_row, es * 3 * C * C)
