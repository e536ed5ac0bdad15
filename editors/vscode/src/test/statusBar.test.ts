import assert from "node:assert/strict";
import { afterEach, beforeEach, describe, it } from "node:test";

import { EnergyReport, parseReport } from "../report";
import { EnergyStatusBar, StatusItemLike, statusText, statusTooltip } from "../statusBar";
import { ACCEPTED_ESTIMATED, ACCEPTED_MEASURED, ENDPOINT, FAILED, FRESH_LEDGER, LEDGER, NOT_SIGNIFICANT } from "./samples";

function ledger(overrides: Record<string, unknown> = {}): EnergyReport {
  const parsed = parseReport({ ...LEDGER, ...overrides });
  assert.ok(parsed);
  return parsed;
}

const READY = ledger({ completionJoules: { estimated: 12.34 }, completions: 5, measurements: 0, lastMeasurement: null });

class FakeItem implements StatusItemLike {
  text = "";
  tooltip?: unknown;
  shown = 0;
  disposed = false;
  show(): void {
    this.shown += 1;
  }
  dispose(): void {
    this.disposed = true;
  }
}

describe("statusText", () => {
  it("tells the client's state", () => {
    assert.equal(statusText("starting", undefined), "$(loading~spin) greencoder: starting");
    assert.equal(statusText("stopped", READY), "$(circle-slash) greencoder: stopped");
    assert.equal(statusText("failed", undefined), "$(error) greencoder: server failed");
    assert.equal(statusText("running", undefined), "$(loading~spin) greencoder");
  });

  it("tells the model's state, then the ledger", () => {
    assert.equal(statusText("running", { ...READY, model: "loading" }), "$(loading~spin) greencoder: loading model");
    assert.equal(statusText("running", { ...READY, model: "failed" }), "$(warning) greencoder: model failed · 12.3 J est · 5 completions");
    assert.equal(statusText("running", READY), "$(zap) 12.3 J est · 5 completions");
  });

  it("adds the last measurement, from its numbers", () => {
    const measured = ledger();
    assert.equal(statusText("running", measured), "$(zap) 0 J measured + 1.39 J est · 3 completions · count_primes 2.57 mJ/call est");
    assert.match(statusTooltip("running", measured), /Measured code total: 26\.1 J est/);
    assert.equal(statusText("running", ledger({ lastMeasurement: FAILED })),
      "$(zap) 0 J measured + 1.39 J est · 3 completions · count_primes failed");
  });

  it("adds J per accepted character (est when estimated) and a power policy that is not full", () => {
    assert.equal(statusText("running", READY), "$(zap) 12.3 J est · 5 completions", "null J/char: nothing accepted");
    assert.equal(statusText("running", ledger(ACCEPTED_ESTIMATED)), "$(zap) 1.39 J est · 11.6 mJ/char est · 3 completions · 🔋 reduce");
    assert.equal(statusText("running", ledger(ACCEPTED_MEASURED)),
      "$(zap) 900 mJ measured · 7.5 mJ/char measured · 3 completions · 🔋 explicit");
    assert.equal(statusText("running", ledger({ ...ACCEPTED_ESTIMATED, power: { source: "battery", onBattery: "keep", inForce: "full" } })),
      "$(zap) 1.39 J est · 11.6 mJ/char est · 3 completions");
    const tooltip = statusTooltip("running", ledger(ACCEPTED_ESTIMATED));
    assert.match(tooltip, /Suggestions: 3 shown, 2 accepted, 120 characters accepted/);
    assert.match(tooltip, /Power: on battery; onBattery = reduce; in force: reduce/);
  });

  it("says endpoint energy is not measured here, with the server's own energy apart and no J/char", () => {
    assert.equal(statusText("running", ledger(ENDPOINT)),
      "$(zap) energy spent at the endpoint (not measured here) · server 12.3 mJ est · 3 completions");
    const tooltip = statusTooltip("running", ledger(ENDPOINT));
    assert.match(tooltip, /Completion energy: energy spent at the endpoint \(not measured here\) for 3 endpoint completions/);
    assert.match(tooltip, /This server's own energy: 12\.3 mJ est/);
    assert.match(tooltip, /Endpoint: 3 completions were generated at http:\/\/gpu-box:8000\/v1/);
    assert.doesNotMatch(tooltip, /\/char|Completion energy: 0 J/);
  });

  it("puts the error, the report and the comparison in the tooltip", () => {
    const tooltip = statusTooltip("failed", undefined, "spawn greencoder ENOENT");
    assert.match(tooltip, /greencoder language server: failed\nspawn greencoder ENOENT/);
    assert.match(statusTooltip("running", READY), /Completion energy: 12\.3 J est/);
    const compared = statusTooltip("running", ledger({ lastMeasurement: NOT_SIGNIFICANT }));
    assert.match(compared, /\+0\.8 % energy, not significant \(p = 0\.62\)/);
    assert.doesNotMatch(compared, /, significant/);
  });
});

describe("EnergyStatusBar", () => {
  // No timer may be involved: the status bar changes only when the server pushes a ledger.
  const saved = { setInterval: globalThis.setInterval, setTimeout: globalThis.setTimeout };
  let timersAsked = 0;
  beforeEach(() => {
    timersAsked = 0;
    globalThis.setInterval = ((..._args: unknown[]) => {
      timersAsked += 1;
      throw new Error("the status bar must not use setInterval");
    }) as unknown as typeof setInterval;
    globalThis.setTimeout = ((..._args: unknown[]) => {
      timersAsked += 1;
      throw new Error("the status bar must not use setTimeout");
    }) as unknown as typeof setTimeout;
  });
  afterEach(() => {
    globalThis.setInterval = saved.setInterval;
    globalThis.setTimeout = saved.setTimeout;
    assert.equal(timersAsked, 0, "a timer was asked for");
  });

  function setup(fetch: () => Promise<EnergyReport | undefined> = async () => undefined) {
    const item = new FakeItem();
    const bar = new EnergyStatusBar(item, fetch);
    return { item, bar };
  }

  it("shows itself at once, as starting", () => {
    const { item } = setup();
    assert.equal(item.shown, 1);
    assert.equal(item.text, "$(loading~spin) greencoder: starting");
  });

  it("follows the pushed ledger with no request and no timer", () => {
    let requests = 0;
    const { item, bar } = setup(async () => {
      requests += 1;
      return READY;
    });
    bar.setState("running");
    bar.update(parseReport(FRESH_LEDGER));
    assert.equal(item.text, "$(loading~spin) greencoder: loading model");
    bar.update(READY);
    assert.equal(item.text, "$(zap) 12.3 J est · 5 completions");
    bar.update(ledger());
    assert.equal(item.text, "$(zap) 0 J measured + 1.39 J est · 3 completions · count_primes 2.57 mJ/call est");
    assert.equal(bar.lastReport?.lastMeasurement?.function, "count_primes");
    assert.equal(requests, 0);
  });

  it("ignores pushes that are not ledgers, and pushes while the client is not running", () => {
    const { item, bar } = setup();
    bar.update(READY);
    assert.equal(item.text, "$(loading~spin) greencoder: starting");
    bar.setState("running");
    bar.update(READY);
    bar.update(parseReport({ nope: 1 }));
    assert.equal(item.text, "$(zap) 12.3 J est · 5 completions");
  });

  it("asks once at start, only while the server runs", async () => {
    let calls = 0;
    const { item, bar } = setup(async () => {
      calls += 1;
      return READY;
    });
    await bar.refresh();
    assert.equal(calls, 0);
    bar.setState("running");
    await bar.refresh();
    assert.equal(calls, 1);
    assert.equal(item.text, "$(zap) 12.3 J est · 5 completions");
    bar.setState("stopped");
    assert.equal(item.text, "$(circle-slash) greencoder: stopped");
    assert.equal(bar.lastReport, undefined);
  });

  it("keeps a push that arrives while the start-up request is in flight", async () => {
    let release: (report: EnergyReport) => void = () => undefined;
    const { item, bar } = setup(() => new Promise((resolve) => (release = resolve)));
    bar.setState("running");
    const asked = bar.refresh();
    assert.equal(bar.refresh(), asked, "one request at a time");
    bar.update(ledger());
    release(READY); // older than the push
    await asked;
    assert.equal(item.text, "$(zap) 0 J measured + 1.39 J est · 3 completions · count_primes 2.57 mJ/call est");
  });

  it("keeps the last report when a request fails", async () => {
    let fail = false;
    const { item, bar } = setup(async () => {
      if (fail) throw new Error("server busy");
      return READY;
    });
    bar.setState("running");
    await bar.refresh();
    fail = true;
    await bar.refresh();
    assert.equal(item.text, "$(zap) 12.3 J est · 5 completions");
  });

  it("disposes its item", () => {
    const { item, bar } = setup();
    bar.dispose();
    assert.equal(item.disposed, true);
  });
});
