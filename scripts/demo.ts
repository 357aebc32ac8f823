// The demo behind `npm run demo` (scripts/demo.sh installs and builds first): a local CNCF Distribution
// registry seeded with sample images built by our test fixtures, a sample workspace whose Dockerfiles
// use them, and VS Code (code-server) with the extension installed, until Ctrl+C.
// State lives in .stowage-demo/ (gitignored) and is reused by the next start.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join, relative, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Agent } from 'undici';
import { type CodeServer, freePort, repoRoot, startCodeServer } from '../test/support/code-server';
import { buildImage } from '../test/support/fixtures';
import { run } from '../test/support/proc';
import { pushLayout, tagMany } from '../test/support/push';
import type { RunningRegistry } from '../test/support/registry';

const USAGE = `usage: npm run demo [-- OPTIONS]
  --no-editor   start the registry and the sample workspace only (for the CLI); no VS Code
  --port N      registry port (default ${5555} when free, else any free port)
  --dir DIR     state folder (default .stowage-demo/ in the repo)
  --reset       delete the state folder's registry, cache and workspace first
  -h, --help    this help`;

/** Bump when the seeded images or the workspace change, so old state is rebuilt. */
const SEED_VERSION = 1;
const DEFAULT_PORT = 5555;
const APP_TAGS = [
  ...['2023', '2024', '2025'].flatMap((y) =>
    Array.from({ length: 12 }, (_, m) => `${y}.${String(m + 1).padStart(2, '0')}`),
  ),
  'latest',
];
const MiB = 1024 * 1024;

interface Options {
  editor: boolean;
  port?: number;
  dir: string;
  reset: boolean;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'no-editor': { type: 'boolean' },
      port: { type: 'string' },
      dir: { type: 'string' },
      reset: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535)
      fail(`--port takes a port number, not "${values.port}"`);
  }
  return {
    editor: !values['no-editor'],
    port,
    dir: resolve(values.dir ?? join(repoRoot, '.stowage-demo')),
    reset: values.reset ?? false,
  };
}

function fail(message: string): never {
  process.stderr.write(`demo: ${message}\n${USAGE}\n`);
  process.exit(2);
}

const log = (msg: string) => process.stdout.write(`demo: ${msg}\n`);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

// ---------- one demo per state folder ----------

interface RunState {
  pid: number;
  registryPid?: number;
  codeServerPid?: number;
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Refuses to start when another demo is running on this folder; kills the registry and code-server
 * a demo killed with SIGKILL left behind (their PIDs are in the state file, checked by command line).
 */
async function claim(dir: string): Promise<string> {
  const file = join(dir, 'demo.pid.json');
  let killed = false;
  if (existsSync(file)) {
    let prev: RunState | undefined;
    try {
      prev = JSON.parse(readFileSync(file, 'utf8')) as RunState;
    } catch {
      // unreadable: treat as stale
    }
    if (prev && prev.pid !== process.pid && alive(prev.pid)) {
      throw new Error(
        `a demo is already running on ${dir} (pid ${prev.pid}): stop it with Ctrl+C in its terminal (or kill ${prev.pid}), or pass --dir`,
      );
    }
    for (const [pid, needle] of [
      [prev?.registryPid, 'docker-registry'],
      [prev?.codeServerPid, 'code-server'],
    ] as const) {
      if (pid && alive(pid) && cmdline(pid).includes(needle)) {
        try {
          process.kill(-pid, 'SIGKILL');
          killed = true;
        } catch {
          // gone meanwhile
        }
      }
    }
  }
  // A killed process releases its port as it exits, a moment after the signal.
  if (killed) await sleep(300);
  return file;
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

// ---------- the registry ----------

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once('error', () => done(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => done(true)));
  });
}

interface Registry {
  port: number;
  host: string;
  url: string;
  child: ChildProcess;
  logFile: string;
}

/**
 * Listens on --port, else on the previous start's port (the workspace and cache name it), else on
 * the default, else on any free port.
 */
