"""A generation still running while the user types what it is writing is adopted, not restarted.

The tiny model's text is random, so the tests type what it has produced so far: they hold the
generation after a few tokens (an event the generating thread waits on), read what it has written,
type its first characters, and only then let it go on. Everything waits on events; nothing sleeps.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from pygls.exceptions import JsonRpcRequestCancelled
from pygls.workspace import PositionCodec

from greencoder.core.languages import PYTHON
from greencoder.server.cancellation import EDITED, SUPERSEDED
from greencoder.server.completions import CompletionService, CursorRequest, MeterChoice
from greencoder.server.ledger import EnergyLedger
from greencoder.server.power_policy import PowerWatch
from greencoder.core.power import PowerState
from greencoder.server.settings import ServerSettings

SOURCE = "def is_prime(n):\n    "
KEY = "file:///p.py"


class HeldRuntime:
    """The tiny runtime, counting generations and forward passes, holding the first generation once
    it has written a few characters until the test releases it."""

    def __init__(self, runtime, hold_at_characters: int = 3):
        self._runtime = runtime
        self.generations = 0
        self.forward_passes = 0
        self.hold_at = hold_at_characters
        self.held = threading.Event()
        self.release = threading.Event()
        self.text_when_held = ""

    def __getattr__(self, name):
        return getattr(self._runtime, name)

    def generate(self, *args, on_ids=None, **kwargs):
        self.generations += 1
        first = self.generations == 1

        def observe(ids):
            if on_ids is not None:
                on_ids(ids)
            text = self._runtime.tokenizer.decode(list(ids), skip_special_tokens=True)
            if first and not self.held.is_set() and len(text.strip()) >= self.hold_at:
                self.text_when_held = text
                self.held.set()
                self.release.wait(timeout=60)

        result = self._runtime.generate(*args, on_ids=observe, **kwargs)
        self.forward_passes += result.forward_passes
        if first and not self.held.is_set():
            self.held.set()  # finished before writing enough: the test skips
        return result


def service_for(runtime) -> tuple[CompletionService, EnergyLedger]:
    ledger = EnergyLedger()
    settings = ServerSettings(debounce_ms=0, max_new_tokens=16)
    return CompletionService(type("Host", (), {"runtime": runtime})(), ledger, lambda: settings,
                             lambda: MeterChoice("estimate", None), power=PowerWatch(read=lambda: PowerState("ac", "t"))), ledger


def request_at(text: str) -> CursorRequest:
    lines = text.split("\n")
    return CursorRequest(KEY, text, len(lines) - 1, len(lines[-1]), PositionCodec(), PYTHON)


async def until(event: threading.Event) -> None:
    await asyncio.get_running_loop().run_in_executor(None, event.wait, 60)


async def first_request_held(service: CompletionService, runtime: HeldRuntime) -> asyncio.Task:
    first = asyncio.ensure_future(service.suggest(request_at(SOURCE)))
    await until(runtime.held)
    if not runtime.text_when_held:
        runtime.release.set()
        await asyncio.gather(first, return_exceptions=True)
        pytest.skip("the random tiny model finished before writing a few characters")
    return first


def typed_along(runtime: HeldRuntime) -> str:
    """The first characters of what the held generation wrote (leading whitespace included)."""
    text = runtime.text_when_held
    return text[: len(text) - len(text.lstrip()) + 2]


def test_typing_what_the_running_generation_writes_adopts_it(tiny_runtime):
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)

    async def scenario():
        first = await first_request_held(service, runtime)
        typed = typed_along(runtime)
        service.document_changed(KEY, SOURCE + typed)  # as didChange does, before the new request
        second = asyncio.ensure_future(service.suggest(request_at(SOURCE + typed)))
        await asyncio.sleep(0)  # let the second request adopt the generation (a turn of the loop, not a wait)
        assert service.in_flight(KEY) is not None and not service.in_flight(KEY).token.is_set()
        runtime.release.set()
        first_answer = (await asyncio.gather(first, return_exceptions=True))[0]
        return typed, first_answer, await second

    typed, first_answer, second = asyncio.run(scenario())
    assert isinstance(first_answer, JsonRpcRequestCancelled) and EDITED in str(first_answer)
    assert runtime.generations == 1  # no second model call ...
    passes_after_adoption = runtime.forward_passes
    if second is None:
        pytest.skip("the random tiny model's suggestion ended within the typed characters")
    assert second.start == len(typed) and second.tokens > 0
    full = service.memory._shown[KEY].text  # the finished result is remembered for typing along
    assert full.startswith(typed) and second.text == full[len(typed):]
    report = ledger.report()
    assert (report["completions"], report["cancelled"], report["adoptedInFlight"], report["suggestionsShown"]) == (1, 0, 1, 1)
    if len(second.text.strip()) > 1:  # one more character along it: the memory answers, still one generation
        more = asyncio.run(service.suggest(request_at(SOURCE + typed + second.text[0])))
        assert more.text == second.text[1:] and more.id == second.id and more.tokens == 0
    assert runtime.generations == 1 and runtime.forward_passes == passes_after_adoption
    assert ledger.report()["completions"] == 1 and ledger.report()["suggestionsShown"] == 1  # charged and shown once


def test_cancelling_the_old_request_does_not_stop_a_generation_typed_along(tiny_runtime):
    """The editor's order: didChange, $/cancelRequest of the old request, then the new request."""
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)

    async def scenario():
        first = await first_request_held(service, runtime)
        typed = typed_along(runtime)
        service.document_changed(KEY, SOURCE + typed)
        first.cancel()  # $/cancelRequest cancels the handler's task
        await asyncio.gather(first, return_exceptions=True)
        flight = service.in_flight(KEY)
        assert flight is not None and not flight.token.is_set()
        second = asyncio.ensure_future(service.suggest(request_at(SOURCE + typed)))
        await asyncio.sleep(0)
        runtime.release.set()
        return await second

    asyncio.run(scenario())
    assert runtime.generations == 1 and ledger.completions == 1 and ledger.cancelled == 0


