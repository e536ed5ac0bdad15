"""Resource limits for one sandboxed step, enforced by the strongest layer available.

The same numbers drive the cgroup (memory, pids), the rlimits inside (CPU, file size, open files,
processes, address space) and the wall-clock deadline outside, so a program hits whichever comes
first and the status says which.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
GIB = 1024 * MIB


@dataclass(frozen=True)
class Limits:
    wall_seconds: float = 10.0
    cpu_seconds: float | None = None  # None: the wall-clock limit, rounded up
    memory_bytes: int = 1 * GIB
    max_processes: int = 128  # processes + threads (the JVM starts a few dozen threads)
    max_file_bytes: int = 16 * MIB
    max_open_files: int = 256
    max_output_bytes: int = 1 * MIB  # stdout + stderr together
    java_heap_bytes: int = 512 * MIB  # -Xmx; without a cgroup the JVM's other pools are capped too
    max_disk_bytes: int = 64 * MIB  # the job folder with /tmp and /dev/shm: one bounded tmpfs
    max_inodes: int = 8192  # files and folders in that tmpfs

    def __post_init__(self) -> None:
        if self.wall_seconds <= 0:
            raise ValueError("wall_seconds must be positive")
        if self.max_disk_bytes < MIB or self.max_inodes < 64:
            raise ValueError("max_disk_bytes must be at least 1 MiB and max_inodes at least 64")
        if self.memory_bytes < 16 * MIB:
            raise ValueError("memory_bytes below 16 MiB cannot start any interpreter")

    @property
    def effective_cpu_seconds(self) -> int:
        cpu = self.cpu_seconds if self.cpu_seconds is not None else self.wall_seconds
        return max(1, int(cpu + 0.999))


DEFAULT_RUN_LIMITS = Limits()
DEFAULT_COMPILE_LIMITS = Limits(wall_seconds=60.0, memory_bytes=2 * GIB, max_file_bytes=256 * MIB,
                                max_output_bytes=256 * 1024)
