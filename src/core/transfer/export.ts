import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Digest, parseDigest } from '../digest';
import { isStowageError, pullCommand, StowageError, throwIfAborted } from '../errors';
import { closestPlatform, formatPlatform, hostPlatform, normalizePlatform } from '../platform';
import { formatReference, parseReference } from '../reference';
import {
  type Descriptor,
  type ImageManifest,
  isAttestation,
  isIndexMediaType,
  MediaType,
  REF_NAME_ANNOTATION,
  readManifest,
  resolveCached,
  type Store,
  walkImage,
} from '../store';
import { type HeldImage, holdBlobs, removedMeanwhile } from './hold';
import { BLOCK, END_OF_ARCHIVE, entryHeader, padding } from './tar';

/** The full image name containerd (and docker save) writes beside ref.name, which may be a tag. */
export const CONTAINERD_NAME_ANNOTATION = 'io.containerd.image.name';

export interface TransferProgress {
  bytesDone: number;
  bytesTotal: number;
  blobsDone: number;
  blobsTotal: number;
}

export interface ExportOptions {
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgress) => void;
}

export interface ExportedImage {
  /** The name written to the archive's index.json (the cache's normalised reference). */
  name: string;
  digest: Digest;
  mediaType: string;
  /** Platforms whose manifest, config and layers are all in the archive. */
  platforms: string[];
  /** Platforms the image's index lists but the cache does not hold completely (left out). */
  missingPlatforms: string[];
  /**
   * The platform `docker load` takes (manifest.json names one image per name: this machine's
   * platform when it is there, else the first); absent when the image is not one docker loads.
   */
  dockerPlatform?: string;
}

export interface ExportResult {
  images: ExportedImage[];
  /** Distinct blobs written. */
  blobs: number;
  /** Bytes of blob data written (the archive adds headers and padding). */
  blobBytes: number;
  /** Size of the whole archive. */
  archiveBytes: number;
}

