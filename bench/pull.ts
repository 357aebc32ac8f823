// `npm run bench`: our pull against skopeo and curl on a local registry, in one run.
//
// Fixture: one linux/amd64 OCI image manifest (no index) with 5 × 40 MiB random layers (gzip level 1,
// so ~42 MB each, ~210 MB in all), pushed to a local plain-HTTP CNCF Distribution registry.
// Each round runs, in a rotating order: our cold pull as a CLI process, the same in-process (and
// in-process with every blob through undici instead of the direct plain-HTTP reader), skopeo's
// cold pull into an OCI layout, curl of the same blobs to files (one process, sequential, and
// --parallel), a bare Node process that only GETs, hashes and writes the blobs with undici or with
// node:http (bench/node-floor.mjs: what any Node puller costs here), and our warm pull (a second CLI pull into the same cache: it
// must make 0 requests). Processes run under GNU time for their CPU time and peak RSS.
// Then the peak RSS of a CLI pull of a single ~1 GiB layer, a pull of many small layers from a
// "distant" TLS registry (bench/distant.ts: behind a relay adding --rtt-ms of round trip), one large
// layer from it over connections limited to 25 MB/s each, and
// resolveDockerfile over 1,000 files.
//
// usage: npm run bench -- [--rounds N] [--layers N] [--layer-mib N] [--no-memory] [--memory-mib N]
//        [--no-distant] [--rtt-ms N] [--no-resolve] [--tls] [--keep] [--node PATH]
// --node: the Node that runs the CLI processes and the bare-Node floors (default: this one), to
// see what another Node version makes of the CLI's start; the in-process pulls run in this one.
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pull } from '../src/core/pull/pull';
import { RegistryClient } from '../src/core/registry/client';
import { Store } from '../src/core/store';
import { buildImage } from '../test/support/fixtures';
import { pushLayout } from '../test/support/push';
import { type RunningRegistry, startRegistry } from '../test/support/registry';
import { pushBigLayerImage } from './big-layer';
import { benchDistant, MANY_SMALL, ONE_LARGE } from './distant';
import { haveGnuTime, MiB, mib, peakRss, summarise, type Timed, timeAsync, timeProcess } from './measure';
import { benchResolve, printResolve } from './resolve';

