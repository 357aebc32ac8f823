import { createReadStream } from 'node:fs';
import type { Digest } from '../digest';
import { isStowageError, pullCommand, StowageError, throwIfAborted } from '../errors';
import { forEachLimit } from '../limit';
import { formatPlatform, normalizePlatform, type Platform, platformMatches } from '../platform';
import { redactUserinfo } from '../redact';
import { formatReference, parseReference, type Reference } from '../reference';
import type { RegistryClient, RegistryRequest, RegistryResponse } from '../registry/client';
import { headerValue } from '../registry/response';
import {
  availablePlatforms,
  type Descriptor,
  inspectImage,
  isAttestation,
  isIndexMediaType,
  isJsonDocumentMediaType,
  MAX_JSON_BLOB,
  readManifest,
  resolveCached,
  type Store,
  selectManifests,
  type WalkResult,
  walkImage,
} from '../store';
import type { TransferProgress } from './export';
import { holdBlobs, removedMeanwhile } from './hold';

export interface PushOptions {
  /** Push only this platform's manifest of a multi-platform image (the destination gets its digest). */
  platform?: Platform;
  signal?: AbortSignal;
  onProgress?: (progress: TransferProgress) => void;
  /** Blobs larger than this go up in PATCH chunks of this size. Default 64 MiB. */
  chunkSize?: number;
  /** Blobs uploaded at once. Default 3. */
  concurrency?: number;
}

export interface PushResult {
  /** The cached name pushed. */
  source: string;
  /** The destination, fully normalised, with the digest pushed. */
  destination: string;
  digest: Digest;
  mediaType: string;
  platforms: string[];
  /** Blobs the destination already had. */
  existing: number;
  /** Blobs mounted from the source repository (same registry, no data sent). */
  mounted: number;
  uploaded: number;
  bytesUploaded: number;
  manifests: number;
}

const DEFAULT_CHUNK = 64 * 1024 * 1024;
/** Upload sessions per blob before a push gives up on it. */
const UPLOAD_ATTEMPTS = 3;

/** Failures worth a new upload session: the connection, the session gone, the server's fault. */
function restartable(e: unknown): boolean {
  if (!isStowageError(e)) return false;
  if (e.code === 'NETWORK' || e.code === 'STALLED') return true;
  const status = (e as { status?: number }).status;
  return status === 404 || status === 416 || (status !== undefined && status >= 500);
}

/** Bytes a session holds, from its status Range (`0-N`: N+1 bytes; Distribution says `0-0` for none). */
function uploadedBytes(range: string | undefined): number | undefined {
  const m = /^(?:bytes=)?0-(\d+)$/.exec(range?.trim() ?? '');
  if (!m) return undefined;
  const end = Number(m[1]);
  return end === 0 ? 0 : end + 1;
}

/**
 * Copies a cached image to a registry: blobs first (skipped when present, mounted across
 * repositories of the same registry, else uploaded in one PUT or in PATCH chunks), then the
 * manifests, children before the index, each by digest, and the tag last.
 */
