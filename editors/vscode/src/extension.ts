/**
 * greencoder for VS Code: starts `greencoder serve` (stdio) with vscode-languageclient.
 *
 * - completions and inline suggestions (ghost text) come from the client's built-in
 *   `textDocument/completion` and `textDocument/inlineCompletion` support; each item carries the
 *   server's command `greencoder.acceptSuggestion`, which VS Code runs when the user accepts it (the
 *   client registers the server's commands), so the ledger counts accepted characters. Partial
 *   accepts (VS Code's "Accept Next Word/Line") are not reported: VS Code tells providers of them
 *   only through the proposed API `inlineCompletionsAdditions`
 *   (`InlineCompletionItemProvider.handleDidPartiallyAcceptCompletionItem`), which a published
 *   extension cannot enable, and vscode-languageclient's middleware has no hook for them;
 * - the server's code action "Measure energy of `f`" runs through the client's executeCommand
 *   support; "greencoder: Measure energy of function at cursor" sends the same command with the
 *   cursor's position; the result arrives as an Information diagnostic on the function's name,
 *   whose message and hover the extension writes from the diagnostic's `data` (numbers, not prose);
 * - the status bar shows the session's energy ledger: asked once (`greencoder/energyReport`) when
 *   the server starts, then as the server pushes it (`greencoder/ledger`) whenever it changes;
 * - `greencoder.*` settings reach the server as initializationOptions, `workspace/configuration`
 *   answers and `workspace/didChangeConfiguration` notifications (only the settings the user set;
 *   see settings.ts); changing the server command restarts it.
 */

import * as os from "node:os";
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";

import { measurementAt, withMeasurementMessage } from "./diagnostics";
import { measurementMarkdown } from "./measurement";
import {
  ENERGY_REPORT_REQUEST,
  EnergyReport,
  LEDGER_NOTIFICATION,
  parseReport,
  reportLines,
  reportMarkdown,
} from "./report";
import { RESTART_SETTINGS, SECTION, SettingsTracker, describeCommand, serverCommand } from "./settings";
import { EnergyStatusBar } from "./statusBar";

const MEASURE_COMMAND = "greencoder.measureEnergy";
const LANGUAGES = ["python", "cpp", "java"];

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel;
let statusBar: EnergyStatusBar;
/** "measuring f(…)…" in the status bar, until the ledger brings a new last measurement (at most 60 s: the
 * work-done progress shows longer runs and a cancelled one). */
let measuringMessage: vscode.Disposable | undefined;
/** The last measurement in the ledger, as JSON (to see when a new one arrives). */
let lastMeasurementSeen = "null";
/** The last diagnostics the server published, by document URI (for the measurement's hover). */
const published = new Map<string, vscode.Diagnostic[]>();
const tracker = new SettingsTracker();

function configuration(scope?: vscode.ConfigurationScope): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION, scope);
}

async function fetchReport(): Promise<EnergyReport | undefined> {
  if (!client || !client.isRunning()) return undefined;
  return parseReport(await client.sendRequest(ENERGY_REPORT_REQUEST, null));
}

function createClient(): LanguageClient {
  const { command, args } = serverCommand(configuration(), os.homedir());
  output.appendLine(`[greencoder] starting: ${describeCommand({ command, args })}`);
  // No `transport`: TransportKind.stdio would append `--stdio`, which `greencoder serve` does not
  // take; a plain executable talks LSP over its stdin/stdout anyway.
  const serverOptions: ServerOptions = { command, args };
  tracker.reset();
  published.clear();
  lastMeasurementSeen = "null";
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.map((language) => ({ scheme: "file", language })),
    initializationOptions: tracker.snapshot(configuration()),
    synchronize: { configurationSection: SECTION },
    outputChannel: output,
    middleware: {
      // The measurement's message and hover are written here from the diagnostic's `data`.
      // The client's diagnostics keep `data`; they are kept here for the hover as they arrive.
      handleDiagnostics: (uri, diagnostics, next) => {
        const shown = diagnostics.map(withMeasurementMessage);
        published.set(uri.toString(), shown);
        next(uri, shown);
      },
      provideHover: (document, position, token, next) => {
        const diagnostics = published.get(document.uri.toString()) ?? [];
        const found = measurementAt(diagnostics, (range: vscode.Range) => range.contains(position));
        if (!found) return next(document, position, token);
        const markdown = new vscode.MarkdownString(measurementMarkdown(found.measurement));
        return new vscode.Hover(markdown, found.diagnostic.range);
      },
      workspace: {
        // The server pulls section "greencoder": answer with the settings the user set only.
        configuration: async (params, token, next) => {
          const answers: unknown[] = [];
          for (const item of params.items) {
            if (item.section === SECTION) {
              const scope = item.scopeUri ? vscode.Uri.parse(item.scopeUri) : undefined;
              answers.push(tracker.snapshot(configuration(scope)));
            } else {
              const other = await next({ items: [item] }, token);
              answers.push(Array.isArray(other) ? other[0] : null);
            }
          }
          return answers;
        },
        // Likewise for the change notifications that `synchronize.configurationSection` sends.
        didChangeConfiguration: async (sections, next) => {
          if (!client || !sections || !sections.includes(SECTION)) return next(sections);
          await client.sendNotification(DidChangeConfigurationNotification.type, {
            settings: { [SECTION]: tracker.snapshot(configuration()) },
          });
        },
      },
    },
  };
  const created = new LanguageClient("greencoder", "greencoder", serverOptions, clientOptions);
  // Registered before start(): the client installs it on each connection it opens.
  created.onNotification(LEDGER_NOTIFICATION, (params: unknown) => {
    if (client !== created) return;
    const report = parseReport(params);
    statusBar.update(report);
    const last = JSON.stringify(report?.lastMeasurement ?? null);
    if (last !== lastMeasurementSeen) {
      lastMeasurementSeen = last;
      measuringMessage?.dispose();
      measuringMessage = undefined;
    }
  });
  created.onDidChangeState((event) => {
    if (client !== created) return; // a client being replaced or that failed to start
    if (event.newState === State.Running) {
      statusBar.setState("running");
      void statusBar.refresh(); // once, for the ledger as it is before the first push
    } else if (event.newState === State.Starting) statusBar.setState("starting");
    else statusBar.setState("stopped");
  });
  return created;
}

