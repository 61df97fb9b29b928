"""Training dynamics: losses, fixed-step gradient descent, adaptive gradient flow, histories.

``train`` runs full-batch GD (θ ← θ − η∇L_λ(θ)) or integrates the gradient flow
dθ/dt = −∇L_λ(θ) with an adaptive Runge–Kutta pair, recording a :class:`History` on a
(log-spaced by default) schedule of gradient-flow times. :class:`Monitor` records the same
history (and the theory's other quantities) inside any other training loop.

The ``Literal`` types of the string options — ``Method``, ``LossName``, ``IntegratorName`` and
``TrainStatus`` (of :attr:`TrainResult.status`) — are importable from here for annotations;
their values are :data:`METHODS`, :data:`LOSSES`, :data:`INTEGRATORS` and :data:`STATUSES`.
"""

from implicitbias.dynamics.flow import INTEGRATORS
from implicitbias.dynamics.flow import IntegratorName as IntegratorName
from implicitbias.dynamics.history import STANDARD_COLUMNS, History
from implicitbias.dynamics.losses import LOSSES, Loss, loss_function
from implicitbias.dynamics.losses import LossName as LossName
from implicitbias.dynamics.monitor import Monitor
from implicitbias.dynamics.schedule import log_schedule
from implicitbias.dynamics.trainer import METHODS, STATUSES, TrainResult, train
from implicitbias.dynamics.trainer import Method as Method
from implicitbias.dynamics.trainer import TrainStatus as TrainStatus
from implicitbias.dynamics.transition import t_star

__all__ = [
    "train",
    "TrainResult",
    "Monitor",
    "History",
    "log_schedule",
    "loss_function",
    "Loss",
    "LOSSES",
    "METHODS",
    "INTEGRATORS",
    "STATUSES",
    "STANDARD_COLUMNS",
    "t_star",
]
