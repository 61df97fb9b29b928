"""Homogeneity of a model in its parameters, and the functional view the library works with.

A model f(θ; x) is L-homogeneous when f(cθ; x) = c^L f(θ; x) for all c > 0 (THEORY §1).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from implicitbias._errors import NotHomogeneousError
from implicitbias._validation import check_int, check_positive, fail, fail_type

__all__ = ["Homogeneous", "homogeneity_degree", "flat_parameters"]

_NON_HOMOGENEOUS_ACTIVATIONS = (
    nn.Tanh,
    nn.Sigmoid,
    nn.GELU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.SiLU,
    nn.Softplus,
    nn.Mish,
    nn.Hardtanh,
    nn.Softsign,
    nn.LogSigmoid,
)
_NORMALIZATIONS = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
)


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All trainable parameters of ``model`` concatenated into one detached vector θ."""
    if not isinstance(model, nn.Module):
        raise fail_type("flat_parameters", "model", "a torch.nn.Module", model)
    params = [p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]
    if not params:
        raise fail("flat_parameters", "model", "a module with trainable parameters", "none")
    return torch.cat(params)


def _diagnose(model: nn.Module) -> str:
    """Likely reasons why a module is not homogeneous, for the error message."""
    reasons = []
    first_weighted = True
    for name, mod in model.named_modules():
        if isinstance(mod, _NON_HOMOGENEOUS_ACTIVATIONS):
            reasons.append(f"'{name}' is a {type(mod).__name__} activation (not homogeneous)")
        elif isinstance(mod, _NORMALIZATIONS):
            reasons.append(
                f"'{name}' is a {type(mod).__name__} normalization layer (it makes the output "
                "scale-invariant in the layers before it, and its shift is a bias)"
            )
        elif getattr(mod, "weight", None) is not None and isinstance(
            getattr(mod, "weight", None), torch.Tensor
        ):
            if getattr(mod, "bias", None) is not None and not first_weighted:
                reasons.append(
                    f"'{name}' ({type(mod).__name__}) has a bias after the first layer "
                    "(only a first-layer bias keeps a ReLU net homogeneous)"
                )
            first_weighted = False
    if not reasons:
        return ""
    return " Likely cause: " + "; ".join(reasons[:4]) + "."


def _outputs_as_matrix(out: Any, func: str) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise fail_type(func, "model", "a module whose forward returns a tensor", out)
    if out.ndim == 0:
        return out.reshape(1, 1)
    if out.ndim == 1:
        return out.reshape(-1, 1)
    return out.reshape(out.shape[0], -1)


def _default_rtol(dtype: torch.dtype) -> float:
    return 1e-7 if dtype == torch.float64 else 2e-3


