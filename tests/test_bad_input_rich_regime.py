"""Bad-input battery of ``implicitbias.rich_regime`` (issue 8): the l1 / l2 / lp max-margin
solvers, the min-norm interpolations, min_nuclear_norm_completion and the realization maps.

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
    NONFINITE,
    TYP,
    X4,
    Y01,
    Battery,
    Xu,
    arg,
    check_bad_input,
    with_inf,
    with_nan,
    y4,
    yu,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

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


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_rich_regime(
    call: Callable[[], Any], exc: type[BaseException], match: str
) -> None:
    check_bad_input(call, exc, match)
