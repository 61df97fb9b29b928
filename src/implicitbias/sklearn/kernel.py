r"""Kernel-regime estimators: the hard-margin kernel SVM (K1) and minimum-norm kernel
interpolation (K2), without bias, as scikit-learn estimators.

Both wrap the library's exact solvers (:func:`~implicitbias.kernel_svm`,
:func:`~implicitbias.kernel_regression`). The kernel is a scikit-learn kernel name
(``"rbf"``, ``"poly"``, ``"linear"``, ``"laplacian"``, ``"cosine"``), ``"precomputed"`` (``X``
is then the kernel matrix: ``(n, n)`` in ``fit``, ``(m, n)`` between new and training points
afterwards, as in :class:`sklearn.svm.SVC`), or a callable ``kernel(A, B)`` returning the
``(len(A), len(B))`` matrix (an empirical NTK, for instance).
"""

from __future__ import annotations

from typing import Any, cast

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin  # type: ignore[import-untyped]
from sklearn.utils.validation import check_is_fitted  # type: ignore[import-untyped]

from implicitbias._errors import InvalidArgumentError
from implicitbias.kernel_regime import kernel_regression, kernel_svm
from implicitbias.sklearn._base import (
    BinaryHardMarginClassifier,
    check_targets,
    check_X,
    fitting,
)
from implicitbias.sklearn._kernels import KernelMixin

__all__ = ["HardMarginKernelSVC", "MinNormKernelRegressor"]


def _is_kernel_error(exc: InvalidArgumentError) -> bool:
    return str(exc).startswith("The 'K' argument")


