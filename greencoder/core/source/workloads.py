"""What call measures a function: the user's `greencoder: bench <call>`, or Python doctests.

The workload of "Measure energy" is written by the user, next to the function:
- a comment `greencoder: bench <call expression>` in the comment lines just above the function
  (above its decorators, annotations or doc comment too) or inside it (`#`, `//`, `/* ... */`), or
  such a line in a Python docstring (one-line docstrings included: the quotes are not the call);
- for Python, else the doctest examples of its docstring (`>>> expr`), all of them as one tuple
  expression, so each run repeats every example.
Without one, the editor offers to insert a template comment (`bench_template`) to fill in.

Markers and doctest prompts are rare, so they are found by a regular expression over the bytes
(C speed) and only then looked up in the tree: a marker counts only inside a comment or a
docstring, never in code or in an ordinary string.
"""

from __future__ import annotations

import dataclasses
import re

import tree_sitter

from greencoder.core.languages import Language
from greencoder.core.source.functions import FunctionSpan, SpanIndex
from greencoder.core.source.parsing import SourceDocument, document

BENCH_MARKER = re.compile(rb"greencoder:[ \t]*bench[ \t]+")
_DOCTEST = re.compile(rb"^[ \t]*>>> ", re.MULTILINE)
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_LEADING = (b"#", b"//", b"/*", b"*", b"@", b"template", b"[[")


def _line_end(data: bytes, position: int) -> int:
    end = data.find(b"\n", position)
    return len(data) if end == -1 else end


def _docstring_owner(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The function whose docstring `node` (a string or a part of one) is, if it is one."""
    while node is not None and node.type != "string":
        node = node.parent  # type: ignore[assignment]
    if node is None:
        return None
    statement = node.parent
    if statement is None or statement.type != "expression_statement" or statement.named_child_count != 1:
        return None
    block = statement.parent
    if block is None or block.type != "block" or block.parent is None or block.parent.type != "function_definition":
        return None
    first = next((child for child in block.named_children if child.type != "comment"), None)
    return block.parent if first is not None and first.id == statement.id else None


def _call_text(doc: SourceDocument, start: int, node: tree_sitter.Node) -> str:
    """The call written after a marker: the rest of its line, inside the comment or string."""
    end = min(_line_end(doc.data, start), node.end_byte)
    text = doc.data[start:end].decode("utf-8", "replace").strip()
    if text.endswith("*/"):
        text = text[:-2].rstrip()
    return text.rstrip(";").strip()


def _function_below(doc: SourceDocument, comment_end: int, by_first_line: dict[int, FunctionSpan]) -> FunctionSpan | None:
    """The function whose header follows the comment block holding `comment_end`, with only
    comment, decorator, annotation or template lines between (a blank line ends the block)."""
    data = doc.data
    line_end = _line_end(data, comment_end)
    row = data.count(b"\n", 0, line_end)
    while line_end < len(data):
        row += 1
        start = line_end + 1
        line_end = _line_end(data, start)
        text = data[start:line_end].strip()
        if row in by_first_line:
            return by_first_line[row]
        if not text.startswith(_LEADING) or not text:
            return None
    return None


def attach_workloads(doc: SourceDocument, spans: list[FunctionSpan]) -> list[FunctionSpan]:
    """`spans` with `call` / `source_of_call` set from the markers and doctests of `doc`."""
    if not spans:
        return spans
    index = SpanIndex(spans)
    by_first_line = {}
    for span in spans:
        by_first_line.setdefault(span.first_line if span.first_line >= 0 else span.start_line, span)
        by_first_line.setdefault(span.start_line, span)
    by_definition = {}
    calls: dict[int, tuple[str, str]] = {}  # id(span) -> (call, origin); the first marker wins
    root = doc.root
    for match in BENCH_MARKER.finditer(doc.data):
        node = root.descendant_for_byte_range(match.start(), match.end())
        if node is None:
            continue
        if node.type in _COMMENTS:
            span = _function_below(doc, node.end_byte, by_first_line) or index.innermost(
                doc.data.count(b"\n", 0, match.start()), first_line=True)
            origin = "comment"
        elif doc.language.name == "python" and (function := _docstring_owner(node)) is not None:
            if not by_definition:
                by_definition = {(s.start_line, s.name_line): s for s in spans}
            name = function.child_by_field_name("name")
            span = by_definition.get((function.start_point.row, name.start_point.row if name else -1))
            origin = "docstring"
        else:
            continue
        call = _call_text(doc, match.end(), node)
        if span is not None and call and id(span) not in calls:
            calls[id(span)] = (call, origin)
    if doc.language.name == "python":
        _add_doctests(doc, spans, calls)
    return [dataclasses.replace(span, call=calls[id(span)][0], source_of_call=calls[id(span)][1])
            if id(span) in calls else span for span in spans]


def _add_doctests(doc: SourceDocument, spans: list[FunctionSpan], calls: dict[int, tuple[str, str]]) -> None:
    examples: dict[tuple[int, int], list[str]] = {}
    root = doc.root
    for match in _DOCTEST.finditer(doc.data):
        prompt = match.end() - 4
        node = root.descendant_for_byte_range(prompt, prompt + 3)
        function = _docstring_owner(node) if node is not None else None
        if function is None:
            continue
        name = function.child_by_field_name("name")
        key = (function.start_point.row, name.start_point.row if name else -1)
        expression = doc.data[match.end() : min(_line_end(doc.data, match.end()), node.end_byte)]
        examples.setdefault(key, []).append(expression.decode("utf-8", "replace").strip())
    if not examples:
        return
    for span in spans:
        found = examples.get((span.start_line, span.name_line))
        if found and id(span) not in calls:
            calls[id(span)] = (found[0] if len(found) == 1 else "(" + ", ".join(found) + ")", "doctest")


def bench_template(span: FunctionSpan, source: str | SourceDocument, language: Language) -> tuple[int, str]:
    """(line to insert at, text) of a `greencoder: bench` comment for the user to complete: above
    the function's comment block, decorators, annotations and template header, at its indentation.
    Java calls are qualified: `Owner.f()` for static methods, else `new Owner().f()`."""
    doc = document(source, language)
    data = doc.data
    lines_before = line_offsets(doc)
    header_start = lines_before[span.start_line] if span.start_line < len(lines_before) else len(data)
    header = data[header_start : _line_end(data, header_start)].decode("utf-8", "replace")
    indent = header[: len(header) - len(header.lstrip())]
    call = f"{span.name}()"
    if language.name == "java":
        owner = span.owner or "Solution"
        call = f"{owner}.{span.name}()" if span.static else f"new {owner}().{span.name}()"
    first = min(span.first_line, span.start_line) if span.first_line >= 0 else span.start_line
    prefixes = (language.line_comment.encode(), b"/*", b"*", b"*/", b"@")
    while first > 0:
        text = data[lines_before[first - 1] : lines_before[first] - 1].strip()
        if not text or not text.startswith(prefixes):
            break
        first -= 1
    return first, f"{indent}{language.line_comment} greencoder: bench {call}\n"


def line_offsets(doc: SourceDocument) -> list[int]:
    """Byte offset of each line's start (memoised per document)."""
    def compute() -> list[int]:
        return [0, *(match.end() for match in re.finditer(rb"\n", doc.data))]
    return doc.memo("line offsets", compute)  # type: ignore[return-value]


