"""The server's copy of the editor's documents, with LSP's own rules for URIs and line breaks.

pygls splits lines with `str.splitlines`, which also breaks on form feed, vertical tab, `\\x1c-\\x1e`,
`\\x85`, U+2028 and U+2029. LSP breaks lines only on `\\n`, `\\r\\n` and `\\r`, so a form feed (legal
in Python and C source) would shift every later line: completions would land at the wrong place and
incremental edits below it would corrupt the document. pygls also stores documents under the
percent-decoded URI (`file:///c%3A/x.py` is kept as `file:///c:/x.py`), so lookups must decode too.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

from lsprotocol import types
from pygls.workspace import TextDocument, Workspace

_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_CHUNK = 1 << 16


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` with their line ends, broken only where LSP breaks lines."""
    return _LSP_LINE.findall(text)


def line_start(text: str, line: int) -> int | None:
    """Offset where 0-based `line` starts, or None past the last line. Scans only up to that line,
    in C-speed chunks (a keystroke in a megabyte file must not cost a split of the whole file)."""
    if line <= 0:
        return 0
    if "\r" in text and text.count("\r") != text.count("\r\n"):  # lone CRs: rare, exact and slower
        for count, match in enumerate(_LINE_BREAK.finditer(text), 1):
            if count == line:
                return match.end()
        return None
    seen, chunk_start = 0, 0  # without lone CRs, every line break holds exactly one "\n"
    while chunk_start < len(text):
        chunk_end = min(len(text), chunk_start + _CHUNK)
        in_chunk = text.count("\n", chunk_start, chunk_end)
        if seen + in_chunk >= line:
            position = chunk_start - 1
            for _ in range(line - seen):
                position = text.index("\n", position + 1)
            return position + 1
        seen += in_chunk
        chunk_start = chunk_end
    return None


def offset_at(text: str, line: int, character: int, codec) -> int:
    """Offset of an LSP position (`character` in the client's units, UTF-16 by default), clamped
    to the document as LSP asks: past the end of a line means its end, past the last line the end."""
    start = line_start(text, line)
    if start is None:
        return len(text)
    found = _LINE_BREAK.search(text, start)
    end = found.start() if found else len(text)
    units = 0
    for index in range(start, end):  # client units to code points
        if units >= character:
            return index
        units += codec.client_num_units(text[index])
    return end


class LspTextDocument(TextDocument):
    """A pygls TextDocument whose lines, positions and incremental edits follow LSP, and whose edits
    and offsets cost what the position is away from the start, not a split of the whole document."""

    def _apply_incremental_change(self, change: types.TextDocumentContentChangePartial) -> None:
        text = self.source
        start = offset_at(text, change.range.start.line, change.range.start.character, self._position_codec)
        end = offset_at(text, change.range.end.line, change.range.end.character, self._position_codec)
        self._source = text[:start] + change.text + text[max(start, end):]

    def offset_at_position(self, client_position: types.Position) -> int:
        return offset_at(self.source, client_position.line, client_position.character, self._position_codec)

    _lines_of: tuple[str, tuple[str, ...]] | None = None

    @property
    def lines(self) -> tuple[str, ...]:
        source = self.source
        cached = self._lines_of
        if cached is not None and cached[0] is source:
            return cached[1]
        lines = tuple(lsp_lines(source))
        self._lines_of = (source, lines)
        return lines


class LspWorkspace(Workspace):
    """pygls' Workspace, creating LspTextDocuments."""

    def _create_text_document(self, doc_uri, source=None, version=None, language_id=None) -> TextDocument:
        return LspTextDocument(doc_uri, source=source, version=version, language_id=language_id,
                               sync_kind=self._sync_kind, position_codec=self._position_codec)

    def open_document(self, uri: str) -> TextDocument | None:
        """The document the client opened under `uri` (raw or percent-encoded), or None: never read
        from disk, unlike `get_text_document`."""
        return self.text_documents.get(unquote(uri))


def document_key(uri: str) -> str:
    """One key per document whatever the client's percent-encoding (as pygls stores documents)."""
    return unquote(uri)
