"""Bad-input battery of ``implicitbias.experiments`` (issue 8): experiments.run, get_config,
the data builders, and the CLI's ``reproduce`` command.

Each row is ``case(id, call, exception, match)``, described by ``conftest.Battery``; the test id
is ``<entry point>-<misuse>``. The shared tiny inputs and toy modules live in ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conftest import ARG, TYP, Battery, arg, check_bad_input
from implicitbias import experiments as ex
from implicitbias.cli import main as cli_main
from implicitbias.experiments import data as exdata

pytestmark = pytest.mark.usefixtures("one_thread")

case = Battery()

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


@pytest.mark.parametrize(("call", "exc", "match"), case.params)
def test_bad_input_experiments(
    call: Callable[[], Any], exc: type[BaseException], match: str
) -> None:
    check_bad_input(call, exc, match)


# ------------------------------------------------------------------- separate bad-input tests
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
