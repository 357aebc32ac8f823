// Bad content and interrupted pulls: tampering, oversized manifests, bad digests, resume, two
// processes at once, and tag pagination (a fake server: Distribution 2.8 ignores `n`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { parseReference } from '../../src/core/reference';
import { RegistryClient } from '../../src/core/registry/client';
import { CLI } from '../support/cli';
import { blobNames, clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let image: BuiltImage;
let big: BuiltImage;
let reg: RunningRegistry;
const stops: (() => Promise<void>)[] = [];
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-faults-'));
  image = await buildImage(join(work, 'small'), { tag: 'v1', seed: 'faults', layers: 2, layerSize: 150_000 });
  big = await buildImage(join(work, 'big'), {
    tag: 'v1',
    seed: 'big',
    platforms: ['linux/amd64'],
    index: false,
    layers: 3,
    layerSize: 6_000_000,
  });
  reg = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', reg, 'f/app:v1');
  await pushLayout(big.layoutDir, 'v1', reg, 'f/big:v1');
});

after(async () => {
  for (const s of stops.reverse()) await s();
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const store = async () => Store.open(await mkdtemp(join(work, 'cache-')));

async function ingestBytes(s: Store): Promise<number> {
  const root = join(s.dir, '.stowage', 'ingest');
  let total = 0;
  for (const d of await readdir(root).catch(() => [])) {
    total += (await stat(join(root, d, 'data')).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

describe('bad content never reaches the cache', () => {
  test('a tampered blob → DIGEST_MISMATCH, nothing committed under its name, no reference', async () => {
    const layer = image.platforms.find((p) => p.platform === 'linux/amd64')!.layers[0]!;
    const proxy = await startProxy(reg.url, (req) =>
      req.url?.endsWith(`/blobs/${layer.digest}`)
        ? { rewriteBody: (b) => Buffer.from(b.map((x) => x ^ 0xff)) }
        : undefined,
    );
    stops.push(proxy.stop);
    const s = await store();
    const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
    await assert.rejects(pull(s, client, `${proxy.host}/f/app:v1`, { platforms: amd64 }), {
      code: 'DIGEST_MISMATCH',
    });
    assert.ok(!(await blobNames(s)).has(layer.digest));
    assert.equal((await s.listReferences()).length, 0);
    await verifyAllBlobs(s);
    await client.close();
  });

  test('a manifest over 4 MiB is refused before parsing', async () => {
    const huge = Buffer.alloc(5 * 1024 * 1024, 0x20);
    const proxy = await startProxy(reg.url, (req) =>
      req.url?.includes('/manifests/')
        ? {
            respond: {
              status: 200,
              headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
              body: huge,
            },
          }
        : undefined,
    );
    stops.push(proxy.stop);
    const s = await store();
    const client = new RegistryClient();
    await assert.rejects(pull(s, client, `${proxy.host}/f/app:v1`), { code: 'TOO_LARGE' });
    assert.equal((await s.listReferences()).length, 0);
    await client.close();
  });

  test('a manifest naming a digest with path characters is rejected', async () => {
    const body = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: 'sha256:../../../etc/passwd',
        size: 2,
      },
      layers: [],
    });
    const proxy = await startProxy(reg.url, (req) =>
      req.url?.includes('/manifests/')
        ? {
            respond: {
              status: 200,
              headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
              body,
            },
          }
        : undefined,
    );
    stops.push(proxy.stop);
    const s = await store();
    const client = new RegistryClient();
    await assert.rejects(pull(s, client, `${proxy.host}/f/app:v1`), { code: 'MANIFEST_INVALID' });
    assert.equal((await blobNames(s)).size, 0);
    await client.close();
  });

  test('references with bad digests are refused before any request', async () => {
    const s = await store();
    const { client, requests } = clientFor(reg);
    for (const bad of [
      `${reg.host}/f/app@sha256:../x`,
      `${reg.host}/f/app@sha256:abc`,
      `${reg.host}/f/app@md5:00`,
    ]) {
      await assert.rejects(pull(s, client, bad), { code: 'INVALID_REFERENCE' });
    }
    await assert.rejects(pull(s, client, 'scratch'), { code: 'RESERVED_NAME' });
    assert.equal(requests.length, 0);
    await client.close();
  });
});

describe('interrupted pulls', () => {
  /** Starts a pull through a proxy that stalls `layer` after 3 MB; cancels once part of it is on disk. */
  async function interrupted(s: Store, layerDigest: string, stripRange: boolean) {
    let first = true;
    const proxy = await startProxy(reg.url, (req) => {
      if (stripRange) delete req.headers.range;
      if (first && req.method === 'GET' && req.url?.endsWith(`/blobs/${layerDigest}`)) {
        first = false;
        return { passBytes: 3_000_000 };
      }
      return undefined;
    });
    stops.push(proxy.stop);
    const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
    const controller = new AbortController();
    const pulling = pull(s, client, `${proxy.host}/f/big:v1`, { signal: controller.signal });
    const folder = join(s.dir, '.stowage', 'ingest', layerDigest.replace(':', '-'), 'data');
    while (((await stat(folder).catch(() => undefined))?.size ?? 0) < 1_000_000) {
      await new Promise((r) => setTimeout(r, 20));
    }
    controller.abort();
    await assert.rejects(pulling, { code: 'ABORTED' });
    await client.close();
    return proxy;
  }

  test('a cancel while a broken blob transfer waits to be retried is a typed ABORTED', async () => {
    const s = await store();
    const controller = new AbortController();
    const layer = big.platforms[0]!.layers[0]!;
    const proxy = await startProxy(reg.url, (req) => {
      if (req.method === 'GET' && req.url?.endsWith(`/blobs/${layer.digest}`)) {
        // A body that ends early: the pull keeps the prefix and waits (backoff, ≥100 ms) to
        // resume; the cancel lands in that wait.
        setTimeout(() => controller.abort(), 30);
        return { respond: { status: 200, body: Buffer.alloc(1000) } };
      }
      return undefined;
    });
    stops.push(proxy.stop);
    const client = new RegistryClient({});
    const pulling = pull(s, client, `${proxy.host}/f/big:v1`, { signal: controller.signal, concurrency: 1 });
    await assert.rejects(pulling, (e) => e instanceof StowageError && e.code === 'ABORTED');
    await client.close();
  });

  test('a link that drops every MB still brings a 6 MB layer: tries that make progress do not use up the attempts', async () => {
    const layer = big.platforms[0]!.layers[0]!;
    let cuts = 0;
    const proxy = await startProxy(reg.url, (req) => {
      if (req.method !== 'GET' || !req.url?.endsWith(`/blobs/${layer.digest}`)) return undefined;
      cuts++;
      return { passBytes: 1_000_000 };
    });
    stops.push(proxy.stop);
    const s = await store();
    const client = new RegistryClient({ stallTimeoutMs: 300, retry: { baseDelayMs: 10, maxDelayMs: 20 } });
    // Three attempts would end at 3 MB if every try counted.
    const r = await pull(s, client, `${proxy.host}/f/big:v1`, { blobAttempts: 3, concurrency: 1 });
    assert.equal(r.digest, big.digest);
    assert.ok(cuts >= 6, `the layer came in ${cuts} tries`);
    await verifyAllBlobs(s);
    await client.close();
  });

  test('blob requests that never get an answer from a plain-HTTP registry: the timeout is the error, not its TLS refusal', async () => {
    // Manifests are answered; blob GETs are read and left hanging.
    const proxy = await startProxy(reg.url, (req) =>
      req.url?.includes('/blobs/') ? new Promise<undefined>(() => {}) : undefined,
    );
    stops.push(proxy.stop);
    const client = new RegistryClient({
      stallTimeoutMs: 300,
      retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 },
    });
    await assert.rejects(
      pull(await store(), client, `${proxy.host}/f/app:v1`, { platforms: amd64, blobAttempts: 1 }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'NETWORK', `${e}`);
        assert.match(e.message, /http:\/\/127\.0\.0\.1.*sent no answer in time/);
        assert.doesNotMatch(e.message, /TLS|SSL/);
        return true;
      },
    );
    await client.close();
  });

  test('cancel midway, then re-pull downloads only the missing bytes', async () => {
    const s = await store();
    const layer = big.platforms[0]!.layers[1]!;
    await interrupted(s, layer.digest, false);
    assert.equal((await s.listReferences()).length, 0, 'a cancelled pull records nothing');
    const committed = [...(await blobNames(s))];
    const blobs = [...big.platforms[0]!.layers, big.platforms[0]!.config];
    const committedBytes = blobs.filter((b) => committed.includes(b.digest)).reduce((n, b) => n + b.size, 0);
    const partial = await ingestBytes(s);
    assert.ok(partial >= 1_000_000, 'the interrupted blob keeps its partial data');
    const total = blobs.reduce((n, b) => n + b.size, 0);
    const { client, requests } = clientFor(reg);
    const again = await pull(s, client, `${reg.host}/f/big:v1`);
    assert.equal(again.totalBytes, total);
    assert.equal(
      again.bytesDownloaded,
      total - committedBytes - partial,
      'resumed: only missing bytes fetched',
    );
    assert.ok(
      requests.some((q) => q.status === 206),
      'the registry answered a Range request',
    );
    assert.ok(await verifyAllBlobs(s));
    await client.close();
  });

  test('a server that ignores Range still resumes correctly (held bytes are skipped)', async () => {
    const s = await store();
    const layer = big.platforms[0]!.layers[0]!;
    const proxy = await interrupted(s, layer.digest, true);
    const client = new RegistryClient({ retry: { baseDelayMs: 10 } });
    const r = await pull(s, client, `${proxy.host}/f/big:v1`);
    assert.equal(r.digest, big.digest);
    assert.ok(await verifyAllBlobs(s));
    assert.ok(
      proxy.requests.filter((q) => q.path.endsWith(`/blobs/${layer.digest}`)).length === 2,
      'the stalled blob was fetched again in full (200) and its held prefix skipped',
    );
    await client.close();
  });

  test('two processes pulling the same image at once both succeed, one download per blob', async () => {
    const proxy = await startProxy(reg.url);
    stops.push(proxy.stop);
    const cache = await mkdtemp(join(work, 'shared-'));
    const ref = `${proxy.host}/f/big:v1`;
    const runCli = () =>
      new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [CLI, 'pull', ref, '--cache', cache, '--json'], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => {
          stderr += d;
        });
        child.on('close', (code) => resolve({ code, stderr }));
      });
    const [a, b] = await Promise.all([runCli(), runCli()]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    for (const l of big.platforms[0]!.layers) {
      const gets = proxy.requests.filter((q) => q.method === 'GET' && q.path.endsWith(`/blobs/${l.digest}`));
      assert.equal(gets.length, 1, `layer ${l.digest} downloaded once`);
    }
    const s = await Store.open(cache);
    assert.equal((await s.listReferences()).length, 1);
    assert.ok(await verifyAllBlobs(s));
  });
});

