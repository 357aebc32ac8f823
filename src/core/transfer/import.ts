import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type Digest, parseDigest } from '../digest';
import { StowageError, throwIfAborted } from '../errors';
import { formatPlatform, normalizePlatform } from '../platform';
import {
  type Descriptor,
  type Ingest,
  isCacheName,
  isJsonDocumentMediaType,
  MAX_JSON_BLOB,
  type ManifestDocument,
  parseManifest,
  REF_NAME_ANNOTATION,
  type Store,
  validateDescriptor,
} from '../store';
import { tarBytes } from './compression';
import { CONTAINERD_NAME_ANNOTATION, type TransferProgress } from './export';
import { readTar } from './tar';

export interface ImportOptions {
  signal?: AbortSignal;
  /** Blob bytes and blobs read and verified so far (totals are unknown until the archive ends). */
  onProgress?: (progress: Pick<TransferProgress, 'bytesDone' | 'blobsDone'>) => void;
}

export interface ImportedImage {
  name: string;
  digest: Digest;
  mediaType: string;
  /** Platforms now complete in the cache from this archive. */
  platforms: string[];
  /** True when the name pointed at another digest before (it was replaced). */
  replaced: boolean;
}

export interface ImportResult {
  images: ImportedImage[];
  /** Blobs newly written to the cache. */
  blobsAdded: number;
  /** Blobs the cache already had (their archive copy was still verified). */
  blobsPresent: number;
  bytesAdded: number;
  /** index.json entries without a usable name (org.opencontainers.image.ref.name): not imported. */
  unnamed: number;
}

/** Blobs up to this size are held in memory until commit (manifests, configs). */
const SMALL_BLOB = 1024 * 1024;
/** …as long as they add up to no more than this; the rest are staged on disk. */
const SMALL_TOTAL = 64 * 1024 * 1024;

function tampered(why: string, hint = 'The archive is damaged or was altered; nothing was imported.') {
  return new StowageError('DIGEST_MISMATCH', `The archive was rejected: ${why}.`, hint);
}

function invalid(why: string) {
  return new StowageError(
    'MANIFEST_INVALID',
    `The archive is not a usable OCI image layout: ${why}.`,
    'Create it with stowage export or skopeo copy … oci-archive:FILE.tar:NAME; nothing was imported.',
  );
}

/** A blob read from the archive and verified against its name, not yet in the store. */
type Staged =
  | { kind: 'memory'; digest: Digest; bytes: Buffer }
  | { kind: 'ingest'; digest: Digest; size: number }
  | { kind: 'present'; digest: Digest; size: number };

/**
 * Imports an OCI layout tarball (stowage export, skopeo oci-archive) into the store, in three
 * phases so that a bad archive commits nothing:
 *  1. stream the tar: every blob is hashed against its name as it is read; big blobs go into the
 *     store's resumable ingest area (not yet committed), small ones stay in memory;
 *  2. verify the graph from index.json: every named reference, its indexes, manifests, configs and
 *     layers parse, and sizes match their descriptors;
 *  3. commit the blobs (children first, the store's ingest re-verifies each), then merge the
 *     references into the cache's index.json.
 * A failure before phase 3 discards what was staged.
 */
