import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { Digest } from '../../src/core/digest';
import { isStowageError } from '../../src/core/errors';
import { Store } from '../../src/core/store';
import { PARTS_MARKER } from '../../src/core/store/ingest';
import { sha256, tempDir } from './store-fixture';

const code = (c: string) => (e: unknown) => isStowageError(e, c as never);

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await fs.readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listFiles(p)));
    else out.push(p);
  }
  return out;
}

async function blobFiles(store: Store): Promise<string[]> {
  return (await fs.readdir(join(store.dir, 'blobs', 'sha256')).catch(() => [])).sort();
}

/** A pid that is certainly not running: a child that has already exited. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', '0']);
  assert.ok(r.pid);
  return r.pid;
}

/** The lock file a process that died while holding `folder`'s lock leaves. */
async function deadLock(folder: string): Promise<void> {
  const { hostname } = await import('node:os');
  await fs.writeFile(
    join(folder, 'lock'),
    JSON.stringify({
      pid: deadPid(),
      hostname: hostname(),
      createdAt: new Date().toISOString(),
      token: 'dead',
    }),
  );
}

describe('Store layout', () => {
  test('open creates oci-layout, an empty index and private dirs; reopening keeps them', async (t) => {
    const dir = join(await tempDir(t), 'cache');
    const store = await Store.open(dir);
    assert.deepEqual(JSON.parse(await fs.readFile(join(dir, 'oci-layout'), 'utf8')), {
      imageLayoutVersion: '1.0.0',
    });
    assert.deepEqual(JSON.parse(await fs.readFile(join(dir, 'index.json'), 'utf8')), {
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [],
    });
    assert.equal((await fs.stat(dir)).mode & 0o777, 0o700);
    assert.equal((await fs.stat(join(dir, 'blobs'))).mode & 0o777, 0o700);
    await store.setReference('example.com/a:1', { mediaType: 'x', digest: sha256('a'), size: 1 });
    await Store.open(dir);
    assert.equal((await store.listReferences()).length, 1, 'reopening must not reset index.json');
  });

  test('blobPath accepts strict digests and rejects traversal, wrong lengths and unknown algorithms', async (t) => {
    const store = await Store.open(await tempDir(t));
    const ok = sha256('x');
    assert.equal(store.blobPath(ok), join(store.dir, 'blobs', 'sha256', ok.slice(7)));
    const bad = [
      'sha256:../../x',
      `sha256:../../${'a'.repeat(58)}`,
      `sha256:${'a'.repeat(63)}`,
      `sha256:${'a'.repeat(65)}`,
      `sha256:${'A'.repeat(64)}`,
      `md5:${'a'.repeat(32)}`,
      `sha384:${'a'.repeat(96)}`,
      `sha256:${'a'.repeat(63)}/`,
      'a'.repeat(64),
      '',
    ];
    for (const d of bad) {
      assert.throws(() => store.blobPath(d as Digest), code('INVALID_DIGEST'), d);
      await assert.rejects(store.ingest(d as Digest, 1), code('INVALID_DIGEST'), d);
      await assert.rejects(store.putBlob(Buffer.from('x'), d as Digest), code('INVALID_DIGEST'), d);
    }
    assert.equal(
      store.blobPath(`sha512:${'b'.repeat(128)}`),
      join(store.dir, 'blobs', 'sha512', 'b'.repeat(128)),
    );
  });
});

