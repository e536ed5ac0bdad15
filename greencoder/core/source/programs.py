"""Facts about whole programs that building, running and post-processing them need.

The sandbox and the measurement harness need the Java file's public class, the class with `main`
and the `package` line; the evaluation harnesses need where a function's body opens and closes,
whether code calls a function, and code without its comments and literals; post-processing needs
the function a prompt ends in and where a restated function's body starts. All come from the same
tree-sitter parse as the server's functions, so every part agrees on what the code declares.
Offsets are into the text (characters), like `str` indices.
"""

from __future__ import annotations

import tree_sitter

from greencoder.core.languages import JAVA, Language
from greencoder.core.source.functions import (
    FunctionSpan,
    definition_name,
    definition_nodes,
    spans,
)
from greencoder.core.source.parsing import SourceDocument, document, query

_JAVA_PUBLIC_TYPE = """
(program [(class_declaration (modifiers "public") name: (identifier) @name)
          (interface_declaration (modifiers "public") name: (identifier) @name)
          (enum_declaration (modifiers "public") name: (identifier) @name)
          (record_declaration (modifiers "public") name: (identifier) @name)
          (annotation_type_declaration (modifiers "public") name: (identifier) @name)])
"""
_JAVA_PACKAGE = "(program (package_declaration) @package)"
_LITERALS_AND_COMMENTS = {
    "python": "[(comment) (string)] @blank",
    "cpp": "[(comment) (string_literal) (char_literal) (raw_string_literal)] @blank",
    "java": "[(line_comment) (block_comment) (string_literal) (character_literal)] @blank",
}
_CALLS = {
    "python": "(call function: (identifier) @callee)",
    "cpp": "(call_expression function: (identifier) @callee)",
    "java": "(method_invocation name: (identifier) @callee)",
}
_DECLARATIONS = {
    "python": "(function_definition name: (identifier) @name)",
    "cpp": """
        (declaration declarator: (function_declarator declarator: (_) @name))
        (field_declaration declarator: (function_declarator declarator: (_) @name))
    """,
    "java": "(method_declaration name: (identifier) @name)",
}


def _captured(doc: SourceDocument, text: str, capture: str) -> list[tree_sitter.Node]:
    found = tree_sitter.QueryCursor(query(doc.language.name, text)).captures(doc.root)
    return sorted(found.get(capture, []), key=lambda node: node.start_byte)


# ---------------------------------------------------------------------------------------------
# Java files


def java_public_class(source: str | SourceDocument) -> str | None:
    """The top-level public type's name, which javac requires as the file name."""
    doc = document(source, JAVA)
    names = _captured(doc, _JAVA_PUBLIC_TYPE, "name")
    return doc.node_text(names[0]) if names else None


def java_main_class(source: str | SourceDocument) -> str | None:
    """The class declaring `static void main(...)` (the innermost one around it); without a
    main, the public class."""
    doc = document(source, JAVA)
    for span in spans(doc):
        if span.name == "main" and span.static and span.owner:
            return span.owner
    return java_public_class(doc)


def java_package_range(source: str | SourceDocument) -> tuple[int, int] | None:
    """(start, end) of the top-level `package ...;` declaration, if there is one."""
    doc = document(source, JAVA)
    found = _captured(doc, _JAVA_PACKAGE, "package")
    return (doc.char_offset(found[0].start_byte), doc.char_offset(found[0].end_byte)) if found else None


# ---------------------------------------------------------------------------------------------
# functions of a program


def last_function(source: str | SourceDocument, language: Language) -> FunctionSpan | None:
    """The last function that starts in `source`: for a prompt, the one it ends in (its body may
    be unclosed: tree-sitter supplies the missing brace)."""
    found = spans(document(source, language))
    return max(found, key=lambda span: (span.name_line, span.name_column)) if found else None


def _definition(doc: SourceDocument, name: str) -> tree_sitter.Node | None:
    return next((node for node in definition_nodes(doc) if definition_name(doc, node) == name), None)


def body_bounds(source: str | SourceDocument, language: Language, name: str) -> tuple[int, int | None] | None:
    """For the first function called `name` with a braced body: (offset just after the `{` that
    opens its body, offset of the `}` that closes it, or None when the text ends first)."""
    doc = document(source, language)
    node = _definition(doc, name)
    body = node.child_by_field_name("body") if node is not None else None
    if body is None or body.child_count == 0 or body.child(0).type != "{":
        return None
    close = body.child(body.child_count - 1)
    closed = close.type == "}" and not close.is_missing
    return doc.char_offset(body.child(0).end_byte), doc.char_offset(close.start_byte) if closed else None


def defines_function(source: str | SourceDocument, language: Language, name: str) -> bool:
    """Whether `source` defines or declares a function (method) called `name`."""
    doc = document(source, language)
    if any(definition_name(doc, node) == name for node in definition_nodes(doc)):
        return True
    for node in _captured(doc, _DECLARATIONS[language.name], "name"):
        while node.type == "qualified_identifier":
            node = node.child_by_field_name("name")
        if doc.node_text(node) == name:
            return True
    return False


def calls_function(source: str | SourceDocument, language: Language, name: str) -> bool:
    """Whether code (not a comment or string) in `source` calls a plain function `name`."""
    doc = document(source, language)
    return any(doc.node_text(node) == name for node in _captured(doc, _CALLS[language.name], "callee"))


def blank_comments_and_strings(source: str | SourceDocument, language: Language) -> str:
    """The text with comments and string/character literals replaced by spaces (line breaks
    kept): same length, so an offset found in the result is an offset into the text."""
    doc = document(source, language)
    pieces: list[str] = []
    byte = 0
    for node in _captured(doc, _LITERALS_AND_COMMENTS[language.name], "blank"):
        if node.start_byte < byte:
            continue  # nested in one already blanked (a comment inside a Python f-string, say)
        kept = doc.data[byte : node.start_byte].decode("utf-8", "replace")
        blanked = doc.data[node.start_byte : node.end_byte].decode("utf-8", "replace")
        pieces.append(kept)
        pieces.append("".join(c if c in "\r\n" else " " for c in blanked))
        byte = node.end_byte
    pieces.append(doc.data[byte:].decode("utf-8", "replace"))
    return "".join(pieces)


__all__ = [
    "blank_comments_and_strings", "body_bounds", "calls_function", "defines_function", "java_main_class",
    "java_package_range", "java_public_class", "last_function",
]
