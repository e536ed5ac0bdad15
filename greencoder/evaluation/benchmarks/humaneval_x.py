"""HumanEval-X (C++, Java, Python): tasks from the CodeGeeX data files, and their test programs.

Data: `humaneval_{cpp,java,python}.jsonl(.gz)` as published in THUDM/CodeGeeX
(`codegeex/benchmark/humaneval-x/<lang>/data/`), one problem per line with `task_id`, `prompt`,
`declaration`, `canonical_solution` and `test`. Only local files are read. Where a machine is
online the same records are on the Hugging Face hub as the dataset `THUDM/humaneval-x`, but
greencoder evaluates offline and does not download them: point `data_dir` at the files.

Programs are assembled as CodeGeeX's reference harness does (`benchmark/humaneval-x/
evaluate_humaneval_x.py: process_humaneval_test` and `benchmark/execution.py: check_correctness`),
so pass@1 means what it means in the paper's tables. The solution is whole code, i.e. the prompt
plus the completion, which is how the reference concatenates them:
- Python: the reference's import helper (`import math`, `re`, `sys`, ..., `from typing import *`,
  `from collections import *`), the solution, a newline and the test, which ends by calling
  `check(<entry point>)` itself; exit status 0 passes. The reference execs this in-process with
  `import numpy` in the helper too; here it is one script in the sandbox, and the numpy lines are
  added only where the solution names numpy (importing it costs more start-up than most tests
  take, and the sandbox's interpreter need not have it; nothing else can depend on it).
- C++: each line of the reference's fixed `#include` list (`<stdlib.h>`, `<algorithm>`,
  `<math.h>`, `<stdio.h>`, `<vector>`, `<string>`, `<climits>`, `<cstring>`, `<iostream>`) that
  the code does not already contain, then the solution, a newline and the test (a `main` of
  `assert`s, with `#undef NDEBUG`). Prompts bring the rest themselves (`<boost/any.hpp>` in CPP/22
  and CPP/137, `<openssl/md5.h>` in CPP/162). The reference compiles with `g++ -std=c++11`, adding
  `-lcrypto -lssl` for task 162 only; here every task is compiled `-std=c++17` (the project's
  standard; all references also pass as C++11) and linked with both libraries, which costs nothing
  where unused and lets a generated solution use MD5 anywhere, as the reference's would not.
- Java: the solution (`class Solution`, with the prompt's imports) and the test (`public class
  Main`, which throws AssertionError itself) written to `Main.java`; `javac`, then `java Main`. The
  reference runs java without `-ea`; the sandbox passes `-ea`, which changes nothing for the tests
  (none uses the `assert` statement) but makes a solution's own failing `assert` count as a failure.

Workloads (energy) run the same test as a repeatable call:
- Python: the program without the module-level `check(...)` call, so importing it runs nothing;
  the call is `check(<entry point>)`.
- C++: the program, whose `main` the measurement harness renames to `greencoder_user_main`; the
  call is `greencoder_user_main()`. A `return 0;` is added at the end of that `main` (flowing off
  the end of a non-`main` function is undefined behaviour, which optimised builds exploit). Tests
  that draw inputs with `rand()` (32, 38, 50, 53) reseed it with `srand(1)` (the C default seed)
  before every call, so every call replays exactly the inputs the correctness run checked.
- Java: the program (`public class Main`, hence `Main.java`); the call is `Main.main(new String[0])`.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path

from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, get_language
from greencoder.core.measurement.harness import cpp_sources
from greencoder.core.source import programs
from greencoder.evaluation.benchmarks import drivers
from greencoder.evaluation.tasks import Program, Task, Workload

BENCHMARK = "humaneval-x"
FOLDER = "humaneval_x"
TASK_PREFIX = {"cpp": "CPP", "java": "Java", "python": "Python"}

CXX_FLAGS = ("-std=c++17",)
CXX_LINK_FLAGS = ("-lcrypto", "-lssl")

# CodeGeeX `benchmark/utils.py: IMPORT_HELPER`, in its order.
PYTHON_IMPORT_HELPER = (
    "import math",
    "import re",
    "import sys",
    "import copy",
    "import datetime",
    "import itertools",
    "import collections",
    "import heapq",
    "import statistics",
    "import functools",
    "import hashlib",
    "import string",
    "from typing import *",
    "from collections import *",
)
PYTHON_NUMPY_HELPER = ("import numpy", "import numpy as np")  # reference order: after hashlib, before string
CPP_INCLUDE_HELPER = (
    "#include<stdlib.h>",
    "#include<algorithm>",
    "#include<math.h>",
    "#include<stdio.h>",
    "#include<vector>",
    "#include<string>",
    "#include<climits>",
    "#include<cstring>",
    "#include<iostream>",
)

PYTHON_SCRIPT = "program.py"
CPP_FILE = "test.cpp"  # the reference's name, here the test's own translation unit
CPP_SOLUTION = "solution.cpp"
JAVA_FILE, JAVA_MAIN = "Main.java", "Main"
JAVA_SOLUTION = "Solution.java"

# Reference solutions known not to pass, with the reason: none. All 164 pass in each language
# under the sandbox (tests/test_eval_humaneval_x.py, slow), given libboost-dev and libssl-dev.
CANONICAL_EXCEPTIONS: dict[str, str] = {}

_REQUIRED = ("task_id", "prompt", "canonical_solution", "test")


# ---------------------------------------------------------------------------------------------
# loading


def data_file(data_dir: Path, language: str) -> Path:
    """`humaneval_<lang>.jsonl.gz` (or `.jsonl`) in `data_dir/humaneval_x/` or in `data_dir` itself."""
    if language not in TASK_PREFIX:
        raise InputError(f"HumanEval-X has no {language!r} tasks here: choose {', '.join(TASK_PREFIX)}")
    data_dir = Path(data_dir)
    folders = [data_dir / FOLDER, data_dir]
    for folder in folders:
        for suffix in (".jsonl.gz", ".jsonl"):
            path = folder / f"humaneval_{language}{suffix}"
            if path.is_file():
                return path
    raise InputError(f"HumanEval-X {language} data not found: no humaneval_{language}.jsonl(.gz) in "
                     + " or ".join(str(folder) for folder in folders))


def _read_lines(path: Path) -> list[str]:
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        return raw.decode("utf-8").splitlines()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise InputError(f"{path}: cannot read HumanEval-X data: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc


def load_tasks(data_dir: Path, language: str) -> list[Task]:
    """The 164 HumanEval-X tasks in `language` from local files (see the module docstring: the
    Hugging Face copy is not fetched). `data_dir` is the folder holding `humaneval_x/`, that folder
    itself, or any folder holding `humaneval_<lang>.jsonl(.gz)`."""
    path = data_file(Path(data_dir), language)
    tasks: list[Task] = []
    seen: set[str] = set()
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{number}: malformed JSON line ({exc.msg} at column {exc.colno})") from None
        if not isinstance(record, dict):
            raise InputError(f"{path}:{number}: expected a JSON object, found {type(record).__name__}")
        missing = [key for key in _REQUIRED if not isinstance(record.get(key), str)]
        if missing:
            raise InputError(f"{path}:{number}: record lacks text field(s) {', '.join(missing)}")
        task_id = record["task_id"]
        if not task_id.startswith(TASK_PREFIX[language] + "/"):
            raise InputError(f"{path}:{number}: task {task_id!r} is not a {language} task "
                             f"(expected ids like {TASK_PREFIX[language]}/0)")
        if task_id in seen:
            raise InputError(f"{path}:{number}: task {task_id!r} appears twice")
        seen.add(task_id)
        try:
            entry_point = record.get("entry_point") or find_entry_point(language, record["prompt"], record["test"])
        except ValueError as exc:
            raise InputError(f"{path}:{number}: {task_id}: {exc}") from None
        tasks.append(Task(
            benchmark=BENCHMARK,
            language=language,
            task_id=task_id,
            signature=record["prompt"],
            entry_point=entry_point,
            problem=None,
            completion_suffix="",
            canonical=record["prompt"] + record["canonical_solution"],
            canonical_exception=CANONICAL_EXCEPTIONS.get(task_id),
            meta={"test": record["test"], "declaration": record.get("declaration"),
                  "example_test": record.get("example_test")},
        ))
    if not tasks:
        raise InputError(f"{path}: no HumanEval-X tasks in the file")
    return tasks


def find_entry_point(language: str, prompt: str, test: str = "") -> str:
    """The function the model completes. Python: the name the test's `check(NAME)` call passes,
    else the last `def` of the prompt; C++/Java: the last function (method) the prompt opens
    (CPP/38 and Java/38 define `encode_cyclic` first and ask for `decode_cyclic`)."""
    if language == "python":
        called = re.findall(r"^check\(\s*([A-Za-z_]\w*)\s*\)\s*$", test, re.MULTILINE)
        if called:
            return called[-1]
        defined = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", prompt, re.MULTILINE)
        if defined:
            return defined[-1]
        raise ValueError("no function definition in the prompt")
    last = programs.last_function(prompt, get_language(language))
    if last is None:
        raise ValueError("no function declaration in the prompt")
    return last.name


# ---------------------------------------------------------------------------------------------
# programs


def uses_numpy(solution: str) -> bool:
    """Whether the solution reads an attribute of `np` or `numpy` (`np.array`), i.e. relies on the
    reference's numpy import; a variable that is merely called `np` does not."""
    try:
        tree = ast.parse(solution)
    except SyntaxError:  # the run reports it; a textual look is good enough to pick the helper
        return re.search(r"(?<![\w.])(np|numpy)\s*\.\s*[A-Za-z_]", solution) is not None
    return any(isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")
               for node in ast.walk(tree))


