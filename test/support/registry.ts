// Starts a real CNCF Distribution registry (`docker-registry serve`) on a random loopback port, in one
// of the configurations tests need: plain HTTP, TLS + htpasswd basic auth, or Bearer token auth.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { makeSelfSignedCert } from './certs';
import { run, stopChild } from './proc';
import {
  type Credentials,
  startTokenServer,
  type TokenServer,
  type TokenServerOptions,
} from './token-server';

export type { Credentials } from './token-server';

export interface RegistryOptions {
  /** 'none' (default), 'basic' (htpasswd) or 'token' (Bearer tokens from our token server). */
  auth?: 'none' | 'basic' | 'token';
  /** Serve HTTPS with a self-signed cert for localhost/127.0.0.1 (default false). */
  tls?: boolean;
  /** Users for basic/token auth; default one user `stowage` with a random password. */
  users?: Credentials[];
  /** Storage redirect middleware: blob GETs answer 307 to `<baseurl>docker/registry/v2/blobs/…`. */
  redirectBaseUrl?: string;
  /** Pull-through cache mode (`proxy: {remoteurl}`); the remote must be plain HTTP or publicly trusted. */
  proxyRemoteUrl?: string;
  proxyUsername?: string;
  proxyPassword?: string;
  /** For auth 'token': use this token server instead of starting one (it is then not stopped by us). */
  tokenServer?: TokenServer;
  /** For auth 'token' when we start the token server. */
  tokenServerOptions?: Omit<TokenServerOptions, 'users'>;
  /** How long to wait for the `listening on` line (default 10 s). */
  startTimeoutMs?: number;
}

