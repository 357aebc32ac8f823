// The bench's "distant registry": a TLS registry behind a delay relay (a round trip of `rttMs`).
// Two scenarios, ours (CLI and in-process) against skopeo, alternating:
// - many small layers, where round trips (connections, TLS handshakes, one request after another)
//   cost more than bytes;
// - one large layer over a path that limits each connection's rate (as a long path or a CDN limits
//   each flow), where the connections a layer arrives over decide.
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pull } from '../src/core/pull/pull';
import { RegistryClient } from '../src/core/registry/client';
import { Store } from '../src/core/store';
import { buildImage } from '../test/support/fixtures';
import { pushLayout } from '../test/support/push';
import { startRegistry } from '../test/support/registry';
import { startDelayProxy } from './delay-proxy';
import { summarise, timeAsync, timeProcess } from './measure';

export interface DistantScenario {
  /** For the report and the repository name. */
  name: string;
  layers: number;
  layerBytes: number;
  /** Each connection's rate limit, per direction. */
  bytesPerSecond?: number;
}

export const MANY_SMALL: DistantScenario = { name: 'small', layers: 10, layerBytes: 512 * 1024 };
export const ONE_LARGE: DistantScenario = {
  name: 'large',
  layers: 1,
  layerBytes: 48 * 1024 * 1024,
  bytesPerSecond: 25 * 1000 * 1000,
};

export async function benchDistant(options: {
  scenario: DistantScenario;
  cli: string;
  /** The Node that runs the CLI. */
  node: string;
  work: string;
  rounds: number;
  rttMs: number;
  /** Removed before each skopeo run, so that skopeo cannot skip work from an earlier one. */
  skopeoBlobCache: string;
  log: (line: string) => void;
}): Promise<string[]> {
  const { cli, node, work, rounds, rttMs, log, scenario } = options;
  const registry = await startRegistry({ tls: true });
  const proxy = await startDelayProxy(registry.port, rttMs / 2, {
    ...(scenario.bytesPerSecond ? { bytesPerSecond: scenario.bytesPerSecond } : {}),
  });
  try {
    const image = await buildImage(join(work, `distant-${scenario.name}-fixture`), {
      platforms: ['linux/amd64'],
      index: false,
      layers: scenario.layers,
      layerSize: scenario.layerBytes,
      seed: `stowage-distant-${scenario.name}`,
    });
    await pushLayout(image.layoutDir, image.tag, registry, `bench/${scenario.name}:latest`);
    const blobs = image.platforms[0]!.layers.length + 1;
    const ref = `127.0.0.1:${proxy.port}/bench/${scenario.name}:latest`;
    let seq = 0;
    const fresh = async () => {
      const dir = join(work, `distant-${scenario.name}-${seq++}`);
      await mkdir(dir);
      return dir;
    };
    const methods = {
      'ours-cli': async (dir: string) => {
        const r = await timeProcess(node, [
          cli,
          'pull',
          ref,
          '--cache',
          dir,
          '--json',
          '--ca-file',
          registry.caFile!,
        ]);
        if ((JSON.parse(r.stdout) as { fromCache: boolean }).fromCache)
          throw new Error('distant: cold pull came from the cache');
        return r.ms;
      },
      'ours-inproc': async (dir: string) => {
        const client = new RegistryClient({ userAgent: 'stowage-bench', caCertificates: [registry.caPem!] });
        try {
          return await timeAsync(async () => pull(await Store.open(dir), client, ref));
        } finally {
          await client.close();
        }
      },
      skopeo: async (dir: string) => {
        await rm(options.skopeoBlobCache, { force: true });
        const layout = join(dir, 'layout');
        const r = await timeProcess('skopeo', [
          'copy',
          '--override-arch',
          'amd64',
          `--src-cert-dir=${registry.certDir!}`,
          `docker://${ref}`,
          `oci:${layout}:latest`,
        ]);
        const got = await readdir(join(layout, 'blobs', 'sha256'));
        if (got.length < blobs) throw new Error(`distant: skopeo wrote ${got.length} blobs`);
        return r.ms;
      },
    };
    type Name = keyof typeof methods;
    const names = Object.keys(methods) as Name[];
    const times = new Map<Name, number[]>(names.map((n) => [n, []]));
    for (let round = -1; round < rounds; round++) {
      for (const name of names.map((_, i) => names[(i + Math.max(round, 0)) % names.length]!)) {
        const dir = await fresh();
        try {
          const ms = await methods[name](dir);
          if (round >= 0) times.get(name)!.push(ms);
        } finally {
          await rm(dir, { recursive: true, force: true });
        }
      }
      if (round >= 0)
        log(
          `distant (${scenario.name}) round ${round + 1}/${rounds}: ${names.map((n) => `${n} ${times.get(n)!.at(-1)!.toFixed(0)}`).join(', ')} ms`,
        );
    }
    const median = (n: Name) => summarise(times.get(n)!).median;
    const size =
      scenario.layerBytes >= 1024 * 1024
        ? `${scenario.layerBytes / 1024 / 1024} MiB`
        : `${scenario.layerBytes / 1024} KiB`;
    const limit = scenario.bytesPerSecond
      ? `, each connection limited to ${scenario.bytesPerSecond / 1e6} MB/s`
      : '';
    return [
      `Distant registry: TLS behind a ${rttMs} ms round trip${limit}, ${blobs} blobs (config + ${scenario.layers} × ${size} layer${scenario.layers > 1 ? 's' : ''}), ${rounds} rounds, medians:`,
      `  stowage CLI ${median('ours-cli').toFixed(0)} ms · in-process ${median('ours-inproc').toFixed(0)} ms · skopeo ${median('skopeo').toFixed(0)} ms` +
        ` → ours/skopeo ${(median('ours-cli') / median('skopeo')).toFixed(2)} (CLI), ${(median('ours-inproc') / median('skopeo')).toFixed(2)} (in-process)`,
    ];
  } finally {
    await proxy.close();
    await registry.stop();
  }
}
