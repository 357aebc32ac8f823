import { readdir, readFile, stat } from 'node:fs/promises';
import { defaultCacheDir } from '../core/cache-dir';
import { StowageError } from '../core/errors';
import { redactUserinfo } from '../core/redact';
import { RegistryClient, type RequestLog, type RetryNotice } from '../core/registry/client';
import {
  type CredentialSource,
  chainCredentials,
  DockerConfigCredentials,
} from '../core/registry/credentials';
import { describeReason } from '../core/registry/errors';
import { mergeMirrorSettings, mirrorBaseUrl, readDaemonConfig } from '../core/registry/mirrors';
import { Store } from '../core/store';
import type { OptionSpec, OptionTable } from './command';
import { explainPath, FileError } from './files';

/** Flags every command that touches the cache or a registry accepts. */
export const ENGINE_OPTIONS = {
  cache: {
    type: 'string',
    value: 'DIR',
    help: 'the cache folder (default: $STOWAGE_CACHE, else ~/.cache/stowage)',
  },
  'insecure-registry': {
    type: 'string',
    multiple: true,
    value: 'HOST[:PORT]',
    help: 'allow plain HTTP or unverified TLS for this registry',
  },
  mirror: {
    type: 'string',
    multiple: true,
    value: 'REGISTRY=URL',
    help: 'try this mirror before the registry, e.g. docker.io=https://mirror.example',
  },
  'daemon-config': {
    type: 'string',
    value: 'FILE',
    help: 'a docker daemon.json whose registry-mirrors and insecure-registries apply',
  },
  'ca-file': {
    type: 'string',
    multiple: true,
    value: 'PEM',
    help: 'trust the certificate authorities in this PEM file too',
  },
  offline: { type: 'boolean', help: 'never contact a registry: work from the cache only' },
  verbose: { type: 'boolean', short: 'v', help: 'log every registry request on stderr' },
} as const satisfies OptionTable;

/** For commands that never use the network: --offline is accepted so scripts can pass it everywhere. */
export const OFFLINE_ACCEPTED = {
  type: 'boolean',
  help: 'accepted for scripts that pass it everywhere (this command never uses the network)',
} as const satisfies OptionSpec;

export const JSON_OPTION = {
  type: 'boolean',
  help: 'print the result as JSON',
} as const satisfies OptionSpec;

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
        `Invalid --mirror "${redactUserinfo(v)}": expected REGISTRY=URL, e.g. docker.io=https://mirror.example.`,
      );
    }
    const registry = v.slice(0, i).toLowerCase();
    out[registry] = [...(out[registry] ?? []), v.slice(i + 1)];
  }
  return out;
}

const CACHE_REASONS = {
  EEXIST: 'it is a file, not a folder',
  EACCES: 'permission denied (the cache must be writable)',
  EPERM: 'permission denied (the cache must be writable)',
};

export function cacheFolder(flags: EngineFlags): string {
  return flags.cache ?? defaultCacheDir();
}

/** The cache folder, explained: a file-system error about it names it as the cache. */
function cacheDir(flags: EngineFlags): string {
  const dir = cacheFolder(flags);
  explainPath(dir, `cannot use ${dir} as the cache`, CACHE_REASONS);
  return dir;
}

/** The cache, created when missing (pull, import, push). */
export async function openStore(flags: EngineFlags): Promise<Store> {
  return Store.open(cacheDir(flags));
}

/**
 * The cache for commands that only read or shrink it (ls, inspect, rm, gc, export): undefined when
 * there is none yet. Never creates one: a mistyped --cache must not turn a folder into a cache.
 */
export async function openExistingStore(flags: EngineFlags): Promise<Store | undefined> {
  const dir = cacheDir(flags);
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR' && (await stat(dir)).isFile()) {
      throw new FileError(`cannot use ${dir} as the cache: it is a file, not a folder`);
    }
    throw e;
  }
  if (entries.includes('oci-layout')) return Store.open(dir);
  if (entries.length === 0) return undefined;
  throw new FileError(
    `${dir} is not a Stowage cache (no oci-layout file); pass the cache folder with --cache`,
  );
}

/** The CA files' contents; one without a PEM certificate would be ignored by TLS: a usage error. */
async function readCaFiles(files: readonly string[]): Promise<Buffer[]> {
  return Promise.all(
    files.map(async (f) => {
      const pem = await readFile(f).catch((e: Error) => {
        throw new StowageError('USAGE', `Cannot read CA file ${f}: ${e.message}`);
      });
      if (!pem.includes('-----BEGIN CERTIFICATE-----')) {
        throw new StowageError('USAGE', `--ca-file ${f} holds no PEM certificate`);
      }
      return pem;
    }),
  );
}

/** A registry client configured from flags and the environment (docker's config.json for credentials). */
export async function createClient(
  flags: EngineFlags,
  /** Default: docker's config.json (and its credential helpers). */
  credentials: CredentialSource = chainCredentials(new DockerConfigCredentials()),
): Promise<RegistryClient> {
  const caCertificates = await readCaFiles(flags['ca-file'] ?? []);
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
    onRetry: logRetry,
  });
}

/** Always shown: a registry that is slow to answer must not look like a hung command. */
function logRetry(r: RetryNotice): void {
  const { host } = new URL(r.url);
  const wait = r.delayMs >= 1000 ? ` in ${Math.round(r.delayMs / 1000)} s` : '';
  process.stderr.write(
    `stowage: ${host}: ${describeReason(r.reason)}; trying again${wait} (attempt ${r.attempt} of ${r.attempts})\n`,
  );
}

function logRequest(r: RequestLog): void {
  const what = r.error ? `error ${r.error}` : `${r.status} ${r.bytes ?? 0}B`;
  process.stderr.write(
    `stowage: ${r.method} ${r.url} → ${what} (${r.ms} ms${r.reused ? ', pooled connection' : ''})\n`,
  );
}
