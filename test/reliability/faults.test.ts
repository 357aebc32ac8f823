// Seeded pulls of multi-layer images through the fault-injecting proxy in front of a real
// registry. Every pull either completes with a verified cache or fails with a typed StowageError
// after bounded retries; none hangs; no blob that does not hash to its name is ever kept.
// Reduced count in `npm test`; STOWAGE_SOAK=1 (npm run test:soak) runs 200.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { parsePlatform } from '../../src/core/platform';
import { pull } from '../../src/core/pull/pull';
import { RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { Store } from '../../src/core/store';
import { HangError } from '../support/cli';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';
import { checkCache, count, guard, isTyped } from './common';

const PULLS = count('STOWAGE_FAULT_PULLS', 40, 200);
const STALL_MS = 800;
const PULL_GUARD_MS = 45_000;
const amd64 = [parsePlatform('linux/amd64')];

let work: string;
let reg: RunningRegistry;
let proxy: FaultProxy;
let multi: BuiltImage;
let single: BuiltImage;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'stowage-rel-faults-'));
  [multi, single] = await Promise.all([
    buildImage(join(work, 'multi'), { tag: 'v1', seed: 'rel-multi', layers: 3, layerSize: 200_000 }),
    buildImage(join(work, 'single'), {
      tag: 'v1',
      seed: 'rel-single',
      platforms: ['linux/amd64'],
      index: false,
      layers: 4,
      layerSize: [40_000, 600_000, 1_200_000, 8_000],
    }),
  ]);
  reg = await startRegistry();
  await pushLayout(multi.layoutDir, 'v1', reg, 'rel/multi:v1');
  await pushLayout(single.layoutDir, 'v1', reg, 'rel/single:v1');
  proxy = await startFaultProxy(reg.url, { rate: 0.3, stallMs: STALL_MS * 3 });
});

after(async () => {
  await proxy?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

test(`${PULLS} seeded pulls through injected faults: ok or a typed error, never corrupt, never hung`, async (t) => {
  let ok = 0;
  let failedClearly = 0;
  let corrupt = 0;
  let untyped = 0;
  let hung = 0;
  const codes = new Map<string, number>();
  const problems: string[] = [];
  const logs: RequestLog[] = [];
  const began = Date.now();
  for (let i = 0; i < PULLS; i++) {
    const seed = 1000 + i;
    proxy.reseed(seed);
    const image = i % 2 === 0 ? multi : single;
    const repo = image === multi ? 'rel/multi' : 'rel/single';
    const ref = i % 5 === 4 ? `${proxy.host}/${repo}@${image.digest}` : `${proxy.host}/${repo}:v1`;
    const dir = await mkdtemp(join(work, 'cache-'));
    const store = await Store.open(dir);
    const client = new RegistryClient({
      retry: { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 },
      stallTimeoutMs: STALL_MS,
      onRequest: (r) => logs.push(r),
    });
    try {
      const result = await guard(
        pull(store, client, ref, { platforms: amd64 }),
        PULL_GUARD_MS,
        `pull #${i} (seed ${seed})`,
      );
      const check = await checkCache(store);
      if (result.digest !== image.digest || check.problems.length > 0 || check.blobs === 0) {
        corrupt++;
        problems.push(`seed ${seed}: ok but ${result.digest} / ${check.problems.join('; ')}`);
      } else ok++;
    } catch (e) {
      if (e instanceof HangError) {
        hung++;
        problems.push(`seed ${seed}: ${e.message}`);
      } else if (isTyped(e)) {
        failedClearly++;
        codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
        const check = await checkCache(store);
        const refs = await store.listReferences();
        if (check.problems.length > 0 || refs.length > 0) {
          corrupt++;
          problems.push(
            `seed ${seed}: failed (${e.code}) but cache has ${refs.length} refs; ${check.problems.join('; ')}`,
          );
        }
      } else {
        untyped++;
        problems.push(`seed ${seed}: untyped ${(e as Error)?.stack ?? e}`);
      }
    } finally {
      await client.close();
      await rm(dir, { recursive: true, force: true });
    }
  }
  const seconds = ((Date.now() - began) / 1000).toFixed(1);
  t.diagnostic(`pulls ok / failed clearly / corrupt (must be 0): ${ok} / ${failedClearly} / ${corrupt}`);
  t.diagnostic(
    `untyped errors (must be 0): ${untyped}; hung (must be 0): ${hung}; ${PULLS} pulls in ${seconds} s`,
  );
  t.diagnostic(`failure codes: ${[...codes].map(([c, n]) => `${c}=${n}`).join(', ') || 'none'}`);
  t.diagnostic(
    `faults injected: ${Object.entries(proxy.injected)
      .map(([k, n]) => `${k}=${n}`)
      .join(', ')} over ${proxy.requests.length} requests`,
  );
  for (const p of problems.slice(0, 10)) t.diagnostic(p);
  assert.equal(corrupt, 0, 'corrupt caches');
  assert.equal(untyped, 0, 'untyped errors');
  assert.equal(hung, 0, 'hung pulls');
  assert.equal(ok + failedClearly, PULLS);
  assert.ok(ok > 0, 'some pulls complete despite the faults');
  // Every kind of fault was exercised at least once over the run (ignoreRange needs a resume first).
  for (const [kind, n] of Object.entries(proxy.injected)) {
    if (kind !== 'ignoreRange' || PULLS >= 100) assert.ok(n > 0, `fault ${kind} was injected`);
  }
});
