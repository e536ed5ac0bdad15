/**
 * The server's energy ledger (`greencoder/energyReport`) and how it is shown.
 *
 * Joules are kept by kind ("estimated" from CPU time, "measured" by a hardware meter) and never
 * added across kinds. Pure: no `vscode` import.
 */

export const ENERGY_REPORT_REQUEST = "greencoder/energyReport";

export interface LastMeasurement {
  function: string;
  call: string;
  summary: string;
  energyKind: string | null;
}

export interface EnergyReport {
  completions: number;
  cancelled: number;
  completionTokens: number;
  completionSeconds: number;
  completionJoules: Record<string, number>;
  measurements: number;
  measuredJoules: Record<string, number>;
  lastMeasurement: LastMeasurement | null;
  /** The model's state on the server: "idle", "loading", "ready" or "failed". */
  model: string;
}

function isRecordOfNumbers(value: unknown): value is Record<string, number> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.values(value).every((item) => typeof item === "number");
}

/** The server's answer as an EnergyReport, or undefined when it is not one (an older server). */
export function parseReport(value: unknown): EnergyReport | undefined {
  if (typeof value !== "object" || value === null) return undefined;
  const raw = value as Record<string, unknown>;
  const number = (key: string): number => (typeof raw[key] === "number" ? (raw[key] as number) : 0);
  if (typeof raw.completions !== "number") return undefined;
  let last: LastMeasurement | null = null;
  const rawLast = raw.lastMeasurement as Record<string, unknown> | null | undefined;
  if (rawLast && typeof rawLast === "object" && typeof rawLast.function === "string") {
    last = {
      function: rawLast.function,
      call: typeof rawLast.call === "string" ? rawLast.call : "",
      summary: typeof rawLast.summary === "string" ? rawLast.summary : "",
      energyKind: typeof rawLast.energyKind === "string" ? rawLast.energyKind : null,
    };
  }
  return {
    completions: number("completions"),
    cancelled: number("cancelled"),
    completionTokens: number("completionTokens"),
    completionSeconds: number("completionSeconds"),
    completionJoules: isRecordOfNumbers(raw.completionJoules) ? raw.completionJoules : {},
    measurements: number("measurements"),
    measuredJoules: isRecordOfNumbers(raw.measuredJoules) ? raw.measuredJoules : {},
    lastMeasurement: last,
    model: typeof raw.model === "string" ? raw.model : "unknown",
  };
}

const PREFIXES: ReadonlyArray<[number, string]> = [[1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];

/** `value` with an SI prefix and three significant digits: 0.0123 J → "12.3 mJ". */
export function formatQuantity(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`;
  if (value === 0) return `0 ${unit}`;
  for (const [scale, prefix] of PREFIXES) {
    if (Math.abs(value) >= scale || scale === 1e-9) {
      return `${Number((value / scale).toPrecision(3))} ${prefix}${unit}`;
    }
  }
  return `${value} ${unit}`;
}

const KIND_LABEL: Record<string, string> = { estimated: "est", measured: "measured" };

/** Joules by kind, measured first: "1.2 J measured + 340 mJ est"; "0 J" when empty. */
export function formatJoules(byKind: Record<string, number>): string {
  const kinds = Object.keys(byKind).sort((a, b) => (a === "measured" ? -1 : b === "measured" ? 1 : a.localeCompare(b)));
  if (kinds.length === 0) return "0 J";
  return kinds.map((kind) => `${formatQuantity(byKind[kind], "J")} ${KIND_LABEL[kind] ?? kind}`).join(" + ");
}

/** The function and its energy per call from a measurement summary: "squares 1.23 mJ/call". */
export function shortMeasurement(last: LastMeasurement): string {
  const match = /^[^:]*:\s*([^±]+?)\s*±/.exec(last.summary);
  if (match) return `${last.function} ${match[1]}/call`;
  if (/failed/.test(last.summary)) return `${last.function} failed`;
  return last.function;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
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
    lines.push(`Last measured: ${report.lastMeasurement.call || report.lastMeasurement.function}`);
    if (report.lastMeasurement.summary) lines.push(`  ${report.lastMeasurement.summary}`);
  }
  if (Object.keys(report.completionJoules).includes("estimated") || Object.keys(report.measuredJoules).includes("estimated")) {
    lines.push("Estimated energy is CPU time × watts per core: no hardware energy counter was used for it.");
  }
  return lines;
}

function escapeMarkdown(text: string): string {
  return text.replace(/([\\`*_{}[\]<>()#+!|])/g, "\\$1");
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
    out.push("", `## Last measurement: \`${report.lastMeasurement.call || report.lastMeasurement.function}\``, "",
      escapeMarkdown(report.lastMeasurement.summary));
  }
  out.push("", "_Estimated_ energy is CPU time × watts per core; _measured_ energy comes from a hardware meter (RAPL, perf, NVML, powermetrics).", "");
  return out.join("\n");
}

/** One line: "12.3 J est · 5 completions" (+ " · squares 1.23 mJ/call" after a measurement). */
export function ledgerSummary(report: EnergyReport): string {
  const parts = [formatJoules(report.completionJoules), plural(report.completions, "completion")];
  if (report.lastMeasurement) parts.push(shortMeasurement(report.lastMeasurement));
  return parts.join(" · ");
}
