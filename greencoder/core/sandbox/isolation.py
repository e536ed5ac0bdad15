"""Choose and apply the strongest isolation this machine offers; record what was used.

Layers, strongest first (the cgroup, chosen separately in cgroups.py, combines with all of them):
1. bubblewrap: all namespaces unshared, read-only root, tmpfs over /tmp, /var/tmp, /root, /home,
   /run and the user's project, only the job folder writable, HOME inside it;
2. `unshare`: user, network, PID, IPC and UTS namespaces, no filesystem view of its own;
3. an unprivileged uid, a new session and rlimits only;
4. macOS `sandbox-exec` with a profile that denies the network and writes outside the job folder.
When greencoder runs as root, the child switches to an unprivileged uid *before* exec'ing the
wrapper: `bwrap --uid` started by root is still uid 0 to the kernel. A level whose filesystem is
unprotected (no bubblewrap, no sandbox-exec, no uid switch) is refused unless the user opted in.
"""

from __future__ import annotations

import functools
import os
import platform
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from greencoder.core.errors import GreencoderError

from .limits import Limits
from .results import Isolation

NOBODY = 65534
HIDDEN_BY_DEFAULT = ("/tmp", "/var/tmp", "/root", "/home", "/run")
SCRATCH_DIRS = ("/tmp", "/var/tmp")  # hidden behind a writable tmpfs: programs may expect to write there
# The first process of a new PID namespace is its init, which the kernel shields from every signal it
# has no handler for (RLIMIT_CPU's SIGXCPU, abort()'s SIGABRT, a kill() of itself). A shell is that
# init instead: it runs the program as its child, reaps it (so its rusage reaches us) and exits with
# 128+N when it dies of signal N. The shell's own stderr ("Killed") goes to /dev/null, the program's
# not (in a subshell: dash reports a job's death with the job's redirections still in place).
PID1_SHIM = ("/bin/sh", "-c", 'exec 3>&2 2>/dev/null; ("$@" 2>&3 3>&-); exit $?', "sh")
SYSTEM_DIRS = ("/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt", "/proc", "/sys", "/dev", "/var")


class SandboxUnavailable(GreencoderError):
    """No acceptable isolation here, and the user did not opt in to running without one."""


@dataclass(frozen=True)
class SandboxPolicy:
    """What the user allows. Defaults pick the strongest available layers."""

    namespaces: str = "auto"  # auto, bubblewrap, unshare, none
    use_cgroup: bool = True
    sandbox_uid: int | None = None  # when root; default nobody (65534)
    sandbox_gid: int | None = None
    project: str | None = None  # hidden inside the sandbox; default: the current directory
    hidden: tuple[str, ...] = HIDDEN_BY_DEFAULT
    jobs_dir: str | None = None  # where job folders are made; default: <tmp>/greencoder-jobs-<uid>
    allow_unsandboxed: bool = False  # the explicit opt-in to run with whatever is there, even nothing

    def resolved_project(self) -> str:
        return os.path.realpath(self.project or os.getcwd())

    def resolved_jobs_dir(self) -> Path:
        return Path(self.jobs_dir or Path(tempfile.gettempdir()) / f"greencoder-jobs-{os.geteuid()}")


