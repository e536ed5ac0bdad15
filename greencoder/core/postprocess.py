"""Turn a model's raw continuation into the target function's code, per language.

Models keep writing after the function they were asked for: a `main`, tests, a second copy of the
class, other functions, markdown fences and prose. Evaluation runs `prompt + cleaned + test`, so
this module keeps what belongs to the target function and drops the rest, and never repairs what
the model got wrong (an unclosed body stays unclosed; a wrong answer stays wrong).

What is kept:
- Python: the body that continues the prompt, plus top-level imports and the helper
  functions/classes/constants that the body refers to (directly or through other kept helpers).
- C++: the body up to and including the brace that closes the target function.
- Java: the rest of the target method, then the class members that it refers to, up to the brace
  that closes the class; a `main` nobody calls, later classes and text are dropped.
When the model restates the whole function (a fenced block, or code starting with includes/imports),
the restated body of the target is used as the continuation.
"""

from __future__ import annotations

import re
from typing import Iterator

from greencoder.core.languages import Language, get_language

_FENCE = re.compile(r"^[ \t]*```[\w+#-]*[ \t]*$", re.MULTILINE)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")


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
        return completion[first.end() :].lstrip("\n")[: max(0, end - first.end())].rstrip() + "\n", True
    return completion[: first.start()], False


def last_function_name(prompt: str, python: bool) -> str | None:
    """Name of the function the prompt ends in (the entry point when none is given)."""
    pattern = r"def\s+([A-Za-z_]\w*)\s*\(" if python else r"([A-Za-z_]\w*)\s*\([^;{}]*\)\s*(?:const\s*)?(?:throws[\w\s,.]*)?\{"
    names = re.findall(pattern, prompt)
    return names[-1] if names else None


def identifiers(code: str) -> set[str]:
    return set(_IDENTIFIER.findall(code))


# ---------------------------------------------------------------------------------------------
# Python


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def _top_level_blocks(lines: list[str]) -> Iterator[list[str]]:
    """Group lines into top-level blocks: a column-0 line (or decorators) plus what is indented under it."""
    block: list[str] = []
    for line in lines:
        starts_block = line.strip() and _indent(line) == 0 and not (block and block[-1].lstrip().startswith("@"))
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
        match = re.match(r"(?:async\s+)?(?:def|class)\s+([A-Za-z_]\w*)", stripped) or re.match(r"([A-Za-z_]\w*)\s*(?::[^=]*)?=(?!=)", stripped)
        return match.group(1) if match else None
    return None


def _comment_inside_body(lines: list[str], number: int) -> bool:
    """A column-0 comment is still part of the body when the next code line is indented."""
    if not lines[number].lstrip().startswith("#"):
        return False
    for line in lines[number + 1 :]:
        if line.strip() and not line.lstrip().startswith("#"):
            return _indent(line) > 0
    return False


def _is_import(block: list[str]) -> bool:
    return bool(re.match(r"(import|from)\s+[\w.]+", block[0].strip()))


def _restated_python(code: str, entry_point: str) -> tuple[str, list[str]] | None:
    """If `code` defines `entry_point` at top level, return (its body, the other top-level lines)."""
    lines = code.splitlines()
    blocks = list(_top_level_blocks(lines))
    for index, block in enumerate(blocks):
        if _defined_name(block) == entry_point and any(l.lstrip().startswith(("def", "async def")) for l in block):
            signature_end = next(i for i, l in enumerate(block) if l.rstrip().endswith(":"))
            body = "\n".join(block[signature_end + 1 :])
            others = [l for other in blocks[:index] + blocks[index + 1 :] for l in other]
            return body, others
    return None


