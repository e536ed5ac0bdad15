"""What is compared: the prompt conditions of the paper, and the reference solutions.

- `baseline`: the base model, no soft prompt, no instruction.
- `instruction`: the base model with "Write efficient code for the following problem:" first.
- `NAME=PATH`: the base model with the soft prompt in PATH (an adapter folder, or a `greencoder
  tune` run folder, meaning its best epoch); with `--instruction` each adapter also runs as
  `NAME+instruction`.
- `NAME=RUN/epoch-*`: every finished epoch of a tune run, each its own variant `NAME-ep:N` (the
  paper's naming: "both-triplet-ep:1"); any shell-style pattern on the epoch folder works
  (`epoch-[1-3]`). Without `NAME=` (`RUN/epoch-*`, `RUN/epoch-3`, `RUN`) the name is the
  paper's, from the run's settings: `TRAINSET-LOSS-ep:N`.
- `canonical`: no model; the benchmark's reference solutions, which validate the harness.
- `NAME` alone: a variant whose generations come from `--generations FILE` (made elsewhere).

Efficiency is always measured against `baseline`, so it is added whenever a model variant is (or
when the --generations file has one); a file of other variants alone is scored without a model, and
has no baseline to compare energies against.

A variant name never becomes a file name (records are keyed by it inside JSON lines), so the
paper's `:` is safe everywhere it goes: records, CLI, tables, plots.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, replace
from pathlib import Path

from greencoder.core.errors import GreencoderError, InputError
from greencoder.core.tune_run import (
    TuneRun,
    epoch_folder_name,
    epoch_of_folder,
    looks_like_tune_run,
    read_tune_run,
)

BASELINE = "baseline"
INSTRUCTION = "instruction"
CANONICAL = "canonical"
INSTRUCTION_SUFFIX = "+instruction"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+:-]*$")
_EPOCH_NAME = re.compile(r"^(?P<base>.+)-ep:(?P<epoch>\d+)(?P<suffix>\+instruction)?$")
_PATTERN_CHARS = frozenset("*?[")


def epoch_variant_name(base: str, epoch: int) -> str:
    """The paper's name of a run's epoch: `both-triplet` and 1 give `both-triplet-ep:1`."""
    return f"{base}-ep:{epoch}"


def split_epoch_name(name: str) -> tuple[str, int] | None:
    """(family, epoch) for an epoch variant's name, else None. The family is what the epochs
    compete within: `cpt-ep:3` -> (`cpt`, 3); `cpt-ep:3+instruction` -> (`cpt+instruction`, 3)."""
    match = _EPOCH_NAME.match(name)
    if not match:
        return None
    return match.group("base") + (match.group("suffix") or ""), int(match.group("epoch"))


@dataclass(frozen=True)
class Variant:
    name: str
    adapter: str | None = None
    instruction: bool = False
    canonical: bool = False
    external: bool = False
    """Generated elsewhere (--generations): scored and measured, never generated here."""
    epoch: int | None = None
    """The tune run's epoch this adapter is (when it is one)."""
    tune_run: str | None = None
    tune_choice: int | None = None
    """The epoch `tune` chose for that run, and by which rule (tune_rule): shown beside the report's choice."""
    tune_rule: str | None = None

    @property
    def needs_model(self) -> bool:
        return not self.canonical and not self.external

    def to_dict(self) -> dict:
        return {"name": self.name, "adapter": self.adapter, "instruction": self.instruction,
                "canonical": self.canonical, "external": self.external, "epoch": self.epoch,
                "tune_run": self.tune_run, "tune_choice": self.tune_choice, "tune_rule": self.tune_rule}


def _check_name(name: str) -> None:
    if not _NAME.match(name) or name in (BASELINE, INSTRUCTION, CANONICAL):
        raise InputError(f"variant name {name!r}: use letters, digits, '_', '.', ':', '-', and not a reserved name")


def _from_run(run: TuneRun, name: str, epoch: int, adapter: str | None = None) -> Variant:
    _check_name(name)  # a name made from the run's settings must be as usable as a typed one
    return Variant(name, adapter=adapter or str(run.epoch_dir(epoch)), epoch=epoch, tune_run=str(run.path),
                   tune_choice=run.best_epoch, tune_rule=run.rule)


def _read_run(spec: str, folder: Path) -> TuneRun:
    try:
        return read_tune_run(folder)
    except InputError as exc:
        raise InputError(f"variant {spec!r}: {exc}") from None


def _checked_epoch(run: TuneRun, epoch: int, spec: str) -> None:
    """One clear line when a finished epoch's adapter is missing or corrupt (before anything runs)."""
    from greencoder.core.model_loading import read_adapter_config

    try:
        read_adapter_config(str(run.epoch_dir(epoch)))
    except GreencoderError as exc:
        raise InputError(f"variant {spec!r}: {epoch_folder_name(epoch)} of tune run {run.path} is unusable ({exc}); "
                         "repair or remove it, or narrow the pattern (e.g. epoch-[1-3])") from None


