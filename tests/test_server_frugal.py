"""The server spends no generation it can avoid: typed-ahead answers, an adaptive debounce, the
battery policy; and the ledger tells joules per accepted character."""

from __future__ import annotations

import asyncio

import pytest
from pygls.workspace import PositionCodec

from greencoder.core.languages import PYTHON
from greencoder.core.power import PowerState, linux_power_state
from greencoder.server.completions import CompletionService, CursorRequest, MeterChoice
from greencoder.server.ledger import EnergyLedger
from greencoder.server.power_policy import REDUCED_MAX_NEW_TOKENS, PowerWatch
from greencoder.server.settings import ServerSettings
from greencoder.server.typing_rhythm import DEFAULT_SECONDS, MAX_SECONDS, MIN_SECONDS, TypingRhythm

SOURCE = "def is_prime(n):\n    "


class CountingRuntime:
    """The tiny runtime, counting generations (the test asserts on calls, not on the random text)."""

    def __init__(self, runtime):
        self._runtime = runtime
        self.generations = 0

    def __getattr__(self, name):
        return getattr(self._runtime, name)

    def generate(self, *args, **kwargs):
        self.generations += 1
        return self._runtime.generate(*args, **kwargs)


class Host:
    def __init__(self, runtime):
        self.runtime = runtime


def service_for(runtime, settings: ServerSettings, power: PowerState | None = None) -> tuple[CompletionService, EnergyLedger]:
    ledger = EnergyLedger()
    watch = PowerWatch(read=lambda: power or PowerState("ac", "test"))
    return CompletionService(Host(runtime), ledger, lambda: settings, lambda: MeterChoice("estimate", None),
                             power=watch), ledger


def request_at(text: str, explicit: bool = True) -> CursorRequest:
    lines = text.split("\n")
    return CursorRequest("file:///p.py", text, len(lines) - 1, len(lines[-1]), PositionCodec(), PYTHON, explicit)


def test_typing_along_a_suggestion_answers_its_rest_without_calling_the_model(tiny_runtime):
    runtime = CountingRuntime(tiny_runtime)
    service, ledger = service_for(runtime, ServerSettings(debounce_ms=0, max_new_tokens=12))
    first = asyncio.run(service.suggest(request_at(SOURCE)))
    if first is None or len(first.text) < 3:
        pytest.skip("the random tiny model suggested too little to type along")
    assert runtime.generations == 1
    for typed in range(1, min(len(first.text) - 1, 6)):
        if not first.text[typed:].strip():
            break
        answer = asyncio.run(service.suggest(request_at(SOURCE + first.text[:typed])))
        assert answer.text == first.text[typed:] and answer.id == first.id and answer.tokens == 0
        assert answer.start == typed  # accepting this item accepts from here, not what was typed
    assert runtime.generations == 1  # no generation for any typed-ahead character
    assert ledger.typed_ahead >= 1 and ledger.suggestions_shown == 1
    differing = first.text[0] + ("#" if first.text[1] != "#" else "@")
    asyncio.run(service.suggest(request_at(SOURCE + differing)))
    assert runtime.generations == 2  # a character off the suggestion: generate anew


def test_an_edit_elsewhere_forgets_the_suggestion(tiny_runtime):
    runtime = CountingRuntime(tiny_runtime)
    service, _ = service_for(runtime, ServerSettings(debounce_ms=0, max_new_tokens=12))
    first = asyncio.run(service.suggest(request_at(SOURCE)))
    if first is None:
        pytest.skip("the random tiny model suggested nothing")
    asyncio.run(service.suggest(request_at("import os\n" + SOURCE + first.text[:1])))
    assert runtime.generations == 2


