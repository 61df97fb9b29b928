"""scikit-learn estimators over the library's solvers (needs the ``sklearn`` extra).

``pip install "implicitbias[sklearn]"``. Every estimator has ``fit``, ``predict``, ``score``
(and ``decision_function`` for the classifiers), the fitted attributes scikit-learn names
(``coef_``, ``dual_coef_``, ``support_``, ``classes_``, ``n_features_in_``) plus ``result_``,
the library's frozen result record, and works in ``Pipeline`` and ``GridSearchCV``.

The classifiers are *hard-margin* and *without bias*, like the implicit biases they compute:
binary (any two labels), no intercept, and data they cannot separate raise
:class:`~implicitbias.NotSeparableError` instead of fitting. The scikit-learn checks that
cannot apply to such a method are listed, each with its reason, in
:data:`EXPECTED_FAILED_CHECKS`.
"""

try:
    import sklearn as _sklearn  # type: ignore[import-untyped]
except ImportError as _exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "implicitbias.sklearn needs scikit-learn >= 1.6: pip install 'implicitbias[sklearn]'"
    ) from _exc
if tuple(int(v) for v in _sklearn.__version__.split(".")[:2] if v.isdigit()) < (1, 6):
    raise ImportError(  # pragma: no cover - depends on the environment
        f"implicitbias.sklearn needs scikit-learn >= 1.6 (estimator tags, validate_data); "
        f"scikit-learn {_sklearn.__version__} is installed"
    )

from implicitbias.sklearn._expected import EXPECTED_FAILED_CHECKS, expected_failed_checks
from implicitbias.sklearn.kernel import HardMarginKernelSVC, MinNormKernelRegressor
from implicitbias.sklearn.linear import (
    L1MaxMarginClassifier,
    L2MaxMarginClassifier,
    LpMaxMarginClassifier,
)
from implicitbias.sklearn.ntk import NTKClassifier, default_model_factory

__all__ = [
    "L1MaxMarginClassifier",
    "L2MaxMarginClassifier",
    "LpMaxMarginClassifier",
    "HardMarginKernelSVC",
    "MinNormKernelRegressor",
    "NTKClassifier",
    "default_model_factory",
    "EXPECTED_FAILED_CHECKS",
    "expected_failed_checks",
]
