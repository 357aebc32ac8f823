import type { Digest } from '../digest';
import { StowageError, throwIfAborted } from '../errors';
import { forEachLimit } from '../limit';
import { formatPlatform, hostPlatform, normalizePlatform, type Platform } from '../platform';
import { formatReference, parsePullableReference, type Reference } from '../reference';
import type { RegistryClient } from '../registry/client';
import {
  availablePlatforms,
  configPlatform,
  type Descriptor,
  isAttestation,
  isIndexMediaType,
  isJsonDocumentMediaType,
  type ManifestDocument,
  parseManifest,
  REF_NAME_ANNOTATION,
  readManifest,
  type Store,
  selectManifests,
  walkImage,
} from '../store';
import { fetchBlob, Splitter } from './fetch';

export interface PullOptions {
  /** Platforms to keep from a multi-platform image. Default: the host's. */
  platforms?: readonly Platform[];
  /** Keep every platform the index offers. */
  allPlatforms?: boolean;
  /** Contact the registry even when the cache holds everything. */
  alwaysPull?: boolean;
  signal?: AbortSignal;
  onEvent?: (event: PullEvent) => void;
  /** Blobs downloaded at once. Default 4. */
  concurrency?: number;
  /** Attempts per blob when a transfer breaks off (each resumes where the last stopped). Default 5. */
  blobAttempts?: number;
}

export interface PullProgress {
  bytesDone: number;
  bytesTotal: number;
  blobsDone: number;
  blobsTotal: number;
  layersDone: number;
  layersTotal: number;
}

export type PullEvent =
  | { type: 'resolved'; reference: string; digest: Digest; mediaType: string; platforms: string[] }
  | {
      type: 'blob';
      digest: Digest;
      size: number;
      kind: 'config' | 'layer';
      state: 'cached' | 'start' | 'done';
      offset?: number;
    }
  | ({ type: 'progress' } & PullProgress);

export interface PullResult {
  /** The name recorded in the cache (fully normalised). */
  reference: string;
  digest: Digest;
  mediaType: string;
  /** Platforms now complete in the cache (os/arch[/variant]). */
  platforms: string[];
  /** True when the cache already held everything and no request was made. */
  fromCache: boolean;
  blobsDownloaded: number;
  bytesDownloaded: number;
  /** Bytes of the image's blobs (configs and layers) for the selected platforms. */
  totalBytes: number;
}

interface Needed {
  descriptor: Descriptor;
  kind: 'config' | 'layer';
}

const MAX_DEPTH = 4;

/**
 * The one pull pipeline: resolve → check the cache (no network when complete) → fetch the
 * manifest → keep the wanted platforms → download missing blobs (verified) → commit → record.
 */
