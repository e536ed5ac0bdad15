"""Sandbox holes of issue 15, each pinned at every isolation level it applies to (sandbox_levels.py):
host unix sockets and FIFOs, unbounded disk and inodes, silent downgrades, stdin through a planted
file, forged exit statuses, terminal escapes in reasons, a planted jobs folder, memory without a
cgroup. What outlives a killed greencoder is in test_sandbox_lifetime.py.
"""

from __future__ import annotations

import ast
import os
import shutil
import socket
import stat
import textwrap
from pathlib import Path

import pytest

from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Limits, Sandbox, SandboxPolicy, SandboxUnavailable, Status, Toolchains, printable
from greencoder.core.sandbox import isolation as isolation_module
from greencoder.core.sandbox.isolation import WEAK_ENV, plan_isolation

from sandbox_levels import LEVELS, make_sandbox

MIB = 1024 * 1024
needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_java = pytest.mark.skipif(shutil.which("javac") is None, reason="JDK not installed")


@pytest.fixture(scope="module", params=list(LEVELS))
def sandbox(request, tmp_path_factory):
    return make_sandbox(request.param, tmp_path_factory.mktemp("project"))


def run(sandbox, source: str, language=PYTHON, **kwargs):
    result = sandbox.execute(language, textwrap.dedent(source).lstrip("\n"), **kwargs)
    print(f"[{sandbox.isolation.label}] {language.name} {result.status.value}: {result.reason}")
    return result


def has_file_system_view(sandbox) -> bool:
    return sandbox.isolation.namespaces == "bubblewrap"


# --- host unix sockets and FIFOs -----------------------------------------------------------------

@pytest.fixture
def host_endpoints():
    """World-writable unix-socket listeners and a FIFO as other programs on the host leave them: in
    /var/tmp, /dev/shm and a service's world-writable folder under /var/lib (which no deny-list
    hides); yields (socket paths, FIFO path, listeners, FIFO read fd)."""
    tag = f"gc-trust-{os.getpid()}"
    service = Path("/var/lib") / tag
    service.mkdir(exist_ok=True)
    os.chmod(service, 0o1777)
    paths = [Path("/var/tmp") / f"{tag}.sock", Path("/dev/shm") / f"{tag}.sock", service / "listener.sock"]
    listeners = []
    for path in paths:
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        os.chmod(path, 0o777)
        listener.listen(8)
        listener.setblocking(False)
        listeners.append(listener)
    fifo = service / "pipe.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo, 0o666)
    os.chmod(fifo, 0o666)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # so a writer inside would not block
    try:
        yield paths, fifo, listeners, reader
    finally:
        os.close(reader)
        for listener in listeners:
            listener.close()
        for path in [*paths, fifo]:
            path.unlink(missing_ok=True)
        service.rmdir()


