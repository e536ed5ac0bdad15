"""One benchmark task in one language, and the programs that check and measure a solution to it.

Every benchmark module (humaneval_x, leetcode_hard) turns its data files into `Task`s and knows
how to wrap a solution into
- a `Program`: files the sandbox compiles and runs; the solution passes when the run exits 0
  (and prints `expected_stdout`, where given), as the benchmark's reference harness decides, and,
  for greencoder's own drivers, prints the per-run completion mark (benchmarks/drivers.py);
- a `Workload`: the same test as a call expression over one source file, which
  greencoder.core.measurement repeats until a run lasts long enough to meter.

A solution is whole code: the signature the model continued plus its cleaned completion (plus
`completion_suffix`, e.g. the `};` that closes a LeetCode C++ class), or the reference solution
for the `canonical` pseudo-variant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from greencoder.core.prompt import problem_prompt

BENCHMARKS = ("humaneval-x", "leetcode-hard")
LANGUAGES = ("cpp", "java", "python")


@dataclass(frozen=True)
class Program:
    """What the sandbox builds and runs to check one solution."""

    files: dict[str, str]
    entry: str
    """Python: the script; C++: the file to compile; Java: the class with main (see core.sandbox)."""
    cxx_flags: tuple[str, ...] = ("-std=c++17",)
    cxx_link_flags: tuple[str, ...] = ()
    stdin: bytes | None = None
    expected_stdout: str | None = None
    """None: the exit status alone decides."""
    completion_mark: bool = False
    """The program reads a nonce from stdin and must print `GREENCODER_PASSED <nonce>` (drivers.py)."""


@dataclass(frozen=True)
class Workload:
    """The task's test as something core.measurement.measure can repeat: `call` evaluated in `source`."""

    source: str
    call: str
    cxx_flags: tuple[str, ...] = ("-std=c++17",)
    cxx_link_flags: tuple[str, ...] = ()
    driver: dict[str, str] = field(default_factory=dict)
    """Trusted test files built next to the solution; `call` then runs in the harness (core.measurement)."""
    declarations: str = ""
    """C++: the prototypes `call` needs when it runs in the harness."""


@dataclass(frozen=True)
class Task:
    benchmark: str
    language: str
    task_id: str
    """The benchmark's own id: "CPP/0", "Python/12", or a LeetCode question id such as "3003"."""
    signature: str
    """The code the model continues (kept byte for byte at the end of the prompt)."""
    entry_point: str
    """Name of the function the model writes (post-processing keeps its body and helpers)."""
    problem: str | None = None
    """A statement given before the signature (LeetCode); None where it is the signature's docstring."""
    completion_suffix: str = ""
    canonical: str | None = None
    """The reference solution as whole code, or None where the benchmark has none."""
    canonical_exception: str | None = None
    """Why the reference is known not to pass, when it is (explained next to the task id in the module)."""
    meta: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.language}/{self.task_id}"

    def prompt(self, instruction: bool = False) -> str:
        """The model input, in the foundation's format (optionally behind the efficiency instruction)."""
        return problem_prompt(self.signature, self.problem, instruction)

    def solution(self, cleaned_completion: str) -> str:
        """Whole code from a cleaned completion."""
        return self.signature + cleaned_completion + self.completion_suffix
