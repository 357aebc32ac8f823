// The layout the store writes is a standard OCI image layout: skopeo and umoci read it (and the
// store reads what skopeo writes). References are recorded under their fully normalised name.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { inspectImage, Store } from '../../src/core/store';
import { run } from '../support/proc';
import { buildImage, buildIndex, putAll, sha256, tempDir } from './store-fixture';

async function filesIn(dir: string): Promise<string[]> {
  return (await fs.readdir(dir)).sort();
}

describe('OCI layout interoperability', () => {
  test('skopeo inspects and copies references by their full name; umoci lists them', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const store = await Store.open(cache);
    const amd = buildImage('multi', { arch: 'amd64' });
    const arm = buildImage('multi', { arch: 'arm64' });
    const index = buildIndex([
      { image: amd, arch: 'amd64' },
      { image: arm, arch: 'arm64' },
    ]);
    const single = buildImage('single', { arch: 'amd64', layerCount: 3 });
    await putAll(store, [index, ...amd.all, ...arm.all, ...single.all]);
    const byTag = '127.0.0.1:5000/team/app:v1';
    const byDigest = `127.0.0.1:5000/team/app@${single.manifest.descriptor.digest}`;
    const hub = 'docker.io/library/alpine:3.20';
    await store.setReference(byTag, single.manifest.descriptor);
    await store.setReference(byDigest, single.manifest.descriptor);
    await store.setReference(hub, index.descriptor);
    // A partial download in the private folder must not disturb the peers.
    const partial = await store.ingest(sha256('partial blob'), 12);
    await partial.write(Buffer.from('partial'));
    await partial.close();

    for (const name of [byTag, byDigest]) {
      const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${cache}:${name}`])).stdout);
      assert.deepEqual(
        raw.layers.map((l: { digest: string }) => l.digest),
        single.layers.map((l) => l.descriptor.digest),
      );
      const info = JSON.parse((await run('skopeo', ['inspect', `oci:${cache}:${name}`])).stdout);
      assert.equal(info.Digest, single.manifest.descriptor.digest);
      assert.equal(info.Architecture, 'amd64');
      assert.deepEqual(info.Labels, { 'org.example.tag': 'single' });
    }
    // A short name does not match: skopeo compares the annotation verbatim.
    await assert.rejects(run('skopeo', ['inspect', '--raw', `oci:${cache}:v1`]), /no descriptor found/);

    // The multi-platform entry: skopeo picks the platform from the index.
    const armInfo = JSON.parse(
      (
        await run('skopeo', [
          '--override-arch',
          'arm64',
          '--override-os',
          'linux',
          'inspect',
          `oci:${cache}:${hub}`,
        ])
      ).stdout,
    );
    assert.equal(armInfo.Digest, index.descriptor.digest); // skopeo reports the digest of the reference itself
    assert.equal(armInfo.Architecture, 'arm64');

    const out = join(root, 'out');
    await run('skopeo', ['copy', '--override-arch', 'amd64', `oci:${cache}:${hub}`, `dir:${out}`]);
    const copied = (await filesIn(out)).filter((f) => /^[a-f0-9]{64}$/.test(f));
    assert.deepEqual(copied, [amd.config, ...amd.layers].map((b) => b.descriptor.digest.slice(7)).sort());
    for (const b of amd.layers)
      assert.deepEqual(await fs.readFile(join(out, b.descriptor.digest.slice(7))), b.bytes);

    const umoci = (await run('umoci', ['ls', '--layout', cache])).stdout.trim().split('\n').sort();
    assert.deepEqual(umoci, [byDigest, byTag, hub].sort());
  });

  test('the store reads a layout skopeo wrote into it, and gc keeps skopeo’s blobs', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const source = join(root, 'source');
    const store = await Store.open(source);
    const img = buildImage('copied', { arch: 'amd64' });
    await putAll(store, img.all);
    await store.setReference('src:1', img.manifest.descriptor);
    const theirs = await Store.open(cache);
    await run('skopeo', ['copy', `oci:${source}:src:1`, `oci:${cache}:example.com/copied:1`]);
    const [ref] = await theirs.listReferences();
    assert.equal(ref?.name, 'example.com/copied:1');
    const info = await inspectImage(theirs, 'example.com/copied:1');
    assert.equal(info?.complete, true);
    assert.deepEqual(info?.platforms[0]?.platform, { os: 'linux', architecture: 'amd64' });
    const before = await theirs.diskUsage();
    assert.equal((await theirs.gc()).removedBlobs, 0);
    assert.deepEqual(await theirs.diskUsage(), before);
  });
});
