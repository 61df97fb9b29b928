"""Files of a training run: output paths checked up front, atomic writes, the resume fingerprint,
and checkpoints (save, load, compare, and :class:`Checkpointer`: when a run writes one).

A checkpoint is a ``torch.save`` file of tensors and Python primitives only (loadable with
``torch.load(path, weights_only=True)``). It carries the run's configuration and a SHA-256
fingerprint of everything that determines the trajectory: the bytes of the inputs and labels,
their dtypes and shapes, the configuration (loss, λ, method, η, horizon, integrator and
tolerances, degree, α), the evaluation schedule and the model (parameter names and shapes, its
``repr`` and the names of its hooks). A run resumes only from a checkpoint with the same
fingerprint.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from implicitbias._validation import fail
from implicitbias.dynamics._problem import Committed

if TYPE_CHECKING:  # history.py imports the atomic writes from here
    from implicitbias.dynamics.history import History

__all__: list[str] = []

#: Version of the checkpoint layout (2: SHA-256 fingerprint of data, configuration and model).
CHECKPOINT_FORMAT = 2

_KEYS = (
    "format",
    "config",
    "fingerprint",
    "eval_times",
    "theta",
    "t",
    "n_steps",
    "n_rejected",
    "grad_evals",
    "eval_index",
    "h",
    "error_prev",
    "f",
    "history_columns",
    "history",
    "alpha",
    "wall_time",
)


# ---------------------------------------------------------------------------- paths
def sidecar(path: Path) -> Path:
    """``run.csv`` → ``run.json`` (``run.json`` → ``run.config.json``: never the CSV itself)."""
    if path.suffix == ".json":
        return path.with_suffix(".config.json")
    return path.with_suffix(".json")


def _swapcase_exists_as_same(path: str) -> bool:
    """Whether the deepest existing ancestor of ``path`` lives on a case-insensitive file
    system (its case-swapped spelling names the same directory)."""
    probe = os.path.dirname(path)
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    swapped = probe.swapcase()
    if swapped == probe or not os.path.exists(swapped):
        return False
    try:
        return os.path.samefile(probe, swapped)
    except OSError:  # pragma: no cover - raced with a deletion
        return False


def same_file(a: Path, b: Path) -> bool:
    """Whether two spellings name one file: the same resolved path (``..``, relative paths,
    symbolic links), the same existing file (hard links), or names that differ only in case on
    a case-insensitive file system."""
    ra, rb = os.path.realpath(a), os.path.realpath(b)
    if ra == rb:
        return True
    if os.path.exists(ra) and os.path.exists(rb):
        try:
            return os.path.samefile(ra, rb)
        except OSError:  # pragma: no cover - raced with a deletion
            return False
    return ra.casefold() == rb.casefold() and _swapcase_exists_as_same(ra)


def check_output_paths(func: str, history: Path | None, checkpoint: Path | None) -> None:
    """Refuse, before anything is written, outputs that are directories, sit under a file or in
    a directory that cannot be written, or name one file twice (the history CSV, its JSON
    sidecar and the checkpoint)."""
    outputs: list[tuple[str, str, Path]] = []
    if history is not None:
        outputs.append(("history_path", "history_path", history))
        outputs.append(("history_path", "the JSON sidecar of history_path", sidecar(history)))
    if checkpoint is not None:
        outputs.append(("checkpoint_path", "checkpoint_path", checkpoint))
    for arg, _, path in outputs:
        if path.is_dir():
            raise fail(func, arg, "a file path", f"{str(path)!r}, a directory")
        parent = Path(os.path.realpath(path)).parent
        ancestor = parent
        while not ancestor.exists() and ancestor.parent != ancestor:
            ancestor = ancestor.parent
        if not ancestor.is_dir():
            raise fail(
                func,
                arg,
                "a path whose folders can be created",
                f"{str(path)!r}, under the file {str(ancestor)!r}",
            )
        if not os.access(ancestor, os.W_OK | os.X_OK):
            raise fail(
                func,
                arg,
                "a path in a writable folder",
                f"{str(path)!r} (the folder {str(ancestor)!r} is not writable)",
            )
    for i, (arg_a, what_a, a) in enumerate(outputs):
        for arg_b, _, b in outputs[i + 1 :]:
            if not same_file(a, b):
                continue
            if arg_a == arg_b:  # the history CSV and its own sidecar (a symbolic link)
                raise fail(
                    func,
                    arg_a,
                    "a file whose JSON sidecar is another file",
                    f"{str(a)!r}, whose sidecar {str(b)!r} is the same file",
                )
            raise fail(
                func,
                arg_b,
                "a file other than history_path and its JSON sidecar (each output its own file)",
                f"{str(b)!r}, the same file as {what_a} ({str(a)!r})",
                "Give history_path and checkpoint_path different names, e.g. run.csv and run.pt.",
            )


def prepare_folders(func: str, *paths: tuple[str, Path | None]) -> None:
    """Create the folders of the outputs (after :func:`check_output_paths`)."""
    for arg, path in paths:
        if path is None:
            continue
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise fail(
                func, arg, "a path whose folders can be created", f"{str(path)!r} ({exc})"
            ) from exc


# ---------------------------------------------------------------------------- atomic writes
def atomic_write(path: Path, write: Callable[[Any], None]) -> None:
    """Write through ``write(file)`` into a fresh temporary file beside ``path``, then rename it
    over ``path``: a process killed at any moment leaves the old file or the new one whole."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:  # pragma: no cover - already gone
            pass
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda fh: fh.write(text.encode()))


