"""HumanEval-X: loading the CodeGeeX files, the reference harness's test programs, and workloads.

The default run checks the reference solutions of a fixed sample (the data's known wrinkles
included); `pytest -m slow` checks all 164 x 3 and runs every workload once.
"""

from __future__ import annotations

import ast
import gzip
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from conftest import SHARED_DATA

from greencoder.core.errors import InputError
from greencoder.core.languages import get_language
from greencoder.core.measurement.harness import build_harness, parse_harness_output
from greencoder.core.measurement.protocol import (
    MeasurementError,
    MeasurementProtocol,
    measure,
)
from greencoder.core.meters import select_meter
from greencoder.evaluation.benchmarks import (
    build_program,
    build_workload,
    humaneval_x,
    load_tasks,
)
from greencoder.evaluation.correctness import DEFAULT_TEST_LIMITS, Checker
from greencoder.evaluation.tasks import LANGUAGES, Task

DATA = SHARED_DATA / "humaneval_x"
PREFIX = {"cpp": "CPP", "java": "Java", "python": "Python"}
# boost (22, 137), md5 + OpenSSL (162), a prompt holding a whole helper function (38, 50),
# a 4-quote docstring (Python/142), rand()-driven tests (32), and plain ones.
SAMPLE = ("0", "15", "22", "32", "38", "50", "137", "142", "162")
QUICK = MeasurementProtocol(runs=2, min_seconds=0.2, cooldown_seconds=0, baseline_seconds=0)

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not available")


@pytest.fixture(scope="module")
def tasks() -> dict[str, dict[str, Task]]:
    return {language: {task.task_id.split("/")[1]: task for task in load_tasks("humaneval-x", language, SHARED_DATA)}
            for language in LANGUAGES}


@pytest.fixture(scope="module")
def checker() -> Checker:
    return Checker()


@pytest.fixture(scope="module")
def quick_checker() -> Checker:
    return Checker(run_limits=replace(DEFAULT_TEST_LIMITS, wall_seconds=3))


def raw_records(language: str) -> list[dict]:
    with gzip.open(DATA / f"humaneval_{language}.jsonl.gz", "rt") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def off_by_one(task: Task) -> str:
    """HumanEval 15 (string_sequence, "0 1 ... n") with its loop bound moved by one."""
    edits = {"cpp": ("i<=n", "i<n"), "java": ("i < n;", "i <= n;"), "python": ("range(n + 1)", "range(n)")}
    old, new = edits[task.language]
    assert task.canonical.count(old) == 1
    return task.canonical.replace(old, new)


# ---------------------------------------------------------------------------------------------
# loading


@pytest.mark.parametrize("language", LANGUAGES)
def test_tasks_follow_the_records(tasks, language):
    records = raw_records(language)
    loaded = list(tasks[language].values())
    assert len(loaded) == len(records) == 164
    for task, record in zip(loaded, records, strict=True):
        assert task.benchmark == "humaneval-x" and task.language == language
        assert task.task_id == record["task_id"] and task.task_id.startswith(PREFIX[language] + "/")
        assert task.signature == record["prompt"]  # byte for byte
        assert task.canonical == record["prompt"] + record["canonical_solution"]
        assert task.problem is None and task.completion_suffix == "" and task.canonical_exception is None
        assert task.meta["test"] == record["test"]
        assert task.entry_point in record["test"]
        assert task.solution("X") == record["prompt"] + "X"


def test_entry_points(tasks):
    assert tasks["cpp"]["38"].entry_point == "decode_cyclic"  # the prompt defines encode_cyclic first
    assert tasks["java"]["38"].entry_point == "decodeCyclic"
    assert tasks["python"]["38"].entry_point == "decode_cyclic"
    assert tasks["java"]["162"].entry_point == "stringToMd5"  # `throws NoSuchAlgorithmException {`
    assert tasks["cpp"]["137"].entry_point == "compare_one"
    assert tasks["python"]["142"].entry_point == "sum_squares"
    assert tasks["cpp"]["0"].entry_point == "has_close_elements"
    assert tasks["java"]["0"].entry_point == "hasCloseElements"


def test_data_dir_forms(tmp_path):
    """The folder holding humaneval_x/, that folder, or a folder with a plain (gzipped-by-content) file."""
    assert len(humaneval_x.load_tasks(DATA, "python")) == 164
    lines = gzip.decompress((DATA / "humaneval_python.jsonl.gz").read_bytes()).splitlines(keepends=True)[:3]
    (tmp_path / "humaneval_python.jsonl").write_bytes(gzip.compress(b"".join(lines)))  # gzip, though named .jsonl
    loaded = humaneval_x.load_tasks(tmp_path, "python")
    assert [task.task_id for task in loaded] == ["Python/0", "Python/1", "Python/2"]


def test_missing_folder_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"humaneval_cpp\.jsonl.*" + re.escape(str(tmp_path / "nowhere"))) as error:
        load_tasks("humaneval-x", "cpp", tmp_path / "nowhere")
    assert "\n" not in str(error.value)


