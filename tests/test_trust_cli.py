"""The command line fails before it writes, never mixes runs, and survives Ctrl-C (issue 11.7).

Every user or environment error is one line on stderr with exit status 2 and leaves the file
system as it was; a run is written aside and moved into place when it ends; Ctrl-C exits 130
with an ``interrupted`` summary whose checks are ``n/a``; ``--resume`` continues an interrupted
run to the same result as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import implicitbias as ib
import implicitbias.experiments._common as common
import implicitbias.experiments.diagonal as diagonal
import implicitbias.experiments.runner as runner
from implicitbias.cli import main

#: The quick sparse-linear run, shrunk to about a second.
SMALL = [
    "--scale", "quick", "--set", "d=100", "--set", "n_test=500", "--set", "num_evals=20",
    "--set", "kkt_evals=3", "--set", "horizon=2.0", "--no-progress", "--no-figure",
]  # fmt: skip
RUN = ["reproduce", "sparse-linear", *SMALL]
#: Timing-dependent settings (the run must last long enough to be killed in training).
LONG = [
    "reproduce", "sparse-linear", "--scale", "quick", "--set", "d=200", "--set", "n_test=500",
    "--set", "num_evals=30", "--set", "kkt_evals=3", "--no-progress", "--no-figure",
]  # fmt: skip
#: Values that differ between otherwise identical runs.
TIMING_KEYS = ("wall_time", "train_wall_time", "solve_time", "test_eval_time")


def tree(root: Path) -> dict[str, str]:
    """Every path under ``root`` with a hash of its content (folders: 'dir')."""
    out = {}
    for p in sorted(root.rglob("*")):
        rel = str(p.relative_to(root))
        out[rel] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def usage_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``main(argv)``, expect exit status 2 and one line on stderr; return that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("implicitbias")
    return lines[0]


def partials(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if ".partial-" in p.name]


def strip_timing(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: strip_timing(v) for k, v in x.items() if k not in TIMING_KEYS and k != "started"}
    return x


def assert_same_run(a: Path, b: Path) -> None:
    """Two run folders hold the same result (history and summary), apart from wall times."""
    ha, hb = ib.History.from_csv(a / "history.csv"), ib.History.from_csv(b / "history.csv")
    assert ha.columns == hb.columns
    assert len(ha) == len(hb)
    for c in ha.columns:
        if c != "wall_time":
            np.testing.assert_array_equal(ha[c], hb[c], err_msg=c)
    sa = json.loads((a / "summary.json").read_text())
    sb = json.loads((b / "summary.json").read_text())
    assert sa["status"] == sb["status"] == "completed"
    assert strip_timing(sa) == strip_timing(sb)


def interrupt_after(monkeypatch: pytest.MonkeyPatch, evaluations: int) -> None:
    """Make the next training raise KeyboardInterrupt (as Ctrl-C) at evaluation ``evaluations``."""
    real = common.train

    def train(*args: Any, **kwargs: Any) -> Any:
        metrics = kwargs["metrics"]
        calls = [0]

        def interrupting(h: Any, t: float) -> dict[str, float]:
            calls[0] += 1
            if calls[0] == evaluations:
                raise KeyboardInterrupt
            return metrics(h, t)

        kwargs["metrics"] = interrupting
        return real(*args, **kwargs)

    monkeypatch.setattr(common, "train", train)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted run of ``RUN``."""
    out = tmp_path_factory.mktemp("reference") / "run"
    assert main([*RUN, "--out", str(out)]) == 0
    return out


# ------------------------------------------------------------------ usage and environment errors
def _file(tmp: Path) -> Path:
    f = tmp / "notes.txt"
    f.write_text("my notes\n")
    return f


def _foreign(tmp: Path) -> Path:
    d = tmp / "papers"
    d.mkdir()
    (d / "draft.tex").write_text("\\documentclass{article}\n")
    return d


