"""The scale α of the initialization θ(0) = α·θ̄, and the zero-output check (THEORY §1)."""

from __future__ import annotations

import math
import warnings
from typing import Literal

import torch
from torch import nn

from implicitbias._errors import NonZeroInitError, NotHomogeneousError
from implicitbias._modules import check_model, layer_problem, untouched
from implicitbias._validation import check_choice, check_positive, fail, fail_type
from implicitbias.models.homogeneous import Homogeneous

__all__ = ["scale_init", "check_zero_output"]

#: How :func:`scale_init` applies α: multiply θ by it, or set ‖θ‖₂ to it.
ScaleMode = Literal["scale", "norm"]
#: What :func:`check_zero_output` does on a non-zero output.
OnNonZero = Literal["raise", "warn"]


def scale_init(model: nn.Module, alpha: float, *, mode: ScaleMode = "scale") -> nn.Module:
    r"""Scale the parameters in place: θ ← α·θ (``mode="scale"``) or θ ← α·θ/‖θ‖₂ (``"norm"``).

    The paper's theory writes θ(0) = α·θ̄; its experiments quote the initial norm ‖θ(0)‖₂ = α
    instead. For an L-homogeneous model, outputs scale as α^L and the NTK as α^{2(L−1)}.

    Parameters
    ----------
    model : torch.nn.Module
        The model; all trainable parameters are scaled.
    alpha : float
        The scale (> 0).
    mode : {"scale", "norm"}, default "scale"
        Multiply by α, or set the Euclidean norm of the flat parameter vector to α.

    Returns
    -------
    torch.nn.Module
        The same model.

    Raises
    ------
    InvalidArgumentError
        If ``alpha`` is not a finite positive number, or would make the parameters overflow (or
        all underflow) their dtype — checked before anything is changed; or if the model's
        parameters are not finite, of one real float dtype, and on a device with data.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.scale_init(ib.DiagonalNet(8, dtype=torch.float64), 128.0, mode="norm")
    >>> round(float(ib.flat_parameters(net).norm()), 12)
    128.0
    """
    func = "scale_init"
    if not isinstance(model, nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    alpha = check_positive(alpha, func, "alpha")
    check_choice(mode, func, "mode", ("scale", "norm"))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise fail(func, "model", "a module with trainable parameters", "none")
    check_model(model, [n for n, _ in named], func)
    params = [p for _, p in named]
    with torch.no_grad():
        # max |θ_i| and ‖θ‖ in float64, without squaring large entries
        top = max(float(p.detach().abs().max()) for p in params if p.numel()) if params else 0.0
        if mode == "scale":
            factor = alpha
        else:
            if top == 0.0:
                raise fail(func, "model", "parameters with a nonzero norm for mode='norm'", "θ = 0")
            sq = sum(float(((p.detach().double() / top) ** 2).sum()) for p in params)
            factor = alpha / (top * math.sqrt(sq))
        # refuse before touching anything: θ·factor must stay finite and not all underflow
        dtype = params[0].dtype
        info = torch.finfo(dtype)
        if top * factor > info.max or not math.isfinite(top * factor):
            limit = info.max / top if mode == "scale" else info.max * alpha / (top * factor)
            raise fail(
                func,
                "alpha",
                f"a scale that keeps the parameters finite in {dtype} (below {limit:.3g} here)",
                repr(alpha),
                "Use float64 parameters, or a smaller scale.",
            )
        if top > 0.0 and top * factor < info.tiny:
            raise fail(
                func,
                "alpha",
                f"a scale that keeps the parameters representable in {dtype} (every entry would "
                f"underflow below {info.tiny:.3g})",
                repr(alpha),
                "Use float64 parameters, or a larger scale.",
            )
        for p in params:
            p.mul_(factor)
    return model


def check_zero_output(
    model: nn.Module,
    X: torch.Tensor,
    *,
    rtol: float | None = None,
    action: OnNonZero = "raise",
) -> float:
    r"""Check that the model's output at its current parameters is zero on ``X``.

    The tolerance is relative to the natural size of the output, ‖∇_θ f‖·‖θ‖/L (Euler's
    identity L·f = ⟨∇_θ f, θ⟩ bounds |f| by it): the check passes when
    ``max_i |f(θ; x_i)| ≤ rtol · ‖∇_θ Σ_i s_i f(θ; x_i)‖ · ‖θ‖ / (L √n)`` with random signs s.
    A symmetrized model passes with ``max |f| = 0`` exactly.

    Parameters
    ----------
    model : torch.nn.Module
        The model (any module; wrapped by :class:`Homogeneous` if needed).
    X : torch.Tensor
        Inputs, shape ``(n, ...)``.
    rtol : float, optional
        Default ``1e4 · eps`` of the parameters' dtype (2.2e-12 in float64, 1.2e-3 in float32).
    action : {"raise", "warn"}, default "raise"
        What to do when the output is not zero.

    Returns
    -------
    float
        ``max_i |f(θ; x_i)|``.

    Raises
    ------
    NonZeroInitError
        If the output is not zero and ``action="raise"``.
    NotHomogeneousError
        If the output is not zero because the forward pass is random (dropout in training mode:
        the two halves of a symmetrized model draw different masks); the message names the
        layer where it is recognised.
    InvalidArgumentError
        If the parameters, outputs or gradients are not finite (NaN weights, an initialization
        scale that overflows the dtype), or the model or ``X`` is on the ``meta`` device.

    Notes
    -----
    The model is not changed: its buffers (BatchNorm statistics) and train/eval flags are
    restored after the forward pass.
    """
    func = "check_zero_output"
    check_choice(action, func, "action", ("raise", "warn"))
    if not isinstance(model, nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    inner = model.model if isinstance(model, Homogeneous) else model
    h = Homogeneous(inner, degree=1, check=False)
    X = h.prepare_input(X, func=func)
    degree = model.degree if isinstance(model, Homogeneous) else getattr(inner, "degree", None)
    degree = degree or 1
    if rtol is None:
        rtol = 1e4 * torch.finfo(h.dtype).eps
    rtol = check_positive(rtol, func, "rtol")
    with untouched(h.model):
        theta = h.theta().requires_grad_(True)
        with torch.enable_grad():
            out = h.function(theta, X).reshape(X.shape[0], -1)
            gen = torch.Generator().manual_seed(0)
            signs = torch.randint(0, 2, out.shape, generator=gen).to(out) * 2 - 1
            (g,) = torch.autograd.grad((out * signs).sum(), theta, allow_unused=True)
        # a second forward in the same random stream: a random forward (dropout in training
        # mode) is told apart from a non-zero initialization
        with torch.no_grad():
            again = h.function(theta.detach(), X).reshape(out.shape)
    out = out.detach()
    if not bool(torch.isfinite(out).all()):
        bad = int(out.numel() - int(torch.isfinite(out).sum()))
        raise fail(
            func,
            "model",
            "a module with finite outputs on X",
            f"{bad} NaN or infinite outputs",
            f"The outputs overflow {out.dtype} (an initialization scale too large for the "
            "dtype?) or the model computes NaN; use float64 or a smaller scale.",
        )
    g = torch.zeros_like(theta) if g is None else g.detach()
    if not bool(torch.isfinite(g).all()):
        raise fail(
            func,
            "model",
            "a module with finite gradients on X",
            "NaN or infinite gradients",
            f"The gradients overflow {g.dtype}; use float64 or a smaller scale.",
        )
    scale = float(g.double().norm()) * float(theta.detach().double().norm())
    scale /= degree * X.shape[0] ** 0.5
    worst = float(out.abs().max())
    if worst > rtol * scale or (scale == 0.0 and worst > 0.0):
        _require_deterministic(h, again, out, func)
        msg = (
            f"The model's output at initialization is not zero: max |f(θ; x)| = {worst:.3g}, "
            f"while the natural output scale ‖∇f‖‖θ‖/L is {scale:.3g} (rtol = {rtol:.2g}). "
            "The theory assumes f(θ̄; x) = 0; use ib.symmetrize(model), ib.mirror_init(model) "
            "or ib.zero_last_layer(model)."
        )
        if action == "raise":
            raise NonZeroInitError(msg)
        warnings.warn(msg, UserWarning, stacklevel=2)
    return worst


def _require_deterministic(
    h: Homogeneous, again: torch.Tensor, out: torch.Tensor, func: str
) -> None:
    """A nonzero output of a random forward (dropout in training mode: the two halves of a
    symmetrized model draw different masks) is not a non-zero initialization: say so."""
    spread = float((again - out).abs().max())
    if not spread > 64 * torch.finfo(out.dtype).eps * float(out.abs().max()):
        return  # the same outputs, up to the rounding of a nondeterministic kernel
    problem = layer_problem(list(h.model.named_modules()))
    reason = (
        problem[1]
        if problem is not None and problem[0] == "random"
        else "two evaluations at the same parameters and inputs differ, so the output at θ is "
        "not a function of θ; remove the randomness (dropout or noise in training mode: call "
        "model.eval())"
    )
    raise NotHomogeneousError(f"{func}: the model's forward pass is nondeterministic: {reason}.")
