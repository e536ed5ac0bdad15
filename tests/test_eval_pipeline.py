"""`greencoder evaluate` / `report` end to end: generate -> score -> measure -> report, resume, shards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SHARED_DATA
from conftest import run_greencoder as run_cli

pytestmark = pytest.mark.skipif(not (SHARED_DATA / "humaneval_x").is_dir(), reason="shared benchmark data missing")
QUIET = lambda line: None


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def without_timing(records: list[dict]) -> list[dict]:
    drop = {"finished_at", "wall_seconds", "cpu_seconds", "energy"}
    return sorted(({k: v for k, v in r.items() if k not in drop} for r in records), key=lambda r: json.dumps(r, sort_keys=True))


@pytest.fixture(scope="module")
def generated(tiny_model_dir, tiny_adapter_dir, tmp_path_factory):
    """The tiny model (baseline, instruction, and a soft-prompt variant) on 2 tasks x 2 languages."""
    from greencoder.evaluation.pipeline import EvaluateSettings, evaluate

    out = tmp_path_factory.mktemp("evaluation")
    settings = EvaluateSettings(out=str(out), data=str(SHARED_DATA), model=str(tiny_model_dir),
                                variants=("baseline", "instruction", f"cpt={tiny_adapter_dir}"),
                                benchmarks=("humaneval-x",), languages=("cpp", "python"), limit=2, max_new_tokens=24,
                                device="cpu", workers=2)
    outcome = evaluate(settings, threads=1, log=QUIET, progress=False)
    return out, outcome


def test_generations_have_raw_cleaned_solution_and_cost(generated):
    out, outcome = generated
    records = lines(out / "generations.jsonl")
    assert outcome.tasks == 4 and len(records) == 12 == outcome.generated
    assert {r["variant"] for r in records} == {"baseline", "instruction", "cpt"}
    for record in records:
        signature = record["solution"][: len(record["solution"]) - len(record["cleaned"])]
        assert record["solution"].endswith(record["cleaned"]) and signature and record["prompt"].endswith(signature)
        assert 1 <= record["new_tokens"] <= 24 and record["prompt_tokens"] > 10
        assert record["energy"]["kind"] == "estimated" and record["energy"]["joules"] > 0
        assert (record["virtual_tokens"] > 0) == (record["variant"] == "cpt")
        assert record["prompt"].startswith("Write efficient code") == (record["variant"] == "instruction")


def test_every_generation_is_scored_in_the_sandbox(generated):
    out, _ = generated
    records = lines(out / "correctness.jsonl")
    assert len(records) == 12
    assert all(r["status"] in {"ok", "wrong_answer", "compile_error", "runtime_error", "timeout"} for r in records)
    from greencoder.evaluation.correctness import Checker

    assert {r["isolation"] for r in records} == {Checker().isolation}


def test_table4_has_the_papers_layout(generated):
    out, _ = generated
    table = json.loads((out / "report" / "table4.json").read_text())
    assert table["columns"] == ["Total", "HumanEval-X C++", "HumanEval-X Java", "HumanEval-X Python",
                                "LeetCode C++", "LeetCode Java", "LeetCode Python"]
    assert [row["variant"] for row in table["rows"]] == ["baseline", "instruction", "cpt"]
    for row in table["rows"]:
        assert row["cells"]["Total"]["tasks"] == 4 and row["cells"]["HumanEval-X Python"]["tasks"] == 2
        assert row["cells"]["HumanEval-X Java"]["tasks"] == 0
    csv_lines = (out / "report" / "table4.csv").read_text().splitlines()
    assert csv_lines[0].startswith("Variant,Total,HumanEval-X C++") and len(csv_lines) == 4
    assert (out / "report" / "pass_at_1.png").stat().st_size > 1000
    cost = (out / "report" / "generation_cost.csv").read_text().splitlines()
    assert cost[0] == "Variant,Generations,New tokens,Seconds,Joules,Energy" and all(row.endswith(",estimated") for row in cost[1:])


def write_generations(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def slowed_down(solution: str, entry_point: str) -> str:
    """The same function, made to do pointless work on every call."""
    return solution + (f"\n\n_greencoder_original = {entry_point}\n\n"
                       f"def {entry_point}(*args, **kwargs):\n    sum(range(300000))\n"
                       f"    return _greencoder_original(*args, **kwargs)\n")


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Generations made elsewhere: the reference solutions as baseline, a slowed copy as a variant."""
    from greencoder.evaluation.benchmarks import load_tasks
    from greencoder.evaluation.pipeline import EvaluateSettings, evaluate

    folder = tmp_path_factory.mktemp("measured")
    tasks = load_tasks("humaneval-x", "python", SHARED_DATA)[:2]
    rows = []
    for task in tasks:
        key = {"benchmark": task.benchmark, "language": task.language, "task_id": task.task_id}
        rows.append({"variant": "baseline", **key, "solution": task.canonical})
        rows.append({"variant": "slow", **key, "solution": slowed_down(task.canonical, task.entry_point)})
    generations = write_generations(folder / "elsewhere.jsonl", rows)
    out = folder / "out"
    settings = EvaluateSettings(out=str(out), data=str(SHARED_DATA), generations=str(generations),
                                benchmarks=("humaneval-x",), languages=("python",), limit=2, measure=True,
                                meter="estimate", runs=8, min_seconds=0.05, cooldown_seconds=0, baseline_seconds=0)
    outcome = evaluate(settings, threads=1, log=QUIET, progress=False)
    return out, outcome


