"""Multiclass hard-margin kernel SVM without bias on a multi-output kernel (THEORY §3).

Reported in the norm form of every max-margin result (``docs/results.md``): ``objective`` is
``||h||``, ``dual`` the multipliers ``mu = a / ||h||`` of ``min ||h||`` under the pair
constraints; the multipliers ``a`` of ``min 1/2 ||h||^2`` are ``svm_dual``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from implicitbias._errors import NotSeparableError
from implicitbias._psd import check_psd, prove_psd
from implicitbias._status import Status, renamed
from implicitbias._validation import (
    as_class_labels,
    as_float_array,
    as_kernel_matrix,
    check_bool,
    check_choice,
    check_cvxpy_solver,
    check_int,
    check_positive,
    fail,
)
from implicitbias.kernel_regime._svm_dual import (
    SVMSolver,
    norm_form,
    not_separable_error,
    support_of,
)
from implicitbias.kernel_regime.kernel_svm import _solve_certified

__all__ = ["MulticlassKernelSVMResult", "multiclass_kernel_svm"]

_FUNC = "multiclass_kernel_svm"
_PAIR = "(phi_{y_i}(x_i) - phi_j(x_i))"


@dataclass(frozen=True)
class MulticlassKernelSVMResult:
    """Solution of the multiclass hard-margin kernel SVM without bias.

    Attributes
    ----------
    dual : ndarray, shape (n, C)
        Norm-form multipliers ``mu_ij = a_ij / ||h|| >= 0`` of the pair constraints of
        ``min ||h||``, rescaled to be exactly dual feasible
        (``||sum_ij mu_ij (phi_{y_i}(x_i) - phi_j(x_i))|| <= 1``); ``dual[i, y_i] = 0`` and
        ``sum(mu) = dual_objective``.
    svm_dual : ndarray, shape (n, C)
        Multipliers ``a_ij >= 0`` of ``min 1/2 ||h||^2`` (``||h||^2 = sum(a)`` at the
        optimum); ``svm_dual[i, y_i] = 0``.
    coef : ndarray, shape (n, C)
        Expansion ``h = sum_{i,c} coef[i, c] phi_c(x_i)``: ``coef[i, y_i] = sum_j a_ij``,
        ``coef[i, j] = -a_ij``.
    margin : float
        ``1 / ||h||``, the multiclass margin of the unit-norm solution.
    norm : float
        ``||h||``.
    objective : float
        ``||h||`` rescaled to exact feasibility (``||h|| / min`` of the pair scores), an upper
        bound on the optimal norm.
    dual_objective : float
        ``sum(dual)``, a lower bound on the optimal norm.
    support : ndarray of int, shape (s, 2)
        Pairs ``(i, j)`` with ``a_ij > 0``.
    status, solver, solve_time, max_violation, kkt_residual, duality_gap, relative_gap,
    margin_lower, margin_upper, iterations
        As in :class:`~implicitbias.KernelSVMResult`, for the pair constraints.
    n_iter : int
        Deprecated alias of ``iterations`` (since 0.2, removed in 0.3).
    """

    dual: np.ndarray
    svm_dual: np.ndarray
    coef: np.ndarray
    margin: float
    norm: float
    objective: float
    dual_objective: float
    support: np.ndarray
    status: Status
    solver: str
    solve_time: float
    max_violation: float
    kkt_residual: float
    duality_gap: float
    relative_gap: float
    margin_lower: float
    margin_upper: float
    iterations: int = 0
    _n: int = field(default=0, repr=False)
    _c: int = field(default=0, repr=False)

    n_iter = renamed("iterations")

    def decision_function(self, K_full_new_train: Any) -> np.ndarray:
        """Scores ``<phi_c(x), h>`` for each new point and class.

        Parameters
        ----------
        K_full_new_train : array_like, shape (m*C, n*C)
            Multi-output kernel between new and training points, row index ``x*C + c``,
            column index ``i*C + b``.

        Returns
        -------
        ndarray, shape (m, C)
        """
        name = "MulticlassKernelSVMResult.decision_function"
        Kn = as_float_array(K_full_new_train, name, "K_full_new_train", ndim=2)
        C, nC = self._c, self._n * self._c
        if Kn.shape[1] != nC or Kn.shape[0] % C != 0:
            raise fail(
                name,
                "K_full_new_train",
                f"an (m*{C}, {nC}) multi-output kernel between new and training points",
                f"shape {Kn.shape}",
            )
        return (Kn @ self.coef.ravel()).reshape(-1, C)

    def predict(self, K_full_new_train: Any) -> np.ndarray:
        """Predicted classes ``argmax_c <phi_c(x), h>``, shape (m,)."""
        return np.argmax(self.decision_function(K_full_new_train), axis=1)


def multiclass_kernel_svm(
    K_full: Any,
    y: Any,
    *,
    n_classes: int | None = None,
    solver: SVMSolver = "auto",
    tol: float = 1e-9,
    cvxpy_solver: str | None = None,
    fallback: bool = True,
) -> MulticlassKernelSVMResult:
    r"""Multiclass hard-margin kernel SVM without bias on a multi-output kernel.

    .. math::

        \min_h \tfrac12\|h\|^2 \quad\text{s.t.}\quad
        \langle \phi_{y_i}(x_i) - \phi_j(x_i), h \rangle \ge 1
        \quad \forall i,\ j \ne y_i,

    solved through its dual over the :math:`n(C-1)` pairs,
    :math:`\max_{a\ge0} \mathbf 1^\top a - \tfrac12 a^\top M a` with
    :math:`M_{(i,j),(k,l)} = K_{(i,y_i),(k,y_k)} - K_{(i,y_i),(k,l)} - K_{(i,j),(k,y_k)}
    + K_{(i,j),(k,l)}`, by the exact active-set solver of :func:`~implicitbias.kernel_svm`.
    The kernel-regime counterpart of the multiclass margin problem (THEORY §3) when
    ``K_full`` is the multi-output empirical NTK; scikit-learn's ``SVC`` (one-vs-one, with a
    bias) solves a different problem.

    ======================================  ======================  ============
    math                                    argument / field        shape
    ======================================  ======================  ============
    :math:`K_{(i,a),(j,b)}` (index i*C+a)   ``K_full``              (n*C, n*C)
    :math:`y_i \in \{0..C-1\}`              ``y``                   (n,)
    :math:`a_{ij}`                          ``result.svm_dual``     (n, C)
    :math:`\mu_{ij} = a_{ij}/\|h\|`          ``result.dual``         (n, C)
    ======================================  ======================  ============

    Parameters
    ----------
    K_full : array_like, shape (n*C, n*C)
        Symmetric PSD multi-output kernel, ``K_full[i*C + a, j*C + b] = <phi_a(x_i), phi_b(x_j)>``.
        Checked up front on every route exactly as ``K`` in :func:`~implicitbias.kernel_svm`
        (``lambda_min >= -max(1e-6, N eps32) max_i K_ii`` with ``N = n*C``; proved by a
        factorization for ``N <= 2048``, screened above). The answer is invariant
        under ``K_full -> c K_full`` (``svm_dual ~ 1/c``, ``margin ~ sqrt(c)``): the dual is solved
        with its matrix normalized to unit diagonal maximum and mapped back.
    y : array_like of int, shape (n,)
        Class labels in {0, ..., C-1}.
    n_classes : int, optional
        ``C``; by default ``K_full.shape[0] // len(y)``.
    solver : {"auto", "active-set", "cvxpy"}
        As in :func:`~implicitbias.kernel_svm`.
    tol : float
        Certificate tolerance (primal violation, relative slackness, relative duality gap).
    cvxpy_solver : str, optional
        Solver for the cvxpy route (default CLARABEL): an installed QP-capable cvxpy solver,
        checked on every route.
    fallback : bool
        Retry with cvxpy when the active-set answer fails its certificate.

    Returns
    -------
    MulticlassKernelSVMResult

    Raises
    ------
    InvalidArgumentError
        A bad argument, including a ``K_full`` that is not symmetric PSD to the tolerance above
        (the message gives its smallest eigenvalue or an upper bound on it).
    NotSeparableError
        No ``h`` satisfies all pair constraints (e.g. duplicate inputs with different labels),
        with a certificate: ``error.certificate`` (shape (n, C), zero at ``(i, y_i)``) is an
        ``a >= 0`` with ``sum(a) = 1`` and ``||sum_ij a_ij (phi_{y_i}(x_i) - phi_j(x_i))|| =
        error.certificate_norm <= 1e-7 * error.radius``, ``radius`` the largest norm of a
        pair feature.
    SolverError
        No route produced an answer that passes the optimality checks.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> # one point, 3 classes, orthonormal class features: h = (2, -1, -1)/3 direction
    >>> res = ib.multiclass_kernel_svm(np.eye(3), np.array([0]))
    >>> np.round(res.svm_dual, 6)
    array([[0.      , 0.333333, 0.333333]])
    >>> round(res.margin, 6)  # 1/||h||, ||h||^2 = sum(a) = 2/3
    1.224745
    >>> res.predict(np.eye(3)[:, :])
    array([0])

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu. Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking. ICLR 2024, arXiv:2311.18817.
    K. Crammer, Y. Singer. On the algorithmic implementation of multiclass kernel-based
    vector machines. JMLR 2, 2001.
    """
    t0 = time.perf_counter()
    Kf = as_kernel_matrix(K_full, _FUNC, "K_full")
    yv0 = as_class_labels(y, _FUNC, "y")
    n = yv0.shape[0]
    if n_classes is None:
        if Kf.shape[0] % n != 0:
            raise fail(
                _FUNC,
                "K_full",
                f"of shape (n*C, n*C) with n = {n} (the length of y)",
                f"shape {Kf.shape}",
            )
        C = Kf.shape[0] // n
    else:
        C = check_int(n_classes, _FUNC, "n_classes", minimum=2)
    if C < 2:
        raise fail(
            _FUNC, "K_full", f"of shape (n*C, n*C) with C >= 2 and n = {n}", f"shape {Kf.shape}"
        )
    if Kf.shape[0] != n * C:
        raise fail(
            _FUNC, "K_full", f"of shape ({n * C}, {n * C}) (n = {n}, C = {C})", f"shape {Kf.shape}"
        )
    yv = as_class_labels(yv0, _FUNC, "y", n_classes=C)
    check_choice(solver, _FUNC, "solver", ("auto", "active-set", "cvxpy"))
    tol = check_positive(tol, _FUNC, "tol")
    fallback = check_bool(fallback, _FUNC, "fallback")
    if cvxpy_solver is not None:
        cvxpy_solver = check_cvxpy_solver(cvxpy_solver, _FUNC, "CLARABEL", problem="qp")
    psd = check_psd(Kf, _FUNC, "K_full")

    # pairs p = (i, j), j != y_i, in row-major order of (i, j)
    mask = np.ones((n, C), dtype=bool)
    mask[np.arange(n), yv] = False
    pi, pj = np.nonzero(mask)
    ry = pi * C + yv[pi]
    rj = pi * C + pj
    M = Kf[np.ix_(ry, ry)] - Kf[np.ix_(ry, rj)] - Kf[np.ix_(rj, ry)] + Kf[np.ix_(rj, rj)]
    M = 0.5 * (M + M.T)
    scale = max(float(np.max(np.diag(M))), 0.0)  # squared radius of the pair features
    radius = float(np.sqrt(scale))

    def certificate_shape(a: np.ndarray) -> np.ndarray:
        out = np.zeros((n, C))
        out[pi, pj] = a
        return out

    if scale == 0.0:  # every pair feature phi_{y_i}(x_i) - phi_j(x_i) is 0 (K_full is PSD)
        raise not_separable_error(
            _FUNC, certificate_shape(np.eye(1, pi.size).ravel()), 0.0, 0.0, what=_PAIR
        )
    M /= scale

    def prove() -> None:
        prove_psd(Kf, _FUNC, "K_full", psd)

    try:
        a, cert, status, name, iterations, route = _solve_certified(
            M,
            func=_FUNC,
            solver=solver,
            tol=tol,
            fallback=fallback,
            cvxpy_solver=cvxpy_solver,
            cvxpy_formulation="quad_form",
            radius=radius,
            prove=prove,
            what=_PAIR,
        )
    except NotSeparableError as err:
        err.certificate = certificate_shape(err.certificate)  # type: ignore[attr-defined]
        raise
    sup = np.flatnonzero(a > 0) if route == "active-set" else support_of(a, M)
    s_n = float(np.sum(a))
    norm_n = cert.margin_upper * s_n  # sqrt(a^T M a), as certify computed it
    objective, mu, dual_objective, gap, rel = norm_form(cert, a, radius)
    svm_dual = certificate_shape(a / scale)
    coef = -svm_dual.copy()
    coef[np.arange(n), yv] = svm_dual.sum(axis=1)
    norm = float(norm_n / radius)
    return MulticlassKernelSVMResult(
        dual=certificate_shape(mu),
        svm_dual=svm_dual,
        coef=coef,
        margin=1.0 / norm,
        norm=norm,
        objective=objective,
        dual_objective=dual_objective,
        support=np.stack([pi[sup], pj[sup]], axis=1),
        status=status,
        solver=name,
        solve_time=time.perf_counter() - t0,
        max_violation=cert.max_violation,
        kkt_residual=cert.kkt_residual,
        duality_gap=gap,
        relative_gap=rel,
        margin_lower=float(cert.margin_lower * radius),
        margin_upper=float(cert.margin_upper * radius),
        iterations=iterations,
        _n=n,
        _c=C,
    )