def test_malformed_line_names_file_and_line(tmp_path):
    good = gzip.decompress((DATA / "humaneval_java.jsonl.gz").read_bytes()).splitlines(keepends=True)[0]
    path = tmp_path / "humaneval_x" / "humaneval_java.jsonl"
    path.parent.mkdir()
    path.write_bytes(good + b"\n" + b'{"task_id": "Java/1", "prompt": \n')
    with pytest.raises(InputError, match=re.escape(f"{path}:3: malformed JSON")) as error:
        load_tasks("humaneval-x", "java", tmp_path)
    assert "\n" not in str(error.value)
    path.write_bytes(good + b'{"task_id": "Java/1"}\n')
    with pytest.raises(InputError, match=re.escape(f"{path}:2: ") + ".*prompt"):
        load_tasks("humaneval-x", "java", tmp_path)


def test_wrong_language_file_is_refused(tmp_path):
    (tmp_path / "humaneval_cpp.jsonl.gz").write_bytes((DATA / "humaneval_java.jsonl.gz").read_bytes())
    with pytest.raises(InputError, match=r"humaneval_cpp\.jsonl\.gz:1: .*Java/0.* not a cpp task"):
        humaneval_x.load_tasks(tmp_path, "cpp")


# ---------------------------------------------------------------------------------------------
# programs


def test_programs_as_the_reference_builds_them(tasks):
    """The reference's pieces, with the solution and the test kept apart (see test_eval_verdicts.py)."""
    task = tasks["cpp"]["162"]
    cpp = build_program(task, task.canonical)
    assert cpp.entry == "@greencoder_sources.rsp" and cpp.files["greencoder_sources.rsp"].split() == ["solution.cpp", "test.cpp"]
    assert "-lcrypto" in cpp.cxx_link_flags and "-lssl" in cpp.cxx_link_flags and cpp.cxx_flags == ("-std=c++17",)
    source = cpp.files["solution.cpp"]
    assert "#include<climits>\n" in source and source.count("#include<string>") == 1  # the prompt has it already
    assert source.endswith(task.canonical + "\n") and "int main" not in source
    test_unit = cpp.files["test.cpp"]
    assert "string string_to_md5(string text);" in test_unit and task.canonical not in test_unit
    assert 'assert (string_to_md5("Hello world")' in test_unit and "#define main greencoder_test_main" in test_unit

    java = build_program(tasks["java"]["0"], tasks["java"]["0"].canonical)
    assert java.entry == "GreencoderCheck" and sorted(java.files) == ["GreencoderCheck.java", "Main.java", "Solution.java"]
    assert java.files["Solution.java"] == tasks["java"]["0"].canonical + "\n"
    assert java.files["Main.java"].endswith(tasks["java"]["0"].meta["test"]) and "import java.util.Arrays;" in java.files["Main.java"]

    python = build_program(tasks["python"]["0"], tasks["python"]["0"].canonical)
    assert python.entry == "greencoder_check.py"
    script = python.files["program.py"]
    assert script.startswith("import math\n") and "import numpy" not in script
    assert "\ncheck(" not in script  # the check script calls the test, with the results checked
    assert "solution.check(_greencoder_plain_results(solution.has_close_elements))" in python.files[python.entry]
    with_numpy = build_program(tasks["python"]["0"], tasks["python"]["0"].canonical + "\nx = np.array([1])\n")
    assert "import numpy as np\nimport string" in with_numpy.files["program.py"]
    named_np = build_program(tasks["python"]["0"], tasks["python"]["0"].canonical + "\nnp = 3\n")
    assert "import numpy" not in named_np.files["program.py"]


@pytest.mark.parametrize("language", LANGUAGES)
def test_canonical_sample_passes(tasks, checker, language):
    failed = {}
    for number in SAMPLE:
        task = tasks[language][number]
        result = checker.check(task, task.canonical)
        if not result.passed:
            failed[task.task_id] = f"{result.status}: {result.reason}"
    assert failed == {}


@pytest.mark.parametrize("language", LANGUAGES)
def test_off_by_one_fails(tasks, checker, language):
    task = tasks[language]["15"]
    assert checker.check(task, task.canonical).passed
    result = checker.check(task, off_by_one(task))
    assert result.status in ("wrong_answer", "runtime_error"), result


@pytest.mark.parametrize("language, body", [
    ("python", "    while True:\n        pass\n"),
    ("cpp", "    while (true) {}\n}\n"),
    ("java", "        while (true) {}\n    }\n}\n"),
])
def test_endless_solution_times_out(tasks, quick_checker, language, body):
    task = tasks[language]["0"]
    started = time.monotonic()
    result = quick_checker.check(task, task.signature + body)
    assert result.status == "timeout", result
    assert time.monotonic() - started < 60


