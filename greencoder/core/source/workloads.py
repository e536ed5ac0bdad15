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

import bisect
import re
from collections.abc import Callable

import tree_sitter

from greencoder.core.languages import Language
from greencoder.core.source.functions import FunctionSpan, SpanIndex
from greencoder.core.source.parsing import SourceDocument, document

BENCH_MARKER = re.compile(rb"greencoder:[ \t]*bench[ \t]+")
_DOCTEST = re.compile(rb">>> ")
_COMMENTS = frozenset({"comment", "line_comment", "block_comment"})
_LEADING = (b"#", b"//", b"/*", b"*", b"@", b"template", b"[[")


def _line_end(data: bytes, position: int) -> int:
    end = data.find(b"\n", position)
    return len(data) if end == -1 else end


def docstring_node(function: tree_sitter.Node) -> tree_sitter.Node | None:
    """The string node of a Python function's docstring, if it has one."""
    body = function.child_by_field_name("body")
    if body is None:
        return None
    for number in range(body.named_child_count):
        statement = body.named_child(number)
        if statement is None or statement.type == "comment":
            continue
        if statement.type != "expression_statement" or statement.named_child_count != 1:
            return None
        string = statement.named_child(0)
        return string if string is not None and string.type == "string" else None
    return None


class _Docstrings:
    """Which function's docstring holds a byte: the last function starting before it is the only
    candidate, because nothing can start between a function's header and its docstring."""

    def __init__(self, nodes: list[tree_sitter.Node]) -> None:
        self.nodes = nodes
        self.starts = [node.start_byte for node in self.nodes]
        self._strings: dict[int, tree_sitter.Node | None] = {}

    def owner(self, position: int) -> tuple[int, tree_sitter.Node] | None:
        """(index of the function in `nodes`, its docstring's string node) when `position` lies
        inside a docstring."""
        index = bisect.bisect_right(self.starts, position) - 1
        if index < 0:
            return None
        if index not in self._strings:
            self._strings[index] = docstring_node(self.nodes[index])
        string = self._strings[index]
        if string is None or not string.start_byte <= position < string.end_byte:
            return None
        return index, string


def _content_end(node: tree_sitter.Node) -> int:
    """Where a comment's or string's text ends: before a string's closing quotes."""
    if node.type == "string" and node.child_count and node.child(node.child_count - 1).type == "string_end":
        return node.child(node.child_count - 1).start_byte
    return node.end_byte


def _call_text(doc: SourceDocument, start: int, node: tree_sitter.Node) -> str:
    """The call written after a marker: the rest of its line, inside the comment or string."""
    end = min(_line_end(doc.data, start), _content_end(node))
    text = doc.data[start:end].decode("utf-8", "replace").strip()
    if text.endswith("*/"):
        text = text[:-2].rstrip()
    return text.rstrip(";").strip()


def _function_below(doc: SourceDocument, comment: tree_sitter.Node, by_first_line: dict[int, int]) -> int | None:
    """The function (index) whose header follows the comment block holding `comment`, with only
    comment, decorator, annotation or template lines between (a blank line ends the block)."""
    data = doc.data
    line_end = _line_end(data, comment.end_byte)
    row = comment.end_point.row
    while line_end < len(data):
        row += 1
        start = line_end + 1
        line_end = _line_end(data, start)
        if row in by_first_line:
            return by_first_line[row]
        text = data[start:line_end].strip()
        if not text or not text.startswith(_LEADING):
            return None
    return None


class _Lookups:
    """Indexes over the spans, built on first use (most functions have no marker)."""

    def __init__(self, spans: list[FunctionSpan]) -> None:
        self.spans = spans
        self._index: SpanIndex | None = None
        self._by_first_line: dict[int, int] | None = None
        self._by_header: dict[tuple[int, int], int] | None = None

    def innermost(self, row: int) -> int | None:
        if self._index is None:
            self._index = SpanIndex(self.spans)
        return self._index.innermost_index(row, first_line=True)

    def by_first_line(self) -> dict[int, int]:
        if self._by_first_line is None:
            self._by_first_line = {}
            for number, span in enumerate(self.spans):
                self._by_first_line.setdefault(span.first_line if span.first_line >= 0 else span.start_line, number)
                self._by_first_line.setdefault(span.start_line, number)
        return self._by_first_line

    def by_header(self, function: tree_sitter.Node) -> int | None:
        """The span of a definition node, by its header and name lines."""
        if self._by_header is None:
            self._by_header = {(span.start_line, span.name_line): number for number, span in enumerate(self.spans)}
        name = function.child_by_field_name("name")
        return self._by_header.get((function.start_point.row, name.start_point.row if name is not None else -1))


