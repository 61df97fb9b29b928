"""Sweeps: the ordering checks on synthetic runs, the command line (syntax, errors, resume,
parallel jobs) and the files a sweep writes, at the tiny scale."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import implicitbias as ib
import implicitbias.experiments.modular_addition as modular
from implicitbias import InvalidArgumentError
from implicitbias.cli import main
from implicitbias.experiments import list_sweeps, run_sweep
from implicitbias.experiments.registry import SweepCheckSpec, get_sweep
from implicitbias.experiments.sweep_checks import first_crossing, sweep_check, sweep_checks

TINY = ["reproduce", "modular-addition", "--scale", "tiny", "--no-progress"]


# ------------------------------------------------------------------ checks on synthetic runs
def test_first_crossing_interpolates_in_log_steps() -> None:
    steps = [0.0, 10.0, 100.0, 1000.0]
    # 0.4 lies halfway between 0.2 (step 10) and 0.6 (step 100): 10^1.5
    assert first_crossing(steps, [0.0, 0.2, 0.6, 1.0], 0.4) == pytest.approx(10**1.5)
    assert first_crossing(steps, [0.0, 0.2, 0.6, 1.0], 0.2) == 10.0
    assert first_crossing(steps, [0.5, 0.2, 0.6, 1.0], 0.4) == 0.0  # reached at the start
    # from step 0 the interpolation is linear in the step
    assert first_crossing(steps, [0.0, 0.5, 1.0, 1.0], 0.25) == pytest.approx(5.0)
    assert math.isnan(first_crossing(steps, [0.0, 0.2, np.nan, 0.3], 0.9))


@pytest.mark.parametrize(
    ("relation", "measured", "bad"),
    [
        ("decreasing", [500.0, 80.0, 9.0], 0),
        ("decreasing", [500.0, 600.0, 9.0], 1),  # alpha = 4 fits later than alpha = 1
        ("increasing", [500.0, 80.0, 9.0], 2),  # the wrong direction fails twice
        ("increasing", [1e3, 2e3, math.nan], 1),  # a run that never got there
        ("increasing", [1e3, 1e3, 2e3], 1),  # a tie is not an ordering
    ],
)
def test_monotone_check(relation: str, measured: list[float], bad: int) -> None:
    spec = SweepCheckSpec("fit_step", relation, "ordering")
    rec = sweep_check(spec, "alpha", [1.0, 4.0, 16.0], measured)
    assert rec["value"] == bad and rec["op"] == "==" and rec["threshold"] == 0.0
    assert rec["result"] == ("PASS" if bad == 0 else "FAIL")
    assert rec["passed"] is (bad == 0)
    assert rec["measured"]["4"] == (None if math.isnan(measured[1]) else measured[1])


def test_checks_sort_the_values_and_can_leave_the_largest_out() -> None:
    spec = SweepCheckSpec("test_acc_50_step", "decreasing", "sooner", exclude_largest=True)
    # given out of order; the largest value never generalizes, and is left out
    rec = sweep_check(spec, "weight_decay", [3e-3, 1e-3, 1e-2, 2e-3], [9e3, 4e4, math.nan, 2e4])
    assert rec["result"] == "PASS"
    assert rec["detail"].startswith("weight_decay=0.001: 4e+04 > weight_decay=0.002")
    strict = SweepCheckSpec("test_acc_50_step", "decreasing", "sooner")
    rec = sweep_check(strict, "weight_decay", [3e-3, 1e-3, 1e-2, 2e-3], [9e3, 4e4, math.nan, 2e4])
    assert rec["result"] == "FAIL" and rec["value"] == 1


@pytest.mark.parametrize(("final", "result"), [(0.2, "PASS"), (1.0, "FAIL"), (math.nan, "FAIL")])
def test_largest_below(final: float, result: str) -> None:
    spec = SweepCheckSpec("final_train_acc", "largest_below", "fails", threshold=0.5)
    metrics = [{"final_train_acc": 1.0}, {"final_train_acc": final}, {"final_train_acc": 1.0}]
    out = sweep_checks({"fails": spec}, "weight_decay", [1e-3, 3e-3, 2e-3], metrics)
    assert out["fails"]["result"] == result
    assert out["fails"]["op"] == "<" and out["fails"]["threshold"] == 0.5


def test_declared_sweeps_of_the_paper() -> None:
    sweeps = list_sweeps()
    assert set(sweeps) == {
        "modular-addition --sweep alpha",
        "modular-addition --sweep weight_decay",
    }
    assert sweeps["modular-addition --sweep alpha"]["values"]["paper"] == (1.0, 10.0, 100.0)
    assert sweeps["modular-addition --sweep weight_decay"]["values"]["paper"] == (
        1e-4, 3e-4, 1e-3, 3e-3,
    )  # fmt: skip
    alpha = get_sweep("modular-addition", "alpha")
    assert alpha is not None and alpha.base["paper"].zero_last_layer
    assert alpha.base["paper"].steps == 100_000_000 and alpha.base["paper"].kkt_evals == 0
    decay = get_sweep("modular-addition", "weight_decay")
    assert decay is not None and decay.base["paper"].alpha == 10.0


def test_list_shows_every_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for text in ("modular-addition-he-init", "Fig. 2(a)", "modular-addition-no-wd", "Fig. 4",
                 "modular-addition --sweep alpha", "Fig. 2(b)",
                 "modular-addition --sweep weight_decay", "Fig. 2(c)"):  # fmt: skip
        assert text in out, text


# ------------------------------------------------------------------ command line errors
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sweep", "=1,2"], "argument --sweep: expected KEY=V1,V2,..."),
        (["--sweep", "alpha=4"], "argument --sweep alpha: expected at least two"),
        (["--sweep", "alpha=1,,4"], "argument --sweep alpha: expected at least two"),
        (["--sweep", "beta=1,2"], "argument --sweep ('key') must be a setting of"),
        (["--sweep", "lr"], "argument --sweep ('values') must be given for 'lr'"),
        (["--sweep", "alpha=0,4"], "argument --sweep ('alpha')"),
        (["--sweep", "alpha=4,4"], "argument --sweep ('values') must be distinct"),
        (["--sweep", "alpha=1,4", "--alpha", "2"], "'alpha' is also given by --alpha"),
        (["--jobs", "2"], "argument --jobs: only with --sweep"),
        (["--sweep", "alpha", "--jobs", "0"], "argument --jobs: expected an integer >= 1"),
    ],
)
def test_bad_sweeps_exit_2_with_one_line(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    with pytest.raises(SystemExit) as exc:
        main([*TINY, *extra, "--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"key": 3}, "key"),
        ({"jobs": 0}, "jobs"),
        ({"threads": 0}, "threads"),
        ({"log": "print"}, "log"),
        ({"overrides": [("steps", 5)]}, "overrides"),
        ({"overrides": {"alpha": 2.0}}, "overrides"),
        ({"values": [4.0]}, "values"),
        ({"values": "4,8"}, "values"),
        ({"scale": "huge"}, "scale"),
    ],
)
def test_run_sweep_names_the_bad_argument(kwargs: dict, arg: str, tmp_path: Path) -> None:
    call = {"key": "alpha", **kwargs}
    with pytest.raises((InvalidArgumentError, ib.InvalidArgumentTypeError), match=f"'{arg}'"):
        run_sweep("modular-addition", out_dir=tmp_path / "s", **call)
    assert not (tmp_path / "s").exists()


def test_sweep_folder_must_be_a_sweeps(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(InvalidArgumentError, match="'out_dir' argument of run_sweep.*notes.txt"):
        run_sweep("modular-addition", "alpha", scale="tiny", out_dir=tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


# ------------------------------------------------------------------ runs
def _sweep_json(folder: Path) -> dict:
    return json.loads((folder / "sweep.json").read_text())


def test_tiny_sweep_writes_runs_summary_and_one_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    assert main([*TINY, "--sweep", "weight-decay=1e-3,1e-1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "sweep of weight_decay" in text and "sweep checks:" in text
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    for name in ("weight_decay=0.001", "weight_decay=0.1"):
        assert (out / name / "history.csv").exists() and (out / name / "summary.json").exists()
        config = json.loads((out / name / "config.json").read_text())
        assert config["settings"]["alpha"] == 4.0 and config["settings"]["steps"] == 300
    s = _sweep_json(out)
    assert s["key"] == "weight_decay" and s["values"] == [1e-3, 1e-1] and s["status"] == "completed"
    assert s["figure"] == "Fig. 2(c)" and set(s["checks"]) == {"generalize_sooner", "largest_fails"}
    # the settings every run shares where the declared base differs from the preset, not the key
    assert s["shared_settings"]["steps"] == 300 and "weight_decay" not in s["shared_settings"]
    assert [r["status"] for r in s["runs"]] == ["completed", "completed"]
    # the checks are computed from the runs: at this scale nothing generalizes
    assert s["checks"]["generalize_sooner"]["result"] == "FAIL"
    assert s["runs"][0]["milestones"]["final_step"] == 300.0


def test_interrupted_sweep_resumes_only_its_unfinished_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep"
    argv = [*TINY, "--sweep", "alpha=2,4,8", "--set", "steps=60", "--no-figure", "--out", str(out)]
    real = modular.run_modular_addition

    def stop_at_alpha_4(cfg: Any, **kwargs: Any) -> Any:
        if cfg.alpha == 4.0:
            raise KeyboardInterrupt
        return real(cfg, **kwargs)

    monkeypatch.setattr(modular, "run_modular_addition", stop_at_alpha_4)
    assert main(argv) == 130
    monkeypatch.undo()
    s = _sweep_json(out)
    assert s["status"] == "interrupted"
    assert [r["status"] for r in s["runs"]] == ["completed", "interrupted", "not run"]
    assert {c["result"] for c in s["checks"].values()} == {"n/a"}
    first = (out / "alpha=2" / "history.csv").stat().st_mtime_ns
    capsys.readouterr()

    assert main([*argv, "--resume"]) == 0
    s = _sweep_json(out)
    assert [r["action"] for r in s["runs"]] == ["kept", "resumed", "ran"]
    assert [r["status"] for r in s["runs"]] == ["completed"] * 3
    assert (out / "alpha=2" / "history.csv").stat().st_mtime_ns == first  # not re-run
    assert "kept" in capsys.readouterr().out
    # a completed run is not kept for other settings
    with pytest.raises(SystemExit) as exc:
        main([*TINY, "--sweep", "alpha=2,4,8", "--set", "steps=70", "--no-figure",
              "--out", str(out), "--resume"])  # fmt: skip
    assert exc.value.code == 2
    assert "steps 60 vs 70" in capsys.readouterr().err


def test_parallel_jobs_give_the_runs_of_a_sequential_sweep(tmp_path: Path) -> None:
    common = {"scale": "tiny", "overrides": {"steps": 40}, "figure": False}
    seq = run_sweep(
        "modular-addition", "alpha", [2.0, 8.0], out_dir=tmp_path / "a", threads=1, **common
    )
    par = run_sweep("modular-addition", "alpha", [2.0, 8.0], out_dir=tmp_path / "b", jobs=2,
                    **common)  # fmt: skip
    assert par.status == seq.status == "completed"
    assert par.summary["jobs"] == 2 and par.summary["threads"] == 1
    for a, b in zip(seq.runs, par.runs):
        ha, hb = (
            ib.History.from_csv(a.out_dir / "history.csv"),
            ib.History.from_csv(b.out_dir / "history.csv"),
        )
        np.testing.assert_array_equal(ha["step"], hb["step"])
        np.testing.assert_allclose(ha["train_loss"], hb["train_loss"], rtol=1e-5)
        assert a.metrics["final_train_acc"] == b.metrics["final_train_acc"]
    # a concise record, like every result of the library
    text = repr(par)
    assert text.startswith("SweepResult(") and len(text.splitlines()) <= 12
    assert par.to_dict()["key"] == "alpha" and par.passed is False  # tiny: nothing generalizes
