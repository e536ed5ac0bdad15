/**
 * The status bar item: the session's energy ledger, as the server pushes it
 * (`greencoder/ledger`); clicking it runs "greencoder: Show energy report".
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

/**
 * Shows the ledger the server pushes (`greencoder/ledger`, handed to `update`), and asks for it
 * once (`refresh`) when the server starts, before the first push. No timer: the server says when
 * something changed.
 */
export class EnergyStatusBar {
  private state: ClientState = "starting";
  private report: EnergyReport | undefined;
  private error: string | undefined;
  private inFlight: Promise<void> | undefined;
  /** Counts pushed reports: an answer to a request sent before the latest push is older than it. */
  private pushes = 0;

  constructor(
    private readonly item: StatusItemLike,
    private readonly fetchReport: () => Promise<EnergyReport | undefined>,
  ) {
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

  /** A ledger the server pushed: shown at once (ignored while the client is not running). */
  update(report: EnergyReport | undefined): void {
    if (!report || this.state !== "running") return;
    this.pushes += 1;
    this.report = report;
    this.render();
  }

  /** Ask the server for the report now (one request at a time; failures keep the last text). */
  refresh(): Promise<void> {
    if (this.state !== "running") return Promise.resolve();
    if (this.inFlight) return this.inFlight;
    const pushesBefore = this.pushes;
    this.inFlight = this.fetchReport()
      .then((report) => {
        if (report && this.pushes === pushesBefore && this.state === "running") this.report = report;
      }, () => undefined)
      .finally(() => {
        this.inFlight = undefined;
        this.render();
      });
    return this.inFlight;
  }

  dispose(): void {
    this.item.dispose();
  }

  private render(): void {
    this.item.text = statusText(this.state, this.report);
    this.item.tooltip = statusTooltip(this.state, this.report, this.error);
  }
}
