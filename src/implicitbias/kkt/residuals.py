r"""(ε, δ)-KKT certificates of a trained homogeneous model for its margin problem (THEORY §3)."""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import torch
from scipy.special import expit, softmax
from torch import nn

from implicitbias._errors import InaccurateSolutionWarning
from implicitbias._validation import (
    check_choice,
    check_int,
    check_nonnegative,
    check_positive,
    fail,
)
from implicitbias.kkt.margins import (
    _check_separating,
    _example_margins,
    _pair_margins,
    _prepare,
    _Setup,
    _smoothed,
)
from implicitbias.kkt.nnls import _finish_nnls

__all__ = ["KKTReport", "kkt_residuals"]

#: Slack thresholds τ tried, in order, when restricting the multipliers to the near-active
#: constraints ``q_i(θ̃) − 1 ≤ τ`` (see kkt_residuals, "Choice of multipliers").
ACTIVE_THRESHOLDS = (1e-9, 1e-7, 1e-5, 1e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0)


@dataclass(frozen=True)
class KKTReport:
    r"""How close a trained model is to a KKT point of its margin problem.

    Classification (binary or multiclass) reports the (ε, δ)-KKT residuals at the rescaled
    feasible point ``θ̃ = θ / q_min^{1/L}``; regression reports them at θ itself. Fields that
    do not apply to the task (or that need ``weight_decay=`` or a surrogate) are ``None``.

    Attributes
    ----------
    task : str
        ``"classification"``, ``"multiclass"`` or ``"regression"``.
    degree : float
        The homogeneity degree ``L``.
    epsilon : float
        ``ε = ‖θ̃ − Σ μ_i g_i‖`` for the reported multipliers (``g_i = y_i ∇f(θ̃; x_i)``;
        regression: ``‖θ − Σ μ_i ∇f(θ; x_i)‖``).
    epsilon_rel : float
        ``ε / ‖θ̃‖`` (regression: ``ε / ‖θ‖``), scale-free.
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
    max_abs_residual : float or None
        Regression: ``max_i |f(θ; x_i) − y_i|``.
    epsilon_min : float
        The smallest ε over all admissible multipliers (the unrestricted NNLS / least squares).
    active_threshold : float
        The slack threshold τ of the near-active constraints the multipliers were restricted
        to (``inf``: no restriction).
    epsilon_method : str
        ``"gram"`` (Euler-identity formula from the NTK) or ``"direct"`` (one
        vector-Jacobian product), the route that evaluated the reported ε.
    epsilon_floor : float
        Estimated absolute accuracy of the reported ε.
    weight_decay, loss :
        The options the report was computed with.
    wd_multipliers : ndarray or None
        Multipliers implied by stationarity of the weight-decayed loss (route (b)).
    wd_epsilon, wd_epsilon_rel, wd_delta : float or None
        ε, ε/‖θ̃‖ and δ of ``wd_multipliers``.
    stationarity_residual : float or None
        ``‖∇L(θ) + λθ‖ / (λ‖θ‖)``, the relative stationarity residual of ``L_λ``. (It equals
        ``wd_epsilon_rel``: the route-(b) multipliers are exactly the rescaled gradient.)
    convex_surrogate : str or None
        ``"l1_max_margin"`` (depth-2 :class:`DiagonalNet`, classification),
        ``"l1_interpolation"`` (depth-2 DiagonalNet, regression) or ``"min_nuclear_norm"``
        (:class:`MatrixFactorization`, regression).
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
    solver_iterations : int
        Active-set changes of the NNLS solves.
    solve_time : float
        Wall time of the whole check, in seconds.
    """

    task: str
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
    max_abs_residual: float | None
    epsilon_min: float
    active_threshold: float
    epsilon_method: str
    epsilon_floor: float
    weight_decay: float | None
    loss: str
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
    solver_iterations: int
    solve_time: float

    def is_kkt(self, *, epsilon: float = 1e-3, delta: float = 1e-3) -> bool:
        """Whether θ̃ is an (ε, δ)-KKT point with relative ``ε`` (``epsilon_rel ≤ epsilon``)
        and ``delta ≥ self.delta`` (regression: ``max_abs_residual ≤ delta``)."""
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


