"""Harness programs that call one expression of the user's code N times and report the loop time.

Measuring "the energy of calling EXPR" needs a program whose work is EXPR and little else. The
harness takes N from its first argument, so one compiled program serves the calibration run
(N = 0 measures start-up alone), the search for an N that runs long enough for the meter, and
every measured run. It reads a per-run nonce from stdin before any user code runs and prints one
machine-readable line last, carrying that nonce:

    GREENCODER_HARNESS {"nonce": "...", "repeats": N, "loop_ns": ...}

The host never takes a cost from this line (see protocol.py): it only checks it against what it
measured itself, so a program that prints a forged report, or exits before the loop ends, is
refused rather than believed.

The user's code cannot rewire the harness by naming things:
- C++: the user's file is its own translation unit (compiled next to the harness, never
  `#include`d into it), so its macros cannot touch the timing loop. The call is compiled into the
  user's unit as `greencoder_call_once()` (its value escapes through an empty `asm` statement, so
  an -O2 build cannot drop it), and the harness calls that through a volatile function pointer.
  With a trusted `driver` (evaluation's test units), the call is compiled into the harness unit.
- Java: the harness is its own compilation unit and names every JDK type fully qualified
  (`java.lang.System`, `java.lang.Long`), so a user class called `System` changes nothing.
- Python: the harness binds its timer, its loop iterator and its output before importing the
  user's module, so replacing `time.perf_counter_ns` or `itertools.repeat` there changes nothing.

The user's file is used as written: a C++ `main`, a Java `main` or a Python `__main__` block in it
does not run. Java's `call(() -> EXPR)` is overloaded for value and void lambdas, so a value
expression and a void one both compile (javac picks the value overload whenever EXPR has a value,
JLS 15.12.2.5); the value is stored in a static field.

What the harness cannot do: a program determined to subvert measurement from inside its own
process (reading the harness's memory, writing to its stack) can. The host's own figures bound
what such a program can gain (protocol.py).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.languages import Language
from greencoder.core.source import programs
from greencoder.core.source.programs import java_public_class

MARKER = "GREENCODER_HARNESS"
PYTHON_SOURCE = "solution.py"
PYTHON_HARNESS = "greencoder_harness.py"
CPP_SOURCE = "solution.cpp"
CPP_HARNESS = "greencoder_harness.cpp"
CPP_SOURCES = "greencoder_sources.rsp"
JAVA_DEFAULT_SOURCE = "Solution.java"
JAVA_HARNESS_CLASS = "GreencoderHarness"

MAX_REPORT_CHARS = 400
MAX_LOOP_NS = 10**15  # 11.6 days: far beyond any run's deadline


class HarnessOutputError(GreencoderError):
    """The harness's output has no single valid report line (the program crashed, exited early,
    or printed a report of its own)."""


@dataclass(frozen=True)
class HarnessProgram:
    """Files to write into the job folder, and what to build or run.

    entry: Python, the script to run (`python3 greencoder_harness.py N`); C++, `@greencoder_sources.rsp`,
    a gcc response file naming every translation unit; Java, the main class (`javac *.java`, then
    `java -cp . GreencoderHarness N`). `protected` names greencoder's own files, which the host
    checks are unchanged after every run."""

    files: dict[str, str]
    entry: str
    source_file: str  # where the user's code went, to map compiler messages back to it
    protected: tuple[str, ...] = ()


@dataclass(frozen=True)
class HarnessReport:
    repeats: int
    loop_seconds: float  # wall time of the N calls alone, as the program timed it (checked, never used as a cost)


def cpp_sources(units: Mapping[str, str], extra: Mapping[str, str] | None = None) -> tuple[dict[str, str], str]:
    """(files, entry) that compile every unit of `units` separately and link them into one program:
    a gcc response file lists them, so the single-entry compile command builds them all."""
    files = {**units, **(extra or {}), CPP_SOURCES: "\n".join(units) + "\n"}
    return files, f"@{CPP_SOURCES}"


def build_harness(
    language: Language,
    source: str,
    call: str,
    function: str | None = None,
    *,
    source_name: str | None = None,
    driver: Mapping[str, str] | None = None,
    declarations: str = "",
) -> HarnessProgram:
    """A program that runs `source` and evaluates `call` (an expression in the source's language)
    N times. With `function`, first check that the source defines it, so a typo is reported in one
    line rather than as a compiler error; `source_name` is the file name that line uses.

    `driver`: trusted files compiled next to the user's (evaluation's test drivers); the call is
    then compiled into the harness, with `declarations` (C++ prototypes) in scope, instead of into
    the user's code."""
    call = _clean_call(language, call)
    driver = dict(driver or {})
    if language.name == "python":
        if driver:
            raise InputError("Python workloads take one source file")
        program = _python_harness(source, call)
    elif language.name == "cpp":
        program = _cpp_harness(source, call, driver, declarations)
    elif language.name == "java":
        program = _java_harness(source, call, driver)
    else:
        raise InputError(f"greencoder cannot measure {language.display_name} code")
    if function is not None and not defines_function(language, source, function):
        raise InputError(f"function {function!r} not found in {source_name or program.source_file}")
    return program


