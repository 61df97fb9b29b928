"""Bad-input battery: every public entry point with its obvious misuses (issue 8).

Each case is one row ``case(id, call, exception, match)``: ``call`` runs the misuse on tiny
inputs, ``exception`` is the class from the library's hierarchy that must come out, and
``match`` is a regex over the message that names the argument (and, where it is cheap to pin,
what was received). Rows are grouped by entry point; the test id is ``<entry point>-<misuse>``.
Rows marked ``bug(...)`` are known library bugs (``xfail(strict=True)``) that the lead fixes.

The number of cases is ``len(CASES)`` (plus the few separate tests at the bottom); it is
asserted by ``test_battery_size`` so that it stays visible.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import implicitbias as ib
from implicitbias import experiments as ex
from implicitbias.cli import main as cli_main
from implicitbias.experiments import data as exdata


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny problems: intra-op threads only add synchronization on a loaded machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


ARG = ib.InvalidArgumentError
TYP = ib.InvalidArgumentTypeError
F64 = torch.float64


def arg(func: str, name: str) -> str:
    """Regex prefix of the house message: "The 'name' argument of func"."""
    return rf"The '{name}' argument of {func}\b"


# ------------------------------------------------------------------------------- tiny data
def X4() -> np.ndarray:
    return np.array([[1.0, 0.5], [0.2, 1.0], [-1.0, 0.0], [0.0, -1.0]])


def y4() -> np.ndarray:
    return np.array([1.0, 1.0, -1.0, -1.0])


def K4() -> np.ndarray:
    X = X4()
    return X @ X.T + np.eye(4)


def Xu() -> np.ndarray:
    """Under-determined (2 x 4, full row rank): interpolation is feasible."""
    return np.array([[1.0, 0.0, 2.0, -1.0], [0.0, 1.0, 1.0, 3.0]])


def yu() -> np.ndarray:
    return np.array([1.0, -2.0])


def with_nan(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[1] = np.nan
    return a


def with_inf(a: np.ndarray) -> np.ndarray:
    a = np.array(a, dtype=float)
    a.flat[0] = np.inf
    return a


DUP_X = np.array([[1.0, 0.0], [1.0, 0.0]])  # the same input twice...
DUP_Y = np.array([1.0, -1.0])  # ...with opposite labels: never separable


def Xt() -> torch.Tensor:
    return torch.tensor(
        [[1.0, 0.5, -0.3], [0.2, 1.0, 0.4], [-1.0, 0.1, 0.2], [0.3, -1.0, 0.5], [0.7, 0.7, -1.0]],
        dtype=F64,
    )


def yt() -> torch.Tensor:
    return torch.tensor([1.0, -1.0, 1.0, -1.0, 1.0], dtype=F64)


def mlp(**kw: Any) -> ib.HomogeneousMLP:
    return ib.HomogeneousMLP(3, [4], seed=0, dtype=F64, **kw)


def sym_mlp() -> ib.Symmetrized:
    return ib.symmetrize(ib.HomogeneousMLP(3, [6], seed=0, dtype=F64))


def diag3() -> ib.DiagonalNet:
    return ib.DiagonalNet(3, dtype=F64)


def separating_diag() -> ib.DiagonalNet:
    """A depth-2 diagonal net realizing the ℓ1 max-margin w of (Xt, yt): it separates them."""
    w = ib.l1_max_margin(Xt().numpy(), yt().numpy()).w
    return ib.diagonal_net_from_w(w)


class BiasedNet(nn.Module):
    """ReLU net with a bias on the *second* layer: not homogeneous."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(3, 4, dtype=F64)
        self.l2 = nn.Linear(4, 1, dtype=F64)
        with torch.no_grad():
            self.l2.bias.fill_(0.7)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.relu(self.l1(x))).squeeze(-1)


class TanhNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1 = nn.Linear(3, 4, bias=False, dtype=F64)
        self.l2 = nn.Linear(4, 1, bias=False, dtype=F64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l2(torch.tanh(self.l1(x))).squeeze(-1)


class NoParams(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.sum(1)


class TupleOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1, bias=False, dtype=F64)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor]:
        return (self.lin(x),)


