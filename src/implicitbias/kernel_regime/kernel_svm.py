"""Problem (K1): the hard-margin kernel SVM without bias, solved exactly through its dual.

The dual of (K1) is a bound-constrained convex quadratic program (no equality constraint,
because there is no bias). :func:`implicitbias._nonneg_qp.solve_nonneg_qp` (shared with
:func:`implicitbias.nnls_gram`) solves it exactly:

* an outer working-set (chunking) loop, so the linear algebra scales with the number of
  support vectors rather than with ``n``;
* on each working set, block principal pivoting (the primal-dual active-set method of
  Kunisch and Rendl, with the Judice--Pires safeguard against cycling), falling back to
  Lawson--Hanson (and a monotone primal active-set loop with divergence detection) when
  pivoting does not settle (as on rank-deficient kernels);
* face systems ``Q_FF x = 1`` solved by a face solver that reuses one Cholesky
  factor across nearby faces and handles singular ``Q_FF`` with a tiny proximal shift plus
  proximal-point refinement.

The answer is then certified (primal feasibility, complementary slackness, zero duality gap)
before it is returned, and reported in the norm form shared by every max-margin solver of the
library (``objective = ||h||``, ``dual`` the multipliers ``mu = a / ||h||`` of
``min ||h|| s.t. y_i <phi(x_i), h> >= 1``; see ``docs/results.md``).
:mod:`implicitbias.kernel_regime.multiclass_svm` reuses the solver.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import torch

from implicitbias._errors import InaccurateSolutionWarning, SolverError
from implicitbias._nonneg_qp import SEPARABILITY_FLOOR as _SEPARABILITY_FLOOR
from implicitbias._nonneg_qp import QPOutcome as _QPOutcome  # noqa: F401  (its result type)
from implicitbias._nonneg_qp import solve_nonneg_qp as _solve_nonneg_qp
from implicitbias._psd import check_psd, prove_psd
from implicitbias._results import ResultRecord, match_input
from implicitbias._status import Status, renamed
from implicitbias._validation import (
    as_float_array,
    as_kernel_matrix,
    as_pm1_labels,
    check_bool,
    check_choice,
    check_cvxpy_solver,
    check_positive,
    fail,
)
from implicitbias.kernel_regime._svm_dual import (
    Certificate,
    QPFormulation,
    SVMSolver,
    certify,
    cvxpy_nonneg_qp,
    norm_form,
    not_separable_error,
    separability_certificate,
    status_from,
    support_of,
)

__all__ = ["KernelSVMResult", "kernel_svm"]

_FUNC = "kernel_svm"


def _solve_certified(
    Q: np.ndarray,
    *,
    func: str,
    solver: SVMSolver,
    tol: float,
    fallback: bool,
    cvxpy_solver: str | None,
    cvxpy_formulation: QPFormulation,
    radius: float,
    prove: Callable[[], None],
    what: str = "y_i phi(x_i)",
) -> tuple[np.ndarray, Certificate, Status, str, int, str]:
    """Solve min_{a>=0} ½aᵀQa − 1ᵀa by the chosen routes in turn; return the first certified answer.

    ``Q`` is normalized (``max_i Q_ii = 1``); ``radius`` is the feature radius in the user's
    units (for messages). Shared by :func:`kernel_svm` and :func:`multiclass_kernel_svm`.
    Raises :class:`NotSeparableError` only with a certificate (see
    :mod:`implicitbias.kernel_regime._svm_dual`), the kernel's ``InvalidArgumentError`` when
    ``prove()`` (a factorization, run before any error is reported) finds it indefinite, and
    :class:`SolverError` when no route passes the checks. Returns ``(a, certificate, status,
    solver name, iterations, route)``.
    """
    routes = ["active-set", "cvxpy"] if solver in ("auto", "active-set") else ["cvxpy"]
    if not fallback:
        routes = routes[:1]
    failures: list[str] = []

    def not_separable(hint: np.ndarray | None, name: str, why: str) -> None:
        """Raise NotSeparableError when a certificate exists; else record the failure."""
        found = separability_certificate(Q, hint)
        if found is not None:
            prove()  # the certificate means "sum a_i z_i = 0" only for a PSD kernel
            raise not_separable_error(func, found[0], found[1], radius, what=what)
        failures.append(f"{name}: {why}, but no certificate of non-separability exists")

    for k, route in enumerate(routes):
        iterations = 0
        if route == "active-set":
            try:
                out = _solve_nonneg_qp(Q, tol=tol, func=func)
            except SolverError as exc:
                prove()
                failures.append(f"active-set: {exc}")
                continue
            a, iterations = out.a, out.iterations
            name = "active-set"
            if getattr(out, "diverged", False):
                not_separable(a, name, "the dual diverged")
                continue
        else:
            sol = cvxpy_nonneg_qp(
                Q, func=func, formulation=cvxpy_formulation, cvxpy_solver=cvxpy_solver
            )
            name = f"cvxpy:{cvxpy_solver or 'CLARABEL'}" + (" (fallback)" if k > 0 else "")
            if sol is None:  # cvxpy reported the dual unbounded
                not_separable(None, name, "cvxpy reported the dual unbounded")
                continue
            a = sol
        cert = certify(Q, a)
        if np.all(np.isfinite(a)) and cert.margin_upper <= _SEPARABILITY_FLOOR:
            not_separable(a, name, f"margin upper bound {cert.margin_upper:.3g}")
            continue
        status = status_from(cert, tol)
        if status is None:
            failures.append(f"{name}: KKT residual {cert.kkt_residual:.3g}")
            continue
        if status == "optimal_inaccurate":
            scale = radius  # margins in the user's units: normalized margin x radius
            warnings.warn(
                f"{func}: the {name} answer satisfies the optimality checks only to "
                f"{cert.kkt_residual:.3g} (tol {tol:.3g}); margin bounds "
                f"[{cert.margin_lower * scale:.10g}, {cert.margin_upper * scale:.10g}].",
                InaccurateSolutionWarning,
                stacklevel=3,
            )
        return a, cert, status, name, iterations, route
    prove()
    raise SolverError(f"{func}: no route passed the optimality checks ({'; '.join(failures)}).")


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KernelSVMResult(ResultRecord):
    """Solution of the hard-margin kernel SVM without bias (problem K1), in norm form.

    The figures of the problem follow the library's result vocabulary (``docs/results.md``):
    like :func:`~implicitbias.l2_max_margin`, the problem is reported in its norm form
    ``min ||h|| s.t. y_i <phi(x_i), h> >= 1`` (dual ``max sum(mu) s.t. mu >= 0,
    ||sum_i mu_i y_i phi(x_i)|| <= 1``), so ``kernel_svm(X @ X.T, y)`` and
    ``l2_max_margin(X, y)`` report the same ``objective``, ``dual`` and ``duality_gap``. The
    multipliers of the squared form (K1), ``min 1/2 ||h||^2``, are ``svm_dual``.

    Attributes
    ----------
    dual : ndarray, shape (n,)
        Norm-form multipliers ``mu = svm_dual / ||h|| >= 0``, rescaled to be exactly dual
        feasible (``||sum_i mu_i y_i phi(x_i)|| <= 1``); ``sum(mu) = dual_objective``.
    svm_dual : ndarray, shape (n,)
        Multipliers ``a >= 0`` of (K1), ``max 1^T a - 1/2 a^T Q a``:
        ``h = sum_i a_i y_i phi(x_i)`` and ``||h||^2 = sum(a)`` at the optimum.
    coef : ndarray, shape (n,)
        ``a * y``, the expansion coefficients of ``h`` in the features ``phi(x_j)``.
    margin : float
        ``gamma = 1 / ||h||``: the margin of the unit-norm solution ``h / ||h||``.
    norm : float
        ``||h|| = sqrt(a^T Q a)`` (equal to ``sqrt(sum a)`` at the optimum).
    objective : float
        ``||h|| / min_i y_i <phi(x_i), h>``: the norm of ``h`` rescaled to be exactly
        feasible, an upper bound on the optimal ``||h*|| = 1 / gamma*``.
    dual_objective : float
        ``sum(dual)``, a lower bound on ``||h*||``.
    support : ndarray of int
        Indices with ``a_i > 0`` (support vectors).
    status : {"optimal", "optimal_inaccurate"}
        From ``kkt_residual`` against ``tol``.
    solver : str
        Route used: ``"active-set"``, ``"cvxpy:<SOLVER>"`` (possibly with ``" (fallback)"``).
    solve_time : float
        Wall time in seconds.
    max_violation : float
        ``max_i max(0, 1 - y_i <phi(x_i), h>)``: primal infeasibility of ``h`` before the
        rescaling.
    kkt_residual : float
        Largest of ``max_violation``, the relative complementary slackness
        ``max_i a_i |y_i <phi_i, h> - 1| / sum(a)`` and the relative gap of (K1),
        ``|a^T Q a - sum(a)| / sum(a)``.
    duality_gap : float
        ``objective - dual_objective`` (absolute, in the units of ``||h||``): a certified
        bound on the suboptimality of ``objective``.
    relative_gap : float
        ``|duality_gap| / objective``.
    margin_lower, margin_upper : float
        Certified bounds on the optimal margin from this ``a``:
        ``min_i (Qa)_i / sqrt(a^T Q a) <= gamma* <= sqrt(a^T Q a) / sum(a)``
        (``1 / objective`` and ``1 / dual_objective`` up to rounding).
    iterations : int
        Inner iterations of the active-set solver (0 for cvxpy).
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

    n_iter = renamed("iterations")

    @overload
    def decision_function(self, K_new_train: torch.Tensor) -> torch.Tensor: ...
    @overload
    def decision_function(self, K_new_train: Any) -> np.ndarray: ...
    def decision_function(self, K_new_train: Any) -> Any:
        """Scores ``<phi(x), h> = sum_j a_j y_j K(x, x_j)`` of the minimum-norm ``h``.

        Parameters
        ----------
        K_new_train : array_like or torch.Tensor, shape (m, n)
            Kernel between new points (rows) and the training points (columns).

        Returns
        -------
        ndarray or torch.Tensor, shape (m,)
            A numpy array for array input; for a tensor, a tensor on its device in its
            floating dtype (float64 for an integer tensor). Computed in float64.
        """
        return match_input(self._scores(K_new_train, "decision_function"), K_new_train)

    @overload
    def predict(self, K_new_train: torch.Tensor) -> torch.Tensor: ...
    @overload
    def predict(self, K_new_train: Any) -> np.ndarray: ...
    def predict(self, K_new_train: Any) -> Any:
        """Predicted labels ``sign(<phi(x), h>)`` in {-1, 0, +1}, shape (m,) (a tensor for a
        tensor ``K_new_train``, as :meth:`decision_function`)."""
        return match_input(np.sign(self._scores(K_new_train, "predict")), K_new_train)

    def _scores(self, K_new_train: Any, method: str) -> np.ndarray:
        name = f"KernelSVMResult.{method}"
        Kn = as_float_array(K_new_train, name, "K_new_train", ndim=2)
        if Kn.shape[1] != self._n:
            raise fail(
                name,
                "K_new_train",
                f"an (m, {self._n}) kernel between new and training points",
                f"shape {Kn.shape}",
            )
        return Kn @ self.coef


