// Export, import and push checked against what docker and skopeo do for the same job: concurrent
// rm + gc, a reader that closes the pipe, archives other tools write (docker save, skopeo's
// docker-archive, gzip), hostile archives, and a registry's upload quirks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import { request } from 'undici';
import type { Digest } from '../../src/core/digest';
import { isStowageError } from '../../src/core/errors';
import { closestPlatform, hostPlatform, parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { RegistryClient } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { exportImages } from '../../src/core/transfer/export';
import { importArchive } from '../../src/core/transfer/import';
import { pushImage } from '../../src/core/transfer/push';
import { END_OF_ARCHIVE, entryHeader, padding, readTar } from '../../src/core/transfer/tar';
import { CLI, runCli } from '../support/cli';
import { blobNames, clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { type RuleResult, startProxy } from '../support/proxy';
import { pushLayout, skopeoInspectRaw } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let image: BuiltImage;
let single: BuiltImage;
let reg: RunningRegistry;
let singleRef: string;
let multiRef: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-transfer-review-'));
  [image, single] = await Promise.all([
    buildImage(join(work, 'layout'), { tag: 'v1', seed: 'review', layers: 2, layerSize: 200_000 }),
    buildImage(join(work, 'layout-single'), {
      tag: 'v2',
      seed: 'review-single',
      platforms: ['linux/amd64'],
      index: false,
      layers: 2,
      layerSize: [1_500_000, 100],
    }),
  ]);
  reg = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', reg, 'team/app:v1');
  await pushLayout(single.layoutDir, 'v2', reg, 'team/tool:v2');
  singleRef = `${reg.host}/team/tool:v2`;
  multiRef = `${reg.host}/team/app:v1`;
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

/** A fresh cache holding `ref` (every platform). */
async function cacheWith(...refs: string[]): Promise<Store> {
  const store = await Store.open(await mkdtemp(join(work, 'cache-')));
  const { client } = clientFor(reg);
  for (const ref of refs) await pull(store, client, ref, { allPlatforms: true });
  await client.close();
  return store;
}

/** What `stowage rm NAME && stowage gc` does from another process. */
async function rmAndGc(store: Store, name: string): Promise<void> {
  const other = await Store.open(store.dir);
  assert.equal(await other.removeReference(name), true);
  await other.gc();
}

async function leases(store: Store): Promise<string[]> {
  return readdir(join(store.privateDir, 'leases')).catch(() => []);
}

describe('export and push while another process runs rm + gc', () => {
  test('export: an rm + gc after the export began does not take the blobs it is writing', async () => {
    const store = await cacheWith(singleRef);
    // The first size check runs after the plan: the image is removed and collected right then.
    const blobSize = store.blobSize.bind(store);
    let raced = false;
    store.blobSize = async (d: Digest) => {
      if (!raced) {
        raced = true;
        await rmAndGc(store, singleRef);
      }
      return blobSize(d);
    };
    const file = join(work, 'raced.tar');
    const r = await exportImages(store, [singleRef], file);
    assert.ok(raced);
    assert.equal(r.images[0]!.digest, single.digest);
    const inspected = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${file}:${singleRef}`], {
      encoding: 'utf8',
    });
    assert.equal(inspected.status, 0, inspected.stderr);
    assert.equal(inspected.stdout, single.body, 'the archive is whole');
    assert.deepEqual(await leases(store), [], 'the export let go of its blobs');
  });

  test('export: an rm + gc just before the export could hold the blobs is a clear error, no file', async () => {
    const store = await cacheWith(singleRef);
    const lease = store.lease.bind(store);
    store.lease = async (digests) => {
      await rmAndGc(store, singleRef);
      return lease(digests);
    };
    const file = join(work, 'gone.tar');
    await assert.rejects(exportImages(store, [singleRef], file), (e: unknown) => {
      assert.ok(isStowageError(e, 'NOT_CACHED'), `typed, not a bare ENOENT: ${e}`);
      assert.match(e.message, new RegExp(`${singleRef.replace(/[.]/g, '\\.')} was removed from the cache`));
      assert.match(e.detail, /stowage pull/);
      return true;
    });
    assert.deepEqual(
      (await readdir(work)).filter((n) => n.includes('gone.tar')),
      [],
      'no archive or temp file is left',
    );
    assert.deepEqual(await leases(store), []);
  });

  test('push: an rm + gc after the push began does not take the blobs it is uploading', async () => {
    const store = await cacheWith(singleRef);
    const { client } = clientFor(reg);
    const race = raceOnFirstHead(client, () => rmAndGc(store, singleRef));
    const r = await pushImage(store, client, singleRef, `${reg.host}/raced/tool:v2`);
    assert.ok(race.raced());
    assert.equal(r.digest, single.digest);
    const raw = spawnSync(
      'skopeo',
      ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/raced/tool:v2`],
      { encoding: 'utf8' },
    );
    assert.equal(raw.stdout, single.body);
    assert.deepEqual(await leases(store), []);
    await client.close();
  });

  test('push: an rm + gc just before the push could hold the blobs is a clear error', async () => {
    const store = await cacheWith(singleRef);
    const lease = store.lease.bind(store);
    store.lease = async (digests) => {
      await rmAndGc(store, singleRef);
      return lease(digests);
    };
    const { client, requests } = clientFor(reg);
    await assert.rejects(pushImage(store, client, singleRef, `${reg.host}/gone/tool:v2`), (e: unknown) => {
      assert.ok(isStowageError(e, 'NOT_CACHED'), `typed, not a bare ENOENT: ${e}`);
      assert.match(e.message, /was removed from the cache/);
      return true;
    });
    assert.equal(requests.length, 0, 'nothing was sent');
    assert.deepEqual(await leases(store), []);
    await client.close();
  });
});

