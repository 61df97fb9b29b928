"""The scikit-learn estimators of implicitbias.sklearn.

scikit-learn's own estimator checks run on every estimator, with the checks a hard-margin
method cannot pass declared once, in ``implicitbias.sklearn.EXPECTED_FAILED_CHECKS``; each of
those is run again here and must fail *because* the data are not separable (or not
interpolable). Each estimator reproduces the library function it wraps to 1e-10, works in a
``Pipeline`` and in ``GridSearchCV``, clones, and names the argument of a bad input.
"""

from __future__ import annotations

import inspect
import pickle
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pytest
import scipy.sparse
import torch

sklearn = pytest.importorskip("sklearn", minversion="1.6")

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.metrics.pairwise import polynomial_kernel, rbf_kernel  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_nonsquare_error,
    estimator_checks_generator,
    parametrize_with_checks,
)

import implicitbias as ib  # noqa: E402
from implicitbias.sklearn import (  # noqa: E402
    EXPECTED_FAILED_CHECKS,
    HardMarginKernelSVC,
    L1MaxMarginClassifier,
    L2MaxMarginClassifier,
    LpMaxMarginClassifier,
    MinNormKernelRegressor,
    NTKClassifier,
    default_model_factory,
    expected_failed_checks,
)

ARG, TYP = ib.InvalidArgumentError, ib.InvalidArgumentTypeError
ATOL = 1e-10  # the estimators call the same solver on the same data: same digits


def _estimators() -> list[Any]:
    """One instance per class, as the check suite sees it (``p = 3`` takes the cvxpy route)."""
    return [
        L1MaxMarginClassifier(),
        L2MaxMarginClassifier(),
        LpMaxMarginClassifier(p=3.0),
        HardMarginKernelSVC(),
        MinNormKernelRegressor(),
        NTKClassifier(random_state=0),
    ]


def _check_name(check: Callable[..., Any]) -> str:
    return check.func.__name__ if isinstance(check, partial) else check.__name__


_STRICT = (
    {"xfail_strict": True}
    if "xfail_strict" in inspect.signature(parametrize_with_checks).parameters
    else {}
)


# ------------------------------------------------------------------ scikit-learn's own checks


@parametrize_with_checks(
    _estimators(), expected_failed_checks=expected_failed_checks, **_STRICT
)  # fmt: skip
def test_sklearn_estimator_checks(estimator: Any, check: Callable[..., Any]) -> None:
    check(estimator)


def _declared() -> list[tuple[Any, Callable[..., Any]]]:
    out = []
    for est in _estimators():
        declared = expected_failed_checks(est)
        for e, check in estimator_checks_generator(est, legacy=True, mark=None):
            if _check_name(check) in declared:
                out.append((e, check))
    return out


def _chain(exc: BaseException | None) -> list[type]:
    kinds = []
    while exc is not None:
        kinds.append(type(exc))
        exc = exc.__cause__ or exc.__context__
    return kinds


_DECLARED = _declared()


@pytest.mark.parametrize(
    ("estimator", "check"),
    _DECLARED,
    ids=[f"{type(e).__name__}-{_check_name(c)}" for e, c in _DECLARED],
)
def test_declared_failures_fail_because_the_data_are_not_separable(
    estimator: Any, check: Callable[..., Any]
) -> None:
    # The reason, not just the failure: the chain must hold the hard-margin error (or the
    # inaccuracy warning of a near-separable problem, made an error here).
    reasons = (ib.NotSeparableError, ib.InfeasibleError, ib.InaccurateSolutionWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ib.InaccurateSolutionWarning)
        with pytest.raises(Exception) as info:
            check(estimator)
    assert any(issubclass(k, reasons) for k in _chain(info.value)), _chain(info.value)


def test_expected_failed_checks_are_declared_once_per_class_with_reasons() -> None:
    names = {type(e).__name__ for e in _estimators()}
    assert set(EXPECTED_FAILED_CHECKS) == names
    for cls, checks in EXPECTED_FAILED_CHECKS.items():
        generated = {_check_name(c) for _, c in estimator_checks_generator(
            next(e for e in _estimators() if type(e).__name__ == cls), legacy=True, mark=None)}
        assert set(checks) <= generated, set(checks) - generated  # no stale names
        assert all(isinstance(r, str) and len(r) > 40 for r in checks.values())
    assert expected_failed_checks(object()) == {}


# ------------------------------------------------------------------ data


