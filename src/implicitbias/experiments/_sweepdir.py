"""The folder of a sweep: checked before anything is written, one ``KEY=VALUE`` run folder per
value beside ``sweep.json`` and ``sweep.png``.

Like a run folder (:mod:`implicitbias.experiments._rundir`), a sweep folder is only ever used
when it is new, empty, or holds nothing but what a sweep writes, so that ``--out ~/papers``
cannot touch anything else.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
from pathlib import Path
from typing import Any

from implicitbias.experiments._rundir import checked_folder

__all__ = ["SWEEP_FILES", "check_sweep_folder", "run_folder_name", "write_json"]

#: The files of a sweep folder besides its run folders.
SWEEP_FILES = frozenset({"sweep.json", "sweep.png"})
_RUN_FOLDER = re.compile(r"^\.?[A-Za-z_]\w*=[^/]+$")
_UNSAFE = re.compile(r"[^\w.+\-=]")


def run_folder_name(key: str, value: Any) -> str:
    """``KEY=VALUE`` (numbers in ``%g`` form; other characters than letters, digits and
    ``._+-`` become ``_``)."""
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)):
        text = f"{value:g}"
    else:
        text = str(value)
    return f"{key}={_UNSAFE.sub('_', text)}"


def _is_sweep_entry(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    if name in SWEEP_FILES and entry.is_file(follow_symlinks=False):
        return True
    if name.startswith(".") and name.endswith(".tmp") and name[1:].split(".")[0] == "sweep":
        return True  # a temporary file of an atomic write of sweep.json
    return bool(_RUN_FOLDER.match(name)) and entry.is_dir(follow_symlinks=False)


def check_sweep_folder(out_dir: Any, func: str, arg: str = "out_dir") -> Path:
    """The absolute folder of a sweep, after checking that one can be written there.

    Raises
    ------
    InvalidArgumentError
        ``out_dir`` is a file, is (or contains) the current directory, or is a folder holding
        something else than a sweep's files and ``KEY=VALUE`` run folders.
    """
    return checked_folder(out_dir, func, arg, kind="sweep", owns=_is_sweep_entry, replaced=False)


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "item") and callable(x.item):
        return _jsonable(x.item())
    return x


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` as JSON atomically (non-finite numbers as ``null``)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2))
    os.replace(tmp, path)
