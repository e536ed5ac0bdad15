/**
 * The extension's settings: how to start the server, and which `greencoder.*` values reach it.
 *
 * Pure (no runtime `vscode` import) so the unit tests run under plain Node.
 *
 * Only the settings the user has set (in user, workspace or folder settings) are sent to the
 * server, so options given on the server's command line (e.g. `greencoder serve --device cpu` in
 * `greencoder.serverCommand`) stay in force unless a setting overrides them. A setting the user
 * removes again is sent once more with its default value, so the server forgets the override.
 */

import { SERVER_SETTING_KEYS } from "./serverSettings";

/** The server's settings, by their VS Code name (generated from the server's schema). */
export { SERVER_SETTING_KEYS };

export type ServerSettingKey = (typeof SERVER_SETTING_KEYS)[number];
export type ServerSettings = Partial<Record<ServerSettingKey, unknown>>;

export const SECTION = "greencoder";
export const DEFAULT_SERVER_COMMAND: readonly string[] = ["greencoder", "serve"];

/** What `WorkspaceConfiguration.inspect` returns (the fields used here). */
export interface Inspection<T> {
  defaultValue?: T;
  globalValue?: T;
  workspaceValue?: T;
  workspaceFolderValue?: T;
  defaultLanguageValue?: T;
  globalLanguageValue?: T;
  workspaceLanguageValue?: T;
  workspaceFolderLanguageValue?: T;
}

/** The part of `vscode.WorkspaceConfiguration` (section "greencoder") used here. */
export interface ConfigurationLike {
  get<T>(key: string): T | undefined;
  inspect<T>(key: string): Inspection<T> | undefined;
}

/** Whether the user set `key` anywhere (user, workspace, folder, or a language override). */
export function isSetByUser(config: ConfigurationLike, key: string): boolean {
  const seen = config.inspect<unknown>(key);
  if (!seen) return false;
  return [
    seen.globalValue,
    seen.workspaceValue,
    seen.workspaceFolderValue,
    seen.globalLanguageValue,
    seen.workspaceLanguageValue,
    seen.workspaceFolderLanguageValue,
  ].some((value) => value !== undefined);
}

/**
 * The server settings the user set, as the server reads them (camelCase keys; `null` and `""`
 * mean "the server's default" for model, adapter, threads and wattsPerCore).
 */
export function userServerSettings(config: ConfigurationLike): ServerSettings {
  const values: ServerSettings = {};
  for (const key of SERVER_SETTING_KEYS) {
    if (isSetByUser(config, key)) values[key] = config.get<unknown>(key) ?? null;
  }
  return values;
}

/**
 * Remembers which keys went to the server, so a setting the user removes is sent once more with
 * its default value (the server only applies the keys it is given).
 */
export class SettingsTracker {
  private readonly sent = new Set<ServerSettingKey>();

  snapshot(config: ConfigurationLike): ServerSettings {
    const values = userServerSettings(config);
    for (const key of this.sent) {
      if (!(key in values)) values[key] = config.get<unknown>(key) ?? null;
    }
    for (const key of Object.keys(values) as ServerSettingKey[]) this.sent.add(key);
    return values;
  }

  /** A new server process starts from its command-line defaults again. */
  reset(): void {
    this.sent.clear();
  }
}

export interface ServerCommand {
  command: string;
  args: string[];
}

function expandHome(path: string, home: string | undefined): string {
  if (home && (path === "~" || path.startsWith("~/"))) return home + path.slice(1);
  return path;
}

/**
 * The program and arguments that start the server: `<pythonPath> -m greencoder serve` when
 * `greencoder.pythonPath` is set, else `greencoder.serverCommand` (default `greencoder serve`).
 * Throws an Error naming the setting when it is unusable.
 */
export function serverCommand(config: ConfigurationLike, home?: string): ServerCommand {
  const python = config.get<unknown>("pythonPath");
  if (typeof python === "string" && python.trim() !== "") {
    return { command: expandHome(python.trim(), home), args: ["-m", "greencoder", "serve"] };
  }
  const configured = config.get<unknown>("serverCommand") ?? DEFAULT_SERVER_COMMAND;
  if (!Array.isArray(configured) || configured.length === 0 || !configured.every((part) => typeof part === "string")) {
    throw new Error(`greencoder.serverCommand must be a non-empty array of strings, e.g. ["greencoder", "serve"]; got ${JSON.stringify(configured)}`);
  }
  const [command, ...args] = configured as string[];
  if (command.trim() === "") throw new Error("greencoder.serverCommand: the program (its first item) is empty");
  return { command: expandHome(command, home), args };
}

/** A command line for messages and the log (arguments with spaces quoted). */
export function describeCommand({ command, args }: ServerCommand): string {
  return [command, ...args].map((part) => (/[\s"']/.test(part) || part === "" ? JSON.stringify(part) : part)).join(" ");
}

/** Settings whose change needs a new server process (the others reach the running one). */
export const RESTART_SETTINGS = ["serverCommand", "pythonPath"].map((key) => `${SECTION}.${key}`);
