// A large layer over several connections, against hostile servers: a raw node:net fake registry
// whose blob answers each test shapes (lying Content-Range, more or fewer bytes than asked, resets,
// a 200 to a range, slow, silent or failing parts, 429s), cancels at random moments with the
// partial file checked byte for byte, two pulls into one store, folder states a crash leaves, and
// the same through a real Distribution registry. A fake only where Distribution cannot produce the
// case. Every pull has a deadline (a hang guard, not a speed goal). STOWAGE_SPLIT_CANCELS,
// STOWAGE_SPLIT_SEEDS and STOWAGE_SPLIT_SEED make the random parts heavier or pick other seeds.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { promises as fs, readdirSync, readlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../../src/core/digest';
import { isStowageError, StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { MIN_PART } from '../../src/core/pull/fetch';
import { type PullEvent, type PullResult, pull } from '../../src/core/pull/pull';
import { RegistryClient } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { Store } from '../../src/core/store';
import { PARTS_MARKER } from '../../src/core/store/ingest';
import { clientFor, TestBed } from '../support/engine';
import { seededRandom, startFaultProxy } from '../support/fault-proxy';
import { buildImage } from '../support/fixtures';
import { startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const MiB = 1024 * 1024;
const amd64 = [parsePlatform('linux/amd64')];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sha = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;

// ---------------------------------------------------------------------------------------------
// A fake registry on raw sockets: keep-alive, one request at a time per connection.

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Parsed Range: [start, end) (end undefined for `bytes=a-`). */
  range?: { start: number; end?: number };
  raw?: string;
  /** Index among all blob requests of this server. */
  n: number;
  conn: number;
}

interface Image {
  layers: Buffer[];
  config: Buffer;
  manifest: Buffer;
  digest: Digest;
  layerDigests: Digest[];
}

function makeImage(layers: Buffer[]): Image {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => sha(l)) },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(config),
        size: config.length,
      },
      layers: layers.map((l) => ({
        mediaType: 'application/vnd.oci.image.layer.v1.tar',
        digest: sha(l),
        size: l.length,
      })),
    }),
  );
  return { layers, config, manifest, digest: sha(manifest), layerDigests: layers.map((l) => sha(l)) };
}

type BlobHandler = (req: Req, data: Buffer, sock: Socket) => Promise<unknown>;

interface Fake {
  host: string;
  ref: string;
  requests: Req[];
  /** Requests for a layer (not the config). */
  layerGets(): Req[];
  bounded(): Req[];
  conns: Set<Socket>;
  stop(): Promise<void>;
}

async function waitWritable(sock: Socket): Promise<void> {
  if (sock.destroyed) return;
  await new Promise<void>((resolve) => {
    const done = () => {
      sock.off('drain', done);
      sock.off('close', done);
      resolve();
    };
    sock.on('drain', done);
    sock.on('close', done);
  });
}

async function write(sock: Socket, bytes: Buffer | string): Promise<void> {
  if (sock.destroyed) return;
  if (!sock.write(bytes)) await waitWritable(sock);
}

/** Sends `body` in chunks; `rate` in bytes/s per connection; stops quietly if the peer goes. */
async function sendBody(sock: Socket, body: Buffer, rate?: number, chunk = 256 * 1024): Promise<void> {
  const started = Date.now();
  for (let at = 0; at < body.length && !sock.destroyed; at += chunk) {
    await write(sock, body.subarray(at, Math.min(at + chunk, body.length)));
    if (rate) {
      const due = started + ((at + chunk) / rate) * 1000;
      const wait = due - Date.now();
      if (wait > 0) await sleep(wait);
    }
  }
}

function head(status: number, headers: Record<string, string | number>): string {
  const reason = { 200: 'OK', 206: 'Partial Content', 404: 'Not Found', 416: 'Range Not Satisfiable' }[
    status
  ];
  let s = `HTTP/1.1 ${status} ${reason ?? 'X'}\r\n`;
  for (const [k, v] of Object.entries(headers)) s += `${k}: ${v}\r\n`;
  return `${s}\r\n`;
}

interface ServeOpts {
  rate?: number;
  /** Wait this long after the head before the body. */
  delayMs?: number;
}

/** The honest answer: 206 with the exact range asked, or 200 with Accept-Ranges. */
async function serveHonest(req: Req, data: Buffer, sock: Socket, opts: ServeOpts = {}): Promise<void> {
  if (req.range) {
    const end = Math.min(req.range.end ?? data.length, data.length);
    const start = req.range.start;
    if (start >= data.length && data.length > 0) {
      await write(sock, head(416, { 'content-length': 0, 'content-range': `bytes */${data.length}` }));
      return;
    }
    await write(
      sock,
      head(206, {
        'content-length': end - start,
        'content-range': `bytes ${start}-${end - 1}/${data.length}`,
        'accept-ranges': 'bytes',
        'content-type': 'application/octet-stream',
      }),
    );
    if (opts.delayMs) await sleep(opts.delayMs);
    if (req.method !== 'HEAD') await sendBody(sock, data.subarray(start, end), opts.rate);
    return;
  }
  await write(
    sock,
    head(200, {
      'content-length': data.length,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
    }),
  );
  if (opts.delayMs) await sleep(opts.delayMs);
  if (req.method !== 'HEAD') await sendBody(sock, data, opts.rate);
}