/** An image as docker load (and skopeo's docker-archive:) reads it from manifest.json. */
interface DockerEntry {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

interface Plan {
  images: ExportedImage[];
  entries: { name: string; descriptor: Descriptor }[];
  blobs: Descriptor[];
  held: HeldImage[];
  docker: DockerEntry[];
}

/** Configs docker load takes: an image's (not an artifact's, such as a Helm chart). */
const IMAGE_CONFIGS: readonly string[] = [MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG];

/**
 * Decides what an archive of `inputs` holds: each reference's top descriptor, the indexes under
 * it, and every platform image the cache holds completely. A multi-platform index is kept as is
 * (its digest is the image's identity); platforms not cached are left out, which the OCI layout
 * spec allows ("blobs MAY be missing"). A reference with no complete platform is refused.
 */
export async function planExport(store: Store, inputs: readonly string[]): Promise<Plan> {
  const images: ExportedImage[] = [];
  const entries: Plan['entries'] = [];
  const blobs = new Map<Digest, Descriptor>();
  const held: HeldImage[] = [];
  const docker: DockerEntry[] = [];
  for (const input of inputs) {
    const { name, descriptor } = await resolveCached(store, input);
    if (entries.some((e) => e.name === name)) continue;
    const image = { name, input, descriptor };
    const chosen: Descriptor[] = [];
    const platforms: string[] = [];
    const missingPlatforms: string[] = [];
    const runnable: { manifest: Descriptor; doc: ImageManifest; label: string }[] = [];
    let walk: Awaited<ReturnType<typeof walkImage>>;
    try {
      walk = await walkImage(store, descriptor);
      const missing = new Set(walk.missing.map((d) => d.digest));
      // Indexes (top and nested) that are present are always kept.
      for (const b of walk.blobs) {
        if (isIndexMediaType(b.mediaType) && !missing.has(b.digest)) chosen.push(b);
      }
      for (const m of walk.manifests) {
        const doc = await readManifest(store, m);
        if (doc.kind !== 'manifest') continue;
        const label = m.platform ? formatPlatform(normalizePlatform(m.platform)) : 'single-platform';
        const parts = [doc.config, ...doc.layers];
        // Attestations (buildx provenance, SBOM) go along when cached, but are no platform.
        const attestation = isAttestation(m);
        if (parts.some((p) => missing.has(p.digest))) {
          if (!attestation) missingPlatforms.push(label);
          continue;
        }
        chosen.push(m, ...parts);
        if (attestation) continue;
        platforms.push(label);
        runnable.push({ manifest: m, doc, label });
      }
    } catch (e) {
      // A manifest gone while it was read: a gc after an rm of the image, most likely.
      if (isStowageError(e, 'NOT_CACHED')) throw (await removedMeanwhile(store, [image], 'exported')) ?? e;
      throw e;
    }
    // Index entries never pulled at all (walk marks them missing).
    for (const d of walk.missing) {
      if (
        d.platform &&
        !isAttestation(d) &&
        !isIndexMediaType(d.mediaType) &&
        walk.manifests.every((m) => m.digest !== d.digest)
      ) {
        missingPlatforms.push(formatPlatform(normalizePlatform(d.platform)));
      }
    }
    if (platforms.length === 0) {
      throw new StowageError(
        'NOT_CACHED',
        `${name} is only partly cached: no platform has all its layers, so there is nothing to export.`,
        `Pull it again (${pullCommand(input)}) and retry.`,
      );
    }
    for (const d of chosen) if (!blobs.has(d.digest)) blobs.set(d.digest, d);
    entries.push({ name, descriptor });
    held.push(image);
    const forDocker = closestPlatform(hostPlatform(), runnable, (r) => r.manifest.platform) ?? runnable[0];
    if (forDocker && IMAGE_CONFIGS.includes(forDocker.doc.config.mediaType)) {
      docker.push({
        Config: blobEntryName(forDocker.doc.config.digest),
        RepoTags: dockerTags(name),
        Layers: forDocker.doc.layers.map((l) => blobEntryName(l.digest)),
      });
    }
    images.push({
      name,
      digest: descriptor.digest,
      mediaType: descriptor.mediaType,
      platforms,
      missingPlatforms: [...new Set(missingPlatforms)],
      ...(forDocker && IMAGE_CONFIGS.includes(forDocker.doc.config.mediaType)
        ? { dockerPlatform: forDocker.label }
        : {}),
    });
  }
  return { images, entries, blobs: [...blobs.values()], held, docker };
}

/**
 * The tag docker load gives the image: the name, when it has a tag of its own and no digest
 * (docker's rule: a verbatim imported `v9` would read as docker.io/library/v9, untagged).
 */
function dockerTags(name: string): string[] {
  try {
    const ref = parseReference(name);
    if (!ref.tag || ref.digest || !name.endsWith(`:${ref.tag}`)) return [];
    return [formatReference({ registry: ref.registry, repository: ref.repository, tag: ref.tag })];
  } catch {
    return []; // a verbatim imported name (no reference): docker load leaves it untagged
  }
}

/** The full name containerd (docker with the containerd store, ctr import) reads, when it is one. */
function containerdName(name: string): string | undefined {
  try {
    return formatReference(parseReference(name)) === name ? name : undefined;
  } catch {
    return undefined;
  }
}

function indexJson(entries: Plan['entries']): Buffer {
  const manifests = entries.map(({ name, descriptor }) => {
    const full = containerdName(name);
    return {
      mediaType: descriptor.mediaType,
      digest: descriptor.digest,
      size: descriptor.size,
      ...(descriptor.platform ? { platform: descriptor.platform } : {}),
      annotations: {
        ...(descriptor.annotations ?? {}),
        ...(full ? { [CONTAINERD_NAME_ANNOTATION]: full } : {}),
        [REF_NAME_ANNOTATION]: name,
      },
    };
  });
  return Buffer.from(`${JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests })}\n`);
}

function blobEntryName(digest: Digest): string {
  const { algorithm, hex } = parseDigest(digest);
  return `blobs/${algorithm}/${hex}`;
}

/** The size of the archive `plan` produces (headers, data, padding, end blocks). */
function archiveSize(plan: Plan, index: Buffer, layout: Buffer, docker: Buffer | undefined): number {
  let n = 0;
  const file = (name: string, size: number) => {
    n += entryHeader(name, size).length + size + padding(size).length;
  };
  n += BLOCK * 2; // blobs/ and blobs/<alg>/ directories (one algorithm in practice; adjusted below)
  file('oci-layout', layout.length);
  file('index.json', index.length);
  if (docker) file('manifest.json', docker.length);
  const algorithms = new Set(plan.blobs.map((b) => parseDigest(b.digest).algorithm));
  n += BLOCK * Math.max(0, algorithms.size - 1);
  for (const b of plan.blobs) file(blobEntryName(b.digest), b.size);
  return n + END_OF_ARCHIVE.length;
}

/**
 * Writes an OCI image layout as a tar (what `skopeo copy oci-archive:FILE:REF` reads): `oci-layout`,
 * `index.json` naming exactly the given references, then their blobs, parents before children.
 * Blobs are streamed from the cache and re-hashed on the way (a damaged cache fails the export
 * instead of producing an archive that import would reject). A path output is written to a temp
 * file and renamed into place only when complete.
 */
export async function exportImages(
  store: Store,
  names: readonly string[],
  out: string | Writable,
  options: ExportOptions = {},
): Promise<ExportResult> {
  const { signal, onProgress } = options;
  if (names.length === 0) throw new StowageError('USAGE', 'Name at least one cached image to export.');
  const plan = await planExport(store, names);
  const layout = Buffer.from(`${JSON.stringify({ imageLayoutVersion: '1.0.0' })}\n`);
  const index = indexJson(plan.entries);
  const docker = plan.docker.length ? Buffer.from(`${JSON.stringify(plan.docker)}\n`) : undefined;
  const progress: TransferProgress = {
    bytesDone: 0,
    bytesTotal: plan.blobs.reduce((n, b) => n + b.size, 0),
    blobsDone: 0,
    blobsTotal: plan.blobs.length,
  };
  // Sizes are taken now: the header must be right before the data is read.
  const checkSizes = async () => {
    for (const b of plan.blobs) {
      const size = await store.blobSize(b.digest);
      if (size === b.size) continue;
      if (size !== undefined && !(await store.verifyBlob(b.digest)))
        throw await store.discardCorrupt(b.digest);
      if (size !== undefined) {
        throw new StowageError(
          'MANIFEST_INVALID',
          `Cached blob ${b.digest} is ${size} bytes, but its manifest says ${b.size}.`,
          'The manifest is inconsistent with its content; ask the image publisher to fix it.',
        );
      }
      throw (await removedMeanwhile(store, plan.held, 'exported')) ?? missingBlob(b.digest);
    }
  };

  async function* archive(): AsyncGenerator<Buffer> {
    yield entryHeader('blobs/', 0, '5');
    const algorithms = [...new Set(plan.blobs.map((b) => parseDigest(b.digest).algorithm))];
    for (const a of algorithms.length ? algorithms : ['sha256']) yield entryHeader(`blobs/${a}/`, 0, '5');
    yield entryHeader('oci-layout', layout.length);
    yield Buffer.concat([layout, padding(layout.length)]);
    yield entryHeader('index.json', index.length);
    yield Buffer.concat([index, padding(index.length)]);
    if (docker) {
      yield entryHeader('manifest.json', docker.length);
      yield Buffer.concat([docker, padding(docker.length)]);
    }
    let lastReport = 0;
    for (const b of plan.blobs) {
      throwIfAborted(signal);
      yield entryHeader(blobEntryName(b.digest), b.size);
      const { algorithm, hex } = parseDigest(b.digest);
      const hash = createHash(algorithm);
      let read = 0;
      try {
        for await (const chunk of createReadStream(store.blobPath(b.digest), { highWaterMark: 1 << 20 })) {
          const c = chunk as Buffer;
          read += c.length;
          if (read > b.size) break;
          hash.update(c);
          progress.bytesDone += c.length;
          const now = Date.now();
          if (onProgress && now - lastReport >= 100) {
            lastReport = now;
            onProgress({ ...progress });
          }
          yield c;
        }
      } catch (e) {
        // Deleted by hand since the size check (gc keeps off leased blobs).
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw missingBlob(b.digest);
        throw e;
      }
      if (read !== b.size || hash.digest('hex') !== hex) {
        const e = await store.discardCorrupt(b.digest);
        e.message = `${e.message} The export was stopped.`;
        throw e;
      }
      yield padding(b.size);
      progress.blobsDone++;
      onProgress?.({ ...progress });
    }
    yield END_OF_ARCHIVE;
  }

  const result: ExportResult = {
    images: plan.images,
    blobs: plan.blobs.length,
    blobBytes: progress.bytesTotal,
    archiveBytes: archiveSize(plan, index, layout, docker),
  };
  // Held from now until the archive is written: a gc meanwhile leaves these blobs alone.
  const lease = await holdBlobs(
    store,
    plan.blobs.map((b) => b.digest),
  );
  try {
    await checkSizes();
    if (typeof out !== 'string') {
      await pipeline(Readable.from(archive()), out, { signal });
      return result;
    }
    const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.partial`);
    try {
      await pipeline(Readable.from(archive()), createWriteStream(tmp, { flags: 'wx', mode: 0o644 }), {
        signal,
      });
      const fh = await fs.open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await fs.rename(tmp, out);
    } catch (e) {
      await fs.rm(tmp, { force: true });
      if (signal?.aborted) throwIfAborted(signal);
      throw e;
    }
    return result;
  } finally {
    await lease.release();
  }
}

function missingBlob(digest: Digest): StowageError {
  return new StowageError(
    'CACHE_CORRUPT',
    `Cached blob ${digest} is missing.`,
    'Pull the image again to repair the cache.',
  );
}
