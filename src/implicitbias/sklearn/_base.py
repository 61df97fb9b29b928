"""What every estimator of :mod:`implicitbias.sklearn` shares: input checks that name the
argument, and the binary-label convention of the hard-margin classifiers.

scikit-learn's own validation (:func:`sklearn.utils.validation.validate_data`) sets
``n_features_in_``/``feature_names_in_`` and says what is wrong in scikit-learn's words; every
error it raises is re-raised as the library's :class:`~implicitbias.InvalidArgumentError`
(a ``ValueError``) or :class:`~implicitbias.InvalidArgumentTypeError` (a ``TypeError``) whose
message starts with the library's template, "The 'X' argument of L1MaxMarginClassifier.fit
must be ...", and keeps scikit-learn's sentence as its hint.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar, cast

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin  # type: ignore[import-untyped]
from sklearn.utils.multiclass import (  # type: ignore[import-untyped]
    check_classification_targets,
    type_of_target,
)
from sklearn.utils.validation import (  # type: ignore[import-untyped]
    check_array,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from implicitbias._errors import (
    ImplicitBiasError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
)
from implicitbias._validation import describe, fail

__all__ = [
    "BinaryHardMarginClassifier",
    "check_X",
    "check_targets",
    "clear_fitted",
    "fitting",
    "naming",
]

_Fit = TypeVar("_Fit", bound=Callable[..., Any])

_X_EXPECT = "a 2-dimensional array of finite numbers of shape (n_samples, n_features)"
_Y_NONE = "This estimator requires y to be passed, but the target y is None."


@contextmanager
def naming(func: str, arg: str, expect: str, value: Any) -> Iterator[None]:
    """Re-raise scikit-learn's ``ValueError``/``TypeError`` about ``arg`` in the library's words.

    The library's own errors pass through unchanged; scikit-learn's message becomes the hint,
    so what scikit-learn's checks look for ("Reshape your data", "NaN", "X has 1 features")
    is still in it.
    """
    try:
        yield
    except ImplicitBiasError:
        raise
    except (TypeError, ValueError) as exc:
        message = str(fail(func, arg, expect, _describe(value), " ".join(str(exc).split())))
        if isinstance(exc, TypeError):
            raise InvalidArgumentTypeError(message) from exc
        raise InvalidArgumentError(message) from exc


def _describe(value: Any) -> str:
    """:func:`describe`, on one line; a sparse matrix or data frame by its type and shape."""
    shape = getattr(value, "shape", None)
    if not isinstance(value, np.ndarray) and isinstance(shape, tuple):
        return f"a {type(value).__name__} of shape {shape}"
    return " ".join(describe(value).split())


def check_X(est: BaseEstimator, X: Any, *, func: str, reset: bool) -> np.ndarray:
    """``X`` as a finite float64 array; ``reset=True`` (in ``fit``) records ``n_features_in_``,
    ``reset=False`` (after ``fit``) checks the number of features against it."""
    with naming(func, "X", _X_EXPECT, X):
        return validate_data(est, X, reset=reset, dtype=np.float64)


def check_targets(y: Any, n: int, *, func: str) -> np.ndarray:
    """Real targets for a regressor: shape ``(n,)`` or ``(n, C)``, finite, float64."""
    if y is None:
        raise fail(func, "y", f"an array of {n} targets, one per row of X", "None", _Y_NONE)
    with naming(func, "y", "a finite array of real targets of shape (n_samples,) or "
                "(n_samples, n_outputs)", y):  # fmt: skip
        out = check_array(y, ensure_2d=False, dtype=np.float64, input_name="y")
    if out.ndim not in (1, 2):
        raise fail(func, "y", "of shape (n_samples,) or (n_samples, n_outputs)",
                   f"shape {out.shape}")  # fmt: skip
    if out.shape[0] != n:
        raise fail(func, "y", f"of length {n} (one target per row of X)", f"length {out.shape[0]}")
    return out


def _binary_labels(y: Any, n: int, func: str) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, labels in {-1, +1})``: ``classes`` sorted, ``classes[1]`` the positive one."""
    if y is None:
        raise fail(func, "y", f"an array of {n} class labels, one per row of X", "None", _Y_NONE)
    with naming(func, "y", "a 1-dimensional array of class labels, one per row of X", y):
        labels = column_or_1d(y, warn=True)
        if labels.shape[0] != n:
            raise fail(func, "y", f"of length {n} (one label per row of X)",
                       f"length {labels.shape[0]}")  # fmt: skip
        if labels.dtype.kind == "f" and not np.all(np.isfinite(labels)):
            bad = "NaN" if np.any(np.isnan(labels)) else "infinity"
            raise fail(func, "y", "finite class labels", f"labels containing {bad}",
                       f"Input y contains {bad}.")  # fmt: skip
        check_classification_targets(labels)  # "Unknown label type: continuous ..."
        kind = type_of_target(labels, input_name="y", raise_unknown=True)
        classes, index = np.unique(labels, return_inverse=True)
    if kind != "binary" or classes.size != 2:
        k = classes.size
        hint = (
            "A classifier cannot be trained on one class."
            if k < 2
            else f"Only binary classification is supported. The type of the target is {kind}. "
            "For more classes wrap the estimator in sklearn.multiclass.OneVsRestClassifier "
            "(each class against the rest must then be separable)."
        )
        raise fail(
            func,
            "y",
            "labels of exactly two classes (a hard-margin classifier without bias)",
            f"{k} class{'es' if k != 1 else ''} {classes[:6].tolist()}",
            hint,
        )
    return classes, np.where(index.reshape(-1) == 1, 1.0, -1.0)


