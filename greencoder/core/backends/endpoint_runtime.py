"""An endpoint in the shape of `Runtime`, so editor completions (`complete_at`) run on it unchanged.

The editor context is built here, with the endpoint model's tokenizer (a local copy: `--model`, or
the name the endpoint lists, loaded the Hugging Face way), within its context length (the endpoint's
`max_model_len` where it says, else the model's config). The token ids are turned back into text
(special tokens such as FIM markers kept as text, which the server's tokenizer reads as the same
tokens) and sent through the OpenAI backend. Generation energy is spent at the endpoint: `energy`
says "elsewhere", and the server's ledger keeps it apart from anything measured here.

Limits, stated: a request is not streamed, so cancelling stops waiting for the answer but not the
endpoint's work on it; FIM end tokens other than EOS are sent as stop strings, which only servers
that return special tokens as text can match.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import replace

from greencoder.core.backends.base import ELSEWHERE, BackendError, BackendInfo
from greencoder.core.backends.openai import EndpointSettings, OpenAIBackend, refusal
from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.generation import (
    DEFAULT_CONTEXT,
    STOP_CANCELLED,
    GenerationOptions,
    GenerationResult,
    config_context_limit,
)
from greencoder.core.runtime import RuntimeInfo


class EndpointRuntime:
    energy = ELSEWHERE

    def __init__(self, backend: OpenAIBackend, tokenizer, context_tokens: int, model: str):
        self.backend = backend
        self.tokenizer = tokenizer
        self.context_tokens = context_tokens
        self.model_name = model
        self.num_virtual_tokens = 0 if backend.embedder is None else self._virtual_tokens()
        with_special = tokenizer("x", add_special_tokens=True)["input_ids"]
        without = tokenizer("x", add_special_tokens=False)["input_ids"]
        self.leading_special_ids = (list(with_special[: len(with_special) - len(without)])
                                    if len(with_special) > len(without) and with_special[-len(without):] == without else [])
        self.last_reported: dict = {}

    def _virtual_tokens(self) -> int:
        _, virtual = self.backend.embedder("x")
        return virtual

    def describe(self) -> BackendInfo:
        return self.backend.describe()

    def info(self) -> RuntimeInfo:
        return RuntimeInfo(model=self.model_name, adapter=self.backend.adapter, device=self.backend.settings.base,
                           dtype="(endpoint)", threads=0, num_virtual_tokens=self.num_virtual_tokens,
                           context_tokens=self.context_tokens)

    def text_of(self, ids: Sequence[int]) -> str:
        """Token ids as the text the server's tokenizer turns back into them (its own BOS re-added)."""
        ids = list(ids)
        lead = self.leading_special_ids
        if lead and ids[: len(lead)] == lead:
            ids = ids[len(lead):]
        return self.tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    def generate(self, prompt: str | Sequence[int], options: GenerationOptions | None = None,
                 cancel: threading.Event | None = None, on_token: Callable[[int], None] | None = None,
                 cache_key: Hashable = None, on_ids: Callable[[tuple[int, ...]], None] | None = None) -> GenerationResult:
        """As Runtime.generate, at the endpoint. Requests are not streamed, so `on_token`/`on_ids` hear
        nothing while it runs (a running endpoint generation is never adopted by typing along it)."""
        options = options or GenerationOptions()
        if cancel is not None and cancel.is_set():
            return GenerationResult("", 0, self.num_virtual_tokens, 0, 0.0, 0.0, STOP_CANCELLED)
        text = prompt if isinstance(prompt, str) else self.text_of(prompt)
        if options.extra_eos_token_ids:
            ends = tuple(t for t in self.tokenizer.convert_ids_to_tokens(list(options.extra_eos_token_ids)) if t)
            options = replace(options, stop_sequences=(*options.stop_sequences, *ends), extra_eos_token_ids=())
        outcome = self.backend.complete_one(text, options)
        if outcome.result is None:
            raise InputError(outcome.error or "the endpoint gave no completion")
        self.last_reported = outcome.reported
        result = outcome.result
        if cancel is not None and cancel.is_set():
            result.stop_reason = STOP_CANCELLED
        return result

    def close(self) -> None:
        self.backend.close()


def open_endpoint_runtime(endpoint: EndpointSettings, model: str | None = None, adapter: str | None = None,
                          threads: int | None = None) -> EndpointRuntime:
    """Probe the endpoint, load its model's tokenizer here, and return the runtime-shaped client;
    a GreencoderError with one line when any of it cannot be done."""
    embedder = None
    if adapter is not None:
        if not endpoint.prompt_embeds:
            raise BackendError(refusal(endpoint, adapter))
        from greencoder.core.backends.embeddings import SoftPromptEmbedder

        if model is None:
            raise InputError(f"the soft prompt {adapter} on an endpoint needs --model: the local copy of the "
                             "endpoint's base model, whose token embeddings the soft prompt is joined to")
        embedder = SoftPromptEmbedder(model, adapter, threads)
    backend = OpenAIBackend(replace(endpoint, model=model) if model else endpoint, adapter, embedder)
    name = backend.probe()
    source = model or name
    try:
        from transformers import AutoConfig, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot load the tokenizer of {source!r} to build prompts for {endpoint.base} "
                         f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): pass --model naming a "
                         "local copy or hub id of the endpoint's model") from None
    listed = backend.listed.get("max_model_len")
    limit = listed if isinstance(listed, int) and listed > 0 else None
    if limit is None:
        try:
            limit = config_context_limit(AutoConfig.from_pretrained(source))
        except (OSError, ValueError):
            limit = None
    tokenizer_limit = getattr(tokenizer, "model_max_length", None)
    if limit is None and isinstance(tokenizer_limit, int) and 0 < tokenizer_limit < 10_000_000:
        limit = tokenizer_limit
    try:
        return EndpointRuntime(backend, tokenizer, limit or DEFAULT_CONTEXT, name)
    except GreencoderError:
        backend.close()
        raise
