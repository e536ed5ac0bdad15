"""Contrastive prompt tuning: the training loop behind `greencoder tune`.

The base model is frozen; only the soft prompt (PEFT prompt tuning) learns, with AdamW, from a
contrastive loss that pulls each problem's anchor towards its efficient program and away from its
inefficient ones. Accelerate runs the loop, so the same code trains on a CPU, on one GPU (the
model in bf16, the prompt in float32) and under `accelerate launch` on several GPUs or machines:
batches are sharded across processes, gradients averaged, and only the main process validates
and writes files.

Reproducibility: the data order, the negatives drawn and the random state of each epoch depend
only on (seed, epoch), and the optimizer state is saved with every epoch, so a run resumed after
a kill ends with the same soft prompt as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from greencoder.core import hub
from greencoder.core.errors import InputError
from greencoder.core.model_loading import load_base_model, resolve_device, resolve_dtype
from greencoder.core.threads import configure_torch_threads
from greencoder.tuning.anchors import anchor_text
from greencoder.tuning.batches import Collator, EpochSamples, Sample, epoch_order, split_embeddings, tokenize_entries
from greencoder.tuning.losses import DEFAULT_MARGIN, DEFAULT_TEMPERATURE, LOSSES, make_loss
from greencoder.tuning.pairs import LoadedPairs, PairEntry, load_pairs
from greencoder.tuning.run_directory import EpochRecord, RunDirectory, RunState
from greencoder.tuning.soft_prompt import (
    INIT_TEXT,
    TextEmbedder,
    attach_trainable_soft_prompt,
    load_soft_prompt_into,
    prompt_tuning_config,
    soft_prompt_weights,
)
from greencoder.tuning.splits import select_training_set, split_validation
from greencoder.tuning.validation import ValidationResult, validate

Log = Callable[[str], None]


@dataclass(frozen=True)
class TuneSettings:
    """Everything `greencoder tune` is asked to do. Defaults are the paper's where it states one."""

    model: str
    pairs: tuple[str, ...]
    out: str
    train_set: str = "both"
    loss: str = "triplet"
    epochs: int = 5
    lr: float = 5e-5
    batch_size: int = 8
    negatives: int = 4
    """At most this many inefficient programs per anchor and step."""
    max_length: int = 512
    seed: int = 0
    virtual_tokens: int | None = None
    """None: as many as `init_text` has tokens."""
    init_text: str = INIT_TEXT
    margin: float = DEFAULT_MARGIN
    temperature: float = DEFAULT_TEMPERATURE
    validation_fraction: float = 0.1
    weight_decay: float = 0.0
    max_grad_norm: float | None = 1.0
    gradient_accumulation: int = 1
    pairs_language: str | None = None
    device: str = "auto"
    dtype: str = "auto"
    overwrite: bool = False

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise InputError(f"unknown loss {self.loss!r}: choose {', '.join(LOSSES)}")
        for name in ("epochs", "batch_size", "negatives", "max_length", "gradient_accumulation"):
            if getattr(self, name) < 1:
                raise InputError(f"--{name.replace('_', '-')} must be at least 1")
        if self.lr <= 0:
            raise InputError("--lr must be positive")
        if self.device.strip().lower().startswith("cuda:"):
            raise InputError("tune runs on the devices Accelerate assigns: use --device cuda and CUDA_VISIBLE_DEVICES to pick GPUs")
        resolve_device(self.device)  # unknown names, and cuda on a machine without one, fail here in one line


@dataclass
class TuneOutcome:
    out: Path
    state: RunState
    resumed_from: int
    data_summary: str
    trained_epochs: list[int] = field(default_factory=list)
    is_main: bool = True
    """False in the non-main processes of a distributed run (they print nothing)."""

    @property
    def best_epoch(self) -> int | None:
        return self.state.best_epoch

    def record(self, epoch: int) -> EpochRecord | None:
        return next((r for r in self.state.history if r.epoch == epoch), None)


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_settings(settings: TuneSettings, virtual_tokens: int) -> dict[str, Any]:
    """The settings that decide the result, as stored in run.json and compared on resume
    (file contents by digest, so a moved file still resumes and an edited one does not)."""
    values = asdict(settings)
    for volatile in ("out", "epochs", "device", "overwrite", "pairs"):
        values.pop(volatile)
    values["virtual_tokens"] = virtual_tokens
    values["pairs_sha256"] = sorted(file_digest(path) for path in settings.pairs)
    return values


def data_summary(loaded: LoadedPairs, train: list[PairEntry], validation: list[PairEntry]) -> dict[str, Any]:
    return {
        "files": [str(Path(f)) for f in loaded.files],
        "loaded": loaded.summary(),
        "train_entries": len(train),
        "train_problems": len({e.problem_id for e in train}),
        "validation_entries": len(validation),
        "validation_problems": len({e.problem_id for e in validation}),
        "skipped": dict(loaded.skipped),
    }


