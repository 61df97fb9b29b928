"""Grokking on a sparse linear task, reproduced through ``implicitbias.experiments``.

A depth-2 diagonal linear network from a large initialization (‖θ(0)‖ = α) with a small weight
decay λ fits its training set at once, but its test accuracy stays at the level of the ℓ2
max-margin classifier (the kernel regime) until near t* = log(α)/λ, then jumps to that of the
ℓ1 max-margin classifier (the rich regime) (THEORY §6, experiment 1). This script calls
:func:`implicitbias.experiments.run`, prints the measured acceptance checks and the path of the
three-panel figure.

Run ``python examples/grokking.py --quick`` (sparse-linear at the ``quick`` scale, about 30 s)
or without ``--quick`` (also the misgrokking mirror image). Exits with status 1 when a check
fails. ``implicitbias reproduce sparse-linear`` does the same from the command line.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import implicitbias as ib


def _fmt(x: object, spec: str = ".4g") -> str:
    """A recorded number, or ``n/a`` where the run recorded none (non-finite or not reached)."""
    return "n/a" if x is None else format(x, spec)


def report(result: ib.experiments.RunResult) -> None:
    s = result.summary
    print(
        f"\n== {result.name} ({result.scale}), status {result.status}: t* = {s['t_star']:.4g} "
        f"({s['t_star_steps']:.3g} GD steps), wall time {result.wall_time:.1f} s"
    )
    for key, label in (("l2_max_margin", "kernel regime"), ("l1_max_margin", "rich regime")):
        if key in s:
            print(f"{key} test accuracy ({label}) = {_fmt(s[key]['test_acc'])}")
    final = s.get("final", {})
    print(
        f"final: test accuracy = {_fmt(final.get('test_acc'))}, "
        f"cos(w, w1*) = {_fmt(final.get('cos_l1'))}, "
        f"KKT epsilon_rel = {_fmt(final.get('kkt_epsilon_rel'), '.3g')}, "
        f"t/t* = {_fmt(final.get('rescaled_time'), '.3g')}"
    )
    for key, c in s["checks"].items():
        mark = c.get("result", "PASS" if c["passed"] else "FAIL")
        print(
            f"  [{mark}] {key}: {_fmt(c['value'])} {c['op']} {c['threshold']:g}  "
            f"({c['description']})"
        )
    if "figure" in result.paths:
        print(f"figure: {result.paths['figure']}")
    print(f"summary: {result.paths['summary']}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the sparse-linear run")
    parser.add_argument("--out-dir", default="runs/examples", help="parent folder of the runs")
    parser.add_argument("--no-figure", action="store_true", help="skip figure.png")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    names = ["sparse-linear"] if args.quick else ["sparse-linear", "misgrokking"]
    passed = True
    for name in names:
        result = ib.experiments.run(
            name,
            scale="quick",
            out_dir=Path(args.out_dir) / f"{name}-quick",
            figure=not args.no_figure,
        )
        report(result)
        passed = passed and result.passed
    print(f"\nall checks passed = {passed}")
    print(f"wall time = {time.perf_counter() - start:.1f} s")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
