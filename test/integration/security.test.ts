// Security properties of the pull engine against real registries (TLS + basic, token) and small
// fakes: no secret in any log line or error, Authorization only to the registry or its token
// realm, no credentials over plain HTTP unless the host is marked insecure, no plain-HTTP retry of
// a TLS host, TLS verified unless a CA or insecure is configured, safe cache file permissions.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { CLI } from '../support/cli';
import { type Store, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
const SECRET = `Sec-${randomBytes(9).toString('hex')}`;
const WRONG = `Wrong-${randomBytes(9).toString('hex')}`;
const USER = 'sec-user';
let bed: TestBed;
let image: BuiltImage;
/** Everything the engine said: request logs, error messages, hints and causes, CLI output. */
const said: string[] = [];
const logs: RequestLog[] = [];

before(async () => {
  bed = await TestBed.create('stowage-security-');
  image = await buildImage(join(bed.work, 'img'), {
    tag: 'v1',
    seed: 'security',
    layers: 2,
    layerSize: 100_000,
  });
});

after(() => bed?.cleanup());

const registry = (options: Parameters<typeof bed.registry>[0]) => bed.registry(options);
const store = () => bed.store();

function client(options: ConstructorParameters<typeof RegistryClient>[0] = {}) {
  return new RegistryClient({
    retry: { attempts: 2, baseDelayMs: 5 },
    ...options,
    onRequest: (r) => {
      logs.push(r);
      said.push(JSON.stringify(r));
    },
  });
}

function credentials(host: string, password = SECRET) {
  const c = new StaticCredentials();
  c.set(host, { username: USER, password });
  return c;
}

/** Runs `p`, records a failure's message, hint and causes; returns the error (or undefined). */
async function attempt(p: Promise<unknown>): Promise<StowageError | undefined> {
  try {
    await p;
    return undefined;
  } catch (e) {
    let c: unknown = e;
    for (let i = 0; c && i < 5; i++) {
      said.push(
        String((c as Error).message),
        String((c as StowageError).hint ?? ''),
        String((c as Error).stack ?? ''),
      );
      c = (c as { cause?: unknown }).cause;
    }
    assert.ok(e instanceof StowageError, `typed: ${(e as Error)?.stack}`);
    return e;
  }
}

async function plainServer(
  handler: (headers: IncomingHttpHeaders, url: string) => [number, Record<string, string>, string],
) {
  const seen: { url: string; headers: IncomingHttpHeaders }[] = [];
  const server = createServer((req, res) => {
    seen.push({ url: req.url ?? '/', headers: req.headers });
    const [status, headers, body] = handler(req.headers, req.url ?? '/');
    res.writeHead(status, headers).end(body);
  });
  await listen(server);
  return { server, host: `127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function listen(server: Server, port = 0): Promise<void> {
  bed.defer(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
}

describe('credentials never leak', () => {
  test('TLS + basic: pulls, wrong passwords and the CLI with -v never show a secret', async () => {
    const reg = await registry({ tls: true, auth: 'basic', users: [{ username: USER, password: SECRET }] });
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/app:v1');
    const ok = client({ credentials: credentials(reg.host), caCertificates: [reg.caPem!] });
    await pull(await store(), ok, `${reg.host}/sec/app:v1`, { platforms: amd64 });
    await ok.close();
    const wrong = client({ credentials: credentials(reg.host, WRONG), caCertificates: [reg.caPem!] });
    assert.equal((await attempt(pull(await store(), wrong, `${reg.host}/sec/app:v1`)))?.code, 'UNAUTHORIZED');
    await wrong.close();

    // The CLI, verbose, with the credentials in a docker config.json.
    const dockerConfig = await mkdtemp(join(bed.work, 'docker-'));
    const auth = Buffer.from(`${USER}:${SECRET}`).toString('base64');
    await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [reg.host]: { auth } } }), {
      mode: 0o600,
    });
    const cache = await mkdtemp(join(bed.work, 'cli-'));
    const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
      const child = spawn(
        process.execPath,
        [
          CLI,
          'pull',
          `${reg.host}/sec/app:v1`,
          '--cache',
          cache,
          '--ca-file',
          reg.caFile!,
          '-v',
          '--platform',
          'linux/amd64',
        ],
        { env: { ...process.env, DOCKER_CONFIG: dockerConfig }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let text = '';
      child.stdout.on('data', (d) => {
        text += d;
      });
      child.stderr.on('data', (d) => {
        text += d;
      });
      child.on('close', (code) => resolve({ code, text }));
    });
    assert.equal(out.code, 0, out.text);
    assert.match(out.text, /GET https:\/\//, 'the verbose log shows requests');
    said.push(out.text);
  });

  test('token auth: tokens and passwords stay out of logs and errors', async () => {
    const reg = await registry({ auth: 'token', users: [{ username: USER, password: SECRET }] });
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/tok:v1');
    const realmHost = new URL(reg.tokenServer!.realm).host;
    const c = client({ credentials: credentials(reg.host), insecureRegistries: [realmHost] });
    await pull(await store(), c, `${reg.host}/sec/tok:v1`, { platforms: amd64 });
    await c.close();
    const bad = client({ credentials: credentials(reg.host, WRONG), insecureRegistries: [realmHost] });
    await attempt(pull(await store(), bad, `${reg.host}/sec/tok:v1`));
    await bad.close();
  });
});

describe('where Authorization goes', () => {
  test('token auth with blob redirects to a CDN: Authorization reaches only the registry and the realm', async () => {
    const seen: IncomingHttpHeaders[] = [];
    let storageDir = '';
    const cdn = createServer(async (req, res) => {
      seen.push(req.headers);
      const file = join(storageDir, decodeURIComponent(new URL(req.url!, 'http://x').pathname));
      const st = await stat(file).catch(() => undefined);
      if (!st) return res.writeHead(404).end();
      res.writeHead(200, { 'content-length': st.size });
      createReadStream(file).pipe(res);
    });
    await listen(cdn);
    const reg = await registry({
      auth: 'token',
      users: [{ username: USER, password: SECRET }],
      redirectBaseUrl: `http://127.0.0.1:${(cdn.address() as AddressInfo).port}/`,
    });
    storageDir = reg.storageDir;
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/cdn:v1');
    const realmHost = new URL(reg.tokenServer!.realm).host;
    const c = client({ credentials: credentials(reg.host), insecureRegistries: [realmHost] });
    const s = await store();
    await pull(s, c, `${reg.host}/sec/cdn:v1`, { platforms: amd64 });
    await c.close();
    assert.ok(seen.length >= 3, 'the CDN served the blobs');
    assert.ok(
      seen.every((h) => h.authorization === undefined && h.cookie === undefined),
      'no Authorization reached the CDN',
    );
    const hosts = new Set(logs.map((l) => new URL(l.url).host));
    assert.ok(hosts.has(reg.host));
    assert.ok(await verifyAllBlobs(s));
  });

  test('a 401 from a redirect target (another host) never gets the registry credentials', async () => {
    // The CDN the registry redirects blobs to answers with its own challenge, pointing at a realm of
    // its choosing: the registry's credentials must not go there (nor to the CDN itself).
    const thief = await plainServer(() => [
      200,
      { 'content-type': 'application/json' },
      '{"token":"stolen"}',
    ]);
    const cdn = await plainServer(() => [
      401,
      { 'www-authenticate': `Bearer realm="http://${thief.host}/token",service="cdn"` },
      '',
    ]);
    const reg = await registry({
      auth: 'token',
      users: [{ username: USER, password: SECRET }],
      redirectBaseUrl: `http://${cdn.host}/`,
    });
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/cdn401:v1');
    const realmHost = new URL(reg.tokenServer!.realm).host;
    // The thief is even trusted for plain HTTP: that allows HTTP, not someone else's credentials.
    const c = client({ credentials: credentials(reg.host), insecureRegistries: [realmHost, thief.host] });
    const e = await attempt(pull(await store(), c, `${reg.host}/sec/cdn401:v1`, { platforms: amd64 }));
    await c.close();
    assert.ok(cdn.seen.length > 0, 'the registry redirected to the CDN');
    // The CDN's refusal is the CDN's: not a 'sign in to the registry' (that would not help).
    assert.equal(e?.code, 'REGISTRY_ERROR');
    assert.match(
      e?.message ?? '',
      new RegExp(`redirected the blob .* to ${cdn.host.replace(/\./g, '\\.')}, which answered HTTP 401`),
    );
    assert.deepEqual(thief.seen, [], 'the realm named by the CDN got no request');
    assert.ok(
      cdn.seen.every((r) => r.headers.authorization === undefined),
      'no Authorization reached the CDN',
    );
  });

  test('basic credentials are never sent over plain HTTP to a host not marked insecure', async () => {
    const fake = await plainServer((headers) =>
      headers.authorization ? [200, {}, '{}'] : [401, { 'www-authenticate': 'Basic realm="r"' }, ''],
    );
    const c = client({ credentials: credentials(fake.host) });
    const e = await attempt(pull(await store(), c, `${fake.host}/sec/app:v1`));
    assert.equal(e?.code, 'INSECURE_REFUSED');
    assert.ok(
      fake.seen.length > 0 && fake.seen.every((r) => !r.headers.authorization),
      'no Authorization sent',
    );
    await c.close();
    // Marked insecure, the same host gets them: the check above is not vacuous.
    const trusting = client({ credentials: credentials(fake.host), insecureRegistries: [fake.host] });
    await attempt(pull(await store(), trusting, `${fake.host}/sec/app:v1`));
    assert.ok(fake.seen.some((r) => r.headers.authorization?.startsWith('Basic ')));
    await trusting.close();
  });
});

