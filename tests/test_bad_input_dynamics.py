"""Bad-input battery of ``implicitbias.dynamics`` (issue 8): train, History, log_schedule,
loss_function and Loss.

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
    Xt,
    arg,
    check_bad_input,
    diag3,
    plain_relu_seq,
    train_kw,
    yt,
)

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

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


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_dynamics(call: Callable[[], Any], exc: type[BaseException], match: str) -> None:
    check_bad_input(call, exc, match)


# ------------------------------------------------------------------- separate bad-input tests
def test_train_accepts_a_plain_homogeneous_module() -> None:
    res = ib.train(plain_relu_seq(), Xt(), yt(), **train_kw())
    assert res.status == "completed"