def clear_fitted(est: BaseEstimator) -> None:
    """Remove every fitted attribute (``name_``, and private ``_name`` state set by ``fit``).

    A ``fit`` that fails (``NotSeparableError``, a bad argument, an interrupt) calls this, so
    the estimator is plainly unfitted (``NotFittedError``) rather than a mix of the previous
    fit's coefficients and the new ``classes_`` or ``n_features_in_``.
    """
    for key in [k for k in vars(est) if k.endswith("_") and not k.startswith("__")]:
        delattr(est, key)
    est.__dict__.pop("_gamma", None)


def fitting(fit: _Fit) -> _Fit:
    """Decorate a ``fit`` method: on any exception, clear the fitted state, then re-raise."""

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            clear_fitted(self)
            raise

    return cast("_Fit", wrapper)


class BinaryHardMarginClassifier(ClassifierMixin, BaseEstimator):
    """Base of the binary classifiers: labels, ``predict`` from ``decision_function``, tags.

    Subclasses implement ``fit`` (calling :meth:`_start_fit` first) and
    ``_decision(X)`` on a validated ``X``.
    """

    def _start_fit(self, X: Any, y: Any, func: str) -> tuple[np.ndarray, np.ndarray]:
        """Validated ``X`` (float64) and labels in {-1, +1}; sets ``classes_``."""
        Xv = check_X(self, X, func=func, reset=True)
        self.classes_, ypm = _binary_labels(y, Xv.shape[0], func)
        return Xv, ypm

    def _set_support(self, support: np.ndarray, coef: np.ndarray, ypm: np.ndarray) -> None:
        """``support_``, ``dual_coef_`` (``coef`` on the support, shape ``(1, n_SV)``),
        ``n_support_`` (support vectors of ``classes_[0]`` and ``classes_[1]``)."""
        support = np.asarray(support, dtype=np.intp).reshape(-1)
        self.support_ = support
        self.dual_coef_ = np.asarray(coef, dtype=np.float64)[support].reshape(1, -1)
        positive = int(np.count_nonzero(ypm[support] > 0))
        self.n_support_ = np.array([support.size - positive, positive], dtype=np.int32)

    def _decision(self, X: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def decision_function(self, X: Any) -> np.ndarray:
        """Signed score of each row of ``X``; positive means ``classes_[1]``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
            Inputs (for ``kernel="precomputed"``: the kernel between them and the training
            points, shape ``(n_samples, n_train)``).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        func = f"{type(self).__name__}.decision_function"
        return self._decision(check_X(self, X, func=func, reset=False))

    def predict(self, X: Any) -> np.ndarray:
        """Class labels: ``classes_[1]`` where the score is positive, else ``classes_[0]``.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        func = f"{type(self).__name__}.predict"
        scores = self._decision(check_X(self, X, func=func, reset=False))
        return self.classes_[(scores > 0).astype(np.intp)]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