def clean_python(prompt: str, completion: str, entry_point: str | None = None) -> str:
    code, fenced = strip_fences(completion)
    entry = entry_point or last_function_name(prompt, python=True)
    restated = _restated_python(code, entry) if entry and (fenced or re.search(rf"^(async\s+)?def\s+{re.escape(entry)}\s*\(", code, re.M)) else None
    if restated is not None:
        body, rest = restated
    else:
        lines = code.splitlines()
        body_lines: list[str] = []
        for number, line in enumerate(lines):
            if line.strip() and _indent(line) == 0 and not _inside_string(body_lines) and not _comment_inside_body(lines, number):
                rest = lines[number:]
                break
            body_lines.append(line)
        else:
            rest = []
        body = "\n".join(body_lines)
    kept: list[list[str]] = []
    candidates = list(_top_level_blocks(rest))
    wanted = identifiers(body)
    changed = True
    while changed:
        changed = False
        for block in candidates:
            if any(block is k for k in kept):
                continue
            name = _defined_name(block)
            if _is_import(block) or (name is not None and name in wanted):
                kept.append(block)
                wanted |= identifiers("\n".join(block))
                changed = True
    kept.sort(key=lambda b: next(i for i, c in enumerate(candidates) if c is b))
    pieces = [body.rstrip("\n")] + ["\n".join(block).rstrip("\n") for block in kept]
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
    head = code.lstrip()
    starts = ("import ", "package ", "class ", "public class ", "@") if java else ("#include", "using namespace", "#define", "template")
    return head.startswith(starts)


def _restated_body(code: str, entry: str) -> str | None:
    """The text after the opening brace of `entry`'s definition in restated code."""
    pattern = re.compile(rf"\b{re.escape(entry)}\s*\([^;{{}}]*\)\s*(?:const\s*)?(?:throws[\w\s,.]*)?\{{")
    for match in pattern.finditer(code):
        return code[match.end() :]
    return None


def clean_braced(prompt: str, completion: str, entry_point: str | None = None, java: bool = False) -> str:
    code, fenced = strip_fences(completion)
    depth = brace_depth(prompt)
    if fenced or _starts_fresh_program(code, java):
        entry = entry_point or last_function_name(prompt, python=False)
        body = _restated_body(code, entry) if entry else None
        if body is not None:
            code = body
    if depth <= 0:
        return code
    function_depth = depth - 1  # depth outside the target function's body
    end_of_function: int | None = None
    members: list[tuple[int, int]] = []  # Java: (start, end) of class members after the method
    member_start: int | None = None
    level = depth
    for position, char in brace_events(code):
        if char == "{":
            level += 1
        elif char == "}":
            level -= 1
        if end_of_function is None:
            if level == function_depth:
                end_of_function = position + 1
                if not java or function_depth == 0:
                    return code[:end_of_function] + "\n"
                member_start = end_of_function
            continue
        # Java: members of the enclosing class after the target method.
        if level < function_depth:
            return _java_class_tail(code, end_of_function, members, position)
        if level == function_depth and char in "};" and member_start is not None:
            members.append((member_start, position + 1))
            member_start = position + 1
    return code if end_of_function is None else code[:end_of_function] + "\n"


def _java_class_tail(code: str, method_end: int, members: list[tuple[int, int]], class_end: int) -> str:
    """Target method's rest + the members it (transitively) refers to + the class's closing brace."""
    kept: list[tuple[int, int]] = []
    wanted = identifiers(code[:method_end])
    changed = True
    while changed:
        changed = False
        for member in members:
            if member in kept:
                continue
            text = code[member[0] : member[1]]
            name = _java_member_name(text)
            if name is not None and name in wanted:
                kept.append(member)
                wanted |= identifiers(text)
                changed = True
    kept.sort()
    parts = [code[:method_end]] + [code[start:end] for start, end in kept]
    return "".join(parts) + "\n}\n"


def _java_member_name(text: str) -> str | None:
    """Name of the method or field declared by one class member's text."""
    header = text.split("{", 1)[0] if "(" in text.split("{", 1)[0] else text.split("=", 1)[0].split(";", 1)[0]
    header = re.sub(r"//[^\n]*|/\*.*?\*/", "", header, flags=re.S)
    method = re.search(r"([A-Za-z_]\w*)\s*\([^)]*\)\s*(?:throws[\w\s,.]*)?$", header.strip())
    if method:
        return method.group(1)
    field = re.findall(r"([A-Za-z_]\w*)\s*$", header.strip())
    return field[-1] if field else None