CLIENTS = {
    PYTHON.name: """
        import os, socket
        for path in {sockets!r}:
            try:
                with socket.socket(socket.AF_UNIX) as client:
                    client.connect(path)
                    client.sendall(b"PWNED")
                print("CONNECTED", path)
            except OSError as exc:
                print("no socket", path, exc.errno)
        try:
            fd = os.open({fifo!r}, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fd, b"PWNED")
            print("FIFO WRITTEN")
        except OSError as exc:
            print("no fifo", exc.errno)
    """,
    CPP.name: """
        #include <cstdio>
        #include <cstring>
        #include <fcntl.h>
        #include <sys/socket.h>
        #include <sys/un.h>
        #include <unistd.h>
        int main() {{
            const char *paths[] = {{ {sockets_c} }};
            for (const char *path : paths) {{
                int fd = socket(AF_UNIX, SOCK_STREAM, 0);
                sockaddr_un address{{}};
                address.sun_family = AF_UNIX;
                std::strncpy(address.sun_path, path, sizeof(address.sun_path) - 1);
                if (connect(fd, (sockaddr *)&address, sizeof(address)) == 0) {{
                    write(fd, "PWNED", 5);
                    std::printf("CONNECTED %s\\n", path);
                }} else std::printf("no socket %s\\n", path);
                close(fd);
            }}
            int fifo = open("{fifo}", O_WRONLY | O_NONBLOCK);
            if (fifo >= 0 && write(fifo, "PWNED", 5) == 5) std::printf("FIFO WRITTEN\\n");
            else std::printf("no fifo\\n");
        }}
    """,
    JAVA.name: """
        import java.net.*;
        import java.nio.ByteBuffer;
        import java.nio.channels.SocketChannel;
        import java.nio.file.*;
        public class Main {{
            public static void main(String[] args) {{
                String[] paths = {{ {sockets_c} }};
                for (String path : paths) {{
                    try (SocketChannel channel = SocketChannel.open(StandardProtocolFamily.UNIX)) {{
                        channel.connect(UnixDomainSocketAddress.of(path));
                        channel.write(ByteBuffer.wrap("PWNED".getBytes()));
                        System.out.println("CONNECTED " + path);
                    }} catch (Exception e) {{
                        System.out.println("no socket " + path);
                    }}
                }}
                try {{
                    Files.write(Paths.get("{fifo}"), "PWNED".getBytes(), StandardOpenOption.WRITE);
                    System.out.println("FIFO WRITTEN");
                }} catch (Exception e) {{
                    System.out.println("no fifo");
                }}
            }}
        }}
    """,
}


@pytest.mark.parametrize("language", [PYTHON, pytest.param(CPP, marks=needs_gpp), pytest.param(JAVA, marks=needs_java)],
                         ids=lambda language: language.name)
def test_host_unix_sockets_and_fifos_are_unreachable(sandbox, host_endpoints, language):
    # Without a cgroup the JVM runs under an address-space limit and needs room besides its heap.
    limits = Limits(wall_seconds=10.0, memory_bytes=768 * MIB, java_heap_bytes=128 * MIB) if language is JAVA else None
    paths, fifo, listeners, reader = host_endpoints
    source = CLIENTS[language.name].format(sockets=[str(p) for p in paths], fifo=str(fifo),
                                           sockets_c=", ".join(f'"{p}"' for p in paths))
    result = run(sandbox, source, language=language, limits=limits)
    assert result.ok, result.reason
    accepted = []
    for listener in listeners:
        try:
            accepted.append(listener.accept()[0])
        except BlockingIOError:
            pass
    for connection in accepted:
        connection.close()
    try:
        received = os.read(reader, 100)
    except BlockingIOError:
        received = b""
    if has_file_system_view(sandbox):
        assert accepted == [] and "CONNECTED" not in result.stdout, result.stdout
        assert received == b"" and "FIFO WRITTEN" not in result.stdout, result.stdout
    else:  # the weak levels cannot hide them, and their label says so
        assert "unix sockets" in sandbox.isolation.label and "WEAK" in sandbox.isolation.label


