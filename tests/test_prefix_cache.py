"""Prefix reuse: keys/values of earlier requests serve later ones, and never change a token."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from conftest import SHARED_DATA

from greencoder.core.completion import CompletionSettings, complete_at
from greencoder.core.decoding import find_draft
from greencoder.core.generation import STOP_CANCELLED, GenerationOptions
from greencoder.core.languages import PYTHON
from greencoder.core.prefix_cache import PrefixCache, common_prefix_length
from greencoder.core.runtime import Runtime

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "primes.py"
NEW_FUNCTION = "\n\ndef sum_of_squares(values):\n    total = 0\n    for v in values:\n        total += v * v\n"
SETTINGS = CompletionSettings(max_new_tokens=8, context_tokens=256)


def _source_file() -> str:
    """A real Python file of a few kB (longer than the context budget): HumanEval solutions."""
    import gzip
    import json

    with gzip.open(SHARED_DATA / "humaneval_x" / "humaneval_python.jsonl.gz", "rt", encoding="utf-8") as rows:
        problems = [json.loads(line) for _, line in zip(range(5), rows, strict=False)]
    return "".join(p["prompt"] + p["canonical_solution"] + "\n" for p in problems)


def _twin_without_reuse(runtime: Runtime) -> Runtime:
    """The same loaded model, reading every prompt whole."""
    return Runtime(runtime.loaded, runtime.threads, reuse=False)


def _editing_session(base: str) -> list[tuple[str, str, int]]:
    """(document key, text, cursor offset) per request: typing a function at the end, backspaces,
    an edit above the cursor, typing in another document, and coming back."""
    steps: list[tuple[str, str, int]] = []
    text = base
    for char in NEW_FUNCTION[:40]:
        text += char
        steps.append(("a", text, len(text)))
    for _ in range(3):  # backspace
        text = text[:-1]
        steps.append(("a", text, len(text)))
    text = "# primes, counted the slow way\n" + text  # an edit above the cursor
    steps.append(("a", text, len(text)))
    for char in NEW_FUNCTION[37:60]:
        text += char
        steps.append(("a", text, len(text)))
    other = "import math\n\n\ndef area(r):\n    return math.pi * r"
    for cut in range(len(other) - 12, len(other) + 1):
        steps.append(("b", other[:cut], cut))  # another document, typed into
    for char in NEW_FUNCTION[60:64]:  # back in the first document, where the cursor was
        text += char
        steps.append(("a", text, len(text)))
    middle = text.index("def ") + len("def ")
    for char in "fast_":  # then typing in the middle of it
        text = text[:middle] + char + text[middle:]
        middle += 1
        steps.append(("a", text, middle))
    return steps


@pytest.mark.parametrize("runtime_fixture", ["tiny_runtime", "tiny_runtime_with_adapter"])
def test_editing_session_is_token_identical_with_and_without_reuse(runtime_fixture, request):
    runtime: Runtime = request.getfixturevalue(runtime_fixture)
    runtime.set_reuse(True)
    plain = _twin_without_reuse(runtime)
    virtual = runtime.num_virtual_tokens
    reused_total = prompt_total = 0
    returns_to_a: list[int] = []
    previous_key = None
    for key, text, offset in _editing_session(_source_file()):
        with_reuse = complete_at(runtime, text, offset, PYTHON, SETTINGS, cache_key=key)
        without = complete_at(plain, text, offset, PYTHON, SETTINGS, cache_key=key)
        assert with_reuse.generation.token_ids == without.generation.token_ids, (key, text[-30:])
        assert with_reuse.text == without.text
        assert without.generation.reused_tokens == 0
        assert without.generation.prefill_tokens == virtual + without.generation.prompt_tokens
        generation = with_reuse.generation
        assert generation.prefill_tokens + generation.reused_tokens == virtual + generation.prompt_tokens
        if previous_key is not None:
            assert generation.reused_tokens >= virtual  # the soft prompt is always reused after the first time
        reused_total += generation.reused_tokens
        prompt_total += virtual + generation.prompt_tokens
        if previous_key == "b" and key == "a":
            returns_to_a.append(generation.reused_tokens)
        previous_key = key
    assert reused_total > 0.7 * prompt_total
    # Document a's entry survived the visit to document b: only the changed tail is read again.
    assert returns_to_a and returns_to_a[0] > 0.3 * (virtual + SETTINGS.context_tokens)


def test_identical_request_reads_only_its_last_token(tiny_runtime_with_adapter):
    runtime = tiny_runtime_with_adapter
    runtime.set_reuse(True)
    ids = runtime.encode("def count_primes(limit):\n    total = 0\n")
    first = runtime.generate(ids, GenerationOptions(max_new_tokens=5))
    second = runtime.generate(ids, GenerationOptions(max_new_tokens=5))
    virtual = runtime.num_virtual_tokens
    assert first.prefill_tokens == virtual + len(ids) and first.reused_tokens == 0
    assert second.prefill_tokens == 1 and second.reused_tokens == virtual + len(ids) - 1
    assert first.token_ids == second.token_ids


def test_cancelled_generation_leaves_a_valid_cache(tiny_runtime):
    runtime = tiny_runtime
    runtime.set_reuse(True)
    plain = _twin_without_reuse(runtime)
    ids = runtime.encode(EXAMPLE.read_text())
    cancel = threading.Event()

    def cancel_after_three(count: int) -> None:
        if count == 3:
            cancel.set()

    cancelled = runtime.generate(ids, GenerationOptions(max_new_tokens=20), cancel, on_token=cancel_after_three)
    assert cancelled.stop_reason == STOP_CANCELLED and cancelled.new_tokens == 3
    resumed = runtime.generate(ids, GenerationOptions(max_new_tokens=20))
    assert resumed.reused_tokens == len(ids) - 1
    assert resumed.token_ids == plain.generate(ids, GenerationOptions(max_new_tokens=20)).token_ids


def test_cancelled_prefill_keeps_what_it_read(tiny_runtime, monkeypatch):
    """A keystroke cancels a long prefill; the next request continues from the chunks already read."""
    from greencoder.core import decoding

    monkeypatch.setattr(decoding, "PREFILL_CHUNK_TOKENS", 16)
    runtime = tiny_runtime
    runtime.set_reuse(True)
    plain = _twin_without_reuse(runtime)
    ids = runtime.encode(EXAMPLE.read_text() * 2)
    cancel = threading.Event()
    calls = [0]

    def cancel_on_third_chunk(module, args, kwargs):
        calls[0] += 1
        if calls[0] == 3:
            cancel.set()

    hook = runtime.base_model.register_forward_pre_hook(cancel_on_third_chunk, with_kwargs=True)
    try:
        cancelled = runtime.generate(ids, GenerationOptions(max_new_tokens=6), cancel)
    finally:
        hook.remove()
    assert cancelled.stop_reason == STOP_CANCELLED and cancelled.new_tokens == 0
    assert cancelled.prefill_tokens == 3 * 16
    resumed = runtime.generate(ids + runtime.encode(" x")[-1:], GenerationOptions(max_new_tokens=6))
    assert resumed.reused_tokens == 3 * 16
    assert resumed.token_ids == plain.generate(ids + runtime.encode(" x")[-1:], GenerationOptions(max_new_tokens=6)).token_ids


@pytest.mark.parametrize("runtime_fixture", ["tiny_runtime", "tiny_runtime_with_adapter"])
@pytest.mark.slow  # a long duplicate of default coverage: the default suite keeps its 12 minutes
def test_prompt_lookup_never_changes_the_output(runtime_fixture, request):
    runtime: Runtime = request.getfixturevalue(runtime_fixture)
    runtime.set_reuse(False)
    try:
        prompts = [
            EXAMPLE.read_text(),
            "for i in range(10):\n    print(i)\n" * 6,
            "def f(x):\n    return x\n",
        ]
        repetitive_gain = False
        for prompt in prompts:
            for stops in ((), ("\n\n",)):
                plain = runtime.generate(prompt, GenerationOptions(max_new_tokens=40, stop_sequences=stops))
                drafted = runtime.generate(prompt, GenerationOptions(max_new_tokens=40, stop_sequences=stops,
                                                                     prompt_lookup_tokens=6))
                assert drafted.token_ids == plain.token_ids and drafted.text == plain.text
                assert drafted.stop_reason == plain.stop_reason
                repetitive_gain |= drafted.forward_passes < plain.forward_passes
        assert repetitive_gain  # drafts were accepted somewhere, so the comparison means something
    finally:
        runtime.set_reuse(True)


def test_negative_prompt_lookup_is_an_input_error(tiny_runtime):
    from greencoder.core.errors import InputError

    with pytest.raises(InputError, match="prompt_lookup_tokens must be 0"):
        tiny_runtime.generate("x = 1\n", GenerationOptions(max_new_tokens=2, prompt_lookup_tokens=-1))


def test_find_draft_copies_what_followed_the_last_ngram():
    assert find_draft([1, 2, 3, 4, 9, 1, 2, 3], 2) == [4, 9]
    assert find_draft([5, 6, 7, 5, 6], 3) == [7, 5, 6]
    assert find_draft([1, 2, 3], 4) == []
    assert find_draft([1, 2, 1], 0) == []


def _fake_cache(length: int, width: int = 4):
    import torch
    from transformers import DynamicCache

    data = [(torch.arange(length * width, dtype=torch.float32).reshape(1, 1, length, width),) * 2 for _ in range(2)]
    return DynamicCache(ddp_cache_data=data)


def test_store_keeps_one_entry_per_key_within_the_bounds():
    cache = PrefixCache(max_entries=2)
    assert cache.store("a", [1, 2, 3], _fake_cache(3))
    assert cache.store("b", [7, 8, 9], _fake_cache(3))
    assert cache.store("a", [1, 2, 3, 4], _fake_cache(4))  # replaces a's entry
    assert len(cache) == 2
    assert cache.store("c", [5, 5], _fake_cache(2))  # evicts the least recently used: b
    assert cache.start("x", [7, 8, 9, 10], 0) is None
    start = cache.start("x", [1, 2, 3, 4, 5], 0)
    assert start is not None and start.reused_tokens == 4


def test_store_respects_the_byte_cap():
    one_entry = _fake_cache(3)
    size = sum(t.untyped_storage().nbytes() for layer in one_entry.layers for t in (layer.keys, layer.values))
    cache = PrefixCache(max_bytes=size + 1)
    assert cache.store("a", [1, 2, 3], _fake_cache(3))
    assert cache.store("b", [4, 5, 6], _fake_cache(3))
    assert len(cache) == 1 and cache.total_bytes <= size + 1
    assert not PrefixCache(max_bytes=size - 1).store("a", [1, 2, 3], _fake_cache(3))


def test_start_never_covers_the_last_prompt_token_and_never_changes_the_entry():
    cache = PrefixCache()
    cache.store("a", [1, 2, 3, 4], _fake_cache(4))
    start = cache.start("a", [1, 2, 3], 0)
    assert start.reused_tokens == 2 and start.cache.get_seq_length() == 2
    start.cache.crop(-1)
    import torch

    start.cache.update(torch.zeros(1, 1, 5, 4), torch.zeros(1, 1, 5, 4), 0)
    again = cache.start("a", [1, 2, 3, 4, 5], 0)
    assert again.reused_tokens == 4
    assert torch.equal(again.cache.layers[0].keys, _fake_cache(4).layers[0].keys)


def test_discard_forgets_one_key():
    cache = PrefixCache()
    cache.store("a", [1, 2, 3], _fake_cache(3))
    cache.store("b", [4, 5, 6], _fake_cache(3))
    cache.discard("a")
    cache.discard("never stored")
    assert len(cache) == 1 and cache.start("a", [1, 2, 3, 4], 0) is None


def test_an_entry_that_is_a_prefix_of_a_new_one_is_dropped():
    cache = PrefixCache()
    cache.store("a", [1, 2], _fake_cache(2))
    cache.store("b", [1, 2, 3], _fake_cache(3))
    assert len(cache) == 1


def test_common_prefix_length():
    assert common_prefix_length([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix_length([], [1]) == 0
    assert common_prefix_length((1, 2), [1, 2, 3]) == 2
