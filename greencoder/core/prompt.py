"""The prompts greencoder gives a model: the paper's problem prompt, and the editor's cursor context.

Problem prompt (evaluation and tuning use this one function, so a soft prompt is trained on the
text it later sees): an optional instruction line, then the problem statement, then the function
signature in the target language, which the model continues.

Editor context: the text before the cursor (and after it, for models with fill-in-the-middle
tokens) cut to a token budget: the prefix keeps its end (nearest the cursor), the suffix its start,
both cut on line boundaries where possible so the model never sees half a token or half a line.

Only a bounded character window around the cursor is tokenized (MAX_CHARS_PER_TOKEN per token of
budget), so a 5 MB file costs what a 10 kB one does. The prefix's start moves in large steps (a
grid of `window_step_chars`, snapped to line starts) instead of with every keystroke, so
consecutive requests share their leading tokens and the runtime's prefix cache can reuse them.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

INSTRUCTION = "Write efficient code for the following problem:"


def problem_prompt(signature: str, problem: str | None = None, instruction: bool = False) -> str:
    """The paper's prompt: [instruction] + [problem statement] + signature (continued by the model).

    HumanEval-style prompts carry the statement in the signature's docstring: pass `problem=None`.
    The signature is kept byte for byte, since the model continues exactly where it ends."""
    blocks: list[str] = []
    if instruction:
        blocks.append(INSTRUCTION)
    if problem and problem.strip():
        blocks.append(problem.strip())
    if not blocks:
        return signature
    return "\n".join(blocks) + "\n\n" + signature


PSM = "psm"
"""Prefix, suffix, middle: <PRE> prefix <SUF> suffix <MID>. Typing at the cursor changes the
prefix's end, so the suffix after it is read again on every keystroke."""
SPM = "spm"
"""Suffix, prefix, middle (the FIM paper's SPM variant StarCoder and Code Llama were trained on):
<PRE> <SUF> suffix <MID> prefix. Typing at the cursor only appends to the end of the prompt."""


@dataclass(frozen=True)
class FimFormat:
    """Special tokens of one fill-in-the-middle convention, and the layouts its models were trained on."""

    name: str
    prefix: str
    suffix: str
    middle: str
    end_tokens: tuple[str, ...] = ()
    """Tokens that end the middle, beyond EOS."""
    layouts: tuple[str, ...] = (PSM,)
    """Prompt orders the model family documents, preferred first (see choose_layout)."""


FIM_FORMATS: tuple[FimFormat, ...] = (
    FimFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", ("<fim_pad>", "<file_sep>"), (SPM, PSM)),
    FimFormat("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", ("<|fim_pad|>", "<|file_sep|>", "<|endoftext|>")),
    FimFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", ("<|EOT|>",)),
    FimFormat("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", ("▁<EOT>",), (SPM, PSM)),
)
FIM_LAYOUTS = ("auto", PSM, SPM)
MAX_CHARS_PER_TOKEN = 8
"""Generous bound on characters per token: the character window tokenized per budget token."""
DEFAULT_WINDOW_STEP_CHARS = 512
"""Grid the prefix window's start snaps to (at most; smaller budgets get a finer grid): it moves
at most once per this many characters typed."""


def choose_layout(fim: FimFormat, wanted: str = "auto") -> str:
    """`auto`: SPM where the model supports it (typing at the cursor then re-reads only the new
    characters; with PSM it re-reads the whole suffix too, see benchmarks/bench_prefix_cache.py),
    else the one layout it documents. An explicit layout the model does not support falls back
    to the same choice."""
    if wanted in fim.layouts:
        return wanted
    return SPM if SPM in fim.layouts else fim.layouts[0]


def _single_token_id(tokenizer, token: str) -> int | None:
    vocab = tokenizer.get_vocab()
    return vocab.get(token)


def detect_fim(tokenizer) -> FimFormat | None:
    """The FIM convention whose three tokens are all single tokens in this vocabulary, if any."""
    for fim in FIM_FORMATS:
        if all(_single_token_id(tokenizer, t) is not None for t in (fim.prefix, fim.suffix, fim.middle)):
            return fim
    return None


@dataclass(frozen=True)
class EditorContext:
    """Token ids to generate from, and the parts of the document they cover."""

    input_ids: list[int]
    prefix: str
    """The part of the text before the cursor that the model sees."""
    suffix: str
    """The part of the text after the cursor that the model sees ('' without FIM)."""
    fim: FimFormat | None
    end_token_ids: tuple[int, ...]
    layout: str | None = None
    """PSM or SPM for FIM prompts, None without FIM."""
    typed: str = ""
    """Text typed since the prompt's split point, placed after the middle token as the middle's start
    (PSM only; see editor_context's `typed`)."""


def _encode_with_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (no special tokens) and each token's character span, for cutting on lines."""
    if not text:
        return [], []
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), list(encoded["offset_mapping"])


def _cut_to_line_start(ids: list[int], offsets: list[tuple[int, int]], text: str, budget: int) -> tuple[list[int], str]:
    """The last <= budget tokens, starting at a line start when one falls in the window."""
    first = len(ids) - budget
    for index in range(first, len(ids)):
        start = offsets[index][0]
        if start > 0 and text[start - 1] == "\n":
            first = index
            break
    return list(ids[first:]), text[offsets[first][0]:]


def _line_start_at_or_after(text: str, position: int) -> int:
    if position <= 0:
        return 0
    newline = text.find("\n", position - 1)
    return len(text) if newline == -1 else newline + 1