def test_measure_compares_correct_programs_with_the_baseline(measured):
    out, outcome = measured
    assert outcome.measured == 2
    energy = lines(out / "energy.jsonl")
    assert sorted((r["variant"], r["task_id"]) for r in energy) == [
        ("baseline", "Python/0"), ("baseline", "Python/1"), ("slow", "Python/0"), ("slow", "Python/1")]
    assert all(len(r["measurement"]["runs"]) == 8 and r["measurement"]["energy_kind"] == "estimated" for r in energy)
    comparisons = lines(out / "comparisons.jsonl")
    assert len(comparisons) == 2
    for comparison in comparisons:
        assert comparison["variant"] == "slow" and comparison["energy_kind"] == "estimated"
        assert comparison["time"]["significant"] and comparison["time"]["relative_pct"] > 20


def test_table5_shows_significant_cells_with_counts_and_the_meter_kind(measured):
    out, _ = measured
    table = json.loads((out / "report" / "table5.json").read_text())
    assert table["energy_kinds"] == ["estimated"]
    row = table["rows"][0]
    assert row["variant"] == "slow"
    cell = row["time"]["HumanEval-X Python"]
    assert cell["comparisons"] == 2 and cell["significant"] >= 1 and cell["percent_of_baseline"] > 120
    assert row["energy"]["HumanEval-X C++"] is None
    markdown = (out / "report" / "report.md").read_text()
    assert "ESTIMATED from CPU time" in markdown and ("(2/2)" in markdown or "(1/2)" in markdown)
    assert (out / "report" / "energy_ratios.png").stat().st_size > 1000


