"""The tree-sitter source model: functions per language, workloads, files mid-edit, big files,
incremental re-parsing (greencoder.core.source)."""

from __future__ import annotations

import pytest

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.source import (
    SourceDocument,
    SpanIndex,
    bench_template,
    function_at,
    function_named,
    functions_in,
)


def names(source: str, language) -> list[str]:
    return [span.name for span in functions_in(source, language)]


def by_name(source: str, language) -> dict:
    return {span.name: span for span in functions_in(source, language)}


# ---------------------------------------------------------------------------------------------
# functions per language

PY = '''import functools


def plain(x):
    square = lambda y: y * y
    return square(x)


@functools.lru_cache(maxsize=None)
@staticmethod
def decorated(n):
    def inner(k):
        return k + 1
    return inner(n)


async def fetch(url):
    return url


class Outer:
    def method(self):
        return 1

    @staticmethod
    def helper():
        return 2

    class Nested:
        def deep(self):
            if True:
                def local():
                    pass
            return 3
'''


def test_python_functions_decorators_async_nested_and_owners():
    spans = by_name(PY, PYTHON)
    assert list(spans) == ["plain", "decorated", "inner", "fetch", "method", "helper", "deep", "local"]  # no lambda
    decorated = spans["decorated"]
    assert (decorated.start_line, decorated.first_line, decorated.end_line) == (10, 8, 13)  # header after decorators
    assert (decorated.name_line, decorated.name_column) == (10, 4)
    assert spans["fetch"].name_column == 10  # after `async def `
    assert (spans["method"].owner, spans["method"].static) == ("Outer", False)
    assert (spans["helper"].owner, spans["helper"].static) == ("Outer", True)
    assert spans["deep"].owner == "Nested" and spans["plain"].owner is None
    assert function_at(PY, PYTHON, 12).name == "inner"  # innermost
    assert function_at(PY, PYTHON, 13).name == "decorated"
    assert function_at(PY, PYTHON, 8) is None  # a decorator line is not inside the function
    assert function_at(PY, PYTHON, 32).name == "local"
    assert function_at(PY, PYTHON, 0) is None


CPP_SRC = '''#include <vector>
template <typename T>
T maxOf(T a, T b) { return a > b ? a : b; }
auto trailing() -> int { return 1; }
int* pointer(int** p) { return *p; }
const std::vector<int>& reference() { static std::vector<int> v; return v; }
int prototype(int x);
struct A {
  A(int x) : x(x) {}
  ~A() {}
  bool operator==(const A& o) const { return x == o.x; }
  static int counter() { return 2; }
  int x;
  struct B { void inner() {} };
  int later() const;
};
int A::later() const noexcept {
  auto l = [](int y) { return y; };
  return l(x);
}
[[nodiscard]] static int attributed() { return 0; }
'''


def test_cpp_templates_operators_constructors_out_of_class_and_no_lambdas():
    spans = by_name(CPP_SRC, CPP)
    assert list(spans) == ["maxOf", "trailing", "pointer", "reference", "A", "~A", "operator==", "counter", "inner",
                           "later", "attributed"]  # no prototype, no lambda
    assert (spans["maxOf"].start_line, spans["maxOf"].first_line) == (2, 1)  # template line belongs to it
    assert (spans["A"].owner, spans["inner"].owner, spans["later"].owner) == ("A", "B", "A")
    assert (spans["later"].start_line, spans["later"].end_line, spans["later"].name_column) == (16, 19, 7)
    assert spans["counter"].static and spans["attributed"].static and not spans["later"].static
    assert function_at(CPP_SRC, CPP, 17).name == "later"  # the lambda's line belongs to its function
    assert function_at(CPP_SRC, CPP, 6) is None  # a prototype is no function


JAVA_SRC = '''package demo;

import java.util.*;

@SuppressWarnings("unchecked")
public class Sorter<T> {
    /** Sorts. */
    @Override
    public <K extends Comparable<K>> List<K> sort(List<K> xs) throws IllegalStateException, RuntimeException {
        Runnable r = () -> { };
        return xs;
    }

    Sorter() { }

    static class Inner {
        static int twice(int x) { return 2 * x; }
    }

    interface Shape { int sides(); default int corners() { return sides(); } }

    enum Color { RED; int code() { return 1; } }

    public static void main(String[] args) {
        new Object() { void anonymous() { } };
    }
}
'''


