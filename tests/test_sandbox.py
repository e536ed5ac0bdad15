"""The sandboxed executor, functionally: every status is reachable and carries a short reason a
person can act on, input and arguments get in, output and CPU time come back, jobs compile once
and run many times, HumanEval-X programs pass as the benchmark's harness assembles them.

Hostile programs (fork bombs, escapes, secrets) are in test_sandbox_hostile.py. The pure parts
(cgroup file parsing, isolation planning, error-line picking) are tested on synthetic inputs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import textwrap
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.sandbox import Limits, Sandbox, SandboxPolicy, SandboxUnavailable, Status, Toolchains
from greencoder.core.sandbox import isolation as isolation_module
from greencoder.core.sandbox.cgroups import CgroupSupport, RunCgroup, own_cgroups
from greencoder.core.sandbox.classify import key_line
from greencoder.core.sandbox.isolation import plan_isolation
from greencoder.core.sandbox.toolchains import java_main_class, java_public_class
from sandbox_levels import LEVELS, make_sandbox

MIB = 1024 * 1024
HUMANEVAL_X = SHARED_DATA / "humaneval_x"
RUN_LIMITS = Limits(wall_seconds=10.0, memory_bytes=256 * MIB, java_heap_bytes=128 * MIB)

needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_java = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="JDK not installed")
needs_toolchain = {PYTHON.name: [], CPP.name: [needs_gpp], JAVA.name: [needs_java]}


def lang(language):
    """A parametrize entry for `language`, skipped where its toolchain is missing."""
    return pytest.param(language, id=language.name, marks=needs_toolchain[language.name])


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    try:
        return Sandbox(run_limits=RUN_LIMITS)
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox here: {exc}")


def run(sandbox: Sandbox, language, source: str, **kwargs):
    result = sandbox.execute(language, textwrap.dedent(source).lstrip("\n"), **kwargs)
    print(f"[{result.isolation.label}] {language.name} {result.stage} {result.status.value}: {result.reason}")
    return result


def first_error_line(stderr: str) -> str:
    return next(line.strip() for line in stderr.splitlines() if "error:" in line)


# --- ok ---------------------------------------------------------------------------------------

HELLO = {
    PYTHON.name: 'print("hello from python")\n',
    CPP.name: '#include <iostream>\nint main() { std::cout << "hello from cpp" << std::endl; }\n',
    JAVA.name: 'public class Main {\n    public static void main(String[] a) { System.out.println("hello from java"); }\n}\n',
}


@pytest.mark.parametrize("language", [lang(PYTHON), lang(CPP), lang(JAVA)])
def test_ok_captures_stdout(sandbox, language):
    result = run(sandbox, language, HELLO[language.name])
    assert result.status is Status.OK, result.reason
    assert result.ok and result.reason == "ok" and result.stage == "run"
    assert result.stdout == f"hello from {language.name}\n"
    assert result.exit_code == 0 and result.signal is None
    assert result.isolation.label and result.isolation.label == sandbox.isolation.label
    assert 0 < result.wall_seconds < 5


@pytest.mark.parametrize("language", [lang(PYTHON), lang(CPP), lang(JAVA)])
def test_result_is_json_serialisable(sandbox, language):
    data = json.loads(json.dumps(run(sandbox, language, HELLO[language.name]).to_dict()))
    assert data["status"] == "ok"
    assert data["isolation"]["label"] == sandbox.isolation.label
    assert data["stdout"] == f"hello from {language.name}\n"


# --- compile errors ---------------------------------------------------------------------------

@pytest.mark.parametrize("language, source, message", [
    pytest.param(CPP, "int main() {\n    return undeclared_name;\n}\n", "undeclared_name", marks=needs_gpp, id="cpp"),
    pytest.param(JAVA, 'public class Main {\n    public static void main(String[] a) { int x = "text"; }\n}\n',
                 "incompatible types", marks=needs_java, id="java"),
])
def test_compile_error_reason_is_the_first_error_line(sandbox, language, source, message):
    result = run(sandbox, language, source)
    assert result.status is Status.COMPILE_ERROR
    assert result.stage == "compile"
    assert result.reason == first_error_line(result.stderr)
    assert "error:" in result.reason and message in result.reason
    assert len(result.reason) <= 200


@needs_gpp
def test_only_the_first_of_several_compile_errors_is_the_reason(sandbox):
    result = run(sandbox, CPP, "int main() {\n    first_missing();\n    second_missing();\n}\n")
    assert result.status is Status.COMPILE_ERROR
    assert "first_missing" in result.reason and "second_missing" not in result.reason
    assert result.reason.startswith("main.cpp:2:")


# --- runtime errors ---------------------------------------------------------------------------

def test_python_exception_reason_is_the_exception_line(sandbox):
    result = run(sandbox, PYTHON, """
        def parse(text):
            raise ValueError("error: cannot parse " + text)
        parse("x")
    """)
    assert result.status is Status.RUNTIME_ERROR
    assert result.reason == "ValueError: error: cannot parse x"
    assert result.exit_code == 1 and result.stage == "run"
    assert "Traceback" in result.stderr


@needs_gpp
def test_cpp_segfault_is_a_runtime_error_named_by_its_signal(sandbox):
    result = run(sandbox, CPP, """
        int main() {
            volatile int *pointer = nullptr;
            *pointer = 1;
        }
    """)
    assert result.status is Status.RUNTIME_ERROR
    assert result.reason == "killed by SIGSEGV"
    assert result.signal == signal.SIGSEGV and result.exit_code is None


@needs_java
def test_java_uncaught_exception_reason_is_the_exception_line(sandbox):
    result = run(sandbox, JAVA, """
        public class Main {
            public static void main(String[] args) {
                throw new IllegalStateException("boom");
            }
        }
    """)
    assert result.status is Status.RUNTIME_ERROR
    assert result.reason == 'Exception in thread "main" java.lang.IllegalStateException: boom'
    assert result.exit_code == 1


def test_nonzero_exit_is_a_runtime_error_with_its_status(sandbox):
    result = run(sandbox, PYTHON, "import sys\nsys.exit(3)\n")
    assert result.status is Status.RUNTIME_ERROR
    assert result.reason == "exit status 3"
    assert result.exit_code == 3 and result.signal is None


# --- wrong answers ----------------------------------------------------------------------------

def test_python_assert_is_a_wrong_answer(sandbox):
    result = run(sandbox, PYTHON, """
        def add(a, b):
            return a - b
        assert add(2, 2) == 4, "add is broken"
    """)
    assert result.status is Status.WRONG_ANSWER
    assert result.reason == "AssertionError: add is broken"


@needs_gpp
def test_cpp_cassert_is_a_wrong_answer(sandbox):
    result = run(sandbox, CPP, """
        #include <cassert>
        int add(int a, int b) { return a - b; }
        int main() { assert(add(2, 2) == 4); }
    """)
    assert result.status is Status.WRONG_ANSWER
    assert result.signal == signal.SIGABRT
    assert "Assertion" in result.reason and "add(2, 2) == 4" in result.reason and result.reason.endswith("failed.")


@needs_java
def test_java_assert_is_a_wrong_answer_with_assertions_enabled(sandbox):
    result = run(sandbox, JAVA, """
        public class Main {
            static int add(int a, int b) { return a - b; }
            public static void main(String[] args) {
                assert add(2, 2) == 4 : "add is broken";
                System.out.println("unreachable with -ea");
            }
        }
    """)
    assert result.status is Status.WRONG_ANSWER
    assert result.reason == 'Exception in thread "main" java.lang.AssertionError: add is broken'
    assert "unreachable" not in result.stdout


def test_expected_stdout_mismatch_is_a_wrong_answer(sandbox):
    result = run(sandbox, PYTHON, "print(6 * 7 + 1)\n", expected_stdout="42\n")
    assert result.status is Status.WRONG_ANSWER
    assert result.reason == "output differs from the expected output"
    assert result.exit_code == 0 and result.stdout == "43\n"


def test_expected_stdout_ignores_trailing_whitespace(sandbox):
    result = run(sandbox, PYTHON, "print('42  ')\nprint()\n", expected_stdout="42")
    assert result.status is Status.OK, result.reason


# --- limits -----------------------------------------------------------------------------------

def test_wall_clock_limit_is_a_timeout(sandbox):
    result = run(sandbox, PYTHON, "import time\ntime.sleep(30)\n", limits=Limits(wall_seconds=1))
    assert result.status is Status.TIMEOUT
    assert result.reason == "still running after the 1 s wall-clock limit"
    assert 1 <= result.wall_seconds < 3


@pytest.mark.parametrize("language, source", [
    (PYTHON, "while True:\n    pass\n"),
    pytest.param(CPP, "int main() { volatile unsigned long n = 0; while (true) n++; }\n", marks=needs_gpp),
], ids=["python", "cpp"])
def test_cpu_time_limit_is_a_timeout_before_the_wall_clock_limit(sandbox, language, source):
    result = run(sandbox, language, source, limits=Limits(wall_seconds=10, cpu_seconds=1))
    assert result.status is Status.TIMEOUT
    assert result.reason == "used its 1 s of CPU time"
    assert result.wall_seconds < 4
    assert result.cpu_seconds is not None and 0.8 <= result.cpu_seconds < 2.5


@pytest.mark.parametrize("language, source", [
    (PYTHON, "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 1024 * 1024))\n"),
    pytest.param(CPP, """
        #include <cstring>
        #include <vector>
        int main() {
            std::vector<char *> chunks;
            while (true) {
                char *chunk = new char[8 << 20];
                std::memset(chunk, 1, 8 << 20);
                chunks.push_back(chunk);
            }
        }
    """, marks=needs_gpp),
], ids=["python", "cpp"])
def test_memory_hog_is_a_memory_limit(sandbox, language, source):
    result = run(sandbox, language, source, limits=Limits(memory_bytes=96 * MIB))
    assert result.status is Status.MEMORY_LIMIT, result.reason
    assert result.reason
    assert result.wall_seconds < 5


@needs_gpp
def test_output_flood_is_an_output_limit(sandbox):
    result = run(sandbox, CPP, """
        #include <cstdio>
        int main() { while (true) std::puts("flood flood flood flood flood flood flood flood"); }
    """, limits=Limits(max_output_bytes=64 * 1024))
    assert result.status is Status.OUTPUT_LIMIT
    assert result.reason.startswith("printed more than")
    assert 0 < len(result.stdout) <= 64 * 1024
    assert result.wall_seconds < 3


@pytest.mark.parametrize("language, source", [
    (PYTHON, "import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"),
    pytest.param(CPP, "#include <csignal>\n#include <cstdio>\n"
                      "int main() { std::puts(\"before\"); std::fflush(stdout); std::raise(SIGKILL); }\n", marks=needs_gpp),
], ids=["python", "cpp"])
def test_program_killing_itself_is_killed(sandbox, language, source):
    result = run(sandbox, language, source)
    assert result.status is Status.KILLED
    assert result.reason == "killed by SIGKILL"
    assert result.signal == signal.SIGKILL
    assert result.stdout == "before\n"


# --- the sandbox's own failures ---------------------------------------------------------------

def test_missing_compiler_is_a_sandbox_error_not_a_compile_error():
    result = Sandbox(toolchains=Toolchains(cxx="no-such-compiler")).execute(CPP, "int main() {}\n")
    assert result.status is Status.SANDBOX_ERROR
    assert result.stage == "compile"
    assert "no-such-compiler" in result.reason and "\n" not in result.reason
    assert result.isolation.label


def test_missing_interpreter_is_a_sandbox_error_at_run_stage():
    result = Sandbox(toolchains=Toolchains(python="no-such-python")).execute(PYTHON, "print(1)\n")
    assert result.status is Status.SANDBOX_ERROR
    assert result.stage == "run"
    assert "no-such-python" in result.reason


def test_job_file_names_must_be_plain(sandbox):
    for name in ("../escape.py", "sub/dir.py", ".hidden.py", ""):
        with pytest.raises(InputError):
            sandbox.prepare(PYTHON, {name: "pass\n"}, "main.py")


# --- input, arguments, exit code --------------------------------------------------------------

def test_stdin_and_args_are_delivered(sandbox):
    result = run(sandbox, PYTHON, """
        import sys
        print(sys.stdin.read().upper(), end="")
        print(sys.argv[1:])
    """, stdin=b"line one\nline two\n", args=["a b", "--flag", ""])
    assert result.status is Status.OK, result.reason
    assert result.stdout == "LINE ONE\nLINE TWO\n['a b', '--flag', '']\n"


def test_no_stdin_reads_end_of_file(sandbox):
    result = run(sandbox, PYTHON, "import sys\nprint(repr(sys.stdin.read()))\n")
    assert result.stdout == "''\n"


@needs_gpp
def test_cpp_reads_stdin_and_args(sandbox):
    result = run(sandbox, CPP, """
        #include <iostream>
        int main(int argc, char **argv) {
            long a, b;
            std::cin >> a >> b;
            std::cout << a + b << " " << argc - 1 << " " << argv[1] << std::endl;
            return 5;
        }
    """, stdin=b"40 2\n", args=["first", "second"])
    assert result.stdout == "42 2 first\n"
    assert result.exit_code == 5 and result.status is Status.RUNTIME_ERROR


# --- jobs: compile once, run many times -------------------------------------------------------

@needs_gpp
def test_job_builds_once_and_runs_many_times(sandbox):
    source = '#include <cstdio>\n#include <cstdlib>\nint main(int c, char **v) { std::printf("%d\\n", 2 * std::atoi(v[1])); }\n'
    with sandbox.prepare(CPP, {"main.cpp": source}, "main.cpp") as job:
        built = job.build()
        assert built.ok and built.stage == "compile", built.reason
        binary = job.directory / "program"
        compiled = binary.stat()
        outputs = []
        for n in (1, 21, 500):
            result = job.run([str(n)])
            assert result.ok and result.stage == "run", result.reason
            outputs.append(result.stdout)
        assert outputs == ["2\n", "42\n", "1000\n"]
        after = binary.stat()
        assert (after.st_ino, after.st_mtime_ns) == (compiled.st_ino, compiled.st_mtime_ns), "recompiled"
        directory = job.directory
    assert not directory.exists()


@needs_gpp
def test_run_without_build_builds_and_a_failed_build_is_returned_by_every_run(sandbox):
    with sandbox.prepare(CPP, {"main.cpp": "int main() { return nope; }\n"}, "main.cpp") as job:
        for _ in range(2):
            result = job.run(["x"])
            assert result.status is Status.COMPILE_ERROR and result.stage == "compile"
            assert not (job.directory / "program").exists()


def test_job_folder_is_deleted_even_when_the_program_locked_parts_of_it(sandbox):
    source = textwrap.dedent("""
        import os
        os.makedirs("locked/inner")
        with open("locked/inner/file.txt", "w") as handle:
            handle.write("x")
        os.chmod("locked/inner", 0)
        os.chmod("locked", 0)
        os.chmod("main.py", 0)
        print("locked")
    """)
    with sandbox.prepare(PYTHON, {"main.py": source}, "main.py") as job:
        result = job.run()
        assert result.ok and result.stdout == "locked\n", result.reason
        directory = job.directory
        assert (directory / "locked").exists()
    assert not directory.exists()


def test_job_folder_is_deleted_when_the_block_raises(sandbox):
    with pytest.raises(RuntimeError):
        with sandbox.prepare(PYTHON, {"main.py": "pass\n"}, "main.py") as job:
            directory = job.directory
            raise RuntimeError("caller failed")
    assert not directory.exists()


# --- CPU time ---------------------------------------------------------------------------------

@pytest.mark.parametrize("language, source", [
    (PYTHON, "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.5:\n    pass\n"),
    pytest.param(CPP, "#include <ctime>\nint main() { std::clock_t start = std::clock(); "
                      "while (std::clock() - start < CLOCKS_PER_SEC / 2) {} }\n", marks=needs_gpp),
], ids=["python", "cpp"])
def test_busy_program_reports_its_cpu_time(sandbox, language, source):
    result = run(sandbox, language, source)
    assert result.ok, result.reason
    assert result.cpu_seconds is not None and 0.3 <= result.cpu_seconds <= 1.5, result.cpu_seconds
    assert result.cpu_source == ("cgroup" if sandbox.cgroups is not None else "rusage")


def test_sleeping_program_reports_little_cpu_time(sandbox):
    result = run(sandbox, PYTHON, "import time\ntime.sleep(0.6)\n")
    assert result.ok, result.reason
    assert result.wall_seconds >= 0.5
    assert result.cpu_seconds is not None and result.cpu_seconds < 0.2, result.cpu_seconds


def test_cpu_time_without_a_cgroup_comes_from_rusage():
    try:
        sandbox = Sandbox(SandboxPolicy(use_cgroup=False), run_limits=RUN_LIMITS)
    except SandboxUnavailable as exc:
        pytest.skip(f"no sandbox without a cgroup here: {exc}")
    result = run(sandbox, PYTHON, "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.5:\n    pass\n")
    assert result.ok, result.reason
    assert result.cpu_source == "rusage"
    assert "cgroup" not in result.isolation.label
    assert 0.3 <= result.cpu_seconds <= 1.5, result.cpu_seconds


# --- Java class layout ------------------------------------------------------------------------

@needs_java
def test_java_public_solution_with_a_separate_main_class(sandbox):
    result = run(sandbox, JAVA, """
        import java.util.*;

        public class Solution {
            public int twice(int x) { return 2 * x; }
        }

        class Main {
            public static void main(String[] args) {
                System.out.println(new Solution().twice(21));
            }
        }
    """)
    assert result.status is Status.OK, result.reason
    assert result.stdout == "42\n"


@needs_java
def test_java_main_class_with_a_nested_class_declared_before_main(sandbox):
    result = run(sandbox, JAVA, """
        public class Main {
            // The entry point of this class follows the helper class.
            static class Pair { int a = 20, b = 22; }
            public static void main(String[] args) {
                Pair p = new Pair();
                System.out.println(p.a + p.b);
            }
        }
    """)
    assert result.status is Status.OK, result.reason
    assert result.stdout == "42\n"


def test_java_class_names_from_source():
    nested = "public class Main {\n  static class Pair {}\n  enum Kind { A }\n  public static void main(String[] a) {}\n}\n"
    assert java_main_class(nested) == "Main"
    separate = "public class Solution { int f() { return 1; } }\nclass Main { public static void main(String[] a) {} }"
    assert java_main_class(separate) == "Main"
    commented = 'public class A {\n  /** this class and more */\n  String s = "class B {";\n  public static void main(String[] a) {}\n}'
    assert java_main_class(commented) == "A"
    assert java_main_class("class Helper { Runnable r = new Runnable() { public void run() {} }; }\n"
                           "public class App { static int[] xs = {1, 2}; public static void main(String[] a) {} }") == "App"
    assert java_main_class("public class Library { int f() { return 1; } }") == "Library"
    assert java_public_class("// public class Commented\nclass Hidden {}\npublic final class Shown {}") == "Shown"
    assert java_public_class("class NotPublic {}") is None


# --- HumanEval-X ------------------------------------------------------------------------------

def run_humaneval_x(sandbox: Sandbox, language, solution: str | None = None):
    """Task 0's program as evaluation builds it (solution and test kept apart, a nonce on stdin),
    run by the sandbox's multi-file path; the harness is greencoder.evaluation's, not a copy here.
    Returns the run's result and whether the test printed its completion mark."""
    import secrets

    from greencoder.evaluation.benchmarks import build_program, load_tasks
    from greencoder.evaluation.correctness import completed

    if not HUMANEVAL_X.is_dir():
        pytest.skip(f"{HUMANEVAL_X} not available")
    task = load_tasks("humaneval-x", language.name, HUMANEVAL_X)[0]
    program = build_program(task, task.canonical if solution is None else task.signature + solution)
    nonce = secrets.token_hex(16)
    with sandbox.prepare(language, program.files, program.entry) as job:
        built = job.build()
        result = built if not built.ok else job.run(stdin=(nonce + "\n").encode())
    print(f"[{result.isolation.label}] {language.name} {result.stage} {result.status.value}: {result.reason}")
    return result, completed(result.stdout, nonce)


