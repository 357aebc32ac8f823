// stowage push against real Distribution registries (plain and token auth), checked with skopeo.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Digest } from '../../src/core/digest';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { exportImages } from '../../src/core/transfer/export';
import { pushImage } from '../../src/core/transfer/push';
import { runCli } from '../support/cli';
import { clientFor, Store, verifyAllBlobs } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { startProxy } from '../support/proxy';
import { pushLayout, skopeoInspectRaw } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

let work: string;
let image: BuiltImage;
let source: RunningRegistry;
let target: RunningRegistry;
let secured: RunningRegistry;
/** All three platforms of team/app:v1 from `source`. */
let full: Store;
/** Only linux/amd64 of it. */
let partial: Store;
let ref: string;
const stops: (() => Promise<void>)[] = [];
const amd = () => image.platforms.find((p) => p.platform === 'linux/amd64')!;
const blobCount = () => image.platforms.reduce((n, p) => n + 1 + p.layers.length, 0);

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-push-'));
  image = await buildImage(join(work, 'layout'), { tag: 'v1', seed: 'push', layers: 2, layerSize: 250_000 });
  [source, target, secured] = await Promise.all([
    startRegistry(),
    startRegistry(),
    startRegistry({ auth: 'token', tokenServerOptions: { anonymousPull: false } }),
  ]);
  stops.push(source.stop, target.stop, secured.stop);
  await pushLayout(image.layoutDir, 'v1', source, 'team/app:v1');
  ref = `${source.host}/team/app:v1`;
  full = await Store.open(join(work, 'full'));
  partial = await Store.open(join(work, 'partial'));
  const { client } = clientFor(source);
  await pull(full, client, ref, { allPlatforms: true });
  await pull(partial, client, ref, { platforms: [parsePlatform('linux/amd64')] });
  await client.close();
});

after(async () => {
  for (const s of stops.reverse()) await s().catch(() => {});
  await rm(work, { recursive: true, force: true });
});

