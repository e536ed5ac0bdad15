"""The VS Code extension (editors/vscode) in a real VS Code: code-server 4.139.1 in headless Chromium.

The tooling lives outside the repository, in $GREENCODER_E2E_DIR (default /opt/greencoder-e2e),
installed by `editors/vscode/e2e/setup.sh` (Node 24 and code-server from the npm registry,
playwright-core, Debian's chromium). Without it the test is skipped, saying what is missing.

The test packages the extension (`npm run package` when the .vsix is missing or older than its
sources; or $GREENCODER_VSIX), installs it into a fresh extensions folder with
`code-server --install-extension`, writes settings (workspace trust off; the server is
`python -m greencoder serve --device cpu`, in the Machine settings, with the tiny model; fast
benchmark settings), starts
code-server on a free loopback port, and runs `editors/vscode/e2e/run_e2e.mjs` (playwright-core),
which opens a Python file, waits for the server through the status bar item, types inside the
function until ghost text shows, accepts it with Tab (the status bar then shows joules per accepted
character), runs "greencoder: Measure energy of function at cursor" from the
command palette and finds the result in the status bar, the Problems panel and the hover, opens the
energy report, restarts the server, and takes screenshots (end, and -inline with the ghost text) in
its temporary folder, or at $GREENCODER_E2E_SCREENSHOT (how editors/vscode/screenshot.png is made).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parent.parent
EXTENSION = REPO_ROOT / "editors" / "vscode"
E2E_SCRIPT = EXTENSION / "e2e" / "run_e2e.mjs"
SOURCE = '''import math


# greencoder: bench squares(2000)
def squares(n):
    total = 0
    for i in range(n):
        total += i * i
    
    return total
'''  # noqa: W293 - the indented blank line in squares is where the test types (TYPE_LINE)
TYPE_LINE = 9  # the blank indented line inside squares (1-based)
MEASURE_LINE = 6  # `total = 0`


def tooling_dir() -> Path:
    return Path(os.environ.get("GREENCODER_E2E_DIR", "/opt/greencoder-e2e"))


def find_tooling() -> dict[str, str]:
    """Paths of code-server, Node 24, chromium and playwright-core, or skip saying what is missing."""
    base = tooling_dir()
    setup = f"editors/vscode/e2e/setup.sh {base}"
    code_server = next((p for p in (base / "bin" / "code-server", base / "node_modules" / ".bin" / "code-server")
                        if p.is_file() and os.access(p, os.X_OK)), None)
    if code_server is None:
        pytest.skip(f"no code-server in {base} (GREENCODER_E2E_DIR); install the tooling with `{setup}`")
    chromium = os.environ.get("GREENCODER_E2E_CHROMIUM", "/usr/bin/chromium")
    if not (Path(chromium).is_file() and os.access(chromium, os.X_OK)):
        pytest.skip(f"no chromium at {chromium} (GREENCODER_E2E_CHROMIUM); `apt-get install -y chromium` or `{setup}`")
    if not (base / "node_modules" / "playwright-core" / "package.json").is_file():
        pytest.skip(f"no playwright-core in {base}/node_modules; install the tooling with `{setup}`")
    node24 = base / "node24" / "bin" / "node"
    node = str(node24) if node24.is_file() else shutil.which("node")
    if node is None:
        pytest.skip("no node to run the playwright script")
    return {"base": str(base), "code_server": str(code_server), "chromium": chromium, "node": node}


def _newest_source_mtime() -> float:
    paths = [EXTENSION / "package.json", EXTENSION / "package-lock.json", EXTENSION / "tsconfig.json",
             *(EXTENSION / "src").rglob("*.ts")]
    return max(p.stat().st_mtime for p in paths if p.exists())


def extension_vsix() -> Path:
    """$GREENCODER_VSIX, or editors/vscode/greencoder.vsix built (again) when older than its sources."""
    given = os.environ.get("GREENCODER_VSIX")
    if given:
        if not Path(given).is_file():
            pytest.fail(f"GREENCODER_VSIX={given} does not exist")
        return Path(given)
    vsix = EXTENSION / "greencoder.vsix"
    if vsix.is_file() and vsix.stat().st_mtime >= _newest_source_mtime():
        return vsix
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("no npm to build the extension (or set GREENCODER_VSIX to a built .vsix)")
    steps = [] if (EXTENSION / "node_modules" / ".bin" / "vsce").exists() else [[npm, "ci"]]
    steps.append([npm, "run", "package"])
    for step in steps:
        done = subprocess.run(step, cwd=EXTENSION, capture_output=True, text=True, timeout=480, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            pytest.fail(f"`{' '.join(step[1:])}` in {EXTENSION} failed ({done.returncode}):\n"
                        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    assert vsix.is_file(), f"npm run package left no {vsix}"
    return vsix


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, process: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"code-server exited with {process.returncode} before serving {url}")
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status < 500:
                    return
        except urllib.error.HTTPError as error:
            if error.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise AssertionError(f"code-server did not answer on {url} within {timeout:.0f}s")


def stop(process: subprocess.Popen) -> None:
    """End code-server and what it started (its extension host, our language server): its own session."""
    if process.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def machine_settings() -> dict:
    """greencoder.serverCommand is machine-scoped (a program on the machine the server runs on): in a
    remote window, and code-server's is one, VS Code drops machine-scoped values from the user
    settings (sometimes only after the extension has read them), so they go in the remote machine's
    settings, <user-data-dir>/Machine/settings.json."""
    return {"greencoder.serverCommand": [sys.executable, "-m", "greencoder", "serve", "--device", "cpu"]}


def user_settings(model_dir: Path) -> dict:
    return {
        "security.workspace.trust.enabled": False,
        "greencoder.model": str(model_dir),
        "greencoder.debounceMs": 0,
        "greencoder.maxNewTokens": 16,
        "greencoder.benchRuns": 8,
        "greencoder.benchMinSeconds": 0.05,
        "greencoder.benchCooldown": 0,
        "greencoder.meter": "estimate",
        "editor.inlineSuggest.enabled": True,
        # A quiet, predictable workbench: no auto-save (the test reverts its typing), no welcome
        # page, no chat side bar, no update checks.
        "files.autoSave": "off",
        "workbench.startupEditor": "none",
        "workbench.tips.enabled": False,
        "workbench.secondarySideBar.defaultVisibility": "hidden",
        "chat.disableAIFeatures": True,
        "extensions.autoCheckUpdates": False,
        "extensions.autoUpdate": "off",
        "telemetry.telemetryLevel": "off",
    }


@pytest.fixture(scope="session")
def e2e_tools() -> dict[str, str]:
    """Session-scoped and first in the test's arguments: a missing tool skips before the model is built."""
    return find_tooling()


