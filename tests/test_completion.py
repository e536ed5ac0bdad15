"""The editor completion path shared by `greencoder complete` and the language server."""

from __future__ import annotations

import json
from dataclasses import replace
import subprocess
import sys
from pathlib import Path

import pytest

from greencoder.core.completion import (
    CompletionSettings,
    complete_at,
    cut_block,
    position_to_offset,
    starts_new_block,
    trim_suffix_overlap,
)
from greencoder.core.errors import InputError
from greencoder.core.languages import CPP, PYTHON

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "primes.py"


def test_position_to_offset():
    text = "ab\ncdé\n"
    assert position_to_offset(text, 0, 0) == 0
    assert position_to_offset(text, 1, 3) == 6
    assert position_to_offset(text, 2, 0) == 7
    with pytest.raises(InputError, match="column 5 is outside line 2"):
        position_to_offset(text, 1, 4)


def test_mode_follows_the_cursor():
    assert starts_new_block("    ", "")
    assert starts_new_block("def f(x):", "")
    assert starts_new_block("int f() {", "  ")
    assert not starts_new_block("    x = ", "")
    assert not starts_new_block("    ", "return x")


def test_python_block_ends_at_a_dedent():
    completion = "    total += k\n    return total\n\ndef unrelated():\n    pass"
    assert cut_block(completion, "", PYTHON) == "    total += k\n    return total\n"


def test_python_body_after_a_colon_is_kept_until_dedent():
    completion = "\n    return x * 2\nprint(f(3))"
    assert cut_block(completion, "def f(x):", PYTHON) == "\n    return x * 2"


def test_braced_block_stops_before_closing_an_outer_block():
    completion = "    if (n % 2 == 0) { return false; }\n    return true;\n}\nint main() {}"
    assert cut_block(completion, "", CPP) == "    if (n % 2 == 0) { return false; }\n    return true;"


def test_text_already_after_the_cursor_is_not_repeated():
    assert trim_suffix_overlap("x for x in xs)", ")\n", multiline=False) == "x for x in xs"
    assert trim_suffix_overlap("a, b):", "):\n    pass", multiline=False) == "a, b"
    assert trim_suffix_overlap("x + 1", "\nmore", multiline=False) == "x + 1"
    assert trim_suffix_overlap("    y = 2\n    return y", "\n    return y\n", multiline=True) == "    y = 2"


def test_single_line_completion_has_no_newline(tiny_runtime):
    text = EXAMPLE.read_text()
    offset = position_to_offset(text, 2, len("    if n <"))
    result = complete_at(tiny_runtime, text, offset, PYTHON, CompletionSettings(max_new_tokens=24))
    assert not result.multiline
    assert "\n" not in result.text
    assert result.generation.new_tokens <= 24
    assert result.context.suffix.startswith(" 2:")  # FIM model sees the rest of the line


def test_multiline_completion_stays_in_the_block(tiny_runtime):
    text = EXAMPLE.read_text()
    offset = position_to_offset(text, 4, 4)
    result = complete_at(tiny_runtime, text, offset, PYTHON, CompletionSettings(max_new_tokens=48))
    assert result.multiline
    for line in result.text.split("\n")[1:]:
        assert not line.strip() or line.startswith("    ")


def test_cancelled_completion_is_empty(tiny_runtime):
    import threading

    cancel = threading.Event()
    cancel.set()
    text = EXAMPLE.read_text()
    result = complete_at(tiny_runtime, text, position_to_offset(text, 4, 4), PYTHON, cancel=cancel)
    assert result.text == "" and result.generation.stop_reason == "cancelled"