async function startClient(): Promise<void> {
  statusBar.setState("starting");
  let created: LanguageClient;
  try {
    created = createClient();
  } catch (error) {
    return reportStartFailure(error);
  }
  client = created;
  try {
    await created.start();
  } catch (error) {
    if (client === created) client = undefined;
    await created.dispose().catch(() => undefined);
    return reportStartFailure(error);
  }
  statusBar.setState("running");
  await statusBar.refresh();
}

async function reportStartFailure(error: unknown): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  statusBar.setState("failed", message);
  output.appendLine(`[greencoder] the language server did not start: ${message}`);
  const choice = await vscode.window.showErrorMessage(
    `greencoder: the language server did not start (${message}). Set greencoder.serverCommand or greencoder.pythonPath.`,
    "Open Settings",
    "Show Log",
  );
  if (choice === "Open Settings") await vscode.commands.executeCommand("workbench.action.openSettings", SECTION);
  if (choice === "Show Log") output.show(true);
}

async function stopClient(): Promise<void> {
  const running = client;
  client = undefined;
  if (!running) return;
  try {
    if (running.isRunning()) await running.stop(5000);
  } catch (error) {
    output.appendLine(`[greencoder] stopping the server: ${error instanceof Error ? error.message : String(error)}`);
  }
  await running.dispose().catch(() => undefined);
}

async function restart(): Promise<void> {
  await stopClient();
  await startClient();
}

async function measureAtCursor(): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || !LANGUAGES.includes(editor.document.languageId)) {
    void vscode.window.showWarningMessage("greencoder: open a Python, C++ or Java file and put the cursor in a function.");
    return;
  }
  if (!client || !client.isRunning()) {
    void vscode.window.showWarningMessage("greencoder: the language server is not running (greencoder: Restart server).");
    return;
  }
  // No save needed: the server measures the text it has (kept in sync by didChange), unsaved edits included.
  const position = editor.selection.active;
  const uri = client.code2ProtocolConverter.asUri(editor.document.uri);
  try {
    const answer = (await client.sendRequest(ExecuteCommandRequest.type, {
      command: MEASURE_COMMAND,
      arguments: [uri, { line: position.line, character: position.character }],
    })) as { function?: string; call?: string } | null;
    if (answer && answer.function) {
      measuringMessage?.dispose();
      measuringMessage = vscode.window.setStatusBarMessage(`$(pulse) greencoder: measuring ${answer.call || answer.function}…`, 60000);
    }
  } catch (error) {
    void vscode.window.showErrorMessage(`greencoder: ${error instanceof Error ? error.message : String(error)}`);
  }
}

async function showReport(): Promise<void> {
  if (!statusBar.lastReport) await statusBar.refresh(); // pushes keep it current once there is one
  const report = statusBar.lastReport;
  if (!report) {
    void vscode.window.showInformationMessage(
      client && client.isRunning() ? "greencoder: no energy report yet." : "greencoder: the language server is not running.",
    );
    return;
  }
  const [first, ...rest] = reportLines(report);
  const choice = await vscode.window.showInformationMessage(
    `greencoder energy report — ${first}`,
    { modal: true, detail: rest.join("\n") },
    "Open as Document",
  );
  if (choice === "Open as Document") {
    const document = await vscode.workspace.openTextDocument({ language: "markdown", content: reportMarkdown(report) });
    await vscode.window.showTextDocument(document, { preview: true });
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("greencoder", { log: true });
  const item = vscode.window.createStatusBarItem("greencoder.status", vscode.StatusBarAlignment.Right, 100);
  item.name = "greencoder energy";
  item.command = "greencoder.showReport";
  statusBar = new EnergyStatusBar(item, fetchReport);
  context.subscriptions.push(
    output,
    { dispose: () => statusBar.dispose() },
    vscode.commands.registerCommand("greencoder.measureAtCursor", measureAtCursor),
    vscode.commands.registerCommand("greencoder.showReport", showReport),
    vscode.commands.registerCommand("greencoder.restart", restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (RESTART_SETTINGS.some((key) => event.affectsConfiguration(key))) void restart();
    }),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  await stopClient();
}