def test_java_generics_annotations_throws_constructors_nested_owners():
    spans = by_name(JAVA_SRC, JAVA)
    assert list(spans) == ["sort", "Sorter", "twice", "corners", "code", "main", "anonymous"]  # no abstract sides()
    sort = spans["sort"]
    assert (sort.first_line, sort.start_line, sort.end_line, sort.owner, sort.static) == (7, 8, 11, "Sorter", False)
    assert (spans["twice"].owner, spans["twice"].static) == ("Inner", True)
    assert (spans["corners"].owner, spans["code"].owner, spans["main"].owner) == ("Shape", "Color", "Sorter")
    assert spans["anonymous"].owner is None  # an anonymous class has no name to call it by
    assert function_at(JAVA_SRC, JAVA, 9).name == "sort"  # a lambda is part of its method


# ---------------------------------------------------------------------------------------------
# files mid-edit


def test_python_unclosed_def_still_yields_the_functions_after_it():
    source = "import os\n\ndef c(x, y\n\n@deco\ndef d():\n    return 2\n\nasync def e():\n    pass\n"
    spans = by_name(source, PYTHON)
    assert set(spans) == {"c", "d", "e"}
    assert (spans["d"].start_line, spans["d"].end_line) == (5, 6)
    assert function_at(source, PYTHON, 9).name == "e"


def test_python_unclosed_bracket_and_unclosed_docstring():
    broken = "def a():\n    x = (\n\n# greencoder: bench b(1)\ndef b(n):\n    return n\n"
    assert (function_at(broken, PYTHON, 5).name, function_at(broken, PYTHON, 5).call) == ("b", "b(1)")
    typing_docstring = 'def a():\n    """Sum\n    return 1\n\ndef b():\n    return 2\n'
    assert names(typing_docstring, PYTHON) == ["a", "b"]


def test_cpp_and_java_unclosed_bodies_keep_later_functions():
    cpp = "int first() {\n  if (x) {\n\n// greencoder: bench after(3)\nint after(int n) { return n; }\n"
    assert function_at(cpp, CPP, 4).name == "after" and function_at(cpp, CPP, 4).call == "after(3)"
    # tree-sitter's recovery takes the method right after the unclosed one into its body; the rest stay
    java = "class A {\n  int f() {\n    if (x) {\n  }\n  int g() { return 1; }\n  int h(int y) { return y; }\n}\n"
    assert names(java, JAVA) == ["f", "h"] and function_at(java, JAVA, 5).name == "h"


# ---------------------------------------------------------------------------------------------
# workloads

WORKLOADS_PY = '''# greencoder: bench above(1)
# a second comment line
@decorator
def above(n):
    return n


def inside(n):
    x = n  # greencoder: bench inside(2)
    return x


def docstring_line(n):
    """Measure it.

    greencoder: bench docstring_line(3)
    >>> docstring_line(0)
    """
    return n


def one_line(n):
    """greencoder: bench one_line(1000003)"""
    return n


def single_quotes(n):
    \'\'\'greencoder: bench single_quotes(4)\'\'\'
    return n


def doctests(n):
    """>>> doctests(1)
    1
    >>> doctests(2)
    2
    """
    return n


def one_doctest(n):
    """
    >>> one_doctest(5)
    """
    return n


def in_a_string(n):
    text = "greencoder: bench in_a_string(9)"
    return text


# greencoder: bench separated(1)

def separated(n):
    return n
'''


def test_python_bench_comments_docstrings_and_doctests():
    spans = by_name(WORKLOADS_PY, PYTHON)
    found = {name: (span.call, span.source_of_call) for name, span in spans.items()}
    assert found == {
        "above": ("above(1)", "comment"),
        "inside": ("inside(2)", "comment"),
        "docstring_line": ("docstring_line(3)", "docstring"),  # the marker beats the doctest
        "one_line": ("one_line(1000003)", "docstring"),
        "single_quotes": ("single_quotes(4)", "docstring"),
        "doctests": ("(doctests(1), doctests(2))", "doctest"),
        "one_doctest": ("one_doctest(5)", "doctest"),
        "in_a_string": (None, None),  # a string is not a comment
        "separated": (None, None),  # a blank line ends the comment block above a function
    }


