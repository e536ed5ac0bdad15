"""How many CPU threads torch (and BLAS under numpy) may use: a first-order speed setting.

Measured on the 2-core development VMs with benchmarks/bench_generate.py: with the other core
idle, 2 torch threads gave 1.2-1.6x the tokens/s of 1; with the other core busy (a sandboxed
program being measured, a test worker, the editor), 2 threads ran at 0.05-0.12x, because OpenMP
workers spin waiting for a core that is taken. The default therefore leaves half the CPUs free:
1 thread on a 2-core machine, up to 4 on larger ones. `--threads` / GREENCODER_THREADS override it.
"""

from __future__ import annotations

import math
import os

from greencoder.core.errors import InputError

THREADS_ENV = "GREENCODER_THREADS"
_BLAS_ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def available_cpus(cpu_max_file: str = "/sys/fs/cgroup/cpu.max") -> int:
    """CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota (containers
    often see all host CPUs but may only use a few)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cpus = os.cpu_count() or 1
    try:
        quota, period = open(cpu_max_file, encoding="ascii").read().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return cpus


def default_thread_count() -> int:
    """GREENCODER_THREADS if set, else half the available CPUs (at least 1, at most 4)."""
    configured = os.environ.get(THREADS_ENV)
    if configured:
        return parse_thread_count(configured)
    return max(1, min(4, available_cpus() // 2))


def parse_thread_count(value: str | int) -> int:
    """Validate a user-given thread count."""
    try:
        count = int(value)
    except (TypeError, ValueError):
        raise InputError(f"thread count must be a whole number, got {value!r}") from None
    if count < 1:
        raise InputError(f"thread count must be at least 1, got {count}")
    return count


def set_thread_environment(count: int) -> None:
    """Set OpenMP/BLAS thread variables. Only effective before torch or numpy is first imported,
    so the CLI calls this first thing; variables the user set themselves are left alone."""
    for name in _BLAS_ENV_VARS:
        os.environ.setdefault(name, str(count))


def configure_torch_threads(count: int) -> None:
    """Set torch's intra-op thread count (and inter-op, which torch allows only once per process)."""
    import torch

    torch.set_num_threads(count)
    try:
        torch.set_num_interop_threads(count)
    except RuntimeError:
        pass  # already set, or parallel work already ran: intra-op is the one that matters
