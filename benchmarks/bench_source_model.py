"""Finding functions in big files: the regex scanners greencoder had vs the tree-sitter source model.

    .venv/bin/python benchmarks/bench_source_model.py [--cpp-bytes 1000000] [--python-bytes 1300000]

On a generated C++ file (~1 MB) and Python file (~1.3 MB) full of functions, classes, templates,
lambdas, bench comments and doctests, prints side by side in one run (least CPU time of --repeats,
so that other processes on a shared machine do not count):
1. the old scanner (a copy of the regex/`ast` code `greencoder.server.functions` had, below): all
   functions, and the function at one line (which re-scanned the whole file for every code action);
2. the source model: a full parse, an incremental re-parse after a one-character edit, the
   whole-file query (C), turning its nodes into spans and workloads (Python), and `function_at`
   on an already parsed version (what a code action costs once the document is parsed);
3. how long a thread that only sleeps 1 ms at a time is kept from running (the GIL) while another
   thread parses and lists the functions: `Parser.parse(bytes)` holds the GIL for the whole parse,
   the chunked parse of `SourceDocument` and the sliced whole-file query hand it over regularly.
   The floor is the same stall beside a thread running plain Python for as long as a parse (the
   interpreter's switch interval plus the machine's scheduling); compare the other stalls with it.
Both implementations must agree on the functions' names (checked, not timed).
"""

from __future__ import annotations

import argparse
import ast
import re
import threading
import time
from collections.abc import Callable

import tree_sitter

from greencoder.core.languages import CPP, PYTHON, Language
from greencoder.core.source import SourceDocument, function_at, functions_in
from greencoder.core.source.functions import captures, spans
from greencoder.core.source.parsing import grammar
from greencoder.core.source.workloads import attach_workloads

# The regex scanner greencoder used before the source model, kept here only as the baseline the
# benchmark compares against.
_BLANKABLE = re.compile(
    r'"""[\s\S]*?"""'  # Java text block
    r"|//[^\n]*|/\*[\s\S]*?(?:\*/|$)"  # comments
    r'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''  # string and character literals
)


def blank_comments_and_strings(code: str) -> str:
    return _BLANKABLE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), code)


# ---------------------------------------------------------------------------------------------
# generated sources


def cpp_source(size: int) -> str:
    total, parts, index = 0, ["#include <vector>\n#include <string>\nusing namespace std;\n\n"], 0
    while total < size:
        parts.append(f'''// Sum of the first n values, step {index}. A brace in a comment: {{
// greencoder: bench sum_{index}(1000)
long sum_{index}(int n) {{
    long total = 0;
    for (int k = 0; k < n; k++) {{
        if (k % {index % 7 + 2} == 0) {{ total += k; }} else {{ total -= 1; }}
    }}
    string s = "{{ not code }}";
    return total + (long) s.size();
}}

struct Box{index} {{
    int value;
    explicit Box{index}(int v) : value(v) {{}}
    int twice() const {{ return 2 * value; }}
    bool lessThan(const Box{index}& other) const {{ return value < other.value; }}
}};

template <typename T>
T pick_{index}(const vector<T>& xs) {{
    auto best = [](T a, T b) {{ return a < b ? b : a; }};
    T out = xs[0];
    for (const T& x : xs) out = best(out, x);
    return out;
}}

''')
        total += len(parts[-1])
        index += 1
    return "".join(parts)


def python_source(size: int) -> str:
    total, parts, index = 0, ["import math\n\n\n"], 0
    while total < size:
        parts.append(f'''# greencoder: bench is_prime_{index}(1000003)
def is_prime_{index}(n):
    """Whether n is prime; {{ braces }} in a docstring.

    >>> is_prime_{index}(7)
    True
    """
    if n < 2:
        return False
    for d in range(2, int(math.isqrt(n)) + 1):
        if n % d == 0:
            return False
    return True


class Shape{index}:
    @staticmethod
    def area(w, h):
        """>>> Shape{index}.area(2, 3)"""
        return w * h

    async def fetch(self, key):
        values = [x * 2 for x in range({index % 10 + 1})]
        return values, key


''')
        total += len(parts[-1])
        index += 1
    return "".join(parts)


# ---------------------------------------------------------------------------------------------
# the old scanner (greencoder.server.functions before the source model), kept as the baseline

_OLD_MARKER = re.compile(r"greencoder:\s*bench\s+(?P<call>.+?)\s*(?:\*/)?\s*$")
_OLD_HEADER = re.compile(r"\b(?P<name>[A-Za-z_]\w*)\s*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)\s*"
                         r"(?:const\s*)?(?:noexcept\s*)?(?:throws\s+[\w.,\s]+)?(?:->\s*[\w:<>,\s*&]+)?\{")
_OLD_NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "do", "else", "synchronized",
                      "try", "new"}


def _old_bench_call(lines: list[str], first: int, last: int) -> str | None:
    for line in lines[first : last + 1]:
        match = _OLD_MARKER.search(line)
        if match:
            return match.group("call").strip().rstrip(";")
    return None


def _old_leading_block(lines: list[str], header_line: int, comment: str) -> int:
    first = header_line
    while first > 0:
        text = lines[first - 1].strip()
        if text.startswith((comment, "@", "/*", "*", "*/")) and text:
            first -= 1
        else:
            break
    return first


def old_python_functions(source: str) -> list[tuple[str, int, int, str | None]]:
    tree = ast.parse(source)
    lines = source.splitlines()
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        header = node.lineno - 1
        above = _old_leading_block(lines, min([header, *(d.lineno - 1 for d in node.decorator_list)]), "#")
        call = _old_bench_call(lines, above, node.end_lineno - 1)
        if call is None:
            docstring = ast.get_docstring(node) or ""
            examples = [line.strip()[4:] for line in docstring.splitlines() if line.strip().startswith(">>> ")]
            if examples:
                call = examples[0] if len(examples) == 1 else "(" + ", ".join(examples) + ")"
        found.append((node.name, header, node.end_lineno - 1, call))
    return found