def test_the_view_is_an_allow_list(sandbox):
    if not has_file_system_view(sandbox):
        pytest.skip(f"'{sandbox.isolation.label}' has no file-system view of its own")
    result = run(sandbox, """
        import os
        print(sorted(os.listdir("/")))
        print(sorted(os.listdir("/etc")))
        for path in ["/var", "/run", "/home", "/root", "/sys", "/opt", "/etc/shadow", "/etc/fstab"]:
            print(path, os.path.exists(path))
    """)
    assert result.ok, result.reason
    top = set(ast.literal_eval(result.stdout.splitlines()[0]))
    assert top <= {"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "etc", "proc", "dev", "tmp", ".greencoder-init"}
    for path in ["/var", "/run", "/home", "/root", "/sys", "/opt", "/etc/shadow", "/etc/fstab"]:
        assert f"{path} False" in result.stdout


# --- disk and inodes ----------------------------------------------------------------------------

DISK_LIMITS = Limits(wall_seconds=10.0, memory_bytes=256 * MIB, max_disk_bytes=8 * MIB, max_inodes=2048,
                     max_file_bytes=64 * MIB, max_output_bytes=64 * 1024)


def bounded_sandbox(sandbox) -> Sandbox:
    """The same level with small disk limits (job folders take the larger of run and compile limits)."""
    return Sandbox(sandbox.policy, run_limits=DISK_LIMITS, compile_limits=DISK_LIMITS)


def job_is_bounded(sandbox) -> bool:
    return os.geteuid() == 0  # root mounts a sized tmpfs per job; others get a plain folder


@pytest.mark.parametrize("where", ["job", "tmp", "shm"])
def test_filling_the_disk_is_an_output_limit_and_the_host_is_untouched(sandbox, where):
    if not job_is_bounded(sandbox):
        pytest.skip("job folders are bounded tmpfs mounts only when greencoder may mount (root)")
    if where != "job" and not has_file_system_view(sandbox):
        pytest.skip(f"'{sandbox.isolation.label}' writes host /tmp and /dev/shm (its label says so)")
    folder = {"job": ".", "tmp": "/tmp", "shm": "/dev/shm"}[where]
    bounded = bounded_sandbox(sandbox)
    with bounded.prepare(PYTHON, {"main.py": textwrap.dedent(f"""
        import os
        written = 0
        try:
            with open(os.path.join({folder!r}, "fill.bin"), "wb") as handle:
                for _ in range(64):
                    handle.write(b"x" * 1024 * 1024)
                    handle.flush()
                    written += 1
        except OSError as exc:
            print("stopped after", written, "MiB:", exc.strerror)
    """)}, "main.py") as job:
        result = job.run()
        print(f"[{bounded.isolation.label}] {result.status.value}: {result.reason} {result.stdout}")
        assert result.status is Status.OUTPUT_LIMIT, result.reason
        assert "8 MiB" in result.reason and "job folder" in result.reason
        assert "No space left on device" in result.stdout
        usage = shutil.disk_usage(job.space.root)
        assert usage.total <= 8 * MIB


def test_creating_many_files_is_an_output_limit(sandbox):
    if not job_is_bounded(sandbox):
        pytest.skip("job folders are bounded tmpfs mounts only when greencoder may mount (root)")
    result = run(bounded_sandbox(sandbox), """
        import os
        made = 0
        try:
            for n in range(200000):
                open(f"f{n}", "w").close()
                made += 1
        except OSError as exc:
            print("stopped after", made, exc.strerror)
    """)
    assert result.status is Status.OUTPUT_LIMIT, result.reason
    assert "2048-file" in result.reason
    made = int(result.stdout.split()[2])
    assert made < 2048


def test_a_job_folder_stays_bounded_across_runs(sandbox):
    """A measurement runs the same job many times: what each run leaves adds up, within one bound."""
    if not job_is_bounded(sandbox):
        pytest.skip("job folders are bounded tmpfs mounts only when greencoder may mount (root)")
    bounded = bounded_sandbox(sandbox)
    source = "import os, uuid\nopen(uuid.uuid4().hex, 'wb').write(b'x' * 3 * 1024 * 1024)\nprint('kept')\n"
    with bounded.prepare(PYTHON, {"main.py": source}, "main.py") as job:
        statuses = [job.run().status for _ in range(4)]
    assert statuses[0] is Status.OK
    assert Status.OUTPUT_LIMIT in statuses, statuses


# --- no silent downgrade --------------------------------------------------------------------------

@pytest.fixture
def no_bubblewrap(monkeypatch, tmp_path):
    real_which = shutil.which
    monkeypatch.setattr(isolation_module.shutil, "which",
                        lambda name, *a, **k: None if name == "bwrap" else real_which(name, *a, **k))
    monkeypatch.delenv(WEAK_ENV, raising=False)
    plan_isolation.cache_clear()
    yield SandboxPolicy(use_cgroup=False, jobs_dir=str(tmp_path / "jobs"))
    plan_isolation.cache_clear()


def test_no_silent_downgrade_below_bubblewrap(no_bubblewrap):
    with pytest.raises(SandboxUnavailable) as caught:
        Sandbox(no_bubblewrap)
    message = str(caught.value)
    assert "\n" not in message and "bwrap not installed" in message and WEAK_ENV in message


@pytest.mark.parametrize("opt_in", ["policy", "environment"])
def test_weak_level_needs_an_opt_in_and_says_what_it_leaves_open(no_bubblewrap, monkeypatch, opt_in):
    if os.geteuid() != 0 and shutil.which("unshare") is None:
        pytest.skip("no weaker level here")
    policy = no_bubblewrap
    if opt_in == "policy":
        policy = SandboxPolicy(use_cgroup=False, jobs_dir=policy.jobs_dir, allow_weak=True)
    else:
        monkeypatch.setenv(WEAK_ENV, "1")
        policy = SandboxPolicy(use_cgroup=False, jobs_dir=policy.jobs_dir)
    warnings = []
    try:
        sandbox = Sandbox(policy, warn=warnings.append)
    except SandboxUnavailable as exc:
        pytest.skip(f"no weaker level here: {exc}")
    isolation = sandbox.isolation
    assert isolation.namespaces != "bubblewrap"
    assert not isolation.filesystem_isolated
    assert "WEAK" in isolation.label and "host /tmp" in isolation.label and "unix sockets" in isolation.label
    assert len(warnings) == 1 and "WEAK SANDBOX" in warnings[0] and "bwrap not installed" in warnings[0]


@pytest.mark.parametrize("command", [["measure", "--runs", "0"], ["evaluate", "--workers", "0"], ["serve", "--threads", "0"]],
                         ids=["measure", "evaluate", "serve"])
def test_allow_weak_sandbox_flag_is_the_environment_opt_in(no_bubblewrap, monkeypatch, command):
    """`--allow-weak-sandbox` on each command that runs untrusted code sets the one policy the
    environment variable sets: every SandboxPolicy made afterwards allows the weak level, which then
    runs with its warning. (The option is handled before the invalid option after it stops the command.)"""
    from greencoder.cli import main

    monkeypatch.setenv(WEAK_ENV, "0")  # restored after the test
    assert not SandboxPolicy().allow_weak
    assert main([command[0], "--allow-weak-sandbox", *command[1:]]) != 0
    assert os.environ[WEAK_ENV] == "1" and SandboxPolicy().allow_weak
    if os.geteuid() != 0 and shutil.which("unshare") is None:
        return
    warnings = []
    sandbox = Sandbox(SandboxPolicy(use_cgroup=False, jobs_dir=no_bubblewrap.jobs_dir), warn=warnings.append)
    assert "WEAK" in sandbox.isolation.label and len(warnings) == 1


def test_without_the_flag_the_commands_leave_the_policy_alone(monkeypatch):
    from greencoder.cli import main

    monkeypatch.setenv(WEAK_ENV, "0")
    assert main(["evaluate", "--workers", "0"]) != 0
    assert not SandboxPolicy().allow_weak


def test_unshare_level_does_not_claim_file_system_isolation(tmp_path):
    sandbox = make_sandbox("unshare", tmp_path)
    marker = Path("/tmp") / f"gc-trust-unshare-{os.getpid()}"
    try:
        result = run(sandbox, f"open({str(marker)!r}, 'w').write('persisted')\n")
        assert result.ok, result.reason
        if marker.exists():  # host /tmp writes persist at this level: the label must not hide it
            assert not sandbox.isolation.filesystem_isolated and "host /tmp" in sandbox.isolation.label
    finally:
        marker.unlink(missing_ok=True)


# --- stdin through a pipe -----------------------------------------------------------------------

def test_stdin_never_follows_a_planted_symlink(sandbox, tmp_path):
    target = tmp_path / "host-file"
    target.write_text("HOST CONTENT\n")
    os.chmod(tmp_path, 0o777)
    os.chmod(target, 0o666)
    source = textwrap.dedent(f"""
        import os, sys
        data = sys.stdin.read()
        for name in (".stdin", "stdin"):
            try:
                if os.path.lexists(name):
                    os.unlink(name)
                os.symlink({str(target)!r}, name)
            except OSError:
                pass
        print(repr(data))
    """)
    with sandbox.prepare(PYTHON, {"main.py": source}, "main.py") as job:
        first = job.run(stdin=b"one")
        second = job.run(stdin=b"two")
    assert first.ok and first.stdout == "'one'\n", first.reason
    assert second.ok and second.stdout == "'two'\n", second.reason
    assert target.read_text() == "HOST CONTENT\n"


def test_a_planted_fifo_does_not_hang_the_caller(sandbox):
    source = "import os, sys\ndata = sys.stdin.read()\nos.mkfifo('.stdin') if not os.path.exists('.stdin') else None\nprint(repr(data))\n"
    with sandbox.prepare(PYTHON, {"main.py": source}, "main.py") as job:
        first = job.run(stdin=b"one")
        second = job.run(stdin=b"two")
    assert first.ok and second.ok and second.stdout == "'two'\n", second.reason


def test_stdin_larger_than_a_pipe_buffer_and_never_read_does_not_block(sandbox):
    result = run(sandbox, "print('ignored my input')\n", stdin=b"x" * (4 * MIB))
    assert result.ok and result.stdout == "ignored my input\n", result.reason
    echoed = run(sandbox, "import sys\nprint(len(sys.stdin.buffer.read()))\n", stdin=b"y" * (3 * MIB))
    assert echoed.ok and echoed.stdout == f"{3 * MIB}\n", echoed.reason


# --- forged statuses ----------------------------------------------------------------------------

@pytest.mark.parametrize("code", [137, 139, 152, 153])
def test_a_plain_exit_without_an_error_message_is_a_runtime_error(sandbox, code):
    result = run(sandbox, f"import sys\nsys.exit({code})\n")
    assert result.status is Status.RUNTIME_ERROR and result.reason == f"exit status {code}", result.reason
    assert result.exit_code == code and result.signal is None


@needs_gpp
def test_a_cpp_exit_152_is_not_a_cpu_timeout(sandbox):
    result = run(sandbox, "int main() { return 152; }\n", language=CPP)
    assert result.status is Status.RUNTIME_ERROR and result.reason == "exit status 152", result.reason


def test_the_program_cannot_forge_its_init_record(sandbox):
    """The init's record of the program's status lives on a pipe the program cannot reach: writing
    a fake 'killed by SIGKILL' (raw status 9) then exiting 0 stays a plain exit 0."""
    result = run(sandbox, """
        import os
        for pid in ("1", str(os.getppid())):
            for n in range(3, 12):
                try:
                    with open(f"/proc/{pid}/fd/{n}", "wb") as handle:
                        handle.write(b"9\\n")
                    print("FORGED", pid, n)
                except OSError:
                    pass
        print("fds", sorted(int(fd) for fd in os.listdir("/proc/self/fd")))
        print("done")
    """)
    assert result.ok and result.exit_code == 0 and result.signal is None, result.reason
    if sandbox.plan.trusted_status:
        assert "FORGED" not in result.stdout
        assert "fds [0, 1, 2, 3]" in result.stdout  # stdio and listdir's own: the init's pipe is not inherited


def test_real_signals_are_still_reported(sandbox):
    result = run(sandbox, "import os, signal\nsignal.signal(signal.SIGXFSZ, signal.SIG_DFL)\nos.kill(os.getpid(), signal.SIGXFSZ)\n")
    assert result.status is Status.OUTPUT_LIMIT and result.signal == 25, result.reason


# --- terminal escapes ---------------------------------------------------------------------------

def test_reasons_carry_no_terminal_escapes(sandbox):
    result = run(sandbox, r"""
        raise ValueError("\x1b]0;owned title\x07\x1b[2J\x1b[31mboom\x1b[0m \u202eevil\x08done")
    """)
    assert result.status is Status.RUNTIME_ERROR
    assert "boom" in result.reason and "done" in result.reason
    assert not any(ord(ch) < 32 or 0x7f <= ord(ch) < 0xa0 or ch == "\u202e" for ch in result.reason), repr(result.reason)
    assert "\x1b" in result.stderr  # the raw output is kept as data; only what is printed is cleaned


def test_printable_strips_escape_sequences_and_controls():
    assert printable("\x1b[1;31mred\x1b[0m") == "red"
    assert printable("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\") == "link"
    assert printable("a\x07b\x00c\x9bd\u202ee\u2066f") == "abcdef"
    assert printable("tab\there") == "tab here"


# --- the jobs folder ----------------------------------------------------------------------------

def test_a_symlinked_jobs_folder_is_refused(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "jobs"
    link.symlink_to(target)
    plan_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="is a symlink"):
            Sandbox(SandboxPolicy(jobs_dir=str(link), use_cgroup=False))
    finally:
        plan_isolation.cache_clear()
    assert stat.S_IMODE(target.stat().st_mode) == 0o700 and list(target.iterdir()) == []


def test_a_jobs_folder_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "jobs").write_text("not a folder")
    plan_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="not a directory"):
            Sandbox(SandboxPolicy(jobs_dir=str(tmp_path / "jobs"), use_cgroup=False))
    finally:
        plan_isolation.cache_clear()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make a folder another uid owns")
