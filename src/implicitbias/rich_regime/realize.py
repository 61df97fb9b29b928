"""Maps from convex rich-regime solutions back to model parameters (global optima of R1/R2)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from implicitbias._validation import as_float_array, check_int, check_nonnegative, fail, fail_type

if TYPE_CHECKING:  # pragma: no cover
    from implicitbias.models import DiagonalNet, MatrixFactorization

__all__ = ["diagonal_net_from_w", "matrix_factorization_from_W"]


def _dtype(dtype: Any, func: str) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise fail_type(func, "dtype", "a floating torch.dtype such as torch.float64", dtype)
    return dtype


def diagonal_net_from_w(
    w: Any, *, depth: int = 2, dtype: torch.dtype = torch.float64
) -> DiagonalNet:
    r"""The minimum-norm diagonal network realizing a linear predictor ``w``.

    .. math::

        u = (w^+)^{1/D}, \quad v = (w^-)^{1/D}, \qquad u^D - v^D = w,

    the minimizer of :math:`\|u\|^2 + \|v\|^2` subject to :math:`u^D - v^D = w` for
    :math:`D = 2` (where the minimum is :math:`\|w\|_1`). Mapping the ℓ1 max-margin solution
    gives a global optimum of the margin problem (R1) of the depth-2 diagonal network.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`w`                   ``w``, shape (d,)
    :math:`D`                   ``depth``
    :math:`u`, :math:`v`        ``net.u``, ``net.v``, shape (d,)
    ==========================  ==================================

    Parameters
    ----------
    w : array_like of shape (d,)
        Linear predictor.
    depth : int
        Depth ``D >= 1`` of the diagonal network.
    dtype : torch.dtype
        Parameter dtype (default float64).

    Returns
    -------
    DiagonalNet
        With ``net.w == w`` (up to rounding).

    Examples
    --------
    >>> import implicitbias as ib
    >>> net = ib.diagonal_net_from_w([4.0, -9.0, 0.0])
    >>> net.u.tolist(), net.v.tolist()
    ([2.0, 0.0, 0.0], [0.0, 3.0, 0.0])

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817, §3.1; Woodworth et al., *Kernel and rich regimes
    in overparametrized models*, COLT 2020, arXiv:2002.09277.
    """
    from implicitbias.models import DiagonalNet

    func = "diagonal_net_from_w"
    w = as_float_array(w, func, "w", ndim=1)
    depth = check_int(depth, func, "depth", minimum=1)
    dtype = _dtype(dtype, func)
    net = DiagonalNet(w.shape[0], depth=depth, dtype=dtype)
    u = np.maximum(w, 0.0) ** (1.0 / depth)
    v = np.maximum(-w, 0.0) ** (1.0 / depth)
    with torch.no_grad():
        net.u.copy_(torch.as_tensor(u, dtype=dtype))
        net.v.copy_(torch.as_tensor(v, dtype=dtype))
    return net


def matrix_factorization_from_W(
    W: Any, *, dtype: torch.dtype = torch.float64, atol: float = 1e-10
) -> MatrixFactorization:
    r"""The minimum-norm factorization ``W = UUᵀ − VVᵀ`` of a symmetric matrix.

    .. math::

        W = Q \Lambda Q^\top, \quad U = Q_+ \Lambda_+^{1/2}, \quad V = Q_- |\Lambda_-|^{1/2},

    zero-padded to ``d`` columns; then :math:`\|U\|_F^2 + \|V\|_F^2 = \|W\|_*`, the minimum
    over all factorizations (THEORY.md §5). Mapping the minimum nuclear-norm completion gives a
    global optimum of (R2) for matrix factorization.

    ==========================  ==================================
    math                        argument / field
    ==========================  ==================================
    :math:`W`                   ``W``, shape (d, d), symmetric
    :math:`U`, :math:`V`        ``mf.U``, ``mf.V``, shape (d, d)
    ==========================  ==================================

    Parameters
    ----------
    W : array_like of shape (d, d)
        Symmetric matrix (``max |W − Wᵀ| <= atol·max|W|``; it is symmetrized).
    dtype : torch.dtype
        Parameter dtype (default float64).
    atol : float
        Relative symmetry tolerance, ``>= 0``.

    Returns
    -------
    MatrixFactorization
        With ``mf.W == W`` (up to rounding).

    Examples
    --------
    >>> import implicitbias as ib
    >>> mf = ib.matrix_factorization_from_W([[1.0, 0.0], [0.0, -4.0]])
    >>> mf.W.tolist()
    [[1.0, 0.0], [0.0, -4.0]]

    References
    ----------
    Lyu et al., ICLR 2024, arXiv:2311.18817, §3.2.
    """
    from implicitbias.models import MatrixFactorization

    func = "matrix_factorization_from_W"
    W = as_float_array(W, func, "W", ndim=2)
    dtype = _dtype(dtype, func)
    atol = check_nonnegative(atol, func, "atol")
    d = W.shape[0]
    if W.shape[1] != d:
        raise fail(func, "W", "a square (d, d) matrix", f"shape {W.shape}")
    scale = max(float(np.max(np.abs(W))), 1e-300)
    asym = float(np.max(np.abs(W - W.T)))
    if asym > atol * scale:
        raise fail(func, "W", "a symmetric matrix", f"max |W - W^T| = {asym:.3g}")
    lam, Q = np.linalg.eigh(0.5 * (W + W.T))
    U = Q * np.sqrt(np.maximum(lam, 0.0))
    V = Q * np.sqrt(np.maximum(-lam, 0.0))
    mf = MatrixFactorization(d, dtype=dtype)
    with torch.no_grad():
        mf.U.copy_(torch.as_tensor(U, dtype=dtype))
        mf.V.copy_(torch.as_tensor(V, dtype=dtype))
    return mf
