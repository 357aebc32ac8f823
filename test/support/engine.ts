// Helpers for engine tests: a store in a temp dir, a client that counts its requests, blob checks.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type ClientOptions, RegistryClient, type RequestLog } from '../../src/core/registry/client';
import { StaticCredentials } from '../../src/core/registry/credentials';
import { Store } from '../../src/core/store';
import type { RunningRegistry } from './registry';

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