def plain_relu_seq() -> nn.Sequential:
    """A bias-free ReLU net, 2-homogeneous, not wrapped in ib.Homogeneous."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False), nn.Flatten(0)
    ).double()


def zero_param_linear() -> nn.Module:
    lin = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(lin.weight)
    return lin


def predictor() -> ib.NTKPredictor:
    return ib.ntk_predictor(sym_mlp(), Xt(), yt())


def train_kw(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(weight_decay=0.1, lr=0.1, steps=4, num_evals=2)
    base.update(kw)
    return base


# ----------------------------------------------------------------------------- the table
CASES: list[Any] = []


def case(
    cid: str,
    call: Callable[[], Any],
    exc: type[BaseException],
    match: str,
    *,
    bug: str | None = None,
) -> None:
    marks = [pytest.mark.xfail(strict=True, reason=f"BUG: {bug}")] if bug else []
    CASES.append(pytest.param(call, exc, match, id=cid, marks=marks))


Y01 = r"got values \[0\.0, 1\.0\] instead\. Convert \{0, 1\} labels with y = 2\*y - 1"
NONFINITE = r"must be finite \(no NaN or inf\); got .*non-finite entries"

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

# --- nnls_gram --------------------------------------------------------------------------
f = "nnls_gram"
Qg = np.array([[2.0, 1.0], [1.0, 2.0]])
bg = np.array([1.0, -1.0])
case(
    f"{f}-b-length",
    lambda: ib.nnls_gram(Qg, np.ones(3)),
    ARG,
    arg(f, "b") + ".*length 2.*got length 3",
)
case(
    f"{f}-b-nan",
    lambda: ib.nnls_gram(Qg, np.array([np.nan, 1.0])),
    ARG,
    arg(f, "b") + ".*" + NONFINITE,
)
case(
    f"{f}-Q-nan",
    lambda: ib.nnls_gram(np.full((2, 2), np.nan), bg),
    ARG,
    arg(f, "Q") + ".*" + NONFINITE,
)
case(
    f"{f}-Q-asymmetric",
    lambda: ib.nnls_gram(np.array([[2.0, 1.0], [0.0, 2.0]]), bg),
    ARG,
    arg(f, "Q") + ".*symmetric",
)
case(
    f"{f}-Q-nonsquare",
    lambda: ib.nnls_gram(np.ones((2, 3)), bg),
    ARG,
    arg(f, "Q") + r".*square.*\(2, 3\)",
)
case(
    f"{f}-Q-empty",
    lambda: ib.nnls_gram(np.zeros((0, 0)), np.zeros(0)),
    ARG,
    arg(f, "Q") + ".*non-empty",
)
case(
    f"{f}-candidates-indices",
    lambda: ib.nnls_gram(Qg, bg, candidates=[0]),
    ARG,
    arg(f, "candidates") + r".*boolean mask of shape \(2,\).*int64",
)
case(
    f"{f}-candidates-length",
    lambda: ib.nnls_gram(Qg, bg, candidates=np.array([True])),
    ARG,
    arg(f, "candidates") + r".*shape \(1,\)",
)
case(f"{f}-tol-negative", lambda: ib.nnls_gram(Qg, bg, tol=-1.0), ARG, arg(f, "tol") + ".*-1")
case(
    f"{f}-max_iter-0",
    lambda: ib.nnls_gram(Qg, bg, max_iter=0),
    ARG,
    arg(f, "max_iter") + ".*>= 1; got 0",
)
case(
    f"{f}-Q-negative-definite",
    lambda: ib.nnls_gram(-Qg, bg),
    ARG,
    arg(f, "Q") + ".*positive semidefinite",
)

# --- l1 / l2 / lp max margin ------------------------------------------------------------
MM: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {
    "l1_max_margin": (ib.l1_max_margin, {}),
    "l2_max_margin": (ib.l2_max_margin, {}),
    "lp_max_margin": (ib.lp_max_margin, {"p": 3.0}),
}
for f, (fn, kw) in MM.items():
    case(
        f"{f}-y01",
        lambda fn=fn, kw=kw: fn(X4(), (y4() + 1) / 2, **kw),
        ARG,
        arg(fn.__name__, "y") + ".*" + Y01,
    )
    case(
        f"{f}-y-pm2",
        lambda fn=fn, kw=kw: fn(X4(), 2 * y4(), **kw),
        ARG,
        arg(fn.__name__, "y") + r".*\[-2\.0, 2\.0\]",
    )
    case(
        f"{f}-y-length",
        lambda fn=fn, kw=kw: fn(X4(), y4()[:3], **kw),
        ARG,
        rf"'X' and 'y' of {f} must have the same number of rows; X has 4, y has 3",
    )
    case(
        f"{f}-y-nan",
        lambda fn=fn, kw=kw: fn(X4(), with_nan(y4()), **kw),
        ARG,
        arg(f, "y") + ".*" + NONFINITE,
    )
    case(
        f"{f}-X-nan",
        lambda fn=fn, kw=kw: fn(with_nan(X4()), y4(), **kw),
        ARG,
        arg(f, "X") + ".*" + NONFINITE,
    )
    case(
        f"{f}-X-inf",
        lambda fn=fn, kw=kw: fn(with_inf(X4()), y4(), **kw),
        ARG,
        arg(f, "X") + ".*" + NONFINITE,
    )
    case(
        f"{f}-X-1d",
        lambda fn=fn, kw=kw: fn(X4()[:, 0], y4(), **kw),
        ARG,
        arg(f, "X") + r".*2-dimensional.*\(4,\)",
    )
    case(
        f"{f}-X-empty",
        lambda fn=fn, kw=kw: fn(np.zeros((0, 2)), np.zeros(0), **kw),
        ARG,
        arg(f, "X") + r".*non-empty.*\(0, 2\)",
    )
    case(
        f"{f}-X-no-features",
        lambda fn=fn, kw=kw: fn(np.zeros((4, 0)), y4(), **kw),
        ARG,
        arg(f, "X") + r".*non-empty.*\(4, 0\)",
    )
    case(f"{f}-X-str", lambda fn=fn, kw=kw: fn("X", y4(), **kw), TYP, arg(f, "X"))
    case(
        f"{f}-duplicate-opposite",
        lambda fn=fn, kw=kw: fn(DUP_X, DUP_Y, **kw),
        ib.NotSeparableError,
        f"{f}: the data are not linearly separable",
    )
    case(
        f"{f}-zero-row",
        lambda fn=fn, kw=kw: fn(np.array([[1.0, 0.0], [0.0, 0.0]]), DUP_Y, **kw),
        ib.NotSeparableError,
        "not linearly separable",
    )
    case(
        f"{f}-solver",
        lambda fn=fn, kw=kw: fn(X4(), y4(), solver="zz", **kw),
        ARG,
        arg(f, "solver") + ".*'zz'",
    )
    case(
        f"{f}-cvxpy_solver",
        lambda fn=fn, kw=kw: fn(X4(), y4(), solver="cvxpy", cvxpy_solver="NOPE", **kw),
        ARG,
        arg(f, "cvxpy_solver") + ".*'NOPE'",
    )
    case(
        f"{f}-tol-negative", lambda fn=fn, kw=kw: fn(X4(), y4(), tol=-1.0, **kw), ARG, arg(f, "tol")
    )
f = "lp_max_margin"
case(
    f"{f}-p-below-1",
    lambda: ib.lp_max_margin(X4(), y4(), p=0.5),
    ARG,
    arg(f, "p") + r".*p >= 1.*0\.5",
)
case(f"{f}-p-nan", lambda: ib.lp_max_margin(X4(), y4(), p=float("nan")), ARG, arg(f, "p") + ".*nan")
case(
    f"{f}-p-str", lambda: ib.lp_max_margin(X4(), y4(), p="2"), TYP, arg(f, "p") + ".*'2' \\(str\\)"
)
case(f"{f}-p-bool", lambda: ib.lp_max_margin(X4(), y4(), p=True), TYP, arg(f, "p"))
case(
    "l1_max_margin-max_iter-0",
    lambda: ib.l1_max_margin(X4(), y4(), max_iter=0),
    ARG,
    arg("l1_max_margin", "max_iter") + ".*got 0",
)

# --- min-norm interpolation -------------------------------------------------------------
for f, fn in {
    "min_l1_interpolation": ib.min_l1_interpolation,
    "min_l2_interpolation": ib.min_l2_interpolation,
}.items():
    case(
        f"{f}-y-length",
        lambda fn=fn: fn(Xu(), yu()[:1]),
        ARG,
        rf"'X' and 'y' of {f} must have the same number of rows; X has 2, y has 1",
    )
    case(f"{f}-y-nan", lambda fn=fn: fn(Xu(), with_nan(yu())), ARG, arg(f, "y") + ".*" + NONFINITE)
    case(
        f"{f}-y-matrix",
        lambda fn=fn: fn(Xu(), np.ones((2, 2))),
        ARG,
        arg(f, "y") + r".*1-dimensional.*\(2, 2\)",
    )
    case(f"{f}-X-nan", lambda fn=fn: fn(with_nan(Xu()), yu()), ARG, arg(f, "X") + ".*" + NONFINITE)
    case(f"{f}-X-1d", lambda fn=fn: fn(Xu()[0], yu()), ARG, arg(f, "X") + ".*2-dimensional")
    case(
        f"{f}-X-empty",
        lambda fn=fn: fn(np.zeros((0, 3)), np.zeros(0)),
        ARG,
        arg(f, "X") + ".*non-empty",
    )
    case(f"{f}-X-str", lambda fn=fn: fn("X", yu()), TYP, arg(f, "X"))
    case(f"{f}-rtol-negative", lambda fn=fn: fn(Xu(), yu(), rtol=-1.0), ARG, arg(f, "rtol"))
    case(
        f"{f}-overdetermined-infeasible",
        lambda fn=fn: fn(np.array([[1.0, 0.0], [2.0, 0.0]]), np.array([1.0, 1.0])),
        ib.InfeasibleError,
        rf"{f}: no w satisfies X w = y.*X has 2 rows and rank 1",
    )
    case(
        f"{f}-duplicate-contradicting",
        lambda fn=fn: fn(DUP_X, DUP_Y),
        ib.InfeasibleError,
        f"{f}: no w satisfies X w = y",
    )
    case(f"{f}-X-zero", lambda fn=fn: fn(np.zeros((2, 3)), yu()), ib.InfeasibleError, "rank 0")
case(
    "min_l1_interpolation-tol-negative",
    lambda: ib.min_l1_interpolation(Xu(), yu(), tol=-1.0),
    ARG,
    arg("min_l1_interpolation", "tol"),
)

# --- min_nuclear_norm_completion --------------------------------------------------------
f = "min_nuclear_norm_completion"
nuc = ib.min_nuclear_norm_completion
case(
    f"{f}-row-out-of-range",
    lambda: nuc(3, [0, 3], [0, 1], [1.0, 1.0]),
    ARG,
    arg(f, "rows") + r".*\{0, \.\.\., 2\}.*\[0, 3\]",
)
case(
    f"{f}-col-out-of-range",
    lambda: nuc(3, [0, 1], [0, 7], [1.0, 1.0]),
    ARG,
    arg(f, "cols") + r".*\[0, 7\]",
)
case(
    f"{f}-negative-index",
    lambda: nuc(3, [0, -1], [0, 1], [1.0, 1.0]),
    ARG,
    arg(f, "rows") + r".*\[-1, 0\]",
)
case(
    f"{f}-float-index",
    lambda: nuc(3, [0, 1.5], [0, 1], [1.0, 1.0]),
    TYP,
    arg(f, "rows") + ".*integer indices",
)
case(
    f"{f}-bool-index",
    lambda: nuc(3, [True], [False], [1.0]),
    TYP,
    arg(f, "rows") + ".*integer indices",
)
case(
    f"{f}-2d-index",
    lambda: nuc(3, [[0]], [[0]], [[1.0]]),
    ARG,
    arg(f, "rows") + r".*1-dimensional.*\(1, 1\)",
)
case(
    f"{f}-duplicate-contradicting",
    lambda: nuc(3, [0, 0], [1, 1], [1.0, 2.0]),
    ARG,
    arg(f, "values") + r".*consistent.*entry \(0, 1\)",
)
case(
    f"{f}-mirror-contradicting",
    lambda: nuc(3, [0, 1], [1, 0], [1.0, 2.0]),
    ARG,
    arg(f, "values") + r".*\(j, i\).*entry \(0, 1\)",
)
case(
    f"{f}-length-mismatch",
    lambda: nuc(3, [0, 1], [1], [1.0, 2.0]),
    ARG,
    arg(f, "values") + ".*rows 2, cols 1, values 2",
)
case(
    f"{f}-values-length",
    lambda: nuc(3, [0, 1], [1, 2], [1.0]),
    ARG,
    arg(f, "values") + ".*values 1",
)
case(
    f"{f}-values-nan",
    lambda: nuc(3, [0, 1], [1, 2], [1.0, np.nan]),
    ARG,
    arg(f, "values") + ".*" + NONFINITE,
)
case(
    f"{f}-values-inf",
    lambda: nuc(3, [0, 1], [1, 2], [1.0, np.inf]),
    ARG,
    arg(f, "values") + ".*" + NONFINITE,
)
case(f"{f}-empty", lambda: nuc(3, [], [], []), ARG, arg(f, "rows") + ".*non-empty")
case(f"{f}-d-0", lambda: nuc(0, [0], [0], [1.0]), ARG, arg(f, "d") + ".*>= 1; got 0")
case(f"{f}-d-float", lambda: nuc(3.0, [0], [0], [1.0]), TYP, arg(f, "d") + r".*3\.0 \(float\)")
case(
    f"{f}-d-rectangular-symmetric",
    lambda: nuc((3, 4), [0], [0], [1.0]),
    ARG,
    arg(f, "d") + r".*square.*\(3, 4\).*symmetric=False",
)
case(
    f"{f}-symmetric-not-bool",
    lambda: nuc(3, [0], [0], [1.0], symmetric="yes"),
    TYP,
    arg(f, "symmetric"),
)
case(f"{f}-solver", lambda: nuc(3, [0], [0], [1.0], solver="x"), ARG, arg(f, "solver"))
case(
    f"{f}-cvxpy_solver",
    lambda: nuc(3, [0], [0], [1.0], solver="cvxpy", cvxpy_solver="NOPE"),
    ARG,
    arg(f, "cvxpy_solver"),
)
case(f"{f}-rank-0", lambda: nuc(3, [0], [0], [1.0], rank=0), ARG, arg(f, "rank") + ".*got 0")
case(f"{f}-tol-negative", lambda: nuc(3, [0], [0], [1.0], tol=-1.0), ARG, arg(f, "tol"))
case(f"{f}-max_iter-0", lambda: nuc(3, [0], [0], [1.0], max_iter=0), ARG, arg(f, "max_iter"))

# --- realization maps -------------------------------------------------------------------
f = "diagonal_net_from_w"
case(
    f"{f}-nan",
    lambda: ib.diagonal_net_from_w(np.array([1.0, np.nan])),
    ARG,
    arg(f, "w") + ".*" + NONFINITE,
)
case(
    f"{f}-matrix",
    lambda: ib.diagonal_net_from_w(np.ones((2, 2))),
    ARG,
    arg(f, "w") + r".*1-dimensional.*\(2, 2\)",
)
case(f"{f}-empty", lambda: ib.diagonal_net_from_w(np.zeros(0)), ARG, arg(f, "w") + ".*non-empty")
case(
    f"{f}-depth-0",
    lambda: ib.diagonal_net_from_w(np.ones(2), depth=0),
    ARG,
    arg(f, "depth") + ".*got 0",
)
case(
    f"{f}-depth-float", lambda: ib.diagonal_net_from_w(np.ones(2), depth=2.0), TYP, arg(f, "depth")
)
case(
    f"{f}-dtype-int",
    lambda: ib.diagonal_net_from_w(np.ones(2), dtype=torch.int64),
    TYP,
    arg(f, "dtype") + ".*torch.int64",
)
case(
    f"{f}-dtype-str",
    lambda: ib.diagonal_net_from_w(np.ones(2), dtype="float64"),
    TYP,
    arg(f, "dtype"),
)
f = "matrix_factorization_from_W"
case(
    f"{f}-asymmetric",
    lambda: ib.matrix_factorization_from_W(np.array([[1.0, 2.0], [0.0, 1.0]])),
    ARG,
    arg(f, "W") + ".*symmetric.*= 2",
)
case(
    f"{f}-nonsquare",
    lambda: ib.matrix_factorization_from_W(np.ones((2, 3))),
    ARG,
    arg(f, "W") + r".*square.*\(2, 3\)",
)
case(
    f"{f}-nan",
    lambda: ib.matrix_factorization_from_W(np.full((2, 2), np.nan)),
    ARG,
    arg(f, "W") + ".*" + NONFINITE,
)
case(
    f"{f}-1d",
    lambda: ib.matrix_factorization_from_W(np.ones(3)),
    ARG,
    arg(f, "W") + ".*2-dimensional",
)
case(
    f"{f}-empty",
    lambda: ib.matrix_factorization_from_W(np.zeros((0, 0))),
    ARG,
    arg(f, "W") + ".*non-empty",
)
case(
    f"{f}-atol-negative",
    lambda: ib.matrix_factorization_from_W(np.eye(2), atol=-1.0),
    ARG,
    arg(f, "atol"),
)

# --- models -----------------------------------------------------------------------------
f = "DiagonalNet"
case(f"{f}-d-0", lambda: ib.DiagonalNet(0), ARG, arg(f, "d") + ".*got 0")
case(f"{f}-d-float", lambda: ib.DiagonalNet(2.5), TYP, arg(f, "d") + r".*2\.5")
case(f"{f}-depth-0", lambda: ib.DiagonalNet(3, depth=0), ARG, arg(f, "depth"))
case(f"{f}-alpha-0", lambda: ib.DiagonalNet(3, alpha=0), ARG, arg(f, "alpha") + ".*positive.*got 0")
case(f"{f}-alpha-negative", lambda: ib.DiagonalNet(3, alpha=-1.0), ARG, arg(f, "alpha") + ".*-1")
case(
    f"{f}-alpha-nan", lambda: ib.DiagonalNet(3, alpha=float("nan")), ARG, arg(f, "alpha") + ".*nan"
)
case(
    f"{f}-alpha-inf", lambda: ib.DiagonalNet(3, alpha=float("inf")), ARG, arg(f, "alpha") + ".*inf"
)
case(f"{f}-alpha_mode", lambda: ib.DiagonalNet(3, alpha_mode="x"), ARG, arg(f, "alpha_mode"))
case(
    f"{f}-dtype-int",
    lambda: ib.DiagonalNet(3, dtype=torch.int64),
    TYP,
    arg(f, "dtype"),
)
case(
    f"{f}-dtype-str",
    lambda: ib.DiagonalNet(3, dtype="float32"),
    TYP,
    arg(f, "dtype"),
)
case(
    f"{f}-forward-wrong-width",
    lambda: diag3()(torch.ones(2, 4, dtype=F64)),
    ARG,
    arg(f, "x"),
)
case(
    f"{f}-forward-mixed-dtype",
    lambda: diag3()(torch.ones(2, 3, dtype=torch.float32)),
    ARG,
    arg(f, "x"),
)
f = "HomogeneousMLP"
case(f"{f}-d_in-0", lambda: ib.HomogeneousMLP(0, [3]), ARG, arg(f, "d_in"))
case(f"{f}-width-0", lambda: ib.HomogeneousMLP(2, [0]), ARG, arg(f, "widths") + ".*got 0")
case(f"{f}-width-negative", lambda: ib.HomogeneousMLP(2, [-3]), ARG, arg(f, "widths") + ".*got -3")
case(f"{f}-widths-int", lambda: ib.HomogeneousMLP(2, 3), TYP, arg(f, "widths") + ".*sequence")
case(f"{f}-d_out-0", lambda: ib.HomogeneousMLP(2, [3], d_out=0), ARG, arg(f, "d_out"))
case(
    f"{f}-activation",
    lambda: ib.HomogeneousMLP(2, [3], activation="tanh"),
    ARG,
    arg(f, "activation") + ".*'tanh'",
)
case(
    f"{f}-forward-wrong-width",
    lambda: mlp()(torch.ones(2, 4, dtype=F64)),
    ARG,
    arg(f, "x") + r".*\(n, 3\); got \(2, 4\)",
)
case(
    f"{f}-seed-str",
    lambda: ib.HomogeneousMLP(2, [3], seed="a"),
    TYP,
    arg(f, "seed"),
)
case(
    f"{f}-forward-mixed-dtype",
    lambda: mlp()(torch.ones(2, 3, dtype=torch.float32)),
    ARG,
    arg(f, "x"),
)
case(
    "QuadraticNet-forward-mixed-dtype",
    lambda: ib.QuadraticNet(3, 4, dtype=F64)(torch.ones(2, 3, dtype=torch.float32)),
    ARG,
    arg("QuadraticNet", "x"),
)
f = "MatrixFactorization"
case(f"{f}-d-0", lambda: ib.MatrixFactorization(0), ARG, arg(f, "d"))
case(f"{f}-alpha-0", lambda: ib.MatrixFactorization(3, alpha=0), ARG, arg(f, "alpha"))
case(
    f"{f}-idx-float",
    lambda: ib.MatrixFactorization(3)(torch.tensor([[0.0, 1.0]])),
    ARG,
    arg(f, "idx") + ".*integer tensor.*float32",
)
case(
    f"{f}-idx-shape",
    lambda: ib.MatrixFactorization(3)(torch.tensor([0, 1])),
    ARG,
    arg(f, "idx") + r".*\(n, 2\).*shape \(2,\)",
)
case(
    f"{f}-idx-out-of-range",
    lambda: ib.MatrixFactorization(3)(torch.tensor([[0, 3]])),
    ARG,
    arg(f, "idx"),
)
case(
    f"{f}-idx-negative",
    lambda: ib.MatrixFactorization(3)(torch.tensor([[0, -1]])),
    ARG,
    arg(f, "idx"),
)
f = "QuadraticNet"
case(f"{f}-d-0", lambda: ib.QuadraticNet(0, 2), ARG, arg(f, "d"))
case(f"{f}-width-0", lambda: ib.QuadraticNet(3, 0), ARG, arg(f, "width"))
case(f"{f}-init", lambda: ib.QuadraticNet(3, 2, init="x"), ARG, arg(f, "init") + ".*'x'")
case(f"{f}-alpha-negative", lambda: ib.QuadraticNet(3, 2, alpha=-1.0), ARG, arg(f, "alpha"))

# --- Homogeneous / homogeneity_degree / flat_parameters ---------------------------------
f = "Homogeneous"
case(
    f"{f}-second-layer-bias",
    lambda: ib.Homogeneous(BiasedNet(), example_input=Xt()),
    ib.NotHomogeneousError,
    r"'l2' \(Linear\) has a bias after the first layer",
)
case(
    f"{f}-second-layer-bias-declared",
    lambda: ib.Homogeneous(BiasedNet(), degree=2, example_input=Xt()),
    ib.NotHomogeneousError,
    "not positively homogeneous|f\\(cθ\\) ≠ c\\^L f\\(θ\\)",
)
case(
    f"{f}-tanh",
    lambda: ib.Homogeneous(TanhNet(), example_input=Xt()),
    ib.NotHomogeneousError,
    "homogeneity_degree",
)
case(
    f"{f}-wrong-declared-degree",
    lambda: ib.Homogeneous(mlp(), degree=3, example_input=Xt()),
    ib.NotHomogeneousError,
    "declared 3-homogeneous but its measured degree is 2",
)
case(
    f"{f}-degree-unknown",
    lambda: ib.Homogeneous(TanhNet()).degree,
    ib.NotHomogeneousError,
    "degree of this model is unknown.*degree=L.*example_input=X",
)
case(
    f"{f}-no-parameters",
    lambda: ib.Homogeneous(NoParams()),
    ARG,
    arg(f, "model") + ".*trainable parameters",
)
case(
    f"{f}-not-a-module",
    lambda: ib.Homogeneous(lambda x: x),
    TYP,
    arg(f, "model") + ".*torch.nn.Module",
)
case(
    f"{f}-degree-0", lambda: ib.Homogeneous(TanhNet(), degree=0), ARG, arg(f, "degree") + ".*got 0"
)
case(
    f"{f}-degree-negative",
    lambda: ib.Homogeneous(TanhNet(), degree=-1),
    ARG,
    arg(f, "degree") + ".*got -1",
)
case(
    f"{f}-example-nan",
    lambda: ib.Homogeneous(TanhNet(), example_input=Xt() * float("nan")),
    ARG,
    "'X' argument of homogeneity_degree must be finite",
)
case(
    f"{f}-tuple-output",
    lambda: ib.Homogeneous(TupleOut(), example_input=Xt()),
    TYP,
    arg("homogeneity_degree", "model") + ".*returns a tensor",
)
f = "homogeneity_degree"
case(
    f"{f}-second-layer-bias",
    lambda: ib.homogeneity_degree(BiasedNet(), Xt()),
    ib.NotHomogeneousError,
    "not positively homogeneous.*bias after the first layer",
)
case(
    f"{f}-tanh",
    lambda: ib.homogeneity_degree(TanhNet(), Xt()),
    ib.NotHomogeneousError,
    "homogeneity_degree: .*(not positively homogeneous|f\\(cθ\\) ≠ c\\^L f\\(θ\\))",
)
case(
    f"{f}-X-numpy",
    lambda: ib.homogeneity_degree(mlp(), Xt().numpy()),
    TYP,
    arg(f, "X") + ".*torch.Tensor.*array of shape \\(5, 3\\)",
)
case(
    f"{f}-X-empty",
    lambda: ib.homogeneity_degree(mlp(), Xt()[:0]),
    ARG,
    arg(f, "X") + r".*non-empty.*\(0, 3\)",
)
case(
    f"{f}-X-nan",
    lambda: ib.homogeneity_degree(mlp(), Xt() * float("nan")),
    ARG,
    arg(f, "X") + ".*finite",
)
case(
    f"{f}-scales-one",
    lambda: ib.homogeneity_degree(mlp(), Xt(), scales=(1.0,)),
    ARG,
    arg(f, "scales") + r".*other than 1; got \(1\.0,\)",
)
case(
    f"{f}-scales-empty",
    lambda: ib.homogeneity_degree(mlp(), Xt(), scales=()),
    ARG,
    arg(f, "scales"),
)
case(
    f"{f}-scales-negative",
    lambda: ib.homogeneity_degree(mlp(), Xt(), scales=(-2.0,)),
    ARG,
    arg(f, "scales") + ".*-2",
)
case(f"{f}-not-a-module", lambda: ib.homogeneity_degree(3, Xt()), TYP, arg(f, "model"))
f = "flat_parameters"
case(
    f"{f}-no-parameters",
    lambda: ib.flat_parameters(NoParams()),
    ARG,
    arg(f, "model") + ".*trainable parameters",
)
case(
    f"{f}-not-a-module",
    lambda: ib.flat_parameters(3),
    TYP,
    arg(f, "model"),
)

# --- init -------------------------------------------------------------------------------
case("symmetrize-not-a-module", lambda: ib.symmetrize(3), TYP, arg("symmetrize", "model"))
case(
    "Symmetrized-not-a-module",
    lambda: ib.Symmetrized("m"),
    TYP,
    r"The 'model' argument of symmetrize",
)
case(
    "mirror_init-not-a-module",
    lambda: ib.mirror_init(3),
    TYP,
    arg("mirror_init", "model") + ".*Use ib.symmetrize",
)
case(
    "mirror_init-unsupported",
    lambda: ib.mirror_init(TanhNet()),
    TYP,
    "(?s)" + arg("mirror_init", "model") + r".*\(TanhNet\)",
)
case(
    "zero_last_layer-not-a-module",
    lambda: ib.zero_last_layer(3),
    TYP,
    arg("zero_last_layer", "model"),
)
case(
    "zero_last_layer-diagonal-net",
    lambda: ib.zero_last_layer(ib.DiagonalNet(3)),
    TYP,
    arg("zero_last_layer", "model") + r".*\(DiagonalNet\)",
)
f = "scale_init"
case(f"{f}-alpha-0", lambda: ib.scale_init(ib.DiagonalNet(3), 0), ARG, arg(f, "alpha") + ".*got 0")
case(
    f"{f}-alpha-negative",
    lambda: ib.scale_init(ib.DiagonalNet(3), -1.0),
    ARG,
    arg(f, "alpha") + ".*-1",
)
case(
    f"{f}-alpha-nan",
    lambda: ib.scale_init(ib.DiagonalNet(3), float("nan")),
    ARG,
    arg(f, "alpha") + ".*nan",
)
case(f"{f}-alpha-str", lambda: ib.scale_init(ib.DiagonalNet(3), "2"), TYP, arg(f, "alpha"))
case(f"{f}-mode", lambda: ib.scale_init(ib.DiagonalNet(3), 2.0, mode="x"), ARG, arg(f, "mode"))
case(f"{f}-not-a-module", lambda: ib.scale_init(3, 2.0), TYP, arg(f, "model"))
case(
    f"{f}-norm-of-zero",
    lambda: ib.scale_init(zero_param_linear(), 2.0, mode="norm"),
    ARG,
    arg(f, "model") + ".*nonzero norm.*θ = 0",
)
f = "check_zero_output"
case(
    f"{f}-nonzero",
    lambda: ib.check_zero_output(mlp(), Xt()),
    ib.NonZeroInitError,
    r"output at initialization is not zero.*ib\.symmetrize",
)
case(
    f"{f}-nonzero-biased",
    lambda: ib.check_zero_output(BiasedNet(), Xt()),
    ib.NonZeroInitError,
    "not zero",
)
case(
    f"{f}-action",
    lambda: ib.check_zero_output(diag3(), Xt(), action="x"),
    ARG,
    arg(f, "action") + ".*'x'",
)
case(
    f"{f}-rtol-negative",
    lambda: ib.check_zero_output(diag3(), Xt(), rtol=-1.0),
    ARG,
    arg(f, "rtol"),
)
case(f"{f}-X-numpy", lambda: ib.check_zero_output(diag3(), Xt().numpy()), TYP, arg(f, "X"))
case(
    f"{f}-X-nan",
    lambda: ib.check_zero_output(diag3(), Xt() * float("nan")),
    ARG,
    arg(f, "X") + ".*finite",
)
case(
    f"{f}-X-empty",
    lambda: ib.check_zero_output(diag3(), Xt()[:0]),
    ARG,
    arg(f, "X") + ".*non-empty",
)
case(
    f"{f}-not-a-module",
    lambda: ib.check_zero_output("m", Xt()),
    TYP,
    arg(f, "model"),
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

# --- margins and KKT --------------------------------------------------------------------
for f, fn in {
    "normalized_margin": ib.normalized_margin,
    "smoothed_margin": ib.smoothed_margin,
}.items():
    case(
        f"{f}-y01",
        lambda fn=fn: fn(mlp(), Xt(), (yt() + 1) / 2),
        ARG,
        arg(f, "y") + r".*got values \[0\.0, 1\.0\].*Convert \{0, 1\} labels with y = 2\*y - 1",
    )
    case(
        f"{f}-y-length",
        lambda fn=fn: fn(mlp(), Xt(), yt()[:2]),
        ARG,
        rf"'X' and 'y' of {f} must have the same number of rows; X has 5, y has 2",
    )
    case(
        f"{f}-y-nan",
        lambda fn=fn: fn(mlp(), Xt(), yt() * float("nan")),
        ARG,
        arg(f, "y") + ".*finite",
    )
    case(
        f"{f}-X-nan",
        lambda fn=fn: fn(mlp(), Xt() * float("nan"), yt()),
        ARG,
        r"'X' argument of \w+ must be finite",
    )
    case(
        f"{f}-not-homogeneous",
        lambda fn=fn: fn(BiasedNet(), Xt(), yt()),
        ib.NotHomogeneousError,
        "bias after the first layer",
    )
case(
    "smoothed_margin-loss",
    lambda: ib.smoothed_margin(mlp(), Xt(), yt(), loss="squared"),
    ARG,
    arg("smoothed_margin", "loss") + ".*'squared'",
)
case(
    "normalized_margin-degree-0",
    lambda: ib.normalized_margin(mlp(), Xt(), yt(), degree=0),
    ARG,
    arg("normalized_margin", "degree"),
)
f = "kkt_residuals"
case(
    f"{f}-y01",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), (yt() + 1) / 2),
    ARG,
    arg(f, "y") + r".*\[0\.0, 1\.0\].*y = 2\*y - 1.*task='regression'",
)
case(
    f"{f}-y-length",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt()[:2]),
    ARG,
    rf"'X' and 'y' of {f} must have the same number of rows",
)
case(
    f"{f}-task",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt(), task="x"),
    ARG,
    arg(f, "task"),
)
case(
    f"{f}-weight_decay-negative",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt(), weight_decay=-1.0),
    ARG,
    arg(f, "weight_decay") + ".*-1",
)
case(
    f"{f}-loss",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt(), loss="x"),
    ARG,
    arg(f, "loss"),
)
case(
    f"{f}-epsilon_tolerance-negative",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt(), epsilon_tolerance=-1.0),
    ARG,
    arg(f, "epsilon_tolerance"),
)
case(
    f"{f}-zero-model",
    lambda: ib.kkt_residuals(diag3(), Xt(), yt()),
    ARG,
    arg(f, "model") + ".*classifies every training point correctly.*5 of 5",
)
case(
    f"{f}-misclassifying-model",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), -yt()),
    ARG,
    arg(f, "model") + ".*5 of 5 points misclassified",
)
case(
    f"{f}-regression-y-matrix",
    lambda: ib.kkt_residuals(
        separating_diag(), Xt(), torch.ones(5, 2, dtype=F64), task="regression"
    ),
    ARG,
    arg(f, "y") + r".*\(5, 2\)",
)
case(
    f"{f}-not-homogeneous",
    lambda: ib.kkt_residuals(BiasedNet(), Xt(), yt()),
    ib.NotHomogeneousError,
    "bias after the first layer",
)
case(
    f"{f}-chunk_size-0",
    lambda: ib.kkt_residuals(separating_diag(), Xt(), yt(), chunk_size=0),
    ARG,
    arg("kkt_residuals", "chunk_size"),
)
case(
    f"{f}-X-nan",
    lambda: ib.kkt_residuals(separating_diag(), Xt() * float("nan"), yt()),
    ARG,
    arg(f, "X") + ".*finite",
)

# --- train ------------------------------------------------------------------------------
f = "train"
case(
    f"{f}-X-nan",
    lambda: ib.train(diag3(), Xt() * float("nan"), yt(), **train_kw()),
    ARG,
    arg(f, "X") + ".*finite",
)
case(
    f"{f}-X-numpy",
    lambda: ib.train(diag3(), Xt().numpy(), yt(), **train_kw()),
    TYP,
    arg(f, "X") + ".*torch.Tensor",
)
case(
    f"{f}-X-empty",
    lambda: ib.train(diag3(), Xt()[:0], yt()[:0], **train_kw()),
    ARG,
    arg(f, "X") + ".*non-empty",
)
case(
    f"{f}-y-nan",
    lambda: ib.train(diag3(), Xt(), yt() * float("nan"), **train_kw()),
    ARG,
    arg(f, "y") + ".*finite",
)
case(
    f"{f}-y-matrix",
    lambda: ib.train(diag3(), Xt(), torch.ones(5, 2, dtype=F64), **train_kw()),
    ARG,
    arg(f, "y") + r".*\(5, 2\)",
)
case(
    f"{f}-y-pm2",
    lambda: ib.train(diag3(), Xt(), 2 * yt(), **train_kw()),
    ARG,
    arg(f, "y") + r".*\[-2\.0, 2\.0\]",
)
case(
    f"{f}-weight_decay-nan",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(weight_decay=float("nan"))),
    ARG,
    arg(f, "weight_decay") + ".*nan",
)
case(
    f"{f}-lr-inf",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(lr=float("inf"))),
    ARG,
    arg(f, "lr") + ".*inf",
)
case(
    f"{f}-steps-0",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(steps=0)),
    ARG,
    arg(f, "steps") + ".*got 0",
)
case(
    f"{f}-steps-negative",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(steps=-3)),
    ARG,
    arg(f, "steps") + ".*-3",
)
case(
    f"{f}-t_max-negative",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(steps=None, t_max=-1.0)),
    ARG,
    arg(f, "t_max"),
)
case(
    f"{f}-num_evals-1",
    lambda: ib.train(diag3(), Xt(), yt(), **train_kw(num_evals=1)),
    ARG,
    arg(f, "num_evals") + ".*>= 2; got 1",
)
case(
    f"{f}-alpha-0",
    lambda: ib.train(diag3(), Xt(), yt(), alpha=0.0, **train_kw()),
    ARG,
    arg(f, "alpha") + ".*0.0",
)
case(
    f"{f}-alpha-negative",
    lambda: ib.train(diag3(), Xt(), yt(), alpha=-2.0, **train_kw()),
    ARG,
    arg(f, "alpha") + ".*-2",
)
case(
    f"{f}-integrator",
    lambda: ib.train(diag3(), Xt(), yt(), integrator="euler", **train_kw()),
    ARG,
    arg(f, "integrator") + ".*'euler'",
)
case(
    f"{f}-eval_times-negative",
    lambda: ib.train(diag3(), Xt(), yt(), eval_times=[-1.0, 0.1], **train_kw()),
    ARG,
    arg(f, "eval_times") + r".*\[-1, 0\.1\]",
)
case(
    f"{f}-eval_times-nan",
    lambda: ib.train(diag3(), Xt(), yt(), eval_times=[0.0, float("nan")], **train_kw()),
    ARG,
    arg(f, "eval_times") + ".*finite",
)
case(
    f"{f}-checkpoint_every-0",
    lambda: ib.train(diag3(), Xt(), yt(), checkpoint_every=0.0, **train_kw()),
    ARG,
    arg(f, "checkpoint_every"),
)
case(
    f"{f}-max_step-0",
    lambda: ib.train(diag3(), Xt(), yt(), method="flow", max_step=0.0, **train_kw()),
    ARG,
    arg(f, "max_step"),
)
case(
    f"{f}-resume-str",
    lambda: ib.train(diag3(), Xt(), yt(), resume="yes", **train_kw()),
    TYP,
    arg(f, "resume"),
)
case(
    f"{f}-not-homogeneous",
    lambda: ib.train(BiasedNet(), Xt(), yt(), **train_kw()),
    ib.NotHomogeneousError,
    "Homogeneous",
)
case(
    f"{f}-cross_entropy-label-range",
    lambda: ib.train(
        ib.HomogeneousMLP(3, [4], d_out=3, seed=0, dtype=F64),
        Xt(),
        torch.tensor([0, 1, 2, 0, 5]),
        loss="cross_entropy",
        **train_kw(),
    ),
    ARG,
    arg(f, "y") + r".*\{0, \.\.\., 2\}.*\[0, 5\]",
)
case(
    f"{f}-cross_entropy-fractional-labels",
    lambda: ib.train(
        ib.HomogeneousMLP(3, [4], d_out=3, seed=0, dtype=F64),
        Xt(),
        torch.tensor([0, 1, 2, 0, 0.5]),
        loss="cross_entropy",
        **train_kw(),
    ),
    ARG,
    arg(f, "y") + ".*integer class labels",
)
case(
    f"{f}-X-wrong-width",
    lambda: ib.train(diag3(), torch.ones(5, 4, dtype=F64), yt(), **train_kw()),
    ARG,
    arg(f, "X"),
)
case(
    f"{f}-history_path-int",
    lambda: ib.train(diag3(), Xt(), yt(), history_path=3, **train_kw()),
    TYP,
    arg(f, "history_path"),
)


def _train_mf(idx: list[list[int]]) -> Any:
    return ib.train(
        ib.MatrixFactorization(3, dtype=F64),
        torch.tensor(idx),
        torch.ones(len(idx), dtype=F64),
        loss="squared",
        **train_kw(lr=0.01),
    )


case(
    f"{f}-matrix-factorization-index-out-of-range",
    lambda: _train_mf([[0, 1], [0, 3]]),
    ARG,
    arg(f, "X") + r".*\[0, 3\)",
)
case(
    f"{f}-matrix-factorization-negative-index",
    lambda: _train_mf([[0, 1], [0, -1]]),
    ARG,
    arg(f, "X"),
)

# --- History, log_schedule, loss_function, Loss ------------------------------------------
case(
    "History-rows-mismatched",
    lambda: ib.History(rows=[{"a": 1.0}, {"b": 2.0}]),
    ARG,
    r"The 'row' argument of History\.append .*missing \['a'\] and extra \['b'\]",
)
case(
    "History-truncate-negative",
    lambda: ib.History(rows=[{"a": 1.0}, {"a": 2.0}]).truncate(-1),
    ARG,
    r"The 'length' argument of History\.truncate",
)
case(
    "History-append-non-numeric",
    lambda: ib.History(columns=["a"]).append({"a": "x"}),
    TYP,
    r"History\.append",
)
case(
    "History-from_json-int",
    lambda: ib.History.from_json(3),
    TYP,
    r"The 'source' argument of History\.from_json",
)
f = "log_schedule"
case(f"{f}-t_max-0", lambda: ib.log_schedule(0.0), ARG, arg(f, "t_max") + ".*got 0.0")
case(f"{f}-t_max-nan", lambda: ib.log_schedule(float("nan")), ARG, arg(f, "t_max") + ".*nan")
case(f"{f}-num-1", lambda: ib.log_schedule(1.0, 1), ARG, arg(f, "num") + ".*>= 2; got 1")
case(f"{f}-num-float", lambda: ib.log_schedule(1.0, 10.5), TYP, arg(f, "num") + r".*10\.5")
case(
    f"{f}-t_min-above-t_max",
    lambda: ib.log_schedule(1.0, 10, t_min=5.0),
    ARG,
    arg(f, "t_min") + ".*at most t_max = 1; got 5.0",
)
case(f"{f}-t_min-negative", lambda: ib.log_schedule(1.0, 10, t_min=-5.0), ARG, arg(f, "t_min"))
case(f"{f}-step-negative", lambda: ib.log_schedule(1.0, 10, step=-1.0), ARG, arg(f, "step"))
case(
    f"{f}-step-above-t_max",
    lambda: ib.log_schedule(1.0, 10, step=5.0),
    ARG,
    arg(f, "step"),
)
case(
    "loss_function-name",
    lambda: ib.loss_function("hinge"),
    ARG,
    arg("loss_function", "name") + ".*'hinge'",
)
case(
    "loss_function-mse-alias",
    lambda: ib.loss_function("mse"),
    ARG,
    arg("loss_function", "name") + ".*'squared'.*got 'mse'",
)
case(
    "Loss-margins-of-regression-loss",
    lambda: ib.loss_function("squared").margins(torch.zeros(2), torch.zeros(2)),
    ib.ImplicitBiasError,
    "regression loss: margins are not defined",
)

# --- experiments and the CLI ------------------------------------------------------------
NAMES = list(ex.EXPERIMENTS)
case(
    "experiments.run-unknown-name",
    lambda: ex.run("grokking", out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "name") + ".*'grokking'",
)
case(
    "experiments.run-scale",
    lambda: ex.run("sparse-linear", scale="huge", out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "scale"),
)
case(
    "experiments.run-seed-negative",
    lambda: ex.run("sparse-linear", seed=-1, out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "seed"),
)
case(
    "experiments.run-device",
    lambda: ex.run("sparse-linear", device="tpu", out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "device") + ".*'tpu'",
)
case(
    "experiments.run-method",
    lambda: ex.run("sparse-linear", method="adam", out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "method"),
)
case(
    "experiments.run-threads-0",
    lambda: ex.run("sparse-linear", threads=0, out_dir="/nonexistent-never-written"),
    ARG,
    arg("run", "threads"),
)
for name in NAMES:
    case(
        f"experiments.run-{name}-weight_decay-negative",
        lambda name=name: ex.run(
            name, out_dir="/nonexistent-never-written", overrides={"weight_decay": -1e-3}
        ),
        ARG,
        arg("run", "weight_decay") + ".*-0.001",
    )
    case(
        f"experiments.run-{name}-alpha-0",
        lambda name=name: ex.run(
            name, out_dir="/nonexistent-never-written", overrides={"alpha": 0.0}
        ),
        ARG,
        arg("run", "alpha") + ".*0.0",
    )
    case(
        f"experiments.run-{name}-alpha-negative",
        lambda name=name: ex.run(
            name, out_dir="/nonexistent-never-written", overrides={"alpha": -1.0}
        ),
        ARG,
        arg("run", "alpha"),
    )
case(
    "experiments.run-lr-nan",
    lambda: ex.run(
        "sparse-linear", out_dir="/nonexistent-never-written", overrides={"lr": float("nan")}
    ),
    ARG,
    arg("run", "lr") + ".*nan",
)
case(
    "experiments.get_config-unknown-name",
    lambda: ex.get_config("grokking"),
    ARG,
    arg("get_config", "name"),
)
case(
    "experiments.get_config-scale",
    lambda: ex.get_config("sparse-linear", "huge"),
    ARG,
    arg("get_config", "scale") + ".*'huge'",
)
case(
    "experiments.get_config-unknown-field",
    lambda: ex.get_config("sparse-linear", "quick", {"beta": 1.0}),
    ARG,
    "unknown fields",
)
case(
    "experiments.get_config-weight_decay-negative",
    lambda: ex.get_config("sparse-linear", "quick", {"weight_decay": -1e-3}),
    ARG,
    arg("get_config", "weight_decay"),
)
case(
    "experiments.get_config-alpha-0",
    lambda: ex.get_config("matrix-completion", "quick", {"alpha": 0.0}),
    ARG,
    arg("get_config", "alpha"),
)
case(
    "experiments.get_config-overrides-not-a-mapping",
    lambda: ex.get_config("sparse-linear", "quick", 3),
    TYP,
    arg("get_config", "overrides"),
)
case(
    "experiments.data.multiplication_table-d-0",
    lambda: exdata.multiplication_table(0),
    ARG,
    arg("multiplication_table", "d"),
)
case(
    "experiments.data.sparse_linear_task-d-str",
    lambda: exdata.sparse_linear_task("big"),
    TYP,
    arg("sparse_linear_task", "d"),
)
case(
    "experiments.data.modular_addition_data-p-0",
    lambda: exdata.modular_addition_data(0),
    ARG,
    arg("modular_addition_data", "p"),
)
case(
    "experiments.data.matrix_completion_data-fraction-2",
    lambda: exdata.matrix_completion_data(5, fraction=2.0),
    ARG,
    arg("matrix_completion_data", "fraction"),
)


@pytest.mark.parametrize(("call", "exc", "match"), CASES)
def test_bad_input(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    with pytest.raises(exc, match=match) as info:
        call()
    err = info.value
    if exc is not AssertionError:
        assert isinstance(err, ib.ImplicitBiasError), type(err)
    if isinstance(err, (ib.InvalidArgumentError, ib.InvalidArgumentTypeError)):
        # argument errors keep working with `except ValueError` / `except TypeError`
        assert isinstance(err, (ValueError, TypeError))


def test_battery_size() -> None:
    """The battery's size, kept visible (update when adding rows)."""
    assert len(CASES) >= 300, len(CASES)


