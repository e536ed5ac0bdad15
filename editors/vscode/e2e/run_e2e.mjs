// End-to-end check of the greencoder extension in a real VS Code (code-server) with headless
// Chromium, driven by playwright-core. tests/test_editor_vscode.py starts code-server with the
// packaged extension installed and the settings written, then runs:
//
//   node run_e2e.mjs --url http://127.0.0.1:PORT --folder DIR --file squares.py \
//        --line 9 --measure-line 6 --function squares --screenshot OUT.png \
//        [--tooling /opt/greencoder-e2e] [--chromium /usr/bin/chromium] [--timeout 300]
//
// Steps: open the folder and the file; wait for the status bar item to show the ledger (server up,
// model ready); type inside the function and wait for ghost text (inline suggestion); accept it
// with Tab and wait for the joules per accepted character in the status bar; revert the file; run "greencoder: Measure energy of function at cursor" from the command palette (F1); wait
// for the measurement in the status bar ("f 1.2 mJ/call est", pushed by the server's
// greencoder/ledger notification), in the Problems panel and in the hover on the function's name
// (both written by the extension from the diagnostic's data: "f(2000): … per call (estimated)");
// measure again and find the comparison ("−3.1 % energy, not significant (p = 0.42)");
// take screenshots (OUT.png at the end, OUT-inline.png with the ghost text).
// Prints one JSON line (what it saw, and timings) and exits 0 when every check passed.

import { createRequire } from "node:module";
import { join, resolve } from "node:path";

function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 1) {
    if (!argv[i].startsWith("--")) throw new Error(`unexpected argument ${argv[i]}`);
    args[argv[i].slice(2)] = argv[i + 1];
    i += 1;
  }
  for (const name of ["url", "folder", "file", "screenshot"]) {
    if (!args[name]) throw new Error(`--${name} is required`);
  }
  return {
    url: args.url.replace(/\/$/, ""),
    folder: resolve(args.folder),
    file: args.file,
    line: Number(args.line ?? 9),
    measureLine: Number(args["measure-line"] ?? 6),
    functionName: args.function ?? "",
    screenshot: resolve(args.screenshot),
    tooling: args.tooling ?? process.env.GREENCODER_E2E_DIR ?? "/opt/greencoder-e2e",
    chromium: args.chromium ?? "/usr/bin/chromium",
    timeoutMs: Number(args.timeout ?? 300) * 1000,
  };
}

const options = parseArgs(process.argv.slice(2));
const require = createRequire(join(options.tooling, "package.json"));
const { chromium } = require("playwright-core");

const started = Date.now();
const seen = { checks: {}, timings: {}, statusTexts: [], notifications: [] };
const elapsed = () => Math.round((Date.now() - started) / 100) / 10;
const mark = (name) => { seen.timings[name] = elapsed(); };
const log = (message) => process.stderr.write(`[e2e ${elapsed()}s] ${message}\n`);

// Whole-run guard: a hung step still ends the run (and the test) with what was seen.
const guard = setTimeout(() => finish(new Error(`the run took longer than ${options.timeoutMs / 1000}s`)), options.timeoutMs);

let browser;
let page;
let finishing = false;

async function finish(error) {
  if (finishing) return;
  finishing = true;
  clearTimeout(guard);
  if (error) seen.error = String(error && error.stack ? error.stack.split("\n").slice(0, 3).join(" | ") : error);
  try {
    if (page) {
      seen.notifications = await notifications();
      if (!seen.screenshot) {  // a failed run: show where it stopped
        await page.screenshot({ path: options.screenshot, timeout: 15000 });
        seen.screenshot = options.screenshot;
      }
    }
  } catch (shotError) {
    seen.screenshotError = String(shotError);
  }
  try {
    if (browser) await browser.close();
  } catch {
    // already gone
  }
  seen.seconds = elapsed();
  seen.ok = !error && Object.values(seen.checks).every(Boolean);
  process.stdout.write(JSON.stringify(seen) + "\n");
  process.exit(seen.ok ? 0 : 1);
}

async function notifications() {
  return page.locator(".notification-list-item-message").allInnerTexts().catch(() => []);
}

/** The greencoder status bar item's text ("" while it is not there). */
async function statusText() {
  const items = page.locator(".statusbar-item").filter({ hasText: /greencoder|completion/ });
  const texts = await items.allInnerTexts().catch(() => []);
  return texts.map((text) => text.trim()).find((text) => /greencoder|completion/.test(text)) ?? "";
}

