"""Zero-output initializations (THEORY §1): the difference trick, mirrored units, a zero last layer."""

from __future__ import annotations

import copy
from typing import cast

import torch
from torch import nn

from implicitbias._validation import fail, fail_type
from implicitbias.models.mlp import HomogeneousMLP
from implicitbias.models.symmetrized import Symmetrized

__all__ = ["Symmetrized", "symmetrize", "mirror_init", "zero_last_layer"]


def symmetrize(model: nn.Module) -> Symmetrized:
    """Zero-output model by the difference trick: ``g(θ₁; x) − g(θ₂; x)`` with θ₂ a copy of θ₁.

    Works for any module and preserves its homogeneity degree. The returned module owns
    ``model`` (as ``.positive``) and a deep copy of it (as ``.negative``).

    Parameters
    ----------
    model : torch.nn.Module
        The model g.

    Returns
    -------
    Symmetrized
        A module whose output is exactly zero until it is trained.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.symmetrize(ib.HomogeneousMLP(3, [8], seed=0))
    >>> net(torch.randn(4, 3)).abs().max().item()
    0.0
    """
    return Symmetrized(model)


def _linear_layers(model: nn.Module, func: str) -> list[nn.Linear]:
    if isinstance(model, HomogeneousMLP):
        return [cast(nn.Linear, layer) for layer in model.layers]
    if isinstance(model, nn.Sequential):
        layers = [m for m in model if isinstance(m, nn.Linear)]
        if layers and isinstance(model[-1], nn.Linear):
            return layers
    raise fail_type(
        func,
        "model",
        "a HomogeneousMLP or an nn.Sequential ending in nn.Linear",
        model,
        "Use ib.symmetrize for other modules.",
    )


def mirror_init(model: nn.Module) -> nn.Module:
    r"""Mirrored initialization (Chizat, Oyallon & Bach 2019): duplicate the last hidden layer's
    units and negate the copies' output weights, so the output is zero.

    For a network ``a^T σ(W h(x))`` this returns ``[a; −a]^T σ([W; W] h(x))``: the last hidden
    width doubles, all other layers are shared unchanged. The result is a new model (the input
    is not modified) of the same homogeneity degree.

    Parameters
    ----------
    model : HomogeneousMLP or torch.nn.Sequential
        A network with at least one hidden layer, ending in a bias-free ``nn.Linear``.

    Returns
    -------
    torch.nn.Module
        A model of the same class with zero output (up to floating-point rounding of the final
        dot product, typically ~1e-16 relative).
    """
    func = "mirror_init"
    layers = _linear_layers(model, func)
    if len(layers) < 2:
        raise fail(
            func, "model", "a network with at least one hidden layer", "a single linear layer"
        )
    if layers[-1].bias is not None or (len(layers) > 2 and layers[-2].bias is not None):
        raise fail(func, "model", "bias-free last and last-hidden layers", "a layer with a bias")
    new = copy.deepcopy(model)
    new_layers = _linear_layers(new, func)
    hidden, out = new_layers[-2], new_layers[-1]
    with torch.no_grad():
        W = hidden.weight
        a = out.weight
        mirrored_hidden = nn.Linear(
            hidden.in_features,
            2 * hidden.out_features,
            bias=hidden.bias is not None,
            dtype=W.dtype,
            device=W.device,
        )
        mirrored_hidden.weight.copy_(torch.cat([W, W], dim=0))
        if hidden.bias is not None:
            mirrored_hidden.bias.copy_(torch.cat([hidden.bias, hidden.bias]))
        mirrored_out = nn.Linear(
            2 * out.in_features, out.out_features, bias=False, dtype=a.dtype, device=a.device
        )
        mirrored_out.weight.copy_(torch.cat([a, -a], dim=1))
    if isinstance(new, HomogeneousMLP):
        new.layers[-2] = mirrored_hidden
        new.layers[-1] = mirrored_out
        new.widths = (*new.widths[:-1], 2 * new.widths[-1])
    else:
        idx = [i for i, m in enumerate(new) if isinstance(m, nn.Linear)]
        new[idx[-2]] = mirrored_hidden
        new[idx[-1]] = mirrored_out
    return new


def zero_last_layer(model: nn.Module) -> nn.Module:
    """Set the last linear layer's weights to zero, in place (output exactly zero).

    Note that at this initialization the gradients of all but the last layer vanish too; the
    mirrored or symmetrized initializations avoid that.

    Parameters
    ----------
    model : HomogeneousMLP or torch.nn.Sequential
        A network ending in ``nn.Linear``.

    Returns
    -------
    torch.nn.Module
        The same model, modified.
    """
    last = _linear_layers(model, "zero_last_layer")[-1]
    if last.bias is not None:
        raise fail("zero_last_layer", "model", "a bias-free last layer", "a last layer with a bias")
    with torch.no_grad():
        last.weight.zero_()
    return model
