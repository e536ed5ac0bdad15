"""The output folder of `greencoder tune`, written so that a kill at any moment loses at most the
epoch in progress.

    OUT/epoch-N/              a standard PEFT adapter per finished epoch (PeftModel.from_pretrained)
    OUT/metrics.jsonl         one line per epoch (epoch 0 = the initial prompt, before training)
    OUT/run.json              settings, data summary, finished epochs, best epoch: the commit point
    OUT/state/optimizer-epoch-N.pt   AdamW state of the last finished epoch, for resuming

An epoch counts as finished only once run.json says so; run.json and metrics.jsonl are replaced
atomically (write a temporary file, fsync, rename), and an epoch folder is renamed into place
whole. A resumed run checks that its settings match the ones in run.json, so two different
experiments never mix in one folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from greencoder.core.errors import InputError
from greencoder.core.tune_run import (
    RUN_FILE,
    RUN_FORMAT,
    SEPARATION_RULE,
    TRAIN_LOSS_RULE,
    epoch_folder_name,
)

METRICS_FILE = "metrics.jsonl"


@dataclass(frozen=True)
class EpochRecord:
    """Metrics of one epoch; epoch 0 describes the soft prompt before any training."""

    epoch: int
    train_loss: float | None
    validation_loss: float | None
    separation: float | None
    """Mean cos(anchor, efficient) - mean cos(anchor, inefficient) over the validation split."""
    cos_efficient: float | None
    cos_inefficient: float | None
    ranking_accuracy: float | None
    """Share of validation (anchor, inefficient) pairs where the efficient program is closer."""
    steps: int = 0
    examples: int = 0
    seconds: float = 0.0
    examples_per_second: float | None = None


@dataclass
class RunState:
    settings: dict[str, Any]
    data: dict[str, Any]
    history: list[EpochRecord] = field(default_factory=list)

    @property
    def completed_epochs(self) -> int:
        return max((r.epoch for r in self.history), default=0)

    @property
    def best_epoch_rule(self) -> str:
        trained = [r for r in self.history if r.epoch > 0]
        return SEPARATION_RULE if all(r.separation is not None for r in trained) else TRAIN_LOSS_RULE

    @property
    def best_epoch(self) -> int | None:
        """The trained epoch with the highest validation separation (without a validation split:
        the lowest training loss); the earliest on ties."""
        trained = [r for r in self.history if r.epoch > 0]
        if not trained:
            return None
        if self.best_epoch_rule == SEPARATION_RULE:
            return max(trained, key=lambda r: (r.separation, -r.epoch)).epoch
        return min(trained, key=lambda r: (r.train_loss, r.epoch)).epoch

    def to_json(self) -> dict[str, Any]:
        return {
            "format": RUN_FORMAT,
            "settings": self.settings,
            "data": self.data,
            "completed_epochs": self.completed_epochs,
            "best_epoch": self.best_epoch,
            "best_epoch_rule": self.best_epoch_rule if self.best_epoch else None,
            "best_adapter": epoch_folder_name(self.best_epoch) if self.best_epoch else None,
            "history": [asdict(r) for r in self.history],
        }


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".partial")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class RunDirectory:
    """Reads and commits the state of one tuning run in `path`."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    @property
    def state_dir(self) -> Path:
        return self.path / "state"

    def epoch_dir(self, epoch: int) -> Path:
        return self.path / epoch_folder_name(epoch)

    def optimizer_file(self, epoch: int) -> Path:
        return self.state_dir / f"optimizer-epoch-{epoch}.pt"

    def load(self) -> RunState | None:
        """The committed state, or None for a new or empty folder."""
        run_file = self.path / RUN_FILE
        if not run_file.exists():
            if self.path.is_dir() and any(p for p in self.path.iterdir() if not p.name.endswith(".partial")):
                raise InputError(f"{self.path} is not empty and holds no greencoder tuning run; choose another --out")
            return None
        try:
            raw = json.loads(run_file.read_text(encoding="utf-8"))
            if raw.get("format") != RUN_FORMAT:
                raise ValueError(f"format {raw.get('format')!r}")
            history = [EpochRecord(**record) for record in raw["history"]]
            return RunState(raw["settings"], raw["data"], history)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"cannot resume: {run_file} is unreadable or not a greencoder run ({exc})") from exc

    def check_same_settings(self, state: RunState, settings: dict[str, Any]) -> None:
        """Refuse to continue a run made with other settings or data (one line naming them)."""
        differences = [
            f"{key} {state.settings.get(key)!r} -> {settings.get(key)!r}"
            for key in sorted(set(state.settings) | set(settings))
            if state.settings.get(key) != settings.get(key)
        ]
        if differences:
            raise InputError(
                f"{self.path} holds a run with other settings ({'; '.join(differences)}): use a new --out, or --overwrite to start over"
            )

    def reset(self) -> None:
        """Remove a previous run's files (only files this module writes)."""
        if not self.path.exists():
            return
        for child in self.path.iterdir():
            if child.name in (RUN_FILE, METRICS_FILE, "state") or child.name.startswith("epoch-") or child.name.endswith(".partial"):
                shutil.rmtree(child) if child.is_dir() else child.unlink()

    def begin(self, state: RunState) -> None:
        """Create the folder and commit the initial state (settings, data, epoch 0 metrics)."""
        self.path.mkdir(parents=True, exist_ok=True)
        self.state_dir.mkdir(exist_ok=True)
        self._commit(state)

    def commit_epoch(
        self,
        state: RunState,
        record: EpochRecord,
        save_adapter: Callable[[Path], None],
        save_optimizer: Callable[[Path], None],
    ) -> None:
        """Write epoch `record.epoch`'s adapter and optimizer state, then commit it in run.json."""
        epoch = record.epoch
        final = self.epoch_dir(epoch)
        partial = final.with_name(final.name + ".partial")
        for leftover in (partial, final):  # from an attempt killed before it was committed
            if leftover.exists():
                shutil.rmtree(leftover)
        save_adapter(partial)
        os.replace(partial, final)
        optimizer_partial = self.optimizer_file(epoch).with_name(self.optimizer_file(epoch).name + ".partial")
        save_optimizer(optimizer_partial)
        os.replace(optimizer_partial, self.optimizer_file(epoch))
        state.history = [r for r in state.history if r.epoch != epoch] + [record]
        self._commit(state)
        for older in self.state_dir.glob("optimizer-epoch-*.pt"):
            if older != self.optimizer_file(epoch):
                older.unlink()

    def _commit(self, state: RunState) -> None:
        _write_atomically(self.path / RUN_FILE, json.dumps(state.to_json(), indent=2) + "\n")
        lines = "".join(json.dumps(asdict(r)) + "\n" for r in sorted(state.history, key=lambda r: r.epoch))
        _write_atomically(self.path / METRICS_FILE, lines)
