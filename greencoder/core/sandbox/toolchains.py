"""How each language is compiled and run: the paper's commands, configurable.

Python runs with `python3`; C++ compiles with `g++ -std=c++17 -O0` (the paper's flags); Java with
`javac`, then `java -ea -cp .`. Tools are resolved to absolute, symlink-free paths before the
sandbox starts: a `python3` inside a virtual environment in the (hidden) project folder would
otherwise vanish inside the sandbox, and the real interpreter gives the program the standard
library only, as the benchmarks expect.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass, field

from greencoder.core.errors import GreencoderError
from greencoder.core.languages import CPP, JAVA, PYTHON, Language
from greencoder.core.source.programs import java_main_class, java_public_class

from .limits import Limits


class ToolchainError(GreencoderError):
    """A compiler or interpreter is missing or unusable."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    address_space_limit: bool = True  # False for the JVM, which fails under RLIMIT_AS


@dataclass(frozen=True)
class Toolchains:
    python: str = "python3"
    cxx: str = "g++"
    cxx_flags: tuple[str, ...] = ("-std=c++17", "-O0")
    cxx_link_flags: tuple[str, ...] = ()
    javac: str = "javac"
    java: str = "java"
    java_flags: tuple[str, ...] = ("-ea",)
    javac_flags: tuple[str, ...] = ("-encoding", "UTF-8")
    extra_env: dict[str, str] = field(default_factory=dict)
    other_user: bool = False  # set by the Sandbox when programs run under another (unprivileged) uid
    cap_jvm_memory: bool = False  # set by the Sandbox without a cgroup: the JVM then runs under RLIMIT_AS

    def resolve(self, tool: str) -> str:
        found = shutil.which(tool)
        if found is None:
            raise ToolchainError(f"'{tool}' not found on PATH; install it or point greencoder at it")
        return os.path.realpath(found)

    def python_interpreter(self) -> tuple[str, str]:
        """(real interpreter binary, its installation prefix), looking through pyenv shims and
        virtual environments, which are scripts or symlinks into folders the sandbox hides."""
        return _find_python(self.python, self.other_user, os.environ.get("PATH", os.defpath))

    def exposed_paths(self, language: Language) -> list[str]:
        """Folders the sandbox must show read-only for the toolchain to work: the installation
        prefix of each tool (a pyenv Python under /root, a JDK or GCC in /opt); the sandbox's
        allow-listed view shows /usr and little else."""
        if language is PYTHON:
            return [self.python_interpreter()[1]]
        tools = [self.cxx] if language is CPP else [self.javac, self.java] if language is JAVA else []
        return sorted({os.path.dirname(os.path.dirname(self.resolve(tool))) for tool in tools})

    def java_heap_mib(self, limits: Limits) -> int:
        """-Xmx in MiB. Without a cgroup the JVM runs under RLIMIT_AS = the memory limit, and reserves
        about JVM_RESERVE_BYTES besides its heap: the heap is capped to fit, and a limit too small for
        any heap is refused rather than run unbounded."""
        heap = limits.java_heap_bytes
        if self.cap_jvm_memory:
            heap = min(heap, limits.memory_bytes - JVM_RESERVE_BYTES)
            if heap < MIN_JAVA_HEAP_BYTES:
                raise ToolchainError(
                    f"without a cgroup the JVM needs a memory limit of at least "
                    f"{(JVM_RESERVE_BYTES + MIN_JAVA_HEAP_BYTES) // MIB} MiB (its heap plus "
                    f"{JVM_RESERVE_BYTES // MIB} MiB reserved), not {limits.memory_bytes // MIB} MiB")
        return heap // MIB

    def source_file(self, language: Language, source: str) -> str:
        """File name a single-file program must have (Java: the public class's name)."""
        if language is JAVA:
            return f"{java_public_class(source) or 'Main'}.java"
        return f"main{language.extensions[0]}"

    def entry(self, language: Language, source: str) -> str:
        """What to run for a single-file program: the script, the .cpp, or the class with main()."""
        if language is JAVA:
            return java_main_class(source) or "Main"
        return self.source_file(language, source)

    def compile_commands(self, language: Language, entry: str, files: list[str], limits: Limits) -> list[Command]:
        if language is PYTHON:
            return []
        if language is CPP:
            return [Command([self.resolve(self.cxx), *self.cxx_flags, "-o", "program", entry, *self.cxx_link_flags])]
        if language is JAVA:
            heap = f"-J-Xmx{self.java_heap_mib(limits)}m"
            java_sources = sorted(name for name in files if name.endswith(".java"))
            # Serial GC and C1-only keep javac's threads and start-up small; compilation is not measured.
            jvm = [heap, "-J-XX:+UseSerialGC", "-J-XX:TieredStopAtLevel=1", "-J-XX:-UsePerfData"]
            if self.cap_jvm_memory:
                jvm += [f"-J{flag}" for flag in JVM_MEMORY_CAPS]
            return [Command([self.resolve(self.javac), *jvm, *self.javac_flags, "-d", ".", *java_sources],
                            address_space_limit=self.cap_jvm_memory)]
        raise ToolchainError(f"no toolchain for {language.name}")

    def run_command(self, language: Language, entry: str, args: list[str], limits: Limits) -> Command:
        if language is PYTHON:
            # -E -s: ignore PYTHON* variables and user site-packages; -B: no .pyc files in the job folder.
            return Command([self.python_interpreter()[0], "-E", "-s", "-B", entry, *args])
        if language is CPP:
            return Command(["./program", *args])
        if language is JAVA:
            heap = f"-Xmx{self.java_heap_mib(limits)}m"
            caps = list(JVM_MEMORY_CAPS) if self.cap_jvm_memory else []
            return Command([self.resolve(self.java), heap, *caps, "-XX:-UsePerfData", *self.java_flags, "-cp", ".", entry,
                            *args], address_space_limit=self.cap_jvm_memory)
        raise ToolchainError(f"no toolchain for {language.name}")


