"""Greedy decoding of several prompts at once: left padding, one attention mask, per-row stops.

Evaluation generates hundreds of independent prompts; one at a time, every decoding step reads all
the weights for a single token. Batching N rows makes each step's matrix products N rows tall for
a fraction of N times the cost, and keeps a GPU busy.

Layout of row i in the cache (V virtual tokens, prompt of L_i tokens, padded to the widest W):

    [ virtual 0..V-1 | padding (W - L_i, zeros, masked) | prompt | new tokens ... ]

Each row's prompt is read alone, exactly as unbatched generation reads it (the soft prompt's
virtual tokens computed once and copied, then the prompt in the same chunks at the same
positions), so each row's first token is the unbatched one bit for bit, and no padding is ever
computed. The rows' keys/values are then laid into one left-padded cache whose padding is zeros
that the attention mask hides, and the decoding steps run batched, with explicit position ids so
each row sees exactly what it sees alone. Padding is never a query, so no query has nothing to
attend to (some attention kernels return NaN for a fully masked row, and the NaN would reach the
real tokens through the padding's values). Only the floating-point reduction order of the
decoding steps can differ (longer masked key rows, other matrix shapes): in float32 on the tiny
model the tokens are identical, as tests/test_batched_generation.py checks; in bf16 on a GPU a
near-tie can come out differently.

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

from greencoder.core.decoding import PREFILL_CHUNK_TOKENS, _accepts_logits_to_keep, new_cache, prefill_virtual
from greencoder.core.decoding import _forward as forward_one


@dataclass
class RowDecoded:
    """What one row of a batch produced and what it took part in."""

    new_ids: list[int]
    cancelled: bool
    """Still unfinished when the cancel event stopped the batch."""
    forward_passes: int
    """Model calls this row took part in: the shared virtual-token pass, its own prefill chunks, and
    the batched decoding steps it was still in."""
    positions: float
    """Positions computed on this row's behalf: its prompt, one per decoding step it was in, and an
    equal share of the one virtual-token pass. What costs are apportioned by."""


def can_batch(model) -> bool:
    """Whether left-padded batching keeps every row exact for this model: each cache layer must be a
    plain full-attention DynamicLayer (sliding windows and linear attention count cache slots)."""
    from transformers.cache_utils import DynamicLayer

    return all(type(layer) is DynamicLayer for layer in new_cache(model).layers)


def _forward_batch(model, cache, ids, mask, positions):
    """One batched decoding pass; float32 logits of each row's last position, [rows, vocab]."""
    import torch

    kwargs: dict[str, Any] = {"cache": cache, "attention_mask": mask, "position_ids": positions, "use_cache": True,
                              "input_ids": ids}
    if _accepts_logits_to_keep(type(model).forward):
        kwargs["logits_to_keep"] = 1
    return model(**kwargs).logits[:, -1].to(torch.float32)


@functools.lru_cache(maxsize=1)
def _roomy_layer_class() -> type:
    """A DynamicLayer whose keys/values live in buffers sized once for the whole generation and
    written in place. DynamicLayer concatenates the whole cache onto a new tensor at every step,
    which at batch 8 on a CPU cost more than the matrix products (each large fresh allocation
    faults in new pages). `keys`/`values` are views of the filled part. (A class made on first use:
    transformers is imported only when generation runs.)"""
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
                self._set_length(0)
            if end > self.key_buffer.shape[-2]:  # more than planned (batched_greedy_decode never is): grow
                self._rebuild(None, None, max(end, 2 * self.key_buffer.shape[-2]))
            self.key_buffer[:, :, self.length : end].copy_(key_states)
            self.value_buffer[:, :, self.length : end].copy_(value_states)
            self._set_length(end)
            return self.keys, self.values

        def _allocate(self, rows: int, capacity: int, keys, values) -> None:
            """Zeroed, so that unwritten (padding) positions hold finite values."""
            self.key_buffer = keys.new_zeros((rows, keys.shape[1], capacity, keys.shape[-1]))
            self.value_buffer = values.new_zeros((rows, values.shape[1], capacity, values.shape[-1]))

        def _set_length(self, length: int) -> None:
            self.length = length
            self.keys, self.values = self.key_buffer[:, :, :length], self.value_buffer[:, :, :length]

        def _rebuild(self, rows, columns, capacity: int) -> None:
            """Keep batch rows `rows` and positions `columns` (index tensors; None: all) in new buffers."""
            keys, values = self.keys, self.values
            if rows is not None:
                keys, values = keys.index_select(0, rows.to(keys.device)), values.index_select(0, rows.to(values.device))
            if columns is not None:
                keys = keys.index_select(2, columns.to(keys.device))
                values = values.index_select(2, columns.to(values.device))
            self._allocate(keys.shape[0], capacity, keys, values)
            self.key_buffer[:, :, : keys.shape[-2]].copy_(keys)
            self.value_buffer[:, :, : values.shape[-2]].copy_(values)
            self._set_length(keys.shape[-2])

        def fill(self, rows: Sequence[tuple[Any, Any]], starts: Sequence[int], virtual: int, length: int) -> None:
            """Lay single-row keys/values ([1, heads, V + L_i, dim] each) into one batch: row i's
            virtual part at 0.., its prompt part at starts[i].. (ending at `length`), zeros between."""
            keys0, values0 = rows[0]
            self.lazy_initialization(keys0, values0)
            self._allocate(len(rows), max(self.capacity, length), keys0, values0)
            for index, ((keys, values), start) in enumerate(zip(rows, starts, strict=True)):
                self.key_buffer[index, :, :virtual] = keys[0, :, :virtual]
                self.value_buffer[index, :, :virtual] = values[0, :, :virtual]
                self.key_buffer[index, :, start:length] = keys[0, :, virtual:]
                self.value_buffer[index, :, start:length] = values[0, :, virtual:]
            self._set_length(length)

        def select(self, rows, columns, drop_columns: int) -> None:
            if self.key_buffer is not None:
                self._rebuild(rows, columns, self.key_buffer.shape[-2] - drop_columns)

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("batched decoding never crops its cache")

    return RoomyLayer