describe('TLS', () => {
  let reg: RunningRegistry;
  before(async () => {
    reg = await registry({ tls: true });
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/tls:v1');
  });

  test('verification is on unless a CA is configured or the host is marked insecure', async () => {
    const ref = `${reg.host}/sec/tls:v1`;
    const cases: [string, ConstructorParameters<typeof RegistryClient>[0], boolean][] = [
      ['no CA', {}, false],
      ['another host insecure', { insecureRegistries: ['127.0.0.1:1', 'localhost'] }, false],
      ['the CA configured', { caCertificates: [reg.caPem!] }, true],
      ['this host insecure', { insecureRegistries: [reg.host] }, true],
    ];
    for (const [what, options, succeeds] of cases) {
      const c = client(options);
      const e = await attempt(pull(await store(), c, ref, { platforms: amd64 }));
      if (succeeds) assert.equal(e, undefined, what);
      else assert.equal(e?.code, 'TLS', what);
      await c.close();
    }
    assert.ok(
      !logs.some((l) => l.url.startsWith(`http://${reg.host}`)),
      'a host whose certificate was rejected is never tried over plain HTTP',
    );
  });

  test('a host that answered over TLS is never retried over plain HTTP', async () => {
    // A TLS server that answers once, then a plain HTTP server on the same port.
    const port = reg.port;
    const c = client({ caCertificates: [reg.caPem!] });
    await pull(await store(), c, `${reg.host}/sec/tls:v1`, { platforms: amd64 });
    await reg.stop();
    const plain = createServer((_req, res) => res.writeHead(200).end('{}'));
    const seen: string[] = [];
    plain.on('request', (req) => seen.push(req.url ?? ''));
    await listen(plain, port);
    const e = await attempt(
      pull(await store(), c, `${reg.host}/sec/tls:v1`, { platforms: amd64, alwaysPull: true }),
    );
    assert.ok(e && (e.code === 'NETWORK' || e.code === 'TLS'), `failed over TLS: ${e?.code}`);
    assert.deepEqual(seen, [], 'the plain-HTTP server on the same port got no request');
    await c.close();
    // A client that never saw TLS there falls back to plain HTTP on loopback: the check is not vacuous.
    const fresh = client({});
    await attempt(pull(await store(), fresh, `${reg.host}/sec/tls:v1`, { platforms: amd64 }));
    assert.ok(seen.length > 0, 'a fresh client does use plain HTTP on loopback');
    await fresh.close();
  });
});