def _separable(n: int = 40, d: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian inputs labelled by a hyperplane through the origin (two string labels)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n + 20, d))
    score = X[:, 0] - 0.5 * X[:, 1]
    keep = np.argsort(-np.abs(score))[:n]  # a visible margin
    return X[keep], np.where(score[keep] > 0, "yes", "no")


def _pm(y: np.ndarray) -> np.ndarray:
    return np.where(y == "yes", 1.0, -1.0)  # classes_ = ["no", "yes"]: "yes" is +1


# ------------------------------------------------------------------ same answers as the library


@pytest.mark.parametrize(
    ("est", "solve"),
    [
        (L1MaxMarginClassifier(), ib.l1_max_margin),
        (L2MaxMarginClassifier(), ib.l2_max_margin),
        (LpMaxMarginClassifier(p=1.5), partial(ib.lp_max_margin, p=1.5)),
        (LpMaxMarginClassifier(p=np.inf), partial(ib.lp_max_margin, p=np.inf)),
        (LpMaxMarginClassifier(p=1), ib.l1_max_margin),
    ],
    ids=["l1", "l2", "lp1.5", "lpinf", "lp1"],
)
def test_linear_classifiers_reproduce_the_library_solvers(est: Any, solve: Any) -> None:
    X, y = _separable()
    X_test = np.random.default_rng(1).standard_normal((30, X.shape[1]))
    clf = est.fit(X, y)
    res = solve(X, _pm(y))
    np.testing.assert_allclose(clf.coef_[0], res.w, rtol=0, atol=ATOL)
    assert clf.coef_.shape == (1, X.shape[1]) and clf.intercept_ == 0.0
    assert clf.margin_ == pytest.approx(res.margin, rel=1e-12)
    np.testing.assert_array_equal(clf.support_, res.support)
    np.testing.assert_allclose(clf.decision_function(X_test), X_test @ res.w, rtol=0, atol=ATOL)
    want = np.where(X_test @ res.w > 0, "yes", "no")
    np.testing.assert_array_equal(clf.predict(X_test), want)
    assert list(clf.classes_) == ["no", "yes"] and clf.n_features_in_ == X.shape[1]
    assert clf.result_.w is res.w or np.array_equal(clf.result_.w, res.w)
    assert clf.score(X, y) == 1.0  # hard margin: every training point on its side


def test_l2_dual_coef_follows_the_svc_convention() -> None:
    # SVC: coef_ = dual_coef_ @ support_vectors_, sum |dual_coef_| = ||w||^2, and the support
    # vectors sit exactly on the margin y_i <w, x_i> = 1.
    X, y = _separable()
    clf = L2MaxMarginClassifier().fit(X, y)
    np.testing.assert_allclose(clf.dual_coef_ @ clf.support_vectors_, clf.coef_, atol=1e-9)
    w2 = float(clf.coef_[0] @ clf.coef_[0])
    assert np.abs(clf.dual_coef_).sum() == pytest.approx(w2, rel=1e-7)
    margins = _pm(y)[clf.support_] * (X[clf.support_] @ clf.coef_[0])
    np.testing.assert_allclose(margins, 1.0, atol=1e-9)
    assert clf.n_support_.sum() == clf.support_.size
    assert np.all(np.sign(clf.dual_coef_[0]) == _pm(y)[clf.support_])


def test_l1_dual_coef_certifies_the_l1_norm() -> None:
    # lambda = ||w||_1 mu: sum(lambda) = ||w||_1 sum(mu) = ||w||_1^2 at zero duality gap, and
    # ||X^T (lambda * y)||_inf = ||w||_1 (dual feasibility of mu, tight at the optimum).
    X, y = _separable()
    clf = L1MaxMarginClassifier().fit(X, y)
    w1 = float(np.abs(clf.coef_).sum())
    assert np.abs(clf.dual_coef_).sum() == pytest.approx(w1**2, rel=1e-6)
    tight = np.abs(clf.dual_coef_ @ clf.support_vectors_).max()
    assert tight == pytest.approx(w1, rel=1e-6)
    assert clf.n_iter_ == clf.result_.iterations >= 1


