"""Harness programs that call one expression of the user's code N times and report the loop time.

Measuring "the energy of calling EXPR" needs a program whose work is EXPR and little else. The
harness takes N from its first argument, so one compiled program serves the calibration run
(N = 0 measures start-up alone), the search for an N that runs long enough for the meter, and
every measured run. It prints one machine-readable line last:

    GREENCODER_HARNESS {"repeats": N, "loop_ns": ...}

The user's file is used as written: a C++ `main`, a Java `main` or a Python `__main__` block in it
does not run. Each language keeps the optimiser or the runtime from skipping calls:
- C++: each call goes through a volatile function pointer (the compiler cannot see that a call is
  pure and hoist it out of the loop), and a value result escapes through an empty `asm` statement
  (it cannot be discarded), so -O2 builds still do N calls.
- Java: the result is stored in a static field; `call(() -> EXPR)` is overloaded for value and void
  lambdas, so a value expression and a void one both compile, and javac picks the value overload
  whenever EXPR has a value (JLS 15.12.2.5).
- Python: nothing is optimised away; the loop runs inside the user's module namespace (see
  `_python_harness`).
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.languages import Language
from greencoder.core.source_text import blank_comments_and_strings, java_public_class

MARKER = "GREENCODER_HARNESS"
PYTHON_SOURCE = "solution.py"
PYTHON_HARNESS = "greencoder_harness.py"
CPP_SOURCE = "solution.cpp"
CPP_HARNESS = "greencoder_harness.cpp"
JAVA_DEFAULT_SOURCE = "Solution.java"
JAVA_HARNESS_CLASS = "GreencoderHarness"


class HarnessOutputError(GreencoderError):
    """The harness's output has no valid report line (the program crashed, or printed over it)."""


@dataclass(frozen=True)
class HarnessProgram:
    """Files to write into the job folder, and what to build or run.

    entry: Python, the script to run (`python3 greencoder_harness.py N`); C++, the one file to
    compile (it #includes the user's file, which must not be compiled on its own); Java, the main
    class (`javac *.java`, then `java -cp . GreencoderHarness N`)."""

    files: dict[str, str]
    entry: str
    source_file: str  # where the user's code went, to map compiler messages back to it


@dataclass(frozen=True)
class HarnessReport:
    repeats: int
    loop_seconds: float  # wall time of the N calls alone, without start-up


def build_harness(
    language: Language,
    source: str,
    call: str,
    function: str | None = None,
    *,
    source_name: str | None = None,
) -> HarnessProgram:
    """A program that runs `source` and evaluates `call` (an expression in the source's language)
    N times. With `function`, first check that the source defines it, so a typo is reported in one
    line rather than as a compiler error; `source_name` is the file name that line uses."""
    call = _clean_call(language, call)
    if language.name == "python":
        program = _python_harness(source, call)
    elif language.name == "cpp":
        program = _cpp_harness(source, call)
    elif language.name == "java":
        program = _java_harness(source, call)
    else:
        raise InputError(f"greencoder cannot measure {language.display_name} code")
    if function is not None and not defines_function(language, source, function):
        raise InputError(f"function {function!r} not found in {source_name or program.source_file}")
    return program


