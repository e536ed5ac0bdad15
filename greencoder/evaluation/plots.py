"""Figures from the tables: pass@1 per variant and column, and per-task energy ratio distributions."""

from __future__ import annotations

from pathlib import Path

from greencoder.evaluation.tables import Table4, Table5, column_label


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_pass_at_1(table: Table4, path: Path) -> Path:
    """Grouped bars: one group per benchmark x language, one bar per variant."""
    plt = _pyplot()
    columns = [c for c in table.columns if any(table.cell(v, c).tasks for v in table.variants)]
    figure, axes = plt.subplots(figsize=(max(6, 1.6 * len(columns) + 2), 4))
    width = 0.8 / max(1, len(table.variants))
    for index, variant in enumerate(table.variants):
        values = [table.cell(variant, c).pass_at_1 or 0.0 for c in columns]
        positions = [i + (index - (len(table.variants) - 1) / 2) * width for i in range(len(columns))]
        axes.bar(positions, values, width, label=variant)
    axes.set_xticks(range(len(columns)), [column_label(c) for c in columns], rotation=20, ha="right")
    axes.set_ylabel("pass@1 (%)")
    axes.set_ylim(0, 100)
    axes.legend(fontsize="small")
    axes.set_title("pass@1 per variant")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def plot_energy_ratios(table: Table5, path: Path) -> Path:
    """Per variant, the distribution of per-task energy as % of baseline (significant ones filled)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(max(5, 1.5 * len(table.variants) + 2), 4))
    for index, variant in enumerate(table.variants):
        cells = [cell for (v, _), cell in table.energy.items() if v == variant]
        ratios = [r for cell in cells for r in cell.ratios]
        significant = [r for cell in cells for r in cell.significant]
        if ratios:
            axes.boxplot([ratios], positions=[index], widths=0.5, showfliers=False)
        other = [r for r in ratios if r not in significant]
        axes.scatter([index] * len(other), other, facecolors="none", edgecolors="grey", s=18,
                     label="not significant" if index == 0 else None)
        axes.scatter([index] * len(significant), significant, color="tab:green", s=18, label="significant" if index == 0 else None)
    axes.axhline(100, color="black", linewidth=0.8, linestyle="--")
    axes.set_xticks(range(len(table.variants)), table.variants)
    kinds = sorted(table.energy_kinds())
    axes.set_ylabel(f"energy, % of baseline ({', '.join(kinds) or 'no data'})")
    axes.set_title("Energy of correct programs relative to the baseline, per task")
    if table.variants:
        axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
