"""Deprecated: reading C-family text without a parser. Use `greencoder.core.source.programs`.

What replaces what (the callers in measurement/, sandbox/ and evaluation/ switch, then this module
goes):
- `blank_comments_and_strings(code)` -> `programs.blank_comments_and_strings(code, language)`, or
  better the question it serves: `defines_function`, `calls_function`, `body_bounds`,
  `java_package_range`.
- `java_public_class(source)` -> `programs.java_public_class(source)` (already delegated here).
"""

from __future__ import annotations

import re

from greencoder.core.source.programs import java_public_class

_BLANKABLE = re.compile(
    r'"""[\s\S]*?"""'  # Java text block
    r"|//[^\n]*|/\*[\s\S]*?(?:\*/|$)"  # comments
    r'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''  # string and character literals
)


def blank_comments_and_strings(code: str) -> str:
    """`code` with comments and literals replaced by spaces (newlines kept): same length, so an
    offset found in the result is an offset into `code`, and "class" in a comment is no declaration."""
    return _BLANKABLE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), code)


__all__ = ["blank_comments_and_strings", "java_public_class"]