def parse_harness_output(stdout: str) -> HarnessReport:
    """The report in a harness's stdout. The last report line counts; it may follow the user's own
    output on the same line when that output did not end with a newline."""
    matches = re.findall(rf"{MARKER} (\{{[^\n]*\}})", stdout)
    if not matches:
        raise HarnessOutputError("the measured program printed no harness report (did it crash or exit early?)")
    try:
        report = json.loads(matches[-1])
        repeats, loop_ns = report["repeats"], report["loop_ns"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessOutputError(f"malformed harness report: {matches[-1][:200]}") from exc
    if not (isinstance(repeats, int) and isinstance(loop_ns, int)) or repeats < 0 or loop_ns < 0:
        raise HarnessOutputError(f"malformed harness report: {matches[-1][:200]}")
    return HarnessReport(repeats=repeats, loop_seconds=loop_ns / 1e9)


# ---------------------------------------------------------------------------------------------
# checking the user's input


def _clean_call(language: Language, call: str) -> str:
    """The expression without surrounding space or a trailing `;` (a common slip in C++/Java)."""
    cleaned = call.strip()
    if language.braces:
        cleaned = cleaned.rstrip("; \t\r\n")
    if not cleaned:
        raise InputError("the call to measure is empty")
    if language.name == "python":
        try:
            ast.parse(cleaned, mode="eval")
        except SyntaxError as exc:
            raise InputError(f"call {cleaned!r} is not a Python expression: {exc.msg}") from None
    return cleaned


_NOT_A_DECLARATION = frozenset({"return", "new", "throw", "else", "case", "do", "delete", "co_return", "co_yield"})


def defines_function(language: Language, source: str, name: str) -> bool:
    """Whether `source` defines `name`: a Python def (or class / assigned name), or a C++/Java
    `NAME(` that follows a type or qualifier rather than an operator or `return`. Permissive on
    purpose: a miss here only means the compiler reports the problem instead."""
    if language.name == "python":
        return _python_defines(source, name)
    code = blank_comments_and_strings(source)
    for match in re.finditer(rf"(?<![\w$]){re.escape(name)}\s*\(", code):
        before = code[: match.start()].rstrip()
        if before.endswith("->") or not before:
            continue
        if before[-1] in ">]*&:":
            return True
        word = re.search(r"[\w$]+$", before)
        if word and word.group() not in _NOT_A_DECLARATION:
            return True
    return False


def _python_defines(source: str, name: str) -> bool:
    try:
        tree = ast.parse(source)
    except SyntaxError:  # the run will report it; here a textual def is good enough
        return re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(name)}\b", source, re.MULTILINE) is not None
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and node.id == name:
            return True
    return False


# ---------------------------------------------------------------------------------------------
# Python


def _python_harness(source: str, call: str) -> HarnessProgram:
    """The loop is compiled into the user's module namespace, not copied out of it: the expression
    sees every name there (underscore names too) with its live value (a counter the user code
    updates through `global` stays current), and the harness's own names cannot shadow the user's.
    Not `timeit`, which turns the garbage collector off and would change what is measured."""
    loop = (
        "def _greencoder_loop(_greencoder_iterations):\n"
        "    _greencoder_sink = None\n"
        "    for _greencoder_i in _greencoder_iterations:\n"
        "        _greencoder_sink = (\n"
        f"{call}\n"
        "        )\n"
        "    return _greencoder_sink\n"
    )
    harness = f'''"""Generated by greencoder: imports {PYTHON_SOURCE}, evaluates one expression N times (N = argv[1])."""
import itertools as _greencoder_itertools
import json as _greencoder_json
import os as _greencoder_os
import sys as _greencoder_sys
import time as _greencoder_time

if len(_greencoder_sys.argv) != 2 or not (_greencoder_sys.argv[1].isascii() and _greencoder_sys.argv[1].isdigit()):
    _greencoder_sys.exit(f"usage: {{_greencoder_sys.argv[0]}} REPEATS")
_greencoder_repeats = int(_greencoder_sys.argv[1])
_greencoder_sys.dont_write_bytecode = True  # leave the job folder as it was
_greencoder_sys.path.insert(0, _greencoder_os.path.dirname(_greencoder_os.path.abspath(__file__)))
import {PYTHON_SOURCE[:-3]} as _greencoder_user  # imported, not run: its __main__ block stays off

exec(compile({loop!r}, "<greencoder call>", "exec"), vars(_greencoder_user))
_greencoder_iterations = _greencoder_itertools.repeat(None, _greencoder_repeats)
_greencoder_start = _greencoder_time.perf_counter_ns()
_greencoder_user._greencoder_loop(_greencoder_iterations)
_greencoder_loop_ns = _greencoder_time.perf_counter_ns() - _greencoder_start
print("{MARKER} " + _greencoder_json.dumps({{"repeats": _greencoder_repeats, "loop_ns": _greencoder_loop_ns}}), flush=True)
'''
    return HarnessProgram({PYTHON_SOURCE: source, PYTHON_HARNESS: harness}, PYTHON_HARNESS, PYTHON_SOURCE)


# ---------------------------------------------------------------------------------------------
# C++

