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

from pygls.workspace import TextDocument, Workspace

_LSP_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")


def lsp_lines(text: str) -> list[str]:
    """The lines of `text` with their line ends, broken only where LSP breaks lines."""
    return _LSP_LINE.findall(text)


class LspTextDocument(TextDocument):
    """A pygls TextDocument whose lines (and so positions and incremental edits) follow LSP."""

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
