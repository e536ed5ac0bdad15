"""The functions and methods of a Python, C++ or Java source, found with tree-sitter queries.

Definitions are matched by a query (C-side, in slices so a worker thread hands over the GIL), and
only the few fields a span needs are read in Python, without `Node.parent` (which tree-sitter
computes by descending from the root). A query can also be limited to a byte range, which is how
the per-line and per-name lookups of `greencoder.core.source.model` avoid listing the whole file.
Lambdas are not functions here (they cannot be measured by name), nor are declarations without a
body.

A file mid-edit still has functions: tree-sitter recovers from most errors by itself. Python is
the exception, because an unclosed bracket or string swallows the rest of the file into an ERROR
node: there, each `def` line not already found in an error-free definition becomes a function whose
body ends where the indentation returns to the `def`'s level (`_python_by_indentation`).
"""

from __future__ import annotations

import bisect
import re
from typing import NamedTuple

import tree_sitter

from greencoder.core.source.parsing import SourceDocument, query


class FunctionSpan(NamedTuple):
    """One function or method. Lines are 0-based; columns count characters (code points).

    A NamedTuple rather than a frozen dataclass: as immutable, and several times cheaper to make,
    which counts when a file has thousands of functions."""

    name: str
    start_line: int
    """First line of the header: the `def` / return type / modifiers line, after decorators,
    annotations, `template <...>` and attributes."""
    end_line: int
    """Last line of the body."""
    name_line: int
    name_column: int
    call: str | None = None
    """The workload, when the user wrote one (see `greencoder.core.source.workloads`)."""
    source_of_call: str | None = None
    """"comment", "docstring" or "doctest"."""
    owner: str | None = None
    """The enclosing class (C++: also the `A` of an out-of-class `A::f`)."""
    static: bool = False
    """Java/C++ `static`, Python `@staticmethod`: callable without an instance."""
    first_line: int = -1
    """First line of the definition with its decorators / annotations / template header (not the
    comments above it)."""


_QUERIES = {
    # @function: every definition; the other captures give context without Node.parent, which
    # tree-sitter computes by descending from the root (slow beside thousands of siblings).
    "python": """
        (function_definition) @function
        (decorated_definition) @decorated
        (class_definition) @class
    """,
    "cpp": """
        (function_definition body: (_)) @function
        (template_declaration (function_definition) @function) @template
        (class_specifier body: (_)) @class
        (struct_specifier body: (_)) @class
        (union_specifier body: (_)) @class
    """,
    "java": """
        (method_declaration body: (_)) @function
        (constructor_declaration) @function
        (compact_constructor_declaration) @function
        (class_declaration) @class
        (interface_declaration) @class
        (enum_declaration) @class
        (record_declaration) @class
    """,
}
_STATIC = re.compile(rb"\bstatic\b")
_PREFIX_NODES = frozenset({"decorator", "annotation", "marker_annotation", "attribute_declaration", "comment",
                           "line_comment", "block_comment", "attribute_specifier"})
_CPP_NAMES = frozenset({"identifier", "field_identifier", "operator_name", "destructor_name", "qualified_identifier",
                        "template_function", "template_method", "operator_cast"})
_JAVA_MEMBERS = frozenset({"method_declaration", "constructor_declaration", "compact_constructor_declaration"})


class SpanIndex:
    """Innermost-span lookups in O(log n + depth) over spans in source order (nested spans nest)."""

    def __init__(self, spans: list[FunctionSpan]) -> None:
        self.spans = spans
        self.starts = [span.start_line for span in spans]
        self.reach: list[int] = []
        furthest = -1
        for span in spans:
            furthest = max(furthest, span.end_line)
            self.reach.append(furthest)

    def innermost(self, line: int, first_line: bool = False) -> FunctionSpan | None:
        """The latest-starting span that contains `line`; with `first_line`, a span's decorators
        and template header count as part of it."""
        index = self.innermost_index(line, first_line)
        return None if index is None else self.spans[index]

    def innermost_index(self, line: int, first_line: bool = False) -> int | None:
        """The index of `innermost(line, first_line)`."""
        index = bisect.bisect_right(self.starts, line) - 1
        if first_line:  # a decorator line lies before the start line: look a little further down
            while index + 1 < len(self.spans) and 0 <= self.spans[index + 1].first_line <= line:
                index += 1
        while index >= 0 and self.reach[index] >= line:
            span = self.spans[index]
            start = min(span.start_line, span.first_line) if first_line and span.first_line >= 0 else span.start_line
            if start <= line <= span.end_line:
                return index
            index -= 1
        return None


_SLICE = 64 * 1024
"""A whole-file query runs in slices of this many bytes: between slices, Python code runs, so a
worker thread gives the GIL to the event loop (a query holds it while it runs)."""


