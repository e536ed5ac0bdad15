"""Generation honours max_new_tokens, stop sequences and cancellation, and reports its cost."""

from __future__ import annotations

import threading
import warnings

import pytest

from greencoder.core.errors import InputError
from greencoder.core.generation import (
    STOP_CANCELLED,
    STOP_MAX_TOKENS,
    STOP_SEQUENCE,
    GenerationOptions,
    cut_at_stop,
    find_stop,
)

PROMPT = "def count_primes(limit):\n    total = 0\n"


def test_max_new_tokens_is_honoured(tiny_runtime):
    result = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=7))
    assert result.new_tokens == 7 and len(result.token_ids) == 7
    assert result.stop_reason == STOP_MAX_TOKENS
    assert result.prompt_tokens == len(tiny_runtime.encode(PROMPT))
    assert result.wall_seconds > 0 and result.cpu_seconds > 0


def test_greedy_generation_is_deterministic(tiny_runtime):
    first = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=10))
    second = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=10))
    assert first.token_ids == second.token_ids and first.text == second.text


def test_stop_sequence_ends_generation_and_is_cut(tiny_runtime):
    free = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=40))
    # Pick a stop string out of what the model really writes, a little way in.
    text = free.text
    start = len(text) // 2
    stop = text[start : start + 3]
    assert len(stop) == 3
    expected = text[: text.find(stop)]
    stopped = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=40, stop_sequences=(stop,)))
    assert stopped.stop_reason == STOP_SEQUENCE
    assert stopped.text == expected
    assert stopped.new_tokens < free.new_tokens
    assert stopped.token_ids == free.token_ids[: stopped.new_tokens]


def test_stop_sequence_may_start_with_the_prompts_last_newline():
    assert cut_at_stop("print(x)\n", ["\nprint("], prompt_tail="\n") == ("", True)
    assert cut_at_stop("x = 1\nprint(x)", ["\nprint("], prompt_tail="\n") == ("x = 1", True)
    assert cut_at_stop("x = 1", ["\nprint("], prompt_tail="\n") == ("x = 1", False)
    # A stop sequence lying wholly inside the prompt does not count.
    assert find_stop("ab\nprint(", ["ab"], after=2) is None


def test_cancellation_from_another_thread_stops_within_a_few_tokens(tiny_runtime):
    cancel = threading.Event()
    seen_at_cancel: list[int] = []
    progress = threading.Condition()
    count = [0]

    def on_token(n: int) -> None:
        with progress:
            count[0] = n
            progress.notify_all()

    def canceller() -> None:
        with progress:
            progress.wait_for(lambda: count[0] >= 5, timeout=60)
            seen_at_cancel.append(count[0])
            cancel.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    result = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=1500), cancel=cancel, on_token=on_token)
    thread.join()
    assert result.stop_reason == STOP_CANCELLED
    assert seen_at_cancel and result.new_tokens - seen_at_cancel[0] <= 2


def test_cancelled_before_start_generates_nothing(tiny_runtime):
    cancel = threading.Event()
    cancel.set()
    result = tiny_runtime.generate(PROMPT, GenerationOptions(max_new_tokens=50), cancel=cancel)
    assert result.new_tokens == 0 and result.text == "" and result.stop_reason == STOP_CANCELLED


def test_prompt_too_long_for_the_context_is_an_input_error(tiny_runtime):
    ids = tiny_runtime.encode("x = 1\n") * 1200
    with pytest.raises(InputError, match="exceeds the model's context of 2048 tokens"):
        tiny_runtime.generate(ids, GenerationOptions(max_new_tokens=10))


def test_only_pefts_position_ids_warning_is_silenced(tiny_runtime_with_adapter):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tiny_runtime_with_adapter.generate(PROMPT, GenerationOptions(max_new_tokens=3))
        warnings.warn("Token type ids are not supported for parameter efficient tuning.", UserWarning, stacklevel=2)
    messages = [str(w.message) for w in caught]
    assert not any("Position ids are not supported" in m for m in messages)
    assert any("Token type ids are not supported" in m for m in messages)


def test_context_limit_is_read_from_the_config_keys_models_use():
    from transformers import GPT2Config, LlamaConfig, LlavaConfig, PretrainedConfig

    from greencoder.core.generation import config_context_limit

    assert config_context_limit(LlamaConfig(max_position_embeddings=4096)) == 4096
    assert config_context_limit(GPT2Config(n_positions=1536)) == 1536
    assert config_context_limit(LlavaConfig(text_config={"model_type": "llama", "max_position_embeddings": 8192})) == 8192
    assert config_context_limit(PretrainedConfig(seq_length=3000)) == 3000
    assert config_context_limit(PretrainedConfig(n_ctx=512)) == 512
    assert config_context_limit(PretrainedConfig()) is None
    assert config_context_limit(None) is None


def test_context_limit_is_the_smaller_of_model_and_tokenizer():
    from types import SimpleNamespace

    from greencoder.core.generation import DEFAULT_CONTEXT, context_limit

    model = SimpleNamespace(config=SimpleNamespace(max_position_embeddings=4096))
    assert context_limit(model, SimpleNamespace(model_max_length=1024)) == 1024
    assert context_limit(model, SimpleNamespace(model_max_length=int(1e30))) == 4096  # "no limit"
    assert context_limit(SimpleNamespace(), SimpleNamespace()) == DEFAULT_CONTEXT


def _full_recompute_reference(runtime, prompt: str, steps: int) -> list[int]:
    """Greedy tokens computed the slow, obviously right way: the whole sequence (soft prompt
    embeddings, then the prompt and every token so far) through the model at each step, no cache."""
    import torch

    base = runtime.base_model
    sequence = runtime.encode(prompt)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(steps):
            embeds = base.get_input_embeddings()(torch.tensor([sequence]))
            if runtime.num_virtual_tokens:
                embeds = torch.cat([runtime.model.get_prompt(batch_size=1).to(embeds.dtype), embeds], dim=1)
            token = int(base(inputs_embeds=embeds).logits[0, -1].argmax())
            out.append(token)
            sequence.append(token)
    return out


@pytest.mark.parametrize("runtime_fixture", ["tiny_runtime", "tiny_runtime_with_adapter"])
def test_generation_matches_a_full_recompute(runtime_fixture, request):
    """With transformers 5.24, PEFT 0.21's generate prepended the virtual tokens again on every
    decoding step (it looks for the cache under its old name), so with a soft prompt every token
    after the first was wrong."""
    runtime = request.getfixturevalue(runtime_fixture)
    result = runtime.generate(PROMPT, GenerationOptions(max_new_tokens=12))
    assert result.token_ids == _full_recompute_reference(runtime, PROMPT, 12)