BROKEN = {
    PYTHON.name: "    return False\n",
    CPP.name: "    return false;\n}\n",
    JAVA.name: "        return false;\n    }\n}\n",
}


@pytest.mark.parametrize("language", [lang(PYTHON), lang(CPP), lang(JAVA)])
def test_humaneval_x_canonical_solution_passes(sandbox, language):
    result, finished = run_humaneval_x(sandbox, language)
    assert result.status is Status.OK and finished, f"{result.reason}\n{result.stderr}"


@pytest.mark.parametrize("language", [lang(PYTHON), lang(CPP), lang(JAVA)])
def test_humaneval_x_broken_solution_is_a_wrong_answer(sandbox, language):
    result, finished = run_humaneval_x(sandbox, language, BROKEN[language.name])
    assert result.status is Status.WRONG_ANSWER and not finished, f"{result.reason}\n{result.stderr}"
    assert "Assertion" in result.reason


# --- isolation planning (a non-root user without bubblewrap or unshare, simulated) ------------

@pytest.fixture
def bare_unprivileged_machine(monkeypatch):
    """geteuid() says 1000 and neither bwrap nor unshare is installed; the plan cache is cleared."""
    real_which = shutil.which
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(isolation_module.shutil, "which",
                        lambda name, *a, **k: None if name in ("bwrap", "unshare") else real_which(name, *a, **k))
    plan_isolation.cache_clear()
    yield
    plan_isolation.cache_clear()


