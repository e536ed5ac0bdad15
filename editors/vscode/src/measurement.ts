/**
 * A measurement as the server sends it (the "Measure energy" diagnostic's `data`, and the ledger's
 * `lastMeasurement`), and every way the extension shows one: the diagnostic's line, the hover, the
 * status bar's short form. Everything is built from the numbers (joules and seconds per call),
 * never from the server's English message, so a change of wording on the server changes nothing
 * here. Pure: no `vscode` import.
 */

import { formatQuantity } from "./units";

export const MEASUREMENT_KIND = "greencoder.measurement";

export interface Spread {
  mean: number;
  sd: number;
  cv: number | null;
}

export interface Comparison {
  energyChangePct: number | null;
  timeChangePct: number | null;
  pValue: number | null;
  alpha: number | null;
  significant: boolean;
  /** Why the two measurements could not be compared (then the other fields mean nothing). */
  error: string | null;
}

export interface Measurement {
  function: string;
  call: string;
  uri: string;
  status: "ok" | "failed";
  error: string | null;
  /** "measured" (a hardware meter) or "estimated" (CPU time × watts per core). */
  energyKind: string | null;
  meter: string | null;
  isolation: string | null;
  energy: Spread | null;
  time: Spread | null;
  runs: number | null;
  removed: number | null;
  repeats: number | null;
  comparison: Comparison | null;
}

type Raw = Record<string, unknown>;