def captures(doc: SourceDocument, start: int | None = None, end: int | None = None) -> dict[str, list[tree_sitter.Node]]:
    """The query's captures by name, each list in source order and without duplicates: of the
    whole file (memoised per document), or of the nodes that intersect bytes [start, end)."""
    if start is None:
        return doc.memo("captures", lambda: _captures_in_slices(doc))  # type: ignore[return-value]
    return _sorted(_query_range(doc, start, end if end is not None else len(doc.data)))


def _query_range(doc: SourceDocument, start: int, end: int) -> dict[str, list[tree_sitter.Node]]:
    cursor = tree_sitter.QueryCursor(query(doc.language.name, _QUERIES[doc.language.name]))
    cursor.set_byte_range(start, max(end, start + 1))
    return cursor.captures(doc.root)


def _captures_in_slices(doc: SourceDocument) -> dict[str, list[tree_sitter.Node]]:
    merged: dict[str, list[tree_sitter.Node]] = {}
    for start in range(0, max(len(doc.data), 1), _SLICE):
        for name, nodes in _query_range(doc, start, start + _SLICE).items():
            merged.setdefault(name, []).extend(nodes)
    return _sorted(merged)


def _sorted(found: dict[str, list[tree_sitter.Node]]) -> dict[str, list[tree_sitter.Node]]:
    return {name: sorted({node.id: node for node in nodes}.values(), key=lambda node: node.start_byte)
            for name, nodes in found.items()}


def definition_nodes(doc: SourceDocument) -> list[tree_sitter.Node]:
    """The definition nodes of the functions, in source order."""
    return captures(doc).get("function", [])


class _Context:
    """What a definition's ancestors say about it, gathered top-down from the captures."""

    def __init__(self, doc: SourceDocument, found: dict[str, list[tree_sitter.Node]]) -> None:
        self.first_row: dict[int, int] = {}  # definition start byte -> row of its decorators / template
        self.owner: dict[int, str] = {}  # definition start byte -> enclosing class name
        self.static: set[int] = set()
        for outer in found.get("decorated", []) + found.get("template", []):
            inner = outer.child_by_field_name("definition") if outer.type == "decorated_definition" else \
                next((child for child in outer.named_children if child.type == "function_definition"), None)
            if inner is not None:
                self.first_row[inner.start_byte] = outer.start_point.row
                if outer.type == "decorated_definition" and b"@staticmethod" in doc.data[outer.start_byte : inner.start_byte]:
                    self.static.add(inner.start_byte)
        for klass in found.get("class", []):
            name = klass.child_by_field_name("name")
            body = klass.child_by_field_name("body")
            if name is None or body is None:
                continue
            owner = doc.node_text(name)
            for member in self._members(body):
                self.owner[member.start_byte] = owner

    @staticmethod
    def _members(body: tree_sitter.Node) -> list[tree_sitter.Node]:
        members = []
        for child in body.named_children:
            kind = child.type
            if kind == "decorated_definition":
                child = child.child_by_field_name("definition") or child
            elif kind in ("template_declaration", "enum_body_declarations"):
                members.extend(grand for grand in child.named_children if grand.type in _JAVA_MEMBERS
                               or grand.type == "function_definition")
                continue
            members.append(child)
        return members


def spans(doc: SourceDocument, start: int | None = None, end: int | None = None) -> list[FunctionSpan]:
    """The functions of the whole file (memoised), or of those intersecting bytes [start, end),
    in order of their start lines; without workloads."""
    if start is None:
        return doc.memo("spans", lambda: _spans(doc, captures(doc)))  # type: ignore[return-value]
    return _spans(doc, captures(doc, start, end))


def _spans(doc: SourceDocument, found: dict[str, list[tree_sitter.Node]]) -> list[FunctionSpan]:
    language = doc.language.name
    nodes = found.get("function", [])
    if language == "python" and doc.has_errors:
        nodes = [node for node in nodes if not node.has_error]
    context = _Context(doc, found)
    make = {"python": _python_span, "cpp": _cpp_span, "java": _java_span}[language]
    spans = [span for node in nodes if (span := make(doc, node, context)) is not None]
    if language == "python" and doc.has_errors:
        spans = _python_by_indentation(doc, spans)
    spans.sort(key=lambda span: span.start_line)
    return spans


def definition_name(doc: SourceDocument, node: tree_sitter.Node) -> str | None:
    """The name a definition node declares (`f` for C++ `A::f`), or None for an unnamed one."""
    if doc.language.name == "cpp":
        name, _scope = _cpp_name(node.child_by_field_name("declarator"))
        if name is not None and name.type in ("template_function", "template_method"):
            name = name.child_by_field_name("name") or name
    else:
        name = node.child_by_field_name("name")
    return doc.node_text(name) if name is not None else None


