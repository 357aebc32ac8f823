// Image shapes real registries serve, pulled from a real Distribution registry and checked against
// skopeo: buildx attestations beside the images, index entries that carry no platform.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { pushImage } from '../../src/core/transfer/push';
import { blobNames, clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage, readLayoutBlob } from '../support/fixtures';
import { pushLayout, skopeoInspectRaw } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let reg: RunningRegistry;
let target: RunningRegistry;
let attested: BuiltImage;
let unlabelled: BuiltImage;
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-shapes-'));
  // Two small two-platform images, each with its oddity.
  const shaped = (name: string, oddity: { attestations?: boolean; unlabelled?: boolean }) =>
    buildImage(join(work, name), {
      tag: 'v1',
      seed: name,
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerSize: 20_000,
      ...oddity,
    });
  [attested, unlabelled] = await Promise.all([
    shaped('attested', { attestations: true }),
    shaped('unlabelled', { unlabelled: true }),
  ]);
  [reg, target] = await Promise.all([startRegistry(), startRegistry()]);
  await pushLayout(attested.layoutDir, 'v1', reg, 'team/attested:v1');
  await pushLayout(unlabelled.layoutDir, 'v1', reg, 'team/unlabelled:v1');
});

after(async () => {
  await Promise.all([reg?.stop(), target?.stop()]);
  await rm(work, { recursive: true, force: true });
});

async function freshStore(): Promise<Store> {
  return Store.open(await mkdtemp(join(work, 'cache-')));
}

/** The attestation manifests of the fixture's index and the blobs they name. */
async function attestationBlobs(): Promise<string[]> {
  const index = JSON.parse(attested.index!.body) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const out: string[] = [];
  for (const m of index.manifests.filter((e) => e.annotations?.['vnd.docker.reference.type'])) {
    const manifest = JSON.parse((await readLayoutBlob(attested.layoutDir, m.digest)).toString('utf8'));
    out.push(m.digest, manifest.config.digest, ...manifest.layers.map((l: { digest: string }) => l.digest));
  }
  return out;
}

describe('buildx attestations', () => {
  test('a platform pull leaves them out; --all-platforms brings them, so a push of the copy is whole', async () => {
    const { client } = clientFor(reg);
    const ref = `${reg.host}/team/attested:v1`;
    const extra = await attestationBlobs();
    assert.equal(extra.length, 6, 'two attestation manifests, each with a config and a statement');

    const host = await freshStore();
    const one = await pull(host, client, ref, { platforms: amd64 });
    assert.deepEqual(one.platforms, ['linux/amd64']);
    const held = await blobNames(host);
    assert.ok(
      extra.every((d) => !held.has(d)),
      'no attestation blob for a platform pull',
    );

    const all = await freshStore();
    const every = await pull(all, client, ref, { allPlatforms: true });
    assert.deepEqual(
      every.platforms.sort(),
      ['linux/amd64', 'linux/arm64'],
      'unknown/unknown is not a platform',
    );
    const names = await blobNames(all);
    assert.ok(
      extra.every((d) => names.has(d)),
      'every attestation blob, as skopeo copy --all takes them',
    );
    assert.equal(await verifyAllBlobs(all), names.size);
    // Complete: the registry takes the index, and serves back the same bytes.
    const { client: to } = clientFor(target);
    const pushed = await pushImage(all, to, ref, `${target.host}/copy/attested:v1`);
    assert.equal(pushed.digest, attested.digest);
    assert.equal(await skopeoInspectRaw(target, 'copy/attested:v1'), attested.body);
    // And a second all-platforms pull is served by the cache alone.
    const again = await pull(all, client, ref, { allPlatforms: true });
    assert.equal(again.fromCache, true);
    await Promise.all([client.close(), to.close()]);
  });
});

describe('an index whose entries carry no platform', () => {
  test('its first entry is pulled (as skopeo takes it), then served from the cache with no request', async () => {
    const { client, requests } = clientFor(reg);
    const store = await freshStore();
    const ref = `${reg.host}/team/unlabelled:v1`;
    const r = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(r.digest, unlabelled.digest);
    const first = unlabelled.platforms[0]!;
    const names = await blobNames(store);
    for (const d of [first.manifest.digest, first.config.digest, ...first.layers.map((l) => l.digest)]) {
      assert.ok(names.has(d), d);
    }
    assert.ok(!names.has(unlabelled.platforms[1]!.manifest.digest), 'only the first entry');
    const before = requests.length;
    const again = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(again.fromCache, true);
    assert.equal(requests.length, before, 'no request for the cached image');

    const all = await pull(await freshStore(), client, ref, { allPlatforms: true });
    assert.equal(all.blobsDownloaded, 2 * (1 + first.layers.length), "both entries' configs and layers");
    await client.close();
  });
});

describe('a single-platform image', () => {
  test('reports the platform its config declares, not the one asked for', async () => {
    const arm = await buildImage(join(work, 'arm-only'), {
      tag: 'v1',
      seed: 'arm-only',
      platforms: ['linux/arm64'],
      index: false,
      layers: 1,
      layerSize: 10_000,
    });
    await pushLayout(arm.layoutDir, 'v1', reg, 'team/arm-only:v1');
    const { client } = clientFor(reg);
    const store = await freshStore();
    const ref = `${reg.host}/team/arm-only:v1`;
    const first = await pull(store, client, ref, { platforms: amd64 });
    assert.deepEqual(first.platforms, ['linux/arm64']);
    const again = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(again.fromCache, true);
    assert.deepEqual(again.platforms, ['linux/arm64']);
    await client.close();
  });
});
