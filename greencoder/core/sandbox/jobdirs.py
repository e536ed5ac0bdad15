"""Job folders: where they live, how much they may hold, and how they go away.

- The jobs folder must be a real directory greencoder's uid owns: a planted symlink or someone
  else's folder in a world-writable /tmp is refused before anything is chmod-ed or written.
- Each job folder carries its owner's pid and start time in its name, so a later start can tell the
  folders of dead runs (a SIGKILLed greencoder) from those of live ones and reap them.
- Where we may mount (root), a job folder is its own tmpfs with a size and an inode limit: a
  program that fills it gets ENOSPC, the host disk is untouched, and removal is one unmount.
- Trees are removed iteratively, one descriptor at a time, never following symlinks: a
  3,000-level directory chain has no recursion limit to hit.
"""

from __future__ import annotations

import atexit
import ctypes
import errno
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxUnavailable

MS_NOSUID, MS_NODEV = 2, 4
MNT_DETACH = 2
_OWNED = re.compile(r"^(?:job|probe|pid1|etc|build)-(\d+)-(\d+)-")
_libc = ctypes.CDLL(None, use_errno=True)


def ensure_jobs_dir(path: Path) -> Path:
    """Create or check the folder that holds job folders: a real directory owned by us, mode 0711
    (the sandbox uid must traverse it, not list it). Refuses a symlink, a non-directory, or a
    folder owned by another uid (planted in a shared /tmp) with one line naming the problem."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, 0o711)
    except FileExistsError:
        pass
    except OSError as exc:
        raise SandboxUnavailable(f"cannot create the jobs folder {path}: {exc.strerror}") from exc
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        what = "is a symlink" if os.path.islink(path) else "is not a directory" if exc.errno in (
            errno.ENOTDIR, errno.ELOOP) else exc.strerror
        raise SandboxUnavailable(f"refusing the jobs folder {path}: it {what}; remove it or choose another") from exc
    try:
        owner = os.fstat(fd).st_uid
        if owner != os.geteuid():
            raise SandboxUnavailable(f"refusing the jobs folder {path}: it belongs to uid {owner}, not to us "
                                     f"(uid {os.geteuid()}); remove it or choose another")
        os.fchmod(fd, 0o711)
    finally:
        os.close(fd)
    return path


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot): with the pid, a name for one process
    that a recycled pid cannot take over."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return fields[19].decode()
    except (OSError, IndexError):
        return None


def owner_tag(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}-{process_start_time(pid) or 0}"


def owner_alive(pid: int, start: str) -> bool:
    return process_start_time(pid) == start or (start == "0" and os.path.exists(f"/proc/{pid}"))


def make_owned_dir(jobs: Path, kind: str) -> Path:
    """A fresh folder in `jobs` named for its kind and its owner process."""
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{owner_tag()}-", dir=jobs))


def remove_at_exit(path: Path) -> None:
    """Remove `path` when this process exits (not when a forked child of it does)."""
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:
            remove_tree(path)

    atexit.register(remove)


def mount_tmpfs(path: Path, size_bytes: int, inodes: int, uid: int, gid: int) -> bool:
    """Mount a size- and inode-limited tmpfs on `path`, owned by the sandbox uid; False where we
    may not mount (not root, or no CAP_SYS_ADMIN)."""
    if sys.platform != "linux":
        return False
    options = f"size={size_bytes},nr_inodes={inodes},mode=0700,uid={uid},gid={gid}".encode()
    return _libc.mount(b"tmpfs", os.fsencode(path), b"tmpfs", MS_NOSUID | MS_NODEV, options) == 0


def unmount(path: Path) -> bool:
    if sys.platform != "linux":
        return False
    return _libc.umount2(os.fsencode(path), MNT_DETACH) == 0


@dataclass(frozen=True)
class JobSpace:
    """A job's folders on the host: `work` is the program's folder; `scratch`, when not None, is
    the size-limited folder the sandbox shows at /tmp and /dev/shm (same tmpfs as `work`)."""

    root: Path
    work: Path
    scratch: Path | None
    mounted: bool

    def remove(self) -> None:
        if self.mounted:
            unmount(self.root)
        remove_tree(self.root)


def create_job_space(jobs: Path, size_bytes: int, inodes: int, uid: int | None, gid: int | None) -> JobSpace:
    """A job folder: a bounded tmpfs where we may mount one, else a plain folder (bounded only by
    the per-file size limit; the sandbox then uses bubblewrap's sized tmpfs for /tmp)."""
    root = make_owned_dir(jobs, "job")
    owner_uid = os.geteuid() if uid is None else uid
    owner_gid = os.getegid() if gid is None else gid
    mounted = os.geteuid() == 0 and mount_tmpfs(root, size_bytes, inodes, owner_uid, owner_gid)
    work = root / "work"
    try:
        os.mkdir(work, 0o700)
        scratch = None
        if mounted:
            scratch = root / "tmp"
            os.mkdir(scratch)
            os.chmod(scratch, 0o1777)
        if uid is not None:
            for path in (root, work):
                os.chown(path, uid, gid)
    except OSError:
        JobSpace(root, work, None, mounted).remove()
        raise
    return JobSpace(root, work, scratch, mounted)


def reap_stale(jobs: Path) -> int:
    """Remove the folders (and unmount the tmpfs) of runs whose owner process is gone; returns how
    many. Only our own real directories with an owner tag are touched."""
    reaped = 0
    try:
        info = os.lstat(jobs)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            return 0
        entries = list(os.scandir(jobs))
    except OSError:
        return 0
    for entry in entries:
        match = _OWNED.match(entry.name)
        if match is None or int(match.group(1)) == os.getpid():
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() and not os.path.ismount(entry.path):
            continue
        if owner_alive(int(match.group(1)), match.group(2)):
            continue
        path = Path(entry.path)
        try:  # another greencoder starting now may be reaping the same folder
            while os.path.ismount(path) and unmount(path):
                pass
            remove_tree(path)
        except OSError:
            continue
        reaped += 1
    return reaped


def remove_tree(path: Path) -> None:
    """Delete `path` and everything below it without recursion and without following symlinks,
    even where the program made folders unreadable or read-only. Missing is fine."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(info.st_mode):
        os.unlink(path)
        return
    parent = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        current = _open_dir(parent, path.name)
    except BaseException:
        os.close(parent)
        raise
    os.close(parent)
    names = [path.name]  # the chain of folders from `path` down to `current`
    while names:
        child = _empty_files_and_find_subdir(current)
        if child is not None:
            below = _open_dir(current, child)
            os.close(current)
            current = below
            names.append(child)
            continue
        above = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=current)
        os.close(current)
        current = above
        name = names.pop()
        try:
            os.rmdir(name, dir_fd=current)
        except FileNotFoundError:
            pass
        except OSError as exc:
            if exc.errno != errno.EBUSY:  # a mount point (e.g. left by a dead sandbox): detach it, retry
                os.close(current)
                raise
            unmount(Path(f"/proc/self/fd/{current}") / name)
            os.rmdir(name, dir_fd=current)
    os.close(current)


def _open_dir(parent_fd: int, name: str) -> int:
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except PermissionError:  # not root and the program chmod-ed it to 0: make it ours again
        os.chmod(name, stat.S_IRWXU, dir_fd=parent_fd)
        return os.open(name, flags, dir_fd=parent_fd)


def _empty_files_and_find_subdir(fd: int) -> str | None:
    """Unlink every non-directory in the folder open at `fd`; the name of one subfolder, if any."""
    made_writable = False
    with os.scandir(fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                return entry.name
            try:
                os.unlink(entry.name, dir_fd=fd)
            except FileNotFoundError:
                pass
            except PermissionError:
                if made_writable:
                    raise
                os.fchmod(fd, stat.S_IRWXU)
                made_writable = True
                os.unlink(entry.name, dir_fd=fd)
    return None
