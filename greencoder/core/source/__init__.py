"""One source model for Python, C++ and Java, on tree-sitter: functions, workloads, program facts.

The server (functions under the cursor, bench comments), post-processing (where the target
function's body is) and the measurement/evaluation harnesses (Java public class, `main`) read
source code through this package, so they agree on what a function is. Files mid-edit parse too
(tree-sitter recovers from errors). `SourceDocument` keeps one parsed version of a file and makes
the next one incrementally.
"""

from greencoder.core.source.functions import (
    FunctionSpan,
    SpanIndex,
    definition_nodes,
)
from greencoder.core.source.model import (
    function_at,
    function_named,
    functions_in,
    prepare,
)
from greencoder.core.source.parsing import (
    ParseCancelled,
    SourceDocument,
    document,
    grammar,
    parse_bytes,
)
from greencoder.core.source.workloads import BENCH_MARKER, bench_template

__all__ = [
    "BENCH_MARKER", "FunctionSpan", "ParseCancelled", "SourceDocument", "SpanIndex", "bench_template",
    "definition_nodes", "document", "function_at", "function_named", "functions_in", "grammar", "parse_bytes", "prepare",
]