# --------------------------------------------------------------------------- kernels
def _unit_roundoff(dtype: torch.dtype) -> float:
    return float(torch.finfo(dtype).eps) / 2


def _jacobian_ntk(s: _Setup, chunk_size: int | None) -> np.ndarray:
    """``(n·C, n·C)`` NTK from the explicit Jacobian (index ``i*C + a``)."""
    J = s.h.jacobian(s.X, chunk_size=chunk_size).to(torch.float64)
    J = J.reshape(s.n * s.C, -1)
    return (J @ J.T).cpu().numpy()


def _ntk(s: _Setup, chunk_size: int | None) -> np.ndarray:
    """The NTK at the model's θ in float64, ``(n·C, n·C)`` indexed ``i*C + a``.

    Uses :func:`implicitbias.empirical_ntk`, whose closed-form and structured routes never form
    the ``n × p`` Jacobian; a kernel in another layout falls back to the explicit Jacobian.
    """
    from implicitbias.kernel_regime.ntk import empirical_ntk

    m = s.n * s.C
    K = empirical_ntk(s.h.model, s.X, chunk_size=chunk_size)
    if tuple(K.shape) != (m, m):
        return _jacobian_ntk(s, chunk_size)
    K = K.detach().to(torch.float64).cpu().numpy()
    return 0.5 * (K + K.T)


def _output_vjp(
    s: _Setup, theta: torch.Tensor, coef: np.ndarray, chunk_size: int | None
) -> torch.Tensor:
    """``∇_θ Σ_i Σ_a coef[i, a] f_a(θ; x_i)`` by reverse mode, in chunks of examples."""
    chunk = chunk_size or 1024
    X = s.X
    if theta.dtype == torch.float64 and X.is_floating_point():
        X = X.to(torch.float64)
    c_all = torch.as_tensor(coef, dtype=theta.dtype, device=theta.device)
    grad = torch.zeros_like(theta)
    for start in range(0, s.n, chunk):
        t = theta.detach().requires_grad_(True)
        out = s.h.function(t, X[start : start + chunk])
        c = c_all[start : start + chunk].reshape(out.shape)
        (g,) = torch.autograd.grad((out * c).sum(), t)
        grad += g
    return grad


def _direct_epsilon(
    s: _Setup, theta: torch.Tensor, coef: np.ndarray, chunk_size: int | None
) -> tuple[float, float]:
    """``‖θ − ∇_θ Σ coef·f(θ)‖`` evaluated directly (float64 when the model allows), and the
    unit roundoff it was evaluated in."""
    t64 = theta.detach().to(torch.float64)
    try:
        g = _output_vjp(s, t64, coef, chunk_size)
        u = _unit_roundoff(torch.float64)
        r = t64 - g
    except RuntimeError:  # a module that cannot run in float64 (e.g. typed buffers)
        t = theta.detach().to(s.theta.dtype)
        g = _output_vjp(s, t, coef, chunk_size)
        u = _unit_roundoff(t.dtype)
        r = (t - g).to(torch.float64)
    return float(r.norm()), u


# --------------------------------------------------------------------------- solves
def _gram_eps2(tt: float, b: np.ndarray, Q: np.ndarray, mu: np.ndarray) -> tuple[float, float]:
    """``‖t − Gμ‖² = ‖t‖² − 2bᵀμ + μᵀQμ`` and the magnitude of its terms (for the floor)."""
    Qmu = Q @ mu
    value = tt - 2.0 * float(b @ mu) + float(mu @ Qmu)
    magnitude = (
        tt + 2.0 * float(np.abs(b) @ np.abs(mu)) + float(np.abs(mu) @ (np.abs(Q) @ np.abs(mu)))
    )
    return value, magnitude


