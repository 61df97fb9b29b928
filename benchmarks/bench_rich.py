"""Rich-regime reference solvers: fast routes against their cvxpy reference, side by side.

Run standalone from the repository root or the benchmarks folder::

    python benchmarks/bench_rich.py [--quick]
"""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import Row, print_rows, timed  # noqa: E402

import implicitbias as ib  # noqa: E402


def _sparse_linear(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The paper's data: x ~ U({±1}^d), y = sign⟨w*, x⟩ with a 3-sparse ±1 w*."""
    rng = np.random.default_rng(seed)
    X = rng.choice([-1.0, 1.0], size=(n, d))
    w = np.zeros(d)
    w[rng.choice(d, 3, replace=False)] = rng.choice([-1.0, 1.0], size=3)
    return X, np.sign(X @ w)


def _low_rank(d: int, frac: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, 2)) / np.sqrt(d)
    Xs = A @ A.T
    r, c = np.nonzero(rng.random((d, d)) < frac)
    return Xs, r, c


def _l1_rows(sizes: list[tuple[int, int]], cvxpy_max: int) -> list[Row]:
    rows = []
    for n, d in sizes:
        X, y = _sparse_linear(n, d)
        fast, t_fast = timed(lambda X=X, y=y: ib.l1_max_margin(X, y))
        if n * d <= cvxpy_max:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ib.InaccurateSolutionWarning)
                ref, t_ref = timed(lambda X=X, y=y: ib.l1_max_margin(X, y, solver="cvxpy"))
            rel = abs(fast.objective - ref.objective) / ref.objective
            same = np.array_equal(fast.active_features, ref.active_features)
            agree = f"obj rel. diff {rel:.1e}, same support {same}, gap {fast.relative_gap:.0e}"
        else:
            t_ref = None
            agree = (
                f"cvxpy skipped (n*d = {n * d:.1e}: minutes); certified gap "
                f"{fast.relative_gap:.0e}, |supp w| = {len(fast.active_features)}"
            )
        rows.append(
            Row(
                "l1_max_margin",
                f"n={n}, d={d}",
                "highs-colgen",
                t_fast,
                "cvxpy:CLARABEL",
                t_ref,
                agree,
            )
        )
    return rows


def _table(d: int = 97, frac: float = 0.05, seed: int = 0):
    """The paper's multiplication table X*_ij = ij/d², a fraction ``frac`` observed."""
    i = np.arange(d)
    Xs = np.outer(i, i) / d**2
    r, c = np.nonzero(np.random.default_rng(seed).random((d, d)) < frac)
    return Xs, r, c


def _nuc_rows(d_cmp: int, d_big: int, frac_cmp: float, frac_big: float) -> list[Row]:
    rows = []
    cases = [(f"d={d_cmp}, rank 2, {frac_cmp:.0%} obs.", d_cmp, *_low_rank(d_cmp, frac_cmp))]
    cases.append(("d=97 table ij/d², 5% obs.", 97, *_table()))
    for label, d, Xs, r, c in cases:
        fast, t_fast = timed(
            lambda d=d, Xs=Xs, r=r, c=c: ib.min_nuclear_norm_completion(
                d, r, c, Xs[r, c], solver="alm"
            )
        )
        ref, t_ref = timed(
            lambda d=d, Xs=Xs, r=r, c=c: ib.min_nuclear_norm_completion(
                d, r, c, Xs[r, c], solver="cvxpy"
            )
        )
        rel = abs(fast.nuclear_norm - ref.nuclear_norm) / ref.nuclear_norm
        err = np.linalg.norm(ref.W - Xs) / np.linalg.norm(Xs)
        auto = ib.min_nuclear_norm_completion(d, r, c, Xs[r, c]).solver
        rows.append(
            Row(
                "min_nuclear_norm_completion", label, "alm", t_fast, "cvxpy:SCS (dual SDP)",
                t_ref,
                f"obj rel. diff {rel:.1e}, gaps {fast.relative_gap:.0e}/{ref.relative_gap:.0e}"
                f", SDP rel. err {err:.0e}; auto -> {auto}",
            )
        )  # fmt: skip
    Xs, r, c = _low_rank(d_big, frac_big)
    fast, t_fast = timed(lambda: ib.min_nuclear_norm_completion(d_big, r, c, Xs[r, c]))
    err = np.linalg.norm(fast.W - Xs) / np.linalg.norm(Xs)
    rows.append(
        Row(
            "min_nuclear_norm_completion", f"d={d_big}, rank 2, {frac_big:.0%} obs.",
            fast.solver, t_fast, "cvxpy:SCS", None,
            f"SDP not run (auto: ALM above d=100; SDP cost ~d³ per SCS iteration); gap "
            f"{fast.relative_gap:.0e}, rel. err {err:.0e}",
        )
    )  # fmt: skip
    return rows


def run(quick: bool) -> list[Row]:
    if quick:
        rows = _l1_rows([(200, 2000), (400, 300), (256, 20_000)], cvxpy_max=500_000)
        rows += _nuc_rows(25, 250, 0.4, 0.1)
    else:
        rows = _l1_rows([(400, 5000), (1600, 1000), (256, 100_000)], cvxpy_max=2_000_000)
        rows += _nuc_rows(40, 1000, 0.3, 0.03)
    return rows


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--quick", action="store_true", help="small sizes (about a minute)")
    print_rows(run(parser.parse_args().quick))
