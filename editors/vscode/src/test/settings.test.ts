import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";

import {
  ConfigurationLike,
  Inspection,
  RESTART_SETTINGS,
  SERVER_SETTING_KEYS,
  SettingsTracker,
  describeCommand,
  serverCommand,
  userServerSettings,
} from "../settings";

/** A fake `greencoder` configuration section: package.json defaults plus user values. */
function fakeConfig(user: Record<string, unknown>, defaults: Record<string, unknown> = DEFAULTS): ConfigurationLike {
  return {
    get<T>(key: string): T | undefined {
      return (key in user ? user[key] : defaults[key]) as T | undefined;
    },
    inspect<T>(key: string): Inspection<T> | undefined {
      if (!(key in defaults) && !(key in user)) return undefined;
      return { defaultValue: defaults[key] as T, globalValue: key in user ? (user[key] as T) : undefined };
    },
  };
}

const packageJson = JSON.parse(readFileSync(join(__dirname, "..", "..", "package.json"), "utf8")) as {
  contributes: { configuration: { properties: Record<string, { default: unknown }> } };
};
const PROPERTIES = packageJson.contributes.configuration.properties;
const DEFAULTS: Record<string, unknown> = Object.fromEntries(
  Object.entries(PROPERTIES).map(([key, spec]) => [key.replace(/^greencoder\./, ""), spec.default]),
);

describe("package.json", () => {
  it("contributes a setting for every server setting, plus the server command and the Python path", () => {
    for (const key of SERVER_SETTING_KEYS) assert.ok(`greencoder.${key}` in PROPERTIES, key);
    assert.deepEqual(DEFAULTS.serverCommand, ["greencoder", "serve"]);
    assert.equal(DEFAULTS.pythonPath, "");
    // The status bar follows the server's pushed ledger: no refresh interval to set.
    assert.ok(!("greencoder.statusRefreshSeconds" in PROPERTIES));
  });

  it("uses the server's own defaults", () => {
    // greencoder/server/settings.py: ServerSettings
    assert.deepEqual(
      Object.fromEntries(SERVER_SETTING_KEYS.map((key) => [key, DEFAULTS[key]])),
      {
        model: "", adapter: "", device: "auto", dtype: "auto", threads: null, maxNewTokens: 128, contextTokens: 1024,
        debounceMs: null, onBattery: "reduce", instruction: false, fim: true, meter: "auto", wattsPerCore: null, benchRuns: 10,
        benchMinSeconds: 5, benchCooldown: 5, benchMemoryMib: 1024, benchAlpha: 0.005,
      },
    );
  });
});

describe("userServerSettings", () => {
  it("sends nothing when the user set nothing, so the server's command-line options stay", () => {
    assert.deepEqual(userServerSettings(fakeConfig({})), {});
  });

  it("sends the settings the user set, under their camelCase names, and never the client-only ones", () => {
    const config = fakeConfig({ model: "/models/tiny", debounceMs: 0, maxNewTokens: 16, benchRuns: 8, meter: "estimate",
      serverCommand: ["python", "-m", "greencoder", "serve"], pythonPath: "/usr/bin/python3" });
    assert.deepEqual(userServerSettings(config), { model: "/models/tiny", debounceMs: 0, maxNewTokens: 16, benchRuns: 8, meter: "estimate" });
  });

  it("counts workspace, folder and language-specific values as set", () => {
    const config: ConfigurationLike = {
      get: <T>(key: string) => ({ device: "cpu", fim: false, threads: 2 } as Record<string, unknown>)[key] as T,
      inspect: <T>(key: string) => ({
        device: { workspaceValue: "cpu" }, fim: { workspaceFolderValue: false }, threads: { globalLanguageValue: 2 },
      } as Record<string, Inspection<unknown>>)[key] as Inspection<T> | undefined,
    };
    assert.deepEqual(userServerSettings(config), { device: "cpu", fim: false, threads: 2 });
  });

  it("sends an explicit null (the server's default) as null", () => {
    assert.deepEqual(userServerSettings(fakeConfig({ threads: null, wattsPerCore: null })), { threads: null, wattsPerCore: null });
  });
});

describe("SettingsTracker", () => {
  it("sends a removed setting once more with its default, so the server drops the override", () => {
    const tracker = new SettingsTracker();
    assert.deepEqual(tracker.snapshot(fakeConfig({ benchRuns: 3 })), { benchRuns: 3 });
    assert.deepEqual(tracker.snapshot(fakeConfig({})), { benchRuns: 10 });
    assert.deepEqual(tracker.snapshot(fakeConfig({ debounceMs: 5 })), { benchRuns: 10, debounceMs: 5 });
  });

  it("forgets what it sent when a new server starts", () => {
    const tracker = new SettingsTracker();
    tracker.snapshot(fakeConfig({ benchRuns: 3 }));
    tracker.reset();
    assert.deepEqual(tracker.snapshot(fakeConfig({})), {});
  });
});

describe("serverCommand", () => {
  it("defaults to `greencoder serve`", () => {
    assert.deepEqual(serverCommand(fakeConfig({})), { command: "greencoder", args: ["serve"] });
  });

  it("takes greencoder.serverCommand as program and arguments", () => {
    const config = fakeConfig({ serverCommand: ["/venv/bin/python", "-m", "greencoder", "serve", "--device", "cpu"] });
    assert.deepEqual(serverCommand(config), { command: "/venv/bin/python", args: ["-m", "greencoder", "serve", "--device", "cpu"] });
  });

  it("prefers greencoder.pythonPath: <python> -m greencoder serve", () => {
    const config = fakeConfig({ pythonPath: " /venv/bin/python ", serverCommand: ["other"] });
    assert.deepEqual(serverCommand(config), { command: "/venv/bin/python", args: ["-m", "greencoder", "serve"] });
  });

  it("expands ~ in the program", () => {
    assert.equal(serverCommand(fakeConfig({ pythonPath: "~/venv/bin/python" }), "/home/me").command, "/home/me/venv/bin/python");
    assert.equal(serverCommand(fakeConfig({ serverCommand: ["~/bin/greencoder", "serve"] }), "/home/me").command, "/home/me/bin/greencoder");
  });

  it("rejects an unusable serverCommand with a message naming the setting", () => {
    for (const bad of [[], "greencoder serve", [1, 2], [""]]) {
      assert.throws(() => serverCommand(fakeConfig({ serverCommand: bad })), /greencoder\.serverCommand/);
    }
  });

  it("describes a command line with quoting where needed", () => {
    assert.equal(describeCommand({ command: "/a b/python", args: ["-m", "greencoder", "serve"] }), '"/a b/python" -m greencoder serve');
  });

  it("restarts the server for the settings that change its process only", () => {
    assert.deepEqual(RESTART_SETTINGS, ["greencoder.serverCommand", "greencoder.pythonPath"]);
  });
});