async function startFake(image: Image, blob: BlobHandler = async () => 'default'): Promise<Fake> {
  const requests: Req[] = [];
  const conns = new Set<Socket>();
  const blobs = new Map<string, Buffer>([[sha(image.config), image.config]]);
  for (const l of image.layers) blobs.set(sha(l), l);
  let blobCount = 0;
  let connCount = 0;
  const server: Server = createServer((sock) => {
    conns.add(sock);
    const conn = connCount++;
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => {});
    let buf = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        for (;;) {
          const i = buf.indexOf('\r\n\r\n');
          if (i < 0 || sock.destroyed) break;
          const lines = buf.subarray(0, i).toString('latin1').split('\r\n');
          buf = buf.subarray(i + 4);
          const [method = 'GET', path = '/'] = lines[0]!.split(' ');
          const headers: Record<string, string> = {};
          for (const l of lines.slice(1)) {
            const c = l.indexOf(':');
            if (c > 0) headers[l.slice(0, c).trim().toLowerCase()] = l.slice(c + 1).trim();
          }
          const req: Req = { method, path, headers, n: -1, conn };
          if (headers.range) {
            req.raw = headers.range;
            const m = /^bytes=(\d+)-(\d*)$/.exec(headers.range);
            if (m) req.range = { start: Number(m[1]), ...(m[2] ? { end: Number(m[2]) + 1 } : {}) };
          }
          requests.push(req);
          await handle(req, sock);
          if (headers.connection === 'close') sock.end();
        }
      } catch {
        sock.destroy();
      } finally {
        busy = false;
      }
      if (buf.indexOf('\r\n\r\n') >= 0 && !sock.destroyed) void pump();
    };
    sock.on('data', (d: Buffer) => {
      // A TLS ClientHello (the client tries https first): answer as a plain HTTP server does.
      if (buf.length === 0 && d[0] === 0x16) {
        sock.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
        return;
      }
      buf = Buffer.concat([buf, d]);
      void pump();
    });
  });
  const handle = async (req: Req, sock: Socket) => {
    const mediaType = 'application/vnd.oci.image.manifest.v1+json';
    if (req.path === '/v2/' || req.path === '/v2') {
      await write(sock, head(200, { 'content-length': 2, 'content-type': 'application/json' }));
      if (req.method !== 'HEAD') await write(sock, '{}');
      return;
    }
    const mm = /^\/v2\/test\/img\/manifests\/(.+)$/.exec(req.path);
    if (mm && (mm[1] === 'v1' || mm[1] === image.digest)) {
      await write(
        sock,
        head(200, {
          'content-length': image.manifest.length,
          'content-type': mediaType,
          'docker-content-digest': image.digest,
        }),
      );
      if (req.method !== 'HEAD') await write(sock, image.manifest);
      return;
    }
    const bm = /^\/v2\/test\/img\/blobs\/(sha256:[0-9a-f]{64})$/.exec(req.path);
    const data = bm ? blobs.get(bm[1]!) : undefined;
    if (data) {
      req.n = blobCount++;
      if (data === image.config) return serveHonest(req, data, sock);
      if ((await blob(req, data, sock)) === 'default') await serveHonest(req, data, sock);
      return;
    }
    await write(sock, head(404, { 'content-length': 0 }));
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const host = `127.0.0.1:${port}`;
  const layerSet = new Set(image.layerDigests.map((d) => `/v2/test/img/blobs/${d}`));
  const fake: Fake = {
    host,
    ref: `${host}/test/img:v1`,
    requests,
    conns,
    layerGets: () => requests.filter((r) => layerSet.has(r.path)),
    bounded: () => requests.filter((r) => layerSet.has(r.path) && r.range?.end !== undefined),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of conns) s.destroy();
        server.close(() => resolve());
      }),
  };
  stops.push(fake.stop);
  return fake;
}

// ---------------------------------------------------------------------------------------------
// Helpers: stores, clients, checks.

const stops: (() => Promise<void>)[] = [];
let work = '';
after(async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  if (work) await fs.rm(work, { recursive: true, force: true });
});

async function newStore(): Promise<Store> {
  if (!work) work = await fs.mkdtemp(join(tmpdir(), 'split-review-'));
  return Store.open(await fs.mkdtemp(join(work, 'cache-')));
}

function newClient(stallTimeoutMs = 5_000): RegistryClient {
  const client = new RegistryClient({
    credentials: new StaticCredentials(),
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
    stallTimeoutMs,
  });
  stops.push(() => client.close());
  return client;
}

/** File descriptors of this process open on something under `dir`. */
function fdsInto(dir: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      if (target.startsWith(dir)) out.push(target);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

interface Watch {
  onEvent: (e: PullEvent) => void;
  over: string[];
  last?: { bytesDone: number; bytesTotal: number };
}

function watchProgress(): Watch {
  const w: Watch = {
    over: [],
    onEvent: (e) => {
      if (e.type !== 'progress') return;
      if (e.bytesDone > e.bytesTotal || e.bytesDone < 0) w.over.push(`${e.bytesDone}/${e.bytesTotal}`);
      w.last = { bytesDone: e.bytesDone, bytesTotal: e.bytesTotal };
    },
  };
  return w;
}

interface PullRun {
  result?: PullResult;
  error?: unknown;
  ms: number;
  watch: Watch;
}

async function runPull(
  store: Store,
  client: RegistryClient,
  fake: Fake,
  opts: { concurrency?: number; signal?: AbortSignal; deadlineMs?: number; blobAttempts?: number } = {},
): Promise<PullRun> {
  const watch = watchProgress();
  const deadline = AbortSignal.timeout(opts.deadlineMs ?? 15_000);
  const signal = opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline;
  const t0 = Date.now();
  try {
    const result = await pull(store, client, fake.ref, {
      platforms: amd64,
      concurrency: opts.concurrency ?? 4,
      signal,
      onEvent: watch.onEvent,
      ...(opts.blobAttempts ? { blobAttempts: opts.blobAttempts } : {}),
    });
    return { result, ms: Date.now() - t0, watch };
  } catch (error) {
    return { error, ms: Date.now() - t0, watch };
  }
}

function describeError(e: unknown): string {
  return e instanceof StowageError ? `${e.code}: ${e.message}` : String((e as Error)?.stack ?? e);
}

/** The blob files all hash to their names; returns their names. */
async function verifyBlobs(store: Store): Promise<string[]> {
  const dir = join(store.dir, 'blobs', 'sha256');
  const names = await fs.readdir(dir).catch(() => [] as string[]);
  for (const hex of names) {
    const actual = createHash('sha256')
      .update(await fs.readFile(join(dir, hex)))
      .digest('hex');
    assert.equal(actual, hex, `blob ${hex} hashes to ${actual}`);
  }
  return names.map((h) => `sha256:${h}`);
}

async function ingestLeft(store: Store): Promise<string[]> {
  const dir = join(store.dir, '.stowage', 'ingest');
  const out: string[] = [];
  for (const f of await fs.readdir(dir).catch(() => [] as string[])) {
    for (const g of await fs.readdir(join(dir, f)).catch(() => [] as string[])) out.push(`${f}/${g}`);
    if (!(await fs.readdir(join(dir, f)).catch(() => [])).length) out.push(`${f}/`);
  }
  return out;
}

/** A successful pull: verified, progress ended at the total, nothing left in ingest, no fds. */
async function assertClean(store: Store, image: Image, run: PullRun): Promise<void> {
  assert.ok(run.result, `pull failed after ${run.ms} ms: ${describeError(run.error)}`);
  assert.equal(run.result.digest, image.digest);
  const blobs = await verifyBlobs(store);
  for (const d of image.layerDigests) assert.ok(blobs.includes(d), `layer ${d} in the store`);
  assert.deepEqual(run.watch.over, [], 'progress never above the total');
  if (!run.result.fromCache) {
    assert.ok(run.watch.last, 'a progress event');
    assert.equal(run.watch.last.bytesDone, run.watch.last.bytesTotal, 'progress ends at the total');
  }
  assert.deepEqual(await ingestLeft(store), [], 'no ingest folder left');
  assert.deepEqual(fdsInto(store.dir), [], 'no descriptor left open in the cache');
}

/** After a failed or cancelled pull: the layer's partial file is a gap-free prefix, no marker. */
async function assertPrefix(store: Store, layer: Buffer): Promise<number> {
  const folder = store.ingestPath(sha(layer));
  await assert.rejects(fs.access(join(folder, PARTS_MARKER)), 'no parts marker after a clean stop');
  assert.deepEqual(fdsInto(store.dir), [], 'no descriptor left open in the cache');
  const data = await fs.readFile(join(folder, 'data')).catch(() => undefined);
  if (!data) return 0;
  assert.ok(data.length <= layer.length, 'partial not longer than the layer');
  const i = firstDiff(data, layer);
  assert.equal(i, -1, `the partial file differs from the layer at byte ${i} of ${data.length}`);
  return data.length;
}

function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let at = 0; at < n; at += MiB) {
    const end = Math.min(at + MiB, n);
    if (!a.subarray(at, end).equals(b.subarray(at, end))) {
      for (let i = at; i < end; i++) if (a[i] !== b[i]) return i;
    }
  }
  return -1;
}