const { values: flags } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    layers: { type: 'string', default: '5' },
    'layer-mib': { type: 'string', default: '40' },
    'no-memory': { type: 'boolean' },
    'memory-mib': { type: 'string', default: '1024' },
    'no-resolve': { type: 'boolean' },
    'no-distant': { type: 'boolean' },
    'rtt-ms': { type: 'string', default: '30' },
    tls: { type: 'boolean' },
    keep: { type: 'boolean' },
    node: { type: 'string' },
  },
});
const NODE = flags.node ?? process.execPath;
const ROUNDS = Number(flags.rounds);
const ROOT = join(__dirname, '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const SKOPEO_BLOB_CACHE = '/var/lib/containers/cache/blob-info-cache-v1.boltdb';
const REPO = 'bench/big';
const TAG = 'latest';

type Method =
  | 'ours-cli'
  | 'ours-inproc'
  | 'ours-undici'
  | 'node-floor'
  | 'node-http'
  | 'skopeo'
  | 'curl-seq'
  | 'curl-par';
const ALL_METHODS: Method[] = [
  'ours-cli',
  'skopeo',
  'curl-seq',
  'ours-inproc',
  'ours-undici',
  'node-floor',
  'curl-par',
  'node-http',
];
// Over TLS (--tls: a registry with its own CA, trusted by every client) the bare-Node floors,
// written for plain HTTP, are left out.
const METHODS = ALL_METHODS.filter((m) => !flags.tls || (m !== 'node-floor' && m !== 'node-http'));

interface Sample {
  ms: number;
  cpuMs: number;
  rss: number;
}

function log(line: string) {
  process.stderr.write(`bench: ${line}\n`);
}

async function main() {
  const startLoad = loadavg();
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-'));
  let registry: RunningRegistry | undefined;
  const onSignal = () => {
    void cleanup().finally(() => process.exit(130));
  };
  const cleanup = async () => {
    await registry?.stop().catch(() => {});
    registry = undefined;
    if (!flags.keep) await rm(work, { recursive: true, force: true });
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const layers = Number(flags.layers);
    const layerBytes = Number(flags['layer-mib']) * MiB;
    let t = performance.now();
    const image = await buildImage(join(work, 'fixture'), {
      platforms: ['linux/amd64'],
      index: false,
      layers,
      layerSize: layerBytes,
      seed: 'stowage-bench',
    });
    const blobs = [image.platforms[0]!.config, ...image.platforms[0]!.layers];
    const totalBytes = blobs.reduce((n, b) => n + b.size, 0);
    log(`fixture: ${layers} × ${mib(layerBytes)} layers, ${mib(totalBytes)} of blobs, built in ${ms(t)}`);
    registry = await startRegistry({ tls: !!flags.tls });
    // Every client trusts the registry's CA (skopeo: a cert dir; curl: --cacert; ours: --ca-file).
    const certDir = join(work, 'certs');
    await mkdir(certDir);
    const caFile = join(certDir, 'ca.crt');
    if (registry.caPem) await writeFile(caFile, registry.caPem);
    const caArgs = registry.caPem ? ['--ca-file', caFile] : [];
    t = performance.now();
    await pushLayout(image.layoutDir, image.tag, registry, `${REPO}:${TAG}`);
    await rm(image.layoutDir, { recursive: true, force: true });
    log(`pushed to ${registry.url} in ${ms(t)}`);

    const ref = `${registry.host}/${REPO}:${TAG}`;
    const urls = blobs.map((b) => `${registry!.url}/v2/${REPO}/blobs/${b.digest}`);
    const runs = join(work, 'runs');
    await mkdir(runs);
    let seq = 0;
    const fresh = async () => {
      const dir = join(runs, String(seq++));
      await mkdir(dir);
      return dir;
    };

    const warmRequests: number[] = [];
    const warmSamples: Sample[] = [];
    const sample = (r: Timed): Sample => ({ ms: r.ms, cpuMs: r.cpuMs, rss: r.rss });
    const run = async (method: Method): Promise<Sample> => {
      const dir = await fresh();
      try {
        switch (method) {
          case 'ours-cli': {
            const args = [CLI, 'pull', ref, '--cache', dir, '--json', ...caArgs];
            const r = await timeProcess(NODE, args);
            const result = JSON.parse(r.stdout) as { bytesDownloaded: number; fromCache: boolean };
            if (result.fromCache || result.bytesDownloaded !== totalBytes) {
              throw new Error(`cold pull downloaded ${result.bytesDownloaded} of ${totalBytes} bytes`);
            }
            // Warm: the same cache again, with the request log on.
            const w = await timeProcess(NODE, [...args, '-v']);
            const requests = w.stderr.split('\n').filter((l) => /^stowage: [A-Z]+ /.test(l)).length;
            if (!(JSON.parse(w.stdout) as { fromCache: boolean }).fromCache) {
              throw new Error('warm pull did not come from the cache');
            }
            warmRequests.push(requests);
            warmSamples.push(sample(w));
            return sample(r);
          }
          case 'ours-inproc':
          case 'ours-undici': {
            // ours-undici: the same pull with every blob through undici instead of the direct reader.
            const client = new RegistryClient({
              userAgent: 'stowage-bench',
              direct: method === 'ours-inproc',
              caCertificates: registry!.caPem ? [registry!.caPem] : [],
            });
            try {
              const cpu = process.cpuUsage();
              const ms = await timeAsync(async () => {
                const store = await Store.open(dir);
                const result = await pull(store, client, ref);
                if (result.bytesDownloaded !== totalBytes) throw new Error('in-process pull incomplete');
              });
              const used = process.cpuUsage(cpu);
              return { ms, cpuMs: (used.user + used.system) / 1000, rss: Number.NaN };
            } finally {
              await client.close();
            }
          }
          case 'skopeo': {
            await rm(SKOPEO_BLOB_CACHE, { force: true });
            const r = await timeProcess('skopeo', [
              'copy',
              '--override-arch',
              'amd64',
              `docker://${ref}`,
              `oci:${join(dir, 'layout')}:${TAG}`,
              ...(registry!.caPem ? [`--src-cert-dir=${certDir}`] : ['--src-tls-verify=false']),
            ]);
            const got = await readdir(join(dir, 'layout', 'blobs', 'sha256'));
            if (got.length < blobs.length) throw new Error(`skopeo wrote ${got.length} blobs`);
            return sample(r);
          }
          case 'node-floor':
          case 'node-http': {
            const floor = [join(__dirname, 'node-floor.mjs'), ...(method === 'node-http' ? ['--http'] : [])];
            return sample(await timeProcess(NODE, [...floor, dir, ...urls]));
          }
          case 'curl-seq':
          case 'curl-par': {
            const args = ['-sS', '--fail', ...(registry!.caPem ? ['--cacert', caFile] : [])];
            if (method === 'curl-par') args.push('--parallel', '--parallel-max', String(urls.length));
            for (const [i, u] of urls.entries()) args.push('-o', join(dir, `blob${i}`), u);
            return sample(await timeProcess('curl', args));
          }
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

    // One unrecorded pass warms the registry's page cache and our own file caches.
    log('warm-up pass');
    for (const m of METHODS) await run(m);
    warmRequests.length = 0;
    warmSamples.length = 0;

    const samples = new Map<Method, Sample[]>(METHODS.map((m) => [m, []]));
    for (let round = 0; round < ROUNDS; round++) {
      const order = METHODS.map((_, i) => METHODS[(i + round) % METHODS.length]!);
      const line: string[] = [];
      for (const m of order) {
        const took = await run(m);
        samples.get(m)!.push(took);
        line.push(`${m} ${took.ms.toFixed(0)}`);
      }
      log(`round ${round + 1}/${ROUNDS}: ${line.join(', ')} ms (load ${loadavg()[0]!.toFixed(1)})`);
    }

    console.log(
      `\nCold pull of ${mib(totalBytes)} (${blobs.length} blobs: 1 config + ${layers} gzip layers; ` +
        `linux/amd64 manifest, no index), ${ROUNDS} rounds, loopback ${flags.tls ? 'TLS (the registry has its own CA)' : 'plain HTTP'}; ` +
        `CLI processes on Node ${await nodeVersion()}, in-process on ${process.version}.`,
    );
    console.log(
      `  ${''.padEnd(27)} ${'wall ms: median   min   max'.padEnd(30)}  CPU ms (user+sys) median   peak RSS`,
    );
    const label: Record<Method, string> = {
      'ours-cli': 'stowage CLI (process)',
      'ours-inproc': 'stowage in-process',
      'ours-undici': 'in-process, undici only',
      skopeo: 'skopeo copy → oci:',
      'node-floor': 'bare Node, undici',
      'node-http': 'bare Node, node:http',
      'curl-seq': 'curl → files, sequential',
      'curl-par': 'curl → files, --parallel',
    };
    const row = (name: string, list: Sample[]) => {
      const wall = summarise(list.map((x) => x.ms));
      const cpu = summarise(list.map((x) => x.cpuMs));
      const rss = summarise(list.map((x) => x.rss));
      const n = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(0)).padStart(5);
      console.log(
        `  ${name.padEnd(27)} ${n(wall.median)} ${n(wall.min)} ${n(wall.max)}` +
          `                 ${n(cpu.median)}              ${Number.isNaN(rss.median) ? '-' : mib(rss.median)}`,
      );
      return { wall, cpu };
    };
    const s = new Map(METHODS.map((m) => [m, row(label[m], samples.get(m)!)]));
    row('stowage warm pull (CLI)', warmSamples);
    const ours = s.get('ours-cli')!;
    const skopeo = s.get('skopeo')!;
    const ratio = ours.wall.median / skopeo.wall.median;
    const inproc = s.get('ours-inproc')!.wall.median / skopeo.wall.median;
    const verdict = (r: number) => (r <= 0.7 ? 'met' : 'MISSED');
    console.log(
      `Ratio ours/skopeo (CLI process, wall medians): ${ratio.toFixed(3)} — target ≤ 0.70 ${verdict(ratio)}` +
        `; CPU time ratio ${(ours.cpu.median / skopeo.cpu.median).toFixed(2)}`,
    );
    console.log(
      `Ratio in-process/skopeo (wall; the extension's case, no process start): ${inproc.toFixed(3)} — target ≤ 0.70 ${verdict(inproc)}` +
        `; undici only: ${(s.get('ours-undici')!.wall.median / skopeo.wall.median).toFixed(2)}`,
    );
    console.log(
      `CLI process start (node + bundle load + cache check, the warm pull): ${summarise(warmSamples.map((x) => x.ms)).median.toFixed(0)} ms of the CLI's ${ours.wall.median.toFixed(0)} ms`,
    );
    console.log(await nodeStart());
    console.log(
      `Ratio ours/curl (wall): ${(ours.wall.median / s.get('curl-seq')!.wall.median).toFixed(2)} (sequential), ` +
        `${(ours.wall.median / s.get('curl-par')!.wall.median).toFixed(2)} (parallel)  [curl neither hashes nor fsyncs]`,
    );
    const floor = s.get('node-floor');
    const floorHttp = s.get('node-http');
    if (floor && floorHttp) {
      console.log(
        `Ratio ours/bare Node undici (wall): ${(ours.wall.median / floor.wall.median).toFixed(2)}; ` +
          `bare Node/skopeo: ${(floor.wall.median / skopeo.wall.median).toFixed(2)} (undici), ` +
          `${(floorHttp.wall.median / skopeo.wall.median).toFixed(2)} (node:http)`,
      );
    }
    const maxWarm = Math.max(...warmRequests);
    console.log(
      `Warm pull requests (from -v request log): ${warmRequests.join(', ')} — ${maxWarm === 0 ? '0 requests: met' : 'NOT ZERO'}`,
    );

    // The big-layer upload speaks plain HTTP only.
    if (!flags['no-memory'] && !flags.tls) await memory(registry, work);
    await registry.stop();
    registry = undefined;
    if (!flags['no-distant']) {
      for (const scenario of [MANY_SMALL, ONE_LARGE]) {
        const lines = await benchDistant({
          scenario,
          cli: CLI,
          node: NODE,
          work,
          rounds: ROUNDS,
          rttMs: Number(flags['rtt-ms']),
          skopeoBlobCache: SKOPEO_BLOB_CACHE,
          log,
        });
        console.log(`\n${lines.join('\n')}`);
      }
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  if (!flags['no-resolve']) {
    console.log('');
    printResolve(benchResolve(1000));
  }
  console.log('');
  printLoad('at the start', startLoad);
  printLoad('at the end', loadavg());
}

/** Peak RSS of a CLI pull of one ~1 GiB layer, above the CLI's idle RSS. */
async function memory(registry: RunningRegistry, work: string) {
  if (!haveGnuTime()) {
    console.log('\nMemory: skipped (/usr/bin/time missing: apt-get install -y time)');
    return;
  }
  const size = Number(flags['memory-mib']) * MiB;
  let t = performance.now();
  const { layerSize } = await pushBigLayerImage(registry.url, 'bench/huge', TAG, size);
  log(`pushed a ${mib(layerSize)} single-layer image in ${ms(t)}`);
  const idle = await peakRss(NODE, [CLI, '--version']);
  const dir = join(work, 'memory-cache');
  t = performance.now();
  const r = await peakRss(NODE, [
    CLI,
    'pull',
    `${registry.host}/bench/huge:${TAG}`,
    '--cache',
    dir,
    '--json',
  ]);
  const result = JSON.parse(r.stdout) as { bytesDownloaded: number };
  if (result.bytesDownloaded < layerSize) throw new Error('the 1 GiB pull was incomplete');
  await rm(dir, { recursive: true, force: true });
  const above = r.bytes - idle.bytes;
  console.log(
    `\nMemory, CLI pull of one ${mib(layerSize)} layer (${(r.ms / 1000).toFixed(1)} s): peak RSS ${mib(r.bytes)}, ` +
      `idle CLI (--version) ${mib(idle.bytes)}, above idle ${mib(above)} — target < 100 MiB ${above < 100 * MiB ? 'met' : 'MISSED'}`,
  );
}

function printLoad(when: string, load: number[]) {
  const cores = availableParallelism();
  console.log(
    `Load average ${when} (1/5/15 min, ${cores} cores): ${load.map((x) => x.toFixed(2)).join(' ')}`,
  );
}

function ms(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

async function nodeVersion(): Promise<string> {
  return NODE === process.execPath ? process.version : (await timeProcess(NODE, ['--version'])).stdout.trim();
}

/**
 * Bare `node -e 0`, the part of the CLI's start that is Node's own. NODE_EXTRA_CA_CERTS, when set,
 * makes Node parse that file at every start, before any of our code runs: shown apart.
 */
async function nodeStart(): Promise<string> {
  const median = async (env: NodeJS.ProcessEnv) => {
    const times: number[] = [];
    for (let i = 0; i < 7; i++) times.push((await timeProcess(NODE, ['-e', '0'], env)).ms);
    return summarise(times).median.toFixed(0);
  };
  const asSet = await median(process.env);
  const extra = process.env.NODE_EXTRA_CA_CERTS;
  if (!extra) return `Bare Node start (node -e 0): ${asSet} ms`;
  const { NODE_EXTRA_CA_CERTS: _, ...without } = process.env;
  return (
    `Bare Node start (node -e 0): ${asSet} ms with NODE_EXTRA_CA_CERTS=${extra} (as set here; Node parses it ` +
    `at every start), ${await median(without)} ms without`
  );
}
