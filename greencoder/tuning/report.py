"""The end-of-run summary of `greencoder tune`: the per-epoch table, the best epoch, how to use it."""

from __future__ import annotations

from tabulate import tabulate

from greencoder.tuning.run_directory import EpochRecord
from greencoder.tuning.trainer import TuneOutcome


def _number(value: float | None, spec: str) -> str:
    return "" if value is None else format(value, spec)


def epoch_table(history: list[EpochRecord], best: int | None) -> str:
    rows = [
        [
            f"{r.epoch}{' *' if r.epoch == best else ''}",
            _number(r.train_loss, ".4f"),
            _number(r.validation_loss, ".4f"),
            _number(r.separation, "+.4f"),
            _number(r.cos_efficient, ".4f"),
            _number(r.cos_inefficient, ".4f"),
            _number(r.ranking_accuracy, ".1%"),
            _number(r.examples_per_second, ".1f"),
        ]
        for r in sorted(history, key=lambda r: r.epoch)
    ]
    headers = ["epoch", "train loss", "val loss", "separation", "cos eff", "cos ineff", "ranking acc", "examples/s"]
    return tabulate(rows, headers=headers, disable_numparse=True)


def render_summary(outcome: TuneOutcome) -> str:
    """Table of all epochs (epoch 0 = the initial prompt), then the best epoch and its folder."""
    best = outcome.best_epoch
    lines = [epoch_table(outcome.state.history, best), ""]
    if best is None:
        lines.append("no epoch trained yet")
        return "\n".join(lines)
    before, chosen = outcome.record(0), outcome.record(best)
    if chosen.separation is not None and before is not None and before.separation is not None:
        lines.append(f"best epoch: {best} by validation separation ({before.separation:+.4f} before training -> {chosen.separation:+.4f})")
        if chosen.separation <= before.separation:
            lines.append("warning: no epoch separates efficient from inefficient programs better than the initial prompt did")
    else:
        lines.append(f"best epoch: {best} by training loss (no validation split)")
    adapter = outcome.out / f"epoch-{best}"
    lines.append(f"soft prompt: {adapter}   (use: greencoder complete FILE --line L --column C --model MODEL --adapter {adapter})")
    return "\n".join(lines)