/** Runs `fn` before the client's first HEAD (the push's first blob check) goes out. */
function raceOnFirstHead(client: RegistryClient, fn: () => Promise<void>): { raced(): boolean } {
  const request = client.request.bind(client);
  let raced = false;
  client.request = async (r) => {
    if (!raced && r.method === 'HEAD') {
      raced = true;
      await fn();
    }
    return request(r);
  };
  return { raced: () => raced };
}

describe('export to a pipe', () => {
  test('a reader that stops early (| head -c 10): one line, no stack, no lease or temp file left', async () => {
    const store = await cacheWith(singleRef);
    const stowage = `${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)}`;
    const r = spawnSync(
      'bash',
      [
        '-c',
        `${stowage} export ${singleRef} -o - --cache ${JSON.stringify(store.dir)} | head -c 10 >/dev/null; echo "status=\${PIPESTATUS[0]}" >&2`,
      ],
      { encoding: 'utf8', cwd: work },
    );
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.at(-1), 'status=1', r.stderr);
    assert.equal(lines.length, 2, `one line of error: ${r.stderr}`);
    assert.match(lines[0]!, /^stowage export: .*closed the pipe/);
    assert.doesNotMatch(r.stderr, /EPIPE|at .*\.js:\d+/);
    assert.deepEqual(await leases(store), []);
    assert.deepEqual(await readdir(join(store.privateDir, 'tmp')), []);
  });
});

/** An archive's entries, read whole (fixtures are small). */
async function entriesOf(file: string): Promise<{ name: string; type: string; data: Buffer }[]> {
  const out: { name: string; type: string; data: Buffer }[] = [];
  for await (const e of readTar(createReadStream(file))) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.push({ name: e.name, type: e.type, data: Buffer.concat(parts) });
  }
  return out;
}

/** A tar of these entries: files, or a symlink / hard link (`link` is its target). */
function tarOf(entries: { name: string; data?: Buffer; type?: string; link?: string }[]): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data = Buffer.alloc(0), type = '0', link } of entries) {
    const header = entryHeader(name, type === '0' ? data.length : 0, type === '5' ? '5' : '0');
    if (type === '1' || type === '2') {
      // Same header with the link type and target; the checksum is computed again.
      header.write(type, 156);
      header.write(link ?? '', 157, 100);
      header.write('        ', 148);
      let sum = 0;
      for (const b of header) sum += b;
      header.write(`${sum.toString(8).padStart(6, '0')}\0`, 148, 'binary');
    }
    parts.push(header);
    if (type === '0') parts.push(data, padding(data.length));
  }
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** Everything a failed import may have left: blobs, names, staged data. */
async function storeState(store: Store) {
  return {
    blobs: (await blobNames(store)).size,
    refs: (await store.listReferences()).length,
    ingest: (await readdir(join(store.privateDir, 'ingest')).catch(() => [])).length,
  };
}

