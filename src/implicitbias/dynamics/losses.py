r"""Training losses in numerically stable form (THEORY §1, §3 "Multiclass").

Every loss is a function ℓ(f; y) of a model output ``f`` and a label ``y``; the training loss is
the mean L(θ) = (1/n) Σ_i ℓ(f(θ; x_i); y_i). The margin of example i is q_i = y_i f_i (binary)
or q_i = f_{y_i} − max_{j≠y_i} f_j (multiclass).

========================  =======================  ==========================  ================
name                      ℓ(f; y)                  dℓ/df                       labels
========================  =======================  ==========================  ================
``"logistic"``            softplus(−q), q = y f    −y σ(−q)                    ±1
``"exponential"``         e^{−q}                   −y e^{−q}                   ±1
``"squared"``             (f − y)²                 2 (f − y)                   reals
``"cross_entropy"``       logsumexp(f) − f_y       softmax(f) − onehot(y)      {0, …, C−1}
========================  =======================  ==========================  ================

Stability: the logistic loss is ``softplus(−q)`` and its derivative ``σ(−q)`` (both exact for
any finite margin, no overflow for |q| up to the float range); cross-entropy uses
``logsumexp``. The exponential loss overflows for very negative margins, so its exponent is
clamped at ``½·log(float max)`` (≈ 44 in float32, ≈ 354 in float64): for q below minus that
value the loss and its derivative saturate (stay finite) instead of becoming ``inf``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import torch
import torch.nn.functional as F

from implicitbias._errors import InvalidArgumentError
from implicitbias._validation import check_choice

__all__ = ["Loss", "loss_function", "LOSSES"]

#: The loss names (``train(loss=...)``, :func:`loss_function`).
LossName = Literal["logistic", "exponential", "squared", "cross_entropy"]
LOSSES: tuple[LossName, ...] = get_args(LossName)

_TASK = {
    "logistic": "binary",
    "exponential": "binary",
    "squared": "regression",
    "cross_entropy": "multiclass",
}


def _exp_clamp(dtype: torch.dtype) -> float:
    return 0.5 * math.log(torch.finfo(dtype).max)


@dataclass(frozen=True)
class Loss:
    r"""A per-example loss ℓ(f; y), its derivative in the output, margins and accuracy.

    Build it with :func:`loss_function`. All methods take outputs ``out`` of shape ``(n,)``
    (binary, regression) or ``(n, C)`` (``cross_entropy``; also multi-output regression) and
    labels ``y`` of shape ``(n,)`` (``(n, C)`` for multi-output regression).

    Attributes
    ----------
    name : str
        One of ``"logistic"``, ``"exponential"``, ``"squared"``, ``"cross_entropy"``.
    task : str
        ``"binary"`` (labels ±1), ``"regression"`` (real targets) or ``"multiclass"``
        (integer classes).
    """

    name: LossName
    task: str

    @property
    def is_classification(self) -> bool:
        """Whether margins and accuracies are defined (binary or multiclass)."""
        return self.task != "regression"

    def margins(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""Margins q_i: ``y_i f_i`` (binary) or ``f_{y_i} − max_{j≠y_i} f_j`` (multiclass).

        Shape ``(n,)``. Not defined for regression (raises
        :class:`~implicitbias.InvalidArgumentError`, a ``ValueError``).
        """
        if self.task == "binary":
            return y * out
        if self.task == "multiclass":
            correct = out.gather(1, y.view(-1, 1))[:, 0]
            others = out.scatter(1, y.view(-1, 1), float("-inf"))
            return correct - others.max(dim=1).values
        raise InvalidArgumentError(
            f"Loss.margins: the {self.name!r} loss is a regression loss: margins are not defined "
            f"(they need a classification loss: 'logistic', 'exponential' or 'cross_entropy')."
        )

    def values(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example losses ℓ(f_i; y_i), shape ``(n,)``."""
        if self.name == "logistic":
            return F.softplus(-(y * out))
        if self.name == "exponential":
            return torch.exp(torch.clamp(-(y * out), max=_exp_clamp(out.dtype)))
        if self.name == "squared":
            sq = (out - y) ** 2
            return sq if sq.ndim == 1 else sq.sum(dim=1)
        # cross-entropy
        return torch.logsumexp(out, dim=1) - out.gather(1, y.view(-1, 1))[:, 0]

    def __call__(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The mean loss (1/n) Σ_i ℓ(f_i; y_i), a scalar tensor."""
        return self.values(out, y).mean()

    def derivative(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        r"""dℓ(f_i; y_i)/df_i for every example: same shape as ``out``.

        The gradient of the mean loss is ``(1/n) Σ_i derivative_i · ∇_θ f(θ; x_i)``.
        """
        if self.name == "logistic":
            return -y * torch.sigmoid(-(y * out))
        if self.name == "exponential":
            return -y * torch.exp(torch.clamp(-(y * out), max=_exp_clamp(out.dtype)))
        if self.name == "squared":
            return 2.0 * (out - y)
        p = torch.softmax(out, dim=1)
        return p - F.one_hot(y, out.shape[1]).to(out.dtype)

    def derivative_and_guard(
        self, out: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        r"""(:meth:`derivative`, the losses when finite outputs do not already make them finite).

        The training loop checks every step that the losses are finite. For the logistic loss
        (softplus(−q) ≤ |q| + log 2) and the clamped exponential loss, finite outputs prove it,
        and the guard is None (no extra work); the squared loss ((f − y)² overflows for
        |f − y| > √max) and cross-entropy (logsumexp(f) − f_y overflows when the logits spread
        beyond the float range) return their per-example losses, sharing the derivative's work.
        """
        if self.name == "squared":
            r = out - y
            sq = r * r
            return 2.0 * r, (sq if sq.ndim == 1 else sq.sum(dim=1))
        if self.name == "cross_entropy":
            return self.derivative(out, y), self.values(out, y)
        return self.derivative(out, y), None

    def accuracy(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Fraction correct; a tie (f = 0, or several maximal logits) counts fractionally.

        Binary: ``mean(1[y f > 0] + ½·1[f = 0])``. Multiclass: an example whose true class is
        one of ``m`` maximal logits counts ``1/m``.
        """
        if self.task == "binary":
            q = y * out
            return float(((q > 0).to(out.dtype) + 0.5 * (q == 0).to(out.dtype)).mean())
        if self.task == "multiclass":
            top = out.max(dim=1, keepdim=True).values
            is_max = out == top
            ties = is_max.sum(dim=1).to(out.dtype)
            hit = is_max.gather(1, y.view(-1, 1))[:, 0].to(out.dtype)
            return float((hit / ties).mean())
        raise InvalidArgumentError(
            f"Loss.accuracy: the {self.name!r} loss is a regression loss: accuracy is not "
            f"defined (use Loss.mse for regression)."
        )

    def mse(self, out: torch.Tensor, y: torch.Tensor) -> float:
        """Mean squared error (1/n) Σ_i ‖f_i − y_i‖² (regression)."""
        sq = (out - y) ** 2
        return float((sq if sq.ndim == 1 else sq.sum(dim=1)).mean())


def loss_function(name: LossName) -> Loss:
    r"""The loss ``name`` as a :class:`Loss`: values, derivative in the output, margins.

    Parameters
    ----------
    name : {"logistic", "exponential", "squared", "cross_entropy"}
        ``"logistic"``: ℓ = log(1 + e^{−y f}) = softplus(−y f); ``"exponential"``: e^{−y f};
        ``"squared"``: (f − y)²; ``"cross_entropy"``: −log softmax(f)_y.

    Returns
    -------
    Loss

    Examples
    --------
    >>> import torch
    >>> from implicitbias.dynamics import loss_function
    >>> ell = loss_function("logistic")
    >>> out, y = torch.tensor([0.0, 1e8, -1e8], dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    >>> ell.values(out, y)
    tensor([6.9315e-01, 0.0000e+00, 1.0000e+08], dtype=torch.float64)
    >>> ell.derivative(out, y)
    tensor([-0.5000, -0.0000, -1.0000], dtype=torch.float64)
    """
    check_choice(name, "loss_function", "name", LOSSES)
    return Loss(name=name, task=_TASK[name])
