"""The ``implicitbias`` command line: list and reproduce the paper's experiments.

Usage::

    implicitbias list
    implicitbias reproduce sparse-linear [--scale quick|paper] [--out DIR] [--seed N]
                                         [--device D] [--method gd|flow] [--set KEY=VALUE]
                                         [--resume] [--no-progress]
    implicitbias reproduce modular-addition --sweep alpha=1,10,100 [--jobs N] [...]
    implicitbias --version

``--sweep KEY=V1,V2,...`` runs the experiment once per value (``--sweep KEY`` alone: the values
of a declared sweep, see ``implicitbias list``), each run in ``--out``/``KEY=VALUE``, and writes
``sweep.json`` (each run's milestones and the sweep's checks) and ``sweep.png`` (the runs'
curves overlaid); ``--jobs N`` runs N values at a time in separate processes.

``python -m implicitbias`` is the same program. Options must be spelled out (no abbreviations).

Exit status:

===  ==========================================================================================
0    the run completed (its ``checks`` are reported as PASS/FAIL in the summary, not here);
     a sweep: every run completed
1    the run ended without completing its training (diverged, or step size too small); the
     summary says so and reports every check as ``n/a``; a sweep: a run did not complete
2    a usage or environment error: an unknown experiment, option or setting, a malformed or
     out-of-range value, an unusable ``--out`` or ``--device``, ``--resume`` with nothing to
     resume. One line on stderr, and nothing is written: every check runs first
130  interrupted (Ctrl-C): the partial run lands in ``--out`` with ``summary.json`` status
     ``interrupted``, every check ``n/a``, and a checkpoint that ``--resume`` continues
===  ==========================================================================================

References
----------
Lyu, Jin, Li, Du, Lee, Hu, *Dichotomy of Early and Late Phase Implicit Biases Can Provably
Induce Grokking*, ICLR 2024, arXiv:2311.18817.
"""

from __future__ import annotations

import argparse
import ast
import logging
import re
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn

from implicitbias import ImplicitBiasError, __version__

__all__ = ["main", "build_parser"]

_PROG = "implicitbias"

