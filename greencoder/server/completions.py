"""Completions for editors: at most one generation per document, cancelled by anything newer.

A fast typist sends a request per keystroke. Each request first waits the debounce; a newer
request for the same document, an edit of it, or `$/cancelRequest` cancels the running one (see
`cancellation`), and the runtime stops generating within a token; the cancelled request is answered
with RequestCancelled (-32800), not with an empty list that would look like "nothing to suggest".
Generation runs on one worker thread (the model is one), so the event loop keeps answering while
the model works; everything that scales with the document (finding the cursor's offset, building
the prompt, cleaning the text) runs there too, and all of it is charged to the completion.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable

from greencoder.core.backends.base import ELSEWHERE
from greencoder.core.completion import CompletionSettings, complete_at
from greencoder.core.languages import Language
from greencoder.core.meters.base import RunUsage
from greencoder.core.prompt import INSTRUCTION
from greencoder.server.cancellation import CancelToken, Cancellations, raise_if_cancelled
from greencoder.server.documents import offset_at
from greencoder.server.ledger import EnergyLedger
from greencoder.server.model_host import ModelHost
from greencoder.server.power_policy import PowerPolicy, PowerWatch
from greencoder.server.settings import ServerSettings
from greencoder.server.suggestions import SuggestionMemory
from greencoder.server.typing_rhythm import TypingRhythm

@dataclass(frozen=True)
class Suggestion:
    text: str
    multiline: bool
    tokens: int
    milliseconds: float
    cpu_seconds: float
    joules: float
    energy_kind: str
    meter: str
    stop_reason: str
    threads: int
    """torch threads of the thread that generated (the `threads` setting, applied there)."""
    id: str = ""
    """The shown suggestion this answers with (its continuations while typing along keep it)."""
    start: int = 0
    """Where this answer begins in that suggestion (characters typed along before it)."""

    def detail(self) -> str:
        if self.energy_kind == ELSEWHERE:
            return f"greencoder · {self.tokens} tokens · {self.milliseconds:.0f} ms · energy spent at the endpoint, not measured"
        return (f"greencoder · {self.tokens} tokens · {self.milliseconds:.0f} ms · {self.joules:.3g} J "
                f"({self.energy_kind}{', from CPU time' if self.energy_kind == 'estimated' else ''})")

    def data(self) -> dict:
        return {"tokens": self.tokens, "milliseconds": round(self.milliseconds, 1), "cpuSeconds": round(self.cpu_seconds, 4),
                "joules": self.joules, "energyKind": self.energy_kind, "meter": self.meter,
                "stopReason": self.stop_reason, "threads": self.threads, "suggestionId": self.id, "suggestionStart": self.start}


@dataclass(frozen=True)
class CursorRequest:
    """A snapshot of what a completion needs, taken on the event loop without scanning the text."""

    key: str
    text: str
    line: int
    character: int
    """In the client's units (UTF-16 by default)."""
    codec: object
    language: Language
    explicit: bool = True
    """Asked for by the user (a key), not triggered by typing: still answered on battery's `explicit`."""
    offset: int | None = None


def with_instruction(text: str, offset: int, language: Language) -> tuple[str, int]:
    """The document with the efficiency instruction as a first comment line (offset shifted)."""
    line = f"{language.line_comment} {INSTRUCTION}\n"
    return line + text, offset + len(line)


def apply_thread_setting(threads: int | None) -> int:
    """Set torch's thread count in the *calling* thread (OpenMP's setting is per thread, so setting it
    in the loading thread does nothing for the generating one); returns the count in force."""
    import torch

    from greencoder.core.threads import default_thread_count

    wanted = threads or default_thread_count()
    if torch.get_num_threads() != wanted:
        torch.set_num_threads(wanted)
    return torch.get_num_threads()


class MeterChoice:
    """The meter completions are charged with, chosen on first use *inside* a completion (choosing
    runs validation busy loops: their CPU time falls in that completion's interval; a measured
    meter's validation energy is added to it once)."""

    def __init__(self, meter_setting: str, watts_per_core: float | None):
        self.key = (meter_setting, watts_per_core)
        self._selected = None
        self._validation_unpaid = True

    @property
    def meter(self):
        if self._selected is None:
            from greencoder.core.meters import select_meter

            self._selected = select_meter(self.key[0], watts_per_core=self.key[1], gpu_workload=True)
        return self._selected.meter

    def take_validation_joules(self, kind: str) -> float:
        if not self._validation_unpaid or self._selected is None:
            return 0.0
        self._validation_unpaid = False
        validation = self._selected.validation
        return validation.joules if validation is not None and validation.kind == kind == "measured" else 0.0


