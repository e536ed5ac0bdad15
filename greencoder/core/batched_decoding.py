"""Greedy decoding of several prompts at once: left padding, one attention mask, per-row stops.

Evaluation generates hundreds of independent prompts; one at a time, every decoding step reads all
the weights for a single token. Batching N rows makes each step's matrix products N rows tall for
about the cost of one on a CPU (memory-bound), and keeps a GPU busy.

Layout of row i in the cache (V virtual tokens, prompt of L_i tokens, padded to the widest W):

    [ virtual 0..V-1 | padding (W - L_i, masked) | prompt | new tokens ... ]

The virtual tokens come first in every row, as in unbatched generation, and are computed once (one
row) and repeated, so their keys/values are bit-for-bit those of a single generation. Position ids
are given explicitly: the prompt's tokens sit at V.., exactly where they sit unbatched, and padding
is masked out for every query, so each row sees exactly what it would see alone. (Only the
floating-point reduction order can differ: longer masked key rows, other matrix shapes. In float32
on the tiny model the tokens are identical, as tests/test_batched_generation.py checks; in bf16 on
a GPU a near-tie can come out differently.)

Finished rows leave the batch: their cache rows are dropped, and so are leading padding columns
that no remaining row needs, so a long tail of one busy row costs what it would cost alone.
Cancellation is checked between forward passes (prefill chunks and decoding steps).

Sliding-window or linear-attention layers count positions by cache slot, which padding would
shift; `can_batch` says whether a model's cache is plain full attention, and callers fall back to
one prompt at a time when it is not.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from greencoder.core.decoding import PREFILL_CHUNK_TOKENS, _accepts_logits_to_keep, new_cache


@dataclass
class RowDecoded:
    """What one row of a batch produced and what it took part in."""

    new_ids: list[int]
    cancelled: bool
    """Still unfinished when the cancel event stopped the batch."""
    forward_passes: int
    """Batched model calls this row was part of (the shared virtual-token pass included)."""
    positions: float
    """Positions computed on this row's behalf: its padded prefill columns, one per decoding step it
    was in, and an equal share of the one virtual-token pass. What costs are apportioned by."""


def can_batch(model) -> bool:
    """Whether left-padded batching keeps every row exact for this model: each cache layer must be a
    plain full-attention DynamicLayer (sliding windows and linear attention count cache slots)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in new_cache(model).layers)


def _forward(model, cache, ids, mask, positions, embeds=None):
    """One batched pass; float32 logits of each row's last position, [rows, vocab]."""
    import torch

    kwargs: dict[str, Any] = {"cache": cache, "attention_mask": mask, "position_ids": positions, "use_cache": True}
    if _accepts_logits_to_keep(type(model).forward):
        kwargs["logits_to_keep"] = 1
    if embeds is not None:
        kwargs["inputs_embeds"] = embeds
    else:
        kwargs["input_ids"] = ids
    return model(**kwargs).logits[:, -1].to(torch.float32)


@functools.lru_cache(maxsize=1)
def _roomy_layer_class() -> type:
    """A DynamicLayer whose keys/values live in buffers sized once for the whole generation and
    written in place. DynamicLayer concatenates the whole cache onto a new tensor at every step,
    which at batch 8 on a CPU cost more than the matrix products (each large fresh allocation
    faults in new pages). `keys`/`values` are views of the filled part. (A class made on first use:
    transformers is imported only when generation runs.)"""
    import torch
    from transformers.cache_utils import DynamicLayer

    class RoomyLayer(DynamicLayer):
        def __init__(self, capacity: int):
            super().__init__()
            self.capacity = capacity
            self.length = 0
            self.key_buffer = self.value_buffer = None

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.length + key_states.shape[-2]
            if self.key_buffer is None:
                self.lazy_initialization(key_states, value_states)
                self._allocate(key_states.shape[0], max(self.capacity, end), key_states, value_states)
                self.keys, self.values = self.key_buffer[:, :, :0], self.value_buffer[:, :, :0]
            if end > self.key_buffer.shape[-2]:  # more than planned (batched_greedy_decode never is): grow
                self._rebuild(None, None, max(end, 2 * self.key_buffer.shape[-2]))
            self.key_buffer[:, :, self.length : end].copy_(key_states)
            self.value_buffer[:, :, self.length : end].copy_(value_states)
            self.length = end
            self.keys, self.values = self.key_buffer[:, :, :end], self.value_buffer[:, :, :end]
            return self.keys, self.values

        def _allocate(self, rows: int, capacity: int, keys, values) -> None:
            self.key_buffer = keys.new_empty((rows, keys.shape[1], capacity, keys.shape[-1]))
            self.value_buffer = values.new_empty((rows, values.shape[1], capacity, values.shape[-1]))

        def _rebuild(self, rows, columns, capacity: int) -> None:
            """Keep batch rows `rows` and positions `columns` (index tensors; None: all) in new buffers."""
            keys, values = self.keys, self.values
            if rows is not None:
                keys, values = keys.index_select(0, rows.to(keys.device)), values.index_select(0, rows.to(values.device))
            if columns is not None:
                keys = keys.index_select(2, columns.to(keys.device))
                values = values.index_select(2, columns.to(values.device))
            self._allocate(keys.shape[0], capacity, keys, values)
            self.length = keys.shape[-2]
            self.key_buffer[:, :, : self.length].copy_(keys)
            self.value_buffer[:, :, : self.length].copy_(values)
            self.keys, self.values = self.key_buffer[:, :, : self.length], self.value_buffer[:, :, : self.length]

        def select(self, rows, columns, drop_columns: int) -> None:
            if self.key_buffer is not None:
                self._rebuild(rows, columns, self.key_buffer.shape[-2] - drop_columns)

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.key_buffer is not None:
                rows = torch.arange(self.keys.shape[0], device=self.keys.device).repeat_interleave(repeats)
                self._rebuild(rows, None, self.key_buffer.shape[-2])

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("batched decoding never crops its cache")

    return RoomyLayer


