"""Run one command inside the plan's isolation and come back with what happened, whatever the
program does: the deadline holds even if a child escapes and keeps our pipes open, output is read
under a byte cap, and everything the run started is killed before we return.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .cgroups import CgroupSupport, RunCgroup, kill_pids
from .isolation import Plan
from .limits import Limits

DRAIN_GRACE_SECONDS = 0.5
# Without a cgroup or a PID namespace an escaped child is found by uid + a marker in its environment
# (or its working directory); runs are then serialised, as they share the uid's RLIMIT_NPROC count.
_UID_SWEEP_LOCK = threading.Lock()
RUN_MARKER = "GREENCODER_RUN"


@dataclass
class RawRun:
    """Facts about one process run, before they are interpreted into a status."""

    returncode: int | None = None  # the program's exit status (from the init's record where there is one)
    signal: int | None = None
    stdout: bytes = b""
    stderr: bytes = b""
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None
    cpu_source: str | None = None
    peak_memory_bytes: int | None = None
    timed_out: bool = False
    output_overflow: bool = False
    oom_killed: bool = False
    hit_process_limit: bool = False
    stray_processes: int = 0
    disk_full: bool = False  # the job's bounded file system ran out of space or inodes
    sandbox_failure: str | None = None  # the wrapper failed before the program started
    details: dict = field(default_factory=dict)


def run_isolated(plan: Plan, cgroups: CgroupSupport | None, argv: list[str], job_dir: Path, env: dict[str, str],
                 limits: Limits, address_space: bool, stdin: bytes | None = None, exposed: list[str] = (),
                 scratch: Path | None = None, read_only: list[str] = ()) -> RawRun:
    sweep_uid = plan.switch_uid if cgroups is None and plan.isolation.namespaces is None else None
    if sweep_uid is None:
        return _run_isolated(plan, cgroups, argv, job_dir, env, limits, address_space, stdin, exposed, scratch,
                             read_only)
    marker = f"{RUN_MARKER}={uuid.uuid4().hex}"
    env = {**env, RUN_MARKER: marker.split("=", 1)[1]}
    with _UID_SWEEP_LOCK:
        _become_subreaper()
        raw = _run_isolated(plan, cgroups, argv, job_dir, env, limits, address_space, stdin, exposed, scratch,
                             read_only)
        raw.stray_processes = max(raw.stray_processes, sweep_run(sweep_uid, marker.encode(), job_dir))
        return raw


def sweep_run(uid: int, marker: bytes, job_dir: Path) -> int:
    """SIGKILL the processes this run left behind: those of the sandbox uid that carry the run's
    marker in their environment or work in its job folder. Never a blanket kill of the uid, which
    would hit other runs and any service that runs as nobody. Returns how many there were."""
    found = 0
    for _ in range(20):
        strays = [pid for pid, owner, state, _ in _processes()
                  if owner == uid and not state.startswith("Z") and _belongs_to_run(pid, marker, job_dir)]
        if not strays:
            break
        found = max(found, len(strays))
        kill_pids(strays)
        time.sleep(0.01)
    _reap_orphans_of(uid)
    return found


def _belongs_to_run(pid: int, marker: bytes, job_dir: Path) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            if marker in handle.read().split(b"\0"):
                return True
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return cwd == str(job_dir) or cwd.startswith(f"{job_dir}/")


_subreaper = False


def _become_subreaper() -> None:
    """Have orphans of our runs re-parented to us rather than to PID 1, so that we can reap them:
    unreaped zombies still count against the uid's RLIMIT_NPROC, and some container inits never
    reap. Only used at the weakest isolation level; with a PID namespace its init reaps."""
    global _subreaper
    if _subreaper:
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        _subreaper = libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        _subreaper = False


def _reap_orphans_of(uid: int) -> None:
    """waitpid() the zombies of `uid` that were re-parented to us; never touches other children."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        pending = [pid for pid, owner, state, parent in _processes() if owner == uid and parent == os.getpid()]
        if not pending:
            return
        for pid in pending:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        time.sleep(0.01)