def test_no_sandbox_without_opt_in_is_refused_in_one_line(bare_unprivileged_machine):
    with pytest.raises(SandboxUnavailable) as caught:
        plan_isolation(SandboxPolicy(use_cgroup=False), None)
    message = str(caught.value)
    assert "\n" not in message
    assert "--unsafe-no-sandbox" in message
    assert "bwrap not installed" in message


def test_no_sandbox_with_opt_in_is_labelled_unsafe(bare_unprivileged_machine):
    plan = plan_isolation(SandboxPolicy(namespaces="none", use_cgroup=False, allow_unsandboxed=True), None)
    assert plan.isolation.unsafe
    assert plan.isolation.label.startswith("NONE")
    assert plan.switch_uid is None and plan.isolation.namespaces is None


def test_unsafe_sandbox_warns_loudly(bare_unprivileged_machine, capsys):
    sandbox = Sandbox(SandboxPolicy(namespaces="auto", use_cgroup=False, allow_unsandboxed=True))
    assert sandbox.isolation.unsafe
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if "WARNING" in line]
    assert len(warnings) == 1
    assert "--unsafe-no-sandbox" in warnings[0] and "WITHOUT A SANDBOX" in warnings[0]
    assert "bubblewrap: bwrap not installed" in warnings[0]


