"""The executor: write a program into a fresh job folder, compile it and run it in the sandbox.

`Sandbox.execute` is the one-shot form evaluation uses (program + tests in one source). `prepare`
returns a `Job` that compiles once and runs many times, which the measurement protocol needs
(calibration plus ten measured runs of the same binary). Compilation happens inside the same
sandbox as the run: compilers read untrusted input too (`#include "/dev/zero"`, template bombs).
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from greencoder.core.errors import InputError
from greencoder.core.languages import Language

from .cgroups import CgroupSupport
from .classify import classify
from .isolation import Plan, SandboxPolicy, plan_isolation
from .jobdirs import create_job_space, ensure_jobs_dir, reap_stale
from .limits import DEFAULT_COMPILE_LIMITS, DEFAULT_RUN_LIMITS, Limits
from .process import run_isolated
from .results import ExecutionResult, Isolation, Status
from .toolchains import ToolchainError, Toolchains

SAFE_PATH = "/usr/local/bin:/usr/bin:/bin"


@functools.lru_cache(maxsize=1)
def detect_cgroups() -> CgroupSupport | None:
    """Probed once per process: it creates and removes a cgroup."""
    return CgroupSupport.detect()


class Sandbox:
    """Runs untrusted programs. Construct once and reuse: detection probes the machine."""

    def __init__(self, policy: SandboxPolicy | None = None, toolchains: Toolchains | None = None,
                 run_limits: Limits = DEFAULT_RUN_LIMITS, compile_limits: Limits = DEFAULT_COMPILE_LIMITS,
                 warn=None) -> None:
        self.policy = policy or SandboxPolicy()
        self.run_limits = run_limits
        self.compile_limits = compile_limits
        self.cgroups = detect_cgroups() if self.policy.use_cgroup else None
        self.plan: Plan = plan_isolation(self.policy, self.cgroups.version if self.cgroups else None)
        self.toolchains = replace(toolchains or Toolchains(), other_user=self.plan.switch_uid is not None,
                                  cap_jvm_memory=self.cgroups is None)
        _reap_once(str(self.policy.resolved_jobs_dir()), self.cgroups)
        if self.plan.isolation.unsafe:
            (warn or _shout)("RUNNING UNTRUSTED CODE WITHOUT A SANDBOX (--unsafe-no-sandbox): it can read and "
                             "write your files and use the network. Rejected layers: "
                             + ("; ".join(self.plan.rejected) or "none"))
        elif self.plan.isolation.gaps:
            (warn or _shout)(f"WEAK SANDBOX ({self.plan.isolation.label}): opted in; rejected layers: "
                             + ("; ".join(self.plan.rejected) or "none"))

    @property
    def isolation(self) -> Isolation:
        return self.plan.isolation

    def prepare(self, language: Language, files: Mapping[str, str], entry: str, read_only: Collection[str] = ()) -> Job:
        """A job folder holding `files`; those named in `read_only` (a measurement harness) cannot be
        changed, replaced or removed by the programs that run there."""
        return Job(self, language, files, entry, read_only)

    def execute(self, language: Language, source: str, *, stdin: bytes | None = None, args: Sequence[str] = (),
                limits: Limits | None = None, expected_stdout: str | None = None) -> ExecutionResult:
        """Compile (if needed) and run a single-file program; the compile result when it fails."""
        files = {self.toolchains.source_file(language, source): source}
        with self.prepare(language, files, self.toolchains.entry(language, source)) as job:
            built = job.build()
            if not built.ok:
                return built
            return job.run(args=args, stdin=stdin, limits=limits, expected_stdout=expected_stdout)


class Job:
    """One job folder: files written once, built once, run any number of times, then deleted."""

    def __init__(self, sandbox: Sandbox, language: Language, files: Mapping[str, str], entry: str,
                 read_only: Collection[str] = ()) -> None:
        self.sandbox = sandbox
        self.language = language
        self.entry = entry
        for name in files:
            if "/" in name or name in ("", ".", "..") or name.startswith("."):
                raise InputError(f"job file name '{name}' must be a plain file name")
        if set(read_only) - set(files):
            raise InputError(f"read-only job files {sorted(set(read_only) - set(files))} are not among the job's files")
        limits = (sandbox.run_limits, sandbox.compile_limits)
        uid, gid = sandbox.plan.switch_uid, sandbox.plan.switch_gid
        jobs = ensure_jobs_dir(sandbox.policy.resolved_jobs_dir())
        self.space = create_job_space(jobs, max(lim.max_disk_bytes for lim in limits),
                                      max(lim.max_inodes for lim in limits), uid, gid)
        self.directory = self.space.work
        self.files = list(files)
        self.read_only = [name for name in files if name in set(read_only)]
        try:
            for name, text in files.items():
                if name in self.read_only:  # ours, in a sticky folder: readable, not writable or replaceable
                    _write_new(self.directory / name, text.encode(), None, None, 0o644)
                else:
                    _write_new(self.directory / name, text.encode(), uid, gid)
            if self.read_only and uid is not None:
                os.chown(self.directory, os.geteuid(), os.getegid())
                os.chmod(self.directory, 0o1777)
        except BaseException:
            self.space.remove()
            raise
        self._built: ExecutionResult | None = None
        self._exposed: list[str] | None = None  # the toolchain folders the sandbox shows (exposed_paths)

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self.space.remove()

    def environment(self) -> dict[str, str]:
        job = str(self.directory)
        env = {"PATH": SAFE_PATH, "HOME": job, "TMPDIR": job, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        if self.sandbox.toolchains.cap_jvm_memory:
            env["MALLOC_ARENA_MAX"] = "2"  # each glibc arena reserves 64 MiB of address space per thread
        env.update(self.sandbox.toolchains.extra_env)
        return env

    def build(self, limits: Limits | None = None) -> ExecutionResult:
        """Compile inside the sandbox; ok at once for interpreted languages."""
        limits = limits or self.sandbox.compile_limits
        toolchains = self.sandbox.toolchains
        try:
            commands = toolchains.compile_commands(self.language, self.entry, self.files, limits)
        except ToolchainError as exc:  # a missing compiler is the machine's problem, not the program's
            return ExecutionResult(Status.SANDBOX_ERROR, str(exc), "compile", self.sandbox.isolation)
        result = ExecutionResult(Status.OK, "nothing to compile", "compile", self.sandbox.isolation)
        for command in commands:
            result = self._run(command.argv, "compile", limits, command.address_space_limit, None, None)
            if not result.ok:
                break
        self._built = result
        return result

    def run(self, args: Sequence[str] = (), stdin: bytes | None = None, limits: Limits | None = None,
            expected_stdout: str | None = None) -> ExecutionResult:
        if self._built is None:
            built = self.build()
            if not built.ok:
                return built
        elif not self._built.ok:
            return self._built
        limits = limits or self.sandbox.run_limits
        try:
            command = self.sandbox.toolchains.run_command(self.language, self.entry, list(args), limits)
        except ToolchainError as exc:
            return ExecutionResult(Status.SANDBOX_ERROR, str(exc), "run", self.sandbox.isolation)
        return self._run(command.argv, "run", limits, command.address_space_limit, stdin, expected_stdout)

    def _run(self, argv: list[str], stage: str, limits: Limits, address_space: bool, stdin: bytes | None,
             expected_stdout: str | None) -> ExecutionResult:
        sandbox = self.sandbox
        if self._exposed is None:  # resolved once per job, not per run
            try:
                self._exposed = sandbox.toolchains.exposed_paths(self.language)
            except ToolchainError as exc:
                return ExecutionResult(Status.SANDBOX_ERROR, str(exc), stage, sandbox.isolation)
        exposed = self._exposed
        raw = run_isolated(sandbox.plan, sandbox.cgroups, argv, self.directory, self.environment(), limits,
                           address_space, stdin, exposed, self.space.scratch, self.read_only)
        status, reason = classify(raw, stage, limits, expected_stdout)
        return ExecutionResult(
            status=status, reason=reason, stage=stage, isolation=sandbox.isolation,
            exit_code=raw.returncode, signal=raw.signal,
            stdout=raw.stdout.decode(errors="replace"), stderr=raw.stderr.decode(errors="replace"),
            wall_seconds=raw.wall_seconds, cpu_seconds=raw.cpu_seconds, cpu_source=raw.cpu_source,
            peak_memory_bytes=raw.peak_memory_bytes, stray_processes_killed=raw.stray_processes,
            details=raw.details,
        )


def _write_new(path: Path, data: bytes, uid: int | None, gid: int | None, mode: int = 0o600) -> None:
    """Create a job file that must not exist yet (O_EXCL, no symlink followed), owned by the sandbox uid."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        os.fchmod(fd, mode)
        if uid is not None:
            os.fchown(fd, uid, gid)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


_reaped: set[tuple] = set()


def _reap_once(jobs: str, cgroups: CgroupSupport | None) -> None:
    """At the first start in this process: remove what runs of dead greencoder processes left behind
    (job folders and their tmpfs mounts, per-run cgroups and anything still in them)."""
    key = (jobs, tuple(sorted(str(path) for path in cgroups.parents.values())) if cgroups else ())
    if key in _reaped:
        return
    _reaped.add(key)
    reap_stale(Path(jobs))
    if cgroups is not None:
        cgroups.reap_stale()


def _shout(message: str) -> None:
    print(f"greencoder: WARNING: {message}", file=sys.stderr, flush=True)
