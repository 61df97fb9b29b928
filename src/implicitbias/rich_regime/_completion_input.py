"""Input checks of :func:`~implicitbias.min_nuclear_norm_completion`: the shape and the
observed entries (integer indices in range, one value per entry)."""

from __future__ import annotations

from typing import Any

import numpy as np

from implicitbias._validation import as_float_array, check_int, fail, fail_type

__all__ = ["observed_entries", "shape_of"]

_FUNC = "min_nuclear_norm_completion"


def shape_of(d: Any, symmetric: bool) -> tuple[int, int]:
    """``(d1, d2)`` from ``d`` (an int or a pair); square when ``symmetric``."""
    if isinstance(d, (tuple, list)):
        if len(d) != 2:
            raise fail(_FUNC, "d", "an int or a pair (d1, d2)", f"a sequence of length {len(d)}")
        d1 = check_int(d[0], _FUNC, "d", minimum=1)
        d2 = check_int(d[1], _FUNC, "d", minimum=1)
    else:
        d1 = d2 = check_int(d, _FUNC, "d", minimum=1)
    if symmetric and d1 != d2:
        raise fail(
            _FUNC, "d", "square (an int, or d1 == d2) when symmetric=True", f"({d1}, {d2})",
            "Pass symmetric=False for a rectangular completion.",
        )  # fmt: skip
    return d1, d2


def _indices(x: Any, arg: str, bound: int) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    if a.ndim != 1:
        raise fail(_FUNC, arg, "a 1-dimensional array of indices", f"shape {a.shape}")
    if a.size == 0:
        raise fail(_FUNC, arg, "a non-empty array of indices", "an empty array")
    if not np.issubdtype(a.dtype, np.integer):
        if (
            np.issubdtype(a.dtype, np.floating)
            and np.all(np.isfinite(a))
            and np.all(a == a.round())
        ):
            a = a.astype(np.int64)
        else:
            raise fail_type(_FUNC, arg, "an array of integer indices", x)
    a = a.astype(np.int64)
    if a.min() < 0 or a.max() >= bound:
        raise fail(
            _FUNC, arg, f"indices in {{0, ..., {bound - 1}}}", f"range [{a.min()}, {a.max()}]"
        )
    return a


def observed_entries(
    rows: Any, cols: Any, values: Any, d1: int, d2: int, symmetric: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unique observed entries (i, j, m); for symmetric, i <= j. Duplicates must agree."""
    r = _indices(rows, "rows", d1)
    c = _indices(cols, "cols", d2)
    v = as_float_array(values, _FUNC, "values", ndim=1)
    if not (len(r) == len(c) == len(v)):
        raise fail(
            _FUNC, "values", "of the same length as 'rows' and 'cols'",
            f"lengths rows {len(r)}, cols {len(c)}, values {len(v)}",
        )  # fmt: skip
    if symmetric:
        r, c = np.minimum(r, c), np.maximum(r, c)
    key = r * d2 + c
    order = np.argsort(key, kind="stable")
    key, r, c, v = key[order], r[order], c[order], v[order]
    first = np.ones(len(key), dtype=bool)
    first[1:] = key[1:] != key[:-1]
    group = np.cumsum(first) - 1
    ref = v[first][group]
    # relative to the values' own size (scale-free: 1e-14 and 2e-14 disagree as 1 and 2 do)
    scale = max(float(np.max(np.abs(v))), np.finfo(np.float64).tiny)
    bad = np.abs(v - ref) > 1e-12 * scale
    if np.any(bad):
        k = int(np.flatnonzero(bad)[0])
        raise fail(
            _FUNC, "values", "consistent: an entry observed twice"
            + (" (as (i, j) or as (j, i): one entry when symmetric=True)" if symmetric else "")
            + " must have one value",
            f"entry ({int(r[k])}, {int(c[k])}) with values {float(ref[k])!r} and "
            f"{float(v[k])!r}",
        )  # fmt: skip
    return r[first], c[first], v[first]
