// Layouts other tools wrote or share, opened by the store: what rm and gc do must never take away
// what those tools rely on (entries without a name, their annotations, blobs reached only through
// a symlink out of the cache), and skopeo and umoci read the layout after each operation.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { Store, walkImage } from '../../src/core/store';
import { run } from '../support/proc';
import { buildImage, buildIndex, putAll, tempDir } from './store-fixture';

/** Blob file names under `dir` (a blobs/<alg> folder or what it links to). */
async function names(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}

describe('foreign OCI layouts', () => {
  test('rm and gc in a skopeo layout keep its unnamed entries, its names and its annotations; skopeo and umoci still read it', async (t) => {
    const root = await tempDir(t);
    const source = await Store.open(join(root, 'source'));
    const multi = [buildImage('m', { arch: 'amd64' }), buildImage('m', { arch: 'arm64' })];
    const index = buildIndex([
      { image: multi[0]!, arch: 'amd64' },
      { image: multi[1]!, arch: 'arm64' },
    ]);
    const single = buildImage('s');
    const ours = buildImage('ours');
    await putAll(source, [index, ...multi.flatMap((i) => i.all), ...single.all, ...ours.all]);
    await source.setReference('multi', index.descriptor);
    await source.setReference('single', single.manifest.descriptor);
    await source.setReference('ours', ours.manifest.descriptor);

    const layout = join(root, 'layout');
    // No name: skopeo records the image without org.opencontainers.image.ref.name.
    await run('skopeo', ['copy', '-q', '--all', `oci:${source.dir}:multi`, `oci:${layout}`]);
    await run('skopeo', ['copy', '-q', `oci:${source.dir}:single`, `oci:${layout}:short`]);
    await run('skopeo', ['copy', '-q', `oci:${source.dir}:ours`, `oci:${layout}:example.com/ours:1`]);
    const raw = JSON.parse(await fs.readFile(join(layout, 'index.json'), 'utf8'));
    raw.annotations = { 'org.example.layout': 'kept' };
    raw.manifests[1].annotations['org.example.entry'] = 'kept too';
    await fs.writeFile(join(layout, 'index.json'), JSON.stringify(raw));
    const blobsBefore = await names(join(layout, 'blobs', 'sha256'));

    const store = await Store.open(layout);
    assert.deepEqual((await store.listReferences()).map((r) => r.name).sort(), [
      'example.com/ours:1',
      'short',
    ]);
    assert.equal(await store.removeReference('example.com/ours:1'), true);
    const gc = await store.gc();
    assert.equal(gc.removedBlobs, ours.all.length, 'only the removed image’s blobs go');

    const after = JSON.parse(await fs.readFile(join(layout, 'index.json'), 'utf8'));
    assert.deepEqual(after.annotations, raw.annotations);
    assert.deepEqual(after.manifests, raw.manifests.slice(0, 2));
    assert.deepEqual(
      await names(join(layout, 'blobs', 'sha256')),
      blobsBefore.filter((b) => !ours.all.some((o) => o.descriptor.digest === `sha256:${b}`)),
    );
    const unnamed = await walkImage(store, index.descriptor);
    assert.equal(unnamed.blobs.length, 1 + multi.flatMap((i) => i.all).length);
    assert.deepEqual(unnamed.missing, []);
    // skopeo reads the named entry, umoci lists it.
    const named = JSON.parse((await run('skopeo', ['inspect', `oci:${layout}:short`])).stdout);
    assert.equal(named.Digest, single.manifest.descriptor.digest);
    assert.equal((await run('umoci', ['ls', '--layout', layout])).stdout.trim(), 'short');
  });

  test('gc never deletes through a symlink out of the cache (blobs/sha256 shared with another layout)', async (t) => {
    const root = await tempDir(t);
    const store = await Store.open(join(root, 'cache'));
    const kept = buildImage('kept');
    const dropped = buildImage('dropped');
    await putAll(store, [...kept.all, ...dropped.all]);
    await store.setReference('kept', kept.manifest.descriptor);
    // The blob folder lives elsewhere (a pool another layout uses too), and one blob is a link to
    // a file outside the cache.
    const pool = join(root, 'pool');
    await fs.rename(join(store.dir, 'blobs', 'sha256'), pool);
    await fs.symlink(pool, join(store.dir, 'blobs', 'sha256'));
    const elsewhere = join(root, 'elsewhere');
    await fs.writeFile(elsewhere, 'not the cache’s');
    const linkName = 'e'.repeat(64);
    await fs.symlink(elsewhere, join(pool, linkName));
    const before = await names(pool);

    const r = await store.gc();
    assert.equal(r.removedBlobs, 0);
    assert.deepEqual(await names(pool), before);
    assert.equal(await fs.readFile(elsewhere, 'utf8'), 'not the cache’s');
    // Reading through the link still works.
    assert.equal(await store.verifyBlob(kept.layers[0]!.descriptor.digest), true);
  });
});
