"""ℓ∞ max-margin by HiGHS simplex: ``min t s.t. y_i⟨w, x_i⟩ ≥ 1, −t ≤ w_j ≤ t``.

The rescue of ``lp_max_margin(p=inf, solver="auto")`` on ill-conditioned data (tiny relative
margins), where the interior-point solve stalls or is not certified: a simplex vertex is
robust there, and the LP is tried in the equivalent forms of :func:`._mm_common.rescalings`.
On ordinary data the interior-point route is faster (d = 2000: 5 s against 40 s), so this is
not the first route.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linprog

from implicitbias._errors import SolverError
from implicitbias.rich_regime._certificate import Certificate
from implicitbias.rich_regime._mm_common import HIGHS_OPTIONS, HINT, Infeasible, rescalings

__all__ = ["linf_highs_candidates"]


def linf_lp(Z: np.ndarray, func: str, D: np.ndarray, k: float) -> tuple[np.ndarray, np.ndarray]:
    """``min t s.t. (D/k) ⊙ Z w' ≥ D, −t ≤ w'_j ≤ t`` by HiGHS (simplex), an equivalent form
    of ``Z w ≥ 1`` (see :func:`rescalings`); returns (w = w'/k, μ) with μ the multipliers
    of ``Z w ≥ 1``."""
    Z = (D / k)[:, None] * Z
    n, d = Z.shape
    eye = sp.identity(d, format="csr")
    col = sp.csr_matrix(np.ones((d, 1)))
    A_ub = sp.vstack(
        [sp.hstack([sp.csr_matrix(-Z), sp.csr_matrix((n, 1))]), sp.hstack([eye, -col]),
         sp.hstack([-eye, -col])], format="csr",
    )  # fmt: skip
    c = np.zeros(d + 1)
    c[d] = 1.0
    b_ub = np.concatenate([-D, np.zeros(2 * d)])
    res = linprog(
        c, A_ub=A_ub, b_ub=b_ub, bounds=(None, None), method="highs", options=HIGHS_OPTIONS
    )
    if res.status == 2:
        raise Infeasible()
    if res.status != 0:
        raise SolverError(
            f"{func}: HiGHS stopped with status {res.status} ({res.message}) on the l-inf "
            f"LP with {n} examples and {d} features. {HINT}"
        )
    mu = -D * np.asarray(res.ineqlin.marginals, dtype=np.float64)[:n] / k
    return np.asarray(res.x, dtype=np.float64)[:d] / k, mu


def linf_highs_candidates(
    A: np.ndarray, s: float, g: float, cert: Certificate, func: str, tol: float
) -> None:
    """Add the HiGHS answers of the ℓ∞ LP for ``A = y ⊙ X / s`` (relative margin ``g``) to
    ``cert``, form by form, until one is certified; failures are left to the caller."""
    for D, k in rescalings(A, g):
        try:
            w, mu = linf_lp(A, func, D, k)
        except (Infeasible, SolverError):
            continue
        cert.add(w / s, mu / s)
        if cert.ok(tol):
            return
