// A large layer downloaded over several connections: download slots with no blob left take the
// upper half of the largest range still coming (Range requests to a real registry, through a
// loopback proxy that counts them and, where a case needs it, ignores or breaks them).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { MIN_PART } from '../../src/core/pull/fetch';
import { pull } from '../../src/core/pull/pull';
import { Store } from '../../src/core/store';
import { PARTS_MARKER } from '../../src/core/store/ingest';
import { CLI, requireCli } from '../support/cli';
import { clientFor, TestBed, verifyAllBlobs } from '../support/engine';
import { startFaultProxy } from '../support/fault-proxy';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type Proxy as FrontProxy, type RuleResult, startProxy } from '../support/proxy';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
const MiB = 1024 * 1024;
let bed: TestBed;
let image: BuiltImage;
let reg: RunningRegistry;
let layer: { digest: string; size: number };

before(async () => {
  bed = await TestBed.create('stowage-split-');
  image = await buildImage(join(bed.work, 'layout'), {
    platforms: ['linux/amd64'],
    index: false,
    layers: 1,
    layerSize: 3 * MIN_PART,
    seed: 'split',
    tag: 'v1',
  });
  layer = image.platforms[0]!.layers[0]!;
  assert.ok(layer.size >= 2 * MIN_PART, 'the layer is large enough to split');
  reg = await bed.registry();
  await pushLayout(image.layoutDir, 'v1', reg, 'big/one:v1');
});

after(() => bed?.cleanup());

/** A proxy in front of the registry whose rule sees each request of the big layer. */
async function proxied(
  rule: (range: string | undefined) => RuleResult = () => undefined,
): Promise<FrontProxy> {
  const proxy = await startProxy(reg.url, (req) =>
    req.url?.includes(`/blobs/${layer.digest}`) ? rule(req.headers.range) : undefined,
  );
  bed.defer(proxy.stop);
  return proxy;
}

const bounded = (range: string | undefined) => /^bytes=\d+-\d+$/.test(range ?? '');
const layerGets = (proxy: FrontProxy) =>
  proxy.requests.filter((r) => r.path.includes(`/blobs/${layer.digest}`));

