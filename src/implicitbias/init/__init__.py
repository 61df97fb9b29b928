"""Zero-output initializations and the initialization scale α."""

from implicitbias.init.scale import check_zero_output, scale_init
from implicitbias.init.symmetrize import mirror_init, symmetrize, zero_last_layer

# ``Symmetrized`` lives in ``models`` (issue 12); this name stays importable from ``init``.
from implicitbias.models.symmetrized import Symmetrized as Symmetrized

__all__ = [
    "symmetrize",
    "mirror_init",
    "zero_last_layer",
    "scale_init",
    "check_zero_output",
]
