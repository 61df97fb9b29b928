"""Run folders: checked before anything is written, written aside, moved into place at the end.

A run never writes into its destination ``DEST`` directly. It writes into a fresh sibling
folder ``.DEST.partial-<random suffix>`` (same parent, so the same file system) and, when it ends
(completed, diverged or interrupted), that folder replaces ``DEST`` in one atomic exchange
(``renameat2(RENAME_EXCHANGE)`` on Linux; elsewhere two renames, between which ``DEST`` is
briefly absent but never mixed). The earlier run in ``DEST`` stays intact until then and is
deleted afterwards. A process killed outright (SIGKILL, power loss) leaves ``DEST`` as it was
and its ``.DEST.partial-*`` folder beside it; ``--resume`` continues from that folder's
checkpoint, and the next run that lands in ``DEST`` deletes such leftovers.

Only folders that look like runs are ever replaced: ``DEST`` must be absent, empty, or hold
nothing but the files a run writes, so that ``--out ~/papers`` cannot delete anything.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from implicitbias._validation import fail, fail_type

#: The files a run writes (and the only ones a replaced destination may hold).
RUN_FILES = frozenset(
    {
        "history.csv",
        "history.json",
        "train_log.csv",
        "train_log.json",
        "config.json",
        "summary.json",
        "figure.png",
        "checkpoint.pt",
        "snapshots.bin",
    }
)
#: Who is writing a partial folder: ``{"pid": ..., "host": ...}`` (removed before it lands).
OWNER = ".owner.json"
CHECKPOINT = "checkpoint.pt"
SNAPSHOTS = "snapshots.bin"
#: The files a resumed run takes over from the interrupted one.
RESUME_FILES = (CHECKPOINT, SNAPSHOTS)


def _is_run_file(entry: os.DirEntry[str]) -> bool:
    """A file a run writes (or a temporary file of an atomic write of one)."""
    name = entry.name
    if name.startswith(".") and name.endswith(".tmp"):  # e.g. .checkpoint.pt.x1y2.tmp
        name = name[1:].rsplit(".", 2)[0]
    known = name in RUN_FILES or name == OWNER or name.startswith("checkpoint.")
    return known and not entry.is_dir(follow_symlinks=False)


def _partial_prefix(dest: Path) -> str:
    return f".{dest.name}.partial-"


def checked_folder(
    out_dir: Any,
    func: str,
    arg: str,
    *,
    kind: str,
    owns: Callable[[os.DirEntry[str]], bool],
    replaced: bool,
) -> Path:
    """``out_dir`` resolved, after the checks every output folder shares (of a run or of a
    sweep, ``kind``): a non-empty path, not a file, not the current directory or one of its
    parents, and new, empty, or holding only entries ``owns`` accepts. ``replaced``: the
    folder is replaced as a whole (a run), which the messages say."""
    if isinstance(out_dir, bytes) or not isinstance(out_dir, (str, os.PathLike)):
        raise fail_type(func, arg, "a folder path (str or os.PathLike)", out_dir)
    raw = os.fspath(out_dir)
    if not isinstance(raw, str) or not raw.strip():
        raise fail(func, arg, "a non-empty folder path", repr(raw))
    dest = Path(raw).expanduser().resolve()
    if dest.exists() and not dest.is_dir():
        raise fail(func, arg, f"a folder (new or of an earlier {kind})", f"{str(dest)!r}, a file")
    cwd = Path.cwd().resolve()
    if dest == cwd or dest in cwd.parents:
        raise fail(
            func,
            arg,
            "a folder other than the current directory and its parents"
            + (f" (a {kind} replaces it)" if replaced else ""),
            repr(str(dest)),
        )
    if dest.is_dir():
        try:
            with os.scandir(dest) as it:
                foreign = sorted(e.name for e in it if not owns(e))
        except OSError as exc:
            raise fail(func, arg, "a readable folder", f"{str(dest)!r} ({exc.strerror})") from exc
        if foreign:
            shown = ", ".join(repr(n) for n in foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise fail(
                func,
                arg,
                f"a new folder, an empty one, or the folder of an earlier {kind}"
                + (" (which is replaced)" if replaced else ""),
                f"{str(dest)!r}, which holds {shown}",
                f"Choose another folder; a {kind} never deletes files it did not write.",
            )
    return dest


def check_destination(out_dir: Any, func: str, arg: str = "out_dir") -> Path:
    """The absolute destination folder of a run, after checking that a run can land there.

    Nothing is created or changed (a probe folder is made and removed in the nearest existing
    ancestor, the only test of writability that also holds for root, read-only mounts and
    ``/proc``).

    Raises
    ------
    InvalidArgumentError
        ``out_dir`` is a file, lies under a file, is not writable, is (or contains) the current
        directory, or is a folder holding files that are not a run's.
    """
    dest = checked_folder(out_dir, func, arg, kind="run", owns=_is_run_file, replaced=True)
    ancestor = dest.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise fail(
            func,
            arg,
            "a path whose parents are folders",
            f"{str(dest)!r}: {str(ancestor)!r} is a file",
        )
    probe = ancestor / f".implicitbias-probe-{secrets.token_hex(4)}"
    try:
        os.mkdir(probe)
        os.rmdir(probe)
    except OSError as exc:
        raise fail(
            func,
            arg,
            "a folder in a writable location",
            f"{str(dest)!r}: cannot write in {str(ancestor)!r} ({exc.strerror})",
        ) from exc
    return dest


def _owner_alive(folder: Path) -> bool:
    """Whether the process that wrote ``folder`` may still be running (unknown: True)."""
    try:
        owner = json.loads((folder / OWNER).read_text())
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        return True
    if owner.get("host") != socket.gethostname():
        return True
    pid = owner.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _leftovers(dest: Path) -> list[Path]:
    """Partial folders of ``dest`` whose writer is gone (killed runs)."""
    if not dest.parent.is_dir():
        return []
    prefix = _partial_prefix(dest)
    out = []
    for p in dest.parent.iterdir():
        if p.name.startswith(prefix) and p.is_dir() and not p.is_symlink():
            if not _owner_alive(p):
                out.append(p)
    return out


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def find_resumable(dest: Path) -> list[tuple[Path, dict[str, Any]]]:
    """The interrupted runs of ``dest`` with their ``config.json``, most useful first.

    Candidates: ``dest`` itself when its summary says ``"interrupted"`` (a Ctrl-C), and the
    partial folders of killed runs. Those with a checkpoint come first, newest first; then
    those without one (interrupted before training), newest first.
    """
    ranked: list[tuple[bool, float, Path, dict[str, Any]]] = []
    summary = _read_json(dest / "summary.json") if dest.is_dir() else None
    folders = _leftovers(dest)
    if summary is not None and summary.get("status") == "interrupted":
        folders.append(dest)
    for folder in folders:
        config = _read_json(folder / "config.json")
        if config is None:
            continue
        has_checkpoint = (folder / CHECKPOINT).is_file()
        marker = folder / (CHECKPOINT if has_checkpoint else "config.json")
        try:
            stamp = marker.stat().st_mtime
        except OSError:
            continue
        ranked.append((has_checkpoint, stamp, folder, config))
    ranked.sort(key=lambda r: (r[0], r[1]), reverse=True)
    return [(folder, config) for _, _, folder, config in ranked]


def new_workdir(dest: Path) -> Path:
    """A fresh partial folder next to ``dest`` (its parents are created), owned by this process."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    while True:
        work = dest.parent / f"{_partial_prefix(dest)}{secrets.token_hex(4)}"
        try:
            os.mkdir(work)  # mode 0o777 & ~umask, like the folder it will become
            break
        except FileExistsError:  # pragma: no cover - 32 random bits
            continue
    owner = {"pid": os.getpid(), "host": socket.gethostname()}
    (work / OWNER).write_text(json.dumps(owner))
    return work


