"""Generate several prompts in one batch, with per-row results, errors and costs, and plan batches.

`generate_batch` is to batched_decoding what `generation.generate` is to decoding: it checks the
input, runs the loop, and turns each row's tokens into the same GenerationResult a single
generation gives (the same `build_result`). Per-row problems (an empty prompt, one too long for the
context) become that row's `error` instead of failing the batch, so an evaluation records the
error for that task and keeps the others' results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Sequence

from greencoder.core.generation import (
    STOP_ERROR,
    GenerationOptions,
    GenerationResult,
    StopSequenceCriteria,
    build_result,
    check_options,
    context_limit,
    eos_token_ids,
    generate,
    prompt_problem,
)


def plan_batches(lengths: Sequence[int], batch_size: int, groups: Sequence[Hashable] | None = None) -> list[list[int]]:
    """Indices of the prompts, in batches of at most `batch_size`, so that rows of similar length share
    a batch (little padding): sorted by length, longest first (a batch that does not fit in memory
    fails at once, not at the end). With `groups`, prompts of different groups (e.g. languages with
    different stop sequences, so different GenerationOptions) never share a batch."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    keys = list(groups) if groups is not None else [None] * len(lengths)
    if len(keys) != len(lengths):
        raise ValueError(f"{len(lengths)} lengths but {len(keys)} groups")
    by_group: dict[Hashable, list[int]] = {}
    for index, key in enumerate(keys):
        by_group.setdefault(key, []).append(index)
    batches: list[list[int]] = []
    for members in by_group.values():
        members.sort(key=lambda i: (-lengths[i], i))
        batches.extend(members[start : start + batch_size] for start in range(0, len(members), batch_size))
    return batches


def _error_result(prompt_length: int, num_virtual_tokens: int, message: str) -> GenerationResult:
    return GenerationResult(text="", prompt_tokens=prompt_length, virtual_tokens=num_virtual_tokens, new_tokens=0,
                            wall_seconds=0.0, cpu_seconds=0.0, stop_reason=STOP_ERROR, error=message)


def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[Sequence[int]],
    options: GenerationOptions,
    *,
    num_virtual_tokens: int = 0,
    cancel: threading.Event | None = None,
) -> list[GenerationResult]:
    """Greedy continuations of several prompts (token ids), results in input order.

    Each row's tokens, text and stop_reason are those `generate` gives for it alone (see
    batched_decoding for why, and for the float caveat). A row that cannot be generated (empty, or
    prompt + soft prompt + max_new_tokens beyond the context) gets `error` set and stop_reason
    STOP_ERROR, and costs nothing; the others run. Bad options raise InputError for the whole call.

    Costs: wall_seconds and cpu_seconds of the whole call are split between the generated rows in
    proportion to the positions each made the model compute (its prompt, one per decoding step it
    was still in, an equal share of the one soft-prompt pass), so the rows' costs add up to the
    batch's. prefill_tokens counts each row's prompt plus the virtual tokens (computed
    for this call), reused_tokens is 0: batches neither read nor fill the prefix cache.
    Models whose cache cannot be left-padded exactly (sliding-window or linear-attention layers) are
    generated one prompt at a time, each row then carrying its own measured cost."""
    import torch

    from greencoder.core.batched_decoding import batched_greedy_decode, can_batch

    check_options(options)
    cancel = cancel or threading.Event()
    base = getattr(model, "get_base_model", lambda: model)()
    limit = context_limit(base, tokenizer)
    rows = [[int(i) for i in prompt] for prompt in prompts]
    results: list[GenerationResult | None] = [None] * len(rows)
    runnable: list[int] = []
    for index, ids in enumerate(rows):
        problem = prompt_problem(len(ids), num_virtual_tokens, options.max_new_tokens, limit)
        if problem is None:
            runnable.append(index)
        else:
            results[index] = _error_result(len(ids), num_virtual_tokens, problem)
    if len(runnable) == 1 or (runnable and not can_batch(base)):
        for index in runnable:
            results[index] = generate(model, tokenizer, rows[index], options, num_virtual_tokens=num_virtual_tokens,
                                      cancel=cancel)
        return [r for r in results if r is not None]
    if not runnable:
        return [r for r in results if r is not None]

    eos_ids = eos_token_ids(model, tokenizer, options)
    criteria = [StopSequenceCriteria(tokenizer, options.stop_sequences, len(rows[i])) if options.stop_sequences else None
                for i in runnable]

    def stopper(criterion):
        return lambda sequence: criterion is not None and criterion.hit(torch.tensor(sequence))

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    if cancel.is_set():
        decoded = None
    else:
        with torch.inference_mode():
            virtual_embeds = model.get_prompt(batch_size=1) if num_virtual_tokens else None
        decoded = batched_greedy_decode(
            base, [rows[i] for i in runnable], virtual_embeds=virtual_embeds, max_new_tokens=options.max_new_tokens,
            eos_ids=eos_ids, should_stop=[stopper(c) for c in criteria], cancel=cancel,
        )
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    total_positions = sum(d.positions for d in decoded) if decoded else 0.0
    for slot, index in enumerate(runnable):
        row = decoded[slot] if decoded else None
        share = row.positions / total_positions if row and total_positions else 1.0 / len(runnable)
        results[index] = build_result(
            tokenizer, rows[index], row.new_ids if row else [], eos_ids, options,
            cancelled=row.cancelled if row else True, num_virtual_tokens=num_virtual_tokens,
            wall_seconds=wall * share, cpu_seconds=cpu * share,
            prefill_tokens=(len(rows[index]) + num_virtual_tokens) if row else 0, reused_tokens=0,
            forward_passes=row.forward_passes if row else 0,
        )
    return [r for r in results if r is not None]