# Without a cgroup nothing but RLIMIT_AS bounds the JVM's memory (heap, metaspace, code cache,
# direct buffers, thread stacks, malloc arenas). These shrink its up-front reservations so that it
# starts under an address-space limit the size of the memory limit, which then holds it.
JVM_MEMORY_CAPS = ("-XX:ReservedCodeCacheSize=32m", "-XX:CompressedClassSpaceSize=64m", "-XX:MaxMetaspaceSize=128m",
                   "-XX:MaxDirectMemorySize=64m", "-Xss1m", "-XX:+UseSerialGC")
MIB = 1024 * 1024
JVM_RESERVE_BYTES = 512 * MIB  # address space the capped JVM reserves besides its heap (measured: 384 fails)
MIN_JAVA_HEAP_BYTES = 32 * MIB


@functools.lru_cache(maxsize=16)
def _find_python(python: str, other_user: bool, search_path: str) -> tuple[str, str]:
    """The first `python` on PATH the sandbox can run (a pyenv under /root is not, for uid nobody)."""
    if os.sep in python:
        return _python_installation(os.path.realpath(python), other_user)
    reasons = []
    for directory in search_path.split(os.pathsep):
        candidate = os.path.join(directory or ".", python)
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        try:
            return _python_installation(candidate, other_user)
        except ToolchainError as exc:
            reasons.append(str(exc))
    raise ToolchainError("; ".join(reasons) or f"'{python}' not found on PATH")


def world_accessible(path: str) -> bool:
    """Whether another uid can reach and run `path` (every parent searchable, the file executable)."""
    current = os.path.realpath(path)
    try:
        if not os.stat(current).st_mode & 0o001:
            return False
        while current != os.path.dirname(current):
            current = os.path.dirname(current)
            if not os.stat(current).st_mode & 0o001:
                return False
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=16)
def _python_installation(path: str, other_user: bool) -> tuple[str, str]:
    code = "import os, sys; print(os.path.realpath(getattr(sys, '_base_executable', sys.executable))); print(sys.base_prefix)"
    try:
        completed = subprocess.run([path, "-E", "-s", "-c", code], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"cannot run the Python interpreter {path}: {exc}") from exc
    lines = completed.stdout.split("\n")
    if completed.returncode != 0 or len(lines) < 2 or not lines[0]:
        raise ToolchainError(f"cannot run the Python interpreter {path}: {completed.stderr.strip()[:200]}")
    executable, prefix = lines[0], os.path.realpath(lines[1])
    if other_user and not world_accessible(executable):
        raise ToolchainError(f"the Python at {executable} is not accessible to the sandbox's unprivileged uid; "
                             "install a system python3 or choose another interpreter")
    return executable, prefix
