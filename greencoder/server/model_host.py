"""The model behind completions: loaded in the background, one load at a time, newest wish wins.

Loading a code LLM takes seconds to minutes and the server must answer from the first request on,
so `ModelHost.want(settings)` returns at once and one loader thread works through the wishes:
- loads never overlap (overlapping loads multiplied memory and left progress that never ended);
- only the model wanted *now* is installed: switching tiny -> medium -> tiny quickly serves tiny,
  whatever order the loads would have finished in;
- asking again for the model being loaded or already loaded starts nothing (a client sending
  `initialized` eight times loads once);
- a failed load keeps the previous runtime serving, and the wish falls back to what is loaded, so
  the server can restore the last good settings.
Events go to `listener`: "loading" for every attempt, then exactly one "ready" or "failed" when the
loader has nothing left to do.
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
    settings: ServerSettings | None
    """For "failed": the settings whose model could not be loaded."""


Listener = Callable[[LoadEvent], None]
Loader = Callable[[ServerSettings, Callable[[str], None]], object]


def load_runtime_for(settings: ServerSettings, warn: Callable[[str], None]):
    """The default loader: the model and adapter `settings` name (the default model if none)."""
    from greencoder.core.default_model import DEFAULT_MODEL, load_runtime
    from greencoder.core.model_loading import ModelSettings

    return load_runtime(ModelSettings(settings.model or DEFAULT_MODEL, settings.adapter, settings.device, settings.dtype),
                        settings.threads, model_given=settings.model is not None, warn=warn)


def endpoint_loader(endpoint) -> Loader:
    """A loader serving completions from an OpenAI-compatible endpoint (`greencoder serve --endpoint`):
    `settings.model` names the endpoint's model (None: the one it lists) and the tokenizer to build
    prompts with; a soft prompt is sent as prompt embeddings where the endpoint was declared to take
    them, and refused (the load fails with that line) where not."""

    def load(settings: ServerSettings, warn: Callable[[str], None]):
        from greencoder.core.backends.endpoint_runtime import open_endpoint_runtime

        return open_endpoint_runtime(endpoint, settings.model, settings.adapter, settings.threads)

    return load


class ModelHost:
    def __init__(self, listener: Listener, warn: Callable[[str], None] | None = None, loader: Loader | None = None):
        self.listener = listener
        self.warn = warn or (lambda _message: None)
        self.loader = loader or load_runtime_for
        self._runtime = None
        self._loaded: ServerSettings | None = None
        self._wanted: ServerSettings | None = None
        self._thread: threading.Thread | None = None
        self._condition = threading.Condition()
        self.state = "idle"

    @property
    def runtime(self):
        return self._runtime

    @property
    def loaded_settings(self) -> ServerSettings | None:
        """The settings of the runtime now serving (None before the first successful load)."""
        return self._loaded

    def want(self, settings: ServerSettings) -> bool:
        """Serve `settings`' model from now on. Returns True when this starts or redirects a load."""
        with self._condition:
            previous = self._wanted
            self._wanted = settings
            if previous is not None and previous.model_key == settings.model_key and self._thread is not None:
                return False  # already on its way
            if self._thread is None and self._loaded is not None and self._loaded.model_key == settings.model_key:
                self._loaded = settings
                return False  # already serving
            if self._thread is None:
                self.state = "loading"
                self._thread = threading.Thread(target=self._work, name="greencoder-model-load", daemon=True)
                self._thread.start()
            return True

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the loader is idle (tests and the CLI); True if it is."""
        with self._condition:
            return self._condition.wait_for(lambda: self._thread is None, timeout)

    def _work(self) -> None:
        failure: tuple[ServerSettings, str] | None = None
        while True:
            with self._condition:
                target = self._wanted
                if target is None or (self._loaded is not None and self._loaded.model_key == target.model_key):
                    # The terminal event is sent under the lock, so it always precedes the next
                    # loader's "loading" (listeners only schedule work; they never call back here).
                    self._thread = None
                    self.state = "ready" if self._runtime is not None else ("failed" if failure else "idle")
                    self.listener(self._terminal_event(failure))
                    self._condition.notify_all()
                    return
            self.listener(LoadEvent("loading", describe(target), target))
            try:
                runtime = self.loader(target, self.warn)
            except GreencoderError as exc:
                with self._condition:
                    if self._wanted is not None and self._wanted.model_key == target.model_key:
                        failure = (target, str(exc))
                        self._wanted = self._loaded  # fall back to what serves (None: nothing)
                continue
            with self._condition:
                if self._wanted is not None and self._wanted.model_key == target.model_key:
                    self._runtime, self._loaded, failure = runtime, target, None
                # else: something else was wanted meanwhile; this runtime is dropped, that one loads

    def _terminal_event(self, failure: tuple[ServerSettings, str] | None) -> LoadEvent:
        if failure is not None:
            return LoadEvent("failed", failure[1], failure[0])
        if self._runtime is None:
            return LoadEvent("failed", "no model loaded", None)
        info = self._runtime.info()
        where = (f"at endpoint {info.device} (its energy is spent there, not measured here)"
                 if getattr(self._runtime, "energy", "here") == "elsewhere" else f"on {info.device}")
        return LoadEvent("ready", f"{info.model}{' + ' + info.adapter if info.adapter else ''} ready {where}",
                         self._loaded)


def describe(settings: ServerSettings) -> str:
    from greencoder.core.default_model import DEFAULT_MODEL

    model = settings.model or DEFAULT_MODEL
    return f"loading {model}" + (f" with soft prompt {settings.adapter}" if settings.adapter else "")
