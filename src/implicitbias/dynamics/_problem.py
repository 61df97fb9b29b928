"""The objective of a training run on a flat θ, a committed state, and the GD stash.

:class:`Problem` is L_λ(θ) = mean ℓ(f(θ; x_i), y_i) + (λ/2)‖θ‖² with the model's outputs (for the
flow: on a flat θ; for GD: in place on the parameters, like ``torch.optim.SGD``);
:class:`Committed` is a state at a step boundary that a run can resume from; :class:`Stash`
keeps θ_k and θ_{k−1} for GD's divergence check (per step, or deferred on the device).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from implicitbias.dynamics.losses import Loss
from implicitbias.models.homogeneous import Homogeneous

__all__: list[str] = []


class Committed(NamedTuple):
    """A consistent state at a step boundary: resuming from it continues the same trajectory.

    ``eval_index`` is the number of schedule times already recorded (all ≤ t).
    """

    theta: torch.Tensor
    t: float
    n_steps: int
    n_rejected: int
    grad_evals: int
    eval_index: int
    history_len: int
    h: float  # flow: next step size
    error_prev: float  # flow: PI controller memory
    f: torch.Tensor | None  # flow: F(θ) (FSAL)
    out: torch.Tensor | None  # outputs at θ


class Problem:
    """The objective L_λ(θ) = mean ℓ(f(θ; x_i), y_i) + (λ/2)‖θ‖² on a flat θ."""

    def __init__(self, h: Homogeneous, X: torch.Tensor, y: torch.Tensor, loss: Loss, lam: float):
        self.h = h
        self.X = X
        self.y = y
        self.loss = loss
        self.lam = lam
        self.n = X.shape[0]
        self.params: list[torch.Tensor] = [
            p for n_, p in h.model.named_parameters() if p.requires_grad
        ]
        self.sizes = [p.numel() for p in self.params]
        self.grad_evals = 0

    def load(self, theta: torch.Tensor) -> None:
        """Copy θ into the model's parameters."""
        with torch.no_grad():
            for p, v in zip(self.params, torch.split(theta, self.sizes)):
                p.copy_(v.view_as(p))

    def outputs(self, theta: torch.Tensor) -> torch.Tensor:
        """The model's outputs at θ (θ is loaded into the parameters)."""
        self.load(theta)
        with torch.no_grad():
            return self.h(self.X)

    def losses(self, out: torch.Tensor) -> torch.Tensor:
        """Per-example losses ℓ(f_i, y_i) at outputs ``out``."""
        return self.loss.values(out, self.y)

    def gradient(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(∇L_λ(θ), outputs at θ) — one forward and one backward pass."""
        self.load(theta)
        with torch.enable_grad():
            out = self.h(self.X)
            dl = self.loss.derivative(out.detach(), self.y).div_(self.n)
            grads = torch.autograd.grad(out, self.params, grad_outputs=dl, allow_unused=True)
        flat = torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, self.params)
            ]
        )
        self.grad_evals += 1
        if self.lam != 0.0:
            flat.add_(theta, alpha=self.lam)
        return flat, out.detach()

    def rhs(self, theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """F(θ) = −∇L_λ(θ) and the outputs."""
        g, out = self.gradient(theta)
        return g.neg_(), out

    # GD works on the parameters in place (no flat copies per step), like torch.optim.SGD
    def flat(self) -> torch.Tensor:
        """The current parameters as a new flat vector θ."""
        return torch.cat([p.detach().reshape(-1) for p in self.params])

    def current_outputs(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(outputs, the loss guard of :meth:`Loss.derivative_and_guard`) at the current
        parameters."""
        with torch.no_grad():
            out = self.h(self.X)
        return out, self.loss.derivative_and_guard(out, self.y)[1]

    def param_gradients(self) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor | None]:
        """(per-parameter ∇L, outputs, loss guard) at the current parameters; the guard (the
        per-example losses, or None where finite outputs prove them finite) is for the check."""
        with torch.enable_grad():
            out = self.h(self.X)
            dl, guard = self.loss.derivative_and_guard(out.detach(), self.y)
            grads = torch.autograd.grad(
                out, self.params, grad_outputs=dl.div_(self.n), allow_unused=True
            )
        self.grad_evals += 1
        return (
            [g if g is not None else torch.zeros_like(p) for g, p in zip(grads, self.params)],
            out.detach(),
            guard,
        )

    def sgd_step(self, grads: list[torch.Tensor], lr: float) -> None:
        """θ ← θ − η(∇L + λθ), exactly torch.optim.SGD(lr=η, weight_decay=λ)."""
        with torch.no_grad():
            if self.lam != 0.0:
                torch._foreach_add_(grads, self.params, alpha=self.lam)
            torch._foreach_add_(self.params, grads, alpha=-lr)


