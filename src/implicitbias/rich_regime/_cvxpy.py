"""A thin, lazily imported cvxpy wrapper: solver choice, status mapping, quiet warnings."""

from __future__ import annotations

import warnings
from typing import Any

from implicitbias._errors import SolverError
from implicitbias._validation import check_cvxpy_solver

__all__ = ["solve_problem", "check_cvxpy_solver"]


def solve_problem(
    problem: Any,
    *,
    func: str,
    solver: str,
    options: dict[str, Any] | None,
    infeasible: Exception,
) -> tuple[str, int]:
    """Solve ``problem``; raise ``infeasible`` or :class:`SolverError`; return (status, iters)."""
    import cvxpy as cp

    try:
        with warnings.catch_warnings():
            # cvxpy warns "Solution may be inaccurate"; we certify and warn ourselves.
            warnings.simplefilter("ignore")
            problem.solve(solver=solver, **(options or {}))
    except cp.error.SolverError as exc:
        raise SolverError(
            f"{func}: the cvxpy solver {solver} failed ({exc}). Try another solver with "
            "cvxpy_solver=..., or the fast route solver='auto'."
        ) from exc
    status = problem.status
    if status in (cp.INFEASIBLE, cp.INFEASIBLE_INACCURATE):
        raise infeasible
    if status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE):
        raise SolverError(
            f"{func}: the cvxpy solver {solver} ended with status {status!r}. Try another "
            "solver with cvxpy_solver=..., or the fast route solver='auto'."
        )
    iters = 0
    stats = problem.solver_stats
    if stats is not None and stats.num_iters is not None:
        iters = int(stats.num_iters)
    return str(status), iters
