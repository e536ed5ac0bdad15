"""The editing-trace benchmark still runs end to end (its figures are for reading, not asserted)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import REPO_ROOT


@pytest.mark.slow
def test_the_quick_editing_trace_replays_through_the_server():
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GREENCODER_THREADS": "1"}
    done = subprocess.run([sys.executable, "benchmarks/bench_editing_trace.py", "--quick", "--characters", "40"],
                          cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "tokens prefilled" in done.stdout and "suggestions after pauses identical" in done.stdout
    assert "Traceback" not in done.stderr