class Stash:
    """Two flat buffers that take, on alternate GD steps, θ_k, the outputs at θ_k and the loss
    guard (:meth:`Loss.derivative_and_guard`): one copy and one sum per step prove the state
    finite (a finite sum has no NaN or inf; a non-finite one is checked entry by entry, so huge
    finite values are not mistaken for divergence), and θ_{k−1} stays in the other buffer.

    Deferred checks (:meth:`defer`, :meth:`deferred_finite`) keep the verdict on the device: each
    step adds ⟨buffer, 0⟩ to an accumulator — 0 for a finite state whatever its size, NaN as
    soon as one entry is NaN or ±inf — which the host reads once per window; :meth:`keep` copies
    a verified θ_k aside (:attr:`kept`), the state a window that failed is replayed from.
    """

    def __init__(
        self, params: list[torch.Tensor], out: torch.Tensor, guard: torch.Tensor | None
    ) -> None:
        self.p = sum(q.numel() for q in params)
        shapes = [q.shape for q in params] + [out.shape]
        if guard is not None:
            shapes.append(guard.shape)
        size = sum(math.prod(shape) for shape in shapes)
        # θ keeps the parameters' dtype; the buffers take the widest dtype of what they hold,
        # so float64 outputs of a float32 net do not overflow in the stash
        self.theta_dtype, device = params[0].dtype, params[0].device
        dtype = self.theta_dtype
        for t in [*params, out, *([] if guard is None else [guard])]:
            dtype = torch.promote_types(dtype, t.dtype)
        self.bufs = [torch.empty(size, dtype=dtype, device=device) for _ in range(2)]
        self.views = []
        for buf in self.bufs:
            views, offset = [], 0
            for shape in shapes:
                numel = math.prod(shape)
                views.append(buf[offset : offset + numel].view(shape))
                offset += numel
            self.views.append(views)
        self.params = params
        self.acc: torch.Tensor | None = None  # the deferred checks' accumulator
        self.zeros: torch.Tensor | None = None
        self.kept: torch.Tensor | None = None
        self.refresh()

    def refresh(self) -> None:
        """Re-take detached views of the parameters (after user code that may have swapped a
        parameter's storage)."""
        self.src = [q.detach() for q in self.params]

    def check(self, k: int, out: torch.Tensor, guard: torch.Tensor | None) -> bool:
        """Stash the state of step ``k`` and say whether it is finite."""
        i = k & 1
        tensors = [*self.src, out] if guard is None else [*self.src, out, guard]
        torch._foreach_copy_(self.views[i], tensors)
        if math.isfinite(self.bufs[i].sum().item()):
            return True
        return all(bool(torch.isfinite(t).all()) for t in tensors)

    def defer(self, k: int, out: torch.Tensor, guard: torch.Tensor | None) -> None:
        """Stash the state of step ``k`` and add its finiteness to the accumulator, on the
        device (no host read: :meth:`deferred_finite` reads it)."""
        i = k & 1
        tensors = [*self.src, out] if guard is None else [*self.src, out, guard]
        torch._foreach_copy_(self.views[i], tensors)
        if self.acc is None or self.zeros is None:
            self.acc = self.bufs[i].new_zeros(())
            self.zeros = torch.zeros_like(self.bufs[i])
        # 0·x = 0 for every finite x (no overflow, unlike a sum) and NaN for NaN or ±inf
        self.acc.add_(torch.dot(self.bufs[i], self.zeros))

    def deferred_finite(self) -> bool:
        """Whether every state given to :meth:`defer` since the last call was finite (one host
        read); the accumulator starts over."""
        if self.acc is None:
            return True
        ok = math.isfinite(self.acc.item())
        self.acc.zero_()
        return ok

    def keep(self, k: int) -> None:
        """Copy θ_k, stashed at step ``k`` and verified, aside into :attr:`kept`."""
        if self.kept is None:
            self.kept = self.bufs[0].new_empty(self.p, dtype=self.theta_dtype)
        self.kept.copy_(self.bufs[k & 1][: self.p])

    def theta(self, k: int) -> torch.Tensor:
        """θ_k as stashed by :meth:`check` or :meth:`defer` at step ``k`` (a copy)."""
        return self.bufs[k & 1][: self.p].to(self.theta_dtype, copy=True)