def _python_helper(solution: str) -> str:
    lines = list(PYTHON_IMPORT_HELPER)
    if uses_numpy(solution):
        lines[lines.index("import string"):lines.index("import string")] = PYTHON_NUMPY_HELPER
    return "\n".join(lines) + "\n"


def _cpp_helper(solution: str) -> str:
    return "".join(line + "\n" for line in CPP_INCLUDE_HELPER if line not in solution)


def _test(task: Task) -> str:
    return task.meta["test"]


def _check_calls(test: str) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) of the test's module-level `check(...)` calls."""
    try:
        tree = ast.parse(test)
    except SyntaxError:  # not expected in the data; fall back to whole-line calls
        return [(number, number) for number, line in enumerate(test.splitlines(), start=1)
                if re.match(r"^check\(.*\)\s*$", line)]
    return [(node.lineno, node.end_lineno or node.lineno) for node in tree.body
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Name) and node.value.func.id == "check"]


def _python_test_without_check_call(test: str) -> str:
    drop = {number for start, end in _check_calls(test) for number in range(start, end + 1)}
    lines = test.splitlines(keepends=True)
    return "".join(line for number, line in enumerate(lines, start=1) if number not in drop)


def _python_checks(task: Task) -> str:
    """`_greencoder_checks(solution)`: the test's own `check(...)` calls, each function it passes
    wrapped so its results must be plain values (drivers.py)."""
    calls = []
    for start, end in _check_calls(_test(task)) or [(0, 0)]:
        text = "\n".join(_test(task).splitlines()[start - 1:end]) if start else f"check({task.entry_point})"
        try:
            argument = ast.parse(text, mode="eval").body.args
        except (SyntaxError, AttributeError):
            argument = None
        if argument and len(argument) == 1 and isinstance(argument[0], ast.Name):
            calls.append(f"    solution.check(_greencoder_plain_results(solution.{argument[0].id}))")
        else:
            calls.append(f"    eval(compile({text!r}, '<test>', 'eval'), vars(solution))")
    return "def _greencoder_checks(solution):\n" + "\n".join(calls) + "\n"