def attach_workloads(doc: SourceDocument, spans: list[FunctionSpan], nodes: list[tree_sitter.Node],
                     start: int = 0, end: int | None = None) -> list[FunctionSpan]:
    """`spans` with `call` / `source_of_call` set from the markers and doctests in bytes
    [start, end) of `doc`. `nodes` are the definition nodes the spans were made from; the spans
    must include every function a marker in the range could belong to."""
    end = len(doc.data) if end is None else end
    if not spans:
        return spans
    lookups = _Lookups(spans)
    docstrings = _Docstrings(nodes) if doc.language.name == "python" else None
    # Python definitions and their spans are in the same order unless error recovery added spans
    same_order = docstrings is not None and len(nodes) == len(spans) and not doc.has_errors

    def span_of(index: int) -> int | None:
        return index if same_order else lookups.by_header(nodes[index])

    calls: dict[int, tuple[str, str]] = {}  # span index -> (call, origin); the first marker wins
    root = doc.root
    for match in BENCH_MARKER.finditer(doc.data, start, end):
        node = root.descendant_for_byte_range(match.start(), match.end())
        if node is None:
            continue
        if node.type in _COMMENTS:
            below = _function_below(doc, node, lookups.by_first_line())
            if below is None:
                below = lookups.innermost(node.start_point.row + doc.data.count(b"\n", node.start_byte, match.start()))
            number, origin = below, "comment"
        elif docstrings is not None and (found := docstrings.owner(match.start())) is not None:
            node = found[1]
            number, origin = span_of(found[0]), "docstring"
        else:
            continue
        call = _call_text(doc, match.end(), node)
        if number is not None and call and number not in calls:
            calls[number] = (call, origin)
    if docstrings is not None:
        _add_doctests(doc, docstrings, span_of, calls, start, end)
    if not calls:
        return spans
    result = list(spans)
    for number, (call, origin) in calls.items():
        result[number] = result[number]._replace(call=call, source_of_call=origin)
    return result


def _add_doctests(doc: SourceDocument, docstrings: _Docstrings, span_of: Callable[[int], int | None],
                  calls: dict[int, tuple[str, str]], start: int, end: int) -> None:
    """A call for each function without a marker whose docstring has `>>> ` examples."""
    examples: dict[int, list[str]] = {}
    data = doc.data
    for match in _DOCTEST.finditer(data, start, end):
        found = docstrings.owner(match.start())
        number = span_of(found[0]) if found is not None else None
        if number is None or number in calls:
            continue
        string = found[1]  # type: ignore[index]
        opening = string.child(0)  # string_start: the prompt must start a line of the docstring's text
        line_start = max(data.rfind(b"\n", 0, match.start()) + 1, opening.end_byte if opening is not None else 0)
        if data[line_start : match.start()].strip():
            continue
        expression = data[match.end() : min(_line_end(data, match.end()), _content_end(string))]
        examples.setdefault(number, []).append(expression.decode("utf-8", "replace").strip())
    for number, found_examples in examples.items():
        text = found_examples[0] if len(found_examples) == 1 else "(" + ", ".join(found_examples) + ")"
        calls[number] = (text, "doctest")


def leading_line(doc: SourceDocument, span: FunctionSpan) -> int:
    """First line of the function with its decorators / annotations / template header and the
    comment lines right above them (a blank line ends them)."""
    data, offsets = doc.data, doc.line_offsets()
    first = min(span.first_line, span.start_line) if span.first_line >= 0 else span.start_line
    prefixes = (doc.language.line_comment.encode(), b"/*", b"*", b"*/", b"@")
    while first > 0:
        text = data[offsets[first - 1] : offsets[first] - 1].strip()
        if not text or not text.startswith(prefixes):
            break
        first -= 1
    return first


def bench_template(span: FunctionSpan, source: str | SourceDocument, language: Language) -> tuple[int, str]:
    """(line to insert at, text) of a `greencoder: bench` comment for the user to complete: above
    the function's comment block, decorators, annotations and template header, at its indentation.
    Java calls are qualified: `Owner.f()` for static methods, else `new Owner().f()`."""
    doc = document(source, language)
    offsets = doc.line_offsets()
    header_start = offsets[span.start_line] if span.start_line < len(offsets) else len(doc.data)
    header = doc.data[header_start : _line_end(doc.data, header_start)].decode("utf-8", "replace")
    indent = header[: len(header) - len(header.lstrip())]
    call = f"{span.name}()"
    if language.name == "java":
        owner = span.owner or "Solution"
        call = f"{owner}.{span.name}()" if span.static else f"new {owner}().{span.name}()"
    return leading_line(doc, span), f"{indent}{language.line_comment} greencoder: bench {call}\n"
