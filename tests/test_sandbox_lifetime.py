"""Nothing outlives greencoder, and nothing a program builds stops its clean-up: a SIGKILLed run's
sandboxed processes die with it and its job folder and cgroup are reaped at the next start; trees
are removed without recursion (a 3,000-level chain), at every isolation level.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from greencoder.core.languages import PYTHON
from greencoder.core.sandbox import Limits, Sandbox, SandboxPolicy, jobdirs
from greencoder.core.sandbox.jobdirs import create_job_space, reap_stale, remove_tree

from sandbox_levels import LEVELS, make_sandbox

REPO = Path(__file__).resolve().parents[1]
SLOW_OK = Limits(wall_seconds=60.0, memory_bytes=256 * 1024 * 1024)  # 3,000 mkdirs on a loaded machine
DEPTH = 3000


def make_chain(top: Path, depth: int = DEPTH) -> None:
    """A `depth`-level chain of folders with a file at the bottom, made with relative calls only
    (its full path is far longer than PATH_MAX), some levels locked the way a program might."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    for level in range(depth):
        os.mkdir("d", dir_fd=fd)
        below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        if level % 1000 == 999:
            os.chmod("d", 0o500, dir_fd=fd)
        os.close(fd)
        fd = below
    with open(os.open("bottom.txt", os.O_WRONLY | os.O_CREAT, 0o600, dir_fd=fd), "w") as handle:
        handle.write("x")
    os.symlink("/etc", "escape", dir_fd=fd)  # removal must not follow it
    os.close(fd)


def test_remove_tree_handles_a_3000_level_chain_without_recursion(tmp_path):
    top = tmp_path / "job"
    top.mkdir()
    make_chain(top)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(200)  # any recursive walk would fail here
    try:
        remove_tree(top)
    finally:
        sys.setrecursionlimit(limit)
    assert not top.exists()
    assert Path("/etc/passwd").exists()


def test_remove_tree_of_a_missing_path_is_fine(tmp_path):
    remove_tree(tmp_path / "never-made")


@pytest.fixture(scope="module", params=list(LEVELS))
def sandbox(request, tmp_path_factory):
    return make_sandbox(request.param, tmp_path_factory.mktemp("project"))


CHAIN_PROGRAM = f"""
import os
for _ in range({DEPTH}):
    os.mkdir("d")
    os.chdir("d")
open("bottom.txt", "w").write("x")
print("built")
"""


def test_a_program_made_3000_level_chain_is_cleaned_up(sandbox, monkeypatch):
    job = sandbox.prepare(PYTHON, {"main.py": CHAIN_PROGRAM}, "main.py")
    result = job.run(limits=SLOW_OK)
    assert result.ok and result.stdout == "built\n", result.reason
    job.close()
    assert not job.space.root.exists()


def test_a_chain_in_a_plain_job_folder_is_cleaned_up(sandbox, monkeypatch):
    """Where greencoder may not mount (not root) job folders are plain folders, removed by walking."""
    monkeypatch.setattr(jobdirs, "mount_tmpfs", lambda *args: False)
    with sandbox.prepare(PYTHON, {"main.py": CHAIN_PROGRAM}, "main.py") as job:
        assert not job.space.mounted
        result = job.run(limits=SLOW_OK)
        assert result.ok, result.reason
    assert not job.space.root.exists()


# --- a SIGKILLed greencoder -----------------------------------------------------------------------

HOLDER = """
import sys
from greencoder.core.languages import PYTHON
from greencoder.core.sandbox import Limits, Sandbox, SandboxPolicy
policy = SandboxPolicy(jobs_dir=sys.argv[1], namespaces=sys.argv[2], use_cgroup=sys.argv[3] == "1",
                       project=sys.argv[4])
sandbox = Sandbox(policy)
program = "import os, time\\nopen('started', 'w').close()\\ntime.sleep(600)\\n"
with sandbox.prepare(PYTHON, {"main.py": program}, "main.py") as job:
    result = job.run(limits=sandbox.run_limits.__class__(wall_seconds=600))
print(result.status.value, result.reason, file=sys.stderr)
"""