const layerOf = (size: number) => randomBytes(size);

// ---------------------------------------------------------------------------------------------

describe('split download: sizes at the edges', () => {
  for (const [name, size, parts] of [
    ['2*MIN_PART-1 (never split)', 2 * MIN_PART - 1, 0],
    ['2*MIN_PART (one split)', 2 * MIN_PART, 1],
    ['2*MIN_PART+1 (one split)', 2 * MIN_PART + 1, 1],
  ] as const) {
    test(`a layer of ${name}`, async () => {
      const layer = layerOf(size);
      const image = makeImage([layer]);
      // The owner's body starts a little late: idle slots see all of it still to come.
      const fake = await startFake(image, async (req, data, sock) =>
        serveHonest(req, data, sock, req.range ? {} : { delayMs: 50 }),
      );
      const store = await newStore();
      const run = await runPull(store, newClient(), fake, { concurrency: 4 });
      await assertClean(store, image, run);
      const b = fake.bounded();
      assert.equal(b.length, parts, JSON.stringify(fake.layerGets().map((r) => r.raw ?? null)));
      if (parts) assert.equal(b[0]!.raw, `bytes=${MIN_PART}-${size - 1}`);
      assert.equal(run.result!.bytesDownloaded, run.result!.totalBytes);
    });
  }

  test('an empty layer (and a server that sends a byte for it: SIZE_MISMATCH, nothing stored)', async () => {
    const empty = Buffer.alloc(0);
    const image = makeImage([empty, layerOf(3 * MIN_PART)]);
    const fake = await startFake(image);
    const store = await newStore();
    await assertClean(store, image, await runPull(store, newClient(), fake));

    const liar = await startFake(image, async (_req, data, sock) => {
      if (data.length > 0) return 'default';
      await write(sock, head(200, { 'content-length': 1 }));
      await write(sock, 'x');
    });
    const store2 = await newStore();
    const run = await runPull(store2, newClient(), liar);
    assert.ok(isStowageError(run.error, 'SIZE_MISMATCH'), describeError(run.error));
    assert.ok(!(await verifyBlobs(store2)).includes(sha(empty)));
    assert.deepEqual(fdsInto(store2.dir), []);
  });
});

describe('split download: many connections', () => {
  test('concurrency 8, a 64 MiB layer over rate-limited connections: many splits, one verified blob', async () => {
    const layer = layerOf(64 * MiB);
    const image = makeImage([layer]);
    // 48 MB/s per connection: the owner alone would need ~1.4 s; splits cascade meanwhile.
    const fake = await startFake(image, async (req, data, sock) =>
      serveHonest(req, data, sock, { rate: 48e6 }),
    );
    const store = await newStore();
    const run = await runPull(store, newClient(), fake, { concurrency: 8 });
    await assertClean(store, image, run);
    const b = fake.bounded();
    assert.ok(b.length >= 4, `splits: ${b.map((r) => r.raw).join(' ')}`);
    // Each bounded range is at least MIN_PART and they never overlap.
    const spans = b.map((r) => [r.range!.start, r.range!.end!] as const).sort((x, y) => x[0] - y[0]);
    for (const [s, e] of spans) assert.ok(e - s >= MIN_PART, `part ${s}-${e} smaller than MIN_PART`);
    assert.equal(run.result!.bytesDownloaded, run.result!.totalBytes, 'every byte downloaded once');
  });

  test('two large layers and a slow one among them: slots move between blobs', async () => {
    const a = layerOf(40 * MiB);
    const b = layerOf(24 * MiB);
    const image = makeImage([a, b]);
    const fake = await startFake(image, async (req, data, sock) =>
      serveHonest(req, data, sock, { rate: data === a ? 30e6 : 60e6 }),
    );
    const store = await newStore();
    const run = await runPull(store, newClient(), fake, { concurrency: 6 });
    await assertClean(store, image, run);
    assert.ok(fake.bounded().length >= 2);
  });
});

