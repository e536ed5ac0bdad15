"""The completion service in-process: what it charges, where it reads the cursor, cancellation."""

from __future__ import annotations

import asyncio
import time

import pytest
from pygls.exceptions import JsonRpcRequestCancelled
from pygls.workspace import PositionCodec

from greencoder.core.languages import PYTHON
from greencoder.core.meters.estimate import EstimateMeter
from greencoder.server.cancellation import SUPERSEDED, CancelToken, Cancellations
from greencoder.server.completions import CompletionService, CursorRequest, MeterChoice
from greencoder.server.documents import offset_at
from greencoder.server.ledger import EnergyLedger
from greencoder.server.settings import ServerSettings


def burn_cpu(seconds: float) -> None:
    """Spend `seconds` of this process's CPU time (not wall time: on a busy machine they differ)."""
    deadline = time.process_time() + seconds
    while time.process_time() < deadline:
        sum(range(1000))


class SlowToChooseMeter(MeterChoice):
    """Choosing a meter runs validation busy loops; this one burns 0.3 s of CPU the first time."""

    def __init__(self):
        super().__init__("estimate", 10.0)
        self._chosen = None

    @property
    def meter(self):
        if self._chosen is None:
            burn_cpu(0.3)
            self._chosen = EstimateMeter(10.0)
        return self._chosen


class ReadyHost:
    def __init__(self, runtime):
        self.runtime = runtime


def big_python_file(lines: int = 60_000) -> str:
    body = "".join(f"def helper_{i}(x):\n    return x * {i} + len(str(x))\n\n" for i in range(lines // 3))
    return body + "def is_prime(n):\n    "


def test_the_ledger_charges_everything_a_completion_costs(tiny_runtime):
    """Meter choice, finding the cursor, building the prompt and cleaning the text are charged too."""
    ledger = EnergyLedger()
    settings = ServerSettings(debounce_ms=0, max_new_tokens=4, meter="estimate", watts_per_core=10.0)
    service = CompletionService(ReadyHost(tiny_runtime), ledger, lambda: settings, SlowToChooseMeter)
    text = big_python_file()
    line = text.count("\n")
    request = CursorRequest("file:///big.py", text, line, 4, PositionCodec(), PYTHON)
    cpu_before = time.process_time()
    suggestion = service._generate(tiny_runtime, request, settings, CancelToken())
    spent = time.process_time() - cpu_before
    assert spent > 0.3
    assert ledger.completion_cpu_seconds >= 0.95 * spent
    assert ledger.completion_joules["estimated"] == pytest.approx(10.0 * ledger.completion_cpu_seconds, rel=0.05)
    assert suggestion is None or suggestion.cpu_seconds == pytest.approx(ledger.completion_cpu_seconds)


@pytest.mark.parametrize("text, line, character, expected", [
    ("a\x0cb\nc", 1, 1, 5),  # a form feed is not a line break in LSP
    ("a\r\nb\rc\nd", 2, 0, 5),
    ("a\r\nb\rc\nd", 3, 1, 8),
    ("x\n", 5, 0, 2),  # past the end: clamped
    ("é😀x\n", 0, 3, 2),  # UTF-16: the emoji is two code units
    ("abc", 0, 99, 3),
])
def test_cursor_offsets_follow_lsp_line_breaks_and_utf16(text, line, character, expected):
    assert offset_at(text, line, character, PositionCodec()) == expected


def test_a_newer_request_supersedes_and_the_older_answers_request_cancelled(tiny_runtime):
    cancellations = Cancellations()
    settings = ServerSettings(debounce_ms=50, max_new_tokens=4)
    service = CompletionService(ReadyHost(tiny_runtime), EnergyLedger(), lambda: settings, lambda: MeterChoice("estimate", None),
                                cancellations)
    request = CursorRequest("file:///a.py", "def f():\n    ", 1, 4, PositionCodec(), PYTHON)

    async def both():
        first = asyncio.ensure_future(service.suggest(request))
        await asyncio.sleep(0)  # the first request has begun its debounce
        second = await service.suggest(request)
        return await asyncio.gather(first, return_exceptions=True), second

    (first,), second = asyncio.run(both())
    assert isinstance(first, JsonRpcRequestCancelled) and SUPERSEDED in str(first)
    assert second is None or second.tokens <= 4
    assert not cancellations.running(("generation", "file:///a.py"))
