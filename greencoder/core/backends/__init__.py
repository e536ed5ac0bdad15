"""Generation backends behind one interface (see base.py): `open_backend` builds the one asked for."""

from __future__ import annotations

from dataclasses import dataclass

from greencoder.core.backends.base import (
    ELSEWHERE,
    HERE,
    BackendError,
    BackendInfo,
    GenerationBackend,
    PromptOutcome,
)
from greencoder.core.errors import InputError

BACKENDS = ("local", "openai")

__all__ = ["BACKENDS", "ELSEWHERE", "HERE", "BackendError", "BackendInfo", "BackendSettings", "GenerationBackend",
           "PromptOutcome", "check_backend", "open_backend"]


@dataclass(frozen=True)
class BackendSettings:
    """How to generate: `local` (model, device, dtype, threads, batch size) or `openai` (an endpoint)."""

    kind: str = "local"
    model: str | None = None
    """local: the base model to load; openai: the endpoint's model name (None: the one it lists)."""
    device: str = "auto"
    dtype: str = "auto"
    threads: int | None = None
    batch_size: int = 1
    endpoint: str | None = None
    api_key_env: str | None = None
    concurrency: int = 4
    request_timeout: float = 600.0
    retries: int = 4
    endpoint_prompt_embeds: bool = False
    embedding_model: str | None = None
    """openai with a soft prompt: the local copy of the endpoint's base model, whose token embeddings
    the soft prompt is joined to (None: `model`)."""

    def endpoint_settings(self):
        from greencoder.core.backends.openai import EndpointSettings

        if not self.endpoint:
            raise InputError("--backend openai needs --endpoint URL (e.g. http://127.0.0.1:8000/v1)")
        return EndpointSettings(self.endpoint, self.api_key_env, self.model, self.concurrency, self.request_timeout,
                                self.retries, prompt_embeds=self.endpoint_prompt_embeds)


def check_backend(settings: BackendSettings, adapter: str | None) -> None:
    """Refuse, before anything is generated, a combination that cannot work (one line says why)."""
    if settings.kind not in BACKENDS:
        raise InputError(f"--backend {settings.kind!r}: choose {' or '.join(BACKENDS)}")
    if settings.kind == "local":
        if settings.endpoint:
            raise InputError("--endpoint is for --backend openai")
        if not settings.model:
            raise InputError("--backend local needs --model")
        return
    endpoint = settings.endpoint_settings()
    if settings.batch_size != 1:
        raise InputError("--batch-size is for --backend local; an endpoint batches itself (use --concurrency)")
    if adapter is not None:
        from greencoder.core.backends.openai import refusal

        if not settings.endpoint_prompt_embeds:
            raise BackendError(refusal(endpoint, adapter))
        if not (settings.embedding_model or settings.model):
            raise InputError(f"the soft prompt {adapter} on an endpoint needs --model: the local copy of the "
                             "endpoint's base model, whose token embeddings the soft prompt is joined to")


def open_backend(settings: BackendSettings, adapter: str | None = None) -> GenerationBackend:
    """The backend for one model variant (its soft prompt `adapter`, if any); checked by check_backend."""
    check_backend(settings, adapter)
    if settings.kind == "local":
        from greencoder.core.backends.local import LocalBackend
        from greencoder.core.model_loading import ModelSettings

        return LocalBackend(ModelSettings(settings.model, adapter, settings.device, settings.dtype), settings.threads,
                            settings.batch_size)
    from greencoder.core.backends.openai import OpenAIBackend

    embedder = None
    if adapter is not None:
        from greencoder.core.backends.embeddings import SoftPromptEmbedder

        embedder = SoftPromptEmbedder(settings.embedding_model or settings.model, adapter, settings.threads)
    return OpenAIBackend(settings.endpoint_settings(), adapter, embedder)
