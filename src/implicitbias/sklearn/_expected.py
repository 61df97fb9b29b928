"""The scikit-learn estimator checks that cannot pass for a hard-margin method, with reasons.

scikit-learn's checks fit every classifier on fixed small data sets (points in the positive
cube labelled by a threshold, blobs around the origin, random labels) and every regressor on
random targets. A classifier *without bias and without slack* must refuse data that no
hyperplane through the origin (no ``h`` in the kernel's feature space) separates, with
:class:`~implicitbias.NotSeparableError`; exact interpolation must refuse targets outside the
numerical range of the kernel matrix, with :class:`~implicitbias.InfeasibleError`. Every
check below fails only for that reason, on the data named (``tests/test_sklearn.py`` runs
each one and asserts the failure comes from one of those errors, and ``parametrize_with_checks``
runs them with ``xfail_strict=True``, so an entry that starts passing fails the suite).
Every other check of scikit-learn passes.
"""

from __future__ import annotations

from typing import Any

__all__ = ["EXPECTED_FAILED_CHECKS", "expected_failed_checks"]

# The data each check fits on (scikit-learn 1.9), binarized for binary-only classifiers.
_DATA = {
    "check_fit_score_takes_y": "30 points uniform in [0, 1)^3 labelled by i mod 3",
    "check_supervised_y_2d": "30 points uniform in [0, 1)^3 labelled by i mod 3",
    "check_estimators_overwrite_params": "make_blobs, 21 points around 3 random centres",
    "check_estimators_fit_returns_self": "make_blobs, 21 points around 3 random centres",
    "check_readonly_memmap_input": "make_blobs, 21 points around 3 random centres",
    "check_dont_overwrite_parameters": "20 points uniform in [0, 3)^3 labelled by int(x_0)",
    "check_f_contiguous_array_estimator": "20 points uniform in [0, 3)^3 labelled by int(x_0)",
    "check_methods_sample_order_invariance": "20 points uniform in [0, 3)^3 labelled by "
    "int(x_0)",
    "check_methods_subset_invariance": "20 points uniform in [0, 3)^3 labelled by int(x_0)",
    "check_dict_unchanged": "20 points uniform in [0, 3)^3 labelled by int(x_0)",
    "check_fit2d_predict1d": "20 points uniform in [0, 3)^3 labelled by int(x_0)",
    "check_n_features_in_after_fitting": "15 Gaussian points in R^4 with labels i mod 3",
    "check_estimators_dtypes": "20 points in [0, 3)^5, also cast to integers (duplicate and "
    "zero rows), alternating labels",
    "check_dtype_object": "56 points uniform in [0, 1)^10 with random labels",
    "check_pipeline_consistency": "make_blobs, one cluster at the origin and one at (1, 1, 1)",
    "check_estimators_pickle": "make_blobs, one cluster at the origin and one at (1, 1, 1)",
    "check_estimators_nan_inf": "10 points uniform in [0, 1)^3, labels 0 then 1",
    "check_classifier_data_not_an_array": "12 points of the positive quadrant, labels "
    "interleaved",
    "check_classifiers_train": "make_blobs classes 0 and 1, standardized (200 points)",
    "check_fit2d_1feature": "10 positive numbers (one feature) with two labels: points on one "
    "ray from the origin; the error names separability, not the number of features",
    "check_fit_idempotent": "100 points around (100, 100) in R^2 with random labels (random "
    "targets for a regressor)",
    "check_fit_check_is_fitted": "100 points around (100, 100) in R^2 with random labels (random "
    "targets for a regressor)",
    "check_n_features_in": "100 points around (100, 100) in R^2 with random labels (random "
    "targets for a regressor)",
    "check_positive_only_tag_during_fit": "the iris data shifted to mean 0 (150 points in R^4 "
    "with duplicates)",
}

_ORIGIN = "Hard margin, no bias: no hyperplane through the origin separates"
_HOMOGENEOUS = (
    "Hard margin on the NTK of a network without biases (f(c x) = c f(x)): the NTK features "
    "do not separate"
)
_RANDOM_RBF = (
    "Hard margin: the RBF features separate these random labels only with a margin ~1e-5 of "
    "the feature radius, which the exact solver certifies only to ~1e-6 > tol, so it warns "
    "InaccurateSolutionWarning (an error under warnings-as-errors) on"
)
_INTERPOLATION = (
    "Exact interpolation: the targets are not in the numerical range of the (numerically "
    "singular) RBF kernel matrix, so kernel_regression raises InfeasibleError on"
)

_LINEAR = [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_estimators_dtypes", "check_dtype_object", "check_pipeline_consistency",
    "check_estimators_nan_inf", "check_estimators_pickle", "check_f_contiguous_array_estimator",
    "check_classifier_data_not_an_array", "check_classifiers_train", "check_supervised_y_2d",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d",
]  # fmt: skip
_RANDOM_LABELS_2D = ["check_fit_idempotent", "check_fit_check_is_fitted", "check_n_features_in"]


def _reasons(why: str, checks: list[str]) -> dict[str, str]:
    return {check: f"{why} {_DATA[check]}." for check in checks}


#: For each estimator class of :mod:`implicitbias.sklearn` (by name), the scikit-learn checks
#: (by name) that cannot pass for a hard-margin or exact-interpolation method, with the reason.
#: Pass :func:`expected_failed_checks` to
#: ``sklearn.utils.estimator_checks.parametrize_with_checks(..., expected_failed_checks=...)``.
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "L1MaxMarginClassifier": _reasons(_ORIGIN, _LINEAR),
    "L2MaxMarginClassifier": _reasons(_ORIGIN, _LINEAR),
    "LpMaxMarginClassifier": _reasons(_ORIGIN, _LINEAR),
    "HardMarginKernelSVC": _reasons(_RANDOM_RBF, _RANDOM_LABELS_2D),
    "MinNormKernelRegressor": _reasons(
        _INTERPOLATION, [*_RANDOM_LABELS_2D, "check_positive_only_tag_during_fit"]
    ),
    "NTKClassifier": _reasons(
        _HOMOGENEOUS, ["check_estimators_dtypes", "check_fit2d_1feature", *_RANDOM_LABELS_2D]
    ),
}


def expected_failed_checks(estimator: Any) -> dict[str, str]:
    """The entry of :data:`EXPECTED_FAILED_CHECKS` for the estimator's class (a copy).

    Parameters
    ----------
    estimator : object
        An estimator instance.

    Returns
    -------
    dict
        ``{check name: reason}``, empty for a class without entry.
    """
    return dict(EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))
