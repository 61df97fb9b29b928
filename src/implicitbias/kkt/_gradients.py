r"""Per-constraint gradients of a margin problem, without the NTK (for the working-set route).

A margin constraint ``k`` of example ``i = rows[k]`` is linear in the outputs:
:math:`q_k(\theta) = \langle c_k, f(\theta; x_i)\rangle` with the cotangent
:math:`c_k = y_i e_0` (binary) or :math:`c_k = e_{y_i} - e_{j_k}` (multiclass pair
``(i, j_k)``). :class:`ConstraintGradients` gives, at a fixed point θ̃,

* ``rows(idx)``: the gradients :math:`\nabla q_k(\tilde\theta)` of a few constraints, shape
  ``(len(idx), p)``, one reverse-mode pass per constraint on its own example (``vmap`` of
  ``grad``), in chunks sized by the memory budget;
* ``directional(r)``: :math:`\langle \nabla q_k(\tilde\theta), r\rangle` for **all**
  constraints at once, one Jacobian-vector product over the data (forward-mode AD with dual
  numbers through the module; reverse over reverse, :math:`Jr = \partial_v \langle J^\top v,
  r\rangle` with plain autograd, for a module with an op that has no forward-mode formula);
* ``pullback(coef)``: :math:`\nabla_\theta \sum_{i,a} \mathrm{coef}_{ia} f_a(\tilde\theta;
  x_i)`, one reverse-mode pass over the examples with a nonzero coefficient.

Computations run on the model's device, in float64 when the module runs in float64 (else in
its own dtype); a module that ``vmap`` cannot batch (hooks that read values, unsupported ops)
falls back to a plain autograd loop for the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.func import grad, vmap

from implicitbias._modules import functional_forward
from implicitbias.kkt.margins import _Setup

__all__ = ["ConstraintGradients", "device_budget"]

#: Errors by which ``torch.func`` says it cannot transform a module (the loops take over).
_TRANSFORM_ERRORS = (RuntimeError, ValueError, NotImplementedError, TypeError)


def device_budget(device: torch.device, budget: int) -> int:
    """The memory a computation on ``device`` may use: ``budget``, capped on an accelerator
    by half of its free memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(budget, free // 2))
    return int(budget)


class ConstraintGradients:
    """Gradients of the margin constraints ``q_k = ⟨c_k, f(θ; x_{rows[k]})⟩`` at one point.

    Parameters
    ----------
    s : _Setup
        The validated model and data (binary or multiclass).
    point : torch.Tensor
        The flat parameters θ̃ at which the gradients are taken, shape ``(p,)``.
    rows, cols : ndarray of int, shape (m,)
        Example and (multiclass) wrong class of each constraint (``cols`` unused for binary).
    budget : int
        Bytes a chunk of gradient rows (and its temporaries) may use.
    chunk_size : int, optional
        Examples per chunk of the forward-mode and reverse-mode passes over the data.
    """

    def __init__(
        self,
        s: _Setup,
        point: torch.Tensor,
        rows: np.ndarray,
        cols: np.ndarray,
        *,
        budget: int,
        chunk_size: int | None,
    ) -> None:
        self.s = s
        self.m = int(rows.shape[0])
        self.rows = rows
        self.device = point.device
        self.model = s.h.model
        self.dtype = self._compute_dtype(point)
        self.unit_roundoff = float(torch.finfo(self.dtype).eps) / 2
        self.point = point.detach().to(self.dtype)
        self.X = s.X  # cast chunk by chunk (see inputs), not copied whole
        self.n = int(s.X.shape[0])
        self.params = {k: v.detach() for k, v in s.h.unflatten(self.point).items()}
        self.buffers = dict(self.model.named_buffers())
        self.p = int(self.point.numel())
        # Each constraint as two weighted outputs: w_a·f_a + w_b·f_b (binary: y_i·f_0 + 0).
        if s.task == "multiclass":
            self.col_a = s.y[rows].astype(np.int64)
            self.col_b = cols.astype(np.int64)
            self.w_a = np.ones(self.m)
            self.w_b = -np.ones(self.m)
        else:
            self.col_a = np.zeros(self.m, dtype=np.int64)
            self.col_b = np.zeros(self.m, dtype=np.int64)
            self.w_a = np.asarray(s.y, dtype=np.float64)[rows]
            self.w_b = np.zeros(self.m)
        self.C = int(s.C)
        itemsize = torch.finfo(self.dtype).bits // 8
        # a row, its cotangent, and about two more p-vectors of temporaries per constraint
        self.row_chunk = max(1, min(4096, budget // max(1, 4 * self.p * itemsize)))
        self.example_chunk = chunk_size or 1024
        self._vmap_ok = True
        self._forward_ad_ok = True

    # ------------------------------------------------------------------ evaluation helpers
    def _compute_dtype(self, point: torch.Tensor) -> torch.dtype:
        """float64 when the module runs in float64 on a probe example, else its own dtype."""
        if point.dtype == torch.float64:
            return torch.float64
        X = self.s.X[:1]
        try:
            t64 = point.detach().to(torch.float64)
            params = self.s.h.unflatten(t64)
            x = X.to(torch.float64) if X.is_floating_point() else X
            with torch.no_grad():
                out = functional_forward(self.model, params, dict(self.model.named_buffers()), (x,))
            if not (isinstance(out, torch.Tensor) and out.dtype == torch.float64):
                return point.dtype
        except RuntimeError:  # a module that cannot run in float64 (e.g. typed buffers)
            return point.dtype
        return torch.float64

    def inputs(self, index: torch.Tensor | slice) -> torch.Tensor:
        """Rows of ``X`` (a float ``X`` cast to the computation's dtype)."""
        x = self.X[index]
        return x.to(self.dtype) if x.is_floating_point() else x

    def outputs(self, params: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
        """Outputs as a matrix ``(len(X), C)``."""
        out = functional_forward(self.model, params, self.buffers, (X,))
        return out.reshape(X.shape[0], -1)

    def cotangents(self, idx: np.ndarray) -> torch.Tensor:
        """``(len(idx), C)``: the output cotangent ``c_k`` of each constraint."""
        k = idx.shape[0]
        c = np.zeros((k, self.C))
        np.add.at(c, (np.arange(k), self.col_a[idx]), self.w_a[idx])
        np.add.at(c, (np.arange(k), self.col_b[idx]), self.w_b[idx])
        return torch.as_tensor(c, dtype=self.dtype, device=self.device)

    def _flat(self, parts: dict[str, torch.Tensor], lead: int) -> torch.Tensor:
        return torch.cat([parts[k].reshape(lead, -1) for k in self.params], dim=1)

    # ------------------------------------------------------------------ gradient rows
    def rows_of(self, idx: np.ndarray, *, batched: bool = True) -> torch.Tensor:
        """``∇q_k(θ̃)`` for the constraints ``idx``: shape ``(len(idx), p)``, on the device.

        ``batched=False`` computes them one by one with plain autograd (for a few rows).
        """
        if not batched:
            ex = torch.as_tensor(self.rows[idx], device=self.device)
            return self._rows_loop(self.inputs(ex), self.cotangents(idx))
        blocks = [
            self._rows_chunk(idx[start : start + self.row_chunk])
            for start in range(0, idx.shape[0], self.row_chunk)
        ]
        if not blocks:
            return torch.zeros((0, self.p), dtype=self.dtype, device=self.device)
        return torch.cat(blocks)

    def _rows_chunk(self, idx: np.ndarray) -> torch.Tensor:
        ex = torch.as_tensor(self.rows[idx], device=self.device)
        xs = self.inputs(ex)
        cot = self.cotangents(idx)
        if self._vmap_ok:
            try:
                return self._rows_vmap(xs, cot)
            except _TRANSFORM_ERRORS:
                self._vmap_ok = False
        return self._rows_loop(xs, cot)

    def _rows_vmap(self, xs: torch.Tensor, cot: torch.Tensor) -> torch.Tensor:
        def scalar(params: dict[str, torch.Tensor], x: torch.Tensor, c: torch.Tensor) -> Any:
            return (self.outputs(params, x.unsqueeze(0))[0] * c).sum()

        fn: Callable[..., dict[str, torch.Tensor]] = vmap(grad(scalar), in_dims=(None, 0, 0))
        return self._flat(fn(self.params, xs, cot), xs.shape[0]).detach()

    def _rows_loop(self, xs: torch.Tensor, cot: torch.Tensor) -> torch.Tensor:
        """The rows one by one with autograd (modules ``vmap`` cannot batch)."""
        out = torch.empty((xs.shape[0], self.p), dtype=self.dtype, device=self.device)
        names = list(self.params)
        for k in range(xs.shape[0]):
            ps = {n: v.detach().requires_grad_(True) for n, v in self.params.items()}
            val = (self.outputs(ps, xs[k : k + 1])[0] * cot[k]).sum()
            gs = torch.autograd.grad(val, [ps[n] for n in names], allow_unused=True)
            out[k] = torch.cat(
                [
                    (torch.zeros_like(ps[n]) if g is None else g).reshape(-1)
                    for n, g in zip(names, gs)
                ]
            )
        return out

    # ------------------------------------------------------------------ one pass over the data
    def directional(self, r: torch.Tensor) -> np.ndarray:
        """``⟨∇q_k(θ̃), r⟩`` for every constraint, shape ``(m,)`` (float64)."""
        r = r.to(self.dtype)
        tangents = {k: v.reshape(self.params[k].shape) for k, v in self._split(r).items()}
        n = self.n
        d = np.empty((n, self.C))
        for start in range(0, n, self.example_chunk):
            xb = self.inputs(slice(start, start + self.example_chunk))
            d[start : start + xb.shape[0]] = self._jvp_chunk(xb, tangents).cpu().numpy()
        i = self.rows
        return self.w_a * d[i, self.col_a] + self.w_b * d[i, self.col_b]

    def _split(self, v: torch.Tensor) -> dict[str, torch.Tensor]:
        out, offset = {}, 0
        for k, p in self.params.items():
            out[k] = v[offset : offset + p.numel()]
            offset += p.numel()
        return out

    def _jvp_chunk(self, xb: torch.Tensor, tangents: dict[str, torch.Tensor]) -> torch.Tensor:
        """``J r`` on a chunk: forward-mode AD (dual numbers through the plain module: about
        two forward passes), else reverse over reverse."""
        if self._forward_ad_ok:
            try:
                return self._jvp_forward(xb, tangents)
            except _TRANSFORM_ERRORS:  # an op without a forward-mode formula
                self._forward_ad_ok = False
        return self._jvp_reverse(xb, tangents)

    def _jvp_forward(self, xb: torch.Tensor, tangents: dict[str, torch.Tensor]) -> torch.Tensor:
        import torch.autograd.forward_ad as fwAD

        with fwAD.dual_level(), torch.no_grad():
            ps = {n: fwAD.make_dual(v, tangents[n]) for n, v in self.params.items()}
            out = self.outputs(ps, xb)
            tangent = fwAD.unpack_dual(out).tangent
        if tangent is None:
            return torch.zeros(out.shape, dtype=torch.float64, device=self.device)
        return tangent.detach().to(torch.float64)

    def _jvp_reverse(self, xb: torch.Tensor, tangents: dict[str, torch.Tensor]) -> torch.Tensor:
        """``J r`` on a chunk, reverse over reverse: ``∂/∂v ⟨Jᵀv, r⟩`` (plain autograd, so
        hooks that read values work, and no ``torch.func`` transform is needed)."""
        ps = {n: v.detach().requires_grad_(True) for n, v in self.params.items()}
        out = self.outputs(ps, xb)
        if not out.requires_grad:
            return torch.zeros(out.shape, dtype=torch.float64, device=self.device)
        v = torch.zeros_like(out, requires_grad=True)
        names = list(ps)
        # a scalar output: autograd.grad with grad_outputs imports sympy on first use
        gs = torch.autograd.grad(
            (out * v).sum(), [ps[n] for n in names], create_graph=True, allow_unused=True
        )
        terms = [(g * tangents[nm]).sum() for nm, g in zip(names, gs) if g is not None]
        inner = torch.stack(terms).sum() if terms else None
        if inner is None or not inner.requires_grad:
            return torch.zeros(out.shape, dtype=torch.float64, device=self.device)
        (d,) = torch.autograd.grad(inner, v, allow_unused=True)
        if d is None:
            return torch.zeros(out.shape, dtype=torch.float64, device=self.device)
        return d.detach().to(torch.float64)

    def pullback(self, coef: np.ndarray) -> torch.Tensor:
        """``∇_θ Σ_{i,a} coef[i, a] f_a(θ̃; x_i)``, shape ``(p,)``, over the examples whose
        coefficients are not all zero."""
        coef = coef.reshape(self.n, -1)
        used = np.flatnonzero(np.any(coef != 0, axis=1))
        total = torch.zeros(self.p, dtype=self.dtype, device=self.device)
        names = list(self.params)
        for start in range(0, used.shape[0], self.example_chunk):
            sel = used[start : start + self.example_chunk]
            xb = self.inputs(torch.as_tensor(sel, device=self.device))
            c = torch.as_tensor(coef[sel], dtype=self.dtype, device=self.device)
            ps = {n: v.detach().requires_grad_(True) for n, v in self.params.items()}
            val = (self.outputs(ps, xb) * c).sum()
            gs = torch.autograd.grad(val, [ps[n] for n in names], allow_unused=True)
            total += torch.cat(
                [
                    (torch.zeros_like(ps[n]) if g is None else g).reshape(-1)
                    for n, g in zip(names, gs)
                ]
            )
        return total
