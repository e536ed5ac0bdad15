"""What a sandboxed run reports: a status from a fixed list, a short human reason, and how it was isolated.

Evaluation counts statuses (pass@1 needs `ok` vs everything else; the paper's tables also break
failures down), the editor shows the reason, and every result names its isolation so a number
obtained under a weaker sandbox is never mistaken for one obtained under the strongest.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field


class Status(str, enum.Enum):
    OK = "ok"
    WRONG_ANSWER = "wrong_answer"  # the program ran and a test/assertion or the expected output failed
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"  # wall-clock deadline or CPU-time limit
    MEMORY_LIMIT = "memory_limit"
    OUTPUT_LIMIT = "output_limit"  # too much stdout/stderr, or a file over the size limit
    KILLED = "killed"  # killed by a signal we did not send for a known reason
    SANDBOX_ERROR = "sandbox_error"  # the sandbox itself failed; says nothing about the program


@dataclass(frozen=True)
class Isolation:
    """The layers a run actually had. `label` is what results and tests print."""

    cgroup: str | None = None  # "v2", "v1" or None
    namespaces: str | None = None  # "bubblewrap", "unshare", "sandbox-exec" or None
    uid: int | None = None  # the unprivileged uid the program ran as, when we switched to one
    rlimits: bool = False
    new_session: bool = False
    network_isolated: bool = False
    filesystem_isolated: bool = False  # an allow-listed read-only view (bubblewrap) or a write-denying profile
    unsafe: bool = False  # the user opted in to running without a sandbox
    gaps: str | None = None  # what a weak level (opted in) leaves open, said in the label

    @property
    def label(self) -> str:
        if self.unsafe and not (self.namespaces or self.uid is not None):
            return "NONE (unsafe, opted in)"
        parts = []
        if self.cgroup:
            parts.append(f"cgroup-{self.cgroup}")
        if self.namespaces:
            parts.append(self.namespaces)
        if self.uid is not None:
            parts.append(f"uid {self.uid}")
        if self.rlimits:
            parts.append("rlimits")
        if self.new_session:
            parts.append("new session")
        label = " + ".join(parts) or "none"
        return f"{label} (WEAK: {self.gaps})" if self.gaps else label

    def to_dict(self) -> dict:
        return {**asdict(self), "label": self.label}


@dataclass(frozen=True)
class ExecutionResult:
    """One compile or run step. `cpu_seconds` is the whole process tree's CPU time, from the
    cgroup when there is one (`cpu_source="cgroup"`), else from rusage of the reaped tree."""

    status: Status
    reason: str
    stage: str  # "compile" or "run"
    isolation: Isolation
    exit_code: int | None = None
    signal: int | None = None
    stdout: str = ""
    stderr: str = ""
    wall_seconds: float = 0.0
    cpu_seconds: float | None = None
    cpu_source: str | None = None
    peak_memory_bytes: int | None = None
    stray_processes_killed: int = 0
    details: dict = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    def to_dict(self) -> dict:
        data = asdict(self)
        data["status"] = self.status.value
        data["isolation"] = self.isolation.to_dict()
        return data
