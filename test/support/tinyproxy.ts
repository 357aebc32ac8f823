// A real forwarding proxy for tests: Debian's tinyproxy on 127.0.0.1 (CONNECT tunnels, optional
// basic auth, optional CONNECT port rules), started per test file. Its log says what it was asked.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopChild } from './proc';

export interface ProxyOptions {
  /** Proxy basic auth (tinyproxy's BasicAuth). */
  user?: string;
  password?: string;
  /** Ports CONNECT may reach (tinyproxy's ConnectPort); default any. */
  connectPorts?: number[];
}

export interface RunningTinyproxy {
  /** `http://127.0.0.1:PORT`, without credentials. */
  url: string;
  /** With the credentials, when auth is on. */
  authUrl: string;
  port: number;
  /** The targets of the CONNECT requests it has received, in order (`127.0.0.1:5000`). */
  connects(): string[];
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

export async function startTinyproxy(options: ProxyOptions = {}): Promise<RunningTinyproxy> {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-tinyproxy-'));
  for (let attempt = 0; ; attempt++) {
    const port = await freePort();
    const config = [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 60',
      'MaxClients 200',
      'Allow 127.0.0.1',
      'LogLevel Connect',
      'DisableViaHeader Yes',
      ...(options.user ? [`BasicAuth ${options.user} ${options.password ?? ''}`] : []),
      ...(options.connectPorts ?? []).map((p) => `ConnectPort ${p}`),
    ].join('\n');
    const file = join(dir, 'tinyproxy.conf');
    await writeFile(file, `${config}\n`);
    const log: string[] = [];
    const child: ChildProcess = spawn('tinyproxy', ['-d', '-c', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout!, child.stderr!])
      stream.on('data', (b: Buffer) => log.push(b.toString()));
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.once('error', () => {});
    let up = false;
    for (let i = 0; i < 100 && child.exitCode === null && !up; i++) {
      up = await listening(port);
      if (!up) await new Promise((r) => setTimeout(r, 20));
    }
    if (up) {
      const auth = options.user
        ? `${encodeURIComponent(options.user)}:${encodeURIComponent(options.password ?? '')}@`
        : '';
      return {
        url: `http://127.0.0.1:${port}`,
        authUrl: `http://${auth}127.0.0.1:${port}`,
        port,
        connects: () =>
          [...log.join('').matchAll(/Request \(file descriptor \d+\): CONNECT (\S+) HTTP/g)].map(
            (m) => m[1]!,
          ),
        stop: async () => {
          await stopChild(child);
          await exited;
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    await stopChild(child);
    // Another process took the port between our check and tinyproxy's bind: try another.
    if (attempt >= 3) throw new Error(`tinyproxy did not start:\n${log.join('')}`);
  }
}