/** Serves bounded ranges with `part`, everything else honestly. */
/** The honest head of a 206 for the range asked; the body is the caller's. */
async function partHead(req: Req, data: Buffer, sock: Socket): Promise<{ start: number; end: number }> {
  const { start, end } = req.range as { start: number; end: number };
  await write(
    sock,
    head(206, { 'content-length': end - start, 'content-range': `bytes ${start}-${end - 1}/${data.length}` }),
  );
  return { start, end };
}

function partsBy(
  part: (req: Req, data: Buffer, sock: Socket) => Promise<unknown>,
  owner: ServeOpts = { delayMs: 30 },
): BlobHandler {
  return async (req, data, sock) => {
    if (req.range?.end !== undefined) return part(req, data, sock);
    await serveHonest(req, data, sock, owner);
  };
}

describe('split download: hostile answers to a part', () => {
  const size = 3 * MIN_PART + 12345;

  async function pullWith(handler: BlobHandler, concurrency = 4) {
    const layer = layerOf(size);
    const image = makeImage([layer]);
    const fake = await startFake(image, handler);
    const store = await newStore();
    const run = await runPull(store, newClient(1_500), fake, { concurrency });
    return { layer, image, fake, store, run };
  }

  test('more bytes than asked in the body (Content-Length covers them): the extra is not written', async () => {
    const { image, store, run, fake } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start, end } = req.range as { start: number; end: number };
        const body = Buffer.concat([data.subarray(start, end), randomBytes(3 * MiB)]);
        await write(
          sock,
          head(206, {
            'content-length': body.length,
            'content-range': `bytes ${start}-${end - 1}/${data.length}`,
          }),
        );
        await sendBody(sock, body);
      }),
    );
    await assertClean(store, image, run);
    assert.ok(fake.bounded().length >= 1);
  });

  test('more bytes than asked after the body (stray bytes on the kept-alive connection)', async () => {
    const { image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start, end } = await partHead(req, data, sock);
        await sendBody(sock, Buffer.concat([data.subarray(start, end), randomBytes(MiB)]));
      }),
    );
    await assertClean(store, image, run);
  });

  test('a matching Content-Range, a body shorter than it (honest short Content-Length)', async () => {
    const { image, store, run, fake } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start, end } = req.range as { start: number; end: number };
        const short = 2 * MiB + 777;
        await write(
          sock,
          head(206, { 'content-length': short, 'content-range': `bytes ${start}-${end - 1}/${data.length}` }),
        );
        await sendBody(sock, data.subarray(start, start + short));
      }),
    );
    await assertClean(store, image, run);
    const part = fake.bounded()[0]!;
    const resumes = fake.layerGets().filter((r) => r.range && r.range.end === undefined);
    assert.ok(
      resumes.some((r) => r.range!.start === part.range!.start + 2 * MiB + 777),
      `the owner resumed right after the part's bytes: ${fake
        .layerGets()
        .map((r) => r.raw)
        .join(' ')}`,
    );
  });

  test('a matching Content-Range and Content-Length, the connection closed early', async () => {
    const { image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start } = await partHead(req, data, sock);
        await sendBody(sock, data.subarray(start, start + 1234567));
        sock.end();
      }),
    );
    await assertClean(store, image, run);
  });

  test('a reset in the middle of a part', async () => {
    const { image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start } = await partHead(req, data, sock);
        await sendBody(sock, data.subarray(start, start + 3 * MiB + 5));
        await sleep(20);
        sock.resetAndDestroy();
      }),
    );
    await assertClean(store, image, run);
  });

  test('a part that stalls after its head: the owner takes over after the stall timeout', async () => {
    const { image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start } = await partHead(req, data, sock);
        await sendBody(sock, data.subarray(start, start + MiB));
        await new Promise((r) => sock.on('close', r));
      }),
    );
    await assertClean(store, image, run);
  });

  test('a 200 with the whole blob to a range: the owner fetches the rest, no more splits', async () => {
    const { image, store, run, fake } = await pullWith(
      partsBy(async (req, data, sock) => serveHonest({ ...req, range: undefined }, data, sock)),
    );
    await assertClean(store, image, run);
    assert.equal(fake.bounded().length, 1, 'one refused part, then none');
  });

  test('a 206 whose Content-Range is off by one: refused', async () => {
    const { image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start, end } = req.range as { start: number; end: number };
        await write(
          sock,
          head(206, {
            'content-length': end - start,
            'content-range': `bytes ${start + 1}-${end}/${data.length}`,
          }),
        );
        await sendBody(sock, data.subarray(start + 1, end + 1));
      }),
    );
    await assertClean(store, image, run);
  });

  test('500 / 404 / 416 to ranges: the pull still completes', async () => {
    for (const status of [500, 404, 416]) {
      const { image, store, run } = await pullWith(
        partsBy(async (_req, _data, sock) => {
          await write(sock, head(status, { 'content-length': 2 }));
          await write(sock, '{}');
        }),
      );
      await assertClean(store, image, run);
    }
  });

  test('a matching Content-Range over other bytes: DIGEST_MISMATCH, nothing committed, a re-pull from an honest server works', async () => {
    const { layer, image, store, run } = await pullWith(
      partsBy(async (req, data, sock) => {
        const { start, end } = await partHead(req, data, sock);
        // The bytes from the start of the blob (a server that ignores Range but says 206).
        await sendBody(sock, data.subarray(0, end - start));
      }),
    );
    assert.ok(isStowageError(run.error, 'DIGEST_MISMATCH'), describeError(run.error));
    assert.ok(!(await verifyBlobs(store)).includes(sha(layer)), 'the layer was not committed');
    assert.deepEqual(fdsInto(store.dir), []);
    assert.deepEqual(await ingestLeft(store), [], 'the bad partial was removed');
    const honest = await startFake(image);
    await assertClean(store, image, await runPull(store, newClient(), honest));
  });
});

