"""Bias-free ReLU multilayer perceptrons, homogeneous in their weights (THEORY §1)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from implicitbias._validation import (
    check_choice,
    check_float_dtype,
    check_int,
    check_model_input,
    fail_type,
)

__all__ = ["HomogeneousMLP"]

Activation = Literal["relu", "linear"]


class HomogeneousMLP(nn.Module):
    r"""ReLU MLP without hidden biases: positively homogeneous of degree ``len(widths) + 1``.

    .. math::

        f(\theta; x) = W_{k+1}\,\sigma(W_k \cdots \sigma(W_1 x + b_1)),
        \qquad \sigma(z) = \max(z, 0),

    with the optional first-layer bias ``b_1`` (``first_layer_bias=True``), which keeps the
    network homogeneous in all its parameters jointly: scaling ``(W_1, b_1)`` by ``c`` scales
    the first pre-activation by ``c``.

    Parameters
    ----------
    d_in : int
        Input dimension.
    widths : sequence of int
        Hidden widths; the degree is ``len(widths) + 1``. An empty sequence gives a linear model.
    d_out : int, default 1
        Number of outputs. With ``d_out == 1`` the forward pass returns shape ``(n,)``, else
        ``(n, d_out)``.
    first_layer_bias : bool, default False
        Add a bias to the first layer only.
    activation : {"relu", "linear"}, default "relu"
        ``"linear"`` gives a deep linear network (also homogeneous).
    seed : int, optional
        Seed of the He-normal initialization (``std = sqrt(2 / fan_in)``); the global torch
        generator is not touched when it is given.
    dtype, device :
        Passed to the parameters.

    Attributes
    ----------
    layers : torch.nn.ModuleList
        The ``nn.Linear`` layers, first to last.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.HomogeneousMLP(5, [16, 16], seed=0, dtype=torch.float64)
    >>> net.degree
    3
    >>> x = torch.randn(4, 5, dtype=torch.float64)
    >>> bool(torch.allclose(net(x) * 8, ib.Homogeneous(net).function(2 * ib.Homogeneous(net).theta(), x)))
    True
    """

    def __init__(
        self,
        d_in: int,
        widths: Sequence[int],
        d_out: int = 1,
        *,
        first_layer_bias: bool = False,
        activation: Activation = "relu",
        seed: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        name = "HomogeneousMLP"
        self.d_in = check_int(d_in, name, "d_in", minimum=1)
        if isinstance(widths, (int, str)) or not isinstance(widths, Sequence):
            raise fail_type(name, "widths", "a sequence of positive integers", widths)
        self.widths = tuple(check_int(w, name, "widths", minimum=1) for w in widths)
        self.d_out = check_int(d_out, name, "d_out", minimum=1)
        self.first_layer_bias = bool(first_layer_bias)
        self.activation = check_choice(activation, name, "activation", ("relu", "linear"))
        check_float_dtype(dtype, name)
        sizes = (self.d_in, *self.widths, self.d_out)
        generator = None
        if seed is not None:
            seed = check_int(seed, name, "seed", minimum=0)
            generator = torch.Generator(device="cpu").manual_seed(seed)
        layers = []
        for k in range(len(sizes) - 1):
            bias = self.first_layer_bias and k == 0
            layer = nn.Linear(sizes[k], sizes[k + 1], bias=bias, dtype=dtype, device=device)
            with torch.no_grad():
                std = (2.0 / sizes[k]) ** 0.5
                w = torch.randn(layer.weight.shape, generator=generator, dtype=layer.weight.dtype)
                layer.weight.copy_(w * std)
                if bias:
                    layer.bias.zero_()
            layers.append(layer)
        self.layers = nn.ModuleList(layers)

    @property
    def degree(self) -> int:
        """The homogeneity degree: the number of weight layers."""
        return len(self.layers)

    def _act(self, z: torch.Tensor) -> torch.Tensor:
        return torch.relu(z) if self.activation == "relu" else z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Outputs of shape ``(n,)`` (``d_out == 1``) or ``(n, d_out)`` for inputs ``(n, d_in)``."""
        ok = isinstance(x, torch.Tensor) and x.ndim >= 1 and x.shape[-1] == self.d_in
        check_model_input(
            x, "HomogeneousMLP", "x", f"(n, {self.d_in})", ok, self.layers[0].weight.dtype
        )
        h = x
        for layer in self.layers[:-1]:
            h = self._act(layer(h))
        out = self.layers[-1](h)
        return out.squeeze(-1) if self.d_out == 1 else out

    def input_spec(self) -> str:
        """The expected inputs, in words (capability protocol)."""
        return f"a float tensor of shape (n, {self.d_in})"

    def extra_repr(self) -> str:
        return f"degree={self.degree}, first_layer_bias={self.first_layer_bias}"