def _cpp_test_unit(task: Task, *, runnable: bool) -> str:
    """The test as its own translation unit: the reference's includes, the prompt's declarations
    (its function bodies live in the solution's unit), greencoder's assert, and the test's `main`
    renamed `greencoder_test_main`; `runnable` adds the `main` that prints the completion mark."""
    test = _cpp_main_returns(_test(task))
    includes = "".join(line + "\n" for line in test.splitlines() if re.match(r"\s*#\s*include\b", line))
    body = "\n".join("" if re.match(r"\s*#\s*include\b", line) else line for line in test.splitlines())
    head = "".join(line + "\n" for line in CPP_INCLUDE_HELPER) + "\n" + drivers.cpp_prototypes(task.signature)
    unit = (head + drivers.cpp_driver_head(read_nonce=runnable) + includes + drivers.CPP_ASSERT
            + "#define main greencoder_test_main\n" + body + "\n#undef main\n")
    return unit + drivers.cpp_main("greencoder_test_main") if runnable else unit


def _java_test_file(task: Task) -> str:
    """Main.java: the prompt's imports (dataset text, as the reference's one file has them), then a
    single-type import of every JDK type the test names, then the test."""
    test = _test(task)
    prompt_imports = "".join(line + "\n" for line in task.signature.splitlines() if re.match(r"\s*import\s", line))
    return (drivers.JAVA_ON_DEMAND + prompt_imports + drivers.java_single_type_imports(test, frozenset({JAVA_MAIN}))
            + "\n" + test)


