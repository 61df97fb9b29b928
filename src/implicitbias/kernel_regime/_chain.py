r"""The layer chain a model's forward pass applies, proven on the inputs at hand: the guard of
the structured NTK route (``_structured.py``).

The structured route computes K = Σ_l (Ã_l Ã_l'ᵀ) ⊙ (Δ_l Δ_l'ᵀ) layer by layer, which is right
only if the model *is* the chain of layers the route differentiates. The chain is therefore
read off the forward pass itself, never off the module tree alone, and any doubt sends the
model to the Jacobian route:

1. No forward or backward hook (on any submodule, or global), no parametrization
   (``torch.nn.utils.parametrize``, ``weight_norm``) and no instance-level ``forward``.
2. The forward pass, run with temporary hooks that record the calls of the supported
   modules, is a chain: the first receives the input tensor itself, each next one the previous
   one's output tensor itself (the same object, not changed in place since), and the model
   returns the last output itself. Any other operation on the way (a functional activation, a
   residual sum, a scaling, ``detach``) breaks the chain. On the first row the pass runs with
   gradients enabled, which must stay enabled in every call (no ``torch.no_grad`` inside) with
   the autograd history unchanged between calls (no ``detach_``). A module called twice is two
   steps of the chain (a shared activation object is fine).
3. The parameters of the chain's layers are exactly the trainable parameters of the model,
   each used once (a layer called twice, or a tensor shared by two layers, is tied weights);
   frozen parameters (``requires_grad=False``) are excluded on both sides.
4. On every input row, each linear or convolutional layer passes a randomized (Freivalds)
   check of its arithmetic, z·v = A (Wᵀv) + b·v for a fixed random v, against the rounding
   bound of the products (an activation, ``nn.Identity`` or ``nn.Flatten`` is torch's own
   module, hook-free, and only its shapes are checked); on the first row, replaying the whole
   chain by hand reproduces ``model(x)`` to ``REPLAY_ULPS`` units of rounding.

Points 2 and 4 run on the very forward pass whose layer inputs the route then uses, so the
guard costs O(n · width) on top of it (no second forward pass).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules import module as _module_globals
from torch.nn.utils import parametrize

from implicitbias.kernel_regime._freivalds import conv_check, linear_check
from implicitbias.kernel_regime._route import _Unsupported
from implicitbias.models.mlp import HomogeneousMLP

SUPPORTED = (
    "nn.Linear and nn.Conv2d layers with ReLU / LeakyReLU / Identity activations, nn.Flatten "
    "and HomogeneousMLP blocks, each applied to the output of the one before"
)
_LAYERS = (nn.Linear, nn.Conv2d, nn.ReLU, nn.LeakyReLU, nn.Identity, nn.Flatten, HomogeneousMLP)
_ACTS = (nn.ReLU, nn.LeakyReLU)
_HOOKS = (
    ("_forward_pre_hooks", "forward pre-hook"),
    ("_forward_hooks", "forward hook"),
    ("_backward_pre_hooks", "backward pre-hook"),
    ("_backward_hooks", "backward hook"),
)
REPLAY_ULPS = 100  # the replayed first row must match model(x) to this many units of rounding
_VERIFY_BYTES = 256 * 2**20  # activations of one chunk of a verification pass


@dataclass
class _Op:
    kind: str  # "linear", "conv", "act", "reshape"
    module: nn.Module | None = None
    slope: float = 0.0  # negative slope of a (leaky) ReLU
    shape: tuple[int, ...] = ()  # per-example output shape of a reshape

    def key(self) -> tuple:
        return (self.kind, id(self.module), self.slope, self.shape)


# ---------------------------------------------------------------------------------------------
# 1. Hooks and parametrizations
# ---------------------------------------------------------------------------------------------
def module_names(model: nn.Module) -> dict[int, str]:
    """``id(module) -> "model.layers[0]"`` for every submodule (first name of a shared one)."""
    names: dict[int, str] = {}
    for name, m in model.named_modules():
        path = re.sub(r"\.(\d+)(?=\.|$)", r"[\1]", "model." + name if name else "model")
        names.setdefault(id(m), path)
    return names


def module_problem(m: nn.Module, where: str) -> str | None:
    """Why ``m``'s own call may not be its class's arithmetic (a hook on it, a
    parametrization of its parameters, an instance-level ``forward``), or ``None``."""
    if parametrize.is_parametrized(m):
        return f"{where} has a parametrization (torch.nn.utils.parametrize / weight_norm)"
    for attr, kind in _HOOKS:
        hooks = getattr(m, attr, None)
        if hooks:
            hook = next(iter(hooks.values()))
            label = getattr(hook, "__qualname__", type(hook).__name__)
            return f"{where} has a {kind} ({label})"
    if "forward" in vars(m):
        return f"{where} has its own forward method (an instance attribute)"
    return None


def hook_problem(model: nn.Module, names: dict[int, str]) -> str | None:
    """The first :func:`module_problem` of ``model`` or a submodule, or a global module hook."""
    for attr, kind in _HOOKS:
        if getattr(_module_globals, "_global" + attr, None):
            return f"a global module {kind} is registered (torch.nn.modules.module)"
    for m in model.modules():
        problem = module_problem(m, names[id(m)])
        if problem:
            return problem
    return None


# ---------------------------------------------------------------------------------------------
# 2 and 4. Recording the calls, and checking each call's arithmetic as it happens
# ---------------------------------------------------------------------------------------------
@dataclass
class _Call:
    module: nn.Module
    inp: torch.Tensor | None  # None: called with other than one positional tensor
    before: tuple  # (version, autograd node) of the input when the call began
    grad: bool  # gradients enabled during the call
    out: Any = None
    after: tuple = ()
    saved: list = field(default_factory=list)  # per op of the call, what the route needs
    mask: torch.Tensor | None = None  # an activation's derivative, from its input
    inner: list = field(default_factory=list)  # (layer, input, output) inside a HomogeneousMLP
    problem: str | None = None


def _state(t: Any) -> tuple:
    return (t._version, t.grad_fn) if isinstance(t, torch.Tensor) else ()


def _is_layer(m: nn.Module) -> bool:
    """A call recorded as one step: a supported layer, or any module without submodules."""
    return type(m) in _LAYERS or next(m.children(), None) is None


def _finish(call: _Call, keep: bool, check: bool, cache: dict) -> None:
    """Check (``check``) a finished call's arithmetic; keep (``keep``) what the route needs."""
    m, z = call.module, call.out
    x = cast(torch.Tensor, call.inp)  # called only for a call with one positional tensor
    t = type(m)
    if t is nn.Linear:
        call.problem = linear_check(cast(nn.Linear, m), x, z, cache) if check else None
        call.saved = [x]
    elif t is nn.Conv2d:
        m = cast(nn.Conv2d, m)
        if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
            call.problem = (
                f"is an nn.Conv2d with groups={m.groups}, padding={m.padding!r}, padding_mode="
                f"{m.padding_mode!r} (supported: groups=1, integer zero padding)"
            )
            return
        if x.ndim != 4 or not isinstance(z, torch.Tensor):
            call.problem = "does not map a 4-D batch to a tensor"
            return
        U = F.unfold(x.detach(), m.kernel_size, m.dilation, m.padding, m.stride)
        call.problem = conv_check(m, U, z, cache) if check else None
        call.saved = [(U, x.shape, z.shape)]
    elif t in _ACTS:  # torch's own elementwise activation: its output's shape suffices
        if not isinstance(z, torch.Tensor) or z.shape != x.shape:
            call.problem = "does not keep the shape of its input"
        call.saved = [call.mask]
    elif t is nn.Flatten:  # torch's own flatten: a batch of n examples to n outputs
        if not isinstance(z, torch.Tensor) or z.ndim == 0 or z.shape[0] != x.shape[0]:
            call.problem = "does not map a batch of n examples to n outputs"
        elif z.numel() != x.numel():
            call.problem = "changes the number of values it reshapes"
        call.saved = [x.shape]
    elif t is HomogeneousMLP:
        _finish_mlp(call)
    if not keep:
        call.saved = []