// A single connection moves the 16 MiB layer below in ~0.1 s here. A split hands its upper 8 MiB
// to a part; nothing ever takes that range back from a part that is slow, throttled or silent:
// the owner, done with its half, waits for the part (fetch.ts Download.run: `await part.settled`).
describe('split download: slow or failing parts and the owner that reaches them', () => {
  const size = 2 * MIN_PART;

  /** A pull of one layer with `handler`; the deadline only guards against a hang. */
  async function pullOne(handler: BlobHandler, stallTimeoutMs: number, bytes = size) {
    const layer = layerOf(bytes);
    const image = makeImage([layer]);
    const fake = await startFake(image, handler);
    const store = await newStore();
    const run = await runPull(store, newClient(stallTimeoutMs), fake, { concurrency: 4, deadlineMs: 20_000 });
    return { image, store, run, fake, layer };
  }

  /** The owner's own requests for the rest of the blob (open-ended ranges) after the first. */
  const ownerResumes = (fake: Fake) =>
    fake.layerGets().filter((r) => r.range !== undefined && r.range.end === undefined);

  test('parts trickle (1 MB/s), the owner is fast: it takes the range back instead of waiting', async () => {
    const { image, store, run, fake } = await pullOne(
      partsBy(async (req, data, sock) => serveHonest(req, data, sock, { rate: 1e6 }), { delayMs: 30 }),
      5_000,
    );
    await assertClean(store, image, run);
    const parts = fake.bounded();
    assert.equal(parts.length, 1, 'split once; after a part fell behind, not again');
    const start = parts[0]!.range!.start;
    const resumes = ownerResumes(fake);
    assert.equal(resumes.length, 1, 'the owner asked for the rest once');
    assert.ok(resumes[0]!.range!.start > start, 'after what the part had written, which is kept');
  });

  test('parts answered 429 Retry-After: 10: each range is asked once, the owner fetches it, no wait', async () => {
    const { image, store, run, fake } = await pullOne(
      partsBy(async (_req, _data, sock) => {
        await write(sock, head(429, { 'content-length': 2, 'retry-after': 10 }));
        await write(sock, '{}');
      }),
      5_000,
    );
    await assertClean(store, image, run);
    assert.equal(fake.bounded().length, 1, 'one range request, not retried, and no more splits');
    assert.deepEqual(
      ownerResumes(fake).map((r) => r.range!.start),
      [fake.bounded()[0]!.range!.start],
    );
  });

  test('a part whose server never answers: asked once; the owner takes the range back', async () => {
    const { image, store, run, fake } = await pullOne(
      partsBy(async (_req, _data, sock) => {
        await new Promise((r) => sock.on('close', r));
      }),
      60_000,
    );
    await assertClean(store, image, run);
    assert.equal(fake.bounded().length, 1, 'the silent range is not asked again');
    assert.deepEqual(
      ownerResumes(fake).map((r) => r.range!.start),
      [fake.bounded()[0]!.range!.start],
      'the owner fetched the whole range the silent part had taken',
    );
  });

  test('every range answered 503: one range request in all, then one connection', async () => {
    const { image, store, run, fake } = await pullOne(
      partsBy(
        async (_req, _data, sock) => {
          await write(sock, head(503, { 'content-length': 0 }));
        },
        { rate: 100e6 },
      ),
      5_000,
      64 * MiB,
    );
    await assertClean(store, image, run);
    const parts = fake.bounded();
    // Only the slots already out before the first 503 came back (3 besides the owner): none after.
    assert.ok(
      parts.length <= 3,
      fake
        .layerGets()
        .map((r) => r.raw)
        .join(' | '),
    );
    assert.equal(new Set(parts.map((r) => r.range!.start)).size, parts.length, 'no range asked twice');
  });

  test('the owner is slow, the parts fast: ranges move off the owner, the pull completes', async () => {
    const layer = layerOf(48 * MiB);
    const image = makeImage([layer]);
    const fake = await startFake(
      image,
      partsBy(async (req, data, sock) => serveHonest(req, data, sock), { rate: 12e6 }),
    );
    const store = await newStore();
    const run = await runPull(store, newClient(), fake, { concurrency: 4, deadlineMs: 10_000 });
    await assertClean(store, image, run);
    assert.ok(
      fake.bounded().length >= 2,
      fake
        .layerGets()
        .map((r) => r.raw)
        .join(' '),
    );
  });
});

describe('split download: cancellation at random moments', () => {
  test('cancelled at 12 random moments (some on a resumed partial): always a gap-free prefix, typed ABORTED, no marker, no fd; every store then completes and verifies', async (t) => {
    const layer = layerOf(40 * MiB);
    const image = makeImage([layer]);
    // 30 MB/s per connection: a whole pull with splits takes ~0.4 s.
    const fake = await startFake(image, async (req, data, sock) =>
      serveHonest(req, data, sock, { rate: 30e6 }),
    );
    const stores: Store[] = [];
    const log: string[] = [];
    let store!: Store;
    const cancels = Number(process.env.STOWAGE_SPLIT_CANCELS ?? 12);
    for (let i = 0; i < cancels; i++) {
      const partsBefore = fake.bounded().length;
      if (i % 2 === 0) {
        store = await newStore();
        stores.push(store);
      }
      const controller = new AbortController();
      const at = Math.floor(Math.random() * 400);
      const timer = setTimeout(() => controller.abort(), at);
      const run = await runPull(store, newClient(), fake, {
        concurrency: 4 + (i % 3),
        signal: controller.signal,
      });
      clearTimeout(timer);
      if (run.result) {
        log.push(`${i}: done before the cancel at ${at} ms`);
        await assertClean(store, image, run);
        continue;
      }
      assert.ok(isStowageError(run.error, 'ABORTED'), `cancel ${i} at ${at} ms: ${describeError(run.error)}`);
      const kept = await assertPrefix(store, layer);
      const left = (await fs.readdir(store.ingestPath(sha(layer))).catch(() => [] as string[])).sort();
      assert.ok(
        left.every((f) => f === 'data' || f === 'meta.json'),
        `cancel ${i}: left in the ingest folder: ${left.join(', ')}`,
      );
      log.push(
        `${i}: cancelled at ${at} ms, kept ${kept}, parts asked ${fake.bounded().length - partsBefore}`,
      );
    }
    for (const s of stores) {
      const kept = await assertPrefix(s, layer);
      const honest = await startFake(image);
      const run = await runPull(s, newClient(), honest);
      await assertClean(s, image, run);
      const first = honest.layerGets()[0];
      if (first)
        assert.equal(first.raw, kept ? `bytes=${kept}-` : undefined, 'resumed where the prefix ends');
    }
    t.diagnostic(log.join('; '));
    assert.equal(log.length, cancels);
  });

  test('cancelled exactly when a part request arrives, and when a part has sent its last byte', async () => {
    const layer = layerOf(3 * MIN_PART);
    const image = makeImage([layer]);
    for (const moment of ['part-request', 'part-done'] as const) {
      const controller = new AbortController();
      const fake = await startFake(image, async (req, data, sock) => {
        if (req.range?.end !== undefined && moment === 'part-request') controller.abort();
        await serveHonest(req, data, sock, { rate: req.range?.end !== undefined ? 200e6 : 30e6 });
        if (req.range?.end !== undefined && moment === 'part-done') controller.abort();
      });
      const store = await newStore();
      const run = await runPull(store, newClient(), fake, { signal: controller.signal });
      assert.ok(fake.bounded().length >= 1);
      assert.ok(isStowageError(run.error, 'ABORTED'), `${moment}: ${describeError(run.error)}`);
      await assertPrefix(store, layer);
      await assertClean(store, image, await runPull(store, newClient(), await startFake(image)));
    }
  });
});

