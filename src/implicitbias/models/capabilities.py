"""What the solvers ask a model, answered by the model itself (the capability protocol).

A solver never tests a model's class. It asks through the functions here, which look for an
optional method on the model (unwrapping :class:`~implicitbias.Homogeneous`); a new model
declares what it supports in its own file:

=========================  ====================================================================
method on the model        used by
=========================  ====================================================================
``degree`` (attribute)     :class:`~implicitbias.Homogeneous` (the declared degree, checked)
``convex_surrogate(task)`` :func:`~implicitbias.kkt_residuals`: the name of the convex problem
                           whose solutions are the model's KKT points (``"l1_max_margin"``,
                           ``"l1_interpolation"``, ``"min_nuclear_norm"``), or ``None``
=========================  ====================================================================
"""

from __future__ import annotations

from typing import Literal

from torch import nn

__all__ = ["convex_surrogate", "unwrap"]

Task = Literal["classification", "regression"]


def unwrap(model: nn.Module) -> nn.Module:
    """The user's module inside an :class:`~implicitbias.Homogeneous` wrapper (else ``model``)."""
    from implicitbias.models.homogeneous import Homogeneous

    return model.model if isinstance(model, Homogeneous) else model


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
    method = getattr(unwrap(model), "convex_surrogate", None)
    if not callable(method):
        return None
    name = method(task)
    return name if isinstance(name, str) else None
