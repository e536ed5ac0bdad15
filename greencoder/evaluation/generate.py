"""Generate a completion for every (model variant, task): greedy, 512 new tokens, the foundation's
prompt format and post-processing; one JSON line each, with what the generation cost.

The model is loaded once per variant (the base model plus that variant's soft prompt) and every
pending task of the variant is generated before the next is loaded. Energy per generation comes
from the selected meter (an estimate from the process's CPU time where no counter exists, and
labelled so).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from greencoder.core.errors import GreencoderError
from greencoder.core.generation import GenerationOptions
from greencoder.core.languages import get_language
from greencoder.core.meters.base import RunUsage
from greencoder.core.model_loading import ModelSettings
from greencoder.core.postprocess import clean_completion
from greencoder.core.runtime import Runtime
from greencoder.evaluation.records import RecordFile
from greencoder.evaluation.tasks import Task
from greencoder.evaluation.variants import Variant

Log = Callable[[str], None]


def generation_record(variant: Variant, task: Task, prompt: str, raw: str, cleaned: str, result, reading,
                      runtime_info) -> dict:
    return {
        "variant": variant.name, "benchmark": task.benchmark, "language": task.language, "task_id": task.task_id,
        "model": runtime_info.model, "adapter": runtime_info.adapter, "instruction": variant.instruction,
        "prompt": prompt, "raw": raw, "cleaned": cleaned, "solution": task.solution(cleaned),
        "prompt_tokens": result.prompt_tokens, "virtual_tokens": result.virtual_tokens,
        "new_tokens": result.new_tokens, "stop_reason": result.stop_reason,
        "wall_seconds": round(result.wall_seconds, 4), "cpu_seconds": round(result.cpu_seconds, 4),
        "energy": reading.to_dict(), "finished_at": time.time(),
    }


def generate_variant(variant: Variant, tasks: Sequence[Task], records: RecordFile, model_settings: ModelSettings,
                     threads: int, meter, max_new_tokens: int = 512, progress: bool | None = None,
                     log: Log = print) -> int:
    """Generate every task of `variant` not yet in `records`; returns how many were generated."""
    from tqdm import tqdm

    pending = [t for t in tasks if not records.has((variant.name, t.benchmark, t.language, t.task_id))]
    if not pending:
        return 0
    settings = ModelSettings(model_settings.model, variant.adapter, model_settings.device, model_settings.dtype)
    runtime = Runtime.load(settings, threads)
    info = runtime.info()
    log(f"generating {len(pending)} tasks for {variant.name} ({info.model}"
        f"{' + ' + info.adapter if info.adapter else ''}, {info.device}, {info.threads} threads)")
    for task in tqdm(pending, desc=f"generate {variant.name}", unit="task", disable=None if progress is None else not progress):
        prompt = task.prompt(variant.instruction)
        language = get_language(task.language)
        options = GenerationOptions(max_new_tokens=max_new_tokens, stop_sequences=language.stop_sequences)
        session = meter.start()
        try:
            result = runtime.generate(prompt, options)
        except GreencoderError as exc:  # e.g. a prompt longer than the model's context
            session.stop(RunUsage())
            records.append({"variant": variant.name, "benchmark": task.benchmark, "language": task.language,
                            "task_id": task.task_id, "model": info.model, "adapter": info.adapter,
                            "instruction": variant.instruction, "error": str(exc), "finished_at": time.time()})
            continue
        reading = session.stop(RunUsage(cpu_seconds=result.cpu_seconds, wall_seconds=result.wall_seconds, cpu_source="rusage"))
        cleaned = clean_completion(language, prompt, result.text, task.entry_point)
        records.append(generation_record(variant, task, prompt, result.text, cleaned, result, reading, info))
    return len(pending)
