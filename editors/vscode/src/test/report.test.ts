import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  EnergyReport, formatJoules, formatPerCharacter, formatQuantity, ledgerSummary, parseReport, powerShort, reportLines,
  reportMarkdown,
} from "../report";
import {
  ACCEPTED_ESTIMATED, ACCEPTED_MEASURED, ENDPOINT, FAILED, FRESH_LEDGER, LEDGER, LOCAL_WITH_ENDPOINT_KEYS, MEASURED, SIGNIFICANT,
} from "./samples";

function report(overrides: Record<string, unknown> = {}): EnergyReport {
  const parsed = parseReport({ ...LEDGER, ...overrides });
  assert.ok(parsed, "a report");
  return parsed;
}

describe("parseReport", () => {
  it("reads the ledger, its last measurement as data", () => {
    const parsed = report();
    assert.equal(parsed.completions, 3);
    assert.deepEqual(parsed.completionJoules, { measured: 0, estimated: 1.39 });
    assert.equal(parsed.lastMeasurement?.function, "count_primes");
    assert.equal(parsed.lastMeasurement?.energy?.mean, 0.00257);
    assert.equal(parsed.model, "ready");
  });

  it("reads a fresh session (no measurement yet, empty ledgers)", () => {
    const parsed = parseReport(FRESH_LEDGER);
    assert.ok(parsed);
    assert.equal(parsed.lastMeasurement, null);
    assert.deepEqual(parsed.completionJoules, {});
    assert.equal(parsed.model, "loading");
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

describe("formatQuantity / formatJoules", () => {
  it("uses SI prefixes and three significant digits", () => {
    assert.equal(formatQuantity(12.34, "J"), "12.3 J");
    assert.equal(formatQuantity(0.01234, "J"), "12.3 mJ");
    assert.equal(formatQuantity(4.5e-6, "J"), "4.5 µJ");
    assert.equal(formatQuantity(2e-12, "J"), "0.002 nJ");
    assert.equal(formatQuantity(1234, "J"), "1.23 kJ");
    assert.equal(formatQuantity(0, "J"), "0 J");
  });

  it("keeps kinds apart, measured first, estimated abbreviated", () => {
    assert.equal(formatJoules({}), "0 J");
    assert.equal(formatJoules({ estimated: 12.34 }), "12.3 J est");
    assert.equal(formatJoules({ estimated: 0.34, measured: 1.2 }), "1.2 J measured + 340 mJ est");
  });
});

describe("acceptance and power in the ledger", () => {
  it("reads the new figures, null joules per character included", () => {
    const parsed = report();
    assert.equal(parsed.suggestionsShown, 3);
    assert.equal(parsed.charactersAccepted, 0);
    assert.deepEqual(parsed.joulesPerAcceptedCharacter, { measured: null, estimated: null });
    assert.equal(parsed.completionCpuSeconds, 2.5);
    assert.deepEqual(parsed.power, { source: "ac", onBattery: "reduce", inForce: "full" });
  });

  it("tolerates a ledger without them (an older server) and odd values", () => {
    const old = parseReport({ completions: 1, joulesPerAcceptedCharacter: { estimated: "lots" }, power: { inForce: 3 } });
    assert.ok(old);
    assert.deepEqual(old.joulesPerAcceptedCharacter, {});
    assert.equal(old.power, null);
    assert.equal(old.completionCpuSeconds, null);
    assert.equal(ledgerSummary(old), "0 J · 1 completion");
    assert.equal(reportLines(old)[1], "Completions: 1 (0 cancelled), 0 tokens, 0 s generating");
  });

  it("says J per accepted character by kind, measured first, and nothing while none was accepted", () => {
    assert.equal(formatPerCharacter({ estimated: null, measured: null }), null);
    assert.equal(formatPerCharacter({}), null);
    assert.equal(formatPerCharacter({ estimated: 1.39 / 120 }), "11.6 mJ/char est");
    assert.equal(formatPerCharacter({ estimated: 0.0116, measured: 0.0075 }), "7.5 mJ/char measured + 11.6 mJ/char est");
  });

  it("marks a power policy only when it holds generation back", () => {
    assert.equal(powerShort(null), null);
    assert.equal(powerShort({ source: "ac", onBattery: "reduce", inForce: "full" }), null);
    assert.equal(powerShort({ source: "battery", onBattery: "keep", inForce: "full" }), null);
    assert.equal(powerShort({ source: "battery", onBattery: "reduce", inForce: "reduce" }), "🔋 reduce");
    assert.equal(powerShort({ source: "battery", onBattery: "explicit", inForce: "explicit" }), "🔋 explicit");
  });

  it("puts J per accepted character and the policy in the status line", () => {
    assert.equal(ledgerSummary(report(ACCEPTED_ESTIMATED)), "1.39 J est · 11.6 mJ/char est · 3 completions · 🔋 reduce");
    assert.equal(ledgerSummary(report(ACCEPTED_MEASURED)), "900 mJ measured · 7.5 mJ/char measured · 3 completions · 🔋 explicit");
  });

  it("lists shown, accepted, characters, J per character, prefill saved, typed-ahead and the policy", () => {
    const lines = reportLines(report(ACCEPTED_ESTIMATED));
    assert.deepEqual(lines.slice(0, 9), [
      "Model: ready",
      "Completions: 3 (1 cancelled), 48 tokens, 1.2 s generating, 2.5 s CPU",
      "Completion energy: 1.39 J est",
      "Suggestions: 3 shown, 2 accepted, 120 characters accepted",
      "Energy per accepted character: 11.6 mJ/char est",
      "Prompt tokens: 1200 read, 3400 reused from the cache",
      "Typed-ahead answers: 7 (no generation)",
      "Power: on battery; onBattery = reduce; in force: reduce",
      "Measurements: 1, energy 26.1 J est",
    ]);
    const markdown = reportMarkdown(report(ACCEPTED_MEASURED));
    assert.match(markdown, /\| Suggestions \| 3 shown, 2 accepted, 120 characters accepted \|/);
    assert.match(markdown, /\| Energy per accepted character \| 7\.5 mJ\/char measured \|/);
    assert.match(markdown, /\| Prompt tokens reused from the cache \| 3400 \|/);
    assert.match(markdown, /\| Typed-ahead answers \(no generation\) \| 7 \|/);
    assert.match(markdown, /\| Power \| on battery; onBattery = explicit; in force: explicit \|/);
  });
});

describe("ledgerSummary", () => {
  it("is the status bar's line, the measurement from its numbers", () => {
    assert.equal(ledgerSummary(report()), "0 J measured + 1.39 J est · 3 completions · count_primes 2.57 mJ/call est");
    assert.equal(ledgerSummary(report({ lastMeasurement: MEASURED })),
      "0 J measured + 1.39 J est · 3 completions · count_primes 2.57 mJ/call measured");
    assert.equal(ledgerSummary(report({ lastMeasurement: FAILED })), "0 J measured + 1.39 J est · 3 completions · count_primes failed");
    assert.equal(ledgerSummary(report({ completions: 1, completionJoules: {}, lastMeasurement: null })), "0 J · 1 completion");
  });
});

describe("reportLines / reportMarkdown", () => {
  it("lists the ledger and the last measurement, and says what 'estimated' means", () => {
    const lines = reportLines(report({ lastMeasurement: SIGNIFICANT }));
    assert.deepEqual(lines, [
      "Model: ready",
      "Completions: 3 (1 cancelled), 48 tokens, 1.2 s generating, 2.5 s CPU",
      "Completion energy: 0 J measured + 1.39 J est",
      "Suggestions: 3 shown, 0 accepted, 0 characters accepted",
      "Energy per accepted character: n/a (no character accepted yet)",
      "Prompt tokens: 1200 read, 3400 reused from the cache",
      "Typed-ahead answers: 7 (no generation)",
      "Power: on AC power; onBattery = reduce; in force: full",
      "Measurements: 1, energy 26.1 J est",
      "Last measured: count_primes(5000)",
      "  count_primes(5000): 2.57 mJ ± 7.9 µJ per call (estimated), 189 µs ± 930 ns per call, 10 runs × 26000 calls; " +
        "−12.5 % energy, significant (p = 1e-4)",
      "Estimated energy is CPU time × watts per core: no hardware energy counter was used for it.",
    ]);
  });

  it("leaves out the estimate note when everything was measured", () => {
    const lines = reportLines(report({ completionJoules: { measured: 1 }, measuredJoules: { measured: 2 }, lastMeasurement: MEASURED }));
    assert.ok(!lines.some((line) => /watts per core/.test(line)), lines.join("\n"));
    assert.match(lines[10], /per call \(measured \(rapl\)\)/);
  });

  it("reports a failed measurement", () => {
    const lines = reportLines(report({ lastMeasurement: FAILED }));
    assert.equal(lines[10], "  count_primes(5000): measuring failed: NameError: name 'is_prime' is not defined");
  });

  it("renders Markdown with escaped values", () => {
    const text = reportMarkdown(report());
    assert.match(text, /^# greencoder energy report/);
    assert.match(text, /\| Completion energy \| 0 J measured \+ 1\.39 J est \|/);
    assert.match(text, /## Last measurement: `count_primes\(5000\)`/);
    assert.match(text, /count\\_primes\(5000\): 2\.57 mJ ± 7\.9 µJ per call \(estimated\)/);
  });
});

describe("completions generated at an endpoint (serve --endpoint)", () => {
  it("reads the endpoint keys, and their absence (an older server, a local session)", () => {
    const parsed = report(ENDPOINT);
    assert.equal(parsed.endpointCompletions, 3);
    assert.match(parsed.endpointEnergy ?? "", /not measured here/);
    assert.deepEqual(parsed.serverJoules, { estimated: 0.0123 });
    const old = report();
    assert.equal(old.endpointCompletions, 0);
    assert.equal(old.endpointEnergy, null);
    assert.deepEqual(old.serverJoules, {});
  });

  it("says the energy was spent at the endpoint, never 0 J, and shows the server's own energy apart", () => {
    assert.equal(ledgerSummary(report(ENDPOINT)),
      "energy spent at the endpoint (not measured here) · server 12.3 mJ est · 3 completions");
    const lines = reportLines(report(ENDPOINT));
    assert.deepEqual(lines.slice(0, 7), [
      "Model: ready",
      "Completions: 3 (1 cancelled), 48 tokens, 1.2 s generating, 2.5 s CPU",
      "Completion energy: energy spent at the endpoint (not measured here) for 3 endpoint completions",
      "This server's own energy: 12.3 mJ est (building prompts, HTTP; not the generation)",
      "Endpoint: 3 completions were generated at http://gpu-box:8000/v1: their energy was spent there and is not measured here",
      "Suggestions: 3 shown, 2 accepted, 120 characters accepted",
      "Energy per accepted character: n/a: energy spent at the endpoint (not measured here)",
    ]);
    assert.ok(!lines.some((line) => /Completion energy: 0 J/.test(line)), lines.join("\n"));
    assert.match(lines.at(-1) ?? "", /Estimated energy is CPU time × watts per core/, "the server's estimate is labelled");
    const markdown = reportMarkdown(report(ENDPOINT));
    assert.match(markdown, /\| Completion energy \| energy spent at the endpoint \(not measured here\) for 3 endpoint completions \|/);
    assert.match(markdown, /\| This server's own energy \| 12\.3 mJ est \(building prompts, HTTP; not the generation\) \|/);
    assert.match(markdown, /\| Energy per accepted character \| n\/a: energy spent at the endpoint \(not measured here\) \|/);
  });

  it("labels the server's energy by the kind the data says", () => {
    assert.equal(ledgerSummary(report({ ...ENDPOINT, serverJoules: { measured: 0.5 } })),
      "energy spent at the endpoint (not measured here) · server 500 mJ measured · 3 completions");
    const lines = reportLines(report({ ...ENDPOINT, serverJoules: { measured: 0.5 } }));
    assert.ok(!lines.some((line) => /watts per core/.test(line)), lines.join("\n"));
  });

  it("never shows J per accepted character for endpoint completions, even if a server sent one", () => {
    const odd = report({ ...ENDPOINT, joulesPerAcceptedCharacter: { estimated: 0.0123 / 120 } });
    assert.doesNotMatch(ledgerSummary(odd), /\/char/);
    assert.ok(!reportLines(odd).some((line) => /\/char/.test(line)), reportLines(odd).join("\n"));
  });

  it("keeps local completions' joules and labels J per character as local only when both kinds ran", () => {
    const mixed = report({ ...ENDPOINT, completions: 5, endpointCompletions: 3, completionJoules: { estimated: 1.39 },
      joulesPerAcceptedCharacter: { estimated: 1.39 / 120 } });
    assert.equal(ledgerSummary(mixed),
      "1.39 J est local · energy spent at the endpoint (not measured here) · server 12.3 mJ est · 11.6 mJ/char est (local only) · 5 completions");
    const lines = reportLines(mixed);
    assert.equal(lines[2], "Completion energy: 1.39 J est for 2 local completions; energy spent at the endpoint (not measured here) for 3 endpoint completions");
    assert.equal(lines[6], "Energy per accepted character: 11.6 mJ/char est (local completions only)");
  });

  it("leaves a local session's text as it was", () => {
    const local = report(LOCAL_WITH_ENDPOINT_KEYS);
    const before = report(ACCEPTED_ESTIMATED);
    assert.equal(ledgerSummary(local), "1.39 J est · 11.6 mJ/char est · 3 completions · 🔋 reduce");
    assert.deepEqual(reportLines(local), reportLines(before));
    assert.equal(reportMarkdown(local), reportMarkdown(before));
  });
});
