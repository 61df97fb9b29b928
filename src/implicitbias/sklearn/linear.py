r"""ℓ1, ℓ2 and ℓp max-margin linear classifiers without bias, as scikit-learn estimators.

Each wraps the library's solver (:func:`~implicitbias.l1_max_margin`,
:func:`~implicitbias.l2_max_margin`, :func:`~implicitbias.lp_max_margin`) of

.. math::

    \min_w \|w\|_p \quad \text{s.t.} \quad y_i \langle w, x_i \rangle \ge 1,

a *hard-margin* problem through the origin: there is no intercept (``intercept_ = 0.0``) and
no slack, so data that no ``w`` separates through the origin raise
:class:`~implicitbias.NotSeparableError` (with its Farkas certificate) instead of a fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from implicitbias.rich_regime import (
    MaxMarginResult,
    l1_max_margin,
    l2_max_margin,
    lp_max_margin,
)
from implicitbias.rich_regime.max_margin import L1Solver, L2Solver, LpSolver
from implicitbias.sklearn._base import BinaryHardMarginClassifier, fitting

__all__ = ["L1MaxMarginClassifier", "L2MaxMarginClassifier", "LpMaxMarginClassifier"]


class _LinearMaxMargin(BinaryHardMarginClassifier):
    """Shared ``fit`` and attributes; subclasses say which solver to call."""

    def _solve(self, X: np.ndarray, y: np.ndarray) -> MaxMarginResult:  # pragma: no cover
        raise NotImplementedError

    @fitting
    def fit(self, X: Any, y: Any) -> _LinearMaxMargin:
        """Solve the max-margin problem on ``(X, y)``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Training inputs.
        y : array_like of shape (n_samples,)
            Labels of exactly two classes (any two values; ``classes_[1]`` plays ``+1``).

        Returns
        -------
        self

        Raises
        ------
        NotSeparableError
            If no ``w`` separates the two classes through the origin (hard margin).
        InvalidArgumentError, InvalidArgumentTypeError
            For a bad ``X``, ``y`` or parameter, naming it.
        """
        func = f"{type(self).__name__}.fit"
        Xv, ypm = self._start_fit(X, y, func)
        res = self._solve(Xv, ypm)
        self.result_ = res
        self.coef_ = np.asarray(res.w, dtype=np.float64).reshape(1, -1)
        self.intercept_ = 0.0
        self.margin_ = float(res.margin)
        # multipliers of min ½‖w‖², λ = ‖w‖ μ (μ those of the norm form), times the labels
        signed = np.asarray(res.dual, dtype=np.float64) * (1.0 / res.margin) * ypm
        self._set_support(res.support, signed, ypm)
        self.support_vectors_ = Xv[self.support_]
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        return X @ self.coef_[0]




class L1MaxMarginClassifier(_LinearMaxMargin):
    r"""ℓ1 max-margin linear classifier without bias (the rich-regime predictor).

    .. math::

        \min_w \|w\|_1 \quad \text{s.t.} \quad y_i \langle w, x_i \rangle \ge 1,

    solved by :func:`~implicitbias.l1_max_margin` (HiGHS with column generation; certified
    duality gap). The late-phase implicit bias of a depth-2 diagonal linear network. Hard
    margin, no intercept: non-separable data raise :class:`~implicitbias.NotSeparableError`.

    Parameters
    ----------
    solver : {"auto", "highs", "cvxpy"}, default "auto"
    tol : float, default 1e-7
        Tolerance on the certified relative duality gap.
    max_iter : int, default 200
        Column-generation rounds.
    cvxpy_solver : str, optional
        For ``solver="cvxpy"``.
    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        The minimum-norm ``w`` (``result_.w``), scaled so that ``min_i y_i⟨w, x_i⟩ = 1``.
    intercept_ : float
        Always ``0.0``: the problem has no bias (the networks it describes have none).
    margin_ : float
        ``1 / ‖w‖_p``, the margin of the unit-norm direction.
    dual_coef_ : ndarray of shape (1, n_SV)
        ``y_i λ_i`` on the support vectors, with ``λ = ‖w‖_p μ`` the multipliers of
        ``min ½‖w‖_p²`` (``μ = result_.dual`` those of the norm form); for ``p = 2``,
        ``coef_ = dual_coef_ @ support_vectors_`` as for :class:`sklearn.svm.SVC`.
    support_ : ndarray of shape (n_SV,)
        Indices of the support vectors (``μ_i > 0``).
    support_vectors_ : ndarray of shape (n_SV, n_features)
    n_support_ : ndarray of shape (2,)
        Support vectors of ``classes_[0]`` and of ``classes_[1]``.
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` is the positive class (``y = +1``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names (a pandas DataFrame).
    result_ : MaxMarginResult
        The solver's frozen record (certificate, duality gap, route, time).
    n_iter_ : int
        Column-generation rounds (``result_.iterations``).

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import L1MaxMarginClassifier
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> clf = L1MaxMarginClassifier().fit(X, ["no", "yes"])
    >>> clf.coef_.round(6).tolist(), round(clf.margin_, 6)
    ([[-0.333333, -0.333333]], 1.5)
    >>> clf.predict([[3.0, 0.0], [0.0, -3.0]]).tolist()
    ['no', 'yes']
    """

    def __init__(
        self,
        *,
        solver: L1Solver = "auto",
        tol: float = 1e-7,
        max_iter: int = 200,
        cvxpy_solver: str | None = None,
    ) -> None:
        self.solver = solver
        self.tol = tol
        self.max_iter = max_iter
        self.cvxpy_solver = cvxpy_solver

    @fitting
    def fit(self, X: Any, y: Any) -> L1MaxMarginClassifier:
        """Solve the ℓ1 max-margin problem on ``(X, y)``; see :meth:`_LinearMaxMargin.fit`.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : array_like of shape (n_samples,)
            Labels of exactly two classes.

        Returns
        -------
        self
        """
        super().fit(X, y)
        self.n_iter_ = int(self.result_.iterations)
        return self

    def _solve(self, X: np.ndarray, y: np.ndarray) -> MaxMarginResult:
        return l1_max_margin(
            X, y, solver=self.solver, tol=self.tol, max_iter=self.max_iter,
            cvxpy_solver=self.cvxpy_solver,
        )  # fmt: skip


class L2MaxMarginClassifier(_LinearMaxMargin):
    r"""ℓ2 max-margin linear classifier without bias (hard-margin linear SVM, no intercept).

    .. math::

        \min_w \|w\|_2 \quad \text{s.t.} \quad y_i \langle w, x_i \rangle \ge 1,

    solved exactly by :func:`~implicitbias.l2_max_margin` (NNLS on the least-distance
    problem). The early-phase (kernel-regime) predictor of a depth-2 diagonal network. Unlike
    :class:`sklearn.svm.LinearSVC` there is no slack and no intercept: non-separable data
    raise :class:`~implicitbias.NotSeparableError`.

    Parameters
    ----------
    solver : {"auto", "nnls", "cvxpy"}, default "auto"
    tol : float, default 1e-7
        Tolerance on the certified relative duality gap.
    cvxpy_solver : str, optional
        For ``solver="cvxpy"``.
    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        The minimum-norm ``w`` (``result_.w``), scaled so that ``min_i y_i⟨w, x_i⟩ = 1``.
    intercept_ : float
        Always ``0.0``: the problem has no bias (the networks it describes have none).
    margin_ : float
        ``1 / ‖w‖_p``, the margin of the unit-norm direction.
    dual_coef_ : ndarray of shape (1, n_SV)
        ``y_i λ_i`` on the support vectors, with ``λ = ‖w‖_p μ`` the multipliers of
        ``min ½‖w‖_p²`` (``μ = result_.dual`` those of the norm form); for ``p = 2``,
        ``coef_ = dual_coef_ @ support_vectors_`` as for :class:`sklearn.svm.SVC`.
    support_ : ndarray of shape (n_SV,)
        Indices of the support vectors (``μ_i > 0``).
    support_vectors_ : ndarray of shape (n_SV, n_features)
    n_support_ : ndarray of shape (2,)
        Support vectors of ``classes_[0]`` and of ``classes_[1]``.
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` is the positive class (``y = +1``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names (a pandas DataFrame).
    result_ : MaxMarginResult
        The solver's frozen record (certificate, duality gap, route, time).

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import L2MaxMarginClassifier
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> clf = L2MaxMarginClassifier().fit(X, [1, -1])
    >>> clf.coef_.round(6).tolist(), round(clf.margin_**2, 6)
    ([[0.333333, 0.333333]], 4.5)
    >>> np.allclose(clf.dual_coef_ @ clf.support_vectors_, clf.coef_)
    True
    """

    def __init__(
        self, *, solver: L2Solver = "auto", tol: float = 1e-7, cvxpy_solver: str | None = None
    ) -> None:
        self.solver = solver
        self.tol = tol
        self.cvxpy_solver = cvxpy_solver

    def _solve(self, X: np.ndarray, y: np.ndarray) -> MaxMarginResult:
        return l2_max_margin(
            X, y, solver=self.solver, tol=self.tol, cvxpy_solver=self.cvxpy_solver,
        )  # fmt: skip


class LpMaxMarginClassifier(_LinearMaxMargin):
    r"""ℓp max-margin linear classifier without bias, any ``p >= 1`` or ``numpy.inf``.

    .. math::

        \min_w \|w\|_p \quad \text{s.t.} \quad y_i \langle w, x_i \rangle \ge 1,

    solved by :func:`~implicitbias.lp_max_margin` (``p = 1`` and ``p = 2`` by the dedicated
    solvers, other ``p`` by cvxpy power cones). Depth-``D`` diagonal networks interpolate
    between ``p = 2`` and ``p = 1``; ``p`` is a hyperparameter to search
    (``GridSearchCV(LpMaxMarginClassifier(), {"p": [1, 1.5, 2]})``). Hard margin, no
    intercept: non-separable data raise :class:`~implicitbias.NotSeparableError`.

    Parameters
    ----------
    p : float, default 2.0
        The norm: ``p >= 1`` or ``numpy.inf``.
    solver : {"auto", "cvxpy"}, default "auto"
    tol : float, default 1e-6
        Tolerance on the certified relative duality gap.
    cvxpy_solver : str, optional
        Installed cvxpy solver (default CLARABEL).
    Attributes
    ----------
    coef_ : ndarray of shape (1, n_features)
        The minimum-norm ``w`` (``result_.w``), scaled so that ``min_i y_i⟨w, x_i⟩ = 1``.
    intercept_ : float
        Always ``0.0``: the problem has no bias (the networks it describes have none).
    margin_ : float
        ``1 / ‖w‖_p``, the margin of the unit-norm direction.
    dual_coef_ : ndarray of shape (1, n_SV)
        ``y_i λ_i`` on the support vectors, with ``λ = ‖w‖_p μ`` the multipliers of
        ``min ½‖w‖_p²`` (``μ = result_.dual`` those of the norm form); for ``p = 2``,
        ``coef_ = dual_coef_ @ support_vectors_`` as for :class:`sklearn.svm.SVC`.
    support_ : ndarray of shape (n_SV,)
        Indices of the support vectors (``μ_i > 0``).
    support_vectors_ : ndarray of shape (n_SV, n_features)
    n_support_ : ndarray of shape (2,)
        Support vectors of ``classes_[0]`` and of ``classes_[1]``.
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` is the positive class (``y = +1``).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when ``X`` has string column names (a pandas DataFrame).
    result_ : MaxMarginResult
        The solver's frozen record (certificate, duality gap, route, time).

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import LpMaxMarginClassifier
    >>> X = np.array([[2.0, 1.0], [-1.0, -2.0]])
    >>> clf = LpMaxMarginClassifier(p=np.inf).fit(X, [1, -1])
    >>> clf.coef_.round(6).tolist()
    [[0.333333, 0.333333]]
    """

    def __init__(
        self,
        p: float = 2.0,
        *,
        solver: LpSolver = "auto",
        tol: float = 1e-6,
        cvxpy_solver: str | None = None,
    ) -> None:
        self.p = p
        self.solver = solver
        self.tol = tol
        self.cvxpy_solver = cvxpy_solver

    def _solve(self, X: np.ndarray, y: np.ndarray) -> MaxMarginResult:
        return lp_max_margin(
            X, y, p=self.p, solver=self.solver, tol=self.tol,
            cvxpy_solver=self.cvxpy_solver,
        )  # fmt: skip
