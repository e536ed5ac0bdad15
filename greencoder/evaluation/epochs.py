"""Which epoch of a tuned variant the report shows, and the rule that chose it.

The paper reports each prompt-tuned variant at the epoch with the best benchmark accuracy
("both-triplet-ep:1"). That choice is made on the test benchmark itself, so it is optimistic;
`greencoder tune` chooses an epoch on held-out validation pairs instead (by cosine separation).
The report shows every evaluated epoch (`all`), the paper's choice (`best`) or tune's
(`validation`), and always both choices side by side, each with its rule.

An epoch family is every variant named `BASE-ep:N` (with `+instruction` its own family). Tune's
choice comes from the evaluation's own OUT/run.json (the variants it resolved, with the epoch
`tune` had chosen when they were evaluated), so the report needs OUT alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any

from greencoder.evaluation.tables import Table4, Table5
from greencoder.evaluation.variants import epoch_variant_name, split_epoch_name

EPOCH_MODES = ("all", "best", "validation")
BEST_RULE = ("best epoch by benchmark pass@1 (the Total column; as the paper did; choosing the epoch on the test "
             "benchmark is optimistic); ties: the earliest epoch")
VALIDATION_RULE = "the epoch `greencoder tune` chose on its validation split (not the test benchmark)"
MODE_HEADINGS = {
    "all": "Rows: every evaluated epoch of each tuned variant (`report --epochs best|validation` picks one).",
    "best": f"Rows: each tuned variant at its {BEST_RULE}.",
    "validation": f"Rows: each tuned variant at {VALIDATION_RULE}.",
}


@dataclass
class EpochFamily:
    """The evaluated epochs of one tuned variant, and the two choices among them."""

    name: str
    variants: dict[int, str] = field(default_factory=dict)
    """epoch -> variant name, e.g. 3 -> `both-triplet-ep:3`."""
    tune_choice: int | None = None
    tune_rule: str | None = None
    tune_run: str | None = None
    best: int | None = None
    """The epoch with the highest Total pass@1 (earliest on ties); None before any is scored."""

    @property
    def chosen_by_tune(self) -> str | None:
        """The variant of tune's choice, when that epoch was evaluated."""
        return self.variants.get(self.tune_choice) if self.tune_choice is not None else None


def read_recorded_variants(directory: Path) -> dict[str, dict[str, Any]]:
    """name -> the variant as the latest `evaluate` in `directory` resolved it (its OUT/run.json);
    empty where there is none (records from elsewhere, copied alone)."""
    try:
        invocations = json.loads((directory / "run.json").read_text(encoding="utf-8")).get("invocations", [])
    except (OSError, ValueError, AttributeError):
        return {}
    recorded: dict[str, dict[str, Any]] = {}
    for invocation in invocations if isinstance(invocations, list) else []:
        for variant in invocation.get("variants", []) if isinstance(invocation, dict) else []:
            if isinstance(variant, dict) and isinstance(variant.get("name"), str):
                recorded[variant["name"]] = variant
    return recorded


def best_epoch(table: Table4, family: EpochFamily) -> int | None:
    """Highest Total pass@1 (exact fractions, so equal rates tie), the earliest epoch on ties."""
    scored = [(Fraction(c.passed, c.tasks), epoch) for epoch, name in family.variants.items()
              if (c := table.cell(name, "Total")).tasks]
    return max(scored, key=lambda item: (item[0], -item[1]))[1] if scored else None


def epoch_families(table: Table4, recorded: dict[str, dict[str, Any]] | None = None) -> list[EpochFamily]:
    """Every family among the table's variants, with both choices, in the table's order."""
    recorded = recorded or {}
    families: dict[str, EpochFamily] = {}
    for name in table.variants:
        parts = split_epoch_name(name)
        if parts is None:
            continue
        family = families.setdefault(parts[0], EpochFamily(parts[0]))
        family.variants[parts[1]] = name
        facts = recorded.get(name, {})
        if facts.get("tune_choice") is not None:
            family.tune_choice, family.tune_rule, family.tune_run = facts["tune_choice"], facts.get("tune_rule"), facts.get("tune_run")
    for family in families.values():
        family.variants = dict(sorted(family.variants.items()))
        family.best = best_epoch(table, family)
    return list(families.values())