export async function pull(
  store: Store,
  client: RegistryClient,
  input: string | Reference,
  options: PullOptions = {},
): Promise<PullResult> {
  const ref = typeof input === 'string' ? parsePullableReference(input) : input;
  const name = formatReference(ref);
  const platforms = options.platforms?.length ? options.platforms : [hostPlatform()];
  const signal = options.signal;
  const emit = options.onEvent ?? (() => {});
  throwIfAborted(signal);

  if (!options.alwaysPull) {
    const cached = await fromCache(store, ref, name, platforms, options.allPlatforms);
    if (cached) return cached;
  }

  // Resolve: by digest when given; else a HEAD for the tag (cheap, spares rate-limit quota).
  // Not in the cache: the manifest and blob GETs will want connections, opened meanwhile.
  const warm = options.concurrency ?? 4;
  let top: Descriptor | undefined;
  if (ref.digest) top = { mediaType: '', digest: ref.digest, size: 0 };
  else {
    const head = await client.head(ref, signal, warm);
    if (head && (await store.has(head.digest, head.size))) top = { ...head };
  }
  const first = top
    ? await manifestFor(store, client, ref, top, signal, warm)
    : await client
        .manifest(ref, signal, undefined, warm)
        .then((m) => ({ bytes: m.bytes, document: m.document, digest: m.digest }));
  top = { mediaType: first.document.mediaType, digest: first.digest, size: first.bytes.length };

  // Walk index → manifests for the wanted platforms → config and layers.
  const manifests: { descriptor: Descriptor; bytes: Buffer }[] = [{ descriptor: top, bytes: first.bytes }];
  const needed: Needed[] = [];
  const kept: string[] = [];
  /** Image manifests chosen (some carry no platform). */
  let selected = 0;
  /** What the index and the indexes nested in it offer, for the error when nothing matches. */
  const offered: string[] = [];
  const wanted = options.allPlatforms ? undefined : platforms;
  const visit = async (descriptor: Descriptor, doc: ManifestDocument, depth: number, path: Set<string>) => {
    if (depth > MAX_DEPTH) {
      throw new StowageError(
        'MANIFEST_INVALID',
        `The index of ${name} nests more than ${MAX_DEPTH} levels deep.`,
      );
    }
    if (doc.kind === 'manifest') {
      selected++;
      if (descriptor.platform && !isAttestation(descriptor)) {
        kept.push(formatPlatform(normalizePlatform(descriptor.platform)));
      }
      needed.push({ descriptor: doc.config, kind: 'config' });
      for (const layer of doc.layers) needed.push({ descriptor: layer, kind: 'layer' });
      return;
    }
    offered.push(...availablePlatforms(doc));
    for (const entry of selectManifests(doc, wanted)) {
      if (path.has(entry.digest)) {
        throw new StowageError(
          'MANIFEST_INVALID',
          `The index of ${name} refers to itself (${entry.digest}).`,
        );
      }
      const child = await manifestFor(store, client, ref, entry, signal, warm);
      manifests.push({ descriptor: entry, bytes: child.bytes });
      await visit(entry, child.document, depth + 1, new Set([...path, entry.digest]));
    }
  };
  await visit(top, first.document, 0, new Set([top.digest]));
  if (first.document.kind === 'index' && selected === 0) {
    throw new StowageError(
      'NO_MATCHING_PLATFORM',
      `${name} has no image for ${platforms.map(formatPlatform).join(', ')}; it offers ${[...new Set(offered)].join(', ') || 'no platforms'}.`,
      'Choose one of the offered platforms (stowage.platforms / --platform).',
    );
  }
  emit({ type: 'resolved', reference: name, digest: top.digest, mediaType: top.mediaType, platforms: kept });

  // Download what is missing, a few at a time.
  const unique = dedupe(needed);
  const progress: PullProgress = {
    bytesDone: 0,
    bytesTotal: unique.reduce((n, b) => n + b.descriptor.size, 0),
    blobsDone: 0,
    blobsTotal: unique.length,
    layersDone: 0,
    layersTotal: unique.filter((b) => b.kind === 'layer').length,
  };
  let lastEmit = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (force || now - lastEmit >= 100) {
      lastEmit = now;
      emit({ type: 'progress', ...progress });
    }
  };
  let blobsDownloaded = 0;
  let bytesDownloaded = 0;
  // Committed blobs stay safe from a concurrent gc until the reference names them.
  const lease = await store.lease([
    ...unique.map((b) => b.descriptor.digest),
    ...manifests.map((m) => m.descriptor.digest),
  ]);
  try {
    // Slots left without a blob help with the large ones still coming (see fetch.ts).
    const splitter = new Splitter();
    const fetchOne = async (b: Needed, blobSignal: AbortSignal) => {
      const { digest, size } = b.descriptor;
      let held = 0;
      const fetched = await fetchBlob(store, client, ref, b.descriptor, {
        signal: blobSignal,
        attempts: options.blobAttempts ?? 5,
        splitter,
        onStart: (offset) => emit({ type: 'blob', digest, size, kind: b.kind, state: 'start', offset }),
        onHeld: (bytes, downloaded) => {
          progress.bytesDone += bytes - held;
          bytesDownloaded += downloaded;
          held = bytes;
          report();
        },
      });
      if (fetched) blobsDownloaded++;
      progress.blobsDone++;
      if (b.kind === 'layer') progress.layersDone++;
      emit({ type: 'blob', digest, size, kind: b.kind, state: fetched ? 'done' : 'cached' });
      report(true);
    };
    await forEachLimit(unique, options.concurrency ?? 4, signal, fetchOne, (slotSignal) =>
      splitter.help(slotSignal),
    );

    // Commit manifests bottom-up, then the reference: it never points at something missing.
    for (const m of [...manifests].reverse()) await store.putBlob(m.bytes, m.descriptor.digest);
    throwIfAborted(signal);
    await store.setReference(name, {
      mediaType: top.mediaType,
      digest: top.digest,
      size: top.size,
      annotations: { [REF_NAME_ANNOTATION]: name },
    });
  } finally {
    await lease.release();
  }
  return {
    reference: name,
    digest: top.digest,
    mediaType: top.mediaType,
    platforms: await reportedPlatforms(store, first.document, kept, platforms),
    fromCache: false,
    blobsDownloaded,
    bytesDownloaded,
    totalBytes: progress.bytesTotal,
  };
}

