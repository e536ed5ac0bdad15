"""benchmarks/gpu_check.sh's plumbing: the offline wheel list, the wheel installer's skipping, and
(slow) the whole script in its CPU smoke mode, one line per check."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, SHARED_DATA


def _gpu_check():
    spec = importlib.util.spec_from_file_location("gpu_check", REPO_ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_wheel_list_is_what_a_machine_with_the_torch_stack_lacks():
    names = {line.split("==")[0] for line in _gpu_check().wheel_list()}
    assert {"pygls", "tree-sitter", "pytorch-metric-learning", "nvidia-ml-py"} <= names
    assert not names & {"torch", "transformers", "peft", "accelerate", "tokenizers", "numpy", "safetensors"}


def test_wheels_of_installed_packages_are_skipped(tmp_path):
    (tmp_path / "click-8.1.0-py3-none-any.whl").write_bytes(b"not read")
    line = _gpu_check().install_wheels(str(tmp_path), str(tmp_path / "site"))
    assert line == f"PASS wheels: installed 0 into {tmp_path / 'site'}, 1 already present"


@pytest.mark.slow
def test_the_smoke_mode_prints_one_line_per_check(tmp_path):
    env = {**os.environ, "PYTHON": sys.executable, "GREENCODER_THREADS": "1"}
    done = subprocess.run(["bash", str(REPO_ROOT / "benchmarks" / "gpu_check.sh"), "--cpu", "--small", "--work",
                           str(tmp_path), "--data", str(SHARED_DATA)], capture_output=True, text=True, env=env,
                          timeout=1500)
    lines = done.stdout.splitlines()
    checks = [line.split(":")[0] for line in lines[:-1]]
    assert checks == ["PASS prepare", "PASS generate", "PASS prefix-reuse", "PASS tune", "PASS batch", "SKIP nvml"], done.stdout
    assert lines[-1].startswith("gpu_check: 0 failed") and done.returncode == 0
