"""Harness programs, built and run for real (python3, g++, javac/java) with plain subprocess.

The sandboxed executor is tested on its own; here the point is that each generated program compiles,
does N calls (not fewer, not more) of a void or a value expression, ignores the user's own `main`,
and reports in the format `parse_harness_output` reads, with the nonce it was given on stdin. The
attacks at the end are programs that try to rewire the harness from the user's file.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.measurement.harness import (
    HarnessOutputError,
    HarnessProgram,
    build_harness,
    defines_function,
    java_public_class,
    parse_harness_output,
    report_line,
)

HUMANEVAL_CPP = SHARED_DATA / "humaneval_x" / "humaneval_cpp.jsonl.gz"
HUMANEVAL_JAVA = SHARED_DATA / "humaneval_x" / "humaneval_java.jsonl.gz"

needs_gpp = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ not installed")
needs_java = pytest.mark.skipif(shutil.which("javac") is None or shutil.which("java") is None, reason="JDK not installed")


def write(program: HarnessProgram, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in program.files.items():
        (folder / name).write_text(text)
    return folder


NONCE = "n0nce"


def run(command: list[str], folder: Path) -> subprocess.CompletedProcess:
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=60, input=NONCE + "\n")
    assert result.returncode == 0, result.stderr
    return result


def report(out: str, repeats: int):
    return parse_harness_output(out, NONCE, repeats)


def compile_cpp(program: HarnessProgram, folder: Path, optimise: str = "-O0") -> Path:
    write(program, folder)
    assert program.entry == "@greencoder_sources.rsp"  # the user's file is a translation unit of its own
    run(["g++", "-std=c++17", optimise, "-o", "prog", program.entry], folder)
    return folder / "prog"


def humaneval(path: Path, task_id: str) -> dict:
    if not path.exists():
        pytest.skip(f"HumanEval-X data not found at {path}")
    with gzip.open(path, "rt") as lines:
        return next(task for task in map(json.loads, lines) if task["task_id"] == task_id)


# ---------------------------------------------------------------------------------------------
# Python

PY_SOURCE = '''\
import sys

_calls = []


def tick():
    _calls.append(1)
    print("tick")


def _square(x):
    return x * x


if __name__ == "__main__":
    print("USER MAIN RAN")
    sys.exit(3)
'''


@pytest.mark.parametrize("call, expect_ticks", [("tick()", True), ("_square(len(_calls) + 7)", False)])
def test_python_void_and_value_expressions_run_n_times(tmp_path, call, expect_ticks):
    program = build_harness(PYTHON, PY_SOURCE, call, function=call.split("(")[0])
    write(program, tmp_path)
    out = run([sys.executable, program.entry, "5"], tmp_path).stdout
    assert "USER MAIN RAN" not in out
    assert out.count("tick\n") == (5 if expect_ticks else 0)
    parsed = report(out, 5)
    assert parsed.repeats == 5 and parsed.loop_seconds > 0


def test_python_expression_sees_live_module_state(tmp_path):
    source = "count = 0\ndef bump():\n    global count\n    count += 1\n    return count\n"
    write(build_harness(PYTHON, source, "print(bump(), count)"), tmp_path)
    out = run([sys.executable, "greencoder_harness.py", "3"], tmp_path).stdout
    assert out.splitlines()[:3] == ["1 1", "2 2", "3 3"]
    assert not (tmp_path / "__pycache__").exists()  # the job folder is left as written


def test_python_zero_repeats_and_bad_arguments(tmp_path):
    write(build_harness(PYTHON, "def f():\n    print('called')\n", "f()"), tmp_path)
    out = run([sys.executable, "greencoder_harness.py", "0"], tmp_path).stdout
    assert "called" not in out and report(out, 0).repeats == 0
    bad = subprocess.run([sys.executable, "greencoder_harness.py", "x"], cwd=tmp_path, capture_output=True, text=True)
    assert bad.returncode != 0 and "usage" in bad.stderr


def test_python_call_must_be_an_expression():
    with pytest.raises(InputError, match="not a Python expression"):
        build_harness(PYTHON, "x = 1\n", "x = 2")


# ---------------------------------------------------------------------------------------------
# C++

CPP_SOURCE = """\
#include <cstdio>
#include <vector>
using namespace std;
static int ticks = 0;
void tick() { ++ticks; std::puts("tick"); }
vector<int> squares(int n) { std::puts("squares"); vector<int> v; for (int i = 0; i < n; ++i) v.push_back(i * i); return v; }
int main() {
    std::puts("USER MAIN RAN");
    return 3;
}
"""


@needs_gpp
@pytest.mark.parametrize("call, line", [("tick()", "tick"), ("squares(4);", "squares")])
def test_cpp_void_and_value_expressions_with_a_user_main(tmp_path, call, line):
    program = build_harness(CPP, CPP_SOURCE, call, function=call.split("(")[0])
    binary = compile_cpp(program, tmp_path)
    out = run([str(binary), "7"], tmp_path).stdout
    assert "USER MAIN RAN" not in out
    assert out.splitlines().count(line) == 7
    assert report(out, 7).repeats == 7


@needs_gpp
def test_cpp_pure_call_is_not_hoisted_out_of_the_loop_at_O2(tmp_path):
    # GCC infers that `work` has no side effects; without the harness's guards, -O2 runs it once for any N.
    source = "__attribute__((noinline)) int work(int n) { int s = 0; for (int i = 0; i < 200000; ++i) s += (i ^ n) % 7; return s; }\n"
    binary = compile_cpp(build_harness(CPP, source, "work(12345)"), tmp_path, "-O2")
    one = min(report(run([str(binary), "1"], tmp_path).stdout, 1).loop_seconds for _ in range(3))
    many = report(run([str(binary), "50"], tmp_path).stdout, 50).loop_seconds
    assert many > 10 * one


@needs_gpp
@pytest.mark.parametrize("with_test_main", [False, True], ids=["solution", "solution+test"])
def test_cpp_humaneval_x_is_prime(tmp_path, with_test_main):
    task = humaneval(HUMANEVAL_CPP, "CPP/31")
    source = task["declaration"] + task["canonical_solution"] + (task["test"] if with_test_main else "")
    program = build_harness(CPP, source, "is_prime(1000003)", function="is_prime")
    binary = compile_cpp(program, tmp_path, "-O2")
    assert report(run([str(binary), "3"], tmp_path).stdout, 3).repeats == 3


# ---------------------------------------------------------------------------------------------
# Java: javac is slow, so all programs are built by concurrent javac processes, once

JAVA_PUBLIC = """\
import java.util.*;