_REPORT = re.compile(rf"{MARKER} ([^\n]*)")


def parse_harness_output(stdout: str, nonce: str, repeats: int) -> HarnessReport:
    """The one report in a harness's stdout, checked: it must carry this run's `nonce` and the
    `repeats` the host asked for, and hold a plausible loop time. A second report line, or one
    with another nonce, means the program printed reports of its own: refused."""
    reports = _REPORT.findall(stdout)
    if not reports:
        raise HarnessOutputError("the measured program printed no harness report (did it crash or exit early?)")
    if len(reports) > 1:
        raise HarnessOutputError(f"the measured program printed {len(reports)} harness reports: refused "
                                 "(only greencoder's harness may print one)")
    text = reports[0]
    shown = text[:200]
    if len(text) > MAX_REPORT_CHARS:
        raise HarnessOutputError(f"malformed harness report: {shown}...")
    try:
        report = json.loads(text)
        got_nonce, got_repeats, loop_ns = report["nonce"], report["repeats"], report["loop_ns"]
    except (ValueError, KeyError, TypeError) as exc:
        raise HarnessOutputError(f"malformed harness report: {shown}") from exc
    if got_nonce != nonce:
        raise HarnessOutputError("the harness report does not carry this run's nonce: the program printed it, "
                                 "not greencoder's harness (refused)")
    if type(got_repeats) is not int or type(loop_ns) is not int or not 0 <= loop_ns <= MAX_LOOP_NS:
        raise HarnessOutputError(f"malformed harness report: {shown}")
    if got_repeats != repeats:
        raise HarnessOutputError(f"the harness reports {got_repeats} calls where greencoder asked for {repeats}: refused")
    return HarnessReport(repeats=got_repeats, loop_seconds=loop_ns / 1e9)


def report_line(nonce: str, repeats: int, loop_ns: int) -> str:
    """The report as the harnesses print it (for tests and documentation)."""
    return f"{MARKER} " + json.dumps({"nonce": nonce, "repeats": repeats, "loop_ns": loop_ns})


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




