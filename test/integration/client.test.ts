// Registry client features against a real registry: the catalog, a forward proxy, rate-limit headers.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest } from 'node:http';
import { type AddressInfo, connect, createServer as createNetServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference } from '../../src/core/reference';
import { RegistryClient, type RequestLog, type RetryNotice } from '../../src/core/registry/client';
import { Store } from '../support/engine';
import { buildImage } from '../support/fixtures';
import { startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let reg: RunningRegistry;
const stops: (() => Promise<void>)[] = [];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-client-'));
  reg = await startRegistry();
  const img = await buildImage(join(work, 'img'), {
    tag: 'v1',
    seed: 'client',
    layers: 1,
    layerSize: 50_000,
  });
  for (const repo of ['a/one', 'b/two', 'c/three', 'd/four', 'e/five'])
    await pushLayout(img.layoutDir, 'v1', reg, `${repo}:v1`);
});

after(async () => {
  for (const s of stops.reverse()) await s();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

test('the catalog pages with n and Link on a real registry', async () => {
  const client = new RegistryClient();
  const pages: string[][] = [];
  for await (const page of client.catalog(reg.host, { pageSize: 2 })) pages.push(page);
  assert.deepEqual(pages, [['a/one', 'b/two'], ['c/three', 'd/four'], ['e/five']]);
  await client.close();
});

test('an explicit proxy carries the traffic (CONNECT tunnel or absolute-form)', async () => {
  const seen: string[] = [];
  const proxy = createServer((req, res) => {
    // Absolute-form requests for http:// targets.
    seen.push(`${req.method} ${req.url}`);
    const target = new URL(req.url!);
    const up = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        path: `${target.pathname}${target.search}`,
        method: req.method,
        headers: req.headers,
      },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    req.pipe(up);
  });
  proxy.on('connect', (req, socket, head) => {
    seen.push(`CONNECT ${req.url}`);
    const [host, port] = req.url!.split(':');
    const up = connect(Number(port), host!, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  stops.push(
    () =>
      new Promise<void>((r) => {
        proxy.closeAllConnections();
        proxy.close(() => r());
      }),
  );
  const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  const log: RequestLog[] = [];
  const client = new RegistryClient({ proxy: { http: url, https: url }, onRequest: (r) => log.push(r) });
  const store = await Store.open(await mkdtemp(join(work, 'cache-')));
  const r = await pull(store, client, `${reg.host}/a/one:v1`, { platforms: [parsePlatform('linux/amd64')] });
  assert.equal(r.fromCache, false);
  assert.ok(
    seen.some((s) => s.includes(reg.host)),
    `the proxy saw requests for ${reg.host}: ${seen.slice(0, 3).join('; ')}`,
  );
  // Blob downloads too: the direct plain-HTTP reader (which would bypass it) is not used.
  const blobGets = log.filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
  assert.ok(blobGets.length > 0 && !log.some((r) => r.direct), JSON.stringify(log));
  await client.close();
});

test('RateLimit headers are read and exposed per registry', async () => {
  const proxy = await startProxy(reg.url, (req) =>
    req.url === '/v2/'
      ? {
          respond: {
            status: 200,
            headers: { 'ratelimit-limit': '100;w=21600', 'ratelimit-remaining': '42;w=21600' },
            body: '{}',
          },
        }
      : undefined,
  );
  stops.push(proxy.stop);
  const client = new RegistryClient();
  await client.ping(proxy.host);
  assert.deepEqual(client.rateLimit(proxy.host), { limit: '100;w=21600', remaining: '42;w=21600' });
  await client.close();
});

test('tags of a real repository', async () => {
  const client = new RegistryClient();
  const all: string[] = [];
  for await (const page of client.tags(parseReference(`${reg.host}/a/one`))) all.push(...page);
  assert.deepEqual(all, ['v1']);
  await client.close();
});

test('lookup: a HEAD tells a tag the registry has, one it lacks (404), and says nothing when HEAD is refused', async () => {
  const client = new RegistryClient();
  const found = await client.lookup(parseReference(`${reg.host}/a/one:v1`));
  assert.ok(found && found !== 'not-found' && /^sha256:[0-9a-f]{64}$/.test(found.digest), `${found}`);
  assert.equal(await client.lookup(parseReference(`${reg.host}/a/one:nope`)), 'not-found');
  assert.equal(await client.lookup(parseReference(`${reg.host}/no/such:v1`)), 'not-found');
  assert.equal(await client.head(parseReference(`${reg.host}/a/one:nope`)), undefined, 'head: the GET tells');
  // A registry that does not answer HEAD on manifests: no verdict (a GET would tell).
  const noHead = await startProxy(reg.url, (req) =>
    req.method === 'HEAD' ? { respond: { status: 405, body: '' } } : undefined,
  );
  stops.push(noHead.stop);
  assert.equal(await client.lookup(parseReference(`${noHead.host}/a/one:nope`)), undefined);
  await client.close();
});

test('a registry that takes connections and never answers: one retry, told about, then a clear error', async () => {
  // TLS hellos are dropped at once (as a plain-HTTP server would refuse them); plain requests are
  // read and never answered.
  const plainTries: Socket[] = [];
  let tlsHellos = 0;
  const silent = createNetServer((s) => {
    s.on('error', () => {});
    s.once('data', (first: Buffer) => {
      if (first[0] === 0x16) {
        tlsHellos++;
        s.destroy();
      } else plainTries.push(s);
    });
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  stops.push(
    () =>
      new Promise<void>((r) => {
        for (const s of plainTries) s.destroy();
        silent.close(() => r());
      }),
  );
  const port = (silent.address() as AddressInfo).port;
  const notices: RetryNotice[] = [];
  const client = new RegistryClient({
    stallTimeoutMs: 300,
    retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 20 },
    onRetry: (n) => notices.push(n),
  });
  await assert.rejects(client.manifest(parseReference(`127.0.0.1:${port}/a/b:v1`)), (e: Error) => {
    assert.equal((e as { code?: string }).code, 'NETWORK');
    assert.match(e.message, /sent no answer in time \(UND_ERR_HEADERS_TIMEOUT\)/);
    return true;
  });
  // Twice over plain HTTP, not four times: a timeout costs the user the whole wait each time.
  assert.equal(plainTries.length, 2);
  // HTTPS to a loopback host not known to speak TLS is a probe: one try, not four.
  assert.equal(tlsHellos, 1);
  const timeouts = notices.filter((n) => n.reason === 'UND_ERR_HEADERS_TIMEOUT');
  assert.equal(timeouts.length, 1);
  assert.deepEqual(
    { attempt: timeouts[0]!.attempt, attempts: timeouts[0]!.attempts, url: timeouts[0]!.url },
    { attempt: 2, attempts: 2, url: `http://127.0.0.1:${port}/v2/a/b/manifests/v1` },
  );
  await client.close();
});

test('a cancel ends a pull at once, even while a TLS connection is still being made', async () => {
  // Accepts the TCP connection and never answers the TLS hello: the connect waits for its timeout.
  const held: Socket[] = [];
  const silent = createNetServer((s) => {
    held.push(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  stops.push(
    () =>
      new Promise<void>((r) => {
        for (const s of held) s.destroy();
        silent.close(() => r());
      }),
  );
  const port = (silent.address() as AddressInfo).port;
  const client = new RegistryClient();
  const controller = new AbortController();
  const pulling = pull(
    await Store.open(await mkdtemp(join(work, 'cache-'))),
    client,
    `127.0.0.1:${port}/a/b:v1`,
    {
      signal: controller.signal,
    },
  );
  while (held.length === 0) await new Promise((r) => setTimeout(r, 10));
  controller.abort();
  await assert.rejects(pulling, (e: Error & { code?: string }) => e.code === 'ABORTED');
  // The pull gave up while the connection attempt was still open: it did not wait for it to end.
  assert.ok(
    held.some((s) => !s.destroyed && !s.readableEnded),
    'the connection was still being made',
  );
  await client.close();
});
