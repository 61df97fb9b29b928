"""Homogeneity of a model in its parameters, and the functional view the library works with.

A model f(θ; x) is L-homogeneous when f(cθ; x) = c^L f(θ; x) for all c > 0 (THEORY §1).

Inputs and dtypes follow one rule for the whole library, applied by
:meth:`Homogeneous.prepare_input` and stated in :mod:`implicitbias.models._inputs`.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.func import jacrev, vmap

from implicitbias._errors import NotHomogeneousError
from implicitbias._modules import check_model, functional_forward, untouched
from implicitbias._validation import check_int, check_positive, fail, fail_type
from implicitbias.models._checks import (
    Unmeasurable,
    check_degree,
    default_rtol,
    measure_degree,
    outputs_as_matrix,
)
from implicitbias.models._inputs import validate_input

__all__ = ["Homogeneous", "homogeneity_degree", "flat_parameters"]

#: Rows of the inputs on which a declared degree is verified (homogeneity is a property of the
#: function: a few rows at two parameter points suffice, and keep the check cheap).
_VERIFY_ROWS = 64


def flat_parameters(model: nn.Module) -> torch.Tensor:
    """All trainable parameters of ``model`` concatenated into one detached vector θ."""
    if not isinstance(model, nn.Module):
        raise fail_type("flat_parameters", "model", "a torch.nn.Module", model)
    params = [p.detach().reshape(-1) for p in model.parameters() if p.requires_grad]
    if not params:
        raise fail("flat_parameters", "model", "a module with trainable parameters", "none")
    if any(p.is_meta for p in params):
        raise fail(
            "flat_parameters",
            "model",
            "a module whose parameters hold data",
            "parameters on the 'meta' device",
        )
    return torch.cat(params)


def _measure(
    h: Homogeneous,
    X: torch.Tensor,
    *,
    scales: Sequence[float],
    rtol: float | None,
    seed: int,
    func: str,
) -> Any:
    rtol = default_rtol(h.dtype) if rtol is None else rtol
    with untouched(h.model):
        return measure_degree(h.model, h._names, X, scales=scales, rtol=rtol, seed=seed, func=func)


def homogeneity_degree(
    model: nn.Module,
    X: torch.Tensor,
    *,
    scales: Sequence[float] = (0.5, 2.0, 3.0),
    rtol: float | None = None,
    seed: int = 0,
) -> int | float:
    r"""Estimate the degree L with f(cθ; x) = c^L f(θ; x), and check that it holds.

    The identity is tested at two points: the model's parameters θ, and a random perturbation
    θ′ = θ + ξ (Gaussian, of each parameter tensor's RMS; ``seed`` fixes it), so that a bias or
    an affine shift that happens to be zero at θ cannot pass. At each point and each scale c the
    outputs at cθ are compared with those at θ; the degree is the median of
    ``log(f(cθ)/f(θ)) / log c`` over outputs that are not negligible, and the identity must then
    hold for every output, point and c: ``max |f(cθ) − c^L f(θ)| ≤ rtol · c^L · max |f(θ)|``.
    At a zero-output point (a symmetrized initialization) the gradient, which is
    (L−1)-homogeneous, is used instead.

    Before any of this, the layers that the forward pass calls are checked structurally:
    normalization layers (BatchNorm, LayerNorm, GroupNorm, InstanceNorm, RMSNorm), activations
    that are not homogeneous (Tanh, Sigmoid, GELU, Softplus, ELU, ...) and a trainable PReLU
    slope are refused by name, and so is a nondeterministic forward (dropout in training mode,
    or any randomness: two evaluations at the same θ must agree).

    The model is never changed: parameters, buffers (BatchNorm statistics), every submodule's
    train/eval flag and the global random state are restored, also when the check raises.

    Parameters
    ----------
    model : torch.nn.Module
        Any module; it is not modified.
    X : torch.Tensor
        Example inputs at which to test, shape ``(n, ...)``; cast to the parameters' dtype (see
        the module docstring for the dtype rule).
    scales : sequence of float, default (0.5, 2.0, 3.0)
        Positive scales c ≠ 1.
    rtol : float, optional
        Relative tolerance (default 1e-7 in float64, 2e-3 in float32).
    seed : int, default 0
        Seed of the random perturbation θ′ (the global random state is not used).

    Returns
    -------
    int or float
        The degree, as an ``int`` when the nearest integer satisfies the identity.

    Raises
    ------
    NotHomogeneousError
        If a layer is recognised as not homogeneous or random (the message names it, e.g.
        ``'1' (BatchNorm1d)``), or the ratio is not the same power of c for every output, point
        and scale (with the measured ratios and the likely culprit: a hidden bias, ...), or
        the degree is not positive (a scale-invariant model, L = 0, or L < 0).
    InvalidArgumentError
        If the parameters or outputs are not finite (NaN weights, an overflowing scale), the
        model or ``X`` is on the ``meta`` device, or ``X`` has a dtype the model cannot take.

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
    if isinstance(scales, (str, bytes)) or not isinstance(scales, Sequence):
        raise fail_type(func, "scales", "a sequence of positive numbers other than 1", scales)
    scales = tuple(check_positive(c, func, "scales") for c in scales)
    if not scales or any(c == 1.0 for c in scales):
        raise fail(
            func, "scales", "a non-empty sequence of positive numbers other than 1", str(scales)
        )
    seed = check_int(seed, func, "seed", minimum=0)
    if rtol is not None:
        rtol = check_positive(rtol, func, "rtol")
    inner = model.model if isinstance(model, Homogeneous) else model
    h = Homogeneous(inner, degree=1, check=False)
    X = h.prepare_input(X, func=func)
    found = _measure(h, X, scales=scales, rtol=rtol, seed=seed, func=func)
    if not found.degree > 0 or found.fits(0.0):
        raise NotHomogeneousError(
            f"{func}: the model's outputs do not grow with the scale of its parameters: "
            f"f(cθ) = c^L f(θ) holds with L = {found.degree:.4g}, and the theory needs a degree "
            "L > 0. A forward that normalizes by a weight's or an activation's norm (F.normalize, "
            "division by ‖W‖, a functional layer_norm) makes the model scale-invariant (L = 0)."
        )
    return found.rounded()


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
        The homogeneity degree, a finite number > 0. Default: the model's own ``degree``
        attribute, else estimated with :func:`homogeneity_degree` on ``example_input``.
    example_input : torch.Tensor, optional
        Inputs at which the degree is estimated or, when ``degree`` is given, verified.
    check : bool, default True
        ``False`` trusts ``degree`` (then required) as given: no check of the model and no
        verification of the degree. For a degree just measured by :func:`homogeneity_degree`;
        a wrong degree silently changes every normalized quantity.

    Raises
    ------
    NotHomogeneousError
        If the verification fails, or the degree is unknown and no example input is given.
    InvalidArgumentError
        If ``degree`` is not a finite positive number, or the trainable parameters are not
        finite, of one real floating-point dtype, and on a device with data (not ``meta``).
    InvalidArgumentTypeError
        If ``degree`` is not a number (a ``bool`` included).

    Notes
    -----
    A declared degree (``degree=`` or the model's own attribute) is checked once: on
    ``example_input``, else on the inputs of the first call that brings some (64 rows at most).
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
        check: bool = True,
    ) -> None:
        super().__init__()
        func = "Homogeneous"
        if isinstance(model, Homogeneous):
            model = model.model
        if not isinstance(model, nn.Module):
            raise fail_type(func, "model", "a torch.nn.Module", model)
        self.model: nn.Module = model
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]
        if not self._names:
            raise fail(func, "model", "a module with trainable parameters", "a module with none")
        self._verified = True
        self._source = "declared"
        if not check:
            if degree is None:
                raise fail(
                    func, "degree", "a degree when check=False (nothing is measured)", "None"
                )
            self._degree: int | float = check_degree(degree, func)
            return
        check_model(model, self._names, func)
        if degree is not None:
            self._degree = check_degree(degree, func)
        elif getattr(model, "degree", None) is not None:
            own = model.degree
            if (
                isinstance(own, bool)
                or not isinstance(own, numbers.Real)
                or not (0 < float(own) < float("inf"))
            ):
                raise fail(
                    func, "model", "a module whose `degree` is a positive finite number", repr(own)
                )
            self._degree = check_degree(own, func)
            self._source = "says it is"
        elif example_input is not None:
            self._degree = homogeneity_degree(model, example_input)
            return
        else:
            raise NotHomogeneousError(
                "Homogeneous: the degree of this model is unknown. Pass `degree=L`, or "
                "`example_input=X` to estimate (and check) it."
            )
        # A declared degree is checked against the model once: now, on example_input, or else
        # on the inputs of the first call that brings some (see prepare_input).
        self._verified = False
        if example_input is not None:
            probe = Homogeneous(model, degree=1, check=False)
            self._verify_degree(probe.prepare_input(example_input, func="homogeneity_degree"), func)

    def _verify_degree(self, X: torch.Tensor, func: str) -> None:
        """Check the declared degree on (at most 64 rows of) validated inputs ``X``, once."""
        probe = Homogeneous(self.model, degree=1, check=False)
        try:
            found = _measure(
                probe, X[:_VERIFY_ROWS], scales=(0.5, 2.0, 3.0), rtol=None, seed=0, func=func
            )
        except Unmeasurable:
            return  # all outputs and gradients are zero on these inputs: try the next ones
        if not found.fits(self._degree):
            said = "was declared" if self._source == "declared" else "says it is"
            raise NotHomogeneousError(
                f"{func}: the model {said} {self._degree}-homogeneous but its measured degree is "
                f"{found.rounded()}. A wrong degree silently changes every normalized quantity "
                "(margins, ε of the KKT check); pass the measured one."
            )
        self._verified = True

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

    def prepare_input(
        self, X: Any, *, func: str = "Homogeneous.prepare_input", arg: str = "X"
    ) -> torch.Tensor:
        """``X`` validated (and cast) by the library's one input rule (see :mod:`models`).

        The model is checked too (finite parameters of one real dtype, no hooks on the
        wrapper), and a declared degree not yet checked is checked here, once, on (up to 64
        rows of) ``X``. ``func`` and ``arg`` name the caller and the argument in errors.

        Parameters
        ----------
        X : torch.Tensor
            Inputs of shape ``(n, ...)``.
        func, arg : str
            The public function and argument to name in error messages.

        Returns
        -------
        torch.Tensor
            ``X`` on the model's device; a float ``X`` cast to the parameters' dtype.
        """
        X = validate_input(self, X, func, arg)
        if not self._verified:
            self._verify_degree(X, func)
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
        out = functional_forward(self.model, self.unflatten(theta), buffers, (X,))
        return self._squeeze(out)

    def num_outputs(self, X: torch.Tensor) -> int:
        """``C``, the number of outputs per example (1 for a scalar model)."""
        with untouched(self.model), torch.no_grad():
            out = self.model(X[:1])
        return outputs_as_matrix(out, "Homogeneous").shape[1]

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
        X = self.prepare_input(X, func=func)
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
            out = functional_forward(self.model, ps, buffers, (x.unsqueeze(0),))
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