_CPP_HARNESS = """\
// Generated by greencoder: includes {source}, evaluates one expression N times (N = argv[1]).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <type_traits>

#define main greencoder_user_main  // the user's main, if any, becomes an ordinary function
#include "{source}"
#undef main

// Reached through a volatile function pointer, so the compiler cannot see what a call does (and
// cannot hoist a pure call out of the loop); a value result escapes through an empty asm statement,
// so it cannot be discarded either.
template <class F>
static void greencoder_run(F& body) {{
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {{
        body();
    }} else {{
        auto&& greencoder_result = body();
        __asm__ __volatile__("" : : "g"(&greencoder_result) : "memory");
    }}
}}

int main(int argc, char** argv) {{
    char* greencoder_end = nullptr;
    const long long greencoder_repeats = argc == 2 ? std::strtoll(argv[1], &greencoder_end, 10) : -1;
    if (argc != 2 || *argv[1] == '\\0' || *greencoder_end != '\\0' || greencoder_repeats < 0) {{
        std::fprintf(stderr, "usage: %s REPEATS\\n", argv[0]);
        return 2;
    }}
    auto greencoder_body = [&] {{
        return (
{call}
        );
    }};
    void (*volatile greencoder_call)(decltype(greencoder_body)&) = &greencoder_run<decltype(greencoder_body)>;
    const auto greencoder_start = std::chrono::steady_clock::now();
    for (long long greencoder_i = 0; greencoder_i < greencoder_repeats; ++greencoder_i) {{
        greencoder_call(greencoder_body);
    }}
    const auto greencoder_stop = std::chrono::steady_clock::now();
    const long long greencoder_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(greencoder_stop - greencoder_start).count();
    std::printf("{marker} {{\\"repeats\\": %lld, \\"loop_ns\\": %lld}}\\n", greencoder_repeats, greencoder_ns);
    std::fflush(stdout);
    return 0;
}}
"""


def _cpp_harness(source: str, call: str) -> HarnessProgram:
    harness = _CPP_HARNESS.format(source=CPP_SOURCE, call=call, marker=MARKER)
    return HarnessProgram({CPP_SOURCE: source, CPP_HARNESS: harness}, CPP_HARNESS, CPP_SOURCE)


# ---------------------------------------------------------------------------------------------
# Java

_JAVA_HARNESS = """\
// Generated by greencoder: evaluates one expression N times (N = args[0]).
import java.util.*;
import java.util.stream.*;

public class {harness} {{
    @FunctionalInterface
    interface GreencoderValueCall {{ Object get() throws Throwable; }}

    @FunctionalInterface
    interface GreencoderVoidCall {{ void run() throws Throwable; }}

    static Object greencoderSink;

    // A lambda whose body has a value matches both; javac picks the value one (JLS 15.12.2.5).
    static Object call(GreencoderValueCall body) throws Throwable {{ return body.get(); }}

    static Object call(GreencoderVoidCall body) throws Throwable {{ body.run(); return null; }}

    public static void main(String[] args) throws Throwable {{
        long greencoderRepeats = -1;
        try {{
            greencoderRepeats = args.length == 1 ? Long.parseLong(args[0]) : -1;
        }} catch (NumberFormatException e) {{
            // reported below
        }}
        if (greencoderRepeats < 0) {{
            System.err.println("usage: java {harness} REPEATS");
            System.exit(2);
        }}
        long greencoderStart = System.nanoTime();
        for (long greencoderI = 0; greencoderI < greencoderRepeats; greencoderI++) {{
            greencoderSink = call(() ->
{call}
            );
        }}
        long greencoderNs = System.nanoTime() - greencoderStart;
        System.out.println("{marker} {{\\"repeats\\": " + greencoderRepeats + ", \\"loop_ns\\": " + greencoderNs + "}}");
        System.out.flush();
    }}
}}
"""

_PACKAGE = re.compile(r"^\s*package\s+[\w.\s]+;", re.MULTILINE)


def _java_harness(source: str, call: str) -> HarnessProgram:
    """The user's file keeps its public class's name; a `package` line is blanked (same line count,
    so compiler line numbers still match) because the harness lives in the default package, from
    which a named package's package-private classes could not be reached."""
    package = _PACKAGE.search(blank_comments_and_strings(source))
    if package:
        source = source[: package.start()] + re.sub(r"[^\n]", " ", package.group()) + source[package.end() :]
    name = java_public_class(source)
    source_file = f"{name}.java" if name else JAVA_DEFAULT_SOURCE
    if source_file == f"{JAVA_HARNESS_CLASS}.java":
        raise InputError(f"the Java class name {JAVA_HARNESS_CLASS} is reserved for greencoder's harness")
    harness = _JAVA_HARNESS.format(harness=JAVA_HARNESS_CLASS, call=call, marker=MARKER)
    return HarnessProgram({source_file: source, f"{JAVA_HARNESS_CLASS}.java": harness}, JAVA_HARNESS_CLASS, source_file)