describe('split download: two pulls of one image into one store', () => {
  test('at once (they share the per-blob lock): both succeed, one verified blob, nothing left', async () => {
    const layer = layerOf(40 * MiB);
    const image = makeImage([layer]);
    const fake = await startFake(image, async (req, data, sock) =>
      serveHonest(req, data, sock, { rate: 60e6 }),
    );
    const store = await newStore();
    const [a, b] = await Promise.all([
      runPull(store, newClient(), fake, { concurrency: 4 }),
      runPull(store, newClient(), fake, { concurrency: 6 }),
    ]);
    await assertClean(store, image, a);
    await assertClean(store, image, b);
    assert.ok(fake.bounded().length >= 1);
  });

  test('one is cancelled while it splits; the other, waiting on the lock, resumes its prefix and completes', async () => {
    const layer = layerOf(40 * MiB);
    const image = makeImage([layer]);
    const fake = await startFake(image, async (req, data, sock) =>
      serveHonest(req, data, sock, { rate: 40e6 }),
    );
    const store = await newStore();
    const controller = new AbortController();
    const first = runPull(store, newClient(), fake, { signal: controller.signal });
    await sleep(40);
    const second = runPull(store, newClient(), fake, { concurrency: 5 });
    while (fake.bounded().length === 0) await sleep(5);
    await sleep(Math.random() * 150);
    controller.abort();
    const a = await first;
    assert.ok(isStowageError(a.error, 'ABORTED') || a.result, describeError(a.error));
    await assertClean(store, image, await second);
  });
});

describe('split download: folder states a crash leaves (simulated)', () => {
  const size = 3 * MIN_PART;

  async function withState(
    state: (folder: string, layer: Buffer) => Promise<void>,
  ): Promise<{ fake: Fake; run: PullRun; image: Image; store: Store }> {
    const layer = layerOf(size);
    const image = makeImage([layer]);
    const store = await newStore();
    const folder = store.ingestPath(sha(layer));
    await fs.mkdir(folder, { recursive: true });
    await state(folder, layer);
    const fake = await startFake(image);
    const run = await runPull(store, newClient(), fake);
    await assertClean(store, image, run);
    return { fake, run, image, store };
  }

  test('prefix, a gap of zeros, a part’s bytes and the marker: started over', async () => {
    const { fake } = await withState(async (folder, layer) => {
      await fs.writeFile(
        join(folder, 'data'),
        Buffer.concat([
          layer.subarray(0, 5 * MiB),
          Buffer.alloc(7 * MiB),
          layer.subarray(12 * MiB, 20 * MiB),
        ]),
      );
      await fs.writeFile(join(folder, PARTS_MARKER), '');
    });
    assert.equal(fake.layerGets()[0]!.raw, undefined, 'the first request starts at byte 0');
  });

  test('the whole blob written and the marker (killed before the commit): started over, verified', async () => {
    const { fake } = await withState(async (folder, layer) => {
      await fs.writeFile(join(folder, 'data'), layer);
      await fs.writeFile(join(folder, PARTS_MARKER), '');
    });
    assert.equal(fake.layerGets()[0]!.raw, undefined);
  });

  test('the marker alone; a meta.json alone', async () => {
    await withState(async (folder) => {
      await fs.writeFile(join(folder, PARTS_MARKER), '');
    });
    await withState(async (folder, layer) => {
      await fs.writeFile(join(folder, 'meta.json'), JSON.stringify({ digest: sha(layer) }));
    });
  });

  test('a gap-free prefix and no marker (a clean stop): resumed where it ends', async () => {
    const { fake, run } = await withState(async (folder, layer) => {
      await fs.writeFile(join(folder, 'data'), layer.subarray(0, 9 * MiB + 3));
    });
    assert.equal(fake.layerGets()[0]!.raw, `bytes=${9 * MiB + 3}-`);
    assert.equal(
      run.result!.bytesDownloaded,
      run.result!.totalBytes - (9 * MiB + 3),
      'only the rest downloaded',
    );
  });
});

