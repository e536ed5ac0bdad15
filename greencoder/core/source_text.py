"""Reading C-family source text without a parser: blank comments and literals, find Java types.

Shared by the sandbox (file and main-class names for javac/java) and the measurement harness, so
both agree on which class a file declares.
"""

from __future__ import annotations

import re

_BLANKABLE = re.compile(
    r'"""[\s\S]*?"""'  # Java text block
    r"|//[^\n]*|/\*[\s\S]*?(?:\*/|$)"  # comments
    r'|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\''  # string and character literals
)
_PUBLIC_TYPE = re.compile(
    r"\bpublic\s+(?:(?:abstract|final|strictfp|sealed|non-sealed)\s+)*(?:class|interface|enum|record|@interface)\s+"
    r"([A-Za-z_$][\w$]*)"
)


def blank_comments_and_strings(code: str) -> str:
    """`code` with comments and literals replaced by spaces (newlines kept): same length, so an
    offset found in the result is an offset into `code`, and "class" in a comment is no declaration."""
    return _BLANKABLE.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), code)


def java_public_class(source: str) -> str | None:
    """The top-level public type's name, which javac requires as the file name."""
    code = blank_comments_and_strings(source)
    for match in _PUBLIC_TYPE.finditer(code):
        before = code[: match.start()]
        if before.count("{") == before.count("}"):
            return match.group(1)
    return None