async function startRegistry(dir: string, wantedPort: number | undefined): Promise<Registry> {
  let port: number | undefined;
  if (wantedPort !== undefined) {
    if (!(await portFree(wantedPort)))
      throw new Error(`port ${wantedPort} on 127.0.0.1 is in use: pick another with --port, or omit it`);
    port = wantedPort;
  } else {
    const previous = Number((await previousHost(dir))?.split(':')[1]) || undefined;
    for (const p of new Set([previous ?? DEFAULT_PORT, DEFAULT_PORT])) {
      if (await portFree(p)) {
        port = p;
        break;
      }
    }
    port ??= await freePort();
  }
  const storage = join(dir, 'registry');
  await mkdir(storage, { recursive: true });
  const configFile = join(dir, 'registry.yml');
  // JSON is valid YAML.
  const config = {
    version: '0.1',
    log: { level: 'warn', accesslog: { disabled: true } },
    storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
    http: { addr: `127.0.0.1:${port}`, secret: randomBytes(16).toString('hex') },
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logFile = join(dir, 'registry.log');
  const fd = openSync(logFile, 'w');
  const env = { ...process.env };
  // The registry lets REGISTRY_* variables override its config file.
  for (const k of Object.keys(env)) if (k.startsWith('REGISTRY_')) delete env[k];
  // detached: its own process group, stopped by us (not by the terminal's Ctrl+C before we are ready).
  const child = spawn('docker-registry', ['serve', configFile], {
    detached: true,
    stdio: ['ignore', fd, fd],
    env,
  });
  closeSync(fd);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `docker-registry exited (${child.exitCode ?? child.signalCode}):\n${readFileSync(logFile, 'utf8')}`,
      );
    }
    try {
      if ((await fetch(`${url}/v2/`)).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`the registry did not answer ${url}/v2/ within 15 s (log: ${logFile})`);
    await sleep(50);
  }
  return { port, host: `127.0.0.1:${port}`, url, child, logFile };
}

async function tagsOf(registry: Registry, repo: string): Promise<string[]> {
  const res = await fetch(`${registry.url}/v2/${repo}/tags/list`);
  if (!res.ok) return [];
  return ((await res.json()) as { tags?: string[] | null }).tags ?? [];
}

/** The images and tags the workspace refers to, and what pushes them. */
const SAMPLES: { repo: string; tag: string; platforms: string[]; layerSize: number[]; title: string }[] = [
  {
    repo: 'demo/base',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    layerSize: [3 * MiB, 512 * 1024],
    title: 'Demo base image',
  },
  {
    repo: 'demo/base',
    tag: '1.1',
    platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
    layerSize: [3 * MiB, 768 * 1024],
    title: 'Demo base image',
  },
  {
    repo: 'demo/tools',
    tag: 'latest',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerSize: [1 * MiB, 256 * 1024],
    title: 'Demo build tools',
  },
  {
    repo: 'demo/app',
    tag: '2024',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerSize: [2 * MiB, 1 * MiB, 128 * 1024],
    title: 'Demo application runtime',
  },
];

async function seeded(registry: Registry, marker: string): Promise<boolean> {
  if (!existsSync(marker)) return false;
  try {
    if ((JSON.parse(await readFile(marker, 'utf8')) as { version?: number }).version !== SEED_VERSION)
      return false;
  } catch {
    return false;
  }
  for (const s of SAMPLES) if (!(await tagsOf(registry, s.repo)).includes(s.tag)) return false;
  const app = await tagsOf(registry, 'demo/app');
  return APP_TAGS.every((t) => app.includes(t));
}

/** Builds the sample images with the test fixtures and pushes them with skopeo (digests kept). */
async function seed(registry: Registry, dir: string): Promise<void> {
  const layouts = join(dir, 'layouts');
  await rm(layouts, { recursive: true, force: true });
  const target = {
    host: registry.host,
    url: registry.url,
    tls: false,
    auth: 'none',
    users: [],
    dispatcher: new Agent(),
  } as unknown as RunningRegistry;
  try {
    for (const s of SAMPLES) {
      const layout = join(layouts, s.repo.replaceAll('/', '_'));
      await buildImage(layout, {
        tag: s.tag,
        platforms: s.platforms,
        layers: s.layerSize.length,
        layerSize: s.layerSize,
        seed: `stowage-demo/${s.repo}:${s.tag}`,
        created: s.tag === '1.0' ? '2024-03-01T12:00:00Z' : '2024-09-15T12:00:00Z',
        labels: { 'org.opencontainers.image.title': s.title, 'org.opencontainers.image.version': s.tag },
        index: s.platforms.length > 1,
      });
      await pushLayout(layout, s.tag, target, `${s.repo}:${s.tag}`);
    }
    // Many tags on one repository, so the Registries view has pages to load.
    await tagMany(target, 'demo/app', '2024', APP_TAGS);
  } finally {
    await target.dispatcher.close();
    await rm(layouts, { recursive: true, force: true });
  }
}

// ---------- the sample workspace ----------