function isObject(value: unknown): value is Raw {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function finite(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function text(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function parseSpread(value: unknown): Spread | null {
  if (!isObject(value)) return null;
  const mean = finite(value.mean);
  if (mean === null) return null;
  return { mean, sd: finite(value.sd) ?? 0, cv: finite(value.cv) };
}

function parseComparison(value: unknown): Comparison | null {
  if (!isObject(value)) return null;
  return {
    energyChangePct: finite(value.energyChangePct),
    timeChangePct: finite(value.timeChangePct),
    pValue: finite(value.pValue),
    alpha: finite(value.alpha),
    // Only an explicit `true` is significant: a missing or odd field must never read as a finding.
    significant: value.significant === true,
    error: text(value.error),
  };
}

/** The server's measurement object, or undefined when `value` is not one (another diagnostic). */
export function parseMeasurement(value: unknown): Measurement | undefined {
  if (!isObject(value) || value.kind !== MEASUREMENT_KIND || typeof value.function !== "string") return undefined;
  const energy = parseSpread(value.energy);
  const time = parseSpread(value.time);
  // "ok" without numbers is not something to show as a result.
  const status = value.status === "ok" && energy && time ? "ok" : "failed";
  return {
    function: value.function,
    call: text(value.call) ?? value.function,
    uri: text(value.uri) ?? "",
    status,
    error: status === "failed" ? (text(value.error) ?? (value.status === "ok" ? "the server sent no numbers" : "unknown error")) : null,
    energyKind: text(value.energyKind),
    meter: text(value.meter),
    isolation: text(value.isolation),
    energy,
    time,
    runs: finite(value.runs),
    removed: finite(value.removed),
    repeats: finite(value.repeats),
    comparison: parseComparison(value.comparison),
  };
}

/** "estimated" or "measured (rapl)"; "est" / "measured" when `short`. */
export function energyKindLabel(measurement: Measurement, short = false): string {
  if (measurement.energyKind === "estimated") return short ? "est" : "estimated";
  if (measurement.energyKind === "measured") return short || !measurement.meter ? "measured" : `measured (${measurement.meter})`;
  return measurement.energyKind ?? "unknown kind";
}

/** A signed percentage with a real minus sign: "−12.5 %", "+3.1 %". */
export function formatPercent(value: number): string {
  const rounded = Math.abs(value) < 0.05 ? 0 : value;
  const digits = Math.abs(rounded).toFixed(1);
  return `${rounded < 0 ? "−" : "+"}${digits} %`;
}

/** A p-value short and exact enough: 0.0001 → "1e-4", 0.00123 → "1.2e-3", 0.31 → "0.31". */
export function formatPValue(value: number): string {
  if (value === 0) return "0";
  if (value < 0.001) {
    const [mantissa, exponent] = value.toExponential(1).split("e");
    return `${mantissa.replace(/\.0$/, "")}e${Number(exponent)}`;
  }
  return String(Number(value.toPrecision(2)));
}

/**
 * The comparison with the previous measurement: "−12.5 % energy, significant (p = 1e-4)",
 * "+0.8 % energy, not significant (p = 0.62)", or "not compared (why)".
 */
export function formatComparison(comparison: Comparison): string {
  if (comparison.error) return `not compared (${comparison.error})`;
  const change = comparison.energyChangePct === null ? "change n/a" : `${formatPercent(comparison.energyChangePct)} energy`;
  const verdict = comparison.significant ? "significant" : "not significant";
  const p = comparison.pValue === null ? "" : ` (p = ${formatPValue(comparison.pValue)})`;
  return `${change}, ${verdict}${p}`;
}

function spread(value: Spread, unit: string): string {
  return `${formatQuantity(value.mean, unit)} ± ${formatQuantity(value.sd, unit)}`;
}

/**
 * One line (the diagnostic's message, the report): "squares(2000): 2.57 mJ ± 7.93 µJ per call
 * (estimated), 189 µs ± 933 ns per call, 10 runs × 26000 calls; −12.5 % energy, significant (p = 1e-4)".
 */
export function measurementLine(measurement: Measurement): string {
  if (measurement.status === "failed" || !measurement.energy || !measurement.time) {
    return `${measurement.call}: measuring failed: ${measurement.error ?? "unknown error"}`;
  }
  const parts = [`${measurement.call}: ${spread(measurement.energy, "J")} per call (${energyKindLabel(measurement)}), ` +
    `${spread(measurement.time, "s")} per call`];
  if (measurement.runs !== null) {
    parts[0] += `, ${measurement.runs} runs${measurement.repeats !== null ? ` × ${measurement.repeats} calls` : ""}`;
  }
  if (measurement.comparison) parts.push(formatComparison(measurement.comparison));
  return parts.join("; ");
}

/** The status bar's part: "squares 2.57 mJ/call est", or "squares failed". */
export function measurementShort(measurement: Measurement): string {
  if (measurement.status === "failed" || !measurement.energy) return `${measurement.function} failed`;
  return `${measurement.function} ${formatQuantity(measurement.energy.mean, "J")}/call ${energyKindLabel(measurement, true)}`;
}

/** Escapes what would change the meaning of text inside a Markdown list item or table cell. */
export function escapeMarkdown(value: string): string {
  return value.replace(/([\\`*_[\]<>|])/g, "\\$1");
}

function percentOf(value: number | null): string {
  return value === null ? "n/a" : `${(value * 100).toFixed(1)} %`;
}

/** The hover on the function's name (Markdown). */
export function measurementMarkdown(measurement: Measurement): string {
  const title = `**greencoder** — \`${measurement.call.replace(/`/g, "'")}\``;
  if (measurement.status === "failed" || !measurement.energy || !measurement.time) {
    return `${title}\n\nmeasuring failed: ${escapeMarkdown(measurement.error ?? "unknown error")}`;
  }
  const { energy, time } = measurement;
  const kind = measurement.energyKind === "estimated"
    ? "**estimated** from CPU time × watts per core (no hardware energy counter)"
    : escapeMarkdown(energyKindLabel(measurement));
  const lines = [
    title,
    "",
    `- energy per call: ${formatQuantity(energy.mean, "J")} (sd ${formatQuantity(energy.sd, "J")}, cv ${percentOf(energy.cv)}) — ${kind}`,
    `- time per call: ${formatQuantity(time.mean, "s")} (sd ${formatQuantity(time.sd, "s")}, cv ${percentOf(time.cv)})`,
  ];
  if (measurement.runs !== null) {
    lines.push(`- runs kept: ${measurement.runs}${measurement.removed !== null ? ` (outliers removed: ${measurement.removed})` : ""}` +
      `${measurement.repeats !== null ? `, ${measurement.repeats} calls per run` : ""}`);
  }
  if (measurement.isolation) lines.push(`- sandbox: ${escapeMarkdown(measurement.isolation)}`);
  const comparison = measurement.comparison;
  if (comparison) {
    let line = `- vs previous: ${escapeMarkdown(formatComparison(comparison))}`;
    if (!comparison.error && comparison.alpha !== null) line += ` at α = ${comparison.alpha}`;
    if (!comparison.error && comparison.timeChangePct !== null) line += `; time ${formatPercent(comparison.timeChangePct)}`;
    lines.push(line);
  }
  return lines.join("\n");
}
