"""The prompts greencoder gives a model: the paper's problem prompt, and the editor's cursor context.

Problem prompt (evaluation and tuning use this one function, so a soft prompt is trained on the
text it later sees): an optional instruction line, then the problem statement, then the function
signature in the target language, which the model continues.

Editor context: the text before the cursor (and after it, for models with fill-in-the-middle
tokens) cut to a token budget: the prefix keeps its end (nearest the cursor), the suffix its start,
both cut on line boundaries where possible so the model never sees half a token or half a line.
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class FimFormat:
    """Special tokens of one fill-in-the-middle convention (prefix-suffix-middle order)."""

    name: str
    prefix: str
    suffix: str
    middle: str
    end_tokens: tuple[str, ...] = ()
    """Tokens that end the middle, beyond EOS."""


FIM_FORMATS: tuple[FimFormat, ...] = (
    FimFormat("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", ("<fim_pad>", "<file_sep>")),
    FimFormat("qwen", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", ("<|fim_pad|>", "<|file_sep|>", "<|endoftext|>")),
    FimFormat("deepseek", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", ("<|EOT|>",)),
    FimFormat("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", ("▁<EOT>",)),
)


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


def _encode_with_offsets(tokenizer, text: str) -> tuple[list[int], list[tuple[int, int]]]:
    """Token ids of `text` (no special tokens) and each token's character span, for cutting on lines."""
    if not text:
        return [], []
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    return list(encoded["input_ids"]), list(encoded["offset_mapping"])


def _tail_ids(tokenizer, text: str, budget: int) -> tuple[list[int], str]:
    """The last <= budget tokens of `text`, starting at a line start when one falls in the window."""
    ids, offsets = _encode_with_offsets(tokenizer, text)
    if len(ids) <= budget or budget <= 0:
        return (ids, text) if budget > 0 else ([], "")
    first = len(ids) - budget
    for index in range(first, len(ids)):
        start = offsets[index][0]
        if start > 0 and text[start - 1] == "\n":
            first = index
            break
    return list(ids[first:]), text[offsets[first][0]:]


def _head_ids(tokenizer, text: str, budget: int) -> tuple[list[int], str]:
    """The first <= budget tokens of `text`, ending at a line end when one falls in the window."""
    ids, offsets = _encode_with_offsets(tokenizer, text)
    if len(ids) <= budget or budget <= 0:
        return (ids, text) if budget > 0 else ([], "")
    last = budget
    for index in range(budget, 0, -1):
        end = offsets[index - 1][1]
        if text[end - 1 : end] == "\n":
            last = index
            break
    return list(ids[:last]), text[: offsets[last - 1][1]]


def editor_context(
    tokenizer,
    prefix: str,
    suffix: str,
    budget_tokens: int,
    leading_ids: list[int] | None = None,
    suffix_share: float = 0.25,
    use_fim: bool = True,
) -> EditorContext:
    """Build the model input for a cursor between `prefix` and `suffix` within `budget_tokens`.

    The suffix gets at most `suffix_share` of the budget; whatever it leaves goes to the prefix."""
    leading = list(leading_ids or [])
    fim = detect_fim(tokenizer) if use_fim else None
    if fim is None:
        ids, kept = _tail_ids(tokenizer, prefix, budget_tokens - len(leading))
        return EditorContext(leading + ids, kept, "", None, ())
    vocab = tokenizer.get_vocab()
    room = budget_tokens - len(leading) - 3
    suffix_ids, kept_suffix = _head_ids(tokenizer, suffix, int(room * suffix_share))
    prefix_ids, kept_prefix = _tail_ids(tokenizer, prefix, room - len(suffix_ids))
    input_ids = leading + [vocab[fim.prefix], *prefix_ids, vocab[fim.suffix], *suffix_ids, vocab[fim.middle]]
    end_ids = tuple(vocab[t] for t in fim.end_tokens if t in vocab)
    return EditorContext(input_ids, kept_prefix, kept_suffix, fim, end_ids)