class CompletionService:
    """Suggestions for the editor: typed-ahead answers, debounce, power policy, one generation per
    document on one worker thread, everything charged to the ledger."""

    def __init__(self, host: ModelHost, ledger: EnergyLedger, settings: Callable[[], ServerSettings],
                 meter: Callable[[], MeterChoice], cancellations: Cancellations | None = None,
                 power: PowerWatch | None = None, rhythm: TypingRhythm | None = None):
        self.host = host
        self.ledger = ledger
        self.settings = settings
        self.meter = meter
        self.cancellations = cancellations or Cancellations()
        self.power = power or PowerWatch()
        self.rhythm = rhythm or TypingRhythm()
        self.memory = SuggestionMemory()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greencoder-generate")

    def policy(self) -> PowerPolicy:
        return self.power.policy(self.settings().on_battery)

    async def suggest(self, request: CursorRequest) -> Suggestion | None:
        """The suggestion at the cursor, or None (model not ready, held back on battery, nothing to
        add). Raises RequestCancelled when superseded, edited away or cancelled."""
        runtime = self.host.runtime
        if runtime is None:
            return None
        settings = self.settings()
        offset = offset_at(request.text, request.line, request.character, request.codec)
        continued = self.memory.continuation(request.key, request.text, offset)
        if continued is not None:  # typing along the suggestion on screen: its rest, no generation
            shown, rest = continued
            self.ledger.add_typed_ahead()
            return Suggestion(rest, shown.multiline, 0, 0.0, 0.0, 0.0, "none", "none", "typed ahead", 0, shown.id,
                              len(shown.text) - len(rest))
        policy = self.policy()
        if not policy.allows(request.explicit):
            return None
        settings = policy.apply(settings)
        key = ("generation", request.key)
        token = self.cancellations.begin(key)
        try:
            wait = self.rhythm.wait_seconds(request.key, settings.debounce_ms, policy.debounce_factor)
            if wait > 0:
                await asyncio.sleep(wait)
            raise_if_cancelled(token)
            future = asyncio.get_running_loop().run_in_executor(
                self._executor, self._generate, runtime, replace(request, offset=offset), settings, token,
                policy.single_line)
            try:
                suggestion = await future
            except asyncio.CancelledError:
                token.cancel()  # $/cancelRequest: stop the model, not just the wait
                raise
            raise_if_cancelled(token)
            if suggestion is not None:
                shown = self.memory.remember(request.key, request.text, offset, suggestion.text, suggestion.multiline)
                suggestion = replace(suggestion, id=shown.id)
                self.ledger.add_shown(shown.id, len(suggestion.text))
            return suggestion
        finally:
            self.cancellations.end(key, token)

    def forget(self, key: str) -> None:
        """The document closed: its suggestion, rhythm and cached context go (the cache entry on the
        generation worker, after any generation still running there)."""
        self.memory.forget(key)
        self.rhythm.forget(key)
        runtime = self.host.runtime
        if runtime is not None and hasattr(runtime, "discard_cached"):
            self._executor.submit(runtime.discard_cached, key)

    def _generate(self, runtime, request: CursorRequest, settings: ServerSettings, token: CancelToken,
                  single_line: bool = False) -> Suggestion | None:
        if token.is_set():
            return None
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        threads = apply_thread_setting(settings.threads)
        selected = self.meter()  # the first call validates meters (a busy loop): charged here too
        session = selected.meter.start()
        text = request.text
        offset = request.offset if request.offset is not None else offset_at(text, request.line, request.character,
                                                                            request.codec)
        if settings.instruction:
            text, offset = with_instruction(text, offset, request.language)
        result = complete_at(runtime, text, offset, request.language,
                             CompletionSettings(settings.max_new_tokens, settings.context_tokens, use_fim=settings.fim,
                                                single_line=single_line), token, cache_key=request.key)
        generation = result.generation
        wall, cpu = time.perf_counter() - wall_start, time.process_time() - cpu_start
        reading = session.stop(RunUsage(cpu_seconds=cpu, wall_seconds=wall, cpu_source="rusage"))
        joules = reading.joules + selected.take_validation_joules(reading.kind)
        cancelled = generation.stop_reason == "cancelled" or token.is_set()
        elsewhere = getattr(runtime, "energy", "here") == ELSEWHERE
        if elsewhere:  # the model ran at the endpoint: what is metered here is this server's own work only
            self.ledger.add_endpoint_completion(generation.new_tokens, wall, joules, reading.kind, cancelled,
                                                cpu_seconds=cpu, endpoint=runtime.info().device)
        else:
            self.ledger.add_completion(generation.new_tokens, wall, joules, reading.kind, cancelled, cpu_seconds=cpu,
                                       prefill_tokens=getattr(generation, "prefill_tokens", generation.prompt_tokens),
                                       prefill_tokens_saved=getattr(generation, "reused_tokens", 0))
        if cancelled or not result.text.strip():
            return None
        if elsewhere:
            return Suggestion(result.text, result.multiline, generation.new_tokens, wall * 1000, cpu, 0.0, ELSEWHERE,
                              "endpoint", generation.stop_reason, threads)
        return Suggestion(result.text, result.multiline, generation.new_tokens, wall * 1000, cpu, joules, reading.kind,
                          reading.source, generation.stop_reason, threads)