def take_over(source: Path, work: Path) -> None:
    """Copy the resume state of an interrupted run into the partial folder of its resumption."""
    for name in RESUME_FILES:
        if (source / name).is_file():
            shutil.copy2(source / name, work / name)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return rc == 0


def land(work: Path, dest: Path) -> None:
    """Move the finished partial folder ``work`` to ``dest``, replacing an earlier run there.

    Call with SIGINT deferred (:func:`deferred_sigint`). Afterwards the earlier run and the
    leftovers of killed runs of ``dest`` are deleted.
    """
    (work / OWNER).unlink(missing_ok=True)
    if dest.is_dir() and not dest.is_symlink():
        if _exchange(work, dest):
            shutil.rmtree(work, ignore_errors=True)  # now the earlier run
        else:  # pragma: no cover - non-Linux fallback
            old = dest.parent / f"{_partial_prefix(dest)}old-{secrets.token_hex(4)}"
            os.rename(dest, old)
            os.rename(work, dest)
            shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(work, dest)
    for leftover in _leftovers(dest):
        shutil.rmtree(leftover, ignore_errors=True)


def discard(work: Path) -> None:
    """Delete a partial folder (a run that failed with an error)."""
    shutil.rmtree(work, ignore_errors=True)


class _Deferred:
    requested = False


@contextlib.contextmanager
def deferred_sigint() -> Iterator[_Deferred]:
    """Hold Ctrl-C (SIGINT) while the last files are written and moved: a second Ctrl-C
    interrupts at once. ``.requested`` tells whether one arrived. Main thread only."""
    state = _Deferred()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, frame: Any) -> None:
        if state.requested:
            raise KeyboardInterrupt
        state.requested = True

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # pragma: no cover - embedded interpreters
        yield state
        return
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)