def _select_multipliers(
    Q: np.ndarray,
    b: np.ndarray,
    slack: np.ndarray,
    tt: float,
    floor2: float,
    rtol: float,
) -> tuple[np.ndarray, float, float, int]:
    """Smallest-ε NNLS, then the near-active restriction with the smallest δ (see docstring).

    Returns ``(μ, ε_min, τ, iterations)``.
    """
    m = b.shape[0]
    full = _finish_nnls(Q, b, np.ones(m, dtype=bool), None, 10 * m + 10)
    iterations = full.iterations
    if full.status != "optimal":
        warnings.warn(
            f"kkt_residuals: the Gram NNLS stopped at its iteration limit ({full.iterations} "
            f"active-set changes); epsilon_min may be slightly too large.",
            InaccurateSolutionWarning,
            stacklevel=3,
        )
    eps_min2 = max(tt + 2.0 * full.objective, 0.0)
    eps_min = math.sqrt(eps_min2)
    if full.support.size == 0:
        return full.solution, eps_min, math.inf, iterations
    tau_full = float(slack[full.support].max())
    floor = math.sqrt(floor2)
    accept = (1.0 + rtol) * eps_min + floor
    previous = -1
    for tau in ACTIVE_THRESHOLDS:
        if tau >= tau_full:
            break
        cand = slack <= tau
        count = int(cand.sum())
        if count == previous or count == 0:
            continue
        previous = count
        res = _finish_nnls(Q, b, cand, None, 10 * count + 10)
        iterations += res.iterations
        eps = math.sqrt(max(tt + 2.0 * res.objective, 0.0))
        if eps <= accept:
            return res.solution, eps_min, tau, iterations
    return full.solution, eps_min, tau_full, iterations


def _least_squares(Q: np.ndarray, b: np.ndarray, u: float) -> np.ndarray:
    """Minimum-norm solution of ``Qμ = b`` (``Q`` PSD) by a truncated eigendecomposition."""
    w, V = np.linalg.eigh(Q)
    cutoff = max(float(w.max()), 0.0) * max(Q.shape[0], 1) * max(u, float(np.finfo(float).eps))
    keep = w > cutoff
    return V[:, keep] @ ((V[:, keep].T @ b) / w[keep])


