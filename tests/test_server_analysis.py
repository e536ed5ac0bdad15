"""Functions of a document are found off the event loop, once per version."""

from __future__ import annotations

import asyncio
import threading

from greencoder.core.languages import PYTHON
from greencoder.server import analysis
from greencoder.server.analysis import SourceAnalysis, innermost

SOURCE = "def f(x):\n    return x\n\n\ndef g(y):\n    def h():\n        return y\n    return h\n"


def test_functions_are_computed_once_per_version_and_off_the_event_loop(monkeypatch):
    calls: list[str] = []
    release = threading.Event()
    real = analysis.functions_in

    def slow_functions_in(source, language):
        calls.append(threading.current_thread().name)
        assert release.wait(10)
        return real(source, language)

    monkeypatch.setattr(analysis, "functions_in", slow_functions_in)

    async def scenario():
        service = SourceAnalysis()
        first = asyncio.ensure_future(service.functions("file:///a.py", 1, SOURCE, PYTHON))
        second = asyncio.ensure_future(service.functions("file:///a.py", 1, SOURCE, PYTHON))
        for _ in range(3):
            await asyncio.sleep(0)  # the loop turns while the analysis is blocked in its thread
        assert not first.done()
        release.set()
        spans_first, spans_second = await first, await second
        third = await service.functions("file:///a.py", 2, SOURCE + "\n", PYTHON)
        return spans_first, spans_second, third

    first, second, third = asyncio.run(scenario())
    assert [s.name for s in first] == [s.name for s in second] == [s.name for s in third] == ["f", "g", "h"]
    assert len(calls) == 2 and all(name.startswith("greencoder-analysis") for name in calls)


def test_innermost_function_of_a_line():
    from greencoder.server.functions import functions_in

    spans = functions_in(SOURCE, PYTHON)
    assert innermost(spans, 6).name == "h" and innermost(spans, 7).name == "g" and innermost(spans, 2) is None
