"""The scripts in examples/ run in quick mode, exit 0 and print their key numbers.

Each example takes 5–25 s in a fresh interpreter on a 2-core machine (about a minute in all),
so the module is marked ``slow``: run it with ``python -m pytest -m slow tests/test_examples.py``.
CI also runs every example directly with ``--quick``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NUMBER = r"([-+]?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?)"


def run_example(name: str, *args: str, tmp_path: Path) -> str:
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), "--quick", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=600,
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def number(pattern: str, text: str) -> float:
    match = re.search(pattern.replace("NUM", NUMBER), text)
    assert match is not None, f"no match for {pattern!r} in:\n{text}"
    return float(match.group(1))


# tests/test_docs.py checks (in the default suite) that every script in examples/ is run here.


def test_kkt_check_mlp(tmp_path: Path) -> None:
    out = run_example("kkt_check_mlp.py", tmp_path=tmp_path)
    early = number(r"epsilon_rel early = NUM", out)
    final = number(r"epsilon_rel final = NUM", out)
    assert 0 < final < early
    assert number(r"epsilon_rel drop = NUM", out) >= 5
    assert "KKTReport (classification, L = 2)" in out


def test_max_margin_baselines(tmp_path: Path) -> None:
    out = run_example("max_margin_baselines.py", tmp_path=tmp_path)
    acc1 = number(r"l1 test accuracy = NUM", out)
    acc2 = number(r"l2 test accuracy = NUM", out)
    assert acc1 >= 0.95 and acc1 - acc2 >= 0.2
    assert number(r"l1 max margin: margin = NUM", out) == pytest.approx(1 / 3, rel=1e-3)


def test_ntk_vs_trained(tmp_path: Path) -> None:
    out = run_example("ntk_vs_trained.py", tmp_path=tmp_path)
    assert number(r"sign agreement \(network vs NTK predictor\) = NUM", out) >= 0.9
    assert number(r"output correlation = NUM", out) >= 0.95
    assert number(r"t/t\* = NUM", out) < 0.1


def test_grokking(tmp_path: Path) -> None:
    out = run_example("grokking.py", "--out-dir", str(tmp_path / "runs"), tmp_path=tmp_path)
    assert "all checks passed = True" in out
    assert number(r"l1 max-margin test accuracy \(rich regime\)\s+= NUM", out) >= 0.95
    assert number(r"final: test accuracy = NUM", out) >= 0.95
    figure = re.search(r"figure: (\S+)", out)
    assert figure is not None and Path(figure.group(1)).is_file()


def test_grid_search_lp(tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    out = run_example("grid_search_lp.py", tmp_path=tmp_path)
    assert number(r"best p = NUM", out) == 1
    best = number(r"test accuracy \(best p\) = NUM", out)
    l2 = number(r"test accuracy \(p = 2\) = NUM", out)
    assert best - l2 >= 0.1
    assert number(r"relative gap = NUM", out) < 1e-6
