import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { type Digest, parseDigest } from '../digest';
import { StowageError } from '../errors';
import {
  atomicWrite,
  BLOB_MODE,
  cacheWriteError,
  exists,
  FILE_MODE,
  makeDir,
  placeNoReplace,
  readUpTo,
  syncDir,
  tempName,
  writeTemp,
} from './fsutil';
import { BlobIngest, type Ingest, PresentIngest, removePartial } from './ingest';
import {
  DEFAULT_STALE_MS,
  FileLock,
  forgetOwner,
  isStale,
  type LockOptions,
  newOwner,
  readOwner,
} from './lock';
import { type Descriptor, MAX_JSON_BLOB, validateDescriptor } from './manifest';
import { isJsonDocumentMediaType, MediaType, REF_NAME_ANNOTATION } from './media-types';
import { isCacheName } from './names';

export type { Descriptor } from './manifest';

export interface StoreOptions {
  /** A lock (or lease) not refreshed for this long is stale. Default 2 minutes. */
  lockStaleMs?: number;
}

export interface IngestOptions {
  signal?: AbortSignal;
  /** Give up waiting for another process's ingest of the same blob (LOCK_TIMEOUT). Default: wait. */
  timeoutMs?: number;
}

export interface GcOptions {
  /** Partial downloads untouched for longer than this are removed. Default 24 hours. */
  ingestMaxAgeMs?: number;
}

export interface GcResult {
  removedBlobs: number;
  freedBytes: number;
  removedIngests: number;
}

export interface Lease {
  release(): Promise<void>;
}

interface IndexFile {
  schemaVersion: number;
  mediaType?: string;
  manifests: unknown[];
  [k: string]: unknown;
}

/** Default time `withLock` waits for the layout lock, which is only ever held briefly. */
const LAYOUT_LOCK_TIMEOUT_MS = 60_000;
/** Temp files older than this belong to a crashed process. */
const TEMP_MAX_AGE_MS = 60 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * index.json (and the lease files gc reads) are read whole: a cap, so that a file another tool
 * wrote (or /dev/zero linked in its place) is an error and not an out-of-memory. A cache's index
 * of a thousand images is well under 1 MiB.
 */
const MAX_INDEX_BYTES = 64 * 1024 * 1024;

/**
 * A content store in the standard OCI image layout: `oci-layout`, `index.json`,
 * `blobs/<alg>/<hex>`, readable by skopeo (`oci:DIR:REF`) and umoci (which find names only on
 * OCI-typed entries: images published in Docker's format keep their media types). Stowage's private state lives
 * in `.stowage/`: `layout.lock` (guards index.json), `ingest/<alg>-<hex>/{data,meta.json,lock}`
 * (resumable partial downloads), `tmp/` (temp files renamed into place), `leases/` (blobs a pull
 * in progress has committed but not yet referenced, which gc must keep), `index.json` (a copy of
 * the index as last written here, offered when index.json is found damaged).
 */
export class Store {
  private readonly staleMs: number;

  private constructor(
    readonly dir: string,
    options: StoreOptions,
  ) {
    this.staleMs = options.lockStaleMs ?? DEFAULT_STALE_MS;
  }

  /**
   * Opens the cache at `dir`, creating what is missing. A layout on a disk Stowage may not write
   * (read-only, another user's) is opened as it is: reading works, and a write says CACHE_WRITE.
   */
  static async open(dir: string, options: StoreOptions = {}): Promise<Store> {
    const store = new Store(dir, options);
    try {
      await store.create();
    } catch (e) {
      const refused = cacheWriteError(e, dir, 'the cache layout');
      if (refused instanceof StowageError && (await exists(join(dir, 'oci-layout')))) return store;
      throw refused;
    }
    return store;
  }

