"""Editor completion at a cursor: the one code path behind `greencoder complete` and the language server.

Given a document, a cursor offset and a language, build the context (prefix, and suffix for FIM
models) within a token budget, generate greedily with the soft prompt, and shape the text the way
editor users expect: one line when the cursor is inside a line, a whole block when it starts a new
one; nothing that repeats the text already after the cursor; no closing of blocks that the cursor
is not in.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from greencoder.core.errors import InputError
from greencoder.core.generation import GenerationOptions, GenerationResult
from greencoder.core.languages import Language
from greencoder.core.postprocess import brace_events, indent_width
from greencoder.core.prompt import (
    DEFAULT_WINDOW_STEP_CHARS,
    FIM_LAYOUTS,
    EditorContext,
    editor_context,
)
from greencoder.core.runtime import Runtime

MIN_CONTEXT_BUDGET = 8
"""Fewest tokens of editor code a completion is built from; the server refuses settings that leave less."""
SUFFIX_LOOKAHEAD_CHARS = 16_384
"""How much of the text after the cursor the overlap check reads (it needs its first few lines,
and splitting a multi-megabyte suffix into lines on every keystroke costs more than generating)."""


@dataclass(frozen=True)
class CompletionSettings:
    max_new_tokens: int = 128
    context_tokens: int = 1024
    """Token budget for prefix + suffix (further capped by the model's context)."""
    suffix_share: float = 0.25
    use_fim: bool = True
    single_line: bool = False
    """Never a block, even on a new line (the server's reduced mode on battery)."""
    fim_layout: str = "auto"
    """auto (SPM where the model supports it: the most reusable prefix while typing), psm or spm."""
    window_step_chars: int = DEFAULT_WINDOW_STEP_CHARS
    """The context window's start moves in steps of at least this many characters (prefix reuse)."""
    prompt_lookup_tokens: int = 0
    """Prompt-lookup draft tokens per step (0: off; lossless, but not faster on every machine)."""
    split_step_chars: int = 128
    """Fill-in-the-middle prompts split prefix from suffix at the last multiple of this many
    characters before the cursor, and the text from there to the cursor starts the middle (0: split
    at the cursor). Typing at the cursor then leaves the prompt up to the middle token as it was, so
    a PSM prompt reads the typed tokens only, not the whole suffix again, until the cursor crosses
    the next multiple. The split depends on the text and the cursor alone, never on earlier requests,
    so a suggestion is the same whatever was asked before (see prompt.editor_context's `typed`)."""


@dataclass
class EditorCompletion:
    text: str
    multiline: bool
    generation: GenerationResult
    context: EditorContext


def position_to_offset(text: str, line: int, character: int) -> int:
    """Offset of a 0-based (line, character) position; `character` counts code points."""
    lines = text.split("\n")
    if line < 0 or line >= len(lines):
        raise InputError(f"line {line + 1} is outside the document ({len(lines)} lines)")
    if character < 0 or character > len(lines[line]):
        raise InputError(f"column {character + 1} is outside line {line + 1} ({len(lines[line])} characters)")
    return sum(len(earlier) + 1 for earlier in lines[:line]) + character


def starts_new_block(line_before: str, line_after: str) -> bool:
    """Multi-line mode: the rest of the line is empty and the cursor starts a line or a new body."""
    return not line_after.strip() and (not line_before.strip() or line_before.rstrip().endswith((":", "{", "(", "[")))


def cut_block(completion: str, line_before: str, language: Language) -> str:
    """Keep the completion within the block the cursor is in."""
    lines = (line_before + completion).split("\n")
    if language.braces:
        depth, offset = 0, len(line_before)
        for position, char in brace_events(line_before + completion):
            if position < offset:
                continue
            depth += {"{": 1, "}": -1}.get(char, 0)
            if depth < 0:
                cut = (line_before + completion).rfind("\n", 0, position)
                return (line_before + completion)[len(line_before) : max(cut, len(line_before))]
        return completion
    base: int | None = None
    for index, line in enumerate(lines):
        if not line.strip() or (index == 0 and line_before.strip()):
            continue
        if base is None:
            base = indent_width(line)
        elif indent_width(line) < base:
            return "\n".join(lines[:index])[len(line_before) :]
    return completion


def trim_suffix_overlap(completion: str, suffix: str, multiline: bool) -> str:
    """Drop the end of `completion` that the text after the cursor already contains."""
    following = suffix.split("\n", 1)[0]
    if not multiline and following.strip():
        for k in range(min(len(completion), len(following)), 0, -1):
            if completion.endswith(following[:k]):
                return completion[:-k]
        return completion
    if multiline:
        suffix_lines = [line.strip() for line in suffix.split("\n") if line.strip()][:5]
        lines = completion.rstrip("\n").split("\n")
        for m in range(min(len(suffix_lines), len(lines)), 0, -1):
            if [line.strip() for line in lines[-m:]] == suffix_lines[:m]:
                return "\n".join(lines[:-m])
    return completion


def complete_at(
    runtime: Runtime,
    text: str,
    offset: int,
    language: Language,
    settings: CompletionSettings | None = None,
    cancel: threading.Event | None = None,
    *,
    cache_key: Hashable = None,
    on_ids: Callable[[tuple[int, ...]], None] | None = None,
) -> EditorCompletion:
    """The completion an editor shows for a cursor at `offset` in `text`. `cache_key` (the
    document's URI, say) keeps one prefix-cache entry per document, so switching between
    documents does not throw away the other's cached context. `on_ids` hears the ids generated so
    far after each new token (Runtime.generate's), e.g. for a server that lets typing adopt them."""
    settings = settings or CompletionSettings()
    if settings.fim_layout not in FIM_LAYOUTS:
        raise InputError(f"unknown FIM layout {settings.fim_layout!r}: use {', '.join(FIM_LAYOUTS)}")
    prefix, suffix = text[:offset], text[offset:]
    line_before = prefix[prefix.rfind("\n") + 1 :]
    line_end = suffix.find("\n")
    line_after = suffix if line_end == -1 else suffix[:line_end]
    multiline = starts_new_block(line_before, line_after) and not settings.single_line
    budget = min(settings.context_tokens, runtime.context_tokens - settings.max_new_tokens - runtime.num_virtual_tokens)
    if budget < MIN_CONTEXT_BUDGET:
        raise InputError(f"max_new_tokens={settings.max_new_tokens} leaves no room for context in the model's "
                         f"{runtime.context_tokens} tokens")
    if settings.split_step_chars < 0:
        raise InputError(f"split_step_chars must be 0 (split at the cursor) or more, got {settings.split_step_chars}")
    split = offset - offset % settings.split_step_chars if settings.split_step_chars else offset
    context = editor_context(
        runtime.tokenizer, text[:split], suffix, budget, runtime.leading_special_ids, settings.suffix_share,
        settings.use_fim, settings.fim_layout, settings.window_step_chars, typed=text[split:offset],
    )
    stops = (*language.stop_sequences, "\n\n\n") if multiline else ("\n",)
    options = GenerationOptions(settings.max_new_tokens, stops, context.end_token_ids, settings.prompt_lookup_tokens)
    result = runtime.generate(context.input_ids, options, cancel, cache_key=cache_key, on_ids=on_ids)
    completion = result.text
    if multiline:
        completion = cut_block(completion, line_before, language)
    completion = trim_suffix_overlap(completion, suffix[:SUFFIX_LOOKAHEAD_CHARS], multiline).rstrip()
    return EditorCompletion(completion, multiline, result, context)
