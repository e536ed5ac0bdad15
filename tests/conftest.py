"""Shared fixtures: a tiny real model built locally, an adapter made from it, runtimes over both.

Thread settings go into the environment before torch is imported (see greencoder.core.threads:
on 2-core machines two torch threads can be many times slower than one).
"""

from __future__ import annotations

import os
import subprocess

os.environ.setdefault("GREENCODER_THREADS", "1")
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach for a hub

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

INIT_TEXT = "Generate energy-efficient code."
REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


def run_greencoder(*args: str, cwd: Path | None = None, timeout: int = 300,
                   env_extra: dict[str, str] | None = None) -> "subprocess.CompletedProcess[str]":
    """The `greencoder` command as a user runs it (one torch thread, as everywhere in the tests)."""
    import sys

    env = {**os.environ, "GREENCODER_THREADS": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "greencoder", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def pytest_report_header(config) -> list[str]:
    """Name the isolation sandboxed tests run under, and why stronger levels were not used."""
    try:
        from greencoder.core.sandbox import Sandbox

        sandbox = Sandbox()
        lines = [f"greencoder sandbox: {sandbox.isolation.label}"]
        if sandbox.plan.rejected:
            lines.append("greencoder sandbox rejected: " + "; ".join(sandbox.plan.rejected))
        return lines
    except Exception as exc:  # noqa: BLE001 - a header must never break the run
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return [f"greencoder sandbox: unavailable ({type(exc).__name__}: {reason})"]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    from greencoder.core.quiet import silence_libraries
    from greencoder.core.tiny_model import make_tiny_model

    silence_libraries()
    return make_tiny_model(tmp_path_factory.mktemp("tiny-model"))


def make_prompt_tuning_adapter(model_dir: Path, out_dir: Path, init_text: str = INIT_TEXT) -> Path:
    """A standard PEFT prompt-tuning adapter, initialised from `init_text`, saved to `out_dir`."""
    from peft import PromptTuningConfig, PromptTuningInit, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        prompt_tuning_init=PromptTuningInit.TEXT,
        prompt_tuning_init_text=init_text,
        num_virtual_tokens=len(tokenizer(init_text, add_special_tokens=False)["input_ids"]),
        tokenizer_name_or_path=str(model_dir),
    )
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(out_dir)
    return out_dir


@pytest.fixture(scope="session")
def tiny_adapter_dir(tiny_model_dir, tmp_path_factory) -> Path:
    return make_prompt_tuning_adapter(tiny_model_dir, tmp_path_factory.mktemp("adapter"))


@pytest.fixture(scope="session")
def tiny_runtime(tiny_model_dir):
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime

    return Runtime.load(ModelSettings(str(tiny_model_dir), device="cpu"), threads=1)


@pytest.fixture(scope="session")
def tiny_runtime_with_adapter(tiny_model_dir, tiny_adapter_dir):
    from greencoder.core.model_loading import ModelSettings
    from greencoder.core.runtime import Runtime

    return Runtime.load(ModelSettings(str(tiny_model_dir), str(tiny_adapter_dir), device="cpu"), threads=1)


@pytest.fixture(scope="session", autouse=True)
def _remove_test_job_folders():
    """The sandbox tests' private jobs folder (see sandbox_levels.py) goes when the run ends."""
    yield
    from sandbox_levels import TEST_JOBS_DIR

    from greencoder.core.sandbox.jobdirs import remove_tree

    try:
        remove_tree(TEST_JOBS_DIR)  # job folders may still hold a tmpfs mount
    except OSError:
        pass

