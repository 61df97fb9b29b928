"""The experiment registry: one declaration per experiment, unknown names are errors."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import implicitbias.experiments.diagonal as diagonal
import implicitbias.experiments.modular_addition as modular
import implicitbias.experiments.registry as registry
import implicitbias.experiments.runner as runner
from implicitbias import InvalidArgumentError
from implicitbias.cli import main
from implicitbias.experiments import (
    EXPERIMENTS,
    Experiment,
    ExperimentConfig,
    get_config,
    get_experiment,
    list_experiments,
    register,
    run,
)
from implicitbias.experiments.configs import CompletionConfig, DiagonalConfig, ModularConfig

KNOWN = (
    "sparse-linear",
    "misgrokking",
    "matrix-completion",
    "modular-addition",
    "modular-addition-he-init",
    "modular-addition-no-wd",
)
TOY = "toy-modular"


@pytest.fixture
def toy() -> Iterator[Experiment]:
    """A fifth experiment, declared once, removed from the registry afterwards."""
    base = get_experiment("modular-addition")
    checks = {"final_test_acc": (">=", 0.0, "final test accuracy (any)")}
    small = dataclasses.replace(base.presets["tiny"], horizon=0.2, num_evals=4, method="gd")

    def runner_fn(cfg: ModularConfig, **kwargs: object) -> object:
        out = base.runner(cfg, **kwargs)
        return dataclasses.replace(out, summary={**out.summary, "checks": {}})  # type: ignore

    exp = Experiment(
        name=TOY,
        description="A toy copy of modular addition.",
        presets={s: small for s in ("quick", "paper", "tiny")},
        runner=runner_fn,  # type: ignore[arg-type]
        checks=checks,
        metric="accuracy",
    )
    register(exp)
    try:
        yield exp
    finally:
        del registry._REGISTRY[TOY]
        del registry._DESCRIPTIONS[TOY]


def test_registry_holds_the_experiments_in_order() -> None:
    assert tuple(EXPERIMENTS) == KNOWN
    assert tuple(list_experiments()) == KNOWN
    for name in KNOWN:
        exp = get_experiment(name)
        assert exp.name == name
        assert EXPERIMENTS[name] == exp.description
        assert set(exp.presets) == {"quick", "paper", "tiny"}
        assert get_config(name, "quick") == exp.presets["quick"]
        assert runner.check_specs(name) == dict(exp.checks)


@pytest.mark.parametrize(
    "lookup, func",
    [
        (lambda: get_experiment("grokking"), "get_experiment"),
        (lambda: runner.check_specs("grokking"), "check_specs"),
        (lambda: get_experiment(["sparse-linear"]), "get_experiment"),
        (lambda: get_experiment(None), "get_experiment"),
    ],
    ids=["get_experiment", "runner.check_specs", "unhashable", "none"],
)
def test_unknown_name_is_an_error_listing_the_known_names(lookup, func) -> None:
    # Before the registry, check_specs fell through to the modular-addition checks.
    with pytest.raises(InvalidArgumentError, match=f"'name' argument of {func}.*'sparse-linear'"):
        lookup()


@pytest.mark.parametrize("name", ["matrix-completion", "grokking"])
def test_diagonal_check_specs_refuses_other_experiments(name: str) -> None:
    # Before, any name that was not "sparse-linear" got the misgrokking checks.
    with pytest.raises(InvalidArgumentError, match=f"'name' argument of check_specs.*'{name}'"):
        diagonal.check_specs(name)


def test_diagonal_runner_refuses_another_experiment_name() -> None:
    cfg = get_config("sparse-linear", "tiny")
    with pytest.raises(InvalidArgumentError, match="'name' argument of run_diagonal"):
        diagonal.run_diagonal(cfg, name="modular-addition")


def test_unknown_scale_of_a_declared_experiment() -> None:
    with pytest.raises(InvalidArgumentError, match="'scale' argument of get_config.*'huge'"):
        get_experiment("misgrokking").preset("huge")


def test_registry_is_read_only_and_names_are_unique() -> None:
    with pytest.raises(TypeError):
        EXPERIMENTS["grokking"] = "text"  # type: ignore[index]
    with pytest.raises(ValueError, match="already registered"):
        register(get_experiment("sparse-linear"))


def test_declaration_needs_every_scale_and_a_known_metric() -> None:
    base = get_experiment("modular-addition")
    kw = dict(name="x", description="x", runner=base.runner, checks={})
    with pytest.raises(ValueError, match=r"no preset for scales \['tiny'\]"):
        Experiment(presets={"quick": base.presets["quick"], "paper": base.presets["paper"]},
                   metric="accuracy", **kw)
    with pytest.raises(ValueError, match="unknown metric 'loss'"):
        Experiment(presets=base.presets, metric="loss", **kw)


def test_configs_share_the_base_and_keep_their_defaults() -> None:
    shared = {f.name for f in dataclasses.fields(ExperimentConfig)}
    assert {"alpha", "weight_decay", "lr", "horizon", "method", "dtype"} <= shared
    for cls in (DiagonalConfig, CompletionConfig, ModularConfig):
        assert issubclass(cls, ExperimentConfig)
        assert shared <= {f.name for f in dataclasses.fields(cls)}
    # each experiment's own defaults, as before the base existed
    assert CompletionConfig(d=5).alpha == 10.0 and CompletionConfig(d=5).rtol == 1e-6
    assert ModularConfig(p=5).method == "gd" and ModularConfig(p=5).dtype == "float32"
    assert DiagonalConfig(task="sparse", d=5, n=4, n_test=4).kkt_evals == 16


def test_a_new_experiment_is_declared_once(toy: Experiment, tmp_path: Path, capsys) -> None:
    assert TOY in list_experiments()
    # its config is validated like any other (the base's fields and the class's own)
    with pytest.raises(InvalidArgumentError, match="'alpha' argument of get_config"):
        get_config(TOY, "tiny", {"alpha": 0.5})
    res = run(TOY, scale="tiny", out_dir=tmp_path / "toy", figure=False)
    assert res.status == "completed" and res.name == TOY
    summary = json.loads((tmp_path / "toy" / "summary.json").read_text())
    assert summary["experiment"] == TOY
    assert main(["list"]) == 0
    assert TOY in capsys.readouterr().out


def test_interrupted_run_uses_the_declared_metric_and_checks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(modular, "run_modular_addition", interrupted)
    res = run("modular-addition", scale="tiny", out_dir=tmp_path / "m", figure=False)
    assert res.status == "interrupted"
    assert res.output.metric == "accuracy"
    assert set(res.summary["checks"]) == set(get_experiment("modular-addition").checks)
    assert all(c["result"] == "n/a" for c in res.summary["checks"].values())
