import { createHash, type Hash } from 'node:crypto';
import { createReadStream, promises as fs, constants as fsConstants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Digest } from '../digest';
import { StowageError } from '../errors';
import { BLOB_MODE, cacheWriteError, placeNoReplace, readUpTo, syncDir } from './fsutil';
import type { FileLock } from './lock';

/**
 * A resumable writer for one blob. Usage:
 *
 *   const ing = await store.ingest(desc.digest, desc.size, { signal });
 *   try {
 *     if (!ing.present) {            // someone (maybe another process) already committed it
 *       // fetch with `Range: bytes=${ing.offset}-` when ing.offset > 0
 *       for await (const chunk of body) await ing.write(chunk);
 *       await ing.commit();
 *     }
 *   } finally {
 *     await ing.close();             // keeps partial data for a later resume; no-op after commit
 *   }
 *
 * Calls must not overlap (await each write). The chunk is copied; the caller may reuse it once
 * the write has resolved. Other connections may write later ranges meanwhile through `part()`;
 * `adopt()` takes their bytes in once the writes reach them (pull/fetch.ts does this).
 */
export interface Ingest {
  readonly digest: Digest;
  /** True when the blob is already in the store: nothing to write, commit() is a no-op. */
  readonly present: boolean;
  /** Bytes already held (re-hashed from the partial file on open): where to resume. */
  readonly offset: number;
  readonly expectedSize?: number;
  write(chunk: Uint8Array): Promise<void>;
  /** Discards the partial data and starts again at offset 0. */
  truncate(): Promise<void>;
  /**
   * A writer for the bytes from `start` on (at or past the offset), put in place in the partial
   * file while this ingest is still before them: one blob downloaded over several connections.
   * They count once adopted; a close keeps only the adopted prefix, and a crash loses them.
   */
  part(start: number): Promise<PartWriter>;
  /** Takes the bytes parts wrote, from the offset up to `end`, into the digest (read back). */
  adopt(end: number): Promise<void>;
  /** Verifies size and digest, then moves the blob into place (read-only). */
  commit(): Promise<void>;
  /** Keeps the partial data for a later resume and releases the per-blob lock. Idempotent. */
  close(): Promise<void>;
}

/** Writes one part of a blob at its place (see {@link Ingest.part}). Calls must not overlap. */
export interface PartWriter {
  readonly start: number;
  /** Bytes in the file so far (what is buffered is written by the next flush or the close). */
  readonly written: number;
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

/**
 * Present while parts may have written past the hashed prefix: bytes there are not known to be
 * contiguous (a part ahead of a gap). A close truncates to the prefix and removes it; finding it
 * on open means a crash, and the partial data is not trusted.
 */
export const PARTS_MARKER = 'parts';

/** Deletes an ingest folder's partial data and what describes it (not its lock). */
export async function removePartial(folder: string): Promise<void> {
  // The data first: a marker left alone is harmless, data without its marker is trusted.
  await fs.rm(join(folder, 'data'), { force: true });
  await fs.rm(join(folder, 'meta.json'), { force: true });
  await fs.rm(join(folder, PARTS_MARKER), { force: true });
}

export interface IngestMeta {
  digest: Digest;
  expectedSize?: number;
  startedAt: string;
  updatedAt: string;
}

/** Coalesce small network chunks into fewer, larger writes. */
const BUFFER_SIZE = 1024 * 1024;
/** meta.json is a few hundred bytes: anything larger is not one (read, it could fill memory). */
const MAX_META_BYTES = 64 * 1024;

/**
 * Written data is flushed to disk while the download goes on, each time this much more is written
 * (one flush per file at a time, a few per process): the commit's fsync then has little left to
 * wait for, where it would otherwise write out the whole blob at the end (200 MB from a local
 * registry: 431 → 374 ms). Also keeps a large layer from piling up in the page cache as dirty pages.
 */
const EARLY_SYNC_BYTES = 2 * 1024 * 1024;
/** Early flushes in flight at most: the rest of libuv's four threads stay free for the writes. */
const EARLY_SYNCS = 2;
let earlySyncs = 0;

export class PresentIngest implements Ingest {
  readonly present = true;
  constructor(
    readonly digest: Digest,
    readonly offset: number,
  ) {}
  get expectedSize(): number {
    return this.offset;
  }
  async write(): Promise<void> {
    throw new StowageError('CACHE_CORRUPT', `Blob ${this.digest} is already in the cache; nothing to write.`);
  }
  async truncate(): Promise<void> {}
  async part(): Promise<PartWriter> {
    throw new StowageError('CACHE_CORRUPT', `Blob ${this.digest} is already in the cache; nothing to write.`);
  }
  async adopt(): Promise<void> {}
  async commit(): Promise<void> {}
  async close(): Promise<void> {}
}

export class BlobIngest implements Ingest {
  readonly present = false;
  private done = false;
  /** Network chunks gathered into large writes; hashed as they go out (see writeOut). */
  private readonly pending = new WriteBuffer((piece) => this.writeOut(piece));
  /** Bytes written since the last early flush began. */
  private unsynced = 0;
  /** Parts may have written past the hashed prefix (the marker file exists). */
  private parted = false;
  /** Bytes of the prefix in the file (written less what is still buffered). */
  private flushed: number;
  private syncing: Promise<void> | undefined;

