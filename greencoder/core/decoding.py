"""Greedy decoding on a key/value cache that greencoder owns.

The loop feeds only what the cache does not hold yet (in chunks, checking for cancellation between
them), puts a soft prompt's virtual tokens first as embeddings, and can verify prompt-lookup drafts
(n-grams copied from the context) several tokens per forward pass. Greedy acceptance keeps the
output that of one-token-at-a-time decoding.

Why not `model.generate`: with transformers 5.24 and PEFT 0.21, PEFT's prepare_inputs_for_generation
looks for the cache under its old name (`past_key_values`, now `cache`), so it prepends the virtual
tokens again on every decoding step: every token after the first was computed from a corrupted
context (and each step fed V+1 tokens). And generate cannot start from a pre-filled cache with
prompt lookup (its assisted loop feeds the whole prompt on the first pass). Owning the loop fixes
both and keeps exactly known which tokens the cache holds.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

PREFILL_CHUNK_TOKENS = 256
"""Prompt tokens per forward pass while prefilling: bounds how long a cancellation waits, and what
is already cached when it comes."""
PROMPT_LOOKUP_MAX_NGRAM = 3


@dataclass
class Decoded:
    new_ids: list[int]
    cache: Any
    """After the virtual tokens, holds the keys/values of `(prompt + new_ids)[:cached_tokens]`."""
    cached_tokens: int
    prefill_tokens: int
    """Positions computed while reading the prompt (virtual tokens included when not cached)."""
    reused_tokens: int
    """Positions of the prompt taken from a cache (virtual tokens included when cached)."""
    forward_passes: int


def find_draft(sequence: Sequence[int], num_tokens: int, max_ngram: int = PROMPT_LOOKUP_MAX_NGRAM) -> list[int]:
    """Prompt lookup: the tokens that followed the most recent earlier occurrence of the sequence's
    last n-gram (longest n first), at most `num_tokens` of them; [] when there is none."""
    length = len(sequence)
    if num_tokens <= 0:
        return []
    for n in range(min(max_ngram, length - 1), 0, -1):
        tail = list(sequence[length - n :])
        for start in range(length - n - 1, -1, -1):
            if sequence[start] == tail[0] and list(sequence[start : start + n]) == tail:
                return list(sequence[start + n : start + n + num_tokens])
    return []


@functools.lru_cache(maxsize=8)
def _accepts_logits_to_keep(forward) -> bool:
    return "logits_to_keep" in inspect.signature(forward).parameters


def _forward(model, cache, start: int, keep: int, ids: Sequence[int] | None = None, embeds=None):
    """Run `ids` (or `embeds`) at positions start.. through the model, extending `cache`;
    return the logits of the last `keep` positions as float32 [keep, vocab]."""
    import torch

    device = model.device
    count = len(ids) if ids is not None else embeds.shape[1]
    positions = torch.arange(start, start + count, device=device).unsqueeze(0)
    kwargs: dict[str, Any] = {"cache": cache, "position_ids": positions, "use_cache": True}
    if _accepts_logits_to_keep(type(model).forward):
        kwargs["logits_to_keep"] = keep
    if ids is not None:
        kwargs["input_ids"] = torch.tensor([list(ids)], dtype=torch.long, device=device)
    else:
        kwargs["inputs_embeds"] = embeds
    logits = model(**kwargs).logits
    return logits[0, -keep:].to(torch.float32)


def new_cache(model):
    """The cache transformers would make for this model (per-layer types from its config)."""
    from transformers import DynamicCache

    return DynamicCache(config=model.config)


def prefill_virtual(model, virtual_embeds):
    """A fresh cache holding the soft prompt's virtual tokens (positions 0..V-1)."""
    cache = new_cache(model)
    _forward(model, cache, 0, 1, embeds=virtual_embeds.to(model.dtype))
    return cache


def greedy_decode(
    model,
    prompt_ids: Sequence[int],
    *,
    cache,
    reused_tokens: int,
    num_virtual_tokens: int,
    virtual_prefilled: int,
    max_new_tokens: int,
    eos_ids: set[int],
    should_stop: Callable[[list[int]], bool],
    cancel: threading.Event,
    on_token: Callable[[int], None] | None = None,
    lookup_tokens: int = 0,
    on_ids: Callable[[tuple[int, ...]], None] | None = None,
) -> Decoded:
    """Greedy continuation of `prompt_ids` from `cache`, which already holds the virtual tokens and
    the first `reused_tokens` prompt tokens. `virtual_prefilled` says whether the virtual tokens were
    computed for this call (counted as prefill) or came from a cache (counted as reused).
    `should_stop(sequence)` is asked after each new token, as generate's stopping criteria are.
    `on_token(n)` gets the count of new tokens after each, `on_ids(ids)` the new ids themselves."""
    import torch
    from transformers.cache_utils import DynamicLayer

    if any(type(layer) is not DynamicLayer for layer in cache.layers):
        lookup_tokens = 0  # rejected drafts are cropped off; sliding-window/linear layers cannot crop back
    sequence = list(prompt_ids)
    cached = reused_tokens
    virtual = num_virtual_tokens
    prefill = virtual if virtual_prefilled else 0
    reused = reused_tokens + (0 if virtual_prefilled else virtual)
    passes = 0
    new_ids: list[int] = []
    logits = None
    with torch.inference_mode():
        while cached < len(sequence):
            if cancel.is_set():
                return Decoded(new_ids, cache, cached, prefill, reused, passes)
            chunk = sequence[cached : cached + PREFILL_CHUNK_TOKENS]
            logits = _forward(model, cache, virtual + cached, 1, ids=chunk)
            cached += len(chunk)
            prefill += len(chunk)
            passes += 1
        pending = [int(torch.argmax(logits[-1]))]
        while pending:
            token = pending.pop(0)
            sequence.append(token)
            new_ids.append(token)
            if on_token is not None:
                on_token(len(new_ids))
            if on_ids is not None:
                on_ids(tuple(new_ids))
            if token in eos_ids or len(new_ids) >= max_new_tokens or should_stop(sequence) or cancel.is_set():
                break
            if pending:
                continue  # an accepted draft token: already in the cache
            draft = find_draft(sequence, min(lookup_tokens, max_new_tokens - len(new_ids) - 1)) if lookup_tokens else []
            fed = [token, *draft]
            logits = _forward(model, cache, virtual + cached, len(fed), ids=fed)
            cached += len(fed)
            passes += 1
            predicted = torch.argmax(logits, dim=-1).tolist()
            accepted = 0
            while accepted < len(draft) and draft[accepted] == predicted[accepted]:
                accepted += 1
            rejected = len(draft) - accepted
            if rejected:
                cache.crop(-rejected)
                cached -= rejected
            pending = [*draft[:accepted], predicted[accepted]]
        # The cache must hold exactly the fed tokens of `sequence`: accepted drafts beyond a stop come off.
        excess = cached - (len(sequence) - 1)
        if excess > 0:
            cache.crop(-excess)
            cached -= excess
    return Decoded(new_ids, cache, cached, prefill, reused, passes)