describe('tags', () => {
  test('pages lazily with n and Link, and refuses a Link to another host', async () => {
    const all = Array.from({ length: 250 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    const asked: string[] = [];
    const server = createServer((req, res) => {
      const u = new URL(req.url!, 'http://x');
      asked.push(u.search);
      if (u.pathname === '/v2/') return res.writeHead(200).end('{}');
      const n = Number(u.searchParams.get('n') ?? all.length);
      const last = u.searchParams.get('last');
      const start = last ? all.indexOf(last) + 1 : 0;
      const page = all.slice(start, start + n);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (start + n < all.length) {
        const host = u.pathname.includes('evil') ? 'http://elsewhere.invalid' : '';
        headers.link = `<${host}${u.pathname}?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
      }
      res.writeHead(200, headers).end(JSON.stringify({ name: 'x', tags: page }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    stops.push(() => new Promise<void>((r) => server.close(() => r())));
    const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
    const client = new RegistryClient();
    const pages = client.tags(parseReference(`${host}/big/repo`), { pageSize: 100 });
    const first = await pages.next();
    assert.deepEqual(first.value, all.slice(0, 100));
    assert.equal(asked.filter((q) => q.includes('n=')).length, 1, 'only one page fetched so far');
    const rest: string[] = [];
    for await (const p of pages) rest.push(...p);
    assert.deepEqual(rest, all.slice(100));
    const evil = client.tags(parseReference(`${host}/evil/repo`), { pageSize: 100 });
    await evil.next();
    await assert.rejects(evil.next(), /another host/);
    await client.close();
  });
});
