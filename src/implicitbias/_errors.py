"""The exception hierarchy of implicitbias.

Every error the library raises on purpose is an :class:`ImplicitBiasError`. Errors about a bad
argument also subclass the matching built-in (``ValueError`` or ``TypeError``), so
``except ValueError`` in user code keeps working.
"""

from __future__ import annotations

__all__ = [
    "ImplicitBiasError",
    "InvalidArgumentError",
    "InvalidArgumentTypeError",
    "NotHomogeneousError",
    "NonZeroInitError",
    "NotSeparableError",
    "InfeasibleError",
    "SolverError",
    "InaccurateSolutionWarning",
]


class ImplicitBiasError(Exception):
    """Base class of every exception raised on purpose by implicitbias."""


class InvalidArgumentError(ImplicitBiasError, ValueError):
    """An argument has the right type but a wrong value, shape, length or content."""


class InvalidArgumentTypeError(ImplicitBiasError, TypeError):
    """An argument has the wrong type."""


class NotHomogeneousError(ImplicitBiasError, ValueError):
    """The model is not positively homogeneous in its parameters: f(cθ) ≠ c^L f(θ)."""


class NonZeroInitError(ImplicitBiasError, ValueError):
    """The model's output at initialization is not zero, as the theory assumes."""


class NotSeparableError(ImplicitBiasError, ValueError):
    """The margin problem is infeasible: the data are not separable in the given features."""


class InfeasibleError(ImplicitBiasError, ValueError):
    """An interpolation or completion problem has no feasible point."""


class SolverError(ImplicitBiasError, RuntimeError):
    """A numerical solver failed, or returned an answer that does not pass its own checks."""


class InaccurateSolutionWarning(UserWarning):
    """A solver returned an answer that only approximately satisfies its optimality checks."""