# ------------------------------------------------------------------- separate bad-input tests
def test_zero_one_label_policy_is_the_same_everywhere() -> None:
    """{0, 1} labels are never converted silently, and every binary entry point says how."""
    y01 = (y4() + 1) / 2
    calls = {
        "kernel_svm": lambda: ib.kernel_svm(K4(), y01),
        "l1_max_margin": lambda: ib.l1_max_margin(X4(), y01),
        "l2_max_margin": lambda: ib.l2_max_margin(X4(), y01),
        "lp_max_margin": lambda: ib.lp_max_margin(X4(), y01, p=3.0),
        "ntk_predictor": lambda: ib.ntk_predictor(sym_mlp(), Xt(), (yt() + 1) / 2),
        "normalized_margin": lambda: ib.normalized_margin(mlp(), Xt(), (yt() + 1) / 2),
        "smoothed_margin": lambda: ib.smoothed_margin(mlp(), Xt(), (yt() + 1) / 2),
        "kkt_residuals": lambda: ib.kkt_residuals(mlp(), Xt(), (yt() + 1) / 2),
        "train": lambda: ib.train(diag3(), Xt(), (yt() + 1) / 2, **train_kw()),
    }
    for func, call in calls.items():
        with pytest.raises(ARG, match=rf"The 'y' argument of {func} .*y = 2\*y - 1"):
            call()


