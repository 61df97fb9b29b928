"""Symmetric matrix factorization W = UUᵀ − VVᵀ and its network view (THEORY §5)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from implicitbias._validation import (
    check_choice,
    check_float_dtype,
    check_int,
    check_model_input,
    check_positive,
    check_scale_fits,
    describe,
    fail,
    fail_type,
)
from implicitbias.models.capabilities import Task

__all__ = ["MatrixFactorization", "QuadraticNet"]

QuadraticInit = Literal["symmetric", "identity"]


class MatrixFactorization(nn.Module):
    r"""Overparameterized symmetric factorization, 2-homogeneous in θ = (U, V).

    .. math::

        W(\theta) = U U^\top - V V^\top, \qquad f(\theta; (i, j)) = W_{ij},
        \qquad U, V \in \mathbb{R}^{d \times d}.

    Initialization ``U = V = alpha * I`` gives ``W = 0``.

    Parameters
    ----------
    d : int
        Matrix size.
    alpha : float, default 1.0
        Initialization scale (``U = V = alpha * I``); refused when ``alpha**2`` overflows the
        dtype or ``alpha`` underflows it.
    dtype, device :
        Passed to the parameters.

    Examples
    --------
    >>> import torch, implicitbias as ib
    >>> mf = ib.MatrixFactorization(4, alpha=10.0, dtype=torch.float64)
    >>> mf(torch.tensor([[0, 1], [2, 2]]))
    tensor([0., 0.], dtype=torch.float64, grad_fn=<SubBackward0>)
    """

    def __init__(
        self,
        d: int,
        *,
        alpha: float = 1.0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        self.d = check_int(d, "MatrixFactorization", "d", minimum=1)
        alpha = check_positive(alpha, "MatrixFactorization", "alpha")
        check_float_dtype(dtype, "MatrixFactorization")
        check_scale_fits(alpha, alpha, 2, dtype, "MatrixFactorization")
        eye = torch.eye(self.d, dtype=dtype, device=device)
        self.U = nn.Parameter(alpha * eye.clone())
        self.V = nn.Parameter(alpha * eye.clone())

    @property
    def degree(self) -> int:
        """The homogeneity degree, 2."""
        return 2

    @property
    def W(self) -> torch.Tensor:
        """The matrix ``U Uᵀ − V Vᵀ``, shape ``(d, d)``."""
        return self.U @ self.U.T - self.V @ self.V.T

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Entries ``W[i, j]`` for a LongTensor of index pairs of shape ``(n, 2)``; shape ``(n,)``.

        Costs O(n d): rows are gathered, the d×d matrix is never formed.
        """
        name = "MatrixFactorization"
        if not isinstance(idx, torch.Tensor):
            raise fail_type(name, "idx", "an integer tensor of (i, j) index pairs", idx)
        if idx.dtype not in (torch.int64, torch.int32) or idx.ndim != 2 or idx.shape[-1] != 2:
            raise fail(
                name,
                "idx",
                "an integer tensor of (i, j) index pairs with shape (n, 2)",
                f"dtype {idx.dtype} and shape {tuple(idx.shape)}",
            )
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= self.d):
            raise fail(
                name,
                "idx",
                f"an integer tensor of index pairs with entries in [0, {self.d})",
                f"entries in [{int(idx.min())}, {int(idx.max())}]",
            )
        i, j = idx[:, 0], idx[:, 1]
        return (self.U[i] * self.U[j]).sum(-1) - (self.V[i] * self.V[j]).sum(-1)

    def input_spec(self) -> str:
        """The expected inputs, in words (capability protocol)."""
        return f"an integer tensor of index pairs of shape (n, 2) with entries in [0, {self.d})"

    def check_input(self, X: torch.Tensor, *, func: str, arg: str = "X") -> None:
        """Index pairs must be an integer ``(n, 2)`` tensor in range (a negative index would
        wrap around silently in the library's vectorized routes); raise naming ``func``/``arg``."""
        expect = self.input_spec()
        if X.is_floating_point() or X.ndim != 2 or X.shape[1] != 2:
            raise fail(func, arg, expect, describe(X))
        if X.numel():
            lo, hi = int(X.min()), int(X.max())
            if lo < 0 or hi >= self.d:
                raise fail(func, arg, expect, f"entries in [{lo}, {hi}]")

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        r"""The exact NTK block ``K(X1, X2)`` of index pairs (``X2 = X1`` when omitted).

        ``∂W_ij/∂U = e_i (Uᵀe_j)ᵀ + e_j (Uᵀe_i)ᵀ``, so with ``G = UUᵀ`` the kernel of the
        pairs ``(i, j)`` and ``(k, m)`` is ``[i=k] G_jm + [i=m] G_jk + [j=k] G_im + [j=m] G_ik``
        (and the same for V), summed over the trainable factors only. Valid for this class's
        own forward (checked by :func:`~implicitbias.empirical_ntk`).
        """
        Xb = X2 if X2 is not None else X1
        i, j = X1[:, 0].long(), X1[:, 1].long()
        k, m = Xb[:, 0].long(), Xb[:, 1].long()
        K = torch.zeros((X1.shape[0], Xb.shape[0]), dtype=self.U.dtype, device=self.U.device)
        for P in (self.U, self.V):
            if not P.requires_grad:
                continue
            G = P.detach() @ P.detach().T
            eq_ik = (i[:, None] == k[None, :]).to(G.dtype)
            eq_im = (i[:, None] == m[None, :]).to(G.dtype)
            eq_jk = (j[:, None] == k[None, :]).to(G.dtype)
            eq_jm = (j[:, None] == m[None, :]).to(G.dtype)
            K += eq_ik * G[j][:, m] + eq_im * G[j][:, k] + eq_jk * G[i][:, m] + eq_jm * G[i][:, k]
        return K

    def convex_surrogate(self, task: Task) -> str | None:
        """The convex problem whose solutions are this model's KKT points (THEORY §5).

        ``"min_nuclear_norm"`` (minimum nuclear-norm completion) for regression, else ``None``.
        """
        return "min_nuclear_norm" if task == "regression" else None

    def extra_repr(self) -> str:
        return f"d={self.d}"