def homogeneity_degree(
    model: nn.Module,
    X: torch.Tensor,
    *,
    scales: Sequence[float] = (0.5, 2.0, 3.0),
    rtol: float | None = None,
) -> int | float:
    r"""Estimate the degree L with f(cθ; x) = c^L f(θ; x), and check it holds.

    For each scale c the outputs at cθ are compared with those at θ; the degree is the median of
    ``log(f(cθ)/f(θ)) / log c`` over outputs that are not negligible, and the identity must then
    hold for every output and every c:
    ``max |f(cθ) − c^L f(θ)| ≤ rtol · c^L · max |f(θ)|``. When all outputs are zero (a
    zero-output initialization) the gradient, which is (L−1)-homogeneous, is used instead.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; its parameters are not modified.
    X : torch.Tensor
        Example inputs at which to test, shape ``(n, ...)``.
    scales : sequence of float, default (0.5, 2.0, 3.0)
        Positive scales c ≠ 1.
    rtol : float, optional
        Relative tolerance (default 1e-7 in float64, 2e-3 in float32).

    Returns
    -------
    int or float
        The degree, as an ``int`` when within tolerance of an integer.

    Raises
    ------
    NotHomogeneousError
        If the ratio is not the same power of c for every output and scale (with the measured
        ratios and the likely culprit: a hidden bias, tanh, batch norm, ...).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> net = ib.HomogeneousMLP(3, [8, 8, 8], seed=0, dtype=torch.float64)
    >>> ib.homogeneity_degree(net, torch.randn(5, 3, dtype=torch.float64))
    4
    """
    func = "homogeneity_degree"
    if not isinstance(model, nn.Module):
        raise fail_type(func, "model", "a torch.nn.Module", model)
    scales = tuple(check_positive(c, func, "scales") for c in scales)
    if not scales or any(c == 1.0 for c in scales):
        raise fail(
            func, "scales", "a non-empty sequence of positive numbers other than 1", str(scales)
        )
    h = model if isinstance(model, Homogeneous) else Homogeneous(model, degree=1, _skip_check=True)
    theta = h.theta()
    X = h._prepare_input(X, func)
    rtol = _default_rtol(theta.dtype) if rtol is None else check_positive(rtol, func, "rtol")
    gen = torch.Generator().manual_seed(0)

    def gradient(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().requires_grad_(True)
        out = h.function(t, X).reshape(-1)
        r = torch.randn(out.shape, generator=gen, dtype=out.dtype).to(out.device)
        gen.manual_seed(0)
        (g,) = torch.autograd.grad((out * r).sum(), t)
        return g.detach()

    with torch.no_grad():  # one forward pass: check the output type, keep the values
        buffers = dict(h.model.named_buffers())
        f0 = _outputs_as_matrix(
            functional_call(h.model, (h.unflatten(theta), buffers), (X,)), func
        ).reshape(-1)
    g0 = gradient(theta)
    # Natural output scale ‖∇f‖‖θ‖ (Euler: L f = <∇f, θ>); outputs far below it are rounding
    # noise of a zero-output initialization, and the (L-1)-homogeneous gradient is used instead.
    natural = float(g0.norm() * theta.norm()) / max(1.0, f0.numel() ** 0.5)
    offset = 0
    if float(f0.abs().max()) <= 1e3 * torch.finfo(f0.dtype).eps * natural:
        f0 = g0
        offset = 1
        value = gradient
        if not torch.any(f0 != 0):
            raise NotHomogeneousError(
                "homogeneity_degree cannot measure the degree: the model's outputs and their "
                "gradients are all zero at these parameters and inputs. Pass `degree=` "
                "explicitly, or measure before zeroing the output."
            )
    else:

        def value(t: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return h.function(t, X).reshape(-1)

    mask = f0.abs() > 1e-6 * f0.abs().max()
    estimates = []
    values = {}
    for c in scales:
        fc = value(c * theta)
        values[c] = fc
        ratio = fc[mask] / f0[mask]
        if torch.any(ratio <= 0) or not torch.all(torch.isfinite(ratio)):
            raise NotHomogeneousError(
                f"homogeneity_degree: scaling θ by c = {c} changed the sign of "
                f"{int((ratio <= 0).sum())} outputs, so f(cθ) ≠ c^L f(θ) for any L."
                + _diagnose(h.model)
            )
        estimates.append(torch.log(ratio) / math.log(c))
    all_est = torch.cat(estimates)
    L = float(all_est.median())
    worst = 0.0
    for c in scales:
        err = float((values[c] - c**L * f0).abs().max() / (c**L * f0.abs().max()))
        worst = max(worst, err)
    if worst > rtol:
        lo, hi = float(all_est.min()) + offset, float(all_est.max()) + offset
        raise NotHomogeneousError(
            f"homogeneity_degree: the model is not positively homogeneous in its parameters: "
            f"log(f(cθ)/f(θ))/log(c) ranges over [{lo:.4g}, {hi:.4g}] for c in {list(scales)} "
            f"(relative misfit {worst:.3g} > rtol = {rtol:g})." + _diagnose(h.model)
        )
    L += offset
    if abs(L - round(L)) <= max(1e3 * rtol, 1e-6):
        return int(round(L))
    return L


class Homogeneous(nn.Module):
    r"""An L-homogeneous model and its functional view f(θ; X) on a flat parameter vector θ.

    Wraps any ``torch.nn.Module`` whose output is positively homogeneous in its trainable
    parameters, records (and, given example inputs, verifies) the degree ``L``, and exposes what
    the rest of the library needs: the flat parameters θ, outputs at any θ via
    ``torch.func.functional_call``, and per-example gradients ∇_θ f(θ; x_i) in chunks.

    Parameters
    ----------
    model : torch.nn.Module
        The model. Built-in models (and :func:`symmetrize` of them) carry a ``degree``.
    degree : int or float, optional
        The homogeneity degree. Default: the model's own ``degree`` attribute, else estimated
        with :func:`homogeneity_degree` on ``example_input``.
    example_input : torch.Tensor, optional
        Inputs at which the degree is estimated or, when ``degree`` is given, verified.

    Raises
    ------
    NotHomogeneousError
        If the verification fails, or the degree is unknown and no example input is given.

    Notes
    -----
    Outputs are returned as shape ``(n,)`` for a single-output model and ``(n, C)`` for ``C``
    outputs. The wrapper shares its parameters with ``model`` (no copy).

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> seq = torch.nn.Sequential(torch.nn.Linear(4, 8, bias=False), torch.nn.ReLU(),
    ...                           torch.nn.Linear(8, 1, bias=False)).double()
    >>> h = ib.Homogeneous(seq, example_input=torch.randn(6, 4, dtype=torch.float64))
    >>> h.degree, h.num_parameters
    (2, 40)
    """

    def __init__(
        self,
        model: nn.Module,
        degree: int | float | None = None,
        *,
        example_input: torch.Tensor | None = None,
        _skip_check: bool = False,
    ) -> None:
        super().__init__()
        func = "Homogeneous"
        if isinstance(model, Homogeneous):
            model = model.model
        if not isinstance(model, nn.Module):
            raise fail_type(func, "model", "a torch.nn.Module", model)
        self.model = model
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        if not self._names:
            raise fail(func, "model", "a module with trainable parameters", "a module with none")
        if _skip_check:
            self._degree: int | float = degree if degree is not None else 1
            return
        if degree is not None:
            if isinstance(degree, bool) or not isinstance(degree, (int, float)) or degree <= 0:
                raise fail(func, "degree", "a positive number", repr(degree))
            if example_input is not None:
                measured = homogeneity_degree(model, example_input)
                if abs(measured - degree) > 1e-6 * max(1.0, abs(degree)):
                    raise NotHomogeneousError(
                        f"Homogeneous: the model was declared {degree}-homogeneous but its "
                        f"measured degree is {measured}."
                    )
            self._degree = degree
        elif getattr(model, "degree", None) is not None:
            self._degree = model.degree
            if example_input is not None:
                measured = homogeneity_degree(model, example_input)
                if abs(measured - self._degree) > 1e-6 * max(1.0, abs(self._degree)):
                    raise NotHomogeneousError(
                        f"Homogeneous: the model says it is {self._degree}-homogeneous but its "
                        f"measured degree is {measured}."
                    )
        elif example_input is not None:
            self._degree = homogeneity_degree(model, example_input)
        else:
            raise NotHomogeneousError(
                "Homogeneous: the degree of this model is unknown. Pass `degree=L`, or "
                "`example_input=X` to estimate (and check) it."
            )

    # ----------------------------------------------------------------- basic properties
    @property
    def degree(self) -> int | float:
        """The homogeneity degree ``L``."""
        return self._degree

    @property
    def parameter_names(self) -> list[str]:
        """Names of the trainable parameters, in the order of θ."""
        return list(self._names)

    def _params(self) -> dict[str, torch.Tensor]:
        named = dict(self.model.named_parameters())
        return {n: named[n] for n in self._names}

    @property
    def num_parameters(self) -> int:
        """``p``, the length of θ."""
        return sum(p.numel() for p in self._params().values())

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self._params().values())).dtype

    @property
    def device(self) -> torch.device:
        return next(iter(self._params().values())).device

    def theta(self) -> torch.Tensor:
        """The flat parameter vector θ (a detached copy), shape ``(p,)``."""
        return torch.cat([p.detach().reshape(-1) for p in self._params().values()])

    def set_theta(self, theta: torch.Tensor) -> None:
        """Copy a flat vector θ of shape ``(p,)`` into the model's parameters (in place)."""
        theta = self._check_theta(theta, "Homogeneous.set_theta")
        with torch.no_grad():
            for p, t in zip(self._params().values(), self.unflatten(theta).values()):
                p.copy_(t)

    def unflatten(self, theta: torch.Tensor) -> dict[str, torch.Tensor]:
        """Split a flat vector θ into the model's named parameter shapes (views)."""
        out = {}
        offset = 0
        for name, p in self._params().items():
            k = p.numel()
            out[name] = theta[offset : offset + k].view(p.shape)
            offset += k
        return out

    def _check_theta(self, theta: torch.Tensor, func: str) -> torch.Tensor:
        if not isinstance(theta, torch.Tensor):
            raise fail_type(func, "theta", "a torch.Tensor", theta)
        p = self.num_parameters
        if theta.shape != (p,):
            raise fail(
                func, "theta", f"a flat vector of shape ({p},)", f"shape {tuple(theta.shape)}"
            )
        if theta.device != self.device:
            raise fail(func, "theta", f"on the model's device {self.device}", f"{theta.device}")
        return theta

    def _prepare_input(self, X: Any, func: str, arg: str = "X") -> torch.Tensor:
        if not isinstance(X, torch.Tensor):
            raise fail_type(func, arg, "a torch.Tensor of inputs", X)
        if X.ndim == 0 or X.shape[0] == 0:
            raise fail(
                func,
                arg,
                "a non-empty batch of inputs of shape (n, ...)",
                f"shape {tuple(X.shape)}",
            )
        if X.device != self.device:
            raise fail(
                func,
                arg,
                f"on the model's device ({self.device})",
                f"a tensor on {X.device}",
                "Move it with X.to(device).",
            )
        if X.is_floating_point() and X.dtype != self.dtype:
            X = X.to(self.dtype)
        if X.is_floating_point() and not bool(torch.isfinite(X).all()):
            raise fail(func, arg, "finite (no NaN or inf)", "non-finite entries")
        return X

    # ----------------------------------------------------------------- function evaluations
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs at the current parameters: shape ``(n,)`` or ``(n, C)``."""
        return self._squeeze(self.model(X))

    @staticmethod
    def _squeeze(out: torch.Tensor) -> torch.Tensor:
        if out.ndim == 2 and out.shape[1] == 1:
            return out[:, 0]
        return out

    def function(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """Outputs f(θ; X) at a flat parameter vector θ (differentiable in θ)."""
        buffers = dict(self.model.named_buffers())
        out = functional_call(self.model, (self.unflatten(theta), buffers), (X,))
        return self._squeeze(out)

    def num_outputs(self, X: torch.Tensor) -> int:
        """``C``, the number of outputs per example (1 for a scalar model)."""
        with torch.no_grad():
            out = self.model(X[:1])
        return _outputs_as_matrix(out, "Homogeneous").shape[1]

    def jacobian(
        self,
        X: torch.Tensor,
        *,
        theta: torch.Tensor | None = None,
        chunk_size: int | None = None,
    ) -> torch.Tensor:
        r"""Per-example gradients ∇_θ f(θ; x_i): shape ``(n, p)``, or ``(n, C, p)`` for C outputs.

        Computed with ``torch.func.vmap(jacrev(...))`` over chunks of ``chunk_size`` examples
        (default: as many as keep a chunk's Jacobian under about 256 MB), with a per-example
        autograd loop as the fallback for modules vmap cannot batch.
        """
        func = "Homogeneous.jacobian"
        X = self._prepare_input(X, func)
        theta = self.theta() if theta is None else self._check_theta(theta, func)
        n = X.shape[0]
        p = self.num_parameters
        C = self.num_outputs(X)
        if chunk_size is None:
            per_row = max(1, C * p * theta.element_size())
            chunk_size = max(1, min(n, (256 * 2**20) // per_row))
        chunk_size = check_int(chunk_size, func, "chunk_size", minimum=1)

        # Differentiate with respect to each parameter tensor (not the flat θ split into views,
        # whose backward materializes a zero-filled p-vector per tensor), then concatenate.
        params = {k: v.detach() for k, v in self.unflatten(theta).items()}
        buffers = dict(self.model.named_buffers())

        def single(ps: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
            out = functional_call(self.model, (ps, buffers), (x.unsqueeze(0),))
            return out.reshape(-1)

        jac_fn: Callable[..., dict[str, torch.Tensor]] = vmap(jacrev(single), in_dims=(None, 0))
        blocks = []
        for start in range(0, n, chunk_size):
            xb = X[start : start + chunk_size]
            try:
                parts = jac_fn(params, xb)
                block = torch.cat([parts[k].reshape(xb.shape[0], C, -1) for k in params], dim=2)
            except (RuntimeError, ValueError, NotImplementedError):
                block = self._jacobian_loop(theta, xb)
            blocks.append(block.detach())
        J = torch.cat(blocks)  # (n, C, p)
        return J[:, 0, :] if C == 1 else J

    def _jacobian_loop(self, theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        rows = []
        for i in range(X.shape[0]):
            t = theta.detach().requires_grad_(True)
            out = self.function(t, X[i : i + 1]).reshape(-1)
            grads = [torch.autograd.grad(o, t, retain_graph=True)[0] for o in out]
            rows.append(torch.stack(grads))
        return torch.stack(rows)

    def extra_repr(self) -> str:
        return f"degree={self._degree}, num_parameters={self.num_parameters}"