describe('import: archives other tools write', () => {
  test('docker save (Docker 25+) names an image by io.containerd.image.name, not its bare tag', async () => {
    // docker save and ctr export put the full name there and only the tag in ref.name.
    const source = await cacheWith(singleRef);
    const file = join(work, 'plain.tar');
    await exportImages(source, [singleRef], file);
    const entries = (await entriesOf(file)).map((e) => {
      if (e.name !== 'index.json') return e;
      const index = JSON.parse(e.data.toString());
      index.manifests[0].annotations = {
        'io.containerd.image.name': 'docker.io/library/tool:v2',
        'org.opencontainers.image.ref.name': 'v2',
      };
      return { ...e, data: json(index) };
    });
    const saved = join(work, 'docker-save.tar');
    await writeFile(saved, tarOf(entries));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    const r = await importArchive(target, saved);
    assert.deepEqual(
      r.images.map((i) => i.name),
      ['docker.io/library/tool:v2'],
    );
    // And it is found as docker finds it.
    const ls = await runCli(['inspect', 'tool:v2', '--cache', target.dir, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
  });

  test("a docker-archive (docker save before Docker 25, skopeo's docker-archive:) says what it is and how to convert it", async () => {
    const file = join(work, 'skopeo-docker-archive.tar');
    const copy = spawnSync(
      'skopeo',
      ['copy', `oci:${single.layoutDir}:v2`, `docker-archive:${file}:team/tool:v2`],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(copy.status, 0, copy.stderr);
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    let hint = '';
    await assert.rejects(importArchive(target, file), (e: unknown) => {
      assert.ok(isStowageError(e, 'MANIFEST_INVALID'), String(e));
      assert.match(e.message, /docker-archive/);
      hint = e.detail;
      return true;
    });
    assert.deepEqual(await storeState(target), { blobs: 0, refs: 0, ingest: 0 });
    // The conversion it gives works as written, and the result imports.
    const command = /Convert it: (skopeo copy \S+ \S+), then/.exec(hint)?.[1];
    assert.ok(command?.startsWith(`skopeo copy docker-archive:${file} oci-archive:`), hint);
    const converted = spawnSync('bash', ['-c', command!], { encoding: 'utf8' });
    assert.equal(converted.status, 0, converted.stderr);
    const r = await importArchive(target, join(work, 'skopeo-docker-archive-oci.tar'));
    assert.deepEqual(
      r.images.map((i) => i.name),
      ['docker.io/team/tool:v2'],
    );
  });

  test('a gzip-compressed archive (docker save | gzip, as docker load takes) is read', async () => {
    const source = await cacheWith(singleRef);
    const file = join(work, 'to-gzip.tar');
    await exportImages(source, [singleRef], file);
    const gz = join(work, 'to-gzip.tar.gz');
    await writeFile(gz, gzipSync(await readFile(file), { level: 1 }));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    const r = await importArchive(target, gz);
    assert.equal(r.images[0]!.digest, single.digest);
    assert.equal(await verifyAllBlobs(target), 4);
    // From standard input too.
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `${process.execPath} ${CLI} import - --cache ${JSON.stringify(await mkdtemp(join(work, 'cache-')))} < ${gz}`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(piped.status, 0, piped.stderr);
    assert.match(piped.stdout, /imported 1 image/);
  });

  test('CLI: a folder (an OCI layout, as skopeo oci:DIR writes) is refused with the tar pipe that imports it', async () => {
    const cache = await mkdtemp(join(work, 'cache-'));
    const r = await runCli(['import', single.layoutDir, '--cache', cache]);
    assert.equal(r.code, 1);
    assert.equal(
      r.stderr,
      `stowage import: ${single.layoutDir} is a folder; import reads an archive (an OCI layout folder imports as tar -C ${single.layoutDir} -cf - . | stowage import -)\n`,
    );
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `tar -C ${single.layoutDir} -cf - . | ${process.execPath} ${CLI} import - --cache ${cache} --json`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(piped.status, 0, piped.stderr);
    assert.equal(JSON.parse(piped.stdout).images[0].digest, single.digest);
  });

  test('CLI: import - on a terminal is refused at once (usage, exit 2), as export -o - to one is', async () => {
    // script(1) gives the CLI a terminal for its standard input and output.
    const cache = await mkdtemp(join(work, 'cache-'));
    const r = spawnSync(
      'script',
      ['-qec', `${process.execPath} ${CLI} import - --cache ${cache}`, '/dev/null'],
      { encoding: 'utf8', timeout: 30_000, input: '' },
    );
    assert.equal(r.error, undefined, 'it did not wait for input');
    assert.equal(r.status, 2, r.stdout);
    assert.match(r.stdout, /stowage import: refusing to read an archive from a terminal/);
  });

  test('other compressions are named, with what to do', async () => {
    const file = join(work, 'fake.tar.zst');
    await writeFile(file, Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), Buffer.alloc(4096)]));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    await assert.rejects(importArchive(target, file), (e: unknown) => {
      assert.ok(isStowageError(e, 'MANIFEST_INVALID'), String(e));
      assert.match(e.message, /zstd-compressed/);
      assert.match(e.detail, /zstd -d/);
      return true;
    });
  });
});

