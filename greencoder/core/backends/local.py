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
    (left-padded batches of similar lengths, planned by `plan_batches`); a batch's rows come out
    together, each with its share of the batch's cost for the meter."""

    def __init__(self, settings: ModelSettings, threads: int | None = None, batch_size: int = 1,
                 runtime: Runtime | None = None):
        if batch_size < 1:
            raise InputError(f"--batch-size must be at least 1, got {batch_size}")
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
        from greencoder.core.batched_generation import plan_batches

        encoded = [runtime.encode(prompt) for prompt in prompts]
        for batch in plan_batches([len(ids) for ids in encoded], self.batch_size):
            results = runtime.generate_batch([encoded[i] for i in batch], options)
            cost = sum(r.cpu_seconds for r in results)  # the batch's, apportioned to rows by generate_batch
            for position, (index, result) in enumerate(zip(batch, results, strict=True)):
                share = result.cpu_seconds / cost if cost > 0 else 1.0 / len(results)
                last = position == len(batch) - 1
                if result.error is not None:  # e.g. longer than the context: that row only
                    yield PromptOutcome(index, error=result.error, share=share, closes_interval=last)
                else:
                    yield PromptOutcome(index, result, share=share, closes_interval=last)

    @staticmethod
    def _one(runtime: Runtime, index: int, prompt: str, options: GenerationOptions) -> PromptOutcome:
        try:
            return PromptOutcome(index, runtime.generate(prompt, options))
        except GreencoderError as exc:  # e.g. a prompt longer than the model's context
            return PromptOutcome(index, error=str(exc))

    def close(self) -> None:
        self._runtime = None
