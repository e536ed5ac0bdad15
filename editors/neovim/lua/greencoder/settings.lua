-- Generated from greencoder/server/settings.py by `python -m greencoder.server.settings_schema --write`: do not edit.
-- Every setting `greencoder serve` reads, by its camelCase name (the server takes snake_case too).
return {
  'model',
  'adapter',
  'device',
  'dtype',
  'threads',
  'maxNewTokens',
  'contextTokens',
  'debounceMs',
  'onBattery',
  'instruction',
  'fim',
  'meter',
  'wattsPerCore',
  'benchRuns',
  'benchMinSeconds',
  'benchCooldown',
  'benchMemoryMib',
  'benchAlpha',
}
