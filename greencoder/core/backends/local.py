"""The local backend: the Hugging Face runtime in this process, one prompt at a time or in batches.

The model (and the variant's soft prompt) is loaded on first use, so a caller can create a backend
for a variant that turns out to have nothing left to generate without paying for a load.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from greencoder.core.backends.base import HERE, BackendInfo, PromptOutcome
from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.generation import GenerationOptions
from greencoder.core.model_loading import ModelSettings
from greencoder.core.runtime import Runtime


class LocalBackend:
    """`Runtime` behind the backend interface. `batch_size > 1` uses `Runtime.generate_batch`
    (left-padded batches, prompts sorted by length so little padding is wasted)."""

    def __init__(self, settings: ModelSettings, threads: int | None = None, batch_size: int = 1,
                 runtime: Runtime | None = None):
        if batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}")
        if batch_size > 1 and not hasattr(Runtime, "generate_batch"):
            raise InputError("--batch-size above 1 needs batched generation, which this build does not have")
        self.settings = settings
        self.threads = threads
        self.batch_size = batch_size
        self._runtime = runtime

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            self._runtime = Runtime.load(self.settings, self.threads)
        return self._runtime

    def describe(self) -> BackendInfo:
        info = self.runtime.info()
        return BackendInfo("local", info.model, info.adapter, HERE, info.device, info.threads)

    def generate(self, prompts: Sequence[str], options: GenerationOptions) -> Iterator[PromptOutcome]:
        runtime = self.runtime
        if self.batch_size == 1:
            for index, prompt in enumerate(prompts):
                yield self._one(runtime, index, prompt, options)
            return
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            try:
                results = runtime.generate_batch([prompts[i] for i in chunk], options)
            except GreencoderError:  # one prompt of the batch is at fault: find it, keep the others
                for index in chunk:
                    yield self._one(runtime, index, prompts[index], options)
                continue
            for index, result in zip(chunk, results, strict=True):
                yield PromptOutcome(index, result)

    @staticmethod
    def _one(runtime: Runtime, index: int, prompt: str, options: GenerationOptions) -> PromptOutcome:
        try:
            return PromptOutcome(index, runtime.generate(prompt, options))
        except GreencoderError as exc:  # e.g. a prompt longer than the model's context
            return PromptOutcome(index, error=str(exc))

    def close(self) -> None:
        self._runtime = None