describe('import: hostile archives commit nothing unverified and write nothing outside the cache', () => {
  /** The single-platform image's archive entries, for tests to rearrange. */
  async function imageEntries() {
    const source = await cacheWith(singleRef);
    const file = join(work, `hostile-${Math.random().toString(36).slice(2)}.tar`);
    await exportImages(source, [singleRef], file);
    return entriesOf(file);
  }

  test('../, absolute and link entries are never followed or written; the image still imports', async () => {
    const entries = await imageEntries();
    const outside = await mkdtemp(join(work, 'outside-'));
    const hostile = [
      { name: '../escape', data: Buffer.from('x') },
      { name: `${outside}/abs`, data: Buffer.from('x') },
      { name: 'blobs/sha256/../../../escape2', data: Buffer.from('x') },
      { name: 'blobs/sha256/evil', type: '2' as const, link: '/etc/passwd' },
      { name: 'blobs', type: '2' as const, link: outside },
      ...entries,
    ];
    const file = join(outside, 'a.tar');
    await writeFile(file, tarOf(hostile));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    const r = await importArchive(target, file);
    assert.equal(r.images[0]!.digest, single.digest);
    assert.deepEqual(await readdir(outside), ['a.tar'], 'nothing written beside the archive');
    assert.ok(!(await readdir(work)).includes('escape'));
    assert.equal(await verifyAllBlobs(target), 4, 'only the image blobs, all verified');
  });

  test('a blob entry that is a symlink (to /etc/passwd) is not read: the image lacks that blob', async () => {
    const entries = await imageEntries();
    const layer = single.platforms[0]!.layers[1]!.digest.slice(7);
    const hostile = entries.map((e) =>
      e.name === `blobs/sha256/${layer}` ? { name: e.name, type: '2' as const, link: '/etc/passwd' } : e,
    );
    const file = join(work, 'symlink-blob.tar');
    await writeFile(file, tarOf(hostile));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    await assert.rejects(importArchive(target, file), (e: unknown) => isStowageError(e, 'MANIFEST_INVALID'));
    assert.deepEqual(await storeState(target), { blobs: 0, refs: 0, ingest: 0 });
  });

  test('a duplicate blob entry with other content is rejected whole', async () => {
    const entries = await imageEntries();
    const layer = single.platforms[0]!.layers[0]!.digest.slice(7);
    const original = entries.find((e) => e.name === `blobs/sha256/${layer}`)!;
    const forged = Buffer.from(original.data);
    forged[100]! ^= 1;
    const file = join(work, 'duplicate.tar');
    await writeFile(file, tarOf([...entries, { name: original.name, data: forged }]));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    await assert.rejects(importArchive(target, file), (e: unknown) => isStowageError(e, 'DIGEST_MISMATCH'));
    assert.deepEqual(await storeState(target), { blobs: 0, refs: 0, ingest: 0 });
  });

  test('blobs no named image uses are not kept, neither in the cache nor staged', async () => {
    const entries = await imageEntries();
    const extra = randomBytes(2_000_000); // over the in-memory size: staged on disk
    const digest = `sha256:${createHash('sha256').update(extra).digest('hex')}`;
    const file = join(work, 'extra-blob.tar');
    await writeFile(file, tarOf([...entries, { name: `blobs/sha256/${digest.slice(7)}`, data: extra }]));
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    const r = await importArchive(target, file);
    assert.equal(r.blobsAdded, 4);
    assert.deepEqual(await storeState(target), { blobs: 4, refs: 1, ingest: 0 });
  });

  test('a blob the archive leaves out but the cache had: a gc before the lease removed it → nothing recorded', async () => {
    const entries = await imageEntries();
    const layer = single.platforms[0]!.layers[0]!.digest as Digest;
    // The cache holds that layer alone, unnamed (a gc may take it); the archive relies on it.
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    await target.putBlob(entries.find((e) => e.name === `blobs/sha256/${layer.slice(7)}`)!.data, layer);
    const file = join(work, 'relies-on-cache.tar');
    await writeFile(file, tarOf(entries.filter((e) => e.name !== `blobs/sha256/${layer.slice(7)}`)));
    const lease = target.lease.bind(target);
    target.lease = async (digests) => {
      await target.gc();
      return lease(digests);
    };
    await assert.rejects(importArchive(target, file), (e: unknown) => {
      assert.ok(isStowageError(e, 'CACHE_CORRUPT'), String(e));
      assert.match(e.message, /left the cache while the archive was imported/);
      return true;
    });
    assert.equal(await target.getReference(singleRef), undefined, 'no name for an image missing a layer');
  });

  test('a name with terminal control characters is skipped, never recorded or printed', async () => {
    const entries = (await imageEntries()).map((e) => {
      if (e.name !== 'index.json') return e;
      const index = JSON.parse(e.data.toString());
      const good = index.manifests[0];
      const evil = {
        ...good,
        annotations: { 'org.opencontainers.image.ref.name': '\u001b]0;owned\u0007evil:v1\u009b2J' },
      };
      return { ...e, data: json({ ...index, manifests: [good, evil] }) };
    });
    const file = join(work, 'control-name.tar');
    await writeFile(file, tarOf(entries));
    const cache = await mkdtemp(join(work, 'cache-'));
    const r = await runCli(['import', file, '--cache', cache]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /skipped 1 index entries without a usable name/);
    assert.ok(!/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(r.stdout + r.stderr), JSON.stringify(r));
    const store = await Store.open(cache);
    assert.deepEqual(
      (await store.listReferences()).map((x) => x.name),
      [singleRef],
    );
  });

  test('a gzip bomb (a 64 MiB blob entry of zeros in a small .gz) is rejected, nothing staged left', async () => {
    const entries = await imageEntries();
    const zeros = Buffer.alloc(64 * 1024 * 1024);
    const bomb = gzipSync(tarOf([{ name: `blobs/sha256/${'0'.repeat(64)}`, data: zeros }, ...entries]), {
      level: 9,
    });
    assert.ok(bomb.length < zeros.length / 20, 'small beside what it expands to');
    const file = join(work, 'bomb.tar.gz');
    await writeFile(file, bomb);
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    await assert.rejects(importArchive(target, file), (e: unknown) => isStowageError(e, 'DIGEST_MISMATCH'));
    assert.deepEqual(await storeState(target), { blobs: 0, refs: 0, ingest: 0 });
  });
});

