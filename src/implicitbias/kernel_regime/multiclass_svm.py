"""Multiclass hard-margin kernel SVM without bias on a multi-output kernel (THEORY §3).

Reported in the norm form of every max-margin result (``docs/results.md``): ``objective`` is
``||h||``, ``dual`` the multipliers ``mu = a / ||h||`` of ``min ||h||`` under the pair
constraints; the multipliers ``a`` of ``min 1/2 ||h||^2`` are ``svm_dual``.

Two routes solve the same dual: the dense one forms the ``n(C-1) x n(C-1)`` pair matrix and
hands it to the active-set solver of :func:`~implicitbias.kernel_svm`; the working-set one
(``_multiclass_ws.py``) never forms it, and on a kernel ``K ⊗ I_C`` (``structure="kron"``) its
cost follows the near-active pairs and ``n^2 C``, not ``(nC)^2``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import numpy as np
import torch

from implicitbias._errors import NotSeparableError
from implicitbias._psd import check_psd, prove_psd
from implicitbias._results import ResultRecord, match_input
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
from implicitbias.kernel_regime._multiclass_pairs import FullPairs, KronPairs, Pairs
from implicitbias.kernel_regime._multiclass_solve import solve_dual
from implicitbias.kernel_regime._multiclass_ws import DENSE_COPIES
from implicitbias.kernel_regime._svm_dual import norm_form, not_separable_error

__all__ = ["MulticlassKernelSVMResult", "multiclass_kernel_svm"]

_FUNC = "multiclass_kernel_svm"
_PAIR = "(phi_{y_i}(x_i) - phi_j(x_i))"
#: The ``structure`` option: the whole multi-output kernel, or the per-class kernel ``K`` of
#: ``K_full = K ⊗ I_C``.
KernelStructure = Literal["full", "kron"]
_STRUCTURES: tuple[str, ...] = get_args(KernelStructure)
#: The ``solver`` option of :func:`multiclass_kernel_svm`.
MulticlassSolver = Literal["auto", "active-set", "working-set", "cvxpy"]
_SOLVERS: tuple[str, ...] = get_args(MulticlassSolver)
#: Default ``memory_budget`` (bytes).
MEMORY_BUDGET = 2 * 2**30
# solver="auto" on a full kernel: the dense route up to this many pairs (a 128 MiB matrix)
_DENSE_MAX_PAIRS = 4096


@dataclass(frozen=True)
class MulticlassKernelSVMResult(ResultRecord):
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
    structure : {"full", "kron"}
        The kernel the problem was given with: ``"kron"`` for the per-class kernel ``K`` of
        ``K_full = K ⊗ I_C``; :meth:`decision_function` then takes the ``(m, n)`` kernel
        between new and training points.
    constraints_touched : int
        Pair constraints whose rows of the dual matrix were ever formed or solved for: all
        ``n (C - 1)`` on the dense route, the pairs that entered a working set on the
        working-set route.
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
    structure: KernelStructure = "full"
    constraints_touched: int = 0
    _n: int = field(default=0, repr=False)
    _c: int = field(default=0, repr=False)

    n_iter = renamed("iterations")

    def decision_function(self, K_full_new_train: Any) -> Any:
        """Scores ``<phi_c(x), h>`` for each new point and class.

        Parameters
        ----------
        K_full_new_train : array_like, shape (m*C, n*C), or (m, n) for ``structure="kron"``
            Multi-output kernel between new and training points, row index ``x*C + c``,
            column index ``i*C + b``; for a result of ``structure="kron"`` the per-class
            kernel ``K(x, x_i)`` (the multi-output one is ``K ⊗ I_C``).

        Returns
        -------
        ndarray or torch.Tensor, shape (m, C)
            A tensor (on the kernel's device) when the kernel is a tensor.
        """
        return match_input(self._scores(K_full_new_train), K_full_new_train)

    def _scores(self, K_full_new_train: Any) -> np.ndarray:
        name = "MulticlassKernelSVMResult.decision_function"
        Kn = as_float_array(K_full_new_train, name, "K_full_new_train", ndim=2)
        if self.structure == "kron":
            if Kn.shape[1] != self._n:
                raise fail(
                    name,
                    "K_full_new_train",
                    f"an (m, {self._n}) per-class kernel between new and training points "
                    "(this result is of structure='kron')",
                    f"shape {Kn.shape}",
                )
            return Kn @ self.coef
        C, nC = self._c, self._n * self._c
        if Kn.shape[1] != nC or Kn.shape[0] % C != 0:
            raise fail(
                name,
                "K_full_new_train",
                f"an (m*{C}, {nC}) multi-output kernel between new and training points",
                f"shape {Kn.shape}",
            )
        return (Kn @ self.coef.ravel()).reshape(-1, C)

    def predict(self, K_full_new_train: Any) -> Any:
        """Predicted classes ``argmax_c <phi_c(x), h>``, shape (m,) (int64 tensor for a tensor
        kernel)."""
        classes = np.argmax(self._scores(K_full_new_train), axis=1)
        return match_input(classes, K_full_new_train, dtype=torch.int64)


def multiclass_kernel_svm(
    K_full: Any,
    y: Any,
    *,
    n_classes: int | None = None,
    structure: KernelStructure = "full",
    solver: MulticlassSolver = "auto",
    tol: float = 1e-9,
    cvxpy_solver: str | None = None,
    fallback: bool = True,
    memory_budget: int = MEMORY_BUDGET,
) -> MulticlassKernelSVMResult:
    r"""Multiclass hard-margin kernel SVM without bias on a multi-output kernel.

    .. math::

        \min_h \tfrac12\|h\|^2 \quad\text{s.t.}\quad
        \langle \phi_{y_i}(x_i) - \phi_j(x_i), h \rangle \ge 1
        \quad \forall i,\ j \ne y_i,

    solved through its dual over the :math:`n(C-1)` pairs,
    :math:`\max_{a\ge0} \mathbf 1^\top a - \tfrac12 a^\top M a` with
    :math:`M_{(i,j),(k,l)} = K_{(i,y_i),(k,y_k)} - K_{(i,y_i),(k,l)} - K_{(i,j),(k,y_k)}
    + K_{(i,j),(k,l)}`, by the exact active-set solver of :func:`~implicitbias.kernel_svm`
    (``solver="active-set"``) or by working sets that never form :math:`M`
    (``solver="working-set"``, below).
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

    **Kernels** :math:`K \otimes I_C`. When every class block of the multi-output kernel is the
    same ``n x n`` kernel ``K`` and the cross-class blocks vanish (the NTK of a network whose
    trainable parameters other than the last layer's get zero gradient, e.g. at a
    last-layer-zero initialization; see :func:`~implicitbias.ntk_predictor`), pass ``K`` with
    ``structure="kron"``. Then :math:`M_{(i,c),(j,d)} = K_{ij}(\delta_{y_i y_j} -
    \delta_{y_i d} - \delta_{c y_j} + \delta_{cd})`, a product :math:`M a` costs one
    ``(n, n) x (n, C)`` product, and the working-set route solves each restricted problem by
    block principal pivoting whose face systems are solved per class through an
    ``n x n`` Schur complement (``_multiclass_face.py``), so neither ``(nC)^2`` nor
    ``(n(C-1))^2`` numbers are ever stored. Measured on a shared 2-core machine: ``n = 3764``,
    ``C = 97`` (361k pairs, the paper's modular addition, NTK of a width-1024 net) in 41 s and
    1.8 GB peak memory, certified to a KKT residual of 1e-13.

    **Working sets** (``solver="working-set"``): solve the dual restricted to a working set of
    pairs exactly; compute :math:`M a - 1` over all pairs; stop when no excluded pair violates
    dual feasibility (the answer is then optimal for the whole problem, and certified over all
    pairs), else add the most violated pairs and repeat. ``constraints_touched`` reports how
    many pairs ever entered.

    Parameters
    ----------
    K_full : array_like, shape (n*C, n*C), or (n, n) with ``structure="kron"``
        Symmetric PSD multi-output kernel, ``K_full[i*C + a, j*C + b] = <phi_a(x_i), phi_b(x_j)>``.
        Checked up front on every route exactly as ``K`` in :func:`~implicitbias.kernel_svm`
        (``lambda_min >= -max(1e-6, N eps32) max_i K_ii`` with ``N = n*C``; proved by a
        factorization for ``N <= 2048``, screened above). The answer is invariant
        under ``K_full -> c K_full`` (``svm_dual ~ 1/c``, ``margin ~ sqrt(c)``): the dual is solved
        with its matrix normalized to unit diagonal maximum and mapped back.
    y : array_like of int, shape (n,)
        Class labels in {0, ..., C-1}.
    n_classes : int, optional
        ``C``; by default ``K_full.shape[0] // len(y)``. Required with ``structure="kron"``
        (the per-class kernel does not say how many classes there are).
    structure : {"full", "kron"}, default "full"
        ``"full"``: ``K_full`` is the whole multi-output kernel. ``"kron"``: ``K_full`` is the
        per-class kernel ``K`` (``n x n``) of the multi-output kernel ``K ⊗ I_C``; checked
        PSD like ``K`` in :func:`~implicitbias.kernel_svm`.
    solver : {"auto", "active-set", "working-set", "cvxpy"}
        ``"active-set"`` and ``"cvxpy"``: the dense routes of :func:`~implicitbias.kernel_svm`
        on the whole ``n(C-1) x n(C-1)`` matrix (refused when about three copies of it exceed
        ``memory_budget``). ``"working-set"``: see above; on a full kernel its restricted
        problems are dense blocks, which must fit ``memory_budget``. ``"auto"``:
        ``"working-set"`` for ``structure="kron"`` and for more than 4096 pairs, else
        ``"active-set"``.
    tol : float
        Certificate tolerance (primal violation, relative slackness, relative duality gap).
    cvxpy_solver : str, optional
        Solver for the cvxpy route (default CLARABEL): an installed QP-capable cvxpy solver,
        checked on every route.
    fallback : bool
        Retry with cvxpy when the active-set or working-set answer fails its certificate (the
        working-set route only when the dense matrix fits ``memory_budget``).
    memory_budget : int, default 2 GiB
        Bytes the solver may use for matrices it builds: the dense pair matrix (with its
        working copies), a working set's dense block, or a face factorization.

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
        No route produced an answer that passes the optimality checks (or the working-set
        route would need more than ``memory_budget``).

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
    >>> kron = ib.multiclass_kernel_svm(np.eye(1), np.array([0]), n_classes=3, structure="kron")
    >>> np.allclose(kron.svm_dual, res.svm_dual), kron.predict(np.eye(1))
    (True, array([0]))

    References
    ----------
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu. Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking. ICLR 2024, arXiv:2311.18817.
    K. Crammer, Y. Singer. On the algorithmic implementation of multiclass kernel-based
    vector machines. JMLR 2, 2001.
    """
    t0 = time.perf_counter()
    check_choice(structure, _FUNC, "structure", _STRUCTURES)
    K, yv, C = _kernel_and_labels(K_full, y, n_classes, structure)
    n = yv.shape[0]
    check_choice(solver, _FUNC, "solver", _SOLVERS)
    tol = check_positive(tol, _FUNC, "tol")
    fallback = check_bool(fallback, _FUNC, "fallback")
    if cvxpy_solver is not None:
        cvxpy_solver = check_cvxpy_solver(cvxpy_solver, _FUNC, "CLARABEL", problem="qp")
    memory_budget = check_int(memory_budget, _FUNC, "memory_budget", minimum=1)
    psd = check_psd(K, _FUNC, "K_full")
    n_pairs = n * (C - 1)
    dense_need = DENSE_COPIES * 8 * n_pairs**2
    route = solver
    if solver == "auto":
        dense = structure == "full" and n_pairs <= _DENSE_MAX_PAIRS
        route = "active-set" if dense else "working-set"
    if route != "working-set" and dense_need > memory_budget:
        raise fail(
            _FUNC,
            "memory_budget",
            f"at least {dense_need} bytes (about {DENSE_COPIES} copies of the "
            f"{n_pairs} x {n_pairs} pair matrix) for solver={solver!r}",
            f"{memory_budget}",
            "Use solver='working-set', which never forms that matrix.",
        )
    pairs: Pairs = KronPairs(K, yv, C) if structure == "kron" else FullPairs(K, yv, C)
    # the kernel in the units prove_psd sees: KronPairs keeps a normalized copy, FullPairs
    # normalizes the (already copied) K_full in place
    unit = 1.0 if structure == "kron" else (pairs.scale or 1.0)
    radius = float(np.sqrt(pairs.scale))
    mask = pairs.mask

    def certificate_shape(a: np.ndarray) -> np.ndarray:
        out = np.zeros((n, C))
        out[mask] = a
        return out

    if pairs.scale == 0.0:  # every pair feature phi_{y_i}(x_i) - phi_j(x_i) is 0 (PSD K)
        raise not_separable_error(
            _FUNC, certificate_shape(np.eye(1, n_pairs).ravel()), 0.0, 0.0, what=_PAIR
        )

    def prove() -> None:
        prove_psd(K, _FUNC, "K_full", psd, unit=unit)

    try:
        a, cert, status, name, iterations, touched, sup = solve_dual(
            pairs,
            route=route,
            tol=tol,
            fallback=fallback,
            cvxpy_solver=cvxpy_solver,
            memory_budget=memory_budget,
            prove=prove,
            func=_FUNC,
            what=_PAIR,
        )
    except NotSeparableError as err:
        err.certificate = certificate_shape(err.certificate)  # type: ignore[attr-defined]
        raise
    pi, pj = np.divmod(pairs.pairs(), C)
    s_n = float(np.sum(a))
    norm_n = cert.margin_upper * s_n  # sqrt(a^T M a), as certify computed it
    objective, mu, dual_objective, gap, rel = norm_form(cert, a, radius)
    svm_dual = certificate_shape(a / pairs.scale)
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
        structure=structure,
        constraints_touched=touched,
        _n=n,
        _c=C,
    )


def _kernel_and_labels(
    K_full: Any, y: Any, n_classes: Any, structure: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """The validated kernel (a float64 copy: ``K_full``, or ``K`` for ``"kron"``), the labels
    and the number of classes ``C``."""
    K = as_kernel_matrix(K_full, _FUNC, "K_full")
    yv0 = as_class_labels(y, _FUNC, "y")
    n = yv0.shape[0]
    if structure == "kron":
        if n_classes is None:
            raise fail(
                _FUNC,
                "n_classes",
                "the number of classes C (an int >= 2) when structure='kron'",
                "None",
                "The per-class kernel K of K_full = K ⊗ I_C does not say how many classes "
                "there are.",
            )
        C = check_int(n_classes, _FUNC, "n_classes", minimum=2)
        if K.shape[0] != n:
            raise fail(
                _FUNC,
                "K_full",
                f"the per-class kernel K of shape ({n}, {n}) (n = {n}, the length of y) with "
                "structure='kron'",
                f"shape {K.shape}",
                "Pass the whole multi-output kernel with structure='full'."
                if K.shape[0] % n == 0 and K.shape[0] > n
                else None,
            )
    elif n_classes is None:
        if K.shape[0] % n != 0:
            raise fail(
                _FUNC,
                "K_full",
                f"of shape (n*C, n*C) with n = {n} (the length of y)",
                f"shape {K.shape}",
            )
        C = K.shape[0] // n
        if C < 2:
            raise fail(
                _FUNC, "K_full", f"of shape (n*C, n*C) with C >= 2 and n = {n}", f"shape {K.shape}"
            )
    else:
        C = check_int(n_classes, _FUNC, "n_classes", minimum=2)
        if K.shape[0] != n * C:
            raise fail(
                _FUNC,
                "K_full",
                f"of shape ({n * C}, {n * C}) (n = {n}, C = {C})",
                f"shape {K.shape}",
            )
    return K, as_class_labels(yv0, _FUNC, "y", n_classes=C), C
