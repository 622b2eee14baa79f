"""The pure packages stay pure: `rules/` (states and incidents) and `notices/` (who is told what).

They are fed samples, changes and the time and return values, so they are tested with tables and
Hypothesis properties; an I/O import would make that a lie.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PURE_PACKAGES = ("rules", "notices")
MODULES = sorted(module for package in PURE_PACKAGES for module in (REPO / package).glob("*.py"))
IO_MODULES = {"asyncio", "socket", "selectors", "subprocess", "aiohttp", "twilio", "aiosmtplib", "pysnmp", "sqlite3"}
FORBIDDEN = IO_MODULES | {"time"}


def dotted(module: Path) -> str:
    return ".".join(module.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")


@pytest.mark.parametrize("module", MODULES, ids=dotted)
def test_a_pure_module_imports_no_io(module: Path) -> None:
    """No network, no event loop, no database, no clock: the pure packages are fed `now`."""
    tree = ast.parse(module.read_text(encoding="utf-8"))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN
    assert not imported & {"pathlib", "os", "io", "yaml"}
    assert "open" not in {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}


def test_importing_the_pure_packages_loads_no_io_module() -> None:
    """What they import in turn counts too (`email.utils`, for one, loads `socket`)."""
    names = [dotted(module) for module in MODULES]
    script = (
        "import importlib, json, sys\n"
        f"for name in {names!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    found = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, check=True)
    loaded = {name.split(".")[0] for name in json.loads(found.stdout)}
    assert sorted(loaded & IO_MODULES) == []
