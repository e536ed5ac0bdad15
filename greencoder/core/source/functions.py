"""The functions and methods of a Python, C++ or Java source, found with tree-sitter queries.

Definitions are matched by a query (C-side), and only the few fields a span needs are read in
Python, so listing every function of a 1 MB file costs a few ms on top of the parse. Lambdas are
not functions here (they cannot be measured by name), nor are declarations without a body.

A file mid-edit still has functions: tree-sitter recovers from most errors by itself. Python is
the exception, because an unclosed bracket or string swallows the rest of the file into an ERROR
node: there, each `def` line not already found in an error-free definition becomes a function whose
body ends where the indentation returns to the `def`'s level (`_python_by_indentation`).
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field

import tree_sitter

from greencoder.core.languages import Language
from greencoder.core.source.parsing import SourceDocument, document, query


@dataclass(frozen=True)
class FunctionSpan:
    """One function or method. Lines are 0-based; columns count characters (code points)."""

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
    first_line: int = field(default=-1, compare=False)
    """First line of the definition with its decorators / annotations / template header (not the
    comments above it)."""


_QUERIES = {
    "python": "(function_definition name: (identifier) @name) @function",
    "cpp": "(function_definition body: (_)) @function",
    "java": """
        (method_declaration name: (identifier) @name body: (_)) @function
        (constructor_declaration name: (identifier) @name) @function
        (compact_constructor_declaration name: (identifier) @name) @function
    """,
}
_PREFIX_NODES = frozenset({"decorator", "annotation", "marker_annotation", "attribute_declaration", "comment",
                           "line_comment", "block_comment", "attribute_specifier"})
_CPP_CLASSES = frozenset({"class_specifier", "struct_specifier", "union_specifier"})
_JAVA_CLASSES = frozenset({"class_declaration", "interface_declaration", "enum_declaration", "record_declaration"})
_CPP_NAMES = frozenset({"identifier", "field_identifier", "operator_name", "destructor_name", "qualified_identifier",
                        "template_function", "template_method", "operator_cast"})


def functions_in(source: str | SourceDocument, language: Language) -> list[FunctionSpan]:
    """Every function of `source` with a body, in source order, each with its workload if any."""
    doc = document(source, language)
    return doc.memo("functions", lambda: _with_workloads(doc))  # type: ignore[return-value]


def function_at(source: str | SourceDocument, language: Language, line: int) -> FunctionSpan | None:
    """The innermost function whose header or body contains `line` (0-based)."""
    doc = document(source, language)
    index = doc.memo("span index", lambda: SpanIndex(functions_in(doc, language)))
    return index.innermost(line)  # type: ignore[attr-defined]


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
        index = bisect.bisect_right(self.starts, line) - 1
        if first_line:  # a decorator line lies before the start line: look a little further down
            while index + 1 < len(self.spans) and self.spans[index + 1].first_line <= line:
                index += 1
        while index >= 0 and self.reach[index] >= line:
            span = self.spans[index]
            start = min(span.start_line, span.first_line) if first_line and span.first_line >= 0 else span.start_line
            if start <= line <= span.end_line:
                return span
            index -= 1
        return None


def _with_workloads(doc: SourceDocument) -> list[FunctionSpan]:
    from greencoder.core.source.workloads import attach_workloads

    return attach_workloads(doc, _spans(doc))


def definition_nodes(doc: SourceDocument) -> list[tree_sitter.Node]:
    """The definition nodes of the functions, in source order (memoised per document)."""
    def compute() -> list[tree_sitter.Node]:
        captures = tree_sitter.QueryCursor(query(doc.language.name, _QUERIES[doc.language.name])).captures(doc.root)
        nodes = captures.get("function", [])
        if doc.language.name == "java":  # three patterns: sort and drop duplicates
            nodes = sorted({node.id: node for node in nodes}.values(), key=lambda node: node.start_byte)
        return nodes
    return doc.memo("definitions", compute)  # type: ignore[return-value]


def _spans(doc: SourceDocument) -> list[FunctionSpan]:
    language = doc.language.name
    nodes = definition_nodes(doc)
    if language == "python" and doc.has_errors:
        nodes = [node for node in nodes if not node.has_error]
    make = {"python": _python_span, "cpp": _cpp_span, "java": _java_span}[language]
    spans = [span for node in nodes if (span := make(doc, node)) is not None]
    if language == "python" and doc.has_errors:
        spans = _python_by_indentation(doc, spans)
    return spans


def _name_column(doc: SourceDocument, name: tree_sitter.Node) -> int:
    point = name.start_point
    line_start = name.start_byte - point.column
    if doc.data[line_start : name.start_byte].isascii():
        return point.column
    return doc.character(line_start, name.start_byte)


def _header_row(node: tree_sitter.Node) -> int:
    """Row of the first child that is not an annotation, decorator or attribute."""
    for child in node.children:
        if child.type == "modifiers":
            for modifier in child.children:
                if modifier.type not in _PREFIX_NODES:
                    return modifier.start_point.row
            continue
        if child.type not in _PREFIX_NODES:
            return child.start_point.row
    return node.start_point.row


def _python_span(doc: SourceDocument, node: tree_sitter.Node) -> FunctionSpan:
    name = node.child_by_field_name("name")
    parent = node.parent
    decorated = parent is not None and parent.type == "decorated_definition"
    outer = parent if decorated else node
    static = decorated and b"@staticmethod" in doc.data[parent.start_byte : node.start_byte]  # type: ignore[union-attr]
    owner = None
    scope = outer.parent
    if scope is not None and scope.type == "block" and scope.parent is not None and scope.parent.type == "class_definition":
        owner = doc.node_text(scope.parent.child_by_field_name("name"))
    row = name.start_point.row
    return FunctionSpan(doc.node_text(name), node.start_point.row, node.end_point.row, row, _name_column(doc, name),
                        owner=owner, static=static, first_line=outer.start_point.row)


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


def _cpp_span(doc: SourceDocument, node: tree_sitter.Node) -> FunctionSpan | None:
    name, scope = _cpp_name(node.child_by_field_name("declarator"))
    if name is None or name.type not in _CPP_NAMES:
        return None
    if name.type in ("template_function", "template_method"):
        name = name.child_by_field_name("name") or name
    owner = doc.node_text(scope) if scope is not None else None
    parent = node.parent
    if owner is None and parent is not None and parent.type == "field_declaration_list":
        klass = parent.parent
        type_name = klass.child_by_field_name("name") if klass is not None and klass.type in _CPP_CLASSES else None
        owner = doc.node_text(type_name) if type_name is not None else None
    static = any(child.type == "storage_class_specifier" and child.text == b"static" for child in node.children)
    outer = parent if parent is not None and parent.type == "template_declaration" else node
    row = name.start_point.row
    return FunctionSpan(doc.node_text(name), _header_row(node), node.end_point.row, row, _name_column(doc, name),
                        owner=owner, static=static, first_line=outer.start_point.row)


def _java_span(doc: SourceDocument, node: tree_sitter.Node) -> FunctionSpan:
    name = node.child_by_field_name("name")
    static = False
    first = node.child(0)
    if first is not None and first.type == "modifiers":
        static = any(child.type == "static" for child in first.children)
    owner = None
    scope = node.parent
    while scope is not None:
        if scope.type in _JAVA_CLASSES:
            type_name = scope.child_by_field_name("name")
            owner = doc.node_text(type_name) if type_name is not None else None
            break
        if scope.type in ("object_creation_expression", "method_declaration", "constructor_declaration"):
            break  # an anonymous or local class: no name to call it by
        scope = scope.parent
    row = name.start_point.row
    return FunctionSpan(doc.node_text(name), _header_row(node), node.end_point.row, row, _name_column(doc, name),
                        owner=owner, static=static, first_line=node.start_point.row)


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
