"""Validation of arguments at the public boundary, in one place so that messages read alike.

Every message names the function and the argument, states the expectation (with numbers), and
says what was received: ``The 'y' argument of kernel_svm must be a vector of labels in {-1, +1};
got values [0, 1] instead. Convert {0, 1} labels with y = 2*y - 1.``
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from implicitbias._errors import InvalidArgumentError, InvalidArgumentTypeError

__all__ = [
    "fail",
    "fail_type",
    "as_float_array",
    "as_pm1_labels",
    "as_class_labels",
    "as_kernel_matrix",
    "check_same_length",
    "check_positive",
    "check_nonnegative",
    "check_choice",
    "check_int",
    "describe",
    "check_float_dtype",
    "check_bool",
    "check_cvxpy_solver",
    "check_model_input",
    "check_scale_fits",
]


def describe(x: Any) -> str:
    """A short description of a received value, for error messages."""
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return f"a torch.Tensor of shape {tuple(x.shape)} and dtype {x.dtype} on {x.device}"
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    if isinstance(x, np.ndarray):
        return f"an array of shape {x.shape} and dtype {x.dtype}"
    if isinstance(x, (list, tuple)):
        return f"a {type(x).__name__} of length {len(x)}"
    text = repr(x)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({type(x).__name__})"


def _message(func: str, arg: str, expect: str, got: str, hint: str | None) -> str:
    msg = f"The '{arg}' argument of {func} must be {expect}; got {got} instead."
    if hint:
        msg += " " + hint
    return msg


def fail(
    func: str, arg: str, expect: str, got: str, hint: str | None = None
) -> InvalidArgumentError:
    """Build (not raise) the standard ``ValueError`` for a bad argument value."""
    return InvalidArgumentError(_message(func, arg, expect, got, hint))


def fail_type(
    func: str, arg: str, expect: str, got: Any, hint: str | None = None
) -> InvalidArgumentTypeError:
    """Build (not raise) the standard ``TypeError`` for an argument of the wrong type."""
    return InvalidArgumentTypeError(_message(func, arg, expect, describe(got), hint))


def _to_numpy(x: Any, func: str, arg: str) -> np.ndarray:
    try:
        import torch

        if isinstance(x, torch.Tensor):
            return x.detach().cpu().numpy()
    except ImportError:  # pragma: no cover
        pass
    if x is None:
        raise fail_type(func, arg, "an array", x)
    try:
        out = np.asarray(x)
    except Exception as exc:  # pragma: no cover - numpy rarely refuses
        raise fail_type(func, arg, "an array", x) from exc
    if out.dtype == object:
        raise fail_type(func, arg, "a numeric array", x)
    return out


def as_float_array(
    x: Any,
    func: str,
    arg: str,
    *,
    ndim: int | Sequence[int] | None = None,
    allow_empty: bool = False,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Convert to a finite float array (float64 by default) of the given number of dimensions."""
    a = _to_numpy(x, func, arg)
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.number)):
        raise fail_type(func, arg, "a real numeric array", x)
    if np.iscomplexobj(a):
        raise fail_type(func, arg, "a real (not complex) array", x)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in allowed:
            want = " or ".join(f"{k}-dimensional" for k in allowed)
            raise fail(func, arg, f"a {want} array", f"shape {a.shape}")
    if not allow_empty and a.size == 0:
        raise fail(func, arg, "a non-empty array", f"shape {a.shape}")
    a = np.asarray(a, dtype=dtype)
    if not np.all(np.isfinite(a)):
        bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
        raise fail(func, arg, "finite (no NaN or inf)", f"{bad} non-finite entries")
    return a


def as_pm1_labels(y: Any, func: str, arg: str = "y", *, n: int | None = None) -> np.ndarray:
    """Binary labels as a float64 vector with entries in {-1, +1}.

    Labels in {0, 1} are *not* converted silently: the message says how to convert them.
    """
    a = as_float_array(y, func, arg, ndim=(1, 2))
    if a.ndim == 2:
        if a.shape[1] != 1:
            raise fail(func, arg, "a vector of labels in {-1, +1}", f"shape {a.shape}")
        a = a[:, 0]
    values = np.unique(a)
    if not np.all(np.isin(values, (-1.0, 1.0))):
        shown = values[:6].tolist()
        hint = None
        if np.all(np.isin(values, (0.0, 1.0))):
            hint = "Convert {0, 1} labels with y = 2*y - 1."
        raise fail(func, arg, "a vector of labels in {-1, +1}", f"values {shown}", hint)
    if n is not None and a.shape[0] != n:
        raise fail(func, arg, f"of length {n} (one label per example)", f"length {a.shape[0]}")
    return a


