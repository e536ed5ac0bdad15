"""Turn a model's raw continuation into the target function's code, per language.

Models keep writing after the function they were asked for: a `main`, tests, a second copy of the
class, other functions, markdown fences and prose. Evaluation runs `prompt + cleaned + test`, so
this module keeps what belongs to the target function and drops the rest, and never repairs what
the model got wrong (an unclosed body stays unclosed; a wrong answer stays wrong).

What is kept:
- Python: the body that continues the prompt, plus the top-level imports, helper functions/classes
  and constants that the body refers to (directly or through other kept helpers). Top-level code
  that defines nothing (tests, prints, `if __name__ ...`, prose), definitions nobody reads, and
  redefinitions of names the prompt already defines (a second copy of the target) are dropped.
- C++: the body up to and including the brace that closes the target function.
- Java: the rest of the target method, then the class members that it refers to, then one brace
  that closes the class (supplied when generation stopped inside a dropped member such as `main`);
  a `main` nobody calls, later classes and text are dropped.
When the model restates the whole function (a fenced block, or code starting with includes/imports),
the restated body of the target is used as the continuation.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
import warnings
from collections.abc import Iterator

from greencoder.core.languages import CPP, JAVA, PYTHON, Language, get_language
from greencoder.core.source.programs import body_bounds, last_function

_FENCE = re.compile(r"^[ \t]*```[\w+#-]*[ \t]*$", re.MULTILINE)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_BUILTINS = frozenset(dir(builtins))



def clean_completion(language: Language | str, prompt: str, completion: str, entry_point: str | None = None) -> str:
    """The part of `completion` to append to `prompt` to get the target function (see module doc)."""
    lang = get_language(language) if isinstance(language, str) else language
    if lang.name == "python":
        return clean_python(prompt, completion, entry_point)
    return clean_braced(prompt, completion, entry_point, java=lang.name == "java")


# ---------------------------------------------------------------------------------------------
# shared helpers


def strip_fences(completion: str) -> tuple[str, bool]:
    """Remove markdown fences. Returns (code, restated): restated when the code came inside a fence
    that opened the completion (the model wrote a fresh block rather than continuing)."""
    fences = list(_FENCE.finditer(completion))
    if not fences:
        return completion, False
    first = fences[0]
    if not completion[: first.start()].strip():
        end = fences[1].start() if len(fences) > 1 else len(completion)
        return completion[first.end() : end].strip("\n").rstrip() + "\n", True
    return completion[: first.start()], False


def last_function_name(prompt: str, language: Language) -> str | None:
    """Name of the function the prompt ends in (the entry point when none is given)."""
    span = last_function(prompt, language)
    return span.name if span else None


def identifiers(code: str) -> set[str]:
    return set(_IDENTIFIER.findall(code))


def referenced_closure(candidates: list[tuple[set[str], set[str]]], wanted: set[str]) -> list[int]:
    """Indices of the candidates (names defined, names read) that `wanted` needs, directly or through
    other kept candidates, in their original order. Shared by the Python and Java cleaners."""
    wanted = set(wanted)
    kept: set[int] = set()
    changed = True
    while changed:
        changed = False
        for index, (defined, reads) in enumerate(candidates):
            if index not in kept and ("*" in defined or defined & wanted):
                kept.add(index)
                wanted |= reads
                changed = True
    return sorted(kept)


# ---------------------------------------------------------------------------------------------
# Python


def indent_width(line: str) -> int:
    """Leading spaces and tabs of a line."""
    return len(line) - len(line.lstrip(" \t"))


def _top_level_blocks(lines: list[str]) -> Iterator[list[str]]:
    """Group lines into top-level blocks: a column-0 line (or decorators) plus what is indented under it."""
    block: list[str] = []
    for line in lines:
        starts_block = line.strip() and indent_width(line) == 0 and not (block and block[-1].lstrip().startswith("@"))
        if starts_block and block and not _inside_string(block):
            yield block
            block = []
        block.append(line)
    if block:
        yield block


def _inside_string(lines: list[str]) -> bool:
    """True when the lines leave a triple-quoted string open (so a column-0 line belongs to it)."""
    text = "\n".join(lines)
    return (text.count('"""') % 2 == 1) or (text.count("'''") % 2 == 1)


def _defined_name(block: list[str]) -> str | None:
    for line in block:
        stripped = line.strip()
        if stripped.startswith("@"):
            continue
        match = (re.match(r"(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", stripped)
                 or re.match(r"([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", stripped))
        return match.group(1) if match else None
    return None


def _comment_inside_body(lines: list[str], number: int) -> bool:
    """A column-0 comment is still part of the body when the next code line is indented."""
    if not lines[number].lstrip().startswith("#"):
        return False
    for line in lines[number + 1 :]:
        if line.strip() and not line.lstrip().startswith("#"):
            return indent_width(line) > 0
    return False


