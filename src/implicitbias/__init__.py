"""implicitbias: early (kernel) and late (rich) implicit biases of homogeneous networks.

The library follows the data flow of Lyu et al., *Dichotomy of Early and Late Phase Implicit
Biases Can Provably Induce Grokking* (ICLR 2024, arXiv:2311.18817)::

    models, init  ->  kernel_regime / rich_regime  ->  kkt  ->  dynamics  ->  experiments, cli

Each room re-exports its public names here; ``implicitbias.__all__`` is their union.
``import implicitbias`` does not import cvxpy or matplotlib (they load on first use).
"""

from implicitbias import (
    _errors,
    dynamics,
    experiments,
    init,
    kernel_regime,
    kkt,
    models,
    rich_regime,
)
from implicitbias._errors import *
from implicitbias.dynamics import *
from implicitbias.init import *
from implicitbias.kernel_regime import *
from implicitbias.kkt import *
from implicitbias.models import *
from implicitbias.rich_regime import *

__version__ = "0.1.0"

__all__ = [
    *_errors.__all__,
    *models.__all__,
    *init.__all__,
    *kernel_regime.__all__,
    *rich_regime.__all__,
    *kkt.__all__,
    *dynamics.__all__,
    "experiments",
    "__version__",
]
