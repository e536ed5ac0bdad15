"""The source model's questions: every function of a file, the function at a line, by name.

`functions_in` answers for the whole file once per document version (memoised). `function_at`
answers from the functions around one line only (a query restricted to that byte range), so a code
action or hover on a 1 MB file costs well under a millisecond after the (incremental) parse.
"""

from __future__ import annotations

import bisect
import re

from greencoder.core.languages import Language
from greencoder.core.source.functions import (
    FunctionSpan,
    SpanIndex,
    captures,
    definition_nodes,
    spans,
)
from greencoder.core.source.parsing import SourceDocument, document
from greencoder.core.source.workloads import attach_workloads, leading_line


def prepare(language: Language) -> None:
    """Load the grammar and compile the queries now (tens of ms for C++), e.g. in a worker thread at
    server start, so the first code action does not pay for it."""
    doc = SourceDocument("", language)
    functions_in(doc, language)
    function_at(doc, language, 0)


def functions_in(source: str | SourceDocument, language: Language) -> list[FunctionSpan]:
    """Every function of `source` with a body, in order of start line, each with its workload."""
    doc = document(source, language)
    return doc.memo("functions", lambda: attach_workloads(doc, spans(doc), definition_nodes(doc)))  # type: ignore[return-value]


def function_named(source: str | SourceDocument, language: Language, name: str) -> FunctionSpan | None:
    """The first function called `name`, with its workload. Looks only at the places where the
    name occurs as a word (each checked with `function_at` on its line), not at the whole file."""
    doc = document(source, language)
    if (language.name == "python" and doc.has_errors) or not name:
        return next((span for span in functions_in(doc, language) if span.name == name), None)
    word = re.compile(rb"(?<![\w$~])" + re.escape(name.encode()) + rb"(?![\w$])")
    offsets = doc.line_offsets()
    for match in word.finditer(doc.data):
        row = bisect.bisect_right(offsets, match.start()) - 1
        span = function_at(doc, language, row)
        if span is not None and span.name == name and span.name_line == row:
            return span
    return None


def function_at(source: str | SourceDocument, language: Language, line: int) -> FunctionSpan | None:
    """The innermost function whose header or body contains `line` (0-based), with its workload."""
    doc = document(source, language)
    if language.name == "python" and doc.has_errors:  # recovered functions come from the whole file
        return SpanIndex(functions_in(doc, language)).innermost(line)
    offsets = doc.line_offsets()
    if not 0 <= line < len(offsets) - 1:
        return None
    around = spans(doc, offsets[line], offsets[line + 1])
    span = SpanIndex(around).innermost(line)
    if span is None:
        return None
    start = offsets[leading_line(doc, span)]
    end = offsets[min(span.end_line + 1, len(offsets) - 1)]
    found = captures(doc, start, end)
    region = spans(doc, start, end)
    with_workloads = attach_workloads(doc, region, found.get("function", []), start, end)
    return next((s for s in with_workloads if (s.start_line, s.name_line, s.name) == (span.start_line, span.name_line, span.name)), span)
