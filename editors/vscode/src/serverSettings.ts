// Generated from greencoder/server/settings.py by `python -m greencoder.server.settings_schema --write`: do not edit.

/** The server's settings, by their VS Code name (camelCase, under `greencoder.`). */
export const SERVER_SETTING_KEYS = [
  "model",
  "adapter",
  "device",
  "dtype",
  "threads",
  "maxNewTokens",
  "contextTokens",
  "debounceMs",
  "onBattery",
  "instruction",
  "fim",
  "meter",
  "wattsPerCore",
  "benchRuns",
  "benchMinSeconds",
  "benchCooldown",
  "benchMemoryMib",
  "benchAlpha",
] as const;
