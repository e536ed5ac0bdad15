"""Measurements as people read them (a table and one line per comparison) and as machines do (JSON).

An estimate is labelled in the table header and in every comparison line, so a reader who sees
only one line still knows the joules were not measured.
"""

from __future__ import annotations

from tabulate import tabulate

from .protocol import Measurement, MeasurementComparison


def _energy_label(kind: str) -> str:
    return "energy/call (J)" if kind == "measured" else "energy/call (J, ESTIMATED)"


def _spread(mean: float, std: float | None, scale: float = 1.0, digits: int = 4) -> str:
    text = f"{mean * scale:.{digits}g}"
    return text if std is None else f"{text} ± {std * scale:.2g}"


def measurement_table(measurements: list[Measurement]) -> str:
    kind = measurements[0].energy_kind
    rows = []
    for m in measurements:
        energy, time_ = m.energy_per_call(), m.time_per_call()
        run_energy, run_time = m.energy(), m.time()
        rows.append([
            m.name,
            f"{m.repeats:,}",
            f"{energy.n}/{len(m.runs)}",
            _spread(energy.mean, energy.std),
            _spread(time_.mean, time_.std, scale=1e3),
            f"{run_energy.mean:.3g}",
            f"{run_time.mean:.2f}",
        ])
    headers = ["program", "calls/run", "runs kept", _energy_label(kind), "time/call (ms)", "J/run", "s/run"]
    return tabulate(rows, headers=headers, disable_numparse=True)


def comparison_line(comparison: MeasurementComparison) -> str:
    def part(label: str, result) -> str:
        relative = "n/a" if result.relative_pct is None else f"{result.relative_pct:+.1f} %"
        verdict = "significant" if result.significant else "not significant"
        return f"{label} {relative} (Mann-Whitney p = {result.p_value:.2g}, {verdict} at α = {result.alpha:g})"

    estimated = " [energy ESTIMATED from CPU time]" if comparison.a.energy_kind != "measured" else ""
    return (f"{comparison.b.name} vs {comparison.a.name}: " + part("energy", comparison.energy) + "; "
            + part("time", comparison.time) + estimated)


def header_lines(measurement: Measurement) -> list[str]:
    lines = [f"call: {measurement.call}  ({measurement.language})",
             f"meter: {measurement.meter} — {measurement.meter_note}",
             f"sandbox: {measurement.isolation}"]
    if measurement.baseline_watts:
        lines.append(f"idle baseline subtracted: {measurement.baseline_watts:.2f} W")
    protocol = measurement.protocol
    lines.append(f"protocol: {protocol.runs} runs of ≥ {protocol.min_seconds:g} s, {protocol.cooldown_seconds:g} s "
                 f"cooldown, MAD outliers (> {protocol.outlier_threshold:g})")
    return lines


def render_text(measurements: list[Measurement], comparisons: list[MeasurementComparison],
                comparison_errors: list[str] = ()) -> str:
    parts = ["\n".join(header_lines(measurements[0])), "", measurement_table(measurements)]
    if comparisons or comparison_errors:
        parts.append("")
        parts.extend(comparison_line(c) for c in comparisons)
        parts.extend(comparison_errors)
    return "\n".join(parts)


def render_json(measurements: list[Measurement], comparisons: list[MeasurementComparison],
                comparison_errors: list[str] = ()) -> dict:
    return {
        "measurements": [m.to_dict() for m in measurements],
        "comparisons": [c.to_dict() for c in comparisons],
        "comparison_errors": list(comparison_errors),
    }
