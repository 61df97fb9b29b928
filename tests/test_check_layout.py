"""scripts/check_layout.py on small synthetic package trees (never on the real src/)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_layout.py"


@pytest.fixture(scope="module")
def layout():
    spec = importlib.util.spec_from_file_location("check_layout", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["check_layout"] = module  # dataclasses look the module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("check_layout", None)


CLEAN = {
    "_errors.py": "class Oops(ValueError):\n    pass\n",
    "_validation.py": "from implicitbias._errors import Oops\n\n\ndef fail():\n    raise Oops\n",
    "models/__init__.py": "from implicitbias.models.net import Net\n",
    "models/net.py": (
        "from implicitbias._validation import fail\n\n\n"
        "class Net:\n"
        "    def __init__(self, *, _skip_check=False):\n"
        "        self._ready = True\n\n"
        "    def _prepare_input(self, x):\n"
        "        return x\n\n"
        "    def prepare_input(self, x):\n"
        "        return self._prepare_input(x)\n"
    ),
    "models/_helpers.py": "def _private():\n    return 1\n",
    "init/__init__.py": "from implicitbias.models import Net\n",
    "kernel_regime/__init__.py": "",
    "kernel_regime/ntk.py": (
        "from implicitbias.models import Net\n"
        "from ._route import route\n\n\n"
        "def ntk(model):\n"
        "    return route(model.prepare_input(1))\n"
    ),
    "kernel_regime/_route.py": "def route(x):\n    return x\n",
    "rich_regime/__init__.py": "",
    "kkt/__init__.py": "",
    "kkt/residuals.py": (
        "def kkt():\n"
        "    from implicitbias.rich_regime import __name__ as n\n"
        "    from implicitbias.kernel_regime.ntk import ntk\n"
        "    return n, ntk\n"
    ),
    "dynamics/__init__.py": "from implicitbias.kkt.residuals import kkt\n",
    "experiments/__init__.py": "from implicitbias.experiments.configs import CONFIGS\n",
    "experiments/configs.py": "CONFIGS = {}\n_HIDDEN = 1\n",
    "cli.py": (
        "from implicitbias import __version__\n\n\n"
        "def main():\n"
        "    from implicitbias.experiments import CONFIGS\n"
        "    return CONFIGS, __version__\n"
    ),
    "__main__.py": "from implicitbias.cli import main\n",
}


def make_tree(tmp_path: Path, changes: dict[str, str | None] | None = None) -> Path:
    files = dict(CLEAN)
    for name, text in (changes or {}).items():
        if text is None:
            files.pop(name, None)
        else:
            files[name] = text
    root = tmp_path / "implicitbias"
    (root / "__init__.py").parent.mkdir(parents=True, exist_ok=True)
    (root / "__init__.py").write_text("__version__ = '0'\n")
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        init = path.parent / "__init__.py"
        if not init.exists():
            init.write_text("")
        path.write_text(textwrap.dedent(text))
    return root


def violations(layout, root: Path) -> list:
    found, _, _ = layout.check(root)
    return found


def rules(found) -> list[str]:
    return [v.rule for v in found]


def test_clean_tree_passes(layout, tmp_path, capsys):
    root = make_tree(tmp_path)
    assert violations(layout, root) == []
    assert layout.main(["--root", str(root)]) == 0
    assert "0 violation(s)" in capsys.readouterr().out


def test_cli_exit_codes_and_list_table(tmp_path):
    root = make_tree(tmp_path)
    ok = subprocess.run([sys.executable, str(SCRIPT), "--root", str(root), "--list"],
                        capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "lines" in ok.stdout and "net.py" in ok.stdout
    assert "kkt" in ok.stdout and "-> " in ok.stdout  # the observed room imports
    bad = make_tree(tmp_path / "bad", {"models/net.py": "import implicitbias.kkt\n"})
    res = subprocess.run([sys.executable, str(SCRIPT), "--root", str(bad)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1
    assert "net.py:1: [layer]" in res.stdout


def test_not_a_package_is_an_error(layout, tmp_path, capsys):
    assert layout.main(["--root", str(tmp_path)]) == 2
    assert "not a package" in capsys.readouterr().err


def test_file_over_limit(layout, tmp_path):
    text = "x = 1\n" * (layout.MAX_FILE_LINES + 1)
    found = violations(layout, make_tree(tmp_path, {"models/big.py": text}))
    assert rules(found) == ["file-size"]
    assert found[0].path.endswith("big.py") and found[0].line == 1
    assert f"{layout.MAX_FILE_LINES + 1} lines" in found[0].message


def test_file_at_limit_passes(layout, tmp_path):
    text = "x = 1\n" * layout.MAX_FILE_LINES
    assert violations(layout, make_tree(tmp_path, {"models/big.py": text})) == []


def _function(total: int, doc_lines: int = 0, indent: str = "") -> str:
    """A function of `total` lines (def line included) plus a docstring of `doc_lines`."""
    lines = [f"{indent}def long_one():"]
    if doc_lines == 1:
        lines.append(f'{indent}    """One line."""')
    elif doc_lines:
        lines.append(f'{indent}    """Doc.')
        lines += [f"{indent}    more"] * (doc_lines - 2)
        lines.append(f'{indent}    """')
    lines += [f"{indent}    x = 1"] * (total - 2)
    lines.append(f"{indent}    return x")
    return "\n".join(lines) + "\n"


def test_function_over_limit(layout, tmp_path):
    text = "import os\n\n\n" + _function(layout.MAX_FUNC_LINES + 1, doc_lines=3)
    found = violations(layout, make_tree(tmp_path, {"models/long.py": text}))
    assert rules(found) == ["func-size"]
    assert found[0].line == 4
    assert "long_one" in found[0].message and f"{layout.MAX_FUNC_LINES + 1} lines" in \
        found[0].message


