"""What the solvers ask a model, answered by the model itself (the capability protocol).

A solver never tests a model's class. It asks through the functions here, which look for an
optional method on the model (unwrapping :class:`~implicitbias.Homogeneous`); a new model
declares what it supports in its own file, and a model that declares nothing gets the generic
answer (no hint, no extra check, the structured or Jacobian NTK route, no convex surrogate):

=================================  ============================================================
method on the model                asked by (what it answers)
=================================  ============================================================
``degree`` (attribute)             :class:`~implicitbias.Homogeneous`: the declared degree
                                   (checked on the first inputs)
``input_spec()``                   :func:`input_spec`: the expected inputs in words, e.g.
                                   ``"a float tensor of shape (n, 5)"``, for error messages
``check_input(X, *, func, arg)``   :func:`check_input`: raise ``InvalidArgumentError`` naming
                                   ``func`` and ``arg`` for inputs the model cannot take
                                   (index pairs out of range), else return ``None``
``closed_form_ntk(X1, X2=None)``   :func:`closed_form_ntk` (:func:`~implicitbias.empirical_ntk`):
                                   the exact ``(n1, n2)`` NTK block of a single-output model,
                                   summed over its trainable parameters (``requires_grad``)
``ntk_parts()``                    :func:`ntk_parts` (:func:`~implicitbias.empirical_ntk`): a
                                   ``{name: submodule}`` dict of parts whose kernels sum to
                                   the model's (f = Σ ± part, disjoint parameters)
``convex_surrogate(task)``         :func:`convex_surrogate` (:func:`~implicitbias.kkt_residuals`):
                                   the name of the convex problem whose solutions are the
                                   model's KKT points, or ``None``
=================================  ============================================================

Rules of the lookup, so that a user's module never answers by accident:

* only a method defined by the model's **class** counts (a plain ``def``); an instance
  attribute, a submodule, a parameter or a property of the same name is ignored, and so is a
  method whose signature cannot take the arguments above;
* ``closed_form_ntk`` and ``ntk_parts`` describe the arithmetic of the class's own forward, so
  they count only when declared by the model's **own** class (a subclass, which may change the
  forward, declares them again); the others are inherited;
* an answer of the wrong type counts as no answer (``input_spec``, ``ntk_parts``,
  ``convex_surrogate``); a closed-form kernel of the wrong type, shape, dtype or device raises,
  naming ``model``.

The NTK routes check the rest themselves: a closed form or the parts are used only when the
model carries no hook, parametrization or instance-level ``forward``, and no tensor is shared
between its parameters (or parts).
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import nn

from implicitbias._validation import describe, fail, fail_type

__all__ = [
    "unwrap",
    "input_spec",
    "check_input",
    "closed_form_ntk",
    "ntk_parts",
    "convex_surrogate",
]

Task = Literal["classification", "regression"]
#: A closed-form kernel: ``kernel(X1, X2=None)`` -> the ``(n1, n2)`` NTK block.
ClosedForm = Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor]

_ARG = object()  # a placeholder argument, to test a method's signature without calling it


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside an :class:`~implicitbias.Homogeneous` wrapper (else ``model``)."""
    from implicitbias.models.homogeneous import Homogeneous

    return model.model if isinstance(model, Homogeneous) else model


def _declared(
    model: Any, name: str, *args: Any, own_class: bool = False, **kwargs: Any
) -> Callable[..., Any] | None:
    """The bound method ``name`` the model's class declares for the protocol, or ``None``.

    A plain function on the class (on ``type(model)`` itself when ``own_class``), not shadowed
    on the instance, whose signature accepts ``args`` and ``kwargs``.
    """
    cls = type(model)
    if own_class and name not in vars(cls):
        return None
    try:
        static = inspect.getattr_static(cls, name)
    except AttributeError:
        return None
    if not isinstance(static, types.FunctionType) or name in getattr(model, "__dict__", {}):
        return None
    if not _accepts(static, len(args), tuple(kwargs)):
        return None
    return getattr(model, name)


@functools.lru_cache(maxsize=256)
def _accepts(function: types.FunctionType, n_args: int, keywords: tuple[str, ...]) -> bool:
    """Whether ``function(self, *n_args positional, **keywords)`` binds (cached per function)."""
    try:
        inspect.signature(function).bind(_ARG, *[_ARG] * n_args, **dict.fromkeys(keywords, _ARG))
    except (TypeError, ValueError):
        return False
    return True


def input_spec(model: nn.Module) -> str | None:
    """The inputs the model expects, in words (for error messages), or ``None``.

    Parameters
    ----------
    model : torch.nn.Module
        A model, possibly wrapped in :class:`~implicitbias.Homogeneous`.

    Returns
    -------
    str or None
        The model's own ``input_spec()``, e.g. ``"a float tensor of shape (n, 5)"``.

    Examples
    --------
    >>> import implicitbias as ib
    >>> ib.models.input_spec(ib.DiagonalNet(5))
    'a float tensor of shape (n, 5)'
    """
    method = _declared(unwrap(model), "input_spec")
    if method is None:
        return None
    spec = method()
    return spec if isinstance(spec, str) else None