def test_check_zero_output_warn_action() -> None:
    with pytest.warns(UserWarning, match="output at initialization is not zero"):
        worst = ib.check_zero_output(mlp(), Xt(), action="warn")
    assert worst > 0


def test_regression_targets_in_01_are_accepted() -> None:
    """The {±1} policy is for classification only: regression accepts any real targets."""
    res = ib.train(diag3(), Xt(), (yt() + 1) / 2, loss="squared", **train_kw())
    assert res.status == "completed"
    np.testing.assert_allclose(
        ib.kernel_regression(K4(), (y4() + 1) / 2).max_abs_residual, 0.0, atol=1e-12
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    ("option", "message"), [("--weight-decay=-1e-3", "'weight_decay'"), ("--alpha=0", "'alpha'")]
)
def test_cli_rejects_bad_hyperparameters_for_every_experiment(
    name: str, option: str, message: str, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(["reproduce", name, option, "--out", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written for a rejected run


def test_mixed_dtypes_through_library_functions() -> None:
    """Policy (from the code): library functions cast X to the model's dtype; results of the
    reference solvers are float64 whatever the input dtype."""
    net32 = ib.DiagonalNet(3, alpha=0.7)  # float32 parameters
    K = ib.empirical_ntk(net32, Xt())  # float64 data
    assert K.dtype == torch.float32
    net64 = diag3()
    K64 = ib.empirical_ntk(net64, Xt().float())  # float32 data, float64 model
    assert K64.dtype == torch.float64
    res = ib.train(net64, Xt().float(), yt().float(), **train_kw())
    assert res.status == "completed"
    for r in (
        ib.kernel_svm(torch.tensor(K4(), dtype=torch.float32), torch.tensor(y4())).coef,
        ib.l1_max_margin(X4().astype(np.float32), y4().astype(np.float32)).w,
        ib.kernel_regression(K4().astype(np.float32), y4()).coef,
    ):
        assert r.dtype == np.float64


@pytest.mark.gpu
def test_mixed_devices_are_rejected_with_a_clear_message() -> None:
    net = ib.DiagonalNet(3, dtype=F64, device="cuda")
    with pytest.raises(
        ARG, match=r"The 'X1' argument of empirical_ntk must be on the model's device"
    ):
        ib.empirical_ntk(net, Xt())
    with pytest.raises(ARG, match=r"The 'X' argument of train must be on the model's device"):
        ib.train(net, Xt(), yt(), **train_kw())
    with pytest.raises(ARG, match=r"The 'X' argument of check_zero_output must be on the model"):
        ib.check_zero_output(net, Xt())


def test_train_accepts_a_plain_homogeneous_module() -> None:
    res = ib.train(plain_relu_seq(), Xt(), yt(), **train_kw())
    assert res.status == "completed"


# A model on the "meta" device (no data) is refused by every consumer before any computation,
# naming the model and 'meta' (issue 11); mixed real devices are tested by the gpu-marked test.
def _meta_net() -> ib.DiagonalNet:
    return ib.DiagonalNet(3, dtype=F64, device="meta")


MIXED_DEVICE = {
    "empirical_ntk": (lambda: ib.empirical_ntk(_meta_net(), Xt()), "X1"),
    "check_zero_output": (lambda: ib.check_zero_output(_meta_net(), Xt()), "X"),
    "train": (lambda: ib.train(_meta_net(), Xt(), yt(), **train_kw()), "X"),
    "ntk_predictor": (lambda: ib.ntk_predictor(_meta_net(), Xt(), yt()), "X"),
    "homogeneity_degree": (lambda: ib.homogeneity_degree(_meta_net(), Xt()), "X"),
    "kkt_residuals": (lambda: ib.kkt_residuals(_meta_net(), Xt(), yt()), "X"),
    "normalized_margin": (lambda: ib.normalized_margin(_meta_net(), Xt(), yt()), "X"),
    "smoothed_margin": (lambda: ib.smoothed_margin(_meta_net(), Xt(), yt()), "X"),
}


@pytest.mark.parametrize(
    "func",
    [f for f in MIXED_DEVICE],
)
def test_mixed_devices_name_the_argument_and_the_device(func: str) -> None:
    call, _ = MIXED_DEVICE[func]
    with pytest.raises(
        ARG,
        match=rf"The 'model' argument of {func} must be a module whose parameters hold data; "
        r"got parameter 'u' on the 'meta' device instead",
    ):
        call()
