"""Where the functions of an open document are: parsed off the event loop, once per version.

Code actions, hovers and diagnostics all need the functions of a document. Parsing scales with the
file (megabytes of source), so it runs on a worker thread of its own (never the completion worker,
never the event loop). Each document keeps one parsed `SourceDocument` per version, updated
incrementally from the previous version's tree (tree-sitter re-parses only the changed region);
questions about a line or a name look only there, not through the whole file.
"""

from __future__ import annotations

import asyncio
import re
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

from greencoder.core.languages import Language
from greencoder.core.source import (
    FunctionSpan, SourceDocument, bench_template, function_at, function_named, functions_in,
)

MAX_CACHED_DOCUMENTS = 32
_LONE_CR = re.compile(r"\r(?!\n)")
T = TypeVar("T")


class SourceAnalysis:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greencoder-analysis")
        self._documents: OrderedDict[str, tuple[tuple, asyncio.Future]] = OrderedDict()

    def _parsed(self, key: str, version: int | None, source: str, language: Language) -> asyncio.Future:
        """The parsed document of `key` at `version` (a future; parsed once per version, from the
        previous version's tree when there is one)."""
        stamp = (version, len(source), hash(source) if version is None else None, language.name)
        cached = self._documents.get(key)
        if cached is not None and cached[0] == stamp:
            self._documents.move_to_end(key)
            return cached[1]
        previous = cached[1] if cached is not None and cached[0][3] == language.name else None

        def parse() -> SourceDocument:
            # tree-sitter counts rows at "\n" only; LSP also breaks lines at a lone "\r". Same length,
            # so offsets and columns stay; only the rows now agree with the editor's lines.
            text = _LONE_CR.sub("\n", source) if "\r" in source else source
            if previous is not None and previous.done() and not previous.exception():
                return previous.result().updated(text)
            return SourceDocument(text, language)

        future = asyncio.get_running_loop().run_in_executor(self._executor, parse)
        self._documents[key] = (stamp, future)
        self._documents.move_to_end(key)
        while len(self._documents) > MAX_CACHED_DOCUMENTS:
            self._documents.popitem(last=False)
        return future

    async def _ask(self, key: str, version: int | None, source: str, language: Language,
                   question: Callable[[SourceDocument], T]) -> T:
        document = await asyncio.shield(self._parsed(key, version, source, language))
        return await asyncio.get_running_loop().run_in_executor(self._executor, question, document)

    async def functions(self, key: str, version: int | None, source: str, language: Language) -> list[FunctionSpan]:
        """Every function of the document (computed once per version)."""
        return await self._ask(key, version, source, language, lambda doc: functions_in(doc, language))

    async def function_at(self, key: str, version: int | None, source: str, language: Language,
                          line: int) -> FunctionSpan | None:
        """The innermost function whose header or body contains `line` (0-based)."""
        return await self._ask(key, version, source, language, lambda doc: function_at(doc, language, line))

    async def function_named(self, key: str, version: int | None, source: str, language: Language,
                             name: str) -> FunctionSpan | None:
        return await self._ask(key, version, source, language, lambda doc: function_named(doc, language, name))

    async def bench_template(self, key: str, version: int | None, source: str, language: Language,
                             span: FunctionSpan) -> tuple[int, str]:
        """(line, text) of a `greencoder: bench` comment to insert for `span`."""
        return await self._ask(key, version, source, language, lambda doc: bench_template(span, doc, language))

    def warm_up(self, languages: tuple[Language, ...]) -> None:
        """Load the grammars and compile the queries in the worker now (tens of ms for C++), so the
        first code action does not pay for it."""
        from greencoder.core.source import prepare

        for language in languages:
            self._executor.submit(prepare, language)

    def forget(self, key: str) -> None:
        self._documents.pop(key, None)