export async function importArchive(
  store: Store,
  source: string | AsyncIterable<Uint8Array>,
  options: ImportOptions = {},
): Promise<ImportResult> {
  const { signal, onProgress } = options;
  const staged = new Map<Digest, Staged>();
  let indexBytes: Buffer | undefined;
  let layoutSeen = false;
  let smallTotal = 0;
  let bytesDone = 0;
  let blobsDone = 0;
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (onProgress && (force || now - lastReport >= 100)) {
      lastReport = now;
      onProgress({ bytesDone, blobsDone });
    }
  };

  const input = tarBytes(
    typeof source === 'string' ? createReadStream(source, { highWaterMark: 1 << 20 }) : source,
  );
  /** A docker-archive's manifest.json, to say what the archive is when it has no OCI layout. */
  let dockerManifest: Buffer | undefined;

  let committed = false;
  try {
    for await (const entry of readTar(input)) {
      throwIfAborted(signal);
      if (entry.type !== '0' && entry.type !== '7') continue;
      if (entry.name === 'oci-layout') {
        const text = await collect(entry.body, 64 * 1024);
        let version: unknown;
        try {
          version = (JSON.parse(text.toString('utf8')) as { imageLayoutVersion?: unknown })
            .imageLayoutVersion;
        } catch {
          throw invalid('oci-layout is not JSON');
        }
        if (typeof version !== 'string' || !version.startsWith('1.')) {
          throw invalid(`unsupported imageLayoutVersion ${JSON.stringify(version)}`);
        }
        layoutSeen = true;
        continue;
      }
      if (entry.name === 'index.json') {
        indexBytes = await collect(entry.body, MAX_JSON_BLOB);
        continue;
      }
      if (entry.name === 'manifest.json') {
        dockerManifest = await collect(entry.body, MAX_JSON_BLOB);
        continue;
      }
      const m = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/.exec(entry.name);
      if (!m) continue;
      const digest = `${m[1]}:${m[2]}` as Digest;
      try {
        parseDigest(digest);
      } catch {
        throw invalid(`${entry.name} is not named by a valid digest`);
      }
      const { algorithm, hex } = parseDigest(digest);
      const hash = createHash(algorithm);
      const mismatch = () => tampered(`${entry.name} does not hash to its name`);
      if (staged.has(digest) || (await store.has(digest, entry.size))) {
        // Already have it: still check the archive's copy (a tampered archive is rejected whole).
        for await (const c of entry.body) {
          hash.update(c);
          bytesDone += c.length;
          report();
        }
        if (hash.digest('hex') !== hex) throw mismatch();
        if (!staged.has(digest)) staged.set(digest, { kind: 'present', digest, size: entry.size });
      } else if (entry.size <= SMALL_BLOB && smallTotal + entry.size <= SMALL_TOTAL) {
        const bytes = await collect(entry.body, SMALL_BLOB);
        bytesDone += bytes.length;
        if (createHash(algorithm).update(bytes).digest('hex') !== hex) throw mismatch();
        smallTotal += bytes.length;
        staged.set(digest, { kind: 'memory', digest, bytes });
      } else {
        const ingest = await store.ingest(digest, undefined, { signal });
        try {
          if (!ingest.present) {
            if (ingest.offset > 0) await ingest.truncate();
            staged.set(digest, { kind: 'ingest', digest, size: entry.size });
          }
          for await (const c of entry.body) {
            hash.update(c);
            if (!ingest.present) await ingest.write(c);
            bytesDone += c.length;
            report();
          }
          if (hash.digest('hex') !== hex) {
            if (!ingest.present) await ingest.truncate();
            throw mismatch();
          }
          if (ingest.present) staged.set(digest, { kind: 'present', digest, size: entry.size });
        } finally {
          // Keeps the verified data in the ingest area (uncommitted) and releases its lock.
          await ingest.close();
        }
      }
      blobsDone++;
      report(true);
    }

    if (!layoutSeen && !indexBytes && dockerManifest) {
      throw dockerArchive(typeof source === 'string' ? source : undefined, dockerManifest);
    }
    if (!layoutSeen) throw invalid('it has no oci-layout file');
    if (!indexBytes) throw invalid('it has no index.json');
    const { references, unnamed } = parseIndex(indexBytes);
    if (references.length === 0) throw invalid('its index.json names no image');

    // Phase 2: the graph of every reference, checked before anything is committed.
    const order: Descriptor[] = [];
    const images: Omit<ImportedImage, 'replaced'>[] = [];
    const documents = new Map<Digest, ManifestDocument>();
    const sizeOf = async (d: Digest): Promise<number | undefined> => {
      const s = staged.get(d);
      if (s) return s.kind === 'memory' ? s.bytes.length : s.size;
      return store.blobSize(d);
    };
    for (const { name, descriptor } of references) {
      const platforms: string[] = [];
      const visit = async (d: Descriptor, depth: number, path: readonly Digest[]): Promise<boolean> => {
        if (depth > 8 || path.includes(d.digest))
          throw invalid(`the index of ${name} nests too deep or loops`);
        const size = await sizeOf(d.digest);
        if (size === undefined) return false;
        if (size !== d.size) {
          throw tampered(`blob ${d.digest} of ${name} is ${size} bytes but its descriptor says ${d.size}`);
        }
        if (!isJsonDocumentMediaType(d.mediaType)) {
          order.push(d);
          return true;
        }
        let doc = documents.get(d.digest);
        if (!doc) {
          doc = parseManifest(
            await readStaged(store, staged.get(d.digest), d.digest),
            d.mediaType,
            `Manifest ${d.digest} of ${name}`,
          );
          documents.set(d.digest, doc);
        }
        if (doc.kind === 'index') {
          for (const child of doc.manifests) await visit(child, depth + 1, [...path, d.digest]);
          order.push(d);
          return true;
        }
        const parts = [doc.config, ...doc.layers];
        let complete = true;
        for (const p of parts) if (!(await visit(p, depth + 1, [...path, d.digest]))) complete = false;
        order.push(d);
        if (complete) {
          platforms.push(d.platform ? formatPlatform(normalizePlatform(d.platform)) : 'single-platform');
        }
        return true;
      };
      if (!(await visit(descriptor, 0, [])))
        throw invalid(`the blob ${descriptor.digest} that ${name} names is missing`);
      if (platforms.length === 0) throw invalid(`${name} has no platform with all its blobs in the archive`);
      images.push({ name, digest: descriptor.digest, mediaType: descriptor.mediaType, platforms });
    }

    // Phase 3: commit, children before parents (order is post-order), under a lease until named.
    const needed = [...new Set(order.map((d) => d.digest))];
    const lease = await store.lease(needed);
    let blobsAdded = 0;
    let bytesAdded = 0;
    let blobsPresent = 0;
    try {
      for (const digest of needed) {
        throwIfAborted(signal);
        const s = staged.get(digest);
        if (!s || s.kind === 'present') {
          // Found cached (while reading the archive, or not in it at all), not staged: a gc that
          // ran before our lease may have removed it since. Never record a reference to it then.
          if (!(await store.has(digest, s?.size))) {
            throw new StowageError(
              'CACHE_CORRUPT',
              `Blob ${digest} left the cache while the archive was imported (a concurrent stowage gc?); nothing was recorded.`,
              'Import the archive again.',
            );
          }
          blobsPresent++;
          continue;
        }
        if (s.kind === 'memory') {
          if (!(await store.has(digest, s.bytes.length))) {
            await store.putBlob(s.bytes, digest);
            blobsAdded++;
            bytesAdded += s.bytes.length;
          } else blobsPresent++;
          continue;
        }
        const ingest = await store.ingest(digest, s.size, { signal });
        try {
          if (ingest.present) {
            blobsPresent++;
            continue;
          }
          if (ingest.offset !== s.size) {
            throw new StowageError(
              'CACHE_CORRUPT',
              `The staged copy of ${digest} changed while importing (another process touched the cache?).`,
              'Import the archive again.',
            );
          }
          await ingest.commit();
          blobsAdded++;
          bytesAdded += s.size;
        } finally {
          await ingest.close();
        }
      }
      committed = true;
      // Staged blobs no named image uses (another tool's unnamed entries, stray files) go.
      const used = new Set<Digest>(needed);
      await discard(store, new Map([...staged].filter(([d]) => !used.has(d))));
      const before = new Map((await store.listReferences()).map((r) => [r.name, r.descriptor.digest]));
      const result: ImportedImage[] = [];
      for (const img of images) {
        const ref = references.find((r) => r.name === img.name)!;
        // Recorded as a pull records it: the name is ref.name in the cache's own index.
        const { [CONTAINERD_NAME_ANNOTATION]: _, ...annotations } = ref.descriptor.annotations ?? {};
        await store.setReference(img.name, { ...ref.descriptor, annotations });
        const prior = before.get(img.name);
        result.push({ ...img, replaced: prior !== undefined && prior !== img.digest });
      }
      report(true);
      return { images: result, blobsAdded, blobsPresent, bytesAdded, unnamed };
    } finally {
      await lease.release();
    }
  } finally {
    if (!committed) await discard(store, staged);
  }
}