function workspaceFiles(host: string, cache: string): Record<string, string> {
  return {
    'README.md': `# Stowage demo workspace

This folder was generated by \`npm run demo\`. Its Dockerfiles use images from the local demo registry
at \`${host}\` (a real CNCF Distribution registry started by the demo).

Things to try:

- Open the **Stowage** view in the activity bar: *Workspace Images* lists every image these
  Dockerfiles pull, *Cache* what is already pulled, *Registries* the demo registry's repositories and tags.
- Open \`Dockerfile\` and hover an image name: digest, platforms, size and whether it is cached.
- Pull what is missing: the CodeLens above a \`FROM\` line, or **Stowage: Pull All Images in Workspace**
  from the command palette (F1).
- \`legacy.Dockerfile\` has an invalid image reference: see the squiggle and the Problems panel.
- In a terminal, the CLI shares this cache:
  \`node dist/cli.js ls --cache ${cache}\` (from the repository root).
`,
    Dockerfile: `# A multi-stage build. Hover an image to see what is cached; pull it with the CodeLens above it.
ARG BASE_TAG=1.1

FROM ${host}/demo/base:\${BASE_TAG} AS build
WORKDIR /src
COPY . .
# An image used only as a source of files: a build pulls it too.
COPY --from=${host}/demo/tools:latest /usr/bin/tool /usr/local/bin/tool
RUN tool build -o /out/app

# Not pulled yet: try the CodeLens, or Stowage: Pull All Images in Workspace.
FROM ${host}/demo/app:2024
COPY --from=build /out/app /usr/local/bin/app
ENTRYPOINT ["app"]
`,
    'services/worker/Dockerfile': `# A service pinned to the older base, built for 64-bit ARM.
FROM --platform=linux/arm64 ${host}/demo/base:1.0
COPY worker.sh /usr/local/bin/worker
CMD ["worker"]
`,
    'legacy.Dockerfile': `# Repository names must be lowercase: Stowage marks this reference as invalid.
FROM ${host}/Demo/Legacy:1.0
RUN echo "never built"
`,
  };
}

/** The registry address the workspace was last written for. */
async function previousHost(dir: string): Promise<string | undefined> {
  try {
    const prev = JSON.parse(await readFile(join(dir, 'workspace.json'), 'utf8')) as {
      host?: string;
      version?: number;
    };
    return prev.version === SEED_VERSION ? prev.host : undefined;
  } catch {
    return undefined; // first start
  }
}

/**
 * Writes the workspace for this registry address; keeps the user's edits while the address is the
 * same. Returns whether it was (re)written.
 */
async function writeWorkspace(
  dir: string,
  host: string,
  cache: string,
): Promise<{ ws: string; fresh: boolean }> {
  const ws = join(dir, 'workspace');
  const stamp = join(dir, 'workspace.json');
  const same = (await previousHost(dir)) === host;
  for (const [name, text] of Object.entries(workspaceFiles(host, cache))) {
    const file = join(ws, name);
    if (same && existsSync(file)) continue;
    await mkdir(resolve(file, '..'), { recursive: true });
    await writeFile(file, text);
  }
  await writeFile(stamp, JSON.stringify({ host, version: SEED_VERSION }));
  return { ws, fresh: !same };
}

/**
 * Pre-pulls two images with our CLI (when the workspace is new), so the cache view and hovers show
 * both states: cached and not yet pulled.
 */
async function prepull(cache: string, host: string): Promise<void> {
  const existed = existsSync(cache);
  const cli = join(repoRoot, 'dist', 'cli.js');
  try {
    for (const ref of [`${host}/demo/base:1.1`, `${host}/demo/tools:latest`]) {
      await run(process.execPath, [cli, 'pull', '--cache', cache, ref]);
    }
  } catch (e) {
    // Half a pre-pull is not a first start's state: try again next time.
    if (!existed) await rm(cache, { recursive: true, force: true });
    throw e;
  }
}

// ---------- stopping ----------

async function stopGroup(child: ChildProcess, graceMs = 4000): Promise<void> {
  const pid = child.pid;
  if (pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  try {
    process.kill(-pid, 'SIGTERM');
  } catch {
    return;
  }
  const timer = setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // gone
    }
  }, graceMs);
  await exited;
  clearTimeout(timer);
}

// ---------- main ----------

