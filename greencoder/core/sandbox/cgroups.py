"""A cgroup per run: memory and process limits the program cannot escape, CPU time of the whole
process tree, an OOM flag, and a kill that reaches children which left the process group.

cgroup v2 is used where the `memory` and `pids` controllers are enabled for our subtree; otherwise
the v1 hierarchies (`memory`, `pids`, `cpuacct`, `freezer`) of hybrid systems. The run's cgroup is
created under the cgroup we are already in, so limits set on greencoder itself still apply.
Everything degrades to "no cgroup" (`CgroupSupport.detect()` returns None) when the hierarchy is
not writable, e.g. an unprivileged user without systemd delegation.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .jobdirs import owner_alive, owner_tag

CGROUP_ROOT = Path("/sys/fs/cgroup")
_prepared: set[tuple[str, ...]] = set()  # parent cgroups already set up by this process
V1_CONTROLLERS = ("memory", "pids", "cpuacct", "freezer")
_RUN_NAME = re.compile(r"^run-(\d+)-(\d+)-[0-9a-f]+$")


def _read(path: Path) -> str:
    return path.read_text()


def _write(path: Path, value: str) -> None:
    with open(path, "w") as handle:
        handle.write(value)


def _keyed(text: str) -> dict[str, int]:
    """Parse `key value` lines (cpu.stat, memory.events, pids.events, memory.oom_control)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            values[parts[0]] = int(parts[1])
    return values


def own_cgroups(proc_self_cgroup: str) -> dict[str, str]:
    """Map hierarchy → our path in it, from /proc/self/cgroup (`"" ` is the v2 unified one)."""
    paths: dict[str, str] = {}
    for line in proc_self_cgroup.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if not controllers:
            paths[""] = path
        for controller in controllers.split(","):
            if controller:
                paths[controller] = path
    return paths


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each pid; one that is already gone is no error."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@dataclass(frozen=True)
class CgroupSupport:
    """Where per-run cgroups go: one parent directory per hierarchy we use."""

    version: str  # "v2" or "v1"
    parents: dict[str, Path]  # v2: {"": dir}; v1: {"memory": dir, "pids": dir, ...}

    @classmethod
    def detect(cls, root: Path = CGROUP_ROOT, proc_self_cgroup: str | None = None) -> CgroupSupport | None:
        """The strongest usable layout, or None. Probes by creating (and removing) a directory."""
        if proc_self_cgroup is None:
            try:
                proc_self_cgroup = Path("/proc/self/cgroup").read_text()
            except OSError:
                return None
        mine = own_cgroups(proc_self_cgroup)
        for candidate in (cls._v2(root, mine), cls._v1(root, mine)):
            if candidate is not None and candidate._probe():
                return candidate
        return None

    @classmethod
    def _v2(cls, root: Path, mine: dict[str, str]) -> CgroupSupport | None:
        unified = root if (root / "cgroup.controllers").exists() else root / "unified"
        if "" not in mine or not (unified / "cgroup.controllers").exists():
            return None
        own = unified / mine[""].lstrip("/")
        # A v2 parent can host child cgroups with controllers only if they are in its subtree_control.
        # Our own cgroup usually holds processes (us), so children go in a `greencoder` sub-cgroup
        # whose subtree_control we enable; that requires the controllers to be available to us.
        try:
            available = _read(own / "cgroup.controllers").split()
        except OSError:
            return None
        if not {"memory", "pids"} <= set(available):
            return None
        return cls("v2", {"": own / "greencoder"})

    @classmethod
    def _v1(cls, root: Path, mine: dict[str, str]) -> CgroupSupport | None:
        parents = {}
        for controller in V1_CONTROLLERS:
            hierarchy = root / controller
            if controller not in mine or not (hierarchy / "cgroup.procs").exists():
                continue
            parents[controller] = hierarchy / mine[controller].lstrip("/") / "greencoder"
        if not {"memory", "pids"} <= set(parents):
            return None
        return cls("v1", parents)

    def _probe(self) -> bool:
        try:
            group = self.create(memory_bytes=64 * 1024 * 1024, max_processes=8)
        except OSError:
            return False
        group.remove()
        return True

    def _prepare_parents(self) -> None:
        """Create the parent cgroups (and, on v2, enable the controllers for their children)."""
        for parent in self.parents.values():
            parent.mkdir(exist_ok=True)
        if self.version == "v2":
            parent = self.parents[""]
            try:
                _write(parent / "cgroup.subtree_control", "+memory +pids +cpu")
            except OSError:
                _write(parent / "cgroup.subtree_control", "+memory +pids")

    def create(self, memory_bytes: int, max_processes: int) -> RunCgroup:
        """A fresh cgroup for one run. The parents are set up once per process (reused between
        runs); should one vanish, it is set up again."""
        key = tuple(sorted(str(path) for path in self.parents.values()))
        if key not in _prepared:
            self._prepare_parents()
            _prepared.add(key)
        try:
            return self._create(memory_bytes, max_processes)
        except FileNotFoundError:
            self._prepare_parents()
            return self._create(memory_bytes, max_processes)

    def _create(self, memory_bytes: int, max_processes: int) -> RunCgroup:
        name = f"run-{owner_tag()}-{uuid.uuid4().hex[:12]}"  # owner pid and start time: reaped once it is gone
        if self.version == "v2":
            path = self.parents[""] / name
            path.mkdir()
            group = RunCgroup("v2", {"": path})
            try:
                _write(path / "memory.max", str(memory_bytes))
                if (path / "memory.swap.max").exists():
                    _write(path / "memory.swap.max", "0")
                _write(path / "pids.max", str(max_processes))
            except OSError:
                group.remove()
                raise
            return group
        paths = {}
        group = RunCgroup("v1", paths)
        try:
            for controller, parent in self.parents.items():
                (parent / name).mkdir()
                paths[controller] = parent / name
        except OSError:
            group.remove()
            raise
        try:
            memory = paths["memory"]
            _write(memory / "memory.limit_in_bytes", str(memory_bytes))
            if (memory / "memory.memsw.limit_in_bytes").exists():
                try:  # no swap either, where swap accounting is on
                    _write(memory / "memory.memsw.limit_in_bytes", str(memory_bytes))
                except OSError:
                    pass
            _write(paths["pids"] / "pids.max", str(max_processes))
        except OSError:
            group.remove()
            raise
        return group


    def reap_stale(self) -> int:
        """Empty and remove the run cgroups of greencoder processes that are gone (a SIGKILLed run
        leaves its cgroup, and whatever escaped into it, behind); returns how many."""
        names: set[str] = set()
        for parent in self.parents.values():
            try:
                names.update(entry.name for entry in os.scandir(parent) if _RUN_NAME.match(entry.name))
            except OSError:
                continue
        reaped = 0
        for name in sorted(names):
            pid, start = _RUN_NAME.match(name).groups()
            if int(pid) == os.getpid() or owner_alive(int(pid), start):
                continue
            group = RunCgroup(self.version, {key: parent / name for key, parent in self.parents.items()
                                             if (parent / name).is_dir()})
            try:  # another greencoder starting now may be reaping the same cgroup
                group.kill()
                group.remove()
            except OSError:
                continue
            reaped += 1
        return reaped


