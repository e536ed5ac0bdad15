"""Choose and apply the strongest isolation this machine offers; record what was used.

Layers, strongest first (the cgroup, chosen separately in cgroups.py, combines with all of them):
1. bubblewrap: all namespaces unshared, an allow-listed read-only view of the file system (see
   view.py: no host sockets, FIFOs, home or project), only the job folder and a bounded /tmp
   writable, HOME inside the job folder;
2. `unshare`: user, network, PID, IPC and UTS namespaces, but the host's file system: world-writable
   host folders (/tmp, /dev/shm) and host unix sockets stay reachable;
3. an unprivileged uid, a new session and rlimits only: no namespaces at all;
4. macOS `sandbox-exec` with a profile that denies the network and writes outside the job folder
   (but reads everything the user can, and runs as the user): weak, so opted in like 2 and 3.
When greencoder runs as root, the child switches to an unprivileged uid *before* exec'ing the
wrapper: `bwrap --uid` started by root is still uid 0 to the kernel. Anything weaker than
bubblewrap is used only when asked for (`namespaces="unshare"|"none"`, `allow_weak`, or
GREENCODER_ALLOW_WEAK_SANDBOX=1), and says what it leaves open; a level whose filesystem is
unprotected (no bubblewrap, no sandbox-exec, no uid switch) needs `allow_unsandboxed` too.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
import resource
import shutil
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import native, pid1
from .errors import SandboxUnavailable
from .jobdirs import ensure_jobs_dir, make_owned_dir, remove_tree
from .limits import Limits
from .results import Isolation
from .view import bubblewrap_view, etc_snapshot

__all__ = ["Plan", "SandboxPolicy", "SandboxUnavailable", "plan_isolation"]

NOBODY = 65534
HIDDEN_BY_DEFAULT = ("/tmp", "/var/tmp", "/root", "/home", "/run")
SYSTEM_DIRS = ("/", "/usr", "/etc", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/opt", "/proc", "/sys", "/dev", "/var")
WEAK_ENV = "GREENCODER_ALLOW_WEAK_SANDBOX"
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
# What each level below bubblewrap leaves open; printed in the warning and the label.
GAPS = {
    "unshare": "no file-system view: host /tmp and /dev/shm writes persist, host unix sockets and FIFOs reachable",
    None: "no namespaces: network open, host /tmp and /dev/shm writes persist, host unix sockets and FIFOs reachable, "
          "other processes visible and signalable by the same uid",
    "sandbox-exec": "reads every file you can read, runs as you (your processes visible and signalable), "
                    "memory bounded by rlimits only",
}


def _weak_allowed_by_environment() -> bool:
    return os.environ.get(WEAK_ENV, "") not in ("", "0")


def allow_weak_sandbox() -> None:
    """Opt in, for this process and the processes it starts, to isolation weaker than bubblewrap
    (still with a loud warning and a label that says what is open): what the CLI's
    `--allow-weak-sandbox` does, the same as GREENCODER_ALLOW_WEAK_SANDBOX=1. Every SandboxPolicy
    made afterwards has `allow_weak` set, however deep in the program it is made."""
    os.environ[WEAK_ENV] = "1"


@dataclass(frozen=True)
class SandboxPolicy:
    """What the user allows. Defaults pick the strongest available layers and refuse weaker ones."""

    namespaces: str = "auto"  # auto, bubblewrap, unshare, none (an explicit weak choice is an opt-in)
    use_cgroup: bool = True
    sandbox_uid: int | None = None  # when root; default nobody (65534)
    sandbox_gid: int | None = None
    project: str | None = None  # hidden inside the sandbox; default: the current directory
    hidden: tuple[str, ...] = HIDDEN_BY_DEFAULT
    jobs_dir: str | None = None  # where job folders are made; default: <tmp>/greencoder-jobs-<uid>
    allow_unsandboxed: bool = False  # the explicit opt-in to run with whatever is there, even nothing
    # the opt-in to a level weaker than bubblewrap under "auto" (also GREENCODER_ALLOW_WEAK_SANDBOX=1)
    allow_weak: bool = field(default_factory=_weak_allowed_by_environment)

    def resolved_project(self) -> str:
        return os.path.realpath(self.project or os.getcwd())

    def resolved_jobs_dir(self) -> Path:
        import tempfile

        return Path(self.jobs_dir or Path(tempfile.gettempdir()) / f"greencoder-jobs-{os.geteuid()}")


@dataclass
class Plan:
    """A chosen isolation: how to wrap a command and what to do in the child before exec."""

    isolation: Isolation
    policy: SandboxPolicy
    switch_uid: int | None
    switch_gid: int | None
    rejected: list[str] = field(default_factory=list)  # why stronger levels were not used
    perl_init: str | None = None  # the execute-only perl the trusted PID-1 init runs from (pid1.py)
    etc: str | None = None  # bubblewrap's /etc: a snapshot of the allowed entries (view.etc_snapshot)
    native: str | None = None  # the compiled helper (native.py): launcher and init, replacing preexec and perl

    @property
    def runs_shim(self) -> bool:
        """Whether the program runs under a PID-1 init (pid1.py) rather than as our direct child."""
        return self.isolation.namespaces in ("bubblewrap", "unshare")

    @property
    def trusted_status(self) -> bool:
        """Whether the init reports the program's real wait status on a pipe (else 128+N is ambiguous)."""
        return self.runs_shim and self.init_program is not None

    @property
    def init_program(self) -> str | None:
        """The host path of the trusted init: the compiled helper, else the execute-only Perl."""
        return self.native or self.perl_init

    def init_argv(self, inside: str | None, status_fd: int | None, argv: list[str]) -> list[str]:
        if self.native is not None and inside is not None and status_fd is not None:
            return [inside, "init", str(status_fd), *argv]
        return pid1.init_argv(inside, status_fd, argv)

    def wrap(self, argv: list[str], job_dir: Path, status_fd: int | None, exposed: list[str] = (),
             scratch: Path | None = None, init_fd: int | None = None, tmpfs_bytes: int | None = None,
             read_only: list[str] = ()) -> list[str]:
        """The full command line. `status_fd`: bubblewrap's JSON status pipe; `init_fd`: the pipe
        the init writes the program's wait status to; `scratch`: the job's bounded /tmp;
        `read_only`: job files bubblewrap mounts read-only (they cannot be replaced either)."""
        kind = self.isolation.namespaces
        if kind == "bubblewrap":
            trusted = self.init_program is not None and init_fd is not None
            inner = self.init_argv(pid1.INSIDE_PATH if trusted else None, init_fd, argv)
            return bubblewrap_argv(inner, job_dir, self.hidden_paths(), status_fd, list(exposed), scratch,
                                   self.init_program if trusted else None, tmpfs_bytes, self.etc, list(read_only))
        if kind == "unshare":
            return unshare_argv(self.init_argv(self.init_program, init_fd, argv))
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

    def launch(self, argv: list[str], limits: Limits, address_space: bool, cgroup_procs: list[str],
               report_fd: int | None) -> tuple[list[str], Callable[[], None] | None]:
        """How to start the wrapped command: through the compiled helper, which does the preexec
        steps itself (so Popen can vfork), or with the Python preexec. `report_fd`: where the helper
        writes why it failed before exec'ing `argv` (needed for the helper)."""
        if self.native is not None and report_fd is not None:
            rlimits = child_rlimits(limits, address_space, cgroup_limits_processes=bool(cgroup_procs))
            return native.launch_argv(self.native, os.getpid(), report_fd, self.switch_uid, self.switch_gid,
                                      cgroup_procs, rlimits, argv), None
        return argv, self.preexec(limits, address_space, cgroup_procs)

    def preexec(self, limits: Limits, address_space: bool, cgroup_procs: list[str]) -> Callable[[], None]:
        """The child's last steps before exec: join the cgroup, new session, rlimits, drop the uid,
        and die with us (the parent-death signal is set after the uid switch, which clears it).
        Only plain system calls here: this runs between fork and exec."""
        rlimits = child_rlimits(limits, address_space, cgroup_limits_processes=bool(cgroup_procs))
        uid, gid = self.switch_uid, self.switch_gid
        parent = os.getpid()
        prctl = getattr(_libc, "prctl", None)  # Linux only

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
            if prctl is not None:
                prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
                if os.getppid() != parent:  # we died before the signal was armed
                    os._exit(1)

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
                    exposed: list[str] = (), scratch: Path | None = None, init: str | None = None,
                    tmpfs_bytes: int | None = None, etc: str | None = None, read_only: list[str] = ()) -> list[str]:
    job = str(job_dir)
    # --as-pid-1: bwrap's own init would reap the program but is never reaped itself, losing its CPU time;
    # our init (pid1.py) reaps it and reports how it ended.
    wrapped = ["bwrap", "--unshare-all", "--as-pid-1", "--die-with-parent", "--new-session", "--hostname", "sandbox"]
    wrapped += bubblewrap_view(job_dir, scratch, list(exposed), hidden,
                               tmpfs_bytes or Limits().max_disk_bytes, init, etc, list(read_only))
    wrapped += ["--chdir", job, "--setenv", "HOME", job, "--setenv", "TMPDIR", job]
    if status_fd is not None:
        wrapped += ["--json-status-fd", str(status_fd)]
    return [*wrapped, "--", *argv]


