"""Is a solution correct? Build its benchmark program and run it in the sandbox.

One sandbox per toolchain flag set (HumanEval-X C++ links OpenSSL, LeetCode C++ needs C++20), made
once and shared by the worker threads: detection probes the machine, and each run gets its own
job folder and cgroup anyway.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from greencoder.core.languages import get_language
from greencoder.core.sandbox import (
    DEFAULT_COMPILE_LIMITS,
    DEFAULT_RUN_LIMITS,
    Limits,
    Sandbox,
    SandboxPolicy,
    Status,
    Toolchains,
)
from greencoder.evaluation.benchmarks import build_program
from greencoder.evaluation.benchmarks.drivers import completed
from greencoder.evaluation.tasks import Program, Task

DEFAULT_TEST_LIMITS = replace(DEFAULT_RUN_LIMITS, wall_seconds=30.0)
"""Per test run. Most references finish in well under a second; the slowest LeetCode ones take
about 8.5 s (C++ at -O0, 3283/3490), so a generated program a few times slower than a reference is
still judged (and later measured) rather than called a timeout. Python 3283's reference needs
about 42 s and is the one documented exception (see leetcode_hard.KNOWN_REFERENCE_FAILURES)."""

INCOMPLETE = ("exited with status 0 before its test finished (no completion mark from greencoder's driver): "
              "a solution must return, not exit")


@dataclass(frozen=True)
class CheckResult:
    status: str
    """core.sandbox Status value: ok, wrong_answer, compile_error, runtime_error, timeout, ..."""
    reason: str
    stage: str
    wall_seconds: float
    isolation: str

    @property
    def passed(self) -> bool:
        return self.status == "ok"


class Checker:
    """Runs benchmark programs in sandboxes configured per program's toolchain flags."""

    def __init__(self, policy: SandboxPolicy | None = None, run_limits: Limits = DEFAULT_TEST_LIMITS,
                 compile_limits: Limits = DEFAULT_COMPILE_LIMITS, warn: Callable[[str], None] | None = None):
        self.policy = policy or SandboxPolicy()
        self.run_limits = run_limits
        self.compile_limits = compile_limits
        self.warn = warn
        self._sandboxes: dict[tuple, Sandbox] = {}
        self._lock = threading.Lock()

    def sandbox(self, cxx_flags: tuple[str, ...], cxx_link_flags: tuple[str, ...]) -> Sandbox:
        key = (cxx_flags, cxx_link_flags)
        with self._lock:
            if key not in self._sandboxes:
                toolchains = Toolchains(cxx_flags=cxx_flags, cxx_link_flags=cxx_link_flags)
                self._sandboxes[key] = Sandbox(self.policy, toolchains, self.run_limits, self.compile_limits, self.warn)
            return self._sandboxes[key]

    @property
    def isolation(self) -> str:
        return self.sandbox(("-std=c++17",), ()).isolation.label

    def run_program(self, language: str, program: Program) -> CheckResult:
        """Build and run; with a completion mark, a fresh nonce goes in on stdin and the run passes
        only if it exits 0 and prints the mark with that nonce (the test ran to its end)."""
        sandbox = self.sandbox(program.cxx_flags, program.cxx_link_flags)
        nonce = secrets.token_hex(16)
        stdin = (nonce + "\n").encode() if program.completion_mark else program.stdin
        with sandbox.prepare(get_language(language), program.files, program.entry) as job:
            built = job.build()
            result = built if not built.ok else job.run(stdin=stdin, expected_stdout=program.expected_stdout)
        status, reason = result.status.value, result.reason
        if result.ok and program.completion_mark and not completed(result.stdout, nonce):
            status, reason = Status.RUNTIME_ERROR.value, INCOMPLETE
        return CheckResult(status, reason, result.stage, round(result.wall_seconds, 4), result.isolation.label)

    def check(self, task: Task, solution: str) -> CheckResult:
        """Build `solution` into the task's test program and run it."""
        return self.run_program(task.language, build_program(task, solution))