def _processes():
    """(pid, uid, state, parent pid) of every process, from /proc."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as handle:
                fields = dict(line.split(":", 1) for line in handle.read().splitlines() if ":" in line)
            yield int(entry.name), int(fields["Uid"].split()[0]), fields["State"].strip(), int(fields["PPid"])
        except (OSError, KeyError, ValueError):
            continue


def _run_isolated(plan: Plan, cgroups: CgroupSupport | None, argv: list[str], job_dir: Path, env: dict[str, str],
                  limits: Limits, address_space: bool, stdin: bytes | None, exposed: list[str],
                  scratch: Path | None, read_only: list[str] = ()) -> RawRun:
    raw = RawRun()
    group: RunCgroup | None = None
    if cgroups is not None:
        try:
            group = cgroups.create(limits.memory_bytes, limits.max_processes)
        except OSError as exc:
            raw.sandbox_failure = f"could not create the run's cgroup: {exc.strerror or exc}"
            return raw
    # Pipes we read and the child writes: bubblewrap's JSON status, and the init's record of the
    # program's real wait status (pid1.py). stdin goes through a pipe too, never a file in the job.
    status_read, status_write = os.pipe() if plan.isolation.namespaces == "bubblewrap" else (None, None)
    init_read, init_write = os.pipe() if plan.trusted_status else (None, None)
    # The compiled launcher (native.py) writes why it failed here; its exec of the wrapper closes it.
    report_read, report_write = os.pipe() if plan.native is not None else (None, None)
    try:
        wrapped = plan.wrap(argv, job_dir, status_write, exposed, scratch, init_write, limits.max_disk_bytes,
                            [str(job_dir / name) for name in read_only])
        command, preexec = plan.launch(wrapped, limits, address_space, group.procs_files if group else [],
                                       report_write)
        started = time.monotonic()
        try:
            process = subprocess.Popen(
                command, cwd=job_dir, env=env, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=tuple(fd for fd in (status_write, init_write, report_write) if fd is not None),
                preexec_fn=preexec,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raw.sandbox_failure = f"could not start {command[0]}: {exc}"
            return raw
        finally:
            for fd in (status_write, init_write, report_write):
                if fd is not None:
                    os.close(fd)
            status_write = init_write = report_write = None
        _supervise(process, raw, group, limits, started, stdin)
        launch_failure = _read_all(report_read).decode(errors="replace").strip()
        if launch_failure:
            raw.sandbox_failure = launch_failure.splitlines()[0]
            return raw
        if status_read is not None:
            raw.sandbox_failure = _bwrap_failure(status_read, raw)
        if plan.runs_shim and not raw.sandbox_failure:
            _read_program_status(raw, init_read, plan.trusted_status)
        if scratch is not None:  # the job is its own bounded tmpfs (jobdirs.create_job_space)
            raw.disk_full = _disk_full(job_dir)
        if group is not None:
            raw.cpu_seconds = group.cpu_seconds()
            raw.cpu_source = "cgroup" if raw.cpu_seconds is not None else raw.cpu_source
            raw.oom_killed = group.oom_killed()
            raw.hit_process_limit = group.hit_process_limit()
            raw.peak_memory_bytes = group.peak_memory_bytes() or raw.peak_memory_bytes
        return raw
    finally:
        for fd in (status_read, status_write, init_read, init_write, report_read, report_write):
            if fd is not None:
                os.close(fd)
        if group is not None:
            group.kill()
            group.remove()


def _read_program_status(raw: RawRun, init_read: int | None, trusted: bool) -> None:
    """How the program ended, from the init's record when there is one. Without it (a shell init)
    an exit status above 128 is reported as a signal but marked as the program's say-so."""
    code = raw.returncode
    if trusted:
        record = _read_all(init_read).decode(errors="replace").split()
        if len(record) == 1 and record[0].isdigit():
            status = int(record[0])
            raw.returncode, raw.signal = (None, os.WTERMSIG(status)) if os.WIFSIGNALED(status) else (
                os.WEXITSTATUS(status), None)
            return
        if code is not None and code > 128:  # the init itself died (our kill, the OOM killer)
            raw.details["init_killed_by"] = code - 128
        return
    if code is not None and code > 128:
        raw.signal, raw.returncode = code - 128, None  # the shell init's 128+N, maybe exit(128+N)
        raw.details["signal_unverified"] = True


def _read_all(fd: int | None) -> bytes:
    if fd is None:
        return b""
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks)


def _disk_full(job_dir: Path) -> bool:
    """Whether the job's file system ran out of space or inodes (only meaningful on its own tmpfs)."""
    try:
        usage = os.statvfs(job_dir)
    except OSError:
        return False
    if usage.f_blocks == 0 or usage.f_files == 0:
        return False
    return usage.f_bavail == 0 or usage.f_favail == 0


