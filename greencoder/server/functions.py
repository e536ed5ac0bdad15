"""Which function is under the cursor, and what call measures it.

The workload of "Measure energy" is written by the user, next to the function:
- a comment `greencoder: bench <call expression>` in the lines just above the function (above its
  decorators or doc comment too) or inside it, or such a line in a Python docstring;
- for Python, else the doctest examples of its docstring (`>>> expr`), all of them as one tuple
  expression, so each run repeats every example.
Without one, the editor offers to insert a template comment to fill in.

Python functions are found with `ast`; C++ and Java ones with a scan for `name(params) ... {`
over the text with comments and literals blanked, and brace matching for the body.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from greencoder.core.languages import Language
from greencoder.core.source_text import blank_comments_and_strings

BENCH_MARKER = re.compile(r"greencoder:\s*bench\s+(?P<call>.+?)\s*(?:\*/)?\s*$")
_HEADER = re.compile(r"\b(?P<name>[A-Za-z_]\w*)\s*\([^;{}()]*(?:\([^;{}()]*\)[^;{}()]*)*\)\s*"
                     r"(?:const\s*)?(?:noexcept\s*)?(?:throws\s+[\w.,\s]+)?(?:->\s*[\w:<>,\s*&]+)?\{")
_NOT_FUNCTIONS = {"if", "for", "while", "switch", "catch", "return", "sizeof", "do", "else", "synchronized", "try", "new"}


@dataclass(frozen=True)
class FunctionSpan:
    name: str
    start_line: int  # 0-based, first line of the header (after decorators)
    end_line: int  # 0-based, last line of the body
    name_line: int
    name_column: int
    call: str | None  # the workload, when the user wrote one
    source_of_call: str | None  # "comment", "docstring" or "doctest"


def _bench_call(lines: list[str], first: int, last: int) -> str | None:
    for line in lines[first : last + 1]:
        match = BENCH_MARKER.search(line)
        if match:
            return match.group("call").strip().rstrip(";")
    return None


def _leading_block(lines: list[str], header_line: int, comment: str) -> int:
    """First line of the comment/decorator block right above `header_line`."""
    first = header_line
    while first > 0:
        text = lines[first - 1].strip()
        if text.startswith((comment, "@", "/*", "*", "*/")) and text:
            first -= 1
        else:
            break
    return first


_PYTHON_DEF = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?def[ \t]+(?P<name>[A-Za-z_]\w*)[ \t]*\(")


def python_functions_by_indentation(source: str) -> list[FunctionSpan]:
    """Functions of a file that does not parse (mid-edit): `def` lines, each body ending where the
    indentation returns to the def's level. Only comment workloads are read (no docstring parse)."""
    lines = source.splitlines()
    spans = []
    for number, line in enumerate(lines):
        match = _PYTHON_DEF.match(line)
        if not match:
            continue
        level, end = len(match.group("indent").expandtabs()), number
        for later in range(number + 1, len(lines)):
            text = lines[later]
            if text.strip() and len(text) - len(text.lstrip()) <= level and not text.lstrip().startswith(("#", ")")):
                break
            if text.strip():
                end = later
        above = _leading_block(lines, number, "#")
        call = _bench_call(lines, above, end)
        spans.append(FunctionSpan(match.group("name"), number, end, number, match.start("name"), call, "comment" if call else None))
    return spans


def python_functions(source: str) -> list[FunctionSpan]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return python_functions_by_indentation(source)
    lines = source.splitlines()
    spans = []
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        header = node.lineno - 1
        above = _leading_block(lines, min([header, *(d.lineno - 1 for d in node.decorator_list)]), "#")
        call = _bench_call(lines, above, node.end_lineno - 1)
        origin = "comment" if call else None
        docstring = ast.get_docstring(node) or ""
        if call and any(BENCH_MARKER.search(line) for line in docstring.splitlines()):
            origin = "docstring"
        if call is None:
            examples = [line.strip()[4:] for line in docstring.splitlines() if line.strip().startswith(">>> ")]
            if examples:
                call = examples[0] if len(examples) == 1 else "(" + ", ".join(examples) + ")"
                origin = "doctest"
        column = lines[header].index(node.name, lines[header].index("def"))
        spans.append(FunctionSpan(node.name, header, node.end_lineno - 1, header, column, call, origin))
    return spans


def braced_functions(source: str, language: Language) -> list[FunctionSpan]:
    code = blank_comments_and_strings(source)
    lines = source.splitlines()
    spans = []
    for match in _HEADER.finditer(code):
        name = match.group("name")
        if name in _NOT_FUNCTIONS:
            continue
        depth, end = 0, None
        for index in range(match.end() - 1, len(code)):
            if code[index] == "{":
                depth += 1
            elif code[index] == "}":
                depth -= 1
                if depth == 0:
                    end = index
                    break
        if end is None:
            continue
        name_offset = match.start("name")
        header_line = code.count("\n", 0, name_offset)
        column = name_offset - (code.rfind("\n", 0, name_offset) + 1)
        end_line = code.count("\n", 0, end)
        above = _leading_block(lines, header_line, language.line_comment)
        call = _bench_call(lines, above, end_line)
        spans.append(FunctionSpan(name, header_line, end_line, header_line, column, call, "comment" if call else None))
    return spans


def function_at(source: str, language: Language, line: int) -> FunctionSpan | None:
    """The innermost function whose header or body contains `line` (0-based)."""
    spans = python_functions(source) if language.name == "python" else braced_functions(source, language)
    containing = [s for s in spans if s.start_line <= line <= s.end_line]
    return min(containing, key=lambda s: s.end_line - s.start_line) if containing else None


def bench_template(span: FunctionSpan, source: str, language: Language) -> tuple[int, str]:
    """(line to insert at, text) of a `greencoder: bench` comment for the user to complete."""
    lines = source.splitlines()
    header = lines[span.start_line] if span.start_line < len(lines) else ""
    indent = header[: len(header) - len(header.lstrip())]
    call = f"{span.name}()"
    if language.name == "java":  # Java calls are qualified: Class.f() for static methods, else on an instance
        code = blank_comments_and_strings(source)
        header_offset = sum(len(line) + 1 for line in lines[: span.start_line])
        classes = re.findall(r"\bclass\s+([A-Za-z_$][\w$]*)", code[:header_offset])
        owner = classes[-1] if classes else "Solution"
        call = f"{owner}.{span.name}()" if re.search(r"\bstatic\b", header) else f"new {owner}().{span.name}()"
    first = _leading_block(lines, span.start_line, language.line_comment)
    return first, f"{indent}{language.line_comment} greencoder: bench {call}\n"


def functions_in(source: str, language: Language) -> list[FunctionSpan]:
    """Every function of `source` with its workload, if any."""
    return python_functions(source) if language.name == "python" else braced_functions(source, language)