describe('Store blobs', () => {
  test('putBlob verifies, has() checks size, readBlob verifies and caps size', async (t) => {
    const store = await Store.open(await tempDir(t));
    const bytes = Buffer.from('{"hello":"world"}');
    const d = sha256(bytes);
    assert.equal(await store.has(d), false);
    await store.putBlob(bytes, d);
    await store.putBlob(bytes, d); // present: no-op
    assert.equal(await store.has(d), true);
    assert.equal(await store.has(d, bytes.length), true);
    assert.equal(await store.has(d, bytes.length + 1), false);
    assert.deepEqual(await store.readBlob(d, 1024), bytes);
    await assert.rejects(store.readBlob(d, bytes.length - 1), code('TOO_LARGE'));
    await assert.rejects(store.readBlob(sha256('absent'), 1024), code('NOT_CACHED'));
    assert.equal(await store.verifyBlob(d), true);
  });

  test('putBlob with content that does not match the digest stores nothing', async (t) => {
    const store = await Store.open(await tempDir(t));
    await assert.rejects(store.putBlob(Buffer.from('tampered'), sha256('original')), code('DIGEST_MISMATCH'));
    assert.deepEqual(await blobFiles(store), []);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'tmp')), []);
  });

  test('a cached blob that no longer hashes to its name is reported CACHE_CORRUPT and removed', async (t) => {
    const store = await Store.open(await tempDir(t));
    const bytes = Buffer.from('manifest bytes');
    const d = sha256(bytes);
    await store.putBlob(bytes, d);
    const path = store.blobPath(d);
    await fs.chmod(path, 0o644);
    await fs.writeFile(path, 'MANIFEST BYTES');
    assert.equal(await store.verifyBlob(d), false);
    await assert.rejects(store.readBlob(d, 1024), code('CACHE_CORRUPT'));
    assert.equal(await store.has(d), false);
  });

  test('committed blobs are read-only and no file in the cache is group/world-writable', async (t) => {
    const store = await Store.open(await tempDir(t));
    const small = Buffer.from('small');
    await store.putBlob(small, sha256(small));
    const big = randomBytes(300_000);
    const ing = await store.ingest(sha256(big), big.length);
    await ing.write(big);
    await ing.commit();
    for (const d of [sha256(small), sha256(big)]) {
      assert.equal((await fs.stat(store.blobPath(d))).mode & 0o777, 0o444, d);
    }
    // root ignores file modes, so the write attempt only proves something for other users.
    if (process.getuid?.() !== 0) {
      await assert.rejects(fs.writeFile(store.blobPath(sha256(small)), 'x'), { code: 'EACCES' });
    }
    for (const f of await listFiles(store.dir)) {
      assert.equal((await fs.stat(f)).mode & 0o022, 0, `${f} is group/world-writable`);
    }
  });
});

