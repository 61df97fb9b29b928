"""Bad-input battery of ``implicitbias.models`` (issue 8): the model classes, Symmetrized,
Homogeneous, homogeneity_degree and flat_parameters.

Each row is ``case(id, call, exception, match)``, described by ``conftest.Battery``; the test id
is ``<entry point>-<misuse>``. The shared tiny inputs and toy modules live in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import implicitbias as ib
from conftest import (
    ARG,
    F64,
    TYP,
    Battery,
    BiasedNet,
    NoParams,
    TanhNet,
    TupleOut,
    Xt,
    arg,
    check_bad_input,
    diag3,
    mlp,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

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

# --- Symmetrized (models/symmetrized.py) -------------------------------------------------
case(
    "Symmetrized-not-a-module",
    lambda: ib.Symmetrized("m"),
    TYP,
    r"The 'model' argument of symmetrize",
)


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_models(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    check_bad_input(call, exc, match)