def test_a_jobs_folder_owned_by_another_uid_is_refused(tmp_path):
    jobs = tmp_path / "jobs"
    jobs.mkdir()
    os.chmod(jobs, 0o777)
    os.chown(jobs, 65534, 65534)
    plan_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="belongs to uid 65534"):
            Sandbox(SandboxPolicy(jobs_dir=str(jobs), use_cgroup=False))
    finally:
        plan_isolation.cache_clear()
    assert stat.S_IMODE(jobs.stat().st_mode) == 0o777


# --- memory without a cgroup --------------------------------------------------------------------

JAVA_HOG = """
    import java.nio.ByteBuffer;
    import java.util.*;
    public class Main {
        public static void main(String[] args) {
            List<Object> kept = new ArrayList<>();
            for (int i = 0; i < 64; i++) {
                kept.add(ByteBuffer.allocateDirect(32 * 1024 * 1024));
                kept.add(new long[4 * 1024 * 1024]);
            }
            System.out.println("used 4 GiB");
        }
    }
"""


@needs_java
def test_java_cannot_escape_the_memory_limit_without_a_cgroup(sandbox):
    if sandbox.cgroups is not None:
        pytest.skip("with a cgroup the JVM is held by the cgroup's memory limit")
    limits = Limits(wall_seconds=20.0, memory_bytes=768 * MIB, java_heap_bytes=128 * MIB)
    result = run(sandbox, JAVA_HOG, language=JAVA, limits=limits)
    assert result.status is Status.MEMORY_LIMIT, result.reason
    assert "used 4 GiB" not in result.stdout


