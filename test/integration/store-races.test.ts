// A pull served from the cache while another process removes images and runs gc (VS Code's Remove
// Image is rm + gc): the moments are forced by running the other process's steps, on a second Store
// over the same folder, from inside the pull's own calls to the store. The pull must never leave a
// name recorded whose blobs gc has just deleted.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { checkCache } from '../reliability/common';
import { clientFor, Store, TestBed } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import type { RunningRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
let bed: TestBed;
let reg: RunningRegistry;
let image: BuiltImage;

before(async () => {
  bed = await TestBed.create('stowage-store-races-');
  image = await buildImage(join(bed.work, 'layout'), {
    tag: 'v1',
    seed: 'store-races',
    platforms: ['linux/amd64', 'linux/arm64'],
  });
  reg = await bed.registry();
  await pushLayout(image.layoutDir, 'v1', reg, 'races/app:v1');
});

after(() => bed?.cleanup());

/**
 * `store`, with `step` run (once) just before the `nth` call of `method`: another process's
 * steps at that moment of the pull.
 */
function stepBefore(store: Store, method: keyof Store, nth: number, step: () => Promise<void>): Store {
  let calls = 0;
  return new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (typeof value !== 'function') return value;
      if (prop !== method) return value.bind(target);
      return async (...args: unknown[]) => {
        if (++calls === nth) await step();
        return value.apply(target, args);
      };
    },
  });
}

async function pullVia(store: Store, ref: string) {
  const { client } = clientFor(reg);
  try {
    return await pull(store, client, ref, { platforms: amd64 });
  } finally {
    await client.close();
  }
}

describe('a cached pull racing rm + gc in another process', () => {
  test('the image removed (and its blobs collected) while the pull checked the cache: the name is not brought back without its blobs', async () => {
    const store = await bed.store();
    const ref = `${reg.host}/races/app:v1`;
    await pullVia(store, ref);
    const other = await Store.open(store.dir);
    // The check found the image complete; then the other process removes it and collects.
    const racing = stepBefore(store, 'getReference', 2, async () => {
      await other.removeReference(ref);
      await other.gc();
    });
    await pullVia(racing, ref);
    assert.deepEqual((await checkCache(store, amd64)).problems, []);
  });

  test('pulled by digest under a new name, the other name removed and collected meanwhile: the new name has every blob', async () => {
    const store = await bed.store();
    const tagged = `${reg.host}/races/app:v1`;
    await pullVia(store, tagged);
    const other = await Store.open(store.dir);
    const racing = stepBefore(store, 'setReference', 1, async () => {
      await other.removeReference(tagged);
      await other.gc();
    });
    const byDigest = `${reg.host}/races/app@${image.digest}`;
    await pullVia(racing, byDigest);
    assert.deepEqual(
      (await store.listReferences()).map((r) => r.name),
      [byDigest],
    );
    assert.deepEqual((await checkCache(store, amd64)).problems, []);
  });
});