def test_cli_complete_prints_only_the_completion(tiny_model_dir, tiny_runtime):
    """Same code path: the CLI prints exactly what complete_at returns, and nothing else on stdout."""
    args = [sys.executable, "-m", "greencoder", "complete", str(EXAMPLE), "--line", "5", "--column", "5",
            "--model", str(tiny_model_dir), "--max-new-tokens", "16", "--threads", "1"]
    plain = subprocess.run(args, capture_output=True, text=True, timeout=120)
    as_json = subprocess.run([*args, "--json"], capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert plain.stderr == ""  # no progress bars or warnings
    text = EXAMPLE.read_text()
    expected = complete_at(tiny_runtime, text, position_to_offset(text, 4, 4), PYTHON, CompletionSettings(max_new_tokens=16))
    assert plain.stdout == expected.text + "\n"
    report = json.loads(as_json.stdout)
    assert report["completion"] == expected.text
    assert report["new_tokens"] == expected.generation.new_tokens <= 16
    assert report["threads"] == 1 and report["fim"] == "starcoder" and report["adapter"] is None


def test_cli_with_adapter_reports_virtual_tokens(tiny_model_dir, tiny_adapter_dir, tiny_runtime_with_adapter):
    args = [sys.executable, "-m", "greencoder", "complete", str(EXAMPLE), "--line", "5", "--column", "5",
            "--model", str(tiny_model_dir), "--adapter", str(tiny_adapter_dir), "--max-new-tokens", "8", "--json"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["virtual_tokens"] == tiny_runtime_with_adapter.num_virtual_tokens > 0
    assert report["adapter"] == str(tiny_adapter_dir)


@pytest.mark.slow  # the default suite keeps to its 12-minute budget; CI runs it after
def test_default_model_falls_back_to_the_tiny_model_offline(tmp_path):
    """With no --model, an unreachable hub means the tiny model, said plainly on stderr."""
    import os

    env = dict(os.environ, HF_HUB_OFFLINE="1", XDG_CACHE_HOME=str(tmp_path), HF_HOME=str(tmp_path / "hf"))
    args = [sys.executable, "-m", "greencoder", "complete", str(EXAMPLE), "--line", "5", "--column", "5",
            "--max-new-tokens", "4", "--json"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr
    assert "Qwen/Qwen2.5-Coder-0.5B" in result.stderr and "falling back to the tiny random test model" in result.stderr
    assert json.loads(result.stdout)["model"] == str(tmp_path / "greencoder" / "tiny-model-v1")


def test_named_model_never_falls_back(tmp_path):
    import os

    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    args = [sys.executable, "-m", "greencoder", "complete", str(EXAMPLE), "--line", "5", "--column", "5",
            "--model", "someone/no-such-model"]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "greencoder: error: model 'someone/no-such-model' is not a local folder, not in the Hugging Face cache, "
        "and the hub (https://huggingface.co) cannot be reached"
    ]


def test_typing_at_a_psm_split_reads_only_the_typed_tokens(tiny_runtime):
    """PSM prompts split on a grid of characters, not at the cursor: each keystroke's prompt extends
    the last one, so the prefix cache serves all but the new characters, where splitting at the
    cursor re-reads the whole suffix every time. The split follows from text and cursor alone."""
    step = 128
    base = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(30))
    base += "#" * (-len(base) % step - 1) + "\n"  # the cursor starts on a multiple of the step
    cursor = len(base)
    assert cursor % step == 0
    suffix = "".join(f"\ndef g{i}(y):\n    return y * {i}\n" for i in range(30))
    settings = CompletionSettings(max_new_tokens=2, context_tokens=600, fim_layout="psm", split_step_chars=step)
    complete_at(tiny_runtime, base + suffix, cursor, PYTHON, settings, cache_key="split-test")
    typed = "def h(z):"
    for count in range(1, len(typed) + 1):
        text = base + typed[:count] + suffix
        held = complete_at(tiny_runtime, text, cursor + count, PYTHON, settings, cache_key="split-test")
        assert held.context.typed == typed[:count]
        assert held.generation.prefill_tokens <= count + 2  # the typed tokens (and the last one re-read)
    again = complete_at(tiny_runtime, text, cursor + len(typed), PYTHON, settings, cache_key="other-key")
    assert again.context.input_ids == held.context.input_ids  # nothing from earlier requests shapes the prompt
    at_cursor = replace(settings, split_step_chars=0)
    unsplit = complete_at(tiny_runtime, text, cursor + len(typed), PYTHON, at_cursor, cache_key="split-test")
    assert unsplit.context.typed == "" and unsplit.generation.prefill_tokens > 100  # the suffix again