describe('a large layer over several connections', () => {
  test('idle slots take ranges of it; every byte is verified as one blob', async () => {
    const proxy = await proxied();
    const store = await bed.store();
    const { client } = clientFor(reg);
    const r = await pull(store, client, `${proxy.host}/big/one:v1`, { platforms: amd64, concurrency: 4 });
    await client.close();
    assert.equal(r.digest, image.digest);
    assert.equal(r.bytesDownloaded, r.totalBytes);
    const gets = layerGets(proxy);
    assert.ok(gets.filter((g) => bounded(g.range)).length >= 1, JSON.stringify(gets));
    assert.ok(gets.every((g) => g.status === 200 || g.status === 206));
    assert.ok((await verifyAllBlobs(store)) >= 3);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'ingest')).catch(() => []), []);
  });

  test('one slot (concurrency 1): one connection, no ranges', async () => {
    const proxy = await proxied();
    const { client } = clientFor(reg);
    await pull(await bed.store(), client, `${proxy.host}/big/one:v1`, { platforms: amd64, concurrency: 1 });
    await client.close();
    assert.deepEqual(
      layerGets(proxy).map((g) => g.range),
      [undefined],
    );
  });

  test('a registry that ignores the parts’ ranges: the first connection fetches the rest', async () => {
    const proxy = await proxied((range) => (bounded(range) ? { dropRequestHeaders: ['range'] } : undefined));
    const store = await bed.store();
    const { client } = clientFor(reg);
    const r = await pull(store, client, `${proxy.host}/big/one:v1`, { platforms: amd64, concurrency: 4 });
    await client.close();
    assert.equal(r.digest, image.digest);
    const gets = layerGets(proxy);
    assert.ok(
      gets.some((g) => bounded(g.range) && g.status === 200),
      'a part was answered whole (200)',
    );
    assert.ok(
      gets.some((g) => /^bytes=\d+-$/.test(g.range ?? '')),
      'and the owner asked for the rest itself',
    );
    assert.ok((await verifyAllBlobs(store)) >= 3);
  });

  test('a part that breaks off: what it got is kept, the rest is fetched, the blob verifies', async () => {
    const proxy = await proxied((range) => (bounded(range) ? { passBytes: 3 * MiB + 4321 } : undefined));
    const store = await bed.store();
    const { client } = clientFor(reg, { stallTimeoutMs: 400 });
    const r = await pull(store, client, `${proxy.host}/big/one:v1`, { platforms: amd64, concurrency: 4 });
    await client.close();
    assert.equal(r.digest, image.digest);
    const gets = layerGets(proxy);
    const part = gets.find((g) => bounded(g.range))!;
    const partStart = Number(/^bytes=(\d+)-/.exec(part.range!)![1]);
    const resumedAt = gets
      .map((g) => /^bytes=(\d+)-$/.exec(g.range ?? '')?.[1])
      .filter(Boolean)
      .map(Number);
    assert.ok(
      resumedAt.includes(partStart + 3 * MiB + 4321),
      `the owner resumed after the part's bytes: part at ${partStart}, owner asked ${resumedAt.join(', ')}`,
    );
    assert.ok((await verifyAllBlobs(store)) >= 3);
  });

  test('cancelled while a part is out: a gap-free prefix is kept and the next pull resumes from it', async () => {
    const proxy = await proxied((range) => (bounded(range) ? { passBytes: 1 * MiB } : undefined));
    const store = await bed.store();
    const { client } = clientFor(reg, { stallTimeoutMs: 60_000 });
    const controller = new AbortController();
    // Cancel once the owner has its half and waits for the stalled part.
    const timer = setInterval(async () => {
      const gets = layerGets(proxy);
      if (gets.some((g) => bounded(g.range))) {
        const data = await fs
          .stat(join(store.ingestPath(layer.digest as `sha256:${string}`), 'data'))
          .catch(() => undefined);
        if (data && data.size >= MIN_PART) controller.abort();
      }
    }, 20);
    await assert.rejects(
      pull(store, client, `${proxy.host}/big/one:v1`, {
        platforms: amd64,
        concurrency: 4,
        signal: controller.signal,
      }),
      (e) => isStowageError(e, 'ABORTED'),
    );
    clearInterval(timer);
    await client.close();
    const folder = store.ingestPath(layer.digest as `sha256:${string}`);
    const kept = (await fs.stat(join(folder, 'data'))).size;
    assert.ok(kept > 0 && kept < layer.size, `a partial prefix of ${kept} bytes`);
    await assert.rejects(fs.access(join(folder, PARTS_MARKER)), 'no marker after a clean stop');

    const again = await proxied();
    const { client: second } = clientFor(reg);
    const r = await pull(store, second, `${again.host}/big/one:v1`, { platforms: amd64, concurrency: 1 });
    await second.close();
    assert.equal(r.digest, image.digest);
    assert.equal(layerGets(again)[0]?.range, `bytes=${kept}-`, 'resumed where the prefix ends');
    assert.ok((await verifyAllBlobs(store)) >= 3);
  });

  test('a CLI pull killed (SIGKILL) while parts write: the re-run starts the layer over and verifies', async () => {
    requireCli();
    // Throttled, so that the kill lands while the parts are writing.
    const slow = await startFaultProxy(reg.url, { bytesPerSecond: 8_000_000 });
    bed.defer(slow.stop);
    const cache = join(bed.work, 'killed-cache');
    const folder = (await Store.open(cache)).ingestPath(layer.digest as `sha256:${string}`);
    const args = [CLI, 'pull', `${slow.host}/big/one:v1`, '--cache', cache, '--platform', 'linux/amd64'];
    const child = spawn(process.execPath, args, { stdio: 'ignore' });
    const exited = new Promise<string | null>((r) => child.on('close', (_code, signal) => r(signal)));
    let marked = false;
    for (let i = 0; i < 500 && !marked && child.exitCode === null; i++) {
      const data = await fs.stat(join(folder, 'data')).catch(() => undefined);
      marked =
        (await fs.access(join(folder, PARTS_MARKER)).then(
          () => true,
          () => false,
        )) && (data?.size ?? 0) > MiB;
      if (!marked) await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGKILL');
    assert.equal(await exited, 'SIGKILL');
    assert.ok(marked, 'killed while parts were writing (the marker was there)');

    const rerun = spawn(
      process.execPath,
      [...args.slice(0, 3), '--cache', cache, '--platform', 'linux/amd64', '--json'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    rerun.stdout!.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number | null>((r) => rerun.on('close', (c) => r(c)));
    assert.equal(code, 0);
    const result = JSON.parse(out) as { digest: string; bytesDownloaded: number };
    assert.equal(result.digest, image.digest);
    assert.ok(
      result.bytesDownloaded >= layer.size,
      'the layer was fetched again whole, not resumed past a gap',
    );
    const store = await Store.open(cache);
    assert.ok((await verifyAllBlobs(store)) >= 3);
  });
});
