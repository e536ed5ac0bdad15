"""The paper's prompt format and the editor's cursor context within a token budget."""

from __future__ import annotations

from greencoder.core.prompt import FIM_FORMATS, INSTRUCTION, detect_fim, editor_context, problem_prompt

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
    tokenizer = tiny_runtime.tokenizer
    prefix, suffix = _document(200), "\n" + _document(200)
    context = editor_context(tokenizer, prefix, suffix, budget_tokens=300, suffix_share=0.25)
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