export async function pushImage(
  store: Store,
  client: RegistryClient,
  sourceInput: string,
  destinationInput: string,
  options: PushOptions = {},
): Promise<PushResult> {
  const { name, descriptor: cached } = await resolveCached(store, sourceInput);
  parseReference(destinationInput); // a bad destination is refused before anything is held
  let source: Reference | undefined;
  try {
    source = parseReference(name);
  } catch {
    source = undefined; // a verbatim imported name: no mount source
  }

  // What to push: the whole image, or one platform's manifest of it.
  let top: Descriptor = cached;
  if (options.platform) {
    if (isIndexMediaType(cached.mediaType)) {
      const index = await readManifest(store, cached);
      if (index.kind !== 'index') throw new StowageError('MANIFEST_INVALID', `${name} is not an index.`);
      const hit = selectManifests(index, [options.platform]).find((m) => !isIndexMediaType(m.mediaType));
      if (!hit) {
        throw new StowageError(
          'NO_MATCHING_PLATFORM',
          `${name} has no image for ${formatPlatform(options.platform)}; it offers ${availablePlatforms(index).join(', ')}.`,
        );
      }
      top = hit;
    } else {
      // One image: it must be of that platform (docker push --platform refuses another too).
      const config = (await inspectImage(store, name, cached))?.platforms[0]?.config;
      const { os, architecture, variant } = config ?? {};
      const own = os && architecture ? normalizePlatform({ os, architecture, variant }) : undefined;
      if (own && !platformMatches(options.platform, own)) {
        throw new StowageError(
          'NO_MATCHING_PLATFORM',
          `${name} is a single-platform image for ${formatPlatform(own)}, not ${formatPlatform(options.platform)}.`,
          `Push it without --platform, or pull the image for ${formatPlatform(options.platform)} first.`,
        );
      }
    }
  }
  const walk = await walkImage(store, top).catch(async (e: unknown) => {
    // A manifest gone while it was read: a gc after an rm of the image, most likely.
    if (!isStowageError(e, 'NOT_CACHED')) throw e;
    throw (await removedMeanwhile(store, [{ name, input: sourceInput, descriptor: cached }], 'pushed')) ?? e;
  });
  if (walk.missing.length > 0) {
    const all = isIndexMediaType(top.mediaType)
      ? availablePlatforms((await readManifest(store, top)) as { manifests: Descriptor[] })
      : [];
    // A pull of the platforms alone leaves out buildx's attestations: the index lists them too.
    const attestations = walk.missing.filter(isAttestation).length;
    const onlyAttestations = all.length > 0 && all.every((p) => walk.platforms.includes(p));
    throw new StowageError(
      'NOT_CACHED',
      onlyAttestations && attestations
        ? `The cache holds every platform of ${name} but not the ${attestations === 1 ? 'attestation manifest' : `${attestations} attestation manifests`} (buildx provenance, SBOM) its index lists; a registry refuses an index whose manifests are missing.`
        : `The cache does not hold all of ${name}${all.length ? ` (it has ${walk.platforms.join(', ') || 'none'} of ${all.join(', ')})` : ''}; a registry refuses an index whose images are missing.`,
      all.length
        ? `Pull every platform first (stowage pull --all-platforms ${sourceInput}), or push one: --platform ${walk.platforms[0] ?? all[0]}.`
        : `Pull it again (${pullCommand(sourceInput)}).`,
    );
  }
  // Held until the push is done: an rm + gc meanwhile leaves these blobs alone. One that ran
  // before the lease took hold is said so (not an ENOENT halfway through an upload).
  const lease = await holdBlobs(
    store,
    walk.blobs.map((b) => b.digest),
  );
  try {
    for (const b of walk.blobs) {
      if (await store.has(b.digest)) continue;
      throw (
        (await removedMeanwhile(store, [{ name, input: sourceInput, descriptor: cached }], 'pushed')) ??
        new StowageError(
          'CACHE_CORRUPT',
          `Cached blob ${b.digest} of ${name} is missing.`,
          `Pull it again (${pullCommand(sourceInput)}) to repair the cache.`,
        )
      );
    }
    return await pushHeld(store, client, name, source, top, walk, destinationInput, options);
  } finally {
    await lease.release();
  }
}