@pytest.mark.parametrize(
    ("kernel", "params", "K"),
    [
        ("rbf", {"gamma": 0.3}, partial(rbf_kernel, gamma=0.3)),
        ("poly", {"gamma": 0.5, "degree": 2, "coef0": 1.0},
         partial(polynomial_kernel, gamma=0.5, degree=2, coef0=1.0)),
        (partial(rbf_kernel, gamma=0.3), {}, partial(rbf_kernel, gamma=0.3)),
    ],
    ids=["rbf", "poly", "callable"],
)  # fmt: skip
def test_kernel_svc_reproduces_kernel_svm(kernel: Any, params: dict, K: Any) -> None:
    X, y = _separable()
    X_test = np.random.default_rng(1).standard_normal((30, X.shape[1]))
    clf = HardMarginKernelSVC(kernel=kernel, **params).fit(X, y)
    res = ib.kernel_svm(K(X, X), _pm(y))
    np.testing.assert_allclose(clf.decision_function(X_test), res.decision_function(K(X_test, X)),
                               rtol=0, atol=ATOL)  # fmt: skip
    np.testing.assert_array_equal(clf.support_, res.support)
    np.testing.assert_allclose(clf.dual_coef_[0], res.coef[res.support], rtol=0, atol=ATOL)
    assert clf.margin_ == pytest.approx(res.margin, rel=1e-12)
    np.testing.assert_allclose(clf.support_vectors_, X[res.support])
    # SVC's formula: decision(x) = sum_i dual_coef_i k(x, sv_i)
    np.testing.assert_allclose(clf.decision_function(X_test),
                               K(X_test, clf.support_vectors_) @ clf.dual_coef_[0], atol=1e-9)


def test_precomputed_kernel_gives_the_same_classifier_and_regressor() -> None:
    X, y = _separable()
    X_test = np.random.default_rng(1).standard_normal((30, X.shape[1]))
    K, K_test = rbf_kernel(X, X, gamma=0.3), rbf_kernel(X_test, X, gamma=0.3)
    on_the_fly = HardMarginKernelSVC(gamma=0.3).fit(X, y)
    pre = HardMarginKernelSVC(kernel="precomputed").fit(K, y)
    np.testing.assert_allclose(pre.decision_function(K_test), on_the_fly.decision_function(X_test),
                               rtol=0, atol=ATOL)  # fmt: skip
    assert pre.n_features_in_ == X.shape[0] and pre.support_vectors_.shape == (0, 0)
    assert get_tags(pre).input_tags.pairwise and not get_tags(on_the_fly).input_tags.pairwise
    t = np.sin(X[:, 0]) + X[:, 1]
    reg = MinNormKernelRegressor(kernel="precomputed").fit(K, t)
    np.testing.assert_allclose(reg.predict(K_test),
                               MinNormKernelRegressor(gamma=0.3).fit(X, t).predict(X_test),
                               rtol=0, atol=ATOL)  # fmt: skip
    check_nonsquare_error("HardMarginKernelSVC", HardMarginKernelSVC(kernel="precomputed"))
    check_nonsquare_error("MinNormKernelRegressor", MinNormKernelRegressor(kernel="precomputed"))


@pytest.mark.parametrize("outputs", [1, 2])
def test_regressor_reproduces_kernel_regression(outputs: int) -> None:
    rng = np.random.default_rng(3)
    X, X_test = rng.standard_normal((25, 3)), rng.standard_normal((10, 3))
    t = X @ rng.standard_normal((3, outputs)) + np.sin(X[:, :1])
    t = t[:, 0] if outputs == 1 else t
    reg = MinNormKernelRegressor(kernel="laplacian", gamma=0.5).fit(X, t)
    K = lambda A, B: np.exp(-0.5 * np.abs(A[:, None, :] - B[None, :, :]).sum(-1))  # noqa: E731
    res = ib.kernel_regression(K(X, X), t)
    np.testing.assert_allclose(reg.dual_coef_, res.coef, rtol=0, atol=ATOL)
    np.testing.assert_allclose(reg.predict(X_test), res.predict(K(X_test, X)), rtol=0, atol=ATOL)
    np.testing.assert_allclose(reg.predict(X), t, atol=1e-8)  # interpolates
    assert reg.score(X, t) == pytest.approx(1.0, abs=1e-12)


def _small_net(n_features: int, seed: int) -> torch.nn.Module:
    return ib.HomogeneousMLP(n_features, [16], seed=seed, dtype=torch.float64)


