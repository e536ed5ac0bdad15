/**
 * The "Measure energy" diagnostic as the extension shows it: its message is rewritten from the
 * measurement in the diagnostic's `data` (vscode-languageclient keeps `data` on the diagnostics
 * it converts), and its hover is found by position. Pure: no runtime `vscode` import, so the unit
 * tests hand in plain objects.
 */

import { Measurement, measurementLine, parseMeasurement } from "./measurement";

/** The part of a (languageclient-converted) `vscode.Diagnostic` used here. */
export interface DiagnosticLike<R = unknown> {
  message: string;
  range: R;
  source?: string;
  data?: unknown;
}

/** The measurement a diagnostic carries in `data`, or undefined (not one of greencoder's). */
export function measurementOf(diagnostic: DiagnosticLike): Measurement | undefined {
  return parseMeasurement(diagnostic.data);
}

/** The diagnostic with its message written from its measurement (others unchanged). */
export function withMeasurementMessage<D extends DiagnosticLike>(diagnostic: D): D {
  const measurement = measurementOf(diagnostic);
  if (measurement) diagnostic.message = measurementLine(measurement);
  return diagnostic;
}

/** The first measurement diagnostic whose range `contains` accepts, with its measurement. */
export function measurementAt<R, D extends DiagnosticLike<R>>(
  diagnostics: readonly D[],
  contains: (range: R) => boolean,
): { diagnostic: D; measurement: Measurement } | undefined {
  for (const diagnostic of diagnostics) {
    const measurement = measurementOf(diagnostic);
    if (measurement && contains(diagnostic.range)) return { diagnostic, measurement };
  }
  return undefined;
}