def sandbox_processes(uid: int | None, jobs: Path) -> list[int]:
    """Live processes working in (or started from) a job folder under `jobs`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cwd = os.readlink(entry / "cwd")
        except (OSError, IndexError):
            continue
        if cwd.startswith(f"{jobs}/"):
            found.append(int(entry.name))
    return found


def wait_for(condition, seconds: float) -> bool:
    """Poll `condition` until true or the deadline: the kernel gives us no event for another
    process's death or a file's appearance in a folder we do not watch."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_killed_greencoder_leaves_nothing_running_and_the_next_start_reaps_its_job(sandbox, tmp_path):
    jobs = Path(tempfile.mkdtemp(prefix="gc-life-"))  # the sandbox uid must traverse it: not in tmp_path (0700)
    os.chmod(jobs, 0o711)
    level = sandbox.policy
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(jobs), level.namespaces,
                               "1" if level.use_cgroup else "0", str(tmp_path / "project")],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_for(lambda: any(jobs.glob("job-*/work/started")) or holder.poll() is not None, 60), \
            "the sandboxed program never started"
        assert holder.poll() is None, holder.communicate()[1].decode()[-2000:]
        assert sandbox_processes(sandbox.plan.switch_uid, jobs), "the sandboxed program is not visible"
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        assert wait_for(lambda: not sandbox_processes(sandbox.plan.switch_uid, jobs), 10), \
            f"sandboxed processes outlived greencoder: {sandbox_processes(sandbox.plan.switch_uid, jobs)}"
        leftover = list(jobs.glob("job-*"))
        assert leftover, "nothing left to reap (the test proves nothing)"
        groups = sandbox.cgroups.parents.values() if sandbox.cgroups else []
        left_groups = [path for parent in groups for path in parent.glob(f"run-{holder.pid}-*")]
        assert left_groups or not sandbox.cgroups, "the killed run left no cgroup (the test proves nothing)"
        Sandbox(SandboxPolicy(jobs_dir=str(jobs), namespaces=level.namespaces, use_cgroup=level.use_cgroup,
                              project=str(tmp_path / "project")))
        assert not any(path.exists() for path in left_groups), "the dead run's cgroup was not reaped"
        assert list(jobs.glob("job-*")) == []
        assert [path for path in jobs.glob("pid1-*") if not path.name.startswith(f"pid1-{os.getpid()}-")] == []
        assert not any(os.path.ismount(path) for path in leftover)
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        remove_tree(jobs)


def test_reaping_spares_live_owners_and_other_files(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    mine = create_job_space(jobs, 1 << 20, 64, None, None)
    dead = jobs / "job-999999999-1-abc"
    dead.mkdir()
    (dead / "work").mkdir()
    unrelated = jobs / "notes"
    unrelated.mkdir()
    try:
        assert reap_stale(jobs) == 1
        assert mine.root.exists() and unrelated.exists() and not dead.exists()
    finally:
        mine.remove()


def test_stale_cgroups_of_dead_runs_are_reaped(tmp_path):
    sandbox = Sandbox(SandboxPolicy(jobs_dir=str(tmp_path / "jobs"), namespaces="none", use_cgroup=True))
    if sandbox.cgroups is None:
        pytest.skip("no cgroups here")
    group = sandbox.cgroups.create(64 << 20, 8)
    stale = {key: path.with_name("run-999999999-1-0123456789ab") for key, path in group.paths.items()}
    for key, path in group.paths.items():
        path.rename(stale[key])
    assert sandbox.cgroups.reap_stale() >= 1
    assert not any(path.exists() for path in stale.values())



def test_reaping_a_folder_another_process_removes_meanwhile_is_no_error(tmp_path, monkeypatch):
    """Two greencoder processes starting at once may reap the same dead run's folder."""
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    dead = jobs / "job-999999999-1-abc"
    (dead / "work").mkdir(parents=True)
    real_remove = jobdirs.remove_tree

    def removed_by_someone_else_first(path):
        real_remove(path)
        real_remove(path)  # the second call sees nothing: fine
        raise FileNotFoundError(2, "No such file or directory", str(path))

    monkeypatch.setattr(jobdirs, "remove_tree", removed_by_someone_else_first)
    assert reap_stale(jobs) == 0
    assert not dead.exists()