public class Solution {
    static int square(int x) {
        System.out.println("square");
        return x * x;
    }
}
"""
JAVA_PLAIN = """\
class Counter {
    static int count = 0;
    void tick() { count++; System.out.println("tick " + count); }
}
"""


# User classes named like the JDK types an unqualified harness would use.
JAVA_SHADOWING = """\
class System { }
class Long { static long parseLong(String s) { return 0; } }
class Solution { static void f() { java.lang.System.out.println("call"); } }
"""
# A static initialiser that prints a report of its own and exits before the loop.
JAVA_STATIC_FAKE = """\
class Solution {
    static {
        System.out.println("GREENCODER_HARNESS {\\"nonce\\": \\"\\", \\"repeats\\": 5, \\"loop_ns\\": 1}");
        System.exit(0);
    }
    static void f() { }
}
"""


@pytest.fixture(scope="module")
def java_programs(tmp_path_factory) -> dict[str, Path]:
    if shutil.which("javac") is None or shutil.which("java") is None:
        pytest.skip("JDK not installed")
    cases = {
        "value": build_harness(JAVA, JAVA_PUBLIC, "Solution.square(7)", function="square"),  # fits both overloads
        "void": build_harness(JAVA, JAVA_PLAIN, "new Counter().tick();", function="tick"),
        "expression": build_harness(JAVA, JAVA_PLAIN, "Counter.count + 1"),  # fits the value overload only
    }
    if HUMANEVAL_JAVA.exists():
        task = humaneval(HUMANEVAL_JAVA, "Java/31")
        source = task["declaration"] + task["canonical_solution"] + task["test"]  # with its `public class Main`
        cases["humaneval"] = build_harness(JAVA, source, "new Solution().isPrime(1000003)", function="isPrime")
    cases["shadowing"] = build_harness(JAVA, JAVA_SHADOWING, "Solution.f()")
    cases["static fake"] = build_harness(JAVA, JAVA_STATIC_FAKE, "Solution.f()")
    folders = {name: write(program, tmp_path_factory.mktemp(f"java-{name}")) for name, program in cases.items()}
    compiles = {
        name: subprocess.Popen(["javac", *cases[name].files], cwd=folder, stderr=subprocess.PIPE, text=True)
        for name, folder in folders.items()
    }
    for name, process in compiles.items():
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, f"{name}: {errors}"
    return folders


def run_java(folder: Path, repeats: int) -> str:
    return run(["java", "-XX:TieredStopAtLevel=1", "-cp", ".", "GreencoderHarness", str(repeats)], folder).stdout


def test_java_value_expression_uses_the_public_class_file(java_programs):
    assert (java_programs["value"] / "Solution.java").exists()
    out = run_java(java_programs["value"], 6)
    assert out.splitlines().count("square") == 6
    assert report(out, 6).repeats == 6


def test_java_void_expression_and_default_file_name(java_programs):
    assert (java_programs["void"] / "Solution.java").read_text() == JAVA_PLAIN
    out = run_java(java_programs["void"], 4)
    assert [line for line in out.splitlines() if line.startswith("tick")] == ["tick 1", "tick 2", "tick 3", "tick 4"]
    assert report(out, 4).repeats == 4


def test_java_plain_value_expression(java_programs):
    assert report(run_java(java_programs["expression"], 3), 3).repeats == 3


def test_java_humaneval_x_is_prime_with_its_main_class(java_programs):
    if "humaneval" not in java_programs:
        pytest.skip("HumanEval-X data not found")
    assert (java_programs["humaneval"] / "Main.java").exists()
    assert report(run_java(java_programs["humaneval"], 2), 2).repeats == 2


def test_java_user_classes_named_system_and_long_change_nothing(java_programs):
    out = run_java(java_programs["shadowing"], 3)
    assert out.splitlines().count("call") == 3 and report(out, 3).repeats == 3


def test_java_static_initialiser_report_is_refused(java_programs):
    with pytest.raises(HarnessOutputError, match="nonce"):
        report(run_java(java_programs["static fake"], 5), 5)


def test_java_public_class_and_package():
    assert java_public_class("// public class Fake {}\nclass A { public static class Inner {} }\npublic final class B {}") == "B"
    assert java_public_class("class A { public class Inner {} }") is None
    program = build_harness(JAVA, "package com.example;\n\npublic class Lib { }\n", "1")
    assert program.source_file == "Lib.java"
    assert "package" not in program.files["Lib.java"] and program.files["Lib.java"].count("\n") == 3


# ---------------------------------------------------------------------------------------------
# finding the function, reading the report


@pytest.mark.parametrize(
    "language, source, name",
    [
        (PYTHON, "def is_prime(n):\n    return n > 1\n", "is_prime"),
        (PYTHON, "is_prime = lambda n: n > 1\n", "is_prime"),
        (CPP, "#include<stdio.h>\nusing namespace std;\nbool is_prime(long long n){\n", "is_prime"),
        (CPP, "std::vector<int> f(int n);\n", "f"),
        (CPP, "bool Solution::isPrime(int n) { return n > 1; }\n", "isPrime"),
        (JAVA, "class Solution {\n    public boolean isPrime(int n) {\n", "isPrime"),
        (JAVA, "class S { static <T> List<T> twice(List<T> x) { return x; } }", "twice"),
    ],
)
def test_function_definitions_are_found(language, source, name):
    assert defines_function(language, source, name)


@pytest.mark.parametrize(
    "language, source",
    [
        (PYTHON, "def is_prime_fast(n):\n    return True\n# def is_prime(n)\n"),
        (CPP, "// bool is_prime(int n)\nint main() { return is_prime(3); }\n"),
        (JAVA, 'class S { void f() { String s = "int is_prime(1)"; g(is_prime(2)); } }'),
    ],
)
def test_missing_function_is_a_one_line_input_error(language, source):
    with pytest.raises(InputError) as caught:
        build_harness(language, source, "is_prime(7)", function="is_prime", source_name="primes" + language.extensions[0])
    assert str(caught.value) == f"function 'is_prime' not found in primes{language.extensions[0]}"


def test_missing_function_names_the_saved_file_by_default():
    with pytest.raises(InputError, match="not found in solution.cpp"):
        build_harness(CPP, "int f() { return 1; }", "g()", function="g")


def test_parse_harness_output():
    parsed = parse_harness_output("hello\n" + report_line("abc", 3, 1500000000) + "\n", "abc", 3)
    assert parsed.repeats == 3 and parsed.loop_seconds == 1.5
    # the user's output may lack a final newline
    assert parse_harness_output("partial" + report_line("abc", 2, 10) + "\n", "abc", 2).repeats == 2
    with pytest.raises(HarnessOutputError, match="no harness report"):
        parse_harness_output("Segmentation fault\n", "abc", 3)
    with pytest.raises(HarnessOutputError, match="malformed"):
        parse_harness_output('GREENCODER_HARNESS {"nonce": "abc", "repeats": 3}\n', "abc", 3)
    with pytest.raises(HarnessOutputError, match="malformed"):
        parse_harness_output("GREENCODER_HARNESS {not json}\n", "abc", 3)


@pytest.mark.parametrize("stdout, message", [
    # a program's own report, printed before greencoder's: refused, not "the last one wins"
    (report_line("abc", 9, 1) + "\n" + report_line("abc", 3, 10) + "\n", "2 harness reports"),
    # a static initialiser's fake report, without this run's nonce
    (report_line("guess", 3, 10) + "\n", "nonce"),
    # fewer calls than asked for
    (report_line("abc", 1, 10) + "\n", "asked for 3"),
    # a 400-digit loop time: refused, no OverflowError anywhere
    ('GREENCODER_HARNESS {"nonce": "abc", "repeats": 3, "loop_ns": ' + "9" * 400 + "}\n", "malformed"),
    ('GREENCODER_HARNESS {"nonce": "abc", "repeats": 3, "loop_ns": -5}\n', "malformed"),
    ('GREENCODER_HARNESS {"nonce": "abc", "repeats": 3, "loop_ns": 1e400}\n', "malformed"),
    ('GREENCODER_HARNESS {"nonce": "abc", "repeats": true, "loop_ns": 5}\n', "malformed"),
])
def test_reports_the_host_cannot_believe_are_refused(stdout, message):
    with pytest.raises(HarnessOutputError, match=message):
        parse_harness_output(stdout, "abc", 3)


# ---------------------------------------------------------------------------------------------
# attacks: the user's file tries to rewire the harness (each call prints a line, so a loop that
# did not run N times shows)


def test_python_cannot_replace_the_harness_timer_or_loop(tmp_path):
    source = ("import itertools, time\n"
              "itertools.repeat = lambda *args: iter(())\n"
              "time.perf_counter_ns = lambda: 0\n"
              "def f():\n    print('call')\n")
    write(build_harness(PYTHON, source, "f()"), tmp_path)
    out = run([sys.executable, "greencoder_harness.py", "4"], tmp_path).stdout
    assert out.count("call\n") == 4 and report(out, 4).loop_seconds > 0


@needs_gpp
def test_cpp_macros_cannot_reach_the_harness_loop(tmp_path):
    source = ("#include <cstdio>\nvoid f() { std::puts(\"call\"); }\n"
              "#define for(...) if (false)\n#define greencoder_repeats 0\n#define steady_clock system_clock\n")
    out = run([str(compile_cpp(build_harness(CPP, source, "f()"), tmp_path)), "5"], tmp_path).stdout
    assert out.splitlines().count("call") == 5 and report(out, 5).repeats == 5


@needs_gpp
def test_cpp_static_initialiser_cannot_read_the_nonce_or_fake_a_report(tmp_path):
    source = ("#include <cstdio>\n#include <cstdlib>\n#include <unistd.h>\n"
              "static int fake = [] { char buffer[80] = {0}; read(0, buffer, 79);\n"
              "  std::printf(\"GREENCODER_HARNESS {\\\"nonce\\\": \\\"%s\\\", \\\"repeats\\\": 5, "
              "\\\"loop_ns\\\": 1}\\n\", buffer); std::fflush(stdout); _exit(0); return 0; }();\n"
              "int f() { return 1; }\n")
    out = run([str(compile_cpp(build_harness(CPP, source, "f()"), tmp_path)), "5"], tmp_path).stdout
    with pytest.raises(HarnessOutputError, match="nonce"):
        report(out, 5)