def _finish_mlp(call: _Call) -> None:
    """A HomogeneousMLP block: its layers' calls must chain through its activation."""
    m, x, z = cast(HomogeneousMLP, call.module), cast(torch.Tensor, call.inp), call.out
    layers = list(m.layers)
    if [layer for layer, _, _ in call.inner] != layers or any(
        type(layer) is not nn.Linear for layer in layers
    ):
        call.problem = "does not apply its nn.Linear layers once each, in order"
        return
    saved: list[Any] = []
    prev = x
    for k, (_, a, out) in enumerate(call.inner):
        if k == 0 and a is not x:
            call.problem = "does not feed its input to its first layer"
            return
        if k > 0:  # its own forward: a = relu(prev), or a is prev for a linear network
            if not isinstance(a, torch.Tensor) or a.shape != prev.shape:
                call.problem = "does not apply its layers one after another"
                return
            if m.activation == "relu":
                saved.append((a > 0).to(a.dtype))  # relu(z) > 0 exactly where z > 0
        saved.append(a)
        prev = out
    if not isinstance(z, torch.Tensor) or z.numel() != prev.numel():
        call.problem = "does not return its last layer's output"
        return
    call.saved = saved + [prev.shape] if z.shape[1:] != (m.d_out,) else saved


class _Recorder:
    """Forward hooks that record the outermost supported-layer calls of one forward pass."""

    def __init__(self, keep: bool, check: bool, cache: dict) -> None:
        self.keep, self.check, self.cache = keep, check, cache
        self.calls: list[_Call] = []
        self.depth = 0

    def pre(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not _is_layer(module):
            return
        if self.depth == 0:
            x = args[0] if len(args) == 1 and not kwargs else None
            x = x if isinstance(x, torch.Tensor) else None
            call = _Call(module, x, _state(x), torch.is_grad_enabled())
            self.calls.append(call)
            if type(module) in _ACTS and x is not None:  # before an in-place activation
                leaky = cast(nn.LeakyReLU, module)
                slope = 0.0 if type(module) is nn.ReLU else float(leaky.negative_slope)
                if slope == 0.0:
                    call.mask = (x > 0).to(x.dtype)
                else:
                    one = torch.ones((), dtype=x.dtype, device=x.device)
                    call.mask = torch.where(x > 0, one, one * slope)
        self.depth += 1

    def post(self, module: nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
        if not _is_layer(module):
            return
        self.depth -= 1
        call = self.calls[-1]
        if self.depth == 0:
            call.out, call.after = output, _state(output)
            if call.inp is not None and call.problem is None:
                try:
                    _finish(call, self.keep, self.check, self.cache)
                except Exception as exc:  # noqa: BLE001 - a failed check is a problem, not a crash
                    call.problem = f"could not be checked ({exc})"
        elif self.depth == 1 and type(call.module) is HomogeneousMLP:
            x = args[0] if len(args) == 1 and not kwargs else None
            call.inner.append((module, x, output))
            if self.check and call.problem is None and type(module) is nn.Linear:
                problem = linear_check(module, x, output, self.cache)
                call.problem = None if problem is None else f"has a layer that {problem}"


def _record(
    model: nn.Module,
    X: torch.Tensor,
    keep: bool,
    grad: bool,
    check: bool = True,
    cache: dict | None = None,
) -> tuple:
    """Run ``model(X)`` with recording hooks; return (calls, state of X, output)."""
    rec = _Recorder(keep, check, {} if cache is None else cache)
    handles = []
    try:
        for m in model.modules():
            handles.append(m.register_forward_pre_hook(rec.pre, with_kwargs=True))
            handles.append(m.register_forward_hook(rec.post, with_kwargs=True))
        start = _state(X)
        with torch.set_grad_enabled(grad):
            out = model(X)
    except Exception as exc:  # noqa: BLE001 - any failure here means: do not trust the parse
        raise _Unsupported(f"the forward pass failed under inspection ({exc})") from exc
    finally:
        for handle in handles:
            handle.remove()
    return rec.calls, start, out


# ---------------------------------------------------------------------------------------------
# The chain
# ---------------------------------------------------------------------------------------------
def _ops_of(call: _Call, where: str) -> list[_Op]:
    m, t = call.module, type(call.module)
    if t is nn.Linear:
        return [_Op("linear", m)]
    if t is nn.Conv2d:
        return [_Op("conv", m)]
    if t is nn.ReLU:
        return [_Op("act", slope=0.0)]
    if t is nn.LeakyReLU:
        return [_Op("act", slope=float(cast(nn.LeakyReLU, m).negative_slope))]
    if t is nn.Identity:
        return []
    if t is nn.Flatten:
        return [_Op("reshape", shape=tuple(call.out.shape[1:]))]
    ops: list[_Op] = []  # a HomogeneousMLP
    m = cast(HomogeneousMLP, m)
    for k, layer in enumerate(m.layers):
        ops.append(_Op("linear", layer))
        if k < len(m.layers) - 1 and m.activation == "relu":
            ops.append(_Op("act", slope=0.0))
    if call.out.shape[1:] != (m.d_out,):
        ops.append(_Op("reshape", shape=tuple(call.out.shape[1:])))
    return ops


def _parse(
    calls: list[_Call],
    names: dict[int, str],
    X: torch.Tensor,
    start: tuple,
    out: Any,
    grad: bool = False,
) -> tuple[list[_Op], list[Any]]:
    """The chain of operations the recorded forward pass applied, and per op what the route
    needs of it (empty unless recorded with ``keep``), or _Unsupported(reason). ``grad``: the
    pass ran with gradients enabled, and every call must have too."""
    if not calls:
        raise _Unsupported(f"the forward pass calls none of the supported modules ({SUPPORTED})")
    prev, state, what = X, start, "the model's input"
    ops: list[_Op] = []
    saved: list[Any] = []
    for call in calls:
        where = names[id(call.module)]
        if type(call.module) not in _LAYERS:
            raise _Unsupported(
                f"{where} is a {type(call.module).__name__}; the structured route supports "
                f"only {SUPPORTED}"
            )
        if call.inp is None:
            raise _Unsupported(f"{where} is called with other than one positional tensor")
        if grad and not call.grad:
            raise _Unsupported(f"{where} runs with gradients disabled inside the forward pass")
        if call.inp is not prev or call.before != state:
            raise _Unsupported(
                f"the input of {where} is not {what} itself (the forward pass applies an "
                "operation outside the supported modules: a functional activation, a sum, a "
                "scaling, a detach or an in-place change)"
            )
        if call.problem is not None:
            raise _Unsupported(f"{where} {call.problem}")
        ops.extend(_ops_of(call, where))
        saved.extend(call.saved)
        prev, state, what = call.out, call.after, f"the output of {where}"
    if out is not prev or _state(out) != state:
        raise _Unsupported(
            f"the model's output is not {what} itself (the forward pass applies an operation "
            "after its last supported module)"
        )
    return ops, saved


def _check_parameters(model: nn.Module, ops: list[_Op], names: dict[int, str]) -> None:
    """The chain's layers use exactly the model's trainable parameters, each once."""
    weighted = [op.module for op in ops if op.kind in ("linear", "conv")]
    if not weighted:
        raise _Unsupported("the model has no nn.Linear or nn.Conv2d layer")
    trainable = {id(p): name for name, p in model.named_parameters() if p.requires_grad}
    layers: set[int] = set()
    used: dict[int, str] = {}
    for m in weighted:
        where = names.get(id(m), f"a {type(m).__name__}")
        if id(m) in layers:
            raise _Unsupported(f"{where} is applied twice (tied weights)")
        layers.add(id(m))
        for pname in ("weight", "bias"):
            t = getattr(m, pname)
            if t is None:
                continue
            if id(t) in used:
                raise _Unsupported(f"{where}.{pname} is also {used[id(t)]} (tied weights)")
            used[id(t)] = f"{where}.{pname}"
            if t.requires_grad and id(t) not in trainable:
                raise _Unsupported(f"{where}.{pname} is not a parameter of the model")
    unused = [name for i, name in trainable.items() if i not in used]
    if unused:
        raise _Unsupported(f"the trainable parameter '{unused[0]}' is outside the parsed layers")


def replay(ops: list[_Op], X: torch.Tensor) -> torch.Tensor:
    """The chain ``ops`` applied to ``X`` by hand (no autograd)."""
    h = X
    with torch.no_grad():
        for op in ops:
            if op.kind == "linear":
                lin = cast(nn.Linear, op.module)
                h = F.linear(h, lin.weight, lin.bias)
            elif op.kind == "conv":
                conv = cast(nn.Conv2d, op.module)
                h = F.conv2d(h, conv.weight, conv.bias, conv.stride, conv.padding, conv.dilation)
            elif op.kind == "act":
                h = F.leaky_relu(h, op.slope) if op.slope else torch.relu(h)
            else:
                h = h.reshape(X.shape[0], *op.shape)
    return h


@dataclass
class Chain:
    """A model's proven layer chain (see the module doc); ``run`` re-proves it on a batch."""

    model: nn.Module
    names: dict[int, str]
    ops: list[_Op]
    rows: int  # rows per chunk of a verification pass
    first: tuple[list[Any], torch.Tensor]  # what ``run`` gives on the first row
    cache: dict = field(default_factory=dict)  # per-weight terms of the Freivalds checks

    def run(self, X: torch.Tensor, *, keep: bool = True) -> tuple[list[Any], torch.Tensor]:
        """One forward pass of the model on ``X``, checked call by call: per op of the chain,
        what the route needs (layer input / (patches, input and output shape) / activation
        derivative / input shape), and the model's output."""
        calls, start, out = _record(self.model, X, keep, grad=False, cache=self.cache)
        ops, saved = _parse(calls, self.names, X, start, out)
        if [op.key() for op in ops] != [op.key() for op in self.ops]:
            raise _Unsupported("the forward pass applies different layers to other inputs")
        if keep and len(saved) != len(ops):  # pragma: no cover - one entry per op, always
            raise _Unsupported("the recorded forward pass is incomplete")
        if not out.is_floating_point():
            raise _Unsupported("the model's output is not a floating-point tensor")
        return saved, out

    def verify(self, X: torch.Tensor) -> None:
        """:meth:`run` on every row of ``X``, in chunks, keeping nothing."""
        for r in range(0, X.shape[0], self.rows):
            self.run(X[r : r + self.rows], keep=False)


def verified_chain(model: nn.Module, probe: torch.Tensor) -> Chain:
    """Read the layer chain off one forward pass of ``model`` on ``probe`` (gradients enabled)
    and prove points 1-4 of the module doc on it, replaying the chain on ``probe[:1]``."""
    names = module_names(model)
    problem = hook_problem(model, names)
    if problem:
        raise _Unsupported(problem)
    x = probe[:1]
    # no Freivalds checks on this row: the whole chain is replayed on it below
    calls, start, out = _record(model, x, keep=True, grad=True, check=False)
    ops, saved = _parse(calls, names, x, start, out, grad=True)
    _check_parameters(model, ops, names)
    if not isinstance(out, torch.Tensor) or not out.is_floating_point():
        raise _Unsupported("the model's output is not a floating-point tensor")
    ref, rep = out.detach(), replay(ops, x)
    if rep.shape != ref.shape or rep.dtype != ref.dtype:
        raise _Unsupported(
            f"replaying the parsed layers gives {tuple(rep.shape)} {rep.dtype} outputs, the "
            f"model {tuple(ref.shape)} {ref.dtype}"
        )
    scale = max(float(ref.abs().max()), float(rep.abs().max()))
    err = float((rep - ref).abs().max())
    if not err <= REPLAY_ULPS * torch.finfo(ref.dtype).eps * scale:
        raise _Unsupported(
            f"replaying the parsed layers does not reproduce the model's output (max deviation "
            f"{err:.3g} for outputs up to {scale:.3g})"
        )
    outs = [c.out for c in calls] + [o for c in calls for _, _, o in c.inner]
    per_row = x.numel() + sum(o.numel() for o in outs if isinstance(o, torch.Tensor))
    rows = max(1, _VERIFY_BYTES // (3 * x.element_size() * per_row))
    first = ([s.detach() if isinstance(s, torch.Tensor) else s for s in saved], ref)
    return Chain(model, names, ops, rows, first)