def old_braced_functions(source: str, language: Language) -> list[tuple[str, int, int, str | None]]:
    code = blank_comments_and_strings(source)
    lines = source.splitlines()
    found = []
    for match in _OLD_HEADER.finditer(code):
        name = match.group("name")
        if name in _OLD_NOT_FUNCTIONS:
            continue
        depth, end = 0, None
        for index in range(match.end() - 1, len(code)):
            if code[index] == "{":
                depth += 1
            elif code[index] == "}":
                depth -= 1
                if depth == 0:
                    end = index
                    break
        if end is None:
            continue
        header_line = code.count("\n", 0, match.start("name"))
        end_line = code.count("\n", 0, end)
        call = _old_bench_call(lines, _old_leading_block(lines, header_line, language.line_comment), end_line)
        found.append((name, header_line, end_line, call))
    return found


def old_functions(source: str, language: Language) -> list[tuple[str, int, int, str | None]]:
    return old_python_functions(source) if language is PYTHON else old_braced_functions(source, language)


def old_function_at(source: str, language: Language, line: int) -> tuple | None:
    containing = [s for s in old_functions(source, language) if s[1] <= line <= s[2]]
    return min(containing, key=lambda s: s[2] - s[1]) if containing else None


# ---------------------------------------------------------------------------------------------
# measuring


def best(run: Callable[[], object], repeats: int) -> float:
    """Least CPU time of `repeats` runs: on a shared machine, wall time mostly measures the others."""
    times = []
    for _ in range(repeats):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def longest_stall(work: Callable[[], object]) -> float:
    """Longest time a thread sleeping 1 ms at a time waits to run again while `work` runs in another."""
    done = threading.Event()
    worker = threading.Thread(target=lambda: (work(), done.set()))
    longest, last = 0.0, time.perf_counter()
    worker.start()
    while not done.is_set():
        time.sleep(0.001)
        now = time.perf_counter()
        longest, last = max(longest, now - last - 0.001), now
    worker.join()
    return longest


def _spin(seconds: float) -> None:
    """Python bytecode for `seconds`: the interpreter hands the GIL over every switch interval,
    so the stall it causes is the floor that scheduling on this machine allows."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def measure(language: Language, source: str, repeats: int) -> list[tuple[str, float, float | None]]:
    """Rows of (what, seconds, old seconds for the same question or None)."""
    middle = source.count("\n") // 2
    old_all = best(lambda: old_functions(source, language), 1)
    old_at = best(lambda: old_function_at(source, language, middle), 1)
    edited = source[: len(source) // 2] + " " + source[len(source) // 2 :]

    def fresh() -> SourceDocument:
        return SourceDocument(source, language)

    parse = best(fresh, repeats)
    doc = fresh()
    captures(doc)  # compiles the query once, as a warm server has
    incremental = best(lambda: doc.updated(edited), repeats)

    def fresh_query() -> None:
        doc._cache.clear()
        captures(doc)

    query = best(fresh_query, repeats)
    make_spans = best(lambda: (doc._cache.pop("spans", None), spans(doc)), repeats)
    workloads = best(lambda: attach_workloads(doc, spans(doc), captures(doc)["function"]), repeats)
    at = best(lambda: function_at(doc, language, middle), repeats)
    plain_parser = tree_sitter.Parser(grammar(language.name))
    data = source.encode()
    rows = [
        ("old: all functions (scan)", old_all, None),
        ("old: function at a line (scan)", old_at, None),
        ("new: parse (chunked, GIL released)", parse, None),
        ("new: re-parse after a 1-char edit", incremental, parse),
        ("new: whole-file query (C)", query, None),
        ("new: spans from nodes (Python)", make_spans, None),
        ("new: workloads (Python)", workloads, None),
        ("new: all functions after parse", query + make_spans + workloads, old_all),
        ("new: function at a line after parse", at, old_at),
        ("stall: pure-Python loop in a thread (floor)", longest_stall(lambda: _spin(parse)), None),
        ("stall: Parser.parse(bytes) in a thread", longest_stall(lambda: plain_parser.parse(data)), None),
        ("stall: parse + functions_in in a thread", longest_stall(lambda: functions_in(fresh(), language)), None),
        ("stall: re-parse + function_at in a thread",
         longest_stall(lambda: function_at(doc.updated(edited), language, middle)), None),
    ]
    old_names = sorted(name for name, *_ in old_functions(source, language))
    new_names = sorted(span.name for span in functions_in(source, language))
    if language is PYTHON and old_names != new_names:
        raise SystemExit(f"{language.name}: the old and new function lists differ")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpp-bytes", type=int, default=1_000_000)
    parser.add_argument("--python-bytes", type=int, default=1_300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for language, source in ((CPP, cpp_source(args.cpp_bytes)), (PYTHON, python_source(args.python_bytes))):
        count = len(functions_in(source, language))
        print(f"\n{language.display_name}: {len(source.encode()) / 1e6:.2f} MB, {source.count(chr(10))} lines, "
              f"{count} functions")
        print(f"  {'(CPU ms; stalls: wall ms)':44} {'ms':>9} {'old/new':>8}")
        for label, seconds, old in measure(language, source, args.repeats):
            ratio = f"{old / seconds:8.1f}" if old else ""
            print(f"  {label:44} {seconds * 1000:9.1f} {ratio}")


if __name__ == "__main__":
    main()
