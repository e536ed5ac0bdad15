import assert from "node:assert/strict";
import { describe, it } from "node:test";

import {
  formatComparison,
  formatPValue,
  formatPercent,
  measurementLine,
  measurementMarkdown,
  measurementShort,
  parseMeasurement,
} from "../measurement";
import { ESTIMATED, FAILED, MEASURED, NOT_COMPARED, NOT_SIGNIFICANT, SIGNIFICANT } from "./samples";

function parsed(value: unknown) {
  const measurement = parseMeasurement(value);
  assert.ok(measurement, "a measurement");
  return measurement;
}

describe("parseMeasurement", () => {
  it("reads the contract's object", () => {
    const m = parsed(MEASURED);
    assert.equal(m.status, "ok");
    assert.equal(m.energy?.mean, 0.00257);
    assert.equal(m.time?.sd, 9.3e-7);
    assert.equal(m.repeats, 26000);
    assert.equal(m.comparison, null);
  });

  it("rejects what is not a greencoder measurement", () => {
    for (const bad of [null, undefined, 3, "x", [], {}, { ...MEASURED, kind: "other" }, { ...MEASURED, function: 1 }]) {
      assert.equal(parseMeasurement(bad), undefined);
    }
  });

  it("treats 'ok' without numbers as a failure, never as a result", () => {
    const m = parsed({ ...MEASURED, energy: null });
    assert.equal(m.status, "failed");
    assert.match(measurementLine(m), /measuring failed/);
  });

  it("counts only an explicit `significant: true` as significant", () => {
    const m = parsed({ ...SIGNIFICANT, comparison: { ...SIGNIFICANT.comparison, significant: "yes" } });
    assert.equal(m.comparison?.significant, false);
  });
});

describe("numbers", () => {
  it("formats signed percentages with a real minus", () => {
    assert.equal(formatPercent(-12.5), "−12.5 %");
    assert.equal(formatPercent(3.14), "+3.1 %");
    assert.equal(formatPercent(-0.01), "+0.0 %");
  });

  it("formats p-values", () => {
    assert.equal(formatPValue(0.0001), "1e-4");
    assert.equal(formatPValue(0.000123), "1.2e-4");
    assert.equal(formatPValue(0.00123), "0.0012");
    assert.equal(formatPValue(0.62), "0.62");
    assert.equal(formatPValue(0.0052), "0.0052");
  });
});

describe("measurementLine (the diagnostic's message)", () => {
  it("builds energy and time per call with units from the numbers, and labels a measured value", () => {
    assert.equal(measurementLine(parsed(MEASURED)),
      "count_primes(5000): 2.57 mJ ± 7.9 µJ per call (measured (rapl)), 189 µs ± 930 ns per call, 10 runs × 26000 calls");
  });

  it("labels an estimate as estimated", () => {
    const line = measurementLine(parsed(ESTIMATED));
    assert.match(line, /2\.57 mJ ± 7\.9 µJ per call \(estimated\)/);
    assert.doesNotMatch(line, /measured/);
  });

  it("says a significant change is significant", () => {
    assert.equal(measurementLine(parsed(SIGNIFICANT)).split("; ")[1], "−12.5 % energy, significant (p = 1e-4)");
  });

  it("never renders a not-significant change as significant", () => {
    const comparison = measurementLine(parsed(NOT_SIGNIFICANT)).split("; ")[1];
    assert.equal(comparison, "+0.8 % energy, not significant (p = 0.62)");
    assert.doesNotMatch(comparison, /(^|[^t] )significant/);
    assert.ok(!/, significant/.test(comparison), comparison);
  });

  it("says why two measurements were not compared", () => {
    assert.equal(formatComparison(parsed(NOT_COMPARED).comparison!), "not compared (too few runs to compare (2 < 3))");
    assert.doesNotMatch(measurementLine(parsed(NOT_COMPARED)), /significant/);
  });

  it("gives a failed measurement's reason", () => {
    assert.equal(measurementLine(parsed(FAILED)), "count_primes(5000): measuring failed: NameError: name 'is_prime' is not defined");
  });
});

describe("measurementShort (the status bar's part)", () => {
  it("is energy per call with its kind, or 'failed'", () => {
    assert.equal(measurementShort(parsed(ESTIMATED)), "count_primes 2.57 mJ/call est");
    assert.equal(measurementShort(parsed(MEASURED)), "count_primes 2.57 mJ/call measured");
    assert.equal(measurementShort(parsed(FAILED)), "count_primes failed");
  });
});

describe("measurementMarkdown (the hover)", () => {
  it("lists the numbers, the kind, the runs, the sandbox and the comparison", () => {
    const text = measurementMarkdown(parsed(SIGNIFICANT));
    assert.match(text, /^\*\*greencoder\*\* — `count_primes\(5000\)`/);
    assert.match(text, /- energy per call: 2\.57 mJ \(sd 7\.9 µJ, cv 0\.3 %\) — \*\*estimated\*\* from CPU time/);
    assert.match(text, /- time per call: 189 µs \(sd 930 ns, cv 0\.5 %\)/);
    assert.match(text, /- runs kept: 10 \(outliers removed: 0\), 26000 calls per run/);
    assert.match(text, /- vs previous: −12\.5 % energy, significant \(p = 1e-4\) at α = 0\.005; time −11\.0 %/);
  });

  it("says 'not significant' for a change that is not", () => {
    const text = measurementMarkdown(parsed(NOT_SIGNIFICANT));
    assert.match(text, /- vs previous: \+0\.8 % energy, not significant/);
    assert.doesNotMatch(text, /, significant/);
  });

  it("says a measured value is measured, with its meter", () => {
    assert.match(measurementMarkdown(parsed(MEASURED)), /— measured \(rapl\)/);
    assert.doesNotMatch(measurementMarkdown(parsed(MEASURED)), /estimated/);
  });

  it("gives a failed measurement's reason", () => {
    assert.match(measurementMarkdown(parsed(FAILED)), /measuring failed: NameError: name 'is\\_prime' is not defined/);
  });
});
