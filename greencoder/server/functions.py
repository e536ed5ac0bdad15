"""Which function is under the cursor, and what call measures it: the server's view of the source
model (`greencoder.core.source`), which finds functions with tree-sitter and reads workloads
(`greencoder: bench <call>` comments, docstring lines, doctests).

`source` may be text or a `SourceDocument`; pass the document the server keeps per version so the
parse and the function list are computed once per version.
"""

from __future__ import annotations

from greencoder.core.source import (
    FunctionSpan,
    SourceDocument,
    bench_template,
    function_at,
    function_named,
    functions_in,
)

__all__ = ["FunctionSpan", "SourceDocument", "bench_template", "function_at", "function_named", "functions_in"]

