"""Functions of a document are found off the event loop, parsed once per version and updated
incrementally from the previous version."""

from __future__ import annotations

import asyncio
import threading

from greencoder.core.languages import CPP, PYTHON
from greencoder.server import analysis
from greencoder.server.analysis import SourceAnalysis

SOURCE = "def f(x):\n    return x\n\n\ndef g(y):\n    def h():\n        return y\n    return h\n"


def test_documents_are_parsed_once_per_version_off_the_event_loop(monkeypatch):
    parses: list[tuple[str, str]] = []
    release = threading.Event()
    real = analysis.SourceDocument

    class CountingDocument(real):
        def __init__(self, text, language, **kwargs):
            parses.append(("new", threading.current_thread().name))
            assert release.wait(10)
            super().__init__(text, language, **kwargs)

        def updated(self, text, cancelled=None):
            parses.append(("updated", threading.current_thread().name))
            return super().updated(text, cancelled)

    monkeypatch.setattr(analysis, "SourceDocument", CountingDocument)

    async def scenario():
        service = SourceAnalysis()
        first = asyncio.ensure_future(service.function_at("file:///a.py", 1, SOURCE, PYTHON, 6))
        second = asyncio.ensure_future(service.function_named("file:///a.py", 1, SOURCE, PYTHON, "f"))
        for _ in range(3):
            await asyncio.sleep(0)  # the loop turns while the parse is blocked in its thread
        assert not first.done()
        release.set()
        at_line, named = await first, await second
        every = await service.functions("file:///a.py", 1, SOURCE, PYTHON)
        edited = SOURCE.replace("def g(y)", "def gee(y)")
        renamed = await service.function_at("file:///a.py", 2, edited, PYTHON, 4)
        return at_line, named, every, renamed

    at_line, named, every, renamed = asyncio.run(scenario())
    assert at_line.name == "h" and named.name == "f" and [s.name for s in every] == ["f", "g", "h"]
    assert renamed.name == "gee"
    assert [kind for kind, _ in parses] == ["new", "updated"]  # version 2 re-parsed from version 1's tree
    assert all(thread.startswith("greencoder-analysis") for _, thread in parses)


def test_a_language_change_parses_afresh():
    async def scenario():
        service = SourceAnalysis()
        await service.functions("file:///a", 1, SOURCE, PYTHON)
        return await service.functions("file:///a", 2, "int f(int x) { return x; }\n", CPP)

    assert [s.name for s in asyncio.run(scenario())] == ["f"]


def test_lone_carriage_returns_count_as_line_breaks_as_in_lsp():
    source = "def f(x):\r    return x\r\rdef g(y):\r    return y\r"

    async def scenario():
        return await SourceAnalysis().function_at("file:///cr.py", 1, source, PYTHON, 3)

    span = asyncio.run(scenario())
    assert span.name == "g" and span.name_line == 3