/** The push proper, with the image's blobs held (see pushImage). */
async function pushHeld(
  store: Store,
  client: RegistryClient,
  name: string,
  source: Reference | undefined,
  top: Descriptor,
  walk: WalkResult,
  destinationInput: string,
  options: PushOptions,
): Promise<PushResult> {
  const { signal } = options;
  const dest = parseReference(destinationInput);
  if (dest.digest && dest.digest !== top.digest) {
    throw new StowageError(
      'USAGE',
      `The destination names digest ${dest.digest}, but ${name} is ${top.digest}.`,
      'Push to a tag, or to the digest of what is cached.',
    );
  }

  const repo = dest.repository;
  const scope = `repository:${repo}:pull,push`;
  const documents = walk.blobs.filter((b) => isJsonDocumentMediaType(b.mediaType));
  const blobs = walk.blobs.filter((b) => !isJsonDocumentMediaType(b.mediaType));
  const progress: TransferProgress = {
    bytesDone: 0,
    bytesTotal: blobs.reduce((n, b) => n + b.size, 0),
    blobsDone: 0,
    blobsTotal: blobs.length,
  };
  const result = { existing: 0, mounted: 0, uploaded: 0, bytesUploaded: 0 };
  const req = (
    what: string,
    method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH',
    path: string,
    extra: {
      headers?: Record<string, string>;
      body?: RegistryRequest['body'];
      scope?: string;
    } = {},
  ) =>
    client.request({
      registry: dest.registry,
      repository: repo,
      what,
      scope: extra.scope ?? scope,
      method,
      path,
      headers: extra.headers,
      body: extra.body,
      signal,
    });

  /** The next upload URL from a Location header: same origin only (it carries our credentials). */
  const uploadPath = (res: RegistryResponse, what: string): string => {
    const location = headerValue(res.headers, 'location');
    if (!location)
      throw new StowageError('REGISTRY_ERROR', `${dest.registry} gave no upload location for ${what}.`);
    let url: URL;
    try {
      url = new URL(location, res.url);
    } catch {
      throw new StowageError(
        'REGISTRY_ERROR',
        `${dest.registry} gave an invalid upload location for ${what} (${JSON.stringify(redactUserinfo(location.slice(0, 200)))}).`,
        'The registry (or a proxy in front of it) sent a Location header that is not a URL; ask its operators.',
      );
    }
    if (url.origin !== res.url.origin) {
      throw new StowageError(
        'REGISTRY_ERROR',
        `${dest.registry} wants ${what} uploaded to another host (${url.host}); Stowage does not send credentials there.`,
      );
    }
    return `${url.pathname}${url.search}`;
  };

  let mountRefused = false;
  const pushBlob = async (b: Descriptor) => {
    const what = `blob ${b.digest}`;
    if (await exists(req(`check of ${what}`, 'HEAD', `/v2/${repo}/blobs/${b.digest}`))) {
      result.existing++;
      return;
    }
    let start: RegistryResponse | undefined;
    if (source && source.registry === dest.registry && source.repository !== repo && !mountRefused) {
      const q = new URLSearchParams({ mount: b.digest, from: source.repository });
      // Refused (no pull on the source repository: Distribution asks for it): upload instead,
      // as docker does.
      start = await req(`mount of ${what}`, 'POST', `/v2/${repo}/blobs/uploads/?${q}`, {
        scope: `${scope} repository:${source.repository}:pull`,
        headers: { 'content-length': '0' },
      }).catch((e: unknown) => {
        if (!isStowageError(e, 'UNAUTHORIZED') && !isStowageError(e, 'DENIED')) throw e;
        mountRefused = true; // for every blob of that repository: not asked again
        return undefined;
      });
      await start?.body.dump();
      if (start?.statusCode === 201) {
        result.mounted++;
        return;
      }
    }
    const base = progress.bytesDone;
    for (let attempt = 1; ; attempt++) {
      try {
        await upload(b, what, start);
        break;
      } catch (e) {
        // The registry hashed what we sent and it is not the blob: our copy may have rotted. If
        // so it is removed (the next pull fetches it again) and that is what is reported.
        if (isStowageError(e) && /DIGEST_INVALID/.test(e.message) && !(await store.verifyBlob(b.digest))) {
          throw await store.discardCorrupt(b.digest);
        }
        // An upload the registry dropped (Distribution cancels one whose PATCH broke off) or a
        // broken connection: start this blob again, a few times, from a new upload session.
        if (signal?.aborted || attempt >= UPLOAD_ATTEMPTS || !restartable(e)) throw e;
        start = undefined;
        progress.bytesDone = base;
      }
    }
    result.uploaded++;
    result.bytesUploaded += b.size;
  };

  /** One upload session: POST (unless a mount attempt opened one), then one PUT or PATCH chunks. */
  const upload = async (b: Descriptor, what: string, opened: RegistryResponse | undefined) => {
    let start = opened;
    if (!start) {
      start = await req(`upload of ${what}`, 'POST', `/v2/${repo}/blobs/uploads/`, {
        headers: { 'content-length': '0' },
      });
      await start.body.dump();
    }
    let location = uploadPath(start, what);
    const file = store.blobPath(b.digest);
    const chunk = options.chunkSize ?? DEFAULT_CHUNK;
    if (b.size <= chunk) {
      const done = await req(`upload of ${what}`, 'PUT', withDigest(location, b.digest), {
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
        body: () => createReadStream(file),
      });
      await done.body.dump();
      progress.bytesDone += b.size;
      return;
    }
    const base = progress.bytesDone;
    let resumes = 0;
    for (let from = 0; from < b.size; ) {
      throwIfAborted(signal);
      const to = Math.min(b.size, from + chunk) - 1;
      try {
        const res = await req(`upload of ${what}`, 'PATCH', location, {
          headers: {
            'content-type': 'application/octet-stream',
            'content-range': `${from}-${to}`,
            'content-length': String(to - from + 1),
          },
          body: () => createReadStream(file, { start: from, end: to }),
        });
        await res.body.dump();
        location = uploadPath(res, what);
        from = to + 1;
      } catch (e) {
        // The session may live on with part of the chunk: ask where it stands (the distribution
        // spec's upload status) and go on from there; if it is gone, the caller starts over.
        if (signal?.aborted || !restartable(e) || ++resumes > UPLOAD_ATTEMPTS) throw e;
        const status = await req(`status of the upload of ${what}`, 'GET', location).catch(() => undefined);
        await status?.body.dump();
        const held =
          status?.statusCode === 204 ? uploadedBytes(headerValue(status.headers, 'range')) : undefined;
        if (held === undefined || held > b.size) throw e;
        location = uploadPath(status!, what);
        from = held;
      }
      progress.bytesDone = base + from;
      options.onProgress?.({ ...progress });
    }
    const done = await req(`upload of ${what}`, 'PUT', withDigest(location, b.digest), {
      headers: { 'content-length': '0' },
    });
    await done.body.dump();
  };

  await forEachLimit(blobs, options.concurrency ?? 3, signal, async (b) => {
    throwIfAborted(signal);
    const before = progress.bytesDone;
    await pushBlob(b);
    progress.bytesDone = before + b.size;
    progress.blobsDone++;
    options.onProgress?.({ ...progress });
  });

  // Manifests children first (walk order is parents first), the top one last under its tag.
  let manifests = 0;
  for (const d of [...documents].reverse()) {
    throwIfAborted(signal);
    const bytes = await store.readBlob(d.digest, MAX_JSON_BLOB);
    const isTop = d.digest === top.digest;
    const target = isTop ? (dest.tag ?? d.digest) : d.digest;
    const res = await req(`manifest ${target}`, 'PUT', `/v2/${repo}/manifests/${target}`, {
      headers: { 'content-type': d.mediaType, 'content-length': String(bytes.length) },
      body: () => bytes,
    });
    await res.body.dump();
    const said = headerValue(res.headers, 'docker-content-digest');
    if (said && said !== d.digest) {
      throw new StowageError(
        'DIGEST_MISMATCH',
        `${dest.registry} stored manifest ${d.digest} as ${said}; it changed the content.`,
        'The registry rewrote the manifest (schema conversion?); the pushed image does not match the cache.',
      );
    }
    manifests++;
  }

  return {
    source: name,
    destination: formatReference({
      registry: dest.registry,
      repository: repo,
      ...(dest.tag ? { tag: dest.tag } : {}),
      digest: top.digest,
    }),
    digest: top.digest,
    mediaType: top.mediaType,
    platforms: walk.platforms.length
      ? walk.platforms
      : top.platform
        ? [formatPlatform(normalizePlatform(top.platform))]
        : [],
    ...result,
    manifests,
  };
}

function withDigest(path: string, digest: Digest): string {
  return `${path}${path.includes('?') ? '&' : '?'}digest=${encodeURIComponent(digest)}`;
}

/** True for a 2xx answer, false for NOT_FOUND; anything else is thrown. */
async function exists(p: Promise<RegistryResponse>): Promise<boolean> {
  try {
    const res = await p;
    await res.body.dump();
    return true;
  } catch (e) {
    if (e instanceof StowageError && e.code === 'NOT_FOUND') return false;
    throw e;
  }
}
