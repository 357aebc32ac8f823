import type { Digest } from '../digest';
import { StowageError } from '../errors';
import { closestPlatform, formatPlatform, normalizePlatform, type Platform } from '../platform';
import {
  type Descriptor,
  type ImageManifest,
  MAX_JSON_BLOB,
  type ManifestDocument,
  parseManifest,
} from './manifest';
import { DOCKER_REFERENCE_TYPE_ANNOTATION, isIndexMediaType, isJsonDocumentMediaType } from './media-types';
import type { Store } from './store';

/** Nested indexes deeper than this are refused (real images use one level, rarely two). */
const MAX_DEPTH = 8;

export interface WalkResult {
  /** Every blob the image needs for the wanted platforms, the top descriptor first. */
  blobs: Descriptor[];
  /** The subset of `blobs` not in the store. Children of a missing manifest are unknown. */
  missing: Descriptor[];
  /** The image manifests selected (with the platform their index gave them). */
  manifests: Descriptor[];
  /** Platforms of the selected manifests as os/arch[/variant] (from their index entries). */
  platforms: string[];
  /** Wanted platforms the top-level index has no entry for (empty for a single manifest). */
  unmatchedPlatforms: Platform[];
}

/** Reads, verifies and validates a manifest or index blob from the store. */
export async function readManifest(store: Store, descriptor: Descriptor): Promise<ManifestDocument> {
  const bytes = await store.readBlob(descriptor.digest, MAX_JSON_BLOB);
  return parseManifest(bytes, descriptor.mediaType, `Manifest ${descriptor.digest}`);
}

/** True for index entries that are attestations (buildx provenance/SBOM), not runnable images. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[DOCKER_REFERENCE_TYPE_ANNOTATION] === 'attestation-manifest';
}

/**
 * The index entries to use for the wanted platforms: for each, the entry that serves it best
 * (closestPlatform; containerd's order on a tie: the first listed). An index whose entries carry
 * no platform at all gives its first entry (as skopeo does). With no platforms given: every entry,
 * attestations included, so that the copy is complete (skopeo --all). Nested indexes are always
 * followed.
 */
export function selectManifests(
  index: { manifests: Descriptor[] },
  platforms?: readonly Platform[],
): Descriptor[] {
  const nested = index.manifests.filter((m) => isIndexMediaType(m.mediaType));
  if (!platforms || platforms.length === 0) return [...index.manifests];
  const out: Descriptor[] = [];
  for (const wanted of platforms) {
    const hit = entryFor(index, wanted);
    if (hit && !out.includes(hit)) out.push(hit);
  }
  return [...out, ...nested];
}

/** The entry of an index for one wanted platform (see selectManifests). */
function entryFor(index: { manifests: Descriptor[] }, wanted: Platform): Descriptor | undefined {
  const runnable = index.manifests.filter((m) => !isIndexMediaType(m.mediaType) && !isAttestation(m));
  if (runnable.length > 0 && runnable.every((m) => !m.platform)) return runnable[0];
  // On a tie the first listed, as docker and containerd take it.
  return closestPlatform(wanted, runnable, (m) => m.platform);
}

/** Wanted platforms no entry of the index satisfies. */
export function unmatchedPlatforms(
  index: { manifests: Descriptor[] },
  platforms: readonly Platform[],
): Platform[] {
  return platforms.filter((w) => !entryFor(index, w));
}

/** NO_MATCHING_PLATFORM listing what the index offers. */
export function noMatchingPlatform(
  index: { manifests: Descriptor[] },
  platforms: readonly Platform[],
  what: string,
) {
  const available = availablePlatforms(index);
  return new StowageError(
    'NO_MATCHING_PLATFORM',
    `${what} has no image for ${platforms.map(formatPlatform).join(', ')}; it offers ${available.join(', ') || 'no platform information'}.`,
    'Choose one of the offered platforms (--platform os/arch[/variant]).',
  );
}