def defines_function(language: Language, source: str, name: str) -> bool:
    """Whether `source` defines `name`: a Python def (or class / assigned name), or a C++/Java
    function or method of that name (the source model's view). Permissive on purpose: a miss here
    only means the compiler reports the problem instead."""
    if language.name == "python":
        return _python_defines(source, name)
    return programs.defines_function(source, language, name)


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
    Everything the harness itself uses (stdin's nonce, the timer, the iterator, the output) is read
    or bound before the user's module is imported. Not `timeit`, which turns the garbage collector
    off and would change what is measured."""
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
import os as _greencoder_os
import sys as _greencoder_sys
import time as _greencoder_time


def _greencoder_main():
    argv, stdout, exit_now = _greencoder_sys.argv, _greencoder_sys.stdout, _greencoder_os._exit
    write, clock, repeat = _greencoder_os.write, _greencoder_time.perf_counter_ns, _greencoder_itertools.repeat
    if len(argv) != 2 or not (argv[1].isascii() and argv[1].isdigit()):
        write(2, f"usage: {{argv[0]}} REPEATS\\n".encode())
        exit_now(2)
    repeats = int(argv[1])
    nonce = _greencoder_sys.stdin.readline().strip()
    _greencoder_sys.dont_write_bytecode = True  # leave the job folder as it was
    _greencoder_sys.path.insert(0, _greencoder_os.path.dirname(_greencoder_os.path.abspath(__file__)))
    import {PYTHON_SOURCE[:-3]} as user  # imported, not run: its __main__ block stays off

    exec(compile({loop!r}, "<greencoder call>", "exec"), vars(user))
    loop = user._greencoder_loop
    iterations = repeat(None, repeats)
    start = clock()
    loop(iterations)
    loop_ns = clock() - start
    try:
        stdout.flush()
    except Exception:  # noqa: BLE001 - the user's output is theirs; the report goes to fd 1 itself
        pass
    write(1, f'\\n{MARKER} {{{{"nonce": "{{nonce}}", "repeats": {{repeats}}, "loop_ns": {{loop_ns}}}}}}\\n'.encode())
    exit_now(0)


_greencoder_main()
'''
    return HarnessProgram({PYTHON_SOURCE: source, PYTHON_HARNESS: harness}, PYTHON_HARNESS, PYTHON_SOURCE,
                          protected=(PYTHON_HARNESS,))


# ---------------------------------------------------------------------------------------------
# C++

# Appended to the user's own translation unit: the call, with the user's declarations in scope.
_CPP_GLUE = """
// ---- appended by greencoder: the call to measure ---------------------------------------------
#undef main
template <class T> struct greencoder_is_void {{ static constexpr bool value = false; }};
template <> struct greencoder_is_void<void> {{ static constexpr bool value = true; }};
template <class F>
static void greencoder_run(F& body) {{
    if constexpr (greencoder_is_void<decltype(body())>::value) {{
        body();
    }} else {{
        auto&& greencoder_result = body();
        __asm__ __volatile__("" : : "g"(&greencoder_result) : "memory");
    }}
}}
void greencoder_call_once() {{
    auto greencoder_body = [&]() {{
        return (
{call}
        );
    }};
    greencoder_run(greencoder_body);
}}
"""

# The call compiled into the harness itself (trusted drivers only).
_CPP_DRIVER_CALL = """
{declarations}
template <class F>
static void greencoder_run(F& body) {{
    if constexpr (std::is_void_v<std::invoke_result_t<F&>>) {{
        body();
    }} else {{
        auto&& greencoder_result = body();
        __asm__ __volatile__("" : : "g"(&greencoder_result) : "memory");
    }}
}}

static void greencoder_call_once() {{
    auto greencoder_body = [&] {{
        return (
{call}
        );
    }};
    greencoder_run(greencoder_body);
}}
"""

_CPP_HARNESS = """\
// Generated by greencoder: calls greencoder_call_once() N times (N = argv[1]) and reports the loop time.
// The user's code is another translation unit: nothing it defines or #defines reaches this file.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <unistd.h>
{call_part}
namespace {{
char greencoder_nonce[72];

// Before any default-priority static initialiser of the user's unit runs: the nonce is gone from stdin by then.
__attribute__((constructor(101))) void greencoder_read_nonce() {{
    std::size_t length = 0;
    while (length + 1 < sizeof greencoder_nonce) {{
        const ssize_t got = read(0, greencoder_nonce + length, 1);
        if (got != 1 || greencoder_nonce[length] == '\\n') break;
        ++length;
    }}
    greencoder_nonce[length] = '\\0';
}}
}}  // namespace

int main(int argc, char** argv) {{
    char* greencoder_end = nullptr;
    const long long greencoder_repeats = argc == 2 ? std::strtoll(argv[1], &greencoder_end, 10) : -1;
    if (argc != 2 || *argv[1] == '\\0' || *greencoder_end != '\\0' || greencoder_repeats < 0) {{
        std::fprintf(stderr, "usage: %s REPEATS\\n", argv[0]);
        return 2;
    }}
    void (*volatile greencoder_call)() = &greencoder_call_once;
    const auto greencoder_start = std::chrono::steady_clock::now();
    for (long long greencoder_i = 0; greencoder_i < greencoder_repeats; ++greencoder_i) {{
        greencoder_call();
    }}
    const auto greencoder_stop = std::chrono::steady_clock::now();
    const long long greencoder_ns =
        std::chrono::duration_cast<std::chrono::nanoseconds>(greencoder_stop - greencoder_start).count();
    std::fflush(stdout);
    char greencoder_line[256];
    const int greencoder_length = std::snprintf(
        greencoder_line, sizeof greencoder_line, "\\n{marker} {{\\"nonce\\": \\"%s\\", \\"repeats\\": %lld, \\"loop_ns\\": %lld}}\\n",
        greencoder_nonce, greencoder_repeats, greencoder_ns);
    if (write(1, greencoder_line, greencoder_length) != greencoder_length) return 3;
    std::_Exit(0);
}}
"""


def _cpp_harness(source: str, call: str, driver: dict[str, str], declarations: str) -> HarnessProgram:
    """The user's file keeps its text (line numbers match) behind a `#define main`, so a `main` of
    its own becomes an ordinary function; the call goes into the user's unit, or, with a trusted
    driver, into the harness."""
    user = f"#define main greencoder_user_main\n#line 1 \"{CPP_SOURCE}\"\n{source}\n"
    if driver:
        call_part = _CPP_DRIVER_CALL.format(declarations=declarations, call=call)
    else:
        user += _CPP_GLUE.format(call=call)
        call_part = "\nvoid greencoder_call_once();  // defined in the user's unit, next to the code it calls\n"
    harness = _CPP_HARNESS.format(call_part=call_part, marker=MARKER)
    reserved = {CPP_SOURCE, CPP_HARNESS, CPP_SOURCES} & set(driver)
    if reserved:
        raise InputError(f"driver file names {sorted(reserved)} are greencoder's own")
    files, entry = cpp_sources({CPP_SOURCE: user, **driver, CPP_HARNESS: harness})
    return HarnessProgram(files, entry, CPP_SOURCE, protected=(CPP_HARNESS, CPP_SOURCES, *driver))


# ---------------------------------------------------------------------------------------------
# Java

_JAVA_HARNESS = """\
// Generated by greencoder: evaluates one expression N times (N = args[0]). Every JDK type is named
// fully qualified: a user class called System, Long or String changes nothing here.
import java.util.*;
import java.util.stream.*;

public final class {harness} {{
    @java.lang.FunctionalInterface
    interface GreencoderValueCall {{ java.lang.Object get() throws java.lang.Throwable; }}

    @java.lang.FunctionalInterface
    interface GreencoderVoidCall {{ void run() throws java.lang.Throwable; }}

    static java.lang.Object greencoderSink;

    // A lambda whose body has a value matches both; javac picks the value one (JLS 15.12.2.5).
    static java.lang.Object call(GreencoderValueCall body) throws java.lang.Throwable {{ return body.get(); }}

    static java.lang.Object call(GreencoderVoidCall body) throws java.lang.Throwable {{ body.run(); return null; }}

    public static void main(java.lang.String[] args) throws java.lang.Throwable {{
        // Bound before any user class is initialised: what they do to System.out or System.in is theirs.
        final java.io.FileOutputStream greencoderOut = new java.io.FileOutputStream(java.io.FileDescriptor.out);
        final java.lang.String greencoderNonce = new java.io.BufferedReader(
            new java.io.InputStreamReader(java.lang.System.in, java.nio.charset.StandardCharsets.US_ASCII)).readLine();
        long greencoderRepeats = -1;
        try {{
            greencoderRepeats = args.length == 1 ? java.lang.Long.parseLong(args[0]) : -1;
        }} catch (java.lang.NumberFormatException e) {{
            // reported below
        }}
        if (greencoderRepeats < 0) {{
            java.lang.System.err.println("usage: java {harness} REPEATS");
            java.lang.Runtime.getRuntime().halt(2);
        }}
        final long greencoderStart = java.lang.System.nanoTime();
        for (long greencoderI = 0; greencoderI < greencoderRepeats; greencoderI++) {{
            greencoderSink = call(() ->
{call}
            );
        }}
        final long greencoderNs = java.lang.System.nanoTime() - greencoderStart;
        java.lang.System.out.flush();
        final java.lang.String greencoderReport = "\\n{marker} {{\\"nonce\\": \\"" + greencoderNonce
            + "\\", \\"repeats\\": " + greencoderRepeats + ", \\"loop_ns\\": " + greencoderNs + "}}\\n";
        greencoderOut.write(greencoderReport.getBytes(java.nio.charset.StandardCharsets.US_ASCII));
        greencoderOut.flush();
        java.lang.Runtime.getRuntime().halt(0);
    }}
}}
"""

def _java_harness(source: str, call: str, driver: dict[str, str]) -> HarnessProgram:
    """The user's file keeps its public class's name; a `package` line is blanked (same line count,
    so compiler line numbers still match) because the harness lives in the default package, from
    which a named package's package-private classes could not be reached."""
    package = programs.java_package_range(source)
    if package:
        start, end = package
        source = source[:start] + re.sub(r"[^\n]", " ", source[start:end]) + source[end:]
    name = java_public_class(source)
    source_file = f"{name}.java" if name else JAVA_DEFAULT_SOURCE
    harness_file = f"{JAVA_HARNESS_CLASS}.java"
    if source_file == harness_file or harness_file in driver:
        raise InputError(f"the Java class name {JAVA_HARNESS_CLASS} is reserved for greencoder's harness")
    if source_file in driver:
        raise InputError(f"the user's file {source_file} clashes with a driver file")
    harness = _JAVA_HARNESS.format(harness=JAVA_HARNESS_CLASS, call=call, marker=MARKER)
    return HarnessProgram({source_file: source, **driver, harness_file: harness}, JAVA_HARNESS_CLASS, source_file,
                          protected=(harness_file, *driver))
