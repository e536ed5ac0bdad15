"""Which function is under the cursor, and what call measures it: the server's view of the source
model (`greencoder.core.source`), which finds functions with tree-sitter and reads workloads
(`greencoder: bench <call>` comments, docstring lines, doctests).

`source` may be text or a `SourceDocument`; pass the document the server keeps per version so the
parse and the function list are computed once per version.
"""

from __future__ import annotations

from greencoder.core.languages import Language
from greencoder.core.source import (
    FunctionSpan,
    SourceDocument,
    bench_template,
    function_at,
    function_named,
    functions_in,
)

__all__ = ["FunctionSpan", "SourceDocument", "bench_template", "function_at", "function_named", "functions_in"]


def python_functions(source: str | SourceDocument) -> list[FunctionSpan]:
    """Deprecated: `functions_in(source, PYTHON)`; kept until server.py calls `functions_in`."""
    from greencoder.core.languages import PYTHON

    return functions_in(source, PYTHON)


def braced_functions(source: str | SourceDocument, language: Language) -> list[FunctionSpan]:
    """Deprecated: `functions_in(source, language)`; kept until server.py calls `functions_in`."""
    return functions_in(source, language)
