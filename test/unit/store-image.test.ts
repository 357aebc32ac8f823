import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import {
  inspectImage,
  MAX_JSON_BLOB,
  MediaType,
  parseImageIndex,
  parseImageManifest,
  parseManifest,
  Store,
  walkImage,
} from '../../src/core/store';
import { blob, buildImage, buildIndex, putAll, sha256, tempDir } from './store-fixture';

const code = (c: string) => (e: unknown) => isStowageError(e, c as never);
const D = sha256('x');

describe('manifest validation', () => {
  const manifest = (over: Record<string, unknown> = {}) =>
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OCI_MANIFEST,
      config: { mediaType: MediaType.OCI_CONFIG, digest: D, size: 2 },
      layers: [{ mediaType: MediaType.OCI_LAYER_GZIP, digest: D, size: 10 }],
      ...over,
    });

  test('accepts OCI and Docker manifests and indexes, inferring a missing mediaType', () => {
    assert.equal(parseManifest(manifest()).kind, 'manifest');
    const docker = parseImageManifest(manifest({ mediaType: MediaType.DOCKER_MANIFEST }));
    assert.equal(docker.mediaType, MediaType.DOCKER_MANIFEST);
    assert.equal(docker.layers.length, 1);
    const noType = parseManifest(manifest({ mediaType: undefined }), MediaType.DOCKER_MANIFEST);
    assert.equal(noType.mediaType, MediaType.DOCKER_MANIFEST);
    const list = parseImageIndex(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.DOCKER_MANIFEST_LIST,
        manifests: [
          {
            mediaType: MediaType.DOCKER_MANIFEST,
            digest: D,
            size: 5,
            platform: { os: 'linux', architecture: 'arm' },
          },
        ],
      }),
    );
    assert.equal(list.manifests[0]!.platform!.architecture, 'arm');
    assert.equal(parseManifest(JSON.stringify({ schemaVersion: 2, manifests: [] })).kind, 'index');
  });

  const bad: [string, string | Uint8Array, string, string?][] = [
    ['invalid JSON', '{"schemaVersion": 2,', 'MANIFEST_INVALID'],
    ['not an object', '[1,2]', 'MANIFEST_INVALID'],
    ['deeply nested JSON', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, 'MANIFEST_INVALID'],
    ['schemaVersion 3', manifest({ schemaVersion: 3 }), 'MANIFEST_INVALID'],
    ['schema 1', JSON.stringify({ schemaVersion: 1, name: 'x', fsLayers: [] }), 'UNSUPPORTED_MEDIA_TYPE'],
    ['unknown media type', manifest({ mediaType: 'application/x-evil' }), 'UNSUPPORTED_MEDIA_TYPE'],
    [
      'a manifest where an index was expected',
      manifest(),
      'MANIFEST_INVALID',
      MediaType.DOCKER_MANIFEST_LIST,
    ],
    [
      'an index where a manifest was expected',
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] }),
      'MANIFEST_INVALID',
      MediaType.DOCKER_MANIFEST,
    ],
    [
      'a traversal digest',
      manifest({ config: { mediaType: 'x', digest: 'sha256:../../etc', size: 1 } }),
      'MANIFEST_INVALID',
    ],
    [
      'a wrong-length digest',
      manifest({ layers: [{ mediaType: 'x', digest: `sha256:${'a'.repeat(63)}`, size: 1 }] }),
      'MANIFEST_INVALID',
    ],
    [
      'an unknown algorithm',
      manifest({ layers: [{ mediaType: 'x', digest: `md5:${'a'.repeat(32)}`, size: 1 }] }),
      'MANIFEST_INVALID',
    ],
    ['a negative size', manifest({ layers: [{ mediaType: 'x', digest: D, size: -1 }] }), 'MANIFEST_INVALID'],
    ['a huge size', manifest({ layers: [{ mediaType: 'x', digest: D, size: 2 ** 60 }] }), 'MANIFEST_INVALID'],
    [
      'a fractional size',
      manifest({ layers: [{ mediaType: 'x', digest: D, size: 1.5 }] }),
      'MANIFEST_INVALID',
    ],
    ['a string size', manifest({ layers: [{ mediaType: 'x', digest: D, size: '1' }] }), 'MANIFEST_INVALID'],
    ['layers not a list', manifest({ layers: {} }), 'MANIFEST_INVALID'],
    ['no config', manifest({ config: undefined }), 'MANIFEST_INVALID'],
    ['bad annotations', manifest({ annotations: { a: 1 } }), 'MANIFEST_INVALID'],
    ['over 4 MiB', Buffer.alloc(MAX_JSON_BLOB + 1, 0x20), 'TOO_LARGE'],
  ];
  for (const [name, input, expected, mediaType] of bad) {
    test(`rejects ${name} with ${expected}`, () => {
      assert.throws(
        () => parseManifest(input, mediaType, 'Manifest of test:1'),
        (e: unknown) => {
          assert.ok(isStowageError(e, expected as never), `got ${String(e)}`);
          assert.match(e.message, /test:1|4194304/);
          return true;
        },
      );
    });
  }

  test('Docker and OCI spellings of one kind are taken for each other (registries mix them; containerd does)', () => {
    const oci = parseManifest(manifest(), MediaType.DOCKER_MANIFEST, 'Manifest of test:1');
    assert.equal(oci.kind, 'manifest');
    assert.equal(oci.mediaType, MediaType.OCI_MANIFEST);
    const list = JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.DOCKER_MANIFEST_LIST,
      manifests: [],
    });
    assert.equal(parseManifest(list, MediaType.OCI_INDEX).kind, 'index');
  });

  test('parseImageIndex / parseImageManifest insist on the kind', () => {
    assert.throws(() => parseImageIndex(manifest()), code('MANIFEST_INVALID'));
    assert.throws(
      () => parseImageManifest(JSON.stringify({ schemaVersion: 2, manifests: [] })),
      code('MANIFEST_INVALID'),
    );
  });
});

