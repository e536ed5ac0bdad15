"""Imports point downward only: core imports no upper layer; tuning and evaluation do not import the server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "greencoder"
FORBIDDEN = {
    "core": ("greencoder.server", "greencoder.tuning", "greencoder.evaluation", "greencoder.cli"),
    "tuning": ("greencoder.server", "greencoder.evaluation", "greencoder.cli"),
    "evaluation": ("greencoder.server", "greencoder.tuning", "greencoder.cli"),
    "server": ("greencoder.cli",),
}


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_point_downward():
    offenders = []
    for layer, forbidden in FORBIDDEN.items():
        for path in (PACKAGE / layer).rglob("*.py"):
            for module in imported_modules(path):
                if module.startswith(forbidden):
                    offenders.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert offenders == []


def test_help_does_not_import_torch():
    """`greencoder --help` stays instant: heavy libraries load inside the commands."""
    code = "import sys; from greencoder.cli import main; main(['--help']); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip().endswith("False")