async function main(): Promise<void> {
  // demo.sh passes when `npm run demo` began, so the "ready in" time covers the install and build steps.
  const began = Number(process.env.STOWAGE_DEMO_T0) || Date.now();
  const opts = parseOptions(process.argv.slice(2));
  await mkdir(opts.dir, { recursive: true });
  const pidFile = await claim(opts.dir);
  if (opts.reset) {
    for (const d of ['registry', 'cache', 'workspace', 'workspace.json', 'seeded.json']) {
      await rm(join(opts.dir, d), { recursive: true, force: true });
    }
  }
  const state: RunState = { pid: process.pid };
  const saveState = () => writeFile(pidFile, JSON.stringify(state));
  await saveState();

  let registry: Registry | undefined;
  let editor: CodeServer | undefined;
  let stopping = false;
  const shutdown = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const started = registry !== undefined;
    if (started) process.stdout.write('\ndemo: stopping…\n');
    await editor?.stop().catch(() => undefined);
    if (registry) await stopGroup(registry.child);
    rmSync(pidFile, { force: true });
    if (started) process.stdout.write('demo: stopped\n');
    process.exit(code);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, () => void shutdown(0));
  // Last resort (an exception before shutdown ran): leave no registry behind.
  process.on('exit', () => {
    if (registry?.child.pid && registry.child.exitCode === null) {
      try {
        process.kill(-registry.child.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  try {
    registry = await startRegistry(opts.dir, opts.port);
    state.registryPid = registry.child.pid;
    await saveState();
    log(`registry listening on ${registry.url} (storage ${rel(join(opts.dir, 'registry'))})`);

    const marker = join(opts.dir, 'seeded.json');
    if (await seeded(registry, marker)) {
      log('sample images already in the registry');
    } else {
      const t = Date.now();
      log('building and pushing the sample images…');
      await seed(registry, opts.dir);
      await writeFile(marker, JSON.stringify({ version: SEED_VERSION }));
      log(`sample images pushed in ${seconds(Date.now() - t)}`);
    }

    const cache = join(opts.dir, 'cache');
    const { ws: workspace, fresh } = await writeWorkspace(opts.dir, registry.host, rel(cache));
    if (fresh) {
      await prepull(cache, registry.host).catch(async (e: unknown) => {
        await rm(join(opts.dir, 'workspace.json'), { force: true }); // so the next start tries again
        throw e;
      });
    }

    let editorUrl: string | undefined;
    if (opts.editor) {
      const vsix = join(repoRoot, '.stowage-demo', 'stowage.vsix');
      if (!existsSync(vsix)) throw new Error(`${vsix} is missing: start the demo with \`npm run demo\``);
      log('starting VS Code (code-server) with the extension…');
      editor = await startCodeServer({
        vsix,
        settings: {
          // Open the workspace's README (what to try) instead of an empty editor.
          'workbench.startupEditor': 'readme',
          'stowage.registries': [registry.host],
        },
        // cacheDirectory is machine-overridable: code-server (a remote window) ignores it in User
        // settings and reads it from the machine's, so the pre-pulled cache is the one the editor uses.
        machineSettings: { 'stowage.cacheDirectory': cache },
      });
      state.codeServerPid = cmdlinePid(editor);
      await saveState();
      // Readable in a terminal: the folder path needs no escaping unless it has unusual characters.
      editorUrl = /^[\w./-]+$/.test(workspace)
        ? `${editor.url}/?folder=${workspace}`
        : editor.workbenchUrl(workspace);
    }

    const cli = `node ${rel(join(repoRoot, 'dist', 'cli.js'))}`;
    const cacheFlag = `--cache ${rel(cache)}`;
    const lines = [
      '',
      `Stowage demo ready in ${seconds(Date.now() - began)}.`,
      '',
      `  Registry   ${registry.url}  (demo/base:1.0 1.1, demo/tools:latest, demo/app:2024 + ${APP_TAGS.length} tags)`,
      `  Workspace  ${workspace}`,
      `  Cache      ${cache}`,
      ...(editorUrl ? ['', `  Open VS Code in your browser:  ${editorUrl}`] : []),
      '',
      'Try the CLI against the demo registry (from the repository root):',
      `  ${cli} pull ${cacheFlag} ${registry.host}/demo/base:1.0`,
      `  ${cli} ls ${cacheFlag}`,
      `  ${cli} tags ${registry.host}/demo/app --limit 10`,
      `  ${cli} refs ${rel(join(workspace, 'Dockerfile'))}`,
      `  ${cli} pull ${cacheFlag} -f ${rel(join(workspace, 'Dockerfile'))}`,
      '',
      'Stop with Ctrl+C (stops the registry and VS Code; state stays in ' +
        `${rel(opts.dir)}/ for a fast next start, --reset starts over).`,
      '',
    ];
    process.stdout.write(lines.join('\n'));

    // Stay up until a signal; a registry that dies ends the demo.
    const reg = registry;
    await new Promise<void>((done) => reg.child.once('exit', () => done()));
    if (!stopping) {
      process.stderr.write(`demo: the registry exited unexpectedly; its log: ${reg.logFile}\n`);
      await shutdown(1);
    }
  } catch (e) {
    process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
    await shutdown(1);
  }
}

/** code-server's process group leader (startCodeServer spawns it detached): found by its user-data dir. */
function cmdlinePid(server: CodeServer): number | undefined {
  const pids = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .map(Number)
    .filter((pid) => cmdline(pid).includes(server.userDataDir))
    .sort((a, b) => a - b);
  return pids.find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[2] === String(pid);
    } catch {
      return false;
    }
  });
}

function rel(path: string): string {
  const r = relative(process.cwd(), path);
  return r && !r.startsWith('..') ? r : path;
}

main().catch((e: unknown) => {
  process.stderr.write(`demo: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
