"""The result vocabulary shared by every solver: status strings, tolerances, renamed fields.

Every solver result of the library names the same things the same way (see
``docs/results.md``):

``iterations``
    Iterations of the solver that produced the answer (0 for a direct solve).
``max_violation``
    Primal infeasibility of the solver's answer, absolute.
``duality_gap``
    Primal objective minus dual objective, absolute (``>= 0`` up to rounding): a certified
    bound on suboptimality when both points are exactly feasible.
``relative_gap``
    ``|duality_gap| / objective``.
``status``
    A :data:`Status`: ``"optimal"`` or ``"optimal_inaccurate"`` (a solver raises instead of
    returning anything worse).
``solver``
    The route actually taken.
``solve_time``
    Wall time in seconds.

The two "inaccurate" thresholds below are the only places where a solver decides between
``"optimal_inaccurate"`` (with an :class:`~implicitbias.InaccurateSolutionWarning`) and
:class:`~implicitbias.SolverError`. A field renamed for the vocabulary keeps its old name for
one release as a read-only :class:`renamed` alias that warns :class:`DeprecationWarning`.
"""

from __future__ import annotations

import warnings
from typing import Any, Final, Literal

__all__ = [
    "INACCURATE_GAP",
    "INACCURATE_KKT",
    "OPTIMAL",
    "OPTIMAL_INACCURATE",
    "SUPPORT_RTOL",
    "Status",
    "renamed",
]

#: What a solver result's ``status`` may say. Anything worse raises (``NotSeparableError``,
#: ``InfeasibleError``, ``SolverError``) instead of returning.
Status = Literal["optimal", "optimal_inaccurate"]

OPTIMAL: Final = "optimal"
OPTIMAL_INACCURATE: Final = "optimal_inaccurate"

#: Kernel SVMs (binary and multiclass): an answer whose KKT residual (primal violation,
#: relative complementary slackness, relative gap of the (K1) dual) is above ``tol`` but at
#: most this is returned as ``"optimal_inaccurate"`` with a warning; above it the route fails.
INACCURATE_KKT: Final = 1e-5

#: Rich-regime solvers (max margin, interpolation, nuclear norm): a certified relative duality
#: gap above ``tol`` but at most this gives ``"optimal_inaccurate"`` with a warning; above it
#: the solver raises :class:`~implicitbias.SolverError`.
INACCURATE_GAP: Final = 1e-3

#: Relative threshold below which a primal coordinate or a multiplier counts as zero when a
#: rich-regime result reports ``active_features`` and ``support`` (relative to the largest
#: entry in magnitude).
SUPPORT_RTOL: Final = 1e-6

_SINCE, _REMOVED = "0.2", "0.3"


class renamed:  # noqa: N801 - used like ``property``
    """A read-only alias of a renamed result field, warning :class:`DeprecationWarning`.

    In the body of a (frozen) dataclass, ``n_iter = renamed("iterations")`` makes
    ``result.n_iter`` return ``result.iterations`` with the warning "``<Class>.n_iter`` is
    deprecated since 0.2 and will be removed in 0.3; use iterations". Without an annotation
    the alias is not a dataclass field (not in ``__init__``, ``repr`` or ``asdict``);
    assigning to it raises :class:`AttributeError`.
    """

    def __init__(self, new: str) -> None:
        self.new = new
        self.old = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.old = name
        self.__doc__ = (
            f"Deprecated alias of ``{self.new}`` (since {_SINCE}, removed in {_REMOVED})."
        )

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        if obj is None:
            return self
        warnings.warn(
            f"{type(obj).__name__}.{self.old} is deprecated since {_SINCE} and will be removed "
            f"in {_REMOVED}; use {self.new}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(obj, self.new)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(
            f"{type(obj).__name__}.{self.old} is a read-only deprecated alias of {self.new}"
        )
