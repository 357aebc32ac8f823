import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';

export const DIR_MODE = 0o700;
export const FILE_MODE = 0o644;
export const BLOB_MODE = 0o444;

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

export async function exists(path: string): Promise<boolean> {
  try {
    await fs.access(path);
    return true;
  } catch {
    return false;
  }
}