/**
 * The name an index.json entry gives its image: containerd's full name where it is set (docker
 * save and ctr export put only the tag in ref.name there), else ref.name as written.
 */
const NAME_ANNOTATIONS = [CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION];

/** The named entries of an archive's index.json (last one wins for a repeated name). */
function parseIndex(bytes: Buffer): {
  references: { name: string; descriptor: Descriptor }[];
  unnamed: number;
} {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw invalid('index.json is not JSON');
  }
  const manifests = (json as { manifests?: unknown })?.manifests;
  if (!Array.isArray(manifests)) throw invalid('index.json has no manifests list');
  const byName = new Map<string, Descriptor>();
  let unnamed = 0;
  for (const [i, m] of manifests.entries()) {
    const descriptor = validateDescriptor(m, 'index.json', `entry ${i}`);
    // Not a name: blank, huge, or with control characters (a terminal would act on them when
    // the name is listed).
    const name = NAME_ANNOTATIONS.map((a) => descriptor.annotations?.[a]).find(isCacheName);
    if (!name) {
      unnamed++;
      continue;
    }
    byName.set(name, descriptor);
  }
  return { references: [...byName].map(([name, descriptor]) => ({ name, descriptor })), unnamed };
}

/** A docker-archive (manifest.json, no OCI layout): what it is and how to convert it. */
function dockerArchive(file: string | undefined, manifest: Buffer): StowageError {
  let tag: string | undefined;
  try {
    const first = (JSON.parse(manifest.toString('utf8')) as { RepoTags?: unknown[] }[])[0]?.RepoTags?.[0];
    if (typeof first === 'string' && /^[\w./:@-]{1,256}$/.test(first)) tag = first;
  } catch {
    // Named NAME in the hint.
  }
  const name = tag ?? 'NAME';
  return new StowageError(
    'MANIFEST_INVALID',
    'The archive is a docker-archive (docker save before Docker 25, or skopeo copy … docker-archive:), not an OCI image layout; Stowage imports OCI layout archives.',
    `Convert it: skopeo copy docker-archive:${file ?? 'FILE'} oci-archive:${file ? `${file.replace(/\.tar$/, '')}-oci.tar` : 'OUT.tar'}:${name}, then import that (Docker 25 and later save OCI layouts, which import as they are); nothing was imported.`,
  );
}

