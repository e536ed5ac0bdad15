/**
 * Sample data exactly as the server's contract describes it (Diagnostic.data of a measurement,
 * the ledger of `greencoder/energyReport` / `greencoder/ledger`): camelCase keys, SI units.
 */

export const MEASURED = {
  kind: "greencoder.measurement",
  function: "count_primes",
  call: "count_primes(5000)",
  uri: "file:///tmp/primes.py",
  status: "ok",
  error: null,
  energyKind: "measured",
  meter: "rapl",
  isolation: "bubblewrap + cgroup v2",
  energy: { mean: 0.00257, sd: 7.9e-6, cv: 0.003 },
  time: { mean: 0.000189, sd: 9.3e-7, cv: 0.005 },
  runs: 10,
  removed: 0,
  repeats: 26000,
  comparison: null,
};

export const ESTIMATED = { ...MEASURED, energyKind: "estimated", meter: "estimate" };

export const SIGNIFICANT = {
  ...ESTIMATED,
  comparison: { energyChangePct: -12.5, timeChangePct: -11.0, pValue: 0.0001, alpha: 0.005, significant: true, error: null },
};

export const NOT_SIGNIFICANT = {
  ...ESTIMATED,
  comparison: { energyChangePct: 0.8, timeChangePct: 1.1, pValue: 0.62, alpha: 0.005, significant: false, error: null },
};

export const NOT_COMPARED = {
  ...ESTIMATED,
  comparison: { energyChangePct: null, timeChangePct: null, pValue: null, alpha: 0.005, significant: false,
    error: "too few runs to compare (2 < 3)" },
};

export const FAILED = {
  kind: "greencoder.measurement",
  function: "count_primes",
  call: "count_primes(5000)",
  uri: "file:///tmp/primes.py",
  status: "failed",
  error: "NameError: name 'is_prime' is not defined",
  energyKind: null,
  meter: null,
  isolation: null,
  energy: null,
  time: null,
  runs: null,
  removed: null,
  repeats: null,
  comparison: null,
};

/** Three suggestions shown, none accepted yet: joules per accepted character are null. */
export const LEDGER = {
  model: "ready",
  completions: 3,
  cancelled: 1,
  completionTokens: 48,
  completionSeconds: 1.2,
  completionCpuSeconds: 2.5,
  completionJoules: { measured: 0.0, estimated: 1.39 },
  measurements: 1,
  measuredJoules: { estimated: 26.1 },
  lastMeasurement: ESTIMATED,
  prefillTokens: 1200,
  prefillTokensSaved: 3400,
  typedAhead: 7,
  suggestionsShown: 3,
  suggestionsAccepted: 0,
  charactersAccepted: 0,
  joulesPerAcceptedCharacter: { measured: null, estimated: null },
  power: { source: "ac", onBattery: "reduce", inForce: "full" },
};

/** 120 characters accepted from 2 suggestions, estimated joules only; on battery, reducing. */
export const ACCEPTED_ESTIMATED = {
  ...LEDGER,
  completionJoules: { estimated: 1.39 },
  suggestionsAccepted: 2,
  charactersAccepted: 120,
  joulesPerAcceptedCharacter: { estimated: 1.39 / 120 },
  power: { source: "battery", onBattery: "reduce", inForce: "reduce" },
  lastMeasurement: null,
};

/** Measured by a hardware meter (RAPL); on battery, only explicit completions. */
export const ACCEPTED_MEASURED = {
  ...ACCEPTED_ESTIMATED,
  completionJoules: { measured: 0.9 },
  joulesPerAcceptedCharacter: { measured: 0.9 / 120 },
  power: { source: "battery", onBattery: "explicit", inForce: "explicit" },
};

export const FRESH_LEDGER = {
  model: "loading",
  completions: 0,
  cancelled: 0,
  completionTokens: 0,
  completionSeconds: 0,
  completionCpuSeconds: 0,
  completionJoules: {},
  measurements: 0,
  measuredJoules: {},
  lastMeasurement: null,
  prefillTokens: 0,
  prefillTokensSaved: 0,
  typedAhead: 0,
  suggestionsShown: 0,
  suggestionsAccepted: 0,
  charactersAccepted: 0,
  joulesPerAcceptedCharacter: {},
  power: { source: "unknown", onBattery: "reduce", inForce: "full" },
};

/**
 * `serve --endpoint`: 3 completions generated at a remote endpoint, 120 characters accepted. No
 * completion joules (their energy was spent at the endpoint), this server's own CPU energy apart.
 */
export const ENDPOINT = {
  ...ACCEPTED_ESTIMATED,
  completionJoules: {},
  joulesPerAcceptedCharacter: {},
  endpointCompletions: 3,
  endpointEnergy: "3 completions were generated at http://gpu-box:8000/v1: their energy was spent there and is not measured here",
  serverJoules: { estimated: 0.0123 },
  power: { source: "ac", onBattery: "reduce", inForce: "full" },
  measurements: 0,
  measuredJoules: {},
};

/** A local session as the new server sends it: the endpoint keys present, with nothing in them. */
export const LOCAL_WITH_ENDPOINT_KEYS = {
  ...ACCEPTED_ESTIMATED,
  endpointCompletions: 0,
  endpointEnergy: null,
  serverJoules: {},
};