describe('split download: failures while parts are out', () => {
  test('the owner’s connection breaks and every resume is refused (404): typed, prefix kept, no marker, no fd, no lock', async () => {
    const layer = layerOf(3 * MIN_PART);
    const image = makeImage([layer]);
    const fake = await startFake(image, async (req, data, sock) => {
      if (req.range?.end !== undefined) return serveHonest(req, data, sock, { rate: 20e6 });
      if (req.range) {
        await write(sock, head(404, { 'content-length': 2 }));
        await write(sock, '{}');
        return;
      }
      await write(sock, head(200, { 'content-length': data.length, 'accept-ranges': 'bytes' }));
      await sendBody(sock, data.subarray(0, 5 * MiB + 99), 40e6);
      sock.destroy();
    });
    const store = await newStore();
    const run = await runPull(store, newClient(), fake);
    assert.ok(run.error instanceof StowageError, `untyped: ${describeError(run.error)}`);
    assert.ok(fake.bounded().length >= 1, 'parts were out');
    await assertPrefix(store, layer);
    const left = await fs.readdir(store.ingestPath(sha(layer))).catch(() => [] as string[]);
    assert.ok(!left.includes('lock'), `lock released: ${left.join(', ')}`);
  });

  test('the owner stalls on every attempt, the later ones without a byte: STALLED, parts stopped, prefix kept', async () => {
    const layer = layerOf(3 * MIN_PART);
    const image = makeImage([layer]);
    const fake = await startFake(image, async (req, data, sock) => {
      if (req.range?.end !== undefined) return serveHonest(req, data, sock);
      const start = req.range?.start ?? 0;
      await write(
        sock,
        head(req.range ? 206 : 200, {
          'content-length': data.length - start,
          'accept-ranges': 'bytes',
          ...(req.range ? { 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` } : {}),
        }),
      );
      // (An attempt that brings bytes starts the count of attempts again: later ones bring none.)
      await sendBody(sock, data.subarray(start, start === 0 ? 2 * MiB : start));
      await new Promise((r) => sock.on('close', r));
    });
    const store = await newStore();
    const run = await runPull(store, newClient(600), fake, { blobAttempts: 2 });
    assert.ok(isStowageError(run.error, 'STALLED'), describeError(run.error));
    await assertPrefix(store, layer);
  });
});

describe('split download: chaos', () => {
  test('random misbehaviour per request (parts and owner), several seeds: success verifies, failure is typed and leaves a clean prefix', async (t) => {
    const seeds = Number(process.env.STOWAGE_SPLIT_SEEDS ?? 8);
    const base = Number(process.env.STOWAGE_SPLIT_SEED ?? 1);
    const layer = layerOf(3 * MIN_PART + 777);
    const small = layerOf(300_000);
    const image = makeImage([layer, small]);
    const log: string[] = [];
    for (let seed = base; seed < base + seeds; seed++) {
      const rnd = seededRandom(seed);
      const pick = <T>(choices: readonly T[]): T => choices[Math.floor(rnd() * choices.length)]!;
      const fake = await startFake(image, async (req, data, sock) => {
        const start = req.range?.start ?? 0;
        const end = Math.min(req.range?.end ?? data.length, data.length);
        const cut = start + Math.floor(rnd() * (end - start));
        /** A 206 head for [start, start + length), saying `range` (the honest one by default). */
        const headOf = (length: number, range = `bytes ${start}-${end - 1}/${data.length}`) =>
          head(206, { 'content-length': length, 'content-range': range, 'accept-ranges': 'bytes' });
        if (req.range?.end !== undefined) {
          // A part: honest, slow, or one of the ways a server gets a range wrong.
          switch (
            pick(['honest', 'slow', 'reset', 'stall', 'whole', 'offByOne', 'more', 'error', 'short'] as const)
          ) {
            case 'honest':
              return serveHonest(req, data, sock);
            case 'slow':
              return serveHonest(req, data, sock, { rate: 5e6 });
            case 'reset':
              await write(sock, headOf(end - start));
              await sendBody(sock, data.subarray(start, cut));
              sock.resetAndDestroy();
              return;
            case 'stall':
              await write(sock, headOf(end - start));
              await sendBody(sock, data.subarray(start, cut));
              await new Promise((r) => sock.on('close', r));
              return;
            case 'whole':
              await write(sock, head(200, { 'content-length': data.length, 'accept-ranges': 'bytes' }));
              await sendBody(sock, data);
              return;
            case 'offByOne':
              await write(sock, headOf(end - start, `bytes ${start + 1}-${end}/${data.length}`));
              await sendBody(sock, data.subarray(start + 1, end + 1));
              return;
            case 'more':
              await write(sock, headOf(end - start + 1000));
              await sendBody(sock, data.subarray(start, end + 1000));
              return;
            case 'error':
              await write(sock, head(pick([500, 503, 404, 416]), { 'content-length': 0 }));
              return;
            case 'short':
              await write(sock, headOf(cut - start));
              await sendBody(sock, data.subarray(start, cut));
              return;
          }
        }
        // The owner: mostly honest (sometimes slow so that splits happen), sometimes cut short.
        const what = pick(['honest', 'slow', 'slow', 'cut'] as const);
        if (what !== 'cut') return serveHonest(req, data, sock, what === 'slow' ? { rate: 40e6 } : {});
        await write(
          sock,
          req.range
            ? headOf(data.length - start, `bytes ${start}-${data.length - 1}/${data.length}`)
            : head(200, { 'content-length': data.length, 'accept-ranges': 'bytes' }),
        );
        await sendBody(sock, data.subarray(start, cut), 40e6);
        sock.end();
      });
      const store = await newStore();
      const run = await runPull(store, newClient(1_000), fake, {
        concurrency: 3 + Math.floor(rnd() * 6),
        blobAttempts: 8,
        deadlineMs: 10_000,
      });
      log.push(
        `seed ${seed}: ${run.result ? 'ok' : describeError(run.error).slice(0, 60)} in ${run.ms} ms, ${fake.bounded().length} parts`,
      );
      if (run.result) await assertClean(store, image, run);
      else {
        assert.ok(run.error instanceof StowageError, `seed ${seed}: untyped ${describeError(run.error)}`);
        assert.ok(!isStowageError(run.error, 'ABORTED'), `seed ${seed}: hit the deadline after ${run.ms} ms`);
        await assertPrefix(store, layer);
        await assertPrefix(store, small);
        await assertClean(store, image, await runPull(store, newClient(), await startFake(image)));
      }
      await fake.stop();
    }
    t.diagnostic(log.join('; '));
  });
});

describe('split download: one blob fails while another is split', () => {
  test('another layer is refused (404) while the large one has parts out: typed NOT_FOUND, clean prefix, no fd', async () => {
    const layer = layerOf(4 * MIN_PART);
    const missing = layerOf(2 * MiB);
    const image = makeImage([layer, missing]);
    const fake = await startFake(image, async (req, data, sock) => {
      if (data !== missing) return serveHonest(req, data, sock, { rate: 30e6 });
      // Refused once the large layer's parts are out.
      for (let i = 0; i < 400 && fake.bounded().length < 1; i++) await sleep(5);
      await sleep(100);
      await write(sock, head(404, { 'content-length': 2 }));
      await write(sock, '{}');
    });
    const store = await newStore();
    const run = await runPull(store, newClient(), fake, { concurrency: 4 });
    assert.ok(isStowageError(run.error, 'NOT_FOUND'), describeError(run.error));
    assert.ok(fake.bounded().length >= 1);
    const kept = await assertPrefix(store, layer);
    assert.ok(kept < layer.length);
    assert.deepEqual(run.watch.over, []);
  });
});

describe('split download against a real Distribution registry', () => {
  let bed: TestBed;
  let reg: RunningRegistry;
  let real: Image;
  let big: Buffer;

  before(async () => {
    bed = await TestBed.create('split-review-reg-');
    stops.push(() => bed.cleanup());
    const built = await buildImage(join(bed.work, 'layout'), {
      platforms: ['linux/amd64'],
      index: false,
      layers: 1,
      layerSize: 64 * MiB,
      seed: 'split-review',
      tag: 'v1',
    });
    const layer = built.platforms[0]!.layers[0]!;
    big = await fs.readFile(join(built.layoutDir, 'blobs', 'sha256', layer.digest.slice(7)));
    real = {
      layers: [big],
      config: Buffer.alloc(0),
      manifest: Buffer.alloc(0),
      digest: built.digest as Digest,
      layerDigests: [layer.digest as Digest],
    };
    reg = await bed.registry();
    await pushLayout(built.layoutDir, 'v1', reg, 'big/real:v1');
  });

  const ref = (host: string) => `${host}/big/real:v1`;

  async function realPull(
    store: Store,
    host: string,
    opts: { concurrency?: number; signal?: AbortSignal; blobAttempts?: number } = {},
  ): Promise<PullRun> {
    const watch = watchProgress();
    const { client } = clientFor(reg, { stallTimeoutMs: 2_000 });
    stops.push(() => client.close());
    const deadline = AbortSignal.timeout(15_000);
    const t0 = Date.now();
    try {
      const result = await pull(store, client, ref(host), {
        platforms: amd64,
        concurrency: opts.concurrency ?? 8,
        signal: opts.signal ? AbortSignal.any([opts.signal, deadline]) : deadline,
        onEvent: watch.onEvent,
        ...(opts.blobAttempts ? { blobAttempts: opts.blobAttempts } : {}),
      });
      return { result, ms: Date.now() - t0, watch };
    } catch (error) {
      return { error, ms: Date.now() - t0, watch };
    } finally {
      await client.close();
    }
  }

  test('concurrency 8, 64 MiB, two pulls at once into one store: verified, nothing left', async () => {
    const proxy = await startProxy(reg.url);
    stops.push(proxy.stop);
    const store = await newStore();
    const [a, b] = await Promise.all([realPull(store, proxy.host), realPull(store, proxy.host)]);
    await assertClean(store, real, a);
    await assertClean(store, real, b);
    const bounded = proxy.requests.filter((r) => /^bytes=\d+-\d+$/.test(r.range ?? ''));
    assert.ok(bounded.length >= 3, `splits: ${bounded.map((r) => `${r.range}:${r.status}`).join(' ')}`);
    assert.ok(bounded.every((r) => r.status === 206));
  });

  test('random cancels through a throttled proxy, then random faults (reset, 5xx, truncate, lying length, ignored Range): prefix always clean, the blob verifies', async (t) => {
    const slow = await startFaultProxy(reg.url, { bytesPerSecond: 50_000_000 });
    stops.push(slow.stop);
    const store = await newStore();
    const log: string[] = [];
    for (let i = 0; i < 6; i++) {
      const controller = new AbortController();
      const at = 50 + Math.floor(Math.random() * 300);
      const timer = setTimeout(() => controller.abort(), at);
      const run = await realPull(store, slow.host, { signal: controller.signal });
      clearTimeout(timer);
      if (run.result) {
        await assertClean(store, real, run);
        log.push(`${i}: done`);
        break;
      }
      assert.ok(isStowageError(run.error, 'ABORTED'), describeError(run.error));
      log.push(`${i}: kept ${await assertPrefix(store, big)}`);
    }
    slow.configure({
      bytesPerSecond: undefined,
      rate: 0.35,
      kinds: ['reset', 'burst5xx', 'truncate', 'lyingLength', 'ignoreRange'],
      eligible: (r) => r.path.includes(`/blobs/${real.layerDigests[0]}`),
    });
    for (let i = 0; i < 3; i++) {
      slow.reseed(Date.now() % 10000);
      const fresh = await newStore();
      const run = await realPull(fresh, slow.host, { blobAttempts: 10 });
      log.push(`faults: ${run.result ? 'ok' : describeError(run.error).slice(0, 50)}`);
      if (run.result) await assertClean(fresh, real, run);
      else {
        assert.ok(run.error instanceof StowageError, describeError(run.error));
        await assertPrefix(fresh, big);
      }
    }
    log.push(JSON.stringify(slow.injected));
    t.diagnostic(log.join('; '));
  });
});

// Not new in 6f2f576 (client.ts blob() kept this branch when it was refactored), but on the owner's
// path: the owner's first GET carries no Range, and a 206 for another range makes blob() call
// itself again with offset 0, which gets the same answer: requests without end until a cancel.
describe('client.blob: a 206 with a foreign Content-Range to a request without Range', () => {
  test('is refused with a clear error, not re-requested without end', async () => {
    const layer = layerOf(MiB);
    const image = makeImage([layer]);
    const fake = await startFake(image, async (req, data, sock) => {
      if (req.range) return 'default';
      await write(
        sock,
        head(206, {
          'content-length': data.length - 5,
          'content-range': `bytes 5-${data.length - 1}/${data.length}`,
        }),
      );
      await sendBody(sock, data.subarray(5));
    });
    const store = await newStore();
    const run = await runPull(store, newClient(), fake, { concurrency: 2, deadlineMs: 2_000 });
    assert.ok(isStowageError(run.error, 'REGISTRY_ERROR'), describeError(run.error));
    assert.match(run.error.message, /with a part of it \(bytes 5-\d+\/\d+\) that was not asked for/);
    assert.equal(fake.layerGets().length, 1);
  });
});