describe('Store ingest', () => {
  test('writes in small and large chunks, commits a verified blob and cleans up the ingest folder', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(3 * 1024 * 1024 + 12345);
    const d = sha256(data);
    const ing = await store.ingest(d, data.length);
    assert.equal(ing.present, false);
    assert.equal(ing.offset, 0);
    assert.equal(ing.expectedSize, data.length);
    let at = 0;
    for (const size of [1, 100, 16384, 65536, 2 * 1024 * 1024]) {
      await ing.write(data.subarray(at, at + size));
      at += size;
    }
    await ing.write(data.subarray(at));
    assert.equal(ing.offset, data.length);
    await ing.commit();
    await ing.close(); // after commit: a no-op
    assert.equal(await store.verifyBlob(d), true);
    assert.equal(await store.has(d, data.length), true);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'ingest')), []);
  });

  test('an empty blob (e.g. the OCI empty config) ingests and commits with no writes', async (t) => {
    const store = await Store.open(await tempDir(t));
    const ing = await store.ingest(sha256(''), 0);
    assert.equal(ing.offset, 0);
    await ing.commit();
    assert.equal(await store.has(sha256(''), 0), true);
    assert.equal((await store.readBlob(sha256(''), 0)).length, 0);
  });

  test('wrong digest → DIGEST_MISMATCH, partial deleted, nothing in blobs/', async (t) => {
    const store = await Store.open(await tempDir(t));
    const good = Buffer.from('the real content');
    const ing = await store.ingest(sha256(good), good.length);
    await ing.write(Buffer.from('the fake content'));
    await assert.rejects(ing.commit(), code('DIGEST_MISMATCH'));
    assert.deepEqual(await blobFiles(store), []);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'ingest')), []);
    // The lock was released: a new ingest starts from zero.
    const again = await store.ingest(sha256(good), good.length);
    assert.equal(again.offset, 0);
    await again.close();
  });

  test('the digest is of the bytes written: a chunk changed during its write fails, never commits', async (t) => {
    // 1.5 MiB: the 1 MiB buffer fills mid-chunk, the write waits for the disk, and the rest of
    // the chunk is copied after that wait. A caller that broke its promise and changed the chunk
    // then must get DIGEST_MISMATCH, not a committed blob whose file differs from what was hashed.
    const store = await Store.open(await tempDir(t));
    const good = randomBytes(1024 * 1024 + 512 * 1024);
    const chunk = Buffer.from(good);
    const ing = await store.ingest(sha256(good), good.length);
    const writing = ing.write(chunk);
    chunk.fill(0, 1024 * 1024);
    await writing;
    await assert.rejects(ing.commit(), code('DIGEST_MISMATCH'));
    assert.deepEqual(await blobFiles(store), []);
  });

  test('short content → SIZE_MISMATCH; content beyond the declared size → SIZE_MISMATCH at write', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = Buffer.from('0123456789');
    const short = await store.ingest(sha256(data), data.length);
    await short.write(data.subarray(0, 6));
    await assert.rejects(short.commit(), code('SIZE_MISMATCH'));
    const long = await store.ingest(sha256(data), 8);
    await long.write(data.subarray(0, 5));
    await assert.rejects(long.write(data.subarray(5)), code('SIZE_MISMATCH'));
    await long.close();
    assert.deepEqual(await blobFiles(store), []);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'ingest')), []);
  });

  test('resume: close keeps the partial; reopening re-hashes it, offset = bytes written, commit verifies', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(2 * 1024 * 1024 + 777);
    const d = sha256(data);
    const first = await store.ingest(d, data.length);
    await first.write(data.subarray(0, 1_500_000));
    await first.close();
    await first.close(); // idempotent
    const meta = JSON.parse(await fs.readFile(join(store.ingestPath(d), 'meta.json'), 'utf8'));
    assert.equal(meta.expectedSize, data.length);
    assert.equal(meta.digest, d);

    const second = await store.ingest(d, data.length);
    assert.equal(second.offset, 1_500_000);
    await second.write(data.subarray(1_500_000, 1_600_000));
    await second.close();

    const reopened = await Store.open(store.dir); // as another process would
    const third = await reopened.ingest(d, undefined);
    assert.equal(third.offset, 1_600_000);
    assert.equal(third.expectedSize, undefined);
    await third.write(data.subarray(1_600_000));
    await third.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('parts: bytes written ahead at their place are adopted into the digest, then committed', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const d = sha256(data);
    const ing = await store.ingest(d, data.length);
    const cuts = [2 * 1024 * 1024, 4 * 1024 * 1024];
    // The later parts first, in small and odd-sized writes, while the owner writes the start.
    const parts = await Promise.all(cuts.map((at) => ing.part(at)));
    const ends = [cuts[1]!, data.length];
    await Promise.all(
      parts.map(async (p, i) => {
        for (let at = cuts[i]!; at < ends[i]!; at += 300_001)
          await p.write(data.subarray(at, Math.min(at + 300_001, ends[i]!)));
        await p.close();
        assert.equal(p.written, ends[i]! - cuts[i]!);
      }),
    );
    await ing.write(data.subarray(0, cuts[0]));
    await ing.adopt(cuts[1]!);
    await ing.adopt(data.length);
    assert.equal(ing.offset, data.length);
    await ing.commit();
    assert.equal(await store.verifyBlob(d), true);
    assert.deepEqual(await fs.readdir(store.ingestPath(d)).catch(() => []), [], 'nothing left behind');
  });

  test('parts: a close keeps only the adopted prefix; a part past the size is refused', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(3 * 1024 * 1024);
    const d = sha256(data);
    const ing = await store.ingest(d, data.length);
    await ing.write(data.subarray(0, 1000));
    const ahead = await ing.part(2 * 1024 * 1024);
    await ahead.write(data.subarray(2 * 1024 * 1024));
    await assert.rejects(ahead.write(Buffer.alloc(1)), code('SIZE_MISMATCH'));
    await ahead.close();
    await assert.rejects(ing.part(500), code('CACHE_CORRUPT'), 'a part may not overlap what is written');
    await ing.close();
    assert.equal((await fs.stat(join(store.ingestPath(d), 'data'))).size, 1000, 'truncated to the prefix');
    const again = await store.ingest(d, data.length);
    assert.equal(again.offset, 1000, 'resumes from the prefix, not from what parts left past a gap');
    await again.write(data.subarray(1000));
    await again.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('parts: after a crash while parts were writing, the partial data is not trusted', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(4 * 1024 * 1024);
    const d = sha256(data);
    // What a process that died mid-split leaves: a prefix, a gap of zeros, a part's bytes, the marker.
    const folder = store.ingestPath(d);
    await fs.mkdir(folder, { recursive: true });
    const left = Buffer.concat([
      data.subarray(0, 1024 * 1024),
      Buffer.alloc(2 * 1024 * 1024),
      data.subarray(3 * 1024 * 1024),
    ]);
    await fs.writeFile(join(folder, 'data'), left);
    await fs.writeFile(join(folder, PARTS_MARKER), '');
    await deadLock(folder);
    const resumed = await store.ingest(d, data.length, { timeoutMs: 10_000 });
    assert.equal(resumed.offset, 0, 'started over');
    await resumed.write(data);
    await resumed.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('flushes to disk while writing: close, truncate and commit wait for one in flight', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(9 * 1024 * 1024 + 5);
    const d = sha256(data);
    // Several at once, each past the early-flush mark: flushes are in flight when they close.
    const parts = [3, 5, 7].map((mib) => data.subarray(0, mib * 1024 * 1024));
    const ingests = await Promise.all(parts.map((_, i) => store.ingest(sha256(Buffer.from([i])), undefined)));
    await Promise.all(
      ingests.map(async (ing, i) => {
        for (let at = 0; at < parts[i]!.length; at += 512 * 1024)
          await ing.write(parts[i]!.subarray(at, at + 512 * 1024));
        await ing.close();
      }),
    );
    for (const [i, part] of parts.entries()) {
      const again = await store.ingest(sha256(Buffer.from([i])), undefined);
      assert.equal(again.offset, part.length, 'every byte written before close is in the partial');
      await again.truncate();
      assert.equal(again.offset, 0);
      await again.close();
    }
    const ing = await store.ingest(d, data.length);
    for (let at = 0; at < data.length; at += 1024 * 1024)
      await ing.write(data.subarray(at, at + 1024 * 1024));
    await ing.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('truncate discards the partial data and starts again at offset 0', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(50_000);
    const d = sha256(data);
    const ing = await store.ingest(d, data.length);
    await ing.write(randomBytes(20_000)); // garbage, e.g. a server that ignored Range
    await ing.truncate();
    assert.equal(ing.offset, 0);
    await ing.write(data);
    await ing.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('a partial larger than the declared size is discarded on resume', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(1000);
    const d = sha256(data);
    const ing = await store.ingest(d, undefined);
    await ing.write(randomBytes(1500));
    await ing.close();
    const again = await store.ingest(d, data.length);
    assert.equal(again.offset, 0);
    await again.write(data);
    await again.commit();
    assert.equal(await store.has(d, 1000), true);
  });

  test('ingest of a blob already present returns present: true and writes nothing', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = Buffer.from('already here');
    const d = sha256(data);
    await store.putBlob(data, d);
    const ing = await store.ingest(d, data.length);
    assert.equal(ing.present, true);
    assert.equal(ing.offset, data.length);
    await assert.rejects(ing.write(Buffer.from('x')));
    await ing.commit();
    await ing.close();
    await assert.rejects(store.ingest(d, data.length + 1), code('SIZE_MISMATCH'));
  });

  test('a stale ingest lock of a dead process is recovered and its partial data resumed', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = randomBytes(10_000);
    const d = sha256(data);
    const folder = store.ingestPath(d);
    await fs.mkdir(folder, { recursive: true });
    await fs.writeFile(join(folder, 'data'), data.subarray(0, 4000));
    await deadLock(folder);
    const ing = await store.ingest(d, data.length, { timeoutMs: 10_000 });
    assert.equal(ing.offset, 4000);
    await ing.write(data.subarray(4000));
    await ing.commit();
    assert.equal(await store.verifyBlob(d), true);
  });

  test('four ingests of one blob in one process, 100 times over: each commits it or finds it present', async (t) => {
    // A waiter that looked at a lock while its holder was releasing it took it for an earlier
    // process's with this pid, and failed breaking it in a folder already removed (ENOENT).
    const store = await Store.open(await tempDir(t));
    const outcomes: string[] = [];
    for (let i = 0; i < 100; i++) {
      const data = randomBytes(1000);
      const one = async () => {
        const ing = await store.ingest(sha256(data), data.length);
        try {
          if (ing.present) return 'present';
          await ing.write(data);
          await ing.commit();
          return 'committed';
        } finally {
          await ing.close();
        }
      };
      const results = await Promise.allSettled([one(), one(), one(), one()]);
      for (const r of results) outcomes.push(r.status === 'fulfilled' ? r.value : String(r.reason));
    }
    assert.deepEqual(
      outcomes.filter((o) => o !== 'present' && o !== 'committed'),
      [],
    );
    assert.equal(outcomes.filter((o) => o === 'committed').length, 100);
  });

  test('a lock held by a live process makes a waiter time out (LOCK_TIMEOUT) or abort (ABORTED)', async (t) => {
    const store = await Store.open(await tempDir(t));
    const data = Buffer.from('contended');
    const d = sha256(data);
    const holder = await store.ingest(d, data.length);
    await assert.rejects(store.ingest(d, data.length, { timeoutMs: 30 }), (e: unknown) => {
      assert.ok(isStowageError(e, 'LOCK_TIMEOUT'));
      assert.match(e.message, new RegExp(`held by process ${process.pid}`));
      return true;
    });
    const ac = new AbortController();
    const waiting = store.ingest(d, data.length, { signal: ac.signal });
    ac.abort();
    await assert.rejects(waiting, code('ABORTED'));
    await holder.write(data);
    await holder.commit();
    const after = await store.ingest(d, data.length);
    assert.equal(after.present, true);
  });
});

