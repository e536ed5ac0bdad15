"""Load a base causal LM and, optionally, an efficiency soft prompt (a PEFT prompt-tuning adapter).

Both are loaded with the standard Hugging Face entry points (AutoModelForCausalLM, AutoTokenizer,
PeftModel.from_pretrained) so that any model id or folder a user names, and any adapter made by
greencoder or by plain PEFT, loads the same way everywhere. What this module adds is checking:
every way the user's input can be wrong ends in a one-line ModelLoadError/AdapterError that
names the path and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from greencoder.core import hub
from greencoder.core.errors import AdapterError, InputError, ModelLoadError
from greencoder.core.quiet import silence_libraries
from greencoder.core.tune_run import RUN_FILE as TUNING_RUN_FILE

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class HubUnavailableError(ModelLoadError):
    """A hub model id was asked for, it is not cached, and the hub cannot be reached."""


@dataclass(frozen=True)
class ModelSettings:
    """What to load and where to run it."""

    model: str
    adapter: str | None = None
    device: str = "auto"
    """auto (cuda when available, else cpu), cpu, cuda or cuda:N."""
    dtype: str = "auto"
    """auto (bfloat16 on GPU, float32 on CPU), float32, bfloat16 or float16."""


@dataclass
class LoadedModel:
    """A ready-to-generate model: the PEFT wrapper when a soft prompt is loaded, else the base model."""

    model: Any
    tokenizer: Any
    device: Any
    model_reference: str
    adapter_path: str | None
    num_virtual_tokens: int


def first_line(error: BaseException) -> str:
    """The first non-empty line of an exception message (library errors are often paragraphs)."""
    for line in str(error).splitlines():
        if line.strip():
            return line.strip()
    return type(error).__name__


def mps_available() -> bool:
    """Whether this PyTorch can run on an Apple GPU (Metal Performance Shaders)."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str):
    """`auto` takes CUDA, then an Apple GPU (where the default model runs far better than on a
    laptop's CPU), then the CPU; a named device that is not there is an error."""
    import torch

    name = (device or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for, but torch sees no CUDA GPU on this machine")
        return torch.device(name)
    if name == "mps":
        if not mps_available():
            raise InputError("device 'mps' asked for, but this PyTorch has no Apple GPU (MPS) backend here")
        return torch.device("mps")
    if name == "cpu":
        return torch.device("cpu")
    raise InputError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps")


def resolve_dtype(dtype: str, device) -> Any:
    import torch

    name = (dtype or "auto").strip().lower()
    if name == "auto":  # bf16 on CUDA; fp16 on Apple GPUs (bf16 needs macOS 14 there); fp32 on CPUs
        return {"cuda": torch.bfloat16, "mps": torch.float16}.get(device.type, torch.float32)
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if name not in table:
        raise InputError(f"unknown dtype {dtype!r}: use auto, float32, bfloat16 or float16")
    return table[name]


def _check_local_model_folder(path: Path, reference: str) -> None:
    if not path.exists():
        raise ModelLoadError(f"model path {reference} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"model path {reference} is a file, not a model folder")
    if not (path / "config.json").is_file():
        if (path / ADAPTER_CONFIG).is_file():
            raise ModelLoadError(f"{reference} is a PEFT adapter, not a base model: pass it as --adapter")
        raise ModelLoadError(f"{reference} is not a model folder: it has no config.json")


def load_base_model(reference: str, device, dtype) -> tuple[Any, Any]:
    """Load tokenizer and causal LM from a local folder or hub id; returns (model, tokenizer)."""
    silence_libraries()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local = hub.looks_like_path(reference)
    source: str = str(hub.expand(reference)) if local else reference
    if local:
        _check_local_model_folder(Path(source), reference)
    offline = not local and not hub.hub_reachable()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=offline)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, local_files_only=offline)
    except Exception as exc:  # transformers/safetensors/tokenizers raise many types for one cause
        if offline:
            raise HubUnavailableError(
                f"model {reference!r} is not a local folder, not in the Hugging Face cache, and the hub "
                f"({hub.hub_endpoint()}) cannot be reached"
            ) from exc
        where = f"folder {reference}" if local else f"{reference!r} (hub id; no such local folder either)"
        raise ModelLoadError(f"cannot load model from {where}: {first_line(exc)}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    model.to(device)
    model.eval()
    return model, tokenizer


def resolve_tuning_run(adapter: str) -> str:
    """`greencoder tune`'s output folder stands for its best epoch's adapter.

    A tuning run writes one adapter per epoch (OUT/epoch-N) and names the best one in OUT/run.json;
    users naturally pass OUT itself. Any other reference is returned unchanged."""
    path = hub.expand(adapter)
    run_file = path / TUNING_RUN_FILE
    if not path.is_dir() or (path / ADAPTER_CONFIG).exists() or not run_file.is_file():
        return adapter
    try:
        best = json.loads(run_file.read_text(encoding="utf-8")).get("best_adapter")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise AdapterError(f"{adapter} looks like a tuning run but its {TUNING_RUN_FILE} is unreadable ({first_line(exc)})") from exc
    if not best:
        raise AdapterError(f"tuning run {adapter} has no finished epoch yet, so no soft prompt to load")
    return str(path / best)


def read_adapter_config(adapter: str) -> dict[str, Any]:
    """Read and sanity-check a local adapter folder's adapter_config.json."""
    path = hub.expand(adapter)
    if not path.exists():
        raise AdapterError(f"adapter path {adapter} does not exist")
    if not path.is_dir():
        raise AdapterError(f"adapter path {adapter} is a file; an adapter is a folder with {ADAPTER_CONFIG}")
    config_file = path / ADAPTER_CONFIG
    if not config_file.is_file():
        raise AdapterError(f"{adapter} is not a PEFT adapter folder: it has no {ADAPTER_CONFIG}")
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdapterError(f"corrupt adapter: {config_file} is not valid JSON ({first_line(exc)})") from exc
    if not isinstance(config, dict):
        raise AdapterError(f"corrupt adapter: {config_file} does not hold a JSON object")
    if not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        raise AdapterError(f"corrupt adapter: {adapter} has no weights file ({' or '.join(ADAPTER_WEIGHTS)})")
    return config


def check_adapter_fits(config: dict[str, Any], adapter: str, model, model_reference: str) -> None:
    """A soft prompt must be PROMPT_TUNING and have the base model's hidden size."""
    peft_type = str(config.get("peft_type", "")).upper()
    if peft_type != "PROMPT_TUNING":
        raise AdapterError(
            f"adapter {adapter} is a {peft_type or 'untyped'} adapter; greencoder needs a PROMPT_TUNING soft prompt"
        )
    hidden_size = model.get_input_embeddings().weight.shape[-1]
    token_dim = config.get("token_dim")
    if token_dim != hidden_size:
        raise AdapterError(
            f"adapter {adapter} has token dimension {token_dim} but model {model_reference} has hidden size "
            f"{hidden_size}: the soft prompt was made for another base model"
        )
    virtual = config.get("num_virtual_tokens")
    if not isinstance(virtual, int) or virtual < 1:
        raise AdapterError(f"corrupt adapter: {adapter} gives num_virtual_tokens={virtual!r}")


def attach_soft_prompt(model, adapter: str, model_reference: str):
    """Wrap `model` with the soft prompt from `adapter` (a local folder or hub id), after checking it fits."""
    silence_libraries()
    from peft import PeftConfig, PeftModel

    local = hub.looks_like_path(adapter)
    if local:
        config = read_adapter_config(adapter)
        source = str(hub.expand(adapter))
    else:
        try:
            config = PeftConfig.from_pretrained(adapter, local_files_only=not hub.hub_reachable()).to_dict()
        except Exception as exc:  # PEFT raises several types for a missing/unreachable id
            raise AdapterError(f"cannot load adapter {adapter!r} (no such folder; as a hub id: {first_line(exc)})") from exc
        source = adapter
    check_adapter_fits(config, adapter, model, model_reference)
    try:
        peft_model = PeftModel.from_pretrained(model, source, is_trainable=False)
    except Exception as exc:  # safetensors/torch/peft raise many types for corrupt files
        raise AdapterError(f"corrupt adapter: cannot load the weights in {adapter} ({first_line(exc)})") from exc
    prompt = peft_model.get_prompt_embedding_to_save(peft_model.active_adapter)
    expected = (config["num_virtual_tokens"] * config.get("num_transformer_submodules", 1), config["token_dim"])
    if tuple(prompt.shape) != expected:
        raise AdapterError(f"corrupt adapter: {adapter} holds a prompt of shape {tuple(prompt.shape)}, expected {expected}")
    peft_model.eval()
    return peft_model


def load_model(settings: ModelSettings) -> LoadedModel:
    """Load base model (+ soft prompt) as `settings` says."""
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    model, tokenizer = load_base_model(settings.model, device, dtype)
    num_virtual_tokens = 0
    adapter = resolve_tuning_run(settings.adapter) if settings.adapter else None
    if adapter:
        model = attach_soft_prompt(model, adapter, settings.model)
        num_virtual_tokens = model.active_peft_config.num_virtual_tokens
        model.to(device)
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        device=device,
        model_reference=settings.model,
        adapter_path=adapter,
        num_virtual_tokens=num_virtual_tokens,
    )
