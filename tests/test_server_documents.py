"""The server's copy of documents: LSP line breaks and percent-encoded URIs."""

from __future__ import annotations

import pytest
from lsprotocol import types

from greencoder.server.documents import LspWorkspace, document_key, lsp_lines


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"])
def test_only_lf_crlf_and_cr_break_lines(separator):
    text = f"a{separator}b\nc\r\nd\re"
    assert lsp_lines(text) == [f"a{separator}b\n", "c\r\n", "d\r", "e"]


@pytest.mark.parametrize("separator", ["\x0c", "\u2028", "\x85"])
def test_incremental_edits_below_a_separator_land_where_the_client_meant(separator):
    workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    uri = "file:///tmp/x%20y/paged.py"
    workspace.put_text_document(types.TextDocumentItem(
        uri=uri, language_id="python", version=1, text=f"def first():\n    return 1\n{separator}\ndef second(x):\n    return x\n"))
    document = workspace.open_document(uri)
    workspace.update_text_document(types.VersionedTextDocumentIdentifier(uri=uri, version=2), types.TextDocumentContentChangePartial(
        range=types.Range(start=types.Position(line=3, character=4), end=types.Position(line=3, character=10)), text="third"))
    assert document.source == f"def first():\n    return 1\n{separator}\ndef third(x):\n    return x\n"
    assert document.offset_at_position(types.Position(line=4, character=4)) == document.source.index("return x")


def test_documents_are_found_under_any_percent_encoding_of_their_uri():
    workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    workspace.put_text_document(types.TextDocumentItem(uri="file:///c%3A/J%C3%A9r%C3%B4me/a.py", language_id="python",
                                                       version=1, text="x = 1\n"))
    for uri in ("file:///c%3A/J%C3%A9r%C3%B4me/a.py", "file:///c:/Jérôme/a.py"):
        assert workspace.open_document(uri).source == "x = 1\n"
    assert workspace.open_document("file:///c%3A/other.py") is None
    assert document_key("file:///a%20b.py") == document_key("file:///a b.py")
