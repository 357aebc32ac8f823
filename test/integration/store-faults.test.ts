// The cache on a damaged or full disk, against a real registry: a blob that rotted after its commit
// is fetched again by the next pull; a full disk is reported as one (not as a network failure) and
// gc still frees space on it; gc never deletes through a symlink out of the cache; a read-only cache
// is read. The disk-full and read-only cases mount a small tmpfs (root only: skipped, and reported
// skipped, elsewhere).
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { inspectImage } from '../../src/core/store';
import { requireCli, runCli } from '../support/cli';
import { clientFor, Store, TestBed, verifyAllBlobs } from '../support/engine';
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

/**
 * A tmpfs of `kb` KiB mounted for this test and unmounted after; undefined (the test skipped) where
 * this process may not mount one.
 */
async function smallDisk(
  t: { skip(m: string): void; after(fn: () => Promise<void>): void },
  kb: number,
): Promise<string | undefined> {
  if (process.getuid?.() !== 0) {
    t.skip('mounting a small tmpfs needs root');
    return undefined;
  }
  const dir = await fs.mkdtemp(join(bed.work, 'disk-'));
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', dir]);
  } catch (e) {
    t.skip(`cannot mount a tmpfs here: ${(e as Error).message.split('\n')[1] ?? e}`);
    return undefined;
  }
  t.after(() => run('umount', [dir]).then(() => undefined));
  return dir;
}

/** Writes zeros to a file on `dir`'s disk until it is full. */
async function fillDisk(dir: string): Promise<void> {
  const fh = await fs.open(join(dir, 'filler'), 'w');
  const chunk = Buffer.alloc(4096);
  try {
    for (;;) await fh.write(chunk);
  } catch (e) {
    assert.equal((e as NodeJS.ErrnoException).code, 'ENOSPC');
  } finally {
    await fh.close();
  }
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

describe('a full disk', () => {
  test('a pull that fills the disk says so, naming the cache (it read “Download … failed … Try again”)', async (t) => {
    const disk = await smallDisk(t, 256);
    if (!disk) return;
    const store = await Store.open(join(disk, 'cache'));
    await assert.rejects(pullInto(store), (e: unknown) => {
      assert.ok(isStowageError(e, 'CACHE_WRITE'), `a cache write error, got ${String(e)}`);
      assert.match(e.message, /full/);
      assert.ok(e.message.includes(store.dir), e.message);
      assert.doesNotMatch(e.message, /Download of/);
      assert.match(e.hint ?? '', /stowage gc, or Stowage: Clean Up Cache in VS Code/);
      return true;
    });
  });

  test('on a disk already full, a pull says so and gc frees space (it could not take its lock there)', async (t) => {
    const disk = await smallDisk(t, 1024);
    if (!disk) return;
    const store = await Store.open(join(disk, 'cache'));
    await pullInto(store);
    assert.equal(await store.removeReference(ref), true);
    await fillDisk(disk);
    // A pull there stops at its first write (the lease that keeps its blobs from gc), saying why.
    await assert.rejects(
      pullInto(store),
      (e: unknown) => isStowageError(e, 'CACHE_WRITE') && /full/.test(e.message),
    );

    const r = await store.gc();
    assert.equal(r.removedBlobs, 4);
    assert.ok(r.freedBytes >= image.platforms[0]!.layers.reduce((n, l) => n + l.size, 0));
    assert.deepEqual(await fs.readdir(join(store.dir, 'blobs', 'sha256')), []);
    assert.deepEqual(
      await fs.readdir(join(store.dir, '.stowage')).then((f) => f.filter((n) => /lock/.test(n))),
      [],
    );
    // With the room gc made, the cache works as before.
    await fs.rm(join(disk, 'filler'));
    assert.equal((await pullInto(store)).blobsDownloaded, 3);
  });
});

describe('a read-only cache', () => {
  test('a cache on a read-only disk, without the .stowage folder (copied, or written by skopeo): ls, inspect and export read it; rm and a new cache say read-only', async (t) => {
    requireCli();
    const disk = await smallDisk(t, 4096);
    if (!disk) return;
    const cache = join(disk, 'cache');
    await pullInto(await Store.open(cache));
    await fs.rm(join(cache, '.stowage'), { recursive: true });
    await run('mount', ['-o', 'remount,ro', disk]);

    // Opened as it is (Node's mkdir -p said ENOENT there: "cannot use … as the cache: no such file").
    const store = await Store.open(cache);
    assert.equal((await inspectImage(store, ref))?.complete, true);
    const cli = (...args: string[]) => runCli([...args, '--cache', cache]);
    const ls = await cli('ls');
    assert.equal(ls.code, 0, ls.stderr);
    assert.ok(ls.stdout.includes(ref), ls.stdout);
    assert.equal((await cli('inspect', ref)).code, 0);
    const archive = join(bed.work, 'from-read-only.tar');
    const exported = await cli('export', ref, '-o', archive);
    assert.equal(exported.code, 0, exported.stderr);
    assert.ok((await fs.stat(archive)).size > image.platforms[0]!.layers[0]!.size);

    // What needs a write says the disk is read-only.
    const rm = await cli('rm', ref);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /read-only/);
    await assert.rejects(Store.open(join(disk, 'new-cache')), (e: unknown) => {
      assert.ok(isStowageError(e, 'CACHE_WRITE'), String(e));
      assert.match(e.message, /read-only/);
      return true;
    });
    assert.deepEqual((await fs.readdir(cache)).sort(), ['blobs', 'index.json', 'oci-layout']);
  });
});
