"""Correctness: every (variant, task) solution compiled and tested in the sandbox, several at once.

The solution is the generation's `solution` field, or the task's reference for `canonical`. A
generation that failed (e.g. prompt too long) or a task without a reference is scored as such, so
pass@1 keeps the whole task set as its denominator.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed

from greencoder.evaluation.correctness import Checker, CheckResult
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import Variant

ERROR = "error"
"""The status of a task whose check could not be made at all (its reason says why)."""


def correctness_record(variant: Variant, task: Task, result: CheckResult) -> dict:
    record = {"variant": variant.name, "benchmark": task.benchmark, "language": task.language, "task_id": task.task_id,
              "status": result.status, "passed": result.passed, "reason": result.reason, "stage": result.stage,
              "wall_seconds": result.wall_seconds, "isolation": result.isolation, "finished_at": time.time()}
    if variant.canonical and task.canonical_exception:
        record["known_exception"] = task.canonical_exception
    return record


def solution_for(variant: Variant, task: Task, generations: dict[tuple, dict]) -> tuple[str | None, CheckResult | None]:
    """(solution to test, None) or (None, the result to record without running anything) or (None, None): not generated yet."""
    if variant.canonical:
        if task.canonical is None:
            return None, CheckResult("no_reference", "the benchmark has no reference solution for this task", "none", 0.0, "")
        return task.canonical, None
    generation = generations.get((variant.name, task.benchmark, task.language, task.task_id))
    if generation is None:
        return None, None
    if "error" in generation:
        return None, CheckResult("generation_error", generation["error"], "generate", 0.0, "")
    return generation["solution"], None


def check_isolated(checker: Checker, task: Task, solution: str) -> CheckResult:
    """One task's verdict, whatever goes wrong: an error building or running its program (bad
    data, a job folder that cannot be removed, a bug) is that task's status, with its reason, and
    never stops the run."""
    try:
        return checker.check(task, solution)
    except Exception as exc:  # noqa: BLE001 - recorded per task, see the docstring
        return CheckResult(ERROR, f"{type(exc).__name__}: {str(exc)[:300]}", "check", 0.0, "")


def score(variants: Sequence[Variant], tasks: Sequence[Task], generations: dict[tuple, dict], records: RecordFile,
          checker: Checker, workers: int = 1, progress: bool | None = None) -> tuple[int, int]:
    """Score what is generated and not yet scored; returns (scored now, still waiting for a generation)."""
    from tqdm import tqdm

    jobs, waiting = [], 0
    for variant in variants:
        for task in tasks:
            if records.has((variant.name, task.benchmark, task.language, task.task_id)):
                continue
            solution, settled = solution_for(variant, task, generations)
            if settled is not None:
                records.append(correctness_record(variant, task, settled))
            elif solution is None:
                waiting += 1
            else:
                jobs.append((variant, task, solution))
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool, \
            tqdm(total=len(jobs), desc="score", unit="task", disable=None if progress is None else not progress) as bar:
        futures = {pool.submit(check_isolated, checker, task, solution): (variant, task) for variant, task, solution in jobs}
        for future in as_completed(futures):
            variant, task = futures[future]
            records.append(correctness_record(variant, task, future.result()))
            bar.update()
    return len(jobs), waiting
