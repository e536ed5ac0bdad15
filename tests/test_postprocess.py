"""Tests for greencoder.core.postprocess: from a code model's raw continuation to the target function.

Unit tests use HumanEval-shaped prompts and model-shaped continuations (tails with a main, tests,
prose, a second class, fences). The harness tests at the end take real HumanEval-X tasks, append such
junk to the canonical solution, clean it, and run prompt + cleaned + test the way the reference
harness does: the cleaned program must pass, and a broken solution must still fail.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

from conftest import SHARED_DATA
from greencoder.core.postprocess import brace_depth, brace_events, clean_completion, strip_fences

DATA = SHARED_DATA / "humaneval_x"  # beside the checkout, in CI too


def code_lines(text: str) -> list[str]:
    """Non-blank lines without trailing spaces: compares kept code, not the blank lines between blocks."""
    return [line.rstrip() for line in text.splitlines() if line.strip()]


def run_python(source: str, call: str) -> object:
    """Execute `source` as a module and evaluate `call` in it."""
    namespace: dict[str, object] = {}
    exec(compile(source, "<cleaned>", "exec"), namespace)
    return eval(call, namespace)


# =============================================================================================
# Python

PY_PROMPT = '''from typing import List


def below_zero(operations: List[int]) -> bool:
    """ You're given a list of deposit and withdrawal operations on a bank account that starts with
    zero balance. Your task is to detect if at any point the balance of account falls below zero.
    >>> below_zero([1, 2, 3])
    False
    >>> below_zero([1, 2, -4, 5])
    True
    """
'''

PY_BODY = """    balance = 0
    for op in operations:
        balance += op
        if balance < 0:
            return True
    return False
"""

PY_TAILS = {
    "main block": '\n\nif __name__ == "__main__":\n    import doctest\n    doctest.testmod()\n    print(below_zero([1, 2, -4, 5]))\n',
    "prints and asserts": "\n\nprint(below_zero([1, 2, 3]))\nprint(below_zero([1, 2, -4, 5]))\n"
    "assert below_zero([1, -2]) == True\nassert not below_zero([])\n",
    "prose": "\n\nExplanation:\nThe function keeps a running balance, and it returns True as soon as the balance is negative.\n"
    "Time complexity: O(n), where n = len(operations).\n",
    "unrelated function": "\n\ndef above_zero(operations: List[int]) -> bool:\n    return sum(operations) > 0\n",
    "test function": "\n\ndef test_below_zero():\n    assert below_zero([1, 2, -4, 5])\n\n\ntest_below_zero()\n",
    # Top-level names that equal the body's parameter and local (`operations`, `balance`) are test
    # data, not helpers; keeping them would block on stdin.
    "stdin test data": "\n\noperations = list(map(int, input().split()))\nbalance = below_zero(operations)\nprint(balance)\n",
    "test-only import": '\n\nimport pytest\n\n\n@pytest.mark.parametrize("ops", [[1], [-1]])\n'
    'def test_ops(ops):\n    assert below_zero(ops) == (ops[0] < 0)\n',
    "second definition": "\n\n# A shorter version:\ndef below_zero(operations: List[int]) -> bool:\n    return min(operations) < 0\n",
    "closing fence and prose": "```\n\nThis solution iterates over the operations once; it's O(n).\n",
}


@pytest.mark.parametrize("tail", PY_TAILS.values(), ids=PY_TAILS.keys())
def test_python_drops_everything_after_the_body_that_the_body_does_not_use(tail: str) -> None:
    assert clean_completion("python", PY_PROMPT, PY_BODY + tail, "below_zero") == PY_BODY


def test_python_drops_a_realistic_long_tail_without_entry_point_given() -> None:
    completion = PY_BODY + "".join(PY_TAILS.values())
    assert clean_completion("python", PY_PROMPT, completion) == PY_BODY


def test_python_test_data_named_like_a_builtin_is_not_kept() -> None:
    prompt = 'def unique_sorted(values: list) -> list:\n    """Sorted unique elements of a list."""\n'
    body = "    return sorted(set(values))\n"
    completion = body + "\n\nset = [3, 1, 3]\nsorted = unique_sorted(set)\nprint(sorted)\n"
    cleaned = clean_completion("python", prompt, completion)
    assert cleaned == body
    assert run_python(prompt + cleaned, "unique_sorted([3, 1, 3])") == [1, 3]


DIGITS_PROMPT = '''

def digits_sum(n: int) -> int:
    """Return the sum of the decimal digits of a non-negative integer.
    >>> digits_sum(1234)
    10
    """
'''
DIGITS_BODY = "    return sum(_digits(n))\n"
DIGITS_KEPT = {
    "import": "import math",
    "constant": "BASE = 10",
    "helper": "def _digits(n):\n    if n < BASE:\n        return [n]\n    return _digits(_quotient(n)) + [n % BASE]",
    "helper of the helper": "def _quotient(n):\n    return math.floor(n / BASE)",
}


def test_python_keeps_helpers_constants_and_imports_the_body_uses_transitively() -> None:
    k = DIGITS_KEPT
    completion = (
        DIGITS_BODY
        + f"\n\n{k['import']}\nimport os\n\n{k['constant']}\nDEBUG = True\n\n\n{k['helper']}\n\n\n{k['helper of the helper']}\n\n\n"
        + "def unused_helper(path):\n    return os.path.exists(path)\n\n\n"
        + 'if __name__ == "__main__":\n    print(digits_sum(1234))\n'
    )
    cleaned = clean_completion("python", DIGITS_PROMPT, completion, "digits_sum")
    expected = DIGITS_BODY + "".join("\n" + block + "\n" for block in DIGITS_KEPT.values())
    assert code_lines(cleaned) == code_lines(expected)  # kept in their original order; os/DEBUG/unused/main dropped
    assert cleaned.startswith(DIGITS_BODY)
    assert run_python(DIGITS_PROMPT + cleaned, "digits_sum(90817)") == 25


def test_python_keeps_column0_comment_and_multiline_string_inside_the_body() -> None:
    prompt = '''

def parse_scores() -> dict:
    """Parse the built-in score table into a name -> score dict."""
'''
    body = '''    table = """
