import { readFile } from 'node:fs/promises';
import { defaultCacheDir } from '../core/cache-dir';
import { StowageError } from '../core/errors';
import { RegistryClient, type RequestLog } from '../core/registry/client';
import {
  type CredentialSource,
  chainCredentials,
  DockerConfigCredentials,
} from '../core/registry/credentials';
import { mergeMirrorSettings, mirrorBaseUrl, readDaemonConfig } from '../core/registry/mirrors';
import { Store } from '../core/store';

/** Flags every command that touches the cache or a registry accepts. */
export const ENGINE_OPTIONS = {
  cache: { type: 'string' },
  'insecure-registry': { type: 'string', multiple: true },
  mirror: { type: 'string', multiple: true },
  /** A docker daemon.json whose registry-mirrors (Docker Hub) and insecure-registries apply. */
  'daemon-config': { type: 'string' },
  'ca-file': { type: 'string', multiple: true },
  offline: { type: 'boolean' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

export interface EngineFlags {
  cache?: string;
  'insecure-registry'?: string[];
  mirror?: string[];
  'daemon-config'?: string;
  'ca-file'?: string[];
  offline?: boolean;
  verbose?: boolean;
}

/** `--mirror REGISTRY=URL` (repeatable, in order) → { registry: [urls] }. */
export function parseMirrors(values: readonly string[] = []): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1) {
      throw new StowageError(
        'USAGE',
        `Invalid --mirror "${v}": expected REGISTRY=URL, e.g. docker.io=https://mirror.example.`,
      );
    }
    const registry = v.slice(0, i).toLowerCase();
    out[registry] = [...(out[registry] ?? []), v.slice(i + 1)];
  }
  return out;
}

export async function openStore(flags: EngineFlags): Promise<Store> {
  return Store.open(flags.cache ?? defaultCacheDir());
}

/** A registry client configured from flags and the environment (docker's config.json for credentials). */
export async function createClient(
  flags: EngineFlags,
  /** Default: docker's config.json (and its credential helpers). */
  credentials: CredentialSource = chainCredentials(new DockerConfigCredentials()),
): Promise<RegistryClient> {
  const caCertificates = await Promise.all(
    (flags['ca-file'] ?? []).map((f) =>
      readFile(f).catch((e: Error) => {
        throw new StowageError('USAGE', `Cannot read CA file ${f}: ${e.message}`);
      }),
    ),
  );
  const settings = mergeMirrorSettings(
    { mirrors: parseMirrors(flags.mirror), insecureRegistries: flags['insecure-registry'] ?? [] },
    flags['daemon-config'] ? await readDaemonConfig(flags['daemon-config']) : {},
  );
  // Bad mirror URLs are usage errors now, not at the first pull.
  for (const [registry, urls] of Object.entries(settings.mirrors))
    for (const u of urls) mirrorBaseUrl(u, registry);
  return new RegistryClient({
    credentials,
    insecureRegistries: settings.insecureRegistries,
    mirrors: settings.mirrors,
    caCertificates,
    offline: flags.offline,
    userAgent: 'stowage-cli',
    onRequest: flags.verbose ? logRequest : undefined,
  });
}

function logRequest(r: RequestLog): void {
  const what = r.error ? `error ${r.error}` : `${r.status} ${r.bytes ?? 0}B`;
  process.stderr.write(
    `stowage: ${r.method} ${r.url} → ${what} (${r.ms} ms${r.reused ? ', pooled connection' : ''})\n`,
  );
}
