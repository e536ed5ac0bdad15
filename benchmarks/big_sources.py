"""Big source files with a known cursor, for the server benchmarks.

The bulk is bench_source_model's generated C++ and Python (functions, classes, templates, lambdas,
comments with braces, bench comments, doctests); near the end comes a function `f` with a
`greencoder: bench f(3)` comment above it, where the benchmarks put their cursor, and one more
function after it (so `f` is not the file's last).
"""

from __future__ import annotations

from dataclasses import dataclass

import bench_source_model


@dataclass(frozen=True)
class BigSource:
    text: str
    language: str
    header_line: int
    """0-based line of `f`'s header (its name is on it)."""
    name_column: int
    body_line: int
    """0-based line inside f's body, indented and otherwise empty: a cursor that starts a new block."""
    body_column: int


_PY_TARGET = '''
# greencoder: bench f(3)
def f(n: int) -> int:
    """Sum of the squares below n."""
    total = 0
    for k in range(n):
        total += k * k
    
    return total


def after_f(values):
    # the last function of the file
    return sorted(set(values))
'''  # noqa: W293 - the whitespace-only line in f is the body cursor (_with_target finds it)

_CPP_TARGET = '''
// greencoder: bench f(3)
int f(int n) {
    int total = 0;
    for (int k = 0; k < n; ++k) {
        total += k * k;
    }
    
    return total;
}

// The last function of the file.
int after_f(const vector<int>& values) {
    return values.empty() ? 0 : values.back();
}
'''  # noqa: W293 - the whitespace-only line in f is the body cursor (_with_target finds it)


def python_source(size: int) -> BigSource:
    return _with_target(bench_source_model.python_source(size), _PY_TARGET, "python", "def f")


def cpp_source(size: int) -> BigSource:
    return _with_target(bench_source_model.cpp_source(size), _CPP_TARGET, "cpp", "int f")


def _with_target(bulk: str, target: str, language: str, header: str) -> BigSource:
    text = bulk + target
    first = bulk.count("\n")
    target_lines = target.split("\n")
    header_line = first + next(n for n, line in enumerate(target_lines) if line.startswith(header))
    body_line = first + next(n for n, line in enumerate(target_lines) if line and not line.strip())
    lines = text.split("\n")
    return BigSource(text, language, header_line, lines[header_line].index("f("), body_line, len(lines[body_line]))
