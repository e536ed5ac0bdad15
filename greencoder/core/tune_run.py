"""A read-only view of a `greencoder tune` run folder, for whoever uses its soft prompts.

`greencoder.tuning.run_directory` writes the folder (and owns its commit protocol); the names
shared with readers live here, below both, so that loading an adapter (core) and evaluating every
epoch (evaluation) read the same layout without importing the tuning layer:

    RUN/epoch-N/     a PEFT adapter per finished epoch
    RUN/run.json     format, settings, history (one record per epoch, 0 = before training),
                     best_epoch (the epoch tune chose) and best_epoch_rule (by what)

An epoch counts as finished only once run.json lists it: a folder `epoch-N` that run.json does
not list is the leftover of a kill and is never read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from greencoder.core.errors import InputError

RUN_FILE = "run.json"
RUN_FORMAT = "greencoder-tune-run/1"
SEPARATION_RULE = "validation separation"
TRAIN_LOSS_RULE = "training loss (no validation split)"
_EPOCH_FOLDER = re.compile(r"^epoch-(\d+)$")


def epoch_folder_name(epoch: int) -> str:
    return f"epoch-{epoch}"


def epoch_of_folder(name: str) -> int | None:
    """N for a folder named `epoch-N`, else None (e.g. `epoch-3.partial`)."""
    match = _EPOCH_FOLDER.match(name)
    return int(match.group(1)) if match else None


def looks_like_tune_run(path: Path) -> bool:
    return path.is_dir() and (path / RUN_FILE).is_file() and not (path / "adapter_config.json").exists()


@dataclass(frozen=True)
class TuneRun:
    """What a reader needs: the finished epochs, the one tune chose, and by which rule."""

    path: Path
    settings: dict[str, Any]
    epochs: tuple[int, ...]
    """Finished trained epochs (1, 2, ...), ascending."""
    best_epoch: int | None
    rule: str
    separations: dict[int, float | None] = field(default_factory=dict)

    def epoch_dir(self, epoch: int) -> Path:
        return self.path / epoch_folder_name(epoch)

    @property
    def paper_name(self) -> str:
        """The paper's name for this run's variants: training set and loss, e.g. `both-triplet`."""
        return f"{self.settings.get('train_set', 'cpt')}-{self.settings.get('loss', 'tuned')}"


def read_tune_run(path: str | Path) -> TuneRun:
    """The committed state of the run in `path`; InputError (one line) when it is not one."""
    path = Path(path)
    run_file = path / RUN_FILE
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if not run_file.is_file():
        raise InputError(f"{path} is not a greencoder tune run (it has no {RUN_FILE})")
    try:
        raw = json.loads(run_file.read_text(encoding="utf-8"))
        if not isinstance(raw, dict) or raw.get("format") != RUN_FORMAT:
            raise ValueError(f"format {raw.get('format') if isinstance(raw, dict) else None!r}, expected {RUN_FORMAT}")
        history = [r for r in raw.get("history", []) if isinstance(r, dict)]
        trained = sorted(int(r["epoch"]) for r in history if int(r["epoch"]) > 0)
        separations = {int(r["epoch"]): r.get("separation") for r in history}
        best = raw.get("best_epoch")
        best = int(best) if best is not None else None
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"tune run {path}: {RUN_FILE} is unreadable ({exc})") from None
    rule = raw.get("best_epoch_rule") or (
        SEPARATION_RULE if trained and all(separations.get(e) is not None for e in trained) else TRAIN_LOSS_RULE)
    return TuneRun(path, raw.get("settings") or {}, tuple(trained), best, rule, separations)
