"""The ``implicitbias`` command line: list, reproduce (tiny scale), user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from implicitbias.cli import main


def test_list(capsys) -> None:
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("sparse-linear", "misgrokking", "matrix-completion", "modular-addition"):
        assert name in out


def test_python_dash_m_list() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "implicitbias", "list"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert "sparse-linear" in proc.stdout


def test_reproduce_tiny_writes_history_config_summary_figure(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    rc = main(
        ["reproduce", "sparse-linear", "--scale", "tiny", "--out", str(out), "--seed", "1",
         "--no-progress"]
    )  # fmt: skip
    assert rc == 0
    text = capsys.readouterr().out
    assert "t* = log(alpha)/lambda" in text and "checks:" in text and str(out) in text
    for name in ("history.csv", "history.json", "config.json", "summary.json", "figure.png"):
        assert (out / name).exists(), name
    config = json.loads((out / "config.json").read_text())
    assert config["seed"] == 1 and config["scale"] == "tiny" and config["method"] == "flow"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["final"]["test_acc"] > 0.9


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reproduce", "grokking"], "invalid choice: 'grokking'"),
        (["reproduce", "sparse-linear", "--scale", "huge"], "invalid choice: 'huge'"),
        (["reproduce", "sparse-linear", "--weight-decay=-1e-3"], "'weight_decay'"),
        (["reproduce", "sparse-linear", "--alpha", "0"], "'alpha'"),
        (["reproduce", "sparse-linear", "--alpha", "big"], "expected a number"),
        (["reproduce", "sparse-linear", "--method", "adam"], "invalid choice: 'adam'"),
        (["reproduce", "sparse-linear", "--seed", "-2"], "--seed"),
        (["reproduce", "sparse-linear", "--set", "nonsense=1"], "unknown fields"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_user_errors_exit_2_without_traceback(argv, message, capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--out", str(tmp_path)] if argv[0] == "reproduce" else argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("implicitbias")
