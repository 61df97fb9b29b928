"""The model, inputs and labels of a run, checked at the public boundary, with the caller and
the argument named in every message: the model as a :class:`Homogeneous` of known degree
(:func:`homogeneous_and_inputs`), the shape of its outputs (:func:`probe_outputs`) and labels
that fit the loss (:func:`check_labels`).

They are :func:`~implicitbias.dynamics.train`'s rules, with ``func``/``arg`` parameters so that
:class:`~implicitbias.dynamics.Monitor` (and its test set) reports its own names.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from implicitbias._errors import NotHomogeneousError
from implicitbias._modules import untouched
from implicitbias._validation import as_class_labels, as_float_array, as_pm1_labels, fail, fail_type
from implicitbias.dynamics.losses import Loss
from implicitbias.models.homogeneous import Homogeneous, homogeneity_degree

__all__: list[str] = []


def homogeneous_and_inputs(
    model: nn.Module, X: Any, degree: int | float | None, *, func: str
) -> tuple[Homogeneous, torch.Tensor, tuple[int, ...]]:
    """The model as a :class:`Homogeneous`, the validated inputs and the outputs' shape.

    The inputs are checked (and one forward pass is run on all of them) first, so that a bad
    ``X`` is reported as ``func``'s argument. The degree is ``degree`` when given, else the
    model's own, else measured on ``X``.
    """
    probe = Homogeneous(model, degree=1, check=False)
    X = probe.prepare_input(X, func=func)
    out_shape = probe_outputs(probe, X, func=func)
    if degree is not None:
        h = Homogeneous(model, degree=degree)
    elif isinstance(model, Homogeneous):
        h = model
    elif getattr(model, "degree", None) is not None:
        h = Homogeneous(model)
    else:
        try:
            measured = homogeneity_degree(model, X)
        except NotHomogeneousError as exc:
            raise NotHomogeneousError(
                f"{func}: the model carries no `degree`, so its degree was measured on X, and "
                f"it is not positively homogeneous in its parameters. {exc} Pass an "
                f"L-homogeneous model (a built-in one, or ib.Homogeneous(model, degree=L)), or "
                f"pass degree=L."
            ) from exc
        h = Homogeneous(model, degree=measured, check=False)
    if h is not probe:
        # A declared degree (degree=, a Homogeneous wrapper, a model's own `degree`) is checked
        # once against the model here: a wrong L silently changes the margins and t*.
        X = h.prepare_input(X, func=func)
    return h, X, out_shape


def probe_outputs(h: Homogeneous, X: torch.Tensor, *, func: str, arg: str = "X") -> tuple[int, ...]:
    """Shape of the model's outputs on the whole of ``X``; a forward that fails names ``arg``."""
    try:
        with torch.no_grad(), untouched(h.model):  # a BatchNorm in train mode keeps its stats
            out = h(X)
    except (ValueError, TypeError, RuntimeError, IndexError) as exc:
        raise fail(
            func,
            arg,
            "a batch of inputs the model accepts",
            f"shape {tuple(X.shape)} and dtype {X.dtype}",
            f"The model's forward raised {type(exc).__name__}: {exc}",
        ) from exc
    if not isinstance(out, torch.Tensor):
        raise fail_type(func, "model", "a module whose forward returns a tensor", out)
    n = X.shape[0]
    if out.ndim == 0 or out.shape[0] != n:
        # one output row per example, else the loss pairs outputs with the wrong labels
        bad = arg if X.ndim == 1 else "model"
        raise fail(
            func,
            bad,
            f"a model and inputs with one output per example (outputs of shape (n,) or (n, C) "
            f"with n = {arg}.shape[0] = {n})",
            f"outputs of shape {tuple(out.shape)} for {arg} of shape {tuple(X.shape)}",
            "A single example needs its batch dimension (X.unsqueeze(0)); a forward must not "
            "sum, average or flatten over the batch.",
        )
    return tuple(out.shape)


def check_labels(
    loss: Loss,
    y: Any,
    n: int,
    out_shape: tuple[int, ...],
    dtype: torch.dtype,
    device: torch.device,
    *,
    func: str,
    arg: str = "y",
) -> torch.Tensor:
    """The labels as a tensor the loss takes, checked against the loss and the outputs."""
    if loss.task == "binary":
        if len(out_shape) != 1:
            raise fail(
                func,
                "model",
                f"a single-output model (outputs of shape (n,)) for the {loss.name!r} loss",
                f"outputs of shape {out_shape}",
                "Use loss='cross_entropy' for several logits.",
            )
        arr = as_pm1_labels(y, func, arg, n=n)
        return torch.as_tensor(arr, dtype=dtype, device=device)
    if loss.task == "multiclass":
        if len(out_shape) != 2 or out_shape[1] < 2:
            raise fail(
                func,
                "model",
                "a model with C ≥ 2 outputs (logits of shape (n, C)) for the 'cross_entropy' loss",
                f"outputs of shape {out_shape}",
            )
        arr = as_class_labels(y, func, arg, n=n, n_classes=out_shape[1])
        return torch.as_tensor(arr, dtype=torch.int64, device=device)
    arr = as_float_array(y, func, arg, ndim=(1, 2))
    if arr.shape[0] != n:
        raise fail(func, arg, f"of length {n} (one target per example)", f"length {arr.shape[0]}")
    if tuple(arr.shape[1:]) != tuple(out_shape[1:]):
        raise fail(
            func, arg, f"targets of shape {out_shape} (the model's outputs)", f"shape {arr.shape}"
        )
    return torch.as_tensor(arr, dtype=dtype, device=device)
