"""A thin, lazily imported cvxpy wrapper: solver choice, status mapping, quiet warnings."""

from __future__ import annotations

import warnings
from typing import Any

from implicitbias._errors import SolverError
from implicitbias._validation import check_cvxpy_solver, fail

__all__ = ["solve_problem", "check_cvxpy_solver", "check_solver_cones"]


def check_solver_cones(name: str, func: str, cones: tuple[str, ...], what: str) -> None:
    """Refuse an installed cvxpy solver that cannot handle the problem's cones, naming
    ``cvxpy_solver`` (cvxpy itself would fail later with "cannot solve this problem").

    ``cones`` are cvxpy constraint class names (``"SOC"``, ``"PowCone3D"``, ``"PSD"``); an LP
    needs none. If cvxpy's solver tables cannot be read, nothing is checked.
    """
    try:
        from cvxpy.reductions.solvers import defines

        capable = set()
        for table in (defines.SOLVER_MAP_CONIC, defines.SOLVER_MAP_QP):
            solver = table.get(name)
            if solver is None:
                continue
            supported = {c.__name__ for c in getattr(solver, "SUPPORTED_CONSTRAINTS", ())}
            if table is defines.SOLVER_MAP_QP and not cones:
                capable.add(name)
            elif all(c in supported or (c == "PSD" and "SvecPSD" in supported) for c in cones):
                capable.add(name)
        known = name in defines.SOLVER_MAP_CONIC or name in defines.SOLVER_MAP_QP
    except Exception:  # pragma: no cover - cvxpy internals moved: let cvxpy decide
        return
    if known and name not in capable:
        raise fail(
            func, "cvxpy_solver", f"a cvxpy solver that handles {what}", repr(name),
            "CLARABEL and SCS handle every problem of this package.",
        )  # fmt: skip


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
