"""Keep third-party libraries from writing to stdout/stderr on their own.

A language server may print nothing but protocol on stdout, and CLI output should be ours alone.
transformers, huggingface_hub and PEFT print progress bars ("Loading weights", "Writing model
shards") and warnings; we switch off the bars and send their loggers through Python logging at
WARNING (the CLI and server decide where logging goes). Of the warnings PEFT raises, only the one
it emits on *every* prompt-tuning generate call is silenced; everything else still shows.
"""

from __future__ import annotations

import os
import warnings

PEFT_POSITION_IDS_WARNING = r"Position ids are not supported for parameter efficient tuning"

_done = False


def silence_libraries() -> None:
    """Idempotently disable library progress bars and the per-generate PEFT warning."""
    global _done
    if _done:
        return
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
    import huggingface_hub.utils
    import transformers.utils.logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_warning()
    hf_logging.disable_default_handler()
    hf_logging.enable_propagation()
    huggingface_hub.utils.disable_progress_bars()
    _done = True


def ignore_peft_position_ids_warning() -> None:
    """Install the filter for PEFT's per-generate warning (cheap and idempotent: call before generating).

    Installed per call rather than once because test runners and `catch_warnings` blocks reset the
    process-wide filter list."""
    warnings.filterwarnings("ignore", message=PEFT_POSITION_IDS_WARNING, category=UserWarning)
