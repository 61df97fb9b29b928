r"""The quantities recorded at a state θ of a run: one implementation, used by
:func:`~implicitbias.dynamics.train`'s recorder and by :class:`~implicitbias.dynamics.Monitor`.

:class:`StateMetrics` makes the standard columns of a :class:`History` row (time, rescaled time,
loss, regularized objective, accuracy or MSE, ‖θ‖, normalized margin) from ‖θ‖ and the model's
outputs on the training set; :func:`data_metrics` the loss and accuracy (or MSE) of outputs on
any labelled set; :func:`cosine` the alignment of two vectors; :func:`user_metrics` checks what
a user's ``metrics(model, t)`` returned, and :func:`append_row` orders a row's columns, checks
them against the history's and appends it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Container, Mapping
from typing import Any

import torch

from implicitbias._validation import fail, fail_type
from implicitbias.dynamics.history import STANDARD_COLUMNS, History
from implicitbias.dynamics.losses import Loss

__all__: list[str] = []

#: ``metrics(model, t) -> {column: value}``, called at every evaluation.
Metrics = Callable[..., Mapping[str, float]]


def rescale_factor(lam: float, alpha: float) -> float:
    """λ/log α, the factor of the rescaled time t·λ/log α (NaN when log α ≤ 0)."""
    log_alpha = math.log(alpha) if alpha > 0 else float("nan")
    return lam / log_alpha if log_alpha > 0 else float("nan")


def _all_finite(out: torch.Tensor) -> bool:
    return bool(torch.isfinite(out).all())


def data_metrics(
    loss: Loss, out: torch.Tensor, y: torch.Tensor, values: torch.Tensor | None = None
) -> tuple[float, str, float]:
    """(mean loss, ``"acc"`` or ``"mse"``, accuracy or MSE) of the outputs ``out`` on labels
    ``y``. Accuracy counts f = 0 as half correct; it is NaN for non-finite outputs (a NaN output
    is neither right nor wrong)."""
    if values is None:
        values = loss.values(out, y)
    mean_loss = float(values.mean())
    if loss.is_classification:
        acc = loss.accuracy(out, y) if _all_finite(out) else float("nan")
        return mean_loss, "acc", acc
    return mean_loss, "mse", loss.mse(out, y)


class StateMetrics:
    """The standard columns of a history row (see :class:`History`) at a state θ.

    Parameters
    ----------
    loss : Loss
        The training loss ℓ.
    y : torch.Tensor
        The training labels, as the loss takes them.
    lam : float
        The weight decay λ of the objective L_λ = mean ℓ + (λ/2)‖θ‖².
    degree : float
        L of the normalized margin q_min/‖θ‖^L.
    alpha : float
        α of the rescaled time t·λ/log α.
    """

    def __init__(self, loss: Loss, y: torch.Tensor, lam: float, degree: float, alpha: float):
        self.loss, self.y, self.lam = loss, y, lam
        self.degree = float(degree)
        self.rescale = rescale_factor(lam, alpha)

    def row(
        self,
        norm: float,
        out: torch.Tensor,
        *,
        t: float,
        step: float,
        grad_evals: float,
        values: torch.Tensor | None = None,
    ) -> dict[str, float]:
        """The standard columns but ``wall_time``, in order, at a state of norm ``norm`` with
        training outputs ``out`` (and per-example losses ``values`` when already computed)."""
        ell, lam = self.loss, self.lam
        train_loss, kind, value = data_metrics(ell, out, self.y, values)
        row: dict[str, float] = {
            "t": t,
            "step": step,
            "rescaled_time": t * self.rescale,
            "grad_evals": grad_evals,
            "train_loss": train_loss,
            "objective": train_loss + 0.5 * lam * norm * norm,
            f"train_{kind}": value,
            "theta_norm": norm,
        }
        if ell.is_classification:
            q_min = float(ell.margins(out, self.y).min())
            row["normalized_margin"] = q_min / norm**self.degree if norm > 0 else float("nan")
        return row

    def q_min(self, out: torch.Tensor) -> float:
        """min_i q_i of the outputs (classification losses only)."""
        return float(self.loss.margins(out, self.y).min())


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos(a, b) of two flat vectors in float64, computed on a/max|a| and b/max|b| (no overflow
    for a diverging run); NaN for a zero or non-finite vector."""
    a = a.detach().reshape(-1).to(torch.float64)
    b = b.detach().reshape(-1).to(device=a.device, dtype=torch.float64)
    sa = float(a.abs().max()) if a.numel() else 0.0
    sb = float(b.abs().max()) if b.numel() else 0.0
    if not (0.0 < sa < math.inf and 0.0 < sb < math.inf):
        return math.nan
    a, b = a / sa, b / sb
    return float(torch.dot(a, b) / (a.norm() * b.norm()))


def user_metrics(
    extra: Any, *, func: str, reserved: Container[str], reserved_name: str
) -> dict[str, float]:
    """What a user's ``metrics(model, t)`` returned, checked: a mapping of new column names
    (none in ``reserved``, described as ``reserved_name`` in the message) to real numbers."""
    if not isinstance(extra, Mapping):
        raise fail_type(func, "metrics", "a callable returning a dict of floats", extra)
    row: dict[str, float] = {}
    for k, v in extra.items():
        if k in reserved:
            raise fail(func, "metrics", f"keys other than {reserved_name}", f"key {k!r}")
        try:
            if isinstance(v, (str, bytes)):
                raise TypeError(v)
            row[str(k)] = float(v)
        except (TypeError, ValueError, RuntimeError) as exc:
            raise fail_type(
                func,
                "metrics",
                f"a callable returning a dict of real numbers (key {k!r})",
                v,
            ) from exc
    return row


def append_row(
    history: History, row: dict[str, float], *, func: str, columns_note: str = ""
) -> dict[str, float]:
    """Order the row's columns (standard ones first, then the others as they come), check them
    against the history's (``columns_note`` says where those come from), append it; the
    ordered row."""
    ordered = [c for c in STANDARD_COLUMNS if c in row] + [
        c for c in row if c not in STANDARD_COLUMNS
    ]
    row = {c: row[c] for c in ordered}  # the first row fixes the column order
    known = history.columns
    if known and set(row) != set(known):
        raise fail(
            func,
            "metrics",
            f"a callable returning the same keys at every evaluation (the history's "
            f"columns {known}{columns_note})",
            f"the columns {list(row)}",
        )
    history.append(row)
    return row