def test_defect_9_one_line_docstring_gives_the_call_without_its_quotes():
    """Issue 12, defect 9: `\"\"\"greencoder: bench is_prime(1000003)\"\"\"` was read as the call
    `is_prime(1000003)\"\"\"`. Through `function_at`, which the server's code actions call."""
    from greencoder.core.source import function_at as server_function_at

    source = 'def is_prime(n):\n    """greencoder: bench is_prime(1000003)"""\n    return n > 1\n'
    span = server_function_at(source, PYTHON, 2)
    assert (span.call, span.source_of_call) == ("is_prime(1000003)", "docstring")
    source = "def f(n):\n    '''greencoder: bench f(3)'''\n    return n\n"
    assert server_function_at(source, PYTHON, 2).call == "f(3)"


BRACED_CPP = '''/* greencoder: bench block(3) */
int block(int n) { return n; }

/**
 * Doc comment.
 * greencoder: bench in_doc(4);
 */
template <typename T>
T in_doc(T n) { return n; }

int trailing(int n) {
    return n;  // greencoder: bench trailing(5)
}

int outer(int n) {
    struct Local {
        // greencoder: bench nested_marker(6)
        int nested_marker() { return 1; }
    };
    return n;
}

int string_only() { const char* s = "greencoder: bench string_only()"; return 0; }
'''


def test_cpp_bench_comments_block_doc_trailing_and_nested():
    found = {span.name: span.call for span in functions_in(BRACED_CPP, CPP)}
    assert found == {"block": "block(3)", "in_doc": "in_doc(4)", "trailing": "trailing(5)", "outer": None,
                     "nested_marker": "nested_marker(6)", "string_only": None}


def test_java_bench_above_annotation_and_doc_comment():
    source = ('public class P {\n    // greencoder: bench P.f(2)\n    /** Doc. */\n    @Deprecated\n'
              '    static int f(int x) { return x; }\n}\n')
    assert function_at(source, JAVA, 4).call == "P.f(2)"


# ---------------------------------------------------------------------------------------------
# bench templates


def test_bench_template_goes_above_decorators_templates_annotations_and_doc_comments():
    assert bench_template(function_at(PY, PYTHON, 13), PY, PYTHON) == (8, "# greencoder: bench decorated()\n")
    assert bench_template(function_at(PY, PYTHON, 26), PY, PYTHON) == (24, "    # greencoder: bench helper()\n")
    assert bench_template(function_at(CPP_SRC, CPP, 2), CPP_SRC, CPP) == (1, "// greencoder: bench maxOf()\n")
    sort = function_at(JAVA_SRC, JAVA, 9)
    assert bench_template(sort, JAVA_SRC, JAVA) == (6, "    // greencoder: bench new Sorter().sort()\n")
    twice = function_at(JAVA_SRC, JAVA, 16)
    assert bench_template(twice, JAVA_SRC, JAVA) == (16, "        // greencoder: bench Inner.twice()\n")


# ---------------------------------------------------------------------------------------------
# documents: incremental edits, big files


def test_incremental_updates_match_a_fresh_parse():
    doc = SourceDocument(PY, PYTHON)
    edits = [
        PY.replace("return square(x)", "return square(x) + 1"),  # inside a body
        PY.replace("def plain(x):", "def plain(x, y"),  # now broken mid-edit
        PY.replace("def plain(x):", "def renamed(x):"),  # fixed again, renamed
        PY + "\n\ndef appended():\n    pass\n",
        "# greencoder: bench plain(1)\n" + PY,  # every line moves down
        "",
    ]
    for text in edits:
        doc = doc.updated(text)
        assert doc.text == text
        assert functions_in(doc, PYTHON) == functions_in(text, PYTHON)
        assert doc.tree.root_node.text == SourceDocument(text, PYTHON).tree.root_node.text or text == ""


def test_an_older_version_is_untouched_by_updates():
    first = SourceDocument(CPP_SRC, CPP)
    before = functions_in(first, CPP)
    first.updated(CPP_SRC.replace("maxOf", "minOf"))
    assert functions_in(first, CPP) == before and first.root.child(0) is not None


def big_cpp(size: int) -> str:
    chunks, index, total = [], 0, 0
    while total < size:
        chunks.append(f"// greencoder: bench f{index}(3)\nlong f{index}(int n) {{\n    long t = 0;\n"
                      f"    for (int k = 0; k < n; k++) {{ t += k; }}\n    return t;  // {{ in a comment\n}}\n\n")
        total += len(chunks[-1])
        index += 1
    return "".join(chunks)


