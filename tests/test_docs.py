"""The docs cover the public API."""

from __future__ import annotations

import inspect
from pathlib import Path

import implicitbias

ROOT = Path(__file__).resolve().parent.parent


def test_every_public_name_is_in_the_api_reference() -> None:
    text = (ROOT / "docs" / "api.md").read_text()
    missing = []
    for name in implicitbias.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(implicitbias, name)
        if inspect.ismodule(obj):
            ok = f"::: implicitbias.{name}" in text
        elif inspect.isclass(obj) or inspect.isfunction(obj):
            ok = f"::: {obj.__module__}.{obj.__qualname__}" in text
        else:
            ok = f"`{name}`" in text
        if not ok:
            missing.append(name)
    assert not missing, f"docs/api.md lacks {missing}; run python scripts/gen_api_docs.py"


def test_readme_quickstart_commands_match_ci() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    test_command = "bash scripts/install.sh test && python3 -m pytest"
    assert test_command in readme and test_command in ci
    assert "implicitbias reproduce sparse-linear" in readme


def test_public_names_are_listed_once() -> None:
    seen: dict[str, int] = {}
    for name in implicitbias.__all__:
        seen[name] = seen.get(name, 0) + 1
    assert {n: c for n, c in seen.items() if c > 1} == {}
    for name in implicitbias.__all__:
        assert hasattr(implicitbias, name), name


def test_every_example_is_tested() -> None:
    """Each script in examples/ has a test in tests/test_examples.py (marked slow) that runs it."""
    text = (ROOT / "tests" / "test_examples.py").read_text()
    untested = [
        p.name for p in (ROOT / "examples").glob("*.py") if f'run_example("{p.name}"' not in text
    ]
    assert untested == []
