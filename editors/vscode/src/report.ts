/**
 * The server's energy ledger and how it is shown. The server sends it as the result of
 * `greencoder/energyReport` (asked once when the client starts) and pushes it with the
 * notification `greencoder/ledger` whenever it changes, so nothing here polls.
 *
 * Joules are kept by kind ("estimated" from CPU time, "measured" by a hardware meter) and never
 * added across kinds. Pure: no `vscode` import.
 *
 * Completions generated at a remote endpoint (`greencoder serve --endpoint`) cost energy on the
 * endpoint's hardware, which is not measured here: the server counts them (`endpointCompletions`),
 * charges them no completion joules, and keeps its own work for them (prompts, HTTP) apart as
 * `serverJoules`. They are shown as such, never as "0 J" or as if the server's share were their cost.
 */

import { Measurement, escapeMarkdown, measurementLine, measurementShort, parseMeasurement } from "./measurement";
import { formatQuantity } from "./units";

export { formatQuantity } from "./units";

export const ENERGY_REPORT_REQUEST = "greencoder/energyReport";
export const LEDGER_NOTIFICATION = "greencoder/ledger";

/** What the server does about power (setting `onBattery`): which policy is in force now. */
export interface PowerPolicy {
  /** "ac", "battery" or "unknown". */
  source: string;
  /** The setting: "keep", "reduce" or "explicit". */
  onBattery: string;
  /** "full", "reduce" or "explicit": "full" unless on battery with reduce/explicit. */
  inForce: string;
}

export interface EnergyReport {
  completions: number;
  cancelled: number;
  completionTokens: number;
  completionSeconds: number;
  /** CPU seconds the server spent on completions (null: an older server). */
  completionCpuSeconds: number | null;
  completionJoules: Record<string, number>;
  /** Prompt tokens the model read, and those it took from the cache of an earlier request. */
  prefillTokens: number;
  prefillTokensSaved: number;
  /** Requests answered from the suggestion on screen (the user typed along it), with no generation. */
  typedAhead: number;
  suggestionsShown: number;
  suggestionsAccepted: number;
  charactersAccepted: number;
  /** Completion joules of each kind / characters accepted; null while nothing was accepted. */
  joulesPerAcceptedCharacter: Record<string, number | null>;
  power: PowerPolicy | null;
  measurements: number;
  measuredJoules: Record<string, number>;
  lastMeasurement: Measurement | null;
  /** The model's state on the server: "idle", "loading", "ready" or "failed". */
  model: string;
  /** Completions generated at a remote endpoint (0: all local); none of their energy is in `completionJoules`. */
  endpointCompletions: number;
  /** The server's sentence saying where the endpoint completions' energy went; null when there were none. */
  endpointEnergy: string | null;
  /** This server's own energy for endpoint completions (prompt building, HTTP), by kind. */
  serverJoules: Record<string, number>;
}

function isRecordOfNumbers(value: unknown): value is Record<string, number> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.values(value).every((item) => typeof item === "number" && Number.isFinite(item));
}

function isRecordOfNumbersOrNull(value: unknown): value is Record<string, number | null> {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    && Object.values(value).every((item) => item === null || (typeof item === "number" && Number.isFinite(item)));
}

function parsePower(value: unknown): PowerPolicy | null {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return null;
  const raw = value as Record<string, unknown>;
  if (typeof raw.inForce !== "string") return null;
  return {
    source: typeof raw.source === "string" ? raw.source : "unknown",
    onBattery: typeof raw.onBattery === "string" ? raw.onBattery : "unknown",
    inForce: raw.inForce,
  };
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
    completionCpuSeconds: typeof raw.completionCpuSeconds === "number" ? raw.completionCpuSeconds : null,
    completionJoules: isRecordOfNumbers(raw.completionJoules) ? raw.completionJoules : {},
    prefillTokens: number("prefillTokens"),
    prefillTokensSaved: number("prefillTokensSaved"),
    typedAhead: number("typedAhead"),
    suggestionsShown: number("suggestionsShown"),
    suggestionsAccepted: number("suggestionsAccepted"),
    charactersAccepted: number("charactersAccepted"),
    joulesPerAcceptedCharacter: isRecordOfNumbersOrNull(raw.joulesPerAcceptedCharacter) ? raw.joulesPerAcceptedCharacter : {},
    power: parsePower(raw.power),
    measurements: number("measurements"),
    measuredJoules: isRecordOfNumbers(raw.measuredJoules) ? raw.measuredJoules : {},
    lastMeasurement: parseMeasurement(raw.lastMeasurement) ?? null,
    model: typeof raw.model === "string" ? raw.model : "unknown",
    endpointCompletions: number("endpointCompletions"),
    endpointEnergy: typeof raw.endpointEnergy === "string" ? raw.endpointEnergy : null,
    serverJoules: isRecordOfNumbers(raw.serverJoules) ? raw.serverJoules : {},
  };
}

