"""The ``implicitbias`` command line: list and reproduce the paper's experiments.

Usage::

    implicitbias list
    implicitbias reproduce sparse-linear [--scale quick|paper] [--out DIR] [--seed N]
                                         [--device D] [--method gd|flow] [--no-progress]

``python -m implicitbias`` is the same program. User errors (an unknown experiment, a bad
scale, a negative weight decay, α ≤ 0, ...) print a one-line message in argparse's style and
exit with status 2, without a traceback.

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from collections.abc import Sequence
from typing import Any

from implicitbias._errors import ImplicitBiasError

__all__ = ["main", "build_parser"]

_PROG = "implicitbias"


def _experiments() -> dict[str, str]:
    from implicitbias.experiments.configs import EXPERIMENTS

    return EXPERIMENTS


def _parse_set(items: Sequence[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """``--set key=value`` pairs; values are Python literals (numbers, strings)."""
    out: dict[str, Any] = {}
    for item in items:
        if "=" not in item:
            parser.error(f"argument --set: expected KEY=VALUE, got {item!r}")
        key, _, raw = item.partition("=")
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        out[key.strip().replace("-", "_")] = value
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    names = list(_experiments())
    parser = argparse.ArgumentParser(
        prog=_PROG,
        description=(
            "Kernel-regime and rich-regime implicit biases of homogeneous networks: reproduce "
            "the grokking experiments of Lyu et al., ICLR 2024 (arXiv:2311.18817)."
        ),
    )
    sub = parser.add_subparsers(dest="command", metavar="{list,reproduce}")
    sub.required = True
    sub.add_parser("list", help="list the experiments with a one-line description")
    rep = sub.add_parser(
        "reproduce",
        help="run one experiment; write history (CSV + JSON), config, summary and a figure",
        description=(
            "Run one experiment and write history.csv/.json, config.json, summary.json and "
            "figure.png into --out (default runs/<name>-<scale>)."
        ),
    )
    rep.add_argument("name", metavar="experiment", help="one of: " + ", ".join(names))
    rep.add_argument(
        "--scale",
        default="quick",
        help="quick (CPU-sized default, under a minute) or paper (the paper's settings)",
    )
    rep.add_argument("--out", default=None, metavar="DIR", help="output folder")
    rep.add_argument("--seed", default="0", metavar="N", help="data seed (default 0)")
    rep.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    rep.add_argument("--method", default=None, help="gd (fixed-step) or flow (adaptive)")
    rep.add_argument("--threads", default=None, metavar="N", help="torch threads during the run")
    rep.add_argument("--alpha", default=None, metavar="A", help="override the init scale alpha > 0")
    rep.add_argument(
        "--weight-decay", default=None, metavar="L", help="override the weight decay lambda >= 0"
    )
    rep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set alpha=256 --set weight_decay=1e-3",
    )
    rep.add_argument("--no-progress", action="store_true", help="no progress bar or messages")
    rep.add_argument("--no-figure", action="store_true", help=argparse.SUPPRESS)
    return parser


def _int_arg(
    parser: argparse.ArgumentParser, name: str, raw: str | None, minimum: int
) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        parser.error(f"argument {name}: expected an integer, got {raw!r}")
    if value < minimum:
        parser.error(f"argument {name}: expected an integer >= {minimum}, got {value}")
    return value


def _cmd_list() -> int:
    exps = _experiments()
    width = max(len(k) for k in exps)
    print("Experiments (implicitbias reproduce NAME [--scale quick|paper]):")
    for name, text in exps.items():
        print(f"  {name:<{width}}  {text}")
    return 0


def _fmt(x: Any, spec: str = ".4g") -> str:
    if x is None:
        return "n/a"
    try:
        return format(float(x), spec)
    except (TypeError, ValueError):
        return str(x)


def _print_summary(res: Any) -> None:
    s = res.summary
    tr = s.get("training", {})
    print()
    print(f"== {res.name} ({res.scale}, seed {s.get('seed')}) ==")
    print(
        f"wall time: {s['wall_time']:.1f} s (training {_fmt(tr.get('train_wall_time'), '.1f')} s, "
        f"{tr.get('method')}, {tr.get('grad_evals')} gradient evaluations, "
        f"{_fmt(tr.get('steps_equivalent'), '.3g')} GD steps equivalent, status {tr.get('status')})"
    )
    print(
        f"t* = log(alpha)/lambda = {_fmt(s['t_star'])} ({_fmt(s['t_star_steps'], '.4g')} GD steps)"
    )
    for label, value in s.get("baselines", {}).items():
        print(f"baseline {label}: {_fmt(value)}")
    final = s.get("final", {})
    print("final: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in final.items()))
    checks = s.get("checks", {})
    if checks:
        print("checks:")
        for c in checks.values():
            mark = "PASS" if c["passed"] else "FAIL"
            print(
                f"  [{mark}] {c['description']}: {_fmt(c['value'])} {c['op']} {_fmt(c['threshold'])}"
            )
    print("files:")
    for key, path in res.paths.items():
        print(f"  {key:<13} {path}")


def _cmd_reproduce(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from implicitbias.experiments.configs import _ALL_SCALES, SCALES

    exps = _experiments()
    if args.name not in exps:
        parser.error(
            f"argument experiment: invalid choice: {args.name!r} (choose from "
            + ", ".join(repr(k) for k in exps)
            + ")"
        )
    if args.scale not in _ALL_SCALES:
        parser.error(
            f"argument --scale: invalid choice: {args.scale!r} (choose from "
            + ", ".join(repr(k) for k in SCALES)
            + ")"
        )
    if args.method is not None and args.method not in ("gd", "flow"):
        parser.error(
            f"argument --method: invalid choice: {args.method!r} (choose from 'gd', 'flow')"
        )
    seed = _int_arg(parser, "--seed", args.seed, 0)
    threads = _int_arg(parser, "--threads", args.threads, 1)
    overrides = _parse_set(args.set, parser)
    for opt, key, raw in (
        ("--alpha", "alpha", args.alpha),
        ("--weight-decay", "weight_decay", args.weight_decay),
    ):
        if raw is not None:
            try:
                overrides[key] = float(raw)
            except ValueError:
                parser.error(f"argument {opt}: expected a number, got {raw!r}")

    from implicitbias.experiments.runner import run

    quiet = args.no_progress
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    res = run(
        args.name,
        scale=args.scale,
        seed=seed if seed is not None else 0,
        out_dir=args.out,
        device=args.device,
        method=args.method,
        progress=not quiet and sys.stderr.isatty(),
        overrides=overrides or None,
        figure=not args.no_figure,
        threads=threads,
        log=log,
    )
    _print_summary(res)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``implicitbias`` and ``python -m implicitbias``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        return _cmd_reproduce(args, parser)
    except ImplicitBiasError as exc:
        # A user error found by the library's validation: argparse style, no traceback.
        msg = str(exc)
        for old, new in (("argument of run", "option"), ("argument of get_config", "option")):
            msg = msg.replace(old, new)
        parser.error(msg)
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return 130
    return 0  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
