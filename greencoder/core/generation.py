"""Greedy generation with stop sequences, cancellation between tokens, prefix reuse, and cost accounting.

Evaluation, tuning checks, the CLI and the language server all generate through `generate()`, so
"what did this completion cost" (tokens, wall and CPU seconds) and "stop now" (another request
came in, the user cancelled) mean the same thing everywhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from greencoder.core.errors import InputError
from greencoder.core.prefix_cache import PrefixCache

STOP_EOS = "eos"
STOP_SEQUENCE = "stop_sequence"
STOP_MAX_TOKENS = "max_new_tokens"
STOP_CANCELLED = "cancelled"
STOP_ERROR = "error"
"""A row of generate_batch that could not be generated at all; its `error` says why."""


@dataclass(frozen=True)
class GenerationOptions:
    max_new_tokens: int = 512
    stop_sequences: tuple[str, ...] = ()
    extra_eos_token_ids: tuple[int, ...] = ()
    """Token ids that also end generation (e.g. a FIM model's end-of-middle token)."""
    prompt_lookup_tokens: int = 0
    """Prompt-lookup decoding: up to this many draft tokens copied from the context are verified per
    forward pass (0: off). Greedy acceptance keeps the output identical; whether it is faster
    depends on the machine and the text (see benchmarks/bench_prefix_cache.py)."""


@dataclass
class GenerationResult:
    text: str
    """Generated text, cut before the first stop sequence (which is not included)."""
    prompt_tokens: int
    virtual_tokens: int
    new_tokens: int
    wall_seconds: float
    cpu_seconds: float
    """Process CPU time during the call (all threads: torch's workers included)."""
    stop_reason: str
    token_ids: list[int] = field(default_factory=list)
    prefill_tokens: int = 0
    """Prompt positions computed by this call (virtual tokens included when they were computed)."""
    reused_tokens: int = 0
    """Prompt positions whose keys/values came from the prefix cache instead (prefill tokens saved)."""
    forward_passes: int = 0
    """Model calls: prefill chunks plus decoding steps (prompt lookup makes the latter fewer than tokens)."""
    error: str | None = None
    """Only from generate_batch: why this row was not generated (e.g. too long for the context), one
    line; then stop_reason is STOP_ERROR, the text empty and the counts and costs zero."""


class StopSequenceCriteria:
    """Stops once the generated text contains a stop sequence.

    Only a short tail is decoded per step (a stop sequence of L characters spans at most L
    tokens), so the cost per token stays constant. The last prompt token is included in the
    window so a stop sequence starting with the prompt's final newline is still seen."""

    def __init__(self, tokenizer, stop_sequences: Sequence[str], prompt_length: int):
        self.tokenizer = tokenizer
        self.stop_sequences = tuple(s for s in stop_sequences if s)
        self.prompt_length = prompt_length
        self.window = max((len(s) for s in self.stop_sequences), default=0) + 2
        self._anchor_length: int | None = None

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = [self.hit(row) for row in input_ids]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

    def hit(self, row) -> bool:
        """Whether one sequence (a 1-D tensor: prompt, then new tokens) contains a stop sequence."""
        if not self.stop_sequences:
            return False
        if row.shape[0] <= self.prompt_length:
            return False
        start = max(self.prompt_length - 1, row.shape[0] - self.window)
        text = self.tokenizer.decode(row[start:].tolist(), skip_special_tokens=True)
        if start < self.prompt_length:  # the window still holds the prompt's last token
            if self._anchor_length is None:
                self._anchor_length = len(self.tokenizer.decode(row[start : self.prompt_length].tolist(), skip_special_tokens=True))
            return find_stop(text, self.stop_sequences, after=self._anchor_length) is not None
        return find_stop(text, self.stop_sequences) is not None


def find_stop(text: str, stop_sequences: Sequence[str], after: int = 0) -> int | None:
    """Index where the earliest stop sequence that ends beyond position `after` begins, or None."""
    best: int | None = None
    for stop in stop_sequences:
        index = text.find(stop)
        while index != -1 and index + len(stop) <= after:
            index = text.find(stop, index + 1)
        if index != -1 and (best is None or index < best):
            best = index
    return best


def cut_at_stop(text: str, stop_sequences: Sequence[str], prompt_tail: str = "") -> tuple[str, bool]:
    """Cut generated `text` before the first stop sequence (which may begin in `prompt_tail`)."""
    joined = prompt_tail + text
    index = find_stop(joined, stop_sequences, after=len(prompt_tail))
    if index is None:
        return text, False
    return joined[:index][len(prompt_tail):], True


def greedy_generation_config(model, tokenizer, options: GenerationOptions):
    """A GenerationConfig for deterministic greedy decoding, whatever sampling defaults the model ships."""
    from transformers import GenerationConfig

    eos_ids: list[int] = []
    model_eos = getattr(model.generation_config, "eos_token_id", None)
    for candidate in (model_eos, tokenizer.eos_token_id, *options.extra_eos_token_ids):
        for token_id in candidate if isinstance(candidate, (list, tuple)) else [candidate]:
            if token_id is not None and token_id not in eos_ids:
                eos_ids.append(int(token_id))
    return GenerationConfig(
        max_new_tokens=options.max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos_ids or None,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (eos_ids or [None])[0],
    )


CONTEXT_CONFIG_KEYS = ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length", "n_ctx")
"""Where transformers configs keep the longest sequence (Llama/Qwen, GPT-2, ..., ChatGLM, GPT-J style)."""
DEFAULT_CONTEXT = 2048
_NO_LIMIT = 10_000_000  # tokenizers without a limit say 1e30


def config_context_limit(config) -> int | None:
    """The longest sequence a transformers config allows, or None when it does not say. Multimodal
    configs keep it in their text model's config (`get_text_config()`)."""
    if config is None:
        return None
    get_text_config = getattr(config, "get_text_config", None)
    candidates = [config, get_text_config()] if callable(get_text_config) else [config]
    for candidate in candidates:
        for key in CONTEXT_CONFIG_KEYS:
            value = getattr(candidate, key, None)
            if isinstance(value, int) and not isinstance(value, bool) and 0 < value < _NO_LIMIT:
                return value
    return None


def context_limit(model, tokenizer) -> int:
    """Longest sequence (prompt + virtual + new tokens) the model accepts: the smaller of what its
    config and its tokenizer say, DEFAULT_CONTEXT when neither does."""
    limit = config_context_limit(getattr(model, "config", None))
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    candidates = [v for v in (limit, tokenizer_limit) if isinstance(v, int) and 0 < v < _NO_LIMIT]
    return min(candidates) if candidates else DEFAULT_CONTEXT


def generate(
    model,
    tokenizer,
    input_ids: Sequence[int],
    options: GenerationOptions,
    *,
    device: Any = None,
    num_virtual_tokens: int = 0,
    cancel: threading.Event | None = None,
    on_token: Callable[[int], None] | None = None,
    prefix_cache: PrefixCache | None = None,
    cache_key: Hashable = None,
    on_ids: Callable[[tuple[int, ...]], None] | None = None,
) -> GenerationResult:
    """Greedy-decode a continuation of `input_ids` (one prompt) and account for what it cost.

    With a `prefix_cache`, start from the longest prefix of the prompt it holds (the entry stored
    under `cache_key` wins ties) and store the result under `cache_key` afterwards; the output is
    the same token for token, only `prefill_tokens` shrinks. `device` is where the model already is
    (kept for callers; inputs follow the model). `on_ids(ids)` sees the new ids after each token
    (a server decodes them to keep a generation the user is typing along with)."""
    import torch

    from greencoder.core.decoding import greedy_decode, new_cache, prefill_virtual

    check_options(options)
    ids = [int(i) for i in input_ids]
    prompt_length = len(ids)
    base = getattr(model, "get_base_model", lambda: model)()
    problem = prompt_problem(prompt_length, num_virtual_tokens, options.max_new_tokens, context_limit(base, tokenizer))
    if problem is not None:
        raise InputError(problem)
    cancel = cancel or threading.Event()
    eos_ids = eos_token_ids(model, tokenizer, options)
    stop_criteria = StopSequenceCriteria(tokenizer, options.stop_sequences, prompt_length) if options.stop_sequences else None

    def should_stop(sequence: list[int]) -> bool:
        return stop_criteria is not None and stop_criteria.hit(torch.tensor(sequence))

    wall_start, cpu_start = time.perf_counter(), time.process_time()
    new_ids: list[int] = []
    prefill_tokens = reused_tokens = forward_passes = 0
    if not cancel.is_set():
        with torch.inference_mode():
            start = prefix_cache.start(cache_key, ids, num_virtual_tokens) if prefix_cache is not None else None
            if start is not None:
                cache, reused, virtual_prefilled = start.cache, start.reused_tokens, False
            elif num_virtual_tokens:
                cache, reused, virtual_prefilled = prefill_virtual(base, model.get_prompt(batch_size=1)), 0, True
                if prefix_cache is not None:
                    prefix_cache.pin_virtual(cache, num_virtual_tokens)
            else:
                cache, reused, virtual_prefilled = new_cache(base), 0, False
        decoded = greedy_decode(
            base, ids, cache=cache, reused_tokens=reused, num_virtual_tokens=num_virtual_tokens,
            virtual_prefilled=virtual_prefilled, max_new_tokens=options.max_new_tokens, eos_ids=eos_ids,
            should_stop=should_stop, cancel=cancel, on_token=on_token, lookup_tokens=options.prompt_lookup_tokens,
            on_ids=on_ids,
        )
        new_ids, prefill_tokens, reused_tokens = decoded.new_ids, decoded.prefill_tokens, decoded.reused_tokens
        forward_passes = decoded.forward_passes + (1 if virtual_prefilled else 0)
        if prefix_cache is not None:
            prefix_cache.store(cache_key, (ids + new_ids)[: decoded.cached_tokens], decoded.cache)
    wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
    return build_result(
        tokenizer, ids, new_ids, eos_ids, options, cancelled=cancel.is_set(), num_virtual_tokens=num_virtual_tokens,
        wall_seconds=wall, cpu_seconds=cpu, prefill_tokens=prefill_tokens, reused_tokens=reused_tokens,
        forward_passes=forward_passes,
    )


def check_options(options: GenerationOptions) -> None:
    """Options that no prompt could be generated with: an InputError naming the option."""
    if options.max_new_tokens < 1:
        raise InputError(f"max_new_tokens must be at least 1, got {options.max_new_tokens}")
    if options.prompt_lookup_tokens < 0:
        raise InputError(f"prompt_lookup_tokens must be 0 (off) or more, got {options.prompt_lookup_tokens}")


def prompt_problem(prompt_length: int, num_virtual_tokens: int, max_new_tokens: int, limit: int) -> str | None:
    """Why a prompt of this many tokens cannot be generated from (one line), or None when it can."""
    if prompt_length == 0:
        return "cannot generate from an empty prompt"
    if prompt_length + num_virtual_tokens + max_new_tokens > limit:
        return (
            f"prompt of {prompt_length} tokens + {num_virtual_tokens} soft-prompt tokens + "
            f"{max_new_tokens} new tokens exceeds the model's context of {limit} tokens"
        )
    return None


def eos_token_ids(model, tokenizer, options: GenerationOptions) -> set[int]:
    """Every token id that ends a greedy generation (the model's, the tokenizer's, the options' extras)."""
    return set(greedy_generation_config(model, tokenizer, options).eos_token_id or [])


def build_result(
    tokenizer,
    prompt_ids: Sequence[int],
    new_ids: list[int],
    eos_ids: set[int],
    options: GenerationOptions,
    *,
    cancelled: bool,
    num_virtual_tokens: int,
    wall_seconds: float,
    cpu_seconds: float,
    prefill_tokens: int,
    reused_tokens: int,
    forward_passes: int,
) -> GenerationResult:
    """The GenerationResult of greedy tokens `new_ids`: text without a final eos and cut before the
    first stop sequence, and why generation ended. One function, so a batched row and a single
    generation of the same tokens give the same result."""
    if new_ids and new_ids[-1] in eos_ids:
        new_ids_for_text, ended_by_eos = new_ids[:-1], True
    else:
        new_ids_for_text, ended_by_eos = new_ids, False
    text = tokenizer.decode(new_ids_for_text, skip_special_tokens=True)
    prompt_tail = tokenizer.decode(list(prompt_ids[-1:]), skip_special_tokens=True)
    text, stopped = cut_at_stop(text, options.stop_sequences, prompt_tail)
    if stopped:
        reason = STOP_SEQUENCE
    elif ended_by_eos:
        reason = STOP_EOS
    elif cancelled:
        reason = STOP_CANCELLED
    else:
        reason = STOP_MAX_TOKENS
    return GenerationResult(
        text=text,
        prompt_tokens=len(prompt_ids),
        virtual_tokens=num_virtual_tokens,
        new_tokens=len(new_ids),
        wall_seconds=wall_seconds,
        cpu_seconds=cpu_seconds,
        stop_reason=reason,
        token_ids=list(new_ids),
        prefill_tokens=prefill_tokens,
        reused_tokens=reused_tokens,
        forward_passes=forward_passes,
    )
