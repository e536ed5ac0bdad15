"""Evaluation input is checked, not skipped; and one task's failure never stops a run.

A user's --generations file gets `FILE:LINE: what is wrong` and a non-zero exit for every kind of
bad line; greencoder's own result files stay lenient (a kill tears their last line). A task whose
check or measurement raises is recorded with its reason and the others go on.
"""

from __future__ import annotations

import json
import time

import pytest
from conftest import SHARED_DATA

from greencoder.cli import main
from greencoder.core.errors import InputError
from greencoder.core.measurement.protocol import MeasurementProtocol
from greencoder.evaluation.efficiency import measure_solution
from greencoder.evaluation.generations_file import read_generations
from greencoder.evaluation.records import RecordFile, read_records
from greencoder.evaluation.scoring import score
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import Variant, resolve_variants

KNOWN = {("humaneval-x", "python"): {"Python/0", "Python/1"}}


def task_ids(benchmark: str, language: str):
    return KNOWN.get((benchmark, language), set())


def line(**fields) -> str:
    record = {"variant": "mine", "benchmark": "humaneval-x", "language": "python", "task_id": "Python/0",
              "solution": "def f():\n    return 1\n"}
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


@pytest.mark.parametrize("bad, message", [
    ("{not json", "not JSON (Expecting property name enclosed in double quotes at column 2)"),
    ("[1, 2]", "expected a JSON object, found list"),
    ('"text"', "expected a JSON object, found str"),
    (line(solution=None), "'solution' must be the solution's code as a string, found null"),
    (line(solution=...), "'solution' must be the solution's code as a string, found missing"),
    (line(task_id="Python/999"), "humaneval-x has no python task 'Python/999'"),
    (line(benchmark="humaneval"), "unknown benchmark 'humaneval' (choose humaneval-x, leetcode-hard)"),
    (line(language="rust"), "unknown language 'rust' (choose cpp, java, python)"),
    (line(variant=3), "'variant' must be a non-empty string"),
    (line(error=5), "'error' must be a string (why the generation failed)"),
    (line(), "mine/humaneval-x/python/Python/0 is already on line 1"),
])
def test_each_bad_line_is_named_by_file_and_line(tmp_path, bad, message):
    path = tmp_path / "generations.jsonl"
    path.write_text(line() + "\n\n" + bad + "\n")
    with pytest.raises(InputError) as caught:
        read_generations(str(path), task_ids)
    assert str(caught.value) == f"{path}:3: {message}"


def test_a_last_line_without_newline_is_read_and_errors_are_kept(tmp_path):
    path = tmp_path / "generations.jsonl"
    path.write_text(line() + "\n" + line(task_id="Python/1", solution=..., error="prompt too long"))
    records = read_generations(str(path), task_ids)
    assert [r["task_id"] for r in records] == ["Python/0", "Python/1"] and records[1]["error"] == "prompt too long"


def test_greencoders_own_files_stay_lenient(tmp_path):
    path = tmp_path / "correctness.jsonl"
    path.write_text(line() + "\n" + '{"torn": ')
    assert len(list(read_records(path))) == 1


@pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir(), reason="shared benchmark data missing")
def test_cli_stops_with_one_line_and_a_failing_status(tmp_path, capsys):
    path = tmp_path / "generations.jsonl"
    path.write_text(line() + "\n" + line(task_id="Python/1", solution=None) + "\n")
    status = main(["evaluate", "--generations", str(path), "--data", str(SHARED_DATA), "--out", str(tmp_path / "out"),
                   "--benchmark", "humaneval-x", "--language", "python", "--limit", "2"])
    assert status != 0
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"greencoder: error: {path}:2: 'solution' must be the solution's code as a string, found null")


@pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir(), reason="shared benchmark data missing")
def test_generations_without_a_baseline_need_no_model(tmp_path, capsys):
    from greencoder.evaluation.benchmarks import load_tasks

    tasks = load_tasks("humaneval-x", "python", SHARED_DATA)[:2]
    path = tmp_path / "generations.jsonl"
    rows = [json.dumps({"variant": "mine", "benchmark": t.benchmark, "language": t.language, "task_id": t.task_id,
                        "solution": t.canonical}) for t in tasks]
    path.write_text("\n".join(rows))  # no trailing newline: the last line counts
    out = tmp_path / "out"
    status = main(["evaluate", "--generations", str(path), "--data", str(SHARED_DATA), "--out", str(out),
                   "--benchmark", "humaneval-x", "--language", "python", "--limit", "2"])
    assert status == 0, capsys.readouterr().err
    scored = [json.loads(row) for row in (out / "correctness.jsonl").read_text().splitlines()]
    assert sorted((r["variant"], r["task_id"], r["passed"]) for r in scored) == [
        ("mine", "Python/0", True), ("mine", "Python/1", True)]


def test_variants_add_a_model_baseline_only_when_a_model_is_used():
    assert [v.name for v in resolve_variants(["mine"], False, frozenset({"mine"}))] == ["mine"]
    assert [(v.name, v.external) for v in resolve_variants(["mine"], False, frozenset({"mine", "baseline"}))] == [
        ("baseline", True), ("mine", True)]
    assert [(v.name, v.needs_model) for v in resolve_variants(["a=/x"], False)] == [("baseline", True), ("a", True)]


# ---------------------------------------------------------------------------------------------
# one task's failure is that task's record


TASKS = [Task("humaneval-x", "python", f"Python/{i}", "def f():\n", "f") for i in range(3)]


class ExplodingChecker:
    """Raises for Python/1 (as a job folder that cannot be removed would), passes the others."""

    def check(self, task, solution):
        from greencoder.evaluation.correctness import CheckResult

        if task.task_id == "Python/1":
            raise RecursionError("maximum recursion depth exceeded while removing a job folder")
        return CheckResult("ok", "ok", "run", 0.01, "test")


def test_a_task_whose_check_raises_is_recorded_and_the_run_goes_on(tmp_path):
    records = RecordFile(tmp_path / "correctness.jsonl")
    variant = Variant("mine", external=True)
    generations = {("mine", t.benchmark, t.language, t.task_id): {"solution": "x"} for t in TASKS}
    scored, waiting = score([variant], TASKS, generations, records, ExplodingChecker(), workers=2, progress=False)
    assert (scored, waiting) == (3, 0)
    by_task = {key[3]: record for key, record in records.done.items()}
    assert by_task["Python/1"]["status"] == "error" and "RecursionError" in by_task["Python/1"]["reason"]
    assert by_task["Python/0"]["passed"] and by_task["Python/2"]["passed"]


def test_a_task_whose_workload_cannot_be_built_is_recorded(monkeypatch):
    from greencoder.evaluation import efficiency

    def broken(task, solution):
        raise ValueError("bad test data")

    monkeypatch.setattr(efficiency, "build_workload", broken)
    record = measure_solution("mine", TASKS[0], "x", checker=None, meter=None, protocol=MeasurementProtocol(),
                              sleep=time.sleep)
    assert record["error"] == "ValueError: bad test data" and record["task_id"] == "Python/0"