def shown_variants(order: list[str], families: list[EpochFamily], mode: str) -> list[str]:
    """The table rows for `mode`: all variants, or one epoch per family (all of a family whose
    chosen epoch is unknown or was not evaluated, so nothing disappears unexplained)."""
    if mode == "all":
        return list(order)
    hidden: set[str] = set()
    for family in families:
        keep = family.variants.get(family.best) if mode == "best" else family.chosen_by_tune
        if keep is not None:
            hidden |= set(family.variants.values()) - {keep}
    return [name for name in order if name not in hidden]


def restrict(t4: Table4, t5: Table5, names: list[str]) -> tuple[Table4, Table5]:
    """The same tables with only `names` as rows (cells untouched)."""
    return replace(t4, variants=[v for v in t4.variants if v in names]), replace(t5, variants=[v for v in t5.variants if v in names])


def _pass_cell(table: Table4, name: str | None) -> str:
    if name is None:
        return ""
    cell = table.cell(name, "Total")
    return "" if cell.pass_at_1 is None else f"{cell.pass_at_1:.1f} ({cell.passed}/{cell.tasks})"


def epoch_rows(table: Table4, families: list[EpochFamily]) -> tuple[list[str], list[list[str]]]:
    """One row per family: its epochs, the paper's choice and tune's, each with its Total pass@1."""
    headers = ["Variant", "Total pass@1 by epoch", "Best by benchmark pass@1", "Total pass@1",
               "Chosen by tune", "Tune's rule", "Total pass@1 (tune's choice)"]
    rows = []
    for family in families:
        best = family.variants.get(family.best) if family.best is not None else None
        if family.tune_choice is None:
            tune, rule = "unknown (no tune run recorded)", ""
        else:
            tune = family.chosen_by_tune or f"{epoch_variant_name(family.name, family.tune_choice)} (not evaluated)"
            rule = family.tune_rule or ""
        by_epoch = ", ".join(f"{epoch}: {'' if (c := table.cell(name, 'Total')).pass_at_1 is None else f'{c.pass_at_1:.1f}'}"
                             for epoch, name in family.variants.items())
        rows.append([family.name, by_epoch, best or "", _pass_cell(table, best),
                     tune, rule, _pass_cell(table, family.chosen_by_tune)])
    return headers, rows


def epoch_notes(table: Table4, families: list[EpochFamily], mode: str) -> list[str]:
    """What a reader must know to trust the choice: unequal task counts, missing choices."""
    notes = []
    for family in families:
        counts = {table.cell(name, "Total").tasks for name in family.variants.values()}
        if len(counts) > 1:
            notes.append(f"- {family.name}: its epochs were scored on different numbers of tasks "
                         f"({min(counts)}-{max(counts)}), so the best epoch compares unequal task sets")
        if mode == "validation" and family.chosen_by_tune is None:
            why = ("no tune run is recorded for it" if family.tune_choice is None
                   else f"tune chose epoch {family.tune_choice}, which was not evaluated")
            notes.append(f"- {family.name}: every epoch is shown: {why}")
    return notes


def to_json(table: Table4, families: list[EpochFamily]) -> list[dict[str, Any]]:
    return [{"variant": f.name, "epochs": {str(e): n for e, n in f.variants.items()},
             "best_by_pass_at_1": {"epoch": f.best, "variant": f.variants.get(f.best) if f.best is not None else None,
                                   "rule": BEST_RULE},
             "chosen_by_tune": {"epoch": f.tune_choice, "variant": f.chosen_by_tune, "rule": f.tune_rule,
                                "run": f.tune_run},
             "pass_at_1": {str(e): table.cell(n, "Total").pass_at_1 for e, n in f.variants.items()}}
            for f in families]