def as_class_labels(
    y: Any, func: str, arg: str = "y", *, n: int | None = None, n_classes: int | None = None
) -> np.ndarray:
    """Integer class labels in {0, ..., n_classes - 1} as an int64 vector."""
    a = _to_numpy(y, func, arg)
    if a.ndim != 1:
        raise fail(func, arg, "a 1-dimensional vector of integer class labels", f"shape {a.shape}")
    if a.size == 0:
        raise fail(func, arg, "a non-empty vector", "an empty vector")
    if not np.issubdtype(a.dtype, np.integer):
        if (
            np.issubdtype(a.dtype, np.floating)
            and np.all(np.isfinite(a))
            and np.all(a == np.round(a))
        ):
            a = a.astype(np.int64)
        else:
            raise fail(func, arg, "integer class labels", f"dtype {a.dtype}")
    a = a.astype(np.int64)
    if n is not None and a.shape[0] != n:
        raise fail(func, arg, f"of length {n} (one label per example)", f"length {a.shape[0]}")
    if a.min() < 0 or (n_classes is not None and a.max() >= n_classes):
        top = "n_classes - 1" if n_classes is None else str(n_classes - 1)
        raise fail(func, arg, f"labels in {{0, ..., {top}}}", f"range [{a.min()}, {a.max()}]")
    return a


def as_kernel_matrix(K: Any, func: str, arg: str = "K", *, rtol: float = 1e-8) -> np.ndarray:
    """A finite, square, symmetric float64 matrix: a new array, symmetrized exactly.

    ``K`` must be symmetric to ``max|K - K^T| <= rtol * max|K|`` (else the message names the
    argument and the asymmetry); the returned copy is ``(K + K^T) / 2``, so the caller may
    overwrite it. Positive semidefiniteness is checked separately
    (:func:`implicitbias._psd.check_psd`).

    The comparison and the symmetrization run over 256 x 256 tiles (``K`` and ``K^T`` tile by
    tile, in cache), one pass over ``K`` without ``n x n`` temporaries: for ``n = 4000`` the
    whole-matrix ``K - K.T`` took longer than many kernel SVM solves.
    """
    a = as_float_array(K, func, arg, ndim=2)
    if a.shape[0] != a.shape[1]:
        raise fail(func, arg, "a square (n, n) kernel matrix", f"shape {a.shape}")
    n = a.shape[0]
    out = np.empty((n, n), dtype=np.float64)
    asym = 0.0
    scale = 0.0
    b = 256
    for i0 in range(0, n, b):
        i1 = min(n, i0 + b)
        for j0 in range(i0, n, b):
            j1 = min(n, j0 + b)
            upper = a[i0:i1, j0:j1]
            lower_t = a[j0:j1, i0:i1].T
            asym = max(asym, float(np.max(np.abs(upper - lower_t))))
            tile = 0.5 * upper  # halves first: no overflow for entries near the float max
            tile += 0.5 * lower_t
            scale = max(scale, float(np.max(np.abs(tile))))
            out[i0:i1, j0:j1] = tile
            if j0 != i0:
                out[j0:j1, i0:i1] = tile.T
    scale = max(scale, 1e-300)
    if asym > rtol * scale:
        raise fail(
            func,
            arg,
            "a symmetric kernel matrix",
            f"max |K - K^T| = {asym:.3g} (relative {asym / scale:.3g} > {rtol:.3g})",
        )
    return out


def check_same_length(func: str, **arrays: Any) -> int:
    """All arrays share their first dimension; returns it."""
    lengths = {name: len(a) for name, a in arrays.items()}
    values = set(lengths.values())
    if len(values) > 1:
        listing = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        names = " and ".join(f"'{k}'" for k in lengths)
        raise InvalidArgumentError(
            f"The arguments {names} of {func} must have the same number of rows; {listing}."
        )
    return values.pop()


def check_positive(x: Any, func: str, arg: str, *, allow_inf: bool = False) -> float:
    """A finite (unless allowed) real number > 0."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise fail_type(func, arg, "a positive number", x)
    v = float(x)
    if not (v > 0) or (not allow_inf and not np.isfinite(v)):
        raise fail(func, arg, "a positive finite number", repr(x))
    return v


def check_nonnegative(x: Any, func: str, arg: str) -> float:
    """A finite real number >= 0."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise fail_type(func, arg, "a non-negative number", x)
    v = float(x)
    if not (v >= 0) or not np.isfinite(v):
        raise fail(func, arg, "a non-negative finite number", repr(x))
    return v


def check_int(x: Any, func: str, arg: str, *, minimum: int | None = None) -> int:
    """An integer (not a bool), optionally >= minimum."""
    if isinstance(x, bool) or not isinstance(x, (int, np.integer)):
        raise fail_type(func, arg, "an integer", x)
    v = int(x)
    if minimum is not None and v < minimum:
        raise fail(func, arg, f"an integer >= {minimum}", repr(x))
    return v