def test_warning_can_be_redirected(bare_unprivileged_machine, capsys):
    seen = []
    Sandbox(SandboxPolicy(namespaces="none", use_cgroup=False, allow_unsandboxed=True), warn=seen.append)
    assert len(seen) == 1 and "--unsafe-no-sandbox" in seen[0]
    assert "WARNING" not in capsys.readouterr().err


def test_safe_sandbox_does_not_warn(sandbox, capsys):
    Sandbox(sandbox.policy)
    assert "WARNING" not in capsys.readouterr().err


def test_bad_policies_are_refused():
    plan_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="unknown namespace tool"):
            plan_isolation(SandboxPolicy(namespaces="chroot"), None)
        if os.geteuid() == 0:
            with pytest.raises(SandboxUnavailable, match="must not be 0"):
                plan_isolation(SandboxPolicy(sandbox_uid=0), None)
    finally:
        plan_isolation.cache_clear()


# --- cgroups on synthetic hierarchies ---------------------------------------------------------

HYBRID_V1 = """12:pids:/user.slice/user-1000.slice
11:memory:/user.slice/user-1000.slice/session-3.scope
10:cpu,cpuacct:/user.slice
9:freezer:/
8:name=systemd:/user.slice/user-1000.slice/session-3.scope
0::/user.slice/user-1000.slice/session-3.scope
"""
PURE_V2 = "0::/user.slice/user-1000.slice/user@1000.service/app.slice/greencoder.scope\n"


