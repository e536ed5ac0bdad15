"""Every wrong model or adapter ends in one clear line that names the problem (no traceback)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from greencoder.core.errors import AdapterError, ModelLoadError
from greencoder.core.model_loading import ModelSettings, load_model

from conftest import run_greencoder as run_cli

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "primes.py"


def test_missing_model_path(tmp_path):
    with pytest.raises(ModelLoadError, match=r"model path .*nowhere does not exist"):
        load_model(ModelSettings(str(tmp_path / "nowhere")))


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError, match="is not a model folder: it has no config.json"):
        load_model(ModelSettings(str(tmp_path)))


def test_adapter_given_as_model(tiny_adapter_dir):
    with pytest.raises(ModelLoadError, match="is a PEFT adapter, not a base model"):
        load_model(ModelSettings(str(tiny_adapter_dir)))


def test_broken_model_weights(tiny_model_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match=r"cannot load model from folder .*broken"):
        load_model(ModelSettings(str(broken)))


def test_missing_adapter(tiny_model_dir, tmp_path):
    with pytest.raises(AdapterError, match=r"adapter path .*gone does not exist"):
        load_model(ModelSettings(str(tiny_model_dir), str(tmp_path / "gone")))


def test_adapter_folder_without_config(tiny_model_dir, tmp_path):
    with pytest.raises(AdapterError, match="is not a PEFT adapter folder: it has no adapter_config.json"):
        load_model(ModelSettings(str(tiny_model_dir), str(tmp_path)))


def _copy_adapter(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    return target


def test_adapter_with_corrupt_config(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter = _copy_adapter(tiny_adapter_dir, tmp_path / "a")
    (adapter / "adapter_config.json").write_text("{not json")
    with pytest.raises(AdapterError, match="corrupt adapter: .*adapter_config.json is not valid JSON"):
        load_model(ModelSettings(str(tiny_model_dir), str(adapter)))


def test_adapter_with_corrupt_weights(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter = _copy_adapter(tiny_adapter_dir, tmp_path / "a")
    (adapter / "adapter_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(AdapterError, match="corrupt adapter: cannot load the weights"):
        load_model(ModelSettings(str(tiny_model_dir), str(adapter)))


def test_adapter_with_missing_weights(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter = _copy_adapter(tiny_adapter_dir, tmp_path / "a")
    (adapter / "adapter_model.safetensors").unlink()
    with pytest.raises(AdapterError, match="has no weights file"):
        load_model(ModelSettings(str(tiny_model_dir), str(adapter)))


def test_adapter_of_another_kind(tiny_model_dir, tiny_adapter_dir, tmp_path):
    adapter = _copy_adapter(tiny_adapter_dir, tmp_path / "a")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["peft_type"] = "LORA"
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(AdapterError, match="is a LORA adapter; greencoder needs a PROMPT_TUNING soft prompt"):
        load_model(ModelSettings(str(tiny_model_dir), str(adapter)))


def test_adapter_for_another_base_model(tiny_model_dir, tmp_path):
    """A soft prompt trained on a model with another hidden size names both sizes."""
    from peft import PromptTuningConfig, TaskType, get_peft_model
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(tiny_model_dir)
    config.hidden_size, config.intermediate_size = 64, 128
    other = AutoModelForCausalLM.from_config(config)
    get_peft_model(other, PromptTuningConfig(task_type=TaskType.CAUSAL_LM, num_virtual_tokens=4)).save_pretrained(tmp_path / "other")
    with pytest.raises(AdapterError, match=r"has token dimension 64 but model .* has hidden size 192"):
        load_model(ModelSettings(str(tiny_model_dir), str(tmp_path / "other")))


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--model", "/nonexistent/model"], "model path /nonexistent/model does not exist"),
        (["--adapter", "/nonexistent/adapter"], "adapter path /nonexistent/adapter does not exist"),
    ],
)
def test_cli_reports_one_line_without_traceback(tiny_model_dir, args, expected):
    if "--model" not in args:
        args = ["--model", str(tiny_model_dir), *args]
    result = run_cli("complete", str(EXAMPLE), "--line", "5", "--column", "5", *args)
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [f"greencoder: error: {expected}"]


@pytest.mark.parametrize("where", ["before", "after"])
def test_cli_debug_shows_the_traceback(where):
    args = ["complete", str(EXAMPLE), "--line", "5", "--column", "5", "--model", "/nonexistent/model"]
    result = run_cli(*(["--debug", *args] if where == "before" else [*args, "--debug"]))
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.strip().endswith("greencoder: error: model path /nonexistent/model does not exist")


def test_cli_position_outside_the_file(tiny_model_dir):
    result = run_cli("complete", str(EXAMPLE), "--line", "500", "--column", "1", "--model", str(tiny_model_dir))
    assert result.returncode == 1
    assert result.stderr.strip() == "greencoder: error: line 500 is outside the document (12 lines)"


def test_cli_missing_file(tmp_path):
    result = run_cli("complete", str(tmp_path / "none.py"), "--line", "1", "--column", "1")
    assert result.returncode == 1
    assert result.stderr.strip() == f"greencoder: error: cannot read {tmp_path / 'none.py'}: No such file or directory"


def test_make_tiny_model_refuses_to_overwrite(tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    result = run_cli("make-tiny-model", str(tmp_path))
    assert result.returncode == 1
    assert "is not empty; pass --force" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