describe('export: archives docker and skopeo read', () => {
  /** What docker load checks of each manifest.json entry: config, layer count, each layer's diff_id. */
  function checkAsDockerLoad(entries: { name: string; data: Buffer }[]) {
    const byName = new Map(entries.map((e) => [e.name, e.data]));
    const manifest = JSON.parse(byName.get('manifest.json')!.toString()) as {
      Config: string;
      RepoTags: string[];
      Layers: string[];
    }[];
    for (const m of manifest) {
      const config = JSON.parse(byName.get(m.Config)!.toString());
      assert.equal(m.Layers.length, config.rootfs.diff_ids.length, 'layers length matches the config');
      m.Layers.forEach((path, i) => {
        const tar = gunzipSync(byName.get(path)!);
        assert.equal(`sha256:${createHash('sha256').update(tar).digest('hex')}`, config.rootfs.diff_ids[i]);
      });
    }
    return manifest;
  }

  test('single platform: docker load and skopeo docker-archive: read it; containerd finds its full name', async () => {
    const source = await cacheWith(singleRef);
    const file = join(work, 'for-docker.tar');
    await exportImages(source, [singleRef], file);
    const entries = await entriesOf(file);
    const manifest = checkAsDockerLoad(entries);
    assert.deepEqual(manifest[0]!.RepoTags, [singleRef]);
    const index = JSON.parse(entries.find((e) => e.name === 'index.json')!.data.toString());
    assert.equal(index.manifests[0].annotations['io.containerd.image.name'], singleRef);

    const inspected = spawnSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' });
    assert.equal(inspected.status, 0, inspected.stderr);
    const config = JSON.parse(single.platforms[0]!.configBody);
    assert.deepEqual(JSON.parse(inspected.stdout).Layers, config.rootfs.diff_ids);
    const out = join(work, 'from-docker-archive');
    const copy = spawnSync('skopeo', ['copy', `docker-archive:${file}`, `oci:${out}:x`], {
      encoding: 'utf8',
    });
    assert.equal(copy.status, 0, copy.stderr);
    // Still an OCI archive as before, and it round-trips under the same name.
    const target = await Store.open(await mkdtemp(join(work, 'cache-')));
    assert.deepEqual(
      (await importArchive(target, file)).images.map((i) => [i.name, i.digest]),
      [[singleRef, single.digest]],
    );
  });

  test('docker load tags only names with a tag of their own (an imported verbatim v9 stays untagged)', async () => {
    const named = join(work, 'verbatim.tar');
    for (const [tag, expected] of [
      ['v9', []],
      ['team/tool:v2', ['docker.io/team/tool:v2']],
    ] as const) {
      const copy = spawnSync('skopeo', ['copy', `oci:${single.layoutDir}:v2`, `oci-archive:${named}:${tag}`]);
      assert.equal(copy.status, 0, String(copy.stderr));
      const store = await Store.open(await mkdtemp(join(work, 'cache-')));
      await importArchive(store, named);
      const out = join(work, 'verbatim-out.tar');
      await exportImages(store, [tag], out);
      const manifest = checkAsDockerLoad(await entriesOf(out));
      assert.deepEqual(manifest[0]!.RepoTags, expected, tag);
      await rm(named);
    }
  });

  test('multi-platform: docker load takes this machine’s platform, and the summary says which', async () => {
    const source = await cacheWith(multiRef);
    const file = join(work, 'multi-for-docker.tar');
    const r = await exportImages(source, [multiRef], file);
    const host = closestPlatform(hostPlatform(), image.platforms, (p) => parsePlatform(p.platform));
    const expected = host ?? image.platforms[0]!;
    assert.equal(r.images[0]!.dockerPlatform, expected.platform);
    const manifest = checkAsDockerLoad(await entriesOf(file));
    assert.equal(manifest.length, 1, 'one image per name, as docker load keeps one');
    assert.equal(manifest[0]!.Config, `blobs/sha256/${expected.config.digest.slice(7)}`);
    const inspected = spawnSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' });
    assert.equal(inspected.status, 0, inspected.stderr);
    assert.equal(JSON.parse(inspected.stdout).Architecture, expected.architecture);

    const cli = await runCli(['export', multiRef, '-o', join(work, 'multi-cli.tar'), '--cache', source.dir]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`; docker load takes ${expected.platform.replace(/\//g, '\\/')}\\)`));
  });

  test('buildx attestations go along but are not counted as platforms', async () => {
    const layout = await buildImage(join(work, 'layout-att'), {
      tag: 'v3',
      seed: 'review-att',
      platforms: ['linux/amd64', 'linux/arm64'],
      attestations: true,
    });
    await pushLayout(layout.layoutDir, 'v3', reg, 'team/att:v3');
    const ref = `${reg.host}/team/att:v3`;
    const all = await cacheWith(ref);
    const r = await exportImages(all, [ref], join(work, 'att.tar'));
    assert.deepEqual(r.images[0]!.platforms, ['linux/amd64', 'linux/arm64']);
    assert.deepEqual(r.images[0]!.missingPlatforms, []);
    const one = await Store.open(await mkdtemp(join(work, 'cache-')));
    const { client } = clientFor(reg);
    await pull(one, client, ref, { platforms: [parsePlatform('linux/arm64')] });
    await client.close();
    const partial = await exportImages(one, [ref], join(work, 'att-one.tar'));
    assert.deepEqual(partial.images[0]!.platforms, ['linux/arm64']);
    assert.deepEqual(partial.images[0]!.missingPlatforms, ['linux/amd64']);
  });
});

