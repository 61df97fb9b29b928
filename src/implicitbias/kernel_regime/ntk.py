r"""The empirical neural tangent kernel K(x, x') = ⟨∇_θ f(θ; x), ∇_θ f(θ; x')⟩ (THEORY §2).

Three routes compute the same matrix:

* ``"closed_form"`` for the models whose gradient is known by hand (:class:`DiagonalNet`,
  :class:`MatrixFactorization`, :class:`QuadraticNet`);
* ``"structured"`` for networks of ``nn.Linear`` (and ``nn.Conv2d``) layers with pointwise
  piecewise-linear activations: per linear layer, K gets (A Aᵀ) ⊙ (Δ Δᵀ) from the layer
  inputs A and the back-propagated output gradients Δ = ∂f/∂z, so no per-example gradient of
  a linear layer is ever formed (a convolution's small per-example weight gradient is formed
  by one batched product of Δ with the unfolded input patches);
* ``"jacobian"``, for any module: per-example gradients by ``torch.func`` contracted block by
  block.

A :class:`Symmetrized` model g(θ₁; x) − g(θ₂; x) has disjoint parameter sets, so its kernel is
the sum of the kernels of its two copies, each computed by its own best route.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap
from torch.nn import functional as F

from implicitbias._validation import check_choice, check_int, describe, fail, fail_type
from implicitbias.init.symmetrize import Symmetrized
from implicitbias.models.diagonal_net import DiagonalNet
from implicitbias.models.homogeneous import Homogeneous
from implicitbias.models.matrix_factorization import MatrixFactorization, QuadraticNet
from implicitbias.models.mlp import HomogeneousMLP

__all__ = ["empirical_ntk"]

_FUNC = "empirical_ntk"
_METHODS = ("auto", "closed_form", "structured", "jacobian")
# Default memory budgets (bytes): per-example features (Jacobian rows, or layer inputs and
# output gradients) alive at a time, and the temporaries of one contraction block.
_FEATURE_BYTES = 2**30
_BLOCK_BYTES = 256 * 2**20


class _Unsupported(Exception):
    """A route does not apply to a module; the message says why."""


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def _input_shape_hint(model: nn.Module) -> str | None:
    """The expected input shape of the built-in models, for error messages."""
    if isinstance(model, Symmetrized):
        return _input_shape_hint(model.positive)
    if isinstance(model, DiagonalNet):
        return f"a float tensor of shape (n, {model.d})"
    if isinstance(model, HomogeneousMLP):
        return f"a float tensor of shape (n, {model.d_in})"
    if isinstance(model, MatrixFactorization):
        return f"an integer tensor of index pairs of shape (n, 2) with entries in [0, {model.d})"
    if isinstance(model, QuadraticNet):
        return f"a float tensor of shape (n, {model.d}) or (n, 2, {model.d})"
    return None


def _check_index_pairs(model: nn.Module, X: torch.Tensor, arg: str) -> None:
    """Index-pair inputs of a MatrixFactorization must be in range (negative ones would wrap)."""
    if isinstance(model, Symmetrized):
        _check_index_pairs(model.positive, X, arg)
        return
    if isinstance(model, MatrixFactorization):
        expect = _input_shape_hint(model)
        if X.is_floating_point() or X.ndim != 2 or X.shape[1] != 2:
            raise fail(_FUNC, arg, expect, describe(X))
        lo, hi = int(X.min()), int(X.max())
        if lo < 0 or hi >= model.d:
            raise fail(_FUNC, arg, expect, f"entries in [{lo}, {hi}]")


def _prepare(h: Homogeneous, X1: Any, X2: Any) -> tuple[torch.Tensor, torch.Tensor | None, int]:
    """Validate both inputs; return them (in the model's dtype) and the number of outputs C."""
    X1 = h._prepare_input(X1, _FUNC, "X1")
    if X2 is not None:
        X2 = h._prepare_input(X2, _FUNC, "X2")
        if X2.shape[1:] != X1.shape[1:] or X2.dtype != X1.dtype:
            raise fail(
                _FUNC,
                "X2",
                f"inputs like X1: shape (n2, {', '.join(map(str, X1.shape[1:]))}) and dtype "
                f"{X1.dtype}",
                describe(X2),
            )
    model = h.model
    _check_index_pairs(model, X1, "X1")
    if X2 is not None:
        _check_index_pairs(model, X2, "X2")
    hint = _input_shape_hint(model)
    try:
        with torch.no_grad():
            out = model(X1[:1])
    except Exception as exc:  # the model rejects the input: say which argument
        expect = hint or "inputs the model accepts"
        raise fail(_FUNC, "X1", expect, describe(X1), f"The model raised: {exc}") from exc
    if not isinstance(out, torch.Tensor):
        raise fail_type(_FUNC, "model", "a module whose forward returns a tensor", out)
    C = 1 if out.ndim <= 1 else int(out[0].numel())
    return X1, X2, C


# ---------------------------------------------------------------------------------------------
# Block scheduling shared by the routes
# ---------------------------------------------------------------------------------------------
@dataclass
class _Route:
    """A kernel route: per-example ``features`` of a batch, their row ``take``, and
    ``contract(F1, F2, full, dest)``, which adds the kernel block between two batches of
    features to ``dest`` (a view into the output)."""

    name: str
    features: Callable[[torch.Tensor], Any]
    take: Callable[[Any, int, int], Any]
    contract: Callable[[Any, Any, bool, torch.Tensor], None]
    bytes_per_row: int  # memory of one example's features
    bytes_per_pair: int  # temporaries per kernel entry (i, j) during a contraction


def _symmetrize_square(block: torch.Tensor, m: int) -> None:
    """Make the leading m × m square of a diagonal block exactly symmetric (rounding aside)."""
    square = block[:, :m]
    square.copy_(0.5 * (square + square.T))


def _blocked_kernel(
    route: _Route,
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    C: int,
    full: bool,
    chunk_size: int | None,
    out: torch.Tensor,
) -> None:
    """Add the route's kernel to ``out`` ((n1·C, n2·C) if full, else (n1, n2)), block by block.

    When the features of all inputs fit in the memory budget (or ``chunk_size`` covers them)
    they are computed once, and rows are contracted ``chunk_size`` at a time against all
    columns. Otherwise a row block of features is held while the column features are computed
    block by block (and recomputed for the next row block), so at most two blocks of features
    are alive. With ``X2 is None`` only the blocks on and above the diagonal are computed, and
    mirrored.
    """
    symmetric = X2 is None
    Xc = X1 if symmetric else X2
    n1, n2 = X1.shape[0], Xc.shape[0]
    c = C if full else 1
    per_row = max(1, route.bytes_per_row)
    cache = n2 * per_row <= _FEATURE_BYTES if chunk_size is None else chunk_size >= n2
    if cache:
        if chunk_size is None:  # row blocks: bound the (rows × n2) contraction temporaries
            rows_pair = _BLOCK_BYTES // max(1, route.bytes_per_pair * n2)
            chunk_size = max(1, min(n1, 512, max(rows_pair, 16)))
        Fc = route.features(Xc)
        F1all = Fc if symmetric else None
        if not symmetric and (n1 + n2) * per_row <= _FEATURE_BYTES:
            F1all = route.features(X1)
        for r in range(0, n1, chunk_size):
            re = min(n1, r + chunk_size)
            F1 = route.take(F1all, r, re) if F1all is not None else route.features(X1[r:re])
            if symmetric:
                dest = out[r * c : re * c, r * c :]
                route.contract(F1, route.take(Fc, r, n2), full, dest)
                _symmetrize_square(dest, (re - r) * c)
                # what was in ``out`` before is symmetric, so the lower part is a copy
                out[re * c :, r * c : re * c].copy_(dest[:, (re - r) * c :].T)
            else:
                route.contract(F1, Fc, full, out[r * c : re * c, :])
        return
    # Features do not fit: a large row block against small column blocks, recomputed per row
    # block (the column features are evaluated about n1 / row_chunk times in all).
    if chunk_size is None:
        row_chunk = max(1, min(n1, (3 * _FEATURE_BYTES) // (4 * per_row)))
        col_chunk = max(1, min(n2, _FEATURE_BYTES // (4 * per_row)))
    else:
        row_chunk = col_chunk = chunk_size
    for r in range(0, n1, row_chunk):
        re = min(n1, r + row_chunk)
        F1 = route.features(X1[r:re])
        start = 0
        if symmetric:
            dest = out[r * c : re * c, r * c : re * c]
            route.contract(F1, F1, full, dest)
            _symmetrize_square(dest, (re - r) * c)
            start = re
        for s in range(start, n2, col_chunk):
            se = min(n2, s + col_chunk)
            dest = out[r * c : re * c, s * c : se * c]
            route.contract(F1, route.features(Xc[s:se]), full, dest)
            if symmetric:
                out[s * c : se * c, r * c : re * c].copy_(dest.T)


# ---------------------------------------------------------------------------------------------
# Route 1: generic Jacobian contraction (torch.func)
# ---------------------------------------------------------------------------------------------
def _jacobian_route(h: Homogeneous, C: int) -> _Route:
    """Per-example Jacobians by ``vmap(jacrev)`` over a dict of the trainable parameters.

    Differentiating with respect to each parameter tensor (rather than a flat θ sliced into
    views) avoids materialising a zero-filled p-vector per parameter in the backward pass, and
    the blocks are contracted parameter by parameter, never concatenated into (n, p).
    """
    model = h.model
    params = {n: q.detach() for n, q in model.named_parameters() if q.requires_grad}
    buffers = dict(model.named_buffers())
    p = sum(q.numel() for q in params.values())
    es = torch.empty((), dtype=h.dtype).element_size()

    def single(prm: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        return functional_call(model, (prm, buffers), (x.unsqueeze(0),)).reshape(-1)

    jac = vmap(jacrev(single), in_dims=(None, 0))
    state = {"vmap": True}

    def features(X: torch.Tensor) -> list[torch.Tensor]:
        m = X.shape[0]
        if state["vmap"]:
            try:
                J = jac(params, X)
                return [J[name].detach().reshape(m, C, -1) for name in params]
            except (RuntimeError, ValueError, NotImplementedError):
                state["vmap"] = False  # modules vmap cannot batch: per-example autograd loop
        return [h.jacobian(X, chunk_size=m).reshape(m, C, p)]

    def contract(
        F1: list[torch.Tensor], F2: list[torch.Tensor], full: bool, dest: torch.Tensor
    ) -> None:
        for J1, J2 in zip(F1, F2):
            m1, m2 = J1.shape[0], J2.shape[0]
            rows1, rows2 = (m1 * C, m2 * C) if full else (m1, m2)
            dest.addmm_(J1.reshape(rows1, -1), J2.reshape(rows2, -1).T)

    def take(F: list[torch.Tensor], a: int, b: int) -> list[torch.Tensor]:
        return [J[a:b] for J in F]

    return _Route("jacobian", features, take, contract, C * p * es, 2 * C * C * es)


# ---------------------------------------------------------------------------------------------
# Route 2: structured (layer by layer), Linear networks with pointwise activations
# ---------------------------------------------------------------------------------------------
@dataclass
class _Op:
    kind: str  # "linear", "conv", "act", "flatten"
    module: nn.Module | None = None
    slope: float = 0.0  # negative slope of a (leaky) ReLU; 1.0 for identity


def _parse_layered(model: nn.Module, where: str = "model") -> list[_Op]:
    """The sequence of operations of a supported layered network, or _Unsupported(reason)."""
    supported = (
        "nn.Linear and nn.Conv2d layers with ReLU / LeakyReLU / Identity activations and "
        "nn.Flatten, inside a HomogeneousMLP or a plain nn.Sequential"
    )
    if type(model) is HomogeneousMLP:
        ops: list[_Op] = []
        for k, layer in enumerate(model.layers):
            ops.extend(_parse_layered(layer, f"{where}.layers[{k}]"))
            if k < len(model.layers) - 1:
                ops.append(_Op("act", slope=0.0 if model.activation == "relu" else 1.0))
        return ops
    if type(model) is nn.Sequential:
        ops = []
        for name, sub in model.named_children():
            ops.extend(_parse_layered(sub, f"{where}[{name}]"))
        return ops
    if type(model) is nn.Linear:
        return [_Op("linear", model)]
    if type(model) is nn.Conv2d:
        if model.groups != 1 or model.padding_mode != "zeros" or isinstance(model.padding, str):
            raise _Unsupported(
                f"{where} is an nn.Conv2d with groups={model.groups}, padding={model.padding!r}, "
                f"padding_mode={model.padding_mode!r} (supported: groups=1, integer zero padding)"
            )
        return [_Op("conv", model)]
    if type(model) is nn.ReLU:
        return [_Op("act", slope=0.0)]
    if type(model) is nn.LeakyReLU:
        return [_Op("act", slope=float(model.negative_slope))]
    if type(model) is nn.Identity:
        return []
    if type(model) is nn.Flatten:
        if model.start_dim != 1 or model.end_dim != -1:
            raise _Unsupported(f"{where} is nn.Flatten with dims other than (1, -1)")
        return [_Op("flatten", model)]
    raise _Unsupported(
        f"{where} is a {type(model).__name__}; the structured route supports only {supported}"
    )


def _conv_forward(op: _Op, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Unfolded input patches (n, c·kh·kw, P) and the output of an nn.Conv2d."""
    m = op.module
    U = F.unfold(h, m.kernel_size, dilation=m.dilation, padding=m.padding, stride=m.stride)
    return U, F.conv2d(h, m.weight, m.bias, m.stride, m.padding, m.dilation)


def _structured_route(model: nn.Module, C: int, dtype: torch.dtype, probe: torch.Tensor) -> _Route:
    ops = _parse_layered(model)
    layers = [op.module for op in ops if op.kind in ("linear", "conv")]
    if not layers:
        raise _Unsupported("the model has no nn.Linear or nn.Conv2d layer")
    if len({id(m) for m in layers}) != len(layers):
        raise _Unsupported("a layer is used twice (shared weights)")

    def features(X: torch.Tensor) -> list[tuple]:
        """Per weighted layer, in order: ("dense", A, Δ, bias?, weight?) for nn.Linear, with
        Δ = ∂f/∂z of shape (n, C, out) (None: the identity of an output layer), or
        ("grad", E) for nn.Conv2d, E = its per-example gradients (n, C, q)."""
        n = X.shape[0]
        saved: list[Any] = []  # per op: layer input / activation derivative / pre-flatten shape
        h = X
        with torch.no_grad():
            for op in ops:
                if op.kind == "linear":
                    if h.ndim != 2:
                        raise _Unsupported(
                            f"an nn.Linear layer receives a {h.ndim}-dimensional batch; the "
                            "structured route needs (n, features) inputs to every Linear"
                        )
                    saved.append(h)
                    h = F.linear(h, op.module.weight, op.module.bias)
                elif op.kind == "conv":
                    if h.ndim != 4:
                        raise _Unsupported("an nn.Conv2d layer receives a batch that is not 4-D")
                    U, z = _conv_forward(op, h)
                    saved.append((U, h.shape))
                    h = z
                elif op.kind == "act":
                    if op.slope == 1.0:
                        saved.append(None)
                    else:
                        d = (h > 0).to(h.dtype)
                        if op.slope != 0.0:
                            d.mul_(1.0 - op.slope).add_(op.slope)
                        saved.append(d)
                        h = torch.relu(h) if op.slope == 0.0 else h * d
                else:  # flatten
                    saved.append(h.shape)
                    h = h.reshape(n, -1)
            if h.ndim != 2 or h.shape[1] != C:
                raise _Unsupported(f"the network's output has shape {tuple(h.shape)}")
            delta: torch.Tensor | None = None  # None: the identity, ∂f_a/∂z_b = δ_ab
            feats: list[tuple] = []
            for op, sv in zip(reversed(ops), reversed(saved)):
                if op.kind == "linear":
                    m = op.module
                    feats.append(
                        (
                            "dense",
                            sv,
                            delta,
                            m.bias is not None and m.bias.requires_grad,
                            m.weight.requires_grad,
                        )
                    )
                    W = m.weight.detach()
                    if delta is None:
                        delta = W.unsqueeze(0).expand(n, *W.shape)
                    else:  # one (n·C, out) × (out, in) product, not n small ones
                        delta = (delta.reshape(n * C, -1) @ W).reshape(n, C, -1)
                elif op.kind == "conv":
                    if delta is None:
                        raise _Unsupported("an nn.Conv2d layer is the output layer")
                    m = op.module
                    U, in_shape = sv
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
                    if sv is None:
                        continue
                    if delta is None:
                        delta = torch.diag_embed(sv)
                    else:
                        delta = delta * sv.unsqueeze(1)
                else:
                    if delta is not None:
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

    # Memory per example, measured on a one-row probe (raises _Unsupported before any work).
    sample = features(probe[:1])
    es = torch.empty((), dtype=dtype).element_size()
    bytes_per_row = es * sum(
        sum(t.numel() for t in f[1:3] if isinstance(t, torch.Tensor)) for f in sample
    )
    # the forward/backward intermediates (unfolded patches, Δ of conv layers) come on top
    return _Route("structured", features, take, contract, 3 * bytes_per_row, es * 3 * C * C)


# ---------------------------------------------------------------------------------------------
# Route 3: closed forms
# ---------------------------------------------------------------------------------------------
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


_CLOSED_FORMS: dict[type, Callable[..., torch.Tensor]] = {
    DiagonalNet: _diagonal_kernel,
    MatrixFactorization: _factorization_kernel,
    QuadraticNet: _quadratic_kernel,
}


# ---------------------------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------------------------
def _disjoint(a: nn.Module, b: nn.Module) -> bool:
    ids = {id(p) for p in a.parameters()}
    return not any(id(p) in ids for p in b.parameters())


def _trainable(module: nn.Module) -> bool:
    return any(p.requires_grad for p in module.parameters())


def _accumulate(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None,
    C: int,
    full: bool,
    method: str,
    chunk_size: int | None,
    out: torch.Tensor,
    routes: list[str],
) -> None:
    """Add the kernel of ``model`` (by ``method``) to ``out``; record the route(s) used."""
    if not _trainable(model):
        return
    if type(model) is Symmetrized:
        if _disjoint(model.positive, model.negative):
            for part in (model.positive, model.negative):
                _accumulate(part, X1, X2, C, full, method, chunk_size, out, routes)
            return
        if method in ("closed_form", "structured"):
            raise _Unsupported("the two copies of the Symmetrized model share parameters")
    if method in ("auto", "closed_form"):
        closed = _CLOSED_FORMS.get(type(model))
        if closed is not None:
            # single-output models (full == trace); rows in chunks bound the n1 × n2 temporaries
            Xb = X1 if X2 is None else X2
            rows = chunk_size or max(1, _BLOCK_BYTES // (8 * out.element_size() * Xb.shape[0]))
            for r in range(0, X1.shape[0], rows):
                out[r : r + rows] += closed(model, X1[r : r + rows], Xb)
            routes.append("closed_form")
            return
        if method == "closed_form":
            raise _Unsupported(
                f"no closed form is known for a {type(model).__name__} (closed forms: "
                "DiagonalNet, MatrixFactorization, QuadraticNet and their Symmetrized versions)"
            )
    if method in ("auto", "structured"):
        try:
            route = _structured_route(model, C, out.dtype, X1)
            _blocked_kernel(route, X1, X2, C, full, chunk_size, out)
            routes.append("structured")
            return
        except _Unsupported:
            if method == "structured":
                raise
    h = Homogeneous(model, degree=1, _skip_check=True)
    _blocked_kernel(_jacobian_route(h, C), X1, X2, C, full, chunk_size, out)
    routes.append("jacobian")


def empirical_ntk(
    model: nn.Module,
    X1: torch.Tensor,
    X2: torch.Tensor | None = None,
    *,
    chunk_size: int | None = None,
    method: str = "auto",
    trace: bool = False,
) -> torch.Tensor:
    r"""Empirical neural tangent kernel of a model at its current parameters.

    .. math::

        K_{ij} = \langle \nabla_\theta f(\theta; x^{(1)}_i),\,
                         \nabla_\theta f(\theta; x^{(2)}_j) \rangle,
        \qquad
        K_{(i,a),(j,b)} = \langle \nabla_\theta f_a(\theta; x^{(1)}_i),\,
                                  \nabla_\theta f_b(\theta; x^{(2)}_j) \rangle

    for a single-output and a ``C``-output model. For a network built of linear layers
    z_l = W_l a_{l-1} + b_l with pointwise activations, the ``"structured"`` route sums over
    layers

    .. math::

        K = \sum_l \big(\tilde A_l \tilde A_l'^{\top}\big) \odot \big(\Delta_l \Delta_l'^{\top}\big),
        \qquad \tilde A_l = [A_l,\ \mathbf 1],\quad \Delta_l = \partial f / \partial z_l,

    from the layer inputs A_l and the back-propagated output gradients Δ_l, both computed for
    all examples at once as matrices (one forward and one backward matrix pass), so that the
    per-example gradients (an n × p Jacobian) are never formed (Novak et al. 2022). Supported:
    :class:`HomogeneousMLP` and plain ``nn.Sequential`` of ``nn.Linear`` (any biases),
    ``nn.Conv2d`` (``groups=1``, integer zero padding; its per-example weight gradients,
    ``C × out·in·kh·kw`` numbers per example, are formed from Δ and the unfolded patches),
    ``nn.ReLU``, ``nn.LeakyReLU``, ``nn.Identity`` and ``nn.Flatten``, and
    :class:`Symmetrized` / :func:`mirror_init` versions of those.

    ==================  ==========================================================
    symbol              meaning / argument
    ==================  ==========================================================
    θ ∈ R^p             the trainable parameters of ``model`` (``requires_grad``)
    x⁽¹⁾_i, x⁽²⁾_j      rows of ``X1`` and ``X2`` (``X2 = X1`` when omitted)
    f_a, C              the a-th of the ``C`` outputs of the model
    A_l, Δ_l            input of layer l (n × in_l), ∂f/∂z_l (n × C × out_l)
    ==================  ==========================================================

    Parameters
    ----------
    model : torch.nn.Module or Homogeneous
        Any module (the parameters with ``requires_grad=False`` are not part of θ).
    X1 : torch.Tensor
        Inputs, shape ``(n1, ...)``, on the model's device; floating inputs are cast to the
        model's dtype.
    X2 : torch.Tensor, optional
        Second set of inputs, shape ``(n2, ...)`` with the same trailing shape. Default: ``X1``
        (the symmetric case; only the upper block triangle is computed).
    chunk_size : int, optional
        Number of examples per row and column block. When the per-example intermediates of
        all inputs fit (``chunk_size >= n2``, or by default about 1 GiB), they are computed
        once and rows are contracted ``chunk_size`` at a time. Otherwise at most two blocks
        of per-example intermediates are alive: ``chunk_size × C × p`` numbers for
        ``"jacobian"`` (the per-example gradients), ``chunk_size × Σ_l (in_l + C·out_l)`` for
        ``"structured"`` (layer inputs and output gradients), and the column blocks are
        recomputed for each row block. Default: a row block of about 768 MiB and column blocks
        of about 256 MiB of intermediates; kernel-block temporaries stay under about 256 MiB.
    method : {"auto", "closed_form", "structured", "jacobian"}, default "auto"
        ``"auto"`` picks, separately for each copy of a :class:`Symmetrized` model, the closed
        form when one is known, else the structured route when the module is supported, else
        the generic Jacobian contraction.
    trace : bool, default False
        For a ``C``-output model, return the ``(n1, n2)`` trace kernel Σ_a K_{(i,a),(j,a)}
        instead of the full kernel.

    Returns
    -------
    torch.Tensor
        ``K`` on the model's device in its dtype: shape ``(n1, n2)`` for a single output (or
        ``trace=True``), else ``(n1·C, n2·C)`` with row ``i·C + a`` for example i, output a.

    Raises
    ------
    ValueError
        If ``X1`` or ``X2`` does not fit the model (trailing shape, device, NaN), or ``method``
        does not apply to the model (the message says why).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(3, alpha=1.0, dtype=torch.float64)
    >>> X = torch.eye(3, dtype=torch.float64)
    >>> ib.empirical_ntk(net, X)  # 8 α² ⟨x, x'⟩ at u = v = α·1, depth 2
    tensor([[8., 0., 0.],
            [0., 8., 0.],
            [0., 0., 8.]], dtype=torch.float64)
    >>> mlp = ib.HomogeneousMLP(4, [16, 16], seed=0, dtype=torch.float64)
    >>> Z = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> K1 = ib.empirical_ntk(mlp, Z, method="structured")
    >>> K2 = ib.empirical_ntk(mlp, Z, method="jacobian")
    >>> bool(torch.allclose(K1, K2, rtol=1e-12, atol=0))
    True

    References
    ----------
    Jacot, Gabriel & Hongler, Neural Tangent Kernel: Convergence and Generalization in Neural
    Networks, NeurIPS 2018, arXiv:1806.07572.
    Novak, Sohl-Dickstein & Schoenholz, Fast Finite Width Neural Tangent Kernel, ICML 2022,
    arXiv:2206.08720.
    Lyu et al., Dichotomy of Early and Late Phase Implicit Biases Can Provably Induce Grokking,
    ICLR 2024, arXiv:2311.18817 (Section 2: the kernel regime).
    """
    check_choice(method, _FUNC, "method", _METHODS)
    if not isinstance(model, nn.Module):
        raise fail_type(_FUNC, "model", "a torch.nn.Module", model)
    if not isinstance(trace, bool):
        raise fail_type(_FUNC, "trace", "a bool", trace)
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, _FUNC, "chunk_size", minimum=1)
    h = model if isinstance(model, Homogeneous) else Homogeneous(model, degree=1, _skip_check=True)
    if X2 is X1:
        X2 = None  # the symmetric case: half the work
    X1, X2, C = _prepare(h, X1, X2)
    full = C > 1 and not trace
    n1 = X1.shape[0]
    n2 = n1 if X2 is None else X2.shape[0]
    shape = (n1 * C, n2 * C) if full else (n1, n2)
    out = torch.zeros(shape, dtype=h.dtype, device=h.device)
    routes: list[str] = []
    try:
        _accumulate(h.model, X1, X2, C, full, method, chunk_size, out, routes)
    except _Unsupported as exc:
        raise fail(
            _FUNC,
            "method",
            f"a route that applies to this {type(h.model).__name__}",
            repr(method),
            f"It does not apply because {exc}. Use method='auto' or 'jacobian'.",
        ) from exc
    return out