def _expand_epochs(spec: str, name: str | None, path: str) -> list[Variant]:
    """Every finished epoch of the tune run whose epoch folder matches the last part of `path`."""
    folder, pattern = Path(path).parent, Path(path).name
    if _PATTERN_CHARS & set(str(folder)):
        raise InputError(f"variant {spec!r}: only the epoch folder may be a pattern (RUN/epoch-*), not {folder}")
    run = _read_run(spec, folder)
    if not run.epochs:
        raise InputError(f"variant {spec!r}: tune run {folder} has no finished epoch yet")
    matched = [e for e in run.epochs if fnmatch.fnmatchcase(epoch_folder_name(e), pattern)]
    if not matched:
        finished = ", ".join(epoch_folder_name(e) for e in run.epochs)
        raise InputError(f"variant {spec!r}: {pattern} matches no finished epoch of tune run {folder} (it has {finished})")
    base = name or run.paper_name
    for epoch in matched:
        _checked_epoch(run, epoch, spec)
    return [_from_run(run, epoch_variant_name(base, e), e) for e in matched]


def _tune_run_variant(spec: str, name: str | None, path: str) -> Variant | None:
    """A run folder (its best epoch) or one epoch folder of a run, with the run's epoch facts;
    None when `path` is neither (a plain adapter folder, or something the loader will reject)."""
    target = Path(path)
    if looks_like_tune_run(target):
        run = _read_run(spec, target)
        if run.best_epoch is None:
            raise InputError(f"variant {spec!r}: tune run {target} has no finished epoch yet")
        if name:  # the run folder stands for its best epoch, loaded from the folder given
            return _from_run(run, name, run.best_epoch, adapter=path)
        _checked_epoch(run, run.best_epoch, spec)
        return _from_run(run, epoch_variant_name(run.paper_name, run.best_epoch), run.best_epoch)
    epoch = epoch_of_folder(target.name)
    if epoch is None or not looks_like_tune_run(target.parent):
        return None
    run = _read_run(spec, target.parent)
    if epoch not in run.epochs:
        raise InputError(f"variant {spec!r}: epoch {epoch} of tune run {target.parent} is not finished")
    _checked_epoch(run, epoch, spec)
    return _from_run(run, name or epoch_variant_name(run.paper_name, epoch), epoch, adapter=path)


def expand_variant(text: str, external_names: frozenset[str] = frozenset()) -> list[Variant]:
    """The variants one --variant stands for: one, or one per matched epoch of a tune run."""
    text = text.strip()
    if text in external_names and text != CANONICAL:
        return [Variant(text, instruction=text == INSTRUCTION, external=True)]
    if text == BASELINE:
        return [Variant(BASELINE)]
    if text == INSTRUCTION:
        return [Variant(INSTRUCTION, instruction=True)]
    if text == CANONICAL:
        return [Variant(CANONICAL, canonical=True)]
    name, sep, path = text.partition("=")
    name, path = (name.strip(), path.strip()) if sep else ("", text)
    if sep and (not name or not path):
        raise InputError(f"variant {text!r}: use baseline, instruction, canonical or NAME=ADAPTER_PATH")
    if name:
        _check_name(name)
    if _PATTERN_CHARS & set(Path(path).name) and not Path(path).exists():  # an existing `a[1]` folder is no pattern
        return _expand_epochs(text, name or None, path)
    from_run = _tune_run_variant(text, name or None, path)
    if from_run is not None:
        return [from_run]
    if not name:
        raise InputError(f"variant {text!r}: use baseline, instruction, canonical, NAME=ADAPTER_PATH, "
                         "or a tune run's folder or epoch pattern (RUN/epoch-*)")
    return [Variant(name, adapter=path)]


def resolve_variants(specs: list[str], instruction_too: bool, external_names: frozenset[str] = frozenset()) -> list[Variant]:
    """The variants to run, baseline first, each name once. No specs: baseline and instruction."""
    parsed = ([v for s in specs for v in expand_variant(s, external_names)] if specs
              else [Variant(BASELINE), Variant(INSTRUCTION, instruction=True)])
    if instruction_too:
        parsed += [replace(v, name=v.name + INSTRUCTION_SUFFIX, instruction=True) for v in parsed if v.adapter]
    if not any(v.name == BASELINE for v in parsed):
        if BASELINE in external_names and any(not v.canonical for v in parsed):
            parsed.insert(0, Variant(BASELINE, external=True))
        elif any(v.needs_model for v in parsed):  # generations made elsewhere never need a model for a baseline
            parsed.insert(0, Variant(BASELINE))
    seen: dict[str, Variant] = {}
    for variant in parsed:
        if variant.name in seen and seen[variant.name] != variant:
            raise InputError(f"variant name {variant.name!r} is given twice with different meanings"
                             + (" (two tune runs with the same settings: name them, NAME=RUN/epoch-*)"
                                if variant.epoch is not None else ""))
        seen.setdefault(variant.name, variant)
    return sorted(seen.values(), key=lambda v: v.name != BASELINE)
