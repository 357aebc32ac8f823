// Blob downloads take the direct reader (src/core/registry/direct.ts), over plain HTTP and TLS;
// through a proxy, or with `direct: false`, they go through undici. Both give the same cache.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../../src/core/digest';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { blobNames, clientFor, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

let bed: TestBed;
let image: BuiltImage;
let plain: RunningRegistry;
let tls: RunningRegistry;
const amd64 = [parsePlatform('linux/amd64')];
const isBlobGet = (r: { method: string; url: string }) => r.method === 'GET' && r.url.includes('/blobs/');

before(async () => {
  bed = await TestBed.create('stowage-direct-');
  // Layers of a few MiB each: many reads per blob, and more than one reuse of the read buffer.
  image = await buildImage(`${bed.work}/img`, {
    tag: 'v1',
    seed: 'direct',
    platforms: ['linux/amd64'],
    index: false,
    layers: 3,
    layerSize: 3 * 1024 * 1024,
  });
  [plain, tls] = await Promise.all([bed.registry(), bed.registry({ tls: true, auth: 'basic' })]);
  await Promise.all([
    pushLayout(image.layoutDir, 'v1', plain, 'd/app:v1'),
    pushLayout(image.layoutDir, 'v1', tls, 'd/app:v1'),
  ]);
});

after(async () => {
  await bed?.cleanup();
});

describe('direct reader', () => {
  test('plain HTTP: every blob GET is read directly, and the cache equals the one undici fills', async () => {
    const fast = clientFor(plain);
    const slow = clientFor(plain, { direct: false });
    const [a, b] = [await bed.store(), await bed.store()];
    const ref = `${plain.host}/d/app:v1`;
    const ra = await pull(a, fast.client, ref, { platforms: amd64 });
    const rb = await pull(b, slow.client, ref, { platforms: amd64 });
    assert.equal(ra.digest, rb.digest);
    assert.equal(ra.bytesDownloaded, rb.bytesDownloaded);
    const blobGets = fast.requests.filter(isBlobGet);
    assert.equal(blobGets.length, 4, 'config and three layers');
    assert.ok(
      blobGets.every((r) => r.direct && r.status === 200),
      JSON.stringify(blobGets),
    );
    const others = fast.requests.filter((r) => !isBlobGet(r));
    assert.ok(
      others.every((r) => r.url.includes('/manifests/') === (r.direct === true)),
      `manifest HEADs and GETs read directly too, everything else on undici: ${JSON.stringify(others)}`,
    );
    assert.ok(!slow.requests.some((r) => r.direct), 'direct: false keeps everything on undici');
    assert.deepEqual(await blobNames(a), await blobNames(b));
    assert.equal(await verifyAllBlobs(a), 5);
    await Promise.all([fast.client.close(), slow.client.close()]);
  });

  test('plain HTTP: a partial download resumes with a Range request read directly', async () => {
    const { client, requests } = clientFor(plain);
    const store = await bed.store();
    const layer = image.platforms[0]!.layers[1]!;
    const bytes = await readFile(join(image.layoutDir, 'blobs', 'sha256', layer.digest.slice(7)));
    const held = 1_500_000;
    const ingest = await store.ingest(layer.digest as Digest, layer.size);
    await ingest.write(bytes.subarray(0, held));
    await ingest.close();
    const r = await pull(store, client, `${plain.host}/d/app:v1`, { platforms: amd64 });
    const ranged = requests.filter((q) => isBlobGet(q) && q.url.endsWith(layer.digest));
    assert.deepEqual(
      ranged.map((q) => [q.status, q.bytes, q.direct]),
      [[206, layer.size - held, true]],
    );
    assert.equal(r.bytesDownloaded, r.totalBytes - held);
    assert.equal(await verifyAllBlobs(store), 5);
    await client.close();
  });

  test('TLS with basic auth: blobs are read directly too, and the cache equals the one undici fills', async () => {
    const fast = clientFor(tls, { withCredentials: true });
    const slow = clientFor(tls, { withCredentials: true, direct: false });
    const [a, b] = [await bed.store(), await bed.store()];
    await pull(a, fast.client, `${tls.host}/d/app:v1`, { platforms: amd64 });
    await pull(b, slow.client, `${tls.host}/d/app:v1`, { platforms: amd64 });
    const blobGets = fast.requests.filter(isBlobGet);
    assert.equal(blobGets.length, 4);
    assert.ok(
      blobGets.every((r) => r.direct && r.status === 200 && r.url.startsWith('https://')),
      JSON.stringify(blobGets),
    );
    assert.ok(!slow.requests.some((r) => r.direct));
    assert.deepEqual(await blobNames(a), await blobNames(b));
    assert.equal(await verifyAllBlobs(a), 5);
    await Promise.all([fast.client.close(), slow.client.close()]);
  });

  test('TLS: the manifest and blob GETs share kept-alive connections, opened while the manifest was asked for', async () => {
    const { client, requests } = clientFor(tls, { withCredentials: true });
    const store = await bed.store();
    await pull(store, client, `${tls.host}/d/app:v1`, { platforms: amd64, concurrency: 1 });
    const gets = requests.filter((r) => r.method === 'GET' && r.status === 200);
    assert.deepEqual(
      gets.map((r) => [r.url.includes('/blobs/') ? 'blob' : 'manifest', r.direct, r.reused === true]),
      [
        ['manifest', true, true],
        ['blob', true, true],
        ['blob', true, true],
        ['blob', true, true],
        ['blob', true, true],
      ],
      'no GET waited for a connection of its own',
    );
    assert.equal(await verifyAllBlobs(store), 5);
    await client.close();
  });

  test('TLS without the CA: refused (typed TLS error) unless the host is configured insecure', async () => {
    const untrusted = clientFor(tls, { withCredentials: true, caCertificates: [] });
    await assert.rejects(
      pull(await bed.store(), untrusted.client, `${tls.host}/d/app:v1`, { platforms: amd64 }),
      (e: { code?: string }) => e.code === 'TLS',
    );
    await untrusted.client.close();
    const insecure = clientFor(tls, {
      withCredentials: true,
      caCertificates: [],
      insecureRegistries: [tls.host],
    });
    const store = await bed.store();
    await pull(store, insecure.client, `${tls.host}/d/app:v1`, { platforms: amd64 });
    assert.ok(insecure.requests.filter(isBlobGet).every((r) => r.direct));
    assert.equal(await verifyAllBlobs(store), 5);
    await insecure.client.close();
  });
});
