import { randomBytes } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import { dirname, join } from 'node:path';
import { GC_COMMAND, StowageError } from '../errors';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o644;
export const BLOB_MODE = 0o444;

/**
 * `mkdir -p`, failing with the real reason: Node's recursive mkdir says ENOENT for a folder it
 * could not create on a read-only file system (it looks the folder up after EROFS).
 */
export async function makeDir(path: string, mode = DIR_MODE): Promise<void> {
  try {
    await fs.mkdir(path, { recursive: true, mode });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    // The first missing folder, made alone, says why (EROFS); made after all, the rest follow.
    let missing = path;
    for (let up = dirname(missing); up !== missing && !(await exists(up)); up = dirname(up)) missing = up;
    await fs.mkdir(missing, { mode }).catch((again: NodeJS.ErrnoException) => {
      if (again.code !== 'EEXIST') throw again;
    });
    await fs.mkdir(path, { recursive: true, mode });
  }
}

/** fsync a directory so a rename into it survives a crash. Not possible on Windows: skipped. */
export async function syncDir(dir: string): Promise<void> {
  if (process.platform === 'win32') return;
  const fh = await fs.open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function tempName(dir: string, prefix: string): string {
  return join(dir, `${prefix}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
}

/** Writes `bytes` to a fresh temp file in `tmpDir` and fsyncs it; returns its path. */
export async function writeTemp(
  tmpDir: string,
  prefix: string,
  bytes: Uint8Array,
  mode: number,
): Promise<string> {
  const path = tempName(tmpDir, prefix);
  const fh = await fs.open(path, 'wx', mode);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => {});
    await fs.rm(path, { force: true });
    throw e;
  }
  await fh.close();
  return path;
}

/** Atomically replaces `target` with `bytes`: temp file, fsync, rename, fsync the directory. */
export async function atomicWrite(
  target: string,
  targetDir: string,
  tmpDir: string,
  bytes: Uint8Array,
): Promise<void> {
  const tmp = await writeTemp(tmpDir, 'replace', bytes, FILE_MODE);
  try {
    await fs.rename(tmp, target);
  } catch (e) {
    await fs.rm(tmp, { force: true });
    throw e;
  }
  await syncDir(targetDir);
}

/**
 * Moves a finished file to `target` without ever replacing an existing one (a committed blob is
 * never rewritten). Returns false when the target already existed; the source is removed either way.
 */
export async function placeNoReplace(source: string, target: string): Promise<boolean> {
  try {
    await fs.link(source, target);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') {
      await fs.rm(source, { force: true });
      return false;
    }
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'ENOSYS' && code !== 'EXDEV') throw e;
    // No hard links on this file system: rename after an existence check (a tiny race, same content).
    if (await exists(target)) {
      await fs.rm(source, { force: true });
      return false;
    }
    await fs.rename(source, target);
    return true;
  }
  await fs.rm(source, { force: true });
  return true;
}

/**
 * A file's bytes, or undefined when it holds more than `maxBytes`: read up to the cap, whatever
 * its size says (a device, a file still growing), and opened without waiting on a FIFO. For files
 * other tools may write (index.json), which must not run the process out of memory.
 */
export async function readUpTo(path: string, maxBytes: number): Promise<Buffer | undefined> {
  const fh = await fs.open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
  try {
    if ((await fh.stat()).size > maxBytes) return undefined;
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(1 << 20, maxBytes + 1 - total));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) return Buffer.concat(chunks, total);
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
      if (total > maxBytes) return undefined;
    }
  } finally {
    await fh.close();
  }
}

export async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}

const FREE_SPACE = `Free some space (${GC_COMMAND}: it deletes the blobs no cached image needs) and try again.`;
const DENIED = { reason: 'permission denied', hint: 'The cache folder must be writable by you.' };

/** Why a disk refuses a write, for the errors that are the disk's and not Stowage's. */
const REFUSALS: Record<string, { reason: string; hint: string }> = {
  ENOSPC: { reason: 'the disk is full', hint: FREE_SPACE },
  EDQUOT: { reason: 'the disk quota is used up', hint: FREE_SPACE },
  EROFS: { reason: 'the file system is read-only', hint: 'The cache must be on a writable disk.' },
  EACCES: DENIED,
  EPERM: DENIED,
  EIO: { reason: 'the disk reported an input/output error', hint: 'Check the disk.' },
};

/**
 * A write to the cache the disk refused (full, read-only, …) as CACHE_WRITE naming the cache, so
 * that no caller takes it for a failure of what was being copied (a download, an archive); any
 * other error is returned as it is.
 */
export function cacheWriteError(e: unknown, cacheDir: string, what: string): unknown {
  const refusal = REFUSALS[(e as NodeJS.ErrnoException | undefined)?.code ?? ''];
  if (!refusal || e instanceof StowageError) return e;
  return new StowageError(
    'CACHE_WRITE',
    `Cannot write ${what} to the cache (${cacheDir}): ${refusal.reason}.`,
    refusal.hint,
    { cause: e },
  );
}
