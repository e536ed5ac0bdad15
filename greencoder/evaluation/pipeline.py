"""`greencoder evaluate`: generate -> score -> (measure) -> report, resumable at every step.

Each phase reads what earlier runs left in OUT and does only what is missing, so a killed run is
re-run with the same command and loses nothing. `--shard i/n` takes every n-th task (from the
i-th) for generation and correctness, writing shard-named files that can be copied into one folder;
energy measurement is refused with --shard, because energies measured on different machines are
not comparable: merge the shards, then run `--measure` once, on one machine.

Under `torchrun` / `accelerate launch` the processes share out generation (distributed.py);
process 0 writes every file and alone scores, measures and reports.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from greencoder.core.errors import InputError
from greencoder.evaluation.benchmarks import load_tasks
from greencoder.evaluation.distributed import ProcessContext, generate_all
from greencoder.evaluation.records import (
    RecordFile,
    read_all,
    record_key,
    shard_suffix,
)
from greencoder.evaluation.tasks import BENCHMARKS, LANGUAGES, Task
from greencoder.evaluation.variants import Variant, resolve_variants

Log = Callable[[str], None]


@dataclass(frozen=True)
class EvaluateSettings:
    out: str
    data: str | None = None
    model: str | None = None
    variants: tuple[str, ...] = ()
    instruction: bool = False
    benchmarks: tuple[str, ...] = BENCHMARKS
    languages: tuple[str, ...] = LANGUAGES
    generations: str | None = None
    workers: int = 1
    shard: tuple[int, int] | None = None
    limit: int | None = None
    max_new_tokens: int = 512
    device: str = "auto"
    dtype: str = "auto"
    measure: bool = False
    meter: str = "auto"
    watts_per_core: float | None = None
    runs: int = 10
    min_seconds: float = 5.0
    cooldown_seconds: float = 5.0
    baseline_seconds: float = 5.0
    alpha: float = 0.005
    unsafe_no_sandbox: bool = False
    backend: str = "local"
    endpoint: str | None = None
    api_key_env: str | None = None
    batch_size: int = 1
    concurrency: int = 4
    request_timeout: float = 600.0
    retries: int = 4
    endpoint_prompt_embeds: bool = False

    def backend_settings(self, threads: int | None = None):
        """How model variants are generated (greencoder.core.backends)."""
        from greencoder.core.backends import BackendSettings

        return BackendSettings(self.backend, self.model, self.device, self.dtype, threads, self.batch_size, self.endpoint,
                               self.api_key_env, self.concurrency, self.request_timeout,
                               self.retries, endpoint_prompt_embeds=self.endpoint_prompt_embeds)


@dataclass
class EvaluateOutcome:
    out: Path
    tasks: int
    variants: list[str]
    generated: int = 0
    scored: int = 0
    waiting: int = 0
    measured: int = 0
    report_dir: Path | None = None
    notes: list[str] = field(default_factory=list)
    is_main: bool = True
    """False in the other processes of a launched run: they generate their share, and process 0 does the rest."""


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise InputError(f"--shard {text!r}: use I/N, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise InputError(f"--shard {text!r}: I must be between 1 and N")
    return index, count


def select_tasks(settings: EvaluateSettings) -> list[Task]:
    """All asked-for tasks in a fixed order (benchmark, language, file order), cut by --limit and --shard."""
    if not settings.data:
        raise InputError("pass --data DIR: the folder holding humaneval_x/ and leetcode_hard/")
    tasks: list[Task] = []
    for benchmark in settings.benchmarks:
        for language in settings.languages:
            loaded = load_tasks(benchmark, language, settings.data)
            tasks.extend(loaded[: settings.limit] if settings.limit else loaded)
    if settings.shard:
        index, count = settings.shard
        tasks = tasks[index - 1 :: count]
    return tasks


def read_generations_file(path: str, data: str | None = None, selected: tuple[tuple[str, ...], tuple[str, ...]] | None = None
                          ) -> list[dict]:
    """The lines of a --generations file, each checked (generations_file.py); task ids are checked
    against the benchmark data in `data` for the (benchmarks, languages) `selected` for this run
    (other lines are not this run's, and their data need not be here)."""
    from greencoder.evaluation.generations_file import read_generations

    cache: dict[tuple[str, str], set[str] | None] = {}

    def task_ids(benchmark: str, language: str) -> set[str] | None:
        if data is None or (selected is not None and (benchmark not in selected[0] or language not in selected[1])):
            return None
        if (benchmark, language) not in cache:
            cache[(benchmark, language)] = {task.task_id for task in load_tasks(benchmark, language, data)}
        return cache[(benchmark, language)]

    return read_generations(path, task_ids)


def import_generations(path: str, lines: list[dict], variants: list[Variant], tasks: list[Task], records: RecordFile) -> int:
    """Copy generations produced elsewhere into OUT (so reports need OUT alone); returns lines added.
    The lines were checked when read (read_generations_file); lines for tasks outside this run's
    selection (--limit, --shard, --language) are left for the run that selects them."""
    wanted = {(v.name, t.benchmark, t.language, t.task_id) for v in variants for t in tasks}
    added = 0
    for record in lines:
        key = record_key(record)
        if key in wanted and not records.has(key):
            records.append(record)
            added += 1
    return added


def write_run_file(out: Path, settings: EvaluateSettings, variants: list[Variant], tasks: int, isolation: str,
                   processes: int = 1) -> None:
    run_file = out / "run.json"
    history = []
    if run_file.exists():
        try:
            history = json.loads(run_file.read_text()).get("invocations", [])
        except (OSError, json.JSONDecodeError):
            history = []
    history.append({"at": time.time(), "settings": asdict(settings), "variants": [v.to_dict() for v in variants],
                    "tasks": tasks, "isolation": isolation, "processes": processes})
    run_file.write_text(json.dumps({"invocations": history}, indent=2) + "\n")


def evaluate(settings: EvaluateSettings, threads: int, log: Log = print, progress: bool | None = None,
             warn: Log | None = None, context: ProcessContext | None = None) -> EvaluateOutcome:
    from greencoder.core.sandbox import SandboxPolicy
    from greencoder.evaluation.correctness import Checker
    from greencoder.evaluation.report import write_report
    from greencoder.evaluation.scoring import score

    context = context or ProcessContext.from_environment()
    if not context.is_main:
        log, progress = (lambda line: None), False
    specs = list(settings.variants)
    external_lines = (read_generations_file(settings.generations, settings.data, (settings.benchmarks, settings.languages))
                      if settings.generations else [])
    external = frozenset(r["variant"] for r in external_lines if "variant" in r)
    if settings.generations and not specs:
        specs = sorted(external)
    variants = resolve_variants(specs, settings.instruction, external)
    model_variants = [v for v in variants if v.needs_model]
    if model_variants and not settings.model and settings.backend == "local":
        raise InputError(f"variants {', '.join(v.name for v in model_variants)} need --model"
                         + (f" (the --generations file has only {', '.join(sorted(external))})" if external else ""))
    if settings.measure and settings.shard:
        raise InputError("--measure cannot run with --shard: energy must be measured on one machine; merge the shards' "
                         "files into one folder and run --measure there")
    if model_variants:
        from greencoder.core.backends import check_backend

        for variant in model_variants:  # e.g. a soft prompt on an endpoint without embeddings: refused now
            check_backend(settings.backend_settings(threads), variant.adapter)
    tasks = select_tasks(settings)
    generate = (generator(settings, context, threads, progress, log)
                if model_variants and (settings.model or settings.backend == "openai") else None)
    if not context.is_main:
        generated = generate_all(context, model_variants, tasks, None, generate) if generate else 0
        return EvaluateOutcome(Path(settings.out), len(tasks), [v.name for v in variants], generated, is_main=False)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    checker = Checker(SandboxPolicy(allow_unsandboxed=settings.unsafe_no_sandbox), warn=warn)
    write_run_file(out, settings, variants, len(tasks), checker.isolation, context.world_size)
    outcome = EvaluateOutcome(out, len(tasks), [v.name for v in variants])
    log(f"{len(tasks)} tasks x {len(variants)} variants ({', '.join(outcome.variants)}); sandbox: {checker.isolation}")

    suffix = shard_suffix(settings.shard)
    generations = RecordFile(out / f"generations{suffix}.jsonl")
    if settings.generations:
        added = import_generations(settings.generations, external_lines, [v for v in variants if not v.canonical],
                                   tasks, generations)
        log(f"imported {added} generations from {settings.generations}")
    if generate:
        outcome.generated = generate_all(context, model_variants, tasks, generations, generate, log)

    all_generations = {record_key(r): r for r in read_all(out, "generations")}
    correctness = RecordFile(out / f"correctness{suffix}.jsonl")
    outcome.scored, outcome.waiting = score(variants, tasks, all_generations, correctness, checker, settings.workers, progress)
    if outcome.waiting:
        outcome.notes.append(f"{outcome.waiting} (variant, task) pairs have no generation yet and were not scored")

    if settings.measure and not any(v.name == "baseline" for v in variants):
        outcome.notes.append("no baseline variant: energies are compared against the baseline, so none were measured")
    elif settings.measure:
        outcome.measured = run_measurements(settings, variants, tasks, out, all_generations, checker, progress, log)
    outcome.report_dir = write_report(out, outcome.variants)
    return outcome


def generator(settings: EvaluateSettings, context: ProcessContext, threads: int, progress: bool | None, log: Log):
    """generate_variant with this run's backend, device, meter and limits: (variant, tasks, records) -> generated."""
    from dataclasses import replace

    from greencoder.core.backends import open_backend
    from greencoder.core.meters import select_meter
    from greencoder.evaluation.generate import generate_variant

    # on an endpoint the energy is spent there: no meter is chosen (its validation costs a second here)
    meter = (select_meter(settings.meter, watts_per_core=settings.watts_per_core).meter
             if settings.backend == "local" else None)
    backend_settings = replace(settings.backend_settings(threads), device=context.device(settings.device))

    def generate(variant: Variant, tasks: list[Task], records) -> int:
        backend = open_backend(backend_settings, variant.adapter)
        try:
            return generate_variant(variant, tasks, records, backend, meter, settings.max_new_tokens, progress, log)
        finally:
            backend.close()

    return generate


def run_measurements(settings: EvaluateSettings, variants: list[Variant], tasks: list[Task], out: Path,
                     generations: dict[tuple, dict], checker, progress: bool | None, log: Log) -> int:
    from greencoder.core.measurement.protocol import MeasurementProtocol
    from greencoder.core.meters import select_meter
    from greencoder.evaluation.efficiency import measure_all

    selected = select_meter(settings.meter, watts_per_core=settings.watts_per_core)
    if selected.kind != "measured":
        log("warning: no hardware energy counter is usable here: energies are ESTIMATED from CPU time, not measured")
    passed = {record_key(r) for r in read_all(out, "correctness") if r.get("passed")}
    solutions = {key: record["solution"] for key, record in generations.items() if "solution" in record}
    protocol = MeasurementProtocol(runs=settings.runs, min_seconds=settings.min_seconds,
                                   cooldown_seconds=settings.cooldown_seconds, baseline_seconds=settings.baseline_seconds,
                                   alpha=settings.alpha)
    return measure_all(variants, tasks, solutions, passed, RecordFile(out / "energy.jsonl"),
                       RecordFile(out / "comparisons.jsonl"), checker, selected.meter, protocol, progress, log)