export function availablePlatforms(index: { manifests: Descriptor[] }): string[] {
  return index.manifests
    .filter((m) => m.platform && !isAttestation(m))
    .map((m) => formatPlatform(normalizePlatform(m.platform!)));
}

/**
 * The blobs a cached image needs: index → matching manifests → config + layers, following nested
 * indexes, reporting which are missing. Reads only what is in the store (no network).
 */
export async function walkImage(
  store: Store,
  descriptor: Descriptor,
  options: { platforms?: readonly Platform[] } = {},
): Promise<WalkResult> {
  const blobs: Descriptor[] = [];
  const missing: Descriptor[] = [];
  const manifests: Descriptor[] = [];
  const unmatched: Platform[] = [];
  const seen = new Set<Digest>();

  const add = async (d: Descriptor): Promise<boolean> => {
    if (seen.has(d.digest)) return false;
    seen.add(d.digest);
    blobs.push(d);
    if (!(await store.has(d.digest, d.size))) {
      missing.push(d);
      return false;
    }
    return true;
  };

  const visit = async (d: Descriptor, depth: number): Promise<void> => {
    if (depth > MAX_DEPTH) {
      throw new StowageError(
        'MANIFEST_INVALID',
        `Image index ${descriptor.digest} nests deeper than ${MAX_DEPTH} levels.`,
      );
    }
    if (!(await add(d)) || !isJsonDocumentMediaType(d.mediaType)) return;
    const doc = await readManifest(store, d);
    if (doc.kind === 'index') {
      if (depth === 0 && options.platforms) unmatched.push(...unmatchedPlatforms(doc, options.platforms));
      for (const m of selectManifests(doc, options.platforms)) await visit(m, depth + 1);
      return;
    }
    manifests.push(d);
    await add(doc.config);
    for (const layer of doc.layers) await add(layer);
  };

  await visit(descriptor, 0);
  const platforms = manifests
    .filter((m) => m.platform && !isAttestation(m))
    .map((m) => formatPlatform(normalizePlatform(m.platform!)));
  return { blobs, missing, manifests, platforms, unmatchedPlatforms: unmatched };
}

export interface ImageConfigSummary {
  digest: Digest;
  created?: string;
  os?: string;
  architecture?: string;
  variant?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  exposedPorts?: string[];
  labels?: Record<string, string>;
}

export interface PlatformInspection {
  manifestDigest: Digest;
  mediaType: string;
  /** From the index entry, else from the config. */
  platform?: Platform;
  /** Whether the manifest itself is cached (platforms not pulled are listed with false). */
  cached: boolean;
  config?: ImageConfigSummary;
  layers: { digest: Digest; size: number; mediaType: string; present: boolean }[];
  /** Config plus layers, as stored (compressed). */
  compressedSize: number;
  /** Manifest, config and every layer present. */
  complete: boolean;
}

export interface ImageInspection {
  name: string;
  digest: Digest;
  mediaType: string;
  size: number;
  platforms: PlatformInspection[];
  /** At least one platform is complete. */
  complete: boolean;
}

/** What the cache holds for a reference (no network). Undefined when the name is not cached. */
export async function inspectImage(
  store: Store,
  name: string,
  /** What `name` stands for, when already looked up (findCached): else its recorded reference. */
  descriptor?: Descriptor,
): Promise<ImageInspection | undefined> {
  const top = descriptor ?? (await store.getReference(name));
  if (!top) return undefined;
  const platforms: PlatformInspection[] = [];
  const visit = async (d: Descriptor, depth: number, platform?: Platform): Promise<void> => {
    const cached = await store.has(d.digest, d.size);
    if (!cached) {
      if (!isIndexMediaType(d.mediaType)) platforms.push(emptyPlatform(d, platform));
      return;
    }
    const doc = await readManifest(store, d);
    if (doc.kind === 'index') {
      if (depth >= MAX_DEPTH)
        throw new StowageError('MANIFEST_INVALID', `Image index ${d.digest} nests too deep.`);
      for (const m of doc.manifests) {
        if (isAttestation(m)) continue;
        await visit(m, depth + 1, m.platform ? normalizePlatform(m.platform) : undefined);
      }
      return;
    }
    platforms.push(await inspectManifest(store, d, doc, platform));
  };
  await visit(top, 0);
  return {
    name,
    digest: top.digest,
    mediaType: top.mediaType,
    size: top.size,
    platforms,
    complete: platforms.some((p) => p.complete),
  };
}

