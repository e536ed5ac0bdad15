"""One interface for every way greencoder turns prompts into code (EvalPlus's providers are the model).

Evaluation and the language server hold a `GenerationBackend` and never ask where the model runs:
- `local`: the Hugging Face runtime in this process (energy spent here, measured or estimated here);
- `openai`: an OpenAI-compatible `/v1/completions` endpoint (vLLM, llama.cpp's server, Ollama, TGI,
  `transformers serve`): energy is spent elsewhere, and is not measured here.

`generate` yields one `PromptOutcome` per prompt as each finishes (in any order: an endpoint answers
concurrent requests out of order), so a caller writes each result to disk the moment it exists and
a failure part-way loses nothing that had finished. A problem with one prompt (longer than the
model's context, refused by the endpoint) is that prompt's `error`; a problem with the backend itself
(a dead endpoint) raises `BackendError` after the prompts that did finish were yielded.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

from greencoder.core.errors import GreencoderError
from greencoder.core.generation import GenerationOptions, GenerationResult

EnergyPlace = Literal["here", "elsewhere"]
HERE: EnergyPlace = "here"
ELSEWHERE: EnergyPlace = "elsewhere"


class BackendError(GreencoderError):
    """The backend as a whole cannot generate (endpoint unreachable, refusing every request, soft prompt
    unsupported there); one line says why."""


@dataclass(frozen=True)
class BackendInfo:
    """What generates, for logs, result records and the server's status."""

    kind: str
    """"local" or "openai"."""
    model: str
    adapter: str | None
    energy: EnergyPlace
    """Where the generation's energy is spent: "here" (this process: metered here) or "elsewhere"
    (an endpoint's hardware: not measured here)."""
    device: str
    """Where the model runs: "cpu", "cuda:0", ... or the endpoint's URL."""
    threads: int | None = None
    endpoint: str | None = None


@dataclass
class PromptOutcome:
    """The result for prompts[index], or why that prompt could not be generated."""

    index: int
    result: GenerationResult | None = None
    error: str | None = None
    reported: dict = field(default_factory=dict)
    """What an endpoint said about the request (its `usage` tokens, `finish_reason`, model id); empty locally."""
    share: float = 1.0
    """This prompt's share of the cost of the work that produced it (a batch: its rows share one
    metered interval, split by `share`; 1.0 when generated alone)."""
    closes_interval: bool = True
    """The last outcome of that work: a meter interval covering it can be stopped now (rows of a batch
    before the last say False)."""


@runtime_checkable
class GenerationBackend(Protocol):
    def describe(self) -> BackendInfo:
        """The model and where it runs (a local backend loads its model here, on first use)."""

    def generate(self, prompts: Sequence[str], options: GenerationOptions) -> Iterator[PromptOutcome]:
        """Greedy completions of `prompts`, yielded as each finishes."""

    def close(self) -> None:
        """Free the model or the connections."""
