"""Which model greencoder uses when the user names none, and what happens offline.

The default is Qwen/Qwen2.5-Coder-0.5B: 0.5 B parameters (about 1 GB in bf16, 2 GB in fp32), so it
runs on a laptop CPU; trained on C++, Java and Python among 90+ languages, which are the
languages greencoder measures; it has fill-in-the-middle tokens, so editor completions see the
code after the cursor; Apache-2.0. When it is neither cached nor downloadable, greencoder falls
back to the tiny random model (built once into the user cache) and says so on stderr: everything
runs, but the text is noise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from greencoder.core.model_loading import HubUnavailableError, ModelSettings
from greencoder.core.runtime import Runtime

DEFAULT_MODEL = "Qwen/Qwen2.5-Coder-0.5B"
TINY_MODEL_VERSION = "v1"


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(root) / "greencoder"


def ensure_tiny_model() -> Path:
    """The cached tiny model folder, built on first use (atomically, so a kill leaves no half folder)."""
    from greencoder.core.tiny_model import make_tiny_model

    target = cache_dir() / f"tiny-model-{TINY_MODEL_VERSION}"
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="tiny-model-", dir=target.parent))
    try:
        make_tiny_model(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_runtime(
    settings: ModelSettings,
    threads: int | None,
    model_given: bool,
    warn: Callable[[str], None],
) -> Runtime:
    """Load `settings`; if the model is the (unnamed) default and cannot be had offline, use the tiny model."""
    try:
        return Runtime.load(settings, threads)
    except HubUnavailableError as exc:
        if model_given:
            raise
        tiny = ensure_tiny_model()
        warn(
            f"{exc}; falling back to the tiny random test model at {tiny} — its completions are "
            f"meaningless. Name a local model folder with --model for real completions."
        )
        return Runtime.load(ModelSettings(str(tiny), settings.adapter, settings.device, settings.dtype), threads)
