"""Parsing Python, C++ and Java with tree-sitter, incrementally, without holding the GIL for long.

A `SourceDocument` is one version of one file: its text, its bytes and its tree-sitter Tree.
`updated(new_text)` makes the next version by reusing the old tree (tree-sitter re-parses only
what changed), so a server can keep one per document version cheaply.

py-tree-sitter's `Parser.parse(bytes)` holds the GIL for the whole parse (about 0.3-1 s for 1 MB
on a slow machine), which would freeze an asyncio event loop even when the parse runs in a worker
thread. Large texts are therefore parsed through a read callback with a progress callback: each call
back into Python lets the interpreter hand the GIL to other threads, so the event loop keeps running
(stalls of a few ms instead of the whole parse), and the progress callback can cancel a stale parse.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable
from functools import cache
from typing import cast

import tree_sitter

from greencoder.core.errors import GreencoderError
from greencoder.core.languages import Language

CHUNKED_PARSE_BYTES = 64 * 1024
"""Texts at least this long are parsed through callbacks (see the module docstring)."""
_CHUNK = 16 * 1024


class ParseCancelled(GreencoderError):
    """The `cancelled` callback asked a parse to stop."""


@cache
def grammar(language_name: str) -> tree_sitter.Language:
    """The tree-sitter grammar of a greencoder language (imported on first use)."""
    if language_name == "python":
        import tree_sitter_python as module
    elif language_name == "cpp":
        import tree_sitter_cpp as module
    elif language_name == "java":
        import tree_sitter_java as module
    else:
        raise GreencoderError(f"no tree-sitter grammar for {language_name!r}")
    return tree_sitter.Language(module.language())


@cache
def query(language_name: str, text: str) -> tree_sitter.Query:
    """A compiled query, compiled once per process (queries are immutable and thread-safe)."""
    return tree_sitter.Query(grammar(language_name), text)


_parsers = threading.local()


def _parser(language_name: str) -> tree_sitter.Parser:
    """One parser per thread and language: a Parser must not be used by two threads at once."""
    cache = _parsers.__dict__.setdefault("by_language", {})
    if language_name not in cache:
        cache[language_name] = tree_sitter.Parser(grammar(language_name))
    return cache[language_name]


def parse_bytes(language_name: str, data: bytes, old_tree: tree_sitter.Tree | None = None,
                cancelled: Callable[[], bool] | None = None) -> tree_sitter.Tree:
    """Parse `data` (UTF-8), reusing `old_tree` (already `edit`ed to match) when given."""
    parser = _parser(language_name)
    if len(data) < CHUNKED_PARSE_BYTES and cancelled is None:
        return parser.parse(data, old_tree) if old_tree is not None else parser.parse(data)
    view = memoryview(data)

    def read(offset: int, _point: object) -> bytes:
        return bytes(view[offset : offset + _CHUNK])

    def progress(*_state: object) -> bool:
        return bool(cancelled and cancelled())

    try:
        if old_tree is not None:
            tree = parser.parse(read, old_tree, progress_callback=progress)
        else:
            tree = parser.parse(read, progress_callback=progress)
    except ValueError:  # what py-tree-sitter raises when the progress callback stops the parse
        tree = None
    if tree is None:
        parser.reset()
        if cancelled and cancelled():
            raise ParseCancelled("parse cancelled")
        raise GreencoderError(f"tree-sitter could not parse this {language_name} text")
    return tree


def _common_prefix(a: bytes, b: bytes) -> int:
    """Length of the common prefix, comparing blocks in C before narrowing down."""
    limit, start, block = min(len(a), len(b)), 0, 4096
    while start < limit:
        end = min(start + block, limit)
        if a[start:end] == b[start:end]:
            start = end
            block *= 2
            continue
        if end - start <= 64:
            while start < end and a[start] == b[start]:
                start += 1
            return start
        block = max((end - start) // 8, 64)
    return limit


def _common_suffix(a: bytes, b: bytes, limit: int) -> int:
    """Length of the common suffix, at most `limit` bytes."""
    done, block = 0, 4096
    while done < limit:
        size = min(block, limit - done)
        if a[len(a) - done - size : len(a) - done] == b[len(b) - done - size : len(b) - done]:
            done += size
            block *= 2
            continue
        if size <= 64:
            while done < limit and a[len(a) - done - 1] == b[len(b) - done - 1]:
                done += 1
            return done
        block = max(size // 8, 64)
    return limit


def _point(data: bytes, offset: int) -> tuple[int, int]:
    """(row, byte column) of a byte offset."""
    row = data.count(b"\n", 0, offset)
    return row, offset - (data.rfind(b"\n", 0, offset) + 1)


class SourceDocument:
    """One version of a source file and its syntax tree (see the module docstring).

    Immutable: `updated` returns a new document and leaves this one (and its tree) as it was, so
    a reader holding an older version is never surprised."""

    __slots__ = ("_cache", "ascii", "data", "language", "text", "tree")

    def __init__(self, text: str, language: Language, *, tree: tree_sitter.Tree | None = None,
                 data: bytes | None = None, cancelled: Callable[[], bool] | None = None) -> None:
        self.language = language
        self.text = text
        self.data = text.encode("utf-8", "surrogatepass") if data is None else data
        self.ascii = self.data.isascii()
        self.tree = tree if tree is not None else parse_bytes(language.name, self.data, cancelled=cancelled)
        self._cache: dict[str, object] = {}

    @property
    def root(self) -> tree_sitter.Node:
        return self.tree.root_node

    @property
    def has_errors(self) -> bool:
        """Whether the text does not parse cleanly (mid-edit); the tree is still usable."""
        return self.root.has_error

    def updated(self, text: str, cancelled: Callable[[], bool] | None = None) -> SourceDocument:
        """The document after its text became `text`: the changed region is found by comparing
        the two texts, described to a copy of the old tree, and only that region is re-parsed."""
        if text == self.text:
            return self
        new = text.encode("utf-8", "surrogatepass")
        old = self.data
        start = _common_prefix(old, new)
        tail = _common_suffix(old, new, min(len(old), len(new)) - start)
        old_end, new_end = len(old) - tail, len(new) - tail
        tree = self.tree.copy()
        tree.edit(start_byte=start, old_end_byte=old_end, new_end_byte=new_end,
                  start_point=_point(old, start), old_end_point=_point(old, old_end),
                  new_end_point=_point(new, new_end))
        document = SourceDocument(text, self.language, data=new,
                                  tree=parse_bytes(self.language.name, new, tree, cancelled))
        offsets = self._cache.get("line offsets")
        if offsets is not None:  # carried over: unchanged before the edit, shifted after it
            offsets = cast(list[int], offsets)
            kept = bisect.bisect_right(offsets, start)
            after = bisect.bisect_right(offsets, old_end)
            inside = [match.end() for match in re.finditer(rb"\n", new[start:new_end])]
            shift = new_end - old_end
            document._cache["line offsets"] = [*offsets[:kept], *(start + end for end in inside),
                                               *(offset + shift for offset in offsets[after:])]
        return document

    def memo(self, key: str, compute: Callable[[], object]) -> object:
        """A value derived from this version, computed once (functions, markers, ...)."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def line_offsets(self) -> list[int]:
        """Byte offset of each line's start, and one past the end (memoised)."""
        def compute() -> list[int]:
            return [0, *(match.end() for match in re.finditer(rb"\n", self.data)), len(self.data) + 1]
        return self.memo("line offsets", compute)  # type: ignore[return-value]

    def char_offset(self, byte: int) -> int:
        """The offset into `text` of a byte offset into `data`."""
        if self.ascii:
            return byte
        return len(self.data[:byte].decode("utf-8", "replace"))

    def node_text(self, node: tree_sitter.Node) -> str:
        return self.data[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def character(self, node_row_start_byte: int, byte: int) -> int:
        """Column in characters (code points) of `byte`, given the byte offset its line starts at."""
        return len(self.data[node_row_start_byte:byte].decode("utf-8", "replace"))


def document(source: str | SourceDocument, language: Language) -> SourceDocument:
    """`source` as a document (parsed now when it is plain text)."""
    return source if isinstance(source, SourceDocument) else SourceDocument(source, language)
