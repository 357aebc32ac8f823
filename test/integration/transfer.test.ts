// Export → import of OCI layout tarballs against real peers: skopeo reads what we write, we read
// what skopeo writes, and damaged archives commit nothing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { inspectImage, walkImage } from '../../src/core/store';
import { exportImages } from '../../src/core/transfer/export';
import { importArchive } from '../../src/core/transfer/import';
import { readTar } from '../../src/core/transfer/tar';
import { CLI, runCli } from '../support/cli';
import { blobNames, clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { run } from '../support/proc';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const root = join(__dirname, '..', '..');
let work: string;
let image: BuiltImage;
let single: BuiltImage;
let reg: RunningRegistry;
/** A cache holding the amd64 platform of the multi-platform image and the single-platform image. */
let source: Store;
let multiRef: string;
let singleRef: string;
const amd64 = [parsePlatform('linux/amd64')];

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-transfer-'));
  [image, single] = await Promise.all([
    buildImage(join(work, 'layout'), { tag: 'v1', seed: 'transfer', layers: 3, layerSize: 400_000 }),
    buildImage(join(work, 'layout-single'), {
      tag: 'v2',
      seed: 'transfer-single',
      platforms: ['linux/amd64'],
      index: false,
      layers: 2,
      layerSize: [2_000_000, 100],
    }),
  ]);
  reg = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', reg, 'team/app:v1');
  await pushLayout(single.layoutDir, 'v2', reg, 'team/tool:v2');
  multiRef = `${reg.host}/team/app:v1`;
  singleRef = `${reg.host}/team/tool:v2`;
  source = await Store.open(join(work, 'source'));
  const { client } = clientFor(reg);
  await pull(source, client, multiRef, { platforms: amd64 });
  await pull(source, client, singleRef);
  await client.close();
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

async function freshStore(): Promise<Store> {
  return Store.open(await mkdtemp(join(work, 'cache-')));
}

async function tarNames(file: string): Promise<string[]> {
  const names: string[] = [];
  const { createReadStream } = await import('node:fs');
  for await (const e of readTar(createReadStream(file))) names.push(e.name);
  return names;
}

/** Everything under the store's blobs/ and ingest area, and its references. */
async function storeState(store: Store) {
  const ingest = await readdir(join(store.privateDir, 'ingest')).catch(() => []);
  return {
    blobs: (await blobNames(store)).size,
    refs: (await store.listReferences()).length,
    ingest: ingest.length,
  };
}

describe('export', () => {
  test('writes exactly the references and the blobs they reach; skopeo inspects and copies it', async () => {
    const file = join(work, 'multi.tar');
    const r = await exportImages(source, [multiRef], file);
    assert.equal(r.images.length, 1);
    assert.equal(r.images[0]!.digest, image.digest);
    assert.deepEqual(r.images[0]!.platforms, ['linux/amd64']);
    assert.deepEqual(r.images[0]!.missingPlatforms.sort(), ['linux/arm/v7', 'linux/arm64']);
    assert.equal((await stat(file)).size, r.archiveBytes, 'the announced archive size is exact');

    const amd = image.platforms.find((p) => p.platform === 'linux/amd64')!;
    const expected = [
      image.digest,
      amd.manifest.digest,
      amd.config.digest,
      ...amd.layers.map((l) => l.digest),
    ];
    const names = await tarNames(file);
    const blobs = names.filter((n) => n.startsWith('blobs/sha256/') && n.length > 'blobs/sha256/'.length);
    assert.deepEqual(blobs.sort(), expected.map((d) => `blobs/sha256/${d.slice(7)}`).sort());
    assert.equal(r.blobs, expected.length);
    assert.ok(names.includes('oci-layout') && names.includes('index.json'));

    // GNU tar agrees it is a well-formed archive.
    const listing = spawnSync('tar', ['tf', file], { encoding: 'utf8' });
    assert.equal(listing.status, 0, listing.stderr);
    assert.ok(listing.stdout.includes('index.json'));

    // skopeo: inspect without a name (one image in the archive), and copy by name.
    const inspected = JSON.parse((await run('skopeo', ['inspect', `oci-archive:${file}`])).stdout);
    assert.equal(inspected.Architecture, 'amd64');
    assert.deepEqual(
      inspected.Layers,
      amd.layers.map((l) => l.digest),
    );
    const raw = (await run('skopeo', ['inspect', '--raw', `oci-archive:${file}:${multiRef}`])).stdout;
    assert.equal(raw, image.body, 'the index is exported byte for byte (its digest is the identity)');
    const out = join(work, 'skopeo-copy');
    await run('skopeo', [
      'copy',
      '--override-arch',
      'amd64',
      `oci-archive:${file}:${multiRef}`,
      `oci:${out}:copied`,
    ]);
    const copied = JSON.parse((await run('skopeo', ['inspect', '--raw', `oci:${out}:copied`])).stdout) as {
      layers: { digest: string }[];
    };
    assert.deepEqual(
      copied.layers.map((l) => l.digest),
      amd.layers.map((l) => l.digest),
    );
  });

  test('round trip: export → import into another cache keeps every digest; skopeo reads the result', async () => {
    const file = join(work, 'both.tar');
    const exported = await exportImages(
      source,
      [multiRef, 'team/tool:v2'.replace(/^/, `${reg.host}/`)],
      file,
    );
    assert.equal(exported.images.length, 2);
    const target = await freshStore();
    const progress: number[] = [];
    const imported = await importArchive(target, file, { onProgress: (p) => progress.push(p.bytesDone) });
    assert.deepEqual(
      imported.images.map((i) => [i.name, i.digest]).sort(),
      [
        [multiRef, image.digest],
        [singleRef, single.digest],
      ].sort(),
    );
    assert.equal(imported.blobsAdded, exported.blobs);
    assert.equal(imported.blobsPresent, 0);
    assert.ok(progress.length > 0 && progress.at(-1)! >= exported.blobBytes);
    for (const name of [multiRef, singleRef]) {
      assert.deepEqual(await target.getReference(name), await source.getReference(name));
      const a = await inspectImage(source, name);
      const b = await inspectImage(target, name);
      assert.deepEqual(b, a, `${name} inspects identically in both caches`);
    }
    assert.deepEqual(await blobNames(target), await blobNames(source));
    assert.equal(await verifyAllBlobs(target), exported.blobs);
    const inspected = JSON.parse((await run('skopeo', ['inspect', `oci:${target.dir}:${singleRef}`])).stdout);
    assert.equal(inspected.Digest, single.digest);

    // A pull of the imported image is a cache hit: zero requests.
    const { client, requests } = clientFor(reg);
    const again = await pull(target, client, multiRef, { platforms: amd64 });
    assert.equal(again.fromCache, true);
    assert.equal(requests.length, 0);
    await client.close();

    // Importing again: nothing new, every blob still verified.
    const twice = await importArchive(target, file);
    assert.equal(twice.blobsAdded, 0);
    assert.equal(twice.blobsPresent, exported.blobs);
  });

  test('import: blobs found already cached but removed by a gc before the commit are not referenced missing', async () => {
    const file = join(work, 'gc-race.tar');
    await exportImages(source, [singleRef], file);
    const target = await freshStore();
    await importArchive(target, file);
    // Unreferenced now: the next import finds them present, then a gc (another process) removes them.
    await target.removeReference(singleRef);
    const lease = target.lease.bind(target);
    target.lease = async (digests) => {
      await target.gc();
      return lease(digests);
    };
    const outcome = await importArchive(target, file).then(
      () => undefined,
      (e: unknown) => e,
    );
    const ref = await target.getReference(singleRef);
    if (outcome === undefined) {
      const walk = await walkImage(target, ref!);
      assert.deepEqual(walk.missing, [], 'the recorded reference reaches only present blobs');
    } else {
      assert.ok(isStowageError(outcome), `typed: ${outcome}`);
      assert.equal(ref, undefined, 'nothing recorded');
    }
  });

  test('CLI: stowage export / import by the names users type', async () => {
    const file = join(work, 'cli.tar');
    const cache2 = await mkdtemp(join(work, 'cli-cache-'));
    const cli = (args: string[]) => runCli(args);
    const e = await cli(['export', `${reg.host}/team/tool:v2`, '-o', file, '--cache', source.dir, '--json']);
    assert.equal(e.code, 0, e.stderr);
    assert.equal(JSON.parse(e.stdout).images[0].name, singleRef);
    const i = await cli(['import', file, '--cache', cache2]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, /imported 1 image\(s\)/);
    const ls = await cli(['ls', '--cache', cache2, '--json']);
    assert.deepEqual(
      JSON.parse(ls.stdout).map((r: { name: string }) => r.name),
      [singleRef],
    );
    // Through a pipe, as over ssh to an air-gapped machine: export -o - | import -.
    const cache3 = await mkdtemp(join(work, 'cli-pipe-'));
    const stowage = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`;
    const piped = spawnSync(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `${stowage} export ${singleRef} -o - --cache ${JSON.stringify(source.dir)} | ${stowage} import - --cache ${JSON.stringify(cache3)} --json`,
      ],
      { cwd: root, encoding: 'utf8' },
    );
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(JSON.parse(piped.stdout).images[0].digest, single.digest);
    assert.match(piped.stderr, /exported .*tool:v2: 4 blobs/);
    // A platform not pulled is left out, and the summary says how to get a complete archive.
    const partial = await cli(['export', multiRef, '-o', join(work, 'partial.tar'), '--cache', source.dir]);
    assert.equal(partial.code, 0, partial.stderr);
    assert.match(
      partial.stdout,
      /\(not cached, left out: .*linux\/arm64.*; for a complete archive pull with --all-platforms first\)/,
    );
    const missing = await cli([
      'export',
      'nothing/here:v1',
      '-o',
      join(work, 'x.tar'),
      '--cache',
      source.dir,
    ]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /docker\.io\/nothing\/here:v1 is not in the cache/);
    await assert.rejects(stat(join(work, 'x.tar')), 'no archive is left behind by a failed export');
  });

  test('a cancelled export leaves no file behind', async () => {
    const file = join(work, 'cancelled.tar');
    const controller = new AbortController();
    await assert.rejects(
      exportImages(source, [singleRef], file, {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }),
      (e: unknown) => isStowageError(e, 'ABORTED'),
    );
    await assert.rejects(stat(file));
    const leftovers = (await readdir(work)).filter((n) => n.includes('cancelled.tar'));
    assert.deepEqual(leftovers, []);
  });

  test('all platforms pulled: skopeo copy --all reads the archive', async () => {
    const cache = await freshStore();
    const { client } = clientFor(reg);
    await pull(cache, client, multiRef, { allPlatforms: true });
    await client.close();
    const file = join(work, 'all.tar');
    const r = await exportImages(cache, [multiRef], file);
    assert.equal(r.images[0]!.platforms.length, 3);
    assert.deepEqual(r.images[0]!.missingPlatforms, []);
    const out = join(work, 'skopeo-all');
    await run('skopeo', ['copy', '--all', `oci-archive:${file}:${multiRef}`, `oci:${out}:all`]);
    const raw = (await run('skopeo', ['inspect', '--raw', `oci:${out}:all`])).stdout;
    assert.equal(raw, image.body);
  });
});

describe('import', () => {
  test('reads an archive skopeo wrote (its own tag names)', async () => {
    const file = join(work, 'from-skopeo.tar');
    await run('skopeo', ['copy', `oci:${single.layoutDir}:v2`, `oci-archive:${file}:team/tool:v2`]);
    const target = await freshStore();
    const r = await importArchive(target, file);
    assert.equal(r.images.length, 1);
    assert.equal(r.images[0]!.name, 'team/tool:v2');
    assert.equal(r.images[0]!.digest, single.digest);
    assert.equal(await verifyAllBlobs(target), 2 + single.platforms[0]!.layers.length);
  });

  /** Rewrites bytes of an archive at the first occurrence of `find` (inside some entry's data). */
  async function tamper(file: string, out: string, edit: (tar: Buffer) => void): Promise<string> {
    const bytes = await readFile(file);
    edit(bytes);
    await writeFile(out, bytes);
    return out;
  }

  /** The offset of the header of entry `name` (the name also appears in manifest.json's text). */
  function headerOf(tar: Buffer, name: Buffer): number {
    for (let at = tar.indexOf(name); at >= 0; at = tar.indexOf(name, at + 1)) if (at % 512 === 0) return at;
    throw new Error(`no entry ${name}`);
  }

  async function rejectsCleanly(file: string, code: string, message: RegExp) {
    const target = await freshStore();
    await assert.rejects(importArchive(target, file), (e: unknown) => {
      assert.ok(isStowageError(e), String(e));
      assert.equal(e.code, code, e.message);
      assert.match(e.message, message);
      return true;
    });
    assert.deepEqual(
      await storeState(target),
      { blobs: 0, refs: 0, ingest: 0 },
      'nothing was committed or left',
    );
  }

  test('a tampered layer (big, staged on disk) is rejected with nothing committed', async () => {
    const file = join(work, 'single.tar');
    await exportImages(source, [singleRef], file);
    const big = single.platforms[0]!.layers[0]!;
    const name = Buffer.from(`blobs/sha256/${big.digest.slice(7)}`);
    const bad = await tamper(file, join(work, 'bad-layer.tar'), (tar) => {
      const at = headerOf(tar, name);
      tar[at + 512 + 1_000_000] ^= 0xff; // inside the 2 MB layer's data
    });
    await rejectsCleanly(
      bad,
      'DIGEST_MISMATCH',
      new RegExp(`blobs/sha256/${big.digest.slice(7)} does not hash`),
    );
  });

  test('a tampered manifest or config (small, held in memory) is rejected', async () => {
    const file = join(work, 'single2.tar');
    await exportImages(source, [singleRef], file);
    const bad = await tamper(file, join(work, 'bad-config.tar'), (tar) => {
      const at = tar.indexOf(Buffer.from('stowage-fixture'));
      tar[at] = 'S'.charCodeAt(0);
    });
    await rejectsCleanly(bad, 'DIGEST_MISMATCH', /does not hash to its name/);
  });

  test('a size that disagrees with the descriptor, a missing blob and a truncated archive are rejected', async () => {
    const file = join(work, 'single3.tar');
    await exportImages(source, [singleRef], file);
    const sizeText = `"size":${single.size}`;
    const wrongSize = await tamper(file, join(work, 'bad-size.tar'), (tar) => {
      const at = tar.indexOf(Buffer.from(sizeText));
      const replacement = `"size":${single.size - 1}`.padEnd(sizeText.length, ' ');
      tar.write(replacement, at);
      // Keep the header checksum valid: the entry data changed, not the header.
    });
    await rejectsCleanly(wrongSize, 'DIGEST_MISMATCH', /bytes but its descriptor says/);

    const small = single.platforms[0]!.layers[1]!;
    const noBlob = await tamper(file, join(work, 'no-blob.tar'), (tar) => {
      // Rename the small layer's entry so it is no longer a blob of the layout (checksum fixed up).
      const at = headerOf(tar, Buffer.from(`blobs/sha256/${small.digest.slice(7)}`));
      tar.write('x', at);
      let sum = 0;
      for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 32 : tar[at + i]!;
      tar.write(`${sum.toString(8).padStart(6, '0')}\0`, at + 148, 'binary');
    });
    await rejectsCleanly(noBlob, 'MANIFEST_INVALID', /has no platform with all its blobs/);

    const bytes = await readFile(file);
    const truncated = join(work, 'truncated.tar');
    await writeFile(truncated, bytes.subarray(0, bytes.length - 5000));
    await rejectsCleanly(truncated, 'MANIFEST_INVALID', /not a valid tar file/);
  });

  test('a plain file that is not a tar is refused', async () => {
    const file = join(work, 'not.tar');
    await writeFile(file, Buffer.alloc(4096, 'x'));
    await rejectsCleanly(file, 'MANIFEST_INVALID', /checksum/);
  });
});
