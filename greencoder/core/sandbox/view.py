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

import functools
import glob
import os
import shutil
import stat
from pathlib import Path

from .jobdirs import make_owned_dir, remove_at_exit, remove_tree

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


def system_view(etc: str | None = None) -> list[str]:
    """bwrap arguments for the read-only system part of the view (links kept as links). `etc`: a
    snapshot of the allowed /etc entries (etc_snapshot), bound in one mount instead of one each.
    Worked out once per process: the system folders do not come and go between runs."""
    return list(_system_view(etc))


@functools.lru_cache(maxsize=8)
def _system_view(etc: str | None) -> tuple[str, ...]:
    return tuple(_build_system_view(etc))


def _build_system_view(etc: str | None) -> list[str]:
    args: list[str] = []
    for root in SYSTEM_ROOTS:
        args += _link_or_bind(root)
    if etc is not None:
        return args + ["--ro-bind", etc, "/etc"]
    for pattern in ETC_ENTRIES:
        for path in sorted(glob.glob(os.path.join("/etc", pattern))):
            args += _link_or_bind(path)
    return args


def _not_plain(folder: str, names: list[str]) -> list[str]:
    """copytree's ignore: sockets, FIFOs and devices are never copied (a FIFO would block the copy)."""
    skipped = []
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            skipped.append(name)
    return skipped


@functools.lru_cache(maxsize=8)
def etc_snapshot(jobs: str) -> str | None:
    """A copy of the allowed /etc entries, made once per process in a folder of `jobs` it owns:
    one bind instead of ~20 keeps bubblewrap's start-up cost down. None when it cannot be made."""
    try:
        folder = make_owned_dir(Path(jobs), "etc")
    except OSError:
        return None
    remove_at_exit(folder)  # or reaped by the next start, after a kill
    etc = folder / "etc"
    try:
        etc.mkdir()
        for pattern in ETC_ENTRIES:
            for path in sorted(glob.glob(os.path.join("/etc", pattern))):
                target = etc / os.path.basename(path)
                if os.path.islink(path):
                    os.symlink(os.readlink(path), target)
                elif os.path.isdir(path):
                    shutil.copytree(path, target, symlinks=True, ignore=_not_plain)
                elif os.path.isfile(path):
                    shutil.copy2(path, target)
        # the sandbox's own name resolves (Java's InetAddress.getLocalHost), nothing of the host's
        (etc / "hosts").write_text("127.0.0.1 localhost\n127.0.1.1 sandbox\n::1 localhost\n")
        (etc / "hostname").write_text("sandbox\n")
        os.chmod(etc / "hosts", 0o644)
        os.chmod(etc / "hostname", 0o644)
        os.chmod(folder, 0o711)
        os.chmod(etc, 0o755)
    except OSError:
        remove_tree(folder)
        return None
    return str(etc)


def covered(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def bubblewrap_view(job_dir: Path, scratch: Path | None, exposed: list[str], hidden: list[str],
                    tmpfs_bytes: int, init: str | None, etc: str | None = None,
                    read_only: list[str] = ()) -> list[str]:
    """All the mount arguments: system, toolchains, /proc, /dev, /tmp, the job folder, the init."""
    args = system_view(etc)
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
    for path in read_only:  # a mount point: neither writable nor renamable nor removable inside
        args += ["--ro-bind", path, path]
    if init is not None:
        args += ["--ro-bind", init, "/.greencoder-init"]
    args += ["--remount-ro", "/"]
    return args
