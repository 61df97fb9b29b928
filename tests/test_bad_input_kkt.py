"""Bad-input battery of ``implicitbias.kkt`` (issue 8): nnls_gram, normalized_margin,
smoothed_margin and kkt_residuals.

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
    F64,
    NONFINITE,
    Battery,
    BiasedNet,
    Xt,
    arg,
    check_bad_input,
    diag3,
    mlp,
    separating_diag,
    yt,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

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


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_kkt(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    check_bad_input(call, exc, match)