name,score
alice,3
bob,5
"""
# skip the header row
    rows = [line.split(",") for line in table.strip().splitlines()[1:]]
    return {name: int(score) for name, score in rows}
'''
    completion = body + "\n\nprint(parse_scores())\n# Example output:\n# {'alice': 3, 'bob': 5}\n"
    cleaned = clean_completion("python", prompt, completion, "parse_scores")
    assert cleaned == body
    assert run_python(prompt + cleaned, "parse_scores()") == {"alice": 3, "bob": 5}


def test_python_fenced_restated_function_followed_by_prose_uses_the_restated_body() -> None:
    docstring = '    """Return True if the balance ever drops below zero."""\n'
    completion = (
        "```python\nfrom typing import List\n\n\ndef below_zero(operations: List[int]) -> bool:\n"
        + docstring
        + PY_BODY
        + "\n\nprint(below_zero([1, 2, -4, 5]))\n```\n\n"
        + "Explanation: the function adds up the operations and stops at the first negative balance.\n"
    )
    cleaned = clean_completion("python", PY_PROMPT, completion)
    assert cleaned == docstring + PY_BODY  # the import duplicates the prompt's; the print is a test
    assert run_python(PY_PROMPT + cleaned, "below_zero([1, 2, -4, 5])") is True


def test_python_restated_function_keeps_a_helper_defined_above_it() -> None:
    completion = (
        "```python\ndef _is_digit(c):\n    return c in DIGITS\n\n\nDIGITS = '0123456789'\n\n\n"
        "def count_digits(text: str) -> int:\n    return sum(1 for c in text if _is_digit(c))\n```\n"
    )
    prompt = 'def count_digits(text: str) -> int:\n    """Count the decimal digits in text."""\n'
    cleaned = clean_completion("python", prompt, completion)
    assert code_lines(cleaned)[0].strip() == "return sum(1 for c in text if _is_digit(c))"
    assert run_python(prompt + cleaned, "count_digits('a1b22')") == 3


def test_python_restated_one_line_function() -> None:
    prompt = 'def add(x: int, y: int) -> int:\n    """Add two numbers."""\n'
    cleaned = clean_completion("python", prompt, "```python\ndef add(x: int, y: int) -> int: return x + y\n```\nDone.")
    assert cleaned.strip() == "return x + y"
    assert run_python(prompt + cleaned, "add(2, 3)") == 5


def test_python_wrong_body_comes_back_unchanged() -> None:
    buggy = PY_BODY.replace("balance < 0", "balance <= 0").replace("return False", "return None")
    completion = buggy + PY_TAILS["main block"] + PY_TAILS["prose"]
    cleaned = clean_completion("python", PY_PROMPT, completion, "below_zero")
    assert cleaned == buggy
    assert run_python(PY_PROMPT + cleaned, "below_zero([1, -1])") is True  # still wrong


def test_python_truncated_body_is_not_completed() -> None:
    truncated = "    balance = 0\n    for op in operations:\n        balance += op\n        if balance <"
    assert clean_completion("python", PY_PROMPT, truncated, "below_zero").rstrip("\n") == truncated


# =============================================================================================
# C++

CPP_PROMPT = """/*
Return the decimal digits of n, most significant first.
>>> digits(1203)
{1, 2, 0, 3}
>>> digits(7)
{7}
*/
#include<stdio.h>
#include<vector>
#include<string>
using namespace std;
vector<int> digits(int n){
"""
CPP_FIRST = "    vector<int> out={};\n"
CPP_REST = """    if (n==0) return {0};
    while (n>0){
        out.insert(out.begin(), n%10);
        n/=10;
    }
    return out;
}
"""
CPP_BODY = CPP_FIRST + CPP_REST
CPP_MAIN = '\nint main(){\n    vector<int> d=digits(1203);\n    for (int x: d) printf("%d ", x);\n    printf("\\n");\n}\n'

# Each trap holds braces (or quotes) that are not code; miscounting any of them moves the cut.
CPP_TRAPS = {
    "{ in string": '    string open_brace="{";\n',
    "} in string": '    string close_brace="}";\n',
    "escaped quote in string": '    string quoted="\\"{";\n',
    "// in string": '    string url="http://example.com"; if (n<0) {\n        return {};\n    }\n',
    "{ char": "    char open_c='{';\n",
    "} char": "    char close_c='}';\n",
    "escaped quote char": "    char quote='\\'', brace='{';\n",
    "line comment": "    // unmatched { in a comment, and don't count this apostrophe\n",
    "block comment": "    /* } */ int unused=0;\n",
    "multi-line block comment": "    /* a comment that spans\n       lines and holds { */\n",
    "digit separator": "    if (n>1'000'000) {\n        return {-1};\n    }\n",
    "single digit separator": "    if (n>10'000) {\n        return {-1};\n    }\n",
}


def test_cpp_cuts_right_after_the_function_closing_brace() -> None:
    completion = CPP_BODY + CPP_MAIN + "```\n\nThis function peels off digits with n%10 {in a loop}.\n"
    assert clean_completion("cpp", CPP_PROMPT, completion) == CPP_BODY


@pytest.mark.parametrize("trap", CPP_TRAPS.values(), ids=CPP_TRAPS.keys())
def test_cpp_braces_in_literals_comments_and_digit_separators_do_not_move_the_cut(trap: str) -> None:
    body = CPP_FIRST + trap + CPP_REST
    assert clean_completion("cpp", CPP_PROMPT, body + CPP_MAIN) == body


def test_cpp_all_traps_together(tmp_path: Path) -> None:
    body = CPP_FIRST + "".join(CPP_TRAPS.values()) + CPP_REST
    cleaned = clean_completion("cpp", CPP_PROMPT, body + CPP_MAIN)
    assert cleaned == body
    needs_tool("cpp")  # the traps are real C++: the cleaned function compiles and works
    test = "#include<assert.h>\nint main(){\n    assert(digits(1203)==vector<int>({1,2,0,3}));\n}\n"
    result = run_program("cpp", CPP_PROMPT + cleaned + test, tmp_path)
    assert result.returncode == 0, result.stderr


def test_cpp_unclosed_body_is_returned_unchanged() -> None:
    truncated = CPP_FIRST + "    while (n>0){\n        out.insert(out.begin(), n%10);\n"
    assert clean_completion("cpp", CPP_PROMPT, truncated) == truncated


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced"])
def test_cpp_restated_program_uses_the_target_body(fenced: bool) -> None:
    # The restated doc comment's `digits(1203)` / `{1, 2, 0, 3}` must not be taken for the definition.
    program = CPP_PROMPT.split("#include")[0] + "#include<stdio.h>\n#include<vector>\nusing namespace std;\n"
    program += "vector<int> digits(int n){\n" + CPP_BODY + CPP_MAIN
    completion = f"```cpp\n{program}```\n\nExplanation: the loop {{ ... }} peels digits.\n" if fenced else program
    assert clean_completion("cpp", CPP_PROMPT, completion) == CPP_BODY


def test_cpp_wrong_body_comes_back_unchanged() -> None:
    buggy = CPP_BODY.replace("n>0", "n>1")
    assert clean_completion("cpp", CPP_PROMPT, buggy + CPP_MAIN) == buggy


# =============================================================================================
# Java

JAVA_PROMPT = """import java.util.*;
import java.lang.*;