def test_docstring_lines_are_not_counted(layout, tmp_path):
    text = _function(layout.MAX_FUNC_LINES, doc_lines=30)  # at the limit + 30 docstring
    assert violations(layout, make_tree(tmp_path, {"models/long.py": text})) == []


def test_method_over_limit_is_named_with_its_class(layout, tmp_path):
    text = "class Big:\n" + _function(layout.MAX_FUNC_LINES + 5, doc_lines=1, indent="    ")
    found = violations(layout, make_tree(tmp_path, {"models/long.py": text}))
    assert rules(found) == ["func-size"]
    assert "Big.long_one" in found[0].message and found[0].line == 2
    assert f"{layout.MAX_FUNC_LINES + 5} lines" in found[0].message


@pytest.mark.parametrize(
    "room, text, line",
    [
        ("kernel_regime/ntk2.py", "from implicitbias.init import symmetrize\n", 1),
        ("kernel_regime/ntk2.py", "def f():\n    import implicitbias.init\n", 2),  # in a function
        ("kernel_regime/ntk2.py", "from ..init import Net\n", 1),  # relative
        ("models/net2.py", "from implicitbias.kernel_regime.ntk import ntk\n", 1),  # upward
        ("kkt/m.py", "def f():\n    from implicitbias.dynamics import kkt\n", 2),
        ("rich_regime/m.py", "from implicitbias.experiments import CONFIGS\n", 1),
        ("dynamics/m.py", "from implicitbias.cli import main\n", 1),
        ("_validation.py", "from implicitbias.models import Net\n", 1),  # shared imports a room
        ("models/m.py", "from implicitbias import __version__\n", 1),  # the façade
        ("cli.py", "from implicitbias.experiments.configs import CONFIGS\n", 1),  # not the face
        ("cli.py", "from implicitbias.experiments import configs\n", 1),  # a module, not the face
        ("cli.py", "from implicitbias.dynamics import kkt\n", 1),
        (
            "kernel_regime/typed.py",
            "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n"
            "    from implicitbias.init import Net\n",
            4,
        ),
    ],
)
def test_layer_violations(layout, tmp_path, room, text, line):
    found = violations(layout, make_tree(tmp_path, {room: text}))
    assert rules(found) == ["layer"], found
    assert found[0].path.endswith(Path(room).name)
    assert found[0].line == line


@pytest.mark.parametrize(
    "room, text",
    [
        ("kkt/m.py", "from implicitbias.models._helpers import something\n"),
        ("kkt/m.py", "import implicitbias.models._helpers\n"),
        ("kkt/m.py", "from implicitbias.models.net import _hidden\n"),
        ("kkt/m.py", "from implicitbias.models import _helpers\n"),
        ("dynamics/m.py", "from ..models._helpers import _private\n"),
        ("kkt/m.py", "from implicitbias._validation import _message\n"),  # shared's private
    ],
)
def test_private_imports_across_rooms(layout, tmp_path, room, text):
    found = violations(layout, make_tree(tmp_path, {room: text}))
    assert rules(found) == ["private-import"], found
    assert found[0].line == 1


@pytest.mark.parametrize(
    "text",
    [
        "from implicitbias.models._helpers import _private\n",  # same room
        "from ._helpers import _private\n",
        "from implicitbias._validation import fail\n",  # shared module: allowed
        "from implicitbias import _errors\n",
        "from __future__ import annotations\n",  # dunder, not private
    ],
)
def test_allowed_imports(layout, tmp_path, text):
    assert violations(layout, make_tree(tmp_path, {"models/ok.py": text})) == []


@pytest.mark.parametrize(
    "text, what",
    [
        ("def f(model):\n    return model._prepare_input(1)\n", "._prepare_input"),
        ("from implicitbias.models import Net\n\n\ndef f():\n    return Net(_skip_check=True)\n",
         "_skip_check="),
        ("def f(model):\n    return model._ready\n", "._ready"),
    ],
)
def test_private_use_across_rooms(layout, tmp_path, text, what):
    found = violations(layout, make_tree(tmp_path, {"kernel_regime/use.py": text}))
    assert rules(found) == ["private-use"], found
    assert what in found[0].message and "models" in found[0].message


def test_private_use_of_own_or_foreign_names_is_allowed(layout, tmp_path):
    text = (
        "import torch\n\n\n"
        "class Sub:\n"
        "    def _prepare_input(self, x):\n"
        "        return self._own\n\n"
        "    def g(self):\n"
        "        return self._prepare_input(1), torch.nn.modules.batchnorm._NormBase\n"
    )
    assert violations(layout, make_tree(tmp_path, {"kernel_regime/own.py": text})) == []


def test_unclassified_top_level_module(layout, tmp_path):
    found = violations(layout, make_tree(tmp_path, {"_newthing.py": "X = 1\n"}))
    assert rules(found) == ["unclassified"]
    assert "_newthing" in found[0].message and "SHARED" in found[0].message


def test_every_violation_is_printed_with_file_and_line(layout, tmp_path, capsys):
    root = make_tree(tmp_path, {
        "kernel_regime/a.py": "from implicitbias.init import Net\n",
        "kkt/b.py": "x = 0\nfrom implicitbias.models._helpers import _private\n",
    })
    assert layout.main(["--root", str(root)]) == 1
    out = capsys.readouterr().out
    assert "a.py:1: [layer]" in out
    assert "b.py:2: [private-import]" in out
    assert "2 violation(s)" in out