describe('push', () => {
  test('to another registry: monolithic uploads, digests kept, skopeo reads it; a second push sends nothing', async () => {
    const { client } = clientFor(target);
    const r = await pushImage(full, client, ref, `${target.host}/mirror/app:v1`);
    assert.equal(r.digest, image.digest);
    assert.equal(r.uploaded, blobCount());
    assert.equal(r.mounted, 0);
    assert.equal(r.manifests, 4);
    assert.equal(r.destination, `${target.host}/mirror/app:v1@${image.digest}`);
    assert.equal(await skopeoInspectRaw(target, 'mirror/app:v1'), image.body);
    const inspected = JSON.parse(
      (await spawnAsync('skopeo', ['inspect', '--tls-verify=false', `docker://${target.host}/mirror/app:v1`]))
        .stdout,
    );
    assert.deepEqual(
      inspected.Layers,
      amd().layers.map((l) => l.digest),
    );

    const again = await pushImage(full, client, ref, `${target.host}/mirror/app:v1`);
    assert.equal(again.uploaded, 0);
    assert.equal(again.existing, blobCount());

    // And what landed there pulls back bit for bit.
    const back = await Store.open(await mkdtemp(join(work, 'back-')));
    const p = await pull(back, client, `${target.host}/mirror/app:v1`, { allPlatforms: true });
    assert.equal(p.digest, image.digest);
    assert.equal(await verifyAllBlobs(back), blobCount() + 4);
    await client.close();
  });

  test('within one registry: blobs are mounted from the source repository, not uploaded', async () => {
    const counter = await startProxy(source.url);
    stops.push(counter.stop);
    const { client } = clientFor(source);
    const store = await Store.open(await mkdtemp(join(work, 'mount-')));
    await pull(store, client, `${counter.host}/team/app:v1`, { allPlatforms: true });
    const r = await pushImage(store, client, `${counter.host}/team/app:v1`, `${counter.host}/other/app:v2`);
    assert.equal(r.mounted, blobCount());
    assert.equal(r.uploaded, 0);
    const mounts = counter.requests.filter((q) => q.method === 'POST' && q.path.includes('mount='));
    assert.equal(mounts.length, blobCount());
    assert.ok(mounts.every((q) => q.status === 201));
    assert.equal(
      counter.requests.filter((q) => q.method === 'PUT' || q.method === 'PATCH').length,
      4,
      'only manifests',
    );
    assert.equal(await skopeoInspectRaw(source, 'other/app:v2'), image.body);
    await client.close();
  });

  test('big blobs go up in PATCH chunks', async () => {
    const { client, requests } = clientFor(target);
    const r = await pushImage(full, client, ref, `${target.host}/chunked/app:v1`, { chunkSize: 100_000 });
    assert.equal(r.uploaded, blobCount());
    const patches = requests.filter((q) => q.method === 'PATCH');
    const layers = image.platforms.flatMap((p) => p.layers);
    const expected = layers.reduce((n, l) => n + Math.ceil(l.size / 100_000), 0);
    assert.equal(patches.length, expected, 'every layer (over 100 kB) in ceil(size/100 kB) chunks');
    assert.ok(patches.every((q) => q.status === 202));
    assert.equal(await skopeoInspectRaw(target, 'chunked/app:v1'), image.body);
    const back = await Store.open(await mkdtemp(join(work, 'chunk-back-')));
    await pull(back, client, `${target.host}/chunked/app:v1`, { allPlatforms: true });
    assert.equal(await verifyAllBlobs(back), blobCount() + 4);
    await client.close();
  });

  test('a PATCH that breaks off: Distribution drops the session, the blob goes up again in a new one', async () => {
    let patches = 0;
    const proxy = await startProxy(target.url, (q) =>
      q.method === 'PATCH' && ++patches === 2 ? { cutRequestAfter: 30_000 } : undefined,
    );
    stops.push(proxy.stop);
    const { client } = clientFor(target);
    const r = await pushImage(full, client, ref, `${proxy.host}/broken/app:v1`, { chunkSize: 100_000 });
    assert.equal(r.uploaded, blobCount());
    const seen = proxy.requests;
    assert.ok(
      seen.some((q) => q.method === 'PATCH' && q.status === 599),
      'a PATCH was cut',
    );
    assert.equal(seen.filter((q) => q.method === 'POST').length, blobCount() + 1, 'one blob started over');
    assert.equal(await skopeoInspectRaw(target, 'broken/app:v1'), image.body);
    const back = await Store.open(await mkdtemp(join(work, 'broken-back-')));
    await pull(back, client, `${target.host}/broken/app:v1`, { allPlatforms: true });
    assert.equal(await verifyAllBlobs(back), blobCount() + 4);
    await client.close();
  });

  test('a PATCH refused (503) while the session lives: the upload status says where to go on', async () => {
    let refused = false;
    const proxy = await startProxy(target.url, (q) => {
      if (q.method !== 'PATCH' || refused || !/^100000-/.test(String(q.headers['content-range'])))
        return undefined;
      refused = true;
      return { respond: { status: 503, body: '{"errors":[{"code":"UNAVAILABLE"}]}' } };
    });
    stops.push(proxy.stop);
    // No client-level retry: the push's own recovery answers the 503.
    const { client } = clientFor(target, { retry: { attempts: 1 } });
    const r = await pushImage(full, client, ref, `${proxy.host}/resumed/app:v1`, { chunkSize: 100_000 });
    assert.equal(r.uploaded, blobCount());
    const seen = proxy.requests;
    const status = seen.find((q) => q.method === 'GET' && q.path.includes('/blobs/uploads/'));
    assert.equal(status?.status, 204, 'the upload status was asked for');
    assert.equal(seen.filter((q) => q.method === 'POST').length, blobCount(), 'no session started over');
    assert.equal(await skopeoInspectRaw(target, 'resumed/app:v1'), image.body);
    await client.close();
  });

  test('token auth: push scope and a cross-repository mount with pull on the source', async () => {
    // The test token service is plain HTTP on loopback: allowed to receive credentials explicitly.
    const realm = new URL(secured.tokenServer!.realm).host;
    const { client } = clientFor(secured, { withCredentials: true, insecureRegistries: [realm] });
    const r = await pushImage(full, client, ref, `${secured.host}/team/app:v1`);
    assert.equal(r.uploaded, blobCount());
    assert.equal(await skopeoInspectRaw(secured, 'team/app:v1'), image.body);
    const scopes = secured.tokenServer!.requests.flatMap((t) => t.scopes);
    assert.ok(scopes.includes('repository:team/app:pull,push'));

    const store = await Store.open(await mkdtemp(join(work, 'secured-')));
    await pull(store, client, `${secured.host}/team/app:v1`, { allPlatforms: true });
    const m = await pushImage(store, client, `${secured.host}/team/app:v1`, `${secured.host}/copies/app:v1`);
    assert.equal(m.mounted, blobCount(), 'the token carried pull on team/app, so the registry mounted');
    assert.ok(
      secured.tokenServer!.requests.some(
        (t) =>
          t.scopes.includes('repository:copies/app:pull,push') &&
          t.scopes.includes('repository:team/app:pull'),
      ),
    );
    await client.close();

    const anonymous = clientFor(secured);
    await assert.rejects(
      pushImage(full, anonymous.client, ref, `${secured.host}/team/nope:v1`),
      (e: unknown) => isStowageError(e, 'UNAUTHORIZED'),
    );
    await anonymous.client.close();
  });

  test('a partly cached index is refused with what to do; --platform pushes that platform alone', async () => {
    const { client } = clientFor(target);
    await assert.rejects(pushImage(partial, client, ref, `${target.host}/part/app:v1`), (e: unknown) => {
      assert.ok(isStowageError(e, 'NOT_CACHED'), String(e));
      assert.match(e.message, /it has linux\/amd64 of linux\/amd64, linux\/arm64, linux\/arm\/v7/);
      assert.match(e.detail, /--all-platforms|--platform linux\/amd64/);
      return true;
    });
    const r = await pushImage(partial, client, ref, `${target.host}/part/app:v1`, {
      platform: parsePlatform('linux/amd64'),
    });
    assert.equal(r.digest, amd().manifest.digest);
    assert.equal(await skopeoInspectRaw(target, 'part/app:v1'), amd().manifestBody);
    await client.close();
  });

  test('a cached layer that rotted on disk: export and push remove it and say so; the next pull repairs it', async () => {
    const { client } = clientFor(source);
    const store = await Store.open(await mkdtemp(join(work, 'rot-')));
    const amd64 = [parsePlatform('linux/amd64')];
    await pull(store, client, ref, { platforms: amd64 });
    const layer = amd().layers[0]!.digest as Digest;
    const rot = async () => {
      const path = store.blobPath(layer);
      await chmod(path, 0o644);
      const bytes = await readFile(path);
      bytes[bytes.length >> 1]! ^= 0xff;
      await writeFile(path, bytes);
    };
    const removedAndSaid = (e: Error) => {
      assert.ok(isStowageError(e, 'CACHE_CORRUPT'), `${e}`);
      assert.match(e.message, new RegExp(`${layer}.*did not match its digest and was removed`));
      return true;
    };

    await rot();
    await assert.rejects(exportImages(store, [ref], join(work, 'rot.tar')), removedAndSaid);
    assert.equal(await store.has(layer), false);
    // What the message promises: pulling again fetches just that layer and the cache is whole.
    const repaired = await pull(store, client, ref, { platforms: amd64 });
    assert.equal(repaired.blobsDownloaded, 1);
    assert.equal(await store.verifyBlob(layer), true);

    await rot();
    const { client: to } = clientFor(target);
    await assert.rejects(
      pushImage(store, to, ref, `${target.host}/rot/app:v1`, { platform: amd64[0] }),
      removedAndSaid,
    );
    assert.equal(await store.has(layer), false);
    assert.equal((await pull(store, client, ref, { platforms: amd64 })).blobsDownloaded, 1);
    const pushed = await pushImage(store, to, ref, `${target.host}/rot/app:v1`, { platform: amd64[0] });
    assert.ok(pushed.uploaded > 0);
    await Promise.all([client.close(), to.close()]);
  });

  test('offline, a push says it needs the registry (not that the image is missing)', async () => {
    const { client } = clientFor(target, { offline: true });
    await assert.rejects(pushImage(full, client, ref, `${target.host}/off/app:v1`), (e: Error) => {
      assert.ok(isStowageError(e, 'OFFLINE'), `${e}`);
      assert.match(e.message, /needs the registry/);
      assert.doesNotMatch(`${e.message} ${(e as { hint?: string }).hint}`, /not in the cache|import/);
      return true;
    });
    await client.close();
  });

  test('CLI: stowage push', async () => {
    const r = await runCli(['push', ref, `${target.host}/cli/app:v1`, '--cache', full.dir, '--json']);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.equal(out.digest, image.digest);
    assert.equal(out.uploaded + out.existing + out.mounted, blobCount());
  });
});

function spawnAsync(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return Promise.resolve({ stdout: r.stdout });
}