def test_joules_per_accepted_character_follow_from_shown_and_accepted_events():
    ledger = EnergyLedger()
    ledger.add_completion(10, 0.5, 3.0, "estimated")
    ledger.add_completion(10, 0.5, 1.0, "measured")
    ledger.add_shown("a", 40)
    ledger.add_shown("b", 25)
    ledger.add_shown("c", 30)
    assert ledger.report()["joulesPerAcceptedCharacter"] == {"estimated": None, "measured": None}
    assert ledger.add_accept("a", 10)  # a word of it
    assert ledger.add_accept("a", 30)  # then a line more: 20 new characters
    assert ledger.add_accept("a", 5)  # already counted: nothing new
    assert ledger.add_accept("b")  # all of it (the item's command): 25
    assert not ledger.add_accept("unknown", 7)
    assert ledger.add_accept("b", 999)  # capped at its length: nothing new
    assert ledger.add_accept("c", None, start=12)  # typed 12 along, then accepted the rest: 18
    report = ledger.report()
    assert (report["suggestionsShown"], report["suggestionsAccepted"], report["charactersAccepted"]) == (3, 3, 73)
    assert report["joulesPerAcceptedCharacter"] == {"estimated": pytest.approx(3.0 / 73), "measured": pytest.approx(1.0 / 73)}


def battery(tmp_path) -> PowerState:
    root = tmp_path / "power_supply"
    for name, files in {"AC": {"type": "Mains", "online": "0"}, "BAT0": {"type": "Battery", "status": "Discharging"}}.items():
        (root / name).mkdir(parents=True)
        for key, value in files.items():
            (root / name / key).write_text(value + "\n")
    return linux_power_state(root)


def test_on_battery_explicit_generates_only_when_asked(tiny_runtime, tmp_path):
    runtime = CountingRuntime(tiny_runtime)
    service, _ = service_for(runtime, ServerSettings(debounce_ms=0, max_new_tokens=4, on_battery="explicit"),
                             battery(tmp_path))
    assert service.policy().to_dict() == {"source": "battery", "onBattery": "explicit", "inForce": "explicit"}
    assert asyncio.run(service.suggest(request_at(SOURCE, explicit=False))) is None
    assert runtime.generations == 0
    asyncio.run(service.suggest(request_at(SOURCE, explicit=True)))
    assert runtime.generations == 1


def test_on_battery_reduce_caps_tokens_and_keeps_to_one_line(tiny_runtime, tmp_path):
    runtime = CountingRuntime(tiny_runtime)
    service, ledger = service_for(runtime, ServerSettings(debounce_ms=0, max_new_tokens=200, on_battery="reduce"),
                                  battery(tmp_path))
    assert service.policy().in_force == "reduce"
    suggestion = asyncio.run(service.suggest(request_at(SOURCE, explicit=False)))
    assert ledger.completion_tokens <= REDUCED_MAX_NEW_TOKENS
    assert suggestion is None or "\n" not in suggestion.text


def test_on_ac_or_keep_nothing_is_held_back(tiny_runtime, tmp_path):
    for settings, power in ((ServerSettings(on_battery="explicit"), PowerState("ac", "t")),
                            (ServerSettings(on_battery="keep"), battery(tmp_path))):
        service, _ = service_for(tiny_runtime, settings, power)
        assert service.policy().in_force == "full" and service.policy().allows(explicit=False)


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_debounce_learns_the_typists_rhythm():
    clock = FakeClock()
    rhythm = TypingRhythm(clock)
    assert rhythm.debounce_seconds("d", None) == DEFAULT_SECONDS
    for _ in range(10):  # keys 120 ms apart
        rhythm.keystroke("d")
        clock.now += 0.120
    debounce = rhythm.debounce_seconds("d", None)
    assert 0.120 < debounce <= MAX_SECONDS  # longer than the gap: a burst starts no generation
    clock.now += 5.0  # a pause is not part of the rhythm
    rhythm.keystroke("d")
    assert rhythm.debounce_seconds("d", None) == debounce
    assert rhythm.wait_seconds("d", None) == pytest.approx(debounce)  # counted from the last keystroke
    clock.now += debounce / 2
    assert rhythm.wait_seconds("d", None) == pytest.approx(debounce / 2)
    assert rhythm.debounce_seconds("d", 200) == 0.2  # a fixed setting wins
    fast = TypingRhythm(clock)
    for _ in range(10):
        fast.keystroke("e")
        clock.now += 0.005
    assert fast.debounce_seconds("e", None) == MIN_SECONDS
