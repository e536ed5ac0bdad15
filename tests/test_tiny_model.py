"""The locally built tiny model is a real, loadable model folder with the conventions tests rely on."""

from __future__ import annotations

import json

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from greencoder.core.tiny_model import EOS_TOKEN, FIM_TOKENS, PAD_TOKEN, TinyModelSpec, make_tiny_model


def test_folder_loads_with_the_auto_classes(tiny_model_dir):
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    parameters = sum(p.numel() for p in model.parameters())
    assert 1_000_000 < parameters < 10_000_000


def test_tokenizer_has_eos_pad_fim_and_a_max_length(tiny_model_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    assert tokenizer.eos_token == EOS_TOKEN and tokenizer.pad_token == PAD_TOKEN
    assert tokenizer.eos_token_id != tokenizer.pad_token_id
    assert tokenizer.model_max_length == TinyModelSpec().max_length
    for token in FIM_TOKENS:
        assert tokenizer.tokenize(f"x{token}y") == ["x", token, "y"]
    code = "for (int i = 0; i < n; ++i) { total += i; }\n"
    assert tokenizer.decode(tokenizer(code)["input_ids"]) == code  # byte-level: lossless on code


def test_same_seed_same_model_and_no_fim_variant(tmp_path, tiny_model_dir):
    spec = TinyModelSpec(fim=False, corpus_bytes=300_000)
    first = make_tiny_model(tmp_path / "a", spec)
    second = make_tiny_model(tmp_path / "b", spec)
    assert (first / "tokenizer.json").read_bytes() == (second / "tokenizer.json").read_bytes()
    a = AutoModelForCausalLM.from_pretrained(first).state_dict()
    b = AutoModelForCausalLM.from_pretrained(second).state_dict()
    assert all(torch.equal(a[name], b[name]) for name in a)
    tokenizer = AutoTokenizer.from_pretrained(first)
    assert "<fim_prefix>" not in tokenizer.get_vocab()
