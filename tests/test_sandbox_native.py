"""The compiled launcher/init (native.py) that makes sandbox starts cheaper: built once, execute-only,
rebuilt when tampered with, its failures reported as sandbox errors, and the slower fallback (Python
preexec + Perl init) still reporting the program's real status."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from greencoder.core.languages import PYTHON
from greencoder.core.sandbox import Limits, Status
from greencoder.core.sandbox import native
from greencoder.core.sandbox.cgroups import RunCgroup
from greencoder.core.sandbox.isolation import without_native
from greencoder.core.sandbox.process import run_isolated

from sandbox_levels import make_sandbox

needs_cc = pytest.mark.skipif(native._compiler() is None or not shutil.which("bwrap"), reason="no C compiler or bubblewrap")


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory):
    made = make_sandbox("strongest", tmp_path_factory.mktemp("project"))
    if made.plan.native is None:
        pytest.skip("no compiled helper here (no C compiler, or not Linux)")
    return made


@needs_cc
def test_helper_is_built_once_execute_only_and_a_tampered_copy_is_rebuilt(tmp_path, monkeypatch):
    monkeypatch.delenv(native.DISABLE_ENV, raising=False)
    jobs = tmp_path / "jobs"
    jobs.mkdir(mode=0o711)
    native.native_helper.cache_clear()
    try:
        helper = Path(native.native_helper(str(jobs)))
        info = helper.stat()
        assert stat.S_IMODE(info.st_mode) == 0o111 and info.st_uid == os.geteuid()
        native.native_helper.cache_clear()
        assert native.native_helper(str(jobs)) == str(helper) and helper.stat().st_ino == info.st_ino  # reused
        os.chmod(helper, 0o755)  # no longer what we built: readable (dumpable init), maybe replaced
        native.native_helper.cache_clear()
        rebuilt = Path(native.native_helper(str(jobs)))
        assert stat.S_IMODE(rebuilt.stat().st_mode) == 0o111
        assert [path.name for path in jobs.iterdir()] == [helper.parent.name]  # no build folder left
        monkeypatch.setenv(native.DISABLE_ENV, "1")
        native.native_helper.cache_clear()
        assert native.native_helper(str(jobs)) is None
    finally:
        native.native_helper.cache_clear()


def test_the_perl_fallback_reports_the_real_status(sandbox):
    slower = without_native(sandbox.plan)
    if slower.perl_init is None:
        pytest.skip("no perl")
    old = sandbox.plan
    sandbox.plan = slower
    try:
        exited = sandbox.execute(PYTHON, "import sys\nsys.exit(137)\n")
        killed = sandbox.execute(PYTHON, "import os\nos.kill(os.getpid(), 9)\n")
    finally:
        sandbox.plan = old
    assert exited.status is Status.RUNTIME_ERROR and exited.exit_code == 137 and exited.signal is None, exited.reason
    assert killed.status is Status.KILLED and killed.signal == 9, killed.reason


def test_the_native_init_reports_the_real_status_and_is_out_of_reach(sandbox):
    source = ("import os, sys\nprint(open('/proc/1/cmdline').read().split('\\0')[:2])\n"
              "try:\n    os.listdir('/proc/1/fd')\nexcept PermissionError:\n    print('init unreachable')\nsys.exit(139)\n")
    result = sandbox.execute(PYTHON, source)
    assert result.stdout == "['/.greencoder-init', 'init']\ninit unreachable\n", result.stderr
    assert result.status is Status.RUNTIME_ERROR and result.exit_code == 139 and result.signal is None


class _BrokenCgroups:
    """A cgroup the launcher cannot join (its directory is gone)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def create(self, memory_bytes: int, max_processes: int) -> RunCgroup:
        return RunCgroup("v1", {"pids": self.path})


@pytest.mark.parametrize("level", ["strongest", "uid-only-no-cgroup"])
def test_a_launch_failure_is_a_sandbox_error_not_a_program_status(level, tmp_path):
    """Where the launcher fails before it execs (here: joining the run's cgroup), the run is the
    sandbox's failure with the launcher's one line, also at levels without bubblewrap's status pipe."""
    sandbox = make_sandbox(level, tmp_path)
    if sandbox.plan.native is None:
        pytest.skip("no compiled helper here")
    with sandbox.prepare(PYTHON, {"main.py": "print('ran')\n"}, "main.py") as job:
        raw = run_isolated(sandbox.plan, _BrokenCgroups(tmp_path / "gone"), ["/bin/true"], job.directory,
                           job.environment(), Limits(wall_seconds=5), True)
    assert raw.sandbox_failure is not None and "cannot join the run's cgroup" in raw.sandbox_failure
    assert "\n" not in raw.sandbox_failure and raw.stdout == b""
