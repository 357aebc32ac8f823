// Export, import and push checked against what docker and skopeo do for the same job: concurrent
// rm + gc, a reader that closes the pipe, archives other tools write (docker save, skopeo's
// docker-archive, gzip), hostile archives, and a registry's upload quirks.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../../src/core/digest';
import { isStowageError } from '../../src/core/errors';
import { pull } from '../../src/core/pull/pull';
import type { RegistryClient } from '../../src/core/registry/client';
import { exportImages } from '../../src/core/transfer/export';
import { pushImage } from '../../src/core/transfer/push';
import { CLI } from '../support/cli';
import { clientFor, Store } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let image: BuiltImage;
let single: BuiltImage;
let reg: RunningRegistry;
let singleRef: string;

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