def test_a_one_megabyte_file_parses_and_every_function_is_found():
    source = big_cpp(1_000_000)
    spans = functions_in(source, CPP)
    assert len(spans) == source.count("long f") and all(span.call == f"{span.name}(3)" for span in spans)
    python = "".join(f"def g{i}(n):\n    '''>>> g{i}(2)'''\n    return n\n\n\n" for i in range(30_000))
    spans = functions_in(python, PYTHON)
    assert len(spans) == 30_000 and spans[-1].call == "g29999(2)"


@pytest.mark.parametrize("language", [PYTHON, CPP, JAVA], ids=lambda language: language.name)
def test_empty_and_garbage_sources_have_no_functions(language):
    assert functions_in("", language) == []
    assert function_at("\x00\x01 }{ ((( '''", language, 0) is None


@pytest.mark.parametrize(("source", "language"), [(PY, PYTHON), (WORKLOADS_PY, PYTHON), (CPP_SRC, CPP), (BRACED_CPP, CPP),
                                                  (JAVA_SRC, JAVA), (big_cpp(3000), CPP)],
                         ids=["python", "python workloads", "cpp", "cpp workloads", "java", "cpp many"])
def test_function_at_one_line_agrees_with_the_whole_file_list(source, language):
    """function_at looks only around the line; it must find what the whole-file list says."""
    index = SpanIndex(functions_in(source, language))
    for line in range(source.count("\n") + 2):
        assert function_at(source, language, line) == index.innermost(line), line


@pytest.mark.parametrize(("source", "language"), [(PY, PYTHON), (CPP_SRC, CPP), (JAVA_SRC, JAVA)],
                         ids=["python", "cpp", "java"])
def test_random_edits_reparse_like_a_fresh_parse(source, language):
    """Insertions and deletions anywhere (non-ASCII text included) give the tree and the
    functions that parsing the new text from scratch gives."""
    import random

    chooser = random.Random(12)
    doc = SourceDocument(source, language)
    for _ in range(40):
        text = doc.text
        start = chooser.randrange(len(text) + 1)
        end = min(len(text), start + chooser.choice([0, 0, 1, 3, 12]))
        inserted = chooser.choice(["", "x", "é€", "\n", "(", "}", "    return 1\n", "def g():\n", "/* c */", "\n\n"])
        doc.line_offsets()  # carried over to the next version, not recomputed
        doc = doc.updated(text[:start] + inserted + text[end:])
        fresh = SourceDocument(doc.text, language)
        assert str(doc.root) == str(fresh.root)
        assert doc.line_offsets() == fresh.line_offsets()
        assert functions_in(doc, language) == functions_in(fresh, language)


def test_a_long_parse_can_be_cancelled_and_the_parser_still_works():
    from greencoder.core.source import ParseCancelled

    source = big_cpp(200_000)
    with pytest.raises(ParseCancelled):
        SourceDocument(source, CPP, cancelled=lambda: True)
    assert len(functions_in(SourceDocument(source, CPP), CPP)) == source.count("long f")


@pytest.mark.parametrize(("source", "language"), [(PY, PYTHON), (WORKLOADS_PY, PYTHON), (CPP_SRC, CPP), (BRACED_CPP, CPP),
                                                  (JAVA_SRC, JAVA)], ids=["python", "python workloads", "cpp",
                                                                          "cpp workloads", "java"])
def test_function_named_agrees_with_the_whole_file_list(source, language):
    spans = functions_in(source, language)
    for span in spans:
        assert function_named(source, language, span.name) == next(s for s in spans if s.name == span.name)
    assert function_named(source, language, "missing") is None
    assert function_named(source, language, "") is None


def test_code_action_lookups_do_not_list_the_whole_file(monkeypatch):
    """Issue 12, defect 5 (source-model side): a code action on a big file re-parsed and scanned
    all of it. function_at / function_named / bench_template now look only around the line or
    the name's occurrences; listing every function is never needed for them."""
    from greencoder.core.source import functions

    def whole_file(*_args):
        raise AssertionError("listed every function of the file")

    source = big_cpp(300_000)
    doc = SourceDocument(source, CPP)
    monkeypatch.setattr(functions, "_captures_in_slices", whole_file)
    span = function_at(doc, CPP, 5000)
    assert span is not None and span.call == f"{span.name}(3)"
    assert function_named(doc, CPP, "f400").call == "f400(3)"
    assert bench_template(span, doc, CPP)[1] == f"// greencoder: bench {span.name}()\n"
    edited = doc.updated(source.replace("long f400(", "long g400(", 1))
    assert function_named(edited, CPP, "g400").name == "g400"