class QuadraticNet(nn.Module):
    r"""Two-layer network with quadratic activation and fixed ±1 output weights (2-homogeneous).

    .. math::

        f(\theta; x) = \lVert U^\top x \rVert^2 - \lVert V^\top x \rVert^2
                     = x^\top (U U^\top - V V^\top) x,
        \qquad U, V \in \mathbb{R}^{d \times m}.

    Inputs of shape ``(n, 2, d)`` are read as pairs ``(x, x')`` and give the bilinear form
    ``xᵀ (UUᵀ − VVᵀ) x'``; with ``x = e_i, x' = e_j`` this is matrix completion, the network
    view of :class:`MatrixFactorization`.

    Parameters
    ----------
    d : int
        Input dimension.
    width : int
        Hidden width ``m`` of each branch.
    init : {"symmetric", "identity"}, default "symmetric"
        ``"symmetric"``: ``U = V`` with i.i.d. N(0, 1/m) entries (zero output);
        ``"identity"``: ``U = V = I`` (needs ``width == d``).
    alpha : float, default 1.0
        Scale of the initialization; refused when ``width · alpha**2`` overflows the dtype or
        ``alpha`` underflows it.
    seed : int, optional
        Seed of the random initialization.
    dtype, device :
        Passed to the parameters.
    """

    def __init__(
        self,
        d: int,
        width: int,
        *,
        init: QuadraticInit = "symmetric",
        alpha: float = 1.0,
        seed: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        name = "QuadraticNet"
        self.d = check_int(d, name, "d", minimum=1)
        self.width = check_int(width, name, "width", minimum=1)
        check_choice(init, name, "init", ("symmetric", "identity"))
        alpha = check_positive(alpha, name, "alpha")
        check_float_dtype(dtype, name)
        check_scale_fits(alpha, alpha, 2, dtype, name, terms=self.width)
        if seed is not None:
            seed = check_int(seed, name, "seed", minimum=0)
        if init == "identity":
            if self.width != self.d:
                raise fail(name, "width", f"equal to d = {self.d} for init='identity'", str(width))
            base = torch.eye(self.d, dtype=dtype)
        else:
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else None
            base = torch.randn(self.d, self.width, generator=gen, dtype=dtype) / self.width**0.5
        self.U = nn.Parameter((alpha * base).to(device))
        self.V = nn.Parameter((alpha * base).clone().to(device))

    @property
    def degree(self) -> int:
        """The homogeneity degree, 2."""
        return 2

    @property
    def W(self) -> torch.Tensor:
        """The matrix ``U Uᵀ − V Vᵀ``, shape ``(d, d)``."""
        return self.U @ self.U.T - self.V @ self.V.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``xᵀWx`` for inputs ``(n, d)``, or ``xᵀWx'`` for pairs ``(n, 2, d)``; shape ``(n,)``."""
        ok = (
            isinstance(x, torch.Tensor)
            and x.ndim in (2, 3)
            and x.shape[-1] == self.d
            and (x.ndim == 2 or x.shape[1] == 2)
        )
        check_model_input(
            x, "QuadraticNet", "x", f"(n, {self.d}) or (n, 2, {self.d})", ok, self.U.dtype
        )
        if x.ndim == 2:
            a = b = x
        else:
            a, b = x[:, 0], x[:, 1]
        return ((a @ self.U) * (b @ self.U)).sum(-1) - ((a @ self.V) * (b @ self.V)).sum(-1)

    def input_spec(self) -> str:
        """The expected inputs, in words (capability protocol)."""
        return f"a float tensor of shape (n, {self.d}) or (n, 2, {self.d})"

    def closed_form_ntk(self, X1: torch.Tensor, X2: torch.Tensor | None = None) -> torch.Tensor:
        r"""The exact NTK block ``K(X1, X2)`` (``X2 = X1`` when omitted), shape ``(n1, n2)``.

        For the bilinear form ``f = aᵀ(UUᵀ − VVᵀ)b`` (``a = b = x`` for ``(n, d)`` inputs),
        ``∂f/∂U = a (Uᵀb)ᵀ + b (Uᵀa)ᵀ``; the kernel sums the four cross terms of two such
        gradients, over the trainable factors only. Valid for this class's own forward
        (checked by :func:`~implicitbias.empirical_ntk`).
        """

        def pair(X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return (X, X) if X.ndim == 2 else (X[:, 0], X[:, 1])

        a1, b1 = pair(X1)
        a2, b2 = pair(X2 if X2 is not None else X1)
        K = torch.zeros((a1.shape[0], a2.shape[0]), dtype=a1.dtype, device=a1.device)
        for param in (self.U, self.V):
            if not param.requires_grad:
                continue
            P = param.detach()
            p1, q1, p2, q2 = b1 @ P, a1 @ P, b2 @ P, a2 @ P
            K += (a1 @ a2.T) * (p1 @ p2.T) + (a1 @ b2.T) * (p1 @ q2.T)
            K += (b1 @ a2.T) * (q1 @ p2.T) + (b1 @ b2.T) * (q1 @ q2.T)
        return K

    def extra_repr(self) -> str:
        return f"d={self.d}, width={self.width}"