class Solution {
    /**
    Return the number of primes (numbers with exactly two divisors) in the list.
    For example (the braces "{" in this comment are not code):
    >>> countPrimes(Arrays.asList(2, 3, 4))
    2
     */
    public int countPrimes(List<Integer> numbers) {
"""
JAVA_REST = """        int count = 0;
        for (int x : numbers) {
            if (isPrime(x)) {
                count += 1;
            }
        }
        return count;
    }"""
JAVA_HELPER = """

    private boolean isPrime(int n) {
        return n >= 2 && smallestDivisor(n) == n;
    }"""
JAVA_HELPER2 = """

    /** Smallest divisor > 1; the '}' here is not code. */
    private static int smallestDivisor(int n) {
        if (KNOWN.contains(n)) return n;
        for (int d : SMALL) {
            if (n % d == 0) return d;
        }
        for (int d = 11; d * d <= n; d += 2) {
            if (n % d == 0) return d;
        }
        return n;
    }"""
JAVA_FIELD = "\n\n    private static final int[] SMALL = {2, 3, 5, 7};"
JAVA_FIELD2 = "\n\n    // primes below 20\n    static final Set<Integer> KNOWN = new HashSet<>(Arrays.asList(11, 13, 17, 19));"
JAVA_UNUSED = """

