/**
 * The server's energy ledger and how it is shown. The server sends it as the result of
 * `greencoder/energyReport` (asked once when the client starts) and pushes it with the
 * notification `greencoder/ledger` whenever it changes, so nothing here polls.
 *
 * Joules are kept by kind ("estimated" from CPU time, "measured" by a hardware meter) and never
 * added across kinds. Pure: no `vscode` import.
 */

import { Measurement, escapeMarkdown, measurementLine, measurementShort, parseMeasurement } from "./measurement";
import { formatQuantity } from "./units";

export { formatQuantity } from "./units";

export const ENERGY_REPORT_REQUEST = "greencoder/energyReport";
export const LEDGER_NOTIFICATION = "greencoder/ledger";

export interface EnergyReport {
  completions: number;
  cancelled: number;
  completionTokens: number;
  completionSeconds: number;
  completionJoules: Record<string, number>;
  measurements: number;
  measuredJoules: Record<string, number>;
  lastMeasurement: Measurement | null;
  /** The model's state on the server: "idle", "loading", "ready" or "failed". */
  model: string;
}

function isRecordOfNumbers(value: unknown): value is Record<string, number> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.values(value).every((item) => typeof item === "number" && Number.isFinite(item));
}

/** The server's ledger as an EnergyReport, or undefined when it is not one (an older server). */
export function parseReport(value: unknown): EnergyReport | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return undefined;
  const raw = value as Record<string, unknown>;
  const number = (key: string): number => (typeof raw[key] === "number" ? (raw[key] as number) : 0);
  if (typeof raw.completions !== "number") return undefined;
  return {
    completions: number("completions"),
    cancelled: number("cancelled"),
    completionTokens: number("completionTokens"),
    completionSeconds: number("completionSeconds"),
    completionJoules: isRecordOfNumbers(raw.completionJoules) ? raw.completionJoules : {},
    measurements: number("measurements"),
    measuredJoules: isRecordOfNumbers(raw.measuredJoules) ? raw.measuredJoules : {},
    lastMeasurement: parseMeasurement(raw.lastMeasurement) ?? null,
    model: typeof raw.model === "string" ? raw.model : "unknown",
  };
}

const KIND_LABEL: Record<string, string> = { estimated: "est", measured: "measured" };

/** Joules by kind, measured first: "1.2 J measured + 340 mJ est"; "0 J" when empty. */
export function formatJoules(byKind: Record<string, number>): string {
  const kinds = Object.keys(byKind).sort((a, b) => (a === "measured" ? -1 : b === "measured" ? 1 : a.localeCompare(b)));
  if (kinds.length === 0) return "0 J";
  return kinds.map((kind) => `${formatQuantity(byKind[kind], "J")} ${KIND_LABEL[kind] ?? kind}`).join(" + ");
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function usesEstimates(report: EnergyReport): boolean {
  return "estimated" in report.completionJoules || "estimated" in report.measuredJoules
    || report.lastMeasurement?.energyKind === "estimated";
}

/** The report as lines of plain text (the information message, the log). */
export function reportLines(report: EnergyReport): string[] {
  const lines = [
    `Model: ${report.model}`,
    `Completions: ${report.completions} (${report.cancelled} cancelled), ${report.completionTokens} tokens, ` +
      `${formatQuantity(report.completionSeconds, "s")} generating`,
    `Completion energy: ${formatJoules(report.completionJoules)}`,
    `Measurements: ${report.measurements}, energy ${formatJoules(report.measuredJoules)}`,
  ];
  if (report.lastMeasurement) {
    lines.push(`Last measured: ${report.lastMeasurement.call}`, `  ${measurementLine(report.lastMeasurement)}`);
  }
  if (usesEstimates(report)) {
    lines.push("Estimated energy is CPU time × watts per core: no hardware energy counter was used for it.");
  }
  return lines;
}

/** The report as a Markdown document (Show energy report → Open as document). */
export function reportMarkdown(report: EnergyReport): string {
  const rows: Array<[string, string]> = [
    ["Model", report.model],
    ["Completions", `${report.completions} (${report.cancelled} cancelled)`],
    ["Tokens generated", String(report.completionTokens)],
    ["Generating time", formatQuantity(report.completionSeconds, "s")],
    ["Completion energy", formatJoules(report.completionJoules)],
    ["Measurements", String(report.measurements)],
    ["Measured code's energy", formatJoules(report.measuredJoules)],
  ];
  const out = ["# greencoder energy report", "", "| | |", "|---|---|",
    ...rows.map(([name, value]) => `| ${name} | ${escapeMarkdown(value)} |`)];
  if (report.lastMeasurement) {
    out.push("", `## Last measurement: \`${report.lastMeasurement.call.replace(/`/g, "'")}\``, "",
      escapeMarkdown(measurementLine(report.lastMeasurement)));
  }
  out.push("", "_Estimated_ energy is CPU time × watts per core; _measured_ energy comes from a hardware meter (RAPL, perf, NVML, powermetrics).", "");
  return out.join("\n");
}

/** One line: "12.3 J est · 5 completions" (+ " · squares 1.23 mJ/call est" after a measurement). */
export function ledgerSummary(report: EnergyReport): string {
  const parts = [formatJoules(report.completionJoules), plural(report.completions, "completion")];
  if (report.lastMeasurement) parts.push(measurementShort(report.lastMeasurement));
  return parts.join(" · ");
}