def record_from(epoch: int, validation: ValidationResult | None, **training: Any) -> EpochRecord:
    return EpochRecord(
        epoch=epoch,
        validation_loss=validation.loss if validation else None,
        separation=validation.separation if validation else None,
        cos_efficient=validation.cos_efficient if validation else None,
        cos_inefficient=validation.cos_inefficient if validation else None,
        ranking_accuracy=validation.ranking_accuracy if validation else None,
        **training,
    )


def describe(record: EpochRecord) -> str:
    parts = [f"epoch {record.epoch}"]
    if record.train_loss is not None:
        parts.append(f"train loss {record.train_loss:.4f}")
    if record.validation_loss is not None:
        parts.append(f"validation loss {record.validation_loss:.4f}")
        parts.append(f"separation {record.separation:+.4f}")
        parts.append(f"ranking accuracy {record.ranking_accuracy:.1%}")
    if record.examples_per_second:
        parts.append(f"{record.examples_per_second:.1f} examples/s")
    return ", ".join(parts)


class Tuner:
    """One tuning run: data, model, optimizer and run folder, set up once, then trained epoch by epoch."""

    def __init__(self, settings: TuneSettings, threads: int, log: Log, progress: bool | None = None):
        settings.check()
        self.settings = settings
        self.log = log
        self.progress = progress
        configure_torch_threads(threads)
        # PEFT calls a transformers method deprecated in v5 on every wrap; not the user's concern.
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        from accelerate import Accelerator

        self.accelerator = Accelerator(cpu=settings.device.strip().lower() == "cpu",
                                       gradient_accumulation_steps=settings.gradient_accumulation)
        self.is_main = self.accelerator.is_main_process
        self.prepared = False

    def main_log(self, message: str) -> None:
        if self.is_main:
            self.log(message)

    def prepare(self) -> None:
        import torch
        from accelerate.utils import set_seed

        s = self.settings
        loaded = load_pairs(s.pairs, language=s.pairs_language)
        entries = select_training_set(loaded.entries, s.train_set)
        self.train_entries, self.validation_entries = split_validation(entries, s.validation_fraction, s.seed)
        self.data = data_summary(loaded, self.train_entries, self.validation_entries)
        self.loaded_summary = loaded.summary()
        self.main_log(f"data: {self.loaded_summary}; training set {s.train_set!r}: "
                      f"{len(self.train_entries)} train / {len(self.validation_entries)} validation entries")

        device = self.accelerator.device
        set_seed(s.seed)
        base, self.tokenizer = load_base_model(s.model, device, resolve_dtype(s.dtype, device))
        source = str(hub.expand(s.model).resolve()) if hub.looks_like_path(s.model) else s.model
        config = prompt_tuning_config(source, self.tokenizer, s.virtual_tokens, s.init_text)
        self.run_dir = RunDirectory(s.out)
        self.settings_record = run_settings(s, config.num_virtual_tokens)
        self.state = None if s.overwrite else self.run_dir.load()
        if self.state is not None:
            self.run_dir.check_same_settings(self.state, self.settings_record)
        self.accelerator.wait_for_everyone()
        if s.overwrite and self.is_main:
            self.run_dir.reset()

        model = attach_trainable_soft_prompt(base, config)
        self.resumed_from = self.state.completed_epochs if self.state else 0
        if self.resumed_from:
            load_soft_prompt_into(model, str(self.run_dir.epoch_dir(self.resumed_from)))
        self.embedder = TextEmbedder(model, config.num_virtual_tokens)
        optimizer = torch.optim.AdamW([soft_prompt_weights(model)], lr=s.lr, weight_decay=s.weight_decay)
        self.model, self.optimizer = self.accelerator.prepare(model, optimizer)
        if self.resumed_from:
            optimizer_file = self.run_dir.optimizer_file(self.resumed_from)
            if not optimizer_file.is_file():
                raise InputError(f"cannot resume: {optimizer_file} is missing; use --overwrite to start over")
            self.optimizer.load_state_dict(torch.load(optimizer_file, map_location="cpu", weights_only=True))
        self.loss_fn = make_loss(s.loss, s.margin, s.temperature)

        self.collator = Collator(self.tokenizer.pad_token_id)
        self.train_tokens = tokenize_entries(self.tokenizer, self.train_entries, anchor_text, s.max_length)
        validation_tokens = tokenize_entries(self.tokenizer, self.validation_entries, anchor_text, s.max_length)
        self.validation_samples = [Sample(t.anchor, t.efficient, t.inefficient) for t in validation_tokens]
        self.prepared = True

    def validate(self) -> ValidationResult | None:
        """Validation metrics, computed by the main process alone on the unwrapped model."""
        if not self.validation_samples or not self.is_main:
            return None
        model = self.accelerator.unwrap_model(self.model)
        return validate(model, self.embedder, self.loss_fn, self.validation_samples, self.collator,
                        self.settings.batch_size, self.accelerator.device)

    def begin(self) -> None:
        """A new run: record the untrained prompt's metrics as epoch 0."""
        if self.state is not None:
            self.main_log(f"resuming {self.run_dir.path} after epoch {self.resumed_from}")
            return
        record = record_from(0, self.validate(), train_loss=None)
        self.state = RunState(self.settings_record, self.data, [record])
        if self.is_main:
            self.run_dir.begin(self.state)
            self.log(describe(record) + " (initial prompt)")
        self.accelerator.wait_for_everyone()

    def train_epoch(self, epoch: int) -> EpochRecord:
        import torch
        from accelerate.utils import set_seed
        from tqdm import tqdm

        s = self.settings
        set_seed(s.seed * 1_000 + epoch)  # dropout etc. depend on (seed, epoch) only
        samples = EpochSamples(self.train_tokens, epoch_order(len(self.train_tokens), s.seed, epoch), s.negatives, s.seed, epoch)
        loader = torch.utils.data.DataLoader(samples, batch_size=s.batch_size, shuffle=False, collate_fn=self.collator)
        loader = self.accelerator.prepare_data_loader(loader)
        self.model.train()
        parameters = [soft_prompt_weights(self.accelerator.unwrap_model(self.model))]
        loss_total = torch.zeros((), device=self.accelerator.device)
        steps, examples = 0, 0
        started = shown = time.perf_counter()
        shown -= 1.0
        disable = not self.is_main or (None if self.progress is None else not self.progress)
        with tqdm(loader, desc=f"epoch {epoch}/{s.epochs}", unit="step", leave=False, disable=disable) as bar:
            for batch in bar:
                with self.accelerator.accumulate(self.model):
                    anchor_count = int(batch["anchor_count"])
                    embeddings = self.embedder(self.model, batch["input_ids"], batch["attention_mask"])
                    loss = self.loss_fn(*split_embeddings(embeddings, anchor_count), batch["negative_owner"])
                    self.accelerator.backward(loss)
                    if self.accelerator.sync_gradients and s.max_grad_norm:
                        self.accelerator.clip_grad_norm_(parameters, s.max_grad_norm)
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                loss_total += loss.detach()
                steps += 1
                examples += anchor_count * self.accelerator.num_processes
                now = time.perf_counter()
                if not bar.disable and now - shown >= 0.5:  # reading the loss waits for the GPU: not every step
                    bar.set_postfix(loss=f"{float(loss.detach()):.4f}", ex_s=f"{examples / (now - started):.1f}")
                    shown = now
        seconds = time.perf_counter() - started
        mean_loss = float(self.accelerator.reduce(loss_total / max(steps, 1), reduction="mean"))
        return record_from(epoch, self.validate(), train_loss=mean_loss, steps=steps, examples=examples,
                           seconds=round(seconds, 3), examples_per_second=round(examples / seconds, 3) if seconds else None)

    def commit(self, record: EpochRecord) -> None:
        import torch

        if self.is_main:
            model = self.accelerator.unwrap_model(self.model)
            self.run_dir.commit_epoch(
                self.state,
                record,
                save_adapter=lambda path: model.save_pretrained(str(path)),
                save_optimizer=lambda path: torch.save(self.optimizer.state_dict(), path),
            )
            best = " (best so far)" if self.state.best_epoch == record.epoch else ""
            self.log(describe(record) + best)
        else:
            self.state.history = [r for r in self.state.history if r.epoch != record.epoch] + [record]
        self.accelerator.wait_for_everyone()

    def run(self) -> TuneOutcome:
        if not self.prepared:
            self.prepare()
        self.begin()
        trained = []
        for epoch in range(self.resumed_from + 1, self.settings.epochs + 1):
            self.commit(self.train_epoch(epoch))
            trained.append(epoch)
        if not trained:
            self.main_log(f"{self.run_dir.path} already has {self.resumed_from} finished epochs; nothing to train")
        return TuneOutcome(self.run_dir.path, self.state, self.resumed_from, self.loaded_summary, trained, self.is_main)


def tune(settings: TuneSettings, threads: int, log: Log = print, progress: bool | None = None) -> TuneOutcome:
    """Train (or resume) a soft prompt as `settings` say; see the module docstring."""
    return Tuner(settings, threads, log, progress).run()