def unshare_argv(argv: list[str]) -> list[str]:
    return ["unshare", "--user", "--map-current-user", "--net", "--pid", "--fork", "--kill-child",
            "--mount-proc", "--ipc", "--uts", "--", *argv]


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
    ensure_jobs_dir(jobs)  # refuses a planted link in one line (SandboxUnavailable)
    try:
        job = make_owned_dir(jobs, "probe")
    except OSError as exc:
        return f"cannot create a job folder in {jobs}: {exc.strerror}"
    try:
        if plan.switch_uid is not None:
            os.chown(job, plan.switch_uid, plan.switch_gid)
        argv, preexec = plan.launch(plan.wrap(["true"], job, None), Limits(wall_seconds=20), True, [], 2)
        completed = subprocess.run(argv, cwd=job, capture_output=True, timeout=20, stdin=subprocess.DEVNULL,
                                   preexec_fn=preexec)
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace").strip().splitlines()
            return message[-1] if message else f"exit status {completed.returncode}"
        return None
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    finally:
        remove_tree(job)


def without_native(plan: Plan) -> Plan:
    """The same level started the slower way: a Python preexec and the Perl init (also what the
    benchmark compares against)."""
    return replace(plan, native=None, perl_init=_perl_init(plan.policy) if plan.runs_shim else None)


