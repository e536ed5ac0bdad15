import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { EnergyReport, parseReport } from "../report";
import { EnergyStatusBar, StatusItemLike, statusText, statusTooltip } from "../statusBar";

const READY = parseReport({
  completions: 5, cancelled: 0, completionTokens: 80, completionSeconds: 2.5, completionJoules: { estimated: 12.34 },
  measurements: 0, measuredJoules: {}, lastMeasurement: null, model: "ready",
}) as EnergyReport;

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

  it("adds the last measurement", () => {
    const measured: EnergyReport = { ...READY, measurements: 1, measuredJoules: { measured: 0.2 }, lastMeasurement: {
      function: "squares", call: "squares(2000)", summary: "squares: 1.23 mJ ± 4 µJ per call, …", energyKind: "measured" } };
    assert.equal(statusText("running", measured), "$(zap) 12.3 J est · 5 completions · squares 1.23 mJ/call");
    assert.match(statusTooltip("running", measured), /Measured code total: 200 mJ measured/);
  });

  it("puts the error and the report in the tooltip", () => {
    const tooltip = statusTooltip("failed", undefined, "spawn greencoder ENOENT");
    assert.match(tooltip, /greencoder language server: failed\nspawn greencoder ENOENT/);
    assert.match(statusTooltip("running", READY), /Completion energy: 12\.3 J est/);
  });
});

describe("EnergyStatusBar", () => {
  function setup(fetch: () => Promise<EnergyReport | undefined>) {
    const item = new FakeItem();
    const timers: Array<{ callback: () => void; ms: number; cleared: boolean }> = [];
    const bar = new EnergyStatusBar(item, fetch, {
      intervalMs: 5000,
      setInterval: (callback, ms) => {
        const timer = { callback, ms, cleared: false };
        timers.push(timer);
        return timer as unknown as ReturnType<typeof setInterval>;
      },
      clearInterval: (timer) => {
        (timer as unknown as { cleared: boolean }).cleared = true;
      },
    });
    return { item, timers, bar };
  }

  it("shows itself at once, as starting", () => {
    const { item } = setup(async () => READY);
    assert.equal(item.shown, 1);
    assert.equal(item.text, "$(loading~spin) greencoder: starting");
  });

  it("asks for the report only while the server runs", async () => {
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

  it("refreshes on its timer, one request at a time", async () => {
    let release: (report: EnergyReport) => void = () => undefined;
    let calls = 0;
    const { timers, bar } = setup(() => {
      calls += 1;
      return new Promise((resolve) => (release = resolve));
    });
    bar.setState("running");
    bar.start();
    assert.equal(timers.length, 1);
    assert.equal(timers[0].ms, 5000);
    timers[0].callback();
    timers[0].callback();
    assert.equal(calls, 1);
    release(READY);
    await bar.refresh();
    assert.equal(bar.lastReport, READY);
    bar.start(2000);
    assert.equal(timers[0].cleared, true);
    assert.equal(timers[1].ms, 2000);
    bar.dispose();
    assert.equal(timers[1].cleared, true);
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
    const { item, bar } = setup(async () => READY);
    bar.dispose();
    assert.equal(item.disposed, true);
  });
});
