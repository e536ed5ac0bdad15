import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { DiagnosticLike, measurementAt, withMeasurementMessage } from "../diagnostics";
import { ESTIMATED, FAILED, NOT_SIGNIFICANT } from "./samples";

type Range = { line: number; from: number; to: number };

function diagnostic(message: string, data: unknown, range: Range = { line: 4, from: 4, to: 16 }): DiagnosticLike<Range> {
  return { message, data, range, source: "greencoder" };
}

// What the server writes for editors that ignore `data`: the extension must not read it.
const PROSE = "count_primes: 1 J ± 1 J per call, significant";

describe("withMeasurementMessage", () => {
  it("writes the message from data, not from the server's prose", () => {
    const d = withMeasurementMessage(diagnostic(PROSE, NOT_SIGNIFICANT));
    assert.match(d.message, /^count_primes\(5000\): 2\.57 mJ ± 7\.9 µJ per call \(estimated\)/);
    assert.match(d.message, /not significant \(p = 0\.62\)$/);
    assert.doesNotMatch(d.message, /1 J/);
  });

  it("writes a failed measurement's message from data", () => {
    assert.equal(withMeasurementMessage(diagnostic(PROSE, FAILED)).message,
      "count_primes(5000): measuring failed: NameError: name 'is_prime' is not defined");
  });

  it("leaves other diagnostics alone", () => {
    for (const data of [undefined, { kind: "other" }, "x"]) {
      assert.equal(withMeasurementMessage(diagnostic("something else", data)).message, "something else");
    }
  });
});

describe("measurementAt", () => {
  const inside = (column: number) => (range: Range) => range.line === 4 && range.from <= column && column <= range.to;

  it("finds the measurement whose range holds the position", () => {
    const found = measurementAt([diagnostic("x", undefined), diagnostic(PROSE, ESTIMATED)], inside(6));
    assert.equal(found?.measurement.call, "count_primes(5000)");
    assert.equal(found?.diagnostic.range.from, 4);
  });

  it("finds nothing elsewhere or without data", () => {
    assert.equal(measurementAt([diagnostic(PROSE, ESTIMATED)], inside(30)), undefined);
    assert.equal(measurementAt([diagnostic(PROSE, undefined)], inside(6)), undefined);
  });
});