ERRORS: list[tuple[str, Any, list[str]]] = [
    ("out-is-a-file", lambda t: [*RUN, "--out", str(_file(t))], ["--out", "a file"]),
    (
        "out-under-a-file",
        lambda t: [*RUN, "--out", str(_file(t) / "run")],
        ["--out", "notes.txt", "is a file"],
    ),
    ("out-unwritable", lambda t: [*RUN, "--out", "/proc/implicitbias-run"], ["--out", "/proc"]),
    (
        "out-holds-other-files",
        lambda t: [*RUN, "--out", str(_foreign(t))],
        ["--out", "'draft.tex'"],
    ),
    ("out-empty", lambda t: [*RUN, "--out="], ["--out", "''"]),
    ("device-unknown", lambda t: [*RUN, "--device", "gpu"], ["--device", "'gpu'"]),
    ("device-meta", lambda t: [*RUN, "--device", "meta"], ["--device", "'meta'"]),
    ("device-no-such-gpu", lambda t: [*RUN, "--device", "cuda:99"], ["--device", "'cuda:99'"]),
    ("set-without-equals", lambda t: [*RUN, "--set", "d"], ["--set", "KEY=VALUE", "'d'"]),
    ("set-without-key", lambda t: [*RUN, "--set", "=3"], ["--set", "'=3'"]),
    ("set-without-value", lambda t: [*RUN, "--set", "n="], ["--set n", "'n='"]),
    ("set-unknown-key", lambda t: [*RUN, "--set", "beta=1"], ["--set", "unknown fields", "'beta'"]),
    ("set-not-a-number", lambda t: [*RUN, "--set", "n=abc"], ["--set n", "'abc'"]),
    ("set-fractional-int", lambda t: [*RUN, "--set", "n=2.5"], ["--set n", "2.5"]),
    ("set-out-of-range", lambda t: [*RUN, "--set", "l1_screen=-1"], ["--set l1_screen", ">= 0"]),
    ("set-bad-choice", lambda t: [*RUN, "--set", "dtype=float16"], ["--set dtype", "'float16'"]),
    ("set-nan", lambda t: [*RUN, "--set", "lr=nan"], ["--set lr", "'nan'"]),
    (
        "set-twice",
        lambda t: [*RUN, "--set", "n=64", "--set", "n=32"],
        ["--set", "'n'", "twice"],
    ),
    (
        "set-and-option",
        lambda t: [*RUN, "--set", "alpha=4", "--alpha", "8"],
        ["--alpha", "--set alpha"],
    ),
    (
        "set-and-method",
        lambda t: [*RUN, "--set", "method=gd", "--method", "flow"],
        ["--method", "--set method"],
    ),
    ("set-k-above-d", lambda t: [*RUN, "--set", "k=101"], ["'k'", "d = 100"]),
    (
        "set-fraction-one",
        lambda t: ["reproduce", "matrix-completion", "--set", "fraction=1.0"],
        ["--set fraction", "(0, 1)"],
    ),
    ("alpha-one", lambda t: [*RUN, "--alpha", "1"], ["--alpha", "'alpha'", "> 1"]),
    ("weight-decay-zero", lambda t: [*RUN, "--weight-decay", "0"], ["--weight-decay", "> 0"]),
    ("seed-negative", lambda t: [*RUN, "--seed", "-1"], ["--seed", "-1"]),
    ("unknown-experiment", lambda t: ["reproduce", "grokking"], ["experiment", "'grokking'"]),
    ("abbreviated-option", lambda t: [*RUN, "--ou", "x"], ["unrecognized", "--ou"]),
    ("abbreviated-flag", lambda t: [*RUN, "--no-prog"], ["unrecognized", "--no-prog"]),
    ("abbreviated-resume", lambda t: [*RUN, "--res"], ["unrecognized", "--res"]),
    ("resume-nothing", lambda t: [*RUN, "--resume"], ["--resume", "nothing to resume"]),
]