def write_sidecar(
    hist_file: Path | None, config: dict[str, Any], alpha: float, status: str, **outcome: Any
) -> None:
    """The JSON beside the history CSV (:func:`sidecar`): configuration, status and, at the
    end, the outcome; replaced atomically."""
    if hist_file is not None:
        side = {"config": config, "alpha": alpha, "status": status, **outcome}
        atomic_write_text(sidecar(hist_file), json.dumps(side, indent=2))


# ---------------------------------------------------------------------------- fingerprint
def _update_tensor(hsh: Any, name: str, t: torch.Tensor) -> None:
    c = t.detach().to("cpu").contiguous()
    hsh.update(f"{name}:{c.dtype}:{tuple(c.shape)};".encode())
    hsh.update(c.reshape(-1).view(torch.uint8).numpy().tobytes())


def data_digest(X: torch.Tensor, y: torch.Tensor) -> str:
    """SHA-256 of the inputs and labels as the run sees them (bytes, dtype, shape)."""
    hsh = hashlib.sha256()
    _update_tensor(hsh, "X", X)
    _update_tensor(hsh, "y", y)
    return hsh.hexdigest()


_HOOK_SLOTS = ("_forward_pre_hooks", "_forward_hooks", "_backward_pre_hooks", "_backward_hooks")


def _hook_names(model: torch.nn.Module) -> list[str]:
    """The hooks registered on each submodule, by qualified name (they change the function
    without changing the ``repr``: a forward hook that rescales a layer's output)."""
    out = []
    for name, mod in model.named_modules():
        for slot in _HOOK_SLOTS:
            for hook in getattr(mod, slot, {}).values():
                qual = getattr(hook, "__qualname__", None) or type(hook).__qualname__
                out.append(f"{name}:{slot}:{getattr(hook, '__module__', '')}.{qual}")
    return out


def model_digest(model: torch.nn.Module) -> str:
    """SHA-256 of the model's architecture: its ``repr``, its trainable parameters' names,
    shapes and dtypes (not their values: a run resumes from the checkpoint's θ), and the
    qualified names of the hooks on its submodules."""
    names = [
        f"{n}:{tuple(p.shape)}:{p.dtype}" for n, p in model.named_parameters() if p.requires_grad
    ]
    text = "\n".join([*names, repr(model), *_hook_names(model)])
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(config: dict[str, Any], times: np.ndarray) -> str:
    """SHA-256 of a run's configuration (which holds the data and model digests) and schedule."""
    hsh = hashlib.sha256(json.dumps(config, sort_keys=True, default=repr).encode())
    hsh.update(np.ascontiguousarray(times, dtype=np.float64).tobytes())
    return hsh.hexdigest()


# ---------------------------------------------------------------------------- checkpoints
def all_finite(*tensors: torch.Tensor | None) -> bool:
    """Whether every entry of the tensors is finite. A finite sum proves it (one reduction and
    one host read per tensor); only a non-finite sum (NaN, inf, or an overflowing sum of huge
    finite entries) is checked entry by entry."""
    present = [t for t in tensors if t is not None]
    if not present:
        return True
    if present[0].device.type == "cpu":
        total = 0.0
        for t in present:
            total += t.sum().item()
    else:  # one host synchronization for all of them
        total = torch.stack([t.sum().to(torch.float64) for t in present]).sum().item()
    if math.isfinite(total):
        return True
    return all(bool(torch.isfinite(t).all()) for t in present)


def save_checkpoint(path: Path, obj: dict[str, Any]) -> bool:
    """Write ``obj`` atomically; refuse (return False, leaving the file as it was) when its θ or
    its flow stage F is not finite, so a good checkpoint is never replaced by a diverged one."""
    if not all_finite(obj["theta"], obj.get("f")):
        return False
    atomic_write(path, lambda fh: torch.save(obj, fh))
    return True


def _describe(value: Any) -> str:
    if isinstance(value, str) and len(value) == 64:
        return value[:12] + "…"
    return repr(value)


