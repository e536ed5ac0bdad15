"""The runtime: a loaded model (with or without its efficiency soft prompt) that turns prompts into code.

This is the one object evaluation, the CLI and the language server hold. It owns the thread
setting, the device, and the tokenizer conventions (special tokens at the start of a prompt), so
callers deal in text and GenerationResult only.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from greencoder.core.generation import (
    GenerationOptions,
    GenerationResult,
    context_limit,
    generate,
)
from greencoder.core.model_loading import LoadedModel, ModelSettings, load_model
from greencoder.core.prefix_cache import PrefixCache
from greencoder.core.threads import configure_torch_threads, default_thread_count


@dataclass(frozen=True)
class RuntimeInfo:
    """What is loaded, for logs, results files and the server's status."""

    model: str
    adapter: str | None
    device: str
    dtype: str
    threads: int
    num_virtual_tokens: int
    context_tokens: int


class Runtime:
    """A base model plus optional soft prompt, ready for greedy generation."""

    def __init__(self, loaded: LoadedModel, threads: int, prefix_cache: PrefixCache | None = None, reuse: bool = True):
        self.loaded = loaded
        self.threads = threads
        self.prefix_cache: PrefixCache | None = (prefix_cache or PrefixCache()) if reuse else None
        """Keys/values of recent prompts (None: every request reads its whole prompt)."""
        self._generate_lock = threading.Lock()

    @classmethod
    def load(cls, settings: ModelSettings, threads: int | None = None, reuse: bool = True) -> Runtime:
        """Set the torch thread count, then load model and adapter as `settings` says."""
        count = threads or default_thread_count()
        configure_torch_threads(count)
        return cls(load_model(settings), count, reuse=reuse)

    def set_reuse(self, enabled: bool, prefix_cache: PrefixCache | None = None) -> None:
        """Turn prefix reuse on (with a fresh or given cache) or off (dropping what is cached)."""
        with self._generate_lock:
            self.prefix_cache = (prefix_cache or PrefixCache()) if enabled else None

    def discard_cached(self, cache_key: Hashable) -> None:
        """Free the prefix-cache entry of `cache_key` (e.g. when its document closes); waits for a
        running generation, which may be using the cache."""
        with self._generate_lock:
            if self.prefix_cache is not None:
                self.prefix_cache.discard(cache_key)

    @property
    def tokenizer(self):
        return self.loaded.tokenizer

    @property
    def model(self):
        return self.loaded.model

    @property
    def base_model(self):
        """The transformers model under the PEFT wrapper (the same object when no soft prompt is loaded)."""
        get_base = getattr(self.loaded.model, "get_base_model", None)
        return get_base() if get_base else self.loaded.model

    @property
    def num_virtual_tokens(self) -> int:
        return self.loaded.num_virtual_tokens

    @property
    def context_tokens(self) -> int:
        return context_limit(self.base_model, self.tokenizer)

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(
            model=self.loaded.model_reference,
            adapter=self.loaded.adapter_path,
            device=str(self.loaded.device),
            dtype=str(self.base_model.dtype).removeprefix("torch."),
            threads=self.threads,
            num_virtual_tokens=self.num_virtual_tokens,
            context_tokens=self.context_tokens,
        )

    @functools.cached_property
    def leading_special_ids(self) -> list[int]:
        """Ids the tokenizer puts before any text (e.g. Llama's BOS), to keep when building ids by hand.
        Fixed per tokenizer, so worked out once rather than on every completion."""
        with_special = self.tokenizer("x", add_special_tokens=True)["input_ids"]
        without = self.tokenizer("x", add_special_tokens=False)["input_ids"]
        if len(with_special) > len(without) and with_special[-len(without):] == without:
            return list(with_special[: len(with_special) - len(without)])
        return []

    def encode(self, text: str) -> list[int]:
        """Token ids of a whole prompt, with the tokenizer's own leading special tokens."""
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def generate(
        self,
        prompt: str | Sequence[int],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
        on_token: Callable[[int], None] | None = None,
        cache_key: Hashable = None,
        on_ids: Callable[[tuple[int, ...]], None] | None = None,
    ) -> GenerationResult:
        """Greedy continuation of `prompt` (text or token ids). One generation at a time per runtime:
        a second caller waits; servers cancel the running one first via its `cancel` event.
        `on_token(n)` is called after each new token with the count so far. `cache_key` (e.g. the
        document's URI) names the prefix-cache entry this request replaces; any entry may serve it.
        `on_ids(ids)` is called after each new token with all new ids so far (on the generating thread)."""
        ids = self.encode(prompt) if isinstance(prompt, str) else list(prompt)
        with self._generate_lock:
            return generate(
                self.model,
                self.tokenizer,
                ids,
                options or GenerationOptions(),
                device=self.loaded.device,
                num_virtual_tokens=self.num_virtual_tokens,
                cancel=cancel,
                on_token=on_token,
                prefix_cache=self.prefix_cache,
                cache_key=cache_key,
                on_ids=on_ids,
            )

    def generate_batch(
        self,
        prompts: Sequence[str | Sequence[int]],
        options: GenerationOptions | None = None,
        cancel: threading.Event | None = None,
    ) -> list[GenerationResult]:
        """Greedy continuations of several prompts (text or token ids) in one left-padded batch, the
        soft prompt first in every row; results in input order, each what `generate` gives for that
        prompt alone (token for token in float32; see core/batched_decoding for bf16).

        A prompt that cannot be generated (empty, or too long for the context with the soft prompt
        and max_new_tokens) does not fail the batch: its result has `error` (one line) and
        stop_reason "error"; bad `options` raise InputError. wall_seconds/cpu_seconds of the whole
        batch are apportioned to rows by each row's share of the positions computed (its prompt,
        one per decoding step it was still in); prompt_tokens, new_tokens and
        stop_reason are exact per row. A set `cancel` stops every unfinished row between forward
        passes (stop_reason "cancelled"). The prefix cache is neither read nor filled. Group and
        order prompts with `greencoder.core.batched_generation.plan_batches` to waste little padding."""
        from greencoder.core.batched_generation import generate_batch

        rows = [self.encode(p) if isinstance(p, str) else list(p) for p in prompts]
        with self._generate_lock:
            return generate_batch(self.model, self.tokenizer, rows, options or GenerationOptions(),
                                  num_virtual_tokens=self.num_virtual_tokens, cancel=cancel)