@pytest.mark.parametrize(("build", "needles"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_is_one_line_exit_2_and_writes_nothing(
    build: Any, needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = build(tmp_path)
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv = [*argv, "--out", str(tmp_path / "out")]
    before = tree(tmp_path)
    line = usage_error(argv, capsys)
    for needle in needles:
        assert needle in line, (needle, line)
    assert tree(tmp_path) == before  # nothing created, nothing changed
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_device_cuda_without_cuda_is_refused_before_writing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = usage_error([*RUN, "--device", "cuda", "--out", str(tmp_path / "out")], capsys)
    assert "--device" in line and "'cuda'" in line and "CUDA is not available" in line
    assert list(tmp_path.iterdir()) == []


def test_out_that_is_the_current_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    for out in (".", str(tmp_path)):
        line = usage_error([*RUN, "--out", out], capsys)
        assert "--out" in line and "current directory" in line
    assert tree(tmp_path) == {"here": "dir"}


def test_resume_with_other_settings_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 5)
    assert main([*RUN, "--out", str(out)]) == 130
    monkeypatch.undo()
    before = tree(tmp_path)
    line = usage_error([*RUN, "--seed", "3", "--out", str(out), "--resume"], capsys)
    assert "--resume" in line and "seed 0 vs 3" in line
    line = usage_error([*RUN, "--set", "k=4", "--out", str(out), "--resume"], capsys)
    assert "--resume" in line and "k 3 vs 4" in line
    assert tree(tmp_path) == before


def test_run_recorded_before_data_source_existed_resumes(
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A config.json without ``data_source`` (written before the option existed) recorded the
    library's generator: it resumes with the default, and is refused with the other source."""
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 5)
    assert main([*RUN, "--out", str(out)]) == 130
    monkeypatch.undo()
    config = json.loads((out / "config.json").read_text())
    assert config["settings"].pop("data_source") == "library"
    (out / "config.json").write_text(json.dumps(config))
    line = usage_error(
        [*RUN, "--set", "data_source=reference", "--out", str(out), "--resume"], capsys
    )
    assert "--resume" in line and "data_source 'library' vs 'reference'" in line
    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    assert_same_run(reference, out)


def test_python_api_resume_with_nothing_to_resume(tmp_path: Path) -> None:
    with pytest.raises(ib.InvalidArgumentError, match=r"The 'resume' argument of run\b"):
        ib.experiments.run("sparse-linear", scale="tiny", out_dir=tmp_path / "x", resume=True)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ entry points
def _entry() -> list[str]:
    exe = shutil.which("implicitbias")
    return [exe] if exe else [sys.executable, "-m", "implicitbias"]


def test_version_prints_the_version_and_exits_0() -> None:
    proc = subprocess.run([*_entry(), "--version"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"implicitbias {ib.__version__}"


def test_exit_status_2_through_the_console_script(tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [*_entry(), "reproduce", "sparse-linear", "--set", "d=abc", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "--set d" in lines[0] and "'abc'" in lines[0], proc.stderr
    assert not out.exists()


# ------------------------------------------------------------------ Ctrl-C and --resume
def test_ctrl_c_exits_130_with_an_interrupted_summary_and_no_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 8)
    assert main([*RUN, "--out", str(out)]) == 130
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "interrupted" in err[0] and "--resume" in err[0]
    assert "[PASS]" not in captured.out and "[FAIL]" not in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["all_checks_passed"] is None
    assert summary["checks"]  # every check is listed ...
    for c in summary["checks"].values():  # ... and none is graded
        assert c["result"] == "n/a" and c["passed"] is None and c["value"] is None
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == summary["seed"] == 0
    assert ib.History.from_csv(out / "history.csv").columns[0] == "t"
    assert len(ib.History.from_csv(out / "history.csv")) == 7  # evaluations before the 8th
    assert (out / "checkpoint.pt").is_file() and (out / "snapshots.bin").is_file()
    assert not (out / "figure.png").exists()
    assert partials(tmp_path) == []


@pytest.mark.parametrize("evaluation", [2, 9, 20])
def test_resume_gives_the_uninterrupted_result(
    evaluation: int,
    reference: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "run"
    interrupt_after(monkeypatch, evaluation)
    assert main([*RUN, "--out", str(out)]) == 130
    monkeypatch.undo()
    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    assert_same_run(reference, out)
    config = json.loads((out / "config.json").read_text())
    assert config["resumed_from"] == str(out)
    assert not (out / "checkpoint.pt").exists()  # a completed run is not resumed again
    assert partials(tmp_path) == []
    usage_error([*RUN, "--out", str(out), "--resume"], capsys)  # nothing left to resume


def test_resume_an_interrupted_resumption(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    interrupt_after(monkeypatch, 4)
    assert main([*RUN, "--out", str(out)]) == 130
    interrupt_after(monkeypatch, 6)  # the resumed run is interrupted again, later
    assert main([*RUN, "--out", str(out), "--resume"]) == 130
    monkeypatch.undo()
    assert len(ib.History.from_csv(out / "history.csv")) > 3
    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    assert_same_run(reference, out)


def test_ctrl_c_before_training_then_resume(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(diagonal, "l1_max_margin", stop)
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 130
    monkeypatch.undo()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert summary["interrupted_during"] == "before training" and not summary["checkpoint"]
    assert {c["result"] for c in summary["checks"].values()} == {"n/a"}
    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    assert_same_run(reference, out)


def test_ctrl_c_after_training_then_resume(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C while the test set is scored: training is done and checkpointed at its end."""

    def stop(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(diagonal, "evaluate_linear", stop)
    out = tmp_path / "run"
    assert main([*RUN, "--out", str(out)]) == 130
    monkeypatch.undo()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["checkpoint"]
    assert {c["result"] for c in summary["checks"].values()} == {"n/a"}
    assert len(ib.History.from_csv(out / "history.csv")) == 20  # the whole training
    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    assert_same_run(reference, out)


def test_resume_a_gd_run_of_another_experiment(tmp_path: Path) -> None:
    """GD checkpoints on a time grid (every 1% of the horizon), not at evaluations."""
    argv = [
        "reproduce", "modular-addition", "--scale", "tiny", "--method", "gd", "--set",
        "horizon=0.5", "--no-progress", "--no-figure",
    ]  # fmt: skip
    ref, out = tmp_path / "ref", tmp_path / "run"
    assert main([*argv, "--out", str(ref)]) == 0
    real = common.train

    def train(*args: Any, **kwargs: Any) -> Any:
        metrics, calls = kwargs["metrics"], [0]

        def interrupting(h: Any, t: float) -> dict[str, float]:
            calls[0] += 1
            if calls[0] == 25:
                raise KeyboardInterrupt
            return metrics(h, t)

        return real(*args, **{**kwargs, "metrics": interrupting})

    common.train = train
    try:
        assert main([*argv, "--out", str(out)]) == 130
    finally:
        common.train = real
    assert main([*argv, "--out", str(out), "--resume"]) == 0
    assert_same_run(ref, out)


# ------------------------------------------------------------------ never mix runs
def test_rerun_replaces_the_earlier_run_only_when_it_ends(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    earlier = tree(out)
    seen: list[bool] = []
    real = runner._dispatch

    def dispatch(*args: Any, **kwargs: Any) -> Any:
        seen.append(tree(out) == earlier and len(partials(tmp_path)) == 1)
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_dispatch", dispatch)
    assert main([*RUN, "--seed", "1", "--out", str(out)]) == 0
    assert seen == [True]  # while the new run went on, the earlier one was intact
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["seed"] == summary["seed"] == 1
    assert json.loads((out / "train_log.json").read_text())["status"] == "completed"
    assert partials(tmp_path) == []


def test_failed_rerun_leaves_the_earlier_run_untouched(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    earlier = tree(out)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("out of memory")

    monkeypatch.setattr(common, "train", broken)
    with pytest.raises(RuntimeError, match="out of memory"):
        main([*RUN, "--seed", "1", "--out", str(out)])
    assert tree(out) == earlier
    assert partials(tmp_path) == []


def test_interrupted_rerun_replaces_the_earlier_run_as_a_whole(
    reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    interrupt_after(monkeypatch, 5)
    assert main([*RUN, "--seed", "2", "--out", str(out)]) == 130
    config = json.loads((out / "config.json").read_text())
    summary = json.loads((out / "summary.json").read_text())
    assert config["seed"] == summary["seed"] == 2 and summary["status"] == "interrupted"
    hist = ib.History.from_csv(out / "history.csv")
    assert len(hist) == 4 and "test_acc" not in hist.columns  # not the earlier history
    assert json.loads((out / "train_log.json").read_text())["status"] == "interrupted"


def _start(argv: list[str], out: Path) -> tuple[subprocess.Popen[str], Path]:
    """Start a run in a subprocess and wait until its partial folder holds a checkpoint."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "implicitbias", *argv, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = [p / "checkpoint.pt" for p in partials(out.parent)]
        if found and found[0].exists():
            return proc, found[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the run never checkpointed")


def test_killed_rerun_leaves_the_earlier_run_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main([*LONG, "--out", str(out)]) == 0  # the earlier run, same settings
    earlier = tree(out)
    proc, partial = _start(LONG, out)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert tree(out) == earlier  # untouched: no config of one run beside another's history
    assert partial.is_dir()
    reference = tmp_path / "reference"
    shutil.copytree(out, reference)
    assert main([*LONG, "--out", str(out), "--resume"]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["resumed_from"] == str(partial)
    assert_same_run(reference, out)
    assert partials(tmp_path) == []  # the killed run's folder is cleaned up


def test_sigint_in_a_real_process_exits_130(tmp_path: Path) -> None:
    out = tmp_path / "run"
    proc, _ = _start(LONG, out)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1].startswith("implicitbias reproduce: interrupted")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    assert {c["result"] for c in summary["checks"].values()} == {"n/a"}
    assert (out / "checkpoint.pt").is_file()


# ------------------------------------------------------------------ a run that does not complete
def test_diverged_run_exits_1_and_grades_no_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    argv = [
        "reproduce", "sparse-linear", "--scale", "quick", "--set", "d=100", "--set", "n_test=500",
        "--method", "gd", "--set", "lr=100", "--set", "horizon=1000", "--out", str(out),
        "--no-progress", "--no-figure",
    ]  # fmt: skip
    with pytest.warns(RuntimeWarning, match="diverged"):
        assert main(argv) == 1
    captured = capsys.readouterr()
    assert "'diverged'" in captured.err.strip().splitlines()[-1]
    assert "[PASS]" not in captured.out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "diverged" and summary["all_checks_passed"] is None
    assert {c["result"] for c in summary["checks"].values()} == {"n/a"}
    assert not (out / "checkpoint.pt").exists()


def test_rundir_refuses_to_replace_a_folder_of_other_files_from_python(tmp_path: Path) -> None:
    folder = _foreign(tmp_path)
    before = tree(tmp_path)
    with pytest.raises(ib.InvalidArgumentError, match=r"The 'out_dir' argument of run\b"):
        ib.experiments.run("sparse-linear", scale="tiny", out_dir=folder)
    assert tree(tmp_path) == before
    assert os.listdir(folder) == ["draft.tex"]
