// The pull pipeline against a real Distribution registry: platforms, media types, auth, cache hits.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { blobNames, clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { run } from '../support/proc';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let image: BuiltImage;
let plain: RunningRegistry;
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-pull-'));
  image = await buildImage(join(work, 'layout'), { tag: 'v1', seed: 'pull', layers: 3, layerSize: 300_000 });
  plain = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', plain, 'team/app:v1');
});

after(async () => {
  await plain?.stop();
  await rm(work, { recursive: true, force: true });
});

async function freshStore(): Promise<Store> {
  return Store.open(await mkdtemp(join(work, 'cache-')));
}

describe('pull over plain HTTP', () => {
  test('multi-platform OCI index by tag: keeps only the wanted platform, then hits the cache with zero requests', async () => {
    const store = await freshStore();
    const { client, requests } = clientFor(plain);
    const ref = `${plain.host}/team/app:v1`;
    const first = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(first.fromCache, false);
    assert.equal(first.digest, image.digest);
    assert.deepEqual(first.platforms, ['linux/amd64']);
    const want = image.platforms.find((p) => p.platform === 'linux/amd64')!;
    const other = image.platforms.find((p) => p.platform === 'linux/arm64')!;
    const names = await blobNames(store);
    for (const l of want.layers) assert.ok(names.has(l.digest), `amd64 layer ${l.digest} is cached`);
    assert.ok(names.has(want.config.digest));
    for (const l of other.layers) assert.ok(!names.has(l.digest), 'arm64 layers are not downloaded');
    assert.equal(await verifyAllBlobs(store), names.size);
    assert.equal(first.blobsDownloaded, want.layers.length + 1);

    const before = requests.length;
    const second = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(second.fromCache, true);
    assert.equal(requests.length - before, 0, 'a complete cached image makes no request');
    assert.equal(second.digest, first.digest);
    await client.close();
  });

  test('by digest, and skopeo reads what we wrote', async () => {
    const store = await freshStore();
    const { client } = clientFor(plain);
    const ref = `${plain.host}/team/app@${image.digest}`;
    const r = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(r.reference, ref);
    const out = join(work, 'skopeo-out');
    await run('skopeo', ['copy', '--override-arch', 'amd64', `oci:${store.dir}:${ref}`, `dir:${out}`]);
    const want = image.platforms.find((p) => p.platform === 'linux/amd64')!;
    const { stdout } = await run('skopeo', ['inspect', '--raw', `dir:${out}`]);
    assert.equal(JSON.parse(stdout).config.digest, want.config.digest);
    await client.close();
  });

  test('unknown tag and unknown repository give NOT_FOUND naming the registry', async () => {
    const store = await freshStore();
    const { client } = clientFor(plain);
    await assert.rejects(
      pull(store, client, `${plain.host}/team/app:nope`),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'NOT_FOUND');
        assert.match(e.message, new RegExp(plain.host.replace(/\./g, '\\.')));
        return true;
      },
    );
    // The registry's own words come (a HEAD's 404 has no body: the GET's does).
    await assert.rejects(
      pull(store, client, `${plain.host}/team/app:nope`),
      (e: Error & { code?: string; hint?: string }) => {
        assert.match(e.message, /MANIFEST_UNKNOWN/);
        return true;
      },
    );
    await assert.rejects(
      pull(store, client, `${plain.host}/no/such:v1`),
      (e: Error & { code?: string; hint?: string }) => {
        // Distribution says MANIFEST_UNKNOWN for an unknown repository too: the hint covers both.
        assert.equal(e.code, 'NOT_FOUND');
        assert.match(e.message, /MANIFEST_UNKNOWN|NAME_UNKNOWN/);
        assert.match(e.hint ?? '', /check the repository name and the tag or digest/);
        return true;
      },
    );
    assert.equal((await store.listReferences()).length, 0);
    await client.close();
  });

  test('the cache check selects platforms as the download does: one the image lacks is neither fetched again nor reported cached', async () => {
    const store = await freshStore();
    const { client, requests } = clientFor(plain);
    const ref = `${plain.host}/team/app:v1`;
    const s390x = parsePlatform('linux/s390x');
    // The network pull keeps what the image offers of the wanted platforms.
    const first = await pull(store, client, ref, { platforms: [...amd64, s390x] });
    assert.equal(first.fromCache, false);
    assert.deepEqual(first.platforms, ['linux/amd64']);
    // So the same pull again is complete in the cache: zero requests.
    const before = requests.length;
    const second = await pull(store, client, ref, { platforms: [...amd64, s390x] });
    assert.equal(second.fromCache, true);
    assert.equal(requests.length - before, 0, 'the same pull again makes no request');
    assert.deepEqual(second.platforms, ['linux/amd64']);
    // A platform the cached index does not offer at all is not "already cached".
    await assert.rejects(pull(store, client, ref, { platforms: [s390x] }), { code: 'NO_MATCHING_PLATFORM' });
    await client.close();
  });

  test('no matching platform lists the offered ones', async () => {
    const store = await freshStore();
    const { client } = clientFor(plain);
    await assert.rejects(
      pull(store, client, `${plain.host}/team/app:v1`, { platforms: [parsePlatform('linux/s390x')] }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'NO_MATCHING_PLATFORM');
        assert.match(e.message, /linux\/amd64/);
        return true;
      },
    );
    await client.close();
  });
});
