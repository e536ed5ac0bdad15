/** Numbers with SI units for every text the extension shows. Pure: no `vscode` import. */

const PREFIXES: ReadonlyArray<[number, string]> = [[1e3, "k"], [1, ""], [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"]];

/** `value` with an SI prefix and three significant digits: 0.0123 J → "12.3 mJ". */
export function formatQuantity(value: number, unit: string): string {
  if (!Number.isFinite(value)) return `${value} ${unit}`;
  if (value === 0) return `0 ${unit}`;
  for (const [scale, prefix] of PREFIXES) {
    if (Math.abs(value) >= scale || scale === 1e-9) {
      return `${Number((value / scale).toPrecision(3))} ${prefix}${unit}`;
    }
  }
  return `${value} ${unit}`;
}