class HardMarginKernelSVC(KernelMixin, BinaryHardMarginClassifier):
    r"""Hard-margin kernel SVM without bias (problem K1): the kernel-regime classifier.

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad \text{s.t.} \quad y_i \langle \phi(x_i), h \rangle \ge 1,
        \qquad h = \sum_i a_i y_i \phi(x_i),

    solved exactly (active set, certified) by :func:`~implicitbias.kernel_svm`. With the
    empirical NTK of a network at initialization as the kernel this is the early-phase
    predictor of Lyu et al. (2024). Unlike :class:`sklearn.svm.SVC` there is no slack
    (``C = ∞``) and no bias (``intercept_ = 0``): data not separable in the kernel's feature
    space raise :class:`~implicitbias.NotSeparableError` with its certificate.

    ==================================  ===============================
    math                                attribute
    ==================================  ===============================
    :math:`a_i y_i` on the support      ``dual_coef_[0]``
    :math:`\{i : a_i > 0\}`             ``support_``
    :math:`1/\|h\|`                     ``margin_``
    ==================================  ===============================

    Parameters
    ----------
    kernel : {"rbf", "poly", "linear", "laplacian", "cosine", "precomputed"} or callable
        Default ``"rbf"``. A callable ``kernel(A, B)`` must return the ``(len(A), len(B))``
        kernel matrix (numpy array or torch tensor).
    gamma : {"scale", "auto"} or float, default "scale"
        For ``"rbf"``, ``"poly"``, ``"laplacian"``: ``"scale"`` is ``1 / (n_features ·
        X.var())``, ``"auto"`` is ``1 / n_features``, as in :class:`sklearn.svm.SVC`.
    degree : int, default 3
        For ``"poly"``: ``(gamma⟨x, x'⟩ + coef0)^degree``.
    coef0 : float, default 0.0
        For ``"poly"`` (``>= 0``, so that the kernel is positive semidefinite).
    solver : {"auto", "active-set", "cvxpy"}, default "auto"
    tol : float, default 1e-9
        Certificate tolerance of :func:`~implicitbias.kernel_svm`.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (1, n_SV)
        ``a_i y_i`` on the support vectors (:class:`sklearn.svm.SVC`'s convention):
        ``decision_function(x) = Σ_i dual_coef_[0, i] k(x, x_{support_[i]})``.
    support_ : ndarray of shape (n_SV,)
        Indices of the support vectors.
    support_vectors_ : ndarray of shape (n_SV, n_features)
        Empty, shape ``(0, 0)``, for ``kernel="precomputed"``.
    n_support_ : ndarray of shape (2,)
        Support vectors of ``classes_[0]`` and of ``classes_[1]``.
    intercept_ : ndarray of shape (1,)
        Always ``[0.0]``: no bias.
    margin_ : float
        ``1/‖h‖``, the margin of the unit-norm solution in feature space.
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training inputs (absent for ``kernel="precomputed"``).
    classes_ : ndarray of shape (2,)
        The two labels, sorted; ``classes_[1]`` plays ``y = +1``.
    n_features_in_ : int
        ``n_features``, or ``n_samples`` for ``kernel="precomputed"``.
    result_ : KernelSVMResult
        The solver's frozen record.

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import HardMarginKernelSVC
    >>> X = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> clf = HardMarginKernelSVC(kernel="linear").fit(X, [1, -1])
    >>> clf.dual_coef_.round(6).tolist(), round(clf.margin_, 6)
    ([[1.0, -0.25]], 0.894427)
    >>> K = X @ X.T  # the same problem with a precomputed kernel
    >>> pre = HardMarginKernelSVC(kernel="precomputed").fit(K, [1, -1])
    >>> pre.predict(np.array([[3.0, 0.0], [0.0, 5.0]]) @ X.T).tolist()
    [1, -1]

    References
    ----------
    Lyu, Jin, Li, Du, Lee & Hu, *Dichotomy of Early and Late Phase Implicit Biases Can
    Provably Induce Grokking*, ICLR 2024, arXiv:2311.18817.
    """

    def __init__(
        self,
        kernel: Any = "rbf",
        *,
        gamma: Any = "scale",
        degree: int = 3,
        coef0: float = 0.0,
        solver: str = "auto",
        tol: float = 1e-9,
    ) -> None:
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.solver = solver
        self.tol = tol

    @fitting
    def fit(self, X: Any, y: Any) -> HardMarginKernelSVC:
        """Solve (K1) on the kernel matrix of ``X``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features), or (n_samples, n_samples)
            Training inputs, or their kernel matrix for ``kernel="precomputed"``.
        y : array_like of shape (n_samples,)
            Labels of exactly two classes.

        Returns
        -------
        self

        Raises
        ------
        NotSeparableError
            If the data are not separable in the kernel's feature space (hard margin).
        InvalidArgumentError, InvalidArgumentTypeError
            For a bad argument or parameter (a kernel that is not positive semidefinite names
            ``X`` for ``kernel="precomputed"``, else ``kernel``).
        """
        func = "HardMarginKernelSVC.fit"
        self._check_kernel_params(func)
        Xv, ypm = self._start_fit(X, y, func)
        self._check_square(Xv, func)
        self._fit_gamma(Xv)
        K = self._kernel(Xv, None, func)
        try:
            res = kernel_svm(K, ypm, solver=cast("Any", self.solver), tol=self.tol)
        except InvalidArgumentError as exc:
            if _is_kernel_error(exc):
                raise self._kernel_error(exc, func) from exc
            raise
        self.result_ = res
        self._set_support(res.support, res.coef, ypm)
        self.margin_ = float(res.margin)
        self.intercept_ = np.zeros(1)
        if self._precomputed:
            self.support_vectors_ = np.empty((0, 0))
            self.__dict__.pop("X_fit_", None)  # from an earlier fit with another kernel
        else:
            self.X_fit_ = np.array(Xv, copy=True)  # not a view of the caller's array
            self.support_vectors_ = Xv[self.support_]
        return self

    def _decision(self, X: np.ndarray) -> np.ndarray:
        func = f"{type(self).__name__}.decision_function"
        Kx = self._kernel(X, None if self._precomputed else self.X_fit_, func)
        return Kx @ np.asarray(self.result_.coef, dtype=np.float64)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed
        return tags


