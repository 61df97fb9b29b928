r"""Is a kernel (Gram) matrix positive semidefinite? Checked to a stated tolerance, cheaply.

A kernel matrix ``K`` (symmetric, already validated by
:func:`implicitbias._validation.as_kernel_matrix`) is accepted when

.. math::

    \lambda_{\min}(K) \ge -\tau, \qquad
    \tau = \max(10^{-6},\ n\,\varepsilon_{32}) \cdot \max_i K_{ii},

with :math:`\varepsilon_{32} = 2^{-23}` the float32 machine epsilon. The tolerance is relative
to the kernel's own scale, so ``K`` and ``c K`` are judged alike for every ``c > 0``. It lets
through a PSD kernel rounded to (or accumulated in) float32: rounding moves each entry by
about :math:`\varepsilon_{32} \max_i K_{ii}`, hence the eigenvalues by at most
:math:`n \varepsilon_{32} \max_i K_{ii}` (Weyl); measured, a float32 NTK at ``n = 1000`` is
off by about ``4e-7`` of its scale. An actually indefinite "kernel" (a sign error, a distance
or similarity matrix that is not a Gram matrix, a cross-kernel symmetrized by hand) has
eigenvalues far below ``-tau``.

How it is checked (:func:`check_psd`):

* **Proof** (``n <= PROOF_MAX_N``): one Cholesky factorization of :math:`K + \tau I`. It
  exists iff :math:`\lambda_{\min}(K) \ge -\tau` (up to float64 rounding of the
  factorization, at most :math:`(n+1)\,\varepsilon_{64}\,\mathrm{tr}(K + \tau I)`, far below
  :math:`\tau`). Only when it fails is the smallest eigenvalue computed (``eigh``), for the
  message and for the borderline case where rounding alone made the factorization fail.
* **Low-rank proof** (``n <= PROOF_MAX_N``, tried first): a pivoted Cholesky factorization
  ``K = L L^T + S`` of at most 32 steps, then Gershgorin's bound on the explicit residual
  ``S`` (:func:`_low_rank_proof`): a proof in ``2 n^2 r`` flops for a kernel of numerical
  rank ``r <= 32`` (a linear kernel of a few features), abandoned after ``n * 32^2`` flops
  otherwise. (Above ``PROOF_MAX_N`` its residual pass costs several passes over ``K``, more
  than the screen below, for kernels whose PSD-ness is rarely in doubt.)
* **Screen** (``n > PROOF_MAX_N``, where a factorization costs as much as the solve it
  guards): a negative diagonal entry, a zero diagonal with a non-zero off-diagonal entry, and
  the Cholesky test above on a random principal ``1024 x 1024`` submatrix. Every rejection is
  rigorous (by Cauchy interlacing :math:`\lambda_{\min}(K) \le \lambda_{\min}(K_{SS})`); an
  acceptance is not a proof. (Measured on ``n = 3000`` kernels: a tanh "kernel", a
  symmetrized cross-kernel, a kernel with a block of flipped signs and ``1 - distance`` are
  all caught; a rank-one negative perturbation of ``-0.05 max K_ii`` is not. A block Lanczos
  search with 3 products ``K V`` cost ten times more and caught less.) The callers run
  :func:`prove_psd` before they report a failure or "not separable", so an indefinite kernel
  that upsets a solver is still named as such.

Messages follow the library template: ``The 'K' argument of kernel_svm must be positive
semidefinite ...; got a matrix with smallest eigenvalue -0.001 ... instead.``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla

from implicitbias._blas import blas_single_thread
from implicitbias._errors import InvalidArgumentError
from implicitbias._validation import fail

__all__ = ["PSDReport", "PROOF_MAX_N", "check_psd", "prove_psd", "psd_error", "psd_rtol"]

_EPS32 = float(np.finfo(np.float32).eps)
# Above this size the up-front check is the screen, not the proof (see the module docstring):
# a Cholesky factorization of an n x n kernel costs n^3 / 3 flops, the kernel SVM solve about
# n^2 per working-set round plus the factorizations of its (support-sized) working sets.
PROOF_MAX_N = 2048
# Screen: the size of the random principal submatrix that is factored (SCREEN_SIZE^3 / 3 flops,
# about 10 ms on one core, a few percent of a kernel SVM solve above PROOF_MAX_N).
SCREEN_SIZE = 1024
# Low-rank proof: at most this many pivoted Cholesky steps (n * LOW_RANK_MAX^2 flops when it
# gives up on a full-rank kernel).
LOW_RANK_MAX = 32
_EPS64 = float(np.finfo(np.float64).eps)

_HINT = (
    "A kernel matrix is a Gram matrix K_ij = <phi(x_i), phi(x_j)>: check its sign, that it is "
    "the kernel of the training points with themselves (not a distance matrix or a "
    "cross-kernel), and that it was computed in enough precision."
)


def psd_rtol(n: int) -> float:
    """Relative PSD tolerance for an ``n x n`` kernel: ``max(1e-6, n * eps32)``."""
    return max(1e-6, n * _EPS32)


@dataclass(frozen=True)
class PSDReport:
    """Outcome of :func:`check_psd` (only returned for an accepted kernel).

    ``scale`` is ``max_i K_ii`` (0 for the zero matrix), ``tol`` the accepted
    ``-lambda_min`` (``tau``), ``proven`` whether a factorization proved
    ``lambda_min >= -tol`` (else the kernel passed the screen only), ``method`` which test
    decided: ``"zero"``, ``"low-rank proof"``, ``"Cholesky proof"`` or ``"screen"``.
    """

    scale: float
    tol: float
    proven: bool
    method: str = "Cholesky proof"


def psd_error(
    func: str, arg: str, lam: float, scale: float, tol: float, how: str, unit: float
) -> InvalidArgumentError:
    """The standard message: the smallest eigenvalue ``lam`` (in ``K``'s units times ``unit``)."""
    lam_u, scale_u, tol_u = lam * unit, scale * unit, tol * unit
    rel = (
        f"{lam / scale:.3g} relative to max_i K_ii = {scale_u:.3g}"
        if scale > 0
        else "while max_i K_ii = 0"
    )
    return fail(
        func,
        arg,
        f"positive semidefinite: a kernel (Gram) matrix, smallest eigenvalue >= "
        f"-max(1e-6, n eps32) * max_i K_ii = {-tol_u:.3g}",
        f"a matrix with smallest eigenvalue {lam_u:.3g} ({how}; {rel})",
        _HINT,
    )


def _cholesky_succeeds(K: np.ndarray, shift: float) -> bool:
    """Whether ``K + shift I`` has a Cholesky factor (float64; ``K`` is not modified)."""
    n = K.shape[0]
    A = K.T.copy(order="F")  # K is symmetric: a plain memcpy, in the layout LAPACK wants
    A.flat[:: n + 1] += shift
    # one BLAS thread: with two, numpy's and scipy's OpenBLAS pools fight on a busy machine
    # (measured on 2 cores: n = 1000 took 0.1-1 s instead of 0.014 s)
    with blas_single_thread():
        _, info = sla.lapack.dpotrf(A, lower=1, clean=0, overwrite_a=1)
    if info < 0:  # pragma: no cover - an illegal argument would be our bug
        raise RuntimeError(f"dpotrf: illegal argument {-info}")
    return info == 0


def _smallest_eigenvalue(K: np.ndarray) -> float:
    return float(sla.eigh(K, eigvals_only=True, subset_by_index=[0, 0], check_finite=False)[0])


def _low_rank_proof(K: np.ndarray, tol: float, scale: float) -> bool:
    """Prove ``lambda_min(K) >= -tol`` for a (numerically) low-rank ``K`` in ``O(n^2 r)``.

    Pivoted Cholesky for at most ``LOW_RANK_MAX`` steps, until the residual diagonal is below
    ``tol / (2n)``; then the residual ``S = K - L L^T`` is formed (in row blocks) and
    Gershgorin's bound ``lambda_min(S) >= -max_i sum_j |S_ij|`` (plus the rounding of ``S``,
    ``2 n (r + 2) eps64 max_i K_ii``) is compared with ``tol``. ``K = L L^T + S`` with
    ``L L^T`` PSD gives ``lambda_min(K) >= lambda_min(S)``: a proof whatever the pivoting
    did. ``False`` means "not shown this way" (full rank, or indefinite), not "indefinite".
    """
    n = K.shape[0]
    kmax = min(LOW_RANK_MAX, n)
    d = np.diagonal(K).copy()  # diagonal of the residual
    Lt = np.zeros((kmax, n))
    target = tol / (2.0 * n)
    r = 0
    while True:
        p = int(np.argmax(d))
        if d[p] <= target:
            break
        if r == kmax:
            return False
        col = K[p] - Lt[:r, p] @ Lt[:r]
        Lt[r] = col / np.sqrt(d[p])
        d -= Lt[r] ** 2
        d[p] = 0.0
        r += 1
    worst = 0.0
    for b0 in range(0, n, 128):  # row blocks of S = K - L L^T, kept in cache
        S = Lt[:r, b0 : b0 + 128].T @ Lt[:r]
        np.subtract(K[b0 : b0 + 128], S, out=S)
        np.abs(S, out=S)
        worst = max(worst, float(np.max(np.sum(S, axis=1))))
    rounding = 2.0 * n * (r + 2) * _EPS64 * scale
    return worst + rounding <= tol


def _submatrix_witness(K: np.ndarray, tol: float, *, seed: int = 0) -> tuple[float, int] | None:
    """A random principal submatrix ``K_SS`` (``|S| = SCREEN_SIZE``) that is not PSD, or None.

    Returns ``(lambda_min(K_SS), |S|)`` when ``K_SS + tol I`` has no Cholesky factor and
    ``lambda_min(K_SS) < -tol``; by Cauchy interlacing ``lambda_min(K) <= lambda_min(K_SS)``,
    so this proves ``K`` indefinite. (A random principal submatrix of an indefinite matrix is
    indefinite with a probability that grows with its size: Bakshi, Chepurko and Jayaram,
    Testing positive semi-definiteness via random submatrices, FOCS 2020.)
    """
    n = K.shape[0]
    m = min(n, SCREEN_SIZE)
    idx = np.sort(np.random.default_rng(seed).choice(n, size=m, replace=False))
    sub = K[np.ix_(idx, idx)]
    if _cholesky_succeeds(sub, tol):
        return None
    lam = _smallest_eigenvalue(sub)
    return (lam, m) if lam < -tol else None


def check_psd(K: np.ndarray, func: str, arg: str, *, unit: float = 1.0) -> PSDReport:
    """Accept a symmetric ``K`` with ``lambda_min(K) >= -tau`` or raise ``InvalidArgumentError``.

    See the module docstring for ``tau`` and for proof vs screen. ``unit`` rescales the
    numbers in the message when ``K`` is a normalized copy (``K_user = unit * K``).
    """
    n = K.shape[0]
    diag = np.diagonal(K)
    scale = max(float(np.max(diag)), 0.0)
    tol = psd_rtol(n) * scale
    dmin = float(np.min(diag))
    if dmin < -tol:
        lam = dmin if n > PROOF_MAX_N else min(_smallest_eigenvalue(K), dmin)
        how = "a negative diagonal entry" if lam == dmin else "computed by eigh"
        raise psd_error(func, arg, lam, scale, tol, how, unit)
    if scale == 0.0:
        # PSD with a zero diagonal means K = 0; an off-diagonal K_ij makes [[0, K_ij],
        # [K_ij, 0]] a principal submatrix with eigenvalue -|K_ij|.
        big = float(np.max(np.abs(K)))
        if big > 0.0:
            raise psd_error(
                func, arg, -big, 0.0, 0.0, "a zero diagonal with a non-zero entry", unit
            )
        return PSDReport(0.0, 0.0, True, "zero")
    if n <= PROOF_MAX_N:
        with blas_single_thread():
            if _low_rank_proof(K, tol, scale):
                return PSDReport(scale, tol, True, "low-rank proof")
        _prove(K, func, arg, scale, tol, unit)
        return PSDReport(scale, tol, True, "Cholesky proof")
    found = _submatrix_witness(K, tol)
    if found is not None:
        how = f"at most; that of a principal {found[1]} x {found[1]} submatrix"
        raise psd_error(func, arg, found[0], scale, tol, how, unit)
    return PSDReport(scale, tol, False, "screen")


def _prove(K: np.ndarray, func: str, arg: str, scale: float, tol: float, unit: float) -> None:
    if _cholesky_succeeds(K, tol):
        return
    lam = _smallest_eigenvalue(K)
    if lam < -tol:
        raise psd_error(func, arg, lam, scale, tol, "computed by eigh", unit)


def prove_psd(K: np.ndarray, func: str, arg: str, report: PSDReport, *, unit: float = 1.0) -> None:
    """Turn a screened acceptance into a proof (a factorization); no-op when already proven.

    ``report`` is :func:`check_psd`'s on the user's kernel; ``K`` may be a normalized copy,
    ``K_user = unit * K`` up to a similarity by a diagonal of signs (the same eigenvalues).
    """
    if not report.proven:
        with blas_single_thread():
            _prove(K, func, arg, report.scale / unit, report.tol / unit, unit)