@pytest.mark.parametrize("language, body", [
    ("cpp", "    return oops\n}\n"),
    ("java", "        return oops\n    }\n}\n"),
])
def test_syntax_error_is_a_compile_error(tasks, checker, language, body):
    task = tasks[language]["0"]
    assert checker.check(task, task.signature + body).status == "compile_error"


def test_python_syntax_error_fails(tasks, checker):
    task = tasks["python"]["0"]
    result = checker.check(task, task.signature + "    return (\n")
    assert not result.passed and result.status == "runtime_error"


# ---------------------------------------------------------------------------------------------
# workloads


def test_workload_shapes(tasks):
    python = build_workload(tasks["python"]["0"], tasks["python"]["0"].canonical)
    assert python.call == "check(has_close_elements)"
    module_calls = [node for node in ast.parse(python.source).body
                    if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)]
    assert module_calls == []  # importing runs nothing
    cpp = build_workload(tasks["cpp"]["0"], tasks["cpp"]["0"].canonical)
    assert cpp.call == "greencoder_test_main()" and cpp.cxx_link_flags == ("-lcrypto", "-lssl")
    assert cpp.declarations == "int greencoder_test_main();" and list(cpp.driver) == ["test.cpp"]
    assert "return 0;\n}" in cpp.driver["test.cpp"]  # the renamed main must return a value
    assert "int main" not in cpp.source and "read_nonce" not in cpp.driver["test.cpp"]
    seeded = build_workload(tasks["cpp"]["32"], tasks["cpp"]["32"].canonical)
    assert seeded.call == "(srand(1), greencoder_test_main())"  # each call replays the checked inputs
    java = build_workload(tasks["java"]["0"], tasks["java"]["0"].canonical)
    assert java.call == "Main.main(new String[0])" and "public class Main" in java.driver["Main.java"]
    assert "class Main" not in java.source


@pytest.mark.parametrize("language", LANGUAGES)
def test_workload_measures_canonical_and_rejects_broken(tasks, checker, language):
    task = tasks[language]["15"]
    meter = select_meter("estimate").meter
    language_ = get_language(language)
    good = build_workload(task, task.canonical)
    sandbox = checker.sandbox(good.cxx_flags, good.cxx_link_flags)
    measurement = measure(sandbox, meter, language_, good.source, good.call, function=task.entry_point,
                          name=task.task_id, protocol=QUICK, driver=good.driver, declarations=good.declarations)
    assert len(measurement.runs) == 2 and measurement.repeats >= 1
    assert all(run.joules > 0 for run in measurement.runs) and measurement.energy_kind == "estimated"
    broken = build_workload(task, off_by_one(task))
    with pytest.raises(MeasurementError, match=task.task_id):
        measure(sandbox, meter, language_, broken.source, broken.call, function=task.entry_point,
                name=task.task_id, protocol=QUICK, driver=broken.driver, declarations=broken.declarations)


def run_workload_once(checker: Checker, task: Task, cxx_flags: tuple[str, ...] | None = None) -> str:
    """'ok', or why the task's canonical workload did not build and run 3 calls."""
    workload = build_workload(task, task.canonical)
    language = get_language(task.language)
    program = build_harness(language, workload.source, workload.call, task.entry_point, driver=workload.driver,
                            declarations=workload.declarations)
    sandbox = checker.sandbox(cxx_flags or workload.cxx_flags, workload.cxx_link_flags)
    with sandbox.prepare(language, program.files, program.entry) as job:
        result = job.build()
        if result.ok:
            result = job.run(["3"], stdin=b"n0nce\n")
        if not result.ok:
            return f"{result.stage} {result.status.value}: {result.reason}"
        assert parse_harness_output(result.stdout, "n0nce", 3).repeats == 3
        return "ok"


def test_cpp_workload_survives_optimisation(tasks, checker):
    """Without the added `return 0;`, -O2 turns the renamed main's missing return into a crash."""
    assert run_workload_once(checker, tasks["cpp"]["0"], ("-std=c++17", "-O2")) == "ok"


# ---------------------------------------------------------------------------------------------
# everything (pytest -m slow)


def _run_all(function, items) -> dict[str, str]:
    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(function, items))
    return {task.task_id: outcome for task, outcome in zip(items, outcomes, strict=True) if outcome != "ok"}


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_canonical_passes(tasks, checker, language):
    def check(task: Task) -> str:
        result = checker.check(task, task.canonical)
        return "ok" if result.passed else f"{result.status}: {result.reason}"

    items = list(tasks[language].values())
    expected_failures = {task.task_id for task in items if task.canonical_exception}
    assert set(_run_all(check, items)) == expected_failures


@pytest.mark.slow
@pytest.mark.parametrize("language", LANGUAGES)
def test_every_canonical_workload_runs(tasks, checker, language):
    items = [task for task in tasks[language].values() if not task.canonical_exception]
    assert _run_all(lambda task: run_workload_once(checker, task), items) == {}