describe('walkImage and inspectImage', () => {
  test('walks index → matching manifests → config + layers and reports what is missing', async (t) => {
    const store = await Store.open(await tempDir(t));
    const amd = buildImage('v1', { arch: 'amd64' });
    const arm = buildImage('v1', { arch: 'arm64', layerCount: 3 });
    const index = buildIndex([
      { image: amd, arch: 'amd64' },
      { image: arm, arch: 'arm64', variant: 'v8' },
    ]);
    await putAll(store, [index, ...amd.all, arm.manifest]);

    const amdWalk = await walkImage(store, index.descriptor, {
      platforms: [{ os: 'linux', architecture: 'amd64' }],
    });
    assert.deepEqual(amdWalk.missing, []);
    assert.deepEqual(amdWalk.platforms, ['linux/amd64']);
    assert.equal(amdWalk.blobs.length, 1 + amd.all.length);
    assert.deepEqual(amdWalk.unmatchedPlatforms, []);

    // arm64 ≡ arm64/v8: the manifest is cached, its config and layers are not.
    const armWalk = await walkImage(store, index.descriptor, {
      platforms: [{ os: 'linux', architecture: 'arm64' }],
    });
    assert.deepEqual(armWalk.platforms, ['linux/arm64']);
    assert.deepEqual(
      armWalk.missing.map((d) => d.digest).sort(),
      [arm.config, ...arm.layers].map((b) => b.descriptor.digest).sort(),
    );

    const all = await walkImage(store, index.descriptor);
    assert.equal(all.manifests.length, 2);
    assert.equal(all.missing.length, 4);

    const s390 = await walkImage(store, index.descriptor, {
      platforms: [{ os: 'linux', architecture: 's390x' }],
    });
    assert.deepEqual(s390.unmatchedPlatforms, [{ os: 'linux', architecture: 's390x' }]);
    assert.equal(s390.manifests.length, 0);

    // The top itself missing: reported, nothing else known.
    const absent = buildImage('absent');
    const walk = await walkImage(store, absent.manifest.descriptor);
    assert.deepEqual(walk.missing, [absent.manifest.descriptor]);
  });

  test('inspectImage summarises a cached multi-platform reference without network', async (t) => {
    const store = await Store.open(await tempDir(t));
    const amd = buildImage('v2', { arch: 'amd64' });
    const arm = buildImage('v2', { arch: 'arm', variant: 'v7' });
    const index = buildIndex([
      { image: amd, arch: 'amd64' },
      { image: arm, arch: 'arm', variant: 'v7' },
    ]);
    await putAll(store, [index, ...amd.all]);
    await store.setReference('127.0.0.1:5000/team/app:v2', index.descriptor);
    assert.equal(await inspectImage(store, '127.0.0.1:5000/team/app:v1'), undefined);
    const info = await inspectImage(store, '127.0.0.1:5000/team/app:v2');
    assert.ok(info);
    assert.equal(info.digest, index.descriptor.digest);
    assert.equal(info.mediaType, MediaType.OCI_INDEX);
    assert.equal(info.complete, true);
    assert.equal(info.platforms.length, 2);
    const [p1, p2] = info.platforms;
    assert.deepEqual(p1!.platform, { os: 'linux', architecture: 'amd64' });
    assert.equal(p1!.cached, true);
    assert.equal(p1!.complete, true);
    assert.equal(p1!.manifestDigest, amd.manifest.descriptor.digest);
    assert.equal(p1!.config?.created, '2024-05-01T12:00:00Z');
    assert.deepEqual(p1!.config?.entrypoint, ['/bin/app']);
    assert.deepEqual(p1!.config?.cmd, ['--serve']);
    assert.deepEqual(p1!.config?.exposedPorts, ['8080/tcp']);
    assert.deepEqual(p1!.config?.labels, { 'org.example.tag': 'v2' });
    assert.equal(p1!.layers.length, 2);
    assert.ok(p1!.layers.every((l) => l.present));
    assert.equal(
      p1!.compressedSize,
      amd.config.descriptor.size + amd.layers.reduce((n, l) => n + l.descriptor.size, 0),
    );
    assert.deepEqual(p2!.platform, { os: 'linux', architecture: 'arm', variant: 'v7' });
    assert.equal(p2!.cached, false);
    assert.equal(p2!.complete, false);
  });

  test('a single-manifest reference takes its platform from the config', async (t) => {
    const store = await Store.open(await tempDir(t));
    const img = buildImage('solo', { arch: 'arm64' });
    await putAll(store, img.all.slice(0, -2).concat(img.manifest)); // last layer missing
    await store.setReference('docker.io/library/solo:1', img.manifest.descriptor);
    const info = await inspectImage(store, 'docker.io/library/solo:1');
    assert.deepEqual(info?.platforms[0]?.platform, { os: 'linux', architecture: 'arm64' });
    assert.equal(info?.complete, false);
    assert.deepEqual(
      info?.platforms[0]?.layers.map((l) => l.present),
      [true, false],
    );
  });

  test('a cached manifest with invalid content is refused, not followed', async (t) => {
    const store = await Store.open(await tempDir(t));
    const evil = blob(
      MediaType.OCI_MANIFEST,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          config: { mediaType: 'x', digest: 'sha256:../../../etc/passwd', size: 1 },
          layers: [],
        }),
      ),
    );
    await putAll(store, [evil]);
    await assert.rejects(walkImage(store, evil.descriptor), code('MANIFEST_INVALID'));
  });
});