#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class UsageError(Exception):
    """A usage or environment error, reported on one line with exit status 2."""


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _usage_exit(prog: str, message: str) -> NoReturn:
    print(f"{prog}: error: {_one_line(message)}", file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line (``PROG: error: MESSAGE (see PROG --help)``)."""

    def error(self, message: str) -> NoReturn:
        _usage_exit(self.prog, f"{message} (see '{self.prog} --help')")


def _experiments() -> dict[str, str]:
    from implicitbias.experiments import list_experiments

    return list_experiments()


def _literal(raw: str) -> Any:
    """A Python literal (number, string, bool), else the text itself."""
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return raw


def _parse_sweep(raw: str | None) -> tuple[str, list[Any] | None] | None:
    """``--sweep KEY=V1,V2,...`` (or ``KEY`` alone: the declared values) as (key, values)."""
    if raw is None:
        return None
    key, eq, rest = raw.partition("=")
    key = key.strip().replace("-", "_")
    if not key.isidentifier():
        raise UsageError(
            f"argument --sweep: expected KEY=V1,V2,... (e.g. alpha=1,10,100), got {raw!r}"
        )
    if not eq:
        return key, None
    items = [item.strip() for item in rest.split(",")]
    if len(items) < 2 or not all(items):
        raise UsageError(
            f"argument --sweep {key}: expected at least two comma-separated values, got {raw!r}"
        )
    return key, [_literal(item) for item in items]


def _parse_set(items: Sequence[str]) -> dict[str, Any]:
    """``--set key=value`` pairs; values are Python literals (numbers, strings)."""
    out: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise UsageError(f"argument --set: expected KEY=VALUE, got {item!r}")
        if not key.isidentifier():
            raise UsageError(f"argument --set: {key!r} is not a setting name (in {item!r})")
        if key in out:
            raise UsageError(f"argument --set: {key!r} is given twice")
        raw = raw.strip()
        if not raw:
            raise UsageError(f"argument --set {key}: expected a value, got {item!r}")
        out[key] = _literal(raw)
    return out


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation and tests)."""
    names = list(_experiments())
    parser = _Parser(
        prog=_PROG,
        allow_abbrev=False,
        description=(
            "Kernel-regime and rich-regime implicit biases of homogeneous networks: reproduce "
            "the grokking experiments of Lyu et al., ICLR 2024 (arXiv:2311.18817)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"{_PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{list,reproduce}")
    sub.required = True
    sub.add_parser(
        "list", help="list the experiments with a one-line description", allow_abbrev=False
    )
    rep = sub.add_parser(
        "reproduce",
        allow_abbrev=False,
        help="run one experiment; write history (CSV + JSON), config, summary and a figure",
        description=(
            "Run one experiment and write history.csv/.json, config.json, summary.json and "
            "figure.png into --out (default runs/<name>-<scale>). The run is written aside and "
            "replaces --out when it ends; Ctrl-C leaves an interrupted run there that --resume "
            "continues."
        ),
    )
    rep.add_argument("name", metavar="experiment", help="one of: " + ", ".join(names))
    rep.add_argument(
        "--scale",
        default="quick",
        help="quick (CPU-sized default, minutes) or paper (the paper's settings)",
    )
    rep.add_argument(
        "--out",
        default=None,
        metavar="DIR",
        help="output folder: new, empty, or an earlier run's (replaced when this run ends)",
    )
    rep.add_argument("--seed", default="0", metavar="N", help="data seed (default 0)")
    rep.add_argument(
        "--device", default="cpu", help="torch device, e.g. cpu or cuda (checked before the run)"
    )
    rep.add_argument("--method", default=None, help="gd (fixed-step) or flow (adaptive)")
    rep.add_argument("--threads", default=None, metavar="N", help="torch threads during the run")
    rep.add_argument("--alpha", default=None, metavar="A", help="override the init scale alpha > 1")
    rep.add_argument(
        "--weight-decay", default=None, metavar="L", help="override the weight decay lambda > 0"
    )
    rep.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a setting, e.g. --set alpha=256 --set weight_decay=1e-3",
    )
    rep.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --out from its checkpoint (same settings); "
        "with --sweep: keep the completed runs, continue or start the others",
    )
    rep.add_argument(
        "--sweep",
        default=None,
        metavar="KEY=V1,V2,...",
        help="run once per value of a setting (KEY alone: the declared values, see "
        "'implicitbias list'), each into --out/KEY=VALUE, plus sweep.json and sweep.png",
    )
    rep.add_argument(
        "--jobs",
        default=None,
        metavar="N",
        help="with --sweep: runs at a time, in separate processes (default 1; each run uses "
        "--threads torch threads, default 1)",
    )
    rep.add_argument("--no-progress", action="store_true", help="no progress bar or messages")
    rep.add_argument("--no-figure", action="store_true", help=argparse.SUPPRESS)
    return parser


def _int_arg(name: str, raw: str | None, minimum: int) -> int | None:
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise UsageError(f"argument {name}: expected an integer, got {raw!r}") from None
    if value < minimum:
        raise UsageError(f"argument {name}: expected an integer >= {minimum}, got {value}")
    return value


def _cmd_list() -> int:
    from implicitbias.experiments import list_sweeps

    exps = _experiments()
    width = max(len(k) for k in exps)
    print("Experiments (implicitbias reproduce NAME [--scale quick|paper]):")
    for name, text in exps.items():
        print(f"  {name:<{width}}  {text}")
    sweeps = list_sweeps()
    if sweeps:
        print(
            "Sweeps (implicitbias reproduce NAME --sweep KEY[=V1,V2,...] [--jobs N]; any "
            "setting can be swept with explicit values):"
        )
        width = max(len(k) for k in sweeps)
        for label, info in sweeps.items():
            values = "; ".join(
                f"{scale}: " + ",".join(f"{v:g}" for v in vals)
                for scale, vals in info["values"].items()
            )
            print(f"  {label:<{width}}  {info['figure']}: {info['description']} ({values})")
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
    tr = s.get("training", {}) or {}
    print()
    print(f"== {res.name} ({res.scale}, seed {s.get('seed')}): {s.get('status', 'completed')} ==")
    print(
        f"wall time: {_fmt(s.get('wall_time'), '.1f')} s (training "
        f"{_fmt(tr.get('train_wall_time'), '.1f')} s, {tr.get('method')}, "
        f"{tr.get('grad_evals')} gradient evaluations, "
        f"{_fmt(tr.get('steps_equivalent'), '.3g')} GD steps equivalent, "
        f"status {tr.get('status')})"
    )
    t_star = s.get("t_star")
    if t_star is None or t_star != t_star:  # NaN: alpha <= 1 or lambda = 0
        print("t* = log(alpha)/lambda: none (alpha <= 1 or lambda = 0; milestones in GD steps)")
    else:
        steps = _fmt(s.get("t_star_steps"), ".4g")
        print(f"t* = log(alpha)/lambda = {_fmt(t_star)} ({steps} GD steps)")
    for label, value in (s.get("baselines") or {}).items():
        print(f"baseline {label}: {_fmt(value)}")
    final = s.get("final") or {}
    if final:
        print("final: " + ", ".join(f"{k} = {_fmt(v)}" for k, v in final.items()))
    checks = s.get("checks", {})
    if checks:
        print("checks:")
        for c in checks.values():
            mark = c.get("result") or ("PASS" if c["passed"] else "FAIL")
            print(
                f"  [{mark}] {c['description']}: {_fmt(c['value'])} {c['op']} {_fmt(c['threshold'])}"
            )
    print("files:")
    for key, path in res.paths.items():
        print(f"  {key:<13} {path}")


#: The option of the command line that sets each argument of ``run``.
_OPTIONS = {
    "name": "experiment",
    "scale": "--scale",
    "seed": "--seed",
    "device": "--device",
    "method": "--method",
    "threads": "--threads",
    "out_dir": "--out",
    "resume": "--resume",
    "overrides": "--set",
}
_ARG_MESSAGE = re.compile(r"^The '(?P<arg>[^']+)' argument of \w+ (?P<rest>must be .*)$", re.S)


def _cli_message(message: str, origin: dict[str, str]) -> str:
    """A library message about an argument of ``run``, in terms of the command's options."""
    m = _ARG_MESSAGE.match(_one_line(message))
    if m is None:
        return message
    arg = m["arg"]
    option = origin.get(arg) or _OPTIONS.get(arg) or f"--set {arg}"
    return f"argument {option} ('{arg}') {m['rest']}"


def _validate(args: argparse.Namespace) -> tuple[int, int | None, dict[str, Any], dict[str, str]]:
    """The seed, threads, overrides and where each override came from; UsageError if bad."""
    from implicitbias.experiments import ALL_SCALES, SCALES

    exps = _experiments()
    if args.name not in exps:
        raise UsageError(
            f"argument experiment: invalid choice: {args.name!r} (choose from "
            + ", ".join(repr(k) for k in exps)
            + ")"
        )
    if args.scale not in ALL_SCALES:
        raise UsageError(
            f"argument --scale: invalid choice: {args.scale!r} (choose from "
            + ", ".join(repr(k) for k in SCALES)
            + ")"
        )
    if args.method is not None and args.method not in ("gd", "flow"):
        raise UsageError(
            f"argument --method: invalid choice: {args.method!r} (choose from 'gd', 'flow')"
        )
    seed = _int_arg("--seed", args.seed, 0)
    threads = _int_arg("--threads", args.threads, 1)
    overrides = _parse_set(args.set)
    origin = {k: f"--set {k}" for k in overrides}
    if args.method is not None and "method" in overrides:
        raise UsageError("argument --method: conflicts with --set method=...; give one of them")
    for opt, key, raw in (
        ("--alpha", "alpha", args.alpha),
        ("--weight-decay", "weight_decay", args.weight_decay),
    ):
        if raw is None:
            continue
        if key in overrides:
            raise UsageError(f"argument {opt}: conflicts with --set {key}=...; give one of them")
        try:
            overrides[key] = float(raw)
        except ValueError:
            raise UsageError(f"argument {opt}: expected a number, got {raw!r}") from None
        origin[key] = opt
    return (0 if seed is None else seed), threads, overrides, origin


class _ForwardProgress(logging.Handler):
    """Sends the ``implicitbias.progress`` records to the CLI's log while attached."""

    def __init__(self, log: Any) -> None:
        super().__init__(logging.INFO)
        self._log = log
        self._logger = logging.getLogger("implicitbias.progress")
        self._level = self._logger.level
        self._logger.addHandler(self)
        self._logger.setLevel(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        self._log(record.getMessage())

    def remove(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)


def _validate_sweep(
    args: argparse.Namespace, overrides: dict[str, Any], origin: dict[str, str]
) -> tuple[tuple[str, list[Any] | None] | None, int]:
    """``--sweep`` and ``--jobs``: (key, values) or None, and the jobs; UsageError if bad."""
    sweep = _parse_sweep(args.sweep)
    jobs = _int_arg("--jobs", args.jobs, 1)
    if jobs is not None and sweep is None:
        raise UsageError("argument --jobs: only with --sweep (it runs the values in parallel)")
    if sweep is not None and sweep[0] in overrides:
        raise UsageError(
            f"argument --sweep: {sweep[0]!r} is also given by {origin[sweep[0]]}; give one of them"
        )
    if sweep is not None:
        origin.update({"key": "--sweep", "values": "--sweep", sweep[0]: "--sweep"})
    return sweep, 1 if jobs is None else jobs


def _cmd_reproduce(args: argparse.Namespace) -> int:
    seed, threads, overrides, origin = _validate(args)
    sweep, jobs = _validate_sweep(args, overrides, origin)

    from implicitbias import InvalidArgumentError, InvalidArgumentTypeError
    from implicitbias.experiments import run, run_sweep

    quiet = args.no_progress
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        if not quiet:
            print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)

    # On a terminal the trainer draws a bar; elsewhere (a batch job, CI) its INFO lines of the
    # "implicitbias.progress" logger, one every ~10 s, join this log.
    forward = None if quiet or sys.stderr.isatty() else _ForwardProgress(log)
    common = {"scale": args.scale, "seed": seed, "out_dir": args.out, "device": args.device}
    try:
        if sweep is not None:
            swept = run_sweep(
                args.name, sweep[0], sweep[1], **common, method=args.method, jobs=jobs,
                overrides=overrides or None, figure=not args.no_figure, threads=threads,
                progress=False if quiet else None, log=None if quiet else log,
                resume=args.resume,
            )  # fmt: skip
            print("\n" + swept.report())
            return _sweep_status(swept)
        res = run(
            args.name,
            scale=args.scale,
            seed=seed,
            out_dir=args.out,
            device=args.device,
            method=args.method,
            progress=False if quiet else None,
            overrides=overrides or None,
            figure=not args.no_figure,
            threads=threads,
            log=log,
            resume=args.resume,
        )
    except (InvalidArgumentError, InvalidArgumentTypeError) as exc:
        raise UsageError(_cli_message(str(exc), origin)) from None
    except ImplicitBiasError as exc:
        print(f"{_PROG} reproduce: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if forward is not None:
            forward.remove()
    _print_summary(res)
    if res.status == "interrupted":
        print(
            f"{_PROG} reproduce: interrupted; the partial run is in {res.out_dir} "
            "(continue it with the same command and --resume)",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    if res.status != "completed":
        print(
            f"{_PROG} reproduce: training ended with status {res.status!r}; the checks were "
            f"not graded (see {res.out_dir / 'summary.json'})",
            file=sys.stderr,
        )
        return EXIT_FAILED
    return EXIT_OK


def _sweep_status(res: Any) -> int:
    """The exit status of a sweep, and a line on stderr when it did not complete."""
    if res.status == "completed":
        return EXIT_OK
    hint = " (continue it with --resume)" if res.status == "interrupted" else ""
    print(f"{_PROG} reproduce: sweep {res.status}; see {res.out_dir}{hint}", file=sys.stderr)
    return EXIT_INTERRUPTED if res.status == "interrupted" else EXIT_FAILED


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``implicitbias`` and ``python -m implicitbias``; returns the exit status.

    Usage errors raise ``SystemExit(2)`` after one line on stderr (as argparse does); a run
    returns 0 (completed), 1 (training did not complete) or 130 (interrupted).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "list":
            return _cmd_list()
        return _cmd_reproduce(args)
    except UsageError as exc:
        _usage_exit(f"{_PROG} {args.command}", str(exc))
    except KeyboardInterrupt:
        print(f"{_PROG}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
