"""The paper's tables, computed from raw result records only.

Table 4 (pass@1): rows = variants, columns = Total, HumanEval-X C++/Java/Python, LeetCode
C++/Java/Python; a cell is passed / scored tasks. Total counts every scored task (648 when both
benchmarks ran in full).

Table 5 (efficiency): rows = variants other than the baseline, same benchmark x language columns.
Each task correct in both the baseline and the variant gives one comparison (Mann-Whitney U on
per-execution energy and time). A cell is the mean, over the comparisons whose difference is
significant, of the variant's mean as % of the baseline's (below 100 = cheaper), with "k/n":
k significant of n comparisons. It is blank where no comparison is significant. Every energy cell
carries the meter's kind: measured or estimated.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import mean
from typing import Any

from greencoder.evaluation.variants import BASELINE, CANONICAL, INSTRUCTION_SUFFIX, split_epoch_name

COLUMNS: tuple[tuple[str, str], ...] = (
    ("humaneval-x", "cpp"), ("humaneval-x", "java"), ("humaneval-x", "python"),
    ("leetcode-hard", "cpp"), ("leetcode-hard", "java"), ("leetcode-hard", "python"),
)
_BENCHMARK_LABELS = {"humaneval-x": "HumanEval-X", "leetcode-hard": "LeetCode"}
_LANGUAGE_LABELS = {"cpp": "C++", "java": "Java", "python": "Python"}


def column_label(column: tuple[str, str]) -> str:
    return f"{_BENCHMARK_LABELS[column[0]]} {_LANGUAGE_LABELS[column[1]]}"


def natural_key(name: str) -> tuple[str, bool, int]:
    """Epochs in numeric order (ep:2 before ep:10), each family's +instruction after it."""
    family, epoch = split_epoch_name(name) or (name, -1)
    instructed = family.endswith(INSTRUCTION_SUFFIX)
    return (family[: -len(INSTRUCTION_SUFFIX)] if instructed else family, instructed, epoch)


def variant_order(names: set[str], preferred: list[str] | None = None) -> list[str]:
    """canonical, baseline, instruction first, then the rest in the given order, then by name
    (epochs by number)."""
    first = [n for n in (CANONICAL, BASELINE, "instruction") if n in names]
    rest = [n for n in (preferred or []) if n in names and n not in first]
    return first + rest + sorted(names - set(first) - set(rest), key=natural_key)


@dataclass
class PassCell:
    passed: int = 0
    tasks: int = 0

    @property
    def pass_at_1(self) -> float | None:
        return 100.0 * self.passed / self.tasks if self.tasks else None


@dataclass
class Table4:
    variants: list[str]
    columns: list[tuple[str, str]]
    cells: dict[tuple[str, tuple[str, str] | str], PassCell] = field(default_factory=dict)

    def cell(self, variant: str, column) -> PassCell:
        return self.cells.get((variant, column), PassCell())


def table4(correctness: list[dict], order: list[str] | None = None) -> Table4:
    variants = variant_order({r["variant"] for r in correctness}, order)
    table = Table4(variants, list(COLUMNS))
    for record in correctness:
        for column in ((record["benchmark"], record["language"]), "Total"):
            cell = table.cells.setdefault((record["variant"], column), PassCell())
            cell.tasks += 1
            cell.passed += bool(record.get("passed"))
    return table


@dataclass
class EfficiencyCell:
    ratios: list[float] = field(default_factory=list)
    """Variant mean as % of baseline, for every comparison made (significant or not)."""
    significant: list[float] = field(default_factory=list)
    failed: int = 0
    kinds: set[str] = field(default_factory=set)

    @property
    def value(self) -> float | None:
        return mean(self.significant) if self.significant else None


@dataclass
class Table5:
    variants: list[str]
    columns: list[tuple[str, str]]
    energy: dict[tuple[str, tuple[str, str]], EfficiencyCell] = field(default_factory=dict)
    time: dict[tuple[str, tuple[str, str]], EfficiencyCell] = field(default_factory=dict)

    def energy_kinds(self) -> set[str]:
        return set().union(*(c.kinds for c in self.energy.values())) if self.energy else set()


def table5(comparisons: list[dict], order: list[str] | None = None) -> Table5:
    variants = variant_order({r["variant"] for r in comparisons}, order)
    table = Table5(variants, list(COLUMNS))
    for record in comparisons:
        column = (record["benchmark"], record["language"])
        for metric, cells in (("energy", table.energy), ("time", table.time)):
            cell = cells.setdefault((record["variant"], column), EfficiencyCell())
            result = record.get(metric)
            if "error" in record or not result or result.get("relative_pct") is None:
                cell.failed += 1
                continue
            ratio = 100.0 + result["relative_pct"]
            cell.ratios.append(ratio)
            if result["significant"]:
                cell.significant.append(ratio)
            if metric == "energy":
                cell.kinds.add(record["energy_kind"])
    return table


def table4_rows(table: Table4) -> tuple[list[str], list[list[str]]]:
    headers = ["Variant", "Total", *map(column_label, table.columns)]
    rows = []
    for variant in table.variants:
        row = [variant]
        for column in ["Total", *table.columns]:
            cell = table.cell(variant, column)
            row.append("" if cell.pass_at_1 is None else f"{cell.pass_at_1:.1f} ({cell.passed}/{cell.tasks})")
        rows.append(row)
    return headers, rows


def table5_rows(table: Table5, metric: str) -> tuple[list[str], list[list[str]]]:
    cells = table.energy if metric == "energy" else table.time
    headers = ["Variant", *map(column_label, table.columns)]
    rows = []
    for variant in table.variants:
        row = [variant]
        for column in table.columns:
            cell = cells.get((variant, column))
            if cell is None or not cell.ratios:
                row.append("")
                continue
            count = f"({len(cell.significant)}/{len(cell.ratios)})"
            row.append(f"{cell.value:.1f} {count}" if cell.value is not None else count)
        rows.append(row)
    return headers, rows


def to_json(t4: Table4, t5: Table5) -> dict[str, Any]:
    def efficiency(cells, variant, column):
        cell = cells.get((variant, column))
        if cell is None:
            return None
        return {"percent_of_baseline": cell.value, "significant": len(cell.significant), "comparisons": len(cell.ratios),
                "not_compared": cell.failed, "energy_kind": sorted(cell.kinds) or None, "ratios": cell.ratios}

    return {
        "table4": {"columns": ["Total", *map(column_label, t4.columns)], "rows": [
            {"variant": v, "cells": {("Total" if c == "Total" else column_label(c)): {
                "pass_at_1": t4.cell(v, c).pass_at_1, "passed": t4.cell(v, c).passed, "tasks": t4.cell(v, c).tasks}
                for c in ["Total", *t4.columns]}} for v in t4.variants]},
        "table5": {"columns": list(map(column_label, t5.columns)), "energy_kinds": sorted(t5.energy_kinds()), "rows": [
            {"variant": v,
             "energy": {column_label(c): efficiency(t5.energy, v, c) for c in t5.columns},
             "time": {column_label(c): efficiency(t5.time, v, c) for c in t5.columns}} for v in t5.variants]},
    }
