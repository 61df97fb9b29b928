"""Rich regime: the convex problems whose solutions the late phase of training reaches.

ℓ1 / ℓ2 / ℓp max-margin linear classifiers, minimum-norm interpolation (basis pursuit), the
minimum nuclear-norm completion, and maps from their solutions back to model parameters.
"""

from implicitbias.rich_regime._results import (
    InterpolationResult,
    MaxMarginResult,
    NuclearNormResult,
)
from implicitbias.rich_regime.interpolation import min_l1_interpolation, min_l2_interpolation
from implicitbias.rich_regime.max_margin import l1_max_margin, l2_max_margin, lp_max_margin
from implicitbias.rich_regime.nuclear_norm import min_nuclear_norm_completion
from implicitbias.rich_regime.realize import diagonal_net_from_w, matrix_factorization_from_W

__all__ = [
    "l1_max_margin",
    "l2_max_margin",
    "lp_max_margin",
    "min_l1_interpolation",
    "min_l2_interpolation",
    "min_nuclear_norm_completion",
    "diagonal_net_from_w",
    "matrix_factorization_from_W",
    "MaxMarginResult",
    "InterpolationResult",
    "NuclearNormResult",
]
