"""Bad-input battery of ``implicitbias.kernel_regime`` (issue 8): kernel_svm,
kernel_regression, multiclass_kernel_svm, empirical_ntk, ntk_predictor and NTKPredictor.

Each row is ``case(id, call, exception, match)``, described by ``conftest.Battery``; the test id
is ``<entry point>-<misuse>``. The shared tiny inputs and toy modules live in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias as ib
from conftest import (
    ARG,
    DUP_X,
    DUP_Y,
    F64,
    K4,
    NONFINITE,
    TYP,
    Y01,
    Battery,
    Xt,
    arg,
    check_bad_input,
    mlp,
    predictor,
    sym_mlp,
    with_inf,
    with_nan,
    y4,
    yt,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

# --- kernel_svm -------------------------------------------------------------------------
f = "kernel_svm"
case(f"{f}-y01", lambda: ib.kernel_svm(K4(), (y4() + 1) / 2), ARG, arg(f, "y") + ".*" + Y01)
case(f"{f}-y-pm2", lambda: ib.kernel_svm(K4(), 2 * y4()), ARG, arg(f, "y") + r".*\[-2\.0, 2\.0\]")
case(f"{f}-y-bool", lambda: ib.kernel_svm(K4(), y4() > 0), TYP, arg(f, "y") + ".*dtype bool")
case(f"{f}-y-length", lambda: ib.kernel_svm(K4(), y4()[:3]), ARG, arg(f, "y") + ".*got length 3")
case(f"{f}-y-nan", lambda: ib.kernel_svm(K4(), with_nan(y4())), ARG, arg(f, "y") + ".*" + NONFINITE)
case(
    f"{f}-y-matrix", lambda: ib.kernel_svm(K4(), np.ones((4, 2))), ARG, arg(f, "y") + r".*\(4, 2\)"
)
case(f"{f}-K-nan", lambda: ib.kernel_svm(with_nan(K4()), y4()), ARG, arg(f, "K") + ".*" + NONFINITE)
case(f"{f}-K-inf", lambda: ib.kernel_svm(with_inf(K4()), y4()), ARG, arg(f, "K") + ".*" + NONFINITE)
case(
    f"{f}-K-nonsquare",
    lambda: ib.kernel_svm(K4()[:3], y4()),
    ARG,
    arg(f, "K") + r".*square.*\(3, 4\)",
)
case(
    f"{f}-K-asymmetric",
    lambda: ib.kernel_svm(K4() + np.triu(np.ones((4, 4)), 1), y4()),
    ARG,
    arg(f, "K") + ".*symmetric.*max \\|K - K\\^T\\| = 1",
)
case(
    f"{f}-K-empty",
    lambda: ib.kernel_svm(np.zeros((0, 0)), np.zeros(0)),
    ARG,
    arg(f, "K") + r".*non-empty.*\(0, 0\)",
)
case(
    f"{f}-K-1d",
    lambda: ib.kernel_svm(np.ones(4), y4()),
    ARG,
    arg(f, "K") + r".*2-dimensional.*\(4,\)",
)
case(f"{f}-K-str", lambda: ib.kernel_svm("K", y4()), TYP, arg(f, "K") + ".*'K' \\(str\\)")
case(f"{f}-K-None", lambda: ib.kernel_svm(None, y4()), TYP, arg(f, "K") + ".*None")
case(
    f"{f}-K-complex",
    lambda: ib.kernel_svm(K4().astype(complex), y4()),
    TYP,
    arg(f, "K") + ".*complex",
)
case(
    f"{f}-K-negative-diagonal",
    lambda: ib.kernel_svm(-K4(), y4()),
    ARG,
    arg(f, "K") + ".*positive semidefinite",
)
case(
    f"{f}-K-zero-not-separable",
    lambda: ib.kernel_svm(np.zeros((4, 4)), y4()),
    ib.NotSeparableError,
    "not separable",
)
case(
    f"{f}-duplicate-opposite-not-separable",
    lambda: ib.kernel_svm(DUP_X @ DUP_X.T, DUP_Y),
    ib.NotSeparableError,
    "kernel_svm: the data are not separable",
)
case(
    f"{f}-collinear-not-separable",
    lambda: ib.kernel_svm(np.outer([1.0, 2, 3], [1.0, 2, 3]), np.array([1.0, -1, 1])),
    ib.NotSeparableError,
    "not separable",
)
case(
    f"{f}-solver",
    lambda: ib.kernel_svm(K4(), y4(), solver="smo"),
    ARG,
    arg(f, "solver") + ".*'smo'",
)
case(
    f"{f}-cvxpy_formulation",
    lambda: ib.kernel_svm(K4(), y4(), solver="cvxpy", cvxpy_formulation="zz"),
    ARG,
    arg(f, "cvxpy_formulation") + ".*'zz'",
)
case(f"{f}-tol-negative", lambda: ib.kernel_svm(K4(), y4(), tol=-1.0), ARG, arg(f, "tol") + ".*-1")
case(
    f"{f}-tol-nan",
    lambda: ib.kernel_svm(K4(), y4(), tol=float("nan")),
    ARG,
    arg(f, "tol") + ".*nan",
)
case(
    f"{f}-fallback-not-bool",
    lambda: ib.kernel_svm(K4(), y4(), fallback="yes"),
    TYP,
    arg(f, "fallback"),
)
case(
    f"{f}-cvxpy_solver-unknown",
    lambda: ib.kernel_svm(K4(), y4(), solver="cvxpy", cvxpy_solver="NOPE"),
    ARG,
    arg(f, "cvxpy_solver"),
)
case(
    f"{f}-K-indefinite",
    lambda: ib.kernel_svm(np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([1.0, -1.0])),
    ARG,
    arg(f, "K") + ".*positive semidefinite",
)

# --- kernel_regression ------------------------------------------------------------------
f = "kernel_regression"
case(
    f"{f}-y-length",
    lambda: ib.kernel_regression(K4(), y4()[:3]),
    ARG,
    arg(f, "y") + r".*length 4.*\(3,\)",
)
case(
    f"{f}-y-nan",
    lambda: ib.kernel_regression(K4(), with_nan(y4())),
    ARG,
    arg(f, "y") + ".*" + NONFINITE,
)
case(f"{f}-y-3d", lambda: ib.kernel_regression(K4(), np.ones((4, 1, 1))), ARG, arg(f, "y"))
case(
    f"{f}-K-nan",
    lambda: ib.kernel_regression(with_nan(K4()), y4()),
    ARG,
    arg(f, "K") + ".*" + NONFINITE,
)
case(
    f"{f}-K-nonsquare", lambda: ib.kernel_regression(K4()[:3], y4()), ARG, arg(f, "K") + ".*square"
)
case(
    f"{f}-K-asymmetric",
    lambda: ib.kernel_regression(K4() + np.triu(np.ones((4, 4)), 1), y4()),
    ARG,
    arg(f, "K") + ".*symmetric",
)
case(
    f"{f}-K-empty",
    lambda: ib.kernel_regression(np.zeros((0, 0)), np.zeros(0)),
    ARG,
    arg(f, "K") + ".*non-empty",
)
case(f"{f}-K-str", lambda: ib.kernel_regression("K", y4()), TYP, arg(f, "K"))
case(
    f"{f}-rtol-negative",
    lambda: ib.kernel_regression(K4(), y4(), rtol=-1.0),
    ARG,
    arg(f, "rtol") + ".*-1",
)
case(
    f"{f}-duplicate-inputs-infeasible",
    lambda: ib.kernel_regression(DUP_X @ DUP_X.T, DUP_Y),
    ib.InfeasibleError,
    r"kernel_regression: y is not in the range.*rank 1 of 2",
)
case(
    f"{f}-K-negative-definite",
    lambda: ib.kernel_regression(-K4(), y4()),
    ARG,
    arg(f, "K") + ".*positive semidefinite",
)
case(
    f"{f}-K-indefinite",
    lambda: ib.kernel_regression(np.array([[1.0, 2.0], [2.0, 1.0]]), np.array([1.0, 1.0])),
    ARG,
    arg(f, "K") + ".*positive semidefinite",
)

# --- multiclass_kernel_svm --------------------------------------------------------------
f = "multiclass_kernel_svm"


def Kmc() -> np.ndarray:
    return np.kron(K4(), np.eye(3))


ymc = np.array([0, 1, 2, 0])
case(
    f"{f}-y-negative",
    lambda: ib.multiclass_kernel_svm(Kmc(), np.array([0, 1, -1, 0]), n_classes=3),
    ARG,
    arg(f, "y") + r".*range \[-1, 1\]",
)
case(
    f"{f}-y-too-large",
    lambda: ib.multiclass_kernel_svm(Kmc(), np.array([0, 1, 5, 0]), n_classes=3),
    ARG,
    arg(f, "y") + r".*\{0, \.\.\., 2\}.*\[0, 5\]",
)
case(
    f"{f}-y-fractional",
    lambda: ib.multiclass_kernel_svm(Kmc(), np.array([0, 1, 1.5, 0]), n_classes=3),
    ARG,
    arg(f, "y") + ".*integer class labels",
)
case(
    f"{f}-y-empty",
    lambda: ib.multiclass_kernel_svm(Kmc(), np.array([], dtype=int), n_classes=3),
    ARG,
    arg(f, "y") + ".*non-empty",
)
case(
    f"{f}-y-length",
    lambda: ib.multiclass_kernel_svm(Kmc(), ymc[:3], n_classes=3),
    ARG,
    arg(f, "K_full") + r".*\(9, 9\).*n = 3, C = 3.*\(12, 12\)",
)
case(
    f"{f}-K-nan",
    lambda: ib.multiclass_kernel_svm(np.full((12, 12), np.nan), ymc, n_classes=3),
    ARG,
    arg(f, "K_full") + ".*" + NONFINITE,
)
case(
    f"{f}-K-shape",
    lambda: ib.multiclass_kernel_svm(Kmc()[:5, :5], ymc, n_classes=3),
    ARG,
    arg(f, "K_full") + r".*\(12, 12\).*\(5, 5\)",
)
case(
    f"{f}-K-4d",
    lambda: ib.multiclass_kernel_svm(Kmc().reshape(4, 3, 4, 3), ymc),
    ARG,
    arg(f, "K_full") + ".*2-dimensional",
)
case(
    f"{f}-n_classes-1",
    lambda: ib.multiclass_kernel_svm(Kmc(), ymc, n_classes=1),
    ARG,
    arg(f, "n_classes") + ".*>= 2; got 1",
)
case(
    f"{f}-solver",
    lambda: ib.multiclass_kernel_svm(Kmc(), ymc, n_classes=3, solver="x"),
    ARG,
    arg(f, "solver"),
)
case(
    f"{f}-not-separable",
    lambda: ib.multiclass_kernel_svm(np.ones((6, 6)), np.array([0, 1, 0]), n_classes=2),
    ib.NotSeparableError,
    "multiclass_kernel_svm: the data are not separable",
)


# --- empirical_ntk ----------------------------------------------------------------------
f = "empirical_ntk"
case(
    f"{f}-X2-width",
    lambda: ib.empirical_ntk(mlp(), Xt(), torch.ones(2, 4, dtype=F64)),
    ARG,
    arg(f, "X2") + r".*\(n2, 3\).*shape \(2, 4\)",
)
case(
    f"{f}-X1-numpy",
    lambda: ib.empirical_ntk(mlp(), Xt().numpy()),
    TYP,
    arg(f, "X1") + ".*torch.Tensor",
)
case(
    f"{f}-X1-nan",
    lambda: ib.empirical_ntk(mlp(), Xt() * float("nan")),
    ARG,
    arg(f, "X1") + ".*finite",
)
case(f"{f}-X1-empty", lambda: ib.empirical_ntk(mlp(), Xt()[:0]), ARG, arg(f, "X1") + ".*non-empty")
case(
    f"{f}-X1-scalar",
    lambda: ib.empirical_ntk(mlp(), torch.tensor(1.0, dtype=F64)),
    ARG,
    arg(f, "X1") + r".*shape \(\)",
)
case(
    f"{f}-X1-vector",
    lambda: ib.empirical_ntk(mlp(), torch.ones(3, dtype=F64)),
    ARG,
    arg(f, "X1") + r".*shape \(3,\)",
)
case(
    f"{f}-X1-int",
    lambda: ib.empirical_ntk(mlp(), torch.ones(2, 3, dtype=torch.int64)),
    ARG,
    arg(f, "X1") + ".*float tensor.*int64",
)
case(
    f"{f}-X2-empty",
    lambda: ib.empirical_ntk(mlp(), Xt(), Xt()[:0]),
    ARG,
    arg(f, "X2") + ".*non-empty",
)
case(
    f"{f}-X2-nan",
    lambda: ib.empirical_ntk(mlp(), Xt(), Xt() * float("nan")),
    ARG,
    arg(f, "X2") + ".*finite",
)
case(
    f"{f}-method",
    lambda: ib.empirical_ntk(mlp(), Xt(), method="x"),
    ARG,
    arg(f, "method") + ".*'x'",
)
case(
    f"{f}-chunk_size-0",
    lambda: ib.empirical_ntk(mlp(), Xt(), chunk_size=0),
    ARG,
    arg(f, "chunk_size") + ".*got 0",
)
case(
    f"{f}-chunk_size-float",
    lambda: ib.empirical_ntk(mlp(), Xt(), chunk_size=2.5),
    TYP,
    arg(f, "chunk_size"),
)
case(f"{f}-trace-str", lambda: ib.empirical_ntk(mlp(), Xt(), trace="yes"), TYP, arg(f, "trace"))
case(f"{f}-not-a-module", lambda: ib.empirical_ntk("m", Xt()), TYP, arg(f, "model"))

# --- ntk_predictor / NTKPredictor -------------------------------------------------------
f = "ntk_predictor"
case(
    f"{f}-y01",
    lambda: ib.ntk_predictor(sym_mlp(), Xt(), (yt() + 1) / 2),
    ARG,
    arg(f, "y") + ".*" + Y01,
)
case(
    f"{f}-y-length",
    lambda: ib.ntk_predictor(sym_mlp(), Xt(), yt()[:3]),
    ARG,
    arg(f, "y") + ".*length 5.*got length 3",
)
case(
    f"{f}-y-nan",
    lambda: ib.ntk_predictor(sym_mlp(), Xt(), yt() * float("nan")),
    ARG,
    arg(f, "y") + ".*finite",
)
case(f"{f}-task", lambda: ib.ntk_predictor(sym_mlp(), Xt(), yt(), task="x"), ARG, arg(f, "task"))
case(
    f"{f}-X-nan",
    lambda: ib.ntk_predictor(sym_mlp(), Xt() * float("nan"), yt()),
    ARG,
    arg(f, "X") + ".*finite",
)
case(f"{f}-X-numpy", lambda: ib.ntk_predictor(sym_mlp(), Xt().numpy(), yt()), TYP, arg(f, "X"))
case(f"{f}-model", lambda: ib.ntk_predictor("m", Xt(), yt()), TYP, arg(f, "model"))
case(
    f"{f}-solver_options-type",
    lambda: ib.ntk_predictor(sym_mlp(), Xt(), yt(), solver_options=3),
    TYP,
    arg(f, "solver_options"),
)
case(
    f"{f}-duplicate-opposite-not-separable",
    lambda: ib.ntk_predictor(
        sym_mlp(), torch.cat([Xt()[:1], Xt()[:1]]), torch.tensor([1.0, -1.0], dtype=F64)
    ),
    ib.NotSeparableError,
    "not separable",
)
case(
    f"{f}-duplicate-regression-infeasible",
    lambda: ib.ntk_predictor(
        sym_mlp(),
        torch.cat([Xt()[:1], Xt()[:1]]),
        torch.tensor([1.0, -1.0], dtype=F64),
        task="regression",
    ),
    ib.InfeasibleError,
    "not in the range",
)
case(
    f"{f}-solver_options-unknown-key",
    lambda: ib.ntk_predictor(sym_mlp(), Xt(), yt(), solver_options={"nope": 1}),
    ARG,
    arg(f, "solver_options") + ".*nope",
)
f = "NTKPredictor.decision_function"
case(
    f"{f}-X_new-width",
    lambda: predictor().predict(torch.ones(2, 4, dtype=F64)),
    ARG,
    arg(f, "X_new") + r".*\(m, 3\)",
)
case(
    f"{f}-X_new-nan",
    lambda: predictor().predict(Xt() * float("nan")),
    ARG,
    arg(f, "X_new") + ".*finite",
)
case(f"{f}-X_new-numpy", lambda: predictor().predict(Xt().numpy()), TYP, arg(f, "X_new"))
case(
    f"{f}-X_new-empty",
    lambda: predictor().decision_function(Xt()[:0]),
    ARG,
    arg(f, "X_new") + ".*non-empty",
)
case(
    f"{f}-normalized-str",
    lambda: predictor().decision_function(Xt(), normalized="yes"),
    TYP,
    arg(f, "normalized"),
)


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_kernel_regime(
    call: Callable[[], Any], exc: type[BaseException], match: str
) -> None:
    check_bad_input(call, exc, match)
