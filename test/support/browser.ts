// Drives the code-server workbench with playwright-core and Debian's Chromium: open the page,
// run commands, open files, hover, read notifications, click views, take screenshots; and run the
// in-extension-host mocha suite through VS Code's smoke-test driver hooks.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { type BrowserContext, chromium, type Locator, type Page } from 'playwright-core';
import { type CodeServer, repoRoot, resultsDir } from './code-server';

export const chromiumPath = process.env.STOWAGE_E2E_CHROMIUM ?? '/usr/bin/chromium';

const chromiumArgs = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-dev-shm-usage',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const loopback = new Set(['127.0.0.1', 'localhost', '[::1]']);

export interface WorkbenchOptions {
  /** Folder name under test-results/ for this test's screenshots and logs (emptied first). */
  name: string;
  /** Functions to expose on window before the page loads (e.g. codeAutomationLog). */
  expose?: Record<string, (...args: never[]) => unknown>;
  /** Wait for the workbench DOM before resolving (default true). */
  waitForWorkbench?: boolean;
  viewport?: { width: number; height: number };
}

/** One Chromium page on one code-server workbench, with the step/screenshot bookkeeping. */
export class Workbench {
  private shots = 0;
  private readonly consoleLines: string[] = [];
  /** Requests to non-loopback hosts that were blocked (they should stay empty). */
  readonly blocked: string[] = [];

  private constructor(
    readonly server: CodeServer,
    readonly context: BrowserContext,
    readonly page: Page,
    readonly artifacts: string,
    private readonly profile: string,
  ) {
    page.on('console', (m) => this.consoleLines.push(`[${m.type()}] ${m.text()}`));
    page.on('pageerror', (e) => this.consoleLines.push(`[pageerror] ${e.message}`));
  }

