"""A real Ctrl-C (SIGINT to the process group, as a terminal sends it) in a parallel sweep.

``tests/test_sweep.py`` raises ``KeyboardInterrupt`` inside one run of a sequential sweep; here
the command runs in its own process group with ``--jobs 2`` and the signal reaches the sweep
and both worker processes at once, as a Ctrl-C in a terminal does. The sweep must exit 130
without hanging, leave every started run as ``interrupted`` with a checkpoint, keep no worker
alive, and ``--resume`` must continue those runs (not restart them).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="process groups and SIGINT are POSIX"
)

ARGS = [
    "reproduce", "modular-addition", "--scale", "tiny", "--no-progress", "--no-figure",
    "--sweep", "alpha=2,4,8", "--jobs", "2", "--set", "steps=2000000",
]  # fmt: skip


def _start(out: Path, *extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.Popen(
        [sys.executable, "-m", "implicitbias", *ARGS, "--out", str(out), *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,  # its own process group: the workers join it
    )


def _wait_for_training(out: Path, proc: subprocess.Popen[str], timeout: float = 240.0) -> None:
    """Until both running runs have written a partial history (training has started)."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc.poll() is not None:
            pytest.fail(f"the sweep ended before the signal: {proc.communicate()[0][-2000:]}")
        started = [q for q in out.glob(".alpha=*.partial-*") if any(q.iterdir())]
        if len(started) >= 2:
            time.sleep(3.0)  # well inside the runs' training loops
            return
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the runs did not start within the timeout")


def _interrupt(proc: subprocess.Popen[str]) -> tuple[int, str]:
    os.killpg(proc.pid, signal.SIGINT)
    try:
        text, _ = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("the sweep did not stop within 120 s of the Ctrl-C")
    return proc.returncode, text


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def test_ctrl_c_in_a_parallel_sweep_interrupts_every_run_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    proc = _start(out)
    _wait_for_training(out, proc)
    rc, text = _interrupt(proc)
    assert rc == 130, text[-2000:]
    deadline = time.monotonic() + 30
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(proc.pid), "a worker process outlived the sweep"

    s = json.loads((out / "sweep.json").read_text())
    assert s["status"] == "interrupted"
    statuses = [r["status"] for r in s["runs"]]
    # the two runs in flight got the signal; the third had not started
    assert statuses[:2] == ["interrupted", "interrupted"], statuses
    assert statuses[2] in ("interrupted", "not run"), statuses
    steps_before = {}
    for name in ("alpha=2", "alpha=4"):  # an interrupted run lands in its folder
        run = json.loads((out / name / "summary.json").read_text())
        assert run["status"] == "interrupted"
        assert (out / name / "checkpoint.pt").exists()
        steps_before[name] = (out / name / "history.csv").read_text().count("\n")
    assert not list(out.glob(".alpha=*.partial-*"))
    assert {c["result"] for c in s["checks"].values()} == {"n/a"}

    # --resume continues the interrupted runs from their checkpoints (interrupted again here)
    proc = _start(out, "--resume")
    _wait_for_training(out, proc)
    rc, text = _interrupt(proc)
    assert rc == 130, text[-2000:]
    s = json.loads((out / "sweep.json").read_text())
    assert [r["action"] for r in s["runs"][:2]] == ["resumed", "resumed"], s["runs"]
    for name in ("alpha=2", "alpha=4"):  # continued: the history kept its first part
        assert json.loads((out / name / "summary.json").read_text())["status"] == "interrupted"
        assert (out / name / "history.csv").read_text().count("\n") >= steps_before[name]