@dataclass
class RunCgroup:
    version: str
    paths: dict[str, Path]

    @property
    def procs_files(self) -> list[str]:
        """Files a starting child writes "0" into to join every hierarchy before it execs."""
        return [str(path / "cgroup.procs") for path in self.paths.values()]

    def pids(self) -> list[int]:
        path = self.paths.get("") or self.paths.get("pids")
        try:
            return [int(line) for line in _read(path / "cgroup.procs").split()]
        except OSError:
            return []

    def populated(self) -> bool | None:
        """Whether any task (thread, zombie leader included) is in the cgroup; None when unknown."""
        try:
            if self.version == "v2":
                return _keyed(_read(self.paths[""] / "cgroup.events")).get("populated", 1) != 0
            return bool(_read(self.paths["pids"] / "tasks").split())
        except (OSError, KeyError):
            return None

    def cpu_seconds(self) -> float | None:
        try:
            if self.version == "v2":
                return _keyed(_read(self.paths[""] / "cpu.stat"))["usage_usec"] / 1e6
            if "cpuacct" in self.paths:
                return int(_read(self.paths["cpuacct"] / "cpuacct.usage")) / 1e9
        except (OSError, KeyError, ValueError):
            return None
        return None

    def oom_killed(self) -> bool:
        try:
            if self.version == "v2":
                return _keyed(_read(self.paths[""] / "memory.events")).get("oom_kill", 0) > 0
            control = _keyed(_read(self.paths["memory"] / "memory.oom_control"))
            if "oom_kill" in control:
                return control["oom_kill"] > 0
            return int(_read(self.paths["memory"] / "memory.failcnt")) > 0
        except (OSError, ValueError):
            return False

    def hit_process_limit(self) -> bool:
        path = self.paths.get("") or self.paths.get("pids")
        try:
            return _keyed(_read(path / "pids.events")).get("max", 0) > 0
        except OSError:
            return False

    def peak_memory_bytes(self) -> int | None:
        try:
            if self.version == "v2":
                peak = self.paths[""] / "memory.peak"
                return int(_read(peak)) if peak.exists() else None
            return int(_read(self.paths["memory"] / "memory.max_usage_in_bytes"))
        except (OSError, ValueError):
            return None

    def kill(self, timeout: float = 5.0) -> int:
        """SIGKILL everything in the cgroup, forks in flight included; returns how many were alive.
        A cgroup without a task stays so (only we put tasks in), so there is nothing to do then."""
        if self.populated() is False:
            return 0
        alive = len(self.pids())
        if self.version == "v2" and (self.paths[""] / "cgroup.kill").exists():
            _write(self.paths[""] / "cgroup.kill", "1")
        else:
            self._kill_by_listing(timeout)
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.005)
        return alive

    def _kill_by_listing(self, timeout: float) -> None:
        """v1 has no cgroup.kill: freeze (so nothing forks while we kill), kill each, thaw."""
        freezer = self.paths.get("freezer")
        frozen = False
        if freezer is not None:
            try:
                _write(freezer / "freezer.state", "FROZEN")
                frozen = True
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pids = self.pids()
            if not pids:
                break
            kill_pids(pids)
            if frozen:
                _write(freezer / "freezer.state", "THAWED")  # killed tasks die once thawed
                frozen = False
            time.sleep(0.002)
        if frozen:
            _write(freezer / "freezer.state", "THAWED")

    def remove(self) -> None:
        """rmdir every hierarchy's directory; retries while the last tasks are being reaped."""
        for path in self.paths.values():
            for _ in range(200):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        break
                    time.sleep(0.005)