@dataclass
class Plan:
    """A chosen isolation: how to wrap a command and what to do in the child before exec."""

    isolation: Isolation
    policy: SandboxPolicy
    switch_uid: int | None
    switch_gid: int | None
    rejected: list[str] = field(default_factory=list)  # why stronger levels were not used

    @property
    def runs_shim(self) -> bool:
        """Whether the program runs under PID1_SHIM, which reports death by signal N as exit 128+N."""
        return self.isolation.namespaces in ("bubblewrap", "unshare")

    def wrap(self, argv: list[str], job_dir: Path, status_fd: int | None, exposed: list[str] = ()) -> list[str]:
        kind = self.isolation.namespaces
        if kind == "bubblewrap":
            return bubblewrap_argv(argv, job_dir, self.hidden_paths(), status_fd, list(exposed))
        if kind == "unshare":
            return unshare_argv(argv)
        if kind == "sandbox-exec":
            return ["sandbox-exec", "-p", sandbox_exec_profile(job_dir), *argv]
        return argv

    def hidden_paths(self) -> list[str]:
        project = self.policy.resolved_project()
        paths = [os.path.realpath(path) for path in self.policy.hidden]
        if project not in SYSTEM_DIRS and not any(project == p or project.startswith(p + "/") for p in paths):
            paths.append(project)
        unique = []
        for path in paths:
            if path in SYSTEM_DIRS or not os.path.isdir(path) or path in unique:
                continue
            unique.append(path)
        return unique

    def preexec(self, limits: Limits, address_space: bool, cgroup_procs: list[str]) -> Callable[[], None]:
        """The child's last steps before exec: join the cgroup, new session, rlimits, drop the uid.
        Only plain system calls here: this runs between fork and exec."""
        rlimits = child_rlimits(limits, address_space, cgroup_limits_processes=bool(cgroup_procs))
        uid, gid = self.switch_uid, self.switch_gid

        def prepare_child() -> None:
            for procs in cgroup_procs:
                fd = os.open(procs, os.O_WRONLY)
                try:
                    os.write(fd, b"0")
                finally:
                    os.close(fd)
            os.setsid()
            for kind, value in rlimits:
                resource.setrlimit(kind, value)
            if gid is not None:
                os.setgroups([])
                os.setgid(gid)
            if uid is not None:
                os.setuid(uid)

        return prepare_child


def child_rlimits(limits: Limits, address_space: bool, cgroup_limits_processes: bool) -> list[tuple[int, tuple[int, int]]]:
    """rlimits for the child. RLIMIT_NPROC counts every process of the uid on the host, so where
    the cgroup already caps this run's processes it is only a loose backstop."""
    cpu = limits.effective_cpu_seconds
    nproc = max(limits.max_processes * 8, 1024) if cgroup_limits_processes else limits.max_processes
    values = [
        (resource.RLIMIT_CPU, (cpu, cpu + 1)),  # soft: SIGXCPU (reported as a timeout); hard: SIGKILL
        (resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes)),
        (resource.RLIMIT_NOFILE, (limits.max_open_files, limits.max_open_files)),
        (resource.RLIMIT_NPROC, (nproc, nproc)),
        (resource.RLIMIT_CORE, (0, 0)),
    ]
    if address_space:
        values.append((resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes)))
    return values


def bubblewrap_argv(argv: list[str], job_dir: Path, hidden: list[str], status_fd: int | None,
                    exposed: list[str] = ()) -> list[str]:
    job = str(job_dir)
    # --as-pid-1: bwrap's own init would reap the program but is never reaped itself, losing its CPU time.
    wrapped = ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session",
               "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--hostname", "sandbox"]
    for path in hidden:
        wrapped += ["--tmpfs", path]
    for path in exposed:  # toolchain folders inside hidden ones (a pyenv Python under /root), read-only
        if any(path == hide or path.startswith(hide + "/") for hide in hidden):
            wrapped += ["--ro-bind", path, path]
    for path in hidden:  # empty and read-only, so writes to home or project fail instead of vanishing
        if path not in SCRATCH_DIRS:
            wrapped += ["--remount-ro", path]
    wrapped += ["--bind", job, job, "--chdir", job, "--setenv", "HOME", job, "--setenv", "TMPDIR", job]
    if status_fd is not None:
        wrapped += ["--json-status-fd", str(status_fd)]
    return [*wrapped, "--", *PID1_SHIM, *argv]


def unshare_argv(argv: list[str]) -> list[str]:
    return ["unshare", "--user", "--map-current-user", "--net", "--pid", "--fork", "--kill-child",
            "--mount-proc", "--ipc", "--uts", "--", *PID1_SHIM, *argv]