const KIND_LABEL: Record<string, string> = { estimated: "est", measured: "measured" };

/** The kinds of a by-kind record, measured first. */
function kindsOf(byKind: Record<string, unknown>): string[] {
  return Object.keys(byKind).sort((a, b) => (a === "measured" ? -1 : b === "measured" ? 1 : a.localeCompare(b)));
}

/** Joules by kind, measured first: "1.2 J measured + 340 mJ est"; "0 J" when empty. */
export function formatJoules(byKind: Record<string, number>): string {
  const kinds = kindsOf(byKind);
  if (kinds.length === 0) return "0 J";
  return kinds.map((kind) => `${formatQuantity(byKind[kind], "J")} ${KIND_LABEL[kind] ?? kind}`).join(" + ");
}

/**
 * Joules per accepted character by kind, measured first: "12.3 mJ/char est",
 * "1 mJ/char measured + 4 mJ/char est"; null while no character was accepted (the server sends null).
 */
export function formatPerCharacter(byKind: Record<string, number | null>): string | null {
  const kinds = kindsOf(byKind).filter((kind) => byKind[kind] !== null);
  if (kinds.length === 0) return null;
  return kinds.map((kind) => `${formatQuantity(byKind[kind] as number, "J")}/char ${KIND_LABEL[kind] ?? kind}`).join(" + ");
}

const POWER_SOURCE: Record<string, string> = { ac: "on AC power", battery: "on battery", unknown: "power source unknown" };

/** The status bar's mark of a power policy that holds back: "🔋 reduce"; null when running in full. */
export function powerShort(power: PowerPolicy | null): string | null {
  if (!power || power.inForce === "full") return null;
  return `🔋 ${power.inForce}`;
}

/** "on battery; onBattery = reduce; in force: reduce". */
export function powerLine(power: PowerPolicy): string {
  return `${POWER_SOURCE[power.source] ?? power.source}; onBattery = ${power.onBattery}; in force: ${power.inForce}`;
}

/** What stands in for an endpoint completion's energy: it was spent there, and nothing here measures it. */
export const ENDPOINT_ENERGY = "energy spent at the endpoint (not measured here)";

/** Completions generated here (not at an endpoint). */
function localCompletions(report: EnergyReport): number {
  return Math.max(0, report.completions - report.endpointCompletions);
}

/** The completions' energy: joules for local ones, the endpoint note for endpoint ones. */
function completionEnergyText(report: EnergyReport): string {
  if (report.endpointCompletions === 0) return formatJoules(report.completionJoules);
  const endpoint = `${ENDPOINT_ENERGY} for ${plural(report.endpointCompletions, "endpoint completion")}`;
  const local = localCompletions(report);
  return local === 0 ? endpoint : `${formatJoules(report.completionJoules)} for ${plural(local, "local completion")}; ${endpoint}`;
}

/** "12.3 mJ est (prompts, HTTP; not the generation)": this server's own share of endpoint completions. */
function serverEnergyText(report: EnergyReport): string {
  return `${formatJoules(report.serverJoules)} (building prompts, HTTP; not the generation)`;
}

/**
 * J per accepted character: not shown when every completion came from an endpoint (its energy is not
 * known here), labelled as covering local work only when some did.
 */
function perCharacterText(report: EnergyReport): string {
  if (report.endpointCompletions > 0 && localCompletions(report) === 0) return `n/a: ${ENDPOINT_ENERGY}`;
  const text = formatPerCharacter(report.joulesPerAcceptedCharacter);
  if (!text) return "n/a (no character accepted yet)";
  return report.endpointCompletions > 0 ? `${text} (local completions only)` : text;
}

function suggestionsText(report: EnergyReport): string {
  return `${report.suggestionsShown} shown, ${report.suggestionsAccepted} accepted, ` +
    `${plural(report.charactersAccepted, "character")} accepted`;
}