function emptyPlatform(d: Descriptor, platform?: Platform): PlatformInspection {
  return {
    manifestDigest: d.digest,
    mediaType: d.mediaType,
    ...(platform ? { platform } : {}),
    cached: false,
    layers: [],
    compressedSize: 0,
    complete: false,
  };
}

async function inspectManifest(
  store: Store,
  d: Descriptor,
  doc: ImageManifest,
  platform?: Platform,
): Promise<PlatformInspection> {
  const layers = [];
  for (const l of doc.layers) {
    layers.push({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      present: await store.has(l.digest, l.size),
    });
  }
  const configPresent = await store.has(doc.config.digest, doc.config.size);
  const config = configPresent ? await readConfig(store, doc.config) : undefined;
  const fromConfig =
    config?.os && config.architecture
      ? normalizePlatform({ os: config.os, architecture: config.architecture, variant: config.variant })
      : undefined;
  const p = platform ?? fromConfig;
  return {
    manifestDigest: d.digest,
    mediaType: d.mediaType,
    ...(p ? { platform: p } : {}),
    cached: true,
    ...(config ? { config } : {}),
    layers,
    compressedSize: doc.config.size + doc.layers.reduce((n, l) => n + l.size, 0),
    complete: configPresent && layers.every((l) => l.present),
  };
}

/** The platform an image's config declares (`os/arch[/variant]`), if it is cached and says. */
export async function configPlatform(store: Store, config: Descriptor): Promise<string | undefined> {
  const c = await readConfig(store, config).catch(() => undefined);
  if (!c?.os || !c.architecture) return undefined;
  return formatPlatform(normalizePlatform({ os: c.os, architecture: c.architecture, variant: c.variant }));
}

/** Summarises an image config defensively: fields of the wrong type are left out. */
export async function readConfig(store: Store, d: Descriptor): Promise<ImageConfigSummary> {
  const bytes = await store.readBlob(d.digest, MAX_JSON_BLOB);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new StowageError('MANIFEST_INVALID', `Image config ${d.digest} is not valid JSON.`);
  }
  return summariseConfig(d.digest, json);
}

export function summariseConfig(digest: Digest, json: unknown): ImageConfigSummary {
  const o = isObject(json) ? json : {};
  const c = isObject(o.config) ? o.config : {};
  const out: ImageConfigSummary = { digest };
  if (typeof o.created === 'string') out.created = o.created;
  if (typeof o.os === 'string') out.os = o.os;
  if (typeof o.architecture === 'string') out.architecture = o.architecture;
  if (typeof o.variant === 'string') out.variant = o.variant;
  const entrypoint = stringList(c.Entrypoint);
  if (entrypoint) out.entrypoint = entrypoint;
  const cmd = stringList(c.Cmd);
  if (cmd) out.cmd = cmd;
  const env = stringList(c.Env);
  if (env) out.env = env;
  if (typeof c.WorkingDir === 'string' && c.WorkingDir) out.workingDir = c.WorkingDir;
  if (typeof c.User === 'string' && c.User) out.user = c.User;
  if (isObject(c.ExposedPorts)) out.exposedPorts = Object.keys(c.ExposedPorts);
  if (isObject(c.Labels)) {
    out.labels = Object.fromEntries(
      Object.entries(c.Labels).filter((e): e is [string, string] => typeof e[1] === 'string'),
    );
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringList(v: unknown): string[] | undefined {
  return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;
}
