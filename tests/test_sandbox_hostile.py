"""Hostile programs: each must be contained, reported with its status, and leave no trace outside
its job folder. Run at every isolation level the machine offers (see sandbox_levels.py); the
header of the test run names the strongest one.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Limits, Status

from sandbox_levels import LEVELS, make_sandbox, processes_of_uid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def project():
    """A stand-in for the user's project, outside /tmp and /home so only the project rule hides it."""
    path = REPO / f".hostile-project-{os.getpid()}"
    path.mkdir()
    (path / "secret.txt").write_text("PROJECT-SECRET-4711\n")
    (path / "secret.txt").chmod(0o600)
    (path / "code.py").write_text("PROJECT-CODE-0815\n")  # world-readable: only a private view hides it
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module", params=list(LEVELS))
def sandbox(request, project):
    return make_sandbox(request.param, project)


def run(sandbox, source: str, language=PYTHON, **kwargs):
    result = sandbox.execute(language, textwrap.dedent(source), **kwargs)
    print(f"[{sandbox.isolation.label}] {result.status.value}: {result.reason}")
    return result


def assert_no_leftovers(sandbox):
    uid = sandbox.plan.switch_uid
    if uid is None:
        return
    deadline = time.monotonic() + 2
    while processes_of_uid(uid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert processes_of_uid(uid) == [], "processes of the sandbox uid survived the run"


def test_fork_bomb_is_contained(sandbox):
    started = time.monotonic()
    result = run(sandbox, """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
    """)
    assert result.status in (Status.TIMEOUT, Status.RUNTIME_ERROR, Status.KILLED)
    assert time.monotonic() - started < 15
    assert_no_leftovers(sandbox)


def test_memory_hog_hits_the_memory_limit(sandbox):
    result = run(sandbox, """
        chunks = []
        while True:
            chunks.append(bytearray(16 * 1024 * 1024))
    """)
    assert result.status is Status.MEMORY_LIMIT, result.reason


def test_java_memory_hog_hits_the_heap_limit(sandbox):
    # Without a cgroup the JVM runs under an address-space limit and needs room besides its heap.
    limits = None if sandbox.cgroups else Limits(wall_seconds=10.0, memory_bytes=768 * 1024 * 1024,
                                                 java_heap_bytes=128 * 1024 * 1024)
    result = run(sandbox, """
        import java.util.*;
        public class Main {
            public static void main(String[] args) {
                List<long[]> chunks = new ArrayList<>();
                while (true) chunks.add(new long[4 * 1024 * 1024]);
            }
        }
    """, language=JAVA, limits=limits)
    assert result.status is Status.MEMORY_LIMIT, result.reason


def test_infinite_loop_times_out(sandbox):
    result = run(sandbox, "while True:\n    pass\n")
    assert result.status is Status.TIMEOUT
    assert result.wall_seconds < 6


ESCAPING_SPINNER = """
    import os
    if os.fork() == 0:
        os.setsid()
        while True:
            pass
    print("parent leaves")
"""


def test_escaped_spinning_child_is_killed(sandbox):
    started = time.monotonic()
    result = run(sandbox, ESCAPING_SPINNER)
    assert result.status is Status.OK and "parent leaves" in result.stdout
    assert time.monotonic() - started < 3
    assert_no_leftovers(sandbox)


def test_escaped_sleeper_holding_our_pipes_does_not_hang_us(sandbox):
    started = time.monotonic()
    result = run(sandbox, """
        import subprocess
        subprocess.Popen(["sleep", "1000"], start_new_session=True)
        print("parent leaves")
    """)
    assert result.status is Status.OK
    assert time.monotonic() - started < 3
    assert_no_leftovers(sandbox)


def test_writes_outside_the_job_folder_fail(sandbox, project):
    home = Path.home()
    targets = [Path("/etc/greencoder-hostile"), home / "greencoder-hostile", project / "greencoder-hostile",
               Path("/usr/greencoder-hostile")]
    result = run(sandbox, f"""
        import os
        for path in {[str(t) for t in targets]!r}:
            try:
                with open(path, "w") as handle:
                    handle.write("pwned")
                print("WROTE", path)
            except OSError as exc:
                print("denied", path, exc.errno)
        with open("inside.txt", "w") as handle:
            handle.write("fine")
        print("wrote inside")
    """)
    assert result.status is Status.OK
    assert "wrote inside" in result.stdout
    for target in targets:
        assert not target.exists(), f"the program wrote {target}"
    if sandbox.isolation.filesystem_isolated or sandbox.plan.switch_uid is not None:
        assert "WROTE" not in result.stdout  # a read-only view, or files the unprivileged uid cannot write


def test_secrets_are_unreadable(sandbox, project):
    result = run(sandbox, f"""
        import os
        for path in ["/etc/shadow", "{project}/secret.txt", "{project}/code.py"]:
            try:
                print("READ", open(path).read())
            except OSError as exc:
                print("denied", path)
        try:
            print("ROOT", os.listdir("/root"))
        except OSError:
            print("denied /root")
    """)
    assert result.status is Status.OK
    assert "PROJECT-SECRET-4711" not in result.stdout
    if sandbox.isolation.namespaces == "bubblewrap":  # weaker levels protect only what the uid cannot read
        assert "PROJECT-CODE-0815" not in result.stdout
    host_root = set(os.listdir("/root")) if os.access("/root", os.R_OK) else set()
    for name in host_root:
        assert f"'{name}'" not in result.stdout, f"/root/{name} visible inside"


def test_no_network_to_localhost(sandbox):
    if not sandbox.isolation.network_isolated:
        pytest.skip(f"'{sandbox.isolation.label}' has no network namespace")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.settimeout(0.5)
        port = server.getsockname()[1]
        result = run(sandbox, f"""
            import socket
            try:
                socket.create_connection(("127.0.0.1", {port}), timeout=2)
                print("CONNECTED")
            except OSError as exc:
                print("refused", exc)
        """)
        with pytest.raises(socket.timeout):
            server.accept()
    assert "CONNECTED" not in result.stdout


def test_cannot_signal_the_host(sandbox):
    result = run(sandbox, f"""
        import os, signal
        for pid in ({os.getpid()}, os.getppid()):
            try:
                os.kill(pid, signal.SIGKILL)
                print("SIGNALLED", pid)
            except OSError as exc:
                print("denied", pid, type(exc).__name__)
    """)
    # The test process is alive to read this; the program's own parent may be its sandbox's init.
    assert f"SIGNALLED {os.getpid()}" not in result.stdout
    assert result.status in (Status.OK, Status.KILLED, Status.RUNTIME_ERROR)


def test_big_file_hits_the_file_size_limit(sandbox):
    result = run(sandbox, """
        with open("big.bin", "wb") as handle:
            for _ in range(50):
                handle.write(b"x" * 1024 * 1024)
    """)
    assert result.status is Status.OUTPUT_LIMIT, result.reason
    assert "file larger than 16 MiB" in result.reason


def test_output_flood_hits_the_output_limit(sandbox):
    started = time.monotonic()
    result = run(sandbox, """
        while True:
            print("x" * 1000)
    """)
    assert result.status is Status.OUTPUT_LIMIT
    assert len(result.stdout) <= 256 * 1024
    assert time.monotonic() - started < 3


@pytest.mark.parametrize("bomb", [
    '#include "/dev/zero"\nint main() {}\n',
    "#define A x x x x x x x x x x\n#define B A A A A A A A A A A\n#define C B B B B B B B B B B\n"
    "#define D C C C C C C C C C C\n#define E D D D D D D D D D D\n#define F E E E E E E E E E E\n"
    "#define G F F F F F F F F F F\nint main() { G }\n",
], ids=["dev-zero-include", "macro-expansion"])
def test_cpp_compile_bomb_is_a_compile_error(sandbox, bomb):
    started = time.monotonic()
    result = run(sandbox, bomb, language=CPP)
    assert result.stage == "compile"
    assert result.status is Status.COMPILE_ERROR
    assert time.monotonic() - started < 25
    assert_no_leftovers(sandbox)


def test_cleanup_spares_other_processes_of_the_sandbox_uid(sandbox):
    """Killing what a run left behind must not kill an unrelated process that happens to run
    under the same unprivileged uid (another run, a service running as nobody)."""
    uid = sandbox.plan.switch_uid
    if uid is None:
        pytest.skip("no uid switch (not root)")

    def become_sandbox_uid():
        os.setgroups([])
        os.setgid(sandbox.plan.switch_gid)
        os.setuid(uid)

    bystander = subprocess.Popen(["sleep", "30"], preexec_fn=become_sandbox_uid, cwd="/")
    try:
        result = run(sandbox, ESCAPING_SPINNER)
        assert result.status is Status.OK
        time.sleep(0.2)
        assert bystander.poll() is None, "the cleanup killed an unrelated process of the sandbox uid"
    finally:
        bystander.kill()
        bystander.wait()