# --------------------------------------------------------------------------- public entry
def kkt_residuals(
    model: nn.Module,
    X: torch.Tensor,
    y: Any,
    *,
    task: str | None = None,
    weight_decay: float | None = None,
    loss: str = "logistic",
    degree: int | float | None = None,
    certificate: bool = False,
    epsilon_tolerance: float = 1e-2,
    direct: bool | None = None,
    chunk_size: int | None = None,
) -> KKTReport:
    r"""(ε, δ)-KKT residuals of a trained ``L``-homogeneous model for its margin problem.

    Classification checks the margin problem (R1) at the rescaled feasible point
    :math:`\tilde\theta = \theta / q_{\min}(\theta)^{1/L}` (so :math:`\min_i q_i(\tilde\theta)
    = 1`):

    .. math::

        \min_\theta \tfrac12 \lVert\theta\rVert^2 \ \text{ s.t. }\ q_i(\theta) = y_i f(\theta;
        x_i) \ge 1, \qquad i = 1..n.

    A feasible θ is an **(ε, δ)-KKT point** (Dutta et al. 2013; Lyu & Li 2020) when some
    :math:`\mu \ge 0` gives

    .. math::

        \Big\lVert \theta - \sum_i \mu_i y_i \nabla_\theta f(\theta; x_i) \Big\rVert \le
        \varepsilon, \qquad \mu_i \big(q_i(\theta) - 1\big) \le \delta \ \ \forall i.

    Regression (R2) checks θ itself for ``min ½‖θ‖² s.t. f(θ; x_i) = y_i`` with free-sign
    :math:`\mu` (ε as above without :math:`y_i`, feasibility ``max_i |f_i − y_i|``).
    Multiclass (``C`` logits, labels ``0..C−1``) has one constraint per pair,
    :math:`f_{y_i} - f_j \ge 1` for ``j ≠ y_i``, and
    :math:`\theta = \sum_{i,j} \mu_{ij} (\nabla f_{y_i}(\theta; x_i) - \nabla f_j(\theta;
    x_i))`.

    ======================================  ===========================================
    math                                    name
    ======================================  ===========================================
    :math:`f(\theta; x)`, :math:`L`         ``model`` at its parameters, its degree
    :math:`x_i`, :math:`y_i`                ``X[i]``, ``y[i]``
    :math:`q_i(\tilde\theta)`               ``report.margins``
    :math:`\mu`                             ``report.multipliers``
    :math:`\varepsilon`, :math:`\delta`     ``report.epsilon``, ``report.delta``
    :math:`\lambda`                         ``weight_decay``
    :math:`K(\tilde\theta)`                 the empirical NTK at θ̃ (:func:`empirical_ntk`)
    ======================================  ===========================================

    **Gram form (no p-dimensional sums).** With :math:`G = [y_i \nabla f(\tilde\theta; x_i)]`,
    Euler's identity :math:`\langle \nabla f(\theta; x), \theta \rangle = L f(\theta; x)` gives

    .. math::

        \lVert \tilde\theta - G\mu \rVert^2 = \lVert\tilde\theta\rVert^2
        - 2L\,\mu^\top q(\tilde\theta) + \mu^\top \big(yy^\top \odot K(\tilde\theta)\big)\mu,

    so the multipliers solve :math:`\min_{\mu \ge 0} \tfrac12 \mu^\top Q \mu - b^\top\mu` with
    :math:`Q = yy^\top \odot K`, :math:`b = L q(\tilde\theta)` (:func:`nnls_gram`, float64),
    and :math:`K(\tilde\theta) = q_{\min}^{-2(L-1)/L} K(\theta)` needs one NTK at θ. Regression
    solves :math:`K\mu = L f(\theta)` in the least-squares sense (minimum-norm μ). Multiclass
    uses the ``(nC, nC)`` NTK: :math:`Q = D^\top K D` for the pair differences D, and
    :math:`b = L q_{ij}(\tilde\theta)`.

    **Choice of multipliers.** The smallest-ε certificate (unrestricted NNLS, ``epsilon_min``)
    is not unique when G is rank-deficient (e.g. a sparse diagonal net: only a few nonzero
    coordinates), and NNLS may then put weight on inactive constraints and report a large δ
    at an exact KKT point. So the constraints are restricted to the near-active ones,
    ``q_i(θ̃) − 1 ≤ τ`` for τ in ``ACTIVE_THRESHOLDS`` (1e-9, 1e-7, …, 3), smallest first;
    the first restriction whose ε is within ``(1 + epsilon_tolerance)·ε_min`` plus the
    accuracy floor is reported, else the unrestricted minimizer. The reported μ is thus a
    near-minimizer of ε whose support has the least slack it can have, keeping δ small.

    **Accuracy.** The Gram formula cancels: its absolute error is about
    :math:`\sqrt{u\,S}` with ``u`` the unit roundoff of the NTK's dtype and ``S`` the sum of the
    magnitudes of its three terms (≈ 1e-8·‖θ̃‖ in float64, ≈ 3e-4·‖θ̃‖ in float32). When the
    Gram value is below 1000× that floor (or ``direct=True``), ε is re-evaluated directly as
    :math:`\lVert\tilde\theta - \nabla_\theta \sum_i \mu_i y_i f(\tilde\theta; x_i)\rVert` with
    one vector-Jacobian product (no Jacobian; float64 when the module runs in float64), whose
    floor is about ``u·(‖θ̃‖ + Σ|μ_i|‖g_i‖)``. ``epsilon_floor`` reports the floor that applies.

    **Weight decay (route (b)).** With ``weight_decay=λ`` and the mean loss
    :math:`L_\lambda = \frac1n\sum_i \ell(q_i) + \frac\lambda2\lVert\theta\rVert^2`,
    stationarity gives :math:`\mu_i = q_{\min}^{(L-2)/L} r_i / (n\lambda)`,
    :math:`r_i = -\ell'(q_i)` (logistic :math:`1/(1+e^{q_i})`, exponential :math:`e^{-q_i}`;
    multiclass cross-entropy: the softmax probabilities :math:`p_{ij}`), and
    ``stationarity_residual`` :math:`= \lVert\frac1n\sum r_i y_i\nabla f(\theta; x_i) -
    \lambda\theta\rVert / (\lambda\lVert\theta\rVert)`, which equals the relative ε of these
    multipliers. Regression (mean squared error): :math:`\mu_i = -2(f_i - y_i)/(n\lambda)`.

    **Convex certificates.** Depth-2 :class:`DiagonalNet`: ``dual_norm``
    :math:`=\lVert 2\sum_i \mu_i y_i x_i\rVert_\infty` (``≤ 1`` with ε = 0 certifies the
    global ℓ1 max-margin optimum, THEORY §4) and, with ``certificate=True``, the gap between
    :math:`\lVert\tilde\theta\rVert^2` and :math:`\lVert w_1^*\rVert_1`
    (:func:`l1_max_margin`, an LP). :class:`MatrixFactorization` regression: ``dual_norm`` the
    operator norm of :math:`\sum_k \mu_k (E_{i_k j_k} + E_{j_k i_k})` and, with
    ``certificate=True``, the gap between :math:`\lVert\theta\rVert^2` and the minimum nuclear
    norm (:func:`min_nuclear_norm_completion`, an SDP).

    Parameters
    ----------
    model : torch.nn.Module
        The trained model, at its current parameters. A plain module is wrapped with
        :class:`Homogeneous` (its degree verified, or estimated, on ``X``).
    X : torch.Tensor
        Training inputs, shape ``(n, ...)`` (index pairs ``(n, 2)`` for matrix factorization).
    y : array_like of shape (n,)
        Labels in {−1, +1} (binary), integers ``0..C−1`` (``C`` logits) or real targets.
    task : {"classification", "regression", "multiclass"}, optional
        Inferred when ``None``: ``multiclass`` for several outputs, ``classification`` when
        ``y`` is ±1, ``regression`` otherwise. {0, 1} labels raise (not converted silently).
    weight_decay : float, optional
        λ of training: adds the route-(b) multipliers and the stationarity residual.
    loss : {"logistic", "exponential"}, default "logistic"
        Training loss for route (b) (``"logistic"`` is cross-entropy for multiclass).
    degree : int or float, optional
        Override the homogeneity degree ``L``.
    certificate : bool, default False
        Also solve the convex surrogate (LP or SDP) for ``convex_optimum`` and ``convex_gap``.
    epsilon_tolerance : float, default 1e-2
        Relative slack on ε when choosing multipliers that keep δ small (see above).
    direct : bool, optional
        Force (``True``) or forbid (``False``) the direct evaluation of ε; default automatic.
    chunk_size : int, optional
        Examples per chunk in the NTK and vector-Jacobian products.

    Returns
    -------
    KKTReport

    Raises
    ------
    NotHomogeneousError
        If the model is not positively homogeneous.
    InvalidArgumentError
        If a training point is misclassified (``q_min ≤ 0``; the message gives the count),
        labels are not ±1 / classes, lengths differ, or inputs contain NaN.

    Examples
    --------
    An exact KKT point: ``w = (1, 0)`` is the ℓ1 max-margin classifier of two points, and the
    diagonal net ``u = (1, 0), v = 0`` represents it.

    >>> import torch, implicitbias as ib
    >>> net = ib.DiagonalNet(2, dtype=torch.float64)
    >>> with torch.no_grad():
    ...     _ = net.u.copy_(torch.tensor([1.0, 0.0], dtype=torch.float64))
    ...     _ = net.v.zero_()
    >>> X = torch.tensor([[1.0, 0.5], [-1.0, 0.5]], dtype=torch.float64)
    >>> rep = ib.kkt_residuals(net, X, [1, -1])
    >>> rep.epsilon_rel < 1e-12, rep.delta < 1e-12, rep.is_kkt()
    (True, True, True)
    >>> rep.multipliers.round(12).tolist(), rep.dual_norm
    ([0.5, 0.0], 1.0)

    References
    ----------
    K. Lyu, J. Li, Gradient Descent Maximizes the Margin of Homogeneous Neural Networks,
    ICLR 2020, arXiv:1906.05890 (Definition of (ε, δ)-KKT, Section 4).
    J. Dutta, K. Deb, R. Tulshyan, R. Arora, Approximate KKT points and a proximity measure
    for termination, J. Global Optimization 56 (2013).
    K. Lyu, J. Jin, Z. Li, S. S. Du, J. D. Lee, W. Hu, Dichotomy of Early and Late Phase
    Implicit Biases Can Provably Induce Grokking, ICLR 2024, arXiv:2311.18817.
    """
    func = "kkt_residuals"
    t_start = time.perf_counter()
    check_choice(loss, func, "loss", ("logistic", "exponential"))
    if weight_decay is not None:
        weight_decay = check_positive(weight_decay, func, "weight_decay")
    epsilon_tolerance = check_nonnegative(epsilon_tolerance, func, "epsilon_tolerance")
    if direct is not None and not isinstance(direct, bool):
        raise fail(func, "direct", "True, False or None", repr(direct))
    if not isinstance(certificate, bool):
        raise fail(func, "certificate", "True or False", repr(certificate))
    if chunk_size is not None:
        chunk_size = check_int(chunk_size, func, "chunk_size", minimum=1)
    s = _prepare(model, X, y, func, task=task, degree=degree)
    L = s.L
    u_K = _unit_roundoff(s.theta.dtype)
    K = _ntk(s, chunk_size)
    if s.task == "regression":
        return _regression(s, K, u_K, weight_decay, loss, certificate, direct, chunk_size, t_start)

    # ---- margins and the rescaled feasible point θ̃ = s θ
    q_ex = _example_margins(s)
    q_min = _check_separating(q_ex, func)
    scale = q_min ** (-1.0 / L)
    tt = (s.theta_norm * scale) ** 2
    Kt = K * scale ** (2.0 * (L - 1.0))
    n, C = s.n, s.C
    if s.task == "multiclass":
        qp = _pair_margins(s.outputs, s.y) / q_min  # (n, C), inf at y_i
        rows, cols = np.nonzero(np.isfinite(qp))
        A = rows * C + s.y[rows]
        B = rows * C + cols
        Q = Kt[np.ix_(A, A)] - Kt[np.ix_(A, B)] - Kt[np.ix_(B, A)] + Kt[np.ix_(B, B)]
        qc = qp[rows, cols]
    else:
        Q = np.outer(s.y, s.y) * Kt
        qc = q_ex / q_min
        rows = np.arange(n)
        cols = np.zeros(n, dtype=np.int64)
    Q = 0.5 * (Q + Q.T)
    b = L * qc
    slack = np.maximum(qc - 1.0, 0.0)

    # ---- multipliers: near-minimizer of ε with small δ
    mu, eps_min, tau, iterations = _select_multipliers(
        Q, b, slack, tt, floor2=8 * u_K * tt * max(1.0, math.sqrt(b.size)), rtol=epsilon_tolerance
    )

    def coefficients(m: np.ndarray) -> np.ndarray:
        # Output-space coefficients c with Σ μ g = ∇_θ Σ c·f at θ̃.
        if s.task == "multiclass":
            c = np.zeros((n, C))
            np.add.at(c, (rows, cols), -m)
            np.add.at(c, (rows, s.y[rows]), m)
            return c
        return m * s.y

    theta_t = s.theta * scale

    def evaluate(m: np.ndarray) -> tuple[float, str, float]:
        value, magnitude = _gram_eps2(tt, b, Q, m)
        floor_gram = math.sqrt(8 * u_K * magnitude)
        eps_gram = math.sqrt(max(value, 0.0))
        if direct is False or (direct is None and eps_gram >= 1e3 * floor_gram):
            return eps_gram, "gram", floor_gram
        eps_d, u_d = _direct_epsilon(s, theta_t, coefficients(m), chunk_size)
        grad_norms = np.sqrt(np.maximum(np.diag(Q), 0.0))
        floor_d = 8 * u_d * (math.sqrt(tt) + float(np.abs(m) @ grad_norms))
        return eps_d, "direct", floor_d

    epsilon, method, floor = evaluate(mu)
    delta = float(np.max(mu * slack)) if mu.size else 0.0

    def as_table(m: np.ndarray) -> np.ndarray:
        if s.task == "multiclass":
            out = np.zeros((n, C))
            out[rows, cols] = m
            return out
        return m.copy()

    multipliers = as_table(mu)
    support = np.flatnonzero(multipliers.reshape(n, -1).max(axis=1) > 0)

    # ---- route (b): weight-decay stationarity
    wd_mu = wd_eps = wd_eps_rel = wd_delta = stat = None
    if weight_decay is not None:
        if s.task == "multiclass":
            q_raw = qc * q_min
            if loss == "exponential":
                r = np.exp(-q_raw)
            else:
                r = softmax(s.outputs, axis=1)[rows, cols]
        else:
            q_raw = q_ex
            r = np.exp(-q_raw) if loss == "exponential" else expit(-q_raw)
        m_b = q_min ** ((L - 2.0) / L) * r / (n * weight_decay)
        wd_eps, _, _ = evaluate(m_b)
        wd_eps_rel = wd_eps / math.sqrt(tt)
        stat = wd_eps_rel
        wd_delta = float(np.max(m_b * slack))
        wd_mu = as_table(m_b)

    # ---- convex certificates
    surrogate = dual_norm = lower = optimum = gap = gap_rel = None
    from implicitbias.models.diagonal_net import DiagonalNet

    if isinstance(s.h.model, DiagonalNet) and s.h.model.depth == 2 and s.task == "classification":
        Xn = s.X.detach().to(torch.float64).cpu().numpy()
        z = 2.0 * Xn.T @ (mu * s.y)
        surrogate = "l1_max_margin"
        dual_norm = float(np.max(np.abs(z)))
        lower = 2.0 * float(mu.sum()) / dual_norm if dual_norm > 0 else 0.0
        if certificate:
            from implicitbias.rich_regime import l1_max_margin

            optimum = float(l1_max_margin(Xn, s.y).norm)
            gap = tt - optimum
            gap_rel = gap / optimum

    return KKTReport(
        task=s.task,
        degree=s.h.degree,
        epsilon=epsilon,
        epsilon_rel=epsilon / math.sqrt(tt),
        delta=delta,
        multipliers=multipliers,
        support=support,
        margins=q_ex / q_min,
        q_min=q_min,
        theta_norm=s.theta_norm,
        rescaled_theta_norm=math.sqrt(tt),
        normalized_margin=q_min / s.theta_norm**L,
        smoothed_margin=_smoothed(s, "exponential"),
        max_abs_residual=None,
        epsilon_min=eps_min,
        active_threshold=tau,
        epsilon_method=method,
        epsilon_floor=floor,
        weight_decay=weight_decay,
        loss=loss,
        wd_multipliers=wd_mu,
        wd_epsilon=wd_eps,
        wd_epsilon_rel=wd_eps_rel,
        wd_delta=wd_delta,
        stationarity_residual=stat,
        convex_surrogate=surrogate,
        dual_norm=dual_norm,
        convex_lower_bound=lower,
        convex_optimum=optimum,
        convex_gap=gap,
        convex_gap_rel=gap_rel,
        n_constraints=int(b.size),
        solver_iterations=iterations,
        solve_time=time.perf_counter() - t_start,
    )