  /** Launches Chromium and opens `url` (see CodeServer.workbenchUrl). */
  static async open(server: CodeServer, url: string, options: WorkbenchOptions): Promise<Workbench> {
    const artifacts = join(resultsDir, options.name);
    await rm(artifacts, { recursive: true, force: true });
    await mkdir(artifacts, { recursive: true });
    const profile = await mkdtemp(join(tmpdir(), 'stowage-chromium-'));
    const context = await chromium.launchPersistentContext(profile, {
      executablePath: chromiumPath,
      headless: true,
      args: chromiumArgs,
      viewport: options.viewport ?? { width: 1280, height: 800 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    const wb = new Workbench(server, context, page, artifacts, profile);
    // Everything stays on this machine: drop any request to another host.
    await context.route('**/*', (route) => {
      const u = new URL(route.request().url());
      if (loopback.has(u.hostname)) return route.continue();
      wb.blocked.push(u.href);
      return route.abort('blockedbyclient');
    });
    for (const [name, fn] of Object.entries(options.expose ?? {})) await page.exposeFunction(name, fn);
    try {
      await page.goto(url);
      if (options.waitForWorkbench ?? true) await wb.waitForWorkbench();
    } catch (e) {
      try {
        await wb.fail('open', e);
      } finally {
        await wb.close();
      }
    }
    return wb;
  }

  /** Waits until the workbench shell (activity bar and editor part) is on screen. */
  async waitForWorkbench(timeout = 60_000): Promise<void> {
    await this.page.locator('.monaco-workbench .part.activitybar').waitFor({ timeout });
    await this.page.locator('.monaco-workbench .part.editor').waitFor({ timeout });
  }

  /** Saves a PNG under test-results/<name>/, numbered in order; returns its path. */
  async screenshot(label: string): Promise<string> {
    this.shots++;
    const file = join(this.artifacts, `${String(this.shots).padStart(2, '0')}-${slug(label)}.png`);
    await this.page.screenshot({ path: file });
    return file;
  }

  /**
   * Runs one user-visible step and screenshots the result. On failure it saves a screenshot,
   * the code-server and VS Code logs and the browser console, then rethrows naming them.
   */
  async step<T>(label: string, fn: () => Promise<T>): Promise<T> {
    let result: T;
    try {
      result = await fn();
    } catch (e) {
      return this.fail(label, e);
    }
    await this.screenshot(label);
    return result;
  }

  /** Saves diagnostics for a failed step and throws an error that says where they are. */
  async fail(label: string, cause: unknown): Promise<never> {
    const shot = await this.screenshot(`${label}-FAILED`).catch((e) => `(no screenshot: ${e})`);
    await this.saveDiagnostics();
    const msg = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`step "${label}" failed: ${msg}\n  screenshot: ${shot}\n  logs: ${this.artifacts}`, {
      cause,
    });
  }

  /** Writes the code-server log, VS Code's logs and the browser console into the artifacts folder. */
  async saveDiagnostics(): Promise<void> {
    await this.server.saveLogs(this.artifacts).catch(() => undefined);
    const lines = [...this.consoleLines, ...this.blocked.map((u) => `[blocked] ${u}`)];
    await writeFile(join(this.artifacts, 'browser-console.log'), `${lines.join('\n')}\n`);
  }

  async close(): Promise<void> {
    await this.context.close().catch(() => undefined);
    await rm(this.profile, { recursive: true, force: true, maxRetries: 3 });
  }

  // ---- what a user does ----

  /** Opens the command palette (F1), types `title`, and runs the entry with exactly that label. */
  async runCommand(title: string): Promise<void> {
    const { page } = this;
    await this.focusWorkbench();
    await page.keyboard.press('F1');
    const input = page.locator('.quick-input-widget .quick-input-box input');
    await input.waitFor({ state: 'visible' });
    await input.fill(`>${title}`);
    const row = page
      .locator('.quick-input-widget .quick-input-list .monaco-list-row')
      .filter({ has: page.locator('.label-name', { hasText: exactText(title) }) })
      .first();
    await row.click();
    await page.locator('.quick-input-widget').waitFor({ state: 'hidden' });
  }

  /** Opens a workspace file by its relative path through Quick Open (Ctrl+P); returns its editor. */
  async openFile(relativePath: string): Promise<Locator> {
    const { page } = this;
    const name = basename(relativePath);
    const row = page
      .locator('.quick-input-widget .quick-input-list .monaco-list-row')
      .filter({ has: page.locator('.label-name', { hasText: exactText(name) }) })
      .first();
    // A file the test has just written may not be in Quick Open's file search yet ("No matching
    // results"): open the picker again until it is.
    for (let attempt = 1; ; attempt++) {
      await this.focusWorkbench();
      await page.keyboard.press('Control+P');
      const input = page.locator('.quick-input-widget .quick-input-box input');
      await input.waitFor({ state: 'visible' });
      await input.fill(relativePath);
      try {
        await row.waitFor({ timeout: attempt < 6 ? 5_000 : 30_000 });
        break;
      } catch (e) {
        if (attempt >= 6) throw e;
        await page.keyboard.press('Escape');
      }
    }
    await row.click();
    await page.locator('.tabs-container .tab.active', { hasText: name }).waitFor();
    const editor = page.locator('.part.editor .editor-group-container.active .monaco-editor').first();
    await editor.locator('.view-line').first().waitFor();
    return editor;
  }

  /** The rendered line in the active editor that contains `text` (first match). */
  editorLine(text: string | RegExp): Locator {
    return this.page.locator(`${activeEditor} .view-lines .view-line`, { hasText: text }).first();
  }

  /**
   * Where `text` is drawn in the active editor: the centre of its first occurrence, in page
   * coordinates. Exact to the character, so a test can point at `alpine` within `FROM alpine:3.20`.
   */
  async editorTextPoint(text: string, timeout = 15_000): Promise<{ x: number; y: number }> {
    await this.editorLine(text).waitFor({ timeout });
    const point = (await this.page.evaluate(
      `(${findTextPoint})(${JSON.stringify(activeEditor)}, ${JSON.stringify(text)})`,
    )) as {
      x: number;
      y: number;
    } | null;
    if (!point) throw new Error(`"${text}" is not drawn in the active editor`);
    return point;
  }

  /** Clicks on `text` in the active editor (puts the cursor there). */
  async clickEditorText(text: string, options: { button?: 'left' | 'right' } = {}): Promise<void> {
    const { x, y } = await this.editorTextPoint(text);
    await this.page.mouse.click(x, y, { button: options.button ?? 'left' });
  }

  /**
   * Moves the mouse onto `text` in the active editor and returns the hover's visible text.
   * A plain click first: after a context menu the editor shows no hovers until one lands.
   * Re-hovers a few times, since a hover provider may still be starting.
   */
  async hoverText(text: string, timeout = 20_000): Promise<string> {
    await this.clickEditorText(text);
    const hover = this.page.locator('.monaco-hover:not(.hidden) .monaco-hover-content').first();
    const deadline = Date.now() + timeout;
    for (;;) {
      const { x, y } = await this.editorTextPoint(text);
      await this.page.mouse.move(0, 0);
      await this.page.mouse.move(x, y, { steps: 2 });
      try {
        await hover.waitFor({
          state: 'visible',
          timeout: Math.min(4000, Math.max(1, deadline - Date.now())),
        });
        // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
        return await hover.innerText();
      } catch (e) {
        if (Date.now() >= deadline) throw e;
      }
    }
  }

  /** Right-clicks `text` in the active editor and picks the context menu entry `item`. */
  async editorContextMenu(text: string, item: string): Promise<void> {
    await this.clickEditorText(text, { button: 'right' });
    await this.pickMenuItem(item);
  }

  /** Right-clicks `target` (a tree item, a tab, …) and picks the context menu entry `item`. */
  async contextMenu(target: Locator, item: string): Promise<void> {
    await target.click({ button: 'right' });
    await this.pickMenuItem(item);
  }

  /** Clicks the entry `item` of the open context menu. */
  async pickMenuItem(item: string): Promise<void> {
    const entry = this.page
      .locator('.monaco-menu .action-item .action-label', { hasText: exactText(item) })
      .first();
    await entry.hover();
    await entry.click({ delay: 50 });
    await entry.waitFor({ state: 'hidden' });
  }

  /** The messages of the notification toasts currently shown. */
  async notifications(): Promise<string[]> {
    return this.page.locator('.notifications-toasts .notification-list-item-message').allInnerTexts();
  }

  /**
   * Waits for a notification whose message matches and returns its list item: the toast, or —
   * when VS Code did not keep it on screen (seen when it arrives as a progress notification
   * closes) — the same item in the Notifications center, where the user finds it under the bell.
   */
  async notification(text: string | RegExp, timeout = 15_000): Promise<Locator> {
    const toast = this.page
      .locator('.notifications-toasts .notification-list-item', { hasText: text })
      .first();
    try {
      await toast.waitFor({ state: 'visible', timeout });
      return toast;
    } catch (e) {
      await this.runCommand('Notifications: Show Notifications');
      const item = this.page
        .locator('.notifications-center .notification-list-item', { hasText: text })
        .first();
      await item.waitFor({ state: 'visible', timeout: 5_000 }).catch(() => {
        throw e;
      });
      return item;
    }
  }

  /** Waits for a notification whose message matches (toast or Notifications center); returns its text. */
  async waitForNotification(text: string | RegExp, timeout = 15_000): Promise<string> {
    const item = await this.notification(text, timeout);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text is what the user reads
    return item.locator('.notification-list-item-message').innerText();
  }

  /** The "Restricted Mode" status bar entry; visible when the workspace is not trusted. */
  restrictedModeIndicator(): Locator {
    return this.page.locator('.statusbar-item', { hasText: 'Restricted Mode' }).first();
  }

  /** The activity bar entry of a view container, by its title. */
  activityBarItem(title: string): Locator {
    return this.page.locator(`.activitybar [aria-label^="${title}"]`).first();
  }

  /** Clicks a view container in the activity bar and returns the titles of the views it shows. */
  async openViewContainer(title: string): Promise<string[]> {
    const heading = this.page.locator('.part.sidebar .composite.title h2', { hasText: title }).first();
    // Clicking the container that is already shown would close the side bar.
    if (!(await heading.isVisible())) await this.activityBarItem(title).click();
    await heading.waitFor();
    await this.page.locator('.part.sidebar .pane-header').first().waitFor();
    return this.viewTitles();
  }

  /** The titles of the views in the side bar, top to bottom. */
  async viewTitles(): Promise<string[]> {
    return this.page.locator('.part.sidebar .pane-header h3.title').allInnerTexts();
  }

  /** A view in the side bar by its title (its header and body). */
  view(title: string): Locator {
    return this.page.locator('.part.sidebar .split-view-view', {
      has: this.page.locator('.pane-header h3.title', { hasText: exactText(title) }),
    });
  }

  /** A tree item in a side-bar view by its label. */
  treeItem(viewTitle: string, label: string | RegExp): Locator {
    return this.view(viewTitle).locator('.monaco-list-row', { hasText: label }).first();
  }

  /** Gives the workbench keyboard focus (a click on the status bar's free space is harmless). */
  private async focusWorkbench(): Promise<void> {
    await this.page.locator('.monaco-workbench').focus();
  }
}

const activeEditor = '.part.editor .editor-group-container.active .monaco-editor';

/**
 * Runs in the page (a string, so no transpiler helper leaks into it): finds `needle` in the
 * rendered lines under `editorSelector` and returns the centre of its box. Lines are split into
 * token spans and spaces are drawn as U+00A0, so the search spans the line's text nodes.
 */
const findTextPoint = `(editorSelector, needle) => {
  for (const line of document.querySelectorAll(editorSelector + ' .view-lines .view-line')) {
    const walker = document.createTreeWalker(line, NodeFilter.SHOW_TEXT);
    const nodes = [];
    let text = '';
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      nodes.push({ node: n, start: text.length });
      text += n.data.replace(/\u00a0/g, ' ');
    }
    const at = text.indexOf(needle);
    if (at < 0) continue;
    const locate = (offset, end) => {
      for (let i = nodes.length - 1; i >= 0; i--) {
        if (end ? offset > nodes[i].start : offset >= nodes[i].start) {
          return { node: nodes[i].node, offset: offset - nodes[i].start };
        }
      }
      return { node: nodes[0].node, offset: 0 };
    };
    const from = locate(at, false);
    const to = locate(at + needle.length, true);
    const range = document.createRange();
    range.setStart(from.node, from.offset);
    range.setEnd(to.node, to.offset);
    const r = range.getBoundingClientRect();
    return { x: r.left + r.width / 2, y: r.top + r.height / 2 };
  }
  return null;
}`;

function exactText(s: string): RegExp {
  return new RegExp(`^\\s*${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\s*$`);
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

export interface HostTestResult {
  /** The extension host's exit code (0: every mocha test passed). */
  exitCode: number;
  /** What the tests printed (mocha's spec reporter), in order. */
  output: string;
  passing: number;
  failing: number;
  pending: number;
  workbench: Workbench;
}

/**
 * Runs a test-electron-style test index (export run()) inside the real extension host of a
 * server started with `testDriver: true`, and collects its output and exit code.
 * The caller closes `result.workbench` (after saving diagnostics if it wants them).
 */
export async function runHostTests(
  server: CodeServer,
  options: {
    workspace: string;
    name: string;
    testsPath?: string;
    extensionPath?: string;
    timeoutMs?: number;
  },
): Promise<HostTestResult> {
  const extensionPath = options.extensionPath ?? repoRoot;
  const testsPath = options.testsPath ?? join(repoRoot, 'dist-test', 'suite.js');
  if (!existsSync(testsPath)) throw new Error(`${testsPath} is missing: run \`npm run build\` first.`);
  const lines: string[] = [];
  let exitLogs: { relativePath: string; contents: string }[] = [];
  let done: (code: number) => void = () => undefined;
  const exited = new Promise<number>((resolve) => {
    done = resolve;
  });
  const url = server.workbenchUrl(options.workspace, [
    ['extensionDevelopmentPath', server.remoteUri(extensionPath)],
    ['extensionTestsPath', server.remoteUri(testsPath)],
  ]);
  const workbench = await Workbench.open(server, url, {
    name: options.name,
    waitForWorkbench: false,
    expose: {
      codeAutomationLog: (_level: string, message: string) => {
        lines.push(String(message));
      },
      codeAutomationExit: (code: number, logs: { relativePath: string; contents: string }[]) => {
        if (Array.isArray(logs)) exitLogs = logs;
        done(Number(code));
      },
    },
  });
  const timeoutMs = options.timeoutMs ?? 90_000;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no exit from the extension host within ${timeoutMs} ms:\n${lines.join('\n')}`)),
      timeoutMs,
    );
  });
  let exitCode: number;
  try {
    exitCode = await Promise.race([exited, timedOut]);
  } catch (e) {
    try {
      return await workbench.fail('host-tests', e);
    } finally {
      await workbench.close();
    }
  } finally {
    clearTimeout(timer);
  }
  await saveExitLogs(workbench, exitLogs);
  const output = lines.join('\n');
  return { exitCode, output, ...mochaSummary(output), workbench };
}

/** Keeps the VS Code logs the driver hands over at exit (extension host, renderer) with the test's results. */
async function saveExitLogs(wb: Workbench, logs: { relativePath: string; contents: string }[]) {
  const dir = join(wb.artifacts, 'exit-logs');
  for (const { relativePath, contents } of logs) {
    const file = join(dir, relativePath.replace(/\.\.+/g, '_'));
    await mkdir(join(file, '..'), { recursive: true });
    await writeFile(file, contents);
  }
}

/** The counts from mocha's closing summary ("3 passing", "1 failing", "2 pending"). */
export function mochaSummary(output: string): { passing: number; failing: number; pending: number } {
  const count = (word: string) => {
    const m = output.match(new RegExp(`^\\s*(\\d+) ${word}\\b`, 'm'));
    return m ? Number(m[1]) : 0;
  };
  return { passing: count('passing'), failing: count('failing'), pending: count('pending') };
}
