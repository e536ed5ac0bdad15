"""Build a real, tiny, random-weight causal LM folder: a stand-in when model hubs are unreachable.

Tests, benchmarks and the offline fallback of `greencoder complete` need a model that goes through
exactly the loading code a real one does (AutoTokenizer / AutoModelForCausalLM on a folder). This
module trains a byte-level BPE tokenizer with `tokenizers` on source code that is already on the
machine (the Python standard library, plus C++ headers when g++ is installed), and saves a
randomly initialised Llama-style model of a few million parameters next to it. Its output is
nonsense; its shapes, special tokens and behaviour are those of a real model.
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

EOS_TOKEN = "<|endoftext|>"
PAD_TOKEN = "<|pad|>"
# StarCoder-style fill-in-the-middle tokens, so the FIM prompt path is exercised by tests too.
FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


@dataclass(frozen=True)
class TinyModelSpec:
    """Sizes of the tiny model; the defaults give ~3.5M parameters and build in about two seconds."""

    vocab_size: int = 4096
    hidden_size: int = 192
    intermediate_size: int = 512
    num_layers: int = 4
    num_heads: int = 4
    max_length: int = 2048
    corpus_bytes: int = 3_000_000
    fim: bool = True
    seed: int = 0


def _source_files() -> Iterator[Path]:
    """Local source code to learn the tokenizer from, in a fixed order (same tokenizer every time)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    yield from sorted(p for p in stdlib.glob("*.py"))
    yield from sorted(stdlib.glob("json/*.py"))
    cxx_root = Path("/usr/include/c++")
    if cxx_root.is_dir():
        for version_dir in sorted(cxx_root.iterdir()):
            yield from sorted(p for p in (version_dir / "bits").glob("*.h"))


def _corpus(limit_bytes: int) -> Iterator[str]:
    """Yield file texts until `limit_bytes` have been produced."""
    produced = 0
    for path in _source_files():
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        yield text
        produced += len(text)
        if produced >= limit_bytes:
            return


def build_tokenizer(spec: TinyModelSpec):
    """Train a byte-level BPE tokenizer and wrap it as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = [EOS_TOKEN, PAD_TOKEN, *(FIM_TOKENS if spec.fim else ())]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=spec.vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(_corpus(spec.corpus_bytes), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=EOS_TOKEN,
        bos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=list(FIM_TOKENS) if spec.fim else None,
        model_max_length=spec.max_length,
        padding_side="right",
    )


def build_model(spec: TinyModelSpec, tokenizer):
    """A randomly initialised Llama-style causal LM sized by `spec`."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(spec.seed)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def make_tiny_model(out_dir: str | Path, spec: TinyModelSpec | None = None) -> Path:
    """Write a complete model folder (config, weights, tokenizer) to `out_dir` and return its path."""
    spec = spec or TinyModelSpec()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(spec)
    model = build_model(spec, tokenizer)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
