"""What the library knows about a torch module, shared by every room.

Evaluate a user's model without changing it, check its parameters, and recognise the layers
that break homogeneity or determinism: :func:`functional_forward` (``functional_call``
that never leaves a substituted tensor behind), :func:`check_model` (finite real parameters of
one float dtype, not on ``meta``), :func:`untouched` (restore parameters, buffers, train/eval
flags and the global random state) and :func:`called_modules` (which submodules a forward pass
actually calls), and :func:`layer_problem` (normalization layers, non-homogeneous
activations, random layers in training mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call

from implicitbias._validation import fail

__all__ = [
    "functional_forward",
    "check_model",
    "untouched",
    "called_modules",
    "label",
    "layer_problem",
]

NON_HOMOGENEOUS_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.SiLU,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,  # also ReLU6, a subclass
    nn.Hardsigmoid,
    nn.Hardswish,
    nn.Softsign,
    nn.LogSigmoid,
    nn.Tanhshrink,
    nn.Softshrink,
    nn.Hardshrink,
    nn.Softmax,
    nn.Softmin,
    nn.LogSoftmax,
    nn.Softmax2d,
)
NORMALIZATIONS: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._NormBase,  # BatchNorm*, InstanceNorm*, SyncBatchNorm, lazy variants
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.CrossMapLRN2d,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),
)
DROPOUTS: tuple[type[nn.Module], ...] = (nn.modules.dropout._DropoutNd,)


# --------------------------------------------------------------------------- evaluation
def functional_forward(
    model: nn.Module,
    params: dict[str, torch.Tensor],
    buffers: dict[str, torch.Tensor],
    args: tuple[Any, ...],
) -> Any:
    """``torch.func.functional_call`` that always leaves the module's own tensors in place.

    ``functional_call`` swaps tensors into every name a tied tensor is reachable under, and
    swaps them back in the same order; when one module is reachable under two names (a layer
    used twice in an ``nn.Sequential``), the second restore puts the *substituted* tensor back,
    silently replacing the module's ``nn.Parameter`` with a plain tensor. This wrapper records
    every module's parameter and buffer slots and restores the original objects afterwards.
    """
    saved: list[tuple[nn.Module, dict[str, Any], dict[str, Any]]] = [
        (m, dict(m._parameters), dict(m._buffers)) for m in model.modules()
    ]
    try:
        return functional_call(model, (params, buffers), args)
    finally:
        for m, ps, bs in saved:
            for k, v in ps.items():
                if m._parameters.get(k) is not v:
                    m._parameters[k] = v
            for k, v in bs.items():
                if m._buffers.get(k) is not v:
                    m._buffers[k] = v


# --------------------------------------------------------------------------- parameters
def check_model(model: nn.Module, names: Sequence[str], func: str, arg: str = "model") -> None:
    """The trainable parameters ``names`` hold finite real data of one floating-point dtype."""
    named: dict[str, torch.Tensor] = dict(model.named_parameters())
    dtypes: dict[torch.dtype, str] = {}
    for name in names:
        p = named[name]
        if p.is_meta:
            raise fail(
                func,
                arg,
                "a module whose parameters hold data",
                f"parameter '{name}' on the 'meta' device",
                "Materialize the model first, e.g. model.to_empty(device='cpu') followed by "
                "its initialization.",
            )
        if p.is_complex() or not p.is_floating_point():
            raise fail(
                func,
                arg,
                "a module with real floating-point parameters",
                f"parameter '{name}' of dtype {p.dtype}",
            )
        dtypes.setdefault(p.dtype, name)
    if len(dtypes) > 1:
        listing = ", ".join(f"'{n}' is {d}" for d, n in dtypes.items())
        raise fail(
            func,
            arg,
            "a module whose trainable parameters share one floating-point dtype",
            f"mixed dtypes ({listing})",
            "Convert the whole model, e.g. model.to(torch.float64).",
        )
    if len({named[n].device for n in names}) == 1:  # one device synchronization for all
        with torch.no_grad():
            if bool(torch.stack([torch.isfinite(named[n]).all() for n in names]).all()):
                return
    for name in names:
        p = named[name].detach()
        if not bool(torch.isfinite(p).all()):
            bad = int(p.numel() - int(torch.isfinite(p).sum()))
            raise fail(
                func,
                arg,
                "a module with finite parameters",
                f"{bad} NaN or infinite entries in parameter '{name}'",
                "A diverged run or an overflowing initialization scale leaves such parameters.",
            )


# --------------------------------------------------------------------------- state guard
@contextlib.contextmanager
def untouched(model: nn.Module) -> Iterator[None]:
    """Run a block that evaluates ``model`` and leave the model exactly as it was.

    Restores, also when the block raises: every parameter and buffer bitwise (copied back only
    when it changed, so autograd version counters of untouched tensors do not move), the
    ``training`` flag of every submodule (each as it was, not a recursive ``train()``), and the
    global random state (CPU, and the model's accelerator).
    """
    modes = [(m, m.training) for m in model.modules()]
    tensors = [(t, t.detach().clone()) for t in (*model.parameters(), *model.buffers())]
    devices = {t.device for t, _ in tensors if t.device.type not in ("cpu", "meta")}
    fork: Any = contextlib.nullcontext()
    if len(devices) <= 1:
        dev = next(iter(devices), None)
        fork = torch.random.fork_rng(
            devices=[] if dev is None else [dev.index or 0],
            device_type=dev.type if dev is not None else "cuda",
        )
    try:
        with fork:
            yield
    finally:
        with torch.no_grad():
            for t, saved in tensors:
                if t.shape != saved.shape or not torch.equal(t.detach(), saved):
                    if t.shape == saved.shape:
                        t.copy_(saved)
                    else:  # pragma: no cover - a forward that resizes its own buffers
                        t.data = saved
        for m, flag in modes:
            m.training = flag


@contextlib.contextmanager
def called_modules(model: nn.Module) -> Iterator[list[tuple[str, nn.Module]]]:
    """Record the submodules a forward pass calls, in call order (each once)."""
    calls: list[tuple[str, nn.Module]] = []
    seen: set[int] = set()
    handles = []

    def hook_for(name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any) -> None:
            if id(mod) not in seen:
                seen.add(id(mod))
                calls.append((name, mod))

        return hook

    try:
        for name, mod in model.named_modules():
            handles.append(mod.register_forward_pre_hook(hook_for(name)))
        yield calls
    finally:
        for handle in handles:
            handle.remove()


# --------------------------------------------------------------------------- layers
def label(name: str, mod: nn.Module) -> str:
    """How an error names a layer: its qualified name and class."""
    return f"'{name}' ({type(mod).__name__})" if name else f"the model ({type(mod).__name__})"


def layer_problem(calls: Sequence[tuple[str, nn.Module]]) -> tuple[str, str] | None:
    """The first layer that makes f(θ; x) random or not homogeneous: ``(kind, reason)``.

    ``kind`` is ``"random"`` (dropout or RReLU in training mode) or ``"layer"``.
    """
    for name, mod in calls:
        if isinstance(mod, DROPOUTS) and mod.training and float(getattr(mod, "p", 0.0)) > 0:
            return (
                "random",
                f"{label(name, mod)} is a dropout layer in training mode (p = {mod.p}), so the "
                "forward pass is nondeterministic; call model.eval() before the check",
            )
        if isinstance(mod, nn.RReLU) and mod.training:
            return (
                "random",
                f"{label(name, mod)} draws its slopes at random in training mode, so the "
                "forward pass is nondeterministic; call model.eval() before the check",
            )
    for name, mod in calls:
        if isinstance(mod, NORMALIZATIONS):
            return (
                "layer",
                f"{label(name, mod)} is a normalization layer: it divides by a scale computed "
                "from its input (making the layers before it scale-invariant), and its shift "
                "(affine bias or running mean) is an additive offset",
            )
        if isinstance(mod, nn.PReLU):
            return (
                "layer",
                f"{label(name, mod)} has a trainable negative slope, which scaling θ scales "
                "too; use nn.LeakyReLU with a fixed slope",
            )
        if isinstance(mod, NON_HOMOGENEOUS_ACTIVATIONS):
            return (
                "layer",
                f"{label(name, mod)} is an activation that is not positively homogeneous "
                "(σ(cz) ≠ c^k σ(z)); use nn.ReLU, nn.LeakyReLU or no activation",
            )
    return None
