// Four CLI processes pull overlapping images into one cache at the same time, in two rounds (a
// fresh cache each). All succeed, every blob is downloaded once per round (counted at a proxy in
// front of the real registry), and index.json holds every reference. STOWAGE_SOAK=1 runs more rounds.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Store } from '../../src/core/store';
import { requireCli, runCli } from '../support/cli';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy';
import { type BuiltImage, buildImage } from '../support/fixtures';
import { pushLayout } from '../support/push';
import { type RunningRegistry, startRegistry } from '../support/registry';
import { checkCache, count } from './common';

const ROUNDS = count('STOWAGE_CONCURRENCY_ROUNDS', 2, 6);

let work: string;
let reg: RunningRegistry;
let proxy: FaultProxy;
const images = new Map<string, BuiltImage>();

before(async () => {
  requireCli();
  work = await mkdtemp(join(tmpdir(), 'stowage-rel-conc-'));
  const sizes = [1_500_000, 900_000, 2_000_000];
  const [p, q, r] = await Promise.all([
    buildImage(join(work, 'p'), { tag: 'v1', seed: 'conc-p', layers: 3, layerSize: sizes }),
    // q's layers are p's linux/amd64 layers (same seed, platform and sizes); its config differs.
    buildImage(join(work, 'q'), {
      tag: 'v1',
      seed: 'conc-p',
      platforms: ['linux/amd64'],
      index: false,
      layers: 3,
      layerSize: sizes,
      labels: { image: 'q' },
    }),
    buildImage(join(work, 'r'), {
      tag: 'v1',
      seed: 'conc-r',
      platforms: ['linux/amd64'],
      index: false,
      layers: 2,
      layerSize: 1_200_000,
    }),
  ]);
  reg = await startRegistry();
  for (const [name, image] of [
    ['p', p],
    ['q', q],
    ['r', r],
  ] as const) {
    for (const tag of ['v1', 'v2']) await pushLayout(image!.layoutDir, 'v1', reg, `conc/${name}:${tag}`);
    images.set(name, image!);
  }
  // Throttled so the four pulls overlap in time.
  proxy = await startFaultProxy(reg.url, { bytesPerSecond: 8_000_000 });
});

after(async () => {
  await proxy?.stop();
  await reg?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

const ROUND_REFS = [
  ['p:v1', 'q:v1', 'p:v2', 'r:v1'],
  ['r:v2', 'q:v2', 'p:v1', 'q:v1'],
];

test(`four processes pull overlapping images into one cache at once, ${ROUNDS} rounds`, async (t) => {
  const figures: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const refs = ROUND_REFS[round % ROUND_REFS.length]!;
    const dir = await mkdtemp(join(work, `cache-${round}-`));
    const first = proxy.requests.length;
    const runs = await Promise.all(
      refs.map((ref) =>
        runCli(
          ['pull', `${proxy.host}/conc/${ref}`, '--cache', dir, '--platform', 'linux/amd64', '--json'],
          120_000,
        ),
      ),
    );
    for (const [i, r] of runs.entries())
      assert.equal(r.code, 0, `round ${round + 1}: pull of ${refs[i]}: ${r.stderr}`);

    // The blobs this round needs, and how often each was downloaded.
    const needed = new Map<string, number>();
    for (const ref of refs) {
      const image = images.get(ref.split(':')[0]!)!;
      const p = image.platforms.find((x) => x.platform === 'linux/amd64')!;
      for (const b of [p.config, ...p.layers]) needed.set(b.digest, 0);
    }
    for (const q of proxy.requests.slice(first)) {
      const m = /\/blobs\/(sha256:[a-f0-9]{64})$/.exec(q.path);
      if (m && q.method === 'GET' && (q.status === 200 || q.status === 206)) {
        needed.set(m[1]!, (needed.get(m[1]!) ?? 0) + 1);
      }
    }
    const counts = [...needed.values()];
    const downloads = counts.reduce((a, b) => a + b, 0);
    const store = await Store.open(dir);
    const names = (await store.listReferences()).map((r) => r.name).sort();
    const check = await checkCache(store);
    const bytes = runs.reduce(
      (n, r) => n + (JSON.parse(r.stdout) as { bytesDownloaded: number }).bytesDownloaded,
      0,
    );
    figures.push(
      `round ${round + 1}: processes ok ${runs.length}/4; blobs needed ${needed.size}, downloads ${downloads} (must equal); bytes downloaded ${bytes}; references ${names.length}/4; blobs verified ${check.blobs}; problems ${check.problems.length}`,
    );
    for (const [digest, n] of needed)
      assert.equal(n, 1, `round ${round + 1}: ${digest} downloaded ${n} times`);
    assert.deepEqual(
      names,
      refs.map((r) => `${proxy.host}/conc/${r}`).sort(),
      'index.json holds every reference',
    );
    assert.deepEqual(check.problems, []);
  }
  for (const f of figures) t.diagnostic(f);
});
