"""The host's check that a measured program left the job folder's code as it was built.

A job is built once and run a dozen times. The program runs with write access to its job folder,
so without a check one run could replace the harness script, the compiled program or a class
file, or plant a module the next run imports (a `json.py` next to a Python script), and every
later run would measure something else. After every run the host compares what it built with
what is there: a changed, removed or replaced file, or a new file or folder that a run could load
code from, refuses the measurement. Files are read without following links (a planted symlink or
FIFO is "changed", never read through).
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from greencoder.core.errors import GreencoderError

# Names a later run could load code from if a run planted them next to the program.
_LOADABLE = (".py", ".pyc", ".pth", ".class", ".jar", ".so", ".dll", ".dylib")


class JobTampered(GreencoderError):
    """The measured program changed the files it was built from."""


def _digest(path: Path) -> str | None:
    """SHA-256 of a regular file, or None for anything else (link, FIFO, folder, unreadable)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        digest = hashlib.sha256()
        while chunk := os.read(descriptor, 1 << 20):
            digest.update(chunk)
        return digest.hexdigest()
    except OSError:
        return None
    finally:
        os.close(descriptor)


@dataclass(frozen=True)
class JobGuard:
    directory: Path
    name: str
    built: dict[str, str | None]  # top-level entry -> digest (None: a folder or other non-file entry)

    @classmethod
    def after_build(cls, directory: Path, name: str) -> JobGuard:
        return cls(Path(directory), name, {entry: _digest(Path(directory) / entry) for entry in _entries(directory)})

    def check(self) -> None:
        """Raise JobTampered naming the first file a run changed or planted."""
        for entry, digest in self.built.items():
            if digest is not None and _digest(self.directory / entry) != digest:
                raise JobTampered(f"{self.name} changed greencoder's built file {entry!r} during a run: refused")
        for entry in _entries(self.directory):
            if entry in self.built:
                continue
            try:
                mode = os.lstat(self.directory / entry).st_mode
            except OSError:
                continue
            if not stat.S_ISREG(mode) or entry.endswith(_LOADABLE):
                raise JobTampered(f"{self.name} planted {entry!r} in its job folder during a run (a later run could "
                                  "load code from it): refused")


def protect(directory: Path, names: tuple[str, ...]) -> None:
    """Make greencoder's own files read-only to the program: mode 0444, and owned by root where
    greencoder is root (the program runs as another uid then). The folder stays the program's, so
    it could still replace a file: JobGuard.check is what catches that."""
    for name in names:
        path = Path(directory) / name
        try:
            if os.geteuid() == 0:
                os.chown(path, 0, 0, follow_symlinks=False)
            os.chmod(path, 0o444, follow_symlinks=False)
        except (OSError, NotImplementedError):
            continue


def _entries(directory: Path) -> list[str]:
    try:
        return sorted(os.listdir(directory))
    except OSError:
        return []
