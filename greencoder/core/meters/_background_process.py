"""Stopping and reading a meter that is a background program (perf stat, powermetrics).

Both count or sample until SIGINT and then flush; both report start-up failures on stderr.
"""

from __future__ import annotations

import signal
import subprocess

from greencoder.core.meters.base import MeterError


def interrupt(process: subprocess.Popen, timeout: float, tool: str) -> None:
    """SIGINT (the tool's own "stop and print" signal) and wait; kill it if it does not stop."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise MeterError(f"{tool} did not stop within {timeout:g} s of SIGINT") from None


def last_stderr_line(process: subprocess.Popen) -> str:
    """The tool's last words on stderr (its error), or its exit status; closes stderr."""
    err = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    lines = [line.strip() for line in err.splitlines() if line.strip()]
    return lines[-1] if lines else f"exit status {process.returncode}"
