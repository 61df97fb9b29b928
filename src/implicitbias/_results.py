"""Result records that read well: a concise ``repr``, ``to_dict()`` and ``to_frame()``.

Every result the library returns gets these from one of two bases, added with one line to its
class statement:

:class:`ResultRecord` (the frozen solver and training records: ``KernelSVMResult``,
``MaxMarginResult``, ``KKTReport``, ``TrainResult``, ...)
    ``repr`` lists every public field with its value summarized (numbers to 6 significant
    digits, strings quoted, an array as ``array(shape=(100000,), dtype=float64)``, a tensor as
    ``tensor(shape=(3, 3), dtype=torch.float32)``, a module by its parameter count), wrapped at
    100 columns, so that a record of any size prints in a few lines, as scikit-learn's and
    cvxpy's objects do. ``to_dict()`` returns the fields; ``to_frame()`` a one-row
    ``pandas.DataFrame`` of the scalar fields.
:class:`TableRecord` (``History``)
    ``to_dict()`` returns ``{column: float64 array}``; ``to_frame()`` the table as a
    ``pandas.DataFrame``.

pandas is optional: ``to_frame`` raises an :class:`ImportError` that says how to install it;
nothing else needs it.

The module also holds :func:`match_input`, which gives a method's numpy answer back as a tensor
when it was called with a tensor (the library's rule: numpy in, numpy out; tensors in, tensors
out).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

__all__ = ["ResultRecord", "TableRecord", "summarize", "match_input", "REPR_WIDTH"]

#: Width (in characters) at which a record's ``repr`` wraps its fields.
REPR_WIDTH = 100
# containers shown in full when they are this small and hold scalars only
_SMALL = 4
_TEXT = 60


def _pandas(what: str) -> Any:
    """The ``pandas`` module, or an :class:`ImportError` that says what needs it and how to get
    it."""
    try:
        return importlib.import_module("pandas")
    except ImportError as exc:
        raise ImportError(
            f"{what} needs pandas, an optional dependency of implicitbias that is not installed: "
            "pip install pandas (to_dict() gives the same values without it)."
        ) from exc


def _float(v: float) -> str:
    text = format(v, ".6g")
    if text.lstrip("-").isdigit():  # keep floats recognisable: 2.0, not 2
        text += ".0"
    return text


def _scalar(v: Any) -> Any:
    """A numpy scalar as the Python scalar it holds; anything else unchanged."""
    return v.item() if isinstance(v, np.generic) else v


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (bool, int, float, str))


def _short_text(s: str) -> str:
    return repr(s) if len(s) <= _TEXT else repr(s[: _TEXT - 3] + "...")


def _shape(shape: Any) -> str:
    return repr(tuple(int(k) for k in shape))


def summarize(value: Any) -> str:
    """A one-line summary of a field's value for a record's ``repr`` (never an array's body).

    Numbers print to 6 significant digits, strings quoted (cut at 60 characters), arrays and
    tensors as their shape and dtype, modules as their class and parameter count, records and
    histories by their size, small containers of scalars in full and others by their length;
    any other object by its own ``repr`` when that is one short line, else by its class name.
    """
    v = _scalar(value)
    if v is None or isinstance(v, (bool, int)):
        return repr(v)
    if isinstance(v, float):
        return _float(v)
    if isinstance(v, str):
        return _short_text(v)
    if isinstance(v, np.ndarray):
        return f"array(shape={_shape(v.shape)}, dtype={v.dtype})"
    if isinstance(v, torch.Tensor):
        where = "" if v.device.type == "cpu" else f", device='{v.device}'"
        return f"tensor(shape={_shape(v.shape)}, dtype={v.dtype}{where})"
    if isinstance(v, TableRecord):
        return f"{type(v).__name__}({len(v)} rows, {len(v.columns)} columns)"
    if isinstance(v, ResultRecord) or dataclasses.is_dataclass(v):
        return f"{type(v).__name__}(...)"
    if isinstance(v, torch.nn.Module):
        inner = getattr(v, "model", None)
        of = f"{type(inner).__name__}, " if isinstance(inner, torch.nn.Module) else ""
        count = sum(p.numel() for p in v.parameters())
        return f"{type(v).__name__}({of}{count} parameters)"
    if isinstance(v, os.PathLike):
        path = os.fspath(v)
        return _short_text(path if isinstance(path, str) else repr(path))
    if isinstance(v, Mapping):
        items = [(k, _scalar(x)) for k, x in v.items()]
        if len(items) <= _SMALL and all(isinstance(k, str) and _is_scalar(x) for k, x in items):
            return "{" + ", ".join(f"{k!r}: {summarize(x)}" for k, x in items) + "}"
        return f"{type(v).__name__}({len(items)} keys)"
    if isinstance(v, (list, tuple)):
        if len(v) <= _SMALL and all(_is_scalar(_scalar(x)) for x in v):
            body = ", ".join(summarize(x) for x in v)
            return f"[{body}]" if isinstance(v, list) else f"({body}{',' if len(v) == 1 else ''})"
        return f"{type(v).__name__}(len={len(v)})"
    try:
        text = repr(v)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break ours
        text = ""
    if text and "\n" not in text and len(text) <= _TEXT:
        return text
    return f"<{type(v).__name__}>"


def render(name: str, items: list[tuple[str, str]], width: int = REPR_WIDTH) -> str:
    """``name(k1=v1, k2=v2, ...)`` on one line when it fits in ``width``, else the fields
    packed into indented lines of at most ``width`` characters (a longer single field gets a
    line of its own)."""
    parts = [f"{k}={v}" for k, v in items]
    one = f"{name}({', '.join(parts)})"
    if len(one) <= width:
        return one
    lines: list[str] = []
    line = ""
    for part in parts:
        piece = f"{part},"
        if line and 4 + len(line) + 1 + len(piece) > width:
            lines.append("    " + line)
            line = piece
        else:
            line = f"{line} {piece}" if line else piece
    lines.append("    " + line)
    return f"{name}(\n" + "\n".join(lines) + "\n)"


class ResultRecord:
    """Base of the library's frozen result dataclasses: concise ``repr``, ``to_dict``,
    ``to_frame``.

    Put it in the class statement of a dataclass (``@dataclass(frozen=True) class
    KernelSVMResult(ResultRecord): ...``). The ``repr`` shows each public field (not those
    declared with ``field(repr=False)`` or named ``_...``) through :func:`summarize`; a class
    that defines its own ``__repr__`` keeps it.
    """

    __slots__ = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``@dataclass`` runs after this and writes a field-by-field __repr__ unless the class
        # already has one in its own namespace: give it ours (a class's own __repr__ stays).
        if "__repr__" not in cls.__dict__:
            cls.__repr__ = ResultRecord.__repr__  # type: ignore[method-assign]

    def _public_fields(self) -> list[dataclasses.Field[Any]]:
        return [f for f in dataclasses.fields(self) if not f.name.startswith("_")]  # type: ignore[arg-type]

    def __repr__(self) -> str:
        items = [
            (f.name, summarize(getattr(self, f.name))) for f in self._public_fields() if f.repr
        ]
        return render(type(self).__name__, items)

    def to_dict(self, *, scalars_only: bool = False) -> dict[str, Any]:
        """The record's public fields as a dict, in declaration order.

        Parameters
        ----------
        scalars_only : bool, default False
            ``False``: every public field. ``True``: only the fields whose value is ``None``,
            a bool, an int, a float or a string — what a tracker (TensorBoard, W&B, MLflow) or
            a table row takes.

        Returns
        -------
        dict
            ``{field name: value}``. Numpy scalars become the Python scalars they hold; every
            other value is the record's own object, not a copy: numpy arrays stay numpy arrays,
            tensors stay tensors, and nested records, histories and models are returned as they
            are. Deprecated aliases and private fields (``_...``) are left out.
            ``dataclasses.replace(record, **record.to_dict())`` rebuilds an equal record.
        """
        if not isinstance(scalars_only, bool):
            raise TypeError(
                f"The 'scalars_only' argument of {type(self).__name__}.to_dict must be True or "
                f"False; got {scalars_only!r} ({type(scalars_only).__name__}) instead."
            )
        out = {f.name: _scalar(getattr(self, f.name)) for f in self._public_fields()}
        if scalars_only:
            out = {k: v for k, v in out.items() if _is_scalar(v)}
        return out

    def to_frame(self) -> Any:
        """The scalar fields as a one-row ``pandas.DataFrame`` (``to_dict(scalars_only=True)``).

        ``pandas.concat([r.to_frame() for r in results], ignore_index=True)`` tabulates a sweep.
        Needs pandas (an optional dependency): an :class:`ImportError` says so otherwise.
        """
        pd = _pandas(f"{type(self).__name__}.to_frame")
        return pd.DataFrame([self.to_dict(scalars_only=True)])


class TableRecord:
    """Base of a table of float columns (``History``): ``to_dict`` and ``to_frame``.

    A subclass provides ``columns`` (the names, in order), ``as_dict()`` (``{name: float64
    array}``) and ``__len__`` (the number of rows).
    """

    __slots__ = ()

    @property
    def columns(self) -> list[str]:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    def as_dict(self) -> dict[str, np.ndarray]:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    def __len__(self) -> int:  # pragma: no cover - provided by the subclass
        raise NotImplementedError

    def to_dict(self) -> dict[str, np.ndarray]:
        """All columns as ``{name: float64 array}`` in column order (new arrays)."""
        return self.as_dict()

    def to_frame(self) -> Any:
        """The table as a ``pandas.DataFrame``: one float64 column per column, one row per
        record, in order. Needs pandas (an optional dependency): an :class:`ImportError` says
        so otherwise."""
        pd = _pandas(f"{type(self).__name__}.to_frame")
        return pd.DataFrame(self.as_dict(), columns=self.columns)


def match_input(out: np.ndarray, like: Any, *, dtype: torch.dtype | None = None) -> Any:
    """``out`` as a tensor on ``like``'s device when ``like`` is a tensor, else ``out``.

    The tensor has ``dtype`` when given (e.g. ``torch.int64`` for class indices), else
    ``like``'s dtype when that is a floating dtype, else float64 (integer and boolean inputs),
    so a method answers in the type it was asked in: numpy in, numpy out; tensors in, tensors
    out.
    """
    if not isinstance(like, torch.Tensor):
        return out
    if dtype is None:
        dtype = like.dtype if like.is_floating_point() else torch.float64
    return torch.as_tensor(np.ascontiguousarray(out)).to(device=like.device, dtype=dtype)
