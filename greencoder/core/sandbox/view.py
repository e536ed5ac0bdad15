"""The file system a bubblewrap sandbox sees: an allow-list, not the host's `/` with holes.

Only what Python, g++ and the JDK need is shown, read-only: /usr (and the merged-/usr links /bin,
/lib, ...), a few files of /etc (the loader cache, alternatives, the JDK's configuration, TLS
certificates, passwd/group for name lookups), a fresh /proc, a minimal read-only /dev, the
resolved toolchains' own folders, and the job folder. Host unix sockets and FIFOs (in /tmp,
/var/tmp, /run, /dev/shm, a home folder) do not exist inside. Every writable place is bounded:
the job folder (a sized tmpfs where we may mount one), /tmp and /dev/shm (the job's scratch
folder, or bubblewrap's sized tmpfs).
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

SYSTEM_ROOTS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ENTRIES = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "java-*", "ssl", "ca-certificates",
    "ca-certificates.conf", "passwd", "group", "nsswitch.conf", "localtime", "timezone", "python3*",
    "gcc", "host.conf", "mime.types",
)
UNBOUNDED_TMPFS_BYTES = 64 * 1024 * 1024  # /tmp and /dev/shm when there is no job tmpfs to share


def _link_or_bind(path: str) -> list[str]:
    if os.path.islink(path):
        return ["--symlink", os.readlink(path), path]
    if os.path.exists(path):
        return ["--ro-bind", path, path]
    return []


def system_view() -> list[str]:
    """bwrap arguments for the read-only system part of the view (links kept as links)."""
    args: list[str] = []
    for root in SYSTEM_ROOTS:
        args += _link_or_bind(root)
    for pattern in ETC_ENTRIES:
        for path in sorted(glob.glob(os.path.join("/etc", pattern))):
            args += _link_or_bind(path)
    return args


def covered(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def bubblewrap_view(job_dir: Path, scratch: Path | None, exposed: list[str], hidden: list[str],
                    tmpfs_bytes: int, init: str | None) -> list[str]:
    """All the mount arguments: system, toolchains, /proc, /dev, /tmp, the job folder, the init."""
    args = system_view()
    bound = [root for root in SYSTEM_ROOTS if os.path.isdir(root) and not os.path.islink(root)]
    for path in exposed:  # toolchains outside /usr (a pyenv Python, a JDK in /opt), read-only
        if os.path.isdir(path) and not covered(path, bound):
            args += ["--ro-bind", path, path]
            bound.append(path)
    for path in hidden:  # the project or a hidden folder that happens to lie inside a shown one
        if covered(path, bound):
            args += ["--tmpfs", path, "--remount-ro", path]
    args += ["--proc", "/proc", "--dev", "/dev"]
    if scratch is not None:
        args += ["--bind", str(scratch), "/tmp", "--bind", str(scratch), "/dev/shm"]
    else:
        size = str(tmpfs_bytes)
        args += ["--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", "/dev/shm"]
    args += ["--remount-ro", "/dev"]  # bubblewrap's /dev is an unbounded tmpfs the program could fill
    job = str(job_dir)
    args += ["--bind", job, job]
    if init is not None:
        args += ["--ro-bind", init, "/.greencoder-init"]
    args += ["--remount-ro", "/"]
    return args