    private int unusedHelper(int x) {
        return x * 2;
    }"""
JAVA_MAIN = """

    public static void main(String[] args) {
        Solution s = new Solution();
        System.out.println(s.countPrimes(Arrays.asList(2, 3, 4)) + " primes }");
    }"""
JAVA_AFTER_CLASS = {
    "public class Main": '\n\npublic class Main {\n    public static void main(String[] args) {\n'
    '        System.out.println(new Solution().countPrimes(Arrays.asList(5)));\n    }\n}\n',
    "second class Solution": "\n\nclass Solution {\n    public int countPrimes(List<Integer> numbers) {\n        return 0;\n    }\n}\n",
    "prose": "\n```\n\nThe method counts primes; isPrime() checks each number { in O(sqrt n) }.\n",
}


def assert_java(cleaned: str, expected_members: str) -> None:
    """The method, then exactly the expected members, then the class closed once."""
    assert code_lines(cleaned) == code_lines(expected_members + "\n}\n")
    assert brace_depth(JAVA_PROMPT + cleaned) == 0


@pytest.mark.parametrize("after", JAVA_AFTER_CLASS.values(), ids=JAVA_AFTER_CLASS.keys())
def test_java_keeps_method_and_called_helper_drops_main_and_what_follows_the_class(after: str) -> None:
    completion = JAVA_REST + JAVA_HELPER.replace("smallestDivisor(n) == n", "n % 2 == 1") + JAVA_MAIN + "\n}" + after
    cleaned = clean_completion("java", JAVA_PROMPT, completion)
    assert_java(cleaned, JAVA_REST + JAVA_HELPER.replace("smallestDivisor(n) == n", "n % 2 == 1"))


def test_java_keeps_helpers_and_fields_transitively_in_source_order(tmp_path: Path) -> None:
    completion = JAVA_REST + JAVA_UNUSED + JAVA_HELPER + JAVA_FIELD + JAVA_MAIN + JAVA_HELPER2 + JAVA_FIELD2 + "\n}"
    cleaned = clean_completion("java", JAVA_PROMPT, completion + JAVA_AFTER_CLASS["public class Main"])
    assert_java(cleaned, JAVA_REST + JAVA_HELPER + JAVA_FIELD + JAVA_HELPER2 + JAVA_FIELD2)
    assert "private static final int[] SMALL = {2, 3, 5, 7};" in cleaned  # the initializer keeps its `;`
    needs_tool("java")  # what was kept is everything the method needs: it compiles and works
    test = "public class Main {\n    public static void main(String[] args) {\n"
    test += "        int c = new Solution().countPrimes(Arrays.asList(2, 3, 4, 11, 121, 169, 17));\n"
    test += "        if (c != 4) throw new AssertionError(c);\n    }\n}\n"
    result = run_program("java", JAVA_PROMPT + cleaned + "\n" + test, tmp_path)
    assert result.returncode == 0, result.stderr


def test_java_generation_cut_inside_main_still_closes_the_class_once() -> None:
    completion = JAVA_REST + JAVA_HELPER.replace("smallestDivisor(n) == n", "n > 1") + JAVA_MAIN.split("System.out")[0]
    cleaned = clean_completion("java", JAVA_PROMPT, completion)
    assert_java(cleaned, JAVA_REST + JAVA_HELPER.replace("smallestDivisor(n) == n", "n > 1"))


def test_java_unclosed_method_is_returned_unchanged() -> None:
    truncated = JAVA_REST.rsplit("return count;", 1)[0]
    assert clean_completion("java", JAVA_PROMPT, truncated) == truncated


def test_java_fenced_restated_class_uses_the_target_body() -> None:
    # No entry point given: it comes from the prompt, whose doc comment has "primes (" and "example (".
    completion = "```java\n" + JAVA_PROMPT + JAVA_REST + JAVA_HELPER + JAVA_FIELD + JAVA_FIELD2 + JAVA_HELPER2 + JAVA_MAIN + "\n}\n```\n\n"
    completion += "Explanation: isPrime() uses trial division.\n"
    cleaned = clean_completion("java", JAVA_PROMPT, completion)
    assert_java(cleaned, JAVA_REST + JAVA_HELPER + JAVA_FIELD + JAVA_FIELD2 + JAVA_HELPER2)


def test_java_wrong_method_comes_back_unchanged() -> None:
    buggy = JAVA_REST.replace("count += 1", "count += 2")
    cleaned = clean_completion("java", JAVA_PROMPT, buggy + JAVA_MAIN + "\n}\n")
    assert cleaned.startswith(buggy)
    assert_java(cleaned, buggy)


# =============================================================================================
# shared helpers


def test_strip_fences() -> None:
    code = "def f():\n    return 1\n"
    assert strip_fences(f"```python\n\n{code}```\n\nThis returns 1.") == (code, True)
    assert strip_fences(f"```\n{code}") == (code, True)  # fence never closed
    assert strip_fences(f"    return 1\n```\n\n```python\n{code}```") == ("    return 1\n", False)
    assert strip_fences(code) == (code, False)


def test_brace_events_skip_literals_and_comments() -> None:
    code = "f(){ s=\"}\"; c='{'; // }\n /* { */ n=1'000; }"
    events = list(brace_events(code))
    assert [char for _, char in events] == ["{", ";", ";", ";", "}"]
    assert all(code[position] == char for position, char in events)
    assert brace_depth("class A {\n  void f() {\n    String s = \"{\";\n") == 2


# =============================================================================================
# Harness checks on HumanEval-X: canonical solution + realistic junk, cleaned, must still pass.


@pytest.fixture(scope="module")
def humaneval() -> dict[str, dict]:
    if not DATA.is_dir():
        pytest.skip(f"HumanEval-X data not found at {DATA}")
    tasks: dict[str, dict] = {}
    for language in ("python", "cpp", "java"):
        with gzip.open(DATA / f"humaneval_{language}.jsonl.gz", "rt", encoding="utf-8") as handle:
            tasks.update({row["task_id"]: row for row in map(json.loads, handle)})
    return tasks


def run_program(language: str, source: str, directory: Path) -> subprocess.CompletedProcess:
    """Build and run one assembled program the way the HumanEval-X harness does."""
    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    if language == "python":
        (directory / "program.py").write_text(source)
        return run(sys.executable, "program.py")
    if language == "cpp":
        (directory / "program.cpp").write_text(source)
        built = run("g++", "-std=c++17", "program.cpp", "-o", "program", "-lcrypto")
        return built if built.returncode else run("./program")
    (directory / "Main.java").write_text(source)
    built = run("javac", "Main.java")
    return built if built.returncode else run("java", "-ea", "-cp", ".", "Main")


def needs_tool(language: str) -> None:
    for tool in {"cpp": ["g++"], "java": ["javac", "java"]}.get(language, []):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} not on PATH")


def after_solution(junk: str) -> Callable[[dict], str]:
    return lambda task: task["canonical_solution"] + junk


def java_main_then_class_main(task: dict) -> str:
    """Canonical Java solutions end with the method's and the class's braces: put a `main` between
    them, then a second `public class Main` (two public Mains do not compile)."""
    solution = task["canonical_solution"].rstrip()
    assert solution.endswith("}")
    return (
        solution[:-1] + "    public static void main(String[] args) {\n"
        '        System.out.println("} " + new Solution().hasCloseElements(Arrays.asList(1.0, 2.0), 0.5));\n    }\n}\n\n'
        "public class Main {\n    public static void main(String[] args) {\n    }\n}\n"
    )


def restate(task: dict) -> str:
    """The whole prompt + solution again inside a fence (with a main for C++/Java), then prose."""
    language = LANGUAGE[task["task_id"].split("/")[0]]
    tail = {"python": "", "cpp": "int main(){ return 0; }\n",
            "java": "public class Main {\n    public static void main(String[] a) {}\n}\n"}
    return (f"```{language}\n{task['prompt']}{task['canonical_solution']}\n{tail[language]}```\n\n"
            "Explanation: it's {simple}.\n")


LANGUAGE = {"Python": "python", "CPP": "cpp", "Java": "java"}
JUNK = {
    # stdin-reading test data named like the parameters, a main block, prose (a syntax error if kept)
    "Python/0": after_solution(
        '\n\nnumbers = [float(x) for x in input().split()]\nthreshold = float(input())\n'
        'if __name__ == "__main__":\n    print(has_close_elements(numbers, threshold))\n\nThis compares every pair once.\n'
    ),
    # a second, wrong "iterative" fib (it would replace the real one) and a print
    "Python/55": after_solution(
        "\n\n# Iterative version:\ndef fib(n: int):\n    a, b = 0, 1\n    for _ in range(n - 1):\n"
        "        a, b = b, a + b\n    return a\n\n\nprint(fib(10))\n"
    ),
    "Python/2": restate,
    # a second main (duplicate symbol if kept) with braces in strings and comments
    "CPP/0": after_solution('\nint main(){\n    printf("{ %d }\\n", has_close_elements({1.0, 2.0}, 0.5)); // }\n}\n```\nDone.\n'),
    "CPP/19": after_solution('\n// Test {\nint main() {\n    string s = "three one";\n    printf("%s\\n", sort_numbers(s).c_str());\n}\n'),
    "CPP/55": restate,
    "Java/0": java_main_then_class_main,
    # a second class Solution (duplicate class if kept)
    "Java/116": after_solution(
        "\n\nclass Solution {\n    public List<Integer> sortArray(List<Integer> arr) {\n        return arr;\n    }\n}\n"
    ),
    "Java/55": restate,
}


@pytest.mark.parametrize("task_id", JUNK.keys())
def test_humaneval_canonical_solution_with_junk_passes_after_cleaning(task_id: str, humaneval: dict, tmp_path: Path) -> None:
    language = LANGUAGE[task_id.split("/")[0]]
    needs_tool(language)
    task = humaneval[task_id]
    completion = JUNK[task_id](task)
    cleaned = clean_completion(language, task["prompt"], completion)
    result = run_program(language, task["prompt"] + cleaned + "\n" + task["test"], tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    if language == "python":  # cheap to show the junk matters: uncleaned, the same program fails
        raw = run_program(language, task["prompt"] + completion + "\n" + task["test"], tmp_path)
        assert raw.returncode != 0


# Off-by-one mutations of task 23 (strlen): the cleaner must not turn them back into passing code.
BROKEN = {
    "Python/23": ("return len(string)", "return len(string) - 1"),
    "CPP/23": ("return str.length();", "return str.length()-1;"),
    "Java/23": ("return string.length();", "return string.length() - 1;"),
}


@pytest.mark.parametrize("task_id", BROKEN.keys())
def test_humaneval_broken_solution_still_fails_after_cleaning(task_id: str, humaneval: dict, tmp_path: Path) -> None:
    language = LANGUAGE[task_id.split("/")[0]]
    needs_tool(language)
    task = humaneval[task_id]
    old, new = BROKEN[task_id]
    assert task["canonical_solution"].count(old) == 1
    junk = {
        "python": '\n\nif __name__ == "__main__":\n    print(strlen("abc"))\n',
        "cpp": '\nint main(){\n    printf("%d\\n", strlen("abc"));\n}\n',
        "java": "\npublic class Main {\n    public static void main(String[] args) {\n    }\n}\n",
    }[language]
    broken = task["canonical_solution"].replace(old, new)
    cleaned = clean_completion(language, task["prompt"], broken + junk)
    assert new in cleaned
    result = run_program(language, task["prompt"] + cleaned + "\n" + task["test"], tmp_path)
    assert result.returncode != 0
    assert "Assertion" in result.stderr  # it built and failed a test assert


GENERIC_JUNK = {
    "python": after_solution('\n\nif __name__ == "__main__":\n    import doctest\n    doctest.testmod()\n\nThat is all.\n'),
    "cpp": after_solution("\nint main(){\n    return 1;\n}\n```\nThe loop {visits} each element once.\n"),
    "java": after_solution("\n\npublic class Main {\n    public static void main(String[] args) {\n        System.exit(1);\n    }\n}\n"),
}


@pytest.mark.slow
@pytest.mark.parametrize("language", ["python", "cpp", "java"])
def test_every_humaneval_canonical_solution_survives_cleaning(language: str, humaneval: dict, tmp_path: Path) -> None:
    """All 164 tasks: canonical + junk, and a fenced restatement, both pass after cleaning."""
    from concurrent.futures import ThreadPoolExecutor

    needs_tool(language)
    prefix = {"python": "Python/", "cpp": "CPP/", "java": "Java/"}[language]
    tasks = [task for task_id, task in humaneval.items() if task_id.startswith(prefix)]
    assert len(tasks) == 164

    def check(job: tuple[int, dict, Callable[[dict], str]]) -> str | None:
        number, task, make = job
        directory = tmp_path / str(number)
        directory.mkdir()
        cleaned = clean_completion(language, task["prompt"], make(task))
        result = run_program(language, task["prompt"] + cleaned + "\n" + task["test"], directory)
        return None if result.returncode == 0 else f"{task['task_id']} ({make.__name__}): {result.stderr[-300:]}"

    jobs = [(n, task, make) for n, (task, make) in enumerate((t, m) for t in tasks for m in (GENERIC_JUNK[language], restate))]
    with ThreadPoolExecutor(max_workers=2) as pool:
        failures = [f for f in pool.map(check, jobs) if f]
    assert failures == []