def _regression(
    s: _Setup,
    K: np.ndarray,
    u_K: float,
    weight_decay: float | None,
    loss: str,
    certificate: bool,
    direct: bool | None,
    chunk_size: int | None,
    t_start: float,
) -> KKTReport:
    L = s.L
    n = s.n
    f = s.outputs
    tt = s.theta_norm**2
    b = L * f
    mu = _least_squares(K, b, u_K)

    def evaluate(m: np.ndarray) -> tuple[float, str, float]:
        value, magnitude = _gram_eps2(tt, b, K, m)
        floor_gram = math.sqrt(8 * u_K * magnitude)
        eps_gram = math.sqrt(max(value, 0.0))
        if direct is False or (direct is None and eps_gram >= 1e3 * floor_gram):
            return eps_gram, "gram", floor_gram
        eps_d, u_d = _direct_epsilon(s, s.theta, m, chunk_size)
        grad_norms = np.sqrt(np.maximum(np.diag(K), 0.0))
        floor_d = 8 * u_d * (math.sqrt(tt) + float(np.abs(m) @ grad_norms))
        return eps_d, "direct", floor_d

    epsilon, method, floor = evaluate(mu)
    max_res = float(np.max(np.abs(f - s.y)))
    support = np.flatnonzero(np.abs(mu) > 1e-12 * max(float(np.abs(mu).max()), 1e-300))
    wd_mu = wd_eps = wd_eps_rel = stat = None
    if weight_decay is not None:
        wd_mu = -2.0 * (f - s.y) / (n * weight_decay)
        wd_eps, _, _ = evaluate(wd_mu)
        wd_eps_rel = wd_eps / math.sqrt(tt)
        stat = wd_eps_rel

    surrogate = dual_norm = lower = optimum = gap = gap_rel = None
    from implicitbias.models.diagonal_net import DiagonalNet
    from implicitbias.models.matrix_factorization import MatrixFactorization

    model = s.h.model
    if isinstance(model, MatrixFactorization):
        idx = s.X.detach().cpu().numpy().astype(np.int64)
        d = model.d
        S = np.zeros((d, d))
        np.add.at(S, (idx[:, 0], idx[:, 1]), mu)
        S = S + S.T
        surrogate = "min_nuclear_norm"
        dual_norm = float(np.max(np.abs(np.linalg.eigvalsh(S))))
        lower = 2.0 * float(mu @ s.y) / dual_norm if dual_norm > 0 else 0.0
        if certificate:
            from implicitbias.rich_regime import min_nuclear_norm_completion

            res = min_nuclear_norm_completion(d, idx[:, 0], idx[:, 1], s.y)
            optimum = float(res.nuclear_norm)
            gap = tt - optimum
            gap_rel = gap / optimum if optimum > 0 else math.inf
    elif isinstance(model, DiagonalNet) and model.depth == 2:
        Xn = s.X.detach().to(torch.float64).cpu().numpy()
        z = 2.0 * Xn.T @ mu
        surrogate = "l1_interpolation"
        dual_norm = float(np.max(np.abs(z)))
        lower = 2.0 * float(mu @ s.y) / dual_norm if dual_norm > 0 else 0.0

    return KKTReport(
        task="regression",
        degree=s.h.degree,
        epsilon=epsilon,
        epsilon_rel=epsilon / math.sqrt(tt) if tt > 0 else math.inf,
        delta=max_res,
        multipliers=mu,
        support=support,
        margins=None,
        q_min=None,
        theta_norm=s.theta_norm,
        rescaled_theta_norm=s.theta_norm,
        normalized_margin=None,
        smoothed_margin=None,
        max_abs_residual=max_res,
        epsilon_min=epsilon,
        active_threshold=math.inf,
        epsilon_method=method,
        epsilon_floor=floor,
        weight_decay=weight_decay,
        loss="squared",
        wd_multipliers=wd_mu,
        wd_epsilon=wd_eps,
        wd_epsilon_rel=wd_eps_rel,
        wd_delta=None,
        stationarity_residual=stat,
        convex_surrogate=surrogate,
        dual_norm=dual_norm,
        convex_lower_bound=lower,
        convex_optimum=optimum,
        convex_gap=gap,
        convex_gap_rel=gap_rel,
        n_constraints=n,
        solver_iterations=0,
        solve_time=time.perf_counter() - t_start,
    )