def test_ntk_classifier_reproduces_ntk_predictor() -> None:
    X, y = _separable(n=30, d=4)
    X_test = np.random.default_rng(1).standard_normal((20, 4))
    clf = NTKClassifier(_small_net, random_state=7).fit(X, y)
    pred = ib.ntk_predictor(_small_net(4, 7), torch.from_numpy(X), _pm(y))
    np.testing.assert_allclose(clf.decision_function(X_test),
                               pred.decision_function(torch.from_numpy(X_test)),
                               rtol=0, atol=ATOL)  # fmt: skip
    assert clf.margin_ == pytest.approx(pred.margin, rel=1e-12)
    np.testing.assert_array_equal(clf.support_, pred.solution.support)
    # an independent route: the SVM on the NTK as a callable kernel of HardMarginKernelSVC
    net = _small_net(4, 7)
    ntk = lambda A, B: ib.empirical_ntk(net, torch.from_numpy(A), torch.from_numpy(B))  # noqa: E731
    svc = HardMarginKernelSVC(kernel=ntk).fit(X, y)
    np.testing.assert_allclose(clf.decision_function(X_test), svc.decision_function(X_test),
                               rtol=1e-9, atol=1e-9)  # fmt: skip
    np.testing.assert_array_equal(clf.predict(X_test), svc.predict(X_test))


def test_ntk_classifier_seeds_the_factory_and_leaves_the_global_rng_alone() -> None:
    X, y = _separable(n=20, d=3)
    seen = []

    def unseeded(n_features: int, seed: int) -> torch.nn.Module:
        seen.append((n_features, seed))
        return torch.nn.Sequential(torch.nn.Linear(n_features, 8, bias=False, dtype=torch.float64),
                                   torch.nn.ReLU(),
                                   torch.nn.Linear(8, 1, bias=False, dtype=torch.float64),
                                   torch.nn.Flatten(0))  # fmt: skip

    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = NTKClassifier(unseeded, random_state=5).fit(X, y).decision_function(X)
    b = NTKClassifier(unseeded, random_state=5).fit(X, y).decision_function(X)
    assert torch.equal(torch.random.get_rng_state(), before)
    np.testing.assert_array_equal(a, b)  # the factory ignores seed; the fork seeds torch
    assert seen == [(3, 5), (3, 5)]
    default = NTKClassifier(random_state=0).fit(X, y)
    assert isinstance(default.model_, ib.HomogeneousMLP) and default.model_.widths == (64,)
    ref = default_model_factory(3, 0)
    assert all(torch.equal(p, q) for p, q in zip(ref.parameters(), default.model_.parameters()))


def test_ntk_classifier_pickles_with_its_network() -> None:
    X, y = _separable(n=20, d=3)
    clf = NTKClassifier(_small_net, random_state=1).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.decision_function(X), clf.decision_function(X))


# ------------------------------------------------------------------ labels and refusals


@pytest.mark.parametrize(
    "labels", [(0, 1), (-1, 1), (7, -5), ("cat", "dog"), (False, True), (1.0, 3.0)],
    ids=["01", "pm1", "7,-5", "str", "bool", "float"],
)  # fmt: skip
def test_any_two_labels_map_to_pm1_with_classes_sorted(labels: tuple) -> None:
    X, y = _separable()
    mapped = np.where(y == "yes", labels[1], labels[0])
    clf = L2MaxMarginClassifier().fit(X, mapped)
    assert list(clf.classes_) == sorted(labels)
    sign = 1.0 if labels[1] > labels[0] else -1.0  # classes_[1] is +1
    ref = ib.l2_max_margin(X, sign * _pm(y))
    np.testing.assert_allclose(clf.coef_[0], ref.w, rtol=0, atol=ATOL)
    np.testing.assert_array_equal(clf.predict(X), mapped)


_CLASSIFIERS = [e for e in _estimators() if not isinstance(e, MinNormKernelRegressor)]


@pytest.mark.parametrize("est", _CLASSIFIERS, ids=lambda e: type(e).__name__)
def test_more_than_two_classes_is_refused_naming_y(est: Any) -> None:
    X, y = _separable()
    y3 = np.where(X[:, 2] > 1.0, "maybe", y)
    with pytest.raises(ARG, match=r"'y' argument of \w+\.fit .*3 classes.*Only binary "
                       r"classification is supported.*OneVsRestClassifier"):  # fmt: skip
        est.fit(X, y3)
    with pytest.raises(ARG, match=r"'y' argument of \w+\.fit .*1 class \['yes'\]"):
        est.fit(X, np.full(len(y), "yes"))


