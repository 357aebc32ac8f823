import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { isStowageError } from '../../src/core/errors';
import { Store } from '../../src/core/store';
import { stopChild } from '../support/proc';
import { sha256, tempDir } from './store-fixture';

const CHILD = join(__dirname, 'store-child.ts');

interface ChildEvent {
  event: string;
  [k: string]: unknown;
}

/** A child process speaking one JSON event per stdout line. */
class Child {
  readonly events: ChildEvent[] = [];
  readonly exited: Promise<number | null>;
  private waiters: (() => void)[] = [];
  private stderr = '';

  constructor(
    readonly proc: ChildProcess,
    t: { after: (fn: () => Promise<void>) => void },
  ) {
    let buf = '';
    proc.stdout!.on('data', (b: Buffer) => {
      buf += b.toString();
      let nl = buf.indexOf('\n');
      while (nl >= 0) {
        this.events.push(JSON.parse(buf.slice(0, nl)));
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
      }
      for (const w of this.waiters.splice(0)) w();
    });
    proc.stderr!.on('data', (b: Buffer) => {
      this.stderr += b.toString();
    });
    this.exited = new Promise((resolve) =>
      proc.on('exit', (code) => {
        resolve(code);
        for (const w of this.waiters.splice(0)) w();
      }),
    );
    t.after(() => stopChild(proc));
  }

  static start(t: { after: (fn: () => Promise<void>) => void }, args: string[]): Child {
    const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], {
      cwd: join(__dirname, '..', '..'),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    return new Child(proc, t);
  }

  /** Resolves with the first event of that name; rejects if the child exits without it. */
  async waitFor(name: string): Promise<ChildEvent> {
    for (;;) {
      const hit = this.events.find((e) => e.event === name);
      if (hit) return hit;
      if (this.proc.exitCode !== null || this.proc.signalCode !== null) {
        throw new Error(`child exited without "${name}": ${JSON.stringify(this.events)} ${this.stderr}`);
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async result(): Promise<string> {
    const e = await this.waitFor('result');
    await this.exited;
    return e.result as string;
  }
}

async function writeContent(dir: string, bytes: Buffer): Promise<string> {
  const file = join(dir, `content-${randomBytes(4).toString('hex')}`);
  await fs.writeFile(file, bytes);
  return file;
}

describe('Store across processes', () => {
  test('two processes ingesting one blob: the first writes it, the second waits and finds it present', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const content = randomBytes(700_000);
    const file = await writeContent(root, content);
    const first = Child.start(t, ['ingest', cache, file, '--wait']);
    await first.waitFor('acquired');
    const second = Child.start(t, ['ingest', cache, file]);
    await second.waitFor('started');
    // The second cannot get past the per-blob lock until the first commits.
    first.proc.stdin!.write('go\n');
    assert.equal(await first.result(), 'committed');
    assert.equal(await second.result(), 'present');
    assert.equal(
      second.events.some((e) => e.event === 'acquired'),
      false,
    );
    const store = await Store.open(cache);
    assert.equal(await store.verifyBlob(sha256(content)), true);
  });

  test('when the first process stops early, the waiting one resumes its partial data', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const content = randomBytes(600_000);
    const file = await writeContent(root, content);
    const first = Child.start(t, ['ingest', cache, file, '--wait', '--partial', '250000']);
    await first.waitFor('acquired');
    const second = Child.start(t, ['ingest', cache, file]);
    await second.waitFor('started');
    first.proc.stdin!.write('go\n');
    assert.equal(await first.result(), 'closed');
    assert.equal(await second.result(), 'committed');
    assert.equal((await second.waitFor('acquired')).offset, 250_000);
    assert.equal(await (await Store.open(cache)).verifyBlob(sha256(content)), true);
  });

  test('four processes racing on one blob: exactly one commits it', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    await Store.open(cache);
    const content = randomBytes(400_000);
    const file = await writeContent(root, content);
    const children = Array.from({ length: 4 }, () => Child.start(t, ['ingest', cache, file]));
    const results = await Promise.all(children.map((c) => c.result()));
    assert.deepEqual(results.sort(), ['committed', 'present', 'present', 'present']);
    assert.equal(await (await Store.open(cache)).verifyBlob(sha256(content)), true);
  });

  test('kill -9 during an ingest: the stale lock is recovered and the flushed part resumed', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const content = randomBytes(3 * 1024 * 1024);
    const file = await writeContent(root, content);
    const victim = Child.start(t, ['ingest', cache, file, '--partial', String(2.5 * 1024 * 1024), '--hang']);
    await victim.waitFor('wrote');
    victim.proc.kill('SIGKILL');
    await victim.exited;
    const store = await Store.open(cache);
    const lock = join(store.ingestPath(sha256(content)), 'lock');
    assert.ok((await fs.stat(lock)).isFile(), 'the killed process left its lock behind');
    const ing = await store.ingest(sha256(content), content.length, { timeoutMs: 30_000 });
    assert.ok(ing.offset > 0 && ing.offset <= 2.5 * 1024 * 1024, `resumed at ${ing.offset}`);
    await ing.write(content.subarray(ing.offset));
    await ing.commit();
    assert.equal(await store.verifyBlob(sha256(content)), true);
  });

