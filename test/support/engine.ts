// Helpers for engine tests: a store in a temp dir, a client that counts its requests, blob checks.
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Digest } from '../../src/core/digest';
import { type ClientOptions, RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { Store } from '../../src/core/store';
import { type RunningRegistry, startRegistry } from './registry';

export interface CountingClient {
  client: RegistryClient;
  requests: RequestLog[];
}

/** A client for a test registry: trusts its CA, knows its credentials when `withCredentials`. */
export function clientFor(
  registry: RunningRegistry,
  options: ClientOptions & { withCredentials?: boolean } = {},
): CountingClient {
  const requests: RequestLog[] = [];
  const credentials = new StaticCredentials();
  if (options.withCredentials && registry.credentials) credentials.set(registry.host, registry.credentials);
  const client = new RegistryClient({
    credentials,
    caCertificates: registry.caPem ? [registry.caPem] : [],
    retry: { baseDelayMs: 20, maxDelayMs: 200 },
    ...options,
    onRequest: (r) => {
      requests.push(r);
      options.onRequest?.(r);
    },
  });
  return { client, requests };
}

/** Every blob in the store hashes to its name; returns how many there are. */
export async function verifyAllBlobs(store: Store): Promise<number> {
  const dir = join(store.dir, 'blobs', 'sha256');
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  for (const hex of names) {
    const actual = createHash('sha256')
      .update(await readFile(join(dir, hex)))
      .digest('hex');
    if (actual !== hex) throw new Error(`blob ${hex} hashes to ${actual}`);
  }
  return names.length;
}

export async function blobNames(store: Store): Promise<Set<string>> {
  try {
    return new Set((await readdir(join(store.dir, 'blobs', 'sha256'))).map((h) => `sha256:${h}`));
  } catch {
    return new Set();
  }
}

export { Store };

/**
 * A tiny image put in `store`: a config (`config` over linux/amd64 with no layers) and its
 * manifest; returns the manifest's descriptor, for setReference or an index entry.
 */
export async function putTinyImage(
  store: Store,
  config: Record<string, unknown> = {},
): Promise<{ mediaType: string; digest: Digest; size: number }> {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}` as Digest;
  const configBytes = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: { type: 'layers', diff_ids: [] },
      ...config,
    }),
  );
  await store.putBlob(configBytes, sha(configBytes));
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: {
        mediaType: 'application/vnd.oci.image.config.v1+json',
        digest: sha(configBytes),
        size: configBytes.length,
      },
      layers: [],
    }),
  );
  await store.putBlob(manifest, sha(manifest));
  return { mediaType, digest: sha(manifest), size: manifest.length };
}

/**
 * A test file's scratch space: a temp folder, registries and other services stopped in reverse
 * order by `cleanup()` (call it from `after`), and fresh stores inside the folder.
 */
export class TestBed {
  private readonly stops: (() => Promise<void>)[] = [];
  private constructor(readonly work: string) {}

  static async create(prefix: string): Promise<TestBed> {
    return new TestBed(await mkdtemp(join(tmpdir(), prefix)));
  }

  /** Registers something to stop at cleanup (proxies, fake servers). */
  defer(stop: () => Promise<void>): void {
    this.stops.push(stop);
  }

  async registry(options: Parameters<typeof startRegistry>[0] = {}): Promise<RunningRegistry> {
    const r = await startRegistry(options);
    this.defer(() => r.stop());
    return r;
  }

  /** An empty cache in its own folder. */
  async store(): Promise<Store> {
    return Store.open(await mkdtemp(join(this.work, 'cache-')));
  }

  async cleanup(): Promise<void> {
    for (const stop of this.stops.reverse()) await stop();
    await rm(this.work, { recursive: true, force: true });
  }
}