def test_non_separable_data_raise_with_their_certificate() -> None:
    X, y = _separable()
    y_bad = y.copy()
    y_bad[0] = "no" if y[0] == "yes" else "yes"  # one point on the wrong side
    X_bad = np.vstack([X, -X[:1]])  # x and -x with the same label: no w through the origin
    y_same = np.append(y, y[0])
    for est in (L1MaxMarginClassifier(), L2MaxMarginClassifier(), LpMaxMarginClassifier(p=3)):
        with pytest.raises(ib.NotSeparableError, match="not linearly separable") as info:
            est.fit(X_bad, y_same)
        alpha = info.value.alpha
        assert alpha.min() >= 0 and alpha.sum() == pytest.approx(1.0)
        assert not hasattr(est, "coef_")  # nothing half-fitted
    X_dup = np.vstack([X, X[:1]])  # the same point with both labels: no kernel separates it
    y_dup = np.append(y, "no" if y[0] == "yes" else "yes")
    for est in (HardMarginKernelSVC(), NTKClassifier(_small_net, random_state=0)):
        with pytest.raises(ib.NotSeparableError, match="not separable") as info:
            est.fit(X_dup, y_dup)
        assert info.value.certificate.min() >= 0
    with pytest.raises(ib.InfeasibleError, match="no h interpolates"):
        MinNormKernelRegressor().fit(X_dup, np.append(np.ones(len(y)), -1.0))


def _flip(label: str) -> str:
    return "no" if label == "yes" else "yes"


@pytest.mark.parametrize(
    "est",
    [L1MaxMarginClassifier(), HardMarginKernelSVC(), NTKClassifier(_small_net, random_state=0),
     MinNormKernelRegressor()],
    ids=lambda e: type(e).__name__,
)  # fmt: skip
def test_a_failed_refit_leaves_the_estimator_unfitted_not_mixed(est: Any) -> None:
    # A researcher looping over data sets with try/except must not predict with the previous
    # fit's coefficients under the new fit's classes_ or n_features_in_.
    X, y = _separable()
    X_dup = np.vstack([X, X[:1]])[:, :4]  # one point twice, with both labels / targets
    if isinstance(est, MinNormKernelRegressor):
        est.fit(X, _pm(y))
        with pytest.raises(ib.InfeasibleError):
            est.fit(X_dup, np.append(np.ones(len(y)), -1.0))
    else:
        est.fit(X, y)
        with pytest.raises(ib.NotSeparableError):
            est.fit(X_dup, np.append(y, _flip(y[0])))
    assert [k for k in vars(est) if k.endswith("_")] == []
    with pytest.raises(NotFittedError):
        est.predict(X)


def test_fitted_estimators_keep_no_view_of_the_callers_arrays() -> None:
    X, y = _separable()
    X_test = np.random.default_rng(1).standard_normal((10, X.shape[1]))
    t = X[:, 0] + np.sin(X[:, 1])
    svc, reg = HardMarginKernelSVC().fit(X, y), MinNormKernelRegressor().fit(X, t)
    before = svc.decision_function(X_test), reg.predict(X_test)
    X[:] = 0.0  # the caller reuses its buffer
    np.testing.assert_array_equal(svc.decision_function(X_test), before[0])
    np.testing.assert_array_equal(reg.predict(X_test), before[1])
    svc.set_params(kernel="precomputed").fit(rbf_kernel(X_test, X_test), y[:10])
    assert not hasattr(svc, "X_fit_")  # nothing stale from the rbf fit


def test_torch_tensors_and_lists_are_accepted_like_arrays() -> None:
    X, y = _separable()
    ref = L2MaxMarginClassifier().fit(X, y)
    for Xin, yin in ((torch.from_numpy(X), y), (X.tolist(), y.tolist()),
                     (X.astype(np.float32), y)):  # fmt: skip
        clf = L2MaxMarginClassifier().fit(Xin, yin)
        atol = ATOL if not isinstance(Xin, np.ndarray) else 1e-6
        np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=0, atol=atol)


# ------------------------------------------------------------------ Pipeline, GridSearchCV, clone


