"""Batched greedy generation gives each row what unbatched generation gives it, token for token
(tiny model, float32), with and without a soft prompt; per-row stops, errors, costs and cancellation."""

from __future__ import annotations

import threading

import pytest

from greencoder.core.batched_generation import plan_batches
from greencoder.core.errors import InputError
from greencoder.core.generation import (
    STOP_CANCELLED,
    STOP_EOS,
    STOP_ERROR,
    STOP_MAX_TOKENS,
    STOP_SEQUENCE,
    GenerationOptions,
)

# Very different lengths (1 token to ~150), so rows carry from no padding to almost all padding.
PROMPTS = [
    "def count_primes(limit):\n    total = 0\n",
    "x",
    "import os\nimport sys\n" * 12 + "def walk(path):\n    for root, dirs, files in os.walk(path):\n",
    "class Stack:\n    def __init__(self):\n        self.items = []\n",
]


def _single(runtime, prompts, options):
    return [runtime.generate(p, options) for p in prompts]


def _assert_same(batched, single):
    for b, s in zip(batched, single, strict=True):
        assert (b.token_ids, b.text, b.stop_reason, b.prompt_tokens, b.new_tokens, b.virtual_tokens) == (
            s.token_ids, s.text, s.stop_reason, s.prompt_tokens, s.new_tokens, s.virtual_tokens)
        assert b.error is None


@pytest.mark.parametrize("runtime_fixture", ["tiny_runtime", "tiny_runtime_with_adapter"])
def test_batched_equals_unbatched_token_for_token(runtime_fixture, request):
    runtime = request.getfixturevalue(runtime_fixture)
    options = GenerationOptions(max_new_tokens=12)
    batched = runtime.generate_batch(PROMPTS, options)
    _assert_same(batched, _single(runtime, PROMPTS, options))
    assert all(r.stop_reason == STOP_MAX_TOKENS and r.new_tokens == 12 for r in batched)
    assert {r.virtual_tokens for r in batched} == {runtime.num_virtual_tokens}


def test_rows_stopped_by_a_stop_sequence_or_eos_leave_the_others_exact(tiny_runtime_with_adapter):
    """Rows end at different steps (a stop sequence in one, an extra eos id in the longest prompt's,
    so the batch also drops padding columns), and the rows that go on are still exact."""
    runtime = tiny_runtime_with_adapter
    free = runtime.generate_batch(PROMPTS, GenerationOptions(max_new_tokens=16))
    stop = free[0].text[6:9]
    eos = free[2].token_ids[4]
    assert len(stop) == 3
    options = GenerationOptions(max_new_tokens=16, stop_sequences=(stop,), extra_eos_token_ids=(eos,))
    batched = runtime.generate_batch(PROMPTS, options)
    _assert_same(batched, _single(runtime, PROMPTS, options))
    reasons = [r.stop_reason for r in batched]
    assert reasons[0] == STOP_SEQUENCE and reasons[2] == STOP_EOS and STOP_MAX_TOKENS in reasons
    assert batched[2].new_tokens <= 5 < max(r.new_tokens for r in batched)
    # A finished row leaves the batch: it takes part in fewer passes.
    assert batched[2].forward_passes < max(r.forward_passes for r in batched)


def test_a_prompt_too_long_for_the_context_is_that_rows_error_only(tiny_runtime):
    too_long = tiny_runtime.encode("x = 1\n") * 1200
    options = GenerationOptions(max_new_tokens=6)
    results = tiny_runtime.generate_batch([PROMPTS[0], too_long, [], PROMPTS[3]], options)
    assert len(results) == 4
    assert results[1].stop_reason == STOP_ERROR and "exceeds the model's context of 2048 tokens" in results[1].error
    assert results[1].prompt_tokens == len(too_long) and results[1].new_tokens == 0 and results[1].text == ""
    assert results[2].stop_reason == STOP_ERROR and "empty prompt" in results[2].error
    _assert_same([results[0], results[3]], _single(tiny_runtime, [PROMPTS[0], PROMPTS[3]], options))


def test_bad_options_fail_the_whole_batch_with_one_line(tiny_runtime):
    with pytest.raises(InputError, match="max_new_tokens must be at least 1"):
        tiny_runtime.generate_batch(PROMPTS, GenerationOptions(max_new_tokens=0))