def check_input(model: nn.Module, X: torch.Tensor, *, func: str, arg: str = "X") -> None:
    """Refuse inputs the model cannot take, by the model's own ``check_input``, if any.

    Called on inputs already validated by :func:`~implicitbias.models.prepare_input` (a
    non-empty tensor on the model's device); the model checks what only it knows, e.g. that
    the index pairs of a :class:`~implicitbias.MatrixFactorization` are in range (a negative
    index would silently wrap around).

    Parameters
    ----------
    model : torch.nn.Module
        A model, possibly wrapped in :class:`~implicitbias.Homogeneous`.
    X : torch.Tensor
        The inputs.
    func, arg : str
        The public function and argument to name in error messages.

    Raises
    ------
    InvalidArgumentError
        From the model, naming ``func`` and ``arg``.
    """
    method = _declared(unwrap(model), "check_input", _ARG, func=func, arg=arg)
    if method is not None:
        method(X, func=func, arg=arg)


def closed_form_ntk(model: nn.Module, *, func: str = "closed_form_ntk") -> ClosedForm | None:
    """The model's closed-form NTK, ``kernel(X1, X2=None)``, or ``None`` if it declares none.

    The returned function calls the model's own ``closed_form_ntk`` (declared by its own
    class: see the module docstring) and checks its answer: a ``(n1, n2)`` tensor (``n2``
    rows of ``X2``, or of ``X1`` when ``X2`` is ``None``) in the dtype of the model's
    parameters, on the inputs' device. The inputs must be validated first
    (:func:`~implicitbias.models.prepare_input`: in the model's dtype, on its device, and
    :func:`check_input`). It does not check that the model's forward is its class's own (no
    hook, parametrization or tied parameters): :func:`~implicitbias.empirical_ntk` does,
    before using it, and uses it only for a single-output model.

    Parameters
    ----------
    model : torch.nn.Module
        A model, possibly wrapped in :class:`~implicitbias.Homogeneous`.
    func : str
        The public function to name in error messages.

    Returns
    -------
    callable or None

    Raises
    ------
    InvalidArgumentError, InvalidArgumentTypeError
        (From the returned function.) If the model's kernel is not such a tensor; the message
        names ``model``.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> kernel = ib.models.closed_form_ntk(ib.DiagonalNet(2, dtype=torch.float64))
    >>> kernel(torch.eye(2, dtype=torch.float64))  # 8 α² ⟨x, x'⟩ at depth 2
    tensor([[8., 0.],
            [0., 8.]], dtype=torch.float64)
    """
    inner = unwrap(model)
    method = _declared(inner, "closed_form_ntk", _ARG, _ARG, own_class=True)
    if method is None:
        return None
    name = f"{type(inner).__name__}.closed_form_ntk"

    def kernel(X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        K = method(X1, X2)
        if not isinstance(K, torch.Tensor):
            raise fail_type(func, "model", f"a module whose {name} returns a tensor", K)
        n2 = (X1 if X2 is None else X2).shape[0]
        dtype = next((p.dtype for p in inner.parameters() if p.requires_grad), K.dtype)
        if K.shape != (X1.shape[0], n2) or K.dtype != dtype or K.device != X1.device:
            raise fail(
                func,
                "model",
                f"a module whose {name} returns the ({X1.shape[0]}, {n2}) kernel block in its "
                f"dtype {dtype} on {X1.device}",
                describe(K),
            )
        return K

    return kernel


def ntk_parts(model: nn.Module) -> dict[str, nn.Module] | None:
    """The parts whose kernels sum to the model's NTK, ``{name: submodule}``, or ``None``.

    A model f = Σ_k ± g_k whose parts g_k have disjoint parameters has the kernel
    K_f = Σ_k K_{g_k}; :class:`~implicitbias.Symmetrized` (f = g(θ₁) − g(θ₂)) declares its
    two copies, so that :func:`~implicitbias.empirical_ntk` computes each by its own best
    route. Declared by the model's own class only; the parts must be submodules of the model
    (anything else counts as no answer).

    Parameters
    ----------
    model : torch.nn.Module
        A model, possibly wrapped in :class:`~implicitbias.Homogeneous`.

    Returns
    -------
    dict or None
        The model's own ``ntk_parts()``.
    """
    inner = unwrap(model)
    method = _declared(inner, "ntk_parts", own_class=True)
    if method is None:
        return None
    parts = method()
    if not isinstance(parts, dict) or not parts:
        return None
    children = {id(m) for m in inner.children()}
    for key, part in parts.items():
        if not isinstance(key, str) or not isinstance(part, nn.Module) or id(part) not in children:
            return None
    return dict(parts)


def convex_surrogate(model: nn.Module, task: Task) -> str | None:
    """The convex problem whose KKT points are the model's (THEORY §5), or ``None``.

    Parameters
    ----------
    model : torch.nn.Module
        A model, possibly wrapped in :class:`~implicitbias.Homogeneous`.
    task : {"classification", "regression"}

    Returns
    -------
    str or None
        ``"l1_max_margin"``, ``"l1_interpolation"`` or ``"min_nuclear_norm"`` for the built-in
        models that have one; the value of the model's own ``convex_surrogate(task)`` method.
    """
    method = _declared(unwrap(model), "convex_surrogate", task)
    if method is None:
        return None
    name = method(task)
    return name if isinstance(name, str) else None
