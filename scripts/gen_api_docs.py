"""Write docs/api.md from ``implicitbias.__all__``, grouped by the room each name lives in.

Run ``python scripts/gen_api_docs.py`` after adding a public name; ``tests/test_docs.py`` fails
when a name in ``implicitbias.__all__`` is missing from docs/api.md.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import implicitbias

ROOMS = [
    ("models", "Models", "Homogeneous models and the functional view of any module."),
    ("init", "Initialization", "Zero-output initializations and the scale α."),
    ("kernel_regime", "Kernel regime", "The empirical NTK and the early-phase kernel predictors."),
    (
        "rich_regime",
        "Rich regime",
        "Max-margin and minimum-norm reference solvers, and the parameters that realize them.",
    ),
    ("kkt", "KKT certificates", "Margins and (ε, δ)-KKT residuals of trained models."),
    ("dynamics", "Dynamics", "Losses, the trainer (GD and adaptive gradient flow) and histories."),
    ("_errors", "Errors", "The exception hierarchy."),
]


def _qualified(name: str) -> str | None:
    obj = getattr(implicitbias, name)
    if inspect.ismodule(obj):
        return None
    module = getattr(obj, "__module__", None)
    if not module or not (inspect.isclass(obj) or inspect.isfunction(obj)):
        return None
    return f"{module}.{obj.__qualname__}"


def render() -> str:
    lines = [
        "# API reference",
        "",
        "Everything below is importable from the top level: `import implicitbias as ib; ib.NAME`.",
        "Generated from the docstrings (`python scripts/gen_api_docs.py`).",
        "",
    ]
    constants = []
    for room, title, blurb in ROOMS:
        names = [
            n
            for n in implicitbias.__all__
            if _qualified(n) and _qualified(n).startswith(f"implicitbias.{room}.")
        ]
        if not names:
            continue
        lines += [f"## {title}", "", blurb, ""]
        for n in names:
            lines += [f"::: {_qualified(n)}", "    options:", "      heading_level: 3", ""]
    for n in implicitbias.__all__:
        if n.startswith("__"):
            continue
        if _qualified(n) is None and not inspect.ismodule(getattr(implicitbias, n)):
            constants.append(n)
    if constants:
        lines += ["## Constants", ""]
        for n in constants:
            lines.append(f"- `{n}` = `{getattr(implicitbias, n)!r}`")
        lines.append("")
    lines += [
        "## Experiments",
        "",
        "`implicitbias.experiments` holds the seeded data generators and the configured runs",
        "behind `implicitbias reproduce`; see [Reproduce the grokking figures](reproduce.md).",
        "",
        "::: implicitbias.experiments",
        "    options:",
        "      heading_level: 3",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    out = Path(__file__).resolve().parent.parent / "docs" / "api.md"
    text = render()
    if "--check" in sys.argv[1:]:
        if not out.exists() or out.read_text() != text:
            raise SystemExit("docs/api.md is out of date: run python scripts/gen_api_docs.py")
        print("docs/api.md is up to date")
        return
    out.write_text(text)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
