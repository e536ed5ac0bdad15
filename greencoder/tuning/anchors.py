"""The anchor text of a pair entry: the task the efficient and inefficient programs both solve.

Contrastive prompt tuning pulls the representation of the task (the anchor) towards the efficient
program and away from the inefficient ones. The rule for choosing it is a design decision:

- The anchor must identify the problem, so that the contrast is between the efficient and the
  inefficient solution of the same task, not between tasks. Both programs solve it; only their
  efficiency differs, which is what the soft prompt should learn.
- It must read like the prompts the soft prompt will precede at generation time: a natural-language
  task in the target language (see greencoder.core.prompt), not code.
- It must not reveal a solution. Any program text in the anchor would let the embeddings match by
  copying tokens instead of by efficiency (a test checks that no program line appears in it).

So: where the entry has a problem statement, the anchor is that statement. Most CodeNet pairs have
none; for them the anchor is built from the only problem-specific, solution-free information they
carry, the title and the first public I/O example, behind the language-tagged request the model sees
("Write a Python program ..."), with "It reads from standard input and writes to standard output."
since CodeNet tasks are stdin/stdout programs. Without a title or an example, the request names the
problem id, which at least keeps distinct problems' anchors distinct.
"""

from __future__ import annotations

from greencoder.core.languages import get_language
from greencoder.tuning.pairs import PairEntry

EXAMPLE_LIMIT = 400
"""Characters kept of an example input and of its output: enough to show the format, not a test dump."""

IO_SENTENCE = "It reads from standard input and writes to standard output."


def _clip(text: str, limit: int = EXAMPLE_LIMIT) -> str:
    """`text` without trailing line breaks, cut to `limit` characters on a line boundary when possible."""
    text = text.rstrip("\n")
    if len(text) <= limit:
        return text
    cut = text[:limit]
    newline = cut.rfind("\n")
    if newline >= limit // 2:
        cut = cut[:newline]
    return cut.rstrip() + "\n..."


def anchor_text(entry: PairEntry) -> str:
    """The statement when there is one, else a solution-free task description (see module docstring)."""
    if entry.problem and entry.problem.strip():
        return entry.problem.strip()
    display = get_language(entry.language).display_name
    if not entry.title and not entry.io_example:
        return f"Write a {display} program that solves problem {entry.problem_id}."
    if entry.title:
        lines = [f'Write a {display} program for the problem "{entry.title}".']
    else:
        lines = [f"Write a {display} program for the following problem."]
    lines.append(IO_SENTENCE)
    if entry.io_example:
        stdin, stdout = entry.io_example
        lines += ["Example input:", _clip(stdin), "Example output:", _clip(stdout)]
    return "\n".join(lines)
