"""Choose the implicit bias by cross-validation: GridSearchCV over LpMaxMarginClassifier(p).

A depth-D diagonal linear network trained on separable data reaches an ℓp max-margin
classifier, between the kernel regime (p = 2) and the rich regime (p → 1) (THEORY §4). Which
bias generalizes depends on the target: on a 3-sparse one with n ≈ d, the ℓ1 solution finds the
support and the ℓ2 one does not. This script puts the ℓp max-margin classifier of
:mod:`implicitbias.sklearn` in scikit-learn's ``GridSearchCV`` over ``p`` and prints the
cross-validated accuracy of each ``p``, the chosen one and its test accuracy.

Run ``python examples/grid_search_lp.py --quick`` (a few seconds; scikit-learn is needed:
``pip install "implicitbias[sklearn]"``). Exits with status 1 when the search does not choose
``p = 1``.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from sklearn.model_selection import GridSearchCV

from implicitbias.sklearn import LpMaxMarginClassifier


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="d = 60 instead of 200")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    n, d = 80, (60 if args.quick else 200)
    rng = np.random.default_rng(0)

    def sample(m: int) -> tuple[np.ndarray, np.ndarray]:
        X = rng.standard_normal((m, d))  # y = sign(x_0 + x_1 - x_2): a 3-sparse target
        return X, np.where(X[:, 0] + X[:, 1] - X[:, 2] > 0, "pos", "neg")

    X, y = sample(n)
    X_test, y_test = sample(10_000)
    print(f"3-sparse target, d = {d}, n = {n} training points, 10000 test points")

    grid = {"p": [1.0, 1.25, 1.5, 2.0, 3.0]}
    search = GridSearchCV(LpMaxMarginClassifier(), grid, cv=4).fit(X, y)
    for p, score in zip(grid["p"], search.cv_results_["mean_test_score"]):
        print(f"p = {p:g}: cv accuracy = {score:.3f}")
    best = search.best_estimator_
    res = best.result_
    print(f"best p = {search.best_params_['p']:g}")
    print(
        f"best: margin = {best.margin_:.4g}, support vectors = {best.support_.size}, "
        f"nonzero weights = {res.active_features.size} of {d}, relative gap = "
        f"{res.relative_gap:.1e}, {res.solver}"
    )
    print(f"test accuracy (best p) = {search.score(X_test, y_test):.4f}")
    l2 = LpMaxMarginClassifier(p=2.0).fit(X, y)
    print(f"test accuracy (p = 2) = {l2.score(X_test, y_test):.4f}")
    print(f"wall time = {time.perf_counter() - start:.1f} s")
    if search.best_params_["p"] != 1.0:
        print("FAILED: cross-validation did not choose the l1 (rich-regime) bias")
        return 1
    print("OK: cross-validation chooses the rich-regime (l1) bias on a sparse target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
