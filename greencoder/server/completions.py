"""Completions for editors: at most one generation per document, kept only while it is wanted.

A fast typist sends a request per keystroke. Each request first waits the debounce; a newer
request for the same document, an edit of it, or `$/cancelRequest` answers the older request with
RequestCancelled (-32800), not with an empty list that would look like "nothing to suggest" (see
`cancellation`), and stops its generation within a token, with one exception (see `in_flight`):
while the characters typed at the cursor match what the running generation has produced so far,
it keeps running and the newer request is answered from it, less the typed characters.
Generation runs on one worker thread (the model is one), so the event loop keeps answering while
the model works; everything that scales with the document (finding the cursor's offset, building
the prompt, cleaning the text) runs there too, and all of it is charged to the completion.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Callable

from greencoder.core.backends.base import ELSEWHERE
from greencoder.core.completion import CompletionSettings, complete_at
from greencoder.core.languages import Language
from greencoder.core.meters.base import RunUsage
from greencoder.core.prompt import INSTRUCTION
from greencoder.server.cancellation import (
    CANCELLED,
    EDITED,
    SUPERSEDED,
    CancelToken,
    Cancellations,
    raise_if_cancelled,
)
from greencoder.server.documents import offset_at
from greencoder.server.in_flight import InFlight
from greencoder.server.ledger import EnergyLedger
from greencoder.server.model_host import ModelHost
from greencoder.server.power_policy import PowerPolicy, PowerWatch
from greencoder.server.settings import ServerSettings
from greencoder.server.suggestions import SuggestionMemory
from greencoder.server.typing_rhythm import TypingRhythm

NOT_COVERED = object()
"""An adopted generation ended before the characters typed along it: generate anew."""


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
    document on one worker thread (adopted by newer requests typing along it), everything charged to
    the ledger once.

    `reuse` False turns off every reuse this service does (typed-ahead answers, adopting a running
    generation; the runtime's prefix cache is the runtime's own switch), for benchmarks. `sleep` is
    how the debounce waits (a benchmark replays hours of typing on a virtual clock)."""

    def __init__(self, host: ModelHost, ledger: EnergyLedger, settings: Callable[[], ServerSettings],
                 meter: Callable[[], MeterChoice], cancellations: Cancellations | None = None,
                 power: PowerWatch | None = None, rhythm: TypingRhythm | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, reuse: bool = True):
        self.host = host
        self.ledger = ledger
        self.settings = settings
        self.meter = meter
        self.cancellations = cancellations or Cancellations()
        self.power = power or PowerWatch()
        self.rhythm = rhythm or TypingRhythm()
        self.sleep = sleep
        self.reuse = reuse
        self.memory = SuggestionMemory()
        self._flights: dict[str, InFlight] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greencoder-generate")

    def policy(self) -> PowerPolicy:
        return self.power.policy(self.settings().on_battery)

    def in_flight(self, key: str) -> InFlight | None:
        """The generation running (or finished, not yet answered) for document `key`."""
        return self._flights.get(key)

    async def suggest(self, request: CursorRequest) -> Suggestion | None:
        """The suggestion at the cursor, or None (model not ready, held back on battery, nothing to
        add). Raises RequestCancelled when superseded, edited away or cancelled."""
        runtime = self.host.runtime
        if runtime is None:
            return None
        settings = self.settings()
        offset = offset_at(request.text, request.line, request.character, request.codec)
        continued = self.memory.continuation(request.key, request.text, offset) if self.reuse else None
        if continued is not None:  # typing along the suggestion on screen: its rest, no generation
            shown, rest = continued
            self.ledger.add_shown(shown.id, len(shown.text))  # counted once, by whichever answer shows it first
            self.ledger.add_typed_ahead()
            return Suggestion(rest, shown.multiline, 0, 0.0, 0.0, 0.0, "none", "none", "typed ahead", 0, shown.id,
                              len(shown.text) - len(rest))
        policy = self.policy()
        if not policy.allows(request.explicit):
            return None
        settings = policy.apply(settings)
        plan = (settings, policy.single_line)
        waiter = self.cancellations.begin(("request", request.key))  # the older request's answer is stale
        try:
            flight = self._flights.get(request.key)
            if flight is not None:
                typed = flight.typed_at(request.text, offset) if self.reuse and flight.plan == plan else None
                if typed is not None and flight.matches(typed):
                    flight.typed = max(flight.typed, typed, key=len)
                    answer = await self._answer(flight, waiter, request, offset, adopted=True)
                    if answer is not NOT_COVERED:
                        return answer
                else:
                    self._stop(flight, SUPERSEDED)
            wait = self.rhythm.wait_seconds(request.key, settings.debounce_ms, policy.debounce_factor)
            if wait > 0:
                await self.sleep(wait)
            raise_if_cancelled(waiter)
            flight = self._start(runtime, replace(request, offset=offset), settings, policy.single_line, plan)
            answer = await self._answer(flight, waiter, request, offset, adopted=False)
            return None if answer is NOT_COVERED else answer
        finally:
            self.cancellations.end(("request", request.key), waiter)

    def document_changed(self, key: str, text: str | None) -> None:
        """An edit of document `key` (now `text`; None: unknown): answers for the old text are stale;
        its generation keeps running only when the edit typed characters it is producing at its cursor."""
        self.cancellations.cancel(("request", key), EDITED)
        flight = self._flights.get(key)
        if flight is None:
            return
        typed = flight.typed_at(text) if self.reuse and text is not None else None
        if typed is None or not flight.matches(typed):
            self._stop(flight, EDITED)
        else:
            flight.typed = typed

    def forget(self, key: str) -> None:
        """The document closed: its requests, generation, suggestion, rhythm and cached context go
        (the cache entry on the generation worker, after any generation still running there)."""
        self.cancellations.cancel(("request", key))
        flight = self._flights.get(key)
        if flight is not None:
            self._stop(flight, CANCELLED)
        self.memory.forget(key)
        self.rhythm.forget(key)
        runtime = self.host.runtime
        if runtime is not None and hasattr(runtime, "discard_cached"):
            self._executor.submit(runtime.discard_cached, key)

    def _start(self, runtime, request: CursorRequest, settings: ServerSettings, single_line: bool, plan) -> InFlight:
        previous = self._flights.pop(request.key, None)
        if previous is not None:
            self._stop(previous, SUPERSEDED)
        token = self.cancellations.begin(("generation", request.key))
        flight = InFlight(request.key, request.text, request.offset, plan, token, runtime.tokenizer)
        flight.future = asyncio.get_running_loop().run_in_executor(
            self._executor, self._generate, runtime, request, settings, token, single_line, flight.observe)
        flight.future.add_done_callback(lambda future: self._finished(flight, future))
        self._flights[request.key] = flight
        return flight

    def _finished(self, flight: InFlight, future: asyncio.Future) -> None:
        """On the event loop when the generation ends, whether or not a request still waits for it."""
        self.cancellations.end(("generation", flight.key), flight.token)
        failed = future.cancelled() or future.exception() is not None
        self._settle(flight, None if failed else future.result())

    def _stop(self, flight: InFlight, reason: str) -> None:
        flight.token.cancel(reason)
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]

    async def _answer(self, flight: InFlight, waiter: CancelToken, request: CursorRequest, offset: int,
                      adopted: bool):
        """Wait for `flight` (or for `waiter`'s cancellation), then answer `request` from it: its
        suggestion less what was typed along, or NOT_COVERED when it ended before that."""
        flight.waiters += 1
        try:
            await _until_done_or_cancelled(flight.future, waiter)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and flight.running and not flight.typed:
                self._stop(flight, CANCELLED)  # nobody wants it: $/cancelRequest stops the model, not just the wait
        raise_if_cancelled(waiter)
        suggestion = flight.future.result()
        self._settle(flight, suggestion)
        raise_if_cancelled(flight.token)
        shown = flight.shown
        if shown is None:
            return NOT_COVERED if adopted else None
        typed = request.text[flight.anchor:offset]
        rest = shown.text[len(typed):]
        if not shown.text.startswith(typed) or not rest.strip():
            return NOT_COVERED
        self.ledger.add_shown(shown.id, len(shown.text))
        if adopted:
            self.ledger.add_adopted()
        return replace(suggestion, text=rest, id=shown.id, start=len(typed))

    def _settle(self, flight: InFlight, suggestion: Suggestion | None) -> None:
        """Once per finished generation: the suggestion goes to the typed-ahead memory (unless the
        generation was stopped), so typing along it later costs no generation either."""
        if flight.settled:
            return
        flight.settled = True
        if self._flights.get(flight.key) is flight:
            del self._flights[flight.key]
        if suggestion is not None and not flight.token.is_set():
            flight.shown = self.memory.remember(flight.key, flight.document, flight.anchor, suggestion.text,
                                                suggestion.multiline)

    def _generate(self, runtime, request: CursorRequest, settings: ServerSettings, token: CancelToken,
                  single_line: bool = False, on_ids=None) -> Suggestion | None:
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
                                                single_line=single_line), token, cache_key=request.key, on_ids=on_ids)
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


async def _until_done_or_cancelled(future: asyncio.Future, token: CancelToken) -> None:
    """Wait for `future` without cancelling it when this wait is cancelled ($/cancelRequest of one of
    several requests sharing a generation), and return early once `token` is cancelled."""
    loop = asyncio.get_running_loop()
    woken = loop.create_future()

    def wake() -> None:
        loop.call_soon_threadsafe(lambda: woken.done() or woken.set_result(None))

    token.when_cancelled(wake)
    try:
        await asyncio.wait({future, woken}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if not woken.done():
            woken.cancel()
