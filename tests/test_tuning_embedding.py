"""Text embeddings after the soft prompt: virtual tokens dropped, padding masked, PEFT's own mask handling."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="module")
def prompt_model(tiny_model_dir):
    from greencoder.core.model_loading import load_base_model
    from greencoder.tuning.soft_prompt import attach_trainable_soft_prompt, prompt_tuning_config

    base, tokenizer = load_base_model(str(tiny_model_dir), torch.device("cpu"), torch.float32)
    model = attach_trainable_soft_prompt(base, prompt_tuning_config(str(tiny_model_dir), tokenizer))
    model.eval()
    return model, tokenizer


def test_embedding_is_mean_of_last_hidden_state_over_real_tokens_after_the_prompt(prompt_model):
    """Computed by hand on the base model: [prompt vectors; token embeddings] -> last hidden
    state -> drop the virtual positions -> mean over the text."""
    from greencoder.tuning.soft_prompt import TextEmbedder, soft_prompt_weights

    model, tokenizer = prompt_model
    ids = torch.tensor([tokenizer("def f(x):\n    return x + 1")["input_ids"]])
    embedder = TextEmbedder(model, model.active_peft_config.num_virtual_tokens)
    with torch.no_grad():
        ours = embedder(model, ids, torch.ones_like(ids))
        base = model.get_base_model()
        inputs = torch.cat([soft_prompt_weights(model)[None], base.get_input_embeddings()(ids)], dim=1)
        hidden = base.model(inputs_embeds=inputs).last_hidden_state
        expected = hidden[:, soft_prompt_weights(model).shape[0]:].mean(dim=1)
    assert torch.allclose(ours, expected, atol=1e-5)
    # Keeping the virtual positions would give another vector: the drop matters.
    assert not torch.allclose(ours, hidden.mean(dim=1), atol=1e-3)


def test_embedding_does_not_depend_on_batch_partners_or_padding(prompt_model):
    from greencoder.tuning.batches import Collator, Sample, split_embeddings
    from greencoder.tuning.soft_prompt import TextEmbedder

    model, tokenizer = prompt_model
    short = tokenizer("x = 1")["input_ids"]
    long = tokenizer("def long_function(a, b, c):\n    return [a * i + b for i in range(c)]\n" * 3)["input_ids"]
    embedder = TextEmbedder(model, model.active_peft_config.num_virtual_tokens)
    collator = Collator(tokenizer.pad_token_id)
    with torch.no_grad():
        alone = collator([Sample(short, short, (short,))])
        together = collator([Sample(short, long, (long, long)), Sample(long, short, (short,))])
        assert together["input_ids"].shape[1] == len(long)  # right padding up to the longest text
        assert together["attention_mask"][0].sum() == len(short)
        e_alone = embedder(model, alone["input_ids"], alone["attention_mask"])
        e_together = embedder(model, together["input_ids"], together["attention_mask"])
    anchors, positives, negatives = split_embeddings(e_together, 2)
    assert torch.allclose(anchors[0], e_alone[0], atol=1e-5)
    assert torch.allclose(positives[1], e_alone[0], atol=1e-5)
    assert torch.allclose(negatives[2], e_alone[0], atol=1e-5)
    assert together["negative_owner"].tolist() == [0, 0, 1]


def test_only_the_prompt_is_trainable_and_kept_in_float32(prompt_model):
    model, _ = prompt_model
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("prompt_encoder" in name for name in trainable)
    assert all(p.dtype == torch.float32 for p in model.prompt_encoder.parameters())


def test_virtual_token_count_is_configurable(tiny_model_dir):
    from transformers import AutoTokenizer

    from greencoder.tuning.soft_prompt import INIT_TEXT, init_text_token_count, prompt_tuning_config

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert (prompt_tuning_config(str(tiny_model_dir), tokenizer).num_virtual_tokens
            == init_text_token_count(tokenizer) == len(tokenizer(INIT_TEXT)["input_ids"]))
    assert prompt_tuning_config(str(tiny_model_dir), tokenizer, virtual_tokens=20).num_virtual_tokens == 20


def test_negatives_are_capped_and_redrawn_per_epoch_reproducibly():
    from greencoder.tuning.batches import EpochSamples, TokenizedEntry, epoch_order

    entry = TokenizedEntry([1], [2], tuple([[10 + i] for i in range(6)]))
    first = EpochSamples([entry], [0], negatives=2, seed=0, epoch=1)[0].negatives
    assert len(first) == 2 and set(map(tuple, first)) <= {(10 + i,) for i in range(6)}
    assert EpochSamples([entry], [0], negatives=2, seed=0, epoch=1)[0].negatives == first
    draws = {tuple(map(tuple, EpochSamples([entry], [0], negatives=2, seed=0, epoch=e)[0].negatives)) for e in range(1, 8)}
    assert len(draws) > 1
    assert EpochSamples([entry], [0], negatives=10, seed=0, epoch=1)[0].negatives == entry.inefficient
    assert epoch_order(20, 0, 1) == epoch_order(20, 0, 1) != epoch_order(20, 0, 2)
    assert sorted(epoch_order(20, 0, 1)) == list(range(20))