describe('cache permissions', () => {
  test('under umask 000: no group/world-writable file or directory; committed blobs are 0444', async () => {
    const reg = await registry({});
    await pushLayout(image.layoutDir, 'v1', reg, 'sec/perm:v1');
    const previous = process.umask(0);
    let s: Store;
    try {
      s = await store();
      const c = client({});
      await pull(s, c, `${reg.host}/sec/perm:v1`, { platforms: amd64 });
      await c.close();
    } finally {
      process.umask(previous);
    }
    const bad: string[] = [];
    let blobs = 0;
    const walk = async (dir: string) => {
      for (const name of await readdir(dir)) {
        const path = join(dir, name);
        const st = await stat(path);
        if (st.mode & 0o022) bad.push(`${path} ${(st.mode & 0o777).toString(8)}`);
        if (st.isDirectory()) await walk(path);
        else if (dir.endsWith(join('blobs', 'sha256'))) {
          blobs++;
          assert.equal(st.mode & 0o777, 0o444, `${path} is read-only`);
        }
      }
    };
    await walk(s!.dir);
    assert.deepEqual(bad, []);
    assert.ok(blobs >= 4, `blobs checked (${blobs})`);
  });
});

test('no secret in any log line or error message of all the tests above', () => {
  const text = said.join('\n');
  assert.ok(logs.length > 10, 'requests were logged');
  const base64 = [SECRET, WRONG].map((p) => Buffer.from(`${USER}:${p}`).toString('base64'));
  for (const secret of [SECRET, WRONG, ...base64])
    assert.ok(!text.includes(secret), 'no password in any log or error');
  assert.ok(!/eyJ[A-Za-z0-9_-]{10,}/.test(text), 'no JWT in any log or error');
  assert.ok(!/(Basic|Bearer) [A-Za-z0-9+/=._-]{8,}/.test(text), 'no Authorization value in any log or error');
});