def check_choice(x: Any, func: str, arg: str, choices: Iterable[Any]) -> Any:
    """One of a fixed set of options."""
    options = tuple(choices)
    if x not in options:
        listing = ", ".join(repr(c) for c in options)
        raise fail(func, arg, f"one of {listing}", repr(x))
    return x


def check_float_dtype(dtype: Any, func: str, arg: str = "dtype") -> Any:
    """``None`` or a floating-point ``torch.dtype``."""
    import torch

    if dtype is None:
        return None
    if not isinstance(dtype, torch.dtype):
        raise fail_type(func, arg, "a floating-point torch.dtype such as torch.float64", dtype)
    if not dtype.is_floating_point:
        raise InvalidArgumentTypeError(
            _message(
                func, arg, "a floating-point torch.dtype such as torch.float64", repr(dtype), None
            )
        )
    return dtype


def check_model_input(x: Any, func: str, arg: str, shape: str, ok: bool, dtype: Any) -> None:
    """Inputs of a built-in model: a tensor of the documented shape and the model's dtype."""
    import torch

    if not isinstance(x, torch.Tensor):
        raise fail_type(func, arg, f"a torch.Tensor of shape {shape}", x)
    if not ok:
        raise fail(func, arg, f"of shape {shape}", f"{tuple(x.shape)}")
    if x.dtype != dtype:
        raise fail(
            func,
            arg,
            f"of the model's dtype {dtype}",
            f"dtype {x.dtype}",
            f"Convert with {arg}.to({dtype}).",
        )


def check_scale_fits(
    alpha: float,
    value: float,
    power: int,
    dtype: Any,
    func: str,
    arg: str = "alpha",
    *,
    terms: int = 1,
) -> None:
    """An initialization scale ``alpha`` whose parameters and outputs are finite in ``dtype``.

    ``value`` is the size of the parameters' entries that ``alpha`` gives; an output is a sum of
    ``terms`` products of ``power`` of them. Refuses a scale whose entries underflow the dtype
    (they become 0 or subnormal), or whose ``terms · value**power`` overflows it.
    """
    import math

    import torch

    dt = dtype if dtype is not None else torch.get_default_dtype()
    info = torch.finfo(dt)
    if power * math.log(value) + math.log(terms) >= math.log(info.max):
        top = (alpha / value) * (info.max / terms) ** (1.0 / power)
        raise fail(
            func,
            arg,
            f"a scale whose outputs are finite in {dt} (below about {top:.3g} here: the outputs "
            f"grow as its power {power})",
            repr(alpha),
            "Use dtype=torch.float64 or a smaller scale.",
        )
    if value < info.tiny:
        raise fail(
            func,
            arg,
            f"a scale whose parameters are representable in {dt} (at least about "
            f"{(alpha / value) * info.tiny:.3g} here)",
            repr(alpha),
            "Use dtype=torch.float64 or a larger scale.",
        )


def check_bool(x: Any, func: str, arg: str) -> bool:
    """A real ``bool`` (not a truthy string or number)."""
    if not isinstance(x, (bool, np.bool_)):
        raise fail_type(func, arg, "True or False", x)
    return bool(x)


def check_cvxpy_solver(name: Any, func: str, default: str, *, problem: str | None = None) -> str:
    """The name of an installed cvxpy solver (``None`` means ``default``); imports cvxpy.

    ``problem="qp"``: the solver must also handle a convex quadratic objective (a QP solver,
    or a conic solver with second-order cones), so that e.g. an LP-only solver is refused
    here, up front, rather than by cvxpy in the middle of a solve (or never, on a route that
    does not call cvxpy).
    """
    import cvxpy as cp

    if name is None:
        name = default
    installed = list(cp.installed_solvers())
    what = "the name of an installed cvxpy solver"
    if problem == "qp":
        installed = [s for s in installed if _handles_qp(s)]
        what = "the name of an installed cvxpy solver for quadratic programs"
    if not isinstance(name, str) or name.upper() not in installed:
        raise fail(func, "cvxpy_solver", f"{what} ({', '.join(installed)})", repr(name))
    return name.upper()


def _handles_qp(solver: str) -> bool:
    """Whether cvxpy can pass a convex QP (with ``quad_form``/``sum_squares``) to ``solver``."""
    try:
        from cvxpy.constraints import SOC
        from cvxpy.reductions.solvers import defines
    except ImportError:  # pragma: no cover - private cvxpy layout changed: do not refuse
        return True
    if solver in getattr(defines, "QP_SOLVERS", ()):
        return True
    conic = getattr(defines, "SOLVER_MAP_CONIC", {}).get(solver)
    return conic is not None and SOC in getattr(conic, "SUPPORTED_CONSTRAINTS", ())
