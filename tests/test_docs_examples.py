"""Every code example in docs/ runs, and prints what the page says it prints.

Each page's ```python blocks run in order in one namespace (as a reader would paste them).
What a block prints is checked against

- the ```text block that directly follows it (compared as one text, so the page may wrap a
  long printed line), or
- the ``# ...`` comment at the end of each ``print(...)`` line of the block (each such comment
  must match one printed line).

A statement in prose about an error or a behaviour is backed by such an example on its page, so
the docs cannot claim what the library does not do. Matching rules: whitespace runs are one
space; ``...`` in the expected text matches anything; numbers must print identically, except
that two numbers both below 1e-9 in magnitude match (rounding noise such as 2.2e-16 vs 4.4e-16
differs across BLAS builds).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"```(\w*)\n(.*?)```", flags=re.S)
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PRINT_COMMENT = re.compile(r"^\s*print\(.*\)\s*#\s?(.*)$")
_NOISE = 1e-9


def _blocks(page: Path) -> list[tuple[str, str, int, int]]:
    """The fenced blocks of a page: (language, body, start, end) in the page text."""
    text = page.read_text(encoding="utf-8")
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in _FENCE.finditer(text)]


def _examples(page: Path) -> list[tuple[str, list[str] | None, list[str]]]:
    """(code, expected lines of a following text block or None, print-line comments)."""
    text = page.read_text(encoding="utf-8")
    blocks = _blocks(page)
    out = []
    for k, (lang, body, _, end) in enumerate(blocks):
        if lang != "python":
            continue
        expected = None
        if k + 1 < len(blocks):
            nlang, nbody, nstart, _ = blocks[k + 1]
            if nlang == "text" and not text[end:nstart].strip():
                expected = nbody.rstrip("\n").splitlines()
        comments = [m.group(1) for line in body.splitlines() if (m := _PRINT_COMMENT.match(line))]
        out.append((body, expected, comments))
    return out


def _line_matches(expected: str, got: str) -> bool:
    exp = " ".join(expected.split())
    act = " ".join(got.split())
    parts = re.split(rf"(\.\.\.|{_NUMBER})", exp)
    pattern, numbers = "", []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            pattern += re.escape(part)
        elif part == "...":
            pattern += ".*?"
        else:
            pattern += f"({_NUMBER})"
            numbers.append(part)
    m = re.fullmatch(pattern, act)
    if m is None:
        return False
    for want, have in zip(numbers, m.groups()):
        if want == have:
            continue
        if abs(float(want)) < _NOISE and abs(float(have)) < _NOISE:
            continue
        return False
    return True


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.glob("*.md") if any(b[0] == "python" for b in _blocks(p)))


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.name)
def test_page_examples_run_and_print_what_the_page_says(
    page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    namespace: dict[str, object] = {"__name__": f"docs.{page.stem}"}
    for k, (code, expected, comments) in enumerate(_examples(page)):
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            exec(compile(code, f"{page.name}[python block {k}]", "exec"), namespace)
        printed = buf.getvalue().rstrip("\n").splitlines()
        where = f"{page.name}, python block {k}"
        if expected is not None:
            # Compared as one text: the page may wrap a long printed line.
            want, have = " ".join(expected), " ".join(printed)
            assert _line_matches(want, have), (
                f"{where}: the page shows\n" + "\n".join(expected) + "\nit printed\n"
                + "\n".join(printed)
            )
        else:
            for want in comments:
                assert any(_line_matches(want, have) for have in printed), (
                    f"{where}: the page says a print shows {want!r}; it printed:\n"
                    + "\n".join(printed)
                )


@pytest.mark.parametrize(
    ("expected", "got", "ok"),
    [
        ("error=2.2e-16 norm=3.0000", "error=4.4e-16 norm=3.0000", True),
        ("error=2.2e-16 norm=3.0000", "error=4.4e-16 norm=3.0001", False),
        ("margin=0.2229 support=71", "margin=0.2230 support=71", False),
        ("took ... s", "took 12.5 s", True),
        ("[-1. -1.  1.]", "[-1. -1. 1.]", True),
        ("completed 1.0", "diverged 1.0", False),
        ("gap=1e-3", "gap=1e-12", False),
    ],
)
def test_line_matching_rules(expected: str, got: str, ok: bool) -> None:
    assert _line_matches(expected, got) is ok