async function waitFor(description, probe, timeoutMs, intervalMs = 250) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await page.waitForTimeout(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${description}`);
}

async function runCommand(title) {
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 15000 });
  await input.fill(`>${title}`);
  // Click the row whose label is the command (Enter could run whichever row still has the focus
  // while the list is being filtered).
  const row = page.locator(`.quick-input-list .monaco-list-row[aria-label^=${JSON.stringify(title)}]`).first();
  await row.waitFor({ state: "visible", timeout: 15000 });
  await row.click();
  await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 15000 }).catch(() => undefined);
}

async function goToLine(line, column) {
  // Quick access with ":" is "Go to Line/Column".
  await page.keyboard.press("F1");
  const input = page.locator(".quick-input-widget input");
  await input.waitFor({ state: "visible", timeout: 15000 });
  await input.fill(`:${line}:${column}`);
  await page.waitForTimeout(300);
  await page.keyboard.press("Enter");
  await page.locator(".quick-input-widget").waitFor({ state: "hidden", timeout: 15000 });
  const where = await page.locator(".statusbar-item").filter({ hasText: /^Ln \d+, Col \d+/ }).first().innerText().catch(() => "");
  if (where && !where.startsWith(`Ln ${line}, Col ${column}`)) log(`cursor at ${where}, wanted line ${line} column ${column}`);
}

async function ghostText() {
  const parts = await page.locator(".monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text, .monaco-editor .ghost-text-decoration-preview")
    .allTextContents().catch(() => []);
  const text = parts.join("");
  return text.trim() ? text : "";
}

async function main() {
  browser = await chromium.launch({
    executablePath: options.chromium,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  page = await context.newPage();
  page.on("pageerror", (error) => log(`page error: ${error.message}`));

  log(`opening ${options.url}/?folder=${options.folder}`);
  await page.goto(`${options.url}/?folder=${encodeURIComponent(options.folder)}`, { timeout: 60000 });
  await page.locator(".monaco-workbench").waitFor({ state: "visible", timeout: 90000 });
  mark("workbench");
  seen.checks.workbench = true;
  seen.title = await page.title();

  // Open the file with Quick Open.
  await waitFor("the explorer", async () => (await page.locator(".explorer-folders-view, .monaco-list").count()) > 0, 60000);
  await page.keyboard.press("Control+P");
  const quickInput = page.locator(".quick-input-widget input");
  await quickInput.waitFor({ state: "visible", timeout: 15000 });
  await quickInput.fill(options.file);
  await page.locator(".quick-input-list .monaco-list-row").filter({ hasText: options.file }).first()
    .waitFor({ state: "visible", timeout: 30000 });
  await page.keyboard.press("Enter");
  await page.locator(".tabs-container .tab").filter({ hasText: options.file }).first().waitFor({ timeout: 30000 });
  await page.locator(".monaco-editor .view-lines").first().waitFor({ state: "visible", timeout: 30000 });
  mark("fileOpen");
  seen.checks.fileOpen = true;

  // The extension activates on Python; its status bar item shows the ledger once the model is ready.
  seen.statusFirst = await waitFor("the greencoder status bar item", statusText, 60000);
  mark("statusItem");
  seen.statusReady = await waitFor("the model (status bar showing the ledger)", async () => {
    const text = await statusText();
    if (text && !seen.statusTexts.includes(text)) seen.statusTexts.push(text);
    return /completions?\b/.test(text) ? text : "";
  }, 180000, 500);
  mark("modelReady");
  seen.checks.serverReady = true;

  // Inline suggestion: type inside the function (the blank indented line) and wait for ghost text.
  await page.locator(".monaco-editor .view-lines").first().click();
  await goToLine(options.line, 5);
  await page.keyboard.type("total", { delay: 60 });
  let ghost = await waitFor("ghost text", ghostText, 30000).catch(() => "");
  if (!ghost) {
    log("no ghost text from typing; asking explicitly (editor.action.inlineSuggest.trigger)");
    await page.keyboard.press("Alt+Backslash");
    ghost = await waitFor("ghost text (explicit trigger)", ghostText, 30000).catch(() => "");
  }
  if (!ghost) {
    await runCommand("Trigger Inline Suggestion").catch(() => undefined);
    ghost = await waitFor("ghost text (command)", ghostText, 30000).catch(() => "");
  }
  seen.ghostText = ghost;
  seen.checks.ghostText = Boolean(ghost);
  mark("ghostText");
  if (ghost) {
    await page.screenshot({ path: options.screenshot.replace(/\.png$/, "-inline.png") }).catch(() => undefined);
  }
  seen.statusAfterCompletion = await waitFor("a completion in the ledger", async () => {
    const text = await statusText();
    return /\b[1-9]\d* completions?\b/.test(text) ? text : "";
  }, 20000).catch(() => statusText());
  // Accept the ghost text (Tab): VS Code runs the item's command (greencoder.acceptSuggestion), the
  // server counts the accepted characters and pushes the ledger: the status bar gains "… mJ/char est".
  if (ghost) {
    await page.keyboard.press("Tab");
    seen.statusAccepted = await waitFor("joules per accepted character in the status bar", async () => {
      const text = await statusText();
      if (text && !seen.statusTexts.includes(text)) seen.statusTexts.push(text);
      return /\/char\b/.test(text) ? text : "";
    }, 30000, 250).catch(() => "");
  }
  seen.checks.accepted = Boolean(seen.statusAccepted);
  mark("accepted");
  await page.keyboard.press("Escape");
  const dirtyTab = page.locator(".tabs-container .tab.dirty");
  seen.dirtyBeforeRevert = await dirtyTab.count();
  await runCommand("File: Revert File");
  seen.checks.reverted = await waitFor("the file reverted", async () => (await dirtyTab.count()) === 0, 10000).catch(() => false);

  // Measure energy of the function at the cursor (command palette), then wait for the result.
  await goToLine(options.measureLine, 5);
  await runCommand("greencoder: Measure energy of function at cursor");
  mark("measureStarted");
  seen.statusMeasured = await waitFor("the measurement in the status bar", async () => {
    const text = await statusText();
    if (text && !seen.statusTexts.includes(text)) seen.statusTexts.push(text);
    return /\/call|failed/.test(text) ? text : "";
  }, 240000, 500);
  mark("measured");
  seen.checks.measuredInStatusBar = /\/call (est|measured)\b/.test(seen.statusMeasured);

  await runCommand("View: Focus Problems (Errors, Warnings, Infos)").catch(() =>
    runCommand("View: Toggle Problems (Errors, Warnings, Infos)"));
  const problemRow = (pattern) => async () => {
    const rows = await page.locator(".markers-panel .monaco-list-row").allInnerTexts().catch(() => []);
    const found = rows.map((row) => row.replace(/\s+/g, " ").trim()).find((row) => pattern.test(row));
    return found ?? "";
  };
  seen.problems = await waitFor("the diagnostic in the Problems panel", problemRow(/per call/), 30000);
  // The extension's text, built from the diagnostic's data (the server's own message differs).
  seen.checks.diagnostic = /\w+\(.*\): [\d.]+ [mµnk]?J ± [\d.]+ [mµnk]?J per call \((estimated|measured[^)]*\)?)\)/.test(seen.problems);
  mark("problems");

  // Measure again: the same function, compared with the first measurement.
  await goToLine(options.measureLine, 5);
  await runCommand("greencoder: Measure energy of function at cursor");
  seen.comparison = await waitFor("the comparison in the Problems panel",
    problemRow(/% energy, (not )?significant|not compared \(/), 240000, 500);
  seen.checks.comparison = /[−+]\d+\.\d % energy, (not significant|significant) \(p = [\d.e-]+\)|not compared \(/.test(seen.comparison);
  mark("compared");

  // "Show energy report" (what clicking the status bar item runs): a modal dialog with the ledger.
  await runCommand("greencoder: Show energy report");
  const dialog = page.locator(".monaco-dialog-box");
  await dialog.waitFor({ state: "visible", timeout: 15000 });
  seen.report = (await dialog.innerText()).replace(/\s+/g, " ").trim();
  seen.checks.report = /Completion energy/.test(seen.report) && /Last measured/.test(seen.report)
    && /Suggestions: \d+ shown, [1-9]\d* accepted/.test(seen.report);
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden", timeout: 15000 });
  mark("report");

  // The server's hover on the function's name shows the measurement too (kept for the screenshot).
  if (options.functionName) {
    await page.locator(".monaco-editor .view-lines").first().click();
    const name = page.locator(".monaco-editor .view-lines .view-line", { hasText: `def ${options.functionName}` })
      .locator("span > span", { hasText: new RegExp(`^${options.functionName}$`) }).first();
    seen.hover = "";
    for (let attempt = 0; attempt < 3 && !seen.hover; attempt += 1) {
      await page.mouse.move(5, 5);
      await name.hover({ timeout: 10000 }).catch(() => undefined);
      seen.hover = await waitFor("the hover", async () => {
        const texts = await page.locator(".monaco-hover:visible").allInnerTexts().catch(() => []);
        const found = texts.find((text) => /greencoder/.test(text) && /energy per call: .* — (estimated|measured)/.test(text));
        return found ? found.replace(/\s+/g, " ").trim() : "";
      }, 8000).catch(() => "");
    }
    seen.checks.hover = Boolean(seen.hover);
    mark("hover");
  }
  await page.screenshot({ path: options.screenshot });
  seen.screenshot = options.screenshot;

  // "Restart server": a new server process, a new (empty) ledger.
  await page.mouse.move(5, 5);
  await runCommand("greencoder: Restart server");
  seen.statusRestarted = await waitFor("the restarted server's ledger", async () => {
    const text = await statusText();
    return /\b0 completions\b/.test(text) ? text : "";
  }, 120000, 500);
  seen.checks.restart = true;
  mark("restarted");
}

main().then(() => finish(), (error) => finish(error));
