// Crash safety: the CLI pull is killed with SIGKILL at seeded moments (a random time, or just after
// a blob commit / the last blob, to land in commits and index.json updates), then re-run to
// completion. Afterwards every blob verifies, every reference reaches only present blobs, the
// re-run downloads only what was missing (partial blobs resume), and locks left by the killed
// process are recovered. Reduced count in `npm test`; STOWAGE_SOAK=1 runs 50 kills.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Store } from '../../src/core/store';
import { FileLock } from '../../src/core/store/lock';
import { CLI, requireCli, runCli } from '../support/cli';
import { type FaultProxy, seededRandom, startFaultProxy } from '../support/fault-proxy';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';
import { checkCache, count } from './common';

const KILLS = count('STOWAGE_CRASH_KILLS', 12, 50);

let work: string;
let reg: RunningRegistry;
let proxy: FaultProxy;
const images: { name: string; image: BuiltImage }[] = [];
const children = new Set<ChildProcess>();

before(async () => {
  requireCli();
  work = await mkdtemp(join(tmpdir(), 'stowage-rel-crash-'));
  const sizes = [2_500_000, 1_800_000, 3_000_000, 700_000];
  const [a, b, c] = await Promise.all([
    buildImage(join(work, 'a'), {
      tag: 'v1',
      seed: 'crash-a',
      platforms: ['linux/amd64'],
      index: false,
      layers: 4,
      layerSize: sizes,
    }),
    buildImage(join(work, 'b'), { tag: 'v1', seed: 'crash-b', layers: 3, layerSize: 1_500_000 }),
    // Same seed and sizes as a: its first four layers are a's (already cached when it is pulled).
    buildImage(join(work, 'c'), {
      tag: 'v1',
      seed: 'crash-a',
      platforms: ['linux/amd64'],
      index: false,
      layers: 5,
      layerSize: [...sizes, 2_000_000],
      labels: { variant: 'c' },
    }),
  ]);
  reg = await startRegistry();
  for (const [name, image] of [
    ['a', a],
    ['b', b],
    ['c', c],
  ] as const) {
    await pushLayout(image!.layoutDir, 'v1', reg, `crash/${name}:v1`);
    images.push({ name, image: image! });
  }
  // Throttled so that a pull lasts long enough to be interrupted at interesting moments.
  proxy = await startFaultProxy(reg.url, { bytesPerSecond: 6_000_000 });
});

after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await proxy?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

type Trigger = { kind: 'time'; ms: number } | { kind: 'line'; match: RegExp; nth: number; delayMs: number };

/** Starts a CLI pull and SIGKILLs it when the trigger fires; resolves how it ended. */
function pullAndKill(args: string[], trigger: Trigger): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(child);
    let seen = 0;
    let killed = false;
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) {
        killed = child.kill('SIGKILL');
      }
    };
    let timer: NodeJS.Timeout | undefined;
    if (trigger.kind === 'time') timer = setTimeout(kill, trigger.ms);
    let buffered = '';
    child.stderr.on('data', (d) => {
      if (trigger.kind !== 'line') return;
      buffered += d;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const l of lines) {
        if (trigger.match.test(l) && ++seen === trigger.nth) timer = setTimeout(kill, trigger.delayMs);
      }
    });
    // Bounded: a pull that neither finishes nor gets killed is killed after 60 s (and fails below).
    const guard = setTimeout(kill, 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      clearTimeout(guard);
      children.delete(child);
      resolve({ killed: killed && signal === 'SIGKILL', code });
    });
  });
}

async function sizeOf(path: string): Promise<number> {
  return (await stat(path).catch(() => undefined))?.size ?? 0;
}

/**
 * Partial bytes held in ingests whose blob is not committed yet, lock files lying around, and how
 * many of those locks block: a lock left by a killed process must be taken over by the next
 * process that needs it (its owner is dead), so each leftover that matters is acquired here with a
 * deadline; one that cannot be is blocking.
 */
async function leftovers(
  store: Store,
  tryLocks = false,
): Promise<{ partial: number; locks: number; blocking: number; ingests: number }> {
  const root = join(store.dir, '.stowage', 'ingest');
  let partial = 0;
  let locks = 0;
  let blocking = 0;
  let ingests = 0;
  const mustRecover: string[] = [];
  for (const name of await readdir(root).catch(() => [] as string[])) {
    const digest = name.replace('-', ':') as `sha256:${string}`;
    const files = await readdir(join(root, name)).catch(() => [] as string[]);
    const committed = await store.has(digest);
    if (files.includes('lock')) {
      locks++;
      // A lock on a blob that is committed blocks nobody (gc removes it); one on a missing blob might.
      if (!committed) mustRecover.push(join(root, name, 'lock'));
    }
    if (files.includes('data') && !committed) {
      ingests++;
      partial += await sizeOf(join(root, name, 'data'));
    }
  }
  // A pull killed after writing index.json but before unlocking leaves layout.lock; the re-run then
  // finds the image complete and never needs the lock, so it is still there: the next writer's job.
  if ((await readdir(join(store.dir, '.stowage')).catch(() => [] as string[])).includes('layout.lock')) {
    locks++;
    mustRecover.push(join(store.dir, '.stowage', 'layout.lock'));
  }
  // Only after the re-run: taking the locks earlier would do the re-run's recovery for it.
  for (const path of tryLocks ? mustRecover : []) {
    try {
      const lock = await FileLock.acquire(path, { timeoutMs: 20_000 });
      await lock.release();
    } catch {
      blocking++;
    }
  }
  return { partial, locks, blocking, ingests };
}

