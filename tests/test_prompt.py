"""The paper's prompt format and the editor's cursor context within a token budget."""

from __future__ import annotations

import itertools

from greencoder.core.prompt import (
    FIM_FORMATS,
    INSTRUCTION,
    MAX_CHARS_PER_TOKEN,
    PSM,
    SPM,
    choose_layout,
    detect_fim,
    editor_context,
    problem_prompt,
)

SIGNATURE = "#include <vector>\nusing namespace std;\nbool has_close_elements(vector<float> numbers, float threshold){\n"
STATEMENT = "Check if in given list of numbers, are any two numbers closer to each other than given threshold."


def test_problem_prompt_without_instruction_is_statement_then_signature():
    prompt = problem_prompt(SIGNATURE, STATEMENT)
    assert prompt == f"{STATEMENT}\n\n{SIGNATURE}"
    assert INSTRUCTION not in prompt


def test_problem_prompt_with_instruction_leads_with_it():
    prompt = problem_prompt(SIGNATURE, STATEMENT, instruction=True)
    assert prompt == f"{INSTRUCTION}\n{STATEMENT}\n\n{SIGNATURE}"
    assert prompt.endswith(SIGNATURE)  # the model continues exactly where the signature ends


def test_problem_prompt_with_statement_inside_the_signature():
    humaneval = 'def add(x, y):\n    """Add two numbers."""\n'
    assert problem_prompt(humaneval) == humaneval
    assert problem_prompt(humaneval, instruction=True) == f"{INSTRUCTION}\n\n{humaneval}"


class FakeVocabTokenizer:
    def __init__(self, tokens):
        self._vocab = {t: i for i, t in enumerate(tokens)}

    def get_vocab(self):
        return self._vocab


def test_detects_each_fim_convention_and_none():
    for fim in FIM_FORMATS:
        assert detect_fim(FakeVocabTokenizer(["a", fim.prefix, fim.suffix, fim.middle])) == fim
    assert detect_fim(FakeVocabTokenizer(["a", "<fim_prefix>", "<fim_suffix>"])) is None


def _document(lines: int) -> str:
    return "".join(f"value_{i} = compute(value_{i - 1}, {i})\n" for i in range(lines))


def test_fim_context_layout_and_budget(tiny_runtime):
    # PSM asked for explicitly: for StarCoder-style tokens `auto` now picks SPM (more reusable while typing).
    tokenizer = tiny_runtime.tokenizer
    prefix, suffix = _document(200), "\n" + _document(200)
    context = editor_context(tokenizer, prefix, suffix, budget_tokens=300, suffix_share=0.25, layout=PSM)
    assert context.layout == PSM
    vocab = tokenizer.get_vocab()
    ids = context.input_ids
    assert len(ids) <= 300
    assert context.fim is not None and context.fim.name == "starcoder"
    assert ids[0] == vocab["<fim_prefix>"] and ids[-1] == vocab["<fim_middle>"]
    split = ids.index(vocab["<fim_suffix>"])
    assert split - 1 > (len(ids) - split - 2)  # prefix gets the larger share
    assert len(ids) - split - 2 <= 0.25 * 297
    # The kept prefix is the end of the text before the cursor and starts on a line boundary.
    assert prefix.endswith(context.prefix) and context.prefix.startswith("value_")
    assert suffix.startswith(context.suffix) and context.suffix.endswith("\n")
    assert tokenizer.decode(ids[1:split]) == context.prefix


def test_short_document_is_kept_whole(tiny_runtime):
    context = editor_context(tiny_runtime.tokenizer, "def f(x):\n    ", "\nprint(f(1))\n", budget_tokens=500)
    assert context.prefix == "def f(x):\n    " and context.suffix == "\nprint(f(1))\n"


def test_without_fim_only_the_prefix_is_used(tiny_runtime):
    prefix = _document(100)
    context = editor_context(tiny_runtime.tokenizer, prefix, "tail()\n", budget_tokens=120, use_fim=False)
    assert context.fim is None and context.suffix == ""
    assert len(context.input_ids) <= 120
    assert tiny_runtime.tokenizer.decode(context.input_ids) == context.prefix
    assert prefix.endswith(context.prefix)


def test_unused_suffix_budget_goes_to_the_prefix(tiny_runtime):
    prefix = _document(100)
    small_suffix = editor_context(tiny_runtime.tokenizer, prefix, "\n", budget_tokens=200)
    large_suffix = editor_context(tiny_runtime.tokenizer, prefix, _document(100), budget_tokens=200)
    assert len(small_suffix.prefix) > len(large_suffix.prefix)