@needs_java
def test_java_is_refused_without_a_cgroup_when_the_limit_cannot_hold_it(sandbox):
    if sandbox.cgroups is not None:
        pytest.skip("with a cgroup the JVM is held by the cgroup's memory limit")
    result = run(sandbox, 'public class Main { public static void main(String[] a) { System.out.println("hi"); } }',
                 language=JAVA, limits=Limits(memory_bytes=256 * MIB))
    assert result.status is Status.SANDBOX_ERROR and "without a cgroup the JVM needs" in result.reason


def test_bubblewrap_dev_is_read_only(sandbox):
    if not has_file_system_view(sandbox):
        pytest.skip(f"'{sandbox.isolation.label}' has no file-system view of its own")
    result = run(sandbox, """
        try:
            open("/dev/fill", "w").write("x")
            print("WROTE /dev")
        except OSError as exc:
            print("denied", exc.errno)
        open("/dev/null", "w").write("fine")
    """)
    assert result.ok and "WROTE" not in result.stdout, result.reason



@needs_gpp
def test_a_toolchain_outside_usr_is_shown_read_only(tmp_path):
    """The allow-list shows /usr; a compiler installed elsewhere (/opt) is shown through its prefix."""
    prefix = Path("/opt") / f"gc-trust-gcc-{os.getpid()}"
    (prefix / "bin").mkdir(parents=True)
    try:
        wrapper = prefix / "bin" / "g++"
        wrapper.write_text(f'#!/bin/sh\nexec {shutil.which("g++")} "$@"\n')
        os.chmod(prefix, 0o755)
        os.chmod(prefix / "bin", 0o755)
        os.chmod(wrapper, 0o755)
        sandbox = make_sandbox("strongest", tmp_path)
        sandbox = Sandbox(sandbox.policy, toolchains=Toolchains(cxx=str(wrapper)))
        result = run(sandbox, '#include <cstdio>\nint main() { std::puts("built by /opt"); }\n', language=CPP)
        assert result.ok and result.stdout == "built by /opt\n", result.reason
    finally:
        shutil.rmtree(prefix)