def _span(doc: SourceDocument, node: tree_sitter.Node, name: tree_sitter.Node, owner: str | None, static: bool,
          first_row: int | None, header_row: int | None = None) -> FunctionSpan:
    """A span from a definition node and its name node, reading each position once."""
    name_start, name_end = name.byte_range
    name_row, column = name.start_point
    if not doc.ascii:
        column = doc.character(name_start - column, name_start)
    start_row = node.start_point.row
    return FunctionSpan(doc.data[name_start:name_end].decode("utf-8", "replace"),
                        start_row if header_row is None else header_row, node.end_point.row, name_row, column,
                        None, None, owner, static, start_row if first_row is None else first_row)


def _header_row(doc: SourceDocument, node: tree_sitter.Node) -> int | None:
    """Row of the first child that is not an annotation or attribute; None (the node's first row)
    unless the definition starts with one (`[[...]]`, `@...`): only those need a look at the children."""
    if doc.data[node.start_byte : node.start_byte + 1] not in (b"[", b"@"):
        return None
    for child in node.children:
        if child.type == "modifiers":
            for modifier in child.children:
                if modifier.type not in _PREFIX_NODES:
                    return modifier.start_point.row
            continue
        if child.type not in _PREFIX_NODES:
            return child.start_point.row
    return None


def _python_span(doc: SourceDocument, node: tree_sitter.Node, context: _Context) -> FunctionSpan:
    key = node.start_byte
    return _span(doc, node, node.child_by_field_name("name"), context.owner.get(key), key in context.static,
                 context.first_row.get(key))


def _cpp_name(declarator: tree_sitter.Node | None) -> tuple[tree_sitter.Node | None, tree_sitter.Node | None]:
    """(name node, scope node) of a function definition's declarator chain."""
    while declarator is not None and declarator.type != "function_declarator":
        if declarator.type == "operator_cast":
            return declarator, None
        inner = declarator.child_by_field_name("declarator")
        if inner is None:
            named = [child for child in declarator.named_children if child.type.endswith("declarator")]
            inner = named[-1] if named else None
        declarator = inner
    if declarator is None:
        return None, None
    name = declarator.child_by_field_name("declarator")
    scope = None
    while name is not None and name.type == "qualified_identifier":
        scope = name.child_by_field_name("scope")
        name = name.child_by_field_name("name")
    return name, scope


def _cpp_span(doc: SourceDocument, node: tree_sitter.Node, context: _Context) -> FunctionSpan | None:
    name, scope = _cpp_name(node.child_by_field_name("declarator"))
    if name is None or name.type not in _CPP_NAMES:
        return None
    if name.type in ("template_function", "template_method"):
        name = name.child_by_field_name("name") or name
    key = node.start_byte
    owner = doc.node_text(scope) if scope is not None else context.owner.get(key)
    static = _STATIC.search(doc.data, key, name.start_byte) is not None
    return _span(doc, node, name, owner, static, context.first_row.get(key), _header_row(doc, node))


def _java_span(doc: SourceDocument, node: tree_sitter.Node, context: _Context) -> FunctionSpan:
    name = node.child_by_field_name("name")
    key = node.start_byte
    static = _STATIC.search(doc.data, key, name.start_byte) is not None
    return _span(doc, node, name, context.owner.get(key), static, None, _header_row(doc, node))


_PYTHON_DEF = re.compile(rb"^([ \t]*)(?:async[ \t]+)?def[ \t]+([A-Za-z_]\w*)[ \t]*\(", re.MULTILINE)


def _python_by_indentation(doc: SourceDocument, good: list[FunctionSpan]) -> list[FunctionSpan]:
    """`good` plus a span per `def` line that no error-free definition starts at (see module doc)."""
    data = doc.data
    known = {span.start_line for span in good}
    found = []
    row, counted = 0, 0
    for match in _PYTHON_DEF.finditer(data):
        row += data.count(b"\n", counted, match.start())
        counted = match.start()
        if row in known:
            continue
        level = len(match.group(1).expandtabs())
        end, position, line = row, data.find(b"\n", match.start()), row
        while position != -1:
            line += 1
            next_end = data.find(b"\n", position + 1)
            text = data[position + 1 : next_end if next_end != -1 else len(data)]
            stripped = text.lstrip()
            if stripped:
                if len(text) - len(stripped) <= level and not stripped.startswith((b"#", b")")):
                    break
                end = line
            position = next_end
        name = match.group(2).decode()
        column = doc.character(match.start(), match.start(2))
        found.append(FunctionSpan(name, row, end, row, column, first_line=row))
    return sorted(good + found, key=lambda span: (span.start_line, -span.end_line))
