r"""The transition time t* = (1/λ)·log α between the kernel and the rich regime.

One function, :func:`t_star`, and the library's one convention for α (THEORY §1, and
``docs/theory.md``, "The scale α"): α is always the factor in θ(0) = α·θ̄, where θ̄ is a base
initialization chosen without reference to α; the model, the initializer or the experiment
that builds θ(0) says what θ̄ is. Where the library has to read α off parameters (``train``'s
default ``alpha``, ``t_star(theta0=...)``), θ̄ is the unit vector θ(0)/‖θ(0)‖₂, so α = ‖θ(0)‖₂
(divided by ``base_norm`` = ‖θ̄‖₂ when θ̄ is not a unit vector).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from implicitbias._validation import describe, fail, fail_type
from implicitbias.models import flat_parameters

__all__ = ["t_star"]

_FUNC = "t_star"


def _real(x: Any, arg: str, expect: str) -> float:
    """A real scalar (Python, numpy, or a one-element real tensor or array) as a float."""
    if isinstance(x, (torch.Tensor, np.ndarray)):
        real = (
            not (x.is_complex() or x.dtype == torch.bool or x.is_meta)
            if isinstance(x, torch.Tensor)
            else x.dtype != bool and np.issubdtype(x.dtype, np.number) and not np.iscomplexobj(x)
        )
        size = x.numel() if isinstance(x, torch.Tensor) else x.size
        if real and size == 1:
            return float(x.reshape(-1)[0].item())
        raise fail_type(_FUNC, arg, expect, x)
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise fail_type(_FUNC, arg, expect, x)
    return float(x)


_EXPECT = "a torch.nn.Module, a tensor or array of parameters, or an iterable of parameter tensors"


def _flat64(x: Any, theta0: Any) -> np.ndarray:
    """One tensor, array or real number of ``theta0`` as a flat float64 array."""
    if isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise fail_type(_FUNC, "theta0", "real floating-point parameters", x)
        if x.is_meta:
            raise fail(
                _FUNC, "theta0", "parameters that hold data", "a tensor on the 'meta' device"
            )
        return x.detach().to("cpu", torch.float64).reshape(-1).numpy()
    if isinstance(x, np.ndarray):
        if x.dtype == bool or not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise fail_type(_FUNC, "theta0", "real numeric parameters", x)
        return x.astype(np.float64).reshape(-1)
    if isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_)):
        return np.array([float(x)])
    raise fail_type(_FUNC, "theta0", _EXPECT, x if x is theta0 else theta0)


def _norm(theta0: Any) -> float:
    """‖θ(0)‖₂ in float64, without overflow, of a module, a tensor, an array or an iterable of
    tensors (``model.parameters()``)."""
    if isinstance(theta0, nn.Module):
        parts = [_flat64(flat_parameters(theta0), theta0)]  # trainable, a shared one once
    elif isinstance(theta0, (torch.Tensor, np.ndarray)):
        parts = [_flat64(theta0, theta0)]
    elif isinstance(theta0, Iterable) and not isinstance(theta0, (str, bytes, Mapping)):
        parts = [_flat64(item, theta0) for item in theta0]
    else:
        raise fail_type(_FUNC, "theta0", _EXPECT, theta0)
    flat = np.concatenate(parts) if parts else np.zeros(0)
    if flat.size == 0:
        raise fail(_FUNC, "theta0", "a non-empty set of parameters", describe(theta0))
    if not np.all(np.isfinite(flat)):
        bad = int(flat.size - np.count_nonzero(np.isfinite(flat)))
        raise fail(_FUNC, "theta0", "finite parameters (no NaN or inf)", f"{bad} non-finite")
    top = float(np.max(np.abs(flat)))
    if top == 0.0:
        raise fail(
            _FUNC,
            "theta0",
            "parameters with a nonzero norm",
            "θ(0) = 0",
            "t* = log(α)/λ needs a scaled initialization θ(0) = α·θ̄ with α > 1.",
        )
    return top * float(np.linalg.norm(flat / top))


def t_star(
    alpha: float | None = None,
    weight_decay: float | None = None,
    *,
    theta0: nn.Module | torch.Tensor | np.ndarray | Iterable[torch.Tensor] | None = None,
    base_norm: float = 1.0,
) -> float:
    r"""The transition time t* = (1/λ)·log α of gradient flow from θ(0) = α·θ̄ with weight decay λ.

    Lyu et al. (2024) train an L-homogeneous model from a large, zero-output initialization
    θ(0) = α·θ̄ (f(θ̄; x) = 0) by gradient flow on the weight-decayed loss
    L_λ(θ) = (1/n) Σ_i ℓ(f(θ; x_i); y_i) + (λ/2)‖θ‖². For α → ∞ and λ → 0 the run is in the
    kernel regime (the predictor of the NTK at θ̄) until (1 − c)/λ·log α and in the rich regime
    (a KKT point of margin maximization, or of min-norm interpolation) from some time in
    [1/λ·log α, (1 + c)/λ·log α], for any c ∈ (0, 1):

    .. math::

        t^* = \frac{1}{\lambda}\log\alpha,
        \qquad \text{about } t^*/\eta \text{ steps of GD with step } \eta .

    Weight decay alone shrinks θ(0) like α e^{−λt}, so t* is when the initialization's scale
    has decayed to O(1). The early/late split is sharp only to leading order in log α: a
    different normalization of θ̄ moves t* by log(‖θ̄‖)/λ, which is why α needs one convention.

    **The α convention.** α is the factor in θ(0) = α·θ̄ for a base θ̄ chosen without reference
    to α — the ``alpha`` a model or :func:`~implicitbias.scale_init` was given: u = v = α·1 for
    ``DiagonalNet(alpha_mode="scale")``, ‖θ(0)‖₂ for ``alpha_mode="norm"``, U = V = α·I for
    ``MatrixFactorization``. Pass it as ``alpha``. Given instead the initial parameters
    ``theta0``, α is read off as α = ‖θ(0)‖₂ / ``base_norm`` with ``base_norm`` = ‖θ̄‖₂
    (default 1: θ̄ a unit vector, α = ‖θ(0)‖₂, the initial-norm convention of the paper's
    experiments and :func:`~implicitbias.train`'s default ``alpha``).

    ==========  ===============  =====================================================
    symbol      argument         meaning
    ==========  ===============  =====================================================
    α           ``alpha``        initialization scale, θ(0) = α·θ̄ (> 1)
    λ           ``weight_decay`` weight decay of L_λ (> 0; torch SGD's ``weight_decay``)
    θ(0)        ``theta0``       the initial parameters (instead of ``alpha``)
    ‖θ̄‖₂        ``base_norm``    norm of the base initialization θ̄ (with ``theta0``)
    ==========  ===============  =====================================================

    Parameters
    ----------
    alpha : float, optional
        The initialization scale α > 1 (a real scalar: Python, numpy, or a one-element tensor).
        Give exactly one of ``alpha`` and ``theta0``.
    weight_decay : float
        λ > 0 (required).
    theta0 : torch.nn.Module, tensor, array or iterable of tensors, optional
        The initial parameters: a module (its trainable parameters, as
        :func:`~implicitbias.flat_parameters` flattens them — call this before training it),
        a flat or shaped tensor or array, or ``model.parameters()``.
    base_norm : float, default 1.0
        ‖θ̄‖₂, with ``theta0`` only: α = ‖θ(0)‖₂ / ``base_norm``. E.g. ``sqrt(2 * d)`` for a
        ``DiagonalNet(d, alpha=a)`` (θ̄ = (1, 1)) gives back α = a.

    Returns
    -------
    float
        t* in gradient-flow time (GD: divide by the step η for a number of steps).

    Raises
    ------
    InvalidArgumentError
        If ``weight_decay`` is missing, not positive or so small that t* overflows; if α is not
        a finite number > 1 (t* would be ≤ 0: no early kernel phase to leave); if both or
        neither of ``alpha`` and ``theta0`` are given; if ``theta0`` is empty, zero or not
        finite; if ``base_norm`` is not a positive finite number.
    InvalidArgumentTypeError
        If an argument has the wrong type.

    References
    ----------
    Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
    Induce Grokking*, ICLR 2024, arXiv:2311.18817 (Theorems 3.1–3.6).

    Examples
    --------
    The sparse-linear experiment of the paper: ‖θ(0)‖₂ = 128, λ = 10⁻³, η = 0.01.

    >>> import math, torch, implicitbias as ib
    >>> ts = ib.t_star(128.0, 1e-3)
    >>> round(ts, 6), round(ts / 0.01)  # t* and GD steps
    (4852.030264, 485203)
    >>> net = ib.DiagonalNet(500, alpha=128.0, alpha_mode="norm", dtype=torch.float64)
    >>> math.isclose(ib.t_star(weight_decay=1e-3, theta0=net), ts)
    True
    >>> net = ib.DiagonalNet(500, alpha=3.0, dtype=torch.float64)  # u = v = 3·1, θ̄ = (1, 1)
    >>> math.isclose(ib.t_star(weight_decay=0.1, theta0=net, base_norm=math.sqrt(1000)),
    ...              ib.t_star(3.0, 0.1))
    True
    """
    if weight_decay is None:
        raise fail(
            _FUNC,
            "weight_decay",
            "given (λ > 0)",
            "None",
            "Without weight decay there is no transition time: t* = log(α)/λ is infinite.",
        )
    lam = _real(weight_decay, "weight_decay", "a positive number")
    if not (lam > 0.0 and math.isfinite(lam)):
        hint = (
            "Without weight decay there is no transition time: t* = log(α)/λ is infinite."
            if lam == 0.0
            else None
        )
        raise fail(_FUNC, "weight_decay", "a positive finite number", repr(weight_decay), hint)
    if (alpha is None) == (theta0 is None):
        raise fail(
            _FUNC,
            "alpha" if alpha is None else "theta0",
            "given (or theta0, the initial parameters), but not both",
            "neither" if alpha is None else "both alpha and theta0",
        )
    if alpha is not None:
        value = _real(alpha, "alpha", "a number > 1")
        if not math.isfinite(value) or not value > 1.0:
            raise fail(
                _FUNC,
                "alpha",
                "a finite number > 1 (t* = log(α)/λ > 0 needs a large initialization)",
                repr(alpha),
                "α is the factor in θ(0) = α·θ̄; for α ≤ 1 there is no early kernel phase to "
                "leave. A per-entry scale of many parameters is a small number even when "
                "‖θ(0)‖ is large: pass theta0= (α = ‖θ(0)‖₂) instead.",
            )
    else:
        b = _real(base_norm, "base_norm", "a positive number")
        if not (b > 0.0 and math.isfinite(b)):
            raise fail(_FUNC, "base_norm", "a positive finite number (‖θ̄‖₂)", repr(base_norm))
        norm = _norm(theta0)
        value = norm / b
        if not math.isfinite(value) or not value > 1.0:
            raise fail(
                _FUNC,
                "theta0",
                "parameters with α = ‖θ(0)‖₂ / base_norm a finite number > 1 (t* = log(α)/λ > 0)",
                f"α = {value:.6g} (‖θ(0)‖₂ = {norm:.6g}, base_norm = {b:.6g})",
                "Read θ(0) before training (weight decay shrinks θ), or pass alpha= directly.",
            )
    out = math.log(value) / lam
    if not math.isfinite(out):
        raise fail(
            _FUNC,
            "weight_decay",
            f"large enough that t* = log(α)/λ is finite (log α = {math.log(value):.6g})",
            repr(weight_decay),
        )
    return out