  test('kill -9 of a process holding the index lock: the next writer recovers the lock', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const holder = Child.start(t, ['hold', cache]);
    await holder.waitFor('locked');
    holder.proc.kill('SIGKILL');
    await holder.exited;
    const store = await Store.open(cache);
    await store.setReference('127.0.0.1:5000/a:1', {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256('a'),
      size: 1,
    });
    assert.equal((await store.listReferences()).length, 1);
  });

  test('a lock whose holder was killed and whose pid a live process has since taken is recovered at once (it held pulls up to 2 minutes)', async (t) => {
    if (process.platform !== 'linux') return t.skip('telling processes apart by start time needs /proc');
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    const holder = Child.start(t, ['hold', cache]);
    await holder.waitFor('locked');
    const store = await Store.open(cache);
    // Its true holder alive: respected.
    await assert.rejects(
      store.withLock(async () => 1, { timeoutMs: 200 }),
      (e: unknown) => isStowageError(e, 'LOCK_TIMEOUT'),
    );
    holder.proc.kill('SIGKILL');
    await holder.exited;
    // The pid now belongs to another live process (as after a container restart).
    const other = spawn('sleep', ['60'], { stdio: 'ignore' });
    t.after(() => stopChild(other));
    const lock = join(cache, '.stowage', 'layout.lock');
    const owner = JSON.parse(await fs.readFile(lock, 'utf8'));
    await fs.writeFile(lock, JSON.stringify({ ...owner, pid: other.pid }));
    assert.equal(await store.withLock(async () => 'taken', { timeoutMs: 5_000 }), 'taken');
  });

  test('four processes writing references at once: every reference lands, index.json stays valid', async (t) => {
    const root = await tempDir(t);
    const cache = join(root, 'cache');
    await Store.open(cache);
    const children = Array.from({ length: 4 }, (_, i) =>
      Child.start(t, ['refs', cache, `127.0.0.1:5000/team/app${i}`, '10']),
    );
    assert.deepEqual(await Promise.all(children.map((c) => c.result())), ['done', 'done', 'done', 'done']);
    const index = JSON.parse(await fs.readFile(join(cache, 'index.json'), 'utf8'));
    assert.equal(index.manifests.length, 40);
    const names = (await (await Store.open(cache)).listReferences()).map((r) => r.name).sort();
    const expected = [0, 1, 2, 3].flatMap((i) =>
      Array.from({ length: 10 }, (_, j) => `127.0.0.1:5000/team/app${i}:${j}`),
    );
    assert.deepEqual(names, expected.sort());
    assert.deepEqual(await fs.readdir(join(cache, '.stowage', 'tmp')), []);
  });
});
