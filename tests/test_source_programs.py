"""Program facts from the source model (greencoder.core.source.programs): what the sandbox, the
measurement harness, the evaluation harnesses and post-processing read from whole programs."""

from __future__ import annotations

import pytest

from greencoder.core.languages import CPP, JAVA, PYTHON
from greencoder.core.source.programs import (
    blank_comments_and_strings,
    body_bounds,
    calls_function,
    defines_function,
    java_main_class,
    java_package_range,
    java_public_class,
    last_function,
)


def test_java_public_class_is_top_level_and_not_in_comments():
    assert java_public_class("// public class Commented\nclass Hidden {}\npublic final class Shown {}") == "Shown"
    assert java_public_class("// public class Fake {}\nclass A { public static class Inner {} }\npublic final class B {}") == "B"
    assert java_public_class("class A { public class Inner {} }") is None
    assert java_public_class("class NotPublic {}") is None
    assert java_public_class("public interface Shape { int sides(); }") == "Shape"


def test_java_main_class():
    nested = "public class Main {\n  static class Pair {}\n  enum Kind { A }\n  public static void main(String[] a) {}\n}\n"
    assert java_main_class(nested) == "Main"
    separate = "public class Solution { int f() { return 1; } }\nclass Main { public static void main(String[] a) {} }"
    assert java_main_class(separate) == "Main"
    commented = 'public class A {\n  /** this class and more */\n  String s = "class B {";\n  public static void main(String[] a) {}\n}'
    assert java_main_class(commented) == "A"
    assert java_main_class("class Helper { Runnable r = new Runnable() { public void run() {} }; }\n"
                           "public class App { static int[] xs = {1, 2}; public static void main(String[] a) {} }") == "App"
    assert java_main_class("public class Library { int f() { return 1; } }") == "Library"


def test_java_package_range_skips_comments():
    source = "/* package fake; */\npackage com.example;\n\npublic class Lib { }\n"
    start, end = java_package_range(source)
    assert source[start:end] == "package com.example;"
    assert java_package_range("public class Lib { }\n") is None
    assert java_package_range("// é\npackage a.b;\n") == (5, 17)  # character offsets, not bytes


@pytest.mark.parametrize(("language", "source", "name"), [
    (PYTHON, "def is_prime(n):\n    return n > 1\n", "is_prime"),
    (CPP, "#include<stdio.h>\nusing namespace std;\nbool is_prime(long long n){\n", "is_prime"),
    (CPP, "std::vector<int> f(int n);\n", "f"),
    (CPP, "bool Solution::isPrime(int n) { return n > 1; }\n", "isPrime"),
    (CPP, "struct S { int g(int x); };\n", "g"),
    (JAVA, "class Solution {\n    public boolean isPrime(int n) {\n", "isPrime"),
    (JAVA, "class S { static <T> List<T> twice(List<T> x) { return x; } }", "twice"),
    (JAVA, "interface I { int area(); }", "area"),
])
def test_defines_function(language, source, name):
    assert defines_function(source, language, name)


@pytest.mark.parametrize(("language", "source"), [
    (PYTHON, "def is_prime_fast(n):\n    return True\n# def is_prime(n)\n"),
    (CPP, "// bool is_prime(int n)\nint main() { return is_prime(3); }\n"),
    (JAVA, 'class S { void f() { String s = "int is_prime(1)"; g(is_prime(2)); } }'),
])
def test_calls_comments_and_strings_are_no_definitions(language, source):
    assert not defines_function(source, language, "is_prime")


def test_last_function_is_the_one_a_prompt_ends_in():
    prompt = ("/* digits(1203) {1, 2} */\n#include<string>\nstring encode_cyclic(string s){\n    return s;\n}\n"
              "string decode_cyclic(string s){\n")
    assert last_function(prompt, CPP).name == "decode_cyclic"
    java = 'class Solution {\n    /** countPrimes(List.of(2)) { */\n    public int countPrimes(List<Integer> xs) {\n'
    assert last_function(java, JAVA).name == "countPrimes"
    assert last_function("def a():\n    pass\n\ndef b(x):\n    '''>>> b(1)'''\n", PYTHON).name == "b"
    assert last_function("int x = 1;\n", CPP) is None


def test_body_bounds_of_closed_unclosed_and_restated_functions():
    source = 'int main() {\n    const char* s = "}";\n    return 0;\n}\nint after() { return 1; }\n'
    start, end = body_bounds(source, CPP, "main")
    assert source[start - 1] == "{" and source[end:].startswith("}\nint after")
    assert body_bounds("int main() {\n    int x = 0;\n", CPP, "main")[1] is None  # the text ends first
    assert body_bounds("int other() { return 1; }\n", CPP, "main") is None
    restated = "/* digits(1203)\n{1, 2, 0, 3} */\nvector<int> digits(int n){\n    return {};\n}\n"
    start, _ = body_bounds(restated, CPP, "digits")
    assert restated[start:].startswith("\n    return {};")


def test_calls_and_blanking_ignore_comments_and_strings():
    test = '// rand() is not used here\nint main() { const char* s = "rand()"; srand(1); return rand() % 2; }\n'
    assert calls_function(test, CPP, "rand") and calls_function(test, CPP, "srand")
    assert not calls_function('// rand()\nint main() { const char* s = "rand()"; }\n', CPP, "rand")
    source = 'int f() { // a { brace\n  return "é}".size(); /* } */ }\n'
    blank = blank_comments_and_strings(source, CPP)
    assert len(blank) == len(source) and blank.count("\n") == source.count("\n")
    assert blank.count("{") == 1 and blank.count("}") == 1 and "return" in blank and "é" not in blank
    java = 'class A { String t = """\n  { text block\n  """; char c = \'{\'; }'
    assert blank_comments_and_strings(java, JAVA).count("{") == 1
