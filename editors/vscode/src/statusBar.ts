/**
 * The status bar item: the session's energy ledger, refreshed every few seconds from
 * `greencoder/energyReport`; clicking it runs "greencoder: Show energy report".
 *
 * No runtime `vscode` import: the item and the report source are handed in, so the unit tests
 * drive it with fakes.
 */

import { EnergyReport, formatJoules, ledgerSummary, reportLines } from "./report";

/** The language client's state, as the status bar tells it. */
export type ClientState = "starting" | "running" | "stopped" | "failed";

/** The part of `vscode.StatusBarItem` used here. */
export interface StatusItemLike {
  text: string;
  tooltip?: unknown;
  show(): void;
  dispose(): void;
}

export function statusText(state: ClientState, report: EnergyReport | undefined): string {
  switch (state) {
    case "starting":
      return "$(loading~spin) greencoder: starting";
    case "stopped":
      return "$(circle-slash) greencoder: stopped";
    case "failed":
      return "$(error) greencoder: server failed";
  }
  if (!report) return "$(loading~spin) greencoder";
  if (report.model === "loading" || report.model === "idle") return "$(loading~spin) greencoder: loading model";
  const ledger = ledgerSummary(report);
  if (report.model === "failed") return `$(warning) greencoder: model failed · ${ledger}`;
  return `$(zap) ${ledger}`;
}

export function statusTooltip(state: ClientState, report: EnergyReport | undefined, error?: string): string {
  const lines = [`greencoder language server: ${state}`];
  if (error) lines.push(error);
  if (report) lines.push(...reportLines(report));
  if (report && report.measurements > 0) lines.push(`Measured code total: ${formatJoules(report.measuredJoules)}`);
  lines.push("", "Click for the energy report.");
  return lines.join("\n");
}

type Timer = ReturnType<typeof setInterval>;

export interface StatusBarOptions {
  intervalMs: number;
  setInterval?: (callback: () => void, ms: number) => Timer;
  clearInterval?: (timer: Timer) => void;
}

export class EnergyStatusBar {
  private state: ClientState = "starting";
  private report: EnergyReport | undefined;
  private error: string | undefined;
  private timer: Timer | undefined;
  private inFlight: Promise<void> | undefined;
  private intervalMs: number;
  private readonly setTimer: (callback: () => void, ms: number) => Timer;
  private readonly clearTimer: (timer: Timer) => void;

  constructor(
    private readonly item: StatusItemLike,
    private readonly fetchReport: () => Promise<EnergyReport | undefined>,
    options: StatusBarOptions,
  ) {
    this.intervalMs = options.intervalMs;
    this.setTimer = options.setInterval ?? ((callback, ms) => setInterval(callback, ms));
    this.clearTimer = options.clearInterval ?? ((timer) => clearInterval(timer));
    this.render();
    item.show();
  }

  get text(): string {
    return this.item.text;
  }

  get lastReport(): EnergyReport | undefined {
    return this.report;
  }

  setState(state: ClientState, error?: string): void {
    this.state = state;
    this.error = error;
    if (state !== "running") this.report = undefined;
    this.render();
  }

  /** Ask the server for the report now (one request at a time; failures keep the last text). */
  refresh(): Promise<void> {
    if (this.state !== "running") return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    this.inFlight = this.fetchReport()
      .then((report) => {
        if (report) this.report = report;
      }, () => undefined)
      .finally(() => {
        this.inFlight = undefined;
        this.render();
      });
    return this.inFlight;
  }

  start(intervalMs = this.intervalMs): void {
    this.stop();
    this.intervalMs = intervalMs;
    this.timer = this.setTimer(() => void this.refresh(), intervalMs);
  }

  stop(): void {
    if (this.timer !== undefined) this.clearTimer(this.timer);
    this.timer = undefined;
  }

  dispose(): void {
    this.stop();
    this.item.dispose();
  }

  private render(): void {
    this.item.text = statusText(this.state, this.report);
    this.item.tooltip = statusTooltip(this.state, this.report, this.error);
  }
}