/** The LinuxKit check: the reference and every blob the platforms need are present → no network. */
async function fromCache(
  store: Store,
  ref: Reference,
  name: string,
  platforms: readonly Platform[],
  allPlatforms: boolean | undefined,
): Promise<PullResult | undefined> {
  const recorded = await store.getReference(name);
  let descriptor = recorded;
  if (!descriptor && ref.digest && (await store.has(ref.digest))) {
    descriptor = (await store.listReferences()).find((r) => r.descriptor.digest === ref.digest)?.descriptor;
  }
  if (!descriptor) return undefined;
  try {
    const selection = allPlatforms ? {} : { platforms };
    const walk = await walkImage(store, descriptor, selection);
    if (walk.missing.length > 0) return undefined;
    // The walk selects as the download does (selectManifests), and nothing it chose is missing;
    // an index must still have had something for the wanted platforms.
    if (isIndexMediaType(descriptor.mediaType) && !allPlatforms && walk.manifests.length === 0) {
      return undefined;
    }
    if (ref.digest && descriptor.digest !== ref.digest) return undefined;
    if (!recorded) {
      // Named after another reference's blobs: a gc (after an rm of that name) must not take them
      // before this name holds them. Leased, then checked again: gone meanwhile → pull.
      const lease = await store.lease(walk.blobs.map((b) => b.digest));
      try {
        if ((await walkImage(store, descriptor, selection)).missing.length > 0) return undefined;
        await store.setReference(name, { ...descriptor, annotations: { [REF_NAME_ANNOTATION]: name } });
      } finally {
        await lease.release();
      }
    }
    const single =
      walk.platforms.length || isIndexMediaType(descriptor.mediaType)
        ? undefined
        : await readManifest(store, descriptor);
    return {
      reference: name,
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      platforms: await reportedPlatforms(store, single, walk.platforms, platforms),
      fromCache: true,
      blobsDownloaded: 0,
      bytesDownloaded: 0,
      totalBytes: walk.blobs
        .filter((b) => !isJsonDocumentMediaType(b.mediaType))
        .reduce((n, b) => n + b.size, 0),
    };
  } catch {
    // A damaged or partial cache entry: pull again.
    return undefined;
  }
}

/**
 * The platforms a result reports: those kept from an index; else the one a single manifest's
 * config declares (an arm64-only image is arm64, whatever was asked for); else those asked for.
 */
async function reportedPlatforms(
  store: Store,
  doc: ManifestDocument | undefined,
  kept: string[],
  wanted: readonly Platform[],
): Promise<string[]> {
  if (kept.length) return kept;
  const own = doc?.kind === 'manifest' ? await configPlatform(store, doc.config) : undefined;
  return own ? [own] : wanted.map(formatPlatform);
}

/** A manifest, from the cache when present (verified there), else from the registry (verified). */
async function manifestFor(
  store: Store,
  client: RegistryClient,
  ref: Reference,
  descriptor: Descriptor,
  signal: AbortSignal | undefined,
  warm: number,
): Promise<{ bytes: Buffer; document: ManifestDocument; digest: Digest }> {
  const what = `Manifest ${descriptor.digest} of ${formatReference(ref)}`;
  if (await store.has(descriptor.digest)) {
    try {
      const bytes = await store.readBlob(descriptor.digest, client.maxManifestBytes);
      return {
        bytes,
        document: parseManifest(bytes, descriptor.mediaType || undefined, what),
        digest: descriptor.digest,
      };
    } catch {
      // Damaged in the cache: fetch it again.
    }
  }
  const m = await client.manifest(ref, signal, descriptor.digest, warm);
  if (descriptor.size && m.size !== descriptor.size) {
    throw new StowageError('SIZE_MISMATCH', `${what} is ${m.size} bytes; its index says ${descriptor.size}.`);
  }
  return { bytes: m.bytes, document: m.document, digest: m.digest };
}

function dedupe(needed: Needed[]): Needed[] {
  const seen = new Set<string>();
  return needed.filter((n) => {
    if (seen.has(n.descriptor.digest)) return false;
    seen.add(n.descriptor.digest);
    return true;
  });
}