def _is_code(line: str) -> bool:
    return bool(line.strip()) and not line.lstrip().startswith("#")


def _parse(code: str) -> ast.Module | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes in model strings are not our business
            return ast.parse(code)
    except (SyntaxError, ValueError):
        return None


def _global_names(code: str) -> set[str] | None:
    """Module-level names that `code` reads (from any scope), or None when it does not parse.

    Locals and parameters are not included: a test tail's `numbers = input()` must not be kept just
    because the body has a parameter called `numbers`."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tables = [symtable.symtable(code, "<completion>", "exec")]
    except (SyntaxError, ValueError):
        return None
    names: set[str] = set()
    while tables:
        table = tables.pop()
        names.update(s.get_name() for s in table.get_symbols() if s.is_referenced() and s.is_global())
        tables.extend(table.get_children())
    return names


def _definition(block: list[str]) -> tuple[set[str], set[str]]:
    """(names a top-level block defines, module-level names it reads). Only imports, functions,
    classes and assignments define names; `if __name__ ...`, prints and loops define none, so they are
    never kept. A star import defines "*"."""
    text = "\n".join(block)
    tree = _parse(text)
    if tree is None:  # truncated or not Python (prose): fall back to the first line's shape
        name = _defined_name(block)
        return ({name} if name else set()), identifiers(text)
    defined: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            defined |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            defined |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        else:
            return set(), set()
    return defined, _global_names(text) or set()


def _function_body(block: list[str]) -> str | None:
    """The body of a top-level `def` block: the lines after its signature (comments under the
    signature included); a one-line `def f(x): return x` gives its statement, indented."""
    tree = _parse("\n".join(block))
    function = tree.body[0] if tree is not None and tree.body else None
    if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        first = function.body[0]
        line = block[first.lineno - 1]
        if line.encode()[: first.col_offset].strip():  # statement on the signature's line
            return "    " + line.encode()[first.col_offset :].decode()
        end = first.lineno - 1
        while end > 0 and not _is_code(block[end - 1]):
            end -= 1
        return "\n".join(block[end:])
    # Does not parse (truncated): the signature ends at the first line ending in ':'.
    for number, line in enumerate(block):
        if re.sub(r"#[^'\"]*$", "", line).rstrip().endswith(":"):
            return "\n".join(block[number + 1 :])
    return None


def _restated_python(code: str, entry_point: str) -> tuple[str, list[str]] | None:
    """If `code` defines `entry_point` at top level, return (its body, the other top-level lines)."""
    lines = code.splitlines()
    blocks = list(_top_level_blocks(lines))
    for index, block in enumerate(blocks):
        if _defined_name(block) == entry_point and any(line.lstrip().startswith(("def", "async def")) for line in block):
            body = _function_body(block)
            if body is None:
                continue
            others = [line for other in blocks[:index] + blocks[index + 1 :] for line in other]
            return body, others
    return None


def clean_python(prompt: str, completion: str, entry_point: str | None = None) -> str:
    code, _ = strip_fences(completion)
    entry = entry_point or last_function_name(prompt, PYTHON)
    # The model restated the function only when its code starts at column 0; a continuation body
    # followed by a second `def entry(...)` keeps the continuation (the second copy is junk).
    first_code = next((line for line in code.splitlines() if _is_code(line)), "")
    restated = _restated_python(code, entry) if entry and first_code and indent_width(first_code) == 0 else None
    if restated is not None:
        body, rest = restated
    else:
        lines = code.splitlines()
        body_lines: list[str] = []
        rest = []
        for number, line in enumerate(lines):
            if line.strip() and indent_width(line) == 0 and not _inside_string(body_lines) and not _comment_inside_body(lines, number):
                rest = lines[number:]
                break
            body_lines.append(line)
        body = "\n".join(body_lines)
    # Never keep a block that redefines a name the prompt already defines (the target, a helper, an
    # import): a second `def entry` would replace the body just written.
    taken = {name for block in _top_level_blocks(prompt.splitlines()) for name in _definition(block)[0]}
    taken |= {entry} if entry else set()
    blocks = list(_top_level_blocks(rest))
    definitions = [_definition(block) for block in blocks]
    # A redefinition is never eligible, and a body's `sorted(...)` does not ask for the tail's
    # `sorted = ...` (test data shadowing a builtin): such blocks define nothing that counts.
    candidates = [(set() if defined & taken else defined - _BUILTINS, reads) for defined, reads in definitions]
    wanted = _global_names(prompt + body + "\n")
    if wanted is None:
        wanted = identifiers(body)
    kept = referenced_closure(candidates, wanted)
    pieces = [body.rstrip("\n")] + ["\n".join(blocks[i]).rstrip("\n") for i in kept]
    return "\n\n".join(p for p in pieces if p.strip()) + "\n" if body.strip() or kept else body


# ---------------------------------------------------------------------------------------------
# C++ and Java


def brace_events(code: str) -> Iterator[tuple[int, str]]:
    """Positions of `{`, `}` and `;` outside comments, strings and character literals."""
    i, n = 0, len(code)
    while i < n:
        c = code[i]
        if code.startswith("//", i):
            i = code.find("\n", i)
            i = n if i == -1 else i
            continue
        if code.startswith("/*", i):
            i = code.find("*/", i + 2)
            i = n if i == -1 else i + 2
            continue
        if c == '"' or (c == "'" and not (i > 0 and code[i - 1].isalnum() and i + 1 < n and code[i + 1].isalnum())):
            j = i + 1
            while j < n and code[j] != c and code[j] != "\n":
                j += 2 if code[j] == "\\" else 1
            i = j + 1
            continue
        if c in "{};":
            yield i, c
        i += 1


def brace_depth(code: str) -> int:
    depth = 0
    for _, c in brace_events(code):
        depth += {"{": 1, "}": -1}.get(c, 0)
    return depth


def _starts_fresh_program(code: str, java: bool) -> bool:
    """Code that begins like a file (includes, imports, a class), after any leading comments."""
    head = re.sub(r"^(?:\s+|//[^\n]*|/\*.*?\*/)*", "", code, flags=re.DOTALL)
    starts = ("import ", "package ", "class ", "public class ", "@") if java else ("#include", "using namespace", "#define", "template")
    return head.startswith(starts)


def _restated_body(code: str, entry: str, language: Language) -> str | None:
    """The text after the opening brace of `entry`'s definition in restated code (found by the
    source model, so a restated doc comment such as `>>> factorize(8)` / `{2, 2, 2}` is no definition)."""
    bounds = body_bounds(code, language, entry)
    return code[bounds[0] :] if bounds else None


def clean_braced(prompt: str, completion: str, entry_point: str | None = None, java: bool = False) -> str:
    code, fenced = strip_fences(completion)
    depth = brace_depth(prompt)
    language = JAVA if java else CPP
    if fenced or _starts_fresh_program(code, java):
        entry = entry_point or last_function_name(prompt, language)
        body = _restated_body(code, entry, language) if entry else None
        if body is not None:  # the prompt already ends the signature's line
            code = body[1:] if prompt.endswith("\n") and body.startswith("\n") else body
    if depth <= 0:
        return code
    function_end = _closing_brace_end(code, depth)
    if function_end is None:
        return code  # truncated: the body stays unclosed
    if not java or depth == 1:
        return code[:function_end] + "\n"
    return _java_class_tail(code, function_end)


def _closing_brace_end(code: str, depth: int) -> int | None:
    """Index just after the `}` that closes the block open at `depth` (the target function's body)."""
    level = depth
    for position, char in brace_events(code):
        level += {"{": 1, "}": -1}.get(char, 0)
        if level < depth:
            return position + 1
    return None


def _java_class_tail(code: str, method_end: int) -> str:
    """Target method's rest + the members it (transitively) refers to + the class's closing brace.

    Members after the method end at a class-level `;` or at the `}` of a method or nested-class body
    (not of a field initializer such as `int[] A = {1, 2};`). The class is closed exactly once: after
    its own `}` everything is dropped, and when generation stopped before that brace (inside a `main`,
    say) the unfinished member is dropped and the brace is supplied."""
    members: list[tuple[int, int]] = []
    start, level, opened = method_end, 0, method_end
    for position, char in brace_events(code[method_end:]):
        position += method_end
        if char == "{":
            opened = position if level == 0 else opened
            level += 1
        elif char == "}":
            level -= 1
            if level < 0:
                break
            if level == 0 and "=" not in _java_header(code[start:opened]):
                members.append((start, position + 1))
                start = position + 1
        elif level == 0:
            members.append((start, position + 1))
            start = position + 1
    texts = [code[start:end] for start, end in members]
    candidates = [({name} if (name := _java_member_name(text)) else set(), identifiers(text)) for text in texts]
    kept = referenced_closure(candidates, identifiers(code[:method_end]))
    parts = [code[:method_end]] + [texts[i] for i in kept]
    return "".join(parts) + "\n}\n"


def _java_header(text: str) -> str:
    """A member's text without comments and annotations (whose arguments may contain `=` or `(`)."""
    text = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.DOTALL)
    return re.sub(r"@[\w.]+\s*(?:\([^)]*\))?", "", text)


def _java_member_name(text: str) -> str | None:
    """Name of the method, field or nested class declared by one class member's text."""
    header = re.split(r"[={;]", _java_header(text), maxsplit=1)[0].strip()
    method = re.search(r"([A-Za-z_]\w*)\s*\([^)]*\)\s*(?:throws[\w\s,.]*)?$", header)
    if method:
        return method.group(1)
    field = re.search(r"([A-Za-z_]\w*)\s*(?:\[\s*\]\s*)*$", header)
    return field.group(1) if field else None