describe('Store references', () => {
  test('set/get/list/remove; a name is replaced, not duplicated; foreign entries are kept', async (t) => {
    const store = await Store.open(await tempDir(t));
    const indexPath = join(store.dir, 'index.json');
    const foreign = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('f'), size: 3 };
    const idx = JSON.parse(await fs.readFile(indexPath, 'utf8'));
    idx.manifests.push(foreign);
    await fs.writeFile(indexPath, JSON.stringify(idx));

    const a = { mediaType: 'application/vnd.oci.image.index.v1+json', digest: sha256('a'), size: 10 };
    const b = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('b'), size: 20 };
    await store.setReference('127.0.0.1:5000/team/app:v1', a);
    await store.setReference('docker.io/library/alpine:3.20', b);
    await store.setReference('127.0.0.1:5000/team/app:v1', b);
    const list = await store.listReferences();
    assert.deepEqual(
      list.map((r) => [r.name, r.descriptor.digest]),
      [
        ['docker.io/library/alpine:3.20', b.digest],
        ['127.0.0.1:5000/team/app:v1', b.digest],
      ],
    );
    const got = await store.getReference('127.0.0.1:5000/team/app:v1');
    assert.equal(got?.annotations?.['org.opencontainers.image.ref.name'], '127.0.0.1:5000/team/app:v1');
    assert.equal(await store.getReference('nope'), undefined);
    assert.equal(await store.removeReference('docker.io/library/alpine:3.20'), true);
    assert.equal(await store.removeReference('docker.io/library/alpine:3.20'), false);
    const raw = JSON.parse(await fs.readFile(indexPath, 'utf8'));
    assert.equal(raw.manifests.length, 2);
    assert.deepEqual(raw.manifests[0], foreign);
    assert.deepEqual(await fs.readdir(join(store.dir, '.stowage', 'tmp')), []);
  });

  test('setReference validates the descriptor and the name', async (t) => {
    const store = await Store.open(await tempDir(t));
    await assert.rejects(
      store.setReference('a:1', { mediaType: 'x', digest: 'sha256:../x' as Digest, size: 1 }),
      code('MANIFEST_INVALID'),
    );
    await assert.rejects(
      store.setReference('a:1', { mediaType: 'x', digest: sha256('x'), size: -1 }),
      code('MANIFEST_INVALID'),
    );
    await assert.rejects(
      store.setReference('', { mediaType: 'x', digest: sha256('x'), size: 1 }),
      code('INVALID_REFERENCE'),
    );
  });

  test('setReference refuses a name with control characters (C0, DEL, C1), as import skips them', async (t) => {
    const store = await Store.open(await tempDir(t));
    const d = { mediaType: 'x', digest: sha256('x'), size: 1 };
    for (const name of [
      'evil\u001b]0;owned\u0007',
      'a:1\u001b[2J',
      'a\u007f:1',
      'a\u009b31m:1',
      'a\u0085:1',
    ]) {
      await assert.rejects(store.setReference(name, d), (e: unknown) => {
        assert.ok(isStowageError(e, 'INVALID_REFERENCE'), String(e));
        // The message shows the name escaped: the character that made it invalid is not acted on.
        assert.ok(!/[\u0000-\u001f]/.test(e.message), JSON.stringify(e.message));
        return true;
      });
    }
    assert.deepEqual(await store.listReferences(), []);
    await store.setReference('a:1', d);
    assert.deepEqual(
      (await store.listReferences()).map((r) => r.name),
      ['a:1'],
    );
  });

  test('an index.json over 64 MiB, or one that never ends (/dev/zero), is CACHE_CORRUPT naming it, not read whole', async (t) => {
    const store = await Store.open(await tempDir(t));
    await store.setReference('a:1', { mediaType: 'x', digest: sha256('1'), size: 1 });
    const indexPath = join(store.dir, 'index.json');
    // Valid JSON and a valid index, only too large: it was read and used before.
    const huge = `{"schemaVersion":2,"manifests":[],"padding":"${'x'.repeat(64 * 1024 * 1024)}"}`;
    await fs.writeFile(indexPath, huge);
    const tooLarge = (e: unknown) => {
      assert.ok(isStowageError(e, 'CACHE_CORRUPT'), String(e));
      assert.ok(e.message.includes(indexPath) && /64 MiB/.test(e.message), e.message);
      assert.match(e.hint ?? '', /1 image/, 'the copy of the index last written is offered');
      return true;
    };
    await assert.rejects(store.listReferences(), tooLarge);
    await assert.rejects(store.gc(), tooLarge);
    if (process.platform !== 'win32') {
      await fs.rm(indexPath);
      await fs.symlink('/dev/zero', indexPath);
      await assert.rejects(store.listReferences(), tooLarge);
    }
  });

  test('a corrupt index.json is reported as CACHE_CORRUPT', async (t) => {
    const store = await Store.open(await tempDir(t));
    await fs.writeFile(join(store.dir, 'index.json'), '{"manifests": [');
    await assert.rejects(store.listReferences(), code('CACHE_CORRUPT'));
    await assert.rejects(
      store.setReference('a:1', { mediaType: 'x', digest: sha256('x'), size: 1 }),
      code('CACHE_CORRUPT'),
    );
  });

  test('a damaged index.json (another tool killed mid-write): the error names the copy of the last index written, which brings the names back', async (t) => {
    const store = await Store.open(await tempDir(t));
    const indexPath = join(store.dir, 'index.json');
    await store.setReference('a:1', { mediaType: 'x', digest: sha256('1'), size: 1 });
    await store.setReference('b:2', { mediaType: 'x', digest: sha256('2'), size: 2 });
    const good = await fs.readFile(indexPath, 'utf8');
    for (const damaged of ['', good.slice(0, 40), 'null']) {
      await fs.writeFile(indexPath, damaged);
      const error = await store.listReferences().then(
        () => assert.fail('a damaged index is refused'),
        (e: unknown) => e,
      );
      assert.ok(isStowageError(error, 'CACHE_CORRUPT'));
      assert.match(error.hint ?? '', /2 images/);
      const copy = /(\S+index\.json)\b.*over/.exec(error.hint ?? '')?.[1];
      assert.ok(copy && copy !== indexPath, `the hint names the copy: ${error.hint}`);
      await fs.copyFile(copy, indexPath);
      assert.deepEqual(
        (await store.listReferences()).map((r) => r.name),
        ['a:1', 'b:2'],
      );
    }
    // Without a copy (a layout another tool wrote), the hint warns that gc would empty the cache.
    await fs.rm(join(store.dir, '.stowage', 'index.json'));
    await fs.writeFile(indexPath, '{');
    await assert.rejects(
      store.listReferences(),
      (e: unknown) => isStowageError(e, 'CACHE_CORRUPT') && /gc/.test(e.hint ?? ''),
    );
  });

  test('a stale layout lock of a dead process, or an unrefreshed one from another host, is recovered', async (t) => {
    const store = await Store.open(await tempDir(t));
    const lock = join(store.dir, '.stowage', 'layout.lock');
    const { hostname } = await import('node:os');
    await fs.writeFile(
      lock,
      JSON.stringify({ pid: deadPid(), hostname: hostname(), createdAt: '', token: 'x' }),
    );
    await store.setReference('a:1', { mediaType: 'x', digest: sha256('1'), size: 1 });

    await fs.writeFile(
      lock,
      JSON.stringify({ pid: process.pid, hostname: 'elsewhere', createdAt: '', token: 'y' }),
    );
    const old = new Date(Date.now() - 10 * 60 * 1000);
    await fs.utimes(lock, old, old);
    await store.setReference('a:2', { mediaType: 'x', digest: sha256('2'), size: 1 });
    assert.deepEqual(
      (await store.listReferences()).map((r) => r.name),
      ['a:1', 'a:2'],
    );
    await assert.rejects(fs.stat(lock), { code: 'ENOENT' });
  });

  test('a lock naming this process’s pid but none of its locks was left by an earlier process with that pid: recovered', async (t) => {
    const store = await Store.open(await tempDir(t));
    const lock = join(store.dir, '.stowage', 'layout.lock');
    const { hostname } = await import('node:os');
    await fs.writeFile(
      lock,
      JSON.stringify({ pid: process.pid, hostname: hostname(), createdAt: '', token: 'an-earlier-run' }),
    );
    assert.equal(await store.withLock(async () => 'taken', { timeoutMs: 5_000 }), 'taken');
    // One of this process's own locks is respected, pid or not.
    const ours = await store.ingest(sha256('busy'), 4);
    await assert.rejects(store.ingest(sha256('busy'), 4, { timeoutMs: 100 }), code('LOCK_TIMEOUT'));
    await ours.close();
  });

  test('a fresh lock from another host is respected (LOCK_TIMEOUT names the holder and the file)', async (t) => {
    const store = await Store.open(await tempDir(t));
    const lock = join(store.dir, '.stowage', 'layout.lock');
    await fs.writeFile(lock, JSON.stringify({ pid: 1, hostname: 'otherhost', createdAt: '', token: 'z' }));
    await assert.rejects(
      store.withLock(async () => 1, { timeoutMs: 30 }),
      (e: unknown) =>
        isStowageError(e, 'LOCK_TIMEOUT') && /otherhost/.test(e.message) && e.hint!.includes(lock),
    );
  });
});