  private async create(): Promise<void> {
    const { dir } = this;
    for (const d of [dir, join(dir, 'blobs'), this.privateDir, this.tmpDir, this.ingestRoot]) {
      await makeDir(d);
    }
    const layout = join(dir, 'oci-layout');
    if (!(await exists(layout))) {
      await this.createIfMissing(layout, JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    }
    const index = join(dir, 'index.json');
    if (!(await exists(index))) {
      await this.createIfMissing(index, JSON.stringify(emptyIndex()));
    }
  }

  get privateDir(): string {
    return join(this.dir, '.stowage');
  }
  private get tmpDir(): string {
    return join(this.privateDir, 'tmp');
  }
  private get ingestRoot(): string {
    return join(this.privateDir, 'ingest');
  }
  private get leaseDir(): string {
    return join(this.privateDir, 'leases');
  }
  private get indexPath(): string {
    return join(this.dir, 'index.json');
  }
  /** The index as Stowage last wrote it, to put back if index.json is damaged (see readIndex). */
  private get indexCopyPath(): string {
    return join(this.privateDir, 'index.json');
  }

  /** `<dir>/blobs/<alg>/<hex>`; throws INVALID_DIGEST for anything but a strict digest. */
  blobPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.dir, 'blobs', algorithm, hex);
  }

  /** The folder holding the partial download of a blob. */
  ingestPath(digest: Digest): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.ingestRoot, `${algorithm}-${hex}`);
  }

  async has(digest: Digest, size?: number): Promise<boolean> {
    try {
      const st = await fs.stat(this.blobPath(digest));
      return st.isFile() && (size === undefined || st.size === size);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw e;
    }
  }

  /** Size on disk of a committed blob, or undefined when absent. */
  async blobSize(digest: Digest): Promise<number | undefined> {
    try {
      return (await fs.stat(this.blobPath(digest))).size;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /**
   * Reads a small blob (manifest, config) and verifies its hash. A blob that does not hash to its
   * name is deleted (so a re-pull repairs it) and CACHE_CORRUPT is thrown.
   */
  async readBlob(digest: Digest, maxBytes: number): Promise<Buffer> {
    const path = this.blobPath(digest);
    let fh: Awaited<ReturnType<typeof fs.open>>;
    try {
      fh = await fs.open(path, 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StowageError('NOT_CACHED', `Blob ${digest} is not in the cache.`);
      }
      throw e;
    }
    let bytes: Buffer;
    try {
      const { size } = await fh.stat();
      if (size > maxBytes) {
        throw new StowageError(
          'TOO_LARGE',
          `Blob ${digest} is ${size} bytes, over the ${maxBytes}-byte limit.`,
        );
      }
      bytes = await fh.readFile();
    } finally {
      await fh.close();
    }
    if (bytes.length > maxBytes) {
      throw new StowageError('TOO_LARGE', `Blob ${digest} is over the ${maxBytes}-byte limit.`);
    }
    const { algorithm, hex } = parseDigest(digest);
    if (createHash(algorithm).update(bytes).digest('hex') !== hex) {
      await this.quarantine(digest);
      throw corrupt(digest, path);
    }
    return bytes;
  }

  /**
   * For a reader that found a blob not matching its name (streaming it for an export or a push):
   * removes it, so that the next pull fetches it again, and returns the error to report.
   */
  async discardCorrupt(digest: Digest): Promise<StowageError> {
    parseDigest(digest);
    await this.quarantine(digest);
    return corrupt(digest, this.blobPath(digest));
  }

  /** Streams a blob through its hash: true when it matches its name. Absent → false. */
  async verifyBlob(digest: Digest): Promise<boolean> {
    return (await this.checkBlob(digest))?.sound ?? false;
  }

  /** Hashes a blob's file: whether it matches its name, and which file (inode) was read. */
  private async checkBlob(digest: Digest): Promise<{ sound: boolean; ino: number } | undefined> {
    const { algorithm, hex } = parseDigest(digest);
    let fh: Awaited<ReturnType<typeof fs.open>>;
    try {
      fh = await fs.open(this.blobPath(digest), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const hash = createHash(algorithm);
    try {
      const { ino } = await fh.stat();
      for await (const chunk of fh.createReadStream({ highWaterMark: 1 << 20, autoClose: false })) {
        hash.update(chunk as Buffer);
      }
      return { sound: hash.digest('hex') === hex, ino };
    } finally {
      await fh.close();
    }
  }

  /** Stores a small blob already in memory (manifests): verify, temp, fsync, link into place. */
  async putBlob(bytes: Uint8Array, expected: Digest): Promise<void> {
    const { algorithm, hex } = parseDigest(expected);
    const actual = createHash(algorithm).update(bytes).digest('hex');
    if (actual !== hex) {
      throw new StowageError(
        'DIGEST_MISMATCH',
        `Content for ${expected} hashes to ${algorithm}:${actual.slice(0, 16)}…; nothing was stored.`,
        'The registry or a proxy served corrupted or tampered content.',
      );
    }
    const target = this.blobPath(expected);
    if (await this.has(expected, bytes.byteLength)) return;
    // A file of another size under this name was damaged on disk: it would stay, never replaced.
    await this.discardIfCorrupt(expected);
    try {
      await makeDir(join(this.dir, 'blobs', algorithm));
      const tmp = await writeTemp(this.tmpDir, 'blob', bytes, BLOB_MODE);
      if (await placeNoReplace(tmp, target)) await syncDir(join(this.dir, 'blobs', algorithm));
    } catch (e) {
      throw cacheWriteError(e, this.dir, `blob ${expected}`);
    }
  }

  /**
   * Starts or resumes the download of a big blob. Takes a per-blob cross-process lock: a second
   * caller for the same digest waits until the first commits (then gets `present: true`) or closes
   * (then resumes its partial data). See Ingest for the calling pattern.
   */
  async ingest(expected: Digest, size: number | undefined, options: IngestOptions = {}): Promise<Ingest> {
    const { algorithm, hex } = parseDigest(expected);
    if (size !== undefined && (!Number.isSafeInteger(size) || size < 0)) {
      throw new StowageError('MANIFEST_INVALID', `Blob ${expected} has an invalid size ${size}.`);
    }
    const present = await this.presentIngest(expected, size);
    if (present) return present;
    const folder = this.ingestPath(expected);
    await makeDir(join(this.dir, 'blobs', algorithm)).catch((e) => {
      throw cacheWriteError(e, this.dir, `blob ${expected}`);
    });
    const lock = await FileLock.acquire(join(folder, 'lock'), {
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      staleMs: this.staleMs,
      what: `the download of blob ${expected}`,
    });
    try {
      const nowPresent = await this.presentIngest(expected, size);
      if (nowPresent) {
        // Committed by whoever held the lock before us; drop any leftovers.
        await removePartial(folder);
        await lock.release();
        await fs.rmdir(folder).catch(() => {});
        return nowPresent;
      }
      return await BlobIngest.open({
        digest: expected,
        algorithm,
        hex,
        expectedSize: size,
        folder,
        target: this.blobPath(expected),
        cacheDir: this.dir,
        lock,
      });
    } catch (e) {
      await lock.release();
      throw e;
    }
  }

  private async presentIngest(digest: Digest, size: number | undefined): Promise<Ingest | undefined> {
    const actual = await this.blobSize(digest);
    if (actual === undefined) return undefined;
    if (size !== undefined && actual !== size) {
      // Cut short or overwritten on disk since its commit: fetched again. Else the descriptor lies.
      if (await this.discardIfCorrupt(digest)) return undefined;
      throw new StowageError(
        'SIZE_MISMATCH',
        `Blob ${digest} is ${actual} bytes in the cache but its descriptor declares ${size}.`,
        'The manifest is inconsistent with its content; ask the image publisher to fix it.',
      );
    }
    return new PresentIngest(digest, actual);
  }

  // ---- references (index.json) ----

  /** Records `name` → descriptor in index.json, replacing any entry of that name. */
  async setReference(name: string, descriptor: Descriptor): Promise<void> {
    checkName(name);
    const valid = validateDescriptor(descriptor, `The descriptor for ${name}`, 'descriptor');
    const entry: Descriptor = {
      ...valid,
      annotations: { ...(valid.annotations ?? {}), [REF_NAME_ANNOTATION]: name },
    };
    await this.withLock(async () => {
      const index = await this.readIndex();
      index.manifests = index.manifests.filter((m) => entryName(m) !== name);
      index.manifests.push(entry);
      await this.writeIndex(index);
    });
  }

  async getReference(name: string): Promise<Descriptor | undefined> {
    return (await this.listReferences()).find((r) => r.name === name)?.descriptor;
  }

  /** Named entries of index.json (entries without a valid descriptor are skipped). */
  async listReferences(): Promise<{ name: string; descriptor: Descriptor }[]> {
    const index = await this.readIndex();
    const out: { name: string; descriptor: Descriptor }[] = [];
    for (const m of index.manifests) {
      const name = entryName(m);
      if (name === undefined) continue;
      try {
        out.push({ name, descriptor: validateDescriptor(m, 'index.json', 'entry') });
      } catch {
        // Written by some other tool and not a descriptor we can use: leave it alone.
      }
    }
    return out;
  }

  async removeReference(name: string): Promise<boolean> {
    return this.withLock(async () => {
      const index = await this.readIndex();
      const kept = index.manifests.filter((m) => entryName(m) !== name);
      if (kept.length === index.manifests.length) return false;
      index.manifests = kept;
      await this.writeIndex(index);
      return true;
    });
  }

  private async readIndex(): Promise<IndexFile> {
    let bytes: Buffer | undefined;
    try {
      bytes = await readUpTo(this.indexPath, MAX_INDEX_BYTES);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return emptyIndex();
      throw e;
    }
    if (bytes === undefined) {
      throw await this.damagedIndex(
        `is larger than ${MAX_INDEX_BYTES / (1024 * 1024)} MiB, far more than any cache's index`,
      );
    }
    const index = parseIndex(bytes.toString('utf8'));
    if (index) return index;
    // Damaged: a tool that rewrites it in place (skopeo) was killed, or the disk filled meanwhile.
    throw await this.damagedIndex('is not a valid OCI image index');
  }

  /** CACHE_CORRUPT for index.json, offering the copy Stowage kept when there is a sound one. */
  private async damagedIndex(why: string): Promise<StowageError> {
    const saved = await readUpTo(this.indexCopyPath, MAX_INDEX_BYTES).catch(() => undefined);
    const copy = saved && parseIndex(saved.toString('utf8'));
    const names = copy?.manifests.filter((m) => entryName(m) !== undefined).length ?? 0;
    return new StowageError(
      'CACHE_CORRUPT',
      `The cache index ${this.indexPath} ${why}.`,
      copy
        ? `Stowage kept a copy of the index it last wrote (${names === 1 ? '1 image' : `${names} images`}): copy ${this.indexCopyPath} over ${this.indexPath} to get them back (images other tools recorded since are not in it).`
        : 'Move it away and pull your images again (their blobs are reused); run no gc before that: with an empty index, gc deletes every blob.',
    );
  }

  private async writeIndex(index: IndexFile): Promise<void> {
    const bytes = Buffer.from(`${JSON.stringify(index)}\n`);
    await atomicWrite(this.indexPath, this.dir, this.tmpDir, bytes).catch((e) => {
      throw cacheWriteError(e, this.dir, 'the cache index');
    });
    // A copy of its own (not a link: a tool rewriting index.json in place would damage both).
    // Not synced: it is checked before it is offered.
    const tmp = tempName(this.tmpDir, 'index-copy');
    await fs
      .writeFile(tmp, bytes, { flag: 'wx', mode: FILE_MODE })
      .then(() => fs.rename(tmp, this.indexCopyPath))
      .catch(() => fs.rm(tmp, { force: true }));
  }

  // ---- locking and leases ----

  /**
   * Runs fn holding the cross-process lock on the layout (index.json). Not re-entrant: do not call
   * setReference/removeReference/gc from inside fn (they take the lock themselves).
   */
  async withLock<T>(
    fn: () => Promise<T>,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<T> {
    const lock = await FileLock.acquire(join(this.privateDir, 'layout.lock'), {
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? LAYOUT_LOCK_TIMEOUT_MS,
      staleMs: this.staleMs,
      what: `the cache index ${this.indexPath}`,
    } satisfies LockOptions).catch((e) => {
      // A read-only cache: said as such (rm, gc), not as a failure to create a lock file.
      throw cacheWriteError(e, this.dir, 'the lock on the cache index');
    });
    try {
      return await fn();
    } finally {
      await lock.release();
    }
  }

  /**
   * Protects blobs a pull has committed but not yet referenced from a concurrent gc. Take one
   * before checking what to download, release it after setReference. A lease of a killed process
   * goes stale. Not from inside withLock (it takes the layout lock).
   */
  async lease(digests: Digest[]): Promise<Lease> {
    for (const d of digests) parseDigest(d);
    const owner = await newOwner();
    const path = join(this.leaseDir, `${owner.token}.json`);
    // Under the layout lock: a gc either finished before (what it removed is gone when the pull
    // looks) or starts after and sees the lease. Between its lease read and its sweep, it is not.
    await makeDir(this.leaseDir)
      .then(() =>
        this.withLock(() =>
          fs.writeFile(path, JSON.stringify({ ...owner, digests }), { flag: 'wx', mode: 0o600 }),
        ),
      )
      .catch((e) => {
        forgetOwner(owner.token);
        throw cacheWriteError(e, this.dir, 'the lease of this pull (what gc must keep)');
      });
    const timer = setInterval(
      () => {
        const now = new Date();
        fs.utimes(path, now, now).catch(() => {});
      },
      Math.max(50, Math.floor(this.staleMs / 4)),
    );
    timer.unref();
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        clearInterval(timer);
        await fs.rm(path, { force: true });
        forgetOwner(owner.token);
      },
    };
  }

  // ---- garbage collection and usage ----

  /**
   * Removes blobs no reference reaches (index.json → indexes → manifests → config + layers) and
   * not held by a live lease, partial downloads older than `ingestMaxAgeMs` or already committed,
   * and temp files of crashed processes.
   */
  async gc(options: GcOptions = {}): Promise<GcResult> {
    const ingestMaxAgeMs = options.ingestMaxAgeMs ?? DAY_MS;
    return this.withLock(async () => {
      // Ingests first: one whose blob is already committed is recognised before the sweep.
      const removedIngests = await this.gcIngests(ingestMaxAgeMs);
      const keep = await this.reachable();
      for (const d of await this.leasedDigests()) keep.add(d);
      let removedBlobs = 0;
      let freedBytes = 0;
      for (const { digest, path } of await this.listBlobs({ own: true })) {
        if (keep.has(digest)) continue;
        // Never a symlink: what it points to is not the cache's to delete.
        const st = await fs.lstat(path).catch(() => undefined);
        if (!st?.isFile()) continue;
        if (process.platform === 'win32') await fs.chmod(path, FILE_MODE).catch(() => {});
        await fs.rm(path, { force: true });
        removedBlobs++;
        freedBytes += st.size;
      }
      await this.gcTemps();
      return { removedBlobs, freedBytes, removedIngests };
    });
  }

  /** Every digest reachable from index.json, following nested indexes and manifests present. */
  private async reachable(): Promise<Set<string>> {
    const index = await this.readIndex();
    const seen = new Set<string>();
    const stack: { mediaType?: unknown; digest?: unknown }[] = [...(index.manifests as never[])];
    while (stack.length > 0) {
      const d = stack.pop()!;
      if (typeof d !== 'object' || d === null || typeof d.digest !== 'string') continue;
      let digest: Digest;
      try {
        parseDigest(d.digest);
        digest = d.digest as Digest;
      } catch {
        continue;
      }
      if (seen.has(digest)) continue;
      seen.add(digest);
      const mediaType = typeof d.mediaType === 'string' ? d.mediaType : undefined;
      if (!mayReferBlobs(mediaType) || !(await this.has(digest))) continue;
      let doc: unknown;
      try {
        doc = JSON.parse((await this.readBlob(digest, MAX_JSON_BLOB)).toString('utf8'));
      } catch {
        // Corrupt (readBlob removed it), too large or not JSON: nothing to follow from here.
        continue;
      }
      // Whatever the document names is kept, strict parsing or not: what gc cannot read it must
      // not delete (an entry whose media type disagrees with its body, an artifact's blobs).
      stack.push(...descriptorsIn(doc));
    }
    return seen;
  }

  private async leasedDigests(): Promise<string[]> {
    const out: string[] = [];
    for (const name of await readdirOrEmpty(this.leaseDir)) {
      const path = join(this.leaseDir, name);
      if (await isStale(path, this.staleMs)) {
        await fs.rm(path, { force: true });
        continue;
      }
      try {
        const bytes = await readUpTo(path, MAX_INDEX_BYTES);
        const body = JSON.parse(bytes?.toString('utf8') ?? '') as { digests?: unknown };
        if (Array.isArray(body.digests)) out.push(...body.digests.filter((x) => typeof x === 'string'));
      } catch {
        // Being written or gone.
      }
    }
    return out;
  }

  /**
   * The blob files, by digest. `own`: only those in folders of the cache itself, not through a
   * symlinked blobs/ or blobs/<alg>/ (a blob pool shared with other layouts, whose blobs this
   * index does not account for).
   */
  private async listBlobs(options: { own?: boolean } = {}): Promise<{ digest: Digest; path: string }[]> {
    const out: { digest: Digest; path: string }[] = [];
    const realDir = async (p: string) => (await fs.lstat(p).catch(() => undefined))?.isDirectory();
    if (options.own && !(await realDir(join(this.dir, 'blobs')))) return out;
    for (const algorithm of ['sha256', 'sha512']) {
      const dir = join(this.dir, 'blobs', algorithm);
      if (options.own && !(await realDir(dir))) continue;
      for (const hex of await readdirOrEmpty(dir)) {
        const digest = `${algorithm}:${hex}`;
        try {
          parseDigest(digest);
        } catch {
          continue; // not ours (another tool's temp file): leave it
        }
        out.push({ digest: digest as Digest, path: join(dir, hex) });
      }
    }
    return out;
  }

  private async gcIngests(maxAgeMs: number): Promise<number> {
    let removed = 0;
    for (const name of await readdirOrEmpty(this.ingestRoot)) {
      const folder = join(this.ingestRoot, name);
      const m = /^(sha256|sha512)-([a-f0-9]+)$/.exec(name);
      const digest = m ? (`${m[1]}:${m[2]}` as Digest) : undefined;
      let lock: FileLock;
      try {
        // Try once: an ingest somebody is writing is not ours to touch.
        lock = await FileLock.acquire(join(folder, 'lock'), { timeoutMs: 0, staleMs: this.staleMs });
      } catch {
        continue;
      }
      try {
        const data = await fs.stat(join(folder, 'data')).catch(() => undefined);
        const age = Date.now() - (data?.mtimeMs ?? 0);
        const committed = digest !== undefined && (await this.has(digest).catch(() => false));
        if (!data || committed || age > maxAgeMs) {
          await removePartial(folder);
          if (data) removed++;
        }
      } finally {
        await lock.release();
        await fs.rmdir(folder).catch(() => {});
      }
    }
    return removed;
  }

  private async gcTemps(): Promise<void> {
    for (const name of await readdirOrEmpty(this.tmpDir)) {
      const path = join(this.tmpDir, name);
      const st = await fs.stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > TEMP_MAX_AGE_MS) await fs.rm(path, { force: true });
    }
  }

  /** Committed blobs, and partial downloads kept for resuming. */
  async diskUsage(): Promise<{ blobs: number; bytes: number; ingests: number; ingestBytes: number }> {
    let blobs = 0;
    let bytes = 0;
    for (const { path } of await this.listBlobs()) {
      const st = await fs.stat(path).catch(() => undefined);
      if (!st?.isFile()) continue;
      blobs++;
      bytes += st.size;
    }
    let ingests = 0;
    let ingestBytes = 0;
    for (const name of await readdirOrEmpty(this.ingestRoot)) {
      const st = await fs.stat(join(this.ingestRoot, name, 'data')).catch(() => undefined);
      if (!st) continue;
      ingests++;
      ingestBytes += st.size;
    }
    return { blobs, bytes, ingests, ingestBytes };
  }

  /** Who holds the layout lock now, if anyone (for diagnostics). */
  async lockHolder(): Promise<{ pid: number; hostname: string } | undefined> {
    const owner = await readOwner(join(this.privateDir, 'layout.lock'));
    return owner ? { pid: owner.pid, hostname: owner.hostname } : undefined;
  }

  /**
   * Removes the blob when it does not hash to its name (true), as long as the file hashed is still
   * the one there (a peer may have put a good copy in its place meanwhile). False when it is
   * absent or sound.
   */
  private async discardIfCorrupt(digest: Digest): Promise<boolean> {
    const checked = await this.checkBlob(digest);
    if (!checked || checked.sound) return false;
    const now = await fs.stat(this.blobPath(digest)).catch(() => undefined);
    if (now?.ino === checked.ino) await this.quarantine(digest);
    return true;
  }

  private async quarantine(digest: Digest): Promise<void> {
    const path = this.blobPath(digest);
    if (process.platform === 'win32') await fs.chmod(path, FILE_MODE).catch(() => {});
    await fs.rm(path, { force: true });
  }

  /** Creates a file only if absent (two processes opening a fresh cache at once both succeed). */
  private async createIfMissing(path: string, text: string): Promise<void> {
    const tmp = await writeTemp(this.tmpDir, 'init', Buffer.from(`${text}\n`), FILE_MODE);
    if (await placeNoReplace(tmp, path)) await syncDir(this.dir);
  }
}

/** Blobs that may name others: manifests and indexes, JSON of unknown kinds, no media type. */
function mayReferBlobs(mediaType: string | undefined): boolean {
  return !mediaType || isJsonDocumentMediaType(mediaType) || mediaType.endsWith('+json');
}

/** The descriptors a manifest, index or artifact manifest names (config, layers, manifests, blobs, subject). */
function descriptorsIn(doc: unknown): { mediaType?: unknown; digest?: unknown }[] {
  if (typeof doc !== 'object' || doc === null) return [];
  const d = doc as Record<string, unknown>;
  const out: { mediaType?: unknown; digest?: unknown }[] = [];
  for (const one of [d.config, d.subject]) if (typeof one === 'object' && one !== null) out.push(one);
  for (const list of [d.layers, d.manifests, d.blobs]) {
    if (Array.isArray(list))
      for (const one of list) if (typeof one === 'object' && one !== null) out.push(one);
  }
  return out;
}

/** index.json's text as an index, or undefined when it is not one (empty, cut short, not JSON). */
function parseIndex(text: string): IndexFile | undefined {
  try {
    const index = JSON.parse(text) as IndexFile | null;
    if (typeof index === 'object' && index !== null && Array.isArray(index.manifests)) return index;
  } catch {
    // Not JSON.
  }
  return undefined;
}

function emptyIndex(): IndexFile {
  return { schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [] };
}

function entryName(entry: unknown): string | undefined {
  const annotations = (entry as { annotations?: Record<string, unknown> } | null)?.annotations;
  const name = annotations?.[REF_NAME_ANNOTATION];
  return typeof name === 'string' ? name : undefined;
}

function checkName(name: string): void {
  if (!isCacheName(name)) {
    // Shown as JSON: the control characters that made it invalid are escaped, not acted on.
    throw new StowageError(
      'INVALID_REFERENCE',
      `Invalid reference name for the cache: ${JSON.stringify(String(name).slice(0, 100))}.`,
      'A name is up to 1024 characters, without white space or control characters.',
    );
  }
}

function corrupt(digest: Digest, path: string): StowageError {
  return new StowageError(
    'CACHE_CORRUPT',
    `Cached blob ${digest} (${path}) did not match its digest and was removed.`,
    'Pull the image again to repair the cache.',
  );
}

async function readdirOrEmpty(dir: string): Promise<string[]> {
  try {
    return await fs.readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}