describe('push: what registries answer', () => {
  /** Answers a request itself after passing it upstream, with its Location rewritten. */
  async function viaRewrite(
    upstream: string,
    req: IncomingMessage,
    location: (l: string) => string,
  ): Promise<RuleResult> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers))
      if (k !== 'host' && typeof v === 'string') headers[k] = v;
    const up = await request(`${upstream}${req.url}`, {
      method: req.method as 'POST',
      headers,
      body: chunks.length ? Buffer.concat(chunks) : undefined,
    });
    const body = Buffer.from(await up.body.arrayBuffer());
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(up.headers)) {
      if (typeof v === 'string' && !['connection', 'transfer-encoding', 'keep-alive'].includes(k)) out[k] = v;
    }
    if (out.location) out.location = location(out.location);
    return { respond: { status: up.statusCode, headers: out, body } };
  }

  test('upload Locations relative to the registry (as some registries send) are followed', async () => {
    const store = await cacheWith(singleRef);
    const proxy = await startProxy(reg.url, (q) =>
      (q.method === 'POST' || q.method === 'PATCH') && q.url?.includes('/blobs/uploads/')
        ? viaRewrite(reg.url, q, (l) => new URL(l).pathname + new URL(l).search)
        : undefined,
    );
    const { client } = clientFor(reg);
    try {
      const r = await pushImage(store, client, singleRef, `${proxy.host}/relative/tool:v2`, {
        chunkSize: 500_000,
      });
      assert.equal(r.uploaded, 3);
      assert.ok(
        proxy.requests.some((q) => q.method === 'PATCH'),
        'chunks went to the relative Location',
      );
      assert.equal(await skopeoInspectRaw(reg, 'relative/tool:v2'), single.body);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('an upload Location on another host is refused, naming it; nothing is sent there', async () => {
    const store = await cacheWith(singleRef);
    const elsewhere = await startProxy(reg.url);
    const proxy = await startProxy(reg.url, (q) =>
      q.method === 'POST' && q.url?.includes('/blobs/uploads/')
        ? viaRewrite(reg.url, q, (l) => `${elsewhere.url}${new URL(l).pathname}${new URL(l).search}`)
        : undefined,
    );
    const { client } = clientFor(reg);
    try {
      await assert.rejects(
        pushImage(store, client, singleRef, `${proxy.host}/moved/tool:v2`),
        (e: unknown) => {
          assert.ok(isStowageError(e, 'REGISTRY_ERROR'), String(e));
          assert.match(e.message, new RegExp(`to another host \\(${elsewhere.host}\\)`));
          return true;
        },
      );
      assert.deepEqual(elsewhere.requests, []);
    } finally {
      await client.close();
      await proxy.stop();
      await elsewhere.stop();
    }
  });

  test('an upload Location that is no URL is a REGISTRY_ERROR naming the registry (it was a bare TypeError)', async () => {
    const store = await cacheWith(singleRef);
    const proxy = await startProxy(reg.url, (q) =>
      q.method === 'POST' && q.url?.includes('/blobs/uploads/')
        ? viaRewrite(reg.url, q, () => 'http://[oops/v2/uploads/x')
        : undefined,
    );
    const { client } = clientFor(reg);
    try {
      await assert.rejects(
        pushImage(store, client, singleRef, `${proxy.host}/broken/tool:v2`),
        (e: unknown) => {
          assert.ok(isStowageError(e, 'REGISTRY_ERROR'), String(e));
          assert.ok(
            e.message.startsWith(`${proxy.host} gave an invalid upload location for blob sha256:`),
            e.message,
          );
          assert.match(e.message, /http:\/\/\[oops/);
          return true;
        },
      );
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('a mount the registry refuses (403: no pull on the source repository) falls back to an upload', async () => {
    const proxy = await startProxy(reg.url, (q) =>
      q.method === 'POST' && q.url?.includes('mount=')
        ? {
            respond: {
              status: 403,
              headers: { 'content-type': 'application/json' },
              body: '{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}',
            },
          }
        : undefined,
    );
    // Pulled through the proxy, so that the push is within one registry and tries to mount.
    const { client } = clientFor(reg);
    try {
      const cached = await Store.open(await mkdtemp(join(work, 'cache-')));
      await pull(cached, client, `${proxy.host}/team/tool:v2`);
      const r = await pushImage(
        cached,
        client,
        `${proxy.host}/team/tool:v2`,
        `${proxy.host}/nomount/tool:v2`,
        { concurrency: 1 },
      );
      assert.equal(r.mounted, 0);
      assert.equal(r.uploaded, 3);
      const mounts = proxy.requests.filter((q) => q.path.includes('mount='));
      assert.equal(mounts.length, 1, 'asked once, not once per blob');
      assert.equal(await skopeoInspectRaw(reg, 'nomount/tool:v2'), single.body);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('403 in the middle of a push (the second blob): one line naming the registry and the repository', async () => {
    const store = await cacheWith(singleRef);
    let puts = 0;
    const proxy = await startProxy(reg.url, (q) =>
      q.method === 'PUT' && q.url?.includes('/blobs/uploads/') && ++puts === 2
        ? {
            respond: {
              status: 403,
              headers: { 'content-type': 'application/json' },
              body: '{"errors":[{"code":"DENIED","message":"quota exceeded"}]}',
            },
          }
        : undefined,
    );
    try {
      const r = await runCli(['push', singleRef, `${proxy.host}/denied/tool:v2`, '--cache', store.dir]);
      assert.equal(r.code, 1, r.stderr);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(
        r.stderr,
        new RegExp(`^stowage push: .*denied/tool.*${proxy.host.replace(/[.]/g, '\\.')}`),
      );
      assert.match(r.stderr, /quota exceeded/);
    } finally {
      await proxy.stop();
    }
  });
});

describe('push: auth, digests, resuming', () => {
  test('a token refused (401) in the middle of a chunked upload: a new token, the chunk again, the push completes', async () => {
    const secured = await startRegistry({ auth: 'token', tokenServerOptions: { anonymousPull: false } });
    const store = await cacheWith(singleRef);
    const tokens = secured.tokenServer!;
    let patches = 0;
    const proxy = await startProxy(secured.url, (q) =>
      q.method === 'PATCH' && ++patches === 2
        ? {
            respond: {
              status: 401,
              headers: {
                'www-authenticate': `Bearer realm="${tokens.realm}",service="${tokens.service}",scope="repository:expiring/tool:pull,push",error="invalid_token"`,
              },
              body: '{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}',
            },
          }
        : undefined,
    );
    const credentials = new StaticCredentials();
    credentials.set(proxy.host, secured.credentials!);
    const client = new RegistryClient({ credentials, insecureRegistries: [new URL(tokens.realm).host] });
    try {
      const asked = tokens.requests.length;
      const r = await pushImage(store, client, singleRef, `${proxy.host}/expiring/tool:v2`, {
        chunkSize: 500_000,
      });
      assert.equal(r.uploaded, 3);
      assert.ok(tokens.requests.length > asked + 1, 'a second token was asked for after the 401');
      const cut = proxy.requests.filter((q) => q.method === 'PATCH');
      assert.equal(cut[1]!.status, 401);
      assert.equal(cut[2]!.status, 202, 'the refused chunk went again, with the new token');
      assert.equal(await skopeoInspectRaw(secured, 'expiring/tool:v2'), single.body);
    } finally {
      await client.close();
      await proxy.stop();
      await secured.stop();
    }
  });

  test('by digest: every manifest by digest, children before the index, no tag', async () => {
    const store = await cacheWith(multiRef);
    const proxy = await startProxy(reg.url);
    const { client } = clientFor(reg);
    try {
      const r = await pushImage(store, client, multiRef, `${proxy.host}/pinned/app@${image.digest}`);
      assert.equal(r.destination, `${proxy.host}/pinned/app@${image.digest}`);
      const puts = proxy.requests
        .filter((q) => q.method === 'PUT' && q.path.includes('/manifests/'))
        .map((q) => q.path.split('/manifests/')[1]);
      assert.deepEqual(puts.slice(0, -1).sort(), image.platforms.map((p) => p.manifest.digest).sort());
      assert.equal(puts.at(-1), image.digest, 'the index last');
      const raw = spawnSync(
        'skopeo',
        ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/pinned/app@${image.digest}`],
        { encoding: 'utf8' },
      );
      assert.equal(raw.stdout, image.body);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('a Docker manifest list pushes to the digests skopeo copy --all gives', async () => {
    await pushLayout(image.layoutDir, 'v1', reg, 'team/docker:v1', { format: 'v2s2' });
    const ref = `${reg.host}/team/docker:v1`;
    const store = await cacheWith(ref);
    const { client } = clientFor(reg);
    const r = await pushImage(store, client, ref, `${reg.host}/ours/docker:v1`);
    await client.close();
    const copy = spawnSync(
      'skopeo',
      [
        'copy',
        '--all',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${ref}`,
        `docker://${reg.host}/theirs/docker:v1`,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(copy.status, 0, copy.stderr);
    const digestOf = (repo: string) => {
      const raw = spawnSync('skopeo', [
        'inspect',
        '--raw',
        '--tls-verify=false',
        `docker://${reg.host}/${repo}`,
      ]);
      return `sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`;
    };
    assert.equal(digestOf('theirs/docker:v1'), r.digest);
    assert.equal(digestOf('ours/docker:v1'), r.digest);
    assert.equal(r.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
  });

  test('a push stopped halfway goes on where it stopped: the blobs already there are not sent again', async () => {
    const store = await cacheWith(multiRef);
    const proxy = await startProxy(reg.url);
    const { client } = clientFor(reg);
    const total = image.platforms.reduce((n, p) => n + 1 + p.layers.length, 0);
    try {
      const controller = new AbortController();
      await assert.rejects(
        pushImage(store, client, multiRef, `${proxy.host}/resumed/app:v1`, {
          concurrency: 1,
          signal: controller.signal,
          onProgress: (p) => {
            if (p.blobsDone === 3) controller.abort();
          },
        }),
        (e: unknown) => isStowageError(e, 'ABORTED'),
      );
      const sent = proxy.requests.filter((q) => q.method === 'PUT' && q.status === 201).length;
      assert.ok(sent >= 3 && sent < total, `${sent} of ${total} blobs went up before the stop`);
      const r = await pushImage(store, client, multiRef, `${proxy.host}/resumed/app:v1`);
      assert.equal(r.existing, sent);
      assert.equal(r.uploaded, total - sent);
      assert.equal(await skopeoInspectRaw(reg, 'resumed/app:v1'), image.body);
    } finally {
      await client.close();
      await proxy.stop();
    }
  });

  test('an index whose attestations were not pulled: the refusal says they are what is missing', async () => {
    const layout = await buildImage(join(work, 'layout-att-push'), {
      tag: 'v4',
      seed: 'review-att-push',
      platforms: ['linux/amd64', 'linux/arm64'],
      attestations: true,
    });
    await pushLayout(layout.layoutDir, 'v4', reg, 'team/att:v4');
    const ref = `${reg.host}/team/att:v4`;
    const store = await Store.open(await mkdtemp(join(work, 'cache-')));
    const { client } = clientFor(reg);
    await pull(store, client, ref, {
      platforms: [parsePlatform('linux/amd64'), parsePlatform('linux/arm64')],
    });
    await assert.rejects(pushImage(store, client, ref, `${reg.host}/att-copy/app:v4`), (e: unknown) => {
      assert.ok(isStowageError(e, 'NOT_CACHED'), String(e));
      assert.match(
        e.message,
        /every platform of .* but not the 2 attestation manifests \(buildx provenance, SBOM\)/,
      );
      assert.match(e.detail, /--all-platforms/);
      return true;
    });
    // What the hint says works.
    await pull(store, client, ref, { allPlatforms: true });
    const r = await pushImage(store, client, ref, `${reg.host}/att-copy/app:v4`);
    assert.equal(r.digest, layout.digest);
    await client.close();
  });

  test('--platform on a single-platform image of another platform is refused (docker push --platform too)', async () => {
    const store = await cacheWith(singleRef);
    const { client, requests } = clientFor(reg);
    await assert.rejects(
      pushImage(store, client, singleRef, `${reg.host}/wrong/tool:v2`, {
        platform: parsePlatform('linux/s390x'),
      }),
      (e: unknown) => {
        assert.ok(isStowageError(e, 'NO_MATCHING_PLATFORM'), String(e));
        assert.match(e.message, /is a single-platform image for linux\/amd64, not linux\/s390x/);
        return true;
      },
    );
    assert.equal(requests.length, 0);
    const r = await pushImage(store, client, singleRef, `${reg.host}/right/tool:v2`, {
      platform: parsePlatform('linux/amd64'),
    });
    assert.equal(r.digest, single.digest);
    await client.close();
  });
});
