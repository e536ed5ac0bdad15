import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  EnergyReport,
  formatJoules,
  formatQuantity,
  ledgerSummary,
  parseReport,
  reportLines,
  reportMarkdown,
  shortMeasurement,
} from "../report";

/** An answer as `greencoder/energyReport` sends it (greencoder/server/ledger.py + model state). */
const SERVER_ANSWER = {
  completions: 5,
  cancelled: 1,
  completionTokens: 80,
  completionSeconds: 2.5,
  completionJoules: { estimated: 12.34 },
  measurements: 1,
  measuredJoules: { estimated: 0.5 },
  lastMeasurement: {
    function: "squares",
    call: "squares(2000)",
    summary: "squares: 1.23 mJ ± 45.6 µJ per call, 102 µs ± 3.7 µs per call, 8 runs of 500 calls; energy ESTIMATED from CPU time",
    energyKind: "estimated",
  },
  model: "ready",
};

function report(overrides: Partial<EnergyReport> = {}): EnergyReport {
  return { ...(parseReport(SERVER_ANSWER) as EnergyReport), ...overrides };
}

describe("parseReport", () => {
  it("reads the server's answer", () => {
    const parsed = parseReport(SERVER_ANSWER);
    assert.ok(parsed);
    assert.equal(parsed.completions, 5);
    assert.deepEqual(parsed.completionJoules, { estimated: 12.34 });
    assert.equal(parsed.lastMeasurement?.function, "squares");
    assert.equal(parsed.model, "ready");
  });

  it("reads a fresh session (no measurement yet, empty ledgers)", () => {
    const parsed = parseReport({ ...SERVER_ANSWER, completions: 0, completionJoules: {}, measuredJoules: {}, lastMeasurement: null, model: "loading" });
    assert.ok(parsed);
    assert.equal(parsed.lastMeasurement, null);
    assert.deepEqual(parsed.completionJoules, {});
  });

  it("rejects what is not a report", () => {
    for (const bad of [null, undefined, 3, "x", [], {}, { completions: "5" }]) assert.equal(parseReport(bad), undefined);
  });

  it("tolerates odd fields", () => {
    const parsed = parseReport({ completions: 1, completionJoules: { estimated: "many" }, lastMeasurement: { nope: 1 } });
    assert.ok(parsed);
    assert.deepEqual(parsed.completionJoules, {});
    assert.equal(parsed.lastMeasurement, null);
    assert.equal(parsed.model, "unknown");
  });
});

describe("formatQuantity", () => {
  it("uses SI prefixes and three significant digits", () => {
    assert.equal(formatQuantity(12.34, "J"), "12.3 J");
    assert.equal(formatQuantity(0.01234, "J"), "12.3 mJ");
    assert.equal(formatQuantity(4.5e-6, "J"), "4.5 µJ");
    assert.equal(formatQuantity(2e-12, "J"), "0.002 nJ");
    assert.equal(formatQuantity(1234, "J"), "1.23 kJ");
    assert.equal(formatQuantity(0, "J"), "0 J");
  });
});

describe("formatJoules", () => {
  it("keeps kinds apart, measured first, estimated abbreviated", () => {
    assert.equal(formatJoules({}), "0 J");
    assert.equal(formatJoules({ estimated: 12.34 }), "12.3 J est");
    assert.equal(formatJoules({ estimated: 0.34, measured: 1.2 }), "1.2 J measured + 340 mJ est");
  });
});

describe("shortMeasurement", () => {
  it("takes the function and the energy per call from the summary", () => {
    assert.equal(shortMeasurement(report().lastMeasurement!), "squares 1.23 mJ/call");
  });

  it("says when measuring failed", () => {
    assert.equal(shortMeasurement({ function: "f", call: "f(1)", summary: "greencoder: measuring f failed: boom", energyKind: null }), "f failed");
  });
});

describe("ledgerSummary", () => {
  it("is the status bar's line", () => {
    assert.equal(ledgerSummary(report()), "12.3 J est · 5 completions · squares 1.23 mJ/call");
    assert.equal(ledgerSummary(report({ completions: 1, completionJoules: {}, lastMeasurement: null })), "0 J · 1 completion");
  });
});

describe("reportLines / reportMarkdown", () => {
  it("lists the ledger and the last measurement, and says what 'estimated' means", () => {
    const lines = reportLines(report());
    assert.equal(lines[0], "Model: ready");
    assert.match(lines[1], /^Completions: 5 \(1 cancelled\), 80 tokens, 2.5 s generating$/);
    assert.equal(lines[2], "Completion energy: 12.3 J est");
    assert.equal(lines[3], "Measurements: 1, energy 500 mJ est");
    assert.equal(lines[4], "Last measured: squares(2000)");
    assert.match(lines[5], /squares: 1.23 mJ/);
    assert.match(lines[6], /CPU time × watts per core/);
  });

  it("leaves out the estimate note when everything was measured", () => {
    const lines = reportLines(report({ completionJoules: { measured: 1 }, measuredJoules: {}, lastMeasurement: null }));
    assert.ok(!lines.some((line) => /watts per core/.test(line)));
  });

  it("renders Markdown with escaped values", () => {
    const text = reportMarkdown(report());
    assert.match(text, /^# greencoder energy report/);
    assert.match(text, /\| Completion energy \| 12\.3 J est \|/);
    assert.match(text, /## Last measurement: `squares\(2000\)`/);
    assert.match(text, /squares: 1\.23 mJ ± 45\.6 µJ per call/);
  });
});
