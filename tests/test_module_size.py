"""No module of the daemon over 500 lines without a reason written at its top.

A long module is sometimes right (every SQL statement beside the migrations it relies on), but
that should be a decision a reader sees, not drift: such a module says why in a paragraph of its
docstring that begins "Longer than".
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("monitord", "rules", "probes", "notifiers", "notices")
LIMIT = 500


def long_modules_without_a_reason(root: Path) -> list[str]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            if text.count("\n") <= LIMIT:
                continue
            docstring = ast.get_docstring(ast.parse(text)) or ""
            if not any(paragraph.startswith("Longer than") for paragraph in docstring.split("\n\n")):
                found.append(f"{path.relative_to(root)}: {text.count(chr(10))} lines")
    return found


def test_every_long_module_says_why() -> None:
    assert long_modules_without_a_reason(ROOT) == []


def test_the_check_finds_a_long_module_without_a_reason(tmp_path: Path) -> None:
    package = tmp_path / "monitord"
    package.mkdir()
    body = "x = 1\n" * (LIMIT + 1)
    (package / "long.py").write_text('"""A module."""\n' + body, encoding="utf-8")
    (package / "explained.py").write_text('"""A module.\n\nLonger than the rest: a reason."""\n' + body, encoding="utf-8")
    (package / "short.py").write_text('"""A module."""\nx = 1\n', encoding="utf-8")
    assert long_modules_without_a_reason(tmp_path) == [f"monitord/long.py: {LIMIT + 2} lines"]


@pytest.mark.parametrize("package", PACKAGES)
def test_the_packages_exist(package: str) -> None:
    assert (ROOT / package / "__init__.py").is_file()
