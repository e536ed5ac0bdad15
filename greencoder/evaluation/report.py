"""`greencoder report DIR`: every table and figure, regenerated from the raw JSON lines in DIR.

Writes DIR/report/: table4.{md,csv,json} (pass@1), table5.{md,csv,json} (energy and time of the
variants as % of baseline), report.md (both tables with the facts needed to read them: meter kind,
isolation, counts) and pass_at_1.png, energy_ratios.png. Where tuned variants were evaluated at
several epochs (`NAME-ep:N`), epochs.{md,csv,json} say which epoch each rule chooses (epochs.py),
and `epochs` picks the rows the tables show: every epoch, the paper's choice or tune's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from statistics import mean

from tabulate import tabulate

from greencoder.core.errors import InputError
from greencoder.evaluation import epochs as epoch_choice
from greencoder.evaluation.plots import plot_energy_ratios, plot_pass_at_1
from greencoder.evaluation.records import read_all
from greencoder.evaluation.tables import (
    Table4,
    Table5,
    table4,
    table4_rows,
    table5,
    table5_rows,
    to_json,
)

ENERGY_KIND_NOTE = {
    "estimated": "ESTIMATED from CPU time (no hardware energy counter was usable)",
    "measured": "measured with a hardware energy counter",
}


def _write_csv(path: Path, headers: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(headers)
        writer.writerows(rows)


def energy_heading(table: Table5) -> str:
    kinds = sorted(table.energy_kinds())
    if not kinds:
        return "Energy, % of baseline"
    return "Energy, % of baseline, " + " and ".join(ENERGY_KIND_NOTE.get(k, k) for k in kinds)


def generation_cost(generations: list[dict], order: list[str]) -> tuple[list[str], list[list[str]]]:
    """Per variant: generations, mean new tokens, seconds and joules per generation (with the meter kind)."""
    headers = ["Variant", "Generations", "New tokens", "Seconds", "Joules", "Energy"]
    rows = []
    for variant in order:
        done = [g for g in generations if g.get("variant") == variant and "new_tokens" in g]
        if not done:
            continue
        metered = [g for g in done if g.get("energy")]
        kinds = sorted({g["energy"]["kind"] for g in metered})
        if len(metered) < len(done):  # generated on an endpoint: its energy was spent there, unmeasured
            kinds.append("not measured here (endpoint)")
        joules = f"{mean(g['energy']['joules'] for g in metered):.3f}" if metered else "n/a"
        rows.append([variant, str(len(done)), f"{mean(g['new_tokens'] for g in done):.1f}",
                     f"{mean(g['wall_seconds'] for g in done):.3f}", joules, ", ".join(kinds)])
    return headers, rows


def canonical_notes(correctness: list[dict]) -> list[str]:
    """Harness validation: every failing reference, with its documented reason or flagged as unexplained."""
    failures = sorted((r for r in correctness if r["variant"] == "canonical" and not r.get("passed")),
                      key=lambda r: (r["benchmark"], r["language"], r["task_id"]))
    notes = []
    for r in failures:
        where = f"{r['benchmark']} {r['language']} {r['task_id']}"
        if r.get("known_exception"):
            notes.append(f"- {where}: {r['status']} (documented: {r['known_exception']})")
        else:
            notes.append(f"- {where}: {r['status']}: UNEXPLAINED, the harness may be wrong ({r.get('reason', '')})")
    return notes


def render_epochs(t4_all: Table4, families: list[epoch_choice.EpochFamily], mode: str) -> list[str]:
    """The epochs section: both choices side by side, each with its rule, and what limits them."""
    headers, rows = epoch_choice.epoch_rows(t4_all, families)
    lines = ["## Epochs of tuned variants", "",
             f"**Best by benchmark pass@1**: the {epoch_choice.BEST_RULE}. **Chosen by tune**: "
             f"{epoch_choice.VALIDATION_RULE}, by the rule named.", "",
             tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    notes = epoch_choice.epoch_notes(t4_all, families, mode)
    return lines + ([*notes, ""] if notes else [])


def render_markdown(t4: Table4, t5: Table5, isolation: set[str], meters: set[str],
                    cost: tuple[list[str], list[list[str]]] | None = None, canonical: list[str] | None = None,
                    epochs_section: list[str] | None = None, rows_note: str | None = None) -> str:
    note = [rows_note, ""] if rows_note else []
    lines = ["# greencoder evaluation", "", "## Table 4: pass@1 (%), passed/tasks", "", *note]
    lines.append(tabulate(table4_rows(t4)[1], headers=table4_rows(t4)[0], tablefmt="github", disable_numparse=True))
    lines += ["", f"Correctness checked in the sandbox ({', '.join(sorted(isolation)) or 'n/a'}).", ""]
    if canonical:
        lines += ["Reference solutions that fail (harness validation):", "", *canonical, ""]
    lines += epochs_section or []
    lines += ["## Table 5: energy and time of correct programs, % of baseline", "", *note,
              "Mean over tasks whose difference from the baseline is significant (Mann-Whitney U, two-sided), "
              "with (significant/compared); blank where none is significant.", ""]
    if not t5.variants:
        lines.append("No efficiency comparisons yet (run `greencoder evaluate --measure`).")
    else:
        lines += [f"### {energy_heading(t5)}", ""]
        headers, rows = table5_rows(t5, "energy")
        lines.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        lines += ["", "### Time, % of baseline", ""]
        headers, rows = table5_rows(t5, "time")
        lines.append(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True))
        lines += ["", f"Meters: {', '.join(sorted(meters)) or 'n/a'}."]
    if cost and cost[1]:
        lines += ["", "## Cost of generation (mean per task)", ""]
        lines.append(tabulate(cost[1], headers=cost[0], tablefmt="github", disable_numparse=True))
    return "\n".join(lines) + "\n"


def write_report(directory: str | Path, variant_order: list[str] | None = None, epochs: str = "all") -> Path:
    """Regenerate everything under DIR/report from DIR's raw records; returns the report folder.
    `epochs`: all, best or validation (epochs.py): which epoch of each tuned variant the tables show."""
    from tqdm import tqdm

    if epochs not in epoch_choice.EPOCH_MODES:
        raise InputError(f"epochs {epochs!r}: choose {', '.join(epoch_choice.EPOCH_MODES)}")
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"results folder {directory} does not exist")
    correctness = read_all(directory, "correctness")
    comparisons = read_all(directory, "comparisons")
    if not correctness and not comparisons:
        raise InputError(f"{directory} holds no results (no correctness*.jsonl or comparisons*.jsonl)")
    out = directory / "report"
    out.mkdir(exist_ok=True)
    steps = tqdm(total=4, desc="report", unit="step", disable=None)
    t4_all, t5_all = table4(correctness, variant_order), table5(comparisons, variant_order)
    families = epoch_choice.epoch_families(t4_all, epoch_choice.read_recorded_variants(directory))
    shown = epoch_choice.shown_variants(t4_all.variants + t5_all.variants, families, epochs)
    t4, t5 = epoch_choice.restrict(t4_all, t5_all, shown)
    rows_note = epoch_choice.MODE_HEADINGS[epochs] if families else None
    epochs_section = render_epochs(t4_all, families, epochs) if families else None
    if families:
        _write_csv(out / "epochs.csv", *epoch_choice.epoch_rows(t4_all, families))
        (out / "epochs.md").write_text("\n".join(epochs_section))
        (out / "epochs.json").write_text(json.dumps(epoch_choice.to_json(t4_all, families), indent=2) + "\n")
    steps.update()
    headers, rows = table4_rows(t4)
    _write_csv(out / "table4.csv", headers, rows)
    (out / "table4.md").write_text(tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True) + "\n"
                                   + (f"\n{rows_note}\n" if rows_note else ""))
    for metric in ("energy", "time"):
        headers, rows = table5_rows(t5, metric)
        _write_csv(out / f"table5_{metric}.csv", headers, rows)
    data = to_json(t4, t5)
    (out / "table4.json").write_text(json.dumps(data["table4"], indent=2) + "\n")
    (out / "table5.json").write_text(json.dumps(data["table5"], indent=2) + "\n")
    isolation = {r.get("isolation") for r in correctness if r.get("isolation")}
    meters = {r.get("meter") for r in comparisons if r.get("meter")}
    generations = read_all(directory, "generations")
    cost = generation_cost(generations, t4.variants)
    if cost[1]:
        _write_csv(out / "generation_cost.csv", *cost)
    markdown = render_markdown(t4, t5, isolation, meters, cost, canonical_notes(correctness), epochs_section, rows_note)
    (out / "report.md").write_text(markdown)
    table5_md = markdown.split("## Table 5", 1)[1] if "## Table 5" in markdown else ""
    (out / "table5.md").write_text("## Table 5" + table5_md)
    steps.update()
    plot_pass_at_1(t4, out / "pass_at_1.png")
    steps.update()
    plot_energy_ratios(t5, out / "energy_ratios.png")
    steps.update()
    steps.close()
    return out
