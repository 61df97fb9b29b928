"""Homogeneity checks on a user's model: its layers, and the scaling identity.

Private helpers of :mod:`implicitbias.models.homogeneous`:

* :func:`~implicitbias._modules.layer_problem` (shared) — the layers a forward pass actually calls are recognised structurally:
  normalization layers, activations that are not positively homogeneous, and random layers
  (dropout in training mode) are refused with the layer's qualified name;
* :func:`measure_degree` — the scaling identity f(cθ) = c^L f(θ), checked at the parameters θ
  *and* at a random perturbation θ′ of them (so a bias or an affine shift that happens to be zero
  at θ is caught), with an explicit seed.

Callers run them inside :func:`implicitbias._modules.untouched`, which restores every
parameter and buffer bitwise, each submodule's train/eval flag and the global random state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from implicitbias._errors import NotHomogeneousError
from implicitbias._modules import (
    NORMALIZATIONS,
    called_modules,
    functional_forward,
    label,
    layer_problem,
)
from implicitbias._validation import check_positive, fail, fail_type

__all__ = [
    "check_degree",
    "default_rtol",
    "diagnose",
    "measure_degree",
    "Measurement",
    "Unmeasurable",
    "outputs_as_matrix",
]

def default_rtol(dtype: torch.dtype) -> float:
    """Tolerance of the scaling identity: 1e-7 in float64, 2e-3 in float32, 5e-2 in 16 bits."""
    if dtype == torch.float64:
        return 1e-7
    if dtype == torch.float32:
        return 2e-3
    return 5e-2


def check_degree(degree: Any, func: str, arg: str = "degree") -> int | float:
    """A homogeneity degree given by the user: a finite number > 0 (an ``int`` when integral)."""
    value = check_positive(degree, func, arg)
    return int(round(value)) if value == round(value) else value


def diagnose(model: nn.Module, calls: Sequence[tuple[str, nn.Module]] | None = None) -> str:
    """Likely reasons why a module is not homogeneous, for an error message."""
    order = list(calls) if calls else list(model.named_modules())
    reasons = []
    problem = layer_problem(order)
    if problem is not None:
        reasons.append(problem[1])
    first_weighted = True
    for name, mod in order:
        weight = getattr(mod, "weight", None)
        if isinstance(weight, torch.Tensor) and not isinstance(mod, NORMALIZATIONS):
            bias = getattr(mod, "bias", None)
            if isinstance(bias, torch.Tensor) and not first_weighted:
                reasons.append(
                    f"{label(name, mod)} has a bias after the first layer (only a first-layer "
                    "bias keeps a ReLU net homogeneous)"
                )
            first_weighted = False
    if not reasons:
        return ""
    return " Likely cause: " + "; ".join(reasons[:4]) + "."


# --------------------------------------------------------------------------- the measurement
def outputs_as_matrix(out: Any, func: str) -> torch.Tensor:
    """A forward's outputs as an ``(n, C)`` matrix (a scalar model gives ``C = 1``)."""
    if not isinstance(out, torch.Tensor):
        raise fail_type(func, "model", "a module whose forward returns a tensor", out)
    if out.ndim == 0:
        return out.reshape(1, 1)
    if out.ndim == 1:
        return out.reshape(-1, 1)
    return out.reshape(out.shape[0], -1)


class Unmeasurable(NotHomogeneousError):
    """Outputs and gradients are all zero at both test points: no degree can be read off."""


@dataclass
class _Point:
    """The outputs (or gradients, ``offset = 1``) at one test point and at its rescalings."""

    where: str
    base: torch.Tensor
    values: dict[float, torch.Tensor]
    offset: int
    estimates: torch.Tensor

    def misfit(self, L: float) -> float:
        """``max_c max |v(cθ) − c^L v(θ)| / (c^L max |v(θ)|)`` for the degree ``L`` of f."""
        k = L - self.offset
        top = float(self.base.abs().max())
        return max(
            float((v - c**k * self.base).abs().max()) / (c**k * top) for c, v in self.values.items()
        )


@dataclass
class Measurement:
    """The measured degree and the data to test any other candidate degree against."""

    degree: float
    rtol: float
    points: list[_Point] = field(default_factory=list)

    def fits(self, L: float) -> bool:
        """Whether f(cθ) = c^L f(θ) holds to ``rtol`` at every test point and scale."""
        return all(pt.misfit(L) <= self.rtol for pt in self.points)

    def rounded(self) -> int | float:
        """The degree as an ``int`` when the nearest integer fits as well, else a float."""
        r = int(round(self.degree))
        if r > 0 and self.fits(r):
            return r
        return self.degree


def _rms(x: torch.Tensor) -> float:
    """Root mean square of a float64 vector, without overflow for entries near the dtype's max."""
    if not x.numel():
        return 0.0
    top = float(x.abs().max())
    if not top > 0 or not math.isfinite(top):
        return top
    return top * float((x / top).pow(2).mean().sqrt())


