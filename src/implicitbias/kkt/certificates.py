r"""Convex certificates: when a model's KKT points are those of a convex problem (THEORY §4–5).

KKT is necessary, not sufficient, for the non-convex margin problem. For some models the
margin problem is equivalent to a convex one, and the KKT multipliers μ then give a dual point
of it. The model says which problem through its ``convex_surrogate(task)`` method (asked via
:func:`implicitbias.models.convex_surrogate`); this module maps the name to the computation:

- ``"l1_max_margin"`` (classification; depth-2 diagonal net ``w = u² − v²``):
  ``dual_norm`` :math:`= \lVert 2\sum_i \mu_i y_i x_i\rVert_\infty`; ``certificate=True``
  solves :func:`~implicitbias.l1_max_margin` (an LP).
- ``"l1_interpolation"`` (regression; the same net): ``dual_norm``
  :math:`= \lVert 2\sum_i \mu_i x_i\rVert_\infty`; no optimum is solved for.
- ``"min_nuclear_norm"`` (regression; ``W = UUᵀ − VVᵀ`` on index pairs): ``dual_norm`` the
  operator norm of :math:`\sum_k \mu_k (E_{i_k j_k} + E_{j_k i_k})`; ``certificate=True``
  solves :func:`~implicitbias.min_nuclear_norm_completion` (an SDP).

``dual_norm ≤ 1`` (with ε = 0) certifies the global optimum.
``convex_lower_bound`` rescales the multipliers to be dual feasible (``2 Σ μ_i / dual_norm``,
or ``2 Σ μ_k y_k / dual_norm``), and ``convex_gap = ‖t‖² − optimum`` compares the squared norm of
the checked point ``t`` (θ̃, or θ for regression) with the convex optimum.

To add a certificate: write ``_name(s, mu, tt, solve) -> ConvexCertificate`` below and add it to
:data:`CERTIFICATES` with its task; a model opts in by returning the name from its
``convex_surrogate(task)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from implicitbias._validation import fail
from implicitbias.kkt.margins import _Setup
from implicitbias.kkt.report import Surrogate
from implicitbias.models import convex_surrogate
from implicitbias.rich_regime import l1_max_margin, min_nuclear_norm_completion

__all__ = ["CERTIFICATES", "ConvexCertificate", "convex_certificate"]


@dataclass(frozen=True)
class ConvexCertificate:
    """The convex-certificate fields of a :class:`KKTReport` (all ``None``: no certificate)."""

    surrogate: Surrogate | None = None
    dual_norm: float | None = None
    lower_bound: float | None = None
    optimum: float | None = None
    gap: float | None = None
    gap_rel: float | None = None


def _inputs(s: _Setup) -> np.ndarray:
    """The inputs as a float64 ``(n, d)`` matrix (a diagonal net's ``x_i``)."""
    return s.X.detach().to(torch.float64).cpu().numpy().reshape(s.n, -1)


def _l1_max_margin(s: _Setup, mu: np.ndarray, tt: float, solve: bool) -> ConvexCertificate:
    """``w = u² − v²``: the margin problem is ``min ‖w‖₁ s.t. y_i⟨w, x_i⟩ ≥ 1`` (‖θ̃‖² = 2‖w‖₁)."""
    Xn = _inputs(s)
    z = 2.0 * Xn.T @ (mu * s.y)
    dual_norm = float(np.max(np.abs(z)))
    lower = 2.0 * float(mu.sum()) / dual_norm if dual_norm > 0 else 0.0
    optimum = gap = gap_rel = None
    if solve:
        optimum = float(l1_max_margin(Xn, s.y).norm)
        gap = tt - optimum
        gap_rel = gap / optimum
    return ConvexCertificate("l1_max_margin", dual_norm, lower, optimum, gap, gap_rel)


def _l1_interpolation(s: _Setup, mu: np.ndarray, tt: float, solve: bool) -> ConvexCertificate:
    """``w = u² − v²``: the interpolation problem is ``min ‖w‖₁ s.t. ⟨w, x_i⟩ = y_i``."""
    z = 2.0 * _inputs(s).T @ mu
    dual_norm = float(np.max(np.abs(z)))
    lower = 2.0 * float(mu @ s.y) / dual_norm if dual_norm > 0 else 0.0
    return ConvexCertificate("l1_interpolation", dual_norm, lower)


def _index_pairs(s: _Setup) -> np.ndarray:
    """``X`` as integer index pairs ``(n, 2)``, refused otherwise."""
    X = s.X
    ok = X.ndim == 2 and int(X.shape[1]) == 2 and not X.is_floating_point()
    ok = ok and not X.is_complex() and bool((X >= 0).all())
    if not ok:
        raise fail(
            "kkt_residuals",
            "X",
            "non-negative integer index pairs of shape (n, 2) for a model whose convex "
            "surrogate is 'min_nuclear_norm'",
            f"dtype {X.dtype} and shape {tuple(X.shape)}",
        )
    return X.detach().cpu().numpy().astype(np.int64)


def _min_nuclear_norm(s: _Setup, mu: np.ndarray, tt: float, solve: bool) -> ConvexCertificate:
    """``W = UUᵀ − VVᵀ``: the problem is ``min ‖W‖_* s.t. W_{i_k j_k} = y_k`` (‖θ‖² = 2‖W‖_*)."""
    idx = _index_pairs(s)
    d = getattr(s.h.model, "d", None)  # the matrix size; else the smallest that holds X
    if not isinstance(d, int) or d <= int(idx.max()):
        d = int(idx.max()) + 1
    S = np.zeros((d, d))
    np.add.at(S, (idx[:, 0], idx[:, 1]), mu)
    S = S + S.T
    dual_norm = float(np.max(np.abs(np.linalg.eigvalsh(S))))
    lower = 2.0 * float(mu @ s.y) / dual_norm if dual_norm > 0 else 0.0
    optimum = gap = gap_rel = None
    if solve:
        res = min_nuclear_norm_completion(d, idx[:, 0], idx[:, 1], s.y)
        optimum = float(res.nuclear_norm)
        gap = tt - optimum
        gap_rel = gap / optimum if optimum > 0 else math.inf
    return ConvexCertificate("min_nuclear_norm", dual_norm, lower, optimum, gap, gap_rel)


_Compute = Callable[[_Setup, np.ndarray, float, bool], ConvexCertificate]
_CertTask = Literal["classification", "regression"]

#: The certificates :func:`convex_certificate` knows: name -> (task, computation).
CERTIFICATES: dict[str, tuple[_CertTask, _Compute]] = {
    "l1_max_margin": ("classification", _l1_max_margin),
    "l1_interpolation": ("regression", _l1_interpolation),
    "min_nuclear_norm": ("regression", _min_nuclear_norm),
}


def convex_certificate(
    s: _Setup, mu: np.ndarray, tt: float, *, solve: bool, func: str
) -> ConvexCertificate:
    """The convex certificate of multipliers ``mu`` at the checked point (``‖t‖² = tt``).

    Parameters
    ----------
    s : _Setup
        Validated model and data. Multiclass models have no certificate.
    mu : ndarray of shape (n,)
        The KKT multipliers of the report.
    tt : float
        ``‖θ̃‖²`` (classification) or ``‖θ‖²`` (regression).
    solve : bool
        Also solve the convex problem (LP or SDP) for the optimum and the gap.
    func : str
        The public function, for the error on an unknown surrogate.

    Raises
    ------
    InvalidArgumentError
        If the model names a surrogate that is unknown for its task.
    """
    if s.task == "multiclass":
        return ConvexCertificate()
    task: _CertTask = "regression" if s.task == "regression" else "classification"
    name = convex_surrogate(s.h.model, task)
    if name is None:
        return ConvexCertificate()
    entry = CERTIFICATES.get(name)
    if entry is None or entry[0] != task:
        known = [k for k, (t, _) in CERTIFICATES.items() if t == task]
        raise fail(
            func,
            "model",
            f"a model whose convex_surrogate({task!r}) is one of {known} or None",
            repr(name),
            "Return None from the model's convex_surrogate for a task without a certificate.",
        )
    return entry[1](s, mu, tt, solve)
