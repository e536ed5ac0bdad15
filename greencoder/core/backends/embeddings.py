"""Prompt embeddings for a soft prompt on an endpoint: the soft prompt's virtual tokens, then the
prompt's token embeddings, exactly what the local runtime feeds its model.

Computing them needs the base model's token-embedding table and the adapter, so the model is loaded
here, on the CPU (only its embedding layer is used; memory is the model's size, compute is a table
look-up per token). The endpoint must serve the same base model, or the embeddings mean nothing.
"""

from __future__ import annotations

import threading

from greencoder.core.model_loading import ModelSettings


class SoftPromptEmbedder:
    """prompt text -> ((virtual + prompt tokens, hidden) tensor, number of virtual tokens)."""

    def __init__(self, model: str, adapter: str, threads: int | None = None):
        self.settings = ModelSettings(model, adapter, "cpu", "auto")
        self.threads = threads
        self._runtime = None
        self._lock = threading.Lock()

    def _loaded(self):
        with self._lock:
            if self._runtime is None:
                from greencoder.core.runtime import Runtime

                self._runtime = Runtime.load(self.settings, self.threads, reuse=False)
            return self._runtime

    def __call__(self, prompt: str):
        import torch

        runtime = self._loaded()
        ids = torch.tensor([runtime.encode(prompt)])
        with torch.no_grad():
            tokens = runtime.base_model.get_input_embeddings()(ids)[0]
            virtual = runtime.model.get_prompt(batch_size=1)[0].to(tokens.dtype)
        return torch.cat([virtual, tokens], dim=0), int(virtual.shape[0])
