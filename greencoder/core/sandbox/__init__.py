"""Sandboxed execution of untrusted Python, C++ and Java programs.

    sandbox = Sandbox()                       # probes once: cgroup, bubblewrap/unshare, uid
    result = sandbox.execute(CPP, source)     # compile + run; result.status, result.reason
    with sandbox.prepare(PYTHON, files, "harness.py") as job:
        job.build(); job.run(["1000"])        # compile once, run many times (measurement)

Every result records the isolation it ran under (`result.isolation.label`).
"""

from .classify import printable
from .executor import Job, Sandbox
from .isolation import SandboxPolicy, SandboxUnavailable, allow_weak_sandbox
from .limits import DEFAULT_COMPILE_LIMITS, DEFAULT_RUN_LIMITS, Limits
from .results import ExecutionResult, Isolation, Status
from .toolchains import ToolchainError, Toolchains

__all__ = [
    "DEFAULT_COMPILE_LIMITS", "DEFAULT_RUN_LIMITS", "ExecutionResult", "Isolation", "Job", "Limits", "Sandbox",
    "SandboxPolicy", "SandboxUnavailable", "Status", "ToolchainError", "Toolchains", "allow_weak_sandbox", "printable",
]