def roomy_cache(model, capacity: int):
    """A cache for `model` (plain full-attention layers only: see can_batch) with room for `capacity`
    positions per row, allocated at the first update."""
    cache = new_cache(model)
    layer_class = _roomy_layer_class()
    cache.layers = [layer_class(capacity) for _ in cache.layers]
    return cache


def _select(cache, mask, rows, drop_columns: int, virtual: int):
    """Keep batch rows `rows` of `cache` and `mask`, and remove `drop_columns` padding columns after the
    virtual tokens (columns no kept row attends to): one copy per layer, into buffers as much
    smaller as the columns dropped."""
    import torch

    device = mask.device
    total = mask.shape[1]
    columns = None
    if drop_columns:
        columns = torch.cat([torch.arange(virtual, device=device), torch.arange(virtual + drop_columns, total, device=device)])
    row_index = torch.tensor(rows, dtype=torch.long, device=device)
    for layer in cache.layers:
        layer.select(row_index, columns, drop_columns)
    mask = mask.index_select(0, row_index)
    if columns is not None:
        mask = mask.index_select(1, columns)
    return mask


def batched_greedy_decode(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    virtual_embeds=None,
    max_new_tokens: int,
    eos_ids: set[int],
    should_stop: Sequence[Callable[[list[int]], bool]],
    cancel: threading.Event,
    pad_id: int = 0,
) -> list[RowDecoded]:
    """Greedy continuations of `prompts` (non-empty token id lists) in one batch. `virtual_embeds`
    ([1, V, hidden], the soft prompt) go first in every row. `should_stop[i](sequence)` is asked after
    each new token of row i, as in greedy_decode; eos and max_new_tokens end a row too."""
    import torch

    count = len(prompts)
    device = model.device
    virtual = 0 if virtual_embeds is None else int(virtual_embeds.shape[1])
    lengths = [len(p) for p in prompts]
    width = max(lengths)
    pads = [width - length for length in lengths]
    sequences = [list(p) for p in prompts]
    new_ids: list[list[int]] = [[] for _ in prompts]
    passes = [0] * count
    positions_spent = [virtual / count + width for _ in prompts]

    ids = torch.full((count, width), pad_id, dtype=torch.long, device=device)
    mask = torch.zeros((count, virtual + width), dtype=torch.long, device=device)
    mask[:, :virtual] = 1
    for row, prompt in enumerate(prompts):
        ids[row, pads[row]:] = torch.tensor(list(prompt), dtype=torch.long, device=device)
        mask[row, virtual + pads[row]:] = 1
    columns = torch.arange(width, device=device).unsqueeze(0)
    position_ids = (virtual + columns - torch.tensor(pads, device=device).unsqueeze(1)).clamp(min=0)

    cache = roomy_cache(model, virtual + width + max_new_tokens)
    with torch.inference_mode():
        if virtual:
            _forward(model, cache, None, torch.ones((1, virtual), dtype=torch.long, device=device),
                     torch.arange(virtual, device=device).unsqueeze(0), embeds=virtual_embeds.to(model.dtype))
            cache.batch_repeat_interleave(count)
            passes = [1] * count
        logits = None
        for start in range(0, width, PREFILL_CHUNK_TOKENS):
            if cancel.is_set():
                return [RowDecoded([], True, passes[i], positions_spent[i]) for i in range(count)]
            end = min(start + PREFILL_CHUNK_TOKENS, width)
            logits = _forward(model, cache, ids[:, start:end], mask[:, : virtual + end], position_ids[:, start:end])
            passes = [p + 1 for p in passes]

        active = list(range(count))  # original row index of each batch row
        cancelled = [False] * count
        next_tokens = torch.argmax(logits, dim=-1).tolist()
        while active:
            kept: list[int] = []
            for batch_row, row in enumerate(active):
                token = int(next_tokens[batch_row])
                sequences[row].append(token)
                new_ids[row].append(token)
                if not (token in eos_ids or len(new_ids[row]) >= max_new_tokens or should_stop[row](sequences[row])):
                    kept.append(batch_row)
            if cancel.is_set():
                for batch_row in kept:
                    cancelled[active[batch_row]] = True
                break
            if not kept:
                break
            if len(kept) < len(active):
                drop = min(pads[active[b]] for b in kept)
                mask = _select(cache, mask, kept, drop, virtual)
                for b in kept:
                    pads[active[b]] -= drop
                active = [active[b] for b in kept]
            feed = torch.tensor([[sequences[row][-1]] for row in active], dtype=torch.long, device=device)
            step_positions = torch.tensor([[virtual + len(sequences[row]) - 1] for row in active], device=device)
            mask = torch.cat([mask, torch.ones((len(active), 1), dtype=mask.dtype, device=device)], dim=1)
            logits = _forward(model, cache, feed, mask, step_positions)
            for row in active:
                passes[row] += 1
                positions_spent[row] += 1
            next_tokens = torch.argmax(logits, dim=-1).tolist()
    return [RowDecoded(new_ids[i], cancelled[i], passes[i], positions_spent[i]) for i in range(count)]
