r"""Gram blocks ``Q_AB = G_A G_Bᵀ`` of constraint gradients, from features of each constraint.

Two providers, both with ``features(idx)`` (an opaque per-constraint record) and
``gram(FA, FB)`` (the block, a float64 array):

* :class:`LayerFactors` (a module whose trainable parameters are the weights and biases of
  ``nn.Linear`` layers, each called once per forward on 2-D inputs): the gradient of a
  constraint with respect to a layer's weight is the outer product :math:`\delta_k a_k^\top` of
  the back-propagated output cotangent :math:`\delta_k = \partial q_k / \partial z` and the
  layer's input :math:`a_k`, so

  .. math::

      \langle \nabla q_k, \nabla q_l \rangle = \sum_\ell \langle \delta^\ell_k,
      \delta^\ell_l\rangle \big(\langle a^\ell_k, a^\ell_l\rangle + [\text{bias}]\big),

  at ``Σ_ℓ (in_ℓ + out_ℓ)`` numbers per constraint instead of ``p``; the features of a chunk of
  constraints cost one forward and one backward pass on their examples (one row each). The
  factorization is verified on a few constraints against :class:`GradientRows` when built.
* :class:`GradientRows` (any module): the gradients themselves, ``(k, p)``.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Protocol

import numpy as np
import torch
from torch import nn

from implicitbias.kkt._gradients import ConstraintGradients

__all__ = ["GradientRows", "GramProvider", "LayerFactors", "gram_provider"]


class GramProvider(Protocol):
    """What :class:`._gram_cache.GramCache` needs: per-constraint features, their Gram
    blocks, and how to concatenate and index them."""

    name: str
    grads: ConstraintGradients
    bytes_per_constraint: int

    def features(self, idx: np.ndarray) -> Any: ...

    def gram(self, FA: Any, FB: Any) -> np.ndarray: ...

    def sq_norms(self, F: Any) -> np.ndarray: ...

    def concat(self, parts: list[Any]) -> Any: ...

    def take(self, F: Any, sel: np.ndarray) -> Any: ...


class _Factors(NamedTuple):
    """Per-constraint layer factors: cotangents Δ_ℓ (k, out_ℓ) and inputs A_ℓ (k, in_ℓ)."""

    deltas: list[torch.Tensor]
    inputs: list[torch.Tensor]


class GradientRows:
    """Gram blocks from the explicit gradient rows (any module)."""

    name = "rows"

    def __init__(self, grads: ConstraintGradients) -> None:
        self.grads = grads
        self.bytes_per_constraint = grads.p * (torch.finfo(grads.dtype).bits // 8)

    def features(self, idx: np.ndarray) -> torch.Tensor:
        return self.grads.rows_of(idx)

    def gram(self, FA: torch.Tensor, FB: torch.Tensor) -> np.ndarray:
        return (FA @ FB.T).to(torch.float64).cpu().numpy()

    @staticmethod
    def sq_norms(F: torch.Tensor) -> np.ndarray:
        """``‖∇q_k‖²`` of each constraint (float64)."""
        return (F.to(torch.float64) ** 2).sum(1).cpu().numpy()

    @staticmethod
    def concat(parts: list[Any]) -> torch.Tensor:
        return torch.cat(parts)

    @staticmethod
    def take(F: torch.Tensor, sel: np.ndarray) -> torch.Tensor:
        return F[torch.as_tensor(sel, device=F.device)]


class _Unsupported(Exception):
    """The module is not a chain of ``nn.Linear`` parameters (the message says why)."""


def _linear_layers(grads: ConstraintGradients) -> list[tuple[str, nn.Linear, bool, bool]]:
    """``(name, module, weight trains, bias trains)`` for the layers holding θ; raises
    :class:`_Unsupported` unless every trainable parameter is such a weight or bias."""
    model = grads.model
    wanted = set(grads.params)
    named = dict(model.named_parameters())
    trained = {id(named[k]) for k in wanted}
    layers: list[tuple[str, nn.Linear, bool, bool]] = []
    covered: set[str] = set()
    for name, mod in model.named_modules(remove_duplicate=False):
        own = dict(mod.named_parameters(recurse=False))
        full = {f"{name}.{pn}" if name else pn for pn in own}
        hit = full & wanted
        if any(id(v) in trained for v in own.values()) and not hit:
            raise _Unsupported(f"a trained parameter is tied into {name!r}")
        if hit and any(m is mod for _, m, _, _ in layers):
            raise _Unsupported(f"module {name!r} is reachable under two names")
        if not hit:
            continue
        if type(mod) is not nn.Linear:
            raise _Unsupported(f"parameters in a {type(mod).__name__}")
        prefix = f"{name}." if name else ""
        w, b = prefix + "weight", prefix + "bias"
        layers.append((name, mod, w in hit, b in hit))
        covered |= hit
    if covered != wanted:
        raise _Unsupported("parameters shared between modules or outside nn.Linear layers")
    return layers


class LayerFactors:
    """Gram blocks from the per-layer factors of ``nn.Linear`` layers (see the module doc)."""

    name = "layer_factors"

    def __init__(self, grads: ConstraintGradients) -> None:
        self.grads = grads
        self.layers = _linear_layers(grads)
        size = sum(m.in_features + m.out_features for _, m, _, _ in self.layers)
        self.bytes_per_constraint = size * (torch.finfo(grads.dtype).bits // 8)

    def features(self, idx: np.ndarray) -> _Factors:
        g = self.grads
        ex = torch.as_tensor(g.rows[idx], device=g.device)
        xs = g.inputs(ex)
        k = int(xs.shape[0])
        seen: dict[int, list[tuple[Any, Any]]] = {id(m): [] for _, m, _, _ in self.layers}

        def hook(mod: nn.Module, args: tuple, out: Any) -> None:
            seen[id(mod)].append((args[0] if args else None, out))

        handles = [m.register_forward_hook(hook, prepend=True) for _, m, _, _ in self.layers]
        try:
            ps = {n: v.detach().requires_grad_(True) for n, v in g.params.items()}
            val = (g.outputs(ps, xs) * g.cotangents(idx)).sum()
        finally:
            for hd in handles:
                hd.remove()
        zs, inputs = [], []
        for name, m, _, _ in self.layers:
            calls = seen[id(m)]
            if len(calls) != 1:
                raise _Unsupported(f"layer {name!r} called {len(calls)} times per forward")
            a, z = calls[0]
            if not (
                isinstance(a, torch.Tensor)
                and isinstance(z, torch.Tensor)
                and a.ndim == 2
                and a.shape[0] == k
                and z.ndim == 2
                and z.requires_grad
            ):
                raise _Unsupported(f"layer {name!r} does not map (k, in) rows to (k, out) rows")
            zs.append(z)
            inputs.append(a.detach())
        deltas = torch.autograd.grad(val, zs, allow_unused=True)
        out = [torch.zeros_like(z) if d is None else d.detach() for z, d in zip(zs, deltas)]
        return _Factors(out, inputs)

    def gram(self, FA: _Factors, FB: _Factors) -> np.ndarray:
        total = None
        for (_, _, w, b), dA, dB, aA, aB in zip(
            self.layers, FA.deltas, FB.deltas, FA.inputs, FB.inputs
        ):
            inner = aA @ aB.T if w else torch.zeros((), dtype=aA.dtype, device=aA.device)
            if b:
                inner = inner + 1.0
            term = (dA @ dB.T) * inner
            total = term if total is None else total + term
        assert total is not None
        return total.to(torch.float64).cpu().numpy()

    def sq_norms(self, F: _Factors) -> np.ndarray:
        """``‖∇q_k‖² = Σ_ℓ ‖δ_k‖²(‖a_k‖² + [bias])`` of each constraint (float64)."""
        total = None
        for (_, _, w, b), d, a in zip(self.layers, F.deltas, F.inputs):
            d2 = (d.to(torch.float64) ** 2).sum(1)
            a2 = (a.to(torch.float64) ** 2).sum(1) if w else torch.zeros_like(d2)
            term = d2 * (a2 + 1.0) if b else d2 * a2
            total = term if total is None else total + term
        assert total is not None
        return total.cpu().numpy()

    @staticmethod
    def concat(parts: list[Any]) -> _Factors:
        return _Factors(
            [torch.cat(ds) for ds in zip(*(p.deltas for p in parts))],
            [torch.cat(xs) for xs in zip(*(p.inputs for p in parts))],
        )

    @staticmethod
    def take(F: _Factors, sel: np.ndarray) -> _Factors:
        idx = torch.as_tensor(sel, device=F.deltas[0].device)
        return _Factors([d[idx] for d in F.deltas], [a[idx] for a in F.inputs])


def _verify(fast: LayerFactors, idx: np.ndarray) -> bool:
    """The factored Gram equals the Gram of explicit gradient rows on the constraints idx."""
    rows = fast.grads.rows_of(idx, batched=False)
    ref = (rows @ rows.T).to(torch.float64).cpu().numpy()
    got = fast.gram(fast.features(idx), fast.features(idx))
    scale = max(float(np.max(np.abs(ref))), 1e-300)
    return bool(np.max(np.abs(got - ref)) <= 1e3 * fast.grads.unit_roundoff * scale * 10)


def gram_provider(grads: ConstraintGradients, probe: np.ndarray) -> GramProvider:
    """:class:`LayerFactors` when the module allows it and passes the check on the constraints
    ``probe``; else :class:`GradientRows`."""
    try:
        fast = LayerFactors(grads)
        if _verify(fast, probe):
            return fast
    except _Unsupported:
        pass
    except (RuntimeError, ValueError, TypeError):  # an exotic module: the generic rows
        pass
    return GradientRows(grads)
