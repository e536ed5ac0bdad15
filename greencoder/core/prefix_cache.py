"""Key/value caches of recent prompts, so a new request only computes the tokens that changed.

An editor asks for a completion on nearly every keystroke, and consecutive prompts share almost
all their tokens. The runtime keeps the attention keys/values of recent requests here (a small LRU,
capped by entry count and by bytes) and starts each generation from the longest cached prefix of
its prompt, feeding only the rest. The soft prompt's virtual tokens always come first; their
keys/values are pinned (computed once per runtime, never evicted).

Entries are never modified in place: a request gets its own copy of the reused prefix, so a
generation that is cancelled or fails leaves every stored entry valid.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
DEFAULT_MAX_ENTRIES = 4


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items `a` and `b` share."""
    limit = min(len(a), len(b))
    index = 0
    while index < limit and a[index] == b[index]:
        index += 1
    return index


def cache_layers(cache) -> list[tuple[Any, Any]] | None:
    """(keys, values) per layer of a transformers DynamicCache, or None when some layer is not a plain
    full-attention layer (sliding windows and linear attention drop states, so they cannot be reused)."""
    from transformers.cache_utils import DynamicLayer

    layers = []
    for layer in cache.layers:
        if type(layer) is not DynamicLayer or not layer.is_initialized:
            return None
        layers.append((layer.keys, layer.values))
    return layers or None


def cache_from_layers(layers: Sequence[tuple[Any, Any]], length: int):
    """A new DynamicCache holding copies of the first `length` positions of `layers` (DynamicLayer.update
    concatenates onto an empty tensor, so the stored tensors are never shared with the new cache)."""
    from transformers import DynamicCache

    return DynamicCache(ddp_cache_data=[(k[..., :length, :], v[..., :length, :]) for k, v in layers])


def _nbytes(layers: Sequence[tuple[Any, Any]]) -> int:
    return sum(t.untyped_storage().nbytes() for pair in layers for t in pair)


@dataclass
class CacheEntry:
    tokens: tuple[int, ...]
    """Prompt/generated token ids whose keys/values follow the virtual tokens in `layers`."""
    layers: list[tuple[Any, Any]]
    nbytes: int


@dataclass
class CacheStart:
    """Where a generation starts: a working cache and how many prompt tokens it already holds."""

    cache: Any
    reused_tokens: int
    """Prompt token ids (not counting virtual tokens) whose keys/values are in `cache`."""


class PrefixCache:
    """A small LRU of key/value caches, one per key (e.g. per document), bounded in entries and bytes."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES, max_entries: int = DEFAULT_MAX_ENTRIES):
        self.max_bytes = max_bytes
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, CacheEntry] = OrderedDict()
        self._virtual: CacheEntry | None = None

    @property
    def total_bytes(self) -> int:
        return sum(e.nbytes for e in self._entries.values()) + (self._virtual.nbytes if self._virtual else 0)

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        self._entries.clear()
        self._virtual = None

    def discard(self, key: Hashable) -> None:
        """Forget `key`'s entry (its document was closed, say)."""
        self._entries.pop(key, None)

    def start(self, key: Hashable, prompt_ids: Sequence[int], num_virtual_tokens: int) -> CacheStart | None:
        """A private working cache for `prompt_ids`: the longest prefix any entry holds (at most all
        but the last prompt token, which must be fed to get the next token's logits), after the
        virtual tokens. None when nothing is cached, not even the virtual tokens."""
        best: CacheEntry | None = None
        best_key: Hashable = None
        best_length = -1
        candidates = list(self._entries.items())
        candidates.sort(key=lambda item: item[0] != key)  # the key's own entry wins ties
        for entry_key, entry in candidates:
            length = min(common_prefix_length(entry.tokens, prompt_ids), len(prompt_ids) - 1)
            if length > best_length:
                best, best_key, best_length = entry, entry_key, length
        if best is None or best_length <= 0:
            if self._virtual is None:
                return None
            best, best_length = self._virtual, 0
        else:
            self._entries.move_to_end(best_key)
        return CacheStart(cache_from_layers(best.layers, num_virtual_tokens + best_length), best_length)

    def pin_virtual(self, cache, num_virtual_tokens: int) -> None:
        """Keep the keys/values of the soft prompt's virtual tokens (the first positions of `cache`)."""
        layers = cache_layers(cache)
        if layers is None or num_virtual_tokens <= 0:
            return
        kept = [(k[..., :num_virtual_tokens, :].clone(), v[..., :num_virtual_tokens, :].clone()) for k, v in layers]
        self._virtual = CacheEntry((), kept, _nbytes(kept))

    def store(self, key: Hashable, tokens: Sequence[int], cache) -> bool:
        """Keep `cache` (virtual tokens, then `tokens`) as `key`'s entry, replacing the key's old entry
        and any entry it makes redundant; evict least recently used entries beyond the bounds.
        Returns False when the cache cannot be reused or does not fit at all."""
        self._entries.pop(key, None)
        layers = cache_layers(cache)
        if layers is None or not tokens:
            return False
        entry = CacheEntry(tuple(tokens), layers, _nbytes(layers))
        if entry.nbytes > self.max_bytes or self.max_entries < 1:
            return False
        for other_key in [k for k, e in self._entries.items() if entry.tokens[: len(e.tokens)] == e.tokens]:
            del self._entries[other_key]  # a prefix of the new entry: the new one serves it as well
        self._entries[key] = entry
        while len(self._entries) > self.max_entries or self.total_bytes > self.max_bytes:
            self._entries.popitem(last=False)
        return key in self._entries