def kernel_svm(
    K: Any,
    y: Any,
    *,
    solver: SVMSolver = "auto",
    tol: float = 1e-9,
    cvxpy_solver: str | None = None,
    cvxpy_formulation: QPFormulation = "quad_form",
    fallback: bool = True,
) -> KernelSVMResult:
    r"""Hard-margin kernel SVM without bias (problem K1), solved exactly through its dual.

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad \text{s.t.}\quad y_i \langle \phi(x_i), h\rangle \ge 1,
        \qquad i = 1, \dots, n,

    with dual :math:`\max_{a \ge 0} \mathbf 1^\top a - \tfrac12 a^\top Q a`,
    :math:`Q = (y y^\top) \odot K`, :math:`h = \sum_i a_i y_i \phi(x_i)`,
    :math:`\|h\|^2 = \sum_i a_i` and margin :math:`\gamma = 1/\|h\|`. There is no bias, hence
    no equality constraint in the dual. This is the early-phase (kernel-regime) predictor of
    Lyu et al. (2024) when ``K`` is the empirical NTK at initialization.

    The result reports the same problem in its norm form, as every max-margin solver of the
    library does: :math:`\min \|h\|` s.t. the same constraints, with dual
    :math:`\max \sum_i \mu_i` s.t. :math:`\mu \ge 0,\ \|\sum_i \mu_i y_i \phi(x_i)\| \le 1`;
    :math:`\mu = a / \|h\|` is ``result.dual``, :math:`a` is ``result.svm_dual``, and
    ``kernel_svm(X @ X.T, y)`` reports the ``objective``, ``dual`` and ``duality_gap`` of
    :func:`~implicitbias.l2_max_margin` on ``(X, y)``.

    ======================  ==========================  ============
    math                    argument / field            shape
    ======================  ==========================  ============
    :math:`K_{ij}`          ``K``                       (n, n)
    :math:`y_i \in \{\pm1\}`  ``y``                     (n,)
    :math:`a`               ``result.svm_dual``         (n,)
    :math:`\mu = a/\|h\|`   ``result.dual``             (n,)
    :math:`\|h\|`           ``result.objective``        scalar
    :math:`\gamma`          ``result.margin``           scalar
    ======================  ==========================  ============

    Parameters
    ----------
    K : array_like, shape (n, n)
        Symmetric positive semidefinite kernel (Gram) matrix of the training points. Checked
        up front, on every route: symmetric to ``max|K - K^T| <= 1e-8 max|K|``, finite, and
        ``lambda_min(K) >= -max(1e-6, n eps32) * max_i K_ii`` (``eps32 = 2**-23``: room for a
        kernel computed in float32). For ``n <= 2048`` the last is proved, by a pivoted
        Cholesky factorization when ``K`` has numerical rank <= 32, else by a Cholesky
        factorization of ``K + tau I``; above, a factorization would cost as much as the
        solve, so ``K`` is screened (negative diagonal, a random principal 1024 x 1024
        submatrix) and the factorization runs only before an error (including "not
        separable") is reported. See :mod:`implicitbias._psd`. The problem is invariant
        under ``K -> c K`` (``dual`` scales as ``1/c``, ``margin`` as ``sqrt(c)``); it is solved
        on ``K / max_i K_ii`` and mapped back, so every scale gives the same digits
        (``svm_dual ~ 1/c``, ``dual ~ 1/sqrt(c)``, ``objective ~ 1/sqrt(c)``).
    y : array_like, shape (n,)
        Labels in {-1, +1} ({0, 1} labels are refused, not converted).
    solver : {"auto", "active-set", "cvxpy"}
        ``"auto"``/``"active-set"``: the dedicated exact active-set solver (working-set
        chunking, block principal pivoting with a monotone active-set fallback, Cholesky
        factors reused across faces, proximal refinement for singular ``K``); ``"cvxpy"``:
        the reference route (an interior-point solve of the same dual).
    tol : float
        Certificate tolerance: the answer is ``"optimal"`` when primal violation, relative
        complementary slackness and relative duality gap are all ``<= tol``.
    cvxpy_solver : str, optional
        Solver for the cvxpy route (default CLARABEL): an installed cvxpy solver that handles
        quadratic programs. Checked on every route, also when the cvxpy route is not taken.
    cvxpy_formulation : {"quad_form", "factor"}
        How the cvxpy route writes ``a^T Q a``: ``quad_form`` with ``psd_wrap`` or
        ``sum_squares`` of an eigen-factor of ``Q`` truncated at its numerical rank.
    fallback : bool
        If the active-set answer fails its certificate, retry with cvxpy before raising.

    Returns
    -------
    KernelSVMResult

    Raises
    ------
    InvalidArgumentError
        A bad argument, including a ``K`` that is not symmetric positive semidefinite to the
        tolerance above (the message gives its smallest eigenvalue, or an upper bound on it)
        and a ``cvxpy_solver`` that is not an installed QP-capable cvxpy solver.
    NotSeparableError
        The data are not separable in the kernel's feature space, with a certificate:
        ``error.certificate`` is an ``a >= 0`` with ``sum(a) = 1`` and
        ``||sum_i a_i y_i phi(x_i)|| = sqrt(a^T Q a) = error.certificate_norm <= 1e-7 *
        error.radius`` (``radius = sqrt(max_i K_ii)``): no ``h`` has a margin above ``1e-7`` of
        the feature radius. Raised only after ``K`` is proved PSD.
    SolverError
        No route produced an answer that passes the optimality checks.

    Warns
    -----
    InaccurateSolutionWarning
        The answer satisfies the optimality checks only to within 1e-5.

    Examples
    --------
    >>> import numpy as np
    >>> import implicitbias as ib
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> res = ib.kernel_svm(X @ X.T, np.array([1.0, -1.0]))
    >>> np.round(res.svm_dual, 6)  # orthogonal features: a_i = 1 / K_ii
    array([1.  , 0.25])
    >>> round(res.margin, 6)  # 1 / sqrt(1 + 1/4)
    0.894427
    >>> round(res.objective, 6), np.round(res.dual, 6)  # ||h|| and mu = a / ||h||
    (1.118034, array([0.894427, 0.223607]))
    >>> res.predict(np.array([[3.0, 0.0], [0.0, 5.0]]) @ X.T)
    array([ 1., -1.])

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu. Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking. ICLR 2024, arXiv:2311.18817.
    K. Kunisch, F. Rendl. An infeasible active set method for quadratic problems with simple
    bounds. SIAM J. Optim. 14(1), 2003. C. L. Lawson, R. J. Hanson. Solving Least Squares
    Problems, 1974 (ch. 23).
    """
    t0 = time.perf_counter()
    Km = as_kernel_matrix(K, _FUNC, "K")
    n = Km.shape[0]
    yv = as_pm1_labels(y, _FUNC, "y", n=n)
    check_choice(solver, _FUNC, "solver", ("auto", "active-set", "cvxpy"))
    check_choice(cvxpy_formulation, _FUNC, "cvxpy_formulation", ("quad_form", "factor"))
    tol = check_positive(tol, _FUNC, "tol")
    fallback = check_bool(fallback, _FUNC, "fallback")
    if cvxpy_solver is not None:
        cvxpy_solver = check_cvxpy_solver(cvxpy_solver, _FUNC, "CLARABEL", problem="qp")
    psd = check_psd(Km, _FUNC, "K")
    scale = psd.scale  # max_i K_ii = radius^2
    radius = float(np.sqrt(scale))
    if scale == 0.0:  # K = 0 (a PSD K with zero diagonal): every feature vector is 0
        raise not_separable_error(_FUNC, np.eye(1, n).ravel(), 0.0, 0.0)

    # Q = (y y^T) * K / max_i K_ii, in place in our own copy of K (no n x n temporary)
    Q = Km
    Q *= (yv / scale)[:, None]
    Q *= yv[None, :]

    def prove() -> None:
        prove_psd(Q, _FUNC, "K", psd, unit=scale)

    a, cert, status, name, iterations, route = _solve_certified(
        Q,
        func=_FUNC,
        solver=solver,
        tol=tol,
        fallback=fallback,
        cvxpy_solver=cvxpy_solver,
        cvxpy_formulation=cvxpy_formulation,
        radius=radius,
        prove=prove,
    )
    support = np.flatnonzero(a > 0) if route == "active-set" else support_of(a, Q)
    s_n = float(np.sum(a))
    norm_n = cert.margin_upper * s_n  # sqrt(a^T Q a), as certify computed it
    svm_dual = a / scale  # back to the user's K: a ~ 1/c, norm ~ 1/sqrt(c), margin ~ sqrt(c)
    norm = float(norm_n / radius)
    objective, mu, dual_objective, gap, rel = norm_form(cert, a, radius)
    return KernelSVMResult(
        dual=mu,
        svm_dual=svm_dual,
        coef=svm_dual * yv,
        margin=1.0 / norm,
        norm=norm,
        objective=objective,
        dual_objective=dual_objective,
        support=support,
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
    )
