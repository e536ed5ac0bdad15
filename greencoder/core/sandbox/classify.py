"""Turn the facts of a run into one status and a short reason a person can act on.

Order matters: the sandbox's own failure says nothing about the program; limits we enforced
(output, deadline, memory) explain a kill better than the signal that delivered it; then signals;
then the exit status with the program's own last words.
"""

from __future__ import annotations

import re
import signal
import unicodedata

from .limits import Limits
from .process import RawRun
from .results import Status

MIB = 1024 * 1024
_ASSERTION = re.compile(r"AssertionError|Assertion `.*' failed|Assertion failed|java\.lang\.AssertionError")
_MEMORY = re.compile(r"\bMemoryError\b|std::bad_alloc|java\.lang\.OutOfMemoryError|Cannot allocate memory|out of memory")
_FILE_TOO_LARGE = re.compile(r"File too large|\[Errno 27\]")
_ERROR_LINE = re.compile(r"(Error|Exception|error:|terminate called|what\(\)|Assertion|Traceback)")


_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[PX^_][^\x1b]*(?:\x1b\\)?|.)?")


def printable(text: str) -> str:
    """`text` safe to print on a terminal: escape sequences removed, other control and format
    characters (bidi overrides included) dropped, tabs as spaces. Program output is untrusted."""
    text = _ESCAPE.sub("", text).replace("\t", " ")
    return "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf", "Zl", "Zp", "Co", "Cs")
                   or ch == "\n")


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _mib(value: int) -> str:
    return f"{value / MIB:g} MiB"


def key_line(stderr: str, limit: int = 200) -> str:
    """The line of an error report that names the error: a Python traceback's last line, Java's
    'Exception in thread', a compiler's first 'error:'."""
    raw_lines = [line for line in stderr.strip().splitlines() if line.strip()]
    lines = [line.strip() for line in raw_lines]
    if not lines:
        return ""
    for raw_line, line in zip(raw_lines, lines, strict=True):
        if raw_line[0].isspace():  # quoted source: a traceback's `raise ValueError("error: ...")`
            continue
        if "error:" in line or line.startswith("Exception in thread") or "Assertion" in line:
            return line[:limit]
    for line in reversed(lines):
        if _ERROR_LINE.search(line) and not line.startswith("Traceback"):
            return line[:limit]
    return lines[-1][:limit]


def classify(raw: RawRun, stage: str, limits: Limits,
             expected_stdout: str | None = None) -> tuple[Status, str]:
    stderr = raw.stderr.decode(errors="replace")
    status, reason = _classify(raw, stage, stderr, limits, expected_stdout)
    reason = " ".join(printable(reason).split("\n")).strip()
    if stage == "compile" and status not in (Status.OK, Status.SANDBOX_ERROR):
        return Status.COMPILE_ERROR, (reason if status is Status.RUNTIME_ERROR else f"compiler: {reason}")
    return status, reason


def _classify(raw: RawRun, stage: str, stderr: str, limits: Limits, expected_stdout: str | None) -> tuple[Status, str]:
    if raw.sandbox_failure:
        return Status.SANDBOX_ERROR, raw.sandbox_failure
    if raw.output_overflow:
        return Status.OUTPUT_LIMIT, f"printed more than {_mib(limits.max_output_bytes)} of output"
    if raw.timed_out:
        return Status.TIMEOUT, f"still running after the {limits.wall_seconds:g} s wall-clock limit"
    if raw.oom_killed:
        return Status.MEMORY_LIMIT, f"exceeded the {_mib(limits.memory_bytes)} memory limit"
    if raw.disk_full:
        return Status.OUTPUT_LIMIT, (f"filled its {_mib(limits.max_disk_bytes)}, {limits.max_inodes}-file job folder "
                                     "(/tmp and /dev/shm included)")
    if "init_killed_by" in raw.details:
        return Status.KILLED, f"the sandbox's init was killed by {signal_name(raw.details['init_killed_by'])}"
    if raw.signal is not None:
        name = signal_name(raw.signal)
        if raw.signal == signal.SIGXCPU or (raw.signal == signal.SIGKILL and _used_all_cpu(raw, limits)):
            return Status.TIMEOUT, f"used its {limits.effective_cpu_seconds} s of CPU time"
        if raw.signal == signal.SIGXFSZ:
            return Status.OUTPUT_LIMIT, f"wrote a file larger than {_mib(limits.max_file_bytes)}"
        if _MEMORY.search(stderr):
            return Status.MEMORY_LIMIT, key_line(stderr) or f"out of memory ({name})"
        if _ASSERTION.search(stderr):
            return Status.WRONG_ANSWER, key_line(stderr)
        if raw.signal == signal.SIGKILL:
            return Status.KILLED, "killed by SIGKILL" + (" after reaching the process limit" if raw.hit_process_limit else "")
        detail = key_line(stderr)
        return Status.RUNTIME_ERROR, f"killed by {name}" + (f": {detail}" if detail else "")
    if raw.returncode:
        detail = key_line(stderr) or f"exit status {raw.returncode}"
        if _MEMORY.search(stderr):
            return Status.MEMORY_LIMIT, detail
        if _FILE_TOO_LARGE.search(stderr):
            return Status.OUTPUT_LIMIT, f"wrote a file larger than {_mib(limits.max_file_bytes)}"
        if stage == "run" and _ASSERTION.search(stderr):
            return Status.WRONG_ANSWER, detail
        if raw.hit_process_limit:
            detail += f" (hit the {limits.max_processes}-process limit)"
        return Status.RUNTIME_ERROR, detail
    if expected_stdout is not None:
        actual = raw.stdout.decode(errors="replace")
        if actual.rstrip() != expected_stdout.rstrip():
            return Status.WRONG_ANSWER, "output differs from the expected output"
    return Status.OK, "ok"


def _used_all_cpu(raw: RawRun, limits: Limits) -> bool:
    return raw.cpu_seconds is not None and raw.cpu_seconds >= limits.effective_cpu_seconds - 0.05