def test_cancelling_the_only_request_stops_the_model(tiny_runtime):
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)

    async def scenario():
        first = await first_request_held(service, runtime)
        flight = service.in_flight(KEY)
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        assert flight.token.is_set()
        runtime.release.set()
        await flight.future

    asyncio.run(scenario())
    assert ledger.completions == 1 and ledger.cancelled == 1


def test_a_diverging_keystroke_cancels_the_running_generation(tiny_runtime):
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)

    async def scenario():
        first = await first_request_held(service, runtime)
        flight = service.in_flight(KEY)
        written = runtime.text_when_held.lstrip()
        typed = runtime.text_when_held[: len(runtime.text_when_held) - len(written)] + ("#" if written[0] != "#" else "@")
        service.document_changed(KEY, SOURCE + typed)
        assert flight.token.is_set() and flight.token.reason == EDITED and service.in_flight(KEY) is None
        runtime.release.set()
        first_answer = (await asyncio.gather(first, return_exceptions=True))[0]
        await service.suggest(request_at(SOURCE + typed))
        return first_answer

    first_answer = asyncio.run(scenario())
    assert isinstance(first_answer, JsonRpcRequestCancelled)
    assert runtime.generations == 2  # generated anew for the diverging text
    assert ledger.completions == 2 and ledger.cancelled == 1 and ledger.adopted == 0


def test_a_request_elsewhere_supersedes_the_running_generation(tiny_runtime):
    """No didChange in between (a request at another cursor): not typed along, so it is replaced."""
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)
    elsewhere = "import os\n" + SOURCE

    async def scenario():
        first = await first_request_held(service, runtime)
        flight = service.in_flight(KEY)
        second = asyncio.ensure_future(service.suggest(request_at(elsewhere)))
        await asyncio.sleep(0)
        assert flight.token.reason == SUPERSEDED
        runtime.release.set()
        await asyncio.gather(first, second, return_exceptions=True)

    asyncio.run(scenario())
    assert runtime.generations == 2 and ledger.adopted == 0


def test_typing_beyond_what_the_generation_has_written_stops_it(tiny_runtime):
    """Only characters the model has already written count as typed along it."""
    runtime = HeldRuntime(tiny_runtime)
    service, ledger = service_for(runtime)

    async def scenario():
        first = await first_request_held(service, runtime)
        flight = service.in_flight(KEY)
        service.document_changed(KEY, SOURCE + runtime.text_when_held + "x")
        assert flight.token.reason == EDITED
        runtime.release.set()
        await asyncio.gather(first, return_exceptions=True)
        await flight.future  # charged when the model has stopped

    asyncio.run(scenario())
    assert ledger.cancelled == 1 and ledger.adopted == 0