def test_spm_puts_the_prefix_last_where_the_model_supports_it(tiny_runtime):
    tokenizer = tiny_runtime.tokenizer
    vocab = tokenizer.get_vocab()
    prefix, suffix = _document(50), "\n" + _document(50)
    context = editor_context(tokenizer, prefix, suffix, budget_tokens=300)
    assert context.layout == SPM
    ids = context.input_ids
    assert ids[:2] == [vocab["<fim_prefix>"], vocab["<fim_suffix>"]]
    middle = ids.index(vocab["<fim_middle>"])
    assert tokenizer.decode(ids[2:middle]) == context.suffix
    assert tokenizer.decode(ids[middle + 1 :]) == context.prefix and prefix.endswith(context.prefix)


def test_layout_choice_follows_what_the_model_documents():
    formats = {fim.name: fim for fim in FIM_FORMATS}
    assert choose_layout(formats["qwen"]) == PSM
    assert choose_layout(formats["qwen"], SPM) == PSM  # Qwen2.5-Coder documents PSM only
    assert choose_layout(formats["deepseek"]) == PSM
    assert choose_layout(formats["starcoder"]) == SPM and choose_layout(formats["starcoder"], PSM) == PSM
    assert choose_layout(formats["codellama"]) == SPM


def _kept_start(prefix: str, kept: str) -> int:
    assert prefix.endswith(kept)
    return len(prefix) - len(kept)


def test_window_start_moves_in_large_steps_while_typing(tiny_runtime):
    """The old window kept the last `budget` tokens, so its start slid on nearly every keystroke and
    no two consecutive prompts shared a prefix. Now it stays put and jumps by whole grid steps."""
    tokenizer = tiny_runtime.tokenizer
    document = _document(120)
    typed = "result = [compute(v, k) for k, v in enumerate(values) if v % 3 == 0]\n" * 8
    starts, previous_ids, shared = [], None, []
    for typed_length in range(0, len(typed), 3):
        prefix = document + typed[:typed_length]
        context = editor_context(tokenizer, prefix, "", budget_tokens=200, use_fim=False, window_step_chars=256)
        assert len(context.input_ids) <= 200
        starts.append(_kept_start(prefix, context.prefix))
        if previous_ids is not None:
            shared.append(next((i for i, (a, b) in enumerate(zip(previous_ids, context.input_ids, strict=False)) if a != b),
                               min(len(previous_ids), len(context.input_ids))))
        previous_ids = context.input_ids
    moves = [b - a for a, b in itertools.pairwise(starts) if b != a]
    assert len(moves) <= 4 and all(move >= 100 for move in moves), moves  # grid of 200, snapped to lines
    # Between moves, a keystroke's prompt shares all but its last few tokens with the previous one.
    assert sorted(shared)[len(shared) // 2] >= 150


def test_only_a_window_around_the_cursor_is_tokenized(tiny_runtime):
    tokenizer = tiny_runtime.tokenizer
    longest = [0]

    class Recording:
        def __getattr__(self, name):
            return getattr(tokenizer, name)

        def __call__(self, text, **kwargs):
            longest[0] = max(longest[0], len(text))
            return tokenizer(text, **kwargs)

    huge = _document(40_000)  # about 1.5 MB on each side of the cursor
    context = editor_context(Recording(), huge, huge, budget_tokens=300)
    assert 0 < len(context.input_ids) <= 300
    assert longest[0] <= 300 * MAX_CHARS_PER_TOKEN + 512


def test_typing_after_a_psm_split_only_extends_the_prompt_already_read(tiny_runtime):
    """PSM re-reads the whole suffix when the prefix grows; text typed since the split goes after
    the middle token instead, so the earlier prompt is a prefix of the new one."""
    tokenizer = tiny_runtime.tokenizer
    prefix, suffix = _document(200), "\n" + _document(200)
    before = editor_context(tokenizer, prefix, suffix, budget_tokens=400, layout=PSM)
    typed = "value_x = compute("
    after = editor_context(tokenizer, prefix, suffix, budget_tokens=400, layout=PSM, typed=typed)
    assert after.typed == typed and after.prefix == before.prefix + typed
    assert after.input_ids[: len(before.input_ids)] == before.input_ids
    assert tokenizer.decode(after.input_ids[len(before.input_ids):]) == typed
    assert len(after.input_ids) <= 400
    # SPM prompts only grow at the end anyway: typed text simply joins the prefix.
    spm = editor_context(tokenizer, prefix, suffix, budget_tokens=400, layout=SPM, typed=typed)
    assert spm.typed == "" and spm.input_ids == editor_context(tokenizer, prefix + typed, suffix, budget_tokens=400,
                                                                 layout=SPM).input_ids
    # More than the reserve: split at the cursor again, as without a split.
    long_typed = "x = 1; " * 20
    fallback = editor_context(tokenizer, prefix, suffix, budget_tokens=400, layout=PSM, typed=long_typed)
    assert fallback.typed == "" and fallback.prefix.endswith(long_typed)