def test_costs_are_apportioned_by_computed_positions(tiny_runtime):
    results = tiny_runtime.generate_batch(PROMPTS, GenerationOptions(max_new_tokens=5))
    assert all(r.wall_seconds > 0 for r in results) and sum(r.cpu_seconds for r in results) > 0
    # Each row computed its prompt and 4 decoding steps (the 5th token is never fed back).
    positions = [r.prompt_tokens + 4 for r in results]
    total_wall = sum(r.wall_seconds for r in results)
    assert [r.wall_seconds / total_wall for r in results] == pytest.approx([p / sum(positions) for p in positions])
    assert all(r.prefill_tokens == r.prompt_tokens and r.reused_tokens == 0 for r in results)


class _CancelAfter(threading.Event):
    """Reads as set from the n-th check on: cancels at a known point without timing."""

    def __init__(self, checks: int):
        super().__init__()
        self.remaining = checks

    def is_set(self) -> bool:
        self.remaining -= 1
        return self.remaining < 0 or super().is_set()


def test_cancellation_stops_every_unfinished_row_between_steps(tiny_runtime):
    options = GenerationOptions(max_new_tokens=50)
    # 1 check before starting and 1 per prompt read (4 single-chunk prompts), then 1 per decoding step.
    cancelled = tiny_runtime.generate_batch(PROMPTS, options, cancel=_CancelAfter(8))
    assert all(r.stop_reason == STOP_CANCELLED for r in cancelled)
    assert all(r.new_tokens == 4 for r in cancelled)
    assert len({r.new_tokens for r in cancelled}) == 1
    reference = tiny_runtime.generate_batch(PROMPTS, GenerationOptions(max_new_tokens=cancelled[0].new_tokens))
    assert [r.token_ids for r in cancelled] == [r.token_ids for r in reference]

    already = threading.Event()
    already.set()
    results = tiny_runtime.generate_batch(PROMPTS, options, cancel=already)
    assert all(r.stop_reason == STOP_CANCELLED and r.new_tokens == 0 for r in results)


def test_models_that_cannot_be_left_padded_fall_back_to_one_prompt_at_a_time(tiny_runtime, monkeypatch):
    from greencoder.core import batched_decoding

    monkeypatch.setattr(batched_decoding, "can_batch", lambda model: False)
    options = GenerationOptions(max_new_tokens=4)
    _assert_same(tiny_runtime.generate_batch(PROMPTS[:2], options), _single(tiny_runtime, PROMPTS[:2], options))


def test_plan_batches_groups_similar_lengths_and_keeps_groups_apart():
    lengths = [5, 100, 7, 90, 6, 95]
    assert plan_batches(lengths, 2) == [[1, 5], [3, 2], [4, 0]]
    assert plan_batches(lengths, 4, groups=["py", "go", "py", "go", "py", "go"]) == [[2, 4, 0], [1, 5, 3]]
    assert sorted(i for batch in plan_batches(lengths, 3) for i in batch) == list(range(6))
    with pytest.raises(ValueError):
        plan_batches(lengths, 0)


def test_the_preallocated_cache_grows_and_selects_like_a_plain_one(tiny_runtime):
    """batched_decoding's cache writes into buffers sized up front; past them it grows, and row/column
    selection keeps exactly the chosen keys and values."""
    import torch

    from greencoder.core.batched_decoding import roomy_cache

    model = tiny_runtime.base_model
    cache = roomy_cache(model, capacity=2)
    ids = torch.tensor([[5, 6, 7, 8, 9], [9, 8, 7, 6, 5]])
    with torch.inference_mode():
        model(input_ids=ids[:, :3], cache=cache, use_cache=True)
        model(input_ids=ids[:, 3:], cache=cache, use_cache=True)  # beyond the 2 planned positions
        plain = model(input_ids=ids, use_cache=True).cache
    layer, reference = cache.layers[0], plain.layers[0]
    assert layer.keys.shape == reference.keys.shape and torch.allclose(layer.keys, reference.keys, atol=1e-5)
    layer.select(torch.tensor([1]), torch.tensor([0, 3, 4]), 0)
    assert torch.allclose(layer.values, reference.values[1:, :, [0, 3, 4]], atol=1e-5)
