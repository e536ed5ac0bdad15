"""Choosing the training set by language, and holding out a seeded validation split by problem.

Programs of one problem are near-duplicates of each other (same task, often the same user), so the
validation split is drawn over problem ids, never over entries: no problem has programs on both
sides, or validation would measure memorisation. The same problem id in two languages counts as one
problem for the same reason.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from greencoder.core.errors import InputError
from greencoder.tuning.pairs import PairEntry

TRAIN_SETS = ("python", "cpp", "java", "both", "all")
"""`both` is the paper's union of Python and C++; `all` is every language the files hold."""

_MEMBERS: dict[str, frozenset[str] | None] = {
    "python": frozenset({"python"}),
    "cpp": frozenset({"cpp"}),
    "java": frozenset({"java"}),
    "both": frozenset({"python", "cpp"}),
    "all": None,
}


def select_training_set(entries: Iterable[PairEntry], train_set: str) -> list[PairEntry]:
    """The entries whose language belongs to `train_set`, in input order."""
    name = train_set.strip().lower()
    if name not in _MEMBERS:
        raise InputError(f"unknown training set {train_set!r}: choose one of {', '.join(TRAIN_SETS)}")
    entries = list(entries)
    members = _MEMBERS[name]
    chosen = [entry for entry in entries if members is None or entry.language in members]
    if not chosen:
        present = sorted({entry.language for entry in entries})
        held = f"only {', '.join(present)}" if present else "no entries at all"
        raise InputError(f"training set {name!r} is empty: the pair files contain {held}")
    return chosen


def split_validation(
    entries: Iterable[PairEntry], fraction: float, seed: int
) -> tuple[list[PairEntry], list[PairEntry]]:
    """(train, validation): `fraction` of the problems, drawn with `random.Random(seed)`.

    The validation side gets round(fraction * problems) problems, at least 1 when fraction > 0, and
    at most all but one, so training is never empty. Each side keeps the input order."""
    entries = list(entries)
    if not 0 <= fraction < 1:
        raise InputError(f"validation fraction must be at least 0 and below 1, not {fraction}")
    if fraction == 0:
        return entries, []
    problems = sorted({entry.problem_id for entry in entries})
    if len(problems) < 2:
        raise InputError(
            f"cannot hold out a validation split: the training set has {len(problems)} problem(s), and a "
            "problem's programs never go to both sides; use a validation fraction of 0 or add problems"
        )
    n_validation = min(max(1, round(fraction * len(problems))), len(problems) - 1)
    held_out = set(random.Random(seed).sample(problems, n_validation))
    train = [entry for entry in entries if entry.problem_id not in held_out]
    validation = [entry for entry in entries if entry.problem_id in held_out]
    return train, validation
