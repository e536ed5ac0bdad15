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


def reference_offset(text: str, line: int, character: int) -> int:
    """Offsets the slow, obvious way: split into LSP lines, count UTF-16 units."""
    lines = lsp_lines(text)
    if line >= len(lines):
        return len(text)
    start = sum(len(item) for item in lines[:line])
    body = lines[line].rstrip("\r\n")
    units = 0
    for index, char in enumerate(body):
        if units >= character:
            return start + index
        units += 2 if ord(char) > 0xFFFF else 1
    return start + len(body)


def test_random_incremental_edits_match_the_obvious_implementation():
    import random

    rng = random.Random(7)
    alphabet = ["a", "b", " ", "\n", "\r\n", "\r", "\x0c", "é", "😀", "\u2028"]
    workspace = LspWorkspace(None, types.TextDocumentSyncKind.Incremental)
    uri = "file:///fuzz.py"
    text = "".join(rng.choice(alphabet) for _ in range(300))
    workspace.put_text_document(types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text))
    document = workspace.open_document(uri)
    for version in range(2, 400):
        count = len(lsp_lines(text)) + 1
        positions = sorted(((rng.randrange(count), rng.randrange(12)) for _ in range(2)),
                           key=lambda p: reference_offset(text, *p))
        start, end = (reference_offset(text, *p) for p in positions)
        new_text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(4)))
        workspace.update_text_document(types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                                       types.TextDocumentContentChangePartial(range=types.Range(
                                           start=types.Position(line=positions[0][0], character=positions[0][1]),
                                           end=types.Position(line=positions[1][0], character=positions[1][1])),
                                           text=new_text))
        text = text[:start] + new_text + text[end:]
        assert document.source == text
        line, character = rng.randrange(count), rng.randrange(12)
        assert document.offset_at_position(types.Position(line=line, character=character)) == reference_offset(text, line, character)
