"""The generic route of ``empirical_ntk``: per-example Jacobians by ``torch.func``, contracted
block by block. It applies to any module (hooks, parametrizations, tied weights, custom
forwards) and differentiates with respect to the trainable parameters only."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from implicitbias.kernel_regime._route import _Route
from implicitbias.models.homogeneous import Homogeneous

_NO_BATCHING_RULE = "There is a performance drop because we have not yet implemented the batching"


def functional_parameters(
    model: nn.Module,
) -> tuple[dict[str, torch.Tensor], dict[str, str], dict[str, torch.Tensor]]:
    """The trainable parameters of ``model`` once each (by the first name of each tensor), the
    name each (module, attribute) path takes its value from, and the buffers.

    Paths are listed once per module *object*: ``torch.func.functional_call`` with
    ``tie_weights=True`` swaps a module used at two paths (tied weights by reuse) twice and
    restores it to the swapped-in tensor, silently replacing the model's parameter. Here each
    module is swapped once (``tie_weights=False``), and a tensor shared by two modules gets
    the same traced value at both paths, so its gradient sums over its uses.
    """
    first: dict[int, str] = {}
    params: dict[str, torch.Tensor] = {}
    paths: dict[str, str] = {}
    buffers: dict[str, torch.Tensor] = {}
    for prefix, module in model.named_modules():  # each module object once
        for name, p in module.named_parameters(
            prefix=prefix, recurse=False, remove_duplicate=False
        ):
            if p.requires_grad:
                paths[name] = first.setdefault(id(p), name)
                params.setdefault(paths[name], p.detach())
        buffers.update(module.named_buffers(prefix=prefix, recurse=False, remove_duplicate=False))
    return params, paths, buffers


def jacobian_route(h: Homogeneous, C: int) -> _Route:
    """Per-example Jacobians by ``vmap(jacrev)`` over a dict of the trainable parameters
    (frozen ones, ``requires_grad=False``, are held at their values and are not part of θ).

    Differentiating with respect to each parameter tensor (rather than a flat θ sliced into
    views) avoids materialising a zero-filled p-vector per parameter in the backward pass, and
    the blocks are contracted parameter by parameter, never concatenated into (n, p).
    """
    model = h.model
    params, paths, buffers = functional_parameters(model)
    p = sum(q.numel() for q in params.values())
    es = torch.empty((), dtype=h.dtype).element_size()

    def single(prm: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        values = {path: prm[name] for path, name in paths.items()}
        out = functional_call(model, (values, buffers), (x.unsqueeze(0),), tie_weights=False)
        return out.reshape(-1)

    jac = vmap(jacrev(single), in_dims=(None, 0))
    state = {"vmap": True}

    def loop(X: torch.Tensor) -> list[torch.Tensor]:
        """Per-example autograd, for modules vmap cannot batch."""
        blocks: list[list[torch.Tensor]] = [[] for _ in params]
        for x in X:
            prm = {k: v.clone().requires_grad_(True) for k, v in params.items()}
            with torch.enable_grad():
                out = single(prm, x)
                rows = [
                    torch.autograd.grad(o, list(prm.values()), retain_graph=True, allow_unused=True)
                    for o in out
                ]
            for k, q in enumerate(prm.values()):
                blocks[k].append(
                    torch.stack(
                        [torch.zeros_like(q) if g[k] is None else g[k] for g in rows]
                    ).reshape(C, -1)
                )
        return [torch.stack(b) for b in blocks]

    def features(X: torch.Tensor) -> list[torch.Tensor]:
        m = X.shape[0]
        if state["vmap"]:
            try:
                with warnings.catch_warnings():  # torch's notice that a batching rule is
                    # missing (e.g. weight_norm): the loop it falls back to is still exact
                    warnings.filterwarnings("ignore", _NO_BATCHING_RULE, UserWarning)
                    J = jac(params, X)
                return [J[name].detach().reshape(m, C, -1) for name in params]
            except (RuntimeError, ValueError, NotImplementedError):
                state["vmap"] = False  # modules vmap cannot batch: per-example autograd loop
        return loop(X)

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