def load_checkpoint(
    func: str,
    path: Path,
    config: dict[str, Any],
    times: np.ndarray,
    digest: str,
) -> dict[str, Any]:
    """Read a checkpoint for ``resume=True`` and check that it belongs to this run: same format,
    same fingerprint; otherwise an error naming ``checkpoint_path`` and what differs."""
    expect = "a checkpoint written by train for the same run when resume=True"
    try:
        ck = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as exc:  # torch raises several types for files it cannot read
        raise fail(
            func,
            "checkpoint_path",
            expect,
            f"{str(path)!r}, which torch.load cannot read ({type(exc).__name__})",
            "Pass resume=False to start afresh (the file is then overwritten).",
        ) from exc
    if not isinstance(ck, dict) or "format" not in ck:
        raise fail(func, "checkpoint_path", expect, f"{str(path)!r}, not a train checkpoint")
    if ck["format"] != CHECKPOINT_FORMAT or any(k not in ck for k in _KEYS):
        raise fail(
            func,
            "checkpoint_path",
            expect,
            f"a checkpoint of format {ck['format']!r} (this version writes {CHECKPOINT_FORMAT})",
            "Resume with the version that wrote it, or pass resume=False to start afresh.",
        )
    saved = ck["config"] if isinstance(ck["config"], dict) else {}
    diff = [
        f"{k}: {_describe(saved.get(k))} (checkpoint) vs {_describe(v)} (this call)"
        for k, v in config.items()
        if saved.get(k) != v
    ]
    diff += [f"{k}: only in the checkpoint" for k in saved if k not in config]
    saved_times = np.asarray(ck["eval_times"], dtype=np.float64)
    if saved_times.shape != times.shape or not np.array_equal(saved_times, times):
        diff.append("eval_times differ")
    if not diff and ck["fingerprint"] != digest:
        diff.append("fingerprint")
    if diff:
        raise fail(
            func,
            "checkpoint_path",
            expect,
            "one that differs in " + "; ".join(diff),
            "Resuming would continue another run's trajectory; use another checkpoint_path, "
            "or resume=False to start afresh.",
        )
    theta = ck["theta"]
    if not isinstance(theta, torch.Tensor) or theta.shape != (int(config["p"]),):
        raise fail(func, "checkpoint_path", expect, "a checkpoint whose θ has the wrong shape")
    if not all_finite(theta, ck["f"]):
        raise fail(func, "checkpoint_path", expect, "a checkpoint with non-finite parameters")
    return ck


class Checkpointer:
    """When and what a run checkpoints.

    A checkpoint holds the committed state (θ, time, counters, the flow's step-size controller
    and F(θ)), the schedule position, the history up to that state and the wall time so far,
    beside the run's configuration and fingerprint. It is written (atomically) every ``every``
    units of gradient-flow time — at the first step boundary past each multiple — or, when
    ``every`` is None, after every step that recorded an evaluation; and never with non-finite
    parameters. A fresh run checkpoints its first state; a resumed one sets the clock with
    :meth:`start_clock`.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        config: dict[str, Any],
        digest: str,
        times: np.ndarray,
        alpha: float,
        every: float | None,
        history: History,
        wall: Callable[[], float],
    ) -> None:
        self.path = path
        self.static: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "config": config,
            "fingerprint": digest,
            "eval_times": [float(v) for v in times],
            "alpha": alpha,
        }
        self.every = every
        self.history = history
        self.wall = wall
        self.next_ckpt = 0.0

    def save(self, s: Committed) -> bool:
        """Checkpoint the committed state ``s`` (never a non-finite one); False if not written."""
        if self.path is None:
            return False
        data = self.history.to_lists()
        cols = self.history.columns
        obj = dict(self.static)
        obj.update(
            {
                "theta": s.theta.detach().clone(),
                "t": s.t,
                "n_steps": s.n_steps,
                "n_rejected": s.n_rejected,
                "grad_evals": s.grad_evals,
                "eval_index": s.eval_index,
                "h": s.h,
                "error_prev": s.error_prev,
                "f": None if s.f is None else s.f.detach().clone(),
                "history_columns": cols,
                "history": {c: data[c][: s.history_len] for c in cols},
                "wall_time": self.wall(),
            }
        )
        return save_checkpoint(self.path, obj)

    def start_clock(self, s: Committed) -> None:
        """Set the time of the next periodic checkpoint after the committed state ``s``."""
        if self.every is not None:
            self.next_ckpt = (math.floor(s.t / self.every) + 1) * self.every

    def due(self, t: float) -> bool:
        """Whether a periodic checkpoint is due at time ``t``."""
        return self.every is not None and t >= self.next_ckpt

    def maybe_save(self, s: Committed, evaluated: bool) -> None:
        """Checkpoint ``s`` if one is due: after an evaluation (no ``every``), or at the
        periodic time."""
        if self.path is None:
            return
        if self.every is None:
            if evaluated:
                self.save(s)
        elif s.t >= self.next_ckpt:
            self.save(s)
            self.start_clock(s)