test(`${KILLS} SIGKILLs at seeded moments, each pull re-run to completion: cache consistent, partial blobs resumed, locks recovered`, async (t) => {
  const random = seededRandom(4242);
  const phases = new Map<string, number>();
  let kills = 0;
  let finishedFirst = 0;
  let staleLocks = 0;
  let partialKept = 0;
  let resumedRuns = 0;
  let totalBytes = 0;
  let downloadedOnRerun = 0;
  let lockedAfter = 0;
  const caches: Store[] = [];
  const began = Date.now();
  const refs = (name: string) => `${proxy.host}/crash/${name}:v1`;
  let round = 0;
  while (kills < KILLS) {
    const dir = await mkdtemp(join(work, `cache-${round++}-`));
    const store = await Store.open(dir);
    caches.push(store);
    for (const { name, image } of images) {
      if (kills >= KILLS) break;
      const platform = image.platforms.find((p) => p.platform === 'linux/amd64')!;
      const blobs = [platform.config, ...platform.layers];
      const args = ['pull', refs(name), '--cache', dir, '--platform', 'linux/amd64'];
      const r = random();
      const trigger: Trigger =
        r < 0.5
          ? { kind: 'time', ms: Math.floor(random() * 1000) }
          : r < 0.8
            ? {
                kind: 'line',
                match: /^pulled /,
                nth: 1 + Math.floor(random() * blobs.length),
                delayMs: Math.floor(random() * 20),
              }
            : { kind: 'line', match: /^resolved /, nth: 1, delayMs: Math.floor(random() * 300) };
      const { killed, code } = await pullAndKill(args, trigger);
      if (!killed) {
        assert.equal(code, 0, `an uninterrupted pull of ${name} succeeds`);
        finishedFirst++;
        continue;
      }
      kills++;
      // Where did the kill land?
      const names = new Set(
        (await readdir(join(dir, 'blobs', 'sha256')).catch(() => [] as string[])).map((h) => `sha256:${h}`),
      );
      const committed = blobs.filter((b) => names.has(b.digest)).reduce((n, b) => n + b.size, 0);
      const left = await leftovers(store);
      const hasRef = (await store.listReferences()).some((x) => x.name.endsWith(`crash/${name}:v1`));
      const phase = hasRef
        ? 'after the reference was written'
        : blobs.every((b) => names.has(b.digest))
          ? 'after the last blob, before/while writing index.json'
          : left.partial > 0 || committed > 0
            ? 'while downloading or committing blobs'
            : 'before any blob data';
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
      staleLocks += left.locks;
      partialKept += left.partial;

      const again = await runCli([...args, '--json'], 60_000);
      assert.equal(again.code, 0, `re-run after the kill succeeds: ${again.stderr}`);
      const result = JSON.parse(again.stdout) as {
        bytesDownloaded: number;
        totalBytes: number;
        digest: string;
      };
      assert.equal(result.digest, image.digest);
      const total = blobs.reduce((n, b) => n + b.size, 0);
      assert.equal(result.totalBytes, total);
      assert.equal(
        result.bytesDownloaded,
        total - committed - left.partial,
        `the re-run of ${name} fetched only what was missing (${phase})`,
      );
      if (left.partial > 0) resumedRuns++;
      totalBytes += total;
      downloadedOnRerun += result.bytesDownloaded;
      const after = await leftovers(store, true);
      lockedAfter += after.blocking;
    }
  }
  let blobs = 0;
  let references = 0;
  const problems: string[] = [];
  let gcRemovedIngests = 0;
  for (const store of caches) {
    // gc clears what killed processes left (ingests of committed blobs, their locks) and keeps
    // everything the references reach.
    const gc = await runCli(['gc', '--cache', store.dir, '--json'], 60_000);
    assert.equal(gc.code, 0, gc.stderr);
    gcRemovedIngests += (JSON.parse(gc.stdout) as { removedIngests?: number }).removedIngests ?? 0;
    assert.equal((await leftovers(store)).locks, 0, 'no lock left after gc');
    const check = await checkCache(store);
    blobs += check.blobs;
    problems.push(...check.problems);
    references += (await store.listReferences()).length;
  }
  t.diagnostic(
    `kills / finished before the kill / re-runs ok: ${kills} / ${finishedFirst} / ${kills} in ${((Date.now() - began) / 1000).toFixed(1)} s`,
  );
  t.diagnostic(`kill moments: ${[...phases].map(([p, n]) => `${p}=${n}`).join(', ')}`);
  t.diagnostic(
    `re-runs that resumed partial blobs: ${resumedRuns}; partial bytes kept and not re-downloaded: ${partialKept}; bytes re-downloaded / image bytes: ${downloadedOnRerun} / ${totalBytes}`,
  );
  t.diagnostic(
    `locks left by killed processes: ${staleLocks}; blocking locks left after re-runs (must be 0): ${lockedAfter}; leftover ingests removed by gc: ${gcRemovedIngests}`,
  );
  t.diagnostic(
    `caches / references / blobs verified / problems (must be 0): ${caches.length} / ${references} / ${blobs} / ${problems.length}`,
  );
  for (const p of problems.slice(0, 10)) t.diagnostic(p);
  assert.deepEqual(problems, []);
  assert.equal(lockedAfter, 0);
  assert.equal(kills, KILLS);
});
