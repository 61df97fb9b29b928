#!/usr/bin/env python3
"""Check the shape of ``src/implicitbias``: small files, small functions, one-way imports.

CI runs ``python scripts/check_layout.py``; it prints every violation as ``path:line: [rule] ...``
and exits 1 if there is any, 0 otherwise. ``--list`` also prints the measured table (lines per
file, longest function, which room imports which). ``--root DIR`` checks another package tree
(the tests use small synthetic ones); the package name is the directory's name.

Rules (see CONTRIBUTING.md):

``file-size``
    No source file over ``MAX_FILE_LINES`` lines.
``func-size``
    No function or method over ``MAX_FUNC_LINES`` lines, counted ``end_lineno - lineno + 1``
    minus the lines of its docstring. A nested function counts in its own right and inside
    its parent.
``layer``
    A room (subpackage, or the ``cli`` module) imports only the rooms listed for it in
    ``ALLOWED``, plus the shared modules in ``SHARED``. Every import counts: module level,
    inside functions, and under ``if TYPE_CHECKING:``. The ``cli`` imports the public face
    of ``experiments`` (the package itself, not its modules). Only the package's
    ``__init__``/``__main__`` and the ``cli`` may import the package root (the façade).
``private-import``
    No import of a private name (a path component or imported name starting with ``_``,
    dunders excepted) from another room. The shared modules in ``SHARED`` may be imported
    by everybody, but their own ``_names`` may not.
``private-use``
    No ``obj._name`` attribute or ``_name=`` keyword argument whose name is defined only in
    other rooms (e.g. calling a model's private method from a solver).
``unclassified``
    Every top-level module belongs to a room or to ``SHARED``; a new top-level private
    module must be added to ``SHARED`` here (and to CONTRIBUTING.md) deliberately.
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

MAX_FILE_LINES = 500
MAX_FUNC_LINES = 120

# Top-level private modules that every room may import: errors, argument validation, what the
# library knows about a torch module (_modules), and the
# numerical infrastructure shared by the kernel- and rich-regime solvers. They import only
# each other (and third-party code).
SHARED = frozenset(
    {"_errors", "_validation", "_modules", "_nonneg_qp", "_lawson_hanson", "_blas", "_psd",
     "_status", "_results", "_progress"}
)  # fmt: skip

# Which rooms each room may import (besides itself and SHARED). Data flows one way:
#   models <- init;  models <- kernel_regime, rich_regime <- kkt <- dynamics <- experiments <- cli
ALLOWED: dict[str, frozenset[str]] = {
    "models": frozenset(),
    "init": frozenset({"models"}),
    "kernel_regime": frozenset({"models"}),
    "rich_regime": frozenset({"models"}),
    "kkt": frozenset({"models", "kernel_regime", "rich_regime"}),
    "dynamics": frozenset({"models", "init", "kernel_regime", "rich_regime", "kkt"}),
    "experiments": frozenset(
        {"models", "init", "kernel_regime", "rich_regime", "kkt", "dynamics"}
    ),
    "cli": frozenset({"experiments"}),
    # scikit-learn estimators over the solvers (scikit-learn is an optional extra)
    "sklearn": frozenset({"models", "init", "kernel_regime", "rich_regime"}),
}
# Rooms that may only use the package-level (``__init__``) face of the rooms they import.
FACE_ONLY = frozenset({"cli"})
# Modules that may import the package root (which imports everything).
ROOT_IMPORTERS = frozenset({"", "__main__", "cli"})
ROOT = ""  # room name of the package's own __init__


@dataclass
class Violation:
    path: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: [{self.rule}] {self.message}"


@dataclass
class Module:
    path: Path
    shown: str  # path as printed
    dotted: str  # e.g. "implicitbias.kkt.residuals"
    room: str  # "kkt", "cli", "_errors", "" (root) ...
    is_package: bool
    tree: ast.Module
    n_lines: int
    functions: list[tuple[str, int, int]] = field(default_factory=list)  # name, line, length


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _docstring_lines(node: ast.AST) -> int:
    body = getattr(node, "body", [])
    if (
        body
        and isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    ):
        first = body[0]
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def _functions(tree: ast.Module) -> list[tuple[str, int, int]]:
    out: list[tuple[str, int, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (child.end_lineno or child.lineno) - child.lineno + 1
                length -= _docstring_lines(child)
                out.append((prefix + child.name, child.lineno, length))
                visit(child, prefix + child.name + ".")
            elif isinstance(child, ast.ClassDef):
                visit(child, prefix + child.name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return out


def _shown(path: Path) -> str:
    try:
        rel = os.path.relpath(path)
    except ValueError:  # pragma: no cover - other drive on Windows
        return str(path)
    return str(path) if rel.startswith("..") else rel


def load(root: Path) -> list[Module]:
    pkg = root.name
    modules = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        dotted = ".".join([pkg, *parts])
        room = parts[0] if parts else ROOT
        text = path.read_text(encoding="utf-8")
        tree = ast.parse(text, filename=str(path))
        mod = Module(path, _shown(path), dotted, room, is_package, tree, len(text.splitlines()))
        mod.functions = _functions(tree)
        modules.append(mod)
    return modules


def _imports(mod: Module, pkg: str) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) for every import of the package's own code."""
    out = []
    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == pkg or alias.name.startswith(pkg + "."):
                    out.append((node.lineno, alias.name, []))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = mod.dotted.split(".")
                if not mod.is_package:
                    base = base[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == pkg or target.startswith(pkg + "."):
                out.append((node.lineno, target, [a.name for a in node.names]))
    return out


def _private_definitions(mod: Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(mod.tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            a = node.args
            for arg in [*a.posonlyargs, *a.args, *a.kwonlyargs]:
                names.add(arg.arg)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if _is_private(n)}


def check(root: Path) -> tuple[list[Violation], list[Module], dict[str, set[str]]]:
    root = root.resolve()
    pkg = root.name
    modules = load(root)
    found: list[Violation] = []
    dotted_names = {m.dotted for m in modules}
    rooms = set(ALLOWED)

    for mod in modules:
        if mod.n_lines > MAX_FILE_LINES:
            found.append(Violation(mod.shown, 1, "file-size",
                                   f"{mod.n_lines} lines (limit {MAX_FILE_LINES})"))
        for name, line, length in mod.functions:
            if length > MAX_FUNC_LINES:
                found.append(Violation(mod.shown, line, "func-size",
                                       f"{name} is {length} lines without its docstring "
                                       f"(limit {MAX_FUNC_LINES})"))
        if mod.room and mod.room not in rooms | SHARED and mod.room != "__main__":
            if mod.is_package or mod.dotted.count(".") == 1:
                found.append(Violation(mod.shown, 1, "unclassified",
                                       f"'{mod.room}' is neither a room in ALLOWED nor a "
                                       "shared module in SHARED (scripts/check_layout.py)"))

    # private names defined per room, for the private-use rule
    defined: dict[str, set[str]] = {}
    for mod in modules:
        defined.setdefault(mod.room, set()).update(_private_definitions(mod))

    edges: dict[str, set[str]] = {}
    for mod in modules:
        src = mod.room
        for line, target, names in _imports(mod, pkg):
            parts = target.split(".")[1:]
            # "from pkg import room" / "from pkg.room import module" import modules
            groups: list[tuple[list[str], list[str]]] = []
            plain = [n for n in names if ".".join([target, n]) not in dotted_names]
            groups += [([*parts, n], []) for n in names if n not in plain]
            if plain or not names:
                groups.append((parts, plain))
            for tparts, tnames in groups:
                dst = tparts[0] if tparts else ROOT
                if dst != src:
                    edges.setdefault(src or "(root)", set()).add(dst or "(root)")
                where = ".".join([pkg, *tparts])
                # layering
                if dst == ROOT:
                    if src not in ROOT_IMPORTERS:
                        found.append(Violation(mod.shown, line, "layer",
                                               f"{src} imports the package root {pkg} (a façade "
                                               "that imports every room); import the room"))
                elif dst in SHARED:
                    pass
                elif src in SHARED and dst != src:
                    found.append(Violation(mod.shown, line, "layer",
                                           f"shared module {src} imports {where}; shared "
                                           "modules import only each other"))
                elif src in ALLOWED and dst != src and dst not in ALLOWED[src]:
                    allowed = ", ".join(sorted(ALLOWED[src])) or "no other room"
                    found.append(Violation(mod.shown, line, "layer",
                                           f"{src} imports {where}; {src} may import "
                                           f"{allowed} (and the shared modules)"))
                elif src in FACE_ONLY and dst != src and len(tparts) > 1:
                    found.append(Violation(mod.shown, line, "layer",
                                           f"{src} imports {where}; use the public face "
                                           f"{pkg}.{dst}"))
                # private names across rooms
                if dst == src or src == "__main__":
                    continue
                shared_module = dst in SHARED
                private_parts = [p for p in tparts[1 if shared_module else 0:] if _is_private(p)]
                private_names = [n for n in tnames if _is_private(n)]
                if private_parts or private_names:
                    what = ", ".join(private_names) if private_names else where
                    found.append(Violation(mod.shown, line, "private-import",
                                           f"{src or pkg} imports private {what} from "
                                           f"{where} (another room)"))

    for mod in modules:
        own = defined.get(mod.room, set())
        elsewhere: set[str] = set()
        for room, names in defined.items():
            if room != mod.room:
                elsewhere |= names
        for node in ast.walk(mod.tree):
            if isinstance(node, ast.Attribute):
                name = node.attr
                base = node.value
                if isinstance(base, ast.Name) and base.id in {"self", "cls"}:
                    continue
                if isinstance(base, ast.Call) and getattr(base.func, "id", "") == "super":
                    continue
                kind = f"attribute .{name}"
            elif isinstance(node, ast.keyword) and node.arg:
                name = node.arg
                kind = f"keyword argument {name}="
            else:
                continue
            if _is_private(name) and name in elsewhere and name not in own:
                rooms_def = sorted(r or "(root)" for r, n in defined.items()
                                   if name in n and r != mod.room)
                found.append(Violation(mod.shown, node.lineno, "private-use",
                                       f"{mod.room or pkg} uses private {kind} defined in "
                                       f"{', '.join(rooms_def)}"))

    found.sort(key=lambda v: (v.path, v.line, v.rule))
    return found, modules, edges


def print_table(modules: list[Module], edges: dict[str, set[str]]) -> None:
    width = max(len(m.shown) for m in modules)
    print(f"{'file':<{width}}  lines  funcs  longest function (lines, docstring excluded)")
    for m in modules:
        longest = max(m.functions, key=lambda f: f[2], default=None)
        flag = "!" if m.n_lines > MAX_FILE_LINES else " "
        desc = ""
        if longest:
            ff = "!" if longest[2] > MAX_FUNC_LINES else " "
            desc = f"{longest[2]:>4}{ff} {longest[0]}"
        print(f"{m.shown:<{width}}  {m.n_lines:>4}{flag} {len(m.functions):>5}  {desc}")
    print()
    print("room imports (observed)")
    for src in sorted(edges):
        print(f"  {src:<14} -> {', '.join(sorted(edges[src]))}")
    print()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parent.parent / "src" / "implicitbias"
    parser.add_argument("--root", type=Path, default=default,
                        help="package directory to check (default: src/implicitbias)")
    parser.add_argument("--list", action="store_true", help="print the measured table")
    args = parser.parse_args(argv)
    if not (args.root / "__init__.py").is_file():
        print(f"error: {args.root} is not a package directory", file=sys.stderr)
        return 2
    found, modules, edges = check(args.root)
    if args.list:
        print_table(modules, edges)
    for v in found:
        print(v)
    counts: dict[str, int] = {}
    for v in found:
        counts[v.rule] = counts.get(v.rule, 0) + 1
    detail = ", ".join(f"{n} {rule}" for rule, n in sorted(counts.items()))
    summary = f"{len(found)} violation(s)" + (f": {detail}" if detail else "")
    print(f"check_layout: {len(modules)} files, {summary}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