def roomy_cache(model, capacity: int):
    """A cache for `model` (plain full-attention layers only: see can_batch) with room for `capacity`
    positions per row, allocated at the first update or fill."""
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


def _prefill_rows(model, prompts, virtual_embeds, cancel: threading.Event, passes: list[int]):
    """Each prompt read alone after the virtual tokens, as greedy_decode reads it: ([(keys, values) per
    layer] per row, last-position logits per row), or None when cancelled between chunks."""
    from greencoder.core.prefix_cache import cache_from_layers, cache_layers

    virtual_layers = None
    if virtual_embeds is not None:
        virtual_layers = cache_layers(prefill_virtual(model, virtual_embeds))
    virtual = 0 if virtual_embeds is None else int(virtual_embeds.shape[1])
    rows, first_logits = [], []
    for row, prompt in enumerate(prompts):
        cache = cache_from_layers(virtual_layers, virtual) if virtual_layers else new_cache(model)
        logits = None
        for start in range(0, len(prompt), PREFILL_CHUNK_TOKENS):
            if cancel.is_set():
                return None
            logits = forward_one(model, cache, virtual + start, 1, ids=prompt[start : start + PREFILL_CHUNK_TOKENS])
            passes[row] += 1
        rows.append([(layer.keys, layer.values) for layer in cache.layers])
        first_logits.append(logits[-1])
    return rows, first_logits


def batched_greedy_decode(
    model,
    prompts: Sequence[Sequence[int]],
    *,
    virtual_embeds=None,
    max_new_tokens: int,
    eos_ids: set[int],
    should_stop: Sequence[Callable[[list[int]], bool]],
    cancel: threading.Event,
) -> list[RowDecoded]:
    """Greedy continuations of `prompts` (non-empty token id lists) in one batch. `virtual_embeds`
    ([1, V, hidden], the soft prompt) go first in every row. `should_stop[i](sequence)` is asked after
    each new token of row i, as in greedy_decode; eos and max_new_tokens end a row too."""
    import torch

    count = len(prompts)
    device = model.device
    virtual = 0 if virtual_embeds is None else int(virtual_embeds.shape[1])
    width = max(len(p) for p in prompts)
    pads = [width - len(p) for p in prompts]
    sequences = [list(p) for p in prompts]
    new_ids: list[list[int]] = [[] for _ in prompts]
    passes = [1 if virtual else 0] * count
    positions_spent = [virtual / count + len(p) for p in prompts]

    with torch.inference_mode():
        if virtual_embeds is not None:
            virtual_embeds = virtual_embeds.to(model.dtype)
        prefilled = _prefill_rows(model, prompts, virtual_embeds, cancel, passes)
        if prefilled is None:
            return [RowDecoded([], True, passes[i], positions_spent[i]) for i in range(count)]
        rows, first_logits = prefilled
        cache = roomy_cache(model, virtual + width + max_new_tokens)
        starts = [virtual + pad for pad in pads]
        for index, layer in enumerate(cache.layers):
            layer.fill([row[index] for row in rows], starts, virtual, virtual + width)
        del rows
        mask = torch.zeros((count, virtual + width), dtype=torch.long, device=device)
        mask[:, :virtual] = 1
        for row, start in enumerate(starts):
            mask[row, start:] = 1

        active = list(range(count))  # original row index of each batch row
        cancelled = [False] * count
        next_tokens = [int(torch.argmax(logits)) for logits in first_logits]
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
            logits = _forward_batch(model, cache, feed, mask, step_positions)
            for row in active:
                passes[row] += 1
                positions_spent[row] += 1
            next_tokens = torch.argmax(logits, dim=-1).tolist()
    return [RowDecoded(new_ids[i], cancelled[i], passes[i], positions_spent[i]) for i in range(count)]
