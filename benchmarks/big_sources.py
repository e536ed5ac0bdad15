"""Large, realistic-looking source files for the server benchmarks, generated deterministically.

Many functions, classes, comments and string literals (with braces and parentheses inside, as real
code has), and near the end a function `f` with a `greencoder: bench f(3)` comment above it, where
the benchmark puts its cursor. Returns the text and the 0-based lines of f's header and of a blank
line inside its body (a cursor that starts a new block).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


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


def _python_unit(rng: random.Random, i: int) -> str:
    kind = i % 3
    if kind == 0:
        return f'''

class Account{i}:
    """A ledger account #{i}: balances in cents, history of (when, amount) pairs."""

    RATE = {rng.randint(1, 99)} / 1000  # yearly interest, as a fraction

    def __init__(self, owner: str, balance: int = 0) -> None:
        self.owner = owner
        self.balance = balance
        self.history: list[tuple[int, int]] = []

    def deposit(self, when: int, amount: int) -> int:
        """Add `amount` cents; refuse negative amounts (use withdraw)."""
        if amount < 0:
            raise ValueError(f"negative deposit {{amount}} for {{self.owner!r}} (use withdraw)")
        self.history.append((when, amount))
        self.balance += amount
        return self.balance

    def interest(self, days: int) -> float:
        # simple interest; compounding is done by the caller, month by month
        return self.balance * self.RATE * days / 365

    @property
    def summary(self) -> dict[str, object]:
        return {{"owner": self.owner, "balance": self.balance, "moves": len(self.history), "id": {i}}}
'''
    if kind == 1:
        return f'''

def moving_average_{i}(values: list[float], window: int = {rng.randint(2, 9)}) -> list[float]:
    """Averages of each `window` consecutive values ("(" and "{{" in prose must not confuse anyone)."""
    if window <= 0:
        raise ValueError("window must be positive")
    out, total = [], 0.0
    for index, value in enumerate(values):
        total += value
        if index >= window:
            total -= values[index - window]
        if index >= window - 1:
            out.append(total / window)  # one result per full window
    return out
'''
    return f'''

async def fetch_all_{i}(urls, limit={rng.randint(2, 16)}):
    # fetch with at most `limit` requests in flight; errors are collected, not raised
    results, errors = {{}}, []
    pending = list(urls)
    while pending:
        batch, pending = pending[:limit], pending[limit:]
        for url in batch:
            try:
                results[url] = len(url) * {rng.randint(1, 1000)}
            except (KeyError, ValueError) as exc:
                errors.append((url, str(exc)))
    return results, [e for e in errors if e[1] != "ignored"]
'''


_PY_TARGET = '''

# greencoder: bench f(3)
def f(n: int) -> int:
    """Sum of the squares below n."""
    total = 0
    for k in range(n):
        total += k * k
    
    return total
'''


def python_source(size: int, seed: int = 0) -> BigSource:
    rng = random.Random(seed)
    parts = ['"""Generated module for benchmarks: accounts, averages and fetchers."""\n\nimport asyncio\nimport math\n']
    length, i = len(parts[0]), 0
    while length < size:
        unit = _python_unit(rng, i)
        parts.append(unit)
        length += len(unit)
        i += 1
    return _with_target(parts, _PY_TARGET, [_python_unit(rng, i + k) for k in range(3)], "python", "def f")


def _cpp_unit(rng: random.Random, i: int) -> str:
    kind = i % 3
    if kind == 0:
        return f'''
/* Matrix{i}: a small dense matrix; rows are contiguous.
 * Not thread-safe: guard it yourself (see docs/{{threads}}.md). */
class Matrix{i} {{
public:
    Matrix{i}(std::size_t rows, std::size_t cols) : rows_(rows), cols_(cols), data_(rows * cols, 0.0) {{}}

    double& at(std::size_t r, std::size_t c) {{ return data_[r * cols_ + c]; }}
    double at(std::size_t r, std::size_t c) const {{ return data_[r * cols_ + c]; }}

    Matrix{i} multiply(const Matrix{i}& other) const {{
        Matrix{i} out(rows_, other.cols_);
        for (std::size_t r = 0; r < rows_; ++r) {{
            for (std::size_t k = 0; k < cols_; ++k) {{
                const double a = at(r, k);  // hoisted: {rng.randint(1, 99)}% faster here
                for (std::size_t c = 0; c < other.cols_; ++c) {{
                    out.at(r, c) += a * other.at(k, c);
                }}
            }}
        }}
        return out;
    }}

private:
    std::size_t rows_, cols_;
    std::vector<double> data_;
}};
'''
    if kind == 1:
        return f'''
// Parses "key=value" pairs separated by ';' (braces like "{{" in values are kept verbatim).
std::map<std::string, std::string> parse_pairs_{i}(const std::string& text) {{
    std::map<std::string, std::string> out;
    std::size_t start = 0;
    while (start < text.size()) {{
        std::size_t end = text.find(';', start);
        if (end == std::string::npos) end = text.size();
        const std::string item = text.substr(start, end - start);
        const std::size_t eq = item.find('=');
        if (eq != std::string::npos) {{
            out[item.substr(0, eq)] = item.substr(eq + 1);
        }}
        start = end + 1;  // skip ';' ({rng.randint(1, 9)} cases tested)
    }}
    return out;
}}
'''
    return f'''
template <typename T>
T clamp_sum_{i}(const std::vector<T>& values, T low, T high) noexcept {{
    T total{{}};
    for (const auto& v : values) {{
        if (v < low) {{
            total += low;
        }} else if (v > high) {{
            total += high;
        }} else {{
            total += v;
        }}
    }}
    return total * static_cast<T>({rng.randint(1, 7)});
}}
'''


_CPP_TARGET = '''
// greencoder: bench f(3)
int f(int n) {
    int total = 0;
    for (int k = 0; k < n; ++k) {
        total += k * k;
    }
    
    return total;
}
'''


def cpp_source(size: int, seed: int = 0) -> BigSource:
    rng = random.Random(seed)
    parts = ["// Generated translation unit for benchmarks.\n#include <map>\n#include <string>\n#include <vector>\n"]
    length, i = len(parts[0]), 0
    while length < size:
        unit = _cpp_unit(rng, i)
        parts.append(unit)
        length += len(unit)
        i += 1
    return _with_target(parts, _CPP_TARGET, [_cpp_unit(rng, i + k) for k in range(3)], "cpp", "int f")


def _with_target(parts: list[str], target: str, tail: list[str], language: str, header: str) -> BigSource:
    before = "".join(parts)
    text = before + target + "".join(tail)
    target_first = before.count("\n")
    target_lines = target.split("\n")
    header_line = target_first + next(n for n, line in enumerate(target_lines) if line.startswith(header))
    body_line = target_first + next(n for n, line in enumerate(target_lines) if line.strip() == "" and line)
    lines = text.split("\n")
    return BigSource(text, language, header_line, lines[header_line].index("f("), body_line, len(lines[body_line]))