def _sparse_task(n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    return X, np.sign(X[:, 0] + X[:, 1] - X[:, 2])


def test_pipeline_standard_scaler_then_l1_equals_the_two_steps_by_hand() -> None:
    X, y = _sparse_task(64, 40, 0)
    X_test, y_test = _sparse_task(500, 40, 1)
    pipe = make_pipeline(StandardScaler(), L1MaxMarginClassifier()).fit(X, y)
    scaler = StandardScaler().fit(X)
    res = ib.l1_max_margin(scaler.transform(X), y)
    np.testing.assert_allclose(pipe[-1].coef_[0], res.w, rtol=0, atol=ATOL)
    np.testing.assert_allclose(pipe.decision_function(X_test),
                               scaler.transform(X_test) @ res.w, rtol=0, atol=ATOL)  # fmt: skip
    assert pipe.score(X_test, y_test) > 0.9


def test_grid_search_over_p_prefers_l1_on_a_sparse_target() -> None:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((80, 60))
    y = np.sign(X[:, 0] + X[:, 1] - X[:, 2])  # 3-sparse: the l1 bias generalizes best
    search = GridSearchCV(LpMaxMarginClassifier(), {"p": [1.0, 1.5, 2.0]}, cv=4).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"p": 1.0} and scores[0] > scores[2]
    assert isinstance(search.best_estimator_.result_, ib.MaxMarginResult)
    assert search.best_estimator_.result_.p == 1.0


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_clone_and_get_params_round_trip(est: Any) -> None:
    params = est.get_params()
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    assert type(est)(**params).get_params() == params
    X, y = _separable(n=20, d=3)
    target = _pm(y) if isinstance(est, MinNormKernelRegressor) else y
    fitted = clone(est).fit(X, target)
    assert not hasattr(clone(fitted), "result_")
    key = next(iter(params))
    assert clone(est).set_params(**{key: params[key]}).get_params() == params


@pytest.mark.parametrize("est", _estimators(), ids=lambda e: type(e).__name__)
def test_unfitted_estimators_say_so(est: Any) -> None:
    with pytest.raises(NotFittedError):
        est.predict(np.zeros((2, 3)))


# ------------------------------------------------------------------ bad input names the argument


def _fitted(est: Any) -> Any:
    X, y = _separable(n=20, d=3)
    return est.fit(X, _pm(y) if isinstance(est, MinNormKernelRegressor) else y)


X3, Y3 = _separable(n=20, d=3)

