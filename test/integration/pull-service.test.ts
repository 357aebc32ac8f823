// The workspace pull service against a real registry: shared transfers, a bounded queue, cancellation.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { StowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { PullService, type ServiceEvent } from '../../src/core/pull/service';
import { clientFor, Store, verifyAllBlobs } from '../support/engine';
import { buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let reg: RunningRegistry;
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-service-'));
  reg = await startRegistry();
  for (const name of ['one', 'two', 'three']) {
    const img = await buildImage(join(work, name), { tag: 'v1', seed: name, layers: 2, layerSize: 400_000 });
    await pushLayout(img.layoutDir, 'v1', reg, `svc/${name}:v1`);
  }
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

async function service(concurrency = 2) {
  const store = await Store.open(await mkdtemp(join(work, 'cache-')));
  const { client, requests } = clientFor(reg);
  const events: ServiceEvent[] = [];
  const svc = new PullService({ store: async () => store, client: () => client, concurrency });
  svc.onEvent((e) => events.push(e));
  return { svc, store, client, requests, events };
}

test('concurrent pulls of one reference share one transfer', async () => {
  const { svc, store, client, requests, events } = await service();
  const ref = `${reg.host}/svc/one:v1`;
  const [a, b, c] = await Promise.all([
    svc.pull(ref, { platforms: amd64 }),
    svc.pull(ref, { platforms: amd64 }),
    svc.pull(`${reg.host}/svc/one:v1`, { platforms: amd64 }),
  ]);
  assert.equal(a, b);
  assert.equal(b, c);
  const blobGets = requests.filter((r) => r.method === 'GET' && r.url.includes('/blobs/'));
  assert.equal(blobGets.length, 3, 'config + 2 layers, each once');
  assert.equal(events.filter((e) => e.type === 'started').length, 1);
  assert.ok(events.some((e) => e.type === 'cacheChanged'));
  assert.ok(await verifyAllBlobs(store));
  await client.close();
});

test('pulls beyond the concurrency limit wait in a queue', async () => {
  const { svc, client, events } = await service(1);
  const p1 = svc.pull(`${reg.host}/svc/one:v1`, { platforms: amd64 });
  const p2 = svc.pull(`${reg.host}/svc/two:v1`, { platforms: amd64 });
  const queued = svc.active().filter((a) => a.queued);
  assert.equal(queued.length, 2, 'both are queued until the first takes the slot');
  await Promise.all([p1, p2]);
  const order = events.filter((e) => e.type === 'started' || e.type === 'finished').map((e) => e.type);
  assert.deepEqual(order, ['started', 'finished', 'started', 'finished'], 'one at a time');
  assert.equal(svc.active().length, 0);
  await client.close();
});

test("one caller's cancel leaves the shared transfer running for the other", async () => {
  const { svc, client } = await service();
  const ref = `${reg.host}/svc/three:v1`;
  const controller = new AbortController();
  const cancelled = svc.pull(ref, { platforms: amd64, signal: controller.signal });
  const kept = svc.pull(ref, { platforms: amd64 });
  controller.abort();
  await assert.rejects(cancelled, (e) => e instanceof StowageError && e.code === 'ABORTED');
  const r = await kept;
  assert.equal(r.fromCache, false);
  await client.close();
});

test('when every caller cancels, the transfer stops; a cancelled queued pull frees its place', async () => {
  const { svc, client } = await service(1);
  const c1 = new AbortController();
  const c2 = new AbortController();
  const first = svc.pull(`${reg.host}/svc/one:v1`, { platforms: amd64, signal: c1.signal });
  const second = svc.pull(`${reg.host}/svc/two:v1`, { platforms: amd64, signal: c2.signal });
  const third = svc.pull(`${reg.host}/svc/three:v1`, { platforms: amd64 });
  c2.abort();
  c1.abort();
  await assert.rejects(first, { code: 'ABORTED' });
  await assert.rejects(second, { code: 'ABORTED' });
  const r = await third;
  assert.equal(r.reference, `${reg.host}/svc/three:v1`);
  await client.close();
});

test('invalid references and scratch are refused with typed errors', async () => {
  const { svc, client } = await service();
  await assert.rejects(svc.pull('scratch'), { code: 'RESERVED_NAME' });
  await assert.rejects(svc.pull('Bad/Name'), { code: 'INVALID_REFERENCE' });
  svc.dispose();
  await assert.rejects(svc.pull(`${reg.host}/svc/one:v1`), { code: 'ABORTED' });
  await client.close();
});

test('a pull asked for right after its only caller cancelled starts afresh instead of joining the cancelled one', async () => {
  const { svc, store, client } = await service();
  const ref = `${reg.host}/svc/two:v1`;
  const controller = new AbortController();
  const first = svc.pull(ref, { platforms: amd64, signal: controller.signal });
  controller.abort();
  await assert.rejects(first, (e) => e instanceof StowageError && e.code === 'ABORTED');
  // The user clicks Pull again at once: this is a new request, not the cancelled one.
  const again = await svc.pull(ref, { platforms: amd64 });
  assert.equal(again.reference, ref);
  assert.ok(await verifyAllBlobs(store));
  await client.close();
});
