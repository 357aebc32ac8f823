// The cache on a damaged disk, against a real registry: a blob that rotted after its commit is
// fetched again by the next pull.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { inspectImage } from '../../src/core/store';
import { clientFor, type Store, TestBed, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { run } from '../support/proc';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
let bed: TestBed;
let reg: RunningRegistry;
let image: BuiltImage;
let ref: string;

before(async () => {
  bed = await TestBed.create('stowage-store-faults-');
  image = await buildImage(join(bed.work, 'layout'), {
    tag: 'v1',
    seed: 'store-faults',
    platforms: ['linux/amd64'],
    index: false,
    layers: 2,
    layerSize: 300_000,
  });
  reg = await bed.registry();
  await pushLayout(image.layoutDir, 'v1', reg, 'faults/app:v1');
  ref = `${reg.host}/faults/app:v1`;
});

after(() => bed?.cleanup());

async function pullInto(store: Store) {
  const { client } = clientFor(reg);
  try {
    return await pull(store, client, ref, { platforms: amd64 });
  } finally {
    await client.close();
  }
}

/** Cuts a committed (read-only) blob to `size` bytes, as a disk fault or a stray tool would. */
async function truncateBlob(store: Store, digest: string, size: number): Promise<void> {
  const path = store.blobPath(digest as never);
  await fs.chmod(path, 0o644);
  await fs.truncate(path, size);
}

describe('a blob damaged on disk after its commit', () => {
  test('a truncated layer is fetched again by the next pull (it failed with “ask the image publisher”)', async () => {
    const store = await bed.store();
    await pullInto(store);
    const layer = image.platforms[0]!.layers[0]!;
    await truncateBlob(store, layer.digest, 1000);

    const again = await pullInto(store);
    assert.equal(again.fromCache, false);
    assert.equal(again.blobsDownloaded, 1, 'only the damaged layer is downloaded');
    assert.equal(await store.blobSize(layer.digest as never), layer.size);
    assert.equal(await verifyAllBlobs(store), 4);
    assert.equal((await inspectImage(store, ref))?.complete, true);
  });

  test('a truncated manifest is replaced by the next pull (it was left, and skopeo could not read the image)', async () => {
    const store = await bed.store();
    await pullInto(store);
    await truncateBlob(store, image.digest, 100);

    await pullInto(store);
    assert.equal(await store.blobSize(image.digest as never), image.size);
    assert.equal(await verifyAllBlobs(store), 4);
    const info = JSON.parse((await run('skopeo', ['inspect', `oci:${store.dir}:${ref}`])).stdout);
    assert.equal(info.Digest, image.digest);
  });
});
