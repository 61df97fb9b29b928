r"""When is a network's multi-output NTK exactly :math:`K \otimes I_C`? Proven, never assumed.

For a ``C``-output network whose forward pass ends with a linear layer
:math:`f(x) = W \psi(x) + b` (``W`` of shape ``(C, h)``), the per-parameter gradients are

* of the last layer: :math:`\partial f_a / \partial W_{cj} = \delta_{ac}\,\psi_j(x)` and
  :math:`\partial f_a / \partial b_c = \delta_{ac}`, so the last layer contributes exactly
  :math:`(\psi(x)^\top \psi(x') + [b \text{ trains}]) \, \delta_{ab}` to
  :math:`K_{(x,a),(x',b)}`;
* of every earlier parameter :math:`\theta'`: :math:`\partial f / \partial \theta' =
  W\,\partial \psi / \partial \theta'`, which vanishes identically when ``W = 0`` (a
  last-layer-zero initialization; in floating point too, the back-propagated products
  being exact zeros when every parameter is finite), and does not count when no earlier
  parameter trains (``requires_grad=False``).

So the multi-output NTK is :math:`K \otimes I_C` with
:math:`K(x, x') = [W \text{ trains}]\,\psi(x)^\top\psi(x') + [b \text{ trains}]` when the last
layer is the last operation of the forward pass and either ``W`` is exactly zero or no earlier
parameter trains; a sum of parts with disjoint parameters (:class:`~implicitbias.Symmetrized`,
``f = g(θ₁) − g(θ₂)``) has it when every part has it. The forward pass is the one the structured
NTK route proves (``_chain.py``: the layer chain read off the model's own forward pass, the
chain's parameters exactly the trainable ones, the arithmetic of every layer checked on every
row), and ``psi(x)`` is that pass's input to the last layer. Anything else (a symmetrized net
with a non-zero last layer, an activation after the last layer, a module the chain does not
cover) is reported as "not known to be ``K ⊗ I_C``", with the reason.
"""

from __future__ import annotations

from typing import cast

import torch
from torch import nn

from implicitbias.kernel_regime._chain import Chain, module_problem, verified_chain
from implicitbias.kernel_regime._route import LOG, _Unsupported
from implicitbias.kernel_regime.ntk import _disjoint, _trainable
from implicitbias.models.capabilities import ntk_parts, unwrap

__all__ = ["kron_ntk"]

# rows of the last layer's inputs computed per forward pass
_ROWS = 1024


def _last_layer(chain: Chain, C: int, where: str) -> int:
    """Index (in ``chain.ops``) of the output layer; raises _Unsupported unless the multi-output
    kernel of the chain is ``K ⊗ I_C``."""
    ops = chain.ops
    weighted = [k for k, op in enumerate(ops) if op.kind in ("linear", "conv")]
    last = weighted[-1]
    if ops[last].kind != "linear" or last != len(ops) - 1:
        raise _Unsupported(
            f"the forward pass of {where} does not end with an nn.Linear layer (the kernel of "
            "an output behind an activation, a reshape or a convolution is not K ⊗ I_C)"
        )
    out = cast(nn.Linear, ops[last].module)
    if out.out_features != C:
        raise _Unsupported(f"the last layer of {where} has {out.out_features} outputs, not {C}")
    for p in chain.model.parameters():
        if not bool(torch.isfinite(p).all()):
            raise _Unsupported(f"{where} has a parameter with a non-finite entry")
    earlier = [ops[k].module for k in weighted[:-1]]
    trains = [m for m in earlier if m is not None and _trainable(m)]
    if trains and bool(torch.count_nonzero(out.weight)):
        raise _Unsupported(
            f"the last layer of {where} is not zero while earlier layers train (their gradients "
            f"W ∂ψ/∂θ couple the classes)"
        )
    return last


def _features(chain: Chain, X: torch.Tensor, last: int) -> torch.Tensor:
    """The inputs of the last layer on every row of ``X``, the chain re-proven per chunk."""
    rows = []
    for r in range(0, X.shape[0], _ROWS):
        saved, _ = chain.run(X[r : r + _ROWS])
        rows.append(cast(torch.Tensor, saved[last]).reshape(min(_ROWS, X.shape[0] - r), -1))
    return torch.cat(rows)


def _chain_kernel(
    model: nn.Module, X1: torch.Tensor, X2: torch.Tensor | None, C: int, where: str
) -> torch.Tensor:
    chain = verified_chain(model, X1)
    last = _last_layer(chain, C, where)
    out = cast(nn.Linear, chain.ops[last].module)
    n2 = X1.shape[0] if X2 is None else X2.shape[0]
    K = torch.zeros((X1.shape[0], n2), dtype=out.weight.dtype, device=out.weight.device)
    with torch.no_grad():
        if out.weight.requires_grad:
            A1 = _features(chain, X1, last)
            A2 = A1 if X2 is None else _features(chain, X2, last)
            K += A1 @ A2.T
            if X2 is None:
                K = 0.5 * (K + K.T)
        elif X2 is not None:
            chain.verify(X2)
        if out.bias is not None and out.bias.requires_grad:
            K += 1.0
    return K


def _kernel(
    model: nn.Module, X1: torch.Tensor, X2: torch.Tensor | None, C: int, where: str
) -> torch.Tensor:
    n2 = X1.shape[0] if X2 is None else X2.shape[0]
    if not _trainable(model):
        p = next(iter(model.parameters()), None)
        dtype = p.dtype if p is not None else X1.dtype
        return torch.zeros((X1.shape[0], n2), dtype=dtype, device=X1.device)
    parts = ntk_parts(model)
    if parts is not None:
        problem = module_problem(model, where)
        if problem is not None:
            raise _Unsupported(problem)
        if not _disjoint(parts):
            raise _Unsupported(f"the parts of {where} share parameters")
        kernels = [_kernel(p, X1, X2, C, f"{where}.{name}") for name, p in parts.items()]
        return torch.stack(kernels).sum(0)
    return _chain_kernel(model, X1, X2, C, where)


def kron_ntk(
    model: nn.Module, X1: torch.Tensor, X2: torch.Tensor | None, C: int
) -> tuple[torch.Tensor | None, str]:
    """``(K, "")`` when the ``C``-output NTK of ``model`` between ``X1`` and ``X2`` (default
    ``X1``) is proven to be ``K ⊗ I_C`` (``K`` of shape ``(n1, n2)``, in the model's dtype and
    on its device), else ``(None, why not)``. The inputs must already be validated
    (:func:`~implicitbias.models.prepare_input`)."""
    try:
        K = _kernel(unwrap(model), X1, X2, C, "model")
    except _Unsupported as exc:
        LOG.debug("kron_ntk: the NTK is not known to be K ⊗ I_C: %s", exc)
        return None, str(exc)
    LOG.debug("kron_ntk: the multi-output NTK is K ⊗ I_C (proven)")
    return K, ""
