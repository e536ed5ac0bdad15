"""Energy and time of correct programs: each variant against the baseline, task by task.

For every task that both the baseline and a variant solve, both solutions' tests are measured with
the core protocol (the test repeated until a run lasts >= 5 s, 10 runs, a cooldown before each,
MAD outliers dropped) and compared with a two-sided Mann-Whitney U test at alpha = 0.005 on the
energy and time per test execution. A baseline measurement is made once and reused for every
variant. Measurements run one at a time on this machine: energy of programs measured on different
machines, or side by side, is not comparable, which is why `--measure` refuses `--shard`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from greencoder.core.languages import get_language
from greencoder.core.measurement.protocol import (
    MeasurementError,
    MeasurementProtocol,
    measure,
)
from greencoder.core.statistics import TooFewSamplesError, compare
from greencoder.evaluation.benchmarks import build_workload
from greencoder.evaluation.correctness import Checker
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import BASELINE, Variant

Log = Callable[[str], None]


def _key(variant: str, task: Task) -> tuple:
    return (variant, task.benchmark, task.language, task.task_id)


def measure_solution(variant: str, task: Task, solution: str, checker: Checker, meter, protocol: MeasurementProtocol,
                     sleep: Callable[[float], None]) -> dict:
    """One energy record: the full measurement, or the reason it could not be made (any error of
    this one task is recorded as its reason; the run goes on)."""
    record = {"variant": variant, "benchmark": task.benchmark, "language": task.language, "task_id": task.task_id}
    try:
        workload = build_workload(task, solution)
        sandbox = checker.sandbox(workload.cxx_flags, workload.cxx_link_flags)
        measurement = measure(sandbox, meter, get_language(task.language), workload.source, workload.call,
                              name=f"{variant}:{task.key}", protocol=protocol, sleep=sleep, driver=workload.driver,
                              declarations=workload.declarations)
    except MeasurementError as exc:
        return {**record, "error": str(exc), "finished_at": time.time()}
    except Exception as exc:  # noqa: BLE001 - one task's failure is its record, not the run's end
        return {**record, "error": f"{type(exc).__name__}: {str(exc)[:300]}", "finished_at": time.time()}
    return {**record, "measurement": measurement.to_dict(), "finished_at": time.time()}


def per_call(record: dict, field: str) -> list[float]:
    return [run[field] for run in record["measurement"]["runs"]]


def comparison_record(variant: str, task: Task, baseline: dict, other: dict, alpha: float, threshold: float) -> dict:
    record = {"variant": variant, "benchmark": task.benchmark, "language": task.language, "task_id": task.task_id,
              "alpha": alpha}
    failed = [r for r in (baseline, other) if "error" in r]
    if failed:
        return {**record, "error": "; ".join(f"{r['variant']}: {r['error']}" for r in failed)}
    b_meas, o_meas = baseline["measurement"], other["measurement"]
    if b_meas["energy_kind"] != o_meas["energy_kind"]:
        return {**record, "error": "one side was measured and the other estimated: not comparable"}
    record.update(meter=o_meas["meter"], energy_kind=o_meas["energy_kind"])
    try:
        record["energy"] = compare(per_call(baseline, "joules_per_call"), per_call(other, "joules_per_call"), alpha, threshold).to_dict()
        record["time"] = compare(per_call(baseline, "seconds_per_call"), per_call(other, "seconds_per_call"), alpha, threshold).to_dict()
    except TooFewSamplesError as exc:
        return {**record, "error": f"not tested: {exc}"}
    return record


def measure_all(variants: Sequence[Variant], tasks: Sequence[Task], solutions: dict[tuple, str], passed: set[tuple],
                energy: RecordFile, comparisons: RecordFile, checker: Checker, meter, protocol: MeasurementProtocol,
                progress: bool | None = None, log: Log = print, sleep: Callable[[float], None] = time.sleep) -> int:
    """Measure and compare every pending (variant, task) pair correct on both sides; returns the count."""
    from tqdm import tqdm

    others = [v for v in variants if v.name != BASELINE and not v.canonical]
    pairs = [(v, t) for v in others for t in tasks
             if _key(BASELINE, t) in passed and _key(v.name, t) in passed and not comparisons.has(_key(v.name, t))]
    for variant, task in tqdm(pairs, desc="measure", unit="pair", disable=None if progress is None else not progress):
        for name in (BASELINE, variant.name):
            if not energy.has(_key(name, task)):
                energy.append(measure_solution(name, task, solutions[_key(name, task)], checker, meter, protocol, sleep))
        comparisons.append(comparison_record(variant.name, task, energy.done[_key(BASELINE, task)],
                                             energy.done[_key(variant.name, task)], protocol.alpha, protocol.outlier_threshold))
    return len(pairs)