BAD = [
    # (estimator, method, args, error, regex)
    (L1MaxMarginClassifier(), "fit", (X3[:, 0], Y3), ARG,
     r"'X' argument of L1MaxMarginClassifier\.fit.*Reshape your data"),
    (L2MaxMarginClassifier(), "fit", (np.where(X3 > 1, np.nan, X3), Y3), ARG,
     r"'X' argument of L2MaxMarginClassifier\.fit.*contains NaN"),
    (L2MaxMarginClassifier(), "fit", (X3, Y3[:-1]), ARG,
     r"'y' argument of L2MaxMarginClassifier\.fit must be of length 20.*length 19"),
    (L2MaxMarginClassifier(), "fit", (X3, None), ARG,
     r"'y' argument of L2MaxMarginClassifier\.fit.*requires y to be passed"),
    (L1MaxMarginClassifier(), "fit", (X3, X3[:, 0]), ARG,
     r"'y' argument of L1MaxMarginClassifier\.fit.*Unknown label type: continuous"),
    (L1MaxMarginClassifier(), "fit", (X3.astype(complex), Y3), ARG,
     r"'X' argument of L1MaxMarginClassifier\.fit.*Complex data not supported"),
    (L1MaxMarginClassifier(), "fit", (np.array([[{"a": 1}] * 3] * 20), Y3), TYP,
     r"'X' argument of L1MaxMarginClassifier\.fit.*argument must be"),
    (L1MaxMarginClassifier(), "fit", (scipy.sparse.csr_matrix(X3), Y3), TYP,
     r"'X' argument of L1MaxMarginClassifier\.fit.*dense data is required"),
    (L1MaxMarginClassifier(tol=-1.0), "fit", (X3, Y3), ARG, r"'tol' argument of l1_max_margin"),
    (LpMaxMarginClassifier(p=0.5), "fit", (X3, Y3), ARG, r"'p' argument of lp_max_margin"),
    (L1MaxMarginClassifier(solver="simplex"), "fit", (X3, Y3), ARG,
     r"'solver' argument of l1_max_margin"),
    (HardMarginKernelSVC(kernel="sigmoid"), "fit", (X3, Y3), ARG,
     r"'kernel' argument of HardMarginKernelSVC\.fit.*not positive semidefinite"),
    (HardMarginKernelSVC(kernel=3), "fit", (X3, Y3), TYP,
     r"'kernel' argument of HardMarginKernelSVC\.fit"),
    (HardMarginKernelSVC(gamma=-1.0), "fit", (X3, Y3), ARG,
     r"'gamma' argument of HardMarginKernelSVC\.fit"),
    (HardMarginKernelSVC(gamma="big"), "fit", (X3, Y3), ARG,
     r"'gamma' argument of HardMarginKernelSVC\.fit must be 'scale', 'auto'"),
    (HardMarginKernelSVC(kernel="poly", degree=0), "fit", (X3, Y3), ARG,
     r"'degree' argument of HardMarginKernelSVC\.fit"),
    (MinNormKernelRegressor(kernel="poly", coef0=-1.0), "fit", (X3, _pm(Y3)), ARG,
     r"'coef0' argument of MinNormKernelRegressor\.fit"),
    (HardMarginKernelSVC(kernel="precomputed"), "fit", (X3, Y3), ARG,
     r"'X' argument of HardMarginKernelSVC\.fit must be a square .*shape \(20, 3\)"),
    (HardMarginKernelSVC(kernel="precomputed"), "fit", (-np.eye(20), Y3), ARG,
     r"'X' argument of HardMarginKernelSVC\.fit must be a kernel matrix symmetric positive "
     r"semidefinite.*'K' argument of kernel_svm"),
    (MinNormKernelRegressor(kernel="precomputed"), "fit", (X3 @ X3.T - 5 * np.eye(20),
     _pm(Y3)), ARG, r"'X' argument of MinNormKernelRegressor\.fit"),
    (HardMarginKernelSVC(kernel=lambda A, B: A @ B.T[:, :2]), "fit", (X3, Y3), ARG,
     r"'kernel' argument of HardMarginKernelSVC\.fit must be a callable returning the "
     r"\(20, 20\) kernel matrix.*shape \(20, 2\)"),
    (HardMarginKernelSVC(kernel=lambda A, B: -(A @ B.T)), "fit", (X3, Y3), ARG,
     r"'kernel' argument of HardMarginKernelSVC\.fit must be a kernel whose matrix"),
    (MinNormKernelRegressor(), "fit", (X3, np.full(20, np.inf)), ARG,
     r"'y' argument of MinNormKernelRegressor\.fit.*infinity"),
    (MinNormKernelRegressor(), "fit", (X3, np.ones((20, 2, 2))), ARG,
     r"'y' argument of MinNormKernelRegressor\.fit"),
    (NTKClassifier(model_factory="mlp"), "fit", (X3, Y3), TYP,
     r"'model_factory' argument of NTKClassifier\.fit must be a callable"),
    (NTKClassifier(model_factory=lambda d, s: "net"), "fit", (X3, Y3), TYP,
     r"'model_factory' argument of NTKClassifier\.fit .*returned this"),
    (NTKClassifier(_small_net, random_state=-3), "fit", (X3, Y3), ARG,
     r"'random_state' argument of NTKClassifier\.fit"),
    (NTKClassifier(_small_net, random_state="seed"), "fit", (X3, Y3), ARG,
     r"'random_state' argument of NTKClassifier\.fit"),
]  # fmt: skip


@pytest.mark.parametrize(("est", "method", "args", "error", "match"), BAD,
                         ids=[f"{type(r[0]).__name__}-{i}" for i, r in enumerate(BAD)])
def test_bad_input_names_the_argument(est: Any, method: str, args: tuple, error: type,
                                      match: str) -> None:  # fmt: skip
    with pytest.raises(error, match=match):
        getattr(est, method)(*args)


@pytest.mark.parametrize(
    ("est", "method"),
    [(e, m) for e in _estimators() for m in ("predict", "decision_function") if hasattr(e, m)],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_wrong_number_of_features_after_fit_names_X(est: Any, method: str) -> None:
    fitted = _fitted(clone(est))
    name = type(est).__name__
    with pytest.raises(ARG, match=rf"'X' argument of {name}\.{method}.*X has 2 features, but "
                       rf"{name} is expecting 3 features"):  # fmt: skip
        getattr(fitted, method)(X3[:, :2])
    with pytest.raises(ARG, match=rf"'X' argument of {name}\.{method}.*Reshape your data"):
        getattr(fitted, method)(X3[0])