def sandbox_exec_profile(job_dir: Path) -> str:
    job = str(job_dir).replace('"', "")
    return (
        "(version 1)\n(allow default)\n(deny network*)\n(deny file-write*)\n"
        f'(allow file-write* (subpath "{job}") (literal "/dev/null") (literal "/dev/zero"))\n'
    )


def _switch_ids(policy: SandboxPolicy) -> tuple[int | None, int | None]:
    if os.geteuid() != 0:
        return None, None
    uid = policy.sandbox_uid if policy.sandbox_uid is not None else NOBODY
    gid = policy.sandbox_gid if policy.sandbox_gid is not None else uid
    if uid == 0:
        raise SandboxUnavailable("the sandbox uid must not be 0 (root)")
    return uid, gid


def _probe(plan: Plan) -> str | None:
    """Run `true` the way real jobs run; None when it works, else the reason it does not."""
    jobs = plan.policy.resolved_jobs_dir()
    try:
        jobs.mkdir(parents=True, exist_ok=True)
        os.chmod(jobs, 0o711)
        job = Path(tempfile.mkdtemp(prefix="probe-", dir=jobs))
    except OSError as exc:
        return f"cannot create a job folder in {jobs}: {exc.strerror}"
    try:
        if plan.switch_uid is not None:
            os.chown(job, plan.switch_uid, plan.switch_gid)
        argv = plan.wrap(["true"], job, None)
        completed = subprocess.run(argv, cwd=job, capture_output=True, timeout=20,
                                   preexec_fn=plan.preexec(Limits(wall_seconds=20), True, []))
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()
            return message[-1] if message else f"exit status {completed.returncode}"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        shutil.rmtree(job, ignore_errors=True)


@functools.lru_cache(maxsize=8)
def plan_isolation(policy: SandboxPolicy, cgroup_version: str | None) -> Plan:
    """Try levels strongest first, recording why each stronger one was skipped."""
    uid, gid = _switch_ids(policy)
    rejected: list[str] = []
    wanted = policy.namespaces
    if wanted not in ("auto", "bubblewrap", "unshare", "none"):
        raise SandboxUnavailable(f"unknown namespace tool '{wanted}' (choose auto, bubblewrap, unshare or none)")
    base = dict(cgroup=cgroup_version, uid=uid, rlimits=True, new_session=True)

    def candidate(kind: str | None, **flags) -> Plan:
        return Plan(Isolation(namespaces=kind, **base, **flags), policy, uid, gid, rejected)

    if platform.system() == "Darwin" and wanted in ("auto", "none") and shutil.which("sandbox-exec"):
        return candidate("sandbox-exec", network_isolated=True, filesystem_isolated=True)
    if wanted in ("auto", "bubblewrap"):
        if shutil.which("bwrap") is None:
            rejected.append("bubblewrap: bwrap not installed")
        else:
            plan = candidate("bubblewrap", network_isolated=True, filesystem_isolated=True)
            reason = _probe(plan)
            if reason is None:
                return plan
            rejected.append(f"bubblewrap: {reason}")
    if wanted in ("auto", "unshare"):
        if shutil.which("unshare") is None:
            rejected.append("unshare: not installed")
        else:
            plan = candidate("unshare", network_isolated=True, filesystem_isolated=uid is not None)
            reason = _probe(plan)
            if reason is None and (uid is not None or policy.allow_unsandboxed):
                return plan
            rejected.append(f"unshare: {reason or 'runs as you, so your files are writable'}")
    if uid is not None:
        return candidate(None, filesystem_isolated=True)
    if policy.allow_unsandboxed:
        return Plan(Isolation(cgroup=cgroup_version, rlimits=True, new_session=True, unsafe=True), policy, None, None, rejected)
    raise SandboxUnavailable(
        "no sandbox available (" + "; ".join(rejected or ["not root, no bubblewrap"]) + "); "
        "install bubblewrap, or pass --unsafe-no-sandbox to run untrusted code without isolation"
    )
