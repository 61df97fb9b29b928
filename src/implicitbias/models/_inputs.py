"""The library's one rule for a model's inputs and dtypes.

Every library function that takes a model and inputs ``X`` (``homogeneity_degree``,
``check_zero_output``, ``Homogeneous.jacobian``, ``empirical_ntk``, the NTK predictors,
``kkt_residuals`` and the margins, ``train``) validates ``X`` with
:meth:`Homogeneous.prepare_input` (or :func:`prepare_input` for any module), the one place
that applies this rule:

* the model's trainable parameters must be finite, real, of **one** floating-point dtype, and
  hold data (not on the ``meta`` device); otherwise ``InvalidArgumentError`` names ``model``;
* ``X`` must be a non-empty ``torch.Tensor`` on the model's device (not ``meta``);
* a **floating-point** ``X`` of another float dtype is **cast to the parameters' dtype** (the
  computation happens in the model's precision; a float64 ``X`` given to a float32 model is
  rounded to float32), and must be finite;
* an **integer** ``X`` is passed on unchanged, as indices (``MatrixFactorization``, an
  ``nn.Embedding``); a model that cannot take it is refused with ``InvalidArgumentError``
  naming ``X`` — integers are never cast to floats silently;
* ``bool`` and complex ``X`` are refused.

The built-in models themselves (``HomogeneousMLP``, ``DiagonalNet``, ``QuadraticNet``,
``MatrixFactorization``) do not cast: called directly on inputs of another dtype they raise, as
``torch.nn.Linear`` would, with a message that says how to convert.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from implicitbias._modules import check_model, untouched
from implicitbias._validation import describe, fail, fail_type

if TYPE_CHECKING:
    from implicitbias.models.homogeneous import Homogeneous

__all__ = ["prepare_input", "validate_input"]

#: hook tables of an nn.Module; a Homogeneous wrapper must leave them empty (see prepare_input)
_WRAPPER_HOOKS = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
)


def prepare_input(
    model: torch.nn.Module, X: Any, *, func: str = "prepare_input", arg: str = "X"
) -> torch.Tensor:
    """Inputs ``X`` validated (and cast) for ``model`` by the library's one input rule.

    The rule is stated at the top of this module: a float ``X`` is cast to the parameters'
    dtype and must stay finite; an integer ``X`` passes as indices only to a model that takes
    them; bool, complex, empty, ``meta`` and wrong-device inputs are refused. For an
    :class:`~implicitbias.Homogeneous` model a declared degree not yet checked is checked here.

    Parameters
    ----------
    model : torch.nn.Module
        Any module with trainable parameters (a :class:`~implicitbias.Homogeneous` or not).
    X : torch.Tensor
        Inputs of shape ``(n, ...)``.
    func, arg : str
        The public function and argument to name in error messages.

    Returns
    -------
    torch.Tensor
        ``X`` itself, or its cast to the model's floating-point dtype.

    Raises
    ------
    InvalidArgumentError, InvalidArgumentTypeError
        Naming ``func`` and ``arg`` (or ``model``).
    """
    from implicitbias.models.homogeneous import Homogeneous

    if isinstance(model, Homogeneous):
        return model.prepare_input(X, func=func, arg=arg)
    if not isinstance(model, torch.nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    return Homogeneous(model, degree=1, check=False).prepare_input(X, func=func, arg=arg)


def validate_input(h: Homogeneous, X: Any, func: str, arg: str = "X") -> torch.Tensor:
    """``X`` validated (and cast) for the wrapped model of ``h`` by the rule above.

    The wrapper itself must carry no hooks (every route evaluates ``h.model``, so they would be
    skipped silently).
    """
    check_model(h.model, h._names, func)
    hooks = [name for name in _WRAPPER_HOOKS if getattr(h, name, None)]
    if hooks:
        raise fail(
            func,
            "model",
            "a Homogeneous wrapper without hooks of its own",
            f"one with {', '.join(hooks)}",
            "The library evaluates the wrapped module (model.model), so a hook on the "
            "wrapper would be silently skipped; register it on the wrapped module instead.",
        )
    if not isinstance(X, torch.Tensor):
        raise fail_type(func, arg, "a torch.Tensor of inputs", X)
    if X.is_meta:
        raise fail(
            func,
            arg,
            "a tensor that holds data",
            "a tensor on the 'meta' device",
            "Create the inputs on the model's device.",
        )
    if X.ndim == 0 or X.shape[0] == 0:
        raise fail(
            func,
            arg,
            "a non-empty batch of inputs of shape (n, ...)",
            f"shape {tuple(X.shape)}",
        )
    if X.device != h.device:
        raise fail(
            func,
            arg,
            f"on the model's device ({h.device})",
            f"a tensor on {X.device}",
            "Move it with X.to(device).",
        )
    if X.is_complex() or X.dtype == torch.bool:
        raise fail(
            func,
            arg,
            "a real float tensor of inputs (or integer indices, for a model that takes them)",
            describe(X),
            f"Convert with {arg}.to({h.dtype}).",
        )
    if X.is_floating_point():
        if not bool(torch.isfinite(X).all()):
            bad = int(X.numel() - int(torch.isfinite(X).sum()))
            raise fail(func, arg, "finite (no NaN or inf)", f"{bad} non-finite entries")
        if X.dtype != h.dtype:
            X = X.to(h.dtype)
            if not bool(torch.isfinite(X).all()):
                top = torch.finfo(h.dtype).max
                raise fail(
                    func,
                    arg,
                    f"finite in the model's dtype {h.dtype} (|x| ≤ {top:.3g})",
                    "entries that overflow when cast to it",
                )
    else:
        _check_index_input(h, X, func, arg)
    return X


def _check_index_input(h: Homogeneous, X: torch.Tensor, func: str, arg: str) -> None:
    """An integer ``X`` goes on only to a model that takes it (one-row probe, no side effect)."""
    try:
        with untouched(h.model), torch.no_grad():
            h.model(X[:1])
    except Exception as exc:
        raise fail(
            func,
            arg,
            "inputs the model accepts: a float tensor (integer tensors are passed on "
            "unchanged, as indices, and only to a model that takes them)",
            describe(X),
            f"Convert float inputs with {arg}.to({h.dtype}). The model raised: {exc}",
        ) from exc