describe('gc and disk usage', () => {
  test('gc removes blobs no reference reaches and keeps reachable and leased ones', async (t) => {
    const store = await Store.open(await tempDir(t));
    const kept = buildImage('kept', { arch: 'amd64' });
    const keptArm = buildImage('kept', { arch: 'arm64' });
    const inner = buildIndex([{ image: keptArm, arch: 'arm64' }]);
    // An outer index holding a manifest and a nested index.
    const outer = blob(
      MediaType.OCI_INDEX,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OCI_INDEX,
          manifests: [
            { ...kept.manifest.descriptor, platform: { os: 'linux', architecture: 'amd64' } },
            inner.descriptor,
          ],
        }),
      ),
    );
    const dropped = buildImage('dropped');
    const leased = blob('application/octet-stream', Buffer.from('committed by a pull in progress'));
    const loose = blob('application/octet-stream', Buffer.from('nobody wants me'));
    await putAll(store, [outer, inner, ...kept.all, ...keptArm.all, ...dropped.all, leased, loose]);
    await store.setReference('r/kept:1', outer.descriptor);
    await store.setReference('r/dropped:1', dropped.manifest.descriptor);
    const lease = await store.lease([leased.descriptor.digest]);

    const before = await store.diskUsage();
    assert.equal(before.blobs, 2 + kept.all.length + keptArm.all.length + dropped.all.length + 2);

    assert.equal(await store.removeReference('r/dropped:1'), true);
    const result = await store.gc();
    const expectGone = [...dropped.all, loose];
    assert.equal(result.removedBlobs, expectGone.length);
    assert.equal(
      result.freedBytes,
      expectGone.reduce((n, b) => n + b.bytes.length, 0),
    );
    for (const b of expectGone) assert.equal(await store.has(b.descriptor.digest), false);
    for (const b of [outer, inner, ...kept.all, ...keptArm.all, leased]) {
      assert.equal(await store.has(b.descriptor.digest), true, b.descriptor.mediaType);
    }

    await lease.release();
    // A lease left by a killed process (dead pid on this host) protects nothing.
    const { hostname } = await import('node:os');
    const { spawnSync } = await import('node:child_process');
    const dead = spawnSync(process.execPath, ['-e', '0']).pid;
    await fs.writeFile(
      join(store.dir, '.stowage', 'leases', 'dead.json'),
      JSON.stringify({ pid: dead, hostname: hostname(), token: 'dead', digests: [leased.descriptor.digest] }),
    );
    assert.equal((await store.gc()).removedBlobs, 1);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'leases')), []);
    assert.equal(await store.has(leased.descriptor.digest), false);
    const after = await store.diskUsage();
    assert.equal(after.blobs, 2 + kept.all.length + keptArm.all.length);
  });

  test('gc keeps what it cannot parse strictly: an entry mislabelled Docker for an OCI body, an artifact', async (t) => {
    const store = await Store.open(await tempDir(t));
    const image = buildImage('mixed');
    // What some registries serve: the index entry says Docker v2s2, the manifest body says OCI.
    const index = blob(
      MediaType.OCI_INDEX,
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OCI_INDEX,
          manifests: [
            {
              ...image.manifest.descriptor,
              mediaType: MediaType.DOCKER_MANIFEST,
              platform: { os: 'linux', architecture: 'amd64' },
            },
          ],
        }),
      ),
    );
    // An artifact of a kind Stowage does not parse, naming a blob of its own.
    const payload = blob('application/vnd.example.payload', Buffer.from('payload'));
    const artifact = blob(
      'application/vnd.example.bundle+json',
      Buffer.from(JSON.stringify({ schemaVersion: 2, blobs: [payload.descriptor] })),
    );
    await putAll(store, [index, ...image.all, payload, artifact]);
    await store.setReference('r/mixed:1', index.descriptor);
    await store.setReference('r/artifact:1', artifact.descriptor);
    assert.equal((await store.gc()).removedBlobs, 0);
    for (const b of [index, ...image.all, payload, artifact])
      assert.equal(await store.has(b.descriptor.digest), true);
    // And the mislabelled image reads as complete (it did not before: inspect failed, ls said 0 B).
    const info = await inspectImage(store, 'r/mixed:1');
    assert.equal(info?.complete, true);
  });

  test('a lease taken while gc runs cannot see a blob that gc then removes', async (t) => {
    // A pull takes its lease, then checks which blobs it still needs (has()). If that happened
    // after gc read the leases but before it swept, the pull would skip a blob gc then deletes,
    // and record a reference to something missing.
    const store = await Store.open(await tempDir(t));
    const leftover = blob('application/octet-stream', Buffer.from('left by an image since removed'));
    await putAll(store, [leftover]);
    const digest = leftover.descriptor.digest;
    const s = store as unknown as { leasedDigests(): Promise<string[]> };
    const leasedDigests = s.leasedDigests.bind(store);
    let pulling: Promise<{ seen: boolean; release(): Promise<void> }> | undefined;
    s.leasedDigests = async () => {
      const leased = await leasedDigests();
      // gc has read the leases: a pull starts now.
      pulling = store
        .lease([digest])
        .then(async (l) => ({ seen: await store.has(digest), release: l.release }));
      // Let it get as far as it can before gc sweeps (not needed for it to be correct).
      await Promise.race([pulling, new Promise((r) => setTimeout(r, 300))]);
      return leased;
    };
    await store.gc();
    const { seen, release } = await pulling!;
    assert.equal(await store.has(digest), seen, 'what the leased pull saw is what is there');
    await release();
  });

  test('gc removes stale and already-committed ingests, keeps fresh and locked ones', async (t) => {
    const store = await Store.open(await tempDir(t));
    const mk = async (content: string) => {
      const ing = await store.ingest(sha256(content), content.length);
      await ing.write(Buffer.from(content.slice(0, 3)));
      return ing;
    };
    const stale = await mk('stale partial');
    await stale.close();
    const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    await fs.utimes(join(store.ingestPath(stale.digest), 'data'), old, old);
    const fresh = await mk('fresh partial');
    await fresh.close();
    const active = await mk('active download');
    const done = await mk('done elsewhere');
    await done.close();
    await store.putBlob(Buffer.from('done elsewhere'), sha256('done elsewhere'));

    const usage = await store.diskUsage();
    assert.equal(usage.ingests, 4);
    // The active ingest still buffers its 3 bytes in memory; the closed ones flushed theirs.
    assert.equal(usage.ingestBytes, 9);

    const result = await store.gc();
    assert.equal(result.removedIngests, 2);
    const left = (await fs.readdir(join(store.dir, '.stowage', 'ingest'))).sort();
    assert.deepEqual(
      left,
      [store.ingestPath(fresh.digest), store.ingestPath(active.digest)].map((p) => p.split('/').pop()).sort(),
    );
    await active.write(Buffer.from('ive download'));
    await active.commit();
    assert.equal(await store.verifyBlob(active.digest), true);
  });
});