/** ", 2.5 s CPU" (the server's CPU time for completions), "" from a server that does not send it. */
function cpuText(report: EnergyReport): string {
  return report.completionCpuSeconds === null ? "" : `, ${formatQuantity(report.completionCpuSeconds, "s")} CPU`;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function usesEstimates(report: EnergyReport): boolean {
  return "estimated" in report.completionJoules || "estimated" in report.measuredJoules
    || (report.endpointCompletions > 0 && "estimated" in report.serverJoules)
    || report.lastMeasurement?.energyKind === "estimated";
}

/** The report as lines of plain text (the information message, the log). */
export function reportLines(report: EnergyReport): string[] {
  const lines = [
    `Model: ${report.model}`,
    `Completions: ${report.completions} (${report.cancelled} cancelled), ${report.completionTokens} tokens, ` +
      `${formatQuantity(report.completionSeconds, "s")} generating${cpuText(report)}`,
    `Completion energy: ${completionEnergyText(report)}`,
    ...(report.endpointCompletions > 0 ? endpointRows(report).map(([name, value]) => `${name}: ${value}`) : []),
    `Suggestions: ${suggestionsText(report)}`,
    `Energy per accepted character: ${perCharacterText(report)}`,
    `Prompt tokens: ${report.prefillTokens} read, ${report.prefillTokensSaved} reused from the cache`,
    `Typed-ahead answers: ${report.typedAhead} (no generation)`,
  ];
  if (report.power) lines.push(`Power: ${powerLine(report.power)}`);
  lines.push(`Measurements: ${report.measurements}, energy ${formatJoules(report.measuredJoules)}`);
  if (report.lastMeasurement) {
    lines.push(`Last measured: ${report.lastMeasurement.call}`, `  ${measurementLine(report.lastMeasurement)}`);
  }
  if (usesEstimates(report)) {
    lines.push("Estimated energy is CPU time × watts per core: no hardware energy counter was used for it.");
  }
  return lines;
}

/** The rows only endpoint completions have: this server's own energy, and the server's word on the endpoint's. */
function endpointRows(report: EnergyReport): Array<[string, string]> {
  const rows: Array<[string, string]> = [["This server's own energy", serverEnergyText(report)]];
  if (report.endpointEnergy) rows.push(["Endpoint", report.endpointEnergy]);
  return rows;
}

/** The report as a Markdown document (Show energy report → Open as document). */
export function reportMarkdown(report: EnergyReport): string {
  const rows: Array<[string, string]> = [
    ["Model", report.model],
    ["Completions", `${report.completions} (${report.cancelled} cancelled)`],
    ["Tokens generated", String(report.completionTokens)],
    ["Generating time", formatQuantity(report.completionSeconds, "s") + cpuText(report)],
    ["Completion energy", completionEnergyText(report)],
    ...(report.endpointCompletions > 0 ? endpointRows(report) : []),
    ["Suggestions", suggestionsText(report)],
    ["Energy per accepted character", perCharacterText(report)],
    ["Prompt tokens read", String(report.prefillTokens)],
    ["Prompt tokens reused from the cache", String(report.prefillTokensSaved)],
    ["Typed-ahead answers (no generation)", String(report.typedAhead)],
  ];
  if (report.power) rows.push(["Power", powerLine(report.power)]);
  rows.push(["Measurements", String(report.measurements)], ["Measured code's energy", formatJoules(report.measuredJoules)]);
  const out = ["# greencoder energy report", "", "| | |", "|---|---|",
    ...rows.map(([name, value]) => `| ${name} | ${escapeMarkdown(value)} |`)];
  if (report.lastMeasurement) {
    out.push("", `## Last measurement: \`${report.lastMeasurement.call.replace(/`/g, "'")}\``, "",
      escapeMarkdown(measurementLine(report.lastMeasurement)));
  }
  out.push("", "_Estimated_ energy is CPU time × watts per core; _measured_ energy comes from a hardware meter (RAPL, perf, NVML, powermetrics).", "");
  return out.join("\n");
}

/**
 * The energy part of the line when completions came from an endpoint: "energy spent at the endpoint
 * (not measured here) · server 12.3 mJ est", after the local completions' joules when there are any.
 */
function endpointSummary(report: EnergyReport): string[] {
  const parts = [ENDPOINT_ENERGY, `server ${formatJoules(report.serverJoules)}`];
  if (localCompletions(report) > 0) parts.unshift(`${formatJoules(report.completionJoules)} local`);
  return parts;
}

/**
 * One line: "12.3 J est · 4.1 mJ/char est · 5 completions · squares 1.23 mJ/call est · 🔋 reduce": the
 * joules per accepted character once a character was accepted, the last measurement once there is
 * one, the power policy when it holds generation back. Completions from an endpoint read
 * "energy spent at the endpoint (not measured here) · server 12.3 mJ est · …", with no J/char.
 */
export function ledgerSummary(report: EnergyReport): string {
  const parts = report.endpointCompletions > 0 ? endpointSummary(report) : [formatJoules(report.completionJoules)];
  const perCharacter = formatPerCharacter(report.joulesPerAcceptedCharacter);
  if (perCharacter && report.endpointCompletions === 0) parts.push(perCharacter);
  else if (perCharacter && localCompletions(report) > 0) parts.push(`${perCharacter} (local only)`);
  parts.push(plural(report.completions, "completion"));
  if (report.lastMeasurement) parts.push(measurementShort(report.lastMeasurement));
  const power = powerShort(report.power);
  if (power) parts.push(power);
  return parts.join(" · ");
}
