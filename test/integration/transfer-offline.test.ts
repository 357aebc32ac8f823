// Offline mode: no request at all; what the cache can answer works, the rest says why it cannot.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { inspectImage } from '../../src/core/store';
import { exportImages } from '../../src/core/transfer/export';
import { importArchive } from '../../src/core/transfer/import';
import { runCli } from '../support/cli';
import { clientFor, Store } from '../support/engine';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';

const amd64 = [parsePlatform('linux/amd64')];
let work: string;
let image: BuiltImage;
let reg: RunningRegistry;
let cache: Store;
let ref: string;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-offline-'));
  image = await buildImage(join(work, 'layout'), { tag: 'v1', seed: 'offline', layers: 2 });
  reg = await startRegistry();
  await pushLayout(image.layoutDir, 'v1', reg, 'team/app:v1');
  ref = `${reg.host}/team/app:v1`;
  cache = await Store.open(join(work, 'cache'));
  const { client } = clientFor(reg);
  await pull(cache, client, ref, { platforms: amd64 });
  await client.close();
});

after(async () => {
  await reg?.stop();
  await rm(work, { recursive: true, force: true });
});

const cli = (args: string[]) => runCli(args);

describe('offline mode', () => {
  test('a cached image pulls with zero requests; an uncached one is OFFLINE, naming it, with zero requests', async () => {
    const { client, requests } = clientFor(reg, { offline: true });
    const hit = await pull(cache, client, ref, { platforms: amd64 });
    assert.equal(hit.fromCache, true);
    assert.equal(hit.digest, image.digest);

    for (const [what, input, options] of [
      ['other tag', `${reg.host}/team/app:v2`, {}],
      ['other platform', ref, { platforms: [parsePlatform('linux/arm64')] }],
      ['by digest, not cached', `${reg.host}/team/other@sha256:${'0'.repeat(64)}`, {}],
      ['--always', ref, { alwaysPull: true }],
    ] as const) {
      await assert.rejects(pull(cache, client, input, { platforms: amd64, ...options }), (e: unknown) => {
        assert.ok(isStowageError(e, 'OFFLINE'), `${what}: ${String(e)}`);
        assert.match(e.message, new RegExp(`${reg.host}/team/(app|other)`), `${what} names the image`);
        assert.match(e.detail, /offline mode .*stowage\.offline.*--offline/i);
        return true;
      });
    }
    assert.equal(requests.length, 0, 'not a single request left the process');
    await client.close();
  });

  test('export and import need no network (no client at all)', async () => {
    const file = join(work, 'offline.tar');
    await exportImages(cache, [ref], file);
    const other = await Store.open(join(work, 'cache2'));
    const r = await importArchive(other, file);
    assert.equal(r.images[0]!.digest, image.digest);
    const { client, requests } = clientFor(reg, { offline: true });
    assert.equal((await pull(other, client, ref, { platforms: amd64 })).fromCache, true);
    assert.equal(requests.length, 0);
    assert.ok((await inspectImage(other, ref))?.complete);
    await client.close();
  });

  test('CLI: pull --offline hits the cache or says what to do; tags --offline refuses; ls/inspect work', async () => {
    const ok = await cli(['pull', ref, '--platform', 'linux/amd64', '--offline', '--cache', cache.dir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /already cached/);

    const miss = await cli(['pull', `${reg.host}/team/app:v9`, '--offline', '--cache', cache.dir]);
    assert.equal(miss.code, 1);
    assert.match(
      miss.stderr,
      new RegExp(
        `Offline mode is on: cannot fetch the manifest v9 of ${reg.host}/team/app \\(not in the cache\\)`,
      ),
    );
    assert.match(miss.stderr, /drop --offline/);

    const tags = await cli(['tags', `${reg.host}/team/app`, '--offline']);
    assert.equal(tags.code, 1);
    assert.match(tags.stderr, /Offline mode is on: cannot fetch the tags of/);

    const ls = await cli(['ls', '--cache', cache.dir, '--json']);
    assert.equal(ls.code, 0, ls.stderr);
    assert.deepEqual(
      JSON.parse(ls.stdout).map((r: { name: string }) => r.name),
      [ref],
    );
    const inspect = await cli(['inspect', ref, '--cache', cache.dir, '--json']);
    assert.equal(inspect.code, 0, inspect.stderr);
    assert.equal(JSON.parse(inspect.stdout).digest, image.digest);

    const exp = await cli([
      'export',
      ref,
      '-o',
      join(work, 'cli-offline.tar'),
      '--offline',
      '--cache',
      cache.dir,
    ]);
    assert.equal(exp.code, 0, exp.stderr);
  });
});