def build_program(task: Task, solution: str) -> Program:
    """The reference harness's test program for `solution` (see the module docstring), with the
    solution kept apart from the test and a completion mark (drivers.py)."""
    if task.language == "python":
        program = _python_helper(solution) + solution + "\n" + _python_test_without_check_call(_test(task)) + "\n"
        script = drivers.python_check_script(PYTHON_SCRIPT, _python_checks(task))
        return Program(files={PYTHON_SCRIPT: program, drivers.PYTHON_CHECK: script}, entry=drivers.PYTHON_CHECK,
                       completion_mark=True)
    if task.language == "cpp":
        files, entry = cpp_sources({CPP_SOLUTION: _cpp_helper(solution) + "\n" + solution + "\n",
                                    CPP_FILE: _cpp_test_unit(task, runnable=True)})
        return Program(files=files, entry=entry, cxx_flags=CXX_FLAGS, cxx_link_flags=CXX_LINK_FLAGS,
                       completion_mark=True)
    if task.language == "java":
        check_file, check_text = drivers.java_check_class()
        files = {JAVA_SOLUTION: solution + "\n", JAVA_FILE: _java_test_file(task), check_file: check_text}
        return Program(files=files, entry=drivers.JAVA_CHECK_CLASS, completion_mark=True)
    raise InputError(f"HumanEval-X has no {task.language!r} tasks")


def _cpp_main_returns(test: str) -> str:
    """`test` with `return 0;` before the closing brace of its `main`, where that can be found."""
    bounds = programs.body_bounds(test, CPP, "main")
    if bounds is None or bounds[1] is None:
        return test
    closing = bounds[1]
    return test[:closing] + "    return 0;\n" + test[closing:]


def build_workload(task: Task, solution: str) -> Workload:
    """The task's test as one repeatable call (see the module docstring)."""
    test = _test(task)
    if task.language == "python":
        source = _python_helper(solution) + solution + "\n" + _python_test_without_check_call(test) + "\n"
        return Workload(source=source, call=f"check({task.entry_point})")
    if task.language == "cpp":
        uses_rand = programs.calls_function(test, CPP, "rand")
        call = "(srand(1), greencoder_test_main())" if uses_rand else "greencoder_test_main()"
        return Workload(source=_cpp_helper(solution) + "\n" + solution + "\n", call=call, cxx_flags=CXX_FLAGS,
                        cxx_link_flags=CXX_LINK_FLAGS, driver={CPP_FILE: _cpp_test_unit(task, runnable=False)},
                        declarations="int greencoder_test_main();")
    if task.language == "java":
        return Workload(source=solution + "\n", call=f"{JAVA_MAIN}.main(new String[0])",
                        driver={JAVA_FILE: _java_test_file(task)})
    raise InputError(f"HumanEval-X has no {task.language!r} tasks")