# --- read-only job files (a measurement harness) ------------------------------------------------

TAMPERER = """
import os
attempts = {
    "write": lambda: open("harness.py", "w").write("print('FAKE')"),
    "append": lambda: open("harness.py", "a").write("print('FAKE')"),
    "chmod": lambda: os.chmod("harness.py", 0o666),
    "rename": lambda: os.rename("harness.py", "moved.py"),
    "unlink": lambda: os.unlink("harness.py"),
}
for name, attempt in attempts.items():
    try:
        attempt()
        print("TAMPERED", name)
    except OSError as exc:
        print("denied", name, exc.errno)
open("scratch.txt", "w").write("the folder itself stays writable")
"""


def test_read_only_job_files_cannot_be_changed_replaced_or_removed(sandbox):
    if sandbox.plan.switch_uid is None and not has_file_system_view(sandbox):
        pytest.skip("without a uid switch or bubblewrap the program owns every file it can see")
    files = {"main.py": TAMPERER, "harness.py": "print('REAL HARNESS')\n"}
    with sandbox.prepare(PYTHON, files, "main.py", read_only=["harness.py"]) as job:
        tampering = job.run()
        assert tampering.ok, tampering.reason
        assert "TAMPERED" not in tampering.stdout, tampering.stdout
        assert (job.directory / "scratch.txt").exists()
        assert (job.directory / "harness.py").read_text() == "print('REAL HARNESS')\n"
    with sandbox.prepare(PYTHON, {"harness.py": "print('REAL HARNESS')\n"}, "harness.py",
                         read_only=["harness.py"]) as job:
        assert job.run().stdout == "REAL HARNESS\n"


def job_folders(sandbox) -> set[str]:
    return {path.name for path in sandbox.policy.resolved_jobs_dir().glob("job-*")}


def test_read_only_names_must_be_job_files(sandbox):
    before = job_folders(sandbox)
    with pytest.raises(InputError, match="not among the job's files"):
        sandbox.prepare(PYTHON, {"main.py": "pass\n"}, "main.py", read_only=["harness.py"])
    assert job_folders(sandbox) == before  # no folder (or tmpfs mount) left behind


def test_a_job_that_fails_while_being_written_leaves_nothing(sandbox, monkeypatch):
    from greencoder.core.sandbox import executor

    def disk_error(*args, **kwargs):
        raise OSError(28, "No space left on device")

    before = job_folders(sandbox)
    monkeypatch.setattr(executor, "_write_new", disk_error)
    with pytest.raises(OSError):
        sandbox.prepare(PYTHON, {"main.py": "pass\n"}, "main.py")
    assert job_folders(sandbox) == before