def _probe_with_fallback(plan: Plan) -> tuple[Plan, str | None]:
    """Probe the plan; where the compiled helper is what fails, the same level without it."""
    reason = _probe(plan)
    if reason is None or plan.native is None:
        return plan, reason
    slower = without_native(plan)
    return (slower, None) if _probe(slower) is None else (plan, reason)


def _perl_init(policy: SandboxPolicy) -> str | None:
    try:
        return pid1.execute_only_perl(str(ensure_jobs_dir(policy.resolved_jobs_dir())))
    except OSError:
        return None


def _native_helper(policy: SandboxPolicy) -> str | None:
    """The compiled helper, cached in the default jobs folder (one build per machine and source,
    whatever jobs folder a policy names), else in the policy's own."""
    for jobs in dict.fromkeys([SandboxPolicy(jobs_dir=None).resolved_jobs_dir(), policy.resolved_jobs_dir()]):
        try:
            helper = native.native_helper(str(ensure_jobs_dir(jobs)))
        except (OSError, SandboxUnavailable):
            continue
        if helper is not None:
            return helper
    return None


@functools.lru_cache(maxsize=8)
def plan_isolation(policy: SandboxPolicy, cgroup_version: str | None) -> Plan:
    """Try levels strongest first, recording why each stronger one was skipped. Below bubblewrap
    only with an opt-in: an explicit level, `allow_weak`, or `allow_unsandboxed`."""
    uid, gid = _switch_ids(policy)
    rejected: list[str] = []
    wanted = policy.namespaces
    if wanted not in ("auto", "bubblewrap", "unshare", "none"):
        raise SandboxUnavailable(f"unknown namespace tool '{wanted}' (choose auto, bubblewrap, unshare or none)")
    base = dict(cgroup=cgroup_version, uid=uid, rlimits=True, new_session=True)

    def candidate(kind: str | None, **flags) -> Plan:
        if kind == "sandbox-exec":  # nothing to prepare on the host; job folders are checked when made
            return Plan(Isolation(namespaces=kind, **base, **flags), policy, uid, gid, rejected)
        ensure_jobs_dir(policy.resolved_jobs_dir())  # a planted link or foreign folder: refused before any write
        helper = _native_helper(policy)
        perl = _perl_init(policy) if kind in ("bubblewrap", "unshare") and helper is None else None
        etc = etc_snapshot(str(policy.resolved_jobs_dir())) if kind == "bubblewrap" else None
        return Plan(Isolation(namespaces=kind, **base, **flags), policy, uid, gid, rejected, perl, etc, helper)

    weak_ok = wanted in ("unshare", "none") or policy.allow_weak or policy.allow_unsandboxed
    if platform.system() == "Darwin" and wanted in ("auto", "none") and shutil.which("sandbox-exec"):
        if not weak_ok:
            raise SandboxUnavailable(
                "macOS offers sandbox-exec only, which denies the network and writes outside the job but "
                f"{GAPS['sandbox-exec']}; it needs an opt-in: pass --allow-weak-sandbox or set {WEAK_ENV}=1")
        return candidate("sandbox-exec", network_isolated=True, filesystem_isolated=True, gaps=GAPS["sandbox-exec"])
    if wanted in ("auto", "bubblewrap"):
        if shutil.which("bwrap") is None:
            rejected.append("bubblewrap: bwrap not installed")
        else:
            plan, reason = _probe_with_fallback(candidate("bubblewrap", network_isolated=True, filesystem_isolated=True))
            if reason is None:
                return plan
            rejected.append(f"bubblewrap: {reason}")
    if wanted == "auto" and not weak_ok:
        raise SandboxUnavailable(
            "bubblewrap is unavailable (" + "; ".join(rejected) + "); weaker isolation leaves the host's /tmp, "
            f"unix sockets or network open, so it needs an opt-in: pass --allow-weak-sandbox or set {WEAK_ENV}=1 "
            "(or pass --unsafe-no-sandbox)"
        )
    if wanted in ("auto", "unshare"):
        if shutil.which("unshare") is None:
            rejected.append("unshare: not installed")
        else:
            plan, reason = _probe_with_fallback(
                candidate("unshare", network_isolated=True, filesystem_isolated=False, gaps=GAPS["unshare"]))
            if reason is None and (uid is not None or policy.allow_unsandboxed):
                return plan
            rejected.append(f"unshare: {reason or 'runs as you, so your files are writable'}")
    if uid is not None:
        return candidate(None, filesystem_isolated=False, gaps=GAPS[None])
    if policy.allow_unsandboxed:
        return Plan(Isolation(cgroup=cgroup_version, rlimits=True, new_session=True, unsafe=True), policy, None, None, rejected)
    raise SandboxUnavailable(
        "no sandbox available (" + "; ".join(rejected or ["not root, no bubblewrap"]) + "); "
        "install bubblewrap, or pass --unsafe-no-sandbox to run untrusted code without isolation"
    )
