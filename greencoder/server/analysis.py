"""Where the functions of an open document are, computed off the event loop and cached per version.

Code actions, hovers and diagnostics all need the functions of a document. Finding them scales
with the file (megabytes of source), so it runs on a worker thread of its own (never the
completion worker, never the event loop), once per document version; later questions about the
same version are answered from the cache.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

from greencoder.core.languages import Language
from greencoder.server.functions import FunctionSpan, functions_in

MAX_CACHED_DOCUMENTS = 32


def innermost(spans: list[FunctionSpan], line: int) -> FunctionSpan | None:
    """The innermost function whose header or body contains `line` (0-based)."""
    containing = [s for s in spans if s.start_line <= line <= s.end_line]
    return min(containing, key=lambda s: s.end_line - s.start_line) if containing else None


class SourceAnalysis:
    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="greencoder-analysis")
        self._cache: OrderedDict[str, tuple[tuple, asyncio.Future]] = OrderedDict()

    async def functions(self, key: str, version: int | None, source: str, language: Language) -> list[FunctionSpan]:
        """The functions of document `key` at `version` (computed once per version)."""
        stamp = (version, len(source), hash(source) if version is None else None, language.name)
        loop = asyncio.get_running_loop()
        cached = self._cache.get(key)
        if cached is not None and cached[0] == stamp:
            self._cache.move_to_end(key)
            return await asyncio.shield(cached[1])
        future = loop.run_in_executor(self._executor, functions_in, source, language)
        self._cache[key] = (stamp, future)
        self._cache.move_to_end(key)
        while len(self._cache) > MAX_CACHED_DOCUMENTS:
            self._cache.popitem(last=False)
        return await asyncio.shield(future)

    def forget(self, key: str) -> None:
        self._cache.pop(key, None)