def test_report_regenerates_from_raw_results_alone(measured, tmp_path):
    import shutil

    out, _ = measured
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("correctness.jsonl", "comparisons.jsonl"):
        shutil.copy(out / name, copy / name)
    result = run_cli("report", str(copy), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("table4.json", "table5.json", "table4.csv", "table5_energy.csv", "report.md"):
        assert (copy / "report" / name).read_text() == (out / "report" / name).read_text(), name


def test_resumed_measurement_does_nothing_twice(measured):
    from greencoder.evaluation.pipeline import EvaluateSettings, evaluate

    out, _ = measured
    before = (out / "energy.jsonl").read_text()
    settings = EvaluateSettings(out=str(out), data=str(SHARED_DATA), variants=("baseline", "slow"),
                                benchmarks=("humaneval-x",), languages=("python",), limit=2, measure=True,
                                meter="estimate", runs=8, min_seconds=0.05, cooldown_seconds=0, baseline_seconds=0,
                                generations=str(out / "generations.jsonl"))
    outcome = evaluate(settings, threads=1, log=QUIET, progress=False)
    assert outcome.measured == 0 and outcome.scored == 0 and (out / "energy.jsonl").read_text() == before


def cli_evaluate(model: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", str(model), "--variant", "baseline", "--benchmark", "humaneval-x",
            "--language", "python", "--data", str(SHARED_DATA), "--out", str(out), "--limit", "6",
            "--max-new-tokens", "40", "--device", "cpu", "--no-progress", *extra]


@pytest.mark.slow  # ~30 s: the default suite keeps to its 12-minute budget
def test_killed_evaluation_resumes_without_losing_or_repeating_lines(tiny_model_dir, tmp_path):
    killed = tmp_path / "killed"
    env = {**os.environ, "GREENCODER_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-m", "greencoder", *cli_evaluate(tiny_model_dir, killed)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and len(lines(killed / "generations.jsonl")) < 2:
            if process.poll() is not None:
                pytest.fail("evaluate ended before it could be killed")
            time.sleep(0.02)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert 2 <= len(lines(killed / "generations.jsonl")) < 6
    with open(killed / "generations.jsonl", "a") as handle:
        handle.write('{"variant": "baseline", "benchmark": "humaneval-x", "langu')  # a line torn by the kill
    resumed = run_cli(*cli_evaluate(tiny_model_dir, killed), cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    straight = run_cli(*cli_evaluate(tiny_model_dir, tmp_path / "straight"), cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    for name in ("generations.jsonl", "correctness.jsonl"):
        got, expected = lines(killed / name), lines(tmp_path / "straight" / name)
        assert len(got) == 6 and without_timing(got) == without_timing(expected), name


def test_shards_split_the_tasks_and_measure_refuses_them(tmp_path):
    out = tmp_path / "sharded"
    common = ["evaluate", "--variant", "canonical", "--benchmark", "humaneval-x", "--language", "python",
              "--data", str(SHARED_DATA), "--out", str(out), "--limit", "5", "--no-progress"]
    for shard in ("1/2", "2/2"):
        assert run_cli(*common, "--shard", shard, cwd=tmp_path).returncode == 0
    first, second = lines(out / "correctness-shard-1-of-2.jsonl"), lines(out / "correctness-shard-2-of-2.jsonl")
    assert len(first) == 3 and len(second) == 2
    assert {r["task_id"] for r in first} | {r["task_id"] for r in second} == {f"Python/{i}" for i in range(5)}
    assert all(r["passed"] for r in first + second)
    table = json.loads((out / "report" / "table4.json").read_text())
    assert table["rows"][0]["cells"]["Total"] == {"pass_at_1": 100.0, "passed": 5, "tasks": 5}
    refused = run_cli(*common, "--shard", "1/2", "--measure", cwd=tmp_path)
    assert refused.returncode == 1 and "one machine" in refused.stderr


@pytest.mark.parametrize("args, message", [
    (["--variant", "baseline"], "need --model"),
    (["--variant", "canonical", "--benchmark", "mbpp"], "--benchmark 'mbpp'"),
    (["--variant", "x="], "NAME=ADAPTER_PATH"),
    (["--variant", "canonical", "--shard", "3/2"], "--shard"),
    (["--variant", "canonical", "--generations", "missing.jsonl"], "no such file"),
])
def test_bad_input_is_one_line(args, message, tmp_path):
    result = run_cli("evaluate", "--data", str(SHARED_DATA), "--out", str(tmp_path / "out"), "--limit", "1", *args, cwd=tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("greencoder: error:") and message in last, result.stderr


def test_record_file_drops_a_torn_line_and_keeps_the_rest(tmp_path):
    from greencoder.evaluation.records import RecordFile

    path = tmp_path / "records.jsonl"
    path.write_text(json.dumps({"variant": "a", "benchmark": "b", "language": "python", "task_id": "1"}) + "\n" + '{"variant": "a", "ben')
    records = RecordFile(path)
    assert records.has(("a", "b", "python", "1")) and len(records.done) == 1
    records.append({"variant": "a", "benchmark": "b", "language": "python", "task_id": "2"})
    assert [json.loads(line)["task_id"] for line in path.read_text().splitlines()] == ["1", "2"]


def test_failing_references_are_listed_documented_or_flagged():
    from greencoder.evaluation.report import canonical_notes

    records = [
        {"variant": "canonical", "benchmark": "leetcode-hard", "language": "python", "task_id": "3398", "passed": False,
         "status": "wrong_answer", "known_exception": "off by one in the reference"},
        {"variant": "canonical", "benchmark": "humaneval-x", "language": "cpp", "task_id": "CPP/1", "passed": False,
         "status": "compile_error", "reason": "boost missing"},
        {"variant": "canonical", "benchmark": "humaneval-x", "language": "cpp", "task_id": "CPP/2", "passed": True, "status": "ok"},
        {"variant": "baseline", "benchmark": "humaneval-x", "language": "cpp", "task_id": "CPP/3", "passed": False, "status": "timeout"},
    ]
    notes = canonical_notes(records)
    assert notes == ["- humaneval-x cpp CPP/1: compile_error: UNEXPLAINED, the harness may be wrong (boost missing)",
                     "- leetcode-hard python 3398: wrong_answer (documented: off by one in the reference)"]
