"""KKT certificates of trained homogeneous models: margins, (ε, δ)-KKT residuals, Gram NNLS.

See THEORY §3: a trained classifier is rescaled to the feasible point θ̃ = θ / q_min^{1/L}
and checked against the KKT conditions of min ½‖θ‖² s.t. y_i f(θ; x_i) ≥ 1, with the
multipliers found from the NTK alone (Euler's identity), never from the n × p Jacobian.

Modules: ``margins`` (validation, margins, normalized/smoothed margin), ``report``
(:class:`KKTReport`), ``residuals`` (:func:`kkt_residuals`, the orchestration), ``_epsilon``
(NTK, ε by the Gram form or directly), ``_classification`` / ``_regression`` (the multipliers of
each task), ``certificates`` (the convex certificates a model declares through its
``convex_surrogate``), ``nnls`` (the Gram NNLS). The working-set route for many constraints
(multiclass, large n): ``_working_set`` (the NNLS on working sets, checked against all
constraints), ``_gram_cache`` (the Gram of the touched constraints within a memory budget),
``_gram_features`` (Gram blocks from per-layer factors or gradient rows), ``_gradients``
(per-constraint gradients, Jacobian-vector products, pullbacks), ``_pivoting`` (block
principal pivoting for large supports).
"""

from implicitbias.kkt.margins import normalized_margin, smoothed_margin
from implicitbias.kkt.nnls import GramNNLSResult, nnls_gram
from implicitbias.kkt.residuals import KKTReport, kkt_residuals

__all__ = [
    "kkt_residuals",
    "KKTReport",
    "normalized_margin",
    "smoothed_margin",
    "nnls_gram",
    "GramNNLSResult",
]
