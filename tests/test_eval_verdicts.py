"""Verdicts a solution cannot fake: wrong solutions that try to pass by exiting early, rewiring the
test driver or faking equality all fail, in HumanEval-X and LeetCode-hard, in every language.

Each attack is a wrong answer plus one trick (the 15 of issue 15). The attack programs live here,
not in the package. Correct solutions that merely look like tricks (a variable called `np`,
numpy itself, a Counter result) still pass.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import SHARED_DATA

from greencoder.evaluation.benchmarks import build_program, load_tasks
from greencoder.evaluation.benchmarks.drivers import (
    MARK,
    completed,
    cpp_prototypes,
    java_single_type_imports,
)
from greencoder.evaluation.correctness import Checker

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir() or not (SHARED_DATA / "leetcode_hard").is_dir(),
                                reason="shared benchmark data missing")

# HumanEval-X task 0 (has_close_elements): the prompt ends inside the function, so each attack is
# the rest of a wrong solution plus its trick.
HUMANEVAL_ATTACKS = {
    ("python", "os._exit(0)"): "    import os\n    os._exit(0)\n",
    ("python", "raise SystemExit(0)"): "    raise SystemExit(0)\n",
    ("python", "unittest.main() in __main__"):
        "    return False\n\n\nif __name__ == '__main__':\n    import unittest\n    unittest.main()\n",
    ("python", "atexit os._exit(0)"):
        "    import atexit, os\n    atexit.register(lambda: os._exit(0))\n    raise ValueError('wrong')\n",
    ("python", "__eq__ always true"):
        "    class Yes:\n        def __eq__(self, other):\n            return True\n\n"
        "        def __bool__(self):\n            return True\n    return Yes()\n",
    ("cpp", "exit(0) in the function"): "    exit(0);\n}\n",
    ("cpp", "own main and #define main"): "    return false;\n}\nint main() { return 0; }\n#define main greencoder_unused_main\n",
    ("cpp", "SIGABRT handler exits 0"):
        "    return false;\n}\n#include <csignal>\n#include <unistd.h>\n"
        "static void greencoder_attack(int) { _exit(0); }\n"
        "static int greencoder_installed = (std::signal(SIGABRT, greencoder_attack), 0);\n",
    ("cpp", "no-op __assert_fail"):
        "    return false;\n}\nextern \"C\" void __assert_fail(const char*, const char*, unsigned int, const char*) "
        "noexcept {}\n",
    ("cpp", "#define assert"): "    return false;\n}\n#define assert(x) ((void)0)\n",
    ("java", "System.exit(0)"): "        System.exit(0);\n        return false;\n    }\n}\n",
    ("java", "shutdown hook halts 0"):
        "        Runtime.getRuntime().addShutdownHook(new Thread(() -> Runtime.getRuntime().halt(0)));\n"
        "        return false;\n    }\n}\n",
    ("java", "class Arrays shadows java.util.Arrays"):
        "        return false;\n    }\n}\n\nclass Arrays {\n"
        "    @SafeVarargs\n    static <T> java.util.List<T> asList(T... items) { return new java.util.ArrayList<>(); }\n}\n",
}

# LeetCode: the reference, then a Solution subclass whose method returns a wrong answer after its trick.
LEETCODE_TASKS = {"python": "3463", "cpp": "3463", "java": "3261"}
LEETCODE_ATTACKS = {
    ("python", "os._exit(0)"): ("import os\n", "        os._exit(0)"),
    ("python", "raise SystemExit(0)"): ("", "        raise SystemExit(0)"),
    ("python", "unittest.main() in __main__"):
        ("", ("        return not r\n\n\nif __name__ == '__main__':\n    import unittest\n    unittest.main()")),
    ("python", "atexit os._exit(0)"):
        ("import atexit, os\natexit.register(lambda: os._exit(0))\n", "        return not r"),
    ("python", "__eq__ always true"):
        (("class Yes:\n    def __eq__(self, other):\n        return True\n\n    def __ne__(self, other):\n"
          "        return False\n\n    __hash__ = object.__hash__\n"), "        return Yes()"),
    ("cpp", "exit(0) in the function"): ("", "        exit(0);"),
    ("cpp", "own main and #define main"): ("int main() { return 0; }\n#define main greencoder_unused_main\n",
                                           "        return !r;"),
    ("cpp", "SIGABRT handler exits 0"):
        (("#include <csignal>\n#include <unistd.h>\nstatic void greencoder_attack(int) { _exit(0); }\n"
          "static int greencoder_installed = (std::signal(SIGABRT, greencoder_attack), 0);\n"), "        abort();"),
    ("cpp", "exit() that exits 0"): ('#include <unistd.h>\nextern "C" void exit(int) noexcept { _exit(0); }\n',
                                     "        return !r;"),
    ("java", "System.exit(0)"): ("", "        System.exit(0);\n        return r;"),
    ("java", "shutdown hook halts 0"):
        ("", ("        Runtime.getRuntime().addShutdownHook(new Thread(() -> Runtime.getRuntime().halt(0)));\n"
              "        return new long[] {-1};")),
    ("java", "class Objects shadows java.util.Objects"):
        (("class Objects {\n    static boolean equals(Object a, Object b) { return true; }\n"
          "    static int hashCode(Object o) { return 0; }\n}\n"), "        long[] w = r.clone();\n        w[0]++;\n        return w;"),
}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


@pytest.fixture(scope="module")
def humaneval() -> dict:
    return {language: load_tasks("humaneval-x", language, SHARED_DATA)[0] for language in ("python", "cpp", "java")}


@pytest.fixture(scope="module")
def leetcode() -> dict:
    found = {}
    for language, task_id in LEETCODE_TASKS.items():
        found[language] = next(t for t in load_tasks("leetcode-hard", language, SHARED_DATA) if t.task_id == task_id)
    return found


def leetcode_attack(task, head: str, body: str) -> str:
    """The reference, `head` before it, and a Solution subclass whose method runs `body` (the
    reference's answer is `r`)."""
    method, language = task.entry_point, task.language
    if language == "python":
        return (head + task.canonical + "\n\nclass Solution(Solution):\n"
                f"    def {method}(self, *args, **kwargs):\n        r = super().{method}(*args, **kwargs)\n{body}\n")
    base = task.canonical.replace("class Solution", "class GreencoderReference")
    params = task.meta["params"]
    declared = ", ".join(f"{p['type']} {p['name']}" for p in params)
    names = ", ".join(p["name"] for p in params)
    if language == "cpp":
        return (base + "\n" + head + "class Solution : public GreencoderReference {\npublic:\n"
                f"    {task.meta['returns']} {method}({declared}) {{\n"
                f"        auto r = GreencoderReference::{method}({names});\n{body}\n    }}\n}};\n")
    return (base + "\n" + head + "class Solution extends GreencoderReference {\n"
            f"    public {task.meta['returns']} {method}({declared}) {{\n"
            f"        var r = super.{method}({names});\n{body}\n    }}\n}}\n")


@pytest.fixture(scope="module")
def attack_results(checker, humaneval, leetcode) -> dict:
    jobs = {("humaneval-x", *key): (humaneval[key[0]], humaneval[key[0]].signature + text)
            for key, text in HUMANEVAL_ATTACKS.items()}
    jobs.update({("leetcode-hard", *key): (leetcode[key[0]], leetcode_attack(leetcode[key[0]], *parts))
                 for key, parts in LEETCODE_ATTACKS.items()})
    jobs.update({("humaneval-x", language, "canonical"): (task, task.canonical) for language, task in humaneval.items()})
    jobs.update({("leetcode-hard", language, "canonical"): (task, task.canonical) for language, task in leetcode.items()})
    with ThreadPoolExecutor(2) as pool:
        futures = {key: pool.submit(checker.check, task, solution) for key, (task, solution) in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


ALL_ATTACKS = [("humaneval-x", *key) for key in HUMANEVAL_ATTACKS] + [("leetcode-hard", *key) for key in LEETCODE_ATTACKS]


@pytest.mark.parametrize("benchmark, language, trick", ALL_ATTACKS, ids=["/".join(k) for k in ALL_ATTACKS])
def test_a_wrong_solution_with_a_trick_fails(attack_results, benchmark, language, trick):
    result = attack_results[(benchmark, language, trick)]
    assert not result.passed, f"{benchmark} {language} '{trick}' passed"
    assert result.status in ("wrong_answer", "runtime_error", "compile_error"), (result.status, result.reason)


@pytest.mark.parametrize("benchmark", ["humaneval-x", "leetcode-hard"])
@pytest.mark.parametrize("language", ["python", "cpp", "java"])
def test_the_reference_still_passes_next_to_the_attacks(attack_results, benchmark, language):
    result = attack_results[(benchmark, language, "canonical")]
    assert result.passed, result.reason


def test_an_early_exit_is_named_as_such(attack_results):
    result = attack_results[("humaneval-x", "cpp", "exit(0) in the function")]
    assert result.status == "runtime_error" and "before its test finished" in result.reason
    result = attack_results[("humaneval-x", "python", "raise SystemExit(0)")]
    assert result.status == "runtime_error" and "SystemExit(0)" in result.reason


def test_a_non_plain_result_is_named(attack_results):
    result = attack_results[("humaneval-x", "python", "__eq__ always true")]
    assert "not a plain value" in result.reason


# ---------------------------------------------------------------------------------------------
# correct solutions that look like tricks still pass


PYTHON_LOOKALIKES = {
    "a variable called np": "    np = len(numbers)\n    return any(abs(numbers[i] - numbers[j]) < threshold "
                            "for i in range(np) for j in range(i + 1, np))\n",
    "numpy": "    a = np.array(sorted(numbers))\n    return bool(len(a) > 1 and np.min(np.diff(a)) < threshold)\n",
    "a __main__ block": "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
                        "\n\nif __name__ == '__main__':\n    raise SystemExit('must not run')\n",
}


@pytest.mark.parametrize("name", PYTHON_LOOKALIKES)
def test_correct_python_lookalikes_pass(checker, humaneval, name):
    task = humaneval["python"]
    result = checker.check(task, task.signature + PYTHON_LOOKALIKES[name])
    assert result.passed, result.reason


def test_a_counter_result_is_a_plain_value(checker):
    task = next(t for t in load_tasks("humaneval-x", "python", SHARED_DATA) if t.task_id == "Python/111")
    solution = task.signature + "    from collections import Counter\n    words = [w for w in test.split(' ') if w]\n" \
        "    counts = Counter(words)\n    top = max(counts.values(), default=0)\n" \
        "    return Counter({w: c for w, c in counts.items() if c == top}) if top else {}\n"
    result = checker.check(task, solution)
    assert result.passed, result.reason


# ---------------------------------------------------------------------------------------------
# the pieces


def test_completion_mark_must_be_a_line_with_this_runs_nonce():
    assert completed(f"out\n{MARK} abc\n", "abc")
    assert not completed(f"{MARK} abd\n", "abc")
    assert not completed(f"x{MARK} abc\n", "abc")
    assert not completed("", "abc")


def test_cpp_prototypes_keep_types_and_drop_bodies():
    prompt = ("#include<vector>\ntypedef std::vector<int> v;\nstruct P { int x; };\n"
              "double poly(v xs, double x){\n    return xs[0] * x; // {\n}\n"
              "double find_zero(v xs){\n    /* body { */\n")
    assert cpp_prototypes(prompt) == ("#include<vector>\ntypedef std::vector<int> v;\nstruct P { int x; };\n"
                                      "double poly(v xs, double x);\ndouble find_zero(v xs);\n")


def test_java_driver_imports_every_jdk_type_by_name():
    code = "class Main { void f() { List<Integer> a = Arrays.asList(1); Objects.equals(a, java.util.Set.of()); " \
           "Solution s; String t = \"Map\"; } }"
    assert java_single_type_imports(code, frozenset({"Main"})) == (
        "import java.util.Arrays;\nimport java.lang.Integer;\nimport java.util.List;\nimport java.util.Objects;\n"
        "import java.lang.String;\n")


def test_programs_keep_solution_and_test_apart(humaneval, leetcode):
    for task in (*humaneval.values(), *leetcode.values()):
        program = build_program(task, task.canonical)
        assert program.completion_mark
        if task.language == "cpp":
            assert program.entry.startswith("@") and "solution.cpp" in program.files[program.entry[1:]].split()
            test_unit = next(text for name, text in program.files.items() if name.endswith(".cpp") and name != "solution.cpp")
            assert task.canonical not in test_unit and "#include \"solution.cpp\"" not in test_unit
        if task.language == "java":
            assert program.entry == "GreencoderCheck" and "class Main" not in program.files["Solution.java"]