def _supervise(process: subprocess.Popen, raw: RawRun, group: RunCgroup | None, limits: Limits, started: float,
               stdin: bytes | None = None) -> None:
    """Feed stdin and read output until the main process exits or the deadline passes, then kill
    the rest. A program that never reads its stdin cannot block us: writes are non-blocking."""
    deadline = started + limits.wall_seconds
    selector = selectors.DefaultSelector()
    out_fd, err_fd = process.stdout.fileno(), process.stderr.fileno()
    buffers = {out_fd: bytearray(), err_fd: bytearray()}
    for stream in (process.stdout, process.stderr):
        os.set_blocking(stream.fileno(), False)
        selector.register(stream.fileno(), selectors.EVENT_READ)
    try:
        exit_fd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        exit_fd = None
    if exit_fd is not None:
        selector.register(exit_fd, selectors.EVENT_READ)
    feed = _StdinFeed(process, stdin, selector)
    status = None
    try:
        while status is None:
            status = _reap(process, raw, block=False)
            if status is not None:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raw.timed_out = True
                break
            for key, _ in selector.select(timeout=min(remaining, 0.02 if exit_fd is None else remaining)):
                if key.fd == exit_fd:
                    continue
                if key.fd == feed.fd:
                    feed.write()
                    continue
                if not _read_chunk(key.fd, buffers, selector, limits.max_output_bytes):
                    raw.output_overflow = True
            if raw.output_overflow:
                break
        raw.wall_seconds = time.monotonic() - started
        if status is None:  # deadline or output cap: kill the whole tree, then reap
            _kill_tree(process, group)
            status = _reap(process, raw, block=True)
        elif group is not None:
            raw.stray_processes = len(group.pids())
            if raw.stray_processes:
                group.kill()
        else:
            _kill_group(process.pid)
        feed.close()
        drain_until = time.monotonic() + DRAIN_GRACE_SECONDS
        while not raw.output_overflow and len(selector.get_map()) > (1 if exit_fd is not None else 0):
            remaining = drain_until - time.monotonic()
            if remaining <= 0:
                raw.details["pipes_held_open"] = True  # an escaped child still holds them; we stop reading
                break
            for key, _ in selector.select(timeout=remaining):
                if key.fd != exit_fd and not _read_chunk(key.fd, buffers, selector, limits.max_output_bytes):
                    raw.output_overflow = True
    finally:
        feed.close()
        selector.close()
        if exit_fd is not None:
            os.close(exit_fd)
        process.stdout.close()
        process.stderr.close()
    raw.stdout, raw.stderr = bytes(buffers[out_fd]), bytes(buffers[err_fd])
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        raw.signal = -code
    else:
        raw.returncode = code


class _StdinFeed:
    """stdin through a pipe, written as the program reads it."""

    def __init__(self, process: subprocess.Popen, data: bytes | None, selector: selectors.BaseSelector) -> None:
        self.pipe = process.stdin
        self.data = memoryview(data or b"")
        self.selector = selector
        self.fd = None
        if self.pipe is None:
            return
        if not self.data:
            self.close()
            return
        self.fd = self.pipe.fileno()
        os.set_blocking(self.fd, False)
        selector.register(self.fd, selectors.EVENT_WRITE)

    def write(self) -> None:
        try:
            written = os.write(self.fd, self.data[:65536])
        except BlockingIOError:
            return
        except OSError:  # the program closed its stdin or exited: the rest is not wanted
            self.close()
            return
        self.data = self.data[written:]
        if not self.data:
            self.close()

    def close(self) -> None:
        if self.fd is not None:
            try:
                self.selector.unregister(self.fd)
            except (KeyError, ValueError):
                pass
            self.fd = None
        if self.pipe is not None:
            try:
                self.pipe.close()
            except OSError:
                pass
            self.pipe = None


def _read_chunk(fd: int, buffers: dict[int, bytearray], selector: selectors.BaseSelector, cap: int) -> bool:
    """Read what is there; False once stdout + stderr together pass the cap."""
    try:
        data = os.read(fd, 65536)
    except BlockingIOError:
        return True
    if not data:
        selector.unregister(fd)
        return True
    used = sum(len(buffer) for buffer in buffers.values())
    buffers[fd] += data[: max(0, cap - used)]
    return used + len(data) <= cap


def _reap(process: subprocess.Popen, raw: RawRun, block: bool) -> int | None:
    pid, status, usage = os.wait4(process.pid, 0 if block else os.WNOHANG)
    if pid == 0:
        return None
    process.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    raw.cpu_seconds = usage.ru_utime + usage.ru_stime
    raw.cpu_source = "rusage"
    raw.peak_memory_bytes = usage.ru_maxrss * 1024
    return status


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _kill_tree(process: subprocess.Popen, group: RunCgroup | None) -> None:
    if group is not None:
        group.kill()
    _kill_group(process.pid)
    try:  # not process.kill(): Popen would reap the child and take its rusage with it
        os.kill(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _bwrap_failure(fd: int, raw: RawRun) -> str | None:
    """bwrap writes the program's exit code on its status fd; with none (and no kill of ours to
    explain it) bubblewrap failed before the program ran, and its own message is on stderr."""
    if b'"exit-code"' in _read_all(fd) or raw.timed_out or raw.output_overflow or raw.signal is not None:
        return None
    message = raw.stderr.decode(errors="replace").strip()
    return message.splitlines()[0] if message else "bubblewrap exited before starting the program"