def test_vscode_inline_suggestion_and_measure_energy(e2e_tools, tiny_model_dir, tmp_path):
    tools = e2e_tools
    vsix = extension_vsix()
    user_data, extensions, project = tmp_path / "user-data", tmp_path / "extensions", tmp_path / "project"
    (user_data / "User").mkdir(parents=True)
    (user_data / "Machine").mkdir(parents=True)
    extensions.mkdir()
    project.mkdir()
    (project / "squares.py").write_text(SOURCE)
    (user_data / "User" / "settings.json").write_text(json.dumps(user_settings(tiny_model_dir), indent=2))
    (user_data / "Machine" / "settings.json").write_text(json.dumps(machine_settings(), indent=2))
    env = {**os.environ, "GREENCODER_THREADS": "1", "XDG_CONFIG_HOME": str(tmp_path / "xdg-config"),
           "XDG_DATA_HOME": str(tmp_path / "xdg-data"), "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}

    installed = subprocess.run(
        [tools["code_server"], "--install-extension", str(vsix), "--force", "--extensions-dir", str(extensions),
         "--user-data-dir", str(user_data)],
        capture_output=True, text=True, timeout=180, env=env, stdin=subprocess.DEVNULL)
    assert installed.returncode == 0, f"--install-extension failed:\n{installed.stdout}\n{installed.stderr}"
    assert any(p.name.startswith("greencoder.greencoder-") for p in extensions.iterdir()), installed.stdout

    port = free_port()
    log_path = tmp_path / "code-server.log"
    # In the test's own folder, so a test run never edits the checkout; the README's picture is
    # refreshed with GREENCODER_E2E_SCREENSHOT=editors/vscode/screenshot.png.
    screenshot = Path(os.environ.get("GREENCODER_E2E_SCREENSHOT", tmp_path / "screenshot.png"))
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [tools["code_server"], "--auth", "none", "--bind-addr", f"127.0.0.1:{port}", "--user-data-dir", str(user_data),
             "--extensions-dir", str(extensions), "--disable-telemetry", "--disable-update-check",
             "--disable-workspace-trust", str(project)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    started = time.monotonic()
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", server, timeout=90)
        run = subprocess.run(
            [tools["node"], str(E2E_SCRIPT), "--url", f"http://127.0.0.1:{port}", "--folder", str(project),
             "--file", "squares.py", "--function", "squares", "--line", str(TYPE_LINE), "--measure-line", str(MEASURE_LINE),
             "--screenshot", str(screenshot), "--tooling", tools["base"], "--chromium", tools["chromium"],
             "--timeout", "420"],
            capture_output=True, text=True, timeout=480, env=env, stdin=subprocess.DEVNULL)
    finally:
        stop(server)
    seconds = time.monotonic() - started

    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    extension_logs = sorted(user_data.glob("logs/**/greencoder.log"))
    context = (f"exit {run.returncode} after {seconds:.0f}s\nstdout:\n{run.stdout[-4000:]}\nstderr:\n{run.stderr[-3000:]}\n"
               f"code-server log:\n{tail(log_path)}\n"
               f"greencoder output channel:\n{tail(extension_logs[-1]) if extension_logs else '(none)'}\n"
               f"screenshot: {screenshot}")
    assert lines, context
    seen = json.loads(lines[-1])
    print(json.dumps(seen, indent=2, ensure_ascii=False))

    checks = seen.get("checks", {})
    for name in ("workbench", "fileOpen", "serverReady", "ghostText", "accepted", "reverted", "measuredInStatusBar",
                 "diagnostic", "comparison", "report", "hover", "restart"):
        assert checks.get(name), f"check {name!r} failed: {context}"
    assert seen["ok"] and run.returncode == 0, context
    assert seen["ghostText"].strip(), context
    assert "completion" in seen["statusReady"], context
    # Tab ran the item's command: the server counted the accepted characters, and the status bar shows
    # joules per accepted character (estimated: meter = estimate); the report lists the acceptance.
    assert re.search(r"[\d.]+ [mµnk]?J est · [\d.]+ [mµnk]?J/char est · \d+ completions?", seen["statusAccepted"]), context
    assert re.search(r"Suggestions: \d+ shown, [1-9]\d* accepted, [1-9]\d* characters? accepted", seen["report"]), context
    assert re.search(r"Energy per accepted character: [\d.]+ [mµnk]?J/char est", seen["report"]), context
    # Rendered by the extension from data: the ledger notification and the diagnostic's `data`.
    assert re.search(r"squares [\d.]+ [mµnk]?J/call est\b", seen["statusMeasured"]), context
    assert re.search(r"squares\(2000\): [\d.]+ [mµnk]?J ± [\d.]+ [mµnk]?J per call \(estimated\), [\d.]+ [mµn]?s ± ",
                     seen["problems"]), context
    comparison = seen["comparison"]
    if "not compared (" not in comparison:
        verdict = re.search(r"[−+]\d+\.\d % energy, (not significant|significant) \(p = ([\d.e-]+)\)", comparison)
        assert verdict, context
        # p < alpha (0.005 by default) is what "significant" means; anything else must say "not"
        # (unless the shown p, two significant digits, is too close to alpha to tell).
        p_value = float(verdict.group(2))
        if abs(p_value - 0.005) > 0.0005:
            assert (verdict.group(1) == "significant") == (p_value < 0.005), context
    assert "energy per call" in seen["hover"] and "estimated" in seen["hover"], context
    assert "Completion energy" in seen["report"], context
    assert screenshot.is_file() and screenshot.stat().st_size > 10_000, context
