"""Finding the function under the cursor and its workload, per language."""

from __future__ import annotations

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.source import bench_template, function_at

PY = '''import math


# greencoder: bench is_prime(1000003)
def is_prime(n):
    for d in range(2, n):
        if n % d == 0:
            return False
    return n > 1


def square(x):
    """Square a number.

    >>> square(3)
    9
    >>> square(-2)
    4
    """
    return x * x


def nothing():
    return None
'''

CPP_SOURCE = '''#include <vector>
// greencoder: bench sum_to(100000)
long sum_to(int n) {
    long total = 0;
    for (int i = 0; i < n; i++) { total += i; }   // "{" in a comment {
    return total;
}

int helper(int x) { return x; }
'''

JAVA_SOURCE = '''public class Primes {
    static boolean isPrime(int n) {
        if (n < 2) { return false; }
        return true;
    }

    int twice(int x) {
        return 2 * x;  // greencoder: bench new Primes().twice(21)
    }
}
'''


def test_python_comment_above_and_doctests():
    span = function_at(PY, PYTHON, 6)
    assert (span.name, span.call, span.source_of_call) == ("is_prime", "is_prime(1000003)", "comment")
    assert (span.name_line, span.name_column) == (4, 4)
    square = function_at(PY, PYTHON, 19)
    assert (square.call, square.source_of_call) == ("(square(3), square(-2))", "doctest")
    assert function_at(PY, PYTHON, 23).call is None
    assert function_at(PY, PYTHON, 1) is None


def test_cpp_functions_ignore_braces_in_comments_and_find_their_bench():
    span = function_at(CPP_SOURCE, CPP, 4)
    assert (span.name, span.start_line, span.end_line, span.call) == ("sum_to", 2, 6, "sum_to(100000)")
    assert function_at(CPP_SOURCE, CPP, 8).name == "helper" and function_at(CPP_SOURCE, CPP, 8).call is None
    assert function_at(CPP_SOURCE, CPP, 0) is None


def test_java_methods_innermost_and_bench_inside():
    assert function_at(JAVA_SOURCE, JAVA, 2).name == "isPrime"
    twice = function_at(JAVA_SOURCE, JAVA, 7)
    assert (twice.name, twice.call) == ("twice", "new Primes().twice(21)")


def test_templates_are_comments_with_a_call_to_fill_in():
    line, text = bench_template(function_at(PY, PYTHON, 23), PY, PYTHON)
    assert (line, text) == (22, "# greencoder: bench nothing()\n")
    line, text = bench_template(function_at(JAVA_SOURCE, JAVA, 2), JAVA_SOURCE, JAVA)
    assert (line, text) == (1, "    // greencoder: bench Primes.isPrime()\n")
    line, text = bench_template(function_at(CPP_SOURCE, CPP, 8), CPP_SOURCE, CPP)
    assert (line, text) == (8, "// greencoder: bench helper()\n")


def test_a_file_mid_edit_still_has_its_functions():
    broken = PY.replace("    return x * x", "    return x * (x +")  # unbalanced: ast cannot parse it
    span = function_at(broken, PYTHON, 6)
    assert (span.name, span.call, span.end_line) == ("is_prime", "is_prime(1000003)", 8)
    assert function_at(broken, PYTHON, 23).name == "nothing"