def _tail_ids(tokenizer, text: str, budget: int, step_chars: int = DEFAULT_WINDOW_STEP_CHARS) -> tuple[list[int], str]:
    """The end of `text` in <= budget tokens, starting at a line start on a grid of
    min(step_chars, budget) characters (about a quarter of the window for code, so on average
    about an eighth of the budget goes unused): the earliest grid line start whose tail fits.
    While text is appended, the start stays put until the tail outgrows the budget, then jumps
    by at least one grid step."""
    if budget <= 0:
        return [], ""
    window = budget * MAX_CHARS_PER_TOKEN
    step = max(1, min(step_chars, budget))
    first_grid = 0 if len(text) <= window else -(-(len(text) - window) // step) * step
    origin = _line_start_at_or_after(text, first_grid)
    ids, offsets = _encode_with_offsets(tokenizer, text[origin:])
    if len(ids) <= budget:
        return ids, text[origin:]
    token_starts = [origin + start for start, _ in offsets]
    for grid in range(first_grid + step, len(text), step):
        candidate = _line_start_at_or_after(text, grid)
        first = bisect.bisect_left(token_starts, candidate)
        if len(ids) - first <= budget:
            kept = text[candidate:]
            kept_ids, kept_offsets = _encode_with_offsets(tokenizer, kept)
            if len(kept_ids) <= budget:
                return kept_ids, kept
            return _cut_to_line_start(kept_ids, kept_offsets, kept, budget)
    return _cut_to_line_start(ids, offsets, text[origin:], budget)


def _head_ids(tokenizer, text: str, budget: int) -> tuple[list[int], str]:
    """The first <= budget tokens of `text`, ending at a line end when one falls in the window.
    Only the first budget * MAX_CHARS_PER_TOKEN characters are read (cut back to a line end)."""
    if budget <= 0:
        return [], ""
    window = budget * MAX_CHARS_PER_TOKEN
    if len(text) > window:
        cut = text.rfind("\n", 0, window)
        text = text[: cut + 1] if cut != -1 else text[:window]
    ids, offsets = _encode_with_offsets(tokenizer, text)
    if len(ids) <= budget:
        return ids, text
    last = budget
    for index in range(budget, 0, -1):
        end = offsets[index - 1][1]
        if text[end - 1 : end] == "\n":
            last = index
            break
    return list(ids[:last]), text[: offsets[last - 1][1]]


TYPED_RESERVE_TOKENS = 64
"""Budget a PSM prompt keeps for text typed since its split point (see editor_context)."""


def editor_context(
    tokenizer,
    prefix: str,
    suffix: str,
    budget_tokens: int,
    leading_ids: list[int] | None = None,
    suffix_share: float = 0.25,
    use_fim: bool = True,
    layout: str = "auto",
    window_step_chars: int = DEFAULT_WINDOW_STEP_CHARS,
    typed: str = "",
) -> EditorContext:
    """Build the model input for a cursor between `prefix + typed` and `suffix` within `budget_tokens`.

    The suffix gets at most `suffix_share` of the budget; whatever it leaves goes to the prefix,
    whose start moves on a grid of `window_step_chars` (see _tail_ids). `layout` orders a FIM
    prompt (auto, psm or spm; see choose_layout).

    `typed` is what the user typed since an earlier request split the document at the end of
    `prefix`. In a PSM prompt it goes after the middle token, as the start of the middle (what the
    model would have written itself): the prompt up to there stays the one already read, so typing
    at the cursor costs the typed tokens only instead of the whole suffix again. PSM prompts keep
    TYPED_RESERVE_TOKENS of the budget for it; typed text longer than that (and typed text in SPM or
    plain prompts, which only grow at the end anyway) joins the prefix as usual."""
    leading = list(leading_ids or [])
    fim = detect_fim(tokenizer) if use_fim else None
    chosen = choose_layout(fim, layout) if fim is not None else None
    typed_ids = _encode_with_offsets(tokenizer, typed)[0] if typed and chosen == PSM else []
    if len(typed_ids) > TYPED_RESERVE_TOKENS:
        typed_ids = []  # typed too far from the split: split at the cursor again
    if not typed_ids:
        prefix, typed = prefix + typed, ""
    if fim is None:
        ids, kept = _tail_ids(tokenizer, prefix, budget_tokens - len(leading), window_step_chars)
        return EditorContext(leading + ids, kept, "", None, ())
    vocab = tokenizer.get_vocab()
    room = budget_tokens - len(leading) - 3
    suffix_ids, kept_suffix = _head_ids(tokenizer, suffix, int(room * suffix_share))
    reserve = TYPED_RESERVE_TOKENS if chosen == PSM else 0
    prefix_ids, kept_prefix = _tail_ids(tokenizer, prefix, room - len(suffix_ids) - reserve, window_step_chars)
    pre, suf, mid = vocab[fim.prefix], vocab[fim.suffix], vocab[fim.middle]
    if chosen == SPM:
        input_ids = leading + [pre, suf, *suffix_ids, mid, *prefix_ids]
    else:
        input_ids = leading + [pre, *prefix_ids, suf, *suffix_ids, mid, *typed_ids]
    end_ids = tuple(vocab[t] for t in fim.end_tokens if t in vocab)
    return EditorContext(input_ids, kept_prefix + typed, kept_suffix, fim, end_ids, chosen, typed)
