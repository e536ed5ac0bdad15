"""The runtime loads a real model folder and a standard PEFT soft prompt, and uses the soft prompt."""

from __future__ import annotations

import pytest
import torch

from conftest import INIT_TEXT

from greencoder.core.errors import InputError


def test_tiny_model_loads_as_a_real_causal_lm(tiny_runtime, tiny_model_dir):
    info = tiny_runtime.info()
    assert info.model == str(tiny_model_dir)
    assert info.device == "cpu" and info.dtype == "float32"
    assert info.threads == 1 and torch.get_num_threads() == 1
    assert info.adapter is None and info.num_virtual_tokens == 0
    assert info.context_tokens == 2048
    assert not tiny_runtime.model.training


def test_adapter_loads_with_its_virtual_tokens(tiny_runtime_with_adapter, tiny_adapter_dir):
    runtime = tiny_runtime_with_adapter
    tokens = runtime.tokenizer(INIT_TEXT, add_special_tokens=False)["input_ids"]
    assert runtime.num_virtual_tokens == len(tokens)
    assert runtime.info().adapter == str(tiny_adapter_dir)
    prompt = runtime.model.get_prompt_embedding_to_save(runtime.model.active_adapter)
    # A freshly made TEXT-initialised prompt is the embedding of the init text.
    expected = runtime.base_model.get_input_embeddings().weight[torch.tensor(tokens)]
    assert torch.allclose(prompt, expected)


def test_soft_prompt_is_prepended_to_the_input(tiny_runtime_with_adapter):
    """The PEFT model's logits for the text equal the base model run on [soft prompt; text embeddings]."""
    runtime = tiny_runtime_with_adapter
    ids = torch.tensor([runtime.encode("def add(a, b):\n    return")])
    prompt = runtime.model.get_prompt_embedding_to_save(runtime.model.active_adapter)
    with torch.no_grad():
        peft_logits = runtime.model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits
        embeds = runtime.base_model.get_input_embeddings()(ids)
        manual = runtime.base_model(inputs_embeds=torch.cat([prompt[None], embeds], dim=1)).logits
        plain = runtime.base_model(input_ids=ids).logits
    n = runtime.num_virtual_tokens
    assert peft_logits.shape[1] == ids.shape[1] + n
    assert torch.allclose(peft_logits[:, n:], manual[:, n:], atol=1e-5)
    assert not torch.allclose(peft_logits[:, n:], plain, atol=1e-3)


def test_generation_uses_the_soft_prompt(tiny_runtime, tiny_runtime_with_adapter):
    from greencoder.core.generation import GenerationOptions

    prompt = "def fib(n):\n    "
    options = GenerationOptions(max_new_tokens=12)
    base = tiny_runtime.generate(prompt, options)
    tuned = tiny_runtime_with_adapter.generate(prompt, options)
    assert tuned.virtual_tokens == tiny_runtime_with_adapter.num_virtual_tokens and base.virtual_tokens == 0
    assert tuned.prompt_tokens == base.prompt_tokens
    assert tuned.token_ids != base.token_ids


def test_adapter_saved_by_plain_peft_loads_back_identically(tiny_model_dir, tiny_adapter_dir):
    """Adapters are plain PEFT folders: what PeftModel.from_pretrained reads is what the runtime holds."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from greencoder.core.model_loading import ModelSettings, load_model

    loaded = load_model(ModelSettings(str(tiny_model_dir), str(tiny_adapter_dir), device="cpu"))
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), tiny_adapter_dir)
    ours = loaded.model.get_prompt_embedding_to_save("default")
    theirs = reference.get_prompt_embedding_to_save("default")
    assert torch.equal(ours, theirs)


def test_auto_device_takes_cuda_then_an_apple_gpu_then_the_cpu(monkeypatch):
    import torch

    from greencoder.core import model_loading

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(model_loading, "mps_available", lambda: True)
    assert model_loading.resolve_device("auto").type == "mps"
    assert model_loading.resolve_device("mps").type == "mps"
    assert model_loading.resolve_dtype("auto", torch.device("mps")) == torch.float16
    monkeypatch.setattr(model_loading, "mps_available", lambda: False)
    assert model_loading.resolve_device("auto").type == "cpu"
    with pytest.raises(InputError, match="no Apple GPU"):
        model_loading.resolve_device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert model_loading.resolve_device("auto").type == "cuda"
