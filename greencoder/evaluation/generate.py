"""Generate a completion for every (model variant, task): greedy, 512 new tokens, the foundation's
prompt format and post-processing; one JSON line each, with what the generation cost.

Generation goes through a backend (greencoder.core.backends): the local model (with the variant's
soft prompt), or an OpenAI-compatible endpoint. Each task's line is written (and fsynced) the
moment its result arrives, so a failure part-way loses no finished line and the same command
resumes. Energy per generation: locally, from the selected meter (an estimate from the process's
CPU time where no counter exists, and labelled so); on an endpoint it is spent on the endpoint's
hardware and is not measured here, so the line carries `"energy": null` and says so, together
with the token counts the endpoint reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from greencoder.core.backends import BackendInfo, GenerationBackend
from greencoder.core.generation import GenerationOptions
from greencoder.core.languages import get_language
from greencoder.core.meters.base import RunUsage
from greencoder.core.postprocess import clean_completion
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import Variant

Log = Callable[[str], None]
NOT_MEASURED_HERE = "spent on the endpoint's hardware; not measured here"
NOTHING_RAN = RunUsage(cpu_seconds=0.0, wall_seconds=0.0, cpu_source="rusage")
"""Closes a meter interval in which no generation ran (the estimate meter refuses usage without CPU time)."""


def generation_record(variant: Variant, task: Task, prompt: str, raw: str, cleaned: str, result, reading,
                      info: BackendInfo, reported: dict | None = None) -> dict:
    record = {
        "variant": variant.name, "benchmark": task.benchmark, "language": task.language, "task_id": task.task_id,
        "model": info.model, "adapter": info.adapter, "instruction": variant.instruction,
        "prompt": prompt, "raw": raw, "cleaned": cleaned, "solution": task.solution(cleaned),
        "prompt_tokens": result.prompt_tokens, "virtual_tokens": result.virtual_tokens,
        "new_tokens": result.new_tokens, "stop_reason": result.stop_reason,
        "wall_seconds": round(result.wall_seconds, 4), "cpu_seconds": round(result.cpu_seconds, 4),
        "energy": reading.to_dict() if reading is not None else None, "finished_at": time.time(),
    }
    if info.kind != "local":
        record.update(backend=info.kind, endpoint=info.endpoint, energy_note=NOT_MEASURED_HERE,
                      endpoint_reported=reported or {})
    return record


def share_of(reading, share: float, rows: int):
    """A batch's reading split to one row (`share` of it); a single prompt's reading unchanged."""
    if rows == 1:
        return reading
    return replace(reading, joules=reading.joules * share,
                   domains={name: joules * share for name, joules in reading.domains.items()},
                   note=(reading.note + "; " if reading.note else "") + f"{share:.3f} of a batch of {rows}")


def write_outcome(variant: Variant, task: Task, prompt: str, language, outcome, reading, info: BackendInfo,
                  records: RecordFile) -> None:
    """One task's line: its generation (raw, cleaned, solution, cost), or why it has none."""
    if outcome.result is None:
        records.append({"variant": variant.name, "benchmark": task.benchmark, "language": task.language,
                        "task_id": task.task_id, "model": info.model, "adapter": info.adapter,
                        "instruction": variant.instruction, "error": outcome.error, "finished_at": time.time()})
        return
    cleaned = clean_completion(language, prompt, outcome.result.text, task.entry_point)
    records.append(generation_record(variant, task, prompt, outcome.result.text, cleaned, outcome.result, reading, info,
                                     outcome.reported))


def generate_variant(variant: Variant, tasks: Sequence[Task], records: RecordFile, backend: GenerationBackend, meter,
                     max_new_tokens: int = 512, progress: bool | None = None, log: Log = print) -> int:
    """Generate every task of `variant` not yet in `records` through `backend`; returns how many were
    written. A `BackendError` (e.g. a dead endpoint) propagates after every finished line is written."""
    from tqdm import tqdm

    pending = [t for t in tasks if not records.has((variant.name, t.benchmark, t.language, t.task_id))]
    if not pending:
        return 0
    info = backend.describe()
    where = f"{info.device}, {info.threads} threads" if info.energy == "here" else f"endpoint {info.endpoint}"
    log(f"generating {len(pending)} tasks for {variant.name} ({info.model}"
        f"{' + ' + info.adapter if info.adapter else ''}, {where})")
    by_language: dict[str, list[int]] = {}
    for position, task in enumerate(pending):
        by_language.setdefault(task.language, []).append(position)
    written = 0
    with tqdm(total=len(pending), desc=f"generate {variant.name}", unit="task",
              disable=None if progress is None else not progress) as bar:
        for language_name, positions in by_language.items():  # one option set (stop sequences) per call
            language = get_language(language_name)
            options = GenerationOptions(max_new_tokens=max_new_tokens, stop_sequences=language.stop_sequences)
            prompts = [pending[p].prompt(variant.instruction) for p in positions]
            session = meter.start() if info.energy == "here" else None
            waiting: list = []  # outcomes whose metered interval is still open (rows of one batch)
            for outcome in backend.generate(prompts, options):
                waiting.append(outcome)
                if not outcome.closes_interval:
                    continue
                readings: list = [None] * len(waiting)
                if session is not None:  # the meter brackets the work behind these outcomes, as before
                    cpu = sum(o.result.cpu_seconds for o in waiting if o.result is not None)
                    wall = sum(o.result.wall_seconds for o in waiting if o.result is not None)  # rows' apportioned shares
                    reading = session.stop(RunUsage(cpu_seconds=cpu, wall_seconds=wall, cpu_source="rusage")
                                           if cpu or wall else NOTHING_RAN)
                    readings = [share_of(reading, o.share, len(waiting)) for o in waiting]
                    session = meter.start()
                for done, reading in zip(waiting, readings, strict=True):
                    write_outcome(variant, pending[positions[done.index]], prompts[done.index], language, done, reading,
                                  info, records)
                    written += 1
                    bar.update(1)
                waiting = []
            if session is not None:  # the interval after the last result: nothing generated in it
                session.stop(NOTHING_RAN)
    return written