async function collect(body: AsyncIterable<Buffer>, cap: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += c.length;
    if (n > cap) throw invalid(`an entry is larger than ${cap} bytes where a small file was expected`);
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}

/** A manifest's bytes, from memory, the staged ingest data, or the store. */
async function readStaged(store: Store, s: Staged | undefined, digest: Digest): Promise<Buffer> {
  if (s?.kind === 'memory') return s.bytes;
  if (s?.kind === 'ingest') {
    if (s.size > MAX_JSON_BLOB) throw invalid(`manifest ${digest} is over ${MAX_JSON_BLOB} bytes`);
    const chunks: Buffer[] = [];
    for await (const c of createReadStream(`${store.ingestPath(digest)}/data`)) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }
  return store.readBlob(digest, MAX_JSON_BLOB);
}

/** Drops staged ingest data after a failed import. */
async function discard(store: Store, staged: Map<Digest, Staged>): Promise<void> {
  for (const s of staged.values()) {
    if (s.kind !== 'ingest') continue;
    let ingest: Ingest | undefined;
    try {
      ingest = await store.ingest(s.digest, undefined, { timeoutMs: 5_000 });
      if (!ingest.present) await ingest.truncate();
    } catch {
      // Someone else is using it: leave it to them (or gc).
    } finally {
      await ingest?.close().catch(() => {});
    }
  }
}