def test_own_cgroups_of_a_hybrid_v1_system():
    mine = own_cgroups(HYBRID_V1)
    assert mine["pids"] == "/user.slice/user-1000.slice"
    assert mine["memory"] == "/user.slice/user-1000.slice/session-3.scope"
    assert mine["cpu"] == mine["cpuacct"] == "/user.slice"
    assert mine["freezer"] == "/"
    assert mine[""] == "/user.slice/user-1000.slice/session-3.scope"


def test_own_cgroups_of_a_pure_v2_system():
    assert own_cgroups(PURE_V2) == {"": "/user.slice/user-1000.slice/user@1000.service/app.slice/greencoder.scope"}
    assert own_cgroups("") == {}
    assert own_cgroups("garbage without colons\n") == {}


def make_v2_tree(root: Path, own: str, controllers: str) -> Path:
    (root / "cgroup.controllers").parent.mkdir(parents=True, exist_ok=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma\n")
    (root / "cgroup.procs").write_text("")
    group = root / own.lstrip("/")
    group.mkdir(parents=True, exist_ok=True)
    (group / "cgroup.controllers").write_text(controllers + "\n")
    return group


def make_v1_tree(root: Path, mine: dict[str, str], controllers=("memory", "pids", "cpuacct", "freezer")) -> None:
    for controller in controllers:
        (root / controller).mkdir(parents=True)
        (root / controller / "cgroup.procs").write_text("")
        (root / controller / mine[controller].lstrip("/")).mkdir(parents=True, exist_ok=True)


def test_detect_picks_v2_when_memory_and_pids_are_available(tmp_path):
    own = own_cgroups(PURE_V2)[""]
    group = make_v2_tree(tmp_path, own, "cpu memory pids")
    support = CgroupSupport.detect(root=tmp_path, proc_self_cgroup=PURE_V2)
    assert support is not None and support.version == "v2"
    assert support.parents == {"": group / "greencoder"}
    assert "+memory" in (group / "greencoder" / "cgroup.subtree_control").read_text()


def test_detect_rejects_v2_without_the_pids_controller(tmp_path):
    make_v2_tree(tmp_path, own_cgroups(PURE_V2)[""], "cpu memory")
    assert CgroupSupport.detect(root=tmp_path, proc_self_cgroup=PURE_V2) is None


def test_detect_picks_v1_on_a_hybrid_system_with_an_empty_unified_hierarchy(tmp_path):
    mine = own_cgroups(HYBRID_V1)
    make_v2_tree(tmp_path / "unified", mine[""], "")  # hybrid: v2 mounted, but no controllers in it
    make_v1_tree(tmp_path, mine)
    support = CgroupSupport.detect(root=tmp_path, proc_self_cgroup=HYBRID_V1)
    assert support is not None and support.version == "v1"
    assert support.parents["memory"] == tmp_path / "memory" / mine["memory"].lstrip("/") / "greencoder"
    assert support.parents["pids"] == tmp_path / "pids" / mine["pids"].lstrip("/") / "greencoder"
    assert set(support.parents) == {"memory", "pids", "cpuacct", "freezer"}


def test_detect_picks_v1_with_only_v1_hierarchies(tmp_path):
    mine = own_cgroups(HYBRID_V1)
    make_v1_tree(tmp_path, mine, controllers=("memory", "pids"))
    support = CgroupSupport.detect(root=tmp_path, proc_self_cgroup=HYBRID_V1)
    assert support is not None and support.version == "v1"
    assert set(support.parents) == {"memory", "pids"}


def test_detect_finds_nothing_without_memory_and_pids(tmp_path):
    assert CgroupSupport.detect(root=tmp_path, proc_self_cgroup=HYBRID_V1) is None
    make_v1_tree(tmp_path, own_cgroups(HYBRID_V1), controllers=("memory", "cpuacct"))
    assert CgroupSupport.detect(root=tmp_path, proc_self_cgroup=HYBRID_V1) is None


def test_detect_finds_nothing_when_the_probe_cannot_create_a_cgroup(tmp_path):
    group = make_v2_tree(tmp_path, own_cgroups(PURE_V2)[""], "memory pids")
    (group / "greencoder").write_text("a file where the parent cgroup would go")
    assert CgroupSupport.detect(root=tmp_path, proc_self_cgroup=PURE_V2) is None


def write_files(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder


def test_run_cgroup_readers_v2(tmp_path):
    path = write_files(tmp_path / "run", {
        "cpu.stat": "usage_usec 1500000\nuser_usec 1200000\nsystem_usec 300000\nnr_periods 0\n",
        "memory.events": "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n",
        "pids.events": "max 3\n",
        "memory.peak": "123456789\n",
        "cgroup.procs": "101\n102\n",
    })
    group = RunCgroup("v2", {"": path})
    assert group.cpu_seconds() == pytest.approx(1.5)
    assert group.oom_killed() is True
    assert group.hit_process_limit() is True
    assert group.peak_memory_bytes() == 123456789
    assert group.pids() == [101, 102]
    assert group.procs_files == [str(path / "cgroup.procs")]

    write_files(path, {"memory.events": "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", "pids.events": "max 0\n"})
    (path / "memory.peak").unlink()
    (path / "cpu.stat").unlink()
    assert group.oom_killed() is False
    assert group.hit_process_limit() is False
    assert group.peak_memory_bytes() is None  # kernels before 5.19 have no memory.peak
    assert group.cpu_seconds() is None


def test_run_cgroup_readers_v1(tmp_path):
    memory = write_files(tmp_path / "memory" / "run", {
        "memory.oom_control": "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        "memory.max_usage_in_bytes": "987654321\n",
        "memory.failcnt": "0\n",
    })
    pids = write_files(tmp_path / "pids" / "run", {"pids.events": "max 1\n", "cgroup.procs": "7\n"})
    cpuacct = write_files(tmp_path / "cpuacct" / "run", {"cpuacct.usage": "2500000000\n"})
    group = RunCgroup("v1", {"memory": memory, "pids": pids, "cpuacct": cpuacct})
    assert group.cpu_seconds() == pytest.approx(2.5)
    assert group.oom_killed() is True
    assert group.hit_process_limit() is True
    assert group.peak_memory_bytes() == 987654321
    assert group.pids() == [7]

    # Kernels before 4.13 have no oom_kill count: a failed charge (failcnt) stands in for it.
    write_files(memory, {"memory.oom_control": "oom_kill_disable 0\nunder_oom 0\n", "memory.failcnt": "0\n"})
    write_files(pids, {"pids.events": "max 0\n"})
    assert group.oom_killed() is False
    write_files(memory, {"memory.failcnt": "4\n"})
    assert group.oom_killed() is True
    assert group.hit_process_limit() is False
    assert RunCgroup("v1", {"memory": memory, "pids": pids}).cpu_seconds() is None  # no cpuacct hierarchy


# --- key lines of error reports ---------------------------------------------------------------

def test_key_line_of_a_python_traceback():
    stderr = textwrap.dedent("""\
        Traceback (most recent call last):
          File "/tmp/job/main.py", line 5, in <module>
            parse("x")
          File "/tmp/job/main.py", line 2, in parse
            raise KeyError("error: no key")
        KeyError: 'error: no key'
    """)
    assert key_line(stderr) == "KeyError: 'error: no key'"
    plain = stderr.replace("error: ", "")
    chained = plain + "\nDuring handling of the above exception, another exception occurred:\n\n" + plain.replace("KeyError", "TypeError")
    assert key_line(chained) == "TypeError: 'no key'"


def test_key_line_of_a_python_syntax_error():
    stderr = '  File "/tmp/job/main.py", line 1\n    def f(:\n          ^\nSyntaxError: invalid syntax\n'
    assert key_line(stderr) == "SyntaxError: invalid syntax"


def test_key_line_of_a_java_stack_trace():
    stderr = textwrap.dedent("""\
        Exception in thread "main" java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 3
        \tat Main.get(Main.java:3)
        \tat Main.main(Main.java:7)
        Caused by: java.lang.RuntimeException: error: inner
    """)
    assert key_line(stderr) == 'Exception in thread "main" java.lang.ArrayIndexOutOfBoundsException: Index 5 out of bounds for length 3'


def test_key_line_of_gpp_output():
    stderr = textwrap.dedent("""\
        main.cpp: In function 'int main()':
        main.cpp:3:12: warning: unused variable 'y' [-Wunused-variable]
        main.cpp:4:5: error: 'undeclared' was not declared in this scope
            4 |     undeclared("error: in a string");
              |     ^~~~~~~~~~
        main.cpp:5:1: error: expected ';' before '}' token
    """)
    assert key_line(stderr) == "main.cpp:4:5: error: 'undeclared' was not declared in this scope"


def test_key_line_edge_cases():
    assert key_line("") == ""
    assert key_line("\n  \n") == ""
    assert key_line("just some words\nthe last words\n") == "the last words"
    assert len(key_line("x" * 1000)) == 200
    assertion = "a.out: main.cpp:3: int main(): Assertion `x == 2' failed."
    assert key_line(assertion + "\nAborted\n") == assertion


# --- signals and CPU time at every isolation level --------------------------------------------
# In a PID namespace the program must not be the namespace's init (the kernel would drop SIGXCPU,
# abort()'s SIGABRT and a kill() of itself), and its CPU time must reach us even without a cgroup.

@pytest.fixture(scope="module", params=list(LEVELS))
def level_sandbox(request, tmp_path_factory):
    return make_sandbox(request.param, tmp_path_factory.mktemp("project"))


def test_signals_reach_the_program_at_every_level(level_sandbox):
    killed = run(level_sandbox, PYTHON,
                 "import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\nprint('after')\n")
    assert killed.status is Status.KILLED and killed.stdout == "before\n", killed.reason
    assert killed.stderr == ""  # nothing from the sandbox's own init ("Killed")
    terminated = run(level_sandbox, PYTHON, "import os, signal\nos.kill(os.getpid(), signal.SIGTERM)\nprint('after')\n")
    assert terminated.status is Status.RUNTIME_ERROR and terminated.reason == "killed by SIGTERM"


def test_cpu_limit_is_a_timeout_at_every_level(level_sandbox):
    result = run(level_sandbox, PYTHON, "while True:\n    pass\n", limits=Limits(wall_seconds=10, cpu_seconds=1))
    assert result.status is Status.TIMEOUT and result.reason == "used its 1 s of CPU time", result.reason
    # The soft limit (SIGXCPU), not the hard one a second later: CPU time, not wall time, which a
    # loaded machine stretches.
    assert result.cpu_seconds is not None and result.cpu_seconds < 1.8, result.cpu_seconds


def test_cpu_time_is_measured_at_every_level(level_sandbox):
    result = run(level_sandbox, PYTHON, "import time\nstart = time.process_time()\nwhile time.process_time() - start < 0.5:\n    pass\n")
    assert result.ok, result.reason
    assert result.cpu_seconds is not None and 0.3 <= result.cpu_seconds <= 1.5, (result.cpu_seconds, result.cpu_source)
    assert result.cpu_source == ("cgroup" if level_sandbox.cgroups is not None else "rusage")


def test_exit_status_passes_through_every_level(level_sandbox):
    result = run(level_sandbox, PYTHON, "import sys\nsys.stderr.write('bye\\n')\nsys.exit(3)\n")
    assert result.exit_code == 3 and result.signal is None
    assert result.stderr == "bye\n"


def test_macos_uses_sandbox_exec_denying_network_and_writes_outside_the_job(monkeypatch, tmp_path):
    """Only the command and profile can be checked on Linux; sandbox-exec itself runs on macOS."""
    monkeypatch.setattr(isolation_module.platform, "system", lambda: "Darwin")
    monkeypatch.setattr(os, "geteuid", lambda: 501)
    monkeypatch.setattr(isolation_module.shutil, "which", lambda name, *a, **k: f"/usr/bin/{name}")
    plan_isolation.cache_clear()
    try:
        with pytest.raises(SandboxUnavailable, match="sandbox-exec only.*--allow-weak-sandbox"):
            plan_isolation(SandboxPolicy(use_cgroup=False, allow_weak=False), None)  # weaker than bubblewrap
        plan = plan_isolation(SandboxPolicy(use_cgroup=False, allow_weak=True), None)
    finally:
        plan_isolation.cache_clear()
    assert plan.isolation.namespaces == "sandbox-exec"
    assert plan.isolation.network_isolated and plan.isolation.filesystem_isolated
    assert "WEAK: reads every file you can read, runs as you" in plan.isolation.label
    argv = plan.wrap(["python3", "main.py"], tmp_path / "job", None)
    assert argv[:2] == ["sandbox-exec", "-p"] and argv[3:] == ["python3", "main.py"]
    profile = argv[2]
    assert "(deny network*)" in profile and "(deny file-write*)" in profile
    assert f'(allow file-write* (subpath "{tmp_path / "job"}")' in profile