  private constructor(
    readonly digest: Digest,
    readonly expectedSize: number | undefined,
    private readonly algorithm: string,
    private readonly hex: string,
    private readonly folder: string,
    private readonly target: string,
    private readonly cacheDir: string,
    private readonly lock: FileLock,
    private fh: FileHandle,
    private hash: Hash,
    private written: number,
  ) {
    this.flushed = written;
  }

  get offset(): number {
    return this.written;
  }

  get dataPath(): string {
    return join(this.folder, 'data');
  }

  /**
   * Opens (or resumes) the ingest in `folder`, whose lock the caller holds. The partial data is
   * re-hashed to rebuild the hash state and find the resume offset.
   */
  static async open(options: {
    digest: Digest;
    algorithm: string;
    hex: string;
    expectedSize: number | undefined;
    folder: string;
    target: string;
    /** The cache's folder, named when its disk refuses a write. */
    cacheDir: string;
    lock: FileLock;
  }): Promise<BlobIngest> {
    const { folder, expectedSize } = options;
    const data = join(folder, 'data');
    const hash = createHash(options.algorithm);
    let written = 0;
    let startedAt = new Date().toISOString();
    try {
      const bytes = await readUpTo(join(folder, 'meta.json'), MAX_META_BYTES);
      const meta = JSON.parse(bytes?.toString('utf8') ?? '') as Partial<IngestMeta>;
      if (typeof meta.startedAt === 'string') startedAt = meta.startedAt;
    } catch {
      // No or unreadable meta: informational only.
    }
    // Parts were writing when the last process stopped without closing: gaps are possible.
    const marker = join(folder, PARTS_MARKER);
    if (
      await fs.access(marker).then(
        () => true,
        () => false,
      )
    ) {
      // meta.json goes too; its startedAt is kept above and the file written again below.
      await removePartial(folder);
    }
    try {
      for await (const chunk of createReadStream(data, { highWaterMark: BUFFER_SIZE })) {
        hash.update(chunk as Buffer);
        written += (chunk as Buffer).length;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    // Positional writes: parts write ahead of the prefix in the same file.
    const fh = await fs.open(data, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
    const ingest = new BlobIngest(
      options.digest,
      expectedSize,
      options.algorithm,
      options.hex,
      folder,
      options.target,
      options.cacheDir,
      options.lock,
      fh,
      hash,
      written,
    );
    // More than the blob can hold: the partial belongs to a lying descriptor; start over.
    if (expectedSize !== undefined && written > expectedSize) await ingest.truncate();
    const meta: IngestMeta = {
      digest: options.digest,
      ...(expectedSize !== undefined ? { expectedSize } : {}),
      startedAt,
      updatedAt: new Date().toISOString(),
    };
    try {
      await fs.writeFile(join(folder, 'meta.json'), JSON.stringify(meta), { mode: 0o600 });
    } catch (e) {
      await fh.close();
      ingest.refused(e);
    }
    return ingest;
  }

  async write(chunk: Uint8Array): Promise<void> {
    this.assertOpen();
    if (this.expectedSize !== undefined && this.written + chunk.byteLength > this.expectedSize) {
      await this.discard();
      throw new StowageError(
        'SIZE_MISMATCH',
        `Blob ${this.digest} is larger than the ${this.expectedSize} bytes its descriptor declares.`,
        'The registry served more data than the manifest says; nothing was stored.',
      );
    }
    this.written += chunk.byteLength;
    await this.pending.add(chunk).catch(this.refused);
  }

  async truncate(): Promise<void> {
    this.assertOpen();
    this.pending.clear();
    await this.syncing;
    await this.fh.truncate(0);
    this.hash = createHash(this.algorithm);
    this.written = 0;
    this.flushed = 0;
  }

  async part(start: number): Promise<PartWriter> {
    this.assertOpen();
    if (start < this.written || (this.expectedSize !== undefined && start > this.expectedSize)) {
      throw new StowageError(
        'CACHE_CORRUPT',
        `A part of ${this.digest} at byte ${start} overlaps what is written.`,
      );
    }
    if (!this.parted) {
      // On disk before any byte lands past the prefix: after a crash the partial data is dropped.
      await fs.writeFile(join(this.folder, PARTS_MARKER), '', { mode: 0o600 });
      await syncDir(this.folder);
      this.parted = true;
    }
    const fh = await fs.open(this.dataPath, 'r+');
    return new FilePart(fh, start, this.digest, this.expectedSize, this.refused);
  }

  async adopt(end: number): Promise<void> {
    this.assertOpen();
    if (end < this.written || (this.expectedSize !== undefined && end > this.expectedSize)) {
      throw new StowageError('CACHE_CORRUPT', `Cannot adopt bytes of ${this.digest} up to ${end}.`);
    }
    await this.pending.flush();
    // Hashed as read back from the file (through the write buffer, empty now): what is verified
    // is what the file holds.
    const buffer = this.pending.bytes;
    for (let at = this.written; at < end; ) {
      const { bytesRead } = await this.fh.read(buffer, 0, Math.min(buffer.length, end - at), at);
      if (bytesRead === 0) {
        throw new StowageError(
          'CACHE_CORRUPT',
          `The partial download of ${this.digest} ends at byte ${at}, before ${end}.`,
        );
      }
      this.hash.update(buffer.subarray(0, bytesRead));
      at += bytesRead;
    }
    this.written = end;
    this.flushed = end;
  }

  async commit(): Promise<void> {
    this.assertOpen();
    try {
      await this.pending.flush();
      await this.syncing;
      await this.fh.sync();
    } catch (e) {
      await this.close();
      this.refused(e);
    }
    await this.fh.close();
    this.done = true;
    const actual = this.hash.digest('hex');
    if (this.expectedSize !== undefined && this.written !== this.expectedSize) {
      await this.cleanup(true);
      throw new StowageError(
        'SIZE_MISMATCH',
        `Blob ${this.digest} has ${this.written} bytes but its descriptor declares ${this.expectedSize}.`,
        'The download was incomplete or the registry served different content; nothing was stored.',
      );
    }
    if (actual !== this.hex) {
      await this.cleanup(true);
      throw new StowageError(
        'DIGEST_MISMATCH',
        `Blob ${this.digest} downloaded with a different digest (${this.algorithm}:${actual.slice(0, 16)}…).`,
        'The registry or a proxy served corrupted or tampered content; nothing was stored.',
      );
    }
    try {
      await fs.chmod(this.dataPath, BLOB_MODE);
      // AlreadyExists is fine: another process committed the same content first.
      await placeNoReplace(this.dataPath, this.target);
      await syncDir(dirname(this.target));
    } finally {
      await this.cleanup(true);
    }
  }

  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    try {
      await this.pending.flush();
      // Keep only the hashed prefix: past it, parts may have left gaps.
      if (this.parted) {
        await this.fh.truncate(this.flushed);
        await fs.rm(join(this.folder, PARTS_MARKER), { force: true });
      }
    } finally {
      // Never close the descriptor under a flush in progress (the number could be reused).
      await this.syncing;
      await this.fh.close().catch(() => {});
      await this.cleanup(this.flushed === 0);
    }
  }

  /** Throws a write error, as CACHE_WRITE when the disk refused it (see cacheWriteError). */
  private readonly refused = (e: unknown): never => {
    throw cacheWriteError(e, this.cacheDir, `blob ${this.digest}`);
  };

  private assertOpen(): void {
    if (this.done) throw new StowageError('ABORTED', `The ingest of ${this.digest} is already closed.`);
  }

  /**
   * Writes gathered bytes out. The digest is taken of these bytes, in our own buffer, as they go
   * to the file: a caller that changed a chunk too early can make a blob fail verification, but
   * can never have one committed whose file differs from what was verified.
   */
  private async writeOut(piece: Buffer): Promise<void> {
    this.hash.update(piece);
    await writeAll(this.fh, piece, this.flushed);
    this.flushed += piece.byteLength;
    this.unsynced += piece.byteLength;
    if (this.unsynced >= EARLY_SYNC_BYTES && !this.syncing && earlySyncs < EARLY_SYNCS) {
      this.unsynced = 0;
      earlySyncs++;
      // Best effort: the commit's own fsync is the one whose failure counts.
      this.syncing = this.fh
        .datasync()
        .catch(() => {})
        .finally(() => {
          earlySyncs--;
          this.syncing = undefined;
        });
    }
  }

  /** Deletes the partial data after a verification failure. */
  private async discard(): Promise<void> {
    this.done = true;
    await this.syncing;
    await this.fh.close().catch(() => {});
    await this.cleanup(true);
  }

  private async cleanup(removeData: boolean): Promise<void> {
    if (removeData) await removePartial(this.folder);
    await this.lock.release();
    // Another process may already be waiting on a new lock in here: then the folder stays.
    if (removeData) await fs.rmdir(this.folder).catch(() => {});
  }
}

/** One part of a blob, written at its place in the partial file through a descriptor of its own. */
class FilePart implements PartWriter {
  private flushed = 0;
  private readonly pending = new WriteBuffer(async (piece) => {
    await writeAll(this.fh, piece, this.start + this.flushed);
    this.flushed += piece.byteLength;
  });
  private closed = false;

  constructor(
    private readonly fh: FileHandle,
    readonly start: number,
    private readonly digest: Digest,
    private readonly size: number | undefined,
    private readonly refused: (e: unknown) => never,
  ) {}

  async write(chunk: Uint8Array): Promise<void> {
    if (this.closed) throw new StowageError('ABORTED', `A part of ${this.digest} is already closed.`);
    if (
      this.size !== undefined &&
      this.start + this.flushed + this.pending.held + chunk.byteLength > this.size
    ) {
      throw new StowageError(
        'SIZE_MISMATCH',
        `Blob ${this.digest} is larger than the ${this.size} bytes its descriptor declares.`,
      );
    }
    await this.pending.add(chunk).catch(this.refused);
  }

  get written(): number {
    return this.flushed;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.pending.flush().catch(this.refused);
    } finally {
      await this.fh.close().catch(() => {});
    }
  }
}

/** Coalesces small chunks into writes of {@link BUFFER_SIZE}: copies them into one buffer. */
class WriteBuffer {
  readonly bytes = Buffer.allocUnsafe(BUFFER_SIZE);
  /** Bytes gathered and not yet handed to `out`. */
  held = 0;

  constructor(private readonly out: (piece: Buffer) => Promise<void>) {}

  async add(chunk: Uint8Array): Promise<void> {
    for (let from = 0; from < chunk.byteLength; ) {
      const n = Math.min(this.bytes.length - this.held, chunk.byteLength - from);
      this.bytes.set(chunk.subarray(from, from + n), this.held);
      this.held += n;
      from += n;
      if (this.held === this.bytes.length) await this.flush();
    }
  }

  /** Hands what is gathered to `out`; the buffer is free again once this resolves. */
  async flush(): Promise<void> {
    if (this.held === 0) return;
    const piece = this.bytes.subarray(0, this.held);
    this.held = 0;
    await this.out(piece);
  }

  /** Drops what is gathered. */
  clear(): void {
    this.held = 0;
  }
}

async function writeAll(fh: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let from = 0;
  while (from < bytes.byteLength) {
    const { bytesWritten } = await fh.write(bytes, from, bytes.byteLength - from, position + from);
    from += bytesWritten;
  }
}
