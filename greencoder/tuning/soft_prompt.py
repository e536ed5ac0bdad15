"""The trainable soft prompt and the embeddings the contrastive losses compare.

A soft prompt is PEFT prompt tuning on a frozen causal LM: `num_virtual_tokens` vectors placed
before the text. CPT initialises them from the embedding of an instruction ("Generate
energy-efficient code.") so training starts from a sensible prompt, and by default uses exactly as
many virtual tokens as that text has tokens, so the whole instruction (no truncation, no
repetition) is the starting point.

An embedding of a text is the mean of the model's last hidden state over the text's real tokens:
PEFT puts the virtual tokens first in `hidden_states`, so their positions are dropped, and right
padding is masked out, so a text's embedding does not depend on what it was batched with.
"""

from __future__ import annotations

import inspect
from typing import Any

from greencoder.core import hub
from greencoder.core.errors import AdapterError
from greencoder.core.model_loading import first_line
from greencoder.core.quiet import silence_libraries

INIT_TEXT = "Generate energy-efficient code."


def init_text_token_count(tokenizer, init_text: str = INIT_TEXT) -> int:
    """Tokens in `init_text` as PEFT tokenizes it for TEXT initialisation (special tokens included)."""
    return len(tokenizer(init_text)["input_ids"])


def prompt_tuning_config(model_source: str, tokenizer, virtual_tokens: int | None = None, init_text: str = INIT_TEXT):
    """The paper's configuration: causal-LM prompt tuning, initialised from `init_text`."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    count = virtual_tokens or init_text_token_count(tokenizer, init_text)
    tokenizer_kwargs = None
    if not hub.looks_like_path(model_source) and not hub.hub_reachable():
        tokenizer_kwargs = {"local_files_only": True}  # PEFT re-loads the tokenizer by name for the init
    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=init_text,
        num_virtual_tokens=count,
        tokenizer_name_or_path=model_source,
        tokenizer_kwargs=tokenizer_kwargs,
    )


def attach_trainable_soft_prompt(base_model, config):
    """Wrap the frozen `base_model` with a new soft prompt; only the prompt is trainable.

    The prompt is kept in float32 even over a bf16 model: AdamW steps of lr 5e-5 would vanish in
    bf16's 8-bit mantissa. PEFT casts the prompt to the model's dtype in the forward pass, so the
    gradient still reaches the float32 weights."""
    silence_libraries()
    from peft import get_peft_model

    for parameter in base_model.parameters():
        parameter.requires_grad_(False)
    model = get_peft_model(base_model, config)
    prompt_encoder = model.prompt_encoder[model.active_adapter]
    prompt_encoder.float()
    trainable = [name for name, parameter in model.named_parameters() if parameter.requires_grad]
    if not trainable or not all("prompt_encoder" in name for name in trainable):
        raise RuntimeError(f"prompt tuning left unexpected trainable parameters: {trainable}")
    return model


def soft_prompt_weights(model):
    """The soft prompt tensor (virtual tokens x hidden size) of a PEFT prompt-tuning model."""
    return model.prompt_encoder[model.active_adapter].embedding.weight


def load_soft_prompt_into(model, adapter_dir: str) -> None:
    """Overwrite the model's soft prompt with the one saved in `adapter_dir` (used to resume)."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    try:
        weights = load_peft_weights(adapter_dir, device="cpu")
    except Exception as exc:  # safetensors/torch raise several types for a bad file
        raise AdapterError(f"cannot resume: the soft prompt in {adapter_dir} is unreadable ({first_line(exc)})") from exc
    target = soft_prompt_weights(model)
    saved = weights.get("prompt_embeddings")
    if saved is None or tuple(saved.shape) != tuple(target.shape):
        shape = None if saved is None else tuple(saved.shape)
        raise AdapterError(f"cannot resume: {adapter_dir} holds a prompt of shape {shape}, expected {tuple(target.shape)}")
    set_peft_model_state_dict(model, weights)


def forward_accepts(model, argument: str) -> bool:
    """Whether the base model's forward takes `argument` (e.g. `logits_to_keep`, not in every architecture)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return argument in inspect.signature(base.forward).parameters


class TextEmbedder:
    """Mean-pooled last hidden states of texts run after the soft prompt."""

    def __init__(self, model, num_virtual_tokens: int):
        self.num_virtual_tokens = num_virtual_tokens
        # Only hidden states are needed: asking for the logits of one position spares a
        # (batch x length x vocabulary) tensor, the largest in the forward pass of a code LLM.
        self.extra: dict[str, Any] = {"logits_to_keep": 1} if forward_accepts(model, "logits_to_keep") else {}

    def __call__(self, model, input_ids, attention_mask):
        """Embeddings (batch x hidden, float32). `attention_mask` covers the text only: PEFT
        extends it over the virtual tokens itself."""
        output = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True, **self.extra)
        hidden = output.hidden_states[-1][:, self.num_virtual_tokens:, :]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        counts = mask.sum(dim=1).clamp(min=1)
        return (summed / counts).float()