export interface RunningRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT` */
  url: string;
  port: number;
  tls: boolean;
  auth: 'none' | 'basic' | 'token';
  /** PEM of the self-signed certificate (it is its own CA), when tls. */
  caPem?: string;
  caFile?: string;
  /** A directory holding only `ca.crt`, for skopeo `--src-cert-dir` / `--dest-cert-dir`. */
  certDir?: string;
  /** The first user, when auth is on. */
  credentials?: Credentials;
  users: Credentials[];
  tokenServer?: TokenServer;
  /** An undici dispatcher that trusts this registry's CA (a plain Agent without TLS). */
  dispatcher: Agent;
  storageDir: string;
  /** The directory holding config, certs and storage. */
  workDir: string;
  configFile: string;
  pid: number;
  /** Adds a user (htpasswd file is re-read live by the registry; token server gets it too). */
  addUser(user: Credentials): Promise<void>;
  /** Everything the registry printed so far (last ~2 MB). */
  logs(): string;
  stop(): Promise<void>;
}

/** Registries not yet stopped: their process and work dir. */
const live = new Map<ChildProcess, string>();
let hooksInstalled = false;

function killAllSync() {
  for (const [child, dir] of live) {
    try {
      if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(dir, { recursive: true, force: true });
  }
  live.clear();
}

/**
 * If a test process ends without stopping its registries (a crash, or the runner's SIGTERM/SIGINT
 * on cancellation), do not leave them running. A SIGKILL of the test process cannot be caught.
 */
function installExitHooks() {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAllSync);
  const onSignal = (signal: NodeJS.Signals) => {
    killAllSync();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    // Keep the default behaviour (terminate) unless someone else handles the signal.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

const LOG_LIMIT = 2 * 1024 * 1024;

async function htpasswdLines(users: Credentials[]): Promise<string> {
  const lines = await Promise.all(
    users.map(async (u) =>
      (await run('htpasswd', ['-Bbn', u.username, u.password], { secrets: [u.password] })).stdout.trim(),
    ),
  );
  return lines.map((l) => `${l}\n`).join('');
}

export async function startRegistry(options: RegistryOptions = {}): Promise<RunningRegistry> {
  installExitHooks();
  const auth = options.auth ?? 'none';
  const tls = options.tls ?? false;
  const workDir = await mkdtemp(join(tmpdir(), 'stowage-registry-'));
  const storageDir = join(workDir, 'storage');
  const configFile = join(workDir, 'config.yml');
  let tokenServer: TokenServer | undefined;
  let ownsTokenServer = false;
  let child: ChildProcess | undefined;
  let dispatcher: Agent | undefined;

  const cleanup = async () => {
    if (child) {
      await stopChild(child);
    }
    if (ownsTokenServer) await tokenServer?.stop();
    await dispatcher?.close().catch(() => {});
    await rm(workDir, { recursive: true, force: true });
    if (child) live.delete(child);
  };

  try {
    await mkdir(storageDir);
    const users =
      auth === 'none'
        ? []
        : options.users && options.users.length > 0
          ? [...options.users]
          : [{ username: 'stowage', password: randomBytes(12).toString('hex') }];

    // JSON is valid YAML, and it spares us quoting rules.
    const config: Record<string, unknown> = {
      version: '0.1',
      log: { level: 'info', accesslog: { disabled: false } },
      storage: {
        filesystem: { rootdirectory: storageDir },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
      },
      http: { addr: '127.0.0.1:0', secret: randomBytes(16).toString('hex') },
    };
    const http = config.http as Record<string, unknown>;

    let caPem: string | undefined;
    let caFile: string | undefined;
    let certDir: string | undefined;
    const setup: Promise<unknown>[] = [];
    if (tls) {
      setup.push(
        (async () => {
          const cert = await makeSelfSignedCert(workDir, 'server', 'localhost', 'ec');
          http.tls = { certificate: cert.certFile, key: cert.keyFile };
          caPem = cert.certPem;
          caFile = cert.certFile;
          certDir = join(workDir, 'certs.d');
          await mkdir(certDir);
          await copyFile(cert.certFile, join(certDir, 'ca.crt'));
        })(),
      );
    }
    if (auth === 'basic') {
      const path = join(workDir, 'htpasswd');
      setup.push((async () => writeFile(path, await htpasswdLines(users), { mode: 0o600 }))());
      config.auth = { htpasswd: { realm: 'stowage-test-realm', path } };
    } else if (auth === 'token') {
      setup.push(
        (async () => {
          if (options.tokenServer) {
            tokenServer = options.tokenServer;
            for (const u of users) if (!tokenServer.users.includes(u)) tokenServer.addUser(u);
          } else {
            tokenServer = await startTokenServer({ ...options.tokenServerOptions, users });
            ownsTokenServer = true;
          }
          config.auth = {
            token: {
              realm: tokenServer.realm,
              service: tokenServer.service,
              issuer: tokenServer.issuer,
              rootcertbundle: tokenServer.cert.certFile,
            },
          };
        })(),
      );
    }
    await Promise.all(setup);
    if (options.redirectBaseUrl) {
      config.middleware = { storage: [{ name: 'redirect', options: { baseurl: options.redirectBaseUrl } }] };
    }
    if (options.proxyRemoteUrl) {
      const proxy: Record<string, string> = { remoteurl: options.proxyRemoteUrl };
      if (options.proxyUsername !== undefined) proxy.username = options.proxyUsername;
      if (options.proxyPassword !== undefined) proxy.password = options.proxyPassword;
      config.proxy = proxy;
    }
    await writeFile(configFile, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });

    // REGISTRY_* variables override the config file; do not let any stray ones in.
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('REGISTRY_')) env[k] = v;
    env.REGISTRY_HTTP_ADDR = '127.0.0.1:0';

    let log = '';
    const started = spawn('docker-registry', ['serve', configFile], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = started;
    live.set(started, workDir);
    const timeoutMs = options.startTimeoutMs ?? 10_000;
    const port = await new Promise<number>((resolve, reject) => {
      let done = false;
      const finish = (err: Error | undefined, p?: number) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err) reject(err);
        else resolve(p!);
      };
      const onData = (b: Buffer) => {
        log += b.toString('utf8');
        if (log.length > LOG_LIMIT) log = log.slice(log.length - LOG_LIMIT);
        const m = /listening on 127\.0\.0\.1:(\d+)/.exec(log);
        if (m) finish(undefined, Number(m[1]));
      };
      started.stdout!.on('data', onData);
      started.stderr!.on('data', onData);
      started.once('error', (err) => finish(new Error(`docker-registry could not start: ${err.message}`)));
      started.once('exit', (code, signal) =>
        finish(new Error(`docker-registry exited (${code ?? signal}) before listening:\n${log}`)),
      );
      const timer = setTimeout(
        () =>
          finish(new Error(`docker-registry printed no "listening on" line within ${timeoutMs} ms:\n${log}`)),
        timeoutMs,
      );
    });

    dispatcher = new Agent(caPem ? { connect: { ca: caPem } } : {});
    const scheme = tls ? 'https' : 'http';
    const host = `127.0.0.1:${port}`;
    const registry: RunningRegistry = {
      host,
      url: `${scheme}://${host}`,
      port,
      tls,
      auth,
      caPem,
      caFile,
      certDir,
      credentials: users[0],
      users,
      tokenServer,
      dispatcher,
      storageDir,
      workDir,
      configFile,
      pid: started.pid!,
      async addUser(user) {
        users.push(user);
        if (auth === 'basic') {
          await writeFile(join(workDir, 'htpasswd'), await htpasswdLines(users), { mode: 0o600 });
        } else if (auth === 'token') {
          tokenServer!.addUser(user);
        }
      },
      logs: () => log,
      stop: cleanup,
    };
    return registry;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

/** Runs `fn` with a fresh registry, and stops it afterwards whatever happens. */
export async function withRegistry<T>(
  options: RegistryOptions,
  fn: (registry: RunningRegistry) => Promise<T>,
): Promise<T> {
  const registry = await startRegistry(options);
  try {
    return await fn(registry);
  } finally {
    await registry.stop();
  }
}
