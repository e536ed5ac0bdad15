"""Sandboxes at every isolation level this machine offers, for tests that must hold at each.

A level the machine lacks (no bubblewrap, no cgroup, not root) is skipped with the reason, so a
test run always says which isolation the hostile programs were contained by.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from greencoder.core.sandbox import Limits, Sandbox, SandboxPolicy, SandboxUnavailable

LEVELS = {
    "strongest": dict(namespaces="auto", use_cgroup=True),
    "unshare": dict(namespaces="unshare", use_cgroup=True),
    "bubblewrap-no-cgroup": dict(namespaces="bubblewrap", use_cgroup=False),
    "uid-only-no-cgroup": dict(namespaces="none", use_cgroup=False),
}
RUN_LIMITS = Limits(wall_seconds=3.0, memory_bytes=256 * 1024 * 1024, max_processes=64,
                    max_file_bytes=16 * 1024 * 1024, max_output_bytes=256 * 1024, java_heap_bytes=128 * 1024 * 1024)
COMPILE_LIMITS = Limits(wall_seconds=20.0, memory_bytes=768 * 1024 * 1024, max_output_bytes=256 * 1024)


# This test run's own job folders, so leftover checks ignore other greencoder runs on the machine.
TEST_JOBS_DIR = Path(tempfile.gettempdir()) / f"greencoder-test-jobs-{os.getpid()}"


def make_sandbox(level: str, project: Path) -> Sandbox:
    policy = SandboxPolicy(project=str(project), jobs_dir=str(TEST_JOBS_DIR), **LEVELS[level])
    try:
        sandbox = Sandbox(policy, run_limits=RUN_LIMITS, compile_limits=COMPILE_LIMITS)
    except SandboxUnavailable as exc:
        pytest.skip(f"isolation level '{level}' unavailable here: {exc}")
    wanted = LEVELS[level]["namespaces"]
    if wanted not in ("auto", "none") and sandbox.isolation.namespaces != wanted:
        pytest.skip(f"isolation level '{level}' unavailable here: {'; '.join(sandbox.plan.rejected)}")
    if level != "strongest" and os.geteuid() != 0 and wanted == "none":
        pytest.skip("a uid-only sandbox needs root to switch uid")
    return sandbox


def processes_of_uid(uid: int, working_under: Path = TEST_JOBS_DIR) -> list[int]:
    """Live (non-zombie) processes owned by `uid` working in one of this test run's job folders."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] != [str(uid)] or fields.get("State", "").strip().startswith("Z"):
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            continue
        if cwd.startswith(f"{working_under}/"):
            found.append(int(entry.name))
    return found
