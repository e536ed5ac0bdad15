"""Completions for editors: at most one generation per document, cancelled by anything newer.

A fast typist sends a request per keystroke. Each request first waits the debounce; a newer
request for the same document, or `$/cancelRequest`, sets the running request's cancel event, and
the runtime stops generating within a token. Generation runs on one worker thread (the model is
one), so the event loop keeps answering while the model works.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

from greencoder.core.completion import CompletionSettings, complete_at
from greencoder.core.languages import Language
from greencoder.core.meters.base import RunUsage
from greencoder.core.prompt import INSTRUCTION
from greencoder.server.ledger import EnergyLedger
from greencoder.server.model_host import ModelHost
from greencoder.server.settings import ServerSettings


@dataclass(frozen=True)
class Suggestion:
    text: str
    multiline: bool
    tokens: int
    milliseconds: float
    joules: float
    energy_kind: str
    meter: str
    stop_reason: str

    def detail(self) -> str:
        return (f"greencoder · {self.tokens} tokens · {self.milliseconds:.0f} ms · {self.joules:.3g} J "
                f"({self.energy_kind}{', from CPU time' if self.energy_kind == 'estimated' else ''})")

    def data(self) -> dict:
        return {"tokens": self.tokens, "milliseconds": round(self.milliseconds, 1), "joules": self.joules,
                "energyKind": self.energy_kind, "meter": self.meter, "stopReason": self.stop_reason}


def with_instruction(text: str, offset: int, language: Language) -> tuple[str, int]:
    """The document with the efficiency instruction as a first comment line (offset shifted)."""
    line = f"{language.line_comment} {INSTRUCTION}\n"
    return line + text, offset + len(line)


class CompletionService:
    def __init__(self, host: ModelHost, ledger: EnergyLedger, settings: Callable[[], ServerSettings],
                 meter: Callable[[], object]):
        self.host = host
        self.ledger = ledger
        self.settings = settings
        self.meter = meter
        self._active: dict[str, threading.Event] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greencoder-generate")

    def cancel(self, uri: str) -> None:
        event = self._active.pop(uri, None)
        if event is not None:
            event.set()

    async def suggest(self, uri: str, text: str, offset: int, language: Language) -> Suggestion | None:
        """The suggestion at `offset`, or None: model not ready, cancelled, superseded, or nothing to add."""
        runtime = self.host.runtime
        if runtime is None:
            return None
        settings = self.settings()
        self.cancel(uri)  # a newer request for the document supersedes the running one
        event = threading.Event()
        self._active[uri] = event
        try:
            if settings.debounce_ms:
                await asyncio.sleep(settings.debounce_ms / 1000)
            if event.is_set():
                return None
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, self._generate, runtime, text, offset, language, settings, event)
            try:
                return await future
            except asyncio.CancelledError:
                event.set()  # $/cancelRequest: stop the model, not just the wait
                raise
        finally:
            if self._active.get(uri) is event:
                del self._active[uri]

    def _generate(self, runtime, text: str, offset: int, language: Language, settings: ServerSettings,
                  event: threading.Event) -> Suggestion | None:
        if event.is_set():
            return None
        if settings.instruction:
            text, offset = with_instruction(text, offset, language)
        meter = self.meter()
        session = meter.start()
        result = complete_at(runtime, text, offset, language,
                             CompletionSettings(settings.max_new_tokens, settings.context_tokens, use_fim=settings.fim), event)
        generation = result.generation
        reading = session.stop(RunUsage(cpu_seconds=generation.cpu_seconds, wall_seconds=generation.wall_seconds,
                                        cpu_source="rusage"))
        cancelled = generation.stop_reason == "cancelled"
        self.ledger.add_completion(generation.new_tokens, generation.wall_seconds, reading.joules, reading.kind, cancelled)
        if cancelled:
            return None
        if not result.text.strip():
            return None
        return Suggestion(result.text, result.multiline, generation.new_tokens, generation.wall_seconds * 1000,
                          reading.joules, reading.kind, reading.source, generation.stop_reason)
