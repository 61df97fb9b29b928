r"""The record :func:`~implicitbias.kkt_residuals` returns: :class:`KKTReport`, and the names of
its string options."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np

from implicitbias._results import ResultRecord
from implicitbias._status import renamed
from implicitbias._validation import check_nonnegative

__all__ = [
    "KKTReport",
    "Task",
    "Loss",
    "ReportLoss",
    "EpsilonMethod",
    "NNLSRoute",
    "NNLSRouteOption",
    "Surrogate",
]

#: The margin problem a report checks: binary, multiclass (one constraint per pair) or
#: regression (interpolation).
Task = Literal["classification", "multiclass", "regression"]
#: The training loss of route (b); ``"squared"`` only appears in regression reports.
Loss = Literal["logistic", "exponential"]
#: The ``loss`` a report records: the training loss, or ``"squared"`` for regression.
ReportLoss = Literal["logistic", "exponential", "squared"]
#: How the reported ε was evaluated.
EpsilonMethod = Literal["gram", "direct"]
#: How the multipliers were found: the dense NTK Gram over all constraints, or the working set
#: of near-active constraints (checked against all of them; see ``kkt/_working_set.py``).
NNLSRoute = Literal["dense", "working_set", "matrix_free"]
#: The ``nnls_route=`` option of :func:`~implicitbias.kkt_residuals` (``"auto"``: by memory).
NNLSRouteOption = Literal["auto", "exact", "dense", "working_set", "matrix_free"]
#: The convex problems whose optima certify a model's KKT point (see ``kkt/certificates.py``).
Surrogate = Literal["l1_max_margin", "l1_interpolation", "min_nuclear_norm"]


@dataclass(frozen=True)
class KKTReport(ResultRecord):
    r"""How close a trained model is to a KKT point of its margin problem.

    Classification (binary or multiclass) reports the (ε, δ)-KKT residuals at the rescaled
    feasible point ``θ̃ = θ / q_min^{1/L}``; regression reports them at θ itself. Fields that
    do not apply to the task (or that need ``weight_decay=`` or a surrogate) are ``None``.

    Attributes
    ----------
    task : {"classification", "multiclass", "regression"}
        The margin problem that was checked.
    degree : float
        The homogeneity degree ``L``.
    epsilon : float
        ``ε = ‖θ̃ − Σ μ_i g_i‖`` for the reported multipliers (``g_i = y_i ∇f(θ̃; x_i)``;
        regression: ``‖θ − Σ μ_i ∇f(θ; x_i)‖``).
    epsilon_rel : float
        ``ε / ‖θ̃‖`` (regression: ``ε / ‖θ‖``, ``inf`` at ``θ = 0``), scale-free.
    delta : float
        Classification: ``δ = max_i μ_i (q_i(θ̃) − 1)`` (complementary slackness).
        Regression: the feasibility violation ``max_i |f(θ; x_i) − y_i|``.
    multipliers : ndarray
        ``μ``: shape ``(n,)`` (``μ ≥ 0`` classification, free sign regression) or ``(n, C)``
        for multiclass, one ``μ_ij ≥ 0`` per pair with zeros at ``j = y_i``.
    support : ndarray of int
        Indices of the examples with a nonzero multiplier.
    margins : ndarray of shape (n,) or None
        ``q_i(θ̃)`` (``min_i q_i(θ̃) = 1``); ``None`` for regression.
    q_min : float or None
        ``min_i q_i(θ)`` at the model's own θ.
    theta_norm : float
        ``‖θ‖`` of the model's parameters.
    rescaled_theta_norm : float
        ``‖θ̃‖`` (regression: ``‖θ‖``).
    normalized_margin, smoothed_margin : float or None
        ``γ̄ = q_min/‖θ‖^L`` and ``γ̃ = −log Σ e^{−q_i} / ‖θ‖^L`` (exponential loss, summed;
        multiclass: over the pairs).
    max_violation : float
        The primal infeasibility of the checked point, absolute. Regression:
        ``max_i |f(θ; x_i) − y_i|`` (equal to ``delta``). Classification:
        ``max_i max(0, 1 − q_i(θ̃))``, which is ``0.0``: θ̃ is feasible by construction.
    epsilon_min : float
        The smallest ε over all admissible multipliers (the unrestricted NNLS / least squares).
        On the ``"matrix_free"`` route: the smallest ε found, an upper bound of that minimum.
    epsilon_min_lower : float
        A certified lower bound of the smallest ε: equal to ``epsilon_min`` on the routes that
        solve the NNLS exactly (``"dense"``, ``"working_set"``); on ``"matrix_free"``, the
        weak-duality bound of its last iterate (``epsilon_min_lower ≤ min ε ≤ epsilon_min``).
    active_threshold : float
        The slack threshold τ of the near-active constraints the multipliers were restricted
        to (``inf``: no restriction).
    epsilon_method : {"gram", "direct"}
        ``"gram"`` (Euler-identity formula from the NTK) or ``"direct"`` (one
        vector-Jacobian product), the route that evaluated the reported ε.
    epsilon_floor : float
        Estimated absolute accuracy of the reported ε.
    weight_decay, loss :
        The options the report was computed with (``loss`` is ``"squared"`` for regression).
    wd_multipliers : ndarray or None
        Multipliers implied by stationarity of the weight-decayed loss (route (b)).
    wd_epsilon, wd_epsilon_rel, wd_delta : float or None
        ε, ε/‖θ̃‖ and δ of ``wd_multipliers``.
    stationarity_residual : float or None
        ``‖∇L(θ) + λθ‖ / (λ‖θ‖)``, the relative stationarity residual of ``L_λ``. (It equals
        ``wd_epsilon_rel``: the route-(b) multipliers are exactly the rescaled gradient.)
    convex_surrogate : {"l1_max_margin", "l1_interpolation", "min_nuclear_norm"} or None
        The convex problem the model declares (its ``convex_surrogate(task)``; see
        :func:`implicitbias.models.convex_surrogate`): ``"l1_max_margin"`` (depth-2
        :class:`DiagonalNet`, classification), ``"l1_interpolation"`` (depth-2 DiagonalNet,
        regression) or ``"min_nuclear_norm"`` (:class:`MatrixFactorization`, regression).
    dual_norm : float or None
        ``‖2 Σ μ_i y_i x_i‖_∞`` (diagonal net) or ``‖Σ μ_k (E_{i_k j_k} + E_{j_k i_k})‖_op``
        (matrix factorization). ``≤ 1`` (with ε = 0) certifies the global optimum.
    convex_lower_bound : float or None
        A certified lower bound on the convex optimum from the multipliers, rescaled to be
        dual feasible: ``2 Σ μ_i / dual_norm`` (ℓ1 margin) or ``2 Σ μ_k y_k / dual_norm``.
    convex_optimum : float or None
        The convex optimum (``‖w₁*‖₁`` or the minimum nuclear norm), only with
        ``certificate=True``.
    convex_gap, convex_gap_rel : float or None
        ``‖θ̃‖² − convex_optimum`` (regression: ``‖θ‖² − …``) and its ratio to the optimum.
    n_constraints : int
        Number of margin constraints (``n``, or ``n(C − 1)`` for multiclass).
    constraints_touched : int
        Constraints whose gradients entered a Gram matrix: ``n_constraints`` on the dense
        route; on the working-set route, every constraint that was ever in a working set; on
        the matrix-free route, those of the working set it fell back from (``0`` when asked for
        directly: it forms no Gram).
    nnls_route : {"dense", "working_set", "matrix_free"}
        How the multipliers were found: the ``(nC)²`` NTK over all constraints, or the NNLS
        restricted to a working set of near-active constraints, grown until no other
        constraint can improve ε (the same optimum; see :func:`~implicitbias.kkt_residuals`),
        or accelerated projected gradient over all constraints with products only (no Gram),
        stopped when ``[epsilon_min_lower, epsilon_min]`` is within 1e-6 relative (or as close
        as rounding lets it be certified) or after
        ``matrix_free_steps`` products.
    iterations : int
        Active-set changes of the NNLS solves (``0`` for regression: a least-squares solve);
        on the matrix-free route, its products (forward-mode passes over the data).
    solve_time : float
        Wall time of the whole check, in seconds.

    Notes
    -----
    ``solver_iterations`` and ``max_abs_residual`` are deprecated read-only aliases of
    ``iterations`` and ``max_violation`` (since 0.2, removed in 0.3; they warn
    ``DeprecationWarning`` and return the new field, so ``max_abs_residual`` is now ``0.0``
    for classification, where it was ``None``).
    """

    task: Task
    degree: float
    epsilon: float
    epsilon_rel: float
    delta: float
    multipliers: np.ndarray
    support: np.ndarray
    margins: np.ndarray | None
    q_min: float | None
    theta_norm: float
    rescaled_theta_norm: float
    normalized_margin: float | None
    smoothed_margin: float | None
    max_violation: float
    epsilon_min: float
    epsilon_min_lower: float
    active_threshold: float
    epsilon_method: EpsilonMethod
    epsilon_floor: float
    weight_decay: float | None
    loss: ReportLoss
    wd_multipliers: np.ndarray | None
    wd_epsilon: float | None
    wd_epsilon_rel: float | None
    wd_delta: float | None
    stationarity_residual: float | None
    convex_surrogate: str | None
    dual_norm: float | None
    convex_lower_bound: float | None
    convex_optimum: float | None
    convex_gap: float | None
    convex_gap_rel: float | None
    n_constraints: int
    constraints_touched: int
    nnls_route: NNLSRoute
    iterations: int
    solve_time: float

    # Renamed for the library's one result vocabulary (read-only, DeprecationWarning).
    solver_iterations = renamed("iterations")
    max_abs_residual = renamed("max_violation")

    def is_kkt(self, *, epsilon: float = 1e-3, delta: float = 1e-3) -> bool:
        """Whether θ̃ is an (ε, δ)-KKT point with relative ``ε`` (``epsilon_rel ≤ epsilon``)
        and ``delta ≥ self.delta`` (regression: ``max_violation ≤ delta``)."""
        epsilon = check_nonnegative(epsilon, "KKTReport.is_kkt", "epsilon")
        delta = check_nonnegative(delta, "KKTReport.is_kkt", "delta")
        return bool(self.epsilon_rel <= epsilon and self.delta <= delta)

    def to_table(self) -> str:
        """A two-column plain-text summary of the scalar fields that are set."""
        rows = []
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None or isinstance(v, np.ndarray):
                continue
            text = f"{v:.6g}" if isinstance(v, float) else str(v)
            rows.append((f.name, text))
        rows.insert(6, ("support size", str(len(self.support))))
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __str__(self) -> str:
        verdict = "is" if self.is_kkt() else "is not"
        head = (
            f"KKTReport ({self.task}, L = {self.degree:g}): θ̃ {verdict} a (1e-3, 1e-3)-KKT "
            f"point (ε/‖θ̃‖ = {self.epsilon_rel:.3g}, δ = {self.delta:.3g})"
        )
        return head + "\n" + self.to_table()
