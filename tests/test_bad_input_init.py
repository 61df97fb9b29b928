"""Bad-input battery of ``implicitbias.init`` (issue 8): symmetrize, mirror_init,
zero_last_layer, scale_init and check_zero_output.

Each row is ``case(id, call, exception, match)``, described by ``conftest.Battery``; the test id
is ``<entry point>-<misuse>``. The shared tiny inputs and toy modules live in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

import implicitbias as ib
from conftest import (
    ARG,
    TYP,
    Battery,
    BiasedNet,
    TanhNet,
    Xt,
    arg,
    check_bad_input,
    diag3,
    mlp,
    zero_param_linear,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

# --- init -------------------------------------------------------------------------------
case("symmetrize-not-a-module", lambda: ib.symmetrize(3), TYP, arg("symmetrize", "model"))
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


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_init(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    check_bad_input(call, exc, match)


# ------------------------------------------------------------------- separate bad-input tests
def test_check_zero_output_warn_action() -> None:
    with pytest.warns(UserWarning, match="output at initialization is not zero"):
        worst = ib.check_zero_output(mlp(), Xt(), action="warn")
    assert worst > 0