class MinNormKernelRegressor(KernelMixin, RegressorMixin, BaseEstimator):
    r"""Minimum-norm kernel interpolation (problem K2, "ridgeless" kernel regression).

    .. math::

        \min_h \tfrac12 \|h\|^2 \quad \text{s.t.} \quad \langle \phi(x_i), h \rangle = y_i,
        \qquad h = \sum_j c_j \phi(x_j), \quad K c = y,

    solved by :func:`~implicitbias.kernel_regression` (Cholesky; pseudo-inverse with an
    :class:`~implicitbias.InaccurateSolutionWarning` for a singular kernel). The kernel
    regime's regression predictor; :class:`sklearn.kernel_ridge.KernelRidge` with
    ``alpha → 0``. An exact interpolation: targets that no ``h`` interpolates (duplicate
    inputs with different targets) raise :class:`~implicitbias.InfeasibleError`.

    Parameters
    ----------
    kernel : {"rbf", "poly", "linear", "laplacian", "cosine", "precomputed"} or callable
        As in :class:`HardMarginKernelSVC`; default ``"rbf"``.
    gamma : {"scale", "auto"} or float, default "scale"
    degree : int, default 3
    coef0 : float, default 0.0
    rtol : float, default 1e-8
        Relative eigenvalue cut-off and interpolation tolerance of
        :func:`~implicitbias.kernel_regression`.

    Attributes
    ----------
    dual_coef_ : ndarray of shape (n_samples,) or (n_samples, n_targets)
        ``c`` with ``K c = y`` (:class:`sklearn.kernel_ridge.KernelRidge`'s name).
    X_fit_ : ndarray of shape (n_samples, n_features)
        The training inputs (absent for ``kernel="precomputed"``).
    n_features_in_ : int
    result_ : KernelRegressionResult
        The solver's frozen record.

    Examples
    --------
    >>> import numpy as np
    >>> from implicitbias.sklearn import MinNormKernelRegressor
    >>> K = np.array([[2.0, 1.0], [1.0, 2.0]])
    >>> reg = MinNormKernelRegressor(kernel="precomputed").fit(K, [1.0, -1.0])
    >>> reg.dual_coef_.tolist(), reg.predict(np.array([[1.0, 0.0]])).tolist()
    ([1.0, -1.0], [1.0])
    """

    def __init__(
        self,
        kernel: Any = "rbf",
        *,
        gamma: Any = "scale",
        degree: int = 3,
        coef0: float = 0.0,
        rtol: float = 1e-8,
    ) -> None:
        self.kernel = kernel
        self.gamma = gamma
        self.degree = degree
        self.coef0 = coef0
        self.rtol = rtol

    @fitting
    def fit(self, X: Any, y: Any) -> MinNormKernelRegressor:
        """Solve (K2): the minimum-norm ``h`` with ``⟨φ(x_i), h⟩ = y_i``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features), or (n_samples, n_samples)
            Training inputs, or their kernel matrix for ``kernel="precomputed"``.
        y : array_like of shape (n_samples,) or (n_samples, n_targets)
            Real targets.

        Returns
        -------
        self

        Raises
        ------
        InfeasibleError
            If ``y`` is not in the range of a singular kernel matrix.
        InvalidArgumentError, InvalidArgumentTypeError
            For a bad argument or parameter.
        """
        func = "MinNormKernelRegressor.fit"
        self._check_kernel_params(func)
        Xv = check_X(self, X, func=func, reset=True)
        yv = check_targets(y, Xv.shape[0], func=func)
        self._check_square(Xv, func)
        self._fit_gamma(Xv)
        K = self._kernel(Xv, None, func)
        try:
            res = kernel_regression(K, yv, rtol=self.rtol)
        except InvalidArgumentError as exc:
            if _is_kernel_error(exc):
                raise self._kernel_error(exc, func) from exc
            raise
        self.result_ = res
        self.dual_coef_ = np.asarray(res.coef, dtype=np.float64)
        if self._precomputed:
            self.__dict__.pop("X_fit_", None)  # from an earlier fit with another kernel
        else:
            self.X_fit_ = np.array(Xv, copy=True)  # not a view of the caller's array
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predictions ``⟨φ(x), h⟩ = Σ_j c_j k(x, x_j)``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Inputs (for ``kernel="precomputed"``: their kernel with the training points,
            shape ``(n_samples, n_train)``).

        Returns
        -------
        ndarray of shape (n_samples,) or (n_samples, n_targets)
        """
        check_is_fitted(self)
        func = "MinNormKernelRegressor.predict"
        Xv = check_X(self, X, func=func, reset=False)
        Kx = self._kernel(Xv, None if self._precomputed else self.X_fit_, func)
        return Kx @ self.dual_coef_

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.pairwise = self._precomputed
        tags.target_tags.multi_output = True
        return tags
