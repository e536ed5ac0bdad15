"""The model behind completions: loaded in the background, swapped when settings change.

Loading a code LLM takes seconds to minutes; the server must answer from the first request on.
`ModelHost.load` starts a thread and returns at once; until the runtime is ready, `runtime` is None
and completion requests get an empty answer. A failed load (wrong path, corrupt adapter) keeps the
previous runtime, if any, and reports the one-line reason.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Callable

from greencoder.core.errors import GreencoderError
from greencoder.server.settings import ServerSettings


@dataclass(frozen=True)
class LoadEvent:
    state: str  # "loading", "ready" or "failed"
    message: str
    settings: ServerSettings


Listener = Callable[[LoadEvent], None]


class ModelHost:
    def __init__(self, listener: Listener, warn: Callable[[str], None] | None = None):
        self.listener = listener
        self.warn = warn
        self._runtime = None
        self._loaded_key: tuple | None = None
        self._lock = threading.Lock()
        self._generation = 0  # load attempts, so only the newest one installs its runtime
        self.state = "idle"

    @property
    def runtime(self):
        return self._runtime

    def needs_load(self, settings: ServerSettings) -> bool:
        return settings.model_key != self._loaded_key

    def load(self, settings: ServerSettings) -> threading.Thread:
        """Load `settings`' model and adapter in a background thread."""
        with self._lock:
            self._generation += 1
            attempt = self._generation
        self.state = "loading"
        thread = threading.Thread(target=self._load, args=(settings, attempt), name="greencoder-model-load", daemon=True)
        thread.start()
        return thread

    def _load(self, settings: ServerSettings, attempt: int) -> None:
        from greencoder.core.default_model import DEFAULT_MODEL, load_runtime
        from greencoder.core.model_loading import ModelSettings

        model = settings.model or DEFAULT_MODEL
        self.listener(LoadEvent("loading", f"loading {model}" + (f" with soft prompt {settings.adapter}" if settings.adapter else ""), settings))
        try:
            runtime = load_runtime(ModelSettings(model, settings.adapter, settings.device, settings.dtype), settings.threads,
                                   model_given=settings.model is not None, warn=self.warn or (lambda _: None))
        except GreencoderError as exc:
            with self._lock:
                current = attempt == self._generation
            if current:
                self.state = "ready" if self._runtime is not None else "failed"
            self.listener(LoadEvent("failed", str(exc), settings))
            return
        with self._lock:
            if attempt != self._generation:
                return  # a newer load was asked for meanwhile
            self._runtime = runtime
            self._loaded_key = settings.model_key
        self.state = "ready"
        info = runtime.info()
        self.listener(LoadEvent("ready", f"{info.model}{' + ' + info.adapter if info.adapter else ''} ready on {info.device}", settings))