def perturbation(theta: torch.Tensor, sizes: Sequence[int], seed: int) -> torch.Tensor:
    """θ′ = θ + ξ with ξ Gaussian, of the RMS of each parameter tensor (of θ where it is 0).

    Where θ is so large that θ + ξ would overflow its dtype, ξ is halved until θ′ is finite.
    """
    gen = torch.Generator().manual_seed(seed)
    noise = torch.randn(theta.shape, generator=gen, dtype=torch.float64)
    t64 = theta.detach().to("cpu", torch.float64)
    rms_all = _rms(t64)
    rms_all = rms_all if rms_all > 0 else 1.0
    scale = torch.empty_like(t64)
    offset = 0
    for k in sizes:
        rms = _rms(t64[offset : offset + k])
        scale[offset : offset + k] = rms if rms > 0 else rms_all
        offset += k
    step = noise * scale
    for _ in range(64):
        theta_p = theta + step.to(theta.device, theta.dtype)
        if bool(torch.isfinite(theta_p).all()) or not bool(torch.isfinite(theta).all()):
            return theta_p
        step = step / 2
    return theta_p


def measure_degree(
    model: nn.Module,
    names: Sequence[str],
    X: torch.Tensor,
    *,
    scales: Sequence[float],
    rtol: float,
    seed: int,
    func: str,
) -> Measurement:
    r"""Measure L with f(cθ) = c^L f(θ) at θ and at a perturbation θ′, and check it everywhere.

    ``X`` must already be validated (device, dtype); the caller holds :func:`untouched`.
    Raises :class:`NotHomogeneousError` (naming the culprit where it is recognised),
    :class:`Unmeasurable` when every output and gradient is zero, and ``InvalidArgumentError``
    (naming ``model``) when the outputs are not finite.
    """
    named = dict(model.named_parameters())
    params = [named[n] for n in names]
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    buffers = {n: b.detach().clone() for n, b in model.named_buffers()}

    def unflatten(t: torch.Tensor) -> dict[str, torch.Tensor]:
        out, offset = {}, 0
        for n, p in zip(names, params):
            out[n] = t[offset : offset + p.numel()].view(p.shape)
            offset += p.numel()
        return out

    def call(t: torch.Tensor) -> torch.Tensor:
        out = functional_forward(model, unflatten(t), buffers, (X,))
        return outputs_as_matrix(out, func).reshape(-1)

    with torch.no_grad(), called_modules(model) as calls:
        try:
            f_theta = call(theta)
        except Exception as exc:
            problem = layer_problem(list(model.named_modules()))
            if problem is None:
                raise
            raise NotHomogeneousError(
                f"{func}: the model is not positively homogeneous in its parameters: {problem[1]}."
            ) from exc
    problem = layer_problem(calls)
    if problem is not None:
        kind, reason = problem
        head = (
            "the model's forward pass is nondeterministic"
            if kind == "random"
            else ("the model is not positively homogeneous in its parameters")
        )
        raise NotHomogeneousError(f"{func}: {head}: {reason}.")
    _require_finite(f_theta, func, "at its parameters θ")

    def gradient(t: torch.Tensor, r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """∇_t Σ r·f(t; X) and the outputs f(t; X) of the same forward pass."""
        with torch.enable_grad():
            t = t.detach().requires_grad_(True)
            out = call(t)
            (g,) = torch.autograd.grad((out * r).sum(), t, allow_unused=True)
        return (torch.zeros_like(t) if g is None else g.detach()), out.detach()

    def value(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return call(t)

    gen = torch.Generator().manual_seed(seed + 1)
    r = torch.randn(f_theta.shape, generator=gen, dtype=torch.float64)
    r = r.to(f_theta.device, f_theta.dtype)
    g_theta, again = gradient(theta, r)
    # the gradient's forward pass is a second evaluation at θ: it must agree with the first
    spread = float((again - f_theta).abs().max())
    if spread > 64 * torch.finfo(f_theta.dtype).eps * max(float(f_theta.abs().max()), 1e-300):
        raise NotHomogeneousError(
            f"{func}: the model's forward pass is nondeterministic: two evaluations at the same "
            f"parameters and inputs differ by up to {spread:.3g}, so f(θ; x) is not a function of "
            "θ and its degree is undefined. Remove the randomness (dropout or noise in training "
            "mode: call model.eval())."
        )
    where = "at the parameters θ"
    pt0 = _point(theta, f_theta, g_theta, r, where, value, gradient, scales, func, model, calls)
    # At θ′ (generically far from any zero-output point) the scales farthest from 1 suffice,
    # and the natural output scale of θ stands in for a second gradient unless f(θ′) is tiny.
    theta_p = perturbation(theta, [p.numel() for p in params], seed)
    where = f"at a random perturbation θ′ of the parameters (seed={seed})"
    extremes = sorted({min(scales), max(scales)}, key=lambda c: abs(math.log(c)))
    pt1 = _point(theta_p, None, g_theta, r, where, value, gradient, extremes, func, model, calls)
    points = [pt for pt in (pt0, pt1) if pt is not None]
    if not points:
        raise Unmeasurable(
            f"{func} cannot measure the degree: the model's outputs and their gradients are all "
            "zero at these parameters and inputs, and at a random perturbation of the "
            "parameters. Pass `degree=` explicitly, or measure on other inputs."
        )
    # The degree is read off the first measurable point (θ, else θ′) and must then hold at all.
    L = float((points[0].estimates + points[0].offset).median())
    result = Measurement(degree=L, rtol=rtol, points=points)
    for pt in points:
        misfit = pt.misfit(L)
        if misfit > rtol:
            lo = float(pt.estimates.min()) + pt.offset
            hi = float(pt.estimates.max()) + pt.offset
            raise NotHomogeneousError(
                f"{func}: the model is not positively homogeneous in its parameters: {pt.where}, "
                f"log(f(cθ)/f(θ))/log(c) ranges over [{lo:.4g}, {hi:.4g}] for c in "
                f"{sorted(pt.values)} (relative misfit {misfit:.3g} > rtol = {rtol:g} for the "
                f"degree {L:.4g})." + diagnose(model, calls)
            )
    return result


def _require_finite(f: torch.Tensor, func: str, where: str) -> None:
    if not bool(torch.isfinite(f).all()):
        bad = int(f.numel() - int(torch.isfinite(f).sum()))
        raise fail(
            func,
            "model",
            "a module with finite outputs on X",
            f"{bad} NaN or infinite outputs {where}",
            f"The outputs overflow {f.dtype} (an initialization scale too large for the dtype?) "
            "or the model computes NaN; use float64 or a smaller scale.",
        )


def _point(
    t: torch.Tensor,
    f_t: torch.Tensor | None,
    g_hint: torch.Tensor,
    r: torch.Tensor,
    where: str,
    value: Callable[[torch.Tensor], torch.Tensor],
    gradient: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]],
    scales: Sequence[float],
    func: str,
    model: nn.Module,
    calls: Sequence[tuple[str, nn.Module]],
) -> _Point | None:
    """Outputs (or gradients at a zero-output point) at ``t`` and ``c·t``; ``None`` if all 0.

    ``g_hint`` is a gradient of ``Σ r·f`` (at ``t`` itself when ``f_t`` is given, else at the
    unperturbed θ); it sets the natural output scale, and is recomputed at ``t`` when the
    outputs there look like rounding noise.
    """
    f0 = value(t) if f_t is None else f_t
    if not bool(torch.isfinite(f0).all()):
        raise NotHomogeneousError(
            f"{func}: the model's outputs are not finite {where}, although they are at θ, so "
            "homogeneity cannot hold there." + diagnose(model, calls)
        )
    # (capped, so that 16-bit dtypes, whose eps is ~1e-3, still read ordinary outputs)
    tiny = min(1e3 * torch.finfo(f0.dtype).eps, 1e-2)
    top = float(f0.abs().max())
    g0 = g_hint
    # Natural output scale ‖∇f‖‖θ‖ (Euler: L f = <∇f, θ>); outputs far below it are rounding
    # noise of a zero-output point, and the (L−1)-homogeneous gradient is used instead.
    natural = float(g0.double().norm()) * float(t.double().norm()) / max(1.0, f0.numel() ** 0.5)
    if f_t is None and top <= tiny * natural:
        g0 = gradient(t, r)[0]
        natural = float(g0.double().norm()) * float(t.double().norm())
        natural /= max(1.0, f0.numel() ** 0.5)
    offset = 0
    base = f0
    fn: Callable[[torch.Tensor], torch.Tensor] = value
    if top <= tiny * natural:
        if not bool(torch.isfinite(g0).all()) or not bool(torch.any(g0 != 0)):
            return None
        base, offset = g0, 1

        def fn(s: torch.Tensor) -> torch.Tensor:
            return gradient(s, r)[0]

    # outputs below this fraction of the largest are rounding noise in the model's dtype
    mask = base.abs() > min(max(1e-6, 1e4 * torch.finfo(base.dtype).eps), 0.1) * base.abs().max()
    estimates, values = [], {}
    for c in scales:
        fc = fn(c * t)
        if not bool(torch.isfinite(fc).all()):
            raise fail(
                func,
                "model",
                "a module whose outputs stay finite when θ is rescaled",
                f"non-finite values at {c:g}·θ {where.removeprefix('at ')}",
                f"The outputs overflow {fc.dtype} at this scale; use float64, a smaller "
                "initialization scale, or `scales` closer to 1.",
            )
        values[c] = fc
        ratio = fc[mask] / base[mask]
        if bool(torch.any(ratio <= 0)):
            raise NotHomogeneousError(
                f"{func}: the model is not positively homogeneous in its parameters: {where}, "
                f"scaling by c = {c} changed the sign of {int((ratio <= 0).sum())} outputs, so "
                "f(cθ) ≠ c^L f(θ) for any L." + diagnose(model, calls)
            )
        estimates.append(torch.log(ratio) / math.log(c))
    return _Point(
        where=where, base=base, values=values, offset=offset, estimates=torch.cat(estimates)
    )
